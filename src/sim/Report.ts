/**
 * The Markdown summary of a run, `report.md` in its report folder (see `SimReport.ts` and
 * `report/RunFolder.ts`). It is rendered from the `RunResult` (and, when given, the full list
 * of lost writes), so it is as deterministic as the run (only `wallMs` varies). It opens with
 * the seed and the command that replays the run, then the violations, the faults applied,
 * convergence, replication lag, conflicts and lost writes by cause and, under PrimaryReplica,
 * the failover timings (time to detect the loss, RTO, the RPO reconciled with the final
 * outcome, each write the new primary lacked with its fate) and the epochs.
 */
import type { LostWrite } from "../report/RunReport.js"
import type { RunResult } from "./Run.js"

/** Text for a Markdown table cell. */
const cell = (value: unknown): string => (value === undefined ? "–" : String(value).replaceAll("|", "\\|").replaceAll("\n", " "))

const table = (header: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<unknown>>): ReadonlyArray<string> => [
  `| ${header.join(" | ")} |`,
  `| ${header.map(() => "---").join(" | ")} |`,
  ...rows.map((row) => `| ${row.map(cell).join(" | ")} |`)
]

const section = (title: string, lines: ReadonlyArray<string>): ReadonlyArray<string> => ["", `## ${title}`, "", ...lines]

const ms = (value: number | undefined): string => (value === undefined ? "–" : `${value} ms`)

const overview = (result: RunResult, replay: string): ReadonlyArray<string> => [
  `# ${result.scenario}, seed ${result.seed}: ${result.violations.length === 0 ? "passed" : `FAILED (${result.violations.length} violation(s))`}`,
  "",
  `Seed \`${result.seed}\`. Replay:`,
  "",
  "```sh",
  replay,
  "```",
  "",
  ...table(
    ["trace hash", "events", "tasks", "simulated", "stopped", "wall time"],
    [[`\`${result.traceHash}\``, result.events, result.tasks, ms(result.simulatedMs), result.stopReason, ms(result.wallMs)]]
  ),
  "",
  `Checks: ${result.checks.join(", ")}.`
]

const violations = (result: RunResult): ReadonlyArray<string> =>
  result.violations.length === 0
    ? []
    : section(
        "Violations",
        result.violations.flatMap((violation) => [`- **${violation.checker}**: ${violation.message}`, "", "  ```json", `  ${JSON.stringify(violation.details)}`, "  ```"])
      )

const faults = (result: RunResult): ReadonlyArray<string> =>
  section(
    "Faults applied",
    result.faults.length === 0 ? ["None."] : table(["at", "fault", "what happened"], result.faults.map((fault) => [ms(fault.atMs), fault.kind, fault.detail]))
  )

const convergence = (result: RunResult): ReadonlyArray<string> =>
  section("Convergence", [
    result.convergenceMs === undefined
      ? `Healed at ${ms(result.healedAtMs)}; the regions did **not** converge within the budget (${result.stopReason}).`
      : `Healed at ${ms(result.healedAtMs)}; every region held the same state ${ms(result.convergenceMs)} later.`,
    "",
    "Replication lag (acknowledgement at the origin to durability at a target):",
    "",
    ...table(["samples", "p50", "p90", "p99", "max"], [[result.lagMs.samples, ms(result.lagMs.p50), ms(result.lagMs.p90), ms(result.lagMs.p99), ms(result.lagMs.max)]])
  ])

const lostTable = (lost: ReadonlyArray<LostWrite>): ReadonlyArray<string> =>
  lost.length === 0
    ? ["", "No acknowledged write was lost."]
    : ["", "Every acknowledged change that did not survive:", "", ...table(["change", "write", "tuple", "region", "acknowledged at", "cause", "lost to"], lost.map((write) => [write.change, write.write, `${write.op} ${write.tuple}`, write.region, ms(write.acknowledgedAtMs), write.cause, write.lostTo]))]

const writes = (result: RunResult, lostList: ReadonlyArray<LostWrite> | undefined): ReadonlyArray<string> => {
  const { writes: counts, lostWrites: lost, conflicts } = result
  return section("Writes, conflicts and lost writes", [
    ...table(["attempted", "acknowledged", "rejected", "failed", "interrupted", "pending"], [[counts.attempted, counts.acknowledged, counts.rejected, counts.failed, counts.interrupted, counts.pending]]),
    "",
    `${conflicts.concurrent} of ${conflicts.tuples} tuples ended with concurrent changes that the conflict rule decided.`,
    "",
    "Acknowledged changes by fate (`superseded` is not a loss: a causally later change replaced it):",
    "",
    ...table(["survived", "superseded", "concurrent", "clock-skew", "tie"], [[lost.survived, lost.superseded, lost.concurrent, lost["clock-skew"], lost.tie]]),
    ...(lostList !== undefined
      ? lostTable(lostList)
      : result.lostWriteExamples.length === 0
      ? []
      : ["", ...table(["change", "lost to", "cause", "write"], result.lostWriteExamples.map((example) => [example["change"], example["lostTo"], example["cause"], example["write"]]))])
  ])
}

const failover = (result: RunResult): ReadonlyArray<string> => {
  const timings = result.failover
  if (timings === undefined) return []
  const point = timings.recoveryPoint
  return section("Failover", [
    ...table(
      ["primary lost at", "promoted", "time to detect", "RTO (first write accepted elsewhere)", "RPO (acknowledged writes finally lost)", "RPO window", "writes the new primary lacked", "original primary back at"],
      [[ms(timings.lossAtMs), timings.promotedRegion === undefined ? "–" : `${timings.promotedRegion} at ${ms(timings.promotedAtMs)}`, ms(timings.detectMs), ms(timings.rtoMs), point?.lostWrites, ms(point?.lostWindowMs), timings.rpo, ms(timings.promotedBackAtMs)]]
    ),
    ...(point === undefined || point.writes.length === 0
      ? []
      : ["", "Each write the new primary lacked at its promotion, and its final fate:", "", ...table(["write", "tuples", "acknowledged by", "at", "fate", "why"], point.writes.map((write) => [write.write, write.tuples.join(", "), write.region, ms(write.acknowledgedAtMs), write.fate, write.why]))]),
    "",
    "Epochs:",
    "",
    ...table(
      ["epoch", "primary", "started at", "writes accepted by region"],
      timings.epochs.map((epoch) => [epoch.epoch, epoch.primary, ms(epoch.startedAtMs), Object.entries(epoch.acceptedWrites).map(([region, count]) => `${region}: ${count}`).join(", ") || "none"])
    ),
    ...(result.forgottenEpochs.length === 0
      ? []
      : ["", ...result.forgottenEpochs.map((forgotten) => `Epoch ${forgotten.epoch} was forgotten at ${ms(forgotten.atMs)}: every disk that recorded it was wiped while no running node held it, so the cluster could go on in an older epoch.`)])
  ])
}

/** A node's restarts and how long each process took to serve (`startup.restart_ms`), or a dash. */
const restartsOf = (result: RunResult, node: string): string =>
  (result.nodes[node]?.restarts ?? []).map((restart) => `${ms(restart.atMs)} (+${ms(restart.startingMs)})`).join("; ") || "–"

const environment = (result: RunResult): ReadonlyArray<string> =>
  section("Drawn from the seed", [
    ...table(
      ["node", "clock offset", "drift", "incarnations", "restarts (and the time to serve)", "warnings"],
      Object.entries(result.chosen.clocks).map(([node, clock]) => [node, ms(clock.offsetMs), `${clock.driftPpm} ppm`, result.nodes[node]?.incarnations, restartsOf(result, node), result.nodes[node]?.warnings])
    ),
    "",
    `Network: ${Object.entries(result.network).map(([key, value]) => `${key} ${value}`).join(", ")}.`
  ])

/** The Markdown summary of a run; with `lost` (every lost change, see `Fates.ts`) it lists them all instead of five examples. */
export const markdown = (result: RunResult, replay: string, lost?: ReadonlyArray<LostWrite>): string =>
  `${[...overview(result, replay), ...violations(result), ...faults(result), ...convergence(result), ...writes(result, lost), ...failover(result), ...environment(result)].join("\n")}\n`
