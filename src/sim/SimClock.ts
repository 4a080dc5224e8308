/**
 * Time in the simulator, in two parts.
 *
 * `make` is a node's Effect `Clock` over the world's virtual time: its milliseconds are the
 * node's wall clock, its nanoseconds the node's monotonic clock (drifting with the node), and
 * `sleep` schedules a timed event in the world's queue (cancelled, i.e. removed, when the
 * sleeping fiber is interrupted) after the duration has passed on that monotonic clock. Every
 * node fiber runs with it, so `Effect.sleep`, timeouts, leases and the TopologyManager's
 * heartbeat bookkeeping all run on the node's own clocks, as on a real machine.
 *
 * `PhysicalClock` is a node's wall clock, the one the replication `Clock` service stamps
 * writes with: virtual now plus a fixed offset, a drift proportional to elapsed time, and
 * every jump (forward or backward) injected so far. It belongs to the node's machine, so it
 * survives crashes and restarts of the node.
 */
import { Clock as EffectClock, Duration, Effect } from "effect"
import * as Handoff from "../replication/Handoff.js"
import type * as Clock from "../replication/Clock.js"
import type { World } from "./World.js"

/** Virtual milliseconds are shown to nodes as if the run started at this wall time. */
export const defaultEpochMs = 1_700_000_000_000

/**
 * A node's Effect clock, as its machine would give it: milliseconds are the node's wall clock
 * (`physical`: offset, drift and jumps, like `Date.now` under NTP), nanoseconds its monotonic
 * clock (drift only, never a jump, like `process.hrtime`), and sleeps last their duration on
 * that monotonic clock, so a node whose clock runs fast wakes early in real (virtual) time.
 * Without `physical` the node's clocks are the world's. Sleeps and the callbacks of `schedule`
 * (`Handoff.Timer`) are world events of `owner`; a callback of a node that is down never runs,
 * and one of a paused node runs when it resumes (`whenRunning`).
 */
export const make = (
  world: World,
  owner: { readonly name: string; readonly alive: () => boolean; readonly whenRunning?: (kind: "timer", callback: () => void) => void },
  physical?: PhysicalClock
): EffectClock.Clock & Handoff.Timer & Clock.MonotonicMillis => {
  const fire = owner.whenRunning ?? ((_kind: "timer", callback: () => void) => callback())
  const rate = 1 + (physical?.driftPpm ?? 0) / 1_000_000
  const wallMs = () => (physical === undefined ? world.nowMs : physical.at(world.nowMs))
  const wholeNanos = () => Math.round(world.nowMs * rate * 1_000_000)
  const nanos = () => BigInt(wholeNanos())
  // Whole microseconds, as `Clock.monotonicMs` makes of `nanos`: both are integers far below 2^53, so the division is exact.
  const unsafeMonotonicMs = () => Math.floor(wholeNanos() / 1_000) / 1_000
  const schedule = (delayMs: number, callback: () => void): (() => void) => {
    const event = world.schedule(world.nowMs + Math.max(0, delayMs) / rate, "timer", owner.name, String(delayMs), () => {
      if (owner.alive()) fire("timer", callback)
    })
    return () => world.cancel(event)
  }
  return {
    schedule,
    [EffectClock.ClockTypeId]: EffectClock.ClockTypeId,
    unsafeCurrentTimeMillis: wallMs,
    currentTimeMillis: Effect.sync(wallMs),
    unsafeCurrentTimeNanos: nanos,
    currentTimeNanos: Effect.sync(nanos),
    unsafeMonotonicMs,
    sleep: (duration) => {
      const millis = Duration.toMillis(duration)
      if (!Number.isFinite(millis)) return Handoff.parked
      return Handoff.waitFor((wake) => schedule(millis, () => wake(Effect.void)))
    }
  }
}

/** A node's skewed wall clock. */
export class PhysicalClock {
  /** Sum of every clock jump so far (negative for backward jumps). */
  jumpsMs = 0

  constructor(
    readonly offsetMs: number,
    /** Drift in parts per million of elapsed virtual time. */
    readonly driftPpm: number,
    readonly epochMs: number = defaultEpochMs
  ) {}

  /** The node's wall-clock reading at virtual time `nowMs`. */
  at(nowMs: number): number {
    return this.epochMs + nowMs + this.offsetMs + (this.driftPpm * nowMs) / 1_000_000 + this.jumpsMs
  }

  /** Jumps the clock by `deltaMs` (negative: backwards). */
  jump(deltaMs: number): void {
    this.jumpsMs += deltaMs
  }
}
