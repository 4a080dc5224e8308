/**
 * Judging a chaos run with the simulator's own checkers (`sim/Checkers.ts`, whose rule is
 * `sim/Oracle.ts`): this file only adapts what the real run observed into their input. Each
 * node's state is its log as the Watch API streamed it (every tuple's frontier is the set of its
 * changes in that log that no other supersedes), except for `store_integrity`, which reads each
 * node's disk itself (`StoredState`: its tuple states, log and counters, which the API does not
 * show), and what a node *serves* for a tuple is its
 * answer to the public Check call, asked after convergence, so a node whose resolver is wrong
 * is caught by what it answers, not by what the judge computes for it. The client history
 * becomes the simulator's `History` (times in ms since the run started, `epochMs` the wall clock
 * then), so the timestamps, progress and acknowledged checks read it unchanged.
 */
import type * as Change from "../replication/Change.js"
import type * as Failover from "../replication/Failover.js"
import type * as Store from "../replication/Store.js"
import type * as Topology from "../replication/Topology.js"
import * as Tuple from "../replication/Tuple.js"
import * as Checkers from "../sim/Checkers.js"
import * as DrainCheck from "../sim/DrainCheck.js"
import * as Faults from "../sim/Faults.js"
import * as FaultWindows from "../sim/FaultWindows.js"
import { History } from "../sim/History.js"
import * as Oracle from "../sim/Oracle.js"
import type { RegionState } from "../sim/RegionState.js"
import { type CheckName, type Scenario, clockErrorAheadMs } from "../sim/Scenario.js"
import * as TopologyFaults from "../sim/TopologyFaults.js"
import type * as Nodes from "./Nodes.js"
import type * as Workload from "./Workload.js"

/** A node's state as the checkers read a disk: its log, and each tuple's unsuperseded changes in it. */
export const regionState = (regionId: string, nodeId: string, log: ReadonlyArray<Store.LogEntry>): RegionState => {
  const byTuple = new Map<string, { tuple: Tuple.Tuple; changes: Array<Change.Change> }>()
  for (const entry of log) {
    const key = Tuple.key(entry.change.tuple)
    const group = byTuple.get(key) ?? { tuple: entry.change.tuple, changes: [] }
    group.changes.push(entry.change)
    byTuple.set(key, group)
  }
  const tuples = new Map([...byTuple].map(([key, group]) => [key, { tuple: group.tuple, frontier: Oracle.maximal(group.changes) }]))
  return { regionId, replica: nodeId, tuples, log }
}

/**
 * Whether every node that may hold a tuple holds the same unsuperseded changes and answers the
 * same for it; the nodes of regions in `removed` (removed for good so far) do not count.
 */
export const converged = (nodes: ReadonlyArray<RegionState>, topology: Topology.Topology, rules: Oracle.Rules, removed: ReadonlySet<string> = new Set()): boolean => {
  const regions = nodes.filter((node) => !removed.has(node.regionId))
  return Checkers.convergence(regions, topology, rules).length === 0 && Checkers.divergence(regions, topology).tuples === 0
}

/** The client history as the simulator records it; `changesOf` finds an acknowledged write's changes. */
export const history = (
  ops: ReadonlyArray<Workload.Op>,
  regionOf: (nodeId: string) => string,
  changesOf: (op: Workload.Op) => ReadonlyArray<Change.Change>,
  durable: ReadonlyArray<{ readonly change: Change.Change; readonly regionId: string; readonly atMs: number }>
): History => {
  const recorded = new History()
  for (const op of ops) {
    if (op.invokedAtMs === undefined) continue
    const write = recorded.begin(op.region, op.operations, op.invokedAtMs)
    write.entryNode = op.node
    write.targetNode = op.target
    write.targetRegion = regionOf(op.target)
    if (op.endedAtMs === undefined) continue
    if (op.status === "acknowledged") {
      recorded.end(write, "acknowledged", op.endedAtMs, { changes: changesOf(op) })
      write.epoch = op.epoch
    } else if (op.status === "failed") recorded.end(write, "rejected", op.endedAtMs, { reason: op.reason ?? "" })
    // Like the simulator's client deadline: no answer is a failure whose outcome is unknown.
    else recorded.end(write, "failed", op.endedAtMs, { reason: `outcome unknown: ${op.reason ?? ""}` })
  }
  for (const entry of durable) recorded.durable(entry.change, entry.regionId, entry.atMs)
  return recorded
}

/** What the judge needs of a finished run. */
export interface Observed {
  readonly scenario: Scenario
  readonly topology: Topology.Topology
  readonly rules: Oracle.Rules
  readonly regions: ReadonlyArray<RegionState>
  /** Each node's disk as `StoredState` read it (its tuple states, log and recorded end), for `store_integrity`. */
  readonly stored: ReadonlyArray<RegionState>
  /** Per node, the answer of its Check call per tuple key. */
  readonly served: ReadonlyMap<string, ReadonlyMap<string, boolean>>
  readonly history: History
  readonly converged: boolean
  readonly healedAtMs: number
  /**
   * The scenario's faults as the harness applied them, in the scenario's order, then heal-all;
   * the fault windows are taken from these times rather than from the schedule.
   */
  readonly applied?: ReadonlyArray<{ readonly startedAtMs: number; readonly atMs: number }>
  /** When restarted processes were still starting (not serving): writes may fail then too. */
  readonly starting?: ReadonlyArray<FaultWindows.Window>
  readonly epochMs: number
  readonly lostWithDisk: ReadonlySet<string>
  /**
   * Acknowledged writes whose entries the taking node's feed never delivered, and whether that
   * node's disk was wiped after the acknowledgement (then they may have gone with it).
   */
  readonly unobserved: ReadonlyArray<{ readonly op: Workload.Op; readonly wipedAfter: boolean }>
  /** Graceful stops whose drains `serve` logged complete, with the peers' logs as their feeds showed them just after. */
  readonly drained?: ReadonlyArray<{ readonly stop: DrainCheck.DrainedStop; readonly peers: DrainCheck.Peers }>
  /** Each node's failover view as its serve processes logged it (`Nodes.epochChangeIn`). */
  readonly epochLogs?: ReadonlyArray<EpochLog>
}

/** A node's epoch changes as its serve processes logged them, times in ms since the run started. */
export interface EpochLog {
  readonly nodeId: string
  readonly regionId: string
  readonly changes: ReadonlyArray<Omit<Nodes.EpochLine, "atWallMs"> & { readonly atMs: number }>
  /** The incarnations that bound their listener: each logged its starting view before that. */
  readonly listened: ReadonlyArray<number>
  /** The node's latest incarnation (its serve process now, or the last one it had). */
  readonly latest: number
}

/**
 * Each node's view of the primary as its latest serve process last logged it; none when that
 * process has logged no view yet. The nodes of regions in `removed` are out of the deployment.
 */
export const finalViews = (logs: ReadonlyArray<EpochLog>, removed: ReadonlySet<string>): ReadonlyArray<Checkers.FinalView> =>
  logs
    .filter((log) => !removed.has(log.regionId))
    .map((log) => {
      const last = log.changes.filter((change) => change.incarnation === log.latest).at(-1)
      return { nodeId: log.nodeId, state: last === undefined ? undefined : { primary: last.primary, fenced: last.fenced, epoch: last.epoch } }
    })

/**
 * An acknowledged write must be in the log of the node that took it, unless that disk was
 * wiped since: the feed streams that log in full, so a write it never delivered is not there.
 * (The simulator knows a write's changes from its return value; a real client knows only the
 * node, revision and position, so this is the same guarantee asked of what the client saw.)
 */
export const unobservedAcknowledged = (unobserved: Observed["unobserved"]): ReadonlyArray<Checkers.Violation> => {
  const missing = unobserved.filter((entry) => !entry.wipedAfter)
  if (missing.length === 0) return []
  return [
    {
      checker: "acknowledged",
      message: `${missing.length} acknowledged write(s) have no entry in the log of the node that took them`,
      details: { missing: missing.length, examples: missing.slice(0, 5).map(({ op }) => ({ write: op.id, node: op.target, revision: op.revision, position: op.position })) }
    }
  ]
}

/**
 * The checks a real run cannot judge, with the reason: none now. `epochs` and `failover` are
 * judged in part, from the epoch each node says it took a write in (`judgeEpochs`,
 * `judgeFailover`), and `epochs` also from each node's view of the primary as serve logs it (`EpochLog`).
 */
export const notJudged: Readonly<Partial<Record<CheckName, string>>> = {}

/** Why a real run's report has no failover story (detection, promotion, RTO, RPO): only when the harness has no node's log of its views. */
export const failoverStoryUntold = "the harness read no node's log of its view of the primary in this run"

/** How a real run's failover times were taken (`failoverOf`), for its report. */
export const failoverTimesNote =
  "On real processes the times are the harness's: the loss when it began the fault, a promotion or hand-back when it read the node's log line, an acknowledgement when the answer came back, a change's arrival when the region's Watch feed showed it. So the time to detect and the RTO are upper bounds, and a write acknowledged by, or reaching, the new primary just around its promotion may be counted on the wrong side of it among the writes it lacked. A run whose failover story is checked ends once every node serves under the original primary again (or its budget ran out); any other run ends once its data has converged, which may come before the hand-back: then none is shown."

/**
 * What the `epochs` check can see on real processes: the epoch each acknowledged write was taken
 * in (`WriteResponse.epoch`), and under PrimaryReplica each node's view of the primary as its
 * serve processes logged every change of it (`EpochLog`). Judged: no epoch has writes from two
 * regions; no write sent after another region acknowledged one in a newer epoch is taken in an
 * older one; and, from the logged views, no epoch had two regions serving as its primary and no
 * hand-back came sooner than `promote_back_after_ms` after an outage of the original region that
 * its peers must have seen (the simulator's checks of each node's history; the outages with the
 * faults where the harness applied them, `handBackAsRun`). In a run that wipes a disk, an epoch
 * whose every record went with wiped disks may be begun again, and the harness does not know
 * which epochs a disk recorded: two regions serving one epoch are judged only between the same
 * two wipes (`forgettableAt`). Until December 6, 2026 the views were not judged at all in such
 * runs (a wipe is drawn in about a third of chaos runs). Not judged: writes sent before a newer epoch's
 * first write and committed after it; the views, when the harness lacks its times for a fault.
 */
export const epochsPartly =
  "judged from the epoch each write was acknowledged in and, under PrimaryReplica, from each node's view of the primary as serve logged every change of it (no epoch with two serving primaries, no hand-back sooner than promote_back_after_ms after an outage of the original region its peers must have seen); in runs that wipe a disk, two serving primaries of one epoch only between the same two wipes (an epoch forgotten with wiped disks may be begun again, and the harness does not know which epochs a disk recorded); not writes sent before a newer epoch's first write and committed after it (a real client cannot tell when the node committed)"

/** The causes of a change of view the README documents for the "epoch change" line. */
const epochCauses: ReadonlySet<string> = new Set(["initial", "promoted", "adopted", "reclaimed", "handed-back", "fenced", "confirmed", "advanced"])

/**
 * Each node's logged views as the checkers read a history, and what makes a log unreadable: an
 * incarnation that served without logging its starting view, or a cause the README does not
 * name. Either is a violation, so a change in what serve logs cannot leave this check blind.
 */
const epochHistories = (logs: ReadonlyArray<EpochLog>): { readonly nodes: ReadonlyArray<Checkers.NodeEpochs>; readonly unreadable: ReadonlyArray<Checkers.Violation> } => {
  const unreadable: Array<Checkers.Violation> = []
  const nodes = logs.map((log) => {
    const silent = log.listened.filter((incarnation) => !log.changes.some((change) => change.incarnation === incarnation && change.cause === "initial"))
    if (silent.length > 0) {
      unreadable.push({ checker: "epochs", message: `${log.nodeId} logged no starting view of the primary in incarnation(s) ${silent.join(", ")}: its epoch history cannot be judged`, details: { nodeId: log.nodeId, incarnations: silent } })
    }
    const unknown = log.changes.filter((change) => !epochCauses.has(change.cause))
    if (unknown.length > 0) {
      unreadable.push({ checker: "epochs", message: `${log.nodeId} logged epoch changes of a cause the README does not name: ${[...new Set(unknown.map((change) => change.cause))].join(", ")}`, details: { nodeId: log.nodeId } })
    }
    const history = log.changes.map(({ epoch, primary, fenced, cause, atMs }) => ({ epoch, primary, fenced, cause: cause as Failover.Cause, atMs }))
    return { nodeId: log.nodeId, regionId: log.regionId, history }
  })
  return { nodes, unreadable }
}

/** The harness's times for every fault of the scenario and the heal-all after them; undefined when any is missing. */
const appliedInFull = (scenario: Scenario, applied: Observed["applied"]): NonNullable<Observed["applied"]> | undefined =>
  applied !== undefined && applied.length === scenario.faults.length + 1 ? applied : undefined

/** The schedule with each fault moved to when the harness began applying it (`started`) or was done (else). */
const movedTo = (scenario: Scenario, applied: NonNullable<Observed["applied"]>, started: (fault: Scenario["faults"][number]) => boolean): Scenario => ({
  ...scenario,
  faults: scenario.faults.map((fault, index) => ({ ...fault, atMs: started(fault) ? applied[index]!.startedAtMs : applied[index]!.atMs }))
})

/**
 * What the hand-back check judges a real run by (`FaultWindows.handBackJudged`, the simulator's
 * rules), with the faults where the harness applied them, each moved so as never to find a
 * hand-back early that was not: the original region's outages as short as the run allows (what
 * stops a node moved to when it was done, what starts one again to when the harness began it,
 * the heal to its beginning), and the pauses of the other nodes, which lengthen how long an
 * outage must last to be seen, as long as it allows. A node's hand-back is when the harness read
 * its line, never before it happened.
 */
const handBackAsRun = (scenario: Scenario, original: string, given: Observed["applied"]) => {
  // Without the harness's times an outage could look longer than it was, and a hand-back after
  // one its peers never saw would be judged early: not judged then.
  const applied = appliedInFull(scenario, given)
  if (applied === undefined) return undefined
  const heal = applied[applied.length - 1]!
  const starting = (fault: Scenario["faults"][number]) => fault.kind === "restart" || fault.kind === "resume" || fault.kind === "wipe"
  const shortest = FaultWindows.handBackJudged(movedTo(scenario, applied, starting), original, heal.startedAtMs)
  const longest = FaultWindows.handBackJudged(movedTo(scenario, applied, (fault) => !starting(fault)), original, heal.atMs)
  if (shortest === undefined || longest === undefined) return undefined
  return { outages: shortest.outages, rules: { ...shortest.rules, visibleAfterMs: Math.max(shortest.rules.visibleAfterMs, longest.rules.visibleAfterMs) } }
}

/**
 * The epochs a run's wipes may have made forgotten, as `Checkers.epochs` counts an epoch's lives:
 * every epoch a node logged, at both ends of each wipe as the harness applied it. The simulator
 * forgets an epoch only when every disk that recorded it was wiped while no running node held it
 * (`forgetEpochs` in `sim/Run.ts`); the harness does not know which epochs each disk recorded, so
 * it takes every epoch as forgotten at every wipe. That never finds a split brain the simulator's
 * rule would not: two regions that began one epoch on either side of a wipe are not compared,
 * two that began it between the same two wipes still are. Undefined without the harness's times
 * for every fault: a wipe's place in the logged histories is then unknown.
 */
const forgettableAt = (scenario: Scenario, given: Observed["applied"], nodes: ReadonlyArray<Checkers.NodeEpochs>): ReadonlyArray<Checkers.ForgottenEpoch> | undefined => {
  const wipes = scenario.faults.flatMap((fault, index) => (fault.kind === "wipe" ? [index] : []))
  if (wipes.length === 0) return []
  const applied = appliedInFull(scenario, given)
  if (applied === undefined) return undefined
  const epochs = new Set(nodes.flatMap((node) => node.history.map((change) => change.epoch)))
  // Both ends: a primary's view logged just before the harness stopped the node is read after
  // the wipe began, and a view begun after the disk was gone may be read before the harness was done.
  const moments = wipes.flatMap((index) => [applied[index]!.startedAtMs, applied[index]!.atMs])
  return moments.flatMap((atMs) => [...epochs].map((epoch) => ({ epoch, atMs })))
}

const judgeEpochs = (observed: Observed): ReadonlyArray<Checkers.Violation> => {
  const { scenario, history } = observed
  const logs = observed.epochLogs
  // The writes are judged with no epoch forgotten, wipes or not, as before the views were read.
  const byWrites = Checkers.epochs(history.writes, [], "invoked")
  if (scenario.topology.strategy !== "PrimaryReplica" || logs === undefined) return byWrites
  const { nodes, unreadable } = epochHistories(logs)
  const forgotten = forgettableAt(scenario, observed.applied, nodes)
  const original = scenario.topology.regions.find((region) => region.primary)?.id
  const judged = original === undefined ? undefined : handBackAsRun(scenario, original, observed.applied)
  return [
    ...unreadable,
    ...byWrites,
    ...(forgotten === undefined ? [] : Checkers.epochs([], nodes, "invoked", forgotten)),
    ...(judged === undefined ? [] : Checkers.handBack(nodes, judged.outages, judged.rules))
  ]
}

/**
 * The failover story's timings on a real run (the simulator's `Checkers.failoverTimings`), from
 * each node's logged views and the client history, under PrimaryReplica. The loss is when the
 * harness began the scenario's first fault on the original primary's region (unknown without its
 * times for every fault); a promotion and a hand-back are when the harness read their lines; a
 * write was acknowledged when its answer came back, and a change reached a region when that
 * region's Watch feed showed it. Each of those is at or after the moment itself and the loss at or
 * before it, so the time to detect and the RTO are never understated. The writes the new primary
 * lacked at its promotion are counted from those times too: one acknowledged just before the
 * promotion, or that reached it just before, may fall on either side.
 */
export const failoverOf = (
  observed: Pick<Observed, "scenario" | "history" | "epochLogs" | "applied">
): { readonly timings: Checkers.FailoverTimings; readonly epochs: ReadonlyArray<Checkers.NodeEpochs> } | undefined => {
  const { scenario, applied } = observed
  if (scenario.topology.strategy !== "PrimaryReplica" || observed.epochLogs === undefined) return undefined
  const epochs = epochHistories(observed.epochLogs).nodes
  const original = scenario.topology.regions.find((region) => region.primary)?.id
  const first = original === undefined ? -1 : scenario.faults.findIndex((fault) => Faults.hitsRegion(fault, scenario, original))
  const known = appliedInFull(scenario, applied)
  const lossAtMs = first === -1 || known === undefined ? undefined : known[first]!.startedAtMs
  return { timings: Checkers.failoverTimings(original, lossAtMs, epochs, observed.history), epochs }
}

/** What the `drained` check can see on real processes (`DrainCheck`, from `ChaosRun.noteDrain`). */
export const drainedPartly =
  "judged for the writes acknowledged before the node was signalled (a real client cannot tell when the node began its drain), against its peers' logs as their feeds showed them and their disks held them a second after it exited (a Watch stream trails its store, and a peer that is stopping shows none)"

/** What the `failover` check can see on real processes (`judgeFailover`). */
export const failoverPartly =
  "judged from the writes: after the scenario's first fault on the original primary's region, another region acknowledged a write in an epoch newer than every one acknowledged before; and, as in the simulator, from each node's logged view at the end: every node serves under the original primary, unfenced (the harness waits for that within the budget after the data converged); not when each region was promoted"

/**
 * The failover story as the writes tell it, from the documented rules rather than the nodes'
 * own account: once the original primary's region is lost (the scenario's first fault on it),
 * a region must be promoted and take writes, so some other region acknowledges a write sent
 * after the loss, in an epoch newer than every epoch a write was acknowledged in before it. A
 * crash noticed too late (after the primary restarted) shows here as no such write.
 */
const judgeFailover = (scenario: Scenario, history: History): ReadonlyArray<Checkers.Violation> => {
  const original = scenario.topology.regions.find((region) => region.primary)?.id
  const lossAtMs = original === undefined ? undefined : scenario.faults.find((fault) => Faults.hitsRegion(fault, scenario, original))?.atMs
  if (original === undefined || lossAtMs === undefined) return []
  const acknowledged = history.writes.filter((write) => write.outcome === "acknowledged")
  const epochBefore = Math.max(0, ...acknowledged.filter((write) => (write.endedAtMs ?? Infinity) <= lossAtMs).map((write) => write.epoch ?? 0))
  const elsewhere = acknowledged.filter((write) => write.targetRegion !== original && write.startedAtMs >= lossAtMs)
  if (elsewhere.length === 0) return [{ checker: "failover", message: "no write was accepted by another region after the primary was lost", details: { lossAtMs } }]
  if (elsewhere.some((write) => (write.epoch ?? 0) > epochBefore)) return []
  return [{ checker: "failover", message: `no region was promoted after the primary was lost: every write another region acknowledged after it was in epoch ${epochBefore} or older`, details: { lossAtMs, epochBefore, writes: elsewhere.length } }]
}

/**
 * The story's end, the simulator's rule (`Checkers.servingAtEnd`): under PrimaryReplica every
 * node's latest serve process logged the original primary as its view, unfenced. The harness
 * waits for it (`ChaosRun.awaitServing`) before the run is judged.
 */
const judgeServingAtEnd = (observed: Observed): ReadonlyArray<Checkers.Violation> =>
  observed.epochLogs === undefined ? [] : notServingAtEnd(observed.scenario, observed.epochLogs, TopologyFaults.removedAtEnd(observed.scenario.topology, observed.scenario.faults))

/**
 * Under PrimaryReplica, the nodes (out of the regions in `removed`) whose latest serve process
 * has not logged the original primary as its view, unfenced (`Checkers.servingAtEnd`); none
 * under another strategy. The judge's rule, and what the harness waits for before judging.
 */
export const notServingAtEnd = (scenario: Scenario, epochLogs: ReadonlyArray<EpochLog>, removed: ReadonlySet<string>): ReadonlyArray<Checkers.Violation> => {
  const original = scenario.topology.regions.find((region) => region.primary)?.id
  if (scenario.topology.strategy !== "PrimaryReplica" || original === undefined) return []
  return Checkers.servingAtEnd(original, finalViews(epochLogs, removed))
}

/** Runs every check the scenario names (except those in `notJudged`); returns violations and the rule's verdicts. */
export const judge = (
  observed: Observed
): { readonly violations: ReadonlyArray<Checkers.Violation>; readonly verdicts: ReadonlyMap<string, Oracle.Verdict>; readonly lostWithRegion: ReadonlySet<string> } => {
  const { scenario, topology, rules, history } = observed
  const checks = new Set(scenario.checks)
  // A region removed for good is out of the deployment, as in the simulator (`Checkers.deployed`).
  const { regions, lostWithRegion } = Checkers.deployed(observed.regions, TopologyFaults.removedAtEnd(scenario.topology, scenario.faults))
  const violations: Array<Checkers.Violation> = []
  const answersDiffer = Checkers.convergence(regions, topology, rules)
  if (checks.has("liveness") && !observed.converged) {
    violations.push({
      checker: "liveness",
      message: `nodes did not converge within ${scenario.budgetMs} ms of real time (healed at ${Math.round(observed.healedAtMs)} ms)`,
      details: { healedAtMs: observed.healedAtMs, budgetMs: scenario.budgetMs, divergence: Checkers.divergence(regions, topology) }
    })
  }
  if (checks.has("convergence")) violations.push(...answersDiffer)
  const ruled = Checkers.reference(regions, rules)
  const verdicts: ReadonlyMap<string, Oracle.Verdict> = "verdicts" in ruled ? ruled.verdicts : new Map()
  if ("violation" in ruled) violations.push(ruled.violation)
  if (checks.has("safety")) {
    for (const region of regions) {
      const answers = observed.served.get(region.replica) ?? new Map<string, boolean>()
      // A tuple whose Check went unanswered (the node is already a liveness violation, "could not be
      // read") is taken to serve what its stored changes give by the rule: its frontier is still
      // judged, its answer is not. Read as absent, it made every such tuple a safety violation too
      // (chaos seed 58036, Checks past their deadline on a machine running eleven nodes).
      const served: Checkers.Served = (_, frontier) => answers.get(Tuple.key(frontier[0]!.tuple)) ?? Oracle.present(rules, frontier)
      violations.push(...(observed.converged ? Checkers.safety([region], verdicts, topology, served) : Checkers.servedAnswers([region], rules, served)))
    }
  }
  const gone = (change: Change.Change) => observed.lostWithDisk.has(Oracle.idOf(change)) || lostWithRegion.has(Oracle.idOf(change))
  const survivable = history.writes.map((write) => ({ ...write, changes: write.changes.filter((change) => !gone(change)) }))
  if (checks.has("acknowledged")) violations.push(...Checkers.acknowledged(survivable, regions), ...unobservedAcknowledged(observed.unobserved))
  if (checks.has("drained")) for (const { stop, peers } of observed.drained ?? []) violations.push(...DrainCheck.judge(stop, history.writes, peers))
  if (checks.has("residency")) violations.push(...Checkers.residency(observed.regions, topology))
  if (checks.has("unique_ids")) violations.push(...Checkers.uniqueIds(observed.regions))
  if (checks.has("store_integrity")) violations.push(...Checkers.storeIntegrity(observed.stored))
  if (checks.has("timestamps")) {
    const maxOffsetMs = (scenario.checkSettings?.maxClockOffsetMs ?? Checkers.defaultMaxOffsetMs) + clockErrorAheadMs(scenario)
    const changes = [...Checkers.unionHistory(regions), ...history.writes.flatMap((write) => write.changes)]
    violations.push(...Checkers.timestamps(changes, history, { maxOffsetMs, epochMs: observed.epochMs }))
  }
  if (checks.has("epochs")) violations.push(...judgeEpochs(observed))
  if (checks.has("failover")) violations.push(...judgeFailover(scenario, history), ...judgeServingAtEnd(observed))
  if (checks.has("progress")) {
    const windows = [...windowsAsRun(scenario, observed.applied, observed.healedAtMs), ...(observed.starting ?? [])]
    violations.push(...Checkers.progress(history.writes, { windows, minAvailability: scenario.checkSettings?.minAvailability, graceMs: Checkers.availabilityGraceMs }))
  }
  return { violations, verdicts, lostWithRegion }
}

/**
 * The fault windows of the run as it happened. The harness applies a fault when it gets to it,
 * late on a busy machine, and some take a while (a full disk is written first): in `chaos swarm`
 * seed 52001, nine nodes on two cores, a store fault scheduled at 2,820 ms was done at 9,131 ms
 * and heal-all at 12,631 ms instead of 5,450, and writes refused while the disks were full were
 * judged against the schedule's windows, outside every one. The windows here are those of the
 * schedule with each fault moved to when the harness began applying it, and those with each
 * moved to when it was done, together: a fault is in effect somewhere between the two.
 */
export const windowsAsRun = (
  scenario: Scenario,
  given: Observed["applied"],
  healedAtMs: number
): ReadonlyArray<FaultWindows.Window> => {
  const applied = appliedInFull(scenario, given)
  if (applied === undefined) return FaultWindows.windows(scenario, healedAtMs)
  const heal = applied[applied.length - 1]!
  return [...FaultWindows.windows(movedTo(scenario, applied, () => true), heal.startedAtMs), ...FaultWindows.windows(movedTo(scenario, applied, () => false), heal.atMs)]
}
