/**
 * The real nodes of a chaos run: one `inferadb-repl serve` process per node of the scenario's
 * topology, started from the built command line (`bin/inferadb-repl.mjs`) inside the node's
 * network namespace, with a configuration generated from the scenario, its own lmdb directory
 * under the run folder, its clock under libfaketime and, when the scenario has latency, the
 * delay proxy (`DelayProxy.ts`) in front of its gRPC port. Process faults act on these
 * processes: SIGKILL, a restart on the same directory, a restart on an empty one (the old one is
 * kept beside it for post-mortems), SIGSTOP and SIGCONT.
 *
 * Output of every process goes to `<run>/nodes/<node>/*.log` (appended across restarts).
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import * as readline from "node:readline"
import { pathToFileURL } from "node:url"
import { Either } from "effect"
import * as YAML from "yaml"
import * as Config from "../runtime/config/Config.js"
import * as ServeFlags from "../runtime/ServeFlags.js"
import type * as SimNetwork from "../sim/SimNetwork.js"
import { heartbeatOf, type Scenario, type TopologySpec, nodesOf } from "../sim/Scenario.js"
import * as Clocks from "./Clocks.js"
import * as Defects from "./Defects.js"
import type * as DelayProxy from "./DelayProxy.js"
import type * as Disks from "./Disks.js"
import type * as Netns from "./Netns.js"

/** The port clients and peers dial on a node's address (the proxy's when there is one). */
export const grpcPort = 7000
/** The node's own gRPC port behind its proxy, on the namespace's loopback. */
export const grpcPortBehindProxy = 7001
/** The node's HTTP port (/readyz, /healthz, /metrics). */
export const httpPort = 7080

/** The token every generated configuration shares (token mode: the API and replication need it). */
export const token = "chaos-token"

/**
 * Whether `serve` started from `root` runs the bundle, by the launcher's own check
 * (`bin/launch.mjs` of that repository, asked in a node process of its own: the bundle is a
 * script, whose `import()` of a file named at run time Node 20 allows only behind an
 * experimental flag). When it does not (no `npm run build` since the sources changed), every
 * node start compiles the sources through tsx: on this 2-core machine `serve --help` took
 * 2.0-2.4 s that way against 0.55 s built, and a run's restarts come up seconds late (December 4,
 * 2026).
 */
export const runsBuilt = (root: string): Promise<boolean> =>
  new Promise((resolve) => {
    const launcher = JSON.stringify(pathToFileURL(path.join(root, "bin", "launch.mjs")).href)
    const check = `import { bundleOf } from ${launcher}; process.exitCode = bundleOf("src/cli/main.ts") === undefined ? 1 : 0`
    const child = spawn(process.execPath, ["--input-type=module", "--eval", check], { stdio: "ignore", env: { ...process.env, NODE_OPTIONS: "" } })
    child.on("error", () => resolve(false))
    child.on("exit", (code) => resolve(code === 0))
  })

/** The repository root: the folder above this file's that holds `bin/inferadb-repl.mjs` (from the sources or the bundle). */
export const repositoryRoot = (): string => {
  let folder = import.meta.dirname
  while (!fs.existsSync(path.join(folder, "bin", "inferadb-repl.mjs"))) {
    const parent = path.dirname(folder)
    if (parent === folder) throw new Error("cannot find bin/inferadb-repl.mjs above the chaos module")
    folder = parent
  }
  return folder
}

/** One node's configuration file, in the format `serve` reads (README "Configuration"). */
export const configYaml = (scenario: Scenario, network: Netns.Network, self: Netns.NodeAddress, proxied: boolean): string => {
  const replication = scenario.replication
  const topology = scenario.topology
  const heartbeat = heartbeatOf(replication, self.regionId, self.nodeId)
  const endpointOf = (nodeId: string) => `${network.nodes.find((node) => node.nodeId === nodeId)!.address}:${grpcPort}`
  const file = {
    replication: {
      enabled: true,
      strategy: topology.strategy,
      local_region: self.regionId,
      node_id: self.nodeId,
      conflict_resolution: replication.conflictResolution,
      ...(replication.regionPriorities.length === 0 ? {} : { region_priorities: replication.regionPriorities }),
      clock: replication.clock,
      agent: {
        max_retries: replication.agent.maxRetries,
        retry_delay_ms: replication.agent.retryDelayMs,
        retry_delay_max_ms: replication.agent.retryDelayMaxMs,
        batch_size: replication.agent.batchSize,
        flush_delay_ms: replication.agent.flushDelayMs,
        // The file counts whole seconds; a scenario's shorter deadline rounds up to one.
        request_timeout_secs: Math.max(1, Math.ceil(replication.agent.requestTimeoutMs / 1000)),
        buffer_size: Math.max(replication.bufferSize, replication.agent.batchSize),
        ...(replication.agent.batchesInFlightMax === undefined ? {} : { batches_in_flight_max: replication.agent.batchesInFlightMax }),
        ...(replication.agent.catchUpBatchSize === undefined ? {} : { catch_up_batch_size: replication.agent.catchUpBatchSize })
      },
      heartbeat: { interval_ms: heartbeat.intervalMs, timeout_ms: heartbeat.timeoutMs, recover_after: heartbeat.recoverAfter },
      // The scenario's failover timers, as the simulator runs them (the node's failover: section).
      failover: {
        detect_after_ms: replication.failover.detectAfterMs,
        promote_back_after_ms: replication.failover.promoteBackAfterMs,
        fence_after_ms: replication.failover.fenceAfterMs,
        confirm_after_ms: replication.failover.confirmAfterMs,
        check_interval_ms: replication.failover.checkIntervalMs
      },
      security: { mode: "token", token },
      grpc: {
        listen: proxied ? `127.0.0.1:${grpcPortBehindProxy}` : `${self.address}:${grpcPort}`,
        ...(scenario.network.inFlightPerTargetMax === undefined ? {} : { max_in_flight_per_target: scenario.network.inFlightPerTargetMax }),
        ...(scenario.network.messageBytesMax === undefined ? {} : { max_message_bytes: scenario.network.messageBytesMax })
      },
      http: { listen: `${self.address}:${httpPort}` },
      store: { kind: "lmdb" },
      regions: topology.regions.map((region) => ({
        id: region.id,
        priority: region.priority,
        is_primary: region.primary,
        zones: [{ id: `${region.id}a`, nodes: region.nodes.map((nodeId) => ({ id: nodeId, endpoint: endpointOf(nodeId) })) }]
      })),
      ...(topology.targets === undefined ? {} : { replication_targets: topology.targets }),
      ...(topology.vaults.length === 0
        ? {}
        : { vaults: topology.vaults.map((vault) => ({ id: vault.vault, home_region: vault.homeRegion, ...(vault.allowedRegions === undefined ? {} : { allowed_regions: vault.allowedRegions }) })) })
    }
  }
  return YAML.stringify(file)
}

/** The latency of the link from region `from` to region `to`, as the simulator picks it. */
export const linkOf = (scenario: Scenario, from: string, to: string): SimNetwork.Link =>
  scenario.network.links.find((entry) => entry.from === from && entry.to === to)?.link ?? (from === to ? scenario.network.local : scenario.network.remote)

const isZero = (latency: SimNetwork.Latency): boolean =>
  latency.kind === "fixed" ? latency.ms === 0 : latency.kind === "uniform" ? latency.maxMs === 0 : latency.meanMs === 0 && latency.stddevMs === 0

/** Whether any link of the scenario has latency (then every node gets a delay proxy). */
export const hasLatency = (scenario: Scenario): boolean => {
  const regions = scenario.topology.regions.map((region) => region.id)
  return regions.some((from) => regions.some((to) => !isZero(linkOf(scenario, from, to).latency)))
}

/** The proxy settings of one node: per peer address, the latency of each direction. */
export const proxySettings = (scenario: Scenario, network: Netns.Network, self: Netns.NodeAddress, seed: string): DelayProxy.Settings => ({
  seed: `${seed}/latency/${self.nodeId}`,
  listenHost: self.address,
  listenPort: grpcPort,
  targetHost: "127.0.0.1",
  targetPort: grpcPortBehindProxy,
  peers: Object.fromEntries(
    network.nodes
      .filter((peer) => peer.nodeId !== self.nodeId)
      .map((peer) => [peer.address, { inbound: linkOf(scenario, peer.regionId, self.regionId).latency, outbound: linkOf(scenario, self.regionId, peer.regionId).latency }])
  )
})

/** A node's processes and state. */
export interface Node {
  readonly address: Netns.NodeAddress
  readonly folder: string
  readonly clock: Clocks.NodeClock | undefined
  /** The serve process now, if it runs. */
  process: ChildProcess | undefined
  proxy: ChildProcess | undefined
  paused: boolean
  /** Disk generations: 0 until the first wipe. */
  generation: number
  /** The node's own tmpfs, when a full-disk fault may hit it (`Disks.ts`); else its data is in its folder. */
  disk: Disks.Disk | undefined
  /** The topology its configuration names now, once a `topology` fault changed it; else the scenario's. */
  topology: TopologySpec | undefined
  /**
   * The last of those whose configuration `serve` accepts (undefined: the scenario's). A reload
   * of a file serve refuses (a region left without targets) changes nothing in the running
   * process; a restart on that file would exit at once, so a restart uses this one, as an
   * operator would put back the last file that worked (chaos swarm seed 9940004: a node
   * restarted after such a reload never came back, and the run could not converge).
   */
  accepted: TopologySpec | undefined
  /** The `region_priorities` its file names once a `configure` fault set them; else the scenario's. */
  regionPriorities: ReadonlyArray<string> | undefined
  /**
   * Whether the running process answers SIGHUP by reloading: only once it is ready. Before, the
   * signal's default action would end a process still loading, so a reload waits for readiness.
   */
  reloads: boolean
  incarnations: number
  /** `crash` calls, down or not: a supervisor's restart due after an exit is off if one came since (`Run.restartAfterExit`). */
  crashes: number
  readonly exits: Array<string>
  /** Bugs its serve processes showed in their output, all incarnations (`Defects.defectIn`). */
  readonly defects: Array<string>
  /** Each drain a graceful stop ran, as its serve process logged the outcome (`drainIn`). */
  readonly drains: Array<DrainLine>
  /** Every change of its failover view its serve processes logged (`epochChangeIn`), all incarnations. */
  readonly epochChanges: Array<EpochLine>
  /** The incarnations whose serve process bound its listener (`listeningLine`). */
  readonly listened: Array<number>
  /** A graceful stop under way: settles once the process has exited. */
  exiting: Promise<void> | undefined
}

/** A drain's outcome as `serve` logged it: complete up to a log position, or timed out. */
export interface DrainLine {
  readonly incarnation: number
  readonly atWallMs: number
  readonly complete: boolean
  readonly logEnd: number | undefined
  readonly line: string
}

/** The drain outcome in one line of serve's output (`Drain.describe`), if it is one. */
export const drainIn = (line: string): Omit<DrainLine, "incarnation" | "atWallMs"> | undefined => {
  const drained = /drained: every target acknowledged the log up to position (\d+)/.exec(line)
  if (drained !== null) return { complete: true, logEnd: Number(drained[1]), line }
  return /drain timed out after/.test(line) ? { complete: false, logEnd: undefined, line } : undefined
}

/** A change of a node's failover view as its serve process logged it, and when the harness read the line. */
export interface EpochLine {
  readonly incarnation: number
  readonly atWallMs: number
  readonly epoch: number
  /** Undefined: the node knew of no primary. */
  readonly primary: string | undefined
  readonly fenced: boolean
  readonly cause: string
}

/**
 * The change of failover view in one line of serve's output, if it is one. The README documents
 * the line (Health, metrics and logs): "epoch change: epoch=<n> primary=<region, or nothing>
 * fenced=<true|false> cause=<initial|promoted|adopted|reclaimed|handed-back|fenced|confirmed>".
 */
export const epochChangeIn = (line: string): Omit<EpochLine, "incarnation" | "atWallMs"> | undefined => {
  const change = /epoch change: epoch=(\d+) primary=(\S*) fenced=(true|false) cause=([a-z-]+)/.exec(line)
  if (change === null) return undefined
  return { epoch: Number(change[1]), primary: change[2] === "" ? undefined : change[2], fenced: change[3] === "true", cause: change[4]! }
}

/** serve's line once its listener is bound ("<time> INFO  <region>/<node> gRPC: <address> (...)"). */
const listeningLine = / INFO +\S+ gRPC: /

/** What starting a node needs. */
export interface Launch {
  readonly scenario: Scenario
  readonly network: Netns.Network
  readonly root: string
  readonly seed: string
  readonly faketime: string | undefined
  /** Start every node as this canary (a deliberately broken build: `serve --canary`). */
  readonly canary: string | undefined
}

export const dataDir = (node: Node): string => path.join(node.disk?.mount ?? node.folder, "data")

const logStream = (node: Node, name: string): fs.WriteStream => fs.createWriteStream(path.join(node.folder, name), { flags: "a" })

/** Spawns a command inside the node's namespace, output appended to `<log>` and each line of it given to `onLine`. */
const spawnIn = (
  node: Node,
  command: ReadonlyArray<string>,
  log: string,
  environment: Readonly<Record<string, string>>,
  onLine: (line: string) => void = () => {}
): ChildProcess => {
  const [executable, ...args] = [...["ip", "netns", "exec", node.address.namespace], "env", ...Object.entries(environment).map(([key, value]) => `${key}=${value}`), ...command]
  const child = spawn(executable!, args, { stdio: ["ignore", "pipe", "pipe"], detached: false })
  const output = logStream(node, log)
  for (const stream of [child.stdout!, child.stderr!]) {
    stream.pipe(output, { end: false })
    readline.createInterface({ input: stream, crlfDelay: Infinity }).on("line", onLine)
  }
  child.once("close", () => output.end())
  return child
}

/** What the harness hears of a process it started. */
export interface StartHooks {
  /** Its listener is bound (see `listeningLine`). */
  readonly onListening?: () => void
  /** It exited on its own: not killed by `crash`, `wipe` or `destroy`, nor stopped by `stop`. */
  readonly onExitOnItsOwn?: () => void
}

/**
 * What the harness reads in the output of one serve process: the incarnation it is (the count of
 * the node's starts, this one included, which is what `latest` in `Judge` names) is fixed when
 * the process is spawned. Read from the node when each line arrived, a line of the previous process
 * that arrived after the next one was spawned (a child's output may still come after its exit)
 * was counted as the new process's.
 */
export const lineReader =
  (node: Pick<Node, "listened" | "epochChanges" | "defects" | "drains">, incarnation: number, hooks: StartHooks = {}) =>
  (line: string): void => {
    // serve logs its gRPC address once its store is open and its listener bound: from then on it
    // answers, as a simulated node does once its restart delay is over (`Startup.restartDelayMs`).
    if (listeningLine.test(line)) {
      node.listened.push(incarnation)
      hooks.onListening?.()
    }
    const change = epochChangeIn(line)
    if (change !== undefined) node.epochChanges.push({ ...change, incarnation, atWallMs: Date.now() })
    const defect = Defects.defectIn(line)
    if (defect !== undefined) node.defects.push(`incarnation ${incarnation}: ${defect}`)
    const drain = drainIn(line)
    if (drain !== undefined) node.drains.push({ ...drain, incarnation, atWallMs: Date.now() })
  }

/**
 * Starts the serve process (and the proxy once) and returns at once; the promise it returns
 * resolves when /readyz answers 200 and rejects when the process exits first or the bound passes.
 */
export const start = (launch: Launch, node: Node, readyTimeoutMs: number, hooks: StartHooks = {}): Promise<void> => {
  const proxied = hasLatency(launch.scenario)
  const cli = path.join(launch.root, "bin", "inferadb-repl.mjs")
  if (proxied && node.proxy === undefined) {
    const settings = JSON.stringify(proxySettings(launch.scenario, launch.network, node.address, launch.seed))
    node.proxy = spawnIn(node, [process.execPath, cli, "chaos", "proxy", "--settings", settings], "proxy.log", {})
  }
  // A file serve would refuse is replaced by the last one it accepted (see `accepted`).
  const wanted = configText(launch, node, node.topology)
  const config = writeConfig(node, refusal(wanted) === undefined ? wanted : configText(launch, node, node.accepted))
  fs.mkdirSync(dataDir(node), { recursive: true })
  const environment = launch.faketime !== undefined && node.clock !== undefined ? Clocks.environment(launch.faketime, node.clock) : {}
  const args = ["serve", "--config", config, "--data-dir", dataDir(node), "--seed", String(seedOf(launch.seed, node)), ...(launch.canary === undefined ? [] : ["--canary", launch.canary])]
  node.reloads = false
  const topologyAtStart = node.topology
  node.process = spawnIn(node, [process.execPath, ...ServeFlags.serveNodeFlags, cli, ...args], "serve.log", environment, lineReader(node, node.incarnations + 1, hooks))
  node.incarnations++
  const child = node.process
  child.once("exit", (code, signal) => {
    node.exits.push(signal === null ? `exit ${code}` : signal)
    // `crash` forgets the process before it kills it, and a graceful stop is `exiting` until
    // this handler has run: only a process that ended on its own is still the node's here.
    if (node.process === child) {
      node.process = undefined
      node.paused = false
      if (node.exiting === undefined) hooks.onExitOnItsOwn?.()
    }
  })
  return awaitReady(node, child, readyTimeoutMs).then(() => {
    if (node.process !== child) return
    node.reloads = true
    // A topology fault while it started rewrote the file after it was read: reload it now.
    if (node.topology !== topologyAtStart) child.kill("SIGHUP")
  })
}

/** The node's configuration file's text with `topology` (the scenario's when undefined) and the node's ranks (`configure`). */
const configText = (launch: Launch, node: Node, topology: TopologySpec | undefined): string => {
  const { scenario } = launch
  const replication = node.regionPriorities === undefined ? scenario.replication : { ...scenario.replication, regionPriorities: node.regionPriorities }
  return configYaml({ ...scenario, replication, ...(topology === undefined ? {} : { topology }) }, launch.network, node.address, hasLatency(scenario))
}

/** Why `serve` would refuse this configuration text (at start or on reload), or undefined. */
export const refusal = (text: string): string | undefined => {
  const parsed = Config.parseBytes(Buffer.from(text, "utf8"))
  return Either.isLeft(parsed) ? parsed.left.message : undefined
}

/** Writes the node's configuration file; returns its path. */
const writeConfig = (node: Node, text: string): string => {
  const config = path.join(node.folder, "config.yaml")
  fs.writeFileSync(config, text)
  return config
}

/**
 * Gives a node a new topology as an operator's config reload does: the file rewritten and
 * SIGHUP (serve applies a reloaded file's topology and nothing else). A stopped node (SIGSTOP)
 * takes it when it resumes; a node that is down starts with it; one still starting gets the
 * signal once it is ready (`reloads`). Returns why serve refuses the new file, if it does.
 */
export const reconfigure = (launch: Launch, node: Node, topology: TopologySpec): string | undefined => {
  node.topology = topology
  const text = configText(launch, node, topology)
  writeConfig(node, text)
  const refused = refusal(text)
  if (refused === undefined) node.accepted = topology
  if (node.reloads) node.process?.kill("SIGHUP")
  return refused
}

/**
 * Gives a node other `region_priorities`, as an operator edits its file: the file is rewritten
 * and the node's next start reads it (serve applies nothing but the topology on a reload).
 */
export const configure = (launch: Launch, node: Node, regionPriorities: ReadonlyArray<string>): void => {
  node.regionPriorities = regionPriorities
  writeConfig(node, configText(launch, node, node.topology))
}

const seedOf = (seed: string, node: Node): number => {
  let hash = 0
  for (const character of `${seed}/${node.address.nodeId}/${node.incarnations}`) hash = (hash * 31 + character.charCodeAt(0)) >>> 0
  return hash
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

const awaitReady = async (node: Node, child: ChildProcess, timeoutMs: number): Promise<void> => {
  const deadline = Date.now() + timeoutMs
  let last = "no answer"
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${node.address.nodeId} exited while starting (see ${path.join(node.folder, "serve.log")})`)
    try {
      const response = await fetch(`http://${node.address.address}:${httpPort}/readyz`, { signal: AbortSignal.timeout(1_000) })
      if (response.status === 200) return
      last = `/readyz answered ${response.status}`
    } catch (error) {
      // Not listening yet, or not reachable: the last reason goes into the error.
      last = fetchFailure(error)
    }
    await sleep(100)
  }
  throw new Error(`${node.address.nodeId} was not ready within ${timeoutMs} ms, last: ${last} (see ${path.join(node.folder, "serve.log")})`)
}

/** Why a fetch failed: undici puts the socket's error (ECONNREFUSED, EHOSTUNREACH) in `cause`. */
const fetchFailure = (error: unknown): string => {
  const cause = error instanceof Error ? (error as { cause?: unknown }).cause : undefined
  if (cause instanceof Error) return cause.message
  return error instanceof Error ? error.message : String(error)
}

const exited = (child: ChildProcess): Promise<void> =>
  child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((resolve) => child.once("exit", () => resolve()))

/** kill -9 (a paused node is killed too: SIGKILL needs no SIGCONT). */
export const crash = async (node: Node): Promise<void> => {
  node.crashes++
  const child = node.process
  node.process = undefined
  node.paused = false
  if (child === undefined) return
  child.kill("SIGKILL")
  await exited(child)
}

/**
 * SIGTERM, as Kubernetes stops a pod: serve refuses new writes, lets those in flight finish,
 * drains replication and exits; SIGKILL if it has not exited `killAfterMs` later (the pod's
 * grace period). Returns at once; `node.exiting` settles once the process has exited. A paused
 * process handles the signal when it is resumed, as the simulator's node does.
 */
export const stop = (node: Node, killAfterMs: number): void => {
  const child = node.process
  if (child === undefined || node.exiting !== undefined) return
  child.kill("SIGTERM")
  const kill = setTimeout(() => child.kill("SIGKILL"), killAfterMs)
  node.exiting = exited(child).finally(() => {
    clearTimeout(kill)
    node.exiting = undefined
  })
}

/** Kills the node and moves its directory aside, so the restart opens an empty one. */
export const wipe = async (node: Node): Promise<void> => {
  await crash(node)
  node.generation++
  // Beside it, on the same disk (a rename cannot leave a mount).
  if (fs.existsSync(dataDir(node))) fs.renameSync(dataDir(node), path.join(path.dirname(dataDir(node)), `data.wiped-${node.generation}`))
}

export const pause = (node: Node): void => {
  if (node.process === undefined || node.paused) return
  node.process.kill("SIGSTOP")
  node.paused = true
}

export const resume = (node: Node): void => {
  if (node.process === undefined || !node.paused) return
  node.process.kill("SIGCONT")
  node.paused = false
}

/** Stops everything of the node: SIGCONT (a stopped process cannot handle SIGTERM), SIGKILL, and the proxy. */
export const destroy = async (node: Node): Promise<void> => {
  resume(node)
  await crash(node)
  const proxy = node.proxy
  node.proxy = undefined
  if (proxy !== undefined) {
    proxy.kill("SIGKILL")
    await exited(proxy)
  }
}

/** The nodes of a scenario on a network, with folders under `runFolder/nodes/`. */
export const make = (scenario: Scenario, network: Netns.Network, runFolder: string, clocks: ReadonlyMap<string, Clocks.NodeClock>): ReadonlyArray<Node> =>
  nodesOf(scenario).map(({ nodeId }) => {
    const folder = path.join(runFolder, "nodes", nodeId)
    fs.mkdirSync(folder, { recursive: true })
    return {
      address: network.nodes.find((entry) => entry.nodeId === nodeId)!,
      folder,
      clock: clocks.get(nodeId),
      process: undefined,
      proxy: undefined,
      paused: false,
      generation: 0,
      disk: undefined,
      topology: undefined,
      accepted: undefined,
      regionPriorities: undefined,
      reloads: false,
      incarnations: 0,
      crashes: 0,
      exits: [],
      defects: [],
      drains: [],
      epochChanges: [],
      listened: [],
      exiting: undefined
    }
  })
