/**
 * The latch-based hand-offs the agent and the heartbeater use instead of Deferreds, queues,
 * races and a fork per request: each must behave as the construct it replaces.
 */
import { describe, expect, it } from "@effect/vitest"
import { Clock, Context, Effect, Exit, Fiber, FiberId, Scope, TestClock } from "effect"
import * as Handoff from "../../src/replication/Handoff.js"
import * as CallbackClock from "../../src/runtime/CallbackClock.js"

class Label extends Context.Tag("test/Label")<Label, string>() {}

/** A queue with one consumer, whose take waits on a gate while it is empty. */
const gatedQueue = () => {
  const items: Array<number> = []
  const arrived = new Handoff.Gate()
  const offer = (item: number) => Effect.sync(() => {
    items.push(item)
    arrived.unsafeOpen()
  })
  const take: Effect.Effect<number> = Effect.suspend(() => {
    if (items.length > 0) return Effect.succeed(items.shift()!)
    arrived.unsafeClose()
    return Effect.zipRight(arrived.await, take)
  })
  return { offer, take }
}

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

describe("Handoff.repeat", () => {
  it.effect("runs its step again and again without a yield between rounds, waits where the step waits, and is preempted by the runtime when a step never waits", () =>
    Effect.gen(function* () {
      const fifo = gatedQueue()
      const seen: Array<number> = []
      const consumer = yield* Effect.fork(Handoff.repeat(Effect.map(fifo.take, (item) => void seen.push(item))))
      for (const item of [1, 2, 3]) yield* fifo.offer(item)
      yield* Effect.yieldNow()
      expect(seen).toEqual([1, 2, 3])
      // Each item handed over while it waits wakes it once; it waits again after each.
      yield* fifo.offer(4)
      yield* Effect.yieldNow()
      expect(seen).toEqual([1, 2, 3, 4])
      expect(consumer.unsafePoll()).toBeNull()
      yield* Fiber.interrupt(consumer)
      // A step that never waits: the fiber beside it still runs (the runtime preempts after a bounded number of operations).
      let rounds = 0
      const spinner = yield* Effect.fork(Handoff.repeat(Effect.sync(() => void rounds++)))
      yield* Effect.yieldNow()
      expect(rounds).toBeGreaterThan(0)
      yield* Fiber.interrupt(spinner)
    }))
})

describe("Handoff.Pool", () => {
  it.effect("runs effects concurrently, reuses a fiber that finished, and gives each effect the services it was made with", () =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const pool = yield* Handoff.Pool.make<Label>().pipe(Scope.extend(scope), Effect.provideService(Label, "the pool's"))
      const release = new Handoff.Outcome<void>()
      const seen: Array<{ readonly job: string; readonly label: string; readonly fiber: string }> = []
      const job = (name: string, hold: boolean) =>
        Effect.gen(function* () {
          seen.push({ job: name, label: yield* Label, fiber: FiberId.threadName(yield* Effect.fiberId) })
          if (hold) yield* release.await
        })
      // Two held jobs at once: the second needs a second fiber, and starts while the first waits.
      // A caller's own services do not reach the effect: it runs with the pool's.
      yield* pool.run(job("a", true)).pipe(Effect.provideService(Label, "the caller's"))
      yield* pool.run(job("b", true))
      yield* Effect.yieldNow()
      expect(seen.map((entry) => entry.job)).toEqual(["a", "b"])
      expect(seen[0]!.fiber).not.toBe(seen[1]!.fiber)
      yield* release.complete(undefined)
      yield* Effect.yieldNow()
      yield* Effect.yieldNow()
      // Both are idle again: the next jobs run on those fibers, not on new ones.
      yield* pool.run(job("c", false))
      yield* pool.run(job("d", false))
      // A hand-over resumes the idle fiber, which runs at a later scheduler turn.
      for (let turn = 0; turn < 10 && seen.length < 4; turn++) yield* Effect.yieldNow()
      expect(seen.map((entry) => entry.job).sort()).toEqual(["a", "b", "c", "d"])
      expect(new Set(seen.map((entry) => entry.fiber)).size).toBe(2)
      expect(new Set(seen.map((entry) => entry.label))).toEqual(new Set(["the pool's"]))
      yield* Scope.close(scope, Exit.void)
    }))

  it.effect("closing its scope interrupts what runs", () =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const pool = yield* Handoff.Pool.make().pipe(Scope.extend(scope))
      let ended: "interrupted" | "finished" | undefined
      yield* pool.run(Effect.never.pipe(Effect.onExit((exit) => Effect.sync(() => void (ended = Exit.isInterrupted(exit) ? "interrupted" : "finished")))))
      yield* Effect.yieldNow()
      expect(ended).toBeUndefined()
      yield* Scope.close(scope, Exit.void)
      expect(ended).toBe("interrupted")
    }))
})

/** A clock whose `schedule` callbacks run when the test says (`fire`), beside the test clock. */
const manualTimer = () => {
  const pending = new Map<number, { readonly delayMs: number; readonly callback: () => void }>()
  let next = 0
  // serve's clock, with the host timer replaced by one the test fires.
  const clock: Clock.Clock & Handoff.Timer = {
    ...CallbackClock.make(),
    schedule: (delayMs, callback) => {
      const id = next++
      pending.set(id, { delayMs, callback })
      return () => void pending.delete(id)
    }
  }
  const fire = () => {
    for (const [id, { callback }] of [...pending]) {
      pending.delete(id)
      callback()
    }
  }
  return { clock, pending, fire }
}

describe("Handoff.Lock", () => {
  it.effect("one holder at a time: others wait, and each takes it in turn once it is released", () =>
    Effect.gen(function* () {
      const lock = new Handoff.Lock()
      const order: Array<string> = []
      const holder = (name: string) =>
        lock.with(
          Effect.gen(function* () {
            order.push(`${name} in`)
            expect(lock.isHeld).toBe(true)
            yield* Effect.yieldNow()
            yield* Effect.yieldNow()
            order.push(`${name} out`)
          })
        )
      yield* Effect.all([holder("a"), holder("b"), holder("c")], { concurrency: "unbounded" })
      // Never two inside at once: every "in" is followed by its own "out".
      expect(order).toHaveLength(6)
      for (let index = 0; index < 6; index += 2) expect(order[index + 1]).toBe(order[index]!.replace(" in", " out"))
      expect(lock.isHeld).toBe(false)
    }))

  it.effect("released however the holder ends: success, failure, defect, interruption", () =>
    Effect.gen(function* () {
      const lock = new Handoff.Lock()
      expect(yield* lock.with(Effect.succeed(1))).toBe(1)
      expect(lock.isHeld).toBe(false)
      expect(Exit.isFailure(yield* Effect.exit(lock.with(Effect.fail("no"))))).toBe(true)
      expect(lock.isHeld).toBe(false)
      expect(Exit.isFailure(yield* Effect.exit(lock.with(Effect.die("boom"))))).toBe(true)
      expect(lock.isHeld).toBe(false)
      const holding = yield* Effect.fork(lock.with(Effect.never))
      yield* Effect.yieldNow()
      expect(lock.isHeld).toBe(true)
      yield* Fiber.interrupt(holding)
      expect(lock.isHeld).toBe(false)
    }))

  it.effect("a waiter interrupted while it waits holds nothing, and the next waiter gets the lock", () =>
    Effect.gen(function* () {
      const lock = new Handoff.Lock()
      const release = new Handoff.Gate()
      const holder = yield* Effect.fork(lock.with(release.await))
      yield* Effect.yieldNow()
      const interrupted = yield* Effect.fork(lock.with(Effect.succeed("interrupted one ran")))
      let ran = false
      const next = yield* Effect.fork(lock.with(Effect.sync(() => void (ran = true))))
      yield* Effect.yieldNow()
      yield* Fiber.interrupt(interrupted)
      expect(lock.isHeld).toBe(true)
      yield* release.open
      yield* Fiber.join(holder)
      yield* Fiber.join(next)
      expect(ran).toBe(true)
      expect(lock.isHeld).toBe(false)
      expect(Exit.isInterrupted(yield* Fiber.await(interrupted))).toBe(true)
    }))

  it.effect("the holder's effect runs interruptibly only as far as it allows: an uninterruptible one finishes", () =>
    Effect.gen(function* () {
      const lock = new Handoff.Lock()
      const gate = new Handoff.Gate()
      let finished = false
      const holder = yield* Effect.fork(lock.with(Effect.uninterruptible(Effect.zipRight(gate.await, Effect.sync(() => void (finished = true))))))
      yield* Effect.yieldNow()
      const interrupting = yield* Effect.fork(Fiber.interrupt(holder))
      yield* Effect.yieldNow()
      expect(lock.isHeld).toBe(true)
      yield* gate.open
      yield* Fiber.join(interrupting)
      expect(finished).toBe(true)
      expect(lock.isHeld).toBe(false)
    }))
})

describe("Handoff.Gate", () => {
  it.effect("a wait returns at once on an open gate; opening wakes every waiter; a closed gate makes waits wait", () =>
    Effect.gen(function* () {
      const gate = new Handoff.Gate()
      const first = yield* Effect.fork(gate.await)
      const second = yield* Effect.fork(gate.await)
      yield* Effect.yieldNow()
      expect(first.unsafePoll()).toBeNull()
      yield* gate.open
      yield* Fiber.join(first)
      yield* Fiber.join(second)
      yield* gate.await
      gate.unsafeClose()
      const third = yield* Effect.fork(gate.await)
      yield* Effect.yieldNow()
      expect(third.unsafePoll()).toBeNull()
      yield* Fiber.interrupt(third)
      expect(gate.waiting).toBe(0)
    }))

  it.effect("a fiber that waits again and again keeps nothing of its past waits: its clean-up is dropped at each wake", () =>
    Effect.gen(function* () {
      const gate = new Handoff.Gate()
      // The runtime's list of what runs when the fiber ends, where a wait registers its clean-up.
      const observers = Effect.withFiberRuntime<number>((fiber) => Effect.succeed((fiber as unknown as { readonly _observers: ReadonlyArray<unknown> })._observers.length))
      let rounds = 0
      const waiter = yield* Effect.fork(
        Effect.forever(
          Effect.gen(function* () {
            const before = yield* observers
            yield* gate.await
            gate.unsafeClose()
            expect(yield* observers).toBe(before)
            rounds++
          })
        )
      )
      for (let round = 1; round <= 5; round++) {
        yield* Effect.yieldNow()
        expect(gate.waiting).toBe(1)
        yield* gate.open
        yield* Effect.yieldNow()
        expect(rounds).toBe(round)
      }
      yield* Fiber.interrupt(waiter)
      expect(gate.waiting).toBe(0)
    }))

  it.effect("a gate opened while an interrupted waiter runs its finalizers wakes nobody, and the waiter is gone once it ended", () =>
    Effect.gen(function* () {
      const gate = new Handoff.Gate()
      let finalized = false
      const waiter = yield* Effect.fork(
        Effect.ensuring(
          gate.await,
          Effect.sync(() => {
            gate.unsafeOpen()
            finalized = true
          })
        )
      )
      yield* Effect.yieldNow()
      expect(gate.waiting).toBe(1)
      const exit = yield* Fiber.interrupt(waiter)
      expect(Exit.isInterrupted(exit)).toBe(true)
      expect(finalized).toBe(true)
      gate.unsafeClose()
      expect(gate.waiting).toBe(0)
    }))

  it.effect("with a callback timer: the gate or the timer ends the wait, whichever is first, and the other is dropped", () =>
    Effect.gen(function* () {
      const { clock, pending, fire } = manualTimer()
      const gate = new Handoff.Gate()
      const opened = yield* Effect.fork(Effect.withClock(gate.awaitWithin(1_000), clock))
      yield* Effect.yieldNow()
      expect(opened.unsafePoll()).toBeNull()
      expect([...pending.values()].map((entry) => entry.delayMs)).toEqual([1_000])
      yield* gate.open
      yield* Fiber.join(opened)
      expect(pending.size).toBe(0)

      gate.unsafeClose()
      const timedOut = yield* Effect.fork(Effect.withClock(gate.awaitWithin(500), clock))
      yield* Effect.yieldNow()
      expect(timedOut.unsafePoll()).toBeNull()
      fire()
      yield* Fiber.join(timedOut)
      // The timeout leaves the gate closed and forgets the waiter.
      expect(gate.isOpen).toBe(false)
      expect(gate.waiting).toBe(0)

      const interrupted = yield* Effect.fork(Effect.withClock(gate.awaitWithin(500), clock))
      yield* Effect.yieldNow()
      expect(gate.waiting).toBe(1)
      yield* Fiber.interrupt(interrupted)
      expect(gate.waiting).toBe(0)
      expect(pending.size).toBe(0)
    }))

  it.effect("without a callback timer (a test clock): returns when the gate opens, or at the timeout, and leaves the gate closed", () =>
    Effect.gen(function* () {
      const gate = new Handoff.Gate()
      const early = yield* Effect.fork(gate.awaitWithin(1_000))
      yield* TestClock.adjust(10)
      expect(early.unsafePoll()).toBeNull()
      yield* gate.open
      yield* Fiber.join(early)

      const closed = new Handoff.Gate()
      const late = yield* Effect.fork(closed.awaitWithin(1_000))
      yield* TestClock.adjust(999)
      expect(late.unsafePoll()).toBeNull()
      yield* TestClock.adjust(1)
      yield* Fiber.join(late)
      expect(closed.isOpen).toBe(false)
      expect(closed.waiting).toBe(0)
    }))
})

describe("Handoff.awaitAny", () => {
  it.effect("with a callback timer: any gate or the timer ends the wait, and every other gate and the timer are dropped", () =>
    Effect.gen(function* () {
      const { clock, pending, fire } = manualTimer()
      const gates = [new Handoff.Gate(), new Handoff.Gate(), new Handoff.Gate()]
      const second = yield* Effect.fork(Effect.withClock(Handoff.awaitAny(gates, 1_000), clock))
      yield* Effect.yieldNow()
      expect(second.unsafePoll()).toBeNull()
      expect(gates.map((gate) => gate.waiting)).toEqual([1, 1, 1])
      expect([...pending.values()].map((entry) => entry.delayMs)).toEqual([1_000])
      yield* gates[1]!.open
      yield* Fiber.join(second)
      expect(gates.map((gate) => gate.waiting)).toEqual([0, 0, 0])
      expect(pending.size).toBe(0)
      // An open gate ends the wait at once, and nothing is registered.
      yield* Effect.withClock(Handoff.awaitAny(gates, 1_000), clock)
      expect(pending.size).toBe(0)

      gates[1]!.unsafeClose()
      const timedOut = yield* Effect.fork(Effect.withClock(Handoff.awaitAny(gates, 500), clock))
      yield* Effect.yieldNow()
      fire()
      yield* Fiber.join(timedOut)
      expect(gates.map((gate) => gate.isOpen)).toEqual([false, false, false])
      expect(gates.map((gate) => gate.waiting)).toEqual([0, 0, 0])

      const interrupted = yield* Effect.fork(Effect.withClock(Handoff.awaitAny(gates, 500), clock))
      yield* Effect.yieldNow()
      yield* Fiber.interrupt(interrupted)
      expect(gates.map((gate) => gate.waiting)).toEqual([0, 0, 0])
      expect(pending.size).toBe(0)
    }))

  // The change feed's waiters leave its list this way, without an `Effect.ensuring` (`ChangeFeed.awaitBeyond`).
  it.effect("with a callback timer: onEnd runs once when the wait ends, by a gate, the timer, an interruption or an open gate at once; no timeout means no timer", () =>
    Effect.gen(function* () {
      const { clock, pending, fire } = manualTimer()
      const gates = [new Handoff.Gate(), new Handoff.Gate()]
      let ends = 0
      const onEnd = () => void ends++
      const byGate = yield* Effect.fork(Effect.withClock(Handoff.awaitAny(gates, 1_000, onEnd), clock))
      yield* Effect.yieldNow()
      expect(ends).toBe(0)
      yield* gates[0]!.open
      yield* Fiber.join(byGate)
      expect(ends).toBe(1)
      yield* Effect.withClock(Handoff.awaitAny(gates, 1_000, onEnd), clock)
      expect(ends).toBe(2)

      gates[0]!.unsafeClose()
      const byTimer = yield* Effect.fork(Effect.withClock(Handoff.awaitAny(gates, 500, onEnd), clock))
      yield* Effect.yieldNow()
      fire()
      yield* Fiber.join(byTimer)
      expect(ends).toBe(3)

      const interrupted = yield* Effect.fork(Effect.withClock(Handoff.awaitAny(gates, 500, onEnd), clock))
      yield* Effect.yieldNow()
      yield* Fiber.interrupt(interrupted)
      expect(ends).toBe(4)
      // A gate opening after the interruption ends nothing more.
      yield* gates[1]!.open
      expect(ends).toBe(4)

      gates[1]!.unsafeClose()
      const unbounded = yield* Effect.fork(Effect.withClock(Handoff.awaitAny(gates, undefined, onEnd), clock))
      yield* Effect.yieldNow()
      expect(pending.size).toBe(0)
      expect(gates.map((gate) => gate.waiting)).toEqual([1, 1])
      yield* gates[1]!.open
      yield* Fiber.join(unbounded)
      expect(ends).toBe(5)
      expect(gates.map((gate) => gate.waiting)).toEqual([0, 0])
    }))

  it.effect("without a callback timer: onEnd runs once however the wait ends, and no timeout waits for a gate alone", () =>
    Effect.gen(function* () {
      const gates = [new Handoff.Gate(), new Handoff.Gate()]
      let ends = 0
      const onEnd = () => void ends++
      const byTimeout = yield* Effect.fork(Handoff.awaitAny(gates, 100, onEnd))
      yield* TestClock.adjust(100)
      yield* Fiber.join(byTimeout)
      expect(ends).toBe(1)
      const interrupted = yield* Effect.fork(Handoff.awaitAny(gates, 100, onEnd))
      yield* Effect.yieldNow()
      yield* Fiber.interrupt(interrupted)
      expect(ends).toBe(2)
      const unbounded = yield* Effect.fork(Handoff.awaitAny(gates, undefined, onEnd))
      yield* TestClock.adjust(60_000)
      expect(unbounded.unsafePoll()).toBeNull()
      yield* gates[0]!.open
      yield* Fiber.join(unbounded)
      expect(ends).toBe(3)
    }))

  it.effect("without a callback timer (a test clock): any gate or the timeout ends the wait", () =>
    Effect.gen(function* () {
      const gates = [new Handoff.Gate(), new Handoff.Gate()]
      const early = yield* Effect.fork(Handoff.awaitAny(gates, 1_000))
      yield* TestClock.adjust(10)
      expect(early.unsafePoll()).toBeNull()
      yield* gates[1]!.open
      yield* Fiber.join(early)

      const closed = [new Handoff.Gate(), new Handoff.Gate()]
      const late = yield* Effect.fork(Handoff.awaitAny(closed, 1_000))
      yield* TestClock.adjust(999)
      expect(late.unsafePoll()).toBeNull()
      yield* TestClock.adjust(1)
      yield* Fiber.join(late)
      expect(closed.map((gate) => gate.waiting)).toEqual([0, 0])
    }))
})
