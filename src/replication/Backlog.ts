/**
 * What each target of this node still waits for: the changes it has not acknowledged, how long
 * the oldest of them has waited here, and the lag as it stands now. `/healthz` and the metrics
 * read it, so an outage shows at once instead of only when the next batch is acknowledged (the
 * agent measures lag on acknowledgements, which stop when the target does).
 *
 * It reads the durable cursor and the log, never the agent's fibers, so it is the same under
 * any agent wiring. Time comes from the Clock service: the simulator can measure it too.
 */
import { Effect } from "effect"
import * as Agent from "./Agent.js"
import * as Clock from "./Clock.js"
import type { StoreError } from "./Errors.js"
import * as Store from "./Store.js"
import * as TopologyManager from "./TopologyManager.js"

/** One target's backlog. */
export interface TargetBacklog {
  readonly target: string
  /**
   * Changes past the target's acknowledged cursor that this node ships to it: counted exactly
   * over the first `scanEntriesMax` log entries past the cursor, and every entry beyond those
   * counted as one (a bound from above while a long backlog waits).
   */
  readonly unshippedChanges: number
  /** How long the oldest unshipped change has been durable here (this node's clock); 0 when none. */
  readonly oldestUnshippedAgeMs: number
  /**
   * The seed's lag now: the agent's last measured lag (0 once caught up), or, when larger, the
   * time since the oldest unshipped change was committed at its origin, which grows while the
   * target does not acknowledge anything.
   */
  readonly lagMs: number
  readonly consecutiveFailures: number
  readonly lastError: string | undefined
}

/** Log entries read past a cursor per measurement, per target: bounds the cost of a scrape during a long outage. */
export const scanEntriesMax = 1_000

/** How long a measurement may take before it is left out: a stalled store must not stall `/healthz` (its storage check reports it). */
export const measureTimeoutMs = 1_000

const measureTarget = (regionId: string, stats: Agent.TargetStats, logEnd: number, nowMs: number) =>
  Effect.gen(function* () {
    const store = yield* Store.Store
    const topology = yield* (yield* TopologyManager.TopologyManager).current
    const cursor = Math.max(stats.cursor, yield* store.getCursor(stats.target))
    const entries = cursor >= logEnd ? [] : yield* store.readLog(cursor + 1, Math.min(scanEntriesMax, logEnd - cursor))
    const owed = entries.filter((entry) => Agent.sendsTo(topology, regionId, stats.target, entry))
    const scannedTo = entries.length === 0 ? cursor : entries[entries.length - 1]!.position
    const oldestDurableMs = Math.min(...owed.map((entry) => entry.appliedAtMs))
    const oldestCommittedMs = Math.min(...owed.map((entry) => entry.change.committedAtMs))
    return {
      target: stats.target,
      unshippedChanges: owed.length + Math.max(0, logEnd - scannedTo),
      oldestUnshippedAgeMs: owed.length === 0 ? 0 : Math.max(0, nowMs - oldestDurableMs),
      lagMs: owed.length === 0 ? stats.lagMs : Math.max(stats.lagMs, nowMs - oldestCommittedMs),
      consecutiveFailures: stats.consecutiveFailures,
      lastError: stats.lastError
    } satisfies TargetBacklog
  })

/** Every target's backlog now, in the agent's target order; `measureBounded` gives up after `measureTimeoutMs`. */
export const measure = (
  regionId: string
): Effect.Effect<ReadonlyArray<TargetBacklog>, StoreError, Agent.Agent | Store.Store | Clock.Clock | TopologyManager.TopologyManager> =>
  Effect.gen(function* () {
    const stats = yield* (yield* Agent.Agent).stats
    const logEnd = yield* (yield* Store.Store).logEnd
    const nowMs = yield* (yield* Clock.Clock).physicalMs
    return yield* Effect.forEach(stats.targets, (target) => measureTarget(regionId, target, logEnd, nowMs))
  })

/** `measure`, or nothing when the store fails or takes longer than `measureTimeoutMs`. */
export const measureBounded = (regionId: string) => Effect.option(Effect.timeout(measure(regionId), measureTimeoutMs))
