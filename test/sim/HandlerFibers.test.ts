/**
 * `HandlerFibers`: a simulated node's request handlers run on reused fibers, each concurrently
 * with the others, and each one's exit reaches its caller whatever it was.
 */
import { describe, expect, it } from "@effect/vitest"
import { Cause, Deferred, Effect, Exit, Fiber, FiberId } from "effect"
import { HandlerFibers } from "../../src/sim/HandlerFibers.js"

const make = () => {
  const forked: Array<Fiber.RuntimeFiber<never>> = []
  const pool = new HandlerFibers((effect) => {
    const fiber = Effect.runFork(effect)
    forked.push(fiber)
    return fiber
  })
  return { pool, forked }
}

/** Runs `effect` on the pool and resolves with its exit. */
const runOn = <A, E>(pool: HandlerFibers, effect: Effect.Effect<A, E>): Promise<Exit.Exit<A, E>> => new Promise((resolve) => pool.run(effect, resolve))

const fiberIdNow = Effect.map(Effect.fiberId, (id) => FiberId.threadName(id))

describe("HandlerFibers", () => {
  it("runs the next request on the fiber the last one gave back", async () => {
    const { pool, forked } = make()
    const first = await runOn(pool, fiberIdNow)
    const second = await runOn(pool, fiberIdNow)
    expect(Exit.isSuccess(first) && Exit.isSuccess(second)).toBe(true)
    expect(Exit.isSuccess(second) && Exit.isSuccess(first) && second.value === first.value).toBe(true)
    expect(forked).toHaveLength(1)
    for (const fiber of forked) await Effect.runPromise(Fiber.interrupt(fiber))
  })

  it("runs requests that wait at the same time on fibers of their own, concurrently", async () => {
    const { pool, forked } = make()
    const gate = Effect.runSync(Deferred.make<void>())
    const waiting = [runOn(pool, Effect.zipRight(Deferred.await(gate), fiberIdNow)), runOn(pool, Effect.zipRight(Deferred.await(gate), fiberIdNow))]
    // A third that does not wait finishes while both others still wait.
    const third = await runOn(pool, Effect.succeed("done"))
    expect(third).toEqual(Exit.succeed("done"))
    Effect.runSync(Deferred.succeed(gate, undefined))
    const [a, b] = await Promise.all(waiting)
    expect(a !== undefined && b !== undefined && Exit.isSuccess(a) && Exit.isSuccess(b) && a.value !== b.value).toBe(true)
    expect(forked).toHaveLength(3)
    for (const fiber of forked) await Effect.runPromise(Fiber.interrupt(fiber))
  })

  it("hands every exit to its caller, failures and defects included, and goes on serving after a defect", async () => {
    const { pool, forked } = make()
    const failed = await runOn(pool, Effect.fail("refused"))
    expect(failed).toEqual(Exit.fail("refused"))
    const died = await runOn(pool, Effect.die(new Error("a bug")))
    expect(Exit.isFailure(died) && Cause.isDie(died.cause)).toBe(true)
    const interrupted = await runOn(pool, Effect.interrupt)
    expect(Exit.isFailure(interrupted) && Cause.isInterruptedOnly(interrupted.cause)).toBe(true)
    expect(await runOn(pool, Effect.succeed(7))).toEqual(Exit.succeed(7))
    expect(forked).toHaveLength(1)
    for (const fiber of forked) await Effect.runPromise(Fiber.interrupt(fiber))
  })

  it("gives a job whose fiber is interrupted while it runs (a crash) the interrupted exit, as its own fiber did", async () => {
    const { pool, forked } = make()
    const exit = runOn(pool, Effect.never)
    await Effect.runPromise(Effect.yieldNow())
    await Effect.runPromise(Fiber.interrupt(forked[0]!))
    const ended = await exit
    expect(Exit.isFailure(ended) && Cause.isInterruptedOnly(ended.cause)).toBe(true)
    expect(await runOn(pool, Effect.succeed("served"))).toEqual(Exit.succeed("served"))
    expect(forked).toHaveLength(2)
    for (const fiber of forked) await Effect.runPromise(Fiber.interrupt(fiber))
  })

  it("never hands a request to a fiber interrupted while it waited", async () => {
    const { pool, forked } = make()
    await runOn(pool, Effect.void)
    await Effect.runPromise(Fiber.interrupt(forked[0]!))
    expect(await runOn(pool, Effect.succeed("served"))).toEqual(Exit.succeed("served"))
    expect(forked).toHaveLength(2)
    for (const fiber of forked) await Effect.runPromise(Fiber.interrupt(fiber))
  })
})
