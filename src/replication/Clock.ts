/**
 * The node clock: stamps local writes and measures time for lag.
 *
 * Physical time is read from Effect's `Clock` by default, so tests drive it with `TestClock`
 * and the simulator with its virtual clock; the simulator can also hand each node its own
 * skewed physical source. Nothing here reads the machine's clock directly.
 */
import { Clock as EffectClock, Context, Effect, Layer, Ref } from "effect"
import * as Timestamp from "./Timestamp.js"

/** The clock service of one node. */
export class Clock extends Context.Tag("inferadb/Clock")<
  Clock,
  {
    readonly mode: Timestamp.ClockMode
    /** This node's physical time in milliseconds (possibly skewed in simulation). */
    readonly physicalMs: Effect.Effect<number>
    /** A fresh timestamp for a local write; strictly increasing in HLC mode. */
    readonly now: Effect.Effect<Timestamp.Timestamp>
    /** Folds in a timestamp received from another region (a no-op in wall-clock mode). */
    readonly observe: (remote: Timestamp.Timestamp) => Effect.Effect<void>
  }
>() {}

/**
 * How far ahead of this node's physical clock a received timestamp may pull its HLC (like
 * CockroachDB's max offset). A timestamp further ahead is clamped to the bound, not adopted:
 * one node's clock jumping an hour ahead must not drag every region an hour ahead. Clamping
 * is safe here because causality is carried by version vectors, not by timestamps: a later
 * local write still supersedes the change it has seen, whatever their timestamps say.
 */
export const maxOffsetMsDefault = 500

/** Builds a clock over a physical time source. */
export const make = (options: {
  readonly mode: Timestamp.ClockMode
  readonly physicalMs?: Effect.Effect<number>
  readonly maxOffsetMs?: number
}): Effect.Effect<Clock["Type"]> =>
  Effect.gen(function* () {
    const physicalMs = options.physicalMs ?? EffectClock.currentTimeMillis
    const last = yield* Ref.make(Timestamp.zero)
    const wholeMs = Effect.map(physicalMs, (ms) => Math.max(0, Math.floor(ms)))
    if (options.mode === "wall") {
      return {
        mode: "wall" as const,
        physicalMs: wholeMs,
        now: Effect.map(wholeMs, (ms): Timestamp.Timestamp => ({ physicalMs: ms, logical: 0 })),
        observe: () => Effect.void
      }
    }
    return {
      mode: "hlc" as const,
      physicalMs: wholeMs,
      now: Effect.flatMap(wholeMs, (ms) => Ref.updateAndGet(last, (ts) => Timestamp.tick(ts, ms))),
      observe: (remote) =>
        Effect.flatMap(wholeMs, (ms) => {
          const boundMs = ms + (options.maxOffsetMs ?? maxOffsetMsDefault)
          const adopted = remote.physicalMs > boundMs ? { physicalMs: boundMs, logical: 0 } : remote
          return Ref.update(last, (ts) => Timestamp.receive(ts, adopted, ms))
        })
    }
  })

/**
 * Monotonic milliseconds for durations: leases, grant ages, timeouts, staleness, deadlines.
 * Read from Effect's nanosecond clock, which is monotonic in production (`process.hrtime`)
 * while its millisecond clock is the wall clock, which NTP can step. In the simulator each
 * node's monotonic clock drifts with the node but never jumps, and its wall clock does both,
 * so a duration measured on the wall clock is caught there.
 */
export const monotonicMs: Effect.Effect<number> = Effect.map(EffectClock.currentTimeNanos, (nanos) => Number(nanos / 1_000n) / 1_000)

/** A clock over Effect's clock (TestClock in tests, the simulator's clock in simulation). */
export const layer = (mode: Timestamp.ClockMode): Layer.Layer<Clock> => Layer.effect(Clock, make({ mode }))

/** A clock over an explicit physical time source, e.g. a skewed simulated clock. */
export const layerFrom = (options: {
  readonly mode: Timestamp.ClockMode
  readonly physicalMs: Effect.Effect<number>
}): Layer.Layer<Clock> => Layer.effect(Clock, make(options))
