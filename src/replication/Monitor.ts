/**
 * The node's operational monitor: every `intervalMs` it measures each target's backlog and the
 * node's role and reports them to Metrics (so the lag gauge grows during an outage, instead of
 * keeping the last acknowledged batch's value), and it logs each change of state once: a
 * target's failure streak and its recovery, a peer region becoming unreachable and available
 * again. Every change of the primary view (promotion, adoption, hand-back, fencing,
 * confirmation) it counts in Metrics; the failover controller logs each as it happens
 * (`Failover.changeLine`), since a line a look later could be lost with a crash in between.
 * Retries are not logged one by one: a streak is one warning when it starts and one line when
 * it ends. (Bootstrap, drain and the operator's promote log themselves, once each.)
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

/** New entries of the failover history as counted events (the controller logs each as it happens: `Failover.changeLine`). */
export const historyEvents = (history: ReadonlyArray<Failover.EpochChange>, seen: number) => ({
  events: history.slice(seen).flatMap((change) => (change.cause === "initial" ? [] : [change.cause])),
  seen: history.length
})

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
    const history = settings.failover === undefined ? { events: [], seen: 0 } : historyEvents((yield* settings.failover).history, memory.historySeen)
    for (const event of history.events) metrics.failoverEvent(event)
    yield* Effect.forEach([...reachability.lines, ...streaks.lines], emit, { discard: true })
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
