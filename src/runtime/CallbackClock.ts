/**
 * The Effect clock `serve` runs on: Effect's own (wall and monotonic time, sleeps on host
 * timers) that can also call back after a delay without a fiber (`Handoff.Timer`), as the
 * simulator's clock does, so the shared code's bounded waits (`Handoff.Gate.awaitWithin`: the
 * heartbeater twice per round, the agent once) run the same way in both and fork no timer.
 */
import { Clock } from "effect"
import type * as Handoff from "../replication/Handoff.js"

/** Effect's default clock with a host-timer `schedule`. */
export const make = (): Clock.Clock & Handoff.Timer => {
  const base = Clock.make()
  return {
    [Clock.ClockTypeId]: Clock.ClockTypeId,
    unsafeCurrentTimeMillis: () => base.unsafeCurrentTimeMillis(),
    currentTimeMillis: base.currentTimeMillis,
    unsafeCurrentTimeNanos: () => base.unsafeCurrentTimeNanos(),
    currentTimeNanos: base.currentTimeNanos,
    sleep: (duration) => base.sleep(duration),
    schedule: (delayMs, callback) => {
      const timer = setTimeout(callback, Math.max(0, delayMs))
      return () => clearTimeout(timer)
    }
  }
}
