/**
 * `npm run bench:repl`: replication between two real `serve` processes on loopback, each with
 * its own lmdb store (fsync on every commit) and default agent settings. Prints ONE JSON line:
 *
 * - `warmUp` (BENCH_WARMUP_CHANGES, default 100,000; 0 skips it): pushed like `throughput` right
 *   after both processes start, and not counted in the phases below, so they measure processes
 *   whose hot paths V8 has compiled. Its own end-to-end rate says what a cold start costs.
 * - `throughput`: changes per second replicated end to end (committed at the origin, durable
 *   at the target), while writers push as fast as the origin commits. Measured from the first
 *   change's commit at the origin to the last change's apply at the target.
 * - `lag`: at a fixed offered load (default 5,000 changes/s, then 1,000), the replication lag
 *   of every change: its apply time at the target minus its commit time at the origin, both
 *   read from the target's log entries through the public Watch stream once the phase is
 *   applied (`watch` in the JSON; BENCH_LIVE_WATCH=1 tails the stream while the phases run, as
 *   this bench did before, at the cost of a third consumer of CPU). Both processes share
 *   this machine's clock, so the difference has no skew. When the origin cannot commit the
 *   offered load, `committedChangesPerSecond` says what it did and the lag includes the queue.
 *   `writes` is the number of client writes behind the percentiles: a write's changes travel
 *   together, so at 1,000/s for 10 s the p99 is about the second-worst of 99 writes and moves by
 *   several ms from run to run (BENCH_LAG_SECONDS=30 gives a steadier figure).
 *   Two figures say what the lag is made of: `writeAcknowledgedMs` (p50, p99), how long the
 *   client waited for the origin to commit each write, and `batchRoundTripMeanMs`, the mean of
 *   the agent's send-to-acknowledgement round trips in the phase (from the origin's
 *   replication duration histogram on /metrics).
 * - `idleRoundTrip`: after the lag phases, 50 public Check calls to the origin 100 ms apart (a
 *   read: no commit, no replication), p50/p90/max of each one's round trip. Both ends are idle
 *   in between, as a batch's hop from agent to target is at 1,000 changes/s, so this is the
 *   wire's floor under the lag the way `bench:store`'s `loneWrite` is the commit's.
 * - `drain`: the target is stopped, the origin commits a backlog (default 200,000 changes), and
 *   the target is started again on the same disk: how fast it applies the backlog, from its
 *   first applied backlog change to its last (`changesPerSecond`), and how long after it was
 *   ready again the first one arrived (`firstArrivalAfterReadyMs`, the agent's retry backoff).
 * - `bootstrap` (BENCH_BOOTSTRAP=0 skips it): after the drain, the target is stopped, its data
 *   directory deleted (a wiped disk) and the target started again: it pages the origin's whole
 *   log over CatchUp (the engine's Bootstrap, the same code the simulator runs). `entries` and
 *   `applied` are what the target's log line "bootstrap complete" says it received and applied;
 *   `seconds` runs from the spawn of the process to that line (its start-up, `readyAfterMs`,
 *   included: with the default `bootstrap_timeout_ms` of 0 it pages while it starts serving),
 *   and `changesPerSecond` is `entries` over it. `complete` says that the line came within
 *   BENCH_BOOTSTRAP_SECONDS (120) and that the target then held both the first and the last change
 *   the bench wrote. `busyCores` as in the other phases; `peakRssMb` is the bootstrapped process's
 *   own high-water mark (the run's `peakRssMb` below does not include it).
 * - `peakRssMb`: each process's peak resident set (VmHWM from /proc) at the end: the origin's
 *   after the bootstrap phase, whose catch-up pages it serves from its whole log (before
 *   December 7, 2026 it was read before that phase, and the origin's figure left out what
 *   serving them added: 293 MB reported where the bootstrap's samples reached 305); the target's
 *   over its processes before the bootstrap, whose own process is reported in `bootstrap`;
 *   `residentAtEndMb` splits each one's resident set at the end (RssAnon: heap and native
 *   memory; RssFile: mapped files, mostly lmdb's pages, which the kernel may drop at will),
 *   with the JavaScript heap's used and total size (from /metrics) and the size of the node's
 *   data files (`storeFiles`). `residentPeakByPhaseMb`: each process's largest resident set
 *   (VmRSS, with its RssAnon and RssFile) per phase, sampled every 100 ms, with the bench's
 *   reading back of a phase from the target as a phase of its own (`<phase>ReadBack`): which
 *   phase set the peak.
 * - `clientCpuSeconds`: the bench process's own CPU time (it shares the two cores).
 * - `cpuSeconds` and `changesPerCpuSecond`: each process's user+system CPU time over the whole
 *   run (from /proc), and the changes it committed or applied per CPU second.
 * - `nodes` in each phase, per process, from its /metrics before and after the phase
 *   (`nodeMetrics.ts`): `store`, the store's durable commits (how many, transactions per commit,
 *   the commit's duration and each transaction's wait from the end of its body until durable:
 *   mean, p50, p99 estimated from the histogram buckets), and `gcPauses` (count, total ms, and
 *   how many took over 10 ms). A write's acknowledgement and a batch's shipping both wait for
 *   the origin's commit, and a pause stops everything in its process, so these say how much of
 *   the lag's tail is the disk and how much the garbage collector.
 * - `busyCores` in each phase: how many cores each process kept busy on average while the phase
 *   ran (CPU seconds over wall seconds, from /proc), split into its main thread, where all
 *   JavaScript runs, and its other threads (lmdb's commits, V8's compiler and garbage collector
 *   helpers, libuv's pool), and the bench's own share (`client`). A phase whose main thread is
 *   near 1 is bound by that process's JavaScript; one whose total over all processes is near the
 *   machine's cores is bound by the machine. `machine` (Linux, from /proc/stat): the cores the
 *   whole machine kept busy (every process and the kernel's own work, such as loopback traffic),
 *   and how many the hypervisor took from it (`steal`). `mainWaiting` and `othersWaiting` (from each
 *   thread's /proc schedstat): the share of the phase the main thread, and the other threads
 *   summed, spent ready to run but waiting for a core. A main thread that is neither busy nor
 *   waiting for the rest of the phase was idle (waiting for work); one that waits much is held
 *   back by the machine's other threads, not by its own work or its input. The throughput phase
 *   is measured up to the target's last apply, the drain from the target's readiness to its last
 *   apply, each lag phase while its load is offered; reading the phase's log back (Watch) is
 *   outside all of them.
 * - `machine.loadAverage`: os.loadavg() at the start and the end; this machine is shared, so a
 *   figure is comparable with another only at a similar load.
 * - `machine.wakeUp`: how long the machine takes to wake an idle process (`wakeUp.ts`): a
 *   loopback round trip inside the bench, busy and after 100 ms idle, p50, measured before the
 *   nodes start. The lag at low rates crosses several sleeping threads, each as slow to wake.
 * - `machine.crossProcessEcho`: one hop between two processes on this machine (`echoFloor.ts`):
 *   a 100-byte echo to a child process over raw TCP, a Node HTTP/2 stream and a grpc-js unary
 *   call, busy and after 100 ms idle (p50). The grpc-js idle figure is the floor a batch's hop
 *   puts under the lag at low rates, before either commit.
 * - `machine.loneCommit`: how long this disk takes to make one lone write durable
 *   (`commitFloor.ts`): 200 lmdb commits of 200 puts, 20 ms apart, with the store's durability,
 *   p50/p99/max, measured before the nodes start. A change leaves its origin only once its
 *   commit is durable, so at low rates the lag's p99 stands on this p99.
 * - `targets`: issue 11's targets judged against this run's figures (`targets.ts`).
 *
 * Everything is bounded: each phase by a change count and a duration, every wait by a timeout.
 * Progress goes to stderr. Not part of `npm test`. The serve processes run the bundle in dist/,
 * which `npm run bench:repl` first rebuilds when the sources changed (`prebench:repl`), and
 * nothing else: a serve started once the bundle is stale (an edit during the run) exits and fails
 * the bench, where it ran the sources through tsx before December 6, 2026 (`profileEnv`).
 *
 * Environment: BENCH_WARMUP_CHANGES (100000), BENCH_THROUGHPUT_CHANGES (100000), BENCH_THROUGHPUT_SECONDS (20),
 * BENCH_LAG_RATES ("5000,1000"), BENCH_LAG_SECONDS (10), BENCH_CHANGES_PER_WRITE (100),
 * BENCH_WRITERS (16), BENCH_BATCH_SIZE (100, the agent's batch_size), BENCH_BACKLOG_CHANGES
 * (200000; 0 skips the drain phase), BENCH_BOOTSTRAP (unset; 0 skips the bootstrap phase),
 * BENCH_BOOTSTRAP_SECONDS (120), BENCH_CATCH_UP_BATCH_SIZE (unset: the agent's default,
 * 1,000 for a batch_size of 100; else that catch_up_batch_size in both regions), BENCH_WINDOW
 * (unset: the agent's default batches_in_flight_max, else that bound in both regions),
 * BENCH_LIVE_WATCH (unset; 1 tails the target's Watch stream during the phases), BENCH_WRITE_STREAM
 * (unset: the writers send their writes as frames on one WriteStream, `clientTransport` in the
 * JSON; 0: one unary Write call per write, as the bench did until December 2, 2026),
 * BENCH_CPU_PROFILE_DIR (unset; a directory: each serve process writes a V8 CPU profile there
 * when it exits, for `node --cpu-prof` viewers), BENCH_SURVIVOR_PROFILE_DIR (unset; a directory: each
 * serve process writes there, at exit, a sampling heap profile of what outlived the young
 * generation's collections, `<region>-<phase>.heapprofile` with phase start, drain or bootstrap
 * for the process started for it, listed as `survivorProfiles` in the JSON; see
 * `bench/survivorProfile.mjs`, and `node bench/heapProfileTop.mjs FILE` to read one), BENCH_NODE_ARGS (unset; space-separated flags
 * for node itself in both serve processes, such as `--max-semi-space-size=32`, given after the
 * flags every serve is started with, `ServeFlags`, so `--v8-pool-size=4` measures node's default;
 * `nodeArgs` in the JSON lists them all). The serve
 * processes inherit this process's environment, so `INFERADB__ENGINE__REPLICATION__...`
 * variables set their configuration (`..._PROCESS__IDLE_GC=false`, say).
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import type * as Store from "../src/replication/Store.js"
import * as ApiClient from "../src/runtime/ApiClient.js"
import * as ServeFlags from "../src/runtime/ServeFlags.js"
import * as Serve from "../test/runtime/fixtures/serveProcess.js"
import * as NodeMetrics from "./nodeMetrics.js"
import { cpuSeconds, machineCpu, type MachineCpu, peakRssMb, threadCpu, type ThreadCpu } from "./procCpu.js"
import * as CommitFloor from "./commitFloor.js"
import * as EchoFloor from "./echoFloor.js"
import * as Targets from "./targets.js"
import * as WakeUp from "./wakeUp.js"

const numberFromEnv = (name: string, fallback: number): number => {
  const value = Number(process.env[name])
  return Number.isFinite(value) && value > 0 ? value : fallback
}

/**
 * Before phase 1: changes pushed as fast as possible and not measured. A `serve` that has just
 * started runs its hot paths in V8's lower tiers while the optimizing compiler works through them
 * on a helper thread (about 900 functions in the first seconds at the origin, by --trace-opt,
 * 2.7 s of that thread's CPU), so a phase that starts cold measures the start-up as much as the
 * replicator. `warmUp` in the JSON reports this phase as well; 0 skips it (cold, as this bench
 * measured before December 2026).
 */
const warmUpChanges = Number(process.env["BENCH_WARMUP_CHANGES"] ?? 100_000)
/** Phase 1: changes to push, and the longest time to push them. */
const throughputChangesMax = numberFromEnv("BENCH_THROUGHPUT_CHANGES", 100_000)
const throughputSecondsMax = numberFromEnv("BENCH_THROUGHPUT_SECONDS", 20)
/** Phase 2: the offered loads (changes/s, the first is the headline) and how long each is held. */
const lagRates = (process.env["BENCH_LAG_RATES"] ?? "5000,1000")
  .split(",")
  .map(Number)
  .filter((rate) => Number.isFinite(rate) && rate > 0)
const lagSeconds = numberFromEnv("BENCH_LAG_SECONDS", 10)
/**
 * Changes per client write (one transaction at the origin). Concurrent transactions share
 * fsync'ed commits (group commit), but each still costs a round trip and a commit's wait, so the
 * offered load is made of writes of this many changes.
 */
const opsPerWrite = numberFromEnv("BENCH_CHANGES_PER_WRITE", 100)
/** Client writes in flight at once while pushing as fast as possible. */
const writersMax = numberFromEnv("BENCH_WRITERS", 16)
/** Client writes in flight at most while offering a fixed rate (beyond it the schedule falls behind, reported). */
const fixedRateInFlightMax = 64
/** Phase 3: the backlog the stopped target must drain when it comes back. */
const backlogChanges = Number(process.env["BENCH_BACKLOG_CHANGES"] ?? 200_000)
/** Phase 4: whether the target's disk is wiped and bootstrapped again, and how long that may take. */
const bootstrapOn = process.env["BENCH_BOOTSTRAP"] !== "0"
const bootstrapSecondsMax = numberFromEnv("BENCH_BOOTSTRAP_SECONDS", 120)
/** What a bootstrapping node logs when it has paged every source to its log end (`Bootstrap.run`). */
const bootstrapDoneLine = /bootstrap complete after (\d+) round\(s\): (\d+) entries received, (\d+) new/

/**
 * Whether the bench tails the target's Watch stream while the phases run (BENCH_LIVE_WATCH=1,
 * how it measured until November 2026) or reads each phase's entries once the phase is applied.
 * A live tail makes the target encode, and this process decode, every change while both compete
 * with the replicator for the two cores.
 */
const liveWatch = process.env["BENCH_LIVE_WATCH"] === "1"
/** Whether the serve processes (which inherit this environment) send batches on a ReplicateStream. */
const replicationStream = process.env["INFERADB__ENGINE__REPLICATION__GRPC__REPLICATION_STREAM"]?.toLowerCase() !== "false"
/** Whether the bench's writers send their writes on one WriteStream (BENCH_WRITE_STREAM=0: a Write call each). */
const writeStream = process.env["BENCH_WRITE_STREAM"] !== "0"
/** Where the serve processes write CPU profiles, when asked. */
const profileDir = process.env["BENCH_CPU_PROFILE_DIR"]
/** Where the serve processes write heap profiles of what outlived young-generation collections, when asked. */
const survivorDir = process.env["BENCH_SURVIVOR_PROFILE_DIR"] === "" ? undefined : process.env["BENCH_SURVIVOR_PROFILE_DIR"]
/** Node's flags for both serve processes: those every serve is started with (`ServeFlags`), then BENCH_NODE_ARGS, which win. */
const nodeArgs = [
  ...ServeFlags.serveNodeFlags,
  ...(profileDir === undefined || profileDir === "" ? [] : ["--cpu-prof", "--cpu-prof-dir", path.resolve(profileDir)]),
  ...(survivorDir === undefined ? [] : ["--import", path.join(path.dirname(fileURLToPath(import.meta.url)), "survivorProfile.mjs")]),
  ...(process.env["BENCH_NODE_ARGS"] ?? "").split(" ").filter((arg) => arg !== "")
]
/** The survivor profiles the serve processes were asked for, in the order they were started. */
const survivorProfiles: Array<string> = []
/**
 * The environment a serve process started for `phase` gets: the bundle or nothing
 * (`bin/launch.mjs`), unless INFERADB_REPL_SOURCES says otherwise, so that an edit while the
 * bench runs fails the next start instead of measuring the sources; and where it writes its
 * survivor profile, when asked (`bench/survivorProfile.mjs`).
 */
const profileEnv = (region: string, phase: string): Record<string, string> => {
  const bundleOnly = { INFERADB_REPL_SOURCES: process.env["INFERADB_REPL_SOURCES"] ?? "0" }
  if (survivorDir === undefined) return bundleOnly
  fs.mkdirSync(survivorDir, { recursive: true })
  const file = path.resolve(survivorDir, `${region}-${phase}.heapprofile`)
  survivorProfiles.push(file)
  return { ...bundleOnly, BENCH_SURVIVOR_PROFILE: file }
}
/** How long the origin may take to commit the backlog. */
const backlogSecondsMax = 120
/** The agent's batch_size in both regions (the seed's default is 100). */
const batchSize = numberFromEnv("BENCH_BATCH_SIZE", 100)
/** The agent's batches_in_flight_max in both regions; undefined keeps the agent's default. */
const inFlightMax = process.env["BENCH_WINDOW"] === undefined ? undefined : numberFromEnv("BENCH_WINDOW", 1)
/** The agent's catch_up_batch_size in both regions; undefined keeps the agent's default. */
const catchUpBatchSize = process.env["BENCH_CATCH_UP_BATCH_SIZE"] === undefined ? undefined : numberFromEnv("BENCH_CATCH_UP_BATCH_SIZE", batchSize)
/** How long the target may take to receive the last change of a phase. */
const arrivalTimeoutMs = 90_000
/** Scheduling tick of the fixed-rate phase. */
const tickMs = 5
/** The idle round trips: how many, and how far apart. */
const idleRoundTrips = 50
const idleRoundTripGapMs = 100

const ORIGIN = "us-west-1"
const TARGET = "eu-central-1"
const VAULT = "bench"

const progress = (line: string): void => void process.stderr.write(`[bench] ${line}\n`)
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

const yaml = (ports: ReadonlyArray<Serve.RegionPorts>, local: string): string =>
  [
    "replication:",
    "  enabled: true",
    "  strategy: ActiveActive",
    `  local_region: ${local}`,
    "  agent:",
    `    batch_size: ${batchSize}`,
    ...(inFlightMax === undefined ? [] : [`    batches_in_flight_max: ${inFlightMax}`]),
    ...(catchUpBatchSize === undefined ? [] : [`    catch_up_batch_size: ${catchUpBatchSize}`]),
    `    buffer_size: ${Math.max(10_000, batchSize)}`,
    "  security:",
    "    mode: token",
    `    token: ${Serve.token}`,
    "  regions:",
    ...Serve.regionsYaml(ports)
  ].join("\n") + "\n"

/**
 * Each process's largest resident set per phase of the bench, sampled every 100 ms from /proc
 * (VmRSS, with RssAnon and RssFile at that sample). `peakRssMb` is the process's high-water mark
 * over the whole run, the bench's own reading back of each phase (a Watch over the phase's
 * entries) included; this says which phase set it. The label is the phase running, or
 * `<phase>ReadBack` while the bench reads a phase back from the target.
 */
class ResidentByPhase {
  label = "start"
  readonly peaks = new Map<string, Map<string, { rss: number; anon: number; file: number }>>()
  private readonly timer: NodeJS.Timeout
  constructor(private readonly processes: ReadonlyMap<string, Serve.ServeProcess>) {
    // Unreferenced: a bench that fails half-way must still exit.
    this.timer = setInterval(() => this.sample(), 100).unref()
  }
  private sample(): void {
    for (const [region, served] of this.processes) {
      const now = residentNowMb(served.child.pid)
      if (now === undefined) continue
      const byRegion = this.peaks.get(this.label) ?? new Map()
      this.peaks.set(this.label, byRegion)
      if ((byRegion.get(region)?.rss ?? -1) < now.rss) byRegion.set(region, now)
    }
  }
  stop(): Record<string, Record<string, { rss: number; anon: number; file: number }>> {
    clearInterval(this.timer)
    return Object.fromEntries([...this.peaks].map(([label, byRegion]) => [label, Object.fromEntries(byRegion)]))
  }
}

/** VmRSS, RssAnon and RssFile now, in MiB (Linux); undefined elsewhere or once the process is gone. */
const residentNowMb = (pid: number | undefined): { rss: number; anon: number; file: number } | undefined => {
  if (pid === undefined) return undefined
  try {
    const lines = fs.readFileSync(`/proc/${pid}/status`, "utf8").split("\n")
    const field = (name: string) => Math.round(Number(lines.find((line) => line.startsWith(`${name}:`))?.replace(/\D+/g, "") ?? Number.NaN) / 1024)
    const rss = field("VmRSS")
    return Number.isNaN(rss) ? undefined : { rss, anon: field("RssAnon"), file: field("RssFile") }
  } catch {
    return undefined
  }
}

/** A process's resident set now, split into anonymous and file-backed MiB (Linux); undefined elsewhere. */
const residentMb = (pid: number | undefined): { readonly anon: number; readonly file: number } | undefined => {
  const now = residentNowMb(pid)
  return now === undefined ? undefined : { anon: now.anon, file: now.file }
}

/** The JavaScript heap of a node now, from its /metrics (prom-client's default metrics), in MiB. */
const jsHeapMb = async (httpPort: number): Promise<{ readonly used: number; readonly total: number } | undefined> => {
  try {
    const text = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text()
    const read = (name: string) => Math.round(Number(text.match(new RegExp(`^${name} (\\S+)$`, "m"))?.[1] ?? Number.NaN) / 2 ** 20)
    return { used: read("nodejs_heap_size_used_bytes"), total: read("nodejs_heap_size_total_bytes") }
  } catch {
    return undefined
  }
}

/** The size of the files under a node's data directory, in MiB (its lmdb database, mostly). */
const storeFilesMb = (directory: string): number | undefined => {
  try {
    const bytes = fs.readdirSync(directory, { recursive: true, withFileTypes: true })
      .filter((entry) => entry.isFile())
      .reduce((sum, entry) => sum + fs.statSync(path.join(entry.parentPath, entry.name)).size, 0)
    return Math.round(bytes / 2 ** 20)
  } catch {
    return undefined
  }
}

/** A moment's CPU readings of both serve processes, of this one and of the machine. */
interface CpuMark {
  readonly atMs: number
  readonly processes: ReadonlyMap<string, ThreadCpu | undefined>
  readonly client: NodeJS.CpuUsage
  readonly machine: MachineCpu | undefined
}

const markCpu = (processes: ReadonlyMap<string, Serve.ServeProcess>): CpuMark => ({
  atMs: performance.now(),
  processes: new Map([...processes].map(([region, child]) => [region, threadCpu(child.child.pid)])),
  client: process.cpuUsage(),
  machine: machineCpu()
})

const cores = (seconds: number, wallSeconds: number): number => Number((seconds / wallSeconds).toFixed(2))

/** Cores each process kept busy between two marks (see `busyCores` above). */
const busyCores = (before: CpuMark, after: CpuMark): Record<string, unknown> => {
  const wallSeconds = (after.atMs - before.atMs) / 1000
  const regions = [...after.processes].map(([region, now]) => {
    const then = before.processes.get(region)
    if (now === undefined || then === undefined) return [region, undefined] as const
    const main = now.main - then.main
    const others = now.others - then.others
    const mainWaiting = now.mainWaiting === undefined || then.mainWaiting === undefined ? undefined : cores(now.mainWaiting - then.mainWaiting, wallSeconds)
    // A thread that ended between the marks takes its waits with it, so the difference may understate them.
    const othersWaiting = now.othersWaiting === undefined || then.othersWaiting === undefined ? undefined : cores(Math.max(0, now.othersWaiting - then.othersWaiting), wallSeconds)
    return [
      region,
      { total: cores(main + others, wallSeconds), main: cores(main, wallSeconds), others: cores(others, wallSeconds), ...(mainWaiting === undefined ? {} : { mainWaiting, othersWaiting }) }
    ] as const
  })
  const client = (after.client.user + after.client.system - before.client.user - before.client.system) / 1e6
  const machine =
    after.machine === undefined || before.machine === undefined
      ? {}
      : { machine: { busy: cores(after.machine.busy - before.machine.busy, wallSeconds), steal: cores(after.machine.steal - before.machine.steal, wallSeconds) } }
  return { ...Object.fromEntries(regions), client: cores(client, wallSeconds), ...machine, seconds: Number(wallSeconds.toFixed(2)) }
}

const loadAverage = (): ReadonlyArray<number> => os.loadavg().map((value) => Number(value.toFixed(2)))

const percentile = (sorted: ReadonlyArray<number>, fraction: number): number =>
  sorted.length === 0 ? Number.NaN : sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(fraction * sorted.length) - 1))]!

/**
 * The mean of the origin's batch round trips (send to acknowledgement) between two readings of
 * its /metrics, in ms: it splits a phase's lag into the round trip and what comes before the send
 * (the agent's pick-up).
 */
const batchRoundTripMeanMs = (before: NodeMetrics.Reading | undefined, after: NodeMetrics.Reading | undefined): number => {
  if (before === undefined || after === undefined) return Number.NaN
  const trips = NodeMetrics.difference(after.roundTripSeconds, before.roundTripSeconds)
  return trips.count > 0 ? Number(((1000 * trips.sum) / trips.count).toFixed(2)) : Number.NaN
}

/** What the target's Watch stream saw of one phase (keyed by the resource prefix). */
interface Arrivals {
  count: number
  firstCommitMs: number
  lastCommitMs: number
  firstAppliedMs: number
  lastAppliedMs: number
  readonly lagsMs: Array<number>
}

/** Each process's histograms now (`nodeMetrics.ts`), by region. */
const readNodes = async (ports: ReadonlyArray<{ readonly region: string; readonly httpPort: number }>): Promise<Map<string, NodeMetrics.Reading>> =>
  new Map(await Promise.all(ports.map(async (entry) => [entry.region, await NodeMetrics.read(entry.httpPort)] as const)))

/** A phase's store commits and GC pauses in each process, from readings before and after it (none before for a restarted process). */
const nodesDuring = (before: ReadonlyMap<string, NodeMetrics.Reading>, after: ReadonlyMap<string, NodeMetrics.Reading>) =>
  Object.fromEntries([...after].map(([region, reading]) => [region, NodeMetrics.phase(reading, before.get(region))]))

/** Phase 3's figures. */
interface DrainResult {
  readonly changes: number
  readonly complete: boolean
  readonly changesPerSecond: number
  readonly seconds: number
  readonly firstArrivalAfterReadyMs: number
  readonly originCommittedChangesPerSecond: number
  readonly busyCores: Record<string, unknown>
  readonly nodes: Record<string, unknown>
}

const emptyArrivals = (): Arrivals => ({ count: 0, firstCommitMs: Number.POSITIVE_INFINITY, lastCommitMs: 0, firstAppliedMs: Number.POSITIVE_INFINITY, lastAppliedMs: 0, lagsMs: [] })

const operations = (phase: string, write: number): ReadonlyArray<ApiClient.Operation> =>
  Array.from({ length: opsPerWrite }, (_, op) => ({ op: "insert" as const, resource: `${phase}:w${write}`, relation: "viewer", subject: `user:u${op}` }))

/** Phases 1 and 3: as fast as the origin commits, until the change count or the time bound. */
const pushAsFastAsPossible = async (
  client: ApiClient.ApiClient,
  phase: string,
  changesMax: number,
  secondsMax: number
): Promise<{ readonly changes: number; readonly seconds: number }> => {
  const startedMs = Date.now()
  const writesMax = Math.ceil(changesMax / opsPerWrite)
  let next = 0
  let committed = 0
  const writer = async () => {
    while (next < writesMax && Date.now() - startedMs < secondsMax * 1000) {
      const write = next++
      await client.write(VAULT, operations(phase, write))
      committed += opsPerWrite
    }
  }
  await Promise.all(Array.from({ length: writersMax }, writer))
  return { changes: committed, seconds: (Date.now() - startedMs) / 1000 }
}

/** Phase 2: `rate` changes/s for `lagSeconds`, in writes of `opsPerWrite` changes. */
const pushAtFixedRate = async (
  client: ApiClient.ApiClient,
  phase: string,
  rate: number
): Promise<{ readonly changes: number; readonly seconds: number; readonly behindMax: number; readonly acknowledgedMs: ReadonlyArray<number> }> => {
  const startedMs = Date.now()
  const writesPerSecond = rate / opsPerWrite
  const acknowledgedMs: Array<number> = []
  let issued = 0
  let committed = 0
  let inFlight = 0
  let behindMax = 0
  const pending = new Set<Promise<void>>()
  while (Date.now() - startedMs < lagSeconds * 1000) {
    const due = Math.floor(((Date.now() - startedMs) / 1000) * writesPerSecond)
    while (issued < due && inFlight < fixedRateInFlightMax) {
      const write = issued++
      inFlight++
      const sentMs = performance.now()
      const call: Promise<void> = client.write(VAULT, operations(phase, write)).then(() => {
        acknowledgedMs.push(performance.now() - sentMs)
        committed += opsPerWrite
        inFlight--
        pending.delete(call)
      })
      pending.add(call)
    }
    behindMax = Math.max(behindMax, due - issued)
    await sleep(tickMs)
  }
  await Promise.all(pending)
  return { changes: committed, seconds: (Date.now() - startedMs) / 1000, behindMax: behindMax * opsPerWrite, acknowledgedMs }
}

/** The warm-up: pushed like phase 1 and waited for at the target; its figures say how far from warm a cold start is. */
const warm = async (
  origin: ApiClient.ApiClient,
  collect: (name: string, expected: number) => Promise<boolean>,
  arrivalsOf: (name: string) => Arrivals
): Promise<{ readonly changes: number; readonly complete: boolean; readonly changesPerSecond: number }> => {
  progress(`warm-up: ${warmUpChanges} changes as fast as the origin commits, not measured`)
  const pushed = await pushAsFastAsPossible(origin, "warm", warmUpChanges, throughputSecondsMax)
  const complete = await collect("warm", pushed.changes)
  const arrivals = arrivalsOf("warm")
  const seconds = (arrivals.lastAppliedMs - arrivals.firstCommitMs) / 1000
  return { changes: arrivals.count, complete, changesPerSecond: Math.round(arrivals.count / seconds) }
}

/** Round trips of a read (Check) between two otherwise idle processes, `idleRoundTripGapMs` apart. */
const measureIdleRoundTrips = async (client: ApiClient.ApiClient): Promise<{ readonly calls: number; readonly p50Ms: number; readonly p90Ms: number; readonly maxMs: number }> => {
  const tuple = { vault: VAULT, resource: "idle:probe", relation: "viewer", subject: "user:nobody" }
  await client.check(tuple)
  const roundTripsMs: Array<number> = []
  for (let call = 0; call < idleRoundTrips; call++) {
    await sleep(idleRoundTripGapMs)
    const startedMs = performance.now()
    await client.check(tuple)
    roundTripsMs.push(performance.now() - startedMs)
  }
  const sorted = roundTripsMs.sort((a, b) => a - b)
  const ms = (value: number) => Number(value.toFixed(2))
  // Fifty calls: a p99 would be the slowest one, so the tail is given as p90 and the maximum.
  return { calls: sorted.length, p50Ms: ms(percentile(sorted, 0.5)), p90Ms: ms(percentile(sorted, 0.9)), maxMs: ms(sorted[sorted.length - 1]!) }
}

const awaitArrivals = async (arrivals: Arrivals, expected: number): Promise<boolean> => {
  const startedMs = Date.now()
  while (arrivals.count < expected && Date.now() - startedMs < arrivalTimeoutMs) await sleep(20)
  return arrivals.count >= expected
}

/** Phase 4's figures (see `bootstrap` above). */
interface BootstrapResult {
  readonly entries: number
  readonly applied: number
  readonly rounds: number
  readonly complete: boolean
  readonly changesPerSecond: number
  readonly seconds: number
  readonly readyAfterMs: number
  readonly busyCores: Record<string, unknown>
  readonly peakRssMb: number | undefined
  readonly cpuSeconds: number | undefined
  /** The origin, which served every page: its store's size before and after, and its peak resident set (VmHWM) after. */
  readonly source: { readonly storeFilesMb: { readonly before: number | undefined; readonly after: number | undefined }; readonly peakRssMb: number | undefined }
}

/**
 * Phase 4: stops the target, deletes its data directory and starts it again (`start`, which puts
 * the new process in `processes`); it pages the origin's log. Waits for its "bootstrap complete"
 * line, then asks it for `written`, changes the bench wrote before.
 */
const bootstrapPhase = async (
  processes: Map<string, Serve.ServeProcess>,
  target: { readonly dataDir: string; readonly httpPort: number; readonly grpcPort: number; readonly start: () => Serve.ServeProcess },
  sourceDataDir: string,
  written: ReadonlyArray<ApiClient.Operation>
): Promise<BootstrapResult> => {
  const sourceStoreBefore = storeFilesMb(sourceDataDir)
  await Serve.stop(processes.get(TARGET)!, 30_000)
  fs.rmSync(target.dataDir, { recursive: true, force: true })
  const spawnedMs = performance.now()
  const child = target.start()
  processes.set(TARGET, child)
  const before = markCpu(processes)
  let readyAfterMs = Number.NaN
  const ready = Serve.awaitReady(child, target.httpPort, bootstrapSecondsMax * 1000).then(() => void (readyAfterMs = Math.round(performance.now() - spawnedMs)))
  const done = await Serve.eventually(() => bootstrapDoneLine.test(child.output()), bootstrapSecondsMax * 1000, 20)
  const after = markCpu(processes)
  const seconds = (after.atMs - spawnedMs) / 1000
  await ready.catch(() => undefined)
  const [, rounds, entries, applied] = (child.output().match(bootstrapDoneLine) ?? []).map(Number)
  const client = ApiClient.make(`127.0.0.1:${target.grpcPort}`, { token: Serve.token })
  try {
    const held = done ? await Promise.all(written.map((operation) => client.check({ vault: VAULT, resource: operation.resource, relation: operation.relation, subject: operation.subject }))) : []
    return {
      entries: entries ?? 0,
      applied: applied ?? 0,
      rounds: rounds ?? 0,
      complete: done && held.every((present) => present),
      changesPerSecond: Math.round((entries ?? 0) / seconds),
      seconds: Number(seconds.toFixed(2)),
      readyAfterMs,
      busyCores: busyCores(before, after),
      peakRssMb: peakRssMb(child.child.pid),
      cpuSeconds: cpuSeconds(child.child.pid),
      source: { storeFilesMb: { before: sourceStoreBefore, after: storeFilesMb(sourceDataDir) }, peakRssMb: peakRssMb(processes.get(ORIGIN)?.child.pid) }
    }
  } finally {
    client.close()
  }
}

const main = async (): Promise<void> => {
  const loadAtStart = loadAverage()
  const wakeUp = await WakeUp.measure()
  const crossProcessEcho = await EchoFloor.measure()
  progress("the disk's floor: 200 lone lmdb commits, 20 ms apart")
  const loneCommit = await CommitFloor.measure()
  const dir = Serve.tempDir("bench")
  const ports = await Serve.allocate([ORIGIN, TARGET])
  const processes = new Map<string, Serve.ServeProcess>()
  try {
    const serveArgs = (entry: Serve.RegionPorts) => [
      "--config",
      path.join(dir, `${entry.region}.yaml`),
      "--http-port",
      String(entry.httpPort),
      "--data-dir",
      path.join(dir, entry.region),
      "--seed",
      "1"
    ]
    for (const entry of ports) {
      fs.writeFileSync(path.join(dir, `${entry.region}.yaml`), yaml(ports, entry.region))
      processes.set(entry.region, Serve.spawnServe(serveArgs(entry), profileEnv(entry.region, "start"), nodeArgs))
    }
    await Promise.all(ports.map((entry) => Serve.awaitReady(processes.get(entry.region)!, entry.httpPort, 60_000)))
    progress(`two regions ready (lmdb under ${dir})`)
    const phaseResident = new ResidentByPhase(processes)

    const origin = ApiClient.make(`127.0.0.1:${ports[0]!.grpcPort}`, { token: Serve.token, callTimeoutMs: 30_000, writeStream })
    const target = ApiClient.make(`127.0.0.1:${ports[1]!.grpcPort}`, { token: Serve.token })
    // The client of the target's current process (the drain restarts it).
    let targetClient = target
    const phases = new Map<string, Arrivals>()
    let positionSeen = 0
    const record = (entry: Store.LogEntry): void => {
      positionSeen = Math.max(positionSeen, entry.position)
      if (entry.receivedFrom !== ORIGIN) return
      const name = entry.change.tuple.resource.slice(0, entry.change.tuple.resource.indexOf(":"))
      const phase = phases.get(name) ?? emptyArrivals()
      phases.set(name, phase)
      phase.count++
      phase.firstCommitMs = Math.min(phase.firstCommitMs, entry.change.committedAtMs)
      phase.lastAppliedMs = Math.max(phase.lastAppliedMs, entry.appliedAtMs)
      phase.lagsMs.push(entry.appliedAtMs - entry.change.committedAtMs)
      phase.firstAppliedMs = Math.min(phase.firstAppliedMs, entry.appliedAtMs)
      phase.lastCommitMs = Math.max(phase.lastCommitMs, entry.change.committedAtMs)
    }
    let watching = liveWatch ? target.watch(0, record) : undefined
    const arrivalsOf = (name: string): Arrivals => {
      const phase = phases.get(name) ?? emptyArrivals()
      phases.set(name, phase)
      return phase
    }
    /**
     * Waits until the target applied a phase's `expected` changes and records them. Tailing live,
     * they are already arriving; otherwise the target is asked (Check) until it holds the phase's
     * last change, then the phase is read from its log. The figures come from the servers' own
     * timestamps either way, so reading later changes none of them.
     */
    const collect = async (name: string, expected: number, applied: () => void = () => undefined): Promise<boolean> => {
      const arrivals = arrivalsOf(name)
      if (watching !== undefined || expected === 0) return awaitArrivals(arrivals, expected).finally(applied)
      const last = operations(name, expected / opsPerWrite - 1)[opsPerWrite - 1]!
      const client = targetClient
      await Serve.eventually(() => client.check({ vault: VAULT, resource: last.resource, relation: last.relation, subject: last.subject }), arrivalTimeoutMs, 20)
      applied()
      const running = phaseResident.label
      phaseResident.label = `${name}ReadBack`
      const reading = client.watch(positionSeen + 1, record)
      const complete = await awaitArrivals(arrivals, expected)
      reading.cancel()
      phaseResident.label = running
      return complete
    }
    await sleep(200)

    phaseResident.label = "warmUp"
    const warmUp = warmUpChanges > 0 ? await warm(origin, collect, arrivalsOf) : undefined
    phaseResident.label = "throughput"

    progress(`throughput: up to ${throughputChangesMax} changes or ${throughputSecondsMax} s, ${writersMax} writers x ${opsPerWrite} changes per write`)
    const tputNodesBefore = await readNodes(ports)
    const tputStart = markCpu(processes)
    const pushed = await pushAsFastAsPossible(origin, "tput", throughputChangesMax, throughputSecondsMax)
    const tput = arrivalsOf("tput")
    let tputEnd = tputStart
    const tputArrived = await collect("tput", pushed.changes, () => void (tputEnd = markCpu(processes)))
    const tputNodesAfter = await readNodes(ports)
    const replicatedSeconds = (tput.lastAppliedMs - tput.firstCommitMs) / 1000
    const tailSeconds = (tput.lastAppliedMs - tput.lastCommitMs) / 1000
    progress(`throughput: ${pushed.changes} committed in ${pushed.seconds.toFixed(1)} s, ${tput.count} applied at the target ${tailSeconds.toFixed(1)} s after the last commit`)

    const lagResults = []
    for (const rate of lagRates) {
      progress(`lag: ${rate} changes/s offered for ${lagSeconds} s`)
      const name = `lag${rate}`
      phaseResident.label = name
      const nodesBefore = await readNodes(ports)
      const offeredStart = markCpu(processes)
      const offered = await pushAtFixedRate(origin, name, rate)
      const offeredEnd = markCpu(processes)
      const arrivals = arrivalsOf(name)
      const complete = await collect(name, offered.changes)
      const nodesAfter = await readNodes(ports)
      const lags = [...arrivals.lagsMs].sort((a, b) => a - b)
      const acknowledged = [...offered.acknowledgedMs].sort((a, b) => a - b)
      progress(`lag: ${offered.changes} committed, ${arrivals.count} applied at the target, p50 ${percentile(lags, 0.5)} ms, p99 ${percentile(lags, 0.99)} ms`)
      lagResults.push({
        offeredChangesPerSecond: rate,
        committedChangesPerSecond: Math.round(offered.changes / offered.seconds),
        seconds: Number(offered.seconds.toFixed(2)),
        changes: arrivals.count,
        // The changes of one write travel together, so this is the sample behind the percentiles:
        // at 1,000/s for 10 s, p99 is about the second-worst of 99 writes (BENCH_LAG_SECONDS for more).
        writes: Math.round(offered.changes / opsPerWrite),
        complete,
        p50Ms: percentile(lags, 0.5),
        p99Ms: percentile(lags, 0.99),
        maxMs: lags[lags.length - 1] ?? Number.NaN,
        // What the lag is made of: the origin's commit of a client write (as the client waits for
        // it) and the agent's send-to-acknowledgement round trip of a batch.
        writeAcknowledgedMs: { p50: Number(percentile(acknowledged, 0.5).toFixed(1)), p99: Number(percentile(acknowledged, 0.99).toFixed(1)) },
        batchRoundTripMeanMs: batchRoundTripMeanMs(nodesBefore.get(ORIGIN), nodesAfter.get(ORIGIN)),
        scheduleBehindMaxChanges: offered.behindMax,
        busyCores: busyCores(offeredStart, offeredEnd),
        nodes: nodesDuring(nodesBefore, nodesAfter)
      })
    }

    progress(`idle round trips: ${idleRoundTrips} Check calls to the origin, ${idleRoundTripGapMs} ms apart`)
    phaseResident.label = "idleRoundTrip"
    const idleRoundTrip = await measureIdleRoundTrips(origin)
    phaseResident.label = "drain"
    progress(`idle round trips: p50 ${idleRoundTrip.p50Ms} ms, p90 ${idleRoundTrip.p90Ms} ms, max ${idleRoundTrip.maxMs} ms`)

    let drain: DrainResult | undefined
    // The drain's changes, for the bootstrap's check that it brought back the last of them.
    let drained = 0
    let targetBefore = { cpu: 0, rss: 0 }
    if (backlogChanges > 0) {
      // The target goes away; the origin's agent backs off while the backlog builds up.
      progress(`drain: target stopped, origin commits ${backlogChanges} changes`)
      watching?.cancel()
      target.close()
      const targetPorts = ports[1]!
      // The target's figures sum (CPU) or take the larger (peak RSS) over both of its processes.
      targetBefore = { cpu: cpuSeconds(processes.get(TARGET)!.child.pid) ?? 0, rss: peakRssMb(processes.get(TARGET)!.child.pid) ?? 0 }
      await Serve.stop(processes.get(TARGET)!, 30_000)
      const backlog = await pushAsFastAsPossible(origin, "drain", backlogChanges, backlogSecondsMax)
      drained = backlog.changes
      processes.set(TARGET, Serve.spawnServe(serveArgs(targetPorts), profileEnv(TARGET, "drain"), nodeArgs))
      await Serve.awaitReady(processes.get(TARGET)!, targetPorts.httpPort, 60_000)
      // The restarted target has no reading before: its own start-up is in its figures.
      const drainNodesBefore = new Map([...(await readNodes(ports))].filter(([region]) => region !== TARGET))
      const readyMs = Date.now()
      const drainStart = markCpu(processes)
      let drainEnd = drainStart
      const restarted = ApiClient.make(`127.0.0.1:${targetPorts.grpcPort}`, { token: Serve.token })
      targetClient = restarted
      if (liveWatch) watching = restarted.watch(positionSeen + 1, record)
      const arrivals = arrivalsOf("drain")
      const complete = await collect("drain", backlog.changes, () => void (drainEnd = markCpu(processes)))
      // First to last applied backlog change: the rate the target drains at once it is sending.
      const firstAppliedMs = arrivals.firstAppliedMs
      const seconds = (arrivals.lastAppliedMs - firstAppliedMs) / 1000
      drain = {
        changes: arrivals.count,
        complete,
        changesPerSecond: Math.round(arrivals.count / seconds),
        seconds: Number(seconds.toFixed(2)),
        // Readiness is polled, so a first change may land just before it was seen: 0 then.
        firstArrivalAfterReadyMs: Math.max(0, Math.round(firstAppliedMs - readyMs)),
        originCommittedChangesPerSecond: Math.round(backlog.changes / backlog.seconds),
        busyCores: busyCores(drainStart, drainEnd),
        nodes: nodesDuring(drainNodesBefore, await readNodes(ports))
      }
      progress(`drain: ${arrivals.count} of ${backlog.changes} applied in ${seconds.toFixed(1)} s after a restart`)
    }

    const resident = Object.fromEntries(
      await Promise.all(
        ports.map(async (entry) => [
          entry.region,
          { ...residentMb(processes.get(entry.region)!.child.pid), jsHeap: await jsHeapMb(entry.httpPort), storeFiles: storeFilesMb(path.join(dir, entry.region)) }
        ])
      )
    )
    const before = (region: string) => (region === TARGET ? targetBefore : { cpu: 0, rss: 0 })
    const rss = Object.fromEntries(ports.map((entry) => [entry.region, Math.max(before(entry.region).rss, peakRssMb(processes.get(entry.region)!.child.pid) ?? 0)]))
    const cpu = Object.fromEntries(
      ports.map((entry) => [entry.region, Number((before(entry.region).cpu + (cpuSeconds(processes.get(entry.region)!.child.pid) ?? 0)).toFixed(2))])
    )
    // Every change of every phase is committed at the origin and applied at the target.
    const changesTotal = [...phases.values()].reduce((sum, phase) => sum + phase.count, 0)
    const perCpuSecond = Object.fromEntries(
      Object.entries(cpu).map(([region, seconds]) => [region, seconds === undefined || seconds === 0 ? undefined : Math.round(changesTotal / seconds)])
    )
    watching?.cancel()
    targetClient.close()
    let bootstrap: BootstrapResult | undefined
    if (bootstrapOn) {
      progress(`bootstrap: target stopped, its data directory deleted; it starts again and pages the origin's log`)
      phaseResident.label = "bootstrap"
      // The first and last changes of the throughput phase, and the drain's last one: a bootstrap
      // that completed holds them all.
      const written = [operations("tput", 0)[0]!, operations("tput", pushed.changes / opsPerWrite - 1)[opsPerWrite - 1]!, ...(drained > 0 ? [operations("drain", drained / opsPerWrite - 1)[opsPerWrite - 1]!] : [])]
      const targetPorts = ports[1]!
      bootstrap = await bootstrapPhase(
        processes,
        { dataDir: path.join(dir, TARGET), httpPort: targetPorts.httpPort, grpcPort: targetPorts.grpcPort, start: () => Serve.spawnServe(serveArgs(targetPorts), profileEnv(TARGET, "bootstrap"), nodeArgs) },
        path.join(dir, ORIGIN),
        written
      )
      progress(`bootstrap: ${bootstrap.entries} entries received in ${bootstrap.seconds} s (${bootstrap.changesPerSecond}/s), complete: ${bootstrap.complete}`)
    }
    origin.close()
    // The origin served the bootstrap's pages: its high-water mark is read after them.
    const originPeakMb = peakRssMb(processes.get(ORIGIN)?.child.pid)
    if (originPeakMb !== undefined) rss[ORIGIN] = Math.max(rss[ORIGIN] ?? 0, originPeakMb)

    const result = {
      bench: "repl",
      regions: { origin: ORIGIN, target: TARGET },
      store: "lmdb, group commit (concurrent client writes and applied batches share one fsync'ed commit)",
      transport: `gRPC on loopback, token auth, ${replicationStream ? "batches on one ReplicateStream" : "one unary Replicate call per batch"}`,
      clientTransport: writeStream ? "writes on one WriteStream" : "one unary Write call per write",
      nodeArgs,
      ...(survivorDir === undefined ? {} : { survivorProfiles }),
      agent: {
        batchSize,
        flushDelayMs: 10,
        ...(inFlightMax === undefined ? {} : { batchesInFlightMax: inFlightMax }),
        ...(catchUpBatchSize === undefined ? {} : { catchUpBatchSize })
      },
      changesPerWrite: opsPerWrite,
      warmUp,
      watch: liveWatch ? "live, while the phases run" : "after each phase",
      throughput: {
        changesPerSecond: Math.round(tput.count / replicatedSeconds),
        changes: tput.count,
        complete: tputArrived,
        seconds: Number(replicatedSeconds.toFixed(2)),
        originCommittedChangesPerSecond: Math.round(pushed.changes / pushed.seconds),
        originSeconds: Number(pushed.seconds.toFixed(2)),
        targetBehindAtLastCommitSeconds: Number(tailSeconds.toFixed(2)),
        writers: writersMax,
        busyCores: busyCores(tputStart, tputEnd),
        nodes: nodesDuring(tputNodesBefore, tputNodesAfter)
      },
      lag: lagResults[0],
      lagAtOtherRates: lagResults.slice(1),
      idleRoundTrip,
      drain,
      ...(bootstrap === undefined ? {} : { bootstrap }),
      peakRssMb: rss,
      residentPeakByPhaseMb: phaseResident.stop(),
      residentAtEndMb: resident,
      cpuSeconds: cpu,
      clientCpuSeconds: Number(((process.cpuUsage().user + process.cpuUsage().system) / 1e6).toFixed(2)),
      changesPerCpuSecond: perCpuSecond,
      machine: { node: process.version, cpus: os.cpus().length, platform: `${os.platform()} ${os.arch()}`, loadAverage: { start: loadAtStart, end: loadAverage() }, wakeUp, crossProcessEcho, loneCommit }
    }
    process.stdout.write(`${JSON.stringify({ ...result, targets: Targets.summary(Targets.replVerdicts(result), loadAtStart[0]) })}\n`)
  } finally {
    await Promise.all([...processes.values()].map((child) => Serve.stop(child, 10_000)))
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`)
    process.exit(1)
  }
)
