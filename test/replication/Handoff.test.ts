/**
 * The latch-based hand-offs the agent and the heartbeater use instead of Deferreds, queues,
 * races and a fork per request: each must behave as the construct it replaces.
 */
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Fiber, FiberId, Scope, TestClock, Exit } from "effect"
import * as Handoff from "../../src/replication/Handoff.js"

class Label extends Context.Tag("test/Label")<Label, string>() {}

describe("Handoff.Fifo", () => {
  it.effect("hands items over in order, and a take waits while it is empty", () =>
    Effect.gen(function* () {
      const fifo = new Handoff.Fifo<number>()
      yield* fifo.offer(1)
      yield* fifo.offer(2)
      expect(yield* fifo.take).toBe(1)
      expect(yield* fifo.take).toBe(2)
      const waiting = yield* Effect.fork(fifo.take)
      yield* Effect.yieldNow()
      expect(waiting.unsafePoll()).toBeNull()
      yield* fifo.offer(3)
      yield* fifo.offer(4)
      expect(yield* Fiber.join(waiting)).toBe(3)
      expect(yield* fifo.take).toBe(4)
    }))
})

describe("Handoff.Outcome", () => {
  it.effect("wakes every waiter with the first value and keeps it", () =>
    Effect.gen(function* () {
      const outcome = new Handoff.Outcome<string>()
      const waiters = yield* Effect.forEach([1, 2], () => Effect.fork(outcome.await))
      yield* Effect.yieldNow()
      expect(waiters.every((waiter) => waiter.unsafePoll() === null)).toBe(true)
      yield* outcome.complete("first")
      yield* outcome.complete("second")
      expect(yield* Fiber.joinAll(waiters)).toEqual(["first", "first"])
      expect(yield* outcome.await).toBe("first")
    }))
})

describe("Handoff.Pool", () => {
  it.effect("runs effects concurrently, reuses a fiber that finished, and gives each effect its caller's services", () =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const pool = new Handoff.Pool(scope)
      const release = new Handoff.Outcome<void>()
      const seen: Array<{ readonly label: string; readonly fiber: string }> = []
      const job = (hold: boolean) =>
        Effect.gen(function* () {
          seen.push({ label: yield* Label, fiber: FiberId.threadName(yield* Effect.fiberId) })
          if (hold) yield* release.await
        })
      // Two held jobs at once: the second needs a second fiber, and starts while the first waits.
      yield* pool.run(job(true)).pipe(Effect.provideService(Label, "a"))
      yield* pool.run(job(true)).pipe(Effect.provideService(Label, "b"))
      yield* Effect.yieldNow()
      expect(seen.map((entry) => entry.label)).toEqual(["a", "b"])
      expect(seen[0]!.fiber).not.toBe(seen[1]!.fiber)
      yield* release.complete(undefined)
      yield* Effect.yieldNow()
      yield* Effect.yieldNow()
      // Both are idle again: the next jobs run on those fibers, not on new ones.
      yield* pool.run(job(false)).pipe(Effect.provideService(Label, "c"))
      yield* pool.run(job(false)).pipe(Effect.provideService(Label, "d"))
      yield* Effect.yieldNow()
      expect(seen.map((entry) => entry.label).sort()).toEqual(["a", "b", "c", "d"])
      expect(new Set(seen.map((entry) => entry.fiber)).size).toBe(2)
      yield* Scope.close(scope, Exit.void)
    }))

  it.effect("closing its scope interrupts what runs", () =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const pool = new Handoff.Pool(scope)
      let ended: "interrupted" | "finished" | undefined
      yield* pool.run(Effect.never.pipe(Effect.onExit((exit) => Effect.sync(() => void (ended = Exit.isInterrupted(exit) ? "interrupted" : "finished")))))
      yield* Effect.yieldNow()
      expect(ended).toBeUndefined()
      yield* Scope.close(scope, Exit.void)
      expect(ended).toBe("interrupted")
    }))
})

describe("Handoff.awaitWithin", () => {
  it.effect("returns when the latch opens, or at the timeout, whichever is first", () =>
    Effect.gen(function* () {
      const opened = Effect.unsafeMakeLatch(false)
      const early = yield* Effect.fork(Handoff.awaitWithin(opened, 1_000))
      yield* TestClock.adjust(10)
      expect(early.unsafePoll()).toBeNull()
      yield* opened.open
      yield* Fiber.join(early)

      const closed = Effect.unsafeMakeLatch(false)
      const late = yield* Effect.fork(Handoff.awaitWithin(closed, 1_000))
      yield* TestClock.adjust(999)
      expect(late.unsafePoll()).toBeNull()
      yield* TestClock.adjust(1)
      yield* Fiber.join(late)
    }))

  it.effect("an opened latch stops the timer: no sleep is left behind", () =>
    Effect.gen(function* () {
      const latch = Effect.unsafeMakeLatch(true)
      yield* Handoff.awaitWithin(latch, 60_000)
      yield* Effect.yieldNow()
      expect((yield* TestClock.sleeps()).length).toBe(0)
    }))
})
