/**
 * The node clock's HLC: a received timestamp from a clock far ahead is clamped to the max
 * offset instead of pulling this node's timestamps ahead with it.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as fc from "fast-check"
import * as Clock from "../../src/replication/Clock.js"

const at = (ms: number) => Effect.succeed(ms)

describe("Clock", () => {
  it.effect("a timestamp an hour ahead is clamped to the max offset, not adopted", () =>
    Effect.gen(function* () {
      const clock = yield* Clock.make({ mode: "hlc", physicalMs: at(1_000_000) })
      yield* clock.observe({ physicalMs: 1_000_000 + 3_600_000, logical: 7 })
      const next = yield* clock.now
      expect(next.physicalMs).toBe(1_000_000 + Clock.maxOffsetMsDefault)
    }))

  it.effect("a timestamp within the max offset is adopted as HLC receive says", () =>
    Effect.gen(function* () {
      const clock = yield* Clock.make({ mode: "hlc", physicalMs: at(1_000_000), maxOffsetMs: 500 })
      yield* clock.observe({ physicalMs: 1_000_200, logical: 3 })
      expect(yield* clock.now).toEqual({ physicalMs: 1_000_200, logical: 5 })
    }))

  const stamp = fc.record({ physicalMs: fc.integer({ min: 999_000, max: 1_002_000 }), logical: fc.integer({ min: 0, max: 5 }) })

  it("observeAllAt and stampsAt give exactly what observe and now, one at a time, give at the same physical time", () => {
    fc.assert(
      fc.property(fc.array(stamp, { maxLength: 20 }), fc.integer({ min: 0, max: 6 }), (remotes, count) =>
        Effect.runSync(
          Effect.gen(function* () {
            const one = yield* Clock.make({ mode: "hlc", physicalMs: at(1_000_000), maxOffsetMs: 500 })
            const batched = yield* Clock.make({ mode: "hlc", physicalMs: at(1_000_000), maxOffsetMs: 500 })
            for (const remote of remotes) yield* one.observe(remote)
            batched.observeAllAt(1_000_000, remotes)
            expect(batched.currentNow()).toEqual(one.currentNow())
            const single = []
            for (let index = 0; index < count; index++) single.push(yield* one.now)
            expect(batched.stampsAt(1_000_000, count)).toEqual(single)
            expect(batched.currentNow()).toEqual(one.currentNow())
          })
        )
      )
    )
  })
})
