/**
 * The node's operational monitor: every `intervalMs` it measures each target's backlog and the
 * node's role and reports them to Metrics (so the lag gauge grows during an outage, instead of
 * keeping the last acknowledged batch's value), and it logs each change of state once: a
 * target's failure streak and its recovery, a peer region becoming unreachable and available
 * again, every change of the primary view (promotion, adoption, hand-back, fencing,
 * confirmation; also counted in Metrics). Retries are not logged one by one: a streak is one
 * warning when it starts and one line when it ends. (Bootstrap, drain and the operator's
 * promote log themselves, once each.)
 *
 * It only reads what the engine exposes (agent statistics, the store, the topology, the
 * failover controller's history), so it changes nothing it watches. Time and waiting come from
 * the Clock service and Effect's clock: the simulator could run it as it runs everything else.
 */
import { Duration, Effect, Option } from "effect"
import * as Agent from "./Agent.js"
import * as Backlog from "./Backlog.js"
import * as Clock from "./Clock.js"
import type * as Failover from "./Failover.js"
import * as Handoff from "./Handoff.js"
import * as Metrics from "./Metrics.js"
import type * as Primacy from "./Primacy.js"
import type * as Replica from "./Replica.js"
import * as Role from "./Role.js"
import type * as Store from "./Store.js"
import * as Topology from "./Topology.js"
import * as TopologyManager from "./TopologyManager.js"

/** Default of `intervalMs`: often enough for scrapes (15 s and up) and alerts, cheap enough for a busy node. */
export const intervalMsDefault = 1_000

/** Monitor settings. */
export interface Settings {
  readonly regionId: Topology.RegionId
  readonly intervalMs: number
  /** The failover controller's state, under PrimaryReplica: its history gives the events. */
  readonly failover?: Effect.Effect<Failover.State>
}

/** What the monitor remembers between looks, to log changes once. */
export interface Memory {
  /** Per target in a failure streak: when it was first seen and the agent's failure total before it. */
  readonly streaks: ReadonlyMap<string, Streak>
  /** Per target, the agent's failure total at the last look. */
  readonly failuresSeen: ReadonlyMap<string, number>
  /** Peer regions seen unreachable at the last look. */
  readonly unreachable: ReadonlySet<Topology.RegionId>
  /** How many entries of the failover history were already reported. */
  readonly historySeen: number
}

/** Nothing seen yet. */
export const initialMemory: Memory = { streaks: new Map(), failuresSeen: new Map(), unreachable: new Set(), historySeen: 0 }

/** One log line the monitor emits. */
export interface Line {
  readonly level: "Info" | "Warning"
  readonly message: string
}

/** A failure streak in progress: when it was first seen (monotonic ms) and the agent's failure total before it. */
export interface Streak {
  readonly sinceMs: number
  readonly failuresBefore: number
}

/**
 * Failure streaks that began or ended between two looks, as log lines, and the streaks now.
 * A streak that began and ended between two looks (the failure total grew, nothing fails now)
 * is one warning saying both.
 */
export const streakLines = (previous: Memory["streaks"], failuresSeen: Memory["failuresSeen"], agent: Agent.AgentStats, nowMs: number) => {
  const streaks = new Map<string, Streak>()
  const lines: Array<Line> = []
  for (const target of agent.targets) {
    const known = previous.get(target.target)
    const seen = failuresSeen.get(target.target) ?? 0
    if (target.consecutiveFailures > 0) {
      streaks.set(target.target, known ?? { sinceMs: nowMs, failuresBefore: Math.min(seen, target.failures - target.consecutiveFailures) })
      if (known === undefined) lines.push({ level: "Warning", message: `replication to ${target.target} is failing: ${target.lastError ?? "no answer"} (retrying with backoff; logged again when it recovers)` })
    } else if (known !== undefined) {
      lines.push({ level: "Info", message: `replication to ${target.target} recovered after ${target.failures - known.failuresBefore} failed attempts over ${Math.round(nowMs - known.sinceMs)} ms` })
    } else if (target.failures > seen) {
      lines.push({ level: "Warning", message: `replication to ${target.target} failed ${target.failures - seen} time(s) since the last look and has recovered` })
    }
  }
  return { streaks, lines, failuresSeen: new Map(agent.targets.map((target) => [target.target, target.failures])) }
}

/** Peer regions that became unreachable or available again, as log lines. */
export const reachabilityLines = (previous: ReadonlySet<Topology.RegionId>, topology: Topology.Topology, regionId: Topology.RegionId) => {
  const unreachable = new Set(topology.regions.filter((region) => region.id !== regionId && !Topology.isRegionAvailable(topology, region.id)).map((region) => region.id))
  const lines: Array<Line> = [
    ...[...unreachable].filter((region) => !previous.has(region)).map((region): Line => ({ level: "Warning", message: `region ${region} is unreachable: no node of it answered heartbeats in time` })),
    ...[...previous].filter((region) => !unreachable.has(region)).map((region): Line => ({ level: "Info", message: `region ${region} is available again` }))
  ]
  return { unreachable, lines }
}

const eventLevel = (cause: Failover.Cause): Line["level"] => (cause === "promoted" || cause === "fenced" ? "Warning" : "Info")

const describeChange = (change: Failover.EpochChange): string => {
  switch (change.cause) {
    case "promoted":
      return `promoted: this region is primary of epoch ${change.epoch}`
    case "adopted":
      return `adopted epoch ${change.epoch}: ${change.primary ?? "no region"} is primary`
    case "reclaimed":
      return `reclaimed epoch ${change.epoch}: peers name this region primary of it and its record was lost before it replicated`
    case "handed-back":
      return `handed back: ${change.primary ?? "no region"} is primary of epoch ${change.epoch}`
    case "fenced":
      return `fenced: this region stops taking writes in epoch ${change.epoch} (it lost contact with at least half of the regions, or restarted and may have missed a failover)`
    case "confirmed":
      return `unfenced: this region takes writes again as primary of epoch ${change.epoch}`
    case "initial":
      return `primary view at start: epoch ${change.epoch}, ${change.primary ?? "no region"} primary${change.fenced ? " (this region fenced)" : ""}`
  }
}

/** New entries of the failover history as log lines and counted events. */
export const historyLines = (history: ReadonlyArray<Failover.EpochChange>, seen: number) => {
  const fresh = history.slice(seen)
  return {
    lines: fresh.map((change): Line => ({ level: change.cause === "initial" ? "Info" : eventLevel(change.cause), message: describeChange(change) })),
    events: fresh.flatMap((change) => (change.cause === "initial" ? [] : [change.cause])),
    seen: history.length
  }
}

const emit = (line: Line) => (line.level === "Warning" ? Effect.logWarning(line.message) : Effect.logInfo(line.message))

/** One look: report gauges, log and count what changed. Returns what to remember. */
export const look = (settings: Settings, memory: Memory) =>
  Effect.gen(function* () {
    const metrics = yield* Metrics.Metrics
    const agentStats = yield* (yield* Agent.Agent).stats
    const topology = yield* (yield* TopologyManager.TopologyManager).current
    const nowMs = yield* Clock.monotonicMs
    const backlog = yield* Backlog.measureBounded(settings.regionId)
    for (const target of Option.getOrElse(backlog, () => [])) {
      metrics.backlog(target.target, target.unshippedChanges, target.oldestUnshippedAgeMs)
      metrics.lag(target.target, Math.round(target.lagMs))
    }
    const role = yield* Role.current(settings.regionId)
    metrics.role(role)
    const streaks = streakLines(memory.streaks, memory.failuresSeen, agentStats, nowMs)
    const reachability = reachabilityLines(memory.unreachable, topology, settings.regionId)
    const history = settings.failover === undefined ? { lines: [], events: [], seen: 0 } : historyLines((yield* settings.failover).history, memory.historySeen)
    for (const event of history.events) metrics.failoverEvent(event)
    yield* Effect.forEach([...history.lines, ...reachability.lines, ...streaks.lines], emit, { discard: true })
    return { streaks: streaks.streaks, failuresSeen: streaks.failuresSeen, unreachable: reachability.unreachable, historySeen: history.seen } satisfies Memory
  })

/** The services the monitor reads and reports to. */
export type Requirements = Metrics.Metrics | Agent.Agent | Store.Store | Clock.Clock | TopologyManager.TopologyManager | Replica.Replica | Primacy.Primacy

/** Runs until interrupted: one look every `intervalMs`, the first at once. Fork it next to the engine. */
export const run = (settings: Settings): Effect.Effect<never, never, Requirements> =>
  Effect.iterate(initialMemory, {
    while: () => true,
    body: (memory) => Effect.zipLeft(look(settings, memory), Effect.sleep(Duration.millis(settings.intervalMs)))
  }).pipe(
    Effect.zipRight(Handoff.parked),
    Effect.annotateLogs({ component: "monitor" })
  )
