/**
 * A simulation as a run report (`report/RunReport.ts`): the history the simulator recorded,
 * written out as events (client operations, faults applied and healed, epoch changes,
 * replication, inter-region messages), and the judge's findings (every lost write, conflicts,
 * the failover story with its reconciled RPO). It only reads what the run already kept, so it
 * costs nothing unless a report is written, and it is as deterministic as the run.
 */
import { Either } from "effect"
import * as Failover from "../replication/Failover.js"
import * as Tuple from "../replication/Tuple.js"
import type * as RunReport from "../report/RunReport.js"
import * as Checkers from "./Checkers.js"
import * as Fates from "./Fates.js"
import * as Faults from "./Faults.js"
import type { History, WriteRecord } from "./History.js"
import * as Oracle from "./Oracle.js"
import * as Report from "./Report.js"
import type { Simulation } from "./Run.js"
import { type Fault, type Scenario, nodesOf, targetNodes, topologyFor } from "./Scenario.js"
import * as TopologyFaults from "./TopologyFaults.js"

/** Builds the report of a simulation of `scenario`. */
export const make = (simulation: Simulation, scenario: Scenario, replay: string): RunReport.RunReport => {
  const { result } = simulation
  const rules: Oracle.Rules = { strategy: scenario.replication.conflictResolution, regionPriorities: scenario.replication.regionPriorities }
  const ruled = Checkers.reference(simulation.regions, rules)
  const verdicts: ReadonlyMap<string, Oracle.Verdict> = "verdicts" in ruled ? ruled.verdicts : new Map()
  const judged: Fates.Judged = { history: simulation.history, verdicts, strategy: rules.strategy, lostWithDisk: new Set(result.lostWithDisk), lostWithRegion: new Set(result.lostWithRemovedRegion) }
  const lostWrites = Fates.lostWrites(judged)
  const failover = story(simulation, scenario)
  return {
    scenario: result.scenario,
    seed: result.seed,
    replay,
    valid: result.violations.length === 0,
    checks: checks(simulation),
    regions: scenario.topology.regions.map((region) => ({ id: region.id, nodes: region.nodes })),
    durationMs: result.simulatedMs,
    facts: [
      ["trace hash", result.traceHash],
      ["simulated", `${result.simulatedMs} ms (${result.stopReason})`],
      ["converged", result.convergenceMs === undefined ? "no" : `${result.convergenceMs} ms after healing at ${result.healedAtMs} ms`],
      ["writes", `${result.writes.attempted} attempted, ${result.writes.acknowledged} acknowledged, ${result.writes.rejected} rejected, ${result.writes.failed} failed`],
      ["lost writes", String(lostWrites.length)],
      ["replication lag", `p50 ${result.lagMs.p50} ms, p99 ${result.lagMs.p99} ms, max ${result.lagMs.max} ms`],
      ["strategy", `${scenario.topology.strategy}, ${scenario.replication.conflictResolution}`]
    ],
    events: events(simulation, scenario),
    lostWrites,
    conflicts: conflicts(verdicts, simulation.history),
    failover,
    markdown: Report.markdown(result, replay, lostWrites),
    result: { ...result }
  }
}

/** Every check the scenario asked for, valid unless a violation names it (liveness and safety may be added by the run). */
const checks = (simulation: Simulation): ReadonlyArray<RunReport.Check> => {
  const { result } = simulation
  const names = [...new Set<string>([...result.checks, ...result.violations.map((violation) => violation.checker)])]
  return names.map((name) => {
    const violations = result.violations.filter((violation) => violation.checker === name).map(({ message, details }) => ({ message, details }))
    return { name, valid: violations.length === 0, violations }
  })
}

// ---------------------------------------------------------------------------------------------
// History

const events = (simulation: Simulation, scenario: Scenario): ReadonlyArray<RunReport.HistoryEvent> => {
  const all: Array<RunReport.HistoryEvent> = [
    ...simulation.history.writes.flatMap((write) => operationEvents(write, simulation.result.simulatedMs)),
    ...faultEvents(scenario, simulation.result),
    ...epochEvents(simulation.epochs),
    ...replicated(simulation.history),
    ...simulation.messages.map(
      (message): RunReport.MessageEvent => ({
        type: "message",
        atMs: message.sentAtMs,
        endedAtMs: message.endedAtMs,
        from: message.from.nodeId,
        to: message.to.nodeId,
        fromRegion: message.from.regionId,
        toRegion: message.to.regionId,
        label: message.label,
        fate: message.fate
      })
    )
  ]
  // A stable sort keeps each operation's invoke before its answer at equal times.
  return all.sort((left, right) => left.atMs - right.atMs)
}

const simPhaseOf = (write: WriteRecord): RunReport.OperationPhase => {
  switch (write.outcome) {
    case "acknowledged":
      return "ok"
    case "rejected":
      return "rejected"
    case "failed":
      // A client that stopped waiting does not know whether the write happened.
      return write.reason?.includes("outcome unknown") === true ? "unknown" : "failed"
    case "interrupted":
    case "pending":
      return "unknown"
  }
}

/**
 * A write as its invoke and answer events; `phaseOf` says how a runner's outcomes read as phases,
 * and `invokeNode` the node a runner knows the write was sent to (none in the simulator's own).
 */
export const operationEvents = (
  write: WriteRecord,
  endMs: number,
  phaseOf: (write: WriteRecord) => RunReport.OperationPhase = simPhaseOf,
  invokeNode?: string
): ReadonlyArray<RunReport.OperationEvent> => {
  const base = { type: "op" as const, op: write.id, region: write.clientRegion, tuples: write.operations.map((operation) => `${operation.op} ${Tuple.format(operation.tuple)}`) }
  const answer: RunReport.OperationEvent = {
    ...base,
    phase: phaseOf(write),
    atMs: write.endedAtMs ?? endMs,
    node: write.targetNode ?? write.entryNode,
    targetRegion: write.targetRegion,
    reason: write.outcome === "pending" ? "no answer before the run ended" : write.reason,
    changes: write.outcome === "acknowledged" ? write.changes.map(Oracle.idOf) : undefined,
    epoch: write.epoch
  }
  return [{ ...base, ...(invokeNode === undefined ? {} : { node: invokeNode }), phase: "invoke", atMs: write.startedAtMs }, answer]
}

/** Faults that last until something heals them; the rest act at one instant. */
const lasting = new Set(["isolate", "split", "one_way", "bridge", "crash", "pause", "store"])

/** Faults that are a heal themselves (they appear as the heal of what they end). */
const healing = new Set(["heal", "restart", "resume"])

const regionOfNode = (scenario: Scenario): ReadonlyMap<string, string> => new Map(nodesOf(scenario).map(({ regionId, nodeId }) => [nodeId, regionId]))

/** The regions and nodes a fault hits. */
export const hit = (scenario: Scenario, fault: Fault): { readonly regions: ReadonlyArray<string>; readonly nodes: ReadonlyArray<string> } => {
  switch (fault.kind) {
    case "isolate":
    case "store":
    case "promote":
      return { regions: [fault.region], nodes: [] }
    case "split":
    case "bridge":
      return { regions: fault.groups.flat(), nodes: fault.kind === "bridge" ? [fault.node] : [] }
    case "one_way":
      return { regions: [fault.from, fault.to], nodes: [] }
    case "heal":
      return { regions: [], nodes: [] }
    case "dns_outage":
      return { regions: scenario.topology.regions.map((region) => region.id), nodes: [] }
    case "topology":
      return { regions: TopologyFaults.isTargetChange(fault.change) ? [fault.change.from, fault.change.to] : [fault.change.region], nodes: [] }
    default: {
      const nodes = targetNodes(scenario, fault.target)
      const regionOf = regionOfNode(scenario)
      return { regions: [...new Set(nodes.map((node) => regionOf.get(node)!))], nodes }
    }
  }
}

/** The index of the fault that ends the store fault `faults[index]`: the next store fault of its region, or -1. */
export const storeEnder = (faults: ReadonlyArray<Fault>, index: number): number => {
  const fault = faults[index]!
  return faults.findIndex((candidate, at) => at > index && candidate.kind === "store" && fault.kind === "store" && candidate.region === fault.region)
}

/** When a store fault ends: the next store fault of its region, or the final heal. */
const storeEnd = (faults: ReadonlyArray<Fault>, index: number, healedAtMs: number): number => {
  const ender = storeEnder(faults, index)
  return ender < 0 ? healedAtMs : faults[ender]!.atMs
}

/**
 * The schedule as applied: each fault when it was applied (with the run's own description) and,
 * for a lasting one, when its heal, restart or resume ended it (or the final heal did).
 */
const faultEvents = (scenario: Scenario, result: Simulation["result"]): ReadonlyArray<RunReport.FaultEvent> => {
  const schedule = [...scenario.faults].sort((left, right) => left.atMs - right.atMs)
  const applied = result.faults.filter((fault) => fault.kind !== "heal_all")
  const found: Array<RunReport.FaultEvent> = []
  schedule.forEach((fault, index) => {
    if (fault.atMs > result.simulatedMs || healing.has(fault.kind)) return
    const { regions, nodes } = hit(scenario, fault)
    const detail = applied[index]?.kind === fault.kind ? applied[index].detail : fault.kind
    const event = { type: "fault" as const, fault: index + 1, kind: fault.kind, regions, nodes }
    found.push({ ...event, phase: "applied", atMs: fault.atMs, detail })
    if (!lasting.has(fault.kind) || (fault.kind === "store" && fault.failRate === 0 && fault.slowMs.max === 0)) return
    const endMs = fault.kind === "store" ? storeEnd(schedule, index, result.healedAtMs) : Faults.endOf(scenario, schedule, index, result.healedAtMs)
    if (endMs <= result.simulatedMs) found.push({ ...event, phase: "healed", atMs: endMs, detail: endMs === result.healedAtMs ? "heal all" : `${fault.kind} ended` })
  })
  return found
}

/** When each acknowledged change reached each other region. */
export const replicated = (history: History): ReadonlyArray<RunReport.ReplicatedEvent> => {
  const origin = new Map(history.writes.flatMap((write) => write.changes.map((change) => [Oracle.idOf(change), change.originRegion] as const)))
  const found: Array<RunReport.ReplicatedEvent> = []
  for (const [change, regions] of history.durableAt) {
    const acknowledgedAtMs = history.acknowledgedAt.get(change)
    if (acknowledgedAtMs === undefined) continue
    for (const [region, atMs] of regions) {
      if (region === origin.get(change)) continue
      found.push({ type: "replicated", atMs, change, region, lagMs: Math.round((atMs - acknowledgedAtMs) * 10) / 10 })
    }
  }
  return found
}

// ---------------------------------------------------------------------------------------------
// Findings

/** Tuples whose final state holds concurrent changes, by when the last of them was acknowledged. */
export const conflicts = (verdicts: ReadonlyMap<string, Oracle.Verdict>, history: History): ReadonlyArray<RunReport.Conflict> =>
  [...verdicts.values()]
    .filter((verdict) => verdict.maximal.length > 1)
    .map((verdict) => ({
      atMs: Math.max(0, ...verdict.maximal.map((change) => history.acknowledgedAt.get(Oracle.idOf(change)) ?? 0)),
      tuple: Tuple.format(verdict.tuple),
      changes: verdict.maximal.map(Oracle.idOf),
      winner: Oracle.idOf(verdict.winner)
    }))
    .sort((left, right) => left.atMs - right.atMs)

/** Every node's changes of its view of the primary, as the timeline draws them. */
export const epochEvents = (epochs: ReadonlyArray<Checkers.NodeEpochs>): ReadonlyArray<RunReport.EpochEvent> =>
  epochs.flatMap((node) =>
    node.history.map((change): RunReport.EpochEvent => ({ type: "epoch", atMs: change.atMs, node: node.nodeId, region: node.regionId, epoch: change.epoch, primary: change.primary, fenced: change.fenced, cause: change.cause }))
  )

/** The failover story from the timings and the epoch histories (PrimaryReplica only). */
const story = (simulation: Simulation, scenario: Scenario): RunReport.FailoverStory | undefined => {
  const timings = simulation.result.failover
  return timings === undefined ? undefined : storyOf(timings, simulation.epochs, scenario)
}

/** The failover story of a run of `scenario` from its timings, reconciled RPO included, and every node's epoch history. */
export const storyOf = (
  timings: Checkers.FailoverTimings & { readonly recoveryPoint: RunReport.RecoveryPoint | undefined },
  epochs: ReadonlyArray<Checkers.NodeEpochs>,
  scenario: Scenario
): RunReport.FailoverStory => {
  const lostAtMs = timings.lossAtMs
  const reactions = epochs.flatMap((node) => node.history.filter((change) => change.cause !== "initial" && lostAtMs !== undefined && change.atMs >= lostAtMs))
  const topology = topologyFor(scenario, scenario.topology.regions[0]!.id)
  return {
    originalPrimary: Either.isRight(topology) ? Failover.originalPrimary(topology.right) : undefined,
    lostAtMs,
    detectedAtMs: reactions.length === 0 ? undefined : Math.min(...reactions.map((change) => change.atMs)),
    promotedAtMs: timings.promotedAtMs,
    promotedRegion: timings.promotedRegion,
    firstWriteElsewhereAtMs: lostAtMs === undefined || timings.rtoMs === undefined ? undefined : lostAtMs + timings.rtoMs,
    handedBackAtMs: timings.promotedBackAtMs,
    rtoMs: timings.rtoMs,
    recoveryPoint: timings.recoveryPoint
  }
}

/** What a (swarm-drawn) scenario is made of, in a few words per dimension, for a swarm's summary page. */
export const dimensions = (scenario: Scenario): Readonly<Record<string, string>> => {
  const kinds = new Map<string, number>()
  for (const fault of scenario.faults) kinds.set(fault.kind, (kinds.get(fault.kind) ?? 0) + 1)
  const latency = scenario.network.remote.latency
  return {
    regions: scenario.topology.regions.map((region) => `${region.id} (${region.nodes.length})`).join(", "),
    strategy: `${scenario.topology.strategy}, ${scenario.replication.conflictResolution}, ${scenario.replication.clock} clock, ${scenario.store} store`,
    network: `${latency.kind} latency, loss ${scenario.network.remote.loss}, duplicate ${scenario.network.remote.duplicate}${scenario.network.links.length === 0 ? "" : `, ${scenario.network.links.length} link override(s)`}`,
    workload: `${scenario.workload.ratePerSec}/s for ${scenario.workload.durationMs} ms from ${scenario.workload.regions.join(", ")}`,
    faults: kinds.size === 0 ? "none" : [...kinds].map(([kind, count]) => `${kind} ×${count}`).join(", ")
  }
}
