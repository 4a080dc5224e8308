/**
 * One chaos run on real processes: a scenario file (the same format `sim run` reads) and a seed
 * in, a verdict and a run folder out. The seed fixes the clocks' errors, the fault schedule (it
 * is the scenario's) and the workload; the interleaving is the machine's, so a real run is not
 * deterministic and its report says so.
 *
 * The run builds the network (`Netns.ts`), starts one `serve` per node (`Nodes.ts`), follows
 * every node's log through Watch (`Feeds.ts`), sends the workload in real time (`Workload.ts`)
 * and applies each fault at its time: cuts and loss as nftables rules, crash as SIGKILL,
 * restart on the same directory, wipe as a restart on an empty one, pause and resume as
 * SIGSTOP and SIGCONT, clock jumps by rewriting the node's libfaketime file. After the last
 * fault and the end of the workload it heals everything, waits until every node holds the same
 * state, reads each node's whole log and Check answers through the API, and judges them with
 * the simulator's checkers (`Judge.ts`). Whatever happens, every process, namespace and rule it
 * created is removed (`cleanup`, also on SIGINT and SIGTERM).
 */
import { execFile } from "node:child_process"
import { randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { Either } from "effect"
import type * as Change from "../replication/Change.js"
import * as Random from "../replication/Random.js"
import * as ApiClient from "../runtime/ApiClient.js"
import * as RunFolder from "../report/RunFolder.js"
import * as Checkers from "../sim/Checkers.js"
import * as DrainCheck from "../sim/DrainCheck.js"
import * as Node from "../sim/Node.js"
import * as TopologyFaults from "../sim/TopologyFaults.js"
import type { History } from "../sim/History.js"
import type * as Oracle from "../sim/Oracle.js"
import type { RegionState } from "../sim/RegionState.js"
import { type Fault, type Range, type Scenario, encode as encodeScenario, nodesOf, targetNodes, topologyFor } from "../sim/Scenario.js"
import * as Startup from "../sim/Startup.js"
import * as ChaosReport from "./ChaosReport.js"
import * as Clocks from "./Clocks.js"
import * as Defects from "./Defects.js"
import * as Disks from "./Disks.js"
import { Feed, goneWithWipedDisks, readLog } from "./Feeds.js"
import * as Judge from "./Judge.js"
import * as Netns from "./Netns.js"
import * as Nodes from "./Nodes.js"
import * as StoredState from "./StoredState.js"
import * as Workload from "./Workload.js"

/** The canaries a chaos run can start its nodes as (`serve --canary`). */
export const canaries = ["keep-local", "send-dies"] as const
export type Canary = (typeof canaries)[number]

/** Options of a chaos run. */
export interface Options {
  readonly seed: string
  /** Where run folders go: `<reports>/<scenario>/<seed>-<time>/`. */
  readonly reportsRoot: string
  /**
   * A deliberately broken build on every node; the run must then fail. `keep-local`: the canary
   * resolver (caught by what the nodes answer); `send-dies`: batch sends that die below the agent
   * (caught by `defects`, though the run converges).
   */
  readonly canary?: Canary
  readonly log: (line: string) => void
  /** The command that runs this again, for the report (default: a generic one). */
  readonly replay?: string
  /** How long a node may take to become ready. */
  readonly readyTimeoutMs?: number
  /** The scenario file as given and its text, for result.json (default: the scenario as run, written to `scenario.yaml`). */
  readonly scenarioFile?: string
  readonly scenarioText?: string
}

/** A fault as applied, with the run's times: when the scenario put it, when the harness began applying it and when it was done. */
export interface AppliedFault {
  readonly scheduledAtMs: number
  readonly startedAtMs: number
  readonly atMs: number
  readonly kind: string
  readonly detail: string
}

/** Everything a run found; written as `result.json`. */
export interface ChaosResult {
  readonly mode: "chaos"
  readonly scenario: string
  readonly seed: string
  readonly canary: string | null
  readonly deterministic: false
  readonly note: string
  readonly passed: boolean
  readonly converged: boolean
  readonly violations: ReadonlyArray<Checkers.Violation>
  readonly notApplied: ReadonlyArray<string>
  readonly notJudged: ReadonlyArray<string>
  readonly chosen: {
    readonly clocks: Readonly<Record<string, { readonly offsetMs: number; readonly driftPpm: number }>>
    /** How the clients sent their writes (drawn from the seed). */
    readonly clientWrites: "WriteStream" | "Write calls"
  }
  /** Each node's wall-clock error (after its last jump) as its writes showed it: `aheadMs ± withinMs`. */
  readonly clocksObserved: Readonly<Record<string, { readonly samples: number; readonly aheadMs: number; readonly withinMs: number }>>
  /** The harness's wall clock when the schedule started (time 0 of every `atMs`). */
  readonly epochMs: number
  readonly writes: { readonly attempted: number; readonly acknowledged: number; readonly failed: number; readonly unknown: number; readonly notSent: number }
  readonly conflicts: { readonly tuples: number; readonly concurrent: number }
  readonly lostWrites: Checkers.Losses
  readonly lostWithDisk: ReadonlyArray<string>
  /** Change ids only the nodes of a region removed for good held at the end (`Checkers.deployed`). */
  readonly lostWithRemovedRegion: ReadonlyArray<string>
  /** Acknowledged writes whose entries no feed saw before their node's disk was wiped (may have gone with it). */
  readonly unobservedBeforeWipe: ReadonlyArray<number>
  readonly healedAtMs: number
  readonly convergenceMs: number | undefined
  readonly lagMs: { readonly samples: number; readonly p50: number; readonly p90: number; readonly p99: number; readonly max: number }
  readonly faults: ReadonlyArray<AppliedFault>
  readonly nodes: Readonly<
    Record<
      string,
      {
        readonly address: string
        readonly incarnations: number
        readonly exits: ReadonlyArray<string>
        readonly drains: ReadonlyArray<string>
        /** Each change of its view of the primary its processes logged, as the epochs check read it. */
        readonly epochChanges: ReadonlyArray<string>
        readonly logEntries: number
      }
    >
  >
  /**
   * Each restart (or wipe's start): how long the process took to listen (its store open, its
   * gRPC port bound: what the simulator's `startup.restart_ms` stands for, `Startup.ts`) and to be
   * ready (`/readyz`: after a wipe, its bootstrap too, which the simulator runs itself); undefined
   * when it never did.
   */
  readonly restarts: ReadonlyArray<{ readonly node: string; readonly atMs: number; readonly listeningAfterMs: number | undefined; readonly readyAfterMs: number | undefined }>
  readonly wallMs: number
  /** What went wrong on the way without failing the run, e.g. a node that did not start again. */
  readonly notes: ReadonlyArray<string>
  readonly runFolder: string
}

/** A restarted node's start: when it was asked for, when serve listened, when it was ready (∞ until then). */
interface Start {
  readonly node: string
  readonly startMs: number
  listeningMs?: number
  endMs: number
}

/** What the harness does to a node's process: a scenario's process faults, and a graceful crash's stop. */
type ProcessFault = "crash" | "stop" | "restart" | "pause" | "resume" | "wipe"

/**
 * After a graceful stop's process exited, how long the harness lets the peers' feeds deliver what
 * their nodes already hold before it reads them for the `drained` check (a Watch stream trails
 * the store by milliseconds).
 */
const feedSettleMs = 1_000

/** What each process fault does to the process, for the log. */
const processFaultMeans: Readonly<Record<ProcessFault, string>> = {
  crash: "SIGKILL",
  stop: `SIGTERM, SIGKILL if not exited within ${Node.stopTimings.killAfterMs} ms`,
  restart: "same directory",
  pause: "SIGSTOP",
  resume: "SIGCONT",
  wipe: "SIGKILL, empty directory"
}

const probeIntervalMs = 250
/** Convergence must hold on this many probes in a row (a change may still be on its way to a feed). */
const probesStable = 3
const finalReadQuietMs = 500
const finalReadTimeoutMs = 15_000

const progressFile = "progress.jsonl"

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** How long the final read waits before it asks a node that answered UNAVAILABLE again. */
const unavailableRetryMs = 250

/**
 * Runs `read` again while it fails UNAVAILABLE or DEADLINE_EXCEEDED, until `timeoutMs` passed. A
 * node started again just before the end (a wipe at the heal) may be ready while the harness's
 * channel to it still waits out grpc-js's reconnect backoff from the attempts that failed while it
 * was down, and a call then fails at once (on a busy machine, `graceful-stop-wipe` lost a node's
 * final read so). A call also has only the workload's deadline, and on a machine running eleven
 * nodes after a heal a Check took longer than 0.5 s (chaos seed 58036).
 */
const whileUnavailable = async <A>(read: () => Promise<A>, timeoutMs: number): Promise<A> => {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    try {
      return await read()
    } catch (error) {
      const code = (error as { readonly code?: unknown }).code
      const unavailable = code === 14 || code === 4 || /UNAVAILABLE|DEADLINE_EXCEEDED/.test(String(error))
      if (!unavailable || Date.now() >= deadline) throw error
      await sleep(unavailableRetryMs)
    }
  }
}

const draw = (range: Range, random: Random.Stream): number =>
  range.min === range.max ? range.min : Math.round((range.min + random.next() * (range.max - range.min)) * 1000) / 1000

/** Every node's clock error, drawn as the simulator draws it (stream `clock/<node>`). */
/**
 * Half the seeds send their writes as frames on a WriteStream per node, half as a Write call
 * each: both ways a client writes meet the faults, and the judge holds both to the same rules.
 */
const drawWriteStream = (seed: string): boolean => Random.make(seed).derive("client transport").next() < 0.5

const drawClocks = (scenario: Scenario, seed: string, folder: string): Map<string, Clocks.NodeClock> => {
  const master = Random.make(seed)
  return new Map(
    nodesOf(scenario).map(({ nodeId }) => {
      const spec = { ...scenario.clocks.default, ...scenario.clocks.nodes[nodeId] }
      const stream = master.derive(`clock/${nodeId}`)
      const offsetMs = draw(spec.offsetMs, stream)
      const driftPpm = draw(spec.driftPpm, stream)
      return [nodeId, { offsetMs, driftPpm, file: path.join(folder, "nodes", nodeId, "faketime") }]
    })
  )
}

/** The directed links a fault cuts, folded into the run's link state as `SimNetwork` does. */
const applyCut = (scenario: Scenario, blocked: Set<string>, bridges: Set<string>, fault: Fault): string => {
  const regions = scenario.topology.regions.map((region) => region.id)
  const both = (left: string, right: string) => {
    blocked.add(Netns.linkKey(left, right))
    blocked.add(Netns.linkKey(right, left))
  }
  const split = (groups: ReadonlyArray<ReadonlyArray<string>>) =>
    groups.forEach((group, index) => groups.slice(index + 1).forEach((other) => group.forEach((left) => other.forEach((right) => both(left, right)))))
  const text = (groups: ReadonlyArray<ReadonlyArray<string>>) => groups.map((group) => `[${group.join(",")}]`).join(" | ")
  switch (fault.kind) {
    case "isolate":
      for (const other of regions) if (other !== fault.region) both(fault.region, other)
      return `isolate ${fault.region} (nftables)`
    case "split":
      split(fault.groups)
      return `split ${text(fault.groups)} (nftables)`
    case "one_way":
      blocked.add(Netns.linkKey(fault.from, fault.to))
      return `cut ${fault.from} -> ${fault.to} (nftables)`
    case "bridge":
      split(fault.groups)
      bridges.add(fault.node)
      return `split ${text(fault.groups)} bridged by ${fault.node} (nftables)`
    default:
      blocked.clear()
      bridges.clear()
      return "heal network (nftables)"
  }
}

/** A run in progress. */
class ChaosRun {
  readonly startedAt = new Date()
  readonly folder: string
  readonly topology
  readonly rules: Oracle.Rules
  readonly clocks: Map<string, Clocks.NodeClock>
  /** Whether the clients send their writes on WriteStreams (else a Write call each), drawn from the seed. */
  readonly writeStream: boolean
  /** The clock errors drawn from the seed, before any jump. */
  readonly drawnClocks: ReadonlyMap<string, { readonly offsetMs: number; readonly driftPpm: number }>
  readonly faketime = Clocks.library()
  network: Netns.Network | undefined
  nodes: ReadonlyArray<Nodes.Node> = []
  feeds = new Map<string, Feed>()
  clients = new Map<string, ApiClient.ApiClient>()
  readonly blocked = new Set<string>()
  readonly bridges = new Set<string>()
  readonly applied: Array<AppliedFault> = []
  readonly ops: Array<Workload.Op> = []
  readonly durable: Array<{ readonly change: Change.Change; readonly regionId: string; readonly atMs: number }> = []
  readonly lostWithDisk = new Set<string>()
  /** When each node's disk was last wiped (ms since the schedule started). */
  readonly wipedAtMs = new Map<string, number>()
  /** Graceful stops whose drains completed, with their peers' logs as the feeds showed them just after (`DrainCheck`). */
  readonly drained: Array<{ readonly stop: DrainCheck.DrainedStop; readonly peers: DrainCheck.Peers }> = []
  /** Graceful stops under way, until the process exited and its peers were read. */
  readonly stopping = new Set<Promise<void>>()
  /** The replication graph as `topology` faults left it so far (`TopologyFaults`, as the simulator keeps it). */
  graph: TopologyFaults.Graph
  readonly notApplied: Array<string> = []
  readonly notes: Array<string> = []
  /** Nodes being started again, until they are ready. */
  readonly starting = new Set<Promise<void>>()
  /**
   * Stretches in which a restarted process was not serving yet, from the restart (or wipe) until
   * it was ready: a real process takes seconds to start, which the schedule's instant restart
   * does not show, and writes its clients sent meanwhile may fail.
   */
  readonly starts: Array<Start> = []
  /** Restarts due after processes that exited on their own (`restartAfterExit`). */
  readonly supervising = new Set<ReturnType<typeof setTimeout>>()
  /**
   * `progress.jsonl`: what the harness did as it did it, so a run that is interrupted or fails
   * leaves a trace; a finished run replaces it with the report's `history.jsonl`. Written
   * synchronously, so a line recorded before Ctrl-C is on disk after it.
   */
  readonly progress: number
  startMs = 0
  cleaned = false

  constructor(
    readonly scenario: Scenario,
    readonly options: Options
  ) {
    // The report's folder from the start: the nodes' data, configs and logs live in it.
    this.folder = RunFolder.reserve(options.reportsRoot, scenario.name, options.seed, this.startedAt)
    this.progress = fs.openSync(path.join(this.folder, progressFile), "a")
    // The scenario as run (a swarm draws it from the seed), so `chaos run <folder>/scenario.yaml` repeats it.
    fs.writeFileSync(path.join(this.folder, "scenario.yaml"), encodeScenario(scenario))
    this.topology = Either.getOrThrow(topologyFor(scenario, scenario.topology.regions[0]!.id))
    this.graph = TopologyFaults.initial(scenario.topology)
    this.rules = { strategy: scenario.replication.conflictResolution, regionPriorities: scenario.replication.regionPriorities }
    this.clocks = drawClocks(scenario, options.seed, this.folder)
    this.writeStream = drawWriteStream(options.seed)
    this.drawnClocks = new Map([...this.clocks].map(([id, clock]) => [id, { offsetMs: clock.offsetMs, driftPpm: clock.driftPpm }]))
  }

  /** Milliseconds since the schedule started. */
  now(): number {
    return Date.now() - this.startMs
  }

  /**
   * Waits until the run's clock reads `atMs`. A timer may fire up to a millisecond before
   * `Date.now()` has moved that far (Node rounds its timers on another clock), and a fault the
   * harness began at 1,999 ms for 2,000 is early by the judge's reading of its times.
   */
  async until(atMs: number): Promise<void> {
    while (this.now() < atMs) await sleep(atMs - this.now())
  }

  record(event: Record<string, unknown>): void {
    if (this.cleaned) return
    fs.writeSync(this.progress, `${JSON.stringify({ atMs: Math.round(this.now() * 10) / 10, ...event })}\n`)
  }

  launch(): Nodes.Launch {
    return { scenario: this.scenario, network: this.network!, root: Nodes.repositoryRoot(), seed: this.options.seed, faketime: this.faketime, canary: this.options.canary }
  }

  node(nodeId: string): Nodes.Node {
    return this.nodes.find((node) => node.address.nodeId === nodeId)!
  }

  /** The network, the clocks' files and every node, started and ready. */
  async setUp(): Promise<void> {
    const clocksUsed = [...this.clocks.values()].some((clock) => clock.offsetMs !== 0 || clock.driftPpm !== 0) || this.scenario.faults.some((fault) => fault.kind === "clock_jump")
    if (this.faketime === undefined && clocksUsed) this.notApplied.push("clock offsets, drift and jumps: libfaketime is not installed (apt-get install -y faketime)")
    if (this.scenario.network.remote.duplicate > 0 || this.scenario.network.local.duplicate > 0) this.notApplied.push("duplicate: TCP delivers each byte once; duplicated messages are the simulator's alone")
    if (this.scenario.discovery !== undefined) {
      this.notApplied.push("discovery: every node is declared in its configuration (static discovery); the harness has no DNS to take away, so dns_outage does nothing and a replaced pod's crash is a plain crash")
    }
    if (this.scenario.store === "shared") this.notApplied.push("store: shared (one FoundationDB per region) is not available here; every node runs its own lmdb store")
    const storeFaults = this.scenario.faults.flatMap((fault) => (fault.kind === "store" ? [fault] : []))
    if (storeFaults.some((fault) => fault.slowMs.max > 0)) this.notApplied.push("store: slow commits (slow_ms) have no counterpart on a real disk; failing ones are a full disk (see chaos/Disks.ts)")
    if (this.scenario.faults.some((fault) => fault.kind === "stall")) this.notApplied.push("stall: nothing outside a process can make its lmdb commits hang; the simulator's alone (the node's StoreWatch ends a stalled node)")
    if (!(await Nodes.runsBuilt(Nodes.repositoryRoot()))) {
      this.notes.push("the nodes ran from the sources through tsx (dist/ is missing or older than the sources; `npm run build`): each start took seconds longer than a built one")
    }
    const dead = Netns.deadBridges()
    if (dead.length > 0) {
      const named = dead.length > 4 ? `${dead.slice(0, 3).join(", ")} and ${dead.length - 3} more` : dead.join(", ")
      this.notes.push(`${dead.length} bridge(s) left by killed chaos runs, whose subnets this run leaves alone: ${named} (\`inferadb-repl chaos clean\` removes them when no run is in progress)`)
    }
    this.network = Netns.create(randomBytes(2).toString("hex"), nodesOf(this.scenario))
    this.nodes = Nodes.make(this.scenario, this.network, this.folder, this.clocks)
    // Nodes a full-disk fault may hit keep their data on a tmpfs of their own.
    const filledRegions = new Set(storeFaults.filter((fault) => fault.failRate > 0).map((fault) => fault.region))
    for (const node of this.nodes) if (filledRegions.has(node.address.regionId)) node.disk = Disks.mount(node.folder)
    if (this.faketime !== undefined) for (const clock of this.clocks.values()) Clocks.write(clock)
    Netns.apply(this.network, this.linkState())
    // Each process starts at its drawn offset after the first (`Startup.ts`, as the simulator
    // starts them); the run's time starts once every node is ready, so what the nodes made of
    // the staggered start (a primary fenced for peers not up yet, say) carries into the run.
    const offsets = Startup.offsets(this.scenario, this.options.seed)
    const setUpAtMs = Date.now()
    await Promise.all(
      this.nodes.map(async (node) => {
        await sleep((offsets.get(node.address.nodeId) ?? 0) - (Date.now() - setUpAtMs))
        await Nodes.start(this.launch(), node, this.options.readyTimeoutMs ?? 60_000, { onExitOnItsOwn: () => this.restartAfterExit(node) })
      })
    )
    for (const node of this.nodes) {
      const client = ApiClient.make(`${node.address.address}:${Nodes.grpcPort}`, {
        token: Nodes.token,
        writeStream: this.writeStream,
        callTimeoutMs: this.scenario.workload.deadlineMs ?? 3_000,
        // grpc-js backs off up to two minutes between reconnects; a client that must see a
        // restarted node within the run's seconds retries every few hundred milliseconds.
        channelOptions: { "grpc.initial_reconnect_backoff_ms": 100, "grpc.max_reconnect_backoff_ms": 500 }
      })
      this.clients.set(node.address.nodeId, client)
      const feed = new Feed(node.address.nodeId, node.address.regionId, client, (entry) => this.durable.push({ change: entry.change, regionId: node.address.regionId, atMs: this.now() }))
      this.feeds.set(node.address.nodeId, feed)
      feed.start()
    }
  }

  /** The links' state now: which region pairs are cut, which nodes bridge a split, each link's loss. */
  linkState(): Netns.LinkState {
    const links = this.scenario.topology.regions.map((region) => region.id)
    const loss = new Map(links.flatMap((from) => links.map((to) => [Netns.linkKey(from, to), Nodes.linkOf(this.scenario, from, to).loss])))
    return { blocked: this.blocked, bridges: this.bridges, lossOf: (from, to) => loss.get(Netns.linkKey(from, to)) ?? 0 }
  }

  /** Installs the links' state in every namespace (see `Netns.applyInBackground`). */
  applyLinks(): Promise<void> {
    return Netns.applyInBackground(this.network!, this.linkState())
  }

  /** Applies one fault; returns what was done. */
  async apply(fault: Fault): Promise<string> {
    switch (fault.kind) {
      case "isolate":
      case "split":
      case "one_way":
      case "bridge":
      case "heal": {
        const detail = applyCut(this.scenario, this.blocked, this.bridges, fault)
        await this.applyLinks()
        return detail
      }
      case "clock_jump": {
        if (this.faketime === undefined) return `clock_jump of ${fault.target}: not applied (no libfaketime)`
        const affected = targetNodes(this.scenario, fault.target)
        for (const id of affected) {
          const clock = this.clocks.get(id)!
          clock.offsetMs += fault.deltaMs
          Clocks.write(clock)
        }
        return `clock of ${affected.join(",")} jumps ${fault.deltaMs} ms (libfaketime)`
      }
      case "crash":
      case "restart":
      case "pause":
      case "resume":
      case "wipe": {
        const affected = targetNodes(this.scenario, fault.target).map((id) => this.node(id))
        const kind = fault.kind === "crash" && fault.graceful === true ? "stop" : fault.kind
        await Promise.all(affected.map((node) => this.processFault(kind, node)))
        const how = processFaultMeans[kind]
        return `${fault.kind}${kind === "stop" ? " (graceful)" : ""} ${affected.map((node) => node.address.nodeId).join(",")} (${how})`
      }
      case "promote":
        return this.promote(fault.region)
      case "store":
        return this.storeFault(fault.region, fault.failRate > 0)
      case "topology":
        return this.topologyFault(fault.change)
      case "configure": {
        const affected = targetNodes(this.scenario, fault.target).map((id) => this.node(id))
        for (const node of affected) Nodes.configure(this.launch(), node, fault.regionPriorities)
        return `configure ${affected.map((node) => node.address.nodeId).join(",")}: region_priorities [${fault.regionPriorities.join(", ")}] (the file rewritten; the next start reads it)`
      }
      case "dns_outage":
        // Said once in `notApplied`: the nodes are declared, there is no DNS to fail.
        return "dns_outage: not applied (nodes are declared, no DNS)"
      case "stall":
        return `stall of ${fault.target}: not applied (nothing outside a process can make its lmdb commits hang)`
    }
  }

  /**
   * Changes the replication graph and gives every node its region's view of it, as the simulator
   * does (`TopologyFaults.viewOf`), through the operator's path: the node's configuration file
   * rewritten and SIGHUP (`Nodes.reconfigure`).
   */
  topologyFault(change: TopologyFaults.TopologyChange): string {
    const next = TopologyFaults.apply(this.graph, change)
    // A file's schedule is validated; a hand-built one may not fit the graph.
    if (Either.isLeft(next)) return `topology ${TopologyFaults.describe(change)}: not applied, ${next.left}`
    this.graph = next.right
    const refusals = this.nodes.flatMap((node) => {
      const refused = Nodes.reconfigure(this.launch(), node, TopologyFaults.viewOf(this.scenario.topology, this.graph, node.address.regionId))
      return refused === undefined ? [] : [`${node.address.nodeId} (${refused})`]
    })
    // A refusal the simulator's node would make too (`test/chaos/Reloads.test.ts`) is part of the run; said so the report shows it.
    const refused = refusals.length === 0 ? "" : `; serve refuses the new file on ${refusals.join(", ")}`
    return `topology ${TopologyFaults.describe(change)} (every node's configuration rewritten, SIGHUP${refused})`
  }

  /** Fills (or frees) the disks of a region's nodes: commits that need room fail while they are full. */
  async storeFault(regionId: string, failing: boolean): Promise<string> {
    const disks = this.nodes.filter((node) => node.address.regionId === regionId && node.disk !== undefined)
    await Promise.all(disks.map((node) => (failing ? Disks.fill(node.disk!) : Disks.free(node.disk!))))
    const names = disks.map((node) => node.address.nodeId).join(",")
    if (disks.length === 0) return `store of ${regionId}: nothing to ${failing ? "fill" : "free"} (no failing store fault names it)`
    return failing ? `store of ${regionId}: disks of ${names} full (a ${Disks.sizeMb} MB tmpfs each, filled)` : `store of ${regionId}: disks of ${names} have room again`
  }

  /** The operator's promote, as an operator runs it: `inferadb-repl promote` against a running node of the region. */
  async promote(regionId: string): Promise<string> {
    const node = this.nodes.find((candidate) => candidate.address.regionId === regionId && candidate.process !== undefined && !candidate.paused)
    if (node === undefined) return `promote ${regionId}: no running node of the region to ask`
    const address = `${node.address.address}:${Nodes.grpcPort}`
    const answer = await new Promise<string>((resolve) => {
      execFile(
        process.execPath,
        [path.join(Nodes.repositoryRoot(), "bin/inferadb-repl.mjs"), "promote", "--address", address, "--token", Nodes.token, "--json"],
        { timeout: 30_000 },
        (error, stdout, stderr) => resolve(error === null ? stdout.trim() : `refused or failed: ${(stderr || error.message).trim()}`)
      )
    })
    return `promote ${regionId} through ${node.address.nodeId} (inferadb-repl promote): ${answer}`
  }

  /**
   * Once the run is over, every change a wiped disk's feed delivered that no node's current log
   * holds went with that disk. The count at the wipe itself misses what the feed delivered after
   * it: entries the node sent just before its SIGKILL arrive and are read after the kill returns
   * (chaos swarm seed 9940002: two changes acknowledged 3 ms after the wipe began were judged
   * lost for no reason). The count at the wipe stays: a wiped node that never starts again keeps
   * its old log as its feed's current one, which this pass cannot tell from a live disk.
   */
  settleLostWithDisk(): void {
    for (const id of goneWithWipedDisks([...this.feeds.values()])) this.lostWithDisk.add(id)
  }

  async processFault(kind: ProcessFault, node: Nodes.Node): Promise<void> {
    const feed = this.feeds.get(node.address.nodeId)!
    switch (kind) {
      case "crash":
        return Nodes.crash(node)
      case "stop":
        return this.stop(node)
      case "pause":
        return Nodes.pause(node)
      case "resume":
        return Nodes.resume(node)
      case "restart":
        // A node still draining starts again once it has exited, as the simulator's does.
        if (node.exiting !== undefined) return void node.exiting.then(() => node.process === undefined && this.restart(node, () => feed.resume()))
        if (node.process !== undefined) return
        return this.restart(node, () => feed.resume())
      case "wipe": {
        await Nodes.wipe(node)
        this.wipedAtMs.set(node.address.nodeId, this.now())
        // Changes that were on this disk and on no other that the feeds saw went with it.
        const elsewhere = new Set([...this.feeds.values()].filter((other) => other !== feed).flatMap((other) => [...other.ids()]))
        for (const id of feed.ids()) if (!elsewhere.has(id)) this.lostWithDisk.add(id)
        feed.wiped()
        return this.restart(node, () => feed.resume())
      }
    }
  }

  /**
   * Stops a node gracefully without holding up the schedule (`Nodes.stop`); once it has exited and
   * the feeds settled, reads what its drain claimed and its peers' logs for the `drained` check.
   */
  stop(node: Nodes.Node): void {
    const askedAtMs = this.now()
    const incarnation = node.incarnations
    // The disk the drain covered: a wipe right after the exit must not pass for an older one.
    const bornAtMs = this.wipedAtMs.get(node.address.nodeId) ?? 0
    Nodes.stop(node, Node.stopTimings.killAfterMs)
    if (node.exiting === undefined) return
    const settled = node.exiting.then(() => sleep(feedSettleMs)).then(() => this.noteDrain(node, { incarnation, askedAtMs, bornAtMs }))
    this.stopping.add(settled)
    void settled.finally(() => this.stopping.delete(settled))
  }

  /**
   * Keeps a completed drain of `node`'s `incarnation` with its peers' logs as they are now
   * (`DrainCheck`): what their feeds showed, and what their disks hold. A feed alone misses what a
   * peer applied while it was stopping itself: `serve` withdraws its API, Watch included, at
   * SIGTERM and still applies batches until it closes. Chaos seed 58029: a sibling applied the
   * drained node's two changes during its own drain and was not back before the judge looked, so
   * a drain that had told the truth was judged a violation.
   */
  noteDrain(node: Nodes.Node, { incarnation, askedAtMs, bornAtMs }: { readonly incarnation: number; readonly askedAtMs: number; readonly bornAtMs: number }): void {
    const line = [...node.drains].reverse().find((drain) => drain.incarnation === incarnation)
    const regionId = node.address.regionId
    if (line === undefined || !line.complete || line.logEnd === undefined || this.graph.removed.has(regionId)) return
    const disk = (nodeId: string): DrainCheck.Disk =>
      DrainCheck.diskOf(nodeId, [...this.feeds.get(nodeId)!.log.map((entry) => entry.change), ...this.storedChanges(nodeId)], this.wipedAtMs.get(nodeId) ?? 0)
    const nodesOf = (region: string) => this.nodes.filter((candidate) => candidate.address.regionId === region).map((candidate) => candidate.address.nodeId)
    const targets = (this.graph.targets[regionId] ?? []).filter((target) => target !== regionId && !this.graph.removed.has(target))
    this.drained.push({
      // The writes acknowledged before the signal are the ones the drain surely covers: a real client cannot tell when the node began it.
      stop: { nodeId: node.address.nodeId, drainFromMs: askedAtMs, drainedAtMs: Math.round(line.atWallMs - this.startMs), logEnd: line.logEnd },
      peers: {
        ownBornAtMs: bornAtMs,
        siblings: nodesOf(regionId).filter((id) => id !== node.address.nodeId).map(disk),
        targets: targets.map((target) => ({ regionId: target, disks: nodesOf(target).map(disk) })),
        anyOther: false,
        allowed: Checkers.allowedBy(this.scenario.topology.vaults)
      }
    })
  }

  /**
   * The changes in `nodeId`'s log on its disk now (`StoredState`, a consistent snapshot even while
   * the node runs); none when the disk cannot be read (wiped, or not created yet): its feed then
   * stands alone, as before.
   */
  storedChanges(nodeId: string): ReadonlyArray<Change.Change> {
    const node = this.node(nodeId)
    try {
      return StoredState.read(node.address.regionId, nodeId, Nodes.dataDir(node)).log.map((entry) => entry.change)
    } catch {
      return []
    }
  }

  /**
   * Starts a node again without holding up the schedule (a node takes a second or more to be
   * ready, and the next fault is due at its own time); the feed follows once it is ready.
   */
  restart(node: Nodes.Node, then: () => void): void {
    const start: Start = { node: node.address.nodeId, startMs: this.now(), endMs: Number.POSITIVE_INFINITY }
    this.starts.push(start)
    const listening = () => void (start.listeningMs ??= this.now())
    const ready = Nodes.start(this.launch(), node, this.options.readyTimeoutMs ?? 60_000, { onListening: listening, onExitOnItsOwn: () => this.restartAfterExit(node) }).then(() => {
      start.endMs = this.now()
      then()
    }, (error: Error) => {
      this.record({ type: "note", node: node.address.nodeId, message: error.message })
      this.notes.push(`${Math.round(this.now())} ms: ${node.address.nodeId}: ${error.message}`)
      this.options.log(`  ${node.address.nodeId}: ${error.message}`)
    })
    this.starting.add(ready)
    void ready.finally(() => this.starting.delete(ready))
  }

  /**
   * A process that exited on its own (`serve` refusing its configuration, or dying of a bug) is
   * started again `Startup.restartAfterExitMs` later, as Kubernetes restarts a container and the
   * simulator restarts such an incarnation, unless a fault started, stopped or crashed it
   * meanwhile (a crashed node stays down until the schedule restarts it). Until December 5, 2026
   * it stayed down until the heal here, where the simulator's came back.
   */
  restartAfterExit(node: Nodes.Node): void {
    const nodeId = node.address.nodeId
    const crashes = node.crashes
    const message = `exited on its own (${node.exits[node.exits.length - 1] ?? "?"}); started again ${Startup.restartAfterExitMs} ms later, as its supervisor would`
    this.record({ type: "note", node: nodeId, message })
    this.notes.push(`${Math.round(this.now())} ms: ${nodeId}: ${message}`)
    this.options.log(`  ${String(Math.round(this.now())).padStart(6)} ms  ${nodeId} ${message}`)
    const timer = setTimeout(() => {
      this.supervising.delete(timer)
      if (this.cleaned || node.process !== undefined || node.exiting !== undefined || node.crashes !== crashes) return
      this.restart(node, () => this.feeds.get(nodeId)?.resume())
    }, Startup.restartAfterExitMs)
    this.supervising.add(timer)
  }

  /** Runs the schedule: faults in order on one chain, writes each on its own; resolves after heal-all and every write's answer. */
  async execute(): Promise<number> {
    const lastFaultMs = this.scenario.faults.reduce((latest, fault) => Math.max(latest, fault.atMs), 0)
    const workload = this.scenario.workload
    const workloadEndMs = workload.durationMs > 0 && workload.ratePerSec > 0 ? workload.startMs + workload.durationMs : 0
    const healedAtMs = Math.max(lastFaultMs, workloadEndMs)
    this.startMs = Date.now()
    const clients: Workload.Clients = {
      client: (nodeId) => this.clients.get(nodeId)!,
      nodesIn: (regionId) => this.nodes.filter((node) => node.address.regionId === regionId).map((node) => node.address.nodeId),
      regionOf: (nodeId) => this.node(nodeId).address.regionId,
      generationOf: (nodeId) => this.node(nodeId).generation
    }
    const writes = Workload.draw(this.scenario, this.options.seed).map(async (planned) => {
      const op = Workload.record(planned)
      this.ops.push(op)
      await this.until(planned.atMs)
      this.record({ type: "invoke", id: op.id, region: op.region, node: op.node, operations: op.operations })
      await Workload.send(op, clients, () => this.now())
      this.record({ type: op.status, id: op.id, ...(op.target === op.node ? {} : { redirectedTo: op.target }), ...(op.revision === undefined ? {} : { revision: op.revision, position: op.position }), ...(op.reason === undefined ? {} : { reason: op.reason }) })
    })
    for (const fault of this.scenario.faults) {
      await this.until(fault.atMs)
      await this.applyTimed(fault.kind, fault.atMs, () => this.apply(fault))
    }
    await this.until(healedAtMs)
    await this.applyTimed("heal_all", healedAtMs, () => this.healAll())
    await Promise.all(writes)
    // The heal as it happened: on a busy machine the harness applies faults late, and a fault
    // such as a full disk takes time to apply (see `Judge.windowsAsRun`).
    return this.applied[this.applied.length - 1]!.atMs
  }

  /** Applies a fault and records when it began and when it was done, in `applied` and the history. */
  async applyTimed(kind: string, scheduledAtMs: number, apply: () => Promise<string>): Promise<void> {
    const startedAtMs = Math.round(this.now())
    const detail = await apply()
    this.applied.push({ scheduledAtMs, startedAtMs, atMs: Math.round(this.now()), kind, detail })
    this.record({ type: "fault", kind, detail })
    this.options.log(`  ${String(Math.round(this.now())).padStart(6)} ms  ${detail}`)
  }

  async healAll(): Promise<string> {
    applyCut(this.scenario, this.blocked, this.bridges, { atMs: 0, kind: "heal" })
    await this.applyLinks()
    // Room first, so that a node started again below does not start on a full disk.
    const freed = this.nodes.filter((node) => node.disk?.full === true)
    for (const node of freed) Disks.free(node.disk!)
    const resumed = this.nodes.filter((node) => node.paused)
    for (const node of resumed) Nodes.resume(node)
    // Nodes still draining exit first (bounded by the kill after the grace period), then start again below.
    await Promise.all([...this.stopping])
    await Promise.all([...this.starting])
    const restarted = this.nodes.filter((node) => node.process === undefined)
    for (const node of restarted) await this.processFault("restart", node)
    await Promise.all([...this.starting])
    const parts = [
      "heal network",
      ...(resumed.length > 0 ? [`resume ${resumed.map((node) => node.address.nodeId).join(",")}`] : []),
      ...(restarted.length > 0 ? [`restart ${restarted.map((node) => node.address.nodeId).join(",")}`] : []),
      ...(freed.length > 0 ? [`free the disks of ${freed.map((node) => node.address.nodeId).join(",")}`] : [])
    ]
    return `heal all: ${parts.join(", ")}`
  }

  regionsFromFeeds(): ReadonlyArray<RegionState> {
    return this.nodes.map((node) => Judge.regionState(node.address.regionId, node.address.nodeId, this.feeds.get(node.address.nodeId)!.log))
  }

  /** Probes until the nodes hold the same state on `probesStable` probes in a row, or the budget ends; returns when. */
  async awaitConvergence(): Promise<number | undefined> {
    let stable = 0
    while (this.now() < this.scenario.budgetMs) {
      if (Judge.converged(this.regionsFromFeeds(), this.topology, this.rules, this.graph.removed)) {
        if (++stable >= probesStable) return this.now() - (probesStable - 1) * probeIntervalMs
      } else stable = 0
      await sleep(probeIntervalMs)
    }
    return undefined
  }

  /**
   * When the failover story is checked under PrimaryReplica, waits (within the budget, as for
   * convergence) until every node's latest serve process logged the original primary as its
   * view, unfenced: the hand-back comes `promote_back_after_ms` after the original region is
   * back, often after the data converged, and the judge asks for it as the simulator does
   * (`Judge.judgeServingAtEnd`). Until December 6, 2026 a run was judged at convergence and who
   * served at the end was not judged on real processes.
   */
  async awaitServing(): Promise<void> {
    const { scenario } = this
    if (!scenario.checks.includes("failover")) return
    const serving = () => Judge.notServingAtEnd(scenario, epochLogsOf(this.nodes, this.startMs), this.graph.removed).length === 0
    while (this.now() < scenario.budgetMs && !serving()) await sleep(probeIntervalMs)
  }

  /**
   * Each node's disk (`StoredState`), read while the node runs (an LMDB read transaction is a
   * consistent snapshot); a disk that does not read as the documented layout is a
   * `store_integrity` violation.
   */
  readStored(): { readonly stored: ReadonlyArray<RegionState>; readonly unreadable: ReadonlyArray<Checkers.Violation> } {
    const stored: Array<RegionState> = []
    const unreadable: Array<Checkers.Violation> = []
    for (const node of this.nodes) {
      try {
        stored.push(StoredState.read(node.address.regionId, node.address.nodeId, Nodes.dataDir(node)))
      } catch (error) {
        unreadable.push({
          checker: "store_integrity",
          message: `${node.address.nodeId}'s disk could not be read: ${error instanceof Error ? error.message : String(error)}`,
          details: { node: node.address.nodeId, directory: Nodes.dataDir(node) }
        })
      }
    }
    return { stored, unreadable }
  }

  /** Each node's whole log and its Check answer for every tuple any node holds, through the API. */
  async readFinal(): Promise<{ readonly regions: ReadonlyArray<RegionState>; readonly served: Map<string, Map<string, boolean>>; readonly unreadable: ReadonlyArray<Checkers.Violation> }> {
    const unreadable: Array<Checkers.Violation> = []
    const read = await Promise.all(
      this.nodes.map(async (node) => {
        try {
          const delivered = this.feeds.get(node.address.nodeId)!.log.length
          const log = await whileUnavailable(() => readLog(this.clients.get(node.address.nodeId)!, finalReadQuietMs, finalReadTimeoutMs, delivered), finalReadTimeoutMs)
          return Judge.regionState(node.address.regionId, node.address.nodeId, log)
        } catch (error) {
          unreadable.push(unreadableViolation(node, error))
          return undefined
        }
      })
    )
    const regions = read.filter((region): region is RegionState => region !== undefined)
    const tuples = new Map(regions.flatMap((region) => [...region.tuples].map(([key, held]) => [key, held.tuple] as const)))
    // Every node at once, `checksInFlight` calls each: one call at a time, a run with a few hundred
    // tuples behind the delay proxy spent half a minute here (scenarios/small-messages.yaml).
    const answered = await Promise.all(
      regions.map(async (region) => {
        const client = this.clients.get(region.replica)!
        const answers = new Map<string, boolean>()
        const held = [...tuples].filter(([key]) => region.tuples.has(key))
        try {
          const until = Date.now() + finalReadTimeoutMs
          for (let from = 0; from < held.length; from += checksInFlight) {
            const slice = held.slice(from, from + checksInFlight)
            const results = await Promise.all(slice.map(([, tuple]) => whileUnavailable(() => client.check(tuple), Math.max(0, until - Date.now()))))
            slice.forEach(([key], index) => answers.set(key, results[index]!))
          }
          return { region, answers, error: undefined }
        } catch (error) {
          return { region, answers, error: unreadableViolation(this.node(region.replica), error) }
        }
      })
    )
    // In region order, whichever node answered first.
    for (const { error } of answered) if (error !== undefined) unreadable.push(error)
    return { regions, served: new Map(answered.map(({ region, answers }) => [region.replica, answers])), unreadable }
  }

  /** The changes an acknowledged write committed, as the feed of the node that took it streamed them. */
  changesOf(op: Workload.Op): ReadonlyArray<Change.Change> {
    if (op.revision === undefined) return []
    return this.feeds
      .get(op.target)!
      .entriesOf(op.revision)
      .map((entry) => entry.change)
  }

  /** Stops every process and removes the network. Synchronous parts first, so it also works from an exit handler. */
  async cleanup(): Promise<void> {
    if (this.cleaned) return
    this.cleaned = true
    for (const timer of this.supervising) clearTimeout(timer)
    for (const feed of this.feeds.values()) feed.stop()
    for (const client of this.clients.values()) client.close()
    await Promise.all(this.nodes.map((node) => Nodes.destroy(node)))
    // What a tmpfs held goes into the node's folder, where the report keeps every node's data.
    for (const node of this.nodes) if (node.disk !== undefined) Disks.unmount(node.disk, node.folder)
    if (this.network !== undefined) Netns.remove(this.network)
    fs.closeSync(this.progress)
  }

  /** The last resort on a signal or exit: SIGKILL every child and remove the network, synchronously. */
  cleanupNow(): void {
    for (const node of this.nodes) {
      node.process?.kill("SIGCONT")
      node.process?.kill("SIGKILL")
      node.proxy?.kill("SIGKILL")
      if (node.disk !== undefined) Disks.unmountNow(node.disk)
    }
    if (this.network !== undefined) Netns.remove(this.network)
    this.cleaned = true
  }
}

/** Check calls in flight per node while the final answers are read. */
const checksInFlight = 16

/** A node that could not be read after the run: it is down or does not answer, so the run did not end whole. */
const unreadableViolation = (node: Nodes.Node, error: unknown): Checkers.Violation => ({
  checker: "liveness",
  message: `${node.address.nodeId} could not be read after the run: ${error instanceof Error ? error.message : String(error)}`,
  details: { node: node.address.nodeId, exits: node.exits, log: path.join(node.folder, "serve.log") }
})

/**
 * Runs a scenario on real processes; the run folder (`report/RunFolder.ts`) holds result.json,
 * history.jsonl, report.md and report.html (`ChaosReport.ts`), the scenario as run, and each
 * node's config, data and log under `nodes/`.
 */
export const run = async (scenario: Scenario, options: Options): Promise<ChaosResult> => {
  const reason = Netns.unavailable()
  if (reason !== undefined) throw new Error(`chaos needs network namespaces and nftables: ${reason}`)
  const chaos = new ChaosRun(scenario, options)
  const onSignal = (signal: NodeJS.Signals) => {
    chaos.cleanupNow()
    process.exit(signal === "SIGINT" ? 130 : 143)
  }
  const onExit = () => chaos.cleanupNow()
  process.once("SIGINT", onSignal)
  process.once("SIGTERM", onSignal)
  process.once("exit", onExit)
  const wallStart = Date.now()
  try {
    await chaos.setUp()
    if (chaos.notApplied.length > 0) options.log(`not applied: ${chaos.notApplied.join("; ")}`)
    for (const note of chaos.notes) options.log(`note: ${note}`)
    options.log(`nodes up: ${chaos.nodes.map((node) => `${node.address.nodeId} ${node.address.address}`).join(", ")}; run folder ${chaos.folder}`)
    const healedAtMs = await chaos.execute()
    const convergedAtMs = await chaos.awaitConvergence()
    await chaos.awaitServing()
    const final = await chaos.readFinal()
    chaos.settleLostWithDisk()
    const disks = scenario.checks.includes("store_integrity") ? chaos.readStored() : { stored: [], unreadable: [] }
    const history = Judge.history(chaos.ops, (nodeId) => chaos.node(nodeId).address.regionId, (op) => chaos.changesOf(op), chaos.durable)
    const epochLogs = epochLogsOf(chaos.nodes, chaos.startMs)
    const judged = Judge.judge({
      scenario,
      topology: chaos.topology,
      rules: chaos.rules,
      regions: final.regions,
      stored: disks.stored,
      served: final.served,
      history,
      converged: convergedAtMs !== undefined && Judge.converged(final.regions, chaos.topology, chaos.rules, chaos.graph.removed),
      healedAtMs,
      applied: chaos.applied,
      starting: chaos.starts,
      epochMs: chaos.startMs,
      lostWithDisk: chaos.lostWithDisk,
      drained: chaos.drained,
      epochLogs,
      unobserved: chaos.ops
        .filter((op) => op.status === "acknowledged" && chaos.changesOf(op).length === 0)
        .map((op) => ({ op, wipedAfter: chaos.node(op.target).generation !== op.generation }))
    })
    const defects = Defects.violations(chaos.nodes.map((node) => ({ nodeId: node.address.nodeId, defects: node.defects, log: path.join(node.folder, "serve.log") })))
    const violations = [...final.unreadable, ...disks.unreadable, ...defects, ...judged.violations]
    const verdicts = judged.verdicts
    const { losses } = Checkers.classifyLosses(history.writes, verdicts, history, scenario.replication.conflictResolution)
    const result = summarize(chaos, { violations, verdicts, losses, lostWithRegion: judged.lostWithRegion, healedAtMs, convergedAtMs, history, regions: final.regions, wallMs: Date.now() - wallStart })
    const failover = Judge.failoverOf({ scenario, history, epochLogs, applied: chaos.applied })
    const report = ChaosReport.make({ scenario, replay: options.replay ?? replayCommand(scenario, options), result, history, verdicts, durationMs: chaos.now(), failover })
    await chaos.cleanup()
    RunFolder.write(options.reportsRoot, report, {
      now: new Date(),
      directory: chaos.folder,
      scenarioText: options.scenarioText ?? encodeScenario(scenario),
      scenarioFile: options.scenarioFile
    })
    fs.rmSync(path.join(chaos.folder, progressFile), { force: true })
    return result
  } finally {
    await chaos.cleanup()
    process.removeListener("SIGINT", onSignal)
    process.removeListener("SIGTERM", onSignal)
    process.removeListener("exit", onExit)
  }
}

/**
 * Restarts whose process took longer to listen than the scenario's `startup.restart_ms.max`: the
 * simulator never draws such a start-up, so its runs of the file do not cover this one's.
 */
export const slowerThanDeclared = (scenario: Scenario, starts: ReadonlyArray<Pick<Start, "node" | "startMs" | "listeningMs">>): ReadonlyArray<string> => {
  const maxMs = scenario.startup?.restartMs?.max
  if (maxMs === undefined) return []
  return starts.flatMap((start) => {
    const tookMs = start.listeningMs === undefined ? undefined : Math.round(start.listeningMs - start.startMs)
    return tookMs !== undefined && tookMs > maxMs
      ? [`${Math.round(start.startMs)} ms: ${start.node}'s process took ${tookMs} ms to listen after its restart, longer than startup.restart_ms.max (${maxMs} ms), which the simulator draws up to`]
      : []
  })
}

/** The command that runs the same scenario, seed and canary again. */
export const replayCommand = (scenario: Scenario, options: Pick<Options, "seed" | "canary">): string =>
  `inferadb-repl chaos run <${scenario.name}.yaml> --seed ${options.seed}${options.canary === undefined ? "" : ` --canary ${options.canary}`}`

const tenths = (value: number) => Math.round(value * 10) / 10

/** Each node's logged changes of its failover view, in ms since the run started at `startMs` (wall clock). */
const epochLogsOf = (nodes: ReadonlyArray<Nodes.Node>, startMs: number): ReadonlyArray<Judge.EpochLog> =>
  nodes.map((node) => ({
    nodeId: node.address.nodeId,
    regionId: node.address.regionId,
    changes: node.epochChanges.map(({ atWallMs, ...change }) => ({ ...change, atMs: atWallMs - startMs })),
    listened: node.listened,
    // Each process's lines carry the count of starts up to and including it (`Nodes.lineReader`): the latest is that count.
    latest: node.incarnations
  }))

/** Each node's incarnations, exits, drains and final log length, for the result. */
const nodeSummaries = (nodes: ReadonlyArray<Nodes.Node>, regions: ReadonlyArray<RegionState>, startMs: number): ChaosResult["nodes"] =>
  Object.fromEntries(
    nodes.map((node) => [
      node.address.nodeId,
      {
        address: node.address.address,
        incarnations: node.incarnations,
        exits: node.exits,
        // With the run's time the line was logged at: a drain that ends just before the node's
        // wipe leaves it no time to close, and the wipe's SIGKILL ends it instead of its own exit.
        drains: node.drains.map(
          (drain) => `incarnation ${drain.incarnation}: ${drain.complete ? `drained to position ${drain.logEnd}` : "drain timed out"} at ${Math.round(drain.atWallMs - startMs)} ms`
        ),
        epochChanges: node.epochChanges.map(
          (change) =>
            `incarnation ${change.incarnation} at ${Math.round(change.atWallMs - startMs)} ms: epoch ${change.epoch}, primary ${change.primary ?? "none"}${change.fenced ? " (fenced)" : ""}, ${change.cause}`
        ),
        logEntries: regions.find((region) => region.replica === node.address.nodeId)?.log.length ?? 0
      }
    ])
  )

/**
 * Per node, how far ahead of the harness's clock its wall clock ran, as its writes showed it.
 * A change's commit time (the node's clock) falls between the harness's send and answer, so
 * `commit - midpoint` is the node's clock error within half that round trip, whatever delayed
 * the call. Only writes sent after the node's last clock jump count (one error to estimate), and
 * the fastest quarter of them (the tightest bounds); `withinMs` is the largest half round trip
 * among those, so the true error is `aheadMs ± withinMs` (to a millisecond of rounding).
 */
const clocksObserved = (chaos: ChaosRun): ChaosResult["clocksObserved"] => {
  const lastJumpMs = (nodeId: string) =>
    Math.max(0, ...chaos.applied.filter((fault) => fault.kind === "clock_jump" && fault.detail.includes(nodeId)).map((fault) => fault.atMs))
  const samples = new Map<string, Array<{ readonly aheadMs: number; readonly halfTripMs: number }>>()
  for (const op of chaos.ops) {
    if (op.status !== "acknowledged" || op.sentAtMs === undefined || op.endedAtMs === undefined || op.sentAtMs < lastJumpMs(op.target)) continue
    const midpointMs = chaos.startMs + (op.sentAtMs + op.endedAtMs) / 2
    const halfTripMs = (op.endedAtMs - op.sentAtMs) / 2
    for (const change of chaos.changesOf(op)) samples.set(op.target, [...(samples.get(op.target) ?? []), { aheadMs: change.committedAtMs - midpointMs, halfTripMs }])
  }
  return Object.fromEntries(
    [...samples].map(([node, all]) => {
      const fastest = [...all].sort((a, b) => a.halfTripMs - b.halfTripMs).slice(0, Math.max(3, Math.ceil(all.length / 4)))
      const ahead = fastest.map((sample) => sample.aheadMs).sort((a, b) => a - b)
      return [node, { samples: fastest.length, aheadMs: tenths(ahead[Math.floor(ahead.length / 2)]!), withinMs: tenths(Math.max(...fastest.map((sample) => sample.halfTripMs)) + 1) }]
    })
  )
}

const summarize = (
  chaos: ChaosRun,
  found: {
    readonly violations: ReadonlyArray<Checkers.Violation>
    readonly verdicts: ReadonlyMap<string, Oracle.Verdict>
    readonly losses: Checkers.Losses
    readonly lostWithRegion: ReadonlySet<string>
    readonly healedAtMs: number
    readonly convergedAtMs: number | undefined
    readonly history: History
    readonly regions: ReadonlyArray<RegionState>
    readonly wallMs: number
  }
): ChaosResult => {
  const count = (status: Workload.Status) => chaos.ops.filter((op) => op.invokedAtMs !== undefined && op.status === status).length
  const lag: Array<number> = []
  for (const [id, regions] of found.history.durableAt) {
    const acknowledgedAt = found.history.acknowledgedAt.get(id)
    if (acknowledgedAt === undefined) continue
    for (const atMs of regions.values()) if (atMs > acknowledgedAt) lag.push(atMs - acknowledgedAt)
  }
  lag.sort((a, b) => a - b)
  const at = (fraction: number) => tenths(lag.length === 0 ? 0 : lag[Math.min(lag.length - 1, Math.floor(fraction * lag.length))]!)
  return {
    mode: "chaos",
    scenario: chaos.scenario.name,
    seed: chaos.options.seed,
    canary: chaos.options.canary ?? null,
    deterministic: false,
    note: "A real run is not deterministic: the seed fixes the clocks' errors, the fault schedule and the workload, not the interleaving of processes and packets.",
    passed: found.violations.length === 0,
    converged: found.convergedAtMs !== undefined,
    violations: found.violations,
    notApplied: chaos.notApplied,
    notJudged: [
      ...chaos.scenario.checks.flatMap((check) => (Judge.notJudged[check] === undefined ? [] : [`${check}: ${Judge.notJudged[check]}`])),
      ...(chaos.scenario.checks.includes("residency") ? ["residency on the wire: only what each node stored is judged, not what was sent"] : []),
      ...(chaos.scenario.checks.includes("epochs") ? [`epochs in part: ${Judge.epochsPartly}`] : []),
      ...(chaos.scenario.checks.includes("failover") ? [`failover in part: ${Judge.failoverPartly}`] : []),
      ...(chaos.scenario.checks.includes("drained") && chaos.scenario.faults.some((fault) => fault.kind === "crash" && fault.graceful === true) ? [`drained in part: ${Judge.drainedPartly}`] : [])
    ],
    chosen: {
      clocks: Object.fromEntries([...chaos.drawnClocks].map(([id, clock]) => [id, { offsetMs: clock.offsetMs, driftPpm: clock.driftPpm }])),
      clientWrites: chaos.writeStream ? "WriteStream" : "Write calls"
    },
    clocksObserved: clocksObserved(chaos),
    epochMs: chaos.startMs,
    writes: { attempted: chaos.ops.filter((op) => op.invokedAtMs !== undefined).length, acknowledged: count("acknowledged"), failed: count("failed"), unknown: count("unknown"), notSent: chaos.ops.filter((op) => op.invokedAtMs === undefined).length },
    conflicts: { tuples: found.verdicts.size, concurrent: [...found.verdicts.values()].filter((verdict) => verdict.maximal.length > 1).length },
    lostWrites: found.losses,
    lostWithDisk: [...chaos.lostWithDisk],
    lostWithRemovedRegion: [...found.lostWithRegion],
    unobservedBeforeWipe: chaos.ops.filter((op) => op.status === "acknowledged" && chaos.changesOf(op).length === 0 && chaos.node(op.target).generation !== op.generation).map((op) => op.id),
    healedAtMs: found.healedAtMs,
    convergenceMs: found.convergedAtMs === undefined ? undefined : Math.max(0, Math.round(found.convergedAtMs - found.healedAtMs)),
    lagMs: { samples: lag.length, p50: at(0.5), p90: at(0.9), p99: at(0.99), max: tenths(lag[lag.length - 1] ?? 0) },
    faults: chaos.applied,
    nodes: nodeSummaries(chaos.nodes, found.regions, chaos.startMs),
    restarts: chaos.starts.map((start) => ({
      node: start.node,
      atMs: Math.round(start.startMs),
      listeningAfterMs: start.listeningMs === undefined ? undefined : Math.round(start.listeningMs - start.startMs),
      readyAfterMs: Number.isFinite(start.endMs) ? Math.round(start.endMs - start.startMs) : undefined
    })),
    wallMs: found.wallMs,
    notes: [...chaos.notes, ...slowerThanDeclared(chaos.scenario, chaos.starts)],
    runFolder: chaos.folder
  }
}

