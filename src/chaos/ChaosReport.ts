/**
 * A chaos run on real processes as a run report (`report/RunReport.ts`), so `chaos run` writes
 * the same folder as `sim run` (`report/RunFolder.ts`): result.json, history.jsonl, report.md
 * and report.html. It reads only what the run kept: the client history as the judge saw it
 * (each write invoked and answered, with times and the node that took it), the faults with the
 * harness's times of application, when each change reached each region (its arrival on that
 * region's Watch feed, an upper bound), the rule's verdicts over the final state, and the
 * summary the run printed, and under PrimaryReplica each node's views of the primary as serve
 * logged them, from which it tells the failover story with the simulator's code (`failoverTold`).
 * What a real run cannot see (messages between regions) is named as not recorded rather than
 * drawn empty; the chaos-specific facts (clocks
 * observed, faults not applied, checks not judged, each node's incarnations and exits) stay in
 * result.json under `run`.
 */
import type * as RunReport from "../report/RunReport.js"
import * as Fates from "../sim/Fates.js"
import * as Faults from "../sim/Faults.js"
import type { History, WriteRecord } from "../sim/History.js"
import * as Oracle from "../sim/Oracle.js"
import * as RecoveryPoint from "../sim/RecoveryPoint.js"
import { type Fault, type Scenario } from "../sim/Scenario.js"
import * as SimReport from "../sim/SimReport.js"
import * as Judge from "./Judge.js"
import type { AppliedFault, ChaosResult } from "./Run.js"

/** What a finished chaos run hands over. */
export interface Finished {
  readonly scenario: Scenario
  readonly replay: string
  readonly result: ChaosResult
  /** The client history as judged (`Judge.history`), with durability per region from the feeds. */
  readonly history: History
  readonly verdicts: ReadonlyMap<string, Oracle.Verdict>
  /** The run's length in the harness's milliseconds (after the final read). */
  readonly durationMs: number
  /** Under PrimaryReplica, each node's logged views and the failover timings from them (`Judge.failoverOf`). */
  readonly failover?: ReturnType<typeof Judge.failoverOf>
}

/** Why a real run has no messages between regions. */
export const messagesUnrecorded = "the harness sees what clients and each node's Watch feed answer, not the messages between regions"

/** Builds the report of a finished chaos run. */
export const make = (finished: Finished): RunReport.RunReport => {
  const { scenario, result, history, verdicts } = finished
  const strategy = scenario.replication.conflictResolution
  const judged: Fates.Judged = { history, verdicts, strategy, lostWithDisk: new Set(result.lostWithDisk), lostWithRegion: new Set(result.lostWithRemovedRegion) }
  const lostWrites = Fates.lostWrites(judged)
  const faults = faultEvents(scenario, result.faults)
  const told = failoverTold(finished, judged)
  const events: Array<RunReport.HistoryEvent> = [
    ...history.writes.flatMap((write) => SimReport.operationEvents(write, finished.durationMs, phaseOf, write.entryNode)),
    ...faults,
    ...SimReport.epochEvents(finished.failover?.epochs ?? []),
    ...SimReport.replicated(history).map((event) => ({ ...event, lagMs: Math.max(0, event.lagMs) }))
  ]
  const durationMs = Math.max(finished.durationMs, ...events.map((event) => event.atMs))
  const untold = scenario.topology.strategy === "PrimaryReplica" && told === undefined
  return {
    scenario: result.scenario,
    seed: result.seed,
    replay: finished.replay,
    valid: result.passed,
    checks: checks(scenario, result),
    regions: scenario.topology.regions.map((region) => ({ id: region.id, nodes: region.nodes })),
    durationMs,
    facts: facts(scenario, result, lostWrites.length),
    // A stable sort keeps each operation's invoke before its answer at equal times.
    events: events.sort((left, right) => left.atMs - right.atMs),
    lostWrites,
    conflicts: SimReport.conflicts(verdicts, history),
    failover: told?.story,
    unrecorded: {
      messages: messagesUnrecorded,
      ...(untold ? { epochs: Judge.failoverStoryUntold, failover: `the failover story (loss, detection, promotion, RTO, RPO) is not told: ${Judge.failoverStoryUntold}` } : {})
    },
    markdown: markdown(finished, lostWrites, told),
    result: { ...result, ...(told === undefined ? {} : { failover: told.timings }) }
  }
}

/** The failover story of a real run, its RPO reconciled with the final state as the simulator's is (`RecoveryPoint`). */
const failoverTold = (finished: Finished, judged: Fates.Judged) => {
  if (finished.failover === undefined) return undefined
  const { timings, epochs } = finished.failover
  const recoveryPoint = timings.promotedRegion === undefined || timings.promotedAtMs === undefined ? undefined : RecoveryPoint.reconcile(judged, timings.promotedRegion, timings.promotedAtMs)
  const reconciled = { ...timings, recoveryPoint }
  return { timings: reconciled, story: { ...SimReport.storyOf(reconciled, epochs, finished.scenario), note: Judge.failoverTimesNote } }
}

/** The report's Failover section in markdown: the story's times, each write the new primary lacked, and every epoch. */
const failoverLines = (told: ReturnType<typeof failoverTold>): ReadonlyArray<string> => {
  if (told === undefined) return []
  const { timings, story } = told
  const point = timings.recoveryPoint
  return [
    "",
    "## Failover",
    "",
    story.note ?? "",
    "",
    "| primary lost | detected | promoted | first write elsewhere (RTO) | handed back | RPO: writes finally lost | RPO window | lacked at promotion |",
    "|---|---|---|---|---|---|---|---|",
    `| ${ms(story.lostAtMs)} | ${ms(story.detectedAtMs)} | ${story.promotedRegion === undefined ? "–" : `${cell(story.promotedRegion)} at ${ms(story.promotedAtMs)}`} | ${story.rtoMs === undefined ? "–" : `${ms(story.firstWriteElsewhereAtMs)} (RTO ${ms(story.rtoMs)})`} | ${ms(story.handedBackAtMs)} | ${point?.lostWrites ?? "–"} | ${ms(point?.lostWindowMs)} | ${point === undefined ? "–" : `${point.lackedWrites} write(s) over ${ms(point.lackedWindowMs ?? 0)}`} |`,
    ...(point === undefined || point.writes.length === 0
      ? []
      : ["", "| write | tuples | acknowledged by | at | fate | why |", "|---|---|---|---|---|---|", ...point.writes.map((write) => `| ${write.write} | ${cell(write.tuples.join(", "))} | ${cell(write.region)} | ${ms(write.acknowledgedAtMs)} | ${write.fate} | ${cell(write.why)} |`)]),
    "",
    "| epoch | primary | began serving | writes accepted by region |",
    "|---|---|---|---|",
    ...timings.epochs.map((epoch) => `| ${epoch.epoch} | ${cell(epoch.primary)} | ${ms(epoch.startedAtMs)} | ${cell(Object.entries(epoch.acceptedWrites).map(([region, count]) => `${region}: ${count}`).join(", ") || "none")} |`)
  ]
}

/** The scenario's checks that were judged, plus any a violation names (an unreadable node is a liveness one). */
const checks = (scenario: Scenario, result: ChaosResult): ReadonlyArray<RunReport.Check> => {
  const judged = scenario.checks.filter((check) => Judge.notJudged[check] === undefined)
  const names = [...new Set<string>([...judged, ...result.violations.map((violation) => violation.checker)])]
  return names.map((name) => {
    const violations = result.violations.filter((violation) => violation.checker === name).map(({ message, details }) => ({ message, details }))
    return { name, valid: violations.length === 0, violations }
  })
}

const ms = (value: number | undefined): string => (value === undefined ? "–" : `${Math.round(value)} ms`)

const facts = (scenario: Scenario, result: ChaosResult, lost: number): ReadonlyArray<readonly [string, string]> => {
  const clocks = Object.entries(result.clocksObserved)
  const restarted = Object.entries(result.nodes).filter(([, node]) => node.incarnations > 1 || node.exits.length > 0)
  return [
    ["ran on", "real serve processes in network namespaces"],
    ["determinism", result.note],
    ["wall time", ms(result.wallMs)],
    ["converged", result.converged ? `${ms(result.convergenceMs)} after healing at ${ms(result.healedAtMs)}` : "no"],
    ["writes", `${result.writes.attempted} attempted, ${result.writes.acknowledged} acknowledged, ${result.writes.failed} refused, ${result.writes.unknown} unknown; sent as ${result.chosen.clientWrites === "WriteStream" ? "frames on a WriteStream per node" : "a Write call each"}`],
    ["lost writes", String(lost)],
    ["replication lag", `p50 ${result.lagMs.p50} ms, p99 ${result.lagMs.p99} ms, max ${result.lagMs.max} ms (${result.lagMs.samples} samples, to each region's Watch feed)`],
    ["clocks observed", clocks.length === 0 ? "no samples" : clocks.map(([node, clock]) => `${node} ${clock.aheadMs} ± ${clock.withinMs} ms`).join(", ")],
    ...(restarted.length === 0 ? [] : [["processes", restarted.map(([node, info]) => `${node}: ${info.incarnations} incarnation(s), exits ${info.exits.join(", ") || "none"}`).join("; ")] as const]),
    ...(result.restarts.length === 0
      ? []
      : [["restarts", result.restarts.map((restart) => `${restart.node} at ${ms(restart.atMs)}: listening after ${restart.listeningAfterMs === undefined ? "never" : ms(restart.listeningAfterMs)}, ready after ${restart.readyAfterMs === undefined ? "never" : ms(restart.readyAfterMs)}`).join("; ")] as const]),
    ["not applied", result.notApplied.length === 0 ? "nothing: every fault was applied" : result.notApplied.join("; ")],
    ["not judged", result.notJudged.length === 0 ? "nothing: every check was judged" : result.notJudged.join("; ")],
    ...(result.notes.length === 0 ? [] : [["notes", result.notes.join("; ")] as const]),
    ["strategy", `${scenario.topology.strategy}, ${scenario.replication.conflictResolution}`]
  ]
}

// ---------------------------------------------------------------------------------------------
// History

/** How a write ended as the client saw it; a call that never reached a node failed, a node's refusal rejected it. */
const phaseOf = (write: WriteRecord): RunReport.OperationPhase => {
  switch (write.outcome) {
    case "acknowledged":
      return "ok"
    case "rejected":
      // `Judge.history` records both certain non-writes as rejected; gRPC code 14 is a call that never connected.
      return /^14 UNAVAILABLE/.test(write.reason ?? "") ? "failed" : "rejected"
    default:
      // `Judge.history` records a write without an answer as failed with its outcome unknown.
      return "unknown"
  }
}


/** Faults that last until a heal, restart or resume ends them. */
const lasting = new Set<Fault["kind"]>(["isolate", "split", "one_way", "bridge", "crash", "pause"])
/** Faults that are the end of another (they appear as its heal). */
const healing = new Set<Fault["kind"]>(["heal", "restart", "resume"])

/**
 * The faults as applied, with the harness's times: the run applies `scenario.faults` in order
 * (`applied[i]` is `faults[i]`) and then heals all. A fault is applied when the harness began
 * applying it; a lasting fault is healed when the fault that ends it was done, or the final heal; a fault the run could not apply is left out
 * (the report names it under "not applied").
 */
export const faultEvents = (scenario: Scenario, applied: ReadonlyArray<AppliedFault>): ReadonlyArray<RunReport.FaultEvent> => {
  const schedule = scenario.faults
  const healAll = applied.find((fault) => fault.kind === "heal_all")
  const found: Array<RunReport.FaultEvent> = []
  schedule.forEach((fault, index) => {
    const done = applied[index]
    if (done === undefined || done.kind !== fault.kind || healing.has(fault.kind) || done.detail.includes("not applied")) return
    // A store fault that fails nothing ends the one before it (its disks have room again; `Disks.ts`).
    if (fault.kind === "store" && fault.failRate === 0) return
    const { regions, nodes } = SimReport.hit(scenario, fault)
    const event = { type: "fault" as const, fault: index + 1, kind: fault.kind, regions, nodes }
    // In effect from when the harness began applying it (a full disk takes a while) until the fault ending it was done.
    found.push({ ...event, phase: "applied", atMs: done.startedAtMs, detail: done.detail })
    if (!lasting.has(fault.kind) && fault.kind !== "store") return
    const ender = fault.kind === "store" ? SimReport.storeEnder(schedule, index) : Faults.enderOf(scenario, schedule, index)
    const end = ender < 0 ? healAll : applied[ender]
    if (end !== undefined) found.push({ ...event, phase: "healed", atMs: end.atMs, detail: end.detail })
  })
  return found
}

// ---------------------------------------------------------------------------------------------
// report.md

const cell = (text: string | number | undefined): string => (text === undefined ? "–" : String(text).replaceAll("|", "\\|").replaceAll("\n", " "))

const markdown = (finished: Finished, lostWrites: ReadonlyArray<RunReport.LostWrite>, told: ReturnType<typeof failoverTold>): string => {
  const { result, scenario } = finished
  const lines = [
    `# ${result.scenario}, seed ${result.seed}: ${result.passed ? "passed" : `FAILED (${result.violations.length} violation(s))`} on real processes`,
    "",
    `Replay: \`${finished.replay}\``,
    "",
    "| | |",
    "|---|---|",
    ...facts(scenario, result, lostWrites.length).map(([key, value]) => `| ${cell(key)} | ${cell(value)} |`),
    "",
    "## Violations",
    "",
    ...(result.violations.length === 0 ? ["None."] : result.violations.map((violation) => `- **${violation.checker}**: ${violation.message}`)),
    "",
    "## Faults",
    "",
    "| scheduled | began | done | kind | what was done |",
    "|---|---|---|---|---|",
    ...result.faults.map((fault) => `| ${ms(fault.scheduledAtMs)} | ${ms(fault.startedAtMs)} | ${ms(fault.atMs)} | ${cell(fault.kind)} | ${cell(fault.detail)} |`),
    "",
    `## Acknowledged writes that did not survive (${lostWrites.length})`,
    "",
    ...(lostWrites.length === 0
      ? ["None: every acknowledged change survived or was replaced by a causally later change."]
      : [
          "| change | write | tuple | region | acknowledged at | cause | lost to |",
          "|---|---|---|---|---|---|---|",
          ...lostWrites.map((lost) => `| ${cell(lost.change)} | ${lost.write} | ${cell(`${lost.op} ${lost.tuple}`)} | ${cell(lost.region)} | ${ms(lost.acknowledgedAtMs)} | ${lost.cause} | ${cell(lost.lostTo)} |`)
        ]),
    ...failoverLines(told),
    "",
    "## Nodes",
    "",
    "| node | address | incarnations | exits | log entries |",
    "|---|---|---|---|---|",
    ...Object.entries(result.nodes).map(([node, info]) => `| ${cell(node)} | ${cell(info.address)} | ${info.incarnations} | ${cell(info.exits.join(", ") || "none")} | ${info.logEntries} |`)
  ]
  return `${lines.join("\n")}\n`
}
