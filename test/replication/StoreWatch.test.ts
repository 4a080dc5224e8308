/**
 * The store watchdog over a store whose progress the test sets: it ends a node whose store has
 * transactions pending and ends none for `stallMs`, and never one that is idle, busy, or was
 * paused (two looks far apart). The whole node under a stalled store is `scenarios/store-stall.yaml`
 * (`test/sim/StoreStall.test.ts`).
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Fiber, TestClock } from "effect"
import * as Store from "../../src/replication/Store.js"
import * as StoreWatch from "../../src/replication/StoreWatch.js"

const settings: StoreWatch.Settings = { stallMs: 5_000, checkEveryMs: 1_000 }

/** A Store of which the watchdog reads only `progress`, set by the test. */
const storeWith = (progress: { pending: number; ended: number }): Store.Store["Type"] =>
  ({ progress: Effect.sync(() => ({ ...progress })), describeCommits: Effect.succeed("1 commit(s) handed over and not durable") }) as unknown as Store.Store["Type"]

/** Moves the test clock one look at a time, `looks` times, changing the progress before each with `step`. */
const looks = (count: number, step: (look: number) => void = () => {}) =>
  Effect.gen(function* () {
    for (let look = 1; look <= count; look++) {
      step(look)
      yield* TestClock.adjust(settings.checkEveryMs)
    }
  })

const watched = (progress: { pending: number; ended: number }) => Effect.fork(Effect.provideService(StoreWatch.run(settings), Store.Store, storeWith(progress)))

describe("StoreWatch", () => {
  it.effect("transactions pending and none ended for stallMs ends the node, saying so", () =>
    Effect.gen(function* () {
      const progress = { pending: 3, ended: 10 }
      const fiber = yield* watched(progress)
      yield* looks(4)
      expect(fiber.unsafePoll()).toBeNull()
      yield* looks(2)
      const exit = yield* Fiber.await(fiber)
      expect(Exit.isFailure(exit)).toBe(true)
      const failure = Exit.isFailure(exit) ? exit.cause : undefined
      expect(String(failure)).toMatch(/ended no transaction for 5000 ms with 3 pending .* \[1 commit\(s\) handed over and not durable\]: ending this node/)
    })
  )

  it.effect("a store that ends transactions, however many wait, or waits idle, is never stalled", () =>
    Effect.gen(function* () {
      const progress = { pending: 50, ended: 0 }
      const fiber = yield* watched(progress)
      // Busy: one transaction ends per look while 50 wait.
      yield* looks(20, () => void progress.ended++)
      // Idle: nothing pending, nothing ending.
      progress.pending = 0
      yield* looks(20)
      expect(fiber.unsafePoll()).toBeNull()
      // Pending again from here: stalled stallMs after the last look that saw it idle, not
      // counted from the last transaction's end long before.
      progress.pending = 1
      yield* looks(4)
      expect(fiber.unsafePoll()).toBeNull()
      yield* looks(1)
      expect(Exit.isFailure(yield* Fiber.await(fiber))).toBe(true)
    })
  )

  it("two looks far apart (a paused process) start the count again: a pause is not a stall", () => {
    const stuck = { pending: 1, ended: 7 }
    const watch: StoreWatch.Watch = { movingAtMs: 0, lookedAtMs: 0, ended: 7 }
    expect([1_000, 2_000, 3_000].map((atMs) => StoreWatch.look(watch, settings, atMs, stuck))).toEqual([1_000, 2_000, 3_000])
    // Resumed 30 s later: the look after the pause starts the count again.
    expect(StoreWatch.look(watch, settings, 33_000, stuck)).toBe(0)
    expect([34_000, 35_000, 38_000].map((atMs) => StoreWatch.look(watch, settings, atMs, stuck))).toEqual([1_000, 2_000, 0])
    // A look just within twice the interval still counts.
    expect(StoreWatch.look(watch, settings, 40_000, stuck)).toBe(2_000)
  })
})
