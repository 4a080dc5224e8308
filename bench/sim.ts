/**
 * Simulator throughput (`npm run bench:sim`), printed as ONE JSON line:
 *
 * - in this process, on the simulator's bundle as the command line runs it (`simulator` names it;
 *   the sources through tsx when there is no current bundle): scenarios/three-region-skew-hlc.yaml and scenarios/three-region-skew-wall.yaml
 *   on a fixed set of seeds (alternating them seed by seed, after two warm-up runs each, so JIT
 *   warm-up favours neither): simulated events per wall second and per CPU second, time
 *   compression (simulated seconds per wall second) and seeds per minute, per scenario and overall;
 *   `effectOpsByCause`, where a run's Effect operations go (one more run of seed 1 with
 *   `effortByCause`, outside the timed runs): each kind of event (a message delivered, by type,
 *   to another region or to a sibling; a timer; a client write) with how often it fired and the
 *   operations it and the fiber steps it set going ran, per event and as a share of the run's;
 *   and `effectOpsPerEvent`, the Effect operations the nodes ran per simulated event (counted by
 *   the simulator's schedulers: the work itself, the same on any machine and under any load, so
 *   it compares runs that a busy or slower machine makes hard to compare by time), with
 *   `tasksPerEvent`, the scheduler tasks (a fiber resumed, started or yielding) per event, as
 *   machine-independent and each costing more than an operation;
 * - `swarm`: seeds per minute of `sim swarm` on drawn scenarios (the built CLI, as users run
 *   it), with one job and with one job per core, wall time including the process start, and
 *   `threadCpu`: the CPU seconds of its main threads and of its other threads (with one job,
 *   V8's helpers: the optimizing compiler and the garbage collector's concurrent work), which
 *   says how much of the cores one job per core leaves its seeds, and `peakRssMb`, the largest
 *   peak resident set of its processes (a swarm whose memory grows with its seeds shows here);
 * - `sustainedSwarm`: the same on one job per core over more seeds (400; SWARM_SUSTAINED_SEEDS),
 *   the rate a long swarm runs at once its threads are warm: 40 seeds measure mostly the start
 *   and the JIT's warm-up (a swarm's first seeds cost about 1.4 times its later ones);
 * - `cpuMsPerSimulatedSecond`: CPU milliseconds this process spends per simulated second of a
 *   quiet cluster (full mesh, 50 ms links, no faults) of 2, 3 and 5 regions, idle and under 100
 *   and 1,000 writes/s, one seed each after a warm-up run (CPU time, so a shared machine
 *   disturbs it less than wall time), with the Effect operations per simulated second beside it;
 * - `startUp`: the command line's start as users meet it, in whole processes (wall time, the
 *   median of three runs after one more): `node bin/inferadb-repl.mjs --help`, and `sim run
 *   --seed 1 --no-report` of every shipped simulator scenario (not the chaos ones), with its
 *   exit status and how many took under a second;
 * - the machine's load average before and after, since the machine may be shared: compare
 *   figures only between runs under a similar load (CPU-second figures suffer least from it);
 * - `notes` on where the time goes (garbage collection measured here; the rest from a
 *   `node --cpu-prof` profile);
 * - `targets`: issue 10's targets judged against this run's figures (`targets.ts`).
 *
 *   npm run bench:sim                              12 seeds per scenario, 40 swarm seeds per run
 *   SEEDS=20 SWARM_SEEDS=100 npm run bench:sim     at most 20 and 100
 *   SWARM_SEEDS=0 npm run bench:sim                no short swarm runs
 *   SWARM_SUSTAINED_SEEDS=0 npm run bench:sim      no sustained swarm run
 *   CPU_TABLE=0 npm run bench:sim                  no CPU-per-simulated-second table
 *   STARTUP=0 npm run bench:sim                    no start-up figures
 *
 * Wall time is read here, never inside the simulator (it takes the clock as an option).
 */
import { spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import { PerformanceObserver } from "node:perf_hooks"
import { Either } from "effect"
import { bundleOf } from "../bin/launch.mjs"
import type * as Run from "../src/sim/Run.js"
import * as Scenario from "../src/sim/Scenario.js"
import * as ProcCpu from "./procCpu.js"
import * as Targets from "./targets.js"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")
/**
 * The simulator as the command line runs it: its bundle in dist/ (`prebench:sim` builds it when
 * stale), else its sources, which `simulator` in the JSON names.
 */
const runBundle = bundleOf("src/sim/Run.ts")
const { runScenario } = (await import(runBundle === undefined ? "../src/sim/Run.js" : pathToFileURL(runBundle).href)) as typeof Run
const files = ["scenarios/three-region-skew-hlc.yaml", "scenarios/three-region-skew-wall.yaml"]
const seedsMax = 20
const seeds = Math.min(seedsMax, Math.max(1, Number(process.env["SEEDS"] ?? 12)))
const warmUpRuns = 2
const swarmSeedsMax = 100
const swarmSeeds = Math.min(swarmSeedsMax, Math.max(0, Number(process.env["SWARM_SEEDS"] ?? 40)))
const sustainedSeedsMax = 5_000
const sustainedSeeds = Math.min(sustainedSeedsMax, Math.max(0, Number(process.env["SWARM_SUSTAINED_SEEDS"] ?? 400)))
/** Swarm seeds start here: drawn scenarios, the same every run of the bench. */
const swarmFirstSeed = 1
const cores = os.availableParallelism()

/**
 * From a profile of 60 swarm seeds in one thread (`node --cpu-prof bin/inferadb-repl.mjs sim swarm
 * --seeds 60 --first-seed 7000 --jobs 1 --no-report`, each sample charged to the source file its
 * line of dist/ maps to), with the scheduler tasks and Effect operations that run printed
 * (December 6, 2026).
 */
const profileNotes =
  "profile of December 6, 2026, after the day's third session (not measured by this run; swarm seeds 7000-7059, one job): Effect ~40% (its fiber run loop, a closure and a dispatch per operation, " +
  "spread over every operation with no single hot spot; effectOpsPerEvent counts the operations), src/replication self ~31%, garbage collection ~11% (one job, 32 MB semi-space), " +
  "src/sim self ~13% (network, trace hash, world loop, checkers), protobuf ~2% (the seeds that set wire: bytes); " +
  "seeds 7000-7039 ran 2.04 scheduler tasks and 76 Effect operations per event, against 2.08 and 86 before a node's start stopped building layers, " +
  "pool fibers took their next effect from a hand-over callback and the heartbeater took its services once"

let gcMs = 0
const gc = new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) gcMs += entry.duration
})

const round = (value: number, digits = 1): number => Math.round(value * 10 ** digits) / 10 ** digits

const median = (values: ReadonlyArray<number>): number => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)] ?? 0
}

interface Tally {
  readonly wallMs: Array<number>
  events: number
  tasks: number
  effectOps: number
  simulatedMs: number
}

/** Runs every scenario on every seed, alternating scenarios seed by seed so that JIT warm-up does not favour the later one. */
const measure = (scenarios: ReadonlyArray<Scenario.Scenario>): ReadonlyArray<Tally> => {
  for (let run = 0; run < warmUpRuns; run++) for (const scenario of scenarios) runScenario(scenario, 1_000 + run)
  cpuBefore = process.cpuUsage()
  const tallies: Array<Tally> = scenarios.map(() => ({ wallMs: [], events: 0, tasks: 0, effectOps: 0, simulatedMs: 0 }))
  for (let seed = 1; seed <= seeds; seed++) {
    scenarios.forEach((scenario, index) => {
      const tally = tallies[index]!
      const startedMs = performance.now()
      const result = runScenario(scenario, seed)
      tally.wallMs.push(performance.now() - startedMs)
      tally.events += result.events
      tally.tasks += result.tasks
      tally.effectOps += result.effectOps
      tally.simulatedMs += result.simulatedMs
    })
  }
  return tallies
}

/** The causes that took a run's Effect operations (see `effectOpsByCause` above): seed 1, untimed. */
const opsByCause = (scenario: Scenario.Scenario) => {
  const result = runScenario(scenario, 1, { effortByCause: true })
  return (result.effectOpsByCause ?? []).slice(0, 8).map((entry) => ({
    cause: entry.cause,
    events: entry.events,
    opsPerEvent: entry.events === 0 ? null : Math.round(entry.ops / entry.events),
    shareOfOps: round(entry.ops / result.effectOps, 3)
  }))
}

const summarize = (scenario: Scenario.Scenario, tally: Tally) => {
  const totalWallMs = tally.wallMs.reduce((sum, ms) => sum + ms, 0)
  return {
    scenario: scenario.name,
    seeds,
    eventsPerSec: Math.round((tally.events / totalWallMs) * 1000),
    tasksPerSec: Math.round((tally.tasks / totalWallMs) * 1000),
    effectOpsPerEvent: round(tally.effectOps / tally.events),
    tasksPerEvent: round(tally.tasks / tally.events, 2),
    timeCompression: round(tally.simulatedMs / totalWallMs),
    seedsPerMinute: round((seeds / totalWallMs) * 60_000),
    wallMsPerSeed: { median: Math.round(median(tally.wallMs)), min: Math.round(Math.min(...tally.wallMs)) },
    totals: { events: tally.events, tasks: tally.tasks, effectOps: tally.effectOps, simulatedMs: tally.simulatedMs, wallMs: Math.round(totalWallMs) },
    effectOpsByCause: opsByCause(scenario)
  }
}

const loadAverage = (): ReadonlyArray<number> => os.loadavg().map((value) => round(value, 2))

/**
 * CPU milliseconds used by this process's finished children (Linux: `cutime` and `cstime` of
 * /proc/self/stat, in clock ticks of 10 ms), or undefined elsewhere. A child's CPU time is less
 * sensitive than its wall time to other work on a shared machine.
 */
const childrenCpuMs = (): number | undefined => {
  try {
    const stat = fs.readFileSync("/proc/self/stat", "utf8")
    // cutime and cstime (fields 16 and 17), in clock ticks.
    return ((ProcCpu.statField(stat, 16) + ProcCpu.statField(stat, 17)) * 1000) / ProcCpu.ticksPerSecond
  } catch {
    return undefined
  }
}

/** How often a swarm's threads are read (`threadCpu` in `swarm`). */
const threadSampleMs = 50

/** A command's standard output, with its threads' CPU seconds sampled while it ran (`ProcCpu.TreeThreads`). */
const runSampled = async (
  args: ReadonlyArray<string>
): Promise<{ readonly stdout: string; readonly threads: { readonly main: number; readonly others: number }; readonly peakRssMb: number }> => {
  const child = spawn(process.execPath, args, { cwd: root, stdio: ["ignore", "pipe", "ignore"] })
  const threads = new ProcCpu.TreeThreads(child.pid!)
  const sampler = setInterval(() => threads.sample(), threadSampleMs)
  let stdout = ""
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => void (stdout += chunk))
  await new Promise((resolve) => child.on("close", resolve))
  clearInterval(sampler)
  return { stdout, threads: threads.totals(), peakRssMb: threads.peakRssMb() }
}

/**
 * One `sim swarm --json` run of the CLI on `jobs` threads: its seeds per minute, wall time
 * including the process start, and `threadCpu`, the CPU seconds of its processes' main threads
 * and of all their other threads, read every 50 ms while it runs: with one job the seeds run on
 * a main thread and the others are V8's helpers (its optimizing compiler and the garbage
 * collector's concurrent work) with libuv's pool; with more jobs the worker threads running the
 * seeds are among the others. What the helpers take from the cores is what one job per core
 * cannot use for seeds.
 */
const swarm = async (jobs: number, swarmSeeds: number) => {
  const cpuBeforeMs = childrenCpuMs()
  const args = ["bin/inferadb-repl.mjs", "sim", "swarm", "--seeds", String(swarmSeeds), "--first-seed", String(swarmFirstSeed), "--jobs", String(jobs), "--json", "--no-report"]
  const startedMs = performance.now()
  const child = await runSampled(args)
  const wallMs = performance.now() - startedMs
  const cpuAfterMs = childrenCpuMs()
  const output = JSON.parse(child.stdout) as {
    readonly summary: { readonly passed: number; readonly failed: number; readonly events: number; readonly tasks: number; readonly effectOps: number }
    readonly elapsedMs: number
    readonly helperThreads?: number
    readonly semiSpaceMb?: number
  }
  return {
    jobs,
    // The V8 flags the swarm ran with (src/cli/SwarmV8Flags.ts): one helper thread for more than
    // one job, a 128 MB semi-space for one.
    helperThreads: output.helperThreads ?? "default",
    semiSpaceMb: output.semiSpaceMb ?? "default",
    seeds: swarmSeeds,
    seedsPerMinute: round((swarmSeeds / wallMs) * 60_000),
    seedsPerMinuteAfterStart: round((swarmSeeds / output.elapsedMs) * 60_000),
    wallMs: Math.round(wallMs),
    ...(cpuBeforeMs === undefined || cpuAfterMs === undefined ? {} : { cpuMsPerSeed: Math.round((cpuAfterMs - cpuBeforeMs) / swarmSeeds) }),
    threadCpu: child.threads,
    peakRssMb: child.peakRssMb,
    effectOpsPerEvent: round(output.summary.effectOps / output.summary.events),
    tasksPerEvent: round(output.summary.tasks / output.summary.events, 2),
    passed: output.summary.passed,
    failed: output.summary.failed
  }
}

/** Wall ms of one run of the command line with `args` (the process's start included), and its exit status. */
const commandLine = (args: ReadonlyArray<string>): { readonly wallMs: number; readonly status: number | null } => {
  const startedMs = performance.now()
  const child = spawnSync(process.execPath, ["bin/inferadb-repl.mjs", ...args], { cwd: root, stdio: "ignore" })
  return { wallMs: performance.now() - startedMs, status: child.status }
}

/** How many times each start-up figure is taken; the median is reported. */
const startUpRuns = 3

/**
 * The command line's start as users meet it, wall time of whole processes: `--help` (whose
 * target is 0.5 s) and a `sim run --seed 1 --no-report` of every shipped simulator scenario
 * (target 1 s), each the median of `startUpRuns` runs after one that is not counted.
 */
const startUp = () => {
  const median3 = (args: ReadonlyArray<string>) => {
    commandLine(args)
    const runs = Array.from({ length: startUpRuns }, () => commandLine(args))
    return { wallMs: Math.round(median(runs.map((run) => run.wallMs))), status: runs[0]!.status }
  }
  const scenarioFiles = fs.readdirSync(path.join(root, "scenarios")).filter((name) => name.endsWith(".yaml") && !name.startsWith("chaos-")).sort()
  const simRuns = scenarioFiles.map((name) => {
    const run = median3(["sim", "run", "--seed", "1", "--no-report", `scenarios/${name}`])
    return { scenario: name, wallMs: run.wallMs, exit: run.status }
  })
  return {
    runner: bundleOf("src/cli/main.ts") === undefined ? "sources (through tsx)" : "bundle",
    helpWallMs: median3(["--help"]).wallMs,
    simRunWallMs: { median: Math.round(median(simRuns.map((run) => run.wallMs))), max: Math.max(...simRuns.map((run) => run.wallMs)), underOneSecond: `${simRuns.filter((run) => run.wallMs < 1_000).length} of ${simRuns.length}` },
    simRuns
  }
}

/** A quiet full-mesh cluster of `regions` regions taking `ratePerSec` writes/s for two simulated seconds. */
const quietCluster = (regions: number, ratePerSec: number): Scenario.Scenario =>
  Either.getOrThrowWith(
    Scenario.decode(
      [
        `name: quiet-${regions}-regions-${ratePerSec}-writes`,
        "budget_ms: 60000",
        "topology:",
        "  strategy: ActiveActive",
        "  regions:",
        ...Array.from({ length: regions }, (_, index) => `    - { id: r${index} }`),
        "network:",
        "  latency: { fixed: 50 }",
        "workload:",
        "  duration_ms: 2000",
        `  rate_per_sec: ${ratePerSec}`,
        "  tuples: 1000",
        // A run ends once the regions agree after the last fault; an idle one would end at once.
        "faults:",
        "  - { at_ms: 2000, kind: heal }"
      ].join("\n"),
      "quiet-cluster"
    ),
    (error) => new Error(error.message)
  )

/** CPU ms per simulated second for 2, 3 and 5 regions, idle and at 100 and 1,000 writes/s. */
const cpuTable = () =>
  [2, 3, 5].flatMap((regions) =>
    [0, 100, 1_000].map((ratePerSec) => {
      const scenario = quietCluster(regions, ratePerSec)
      runScenario(scenario, 2)
      const before = process.cpuUsage()
      const result = runScenario(scenario, 1)
      const used = process.cpuUsage(before)
      const simulatedSeconds = result.simulatedMs / 1000
      return {
        regions,
        writesPerSec: ratePerSec,
        simulatedMs: Math.round(result.simulatedMs),
        cpuMsPerSimulatedSecond: round((used.user + used.system) / 1000 / simulatedSeconds),
        effectOpsPerSimulatedSecond: Math.round(result.effectOps / simulatedSeconds)
      }
    })
  )

const load = (file: string): Scenario.Scenario =>
  Either.getOrThrowWith(Scenario.decode(fs.readFileSync(path.join(root, file), "utf8"), file), (error) => new Error(error.message))

const loadBefore = loadAverage()
gc.observe({ entryTypes: ["gc"] })
const startedMs = performance.now()
/** CPU use when the warm-up runs ended. */
let cpuBefore = process.cpuUsage()
const scenarios = files.map(load)
const tallies = measure(scenarios)
const cpu = process.cpuUsage(cpuBefore)
const elapsedMs = performance.now() - startedMs
// GC entries are delivered on a later turn of the event loop.
await new Promise((resolve) => setTimeout(resolve, 10))
gc.disconnect()
const results = scenarios.map((scenario, index) => summarize(scenario, tallies[index]!))
const swarms = []
for (const jobs of swarmSeeds === 0 ? [] : [...new Set([1, cores])]) swarms.push(await swarm(jobs, swarmSeeds))
const sustainedSwarm = sustainedSeeds === 0 ? undefined : await swarm(cores, sustainedSeeds)
const cpuPerSimulatedSecond = process.env["CPU_TABLE"] === "0" ? [] : cpuTable()
const startUpFigures = process.env["STARTUP"] === "0" ? undefined : startUp()
const totals = results.reduce((sum, each) => ({ events: sum.events + each.totals.events, simulatedMs: sum.simulatedMs + each.totals.simulatedMs, wallMs: sum.wallMs + each.totals.wallMs }), { events: 0, simulatedMs: 0, wallMs: 0 })
const figures = {
  bench: "sim",
  node: process.version,
  cores,
  simulator: runBundle === undefined ? "sources (through tsx)" : path.relative(root, runBundle),
  loadAverage: { before: loadBefore, after: loadAverage() },
  eventsPerSec: Math.round((totals.events / totals.wallMs) * 1000),
  eventsPerCpuSec: Math.round((totals.events / ((cpu.user + cpu.system) / 1000)) * 1000),
  timeCompression: round(totals.simulatedMs / totals.wallMs),
  seedsPerMinute: round(((seeds * files.length) / totals.wallMs) * 60_000),
  scenarios: results,
  swarm: swarms,
  ...(sustainedSwarm === undefined ? {} : { sustainedSwarm }),
  cpuMs: Math.round((cpu.user + cpu.system) / 1000),
  cpuMsPerSimulatedSecond: cpuPerSimulatedSecond,
  ...(startUpFigures === undefined ? {} : { startUp: startUpFigures }),
  notes: `gc ${Math.round((gcMs / elapsedMs) * 100)}% of wall time (measured); ${profileNotes}`
}
process.stdout.write(`${JSON.stringify({ ...figures, targets: Targets.summary(Targets.simVerdicts(figures), loadBefore[0]) })}\n`)
