/**
 * `inferadb-repl sim ...`: the deterministic simulator on the command line.
 *
 *   sim run <scenario-file> --seed <n>                 one scenario, one seed
 *   sim swarm [--seeds <n> | --time <duration>]        every setting drawn from each seed (--jobs <n> threads)
 *   sim shrink <scenario-file> --seed <n>              the smallest fault schedule that still fails
 *   sim check-determinism <scenario-file> --seed <n>   the same run twice, compared event by event
 *
 * Exit codes: 0 when nothing failed, 1 when a checker found a violation (or the simulator
 * itself failed, or two runs of one seed differed), 2 when a scenario file could not be read,
 * 64 on a usage error (an unknown option, a missing argument; see main.ts).
 * On a failure the first line printed (to stderr with `--json`) is one command that replays
 * it. `sim run`, every swarm failure and `sim shrink` write a report folder
 * `<report-dir>/<scenario>/<seed>-<utc time>/` (see reports/README.md and report/RunFolder.ts);
 * swarm and shrink also write the scenario they ran as YAML in `<report-dir>`,
 * so it replays with `sim run`. This file does the IO (files, terminal, wall clock); the
 * simulator modules it calls are pure.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { MultiBar, Presets, type SingleBar } from "cli-progress"
import { Command, InvalidArgumentError, Option } from "commander"
import * as Canary from "../sim/canary/Canary.js"
import * as DeterminismCheck from "../sim/DeterminismCheck.js"
import * as RunFolder from "../report/RunFolder.js"
import * as SwarmPage from "../report/SwarmPage.js"
import { type RunResult, type Simulation, simulate } from "../sim/Run.js"
import * as Scenario from "../sim/Scenario.js"
import * as SimReport from "../sim/SimReport.js"
import * as Swarm from "../sim/Swarm.js"
import * as SwarmV8Flags from "./SwarmV8Flags.js"
import * as SwarmJobs from "./SwarmJobs.js"
import * as ScenarioFile from "./ScenarioFile.js"

// ---------------------------------------------------------------------------------------------
// Arguments, commands, files
// ---------------------------------------------------------------------------------------------

const parseSeed = (value: string): string => {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError("a seed is a non-negative integer")
  return value
}

const parseCount = (value: string): number => {
  if (!/^\d+$/.test(value) || Number(value) < 1) throw new InvalidArgumentError("expected a positive integer")
  return Number(value)
}

const durationUnitsMs: Readonly<Record<string, number>> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 }

/** A duration such as `500ms`, `30s`, `5m` or `1h`, in milliseconds. */
export const parseDuration = (value: string): number => {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(value.trim())
  if (match === null) throw new InvalidArgumentError("expected a duration such as 30s, 5m or 1h")
  return Number(match[1]) * durationUnitsMs[match[2]!]!
}

/** Quotes a shell word when it needs it. */
const shellWord = (word: string): string => (/^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", "'\\''")}'`)

/**
 * How to start this program in a replay command. From a checkout: `node <path to bin>`,
 * relative to the current directory. Started from npm's cache (`npx`) or an installed
 * package, that path means nothing to anyone else, so the command is `npx inferadb-repl`.
 */
const launcher = (): string => {
  const bin = path.relative(process.cwd(), path.resolve(process.argv[1] ?? "bin/inferadb-repl.mjs")) || "bin/inferadb-repl.mjs"
  const shareable = !bin.startsWith("..") && !path.isAbsolute(bin) && !bin.split(path.sep).includes("node_modules") && !bin.includes("_npx")
  return shareable ? `node ${shellWord(bin)}` : "npx inferadb-repl"
}

/** A command line that runs this program with `args` from the current directory. */
export const commandLine = (args: ReadonlyArray<string>): string => `${launcher()} ${args.map(shellWord).join(" ")}`

const canaryArgs = (canary: Canary.Name | undefined): ReadonlyArray<string> => (canary === undefined ? [] : ["--canary", canary])

/** The command that replays a run from the current directory. */
export const replayCommand = (file: string, seed: string, canary: string | undefined): string =>
  commandLine(["sim", "run", file, "--seed", seed, ...canaryArgs(canary as Canary.Name | undefined)])

const readScenario = ScenarioFile.read

/** Writes a file, creating its directory; returns its path. */
const writeFile = (file: string, text: string): string => {
  fs.mkdirSync(path.dirname(file), { recursive: true })
  fs.writeFileSync(file, text)
  return file
}

/** Messages between regions a reported run keeps for its space-time diagram. */
const reportMessagesMax = 2_000

/** Runs a scenario for a report: the same run as without one, with the messages between regions kept. */
const simulateForReport = (scenario: Scenario.Scenario, seed: string | number, canary: Canary.Name | undefined): Simulation =>
  simulate(scenario, seed, { wallClock, messagesMax: reportMessagesMax, ...(canary === undefined ? {} : { canary }) })

/** Writes a run's report folder (see `report/RunFolder.ts`); returns the folder. */
const writeReports = (
  directory: string,
  simulation: Simulation,
  scenario: Scenario.Scenario,
  replay: string,
  source: { readonly file?: string; readonly text: string; readonly extra?: Readonly<Record<string, string>> }
): RunFolder.Written =>
  RunFolder.write(directory, SimReport.make(simulation, scenario, replay), { now: new Date(), scenarioText: source.text, scenarioFile: source.file, ...(source.extra === undefined ? {} : { extra: source.extra }) })

/** Where a report folder was written, as printed. */
const writtenText = (written: RunFolder.Written): string => `${written.directory}${written.latest === undefined ? "" : ` (${written.latest})`}`

/** A generated scenario as a file that replays with `sim run`. */
const scenarioText = (scenario: Scenario.Scenario, origin: string, replay: string): string => `# ${origin}\n# replay: ${replay}\n${Scenario.encode(scenario)}`

/** Writes a generated scenario so that it replays with `sim run`. */
const writeScenario = (file: string, scenario: Scenario.Scenario, origin: string, replay: string): string => writeFile(file, scenarioText(scenario, origin, replay))

const { failureText, wallClock } = SwarmJobs

/** Effect operations per simulated event, one decimal: the work per event on any machine. */
const opsPerEvent = (ops: number, events: number): string => (events === 0 ? "0" : (ops / events).toFixed(1))

/** Options shared by the commands that write reports. */
interface ReportOptions {
  readonly report: boolean
  readonly reportDir: string
}

const reportOptions = (command: Command): Command =>
  command
    .option("--report-dir <dir>", "where reports and generated scenarios are written", "reports")
    .option("--no-report", "do not write report folders")

const examples = (lines: ReadonlyArray<string>): string => `\nExamples:\n${lines.map((line) => `  $ inferadb-repl ${line}`).join("\n")}\n`

const canaryOption = () => new Option("--canary <name>", "build the run with a deliberately broken variant that the checkers must catch").choices([...Canary.names])

// ---------------------------------------------------------------------------------------------
// sim run
// ---------------------------------------------------------------------------------------------

const drainOutcome = (drain: RunResult["drains"][number]): string =>
  drain.complete
    ? `drained at ${drain.drainedAtMs} ms, every target acknowledged the log up to position ${drain.logEnd}`
    : `drain timed out at ${drain.drainedAtMs} ms (${[
        ...(drain.targetsUnknown ? ["no discovery round worked: siblings unknown"] : []),
        ...drain.behind.map(({ target, cursor }) => `${target} at ${cursor} of ${drain.logEnd}`)
      ].join(", ") || "the store did not answer"})`

const summary = (result: RunResult): ReadonlyArray<string> => {
  const lines = [
    `scenario ${result.scenario}: ${result.violations.length === 0 ? "PASSED" : `FAILED (${result.violations.length} violation(s))`}`,
    `  trace ${result.traceHash}, ${result.events} events, ${result.tasks} tasks, ${opsPerEvent(result.effectOps, result.events)} Effect operations per event, ${result.simulatedMs} simulated ms in ${result.wallMs} ms`,
    `  converged ${result.converged}${result.convergenceMs === undefined ? "" : ` ${result.convergenceMs} ms after healing at ${result.healedAtMs} ms`} (${result.stopReason})`,
    `  writes ${JSON.stringify(result.writes)}`,
    `  conflicts: ${result.conflicts.concurrent} of ${result.conflicts.tuples} tuples ended with concurrent changes`,
    `  acknowledged changes by fate ${JSON.stringify(result.lostWrites)}`,
    `  replication lag ms p50 ${result.lagMs.p50}, p90 ${result.lagMs.p90}, p99 ${result.lagMs.p99}, max ${result.lagMs.max}`,
    ...result.faults.map((fault) => `  fault at ${fault.atMs} ms: ${fault.detail}`),
    ...result.drains.map((drain) => `  graceful stop of ${drain.node} at ${drain.askedAtMs} ms: ${drainOutcome(drain)}`),
    ...Object.entries(result.nodes).flatMap(([node, { restarts }]) =>
      restarts.filter((restart) => restart.startingMs > 0).map((restart) => `  restart of ${node} at ${restart.atMs} ms (incarnation ${restart.incarnation}): its process took ${restart.startingMs} ms to start serving`)
    )
  ]
  if (result.failover !== undefined) {
    const { recoveryPoint: point, ...timings } = result.failover
    lines.push(`  failover ${JSON.stringify(timings)}`)
    if (point !== undefined) lines.push(`  RPO ${point.lostWrites} acknowledged write(s) finally lost over ${point.lostWindowMs} ms (the new primary lacked ${point.lackedWrites} at its promotion)`)
    for (const forgotten of result.forgottenEpochs) lines.push(`  epoch ${forgotten.epoch} forgotten at ${forgotten.atMs} ms: every disk that recorded it was wiped while no running node held it`)
  }
  if (result.lostWithRemovedRegion.length > 0) lines.push(`  ${goneWithRemovedRegion(result.lostWithRemovedRegion.length)}`)
  for (const violation of result.violations) lines.push(`  VIOLATION [${violation.checker}] ${violation.message}`, `    ${JSON.stringify(violation.details)}`)
  return lines
}

/** The line for changes only a region removed for good held at the end (`sim run` and `chaos run` print it alike). */
export const goneWithRemovedRegion = (count: number): string =>
  `gone with a removed region: ${count} change(s) only it held at the end (its peers refuse what it ships once it is removed; drain a region before removing it)`

interface RunCommandOptions extends ReportOptions {
  readonly seed: string
  readonly json?: boolean
  readonly canary?: Canary.Name
}

/** Runs a scenario, prints the result, writes the reports; returns whether it passed. */
const runAndReport = (scenario: Scenario.Scenario, options: RunCommandOptions, replay: string, source: { readonly file?: string; readonly text: string }): boolean => {
  let simulation: Simulation
  try {
    simulation = options.report
      ? simulateForReport(scenario, options.seed, options.canary)
      : simulate(scenario, options.seed, { wallClock, ...(options.canary === undefined ? {} : { canary: options.canary }) })
  } catch (error) {
    process.stderr.write(`replay: ${replay}\nthe simulator failed: ${failureText(error)}\n`)
    process.exitCode = 1
    return false
  }
  const result = simulation.result
  const failed = result.violations.length > 0
  const reports = options.report ? [writtenText(writeReports(options.reportDir, simulation, scenario, replay, source))] : []
  if (options.json === true) {
    if (failed) process.stderr.write(`replay: ${replay}\n`)
    process.stdout.write(`${JSON.stringify(result)}\n`)
  } else {
    const chosen = Object.entries(result.chosen.clocks).map(([node, clock]) => `  clock ${node}: offset ${clock.offsetMs} ms, drift ${clock.driftPpm} ppm`)
    const written = reports.length === 0 ? [] : [`report ${reports.join(", ")}`]
    process.stdout.write(`${[...(failed ? [`replay: ${replay}`] : []), `seed ${result.seed}`, ...chosen, ...summary(result), ...written].join("\n")}\n`)
  }
  process.exitCode = failed ? 1 : 0
  return !failed
}

const run = (file: string, options: RunCommandOptions): void => {
  const scenario = readScenario(file)
  if (scenario !== undefined) runAndReport(scenario, options, replayCommand(file, options.seed, options.canary), { file, text: fs.readFileSync(file, "utf8") })
}

// ---------------------------------------------------------------------------------------------
// sim swarm
// ---------------------------------------------------------------------------------------------

interface SwarmOptions extends ReportOptions {
  readonly seeds?: number
  readonly time?: number
  readonly firstSeed: number
  readonly jobs: number
  readonly scenario?: string
  readonly replay?: string
  readonly canary?: Canary.Name
  readonly shrink?: boolean
  readonly shrinkRuns?: number
  readonly json?: boolean
}

/** One failed seed, as printed and returned with `--json`. */
interface SwarmFailure {
  readonly seed: number
  readonly replay: string
  readonly checkers: ReadonlyArray<string>
  readonly messages: ReadonlyArray<string>
  readonly files: ReadonlyArray<string>
  /** What the swarm drew for the seed, for the summary page. */
  readonly dimensions?: Readonly<Record<string, string>>
  /** The seed's report folder. */
  readonly folder?: string
  readonly shrunk?: { readonly replay: string; readonly episodes: { readonly from: number; readonly to: number }; readonly runs: number; readonly restartDelays?: "dropped" | "needed" }
}

const defaultSeeds = 100

const swarmArgs = (options: SwarmOptions, seed: number): ReadonlyArray<string> => [
  "sim",
  "swarm",
  "--replay",
  String(seed),
  ...(options.scenario === undefined ? [] : ["--scenario", options.scenario]),
  ...canaryArgs(options.canary)
]

/** Writes what a failed seed needs to be replayed and studied; returns the failure. */
const recordFailure = (outcome: Swarm.Outcome, options: SwarmOptions): SwarmFailure => {
  const { seed, scenario, result } = outcome
  const seedText = String(seed)
  const yamlFile = path.join(options.reportDir, `${scenario.name}-${seed}.yaml`)
  const replay = options.report ? replayCommand(yamlFile, seedText, options.canary) : commandLine(swarmArgs(options, seed))
  const files = options.report ? reportFailure(outcome, options, yamlFile, replay) : []
  return {
    seed,
    replay,
    dimensions: SimReport.dimensions(scenario),
    ...(files[1] === undefined ? {} : { folder: files[1] }),
    checkers: [...new Set(result.violations.map((violation) => violation.checker))],
    messages: result.violations.map((violation) => `[${violation.checker}] ${violation.message}`),
    files
  }
}

/**
 * Writes a failed seed's scenario (the replay command's input) and its report folder. The
 * worker that found the failure kept no history (passing seeds must stay cheap), so the seed
 * runs once more here, recording; the run is deterministic, so it is the same run.
 */
const reportFailure = (outcome: Swarm.Outcome, options: SwarmOptions, yamlFile: string, replay: string): ReadonlyArray<string> => {
  const text = scenarioText(outcome.scenario, `Drawn by \`sim swarm\` from seed ${outcome.seed}${options.scenario === undefined ? "" : ` over ${options.scenario}`}.`, replay)
  writeFile(yamlFile, text)
  const simulation = simulateForReport(outcome.scenario, outcome.seed, options.canary)
  if (simulation.result.traceHash !== outcome.result.traceHash) {
    process.stderr.write(`seed ${outcome.seed}: the recorded rerun's trace ${simulation.result.traceHash} differs from the swarm's ${outcome.result.traceHash} (run sim check-determinism)\n`)
  }
  const written = writeReports(options.reportDir, simulation, outcome.scenario, replay, { file: yamlFile, text, extra: { "scenario.yaml": text } })
  return [yamlFile, written.directory]
}

/** Shrinks a failed seed's fault schedule and writes the result next to it. */
const shrinkFailure = async (outcome: Swarm.Outcome, failure: SwarmFailure, options: SwarmOptions): Promise<SwarmFailure> => {
  const Shrink = await import("../sim/Shrink.js")
  const shrunk = Shrink.shrink(outcome.scenario, outcome.seed, {
    run: options.canary === undefined ? {} : { canary: options.canary },
    ...(options.shrinkRuns === undefined ? {} : { runsMax: options.shrinkRuns })
  })
  if (shrunk === undefined) return failure
  const file = path.join(options.reportDir, `${shrunk.minimal.scenario.name}-${outcome.seed}.yaml`)
  const replay = replayCommand(file, String(outcome.seed), options.canary)
  writeScenario(file, shrunk.minimal.scenario, `Shrunk by \`sim swarm --shrink\` from seed ${outcome.seed} (${shrunk.runs} runs).`, replay)
  return { ...failure, shrunk: { replay, episodes: shrunk.episodes, runs: shrunk.runs, ...(shrunk.restartDelays === undefined ? {} : { restartDelays: shrunk.restartDelays }) } }
}

/** What shrinking found about restart delays (`Shrink.Shrunk.restartDelays`), as a clause. */
const restartDelaysNote = (restartDelays: "dropped" | "needed" | undefined): string =>
  restartDelays === "needed" ? " (only with restart delays: a process slow to start is part of it)" : restartDelays === "dropped" ? " (also with restarts serving at once: the delays were left out)" : ""

const failureLines = (failure: SwarmFailure): ReadonlyArray<string> => [
  `replay: ${failure.replay}`,
  `  seed ${failure.seed} FAILED: ${failure.messages.join("; ")}`,
  ...(failure.shrunk === undefined
    ? []
    : [`  shrunk from ${failure.shrunk.episodes.from} to ${failure.shrunk.episodes.to} fault episodes in ${failure.shrunk.runs} runs${restartDelaysNote(failure.shrunk.restartDelays)}: ${failure.shrunk.replay}`]),
  ...(failure.files.length === 0 ? [] : [`  wrote ${failure.files.join(", ")}`])
]

/** The terminal progress bar, when stderr is a terminal and the output is not JSON. */
const progressBar = (options: SwarmOptions, total: number): { readonly bars: MultiBar; readonly bar: SingleBar } | undefined => {
  if (options.json === true || process.stderr.isTTY !== true) return undefined
  const unit = options.time === undefined ? "seeds" : "s"
  const bars = new MultiBar(
    { stream: process.stderr, hideCursor: true, clearOnComplete: true, format: `swarm |{bar}| {value}/{total} ${unit} | {seeds} seeds, {failed} failed | {eventsPerSec} events/s | ETA {eta_formatted}` },
    Presets.shades_classic
  )
  const bar = bars.create(total, 0, { seeds: 0, failed: 0, eventsPerSec: 0 })
  bars.update()
  return { bars, bar }
}

/** Wall-clock figures of a whole swarm: the only part of its output that differs between runs (and with `--jobs`). */
interface Elapsed {
  readonly jobs: number
  /** V8's helper threads (`--v8-pool-size`; see `SwarmV8Flags`), undefined for V8's default. */
  readonly helperThreads: number | undefined
  /** This thread's semi-space in MB (`--max-semi-space-size`), undefined for V8's default. */
  readonly semiSpaceMb: number | undefined
  /** Whether garbage collection and optimizing compilation run on the jobs' own threads (`SwarmV8Flags.onJobThreadsFlags`). */
  readonly backgroundOnJobThreads: boolean
  /** The old generation in MB below which V8 does not collect it in full (`--initial-old-space-size`), undefined for V8's default. */
  readonly initialOldSpaceMb: number | undefined
  readonly elapsedMs: number
  readonly seedsPerMin: number
}

/**
 * The swarm's closing lines. A seed on which the simulator itself failed (an exception, such as
 * the judges' reader refusing a disk) is in no tally of checkers, but it is a seed run and failed:
 * the first line counted it as neither, so "99 passed, 0 failed" could close a run that failed.
 */
const summaryLines = (summary: Swarm.Summary, firstSeed: number, failures: ReadonlyArray<SwarmFailure>, elapsed: Elapsed): ReadonlyArray<string> => {
  const crashed = failures.filter((failure) => failure.checkers.length === 1 && failure.checkers[0] === "simulator").length
  const seeds = summary.seeds + crashed
  const byChecker = { ...summary.failuresByChecker, ...(crashed === 0 ? {} : { simulator: crashed }) }
  return [
    `swarm: ${seeds} seeds (${firstSeed}-${firstSeed + seeds - 1}), ${summary.passed} passed, ${summary.failed + crashed} failed`,
    `  trace ${summary.traceHash} (every seed's trace hash, in seed order)`,
    `  ${summary.events} events, ${summary.tasks} tasks, ${opsPerEvent(summary.effectOps, summary.events)} Effect operations per event, ${Math.round(summary.simulatedMs / 1000)} simulated s in ${(summary.wallMs / 1000).toFixed(1)} wall s of runs: ${summary.eventsPerSec} events/s, ${summary.simulatedSecondsPerWallSecond} simulated s per wall s (per job)`,
    `  ${elapsed.jobs} job(s)${elapsed.helperThreads === undefined ? "" : ` and ${elapsed.helperThreads} V8 helper thread(s)`}${elapsed.jobs === 1 && elapsed.semiSpaceMb !== undefined ? ` with a ${elapsed.semiSpaceMb} MB semi-space` : ""}${elapsed.initialOldSpaceMb === undefined ? "" : `, a ${elapsed.initialOldSpaceMb} MB old generation at first`}${elapsed.backgroundOnJobThreads ? ", garbage collection and optimizing compilation on the jobs' threads" : ""}: ${(elapsed.elapsedMs / 1000).toFixed(1)} s elapsed, ${elapsed.seedsPerMin} seeds/min`,
    ...(summary.failed + crashed === 0 ? [] : [`  failures by checker: ${Object.entries(byChecker).map(([checker, count]) => `${checker} ${count}`).join(", ")}`]),
    ...failures.map((failure) => `  replay: ${failure.replay}   [${failure.checkers.join(", ")}]`)
  ]
}

/** Writes the swarm's summary page into the report directory (its path goes to stderr, so stdout stays the same for any run). */
const writeSwarmPage = (options: SwarmOptions, summary: Swarm.Summary, seeds: ReadonlyArray<number>, failures: ReadonlyArray<SwarmFailure>): void => {
  const now = new Date()
  const file = path.join(options.reportDir, `swarm-summary-${RunFolder.stamp(now)}.html`)
  const page = SwarmPage.render({
    seeds: [...new Set([...seeds, ...failures.map((failure) => failure.seed)])],
    failures: failures.map((failure) => ({
      seed: failure.seed,
      replay: failure.replay,
      checkers: failure.checkers,
      messages: failure.messages,
      dimensions: failure.dimensions ?? {},
      link: failure.folder === undefined ? undefined : path.relative(options.reportDir, path.join(failure.folder, "report.html"))
    })),
    failuresByChecker: summary.failuresByChecker,
    traceHash: summary.traceHash,
    createdAt: now.toISOString()
  })
  process.stderr.write(`swarm summary page ${writeFile(file, page)}\n`)
}

/** Runs one seed's drawn scenario, printed like `sim run`. */
const replaySeed = (seed: string, base: Scenario.Scenario | undefined, options: SwarmOptions): void => {
  const scenario = Swarm.scenarioFor(seed, base)
  const file = path.join(options.reportDir, `${scenario.name}-${seed}.yaml`)
  const replay = options.report ? replayCommand(file, seed, options.canary) : commandLine(swarmArgs(options, Number(seed)))
  const text = scenarioText(scenario, `Drawn by \`sim swarm --replay ${seed}\`.`, replay)
  if (options.report) writeFile(file, text)
  runAndReport(scenario, { ...options, seed }, replay, { file, text })
}

/**
 * Runs seeds until the count or the time is used up, on `--jobs` threads. Outcomes are taken
 * in seed order whatever thread ran them, so the tally, the lines printed and the files written
 * are the same for any number of jobs.
 */
const swarm = async (options: SwarmOptions): Promise<void> => {
  const base = options.scenario === undefined ? undefined : readScenario(options.scenario)
  if (options.scenario !== undefined && base === undefined) return
  if (options.replay !== undefined) return replaySeed(options.replay, base, options)
  const missing = SwarmV8Flags.missingFor(options.jobs)
  if (missing.length > 0) {
    process.exitCode = await SwarmV8Flags.rerunWith(missing)
    return
  }
  const startedMs = wallClock()
  const seedCount = options.seeds ?? (options.time === undefined ? defaultSeeds : Number.POSITIVE_INFINITY)
  const progress = progressBar(options, options.time === undefined ? seedCount : Math.round(options.time / 1000))
  const say = (lines: ReadonlyArray<string>) => {
    const text = `${lines.join("\n")}\n`
    if (progress !== undefined) {
      progress.bars.log(text)
      progress.bars.update() // with one job seeds run synchronously, so the bar's own timer never gets to draw
    } else if (options.json === true) process.stderr.write(text)
    else process.stdout.write(text)
  }
  let handedOut = 0
  const nextSeed = (): number | undefined =>
    handedOut < seedCount && (options.time === undefined || wallClock() - startedMs < options.time) ? options.firstSeed + handedOut++ : undefined
  const tally = new Swarm.Tally()
  const failures: Array<SwarmFailure> = []
  const traceHashes: Record<string, string> = {}
  let done = 0
  for await (const outcome of SwarmJobs.outcomes(nextSeed, options.jobs, { base, canary: options.canary })) {
    if (outcome.kind === "crashed") {
      process.stderr.write(`replay: ${commandLine(swarmArgs(options, outcome.seed))}\nthe simulator failed on seed ${outcome.seed}: ${outcome.error}\n`)
      failures.push({ seed: outcome.seed, replay: commandLine(swarmArgs(options, outcome.seed)), checkers: ["simulator"], messages: ["the simulator failed"], files: [] })
    } else {
      const counted = outcome.kind === "passed" ? outcome.counted : outcome.outcome
      tally.add(counted)
      traceHashes[counted.seed] = counted.result.traceHash
    }
    if (outcome.kind === "failed") {
      let failure = recordFailure(outcome.outcome, options)
      say(failureLines(failure).slice(0, 1)) // the replay command first, before shrinking takes a while
      if (options.shrink === true) failure = await shrinkFailure(outcome.outcome, failure, options)
      failures.push(failure)
      say(failureLines(failure).slice(1))
    }
    done++
    const now = tally.summary()
    progress?.bar.update(options.time === undefined ? done : Math.min(Math.round(options.time / 1000), Math.round((wallClock() - startedMs) / 1000)), {
      seeds: done,
      failed: failures.length,
      eventsPerSec: now.eventsPerSec
    })
    progress?.bars.update()
  }
  progress?.bars.stop()
  const summary = tally.summary()
  if (options.report) writeSwarmPage(options, summary, Object.keys(traceHashes).map(Number), failures)
  const elapsedMs = Math.round(wallClock() - startedMs)
  const elapsed: Elapsed = {
    jobs: options.jobs,
    helperThreads: SwarmV8Flags.poolSize(),
    semiSpaceMb: SwarmV8Flags.semiSpaceMb(),
    backgroundOnJobThreads: SwarmV8Flags.backgroundOnJobThreads(),
    initialOldSpaceMb: SwarmV8Flags.initialOldSpaceMb(),
    elapsedMs,
    seedsPerMin: elapsedMs > 0 ? Math.round((done / elapsedMs) * 60_000) : 0
  }
  if (options.json === true) process.stdout.write(`${JSON.stringify({ summary, failures, traceHashes, ...elapsed })}\n`)
  else process.stdout.write(`${summaryLines(summary, options.firstSeed, failures, elapsed).join("\n")}\n`)
  process.exitCode = failures.length > 0 ? 1 : 0
}

// ---------------------------------------------------------------------------------------------
// sim shrink
// ---------------------------------------------------------------------------------------------

interface ShrinkOptions extends ReportOptions {
  readonly seed: string
  readonly canary?: Canary.Name
  readonly runsMax?: number
  readonly search?: number
  readonly json?: boolean
}

const shrinkCommand = async (file: string, options: ShrinkOptions): Promise<void> => {
  const scenario = readScenario(file)
  if (scenario === undefined) return
  const Shrink = await import("../sim/Shrink.js")
  const shrunk = Shrink.shrink(scenario, options.seed, {
    run: { wallClock, ...(options.canary === undefined ? {} : { canary: options.canary }) },
    ...(options.runsMax === undefined ? {} : { runsMax: options.runsMax }),
    ...(options.search === undefined ? {} : { search: options.search })
  })
  if (shrunk === undefined) {
    const what = options.search === undefined ? "the run passes" : `the run and ${options.search} generated schedules pass`
    if (options.json === true) process.stdout.write(`${JSON.stringify({ failed: false })}\n`)
    else process.stdout.write(`seed ${options.seed}: ${what}; nothing to shrink\n`)
    process.exitCode = 0
    return
  }
  const minimal = shrunk.minimal
  const yamlFile = path.join(options.reportDir, `${minimal.scenario.name}-${options.seed}.yaml`)
  const replay = replayCommand(yamlFile, options.seed, options.canary)
  const text = scenarioText(minimal.scenario, `Shrunk by \`sim shrink ${file} --seed ${options.seed}\` in ${shrunk.runs} runs.`, replay)
  writeFile(yamlFile, text)
  const reports = options.report ? [writeReports(options.reportDir, simulateForReport(minimal.scenario, options.seed, options.canary), minimal.scenario, replay, { file: yamlFile, text }).directory] : []
  const outcome = {
    replay,
    scenarioFile: yamlFile,
    checkers: shrunk.checkers,
    runs: shrunk.runs,
    faults: { from: shrunk.original.faults.length, to: minimal.scenario.faults.length },
    episodes: shrunk.episodes,
    ...(shrunk.restartDelays === undefined ? {} : { restartDelays: shrunk.restartDelays }),
    schedule: minimal.scenario.faults,
    violations: minimal.result.violations.map((violation) => `[${violation.checker}] ${violation.message}`),
    reports
  }
  if (options.json === true) {
    process.stderr.write(`replay: ${replay}\n`)
    process.stdout.write(`${JSON.stringify(outcome)}\n`)
  } else {
    process.stdout.write(
      `${[
        `replay: ${replay}`,
        `shrunk ${shrunk.episodes.from} fault episodes (${outcome.faults.from} faults) to ${shrunk.episodes.to} (${outcome.faults.to} faults) in ${shrunk.runs} runs; still fails ${shrunk.checkers.join(", ")}${restartDelaysNote(shrunk.restartDelays)}`,
        ...minimal.scenario.faults.map((fault) => `  ${JSON.stringify(fault)}`),
        ...outcome.violations.map((violation) => `  VIOLATION ${violation}`),
        `wrote ${[yamlFile, ...reports].join(", ")}`
      ].join("\n")}\n`
    )
  }
  process.exitCode = 1
}

// ---------------------------------------------------------------------------------------------
// sim check-determinism
// ---------------------------------------------------------------------------------------------

interface CheckOptions {
  readonly seed: string
  readonly canary?: Canary.Name
  readonly json?: boolean
}

const checkDeterminism = (file: string, options: CheckOptions): void => {
  const scenario = readScenario(file)
  if (scenario === undefined) return
  const outcome = DeterminismCheck.check(scenario, options.seed, { run: options.canary === undefined ? {} : { canary: options.canary } })
  const replay = commandLine(["sim", "check-determinism", file, "--seed", options.seed, ...canaryArgs(options.canary)])
  if (!outcome.identical) process.stderr.write(options.json === true ? `replay: ${replay}\n` : "")
  if (options.json === true) {
    process.stdout.write(`${JSON.stringify(outcome)}\n`)
  } else if (outcome.identical) {
    process.stdout.write(`seed ${options.seed}: both runs identical: ${outcome.events.first} events, every trace hash equal (final ${outcome.traceHash.first}), results equal\n`)
  } else {
    const divergence = outcome.divergence
    const lines =
      divergence === undefined
        ? [`seed ${options.seed}: every event matched, but these result fields differ: ${outcome.differingFields.join(", ")}`]
        : [
            `seed ${options.seed}: the runs differ first at event #${divergence.index} (${outcome.events.first} and ${outcome.events.second} events)`,
            `  last common: ${DeterminismCheck.describeEvent(divergence.lastCommon)}`,
            `  first run:   ${DeterminismCheck.describeEvent(divergence.first)}`,
            `  second run:  ${DeterminismCheck.describeEvent(divergence.second)}`
          ]
    process.stdout.write(`${[`replay: ${replay}`, ...lines].join("\n")}\n`)
  }
  process.exitCode = outcome.identical ? 0 : 1
}

// ---------------------------------------------------------------------------------------------
// The commands
// ---------------------------------------------------------------------------------------------

const runCommand = (): Command =>
  reportOptions(
    new Command("run")
      .summary("run one scenario with one seed")
      .description(
        "Run one scenario with one seed and check it; exit 0 iff no checker found a violation. Writes <report-dir>/<scenario>/<seed>-<utc time>/ " +
          "(result.json, history.jsonl, report.md, report.html; see reports/README.md); on a failure the first line printed is the command that replays it"
      )
      .argument("<scenario-file>", "a scenario YAML file (see scenarios/README.md)")
      .requiredOption("--seed <n>", "the master seed", parseSeed)
      .option("--json", "print exactly one JSON object (the run result) on stdout")
      .addOption(canaryOption())
  )
    .addHelpText("after", examples(["sim run scenarios/two-region-partition.yaml --seed 1", "sim run scenarios/primary-failover.yaml --seed 2 --json --no-report"]))
    .action((file: string, options: RunCommandOptions) => run(file, options))

const swarmCommand = (): Command =>
  reportOptions(
    new Command("swarm")
      .summary("swarm testing: draw every setting from each seed")
      .description(
        "Swarm testing: draw every setting (regions, strategy, graph, clocks, network, workload, faults) from each seed and run it; " +
          "a failure prints its replay command first and writes the drawn scenario to <report-dir>/swarm-<seed>.yaml; exit 1 if any seed failed"
      )
      .addOption(new Option("--seeds <n>", `run this many seeds (default ${defaultSeeds})`).argParser(parseCount))
      .addOption(new Option("--time <duration>", "run seeds until this much wall time has passed (30s, 5m, 1h)").argParser(parseDuration).conflicts("seeds"))
      .option("--first-seed <n>", "the first seed; the next ones follow it", parseCount, 1)
      .option("--jobs <n>", "run seeds on this many worker threads; the output is the same for any number (default: the core count)", parseCount, os.availableParallelism())
      .option("--scenario <file>", "take every setting from this scenario file and draw only its clocks and faults")
      .option("--replay <seed>", "run just this seed's drawn scenario, printed like `sim run`", parseSeed)
      .option("--shrink", "shrink each failure's fault schedule (writes <report-dir>/shrunk-<name>-<seed>.yaml)")
      .option("--shrink-runs <n>", "simulations one shrink may run at most (default 100)", parseCount)
      .option("--json", "print exactly one JSON object (summary and failures) on stdout")
      .addOption(canaryOption())
  )
    .addHelpText("after", examples(["sim swarm --seeds 20", "sim swarm --seeds 300 --jobs 2", "sim swarm --time 5m --first-seed 1000 --shrink", "sim swarm --scenario scenarios/primary-failover.yaml --seeds 50", "sim swarm --replay 7"]))
    .action((options: SwarmOptions) => swarm(options))

const shrinkSubcommand = (): Command =>
  reportOptions(
    new Command("shrink")
      .summary("shrink a failing run's fault schedule")
      .description(
        "Shrink a failing run's fault schedule with fast-check (drop faults, shorten them, move them earlier, make them milder) and write the smallest " +
          "schedule that still fails every checker that flagged the original to <report-dir>/shrunk-<name>-<seed>.yaml; exit 1 when a failure was shrunk, 0 when the run passes"
      )
      .argument("<scenario-file>", "a scenario YAML file (see scenarios/README.md)")
      .requiredOption("--seed <n>", "the master seed", parseSeed)
      .option("--runs-max <n>", "simulations to run at most while shrinking (default 100)", parseCount)
      .option("--search <n>", "instead of the file's own schedule, try up to n schedules drawn from the seed and shrink the first that fails", parseCount)
      .option("--json", "print exactly one JSON object on stdout")
      .addOption(canaryOption())
  )
    .addHelpText("after", examples(["sim shrink reports/swarm-7.yaml --seed 7", "sim shrink scenarios/two-region-partition.yaml --seed 1 --canary keep-local --search 20"]))
    .action((file: string, options: ShrinkOptions) => shrinkCommand(file, options))

const checkDeterminismCommand = (): Command =>
  new Command("check-determinism")
    .summary("run one seed twice and compare the trace after every event")
    .description(
      "Run one scenario and seed twice in this process and compare the trace hash after every event; report the first event that differs " +
        "(index, time, kind, node, details, on both sides); exit 0 iff the runs are identical"
    )
    .argument("<scenario-file>", "a scenario YAML file (see scenarios/README.md)")
    .requiredOption("--seed <n>", "the master seed", parseSeed)
    .option("--json", "print exactly one JSON object on stdout")
    .addOption(canaryOption())
    .addHelpText("after", examples(["sim check-determinism scenarios/two-region-partition.yaml --seed 3"]))
    .action((file: string, options: CheckOptions) => checkDeterminism(file, options))

/** The `sim` command and its subcommands (its description is in main.ts, which lists it without loading this file). */
export const command = (): Command =>
  new Command("sim")
    .addCommand(runCommand())
    .addCommand(swarmCommand())
    .addCommand(shrinkSubcommand())
    .addCommand(checkDeterminismCommand())
