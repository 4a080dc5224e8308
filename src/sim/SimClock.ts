/**
 * Time in the simulator, in two parts.
 *
 * `make` is an Effect `Clock` over the world's virtual time: reading it returns the world's
 * now, and `sleep` schedules a timed event in the world's queue (cancelled, i.e. removed,
 * when the sleeping fiber is interrupted). Every node fiber runs with it, so `Effect.sleep`,
 * timeouts and the TopologyManager's heartbeat bookkeeping all run on virtual time. It is
 * the same for every node, like a monotonic clock.
 *
 * `PhysicalClock` is a node's wall clock, the one the replication `Clock` service stamps
 * writes with: virtual now plus a fixed offset, a drift proportional to elapsed time, and
 * every jump (forward or backward) injected so far. It belongs to the node's machine, so it
 * survives crashes and restarts of the node.
 */
import { Clock as EffectClock, Duration, Effect } from "effect"
import type { World } from "./World.js"

/** Virtual milliseconds are shown to nodes as if the run started at this wall time. */
export const defaultEpochMs = 1_700_000_000_000

/** An Effect clock over the world's virtual time, whose sleeps are world events of `owner`. */
export const make = (world: World, owner: { readonly name: string; readonly alive: () => boolean }): EffectClock.Clock => {
  const currentTimeMillis = Effect.sync(() => world.nowMs)
  const nanos = () => BigInt(Math.round(world.nowMs * 1_000_000))
  return {
    [EffectClock.ClockTypeId]: EffectClock.ClockTypeId,
    unsafeCurrentTimeMillis: () => world.nowMs,
    currentTimeMillis,
    unsafeCurrentTimeNanos: nanos,
    currentTimeNanos: Effect.sync(nanos),
    sleep: (duration) => {
      const millis = Duration.toMillis(duration)
      if (!Number.isFinite(millis)) return Effect.never
      return Effect.async<void>((resume) => {
        const event = world.schedule(world.nowMs + Math.max(0, millis), "timer", owner.name, String(millis), () => {
          if (owner.alive()) resume(Effect.void)
        })
        return Effect.sync(() => world.cancel(event))
      })
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
