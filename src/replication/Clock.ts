/**
 * The node clock: stamps local writes and measures time for lag.
 *
 * Physical time is read from Effect's `Clock` by default, so tests drive it with `TestClock`
 * and the simulator with its virtual clock; the simulator can also hand each node its own
 * skewed physical source. Nothing here reads the machine's clock directly.
 */
import { Clock as EffectClock, Context, Effect, Layer } from "effect"
import * as ClockOffset from "./ClockOffset.js"
import * as Timestamp from "./Timestamp.js"

/** The clock service of one node. */
export class Clock extends Context.Tag("inferadb/Clock")<
  Clock,
  {
    readonly mode: Timestamp.ClockMode
    /** This node's physical time in milliseconds (possibly skewed in simulation). */
    readonly physicalMs: Effect.Effect<number>
    /**
     * `physicalMs` read at once, outside an Effect, where the clock's source allows it (a plain
     * reading, or Effect's clock taken when this clock was made); undefined over a source that
     * is itself an Effect.
     */
    readonly physicalNow: (() => number) | undefined
    /** A fresh timestamp for a local write; strictly increasing in HLC mode. */
    readonly now: Effect.Effect<Timestamp.Timestamp>
    /**
     * `count` fresh timestamps, in order, as `count` reads of `now` at physical time `ms` would
     * give. At once, with a physical reading taken by the caller: a write stamps its changes
     * inside a transaction body that runs in one step (`Store.transactionNow`).
     */
    readonly stampsAt: (ms: number, count: number) => ReadonlyArray<Timestamp.Timestamp>
    /** Folds in a timestamp received from another region (a no-op in wall-clock mode). */
    readonly observe: (remote: Timestamp.Timestamp) => Effect.Effect<void>
    /** Folds in a batch's timestamps, in order, at physical time `ms`, at once. */
    readonly observeAllAt: (ms: number, remotes: ReadonlyArray<Timestamp.Timestamp>) => void
    /** The HLC's last value (zero in wall-clock mode): what `Store` keeps as the high-water. */
    readonly currentNow: () => Timestamp.Timestamp
    /** Raises the HLC to at least `high` (a high-water kept from before a restart). */
    readonly restore: (high: Timestamp.Timestamp) => Effect.Effect<void>
    /** The bound on clock offsets this node assumes (`max_offset_ms`). */
    readonly maxOffsetMs: number
    /** Records a peer's offset estimate (from a heartbeat round trip), at once: the heartbeater takes its answers in callbacks. */
    readonly noteOffset: (peer: string, sample: ClockOffset.Sample) => void
    /** The latest offset estimate per peer. */
    readonly offsets: Effect.Effect<ReadonlyMap<string, ClockOffset.Sample>>
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

/** The HLC after receiving `remote` at physical time `ms`; a remote further ahead than `maxOffsetMs` counts as the bound. */
const receiveBounded = (ts: Timestamp.Timestamp, remote: Timestamp.Timestamp, ms: number, maxOffsetMs: number): Timestamp.Timestamp => {
  const boundMs = ms + maxOffsetMs
  return Timestamp.receive(ts, remote.physicalMs > boundMs ? { physicalMs: boundMs, logical: 0 } : remote, ms)
}

/** Builds a clock over a physical time source. */
export const make = (options: {
  readonly mode: Timestamp.ClockMode
  /** The physical time source: an effect, or a plain reading (one Effect operation per stamp instead of three: the simulator's). */
  readonly physicalMs?: Effect.Effect<number> | (() => number)
  readonly maxOffsetMs?: number
}): Effect.Effect<Clock["Type"]> =>
  Effect.gen(function* () {
    const effectClock = yield* Effect.clock
    const source = options.physicalMs ?? (() => effectClock.unsafeCurrentTimeMillis())
    const whole = (ms: number) => Math.max(0, Math.floor(ms))
    const physicalNow = typeof source === "function" ? () => whole(source()) : undefined
    const wholeMs = physicalNow !== undefined ? Effect.sync(physicalNow) : Effect.map(source as Effect.Effect<number>, whole)
    const maxOffsetMs = options.maxOffsetMs ?? maxOffsetMsDefault
    // Each method is one step at a physical reading: a single Effect operation where the source is
    // a plain reading (the simulator's, production's), two over an Effect source.
    const atPhysical = <A>(f: (ms: number) => A): Effect.Effect<A> => (physicalNow !== undefined ? Effect.sync(() => f(physicalNow())) : Effect.map(wholeMs, f))
    const samples = new Map<string, ClockOffset.Sample>()
    const offsets = {
      maxOffsetMs,
      physicalNow,
      noteOffset: (peer: string, sample: ClockOffset.Sample) => void samples.set(peer, sample),
      offsets: Effect.sync((): ReadonlyMap<string, ClockOffset.Sample> => new Map(samples))
    }
    if (options.mode === "wall") {
      return {
        mode: "wall" as const,
        physicalMs: wholeMs,
        now: atPhysical((ms): Timestamp.Timestamp => ({ physicalMs: ms, logical: 0 })),
        stampsAt: (ms, count) => Array.from({ length: count }, (): Timestamp.Timestamp => ({ physicalMs: ms, logical: 0 })),
        observe: () => Effect.void,
        observeAllAt: () => undefined,
        currentNow: () => Timestamp.zero,
        restore: () => Effect.void,
        ...offsets
      }
    }
    // The HLC's last value. A plain variable: every change to it is one synchronous step, so no
    // two fibers interleave inside one (a Ref would cost an Effect operation of its own per read
    // or change, on every write and every batch applied).
    let last = Timestamp.zero
    const tick = (ms: number): Timestamp.Timestamp => (last = Timestamp.tick(last, ms))
    return {
      mode: "hlc" as const,
      currentNow: () => last,
      restore: (high) => Effect.sync(() => void (last = Timestamp.order(high, last) > 0 ? high : last)),
      ...offsets,
      physicalMs: wholeMs,
      now: atPhysical(tick),
      stampsAt: (ms, count) => {
        const stamps: Array<Timestamp.Timestamp> = []
        for (let index = 0; index < count; index++) stamps.push(tick(ms))
        return stamps
      },
      observe: (remote) => atPhysical((ms) => void (last = receiveBounded(last, remote, ms, maxOffsetMs))),
      observeAllAt: (ms, remotes) => {
        for (const remote of remotes) last = receiveBounded(last, remote, ms, maxOffsetMs)
      }
    }
  })

/**
 * Monotonic milliseconds for durations: leases, grant ages, timeouts, staleness, deadlines.
 * Read from Effect's nanosecond clock, which is monotonic in production (`process.hrtime`)
 * while its millisecond clock is the wall clock, which NTP can step. In the simulator each
 * node's monotonic clock drifts with the node but never jumps, and its wall clock does both,
 * so a duration measured on the wall clock is caught there.
 */
export const monotonicMs: Effect.Effect<number> = Effect.clockWith((clock) => Effect.sync(() => monotonicMsOf(clock)))

/**
 * A reader of `monotonicMs` over the current fiber's clock, taken once: for a service that reads
 * the clock many times (the heartbeater at every answer, the topology manager at every edit), a
 * plain call instead of two Effect operations each time. A node's fibers all run on one clock.
 */
export const monotonicReader: Effect.Effect<() => number> = Effect.map(Effect.clock, (clock) => () => monotonicMsOf(clock))

/** `monotonicMs` read from `clock` at once. */
const monotonicMsOf = (clock: EffectClock.Clock): number => {
  // Read directly where the clock offers it (the simulator's, `MonotonicMillis`): the nanosecond
  // reading is a BigInt, and reading it through `currentTimeNanos` and a map took four Effect
  // operations where this takes two; reading the monotonic clock is among the most frequent
  // things a simulated node does (about 2% of the swarm's Effect operations).
  const direct = (clock as EffectClock.Clock & Partial<MonotonicMillis>).unsafeMonotonicMs
  return direct === undefined ? Number(clock.unsafeCurrentTimeNanos() / 1_000n) / 1_000 : direct()
}

/**
 * A clock that also gives `monotonicMs`'s reading as a number: exactly what
 * `Number(unsafeCurrentTimeNanos() / 1_000n) / 1_000` gives (whole microseconds), without the BigInt.
 */
export interface MonotonicMillis {
  readonly unsafeMonotonicMs: () => number
}

/** A clock over Effect's clock (TestClock in tests, the simulator's clock in simulation). */
export const layer = (mode: Timestamp.ClockMode, maxOffsetMs?: number): Layer.Layer<Clock> =>
  Layer.effect(Clock, make(maxOffsetMs === undefined ? { mode } : { mode, maxOffsetMs }))

/** A clock over an explicit physical time source, e.g. a skewed simulated clock. */
export const layerFrom = (options: {
  readonly mode: Timestamp.ClockMode
  readonly physicalMs: Effect.Effect<number> | (() => number)
  readonly maxOffsetMs?: number
}): Layer.Layer<Clock> => Layer.effect(Clock, make(options))
