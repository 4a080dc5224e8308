/**
 * The speed targets of issues 10 (the simulator) and 11 (the replicator), judged against one
 * run's JSON, so that `bench:sim` and `bench:repl` print beside their figures which targets this
 * run met. The targets are the issues' own words and bounds; they are set for the 2-core test
 * machine when quiet, so each verdict goes out with the load the run started at, and a run on a
 * busy machine that misses one says little. A figure the run did not measure (a phase skipped or
 * run with other settings than the issue's, or one that did not complete) is reported as such,
 * never as met.
 *
 * Apart from the benches so that tests can hold each rule to its bound.
 */
import { numbersAt } from "./compareFigures.js"

/** One target's verdict on one run. */
export interface Verdict {
  readonly issue: number
  readonly target: string
  /** Where in the bench's JSON the figure came from. */
  readonly figure: string
  readonly value: number | undefined
  /** `undefined` when this run did not measure the figure the way the issue asks. */
  readonly met: boolean | undefined
  readonly why?: string
}

type Json = Record<string, unknown>

const objectAt = (value: unknown, key: string): Json | undefined => {
  const inner = value !== null && typeof value === "object" ? (value as Json)[key] : undefined
  return inner !== null && typeof inner === "object" ? (inner as Json) : undefined
}

/** A finite number at `key` of `value`, as `bench:compare` reads figures. */
const numberAt = (value: unknown, key: string): number | undefined => numbersAt(value, [key])[0]?.[1]

/** Bounds, as what a figure must satisfy. */
const atLeast = (bound: number) => (value: number) => value >= bound
const atMost = (bound: number) => (value: number) => value <= bound
const under = (bound: number) => (value: number) => value < bound

const judged = (issue: number, target: string, figure: string, value: number | undefined, holds: (value: number) => boolean, missing = "not in this run"): Verdict =>
  value === undefined ? unmeasured(issue, target, figure, missing) : { issue, target, figure, value, met: holds(value) }

const unmeasured = (issue: number, target: string, figure: string, why: string): Verdict => ({ issue, target, figure, value: undefined, met: undefined, why })

/** A phase of `bench:repl` counts only when it completed: an incomplete phase's rate is not the system's. */
const completed = (phase: Json | undefined): Json | undefined => (phase !== undefined && phase["complete"] === true ? phase : undefined)

/** Why a phase gives no figure. */
const missingFrom = (phase: Json | undefined): string => (phase === undefined ? "not in this run" : "the phase did not complete")

/** The lag phase offered `rate` changes/s, wherever `bench:repl` put it (`lag` or `lagAtOtherRates`). */
const lagAt = (result: Json, rate: number): { readonly phase: Json | undefined; readonly figure: string } => {
  const others = Array.isArray(result["lagAtOtherRates"]) ? (result["lagAtOtherRates"] as ReadonlyArray<Json>) : []
  const phases: ReadonlyArray<readonly [string, Json | undefined]> = [["lag", objectAt(result, "lag")], ...others.map((phase, index) => [`lagAtOtherRates.${index}`, phase] as const)]
  const found = phases.find(([, phase]) => numberAt(phase, "offeredChangesPerSecond") === rate)
  return found === undefined ? { phase: undefined, figure: `the lag phase at ${rate}/s` } : { phase: found[1], figure: `${found[0]}.p99Ms` }
}

/** Issue 11's targets against a `bench:repl` result. */
export const replVerdicts = (result: Json): ReadonlyArray<Verdict> => {
  const issue = 11
  const endToEnd = "≥ 50,000 changes/s end to end with 100-change writes"
  const throughput = objectAt(result, "throughput")
  const verdicts: Array<Verdict> = [
    result["changesPerWrite"] !== 100
      ? unmeasured(issue, endToEnd, "throughput.changesPerSecond", `written ${String(result["changesPerWrite"])} changes at a time`)
      : judged(issue, endToEnd, "throughput.changesPerSecond", numberAt(completed(throughput), "changesPerSecond"), atLeast(50_000), missingFrom(throughput))
  ]
  for (const [rate, bound] of [
    [5_000, 10],
    [1_000, 5]
  ] as const) {
    const { phase, figure } = lagAt(result, rate)
    verdicts.push(judged(issue, `lag p99 ≤ ${bound} ms at ${rate.toLocaleString("en-US")} changes/s offered`, figure, numberAt(completed(phase), "p99Ms"), atMost(bound), missingFrom(phase)))
  }
  const peaks = objectAt(result, "peakRssMb")
  const processes = peaks === undefined ? [] : Object.keys(peaks)
  if (processes.length === 0) verdicts.push(unmeasured(issue, "peak RSS ≤ 300 MB per process", "peakRssMb", "not in this run"))
  for (const name of processes) verdicts.push(judged(issue, "peak RSS ≤ 300 MB per process", `peakRssMb.${name}`, numberAt(peaks, name), atMost(300)))
  const drain = objectAt(result, "drain")
  const drainTarget = "a drain of a 200,000-change backlog at ≥ 100,000 changes/s"
  verdicts.push(
    drain !== undefined && numberAt(drain, "changes") !== 200_000
      ? unmeasured(issue, drainTarget, "drain.changesPerSecond", `a backlog of ${String(numberAt(drain, "changes"))} changes`)
      : judged(issue, drainTarget, "drain.changesPerSecond", numberAt(completed(drain), "changesPerSecond"), atLeast(100_000), missingFrom(drain))
  )
  return verdicts
}

/** Issue 10's targets against a `bench:sim` result. */
export const simVerdicts = (result: Json): ReadonlyArray<Verdict> => {
  const issue = 10
  const cores = numberAt(result, "cores")
  const allCores = Array.isArray(result["swarm"]) ? (result["swarm"] as ReadonlyArray<Json>).find((run) => numberAt(run, "jobs") === cores) : undefined
  // The sustained swarm (one job per core over hundreds of seeds) is the rate a swarm runs at;
  // the short runs are mostly start-up and warm-up.
  const [swarmFigure, swarm] = objectAt(result, "sustainedSwarm") !== undefined ? ["sustainedSwarm.seedsPerMinute", objectAt(result, "sustainedSwarm")] : ["swarm (one job per core).seedsPerMinute", allCores]
  const startUp = objectAt(result, "startUp")
  const simRuns = Array.isArray(startUp?.["simRuns"]) ? (startUp["simRuns"] as ReadonlyArray<Json>) : []
  const slowest = simRuns.reduce<Json | undefined>((worst, run) => (worst === undefined || (numberAt(run, "wallMs") ?? 0) > (numberAt(worst, "wallMs") ?? 0) ? run : worst), undefined)
  const failedRun = simRuns.find((run) => run["exit"] !== 0)
  const simRunTarget = "`sim run` of a shipped scenario under 1 s wall"
  return [
    judged(issue, "≥ 300× time compression on the three-region skew scenarios", "timeCompression", numberAt(result, "timeCompression"), atLeast(300)),
    judged(issue, "≥ 50,000 events/s", "eventsPerSec", numberAt(result, "eventsPerSec"), atLeast(50_000)),
    judged(issue, "≥ 3,000 seeds/min for `sim swarm` on default drawn scenarios", swarmFigure, numberAt(swarm, "seedsPerMinute"), atLeast(3_000)),
    judged(issue, "`node bin/inferadb-repl.mjs --help` under 0.5 s", "startUp.helpWallMs", numberAt(startUp, "helpWallMs"), under(500)),
    failedRun !== undefined
      ? unmeasured(issue, simRunTarget, `startUp.simRuns (${String(failedRun["scenario"])})`, `exited ${String(failedRun["exit"])}`)
      : slowest === undefined
        ? unmeasured(issue, simRunTarget, "startUp.simRuns", "not in this run")
        : judged(issue, `${simRunTarget} (every one; the slowest here)`, `startUp.simRuns (${String(slowest["scenario"])})`, numberAt(slowest, "wallMs"), under(1_000))
  ]
}

/** What the benches print as `targets`: the verdicts, how many were met, and the load they were measured at. */
export const summary = (verdicts: ReadonlyArray<Verdict>, loadAtStart: number | undefined) => ({
  met: `${verdicts.filter((verdict) => verdict.met === true).length} of ${verdicts.length}`,
  loadAtStart: loadAtStart ?? null,
  note: "the issues' targets, set for this 2-core machine when quiet: on a busy machine a missed target says little",
  verdicts
})
