/**
 * The replication health value that `/healthz` serves under `details.replication`, with the
 * field names of the seed. It is a pure function of the feed's and agent's statistics, so the
 * runtime, the simulator and tests compute it the same way.
 *
 * Degraded means one of: a target has failed `maxRetries` times in a row (at least once when
 * `maxRetries` is 0), a target's measured lag exceeds `lagMsMax`, or this node's clock is off
 * by more than `max_offset_ms` from most of its peers (`ClockOffset`). The reason says which.
 */
import type * as Agent from "./Agent.js"
import type * as ChangeFeed from "./ChangeFeed.js"
import type * as ClockOffset from "./ClockOffset.js"

/** The `/healthz` replication block. */
export interface ReplicationHealth {
  readonly status: "healthy" | "degraded"
  readonly enabled: boolean
  readonly published: number
  readonly subscribers: number
  readonly dropped: number
  readonly message: string
  /** Why the status is degraded; absent when healthy. */
  readonly reason?: string
  /** This node's clock against its peers' (absent where nobody measured it). */
  readonly clock?: ClockOffset.Status
}

/** Thresholds for degraded health. */
export interface Thresholds {
  readonly maxRetries: number
  readonly lagMsMax: number
}

const problems = (agent: Agent.AgentStats, thresholds: Thresholds): ReadonlyArray<string> => {
  const failuresMax = Math.max(1, thresholds.maxRetries)
  return agent.targets.flatMap((target) => {
    const found: Array<string> = []
    if (target.consecutiveFailures >= failuresMax) {
      found.push(`target ${target.target} failing (${target.consecutiveFailures} consecutive failures${target.lastError === undefined ? "" : `: ${target.lastError}`})`)
    }
    if (target.lagMs > thresholds.lagMsMax) found.push(`target ${target.target} lag ${target.lagMs} ms exceeds ${thresholds.lagMsMax} ms`)
    return found
  })
}

const clockProblem = (clock: ClockOffset.Status): string =>
  `clock off by more than max_offset_ms ${clock.maxOffsetMs} ms from ${clock.beyond} of ${clock.peers} peers (median peer offset ${clock.medianOffsetMs} ms)`

/** Computes the health block from current statistics. */
export const compute = (options: {
  readonly enabled: boolean
  readonly feed: ChangeFeed.FeedStats
  readonly agent: Agent.AgentStats
  readonly thresholds: Thresholds
  readonly clock?: ClockOffset.Status
}): ReplicationHealth => {
  const { feed, clock } = options
  const message = `Published: ${feed.published}, Subscribers: ${feed.subscribers}, Dropped: ${feed.dropped}`
  const found = options.enabled ? [...problems(options.agent, options.thresholds), ...(clock?.degraded === true ? [clockProblem(clock)] : [])] : []
  const base = { enabled: options.enabled, published: feed.published, subscribers: feed.subscribers, dropped: feed.dropped, ...(clock === undefined ? {} : { clock }) }
  if (found.length === 0) return { status: "healthy", ...base, message }
  const reason = found.join("; ")
  return { status: "degraded", ...base, message: `${message}; ${reason}`, reason }
}
