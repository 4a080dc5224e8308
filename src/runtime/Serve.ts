/**
 * The production wiring of one engine node, in one place: what `inferadb-repl serve` runs.
 *
 * `plan` turns a decoded configuration and the command-line overrides into everything the
 * node runs with (addresses, store, engine settings, seed); it is pure, so a bad combination
 * is reported before anything opens. `run` then builds the node from real services (an lmdb,
 * FoundationDB or memory Store, the system Clock, the gRPC Network with authentication, a
 * seeded Random, Prometheus metrics), serves replication, CatchUp and the public API on one
 * gRPC port (with the standard health service, SERVING while `/readyz` would answer 200, and
 * reflection) and `/healthz`, `/livez`, `/readyz`, `/metrics` over HTTP, and runs the engine
 * (plus the failover controller under PrimaryReplica, and the `Monitor` that keeps the backlog
 * and role metrics current and logs each change of state once) until `shutdown` completes.
 * Under `discovery.mode: dns` it also runs the discovery loop (`DiscoveryLoop`, over the
 * system's DNS), whose first round finishes before the engine starts.
 *
 * Lifecycle:
 * - Start: a node whose store is empty (or whose last bootstrap did not complete) first pages
 *   its peers' logs (`Bootstrap`) before it takes client writes; replication already runs
 *   meanwhile. `/readyz` answers 200 only once the public API is served.
 * - Peers: an unreachable peer never stops the node; it makes health `degraded` (the agent's
 *   retries, or no heartbeat from any node of a target region for `heartbeat.timeout_ms`).
 * - Shutdown: the public API is withdrawn first (new writes get UNAVAILABLE, `/readyz` 503,
 *   writes in flight finish), then the agent keeps shipping until every target it ships to
 *   (siblings included) acknowledged the log as it stood then, or `drainTimeoutMs` passed, then
 *   the engine stops and the HTTP server, the gRPC server and the store close, in that order.
 *
 * Signals and process exit belong to the command (`src/cli/serve.ts`); this module only waits
 * for the `shutdown` effect it is given, so tests can drive it in-process as well.
 */
import { Clock as EffectClock, Context, Data, Effect, Either, Exit, Fiber, Layer, Ref, Scope, Stream } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import * as Agent from "../replication/Agent.js"
import * as Clock from "../replication/Clock.js"
import * as Bootstrap from "../replication/Bootstrap.js"
import * as Config from "./config/Config.js"
import * as FileTopology from "./config/FileTopology.js"
import * as Engine from "../replication/Engine.js"
import type { StoreError } from "../replication/Errors.js"
import * as Failover from "../replication/Failover.js"
import * as DeadFibers from "../replication/DeadFibers.js"
import * as Drain from "../replication/Drain.js"
import * as Monitor from "../replication/Monitor.js"
import type * as Network from "../replication/Network.js"
import type * as Health from "../replication/Health.js"
import * as Random from "../replication/Random.js"
import * as Replica from "../replication/Replica.js"
import * as Ranks from "../replication/Ranks.js"
import * as Store from "../replication/Store.js"
import * as StoreWatch from "../replication/StoreWatch.js"
import * as Topology from "../replication/Topology.js"
import * as TopologyManager from "../replication/TopologyManager.js"
import * as Auth from "./Auth.js"
import * as CallbackClock from "./CallbackClock.js"
import * as DialAddress from "./DialAddress.js"
import * as DiscoveryLoop from "./DiscoveryLoop.js"
import * as DnsResolver from "./DnsResolver.js"
import * as GrpcHealth from "./GrpcHealth.js"
import * as GrpcNetwork from "./GrpcNetwork.js"
import * as GrpcServer from "./GrpcServer.js"
import * as HttpServer from "./HttpServer.js"
import * as IdleGc from "./IdleGc.js"
import * as KvFoundationDb from "./KvFoundationDb.js"
import * as KvLmdb from "./KvLmdb.js"
import * as PromMetrics from "./PromMetrics.js"

/** How long shutdown waits for every target to acknowledge the whole log. */
export const drainTimeoutMsDefault = Drain.timeoutMsDefault
/** How often start-up looks whether the engine opened client writes. */
const writesOpenPollMs = 20
/** How long the gRPC server lets calls in flight finish once it closes. */
export const grpcShutdownGraceMs = 2_000

/** Command-line overrides; each replaces the configured value. */
export interface Overrides {
  readonly httpPort?: number
  readonly grpcPort?: number
  readonly dataDir?: string
  readonly store?: Config.StoreKind
}

/** Where the node keeps its state. */
export type StorePlan =
  | { readonly kind: "lmdb"; readonly path: string; readonly minFreeBytes: number; readonly stallAfterCommits?: number }
  | { readonly kind: "foundationdb"; readonly prefix: string; readonly clusterFile: string | undefined }
  | { readonly kind: "memory" }

/** Everything a node runs with, resolved from configuration and flags. */
export interface Plan {
  readonly config: Config.ReplicationConfig
  readonly settings: Engine.Settings
  readonly grpcListen: string
  readonly httpHost: string
  readonly httpPort: number
  readonly store: StorePlan
  readonly seed: number
  readonly version: string
  readonly drainTimeoutMs: number
  readonly bootstrapTimeoutMs: number
  /** A deliberately broken network for the chaos harness's canaries (`serve --canary`); never set otherwise. */
  readonly networkCanary?: <E, R>(inner: Layer.Layer<Network.Network, E, R>) => Layer.Layer<Network.Network, E, R>
}

/** Why serve could not start or stopped abnormally; `stage` "config" is the user's to fix (exit 2). */
export class ServeError extends Data.TaggedError("ServeError")<{ readonly stage: "config" | "start" | "run"; readonly message: string }> {}

/** What `run` needs from its caller. */
export interface Io {
  /** Writes one line of the startup and shutdown log. */
  readonly log: (line: string) => void
  /** Completes with the reason to stop (e.g. "SIGTERM"). */
  readonly shutdown: Effect.Effect<string>
  /** Configurations reloaded while the node runs (SIGHUP); their topology is applied, nothing else. */
  readonly reloads?: Stream.Stream<Config.ReplicationConfig>
  /** How many configurations `reloads` has been given so far: a stop applies them all before it drains. */
  readonly reloadsReceived?: () => number
  /**
   * Ends the process at once, closing nothing, saying why: the store stalled (`StoreWatch`), and
   * what waits on it can be neither interrupted nor closed. Without it (a test running the node
   * in its own process), a stall is logged as a warning and nothing ends.
   */
  readonly abort?: (message: string) => void
}

/** How long a stop waits for the reloads received before it to be applied before it drains regardless. */
const reloadsWaitMs = 2_000

/**
 * Waits until `applied` reaches what `received` says now, at most `reloadsWaitMs`: the drain's
 * targets are then the ones configured when it began. A node paused (SIGSTOP) while a region was
 * removed and added back, and stopped meanwhile, gets SIGHUP and SIGTERM together when it resumes;
 * drained at once with the old topology, it reported every target caught up while the region
 * added back lacked changes only its disk held (the simulator's swarm seed 154341448).
 */
const reloadsApplied = (received: () => number, applied: () => number): Effect.Effect<void> =>
  Effect.gen(function* () {
    const wanted = received()
    const startedMs = yield* EffectClock.currentTimeMillis
    while (applied() < wanted && (yield* EffectClock.currentTimeMillis) - startedMs < reloadsWaitMs) yield* Effect.sleep(10)
  })

// ---------------------------------------------------------------------------------------------
// The plan
// ---------------------------------------------------------------------------------------------

const hostOf = (address: string): string => address.slice(0, Math.max(address.lastIndexOf(":"), 0))
const portOf = (address: string): number => Number(address.slice(address.lastIndexOf(":") + 1))
const withPort = (address: string, port: number | undefined): string => (port === undefined ? address : `${hostOf(address)}:${port}`)
const unbracket = (host: string): string => host.replace(/^\[(.*)\]$/, "$1")

const configError = (message: string) => new ServeError({ stage: "config", message })

const storePlan = (config: Config.ReplicationConfig, overrides: Overrides): StorePlan => {
  switch (overrides.store ?? config.store.kind) {
    case "lmdb":
      return { kind: "lmdb", path: overrides.dataDir ?? Config.storePath(config), minFreeBytes: config.store.minFreeMb * 2 ** 20 }
    case "foundationdb":
      return { kind: "foundationdb", prefix: Config.storePrefix(config), clusterFile: config.store.clusterFile }
    case "memory":
      return { kind: "memory" }
  }
}

/** Resolves the configuration and flags into a plan, or says what is wrong with them. */
export const plan = (
  config: Config.ReplicationConfig,
  overrides: Overrides,
  options: { readonly seed: number; readonly version: string; readonly drainTimeoutMs?: number; readonly bootstrapTimeoutMs?: number }
): Either.Either<Plan, ServeError> => {
  const grpcConfigured = Config.grpcListen(config)
  if (grpcConfigured === undefined) {
    return Either.left(configError(`region '${config.localRegion}' declares no node to run as, and grpc.listen is not set`))
  }
  const store = storePlan(config, overrides)
  // FoundationDB is one store per region; lmdb and memory are one store per node.
  const settings = Engine.settingsFromConfig(config, {
    storeShape: store.kind === "foundationdb" ? "shared" : "per_node",
    messageBytesMax: config.grpc.messageBytesMax,
    inFlightPerTargetMax: config.grpc.inFlightPerTargetMax,
    ...(options.bootstrapTimeoutMs === undefined ? {} : { bootstrapTimeoutMs: options.bootstrapTimeoutMs })
  })
  if (Either.isLeft(settings)) return Either.left(configError(settings.left.message))
  const httpListen = withPort(config.http.listen, overrides.httpPort)
  return Either.right({
    config,
    settings: settings.right,
    grpcListen: withPort(grpcConfigured, overrides.grpcPort),
    httpHost: unbracket(hostOf(httpListen)),
    httpPort: portOf(httpListen),
    store,
    seed: options.seed,
    version: options.version,
    drainTimeoutMs: options.drainTimeoutMs ?? drainTimeoutMsDefault,
    bootstrapTimeoutMs: options.bootstrapTimeoutMs ?? Engine.bootstrapTimeoutMsDefault
  })
}

/** The startup log lines that describe a plan, one setting per line, the seed first. */
export const describePlan = (plan: Plan): ReadonlyArray<string> => {
  const { config, settings } = plan
  const targets = Topology.targetsOf(config.topology, config.localRegion)
  const ownEndpoint = Topology.findRegion(config.topology, config.localRegion)?.zones.flatMap((zone) => zone.nodes).find((node) => node.id === settings.nodeId)?.endpoint
  const lines = [
    `seed: ${plan.seed} (repeat this run's retry jitter with --seed ${plan.seed})`,
    `replication: ${config.enabled ? "enabled" : "disabled (replication.enabled is false: this node keeps its writes to itself)"}`,
    `strategy: ${config.strategy}`,
    `local region: ${config.localRegion}`,
    `node id: ${settings.nodeId}`,
    `conflict resolution: ${config.conflictResolution}`,
    `clock: ${config.clock}`,
    `replication targets: ${targets.length === 0 ? "(none)" : targets.join(", ")}`,
    `security: ${config.security.mode}`,
    `store: ${describeStore(plan.store)}`,
    DiscoveryLoop.describe(config.discovery)
  ]
  if (ownEndpoint !== undefined && portOf(GrpcNetwork.grpcAddress(ownEndpoint)) !== portOf(plan.grpcListen)) {
    lines.push(`note: gRPC listens on ${plan.grpcListen} but the topology names this node ${ownEndpoint}; peers dial the topology's endpoint`)
  }
  const retired = config.conflictResolution === "SourcePriority" ? FileTopology.undeclaredRanks(config.regionPriorities, config.topology) : []
  if (retired.length > 0) {
    // Kept for the changes a removed region wrote; said here, since a misspelt extra entry is not an error.
    lines.push(`note: region_priorities also ranks ${retired.map((region) => `'${region}'`).join(", ")}, which the topology does not declare (kept for changes from a removed region)`)
  }
  const window = settings.agent.batchesInFlightMax ?? Agent.batchesInFlightMaxDefault
  if (window > config.grpc.inFlightPerTargetMax) {
    // Allowed, but the agent keeps its window within the bound (`Agent.make`): wider, it only
    // queued batches in this node (swarm seeds 123000087, 130001316).
    lines.push(
      `note: agent.batches_in_flight_max is ${window} but grpc.max_in_flight_per_target is ${config.grpc.inFlightPerTargetMax}: the agent keeps at most ${config.grpc.inFlightPerTargetMax} batches in flight per target`
    )
  }
  return lines
}

const describeStore = (store: StorePlan): string => {
  switch (store.kind) {
    case "lmdb":
      return `lmdb at ${path.resolve(store.path)}`
    case "foundationdb":
      return `foundationdb, prefix ${store.prefix}, cluster file ${store.clusterFile ?? process.env["FDB_CLUSTER_FILE"] ?? "(the client's default)"}`
    case "memory":
      return "memory (nothing survives a restart)"
  }
}

// ---------------------------------------------------------------------------------------------
// Building the node
// ---------------------------------------------------------------------------------------------

/** Authentication options from the security settings; reads `token_file`. */
export const authOptions = (security: Config.SecuritySettings): Effect.Effect<Auth.Options, ServeError> =>
  Effect.gen(function* () {
    const token =
      security.tokenFile === undefined
        ? security.token
        : yield* Effect.try({
            try: () => fs.readFileSync(security.tokenFile!, "utf8").trim(),
            catch: (error) => configError(`cannot read security.token_file '${security.tokenFile}': ${error instanceof Error ? error.message : String(error)}`)
          })
    switch (security.mode) {
      case "insecure":
        return { mode: "insecure" } as const
      case "token":
        if (token === undefined || token === "") return yield* configError("security.mode is token but the token is empty")
        return { mode: "token", token } as const
      case "mtls":
        return {
          mode: "mtls",
          caFile: security.caFile ?? "",
          certFile: security.certFile ?? "",
          keyFile: security.keyFile ?? "",
          ...(token === undefined ? {} : { token }),
          ...(security.serverNameOverride === undefined ? {} : { serverNameOverride: security.serverNameOverride })
        } as const
    }
  })

const storeLayer = (store: StorePlan, metrics: PromMetrics.PromMetrics): Layer.Layer<Store.Store, StoreError> => {
  switch (store.kind) {
    case "lmdb":
      return KvLmdb.layerLmdb({
        path: store.path,
        minFreeBytes: store.minFreeBytes,
        onCommit: PromMetrics.storeCommitObserver(metrics),
        ...(store.stallAfterCommits === undefined ? {} : { stallAfterCommits: store.stallAfterCommits })
      })
    case "foundationdb":
      return KvFoundationDb.layerFoundationDb({ prefix: store.prefix, ...(store.clusterFile === undefined ? {} : { clusterFile: store.clusterFile }) })
    case "memory":
      return Store.layerMemory()
  }
}

/** Everything the node's fibers and servers need. */
type NodeContext = Engine.Services | Engine.Requirements | GrpcServer.GrpcServer

/** One node over production services. */
export const layerNode = (
  plan: Plan,
  auth: Auth.Options,
  metrics: PromMetrics.PromMetrics,
  dialler: DialAddress.Dialler,
  abort: Io["abort"]
): Layer.Layer<NodeContext, StoreError | GrpcServer.ListenError | Auth.AuthConfigError> => {
  const metricsLayer = PromMetrics.layer(metrics)
  const transport = GrpcNetwork.layerGrpc({
    bind: plan.grpcListen,
    auth,
    inFlightPerTargetMax: plan.config.grpc.inFlightPerTargetMax,
    messageBytesMax: plan.config.grpc.messageBytesMax,
    replicationStream: plan.config.grpc.replicationStream,
    dialler,
    writeOperationsMax: plan.config.grpc.writeOperationsMax,
    shutdownGraceMs: grpcShutdownGraceMs
  }).pipe(Layer.provide(metricsLayer))
  // Layers are built once however often they are named, so the canary wraps the same transport.
  const network = plan.networkCanary === undefined ? transport : Layer.merge(transport, plan.networkCanary(transport))
  const services = Layer.mergeAll(watched(storeLayer(plan.store, metrics), plan, abort), Clock.layer(plan.config.clock, plan.config.maxOffsetMs), Random.layerSeeded(plan.seed), metricsLayer, network)
  return Engine.layer(plan.settings).pipe(Layer.provideMerge(services))
}

/**
 * The store with its watchdog (`StoreWatch`), from the moment it is open: a node whose store
 * stopped ending transactions ends at once (`Io.abort`), and its supervisor starts it again on
 * the same disk. Started with the store, not once the node is built: a fresh disk writes while
 * the node is built (its origin, `Replica.make`), and a stall there hung the start for good.
 */
const watched = <E>(store: Layer.Layer<Store.Store, E>, plan: Plan, abort: Io["abort"]): Layer.Layer<Store.Store, E> => {
  const watch = StoreWatch.run(plan.settings.storeWatch ?? StoreWatch.settingsDefault).pipe(Effect.tapError((stalled) => Effect.sync(() => abort?.(stalled.message))))
  return Layer.provideMerge(Layer.scopedDiscard(Effect.forkScoped(watch)), store)
}

/** A failure while the node starts, said in terms of what could not start. */
const startError = (error: StoreError | GrpcServer.ListenError | Auth.AuthConfigError | HttpServer.HttpServerError): ServeError => {
  switch (error._tag) {
    case "ListenError":
      return new ServeError({ stage: "start", message: `the gRPC server cannot listen on ${error.address}: ${error.message}` })
    case "StoreError":
      return new ServeError({ stage: "start", message: `the store did not open (${error.operation}): ${error.message}` })
    case "AuthConfigError":
      return configError(error.message)
    case "HttpServerError":
      return new ServeError({ stage: "start", message: `the HTTP server did not start: ${error.message}` })
  }
}

// ---------------------------------------------------------------------------------------------
// Health and drain
// ---------------------------------------------------------------------------------------------

/**
 * The replication health of `/healthz`: the engine's (agent failures, lag), degraded as well
 * when every node of a target region has missed heartbeats for `heartbeat.timeout_ms`, which
 * catches a dead peer even when there is nothing to send it.
 */
const replicationHealth = (
  plan: Plan,
  engineHealth: Effect.Effect<Health.ReplicationHealth>
): Effect.Effect<Health.ReplicationHealth, never, TopologyManager.TopologyManager> =>
  Effect.gen(function* () {
    const health = yield* engineHealth
    if (!plan.config.enabled) return { ...health, status: "healthy", enabled: false }
    const topology = yield* (yield* TopologyManager.TopologyManager).current
    const unreachable = Topology.targetsOf(topology, plan.config.localRegion).filter((target) => !Topology.isRegionAvailable(topology, target))
    if (unreachable.length === 0) return health
    const found = unreachable.map((target) => `target ${target} unreachable (no heartbeat answered for ${plan.config.heartbeat.timeoutMs} ms)`).join("; ")
    const reason = health.reason === undefined ? found : `${health.reason}; ${found}`
    return { ...health, status: "degraded", message: `${health.message}; ${found}`, reason }
  })

/** The drain's settings for this node (`Drain`). */
const drainSettings = (plan: Plan): Drain.Settings => ({
  regionId: plan.settings.regionId,
  nodeId: plan.settings.nodeId,
  storeShape: plan.settings.storeShape,
  enabled: plan.config.enabled,
  timeoutMs: plan.drainTimeoutMs
})

// ---------------------------------------------------------------------------------------------
// Running
// ---------------------------------------------------------------------------------------------

/** Starts the engine fibers (replication, heartbeats, agent; failover under PrimaryReplica). */
const startEngine = (plan: Plan) =>
  Effect.gen(function* () {
    if (!plan.config.enabled) return Fiber.never
    return yield* Effect.forkScoped(Engine.run(plan.settings))
  })

/** The failover controller under PrimaryReplica (the engine runs it): its operator promote and its state. */
const failoverOf = (plan: Plan) =>
  Effect.gen(function* () {
    if (!plan.config.enabled || plan.config.strategy !== "PrimaryReplica") return undefined
    return yield* Failover.Failover
  })

/** Runs the monitor (backlog, lag and role gauges; one log line per change of state). */
const startMonitor = (plan: Plan, failover: Failover.Failover["Type"] | undefined) =>
  Effect.forkScoped(
    Monitor.run({ regionId: plan.settings.regionId, intervalMs: Monitor.intervalMsDefault, ...(failover === undefined ? {} : { failover: failover.state }) })
  )

/** Serves `/healthz`, `/livez`, `/readyz` and `/metrics` until the scope closes. */
const startHttp = (plan: Plan, metrics: PromMetrics.PromMetrics, context: Context.Context<NodeContext>, serving: Effect.Effect<boolean>) =>
  Effect.gen(function* () {
    const probes = yield* Effect.provide(HttpServer.nodeProbes(plan.settings, serving), context)
    return yield* HttpServer.start({
      host: plan.httpHost,
      port: plan.httpPort,
      version: plan.version,
      registry: metrics.registry,
      probes: { ...probes, replication: Effect.provide(replicationHealth(plan, probes.replication), context) }
    }).pipe(Effect.mapError(startError))
  })

/**
 * Keeps the gRPC health status in line with `/readyz`: SERVING while the public API is served
 * and the store answers (`HttpServer.storeProbe`: a read, and commits that work, within the HTTP
 * storage check's deadline).
 */
const followReadiness = (listener: GrpcServer.Listener, serving: Effect.Effect<boolean>, context: Context.Context<NodeContext>) => {
  const storeAnswers = HttpServer.storeProbe(Context.get(context, Store.Store)).pipe(Effect.disconnect, Effect.timeout(HttpServer.storageCheckTimeoutMsDefault), Effect.isSuccess)
  return Effect.forkScoped(GrpcHealth.follow(listener.health, Effect.flatMap(serving, (on) => (on ? storeAnswers : Effect.succeed(false)))))
}

/** Waits until the engine lets client writes in (its bootstrap finished or timed out). */
const writesOpen = (context: Context.Context<NodeContext>) =>
  Effect.gen(function* () {
    const replica = yield* Replica.Replica
    const startedMs = yield* EffectClock.currentTimeMillis
    while (!(yield* replica.writesOpen)) yield* Effect.sleep(writesOpenPollMs)
    return (yield* EffectClock.currentTimeMillis) - startedMs
  }).pipe(Effect.provide(context))

/**
 * Applies a reloaded configuration's topology (regions, nodes, replication targets, vault
 * placements) through the node's `TopologyManager`, which the router and the agent read: relay
 * trees change at once, and the agent re-sends what a new tree makes this region responsible
 * for. Node health and the current primary are kept; other settings need a restart.
 */
const reload = (config: Config.ReplicationConfig, io: Io, discovering: boolean) =>
  Effect.gen(function* () {
    const manager = yield* TopologyManager.TopologyManager
    // Under DNS discovery (as the node runs: a mode change needs a restart) the file declares no
    // node: the ones the rounds found stay (`keepNodes`).
    const applied = yield* Effect.either(manager.reconfigure(config.topology, { keepNodes: discovering }))
    if (Either.isLeft(applied)) return io.log(`reload refused: ${applied.left.message}`)
    const targets = Topology.targetsOf(yield* manager.current, config.localRegion)
    io.log(`reloaded the topology: ${config.topology.regions.length} regions, replication targets ${targets.length === 0 ? "(none)" : targets.join(", ")} (other settings need a restart)`)
  })

const describeIdleGc = (outcome: IdleGc.Outcome): string => {
  switch (outcome._tag) {
    case "Running":
      return `idle GC: the young generation is collected when the event loop is idle (process.idle_gc; ${IdleGc.defaults.fill * 100}% full, checked every ${IdleGc.defaults.everyMs} ms, every ${IdleGc.defaults.idleEveryMs} ms while idle)`
    case "Off":
      return "idle GC: off (process.idle_gc: false)"
    case "Unavailable":
      return `idle GC: unavailable, V8 collects on its own (${outcome.reason})`
  }
}

/** Serves the node until `io.shutdown` completes, then drains and closes everything. */
export const run = (plan: Plan, io: Io): Effect.Effect<void, ServeError> =>
  // Every fiber of the node (its layers, servers and engine) is watched for dying of a defect (`DeadFibers`).
  DeadFibers.supervised(Effect.scoped(
    Effect.gen(function* () {
      for (const line of describePlan(plan)) io.log(line)
      const auth = yield* authOptions(plan.config.security)
      // Loaded once up front so a bad certificate or token file is a configuration error.
      yield* Effect.mapError(Auth.load(auth), (error) => configError(error.message))
      const metrics = PromMetrics.make({ version: plan.version, region: plan.settings.regionId, node: plan.settings.nodeId })
      const dialler = DialAddress.make()
      const context = yield* Effect.mapError(Layer.build(layerNode(plan, auth, metrics, dialler, io.abort)), startError)
      const store = Context.get(context, Store.Store)
      // Under SourcePriority, a store holding changes of a region without a rank (`Ranks`).
      const refused = yield* Effect.mapError(Effect.provide(Ranks.refusal(plan.settings.resolver), context), startError)
      if (refused !== undefined) return yield* configError(refused)
      PromMetrics.registerStore(metrics, () => Effect.runSync(store.failedTransactions))
      PromMetrics.registerDialler(metrics, dialler.fallingBack)
      io.log(describeIdleGc(yield* IdleGc.scoped(plan.config.process.idleGc, PromMetrics.idleGcCounter(metrics))))
      const listener = Context.get(context, GrpcServer.GrpcServer)
      io.log(`gRPC: ${listener.address} (replication, CatchUp, the public Relationships API, health checking and reflection)`)
      const serving = yield* Ref.make(false)
      const http = yield* startHttp(plan, metrics, context, Ref.get(serving))
      io.log(`HTTP: ${http.url} (/healthz, /livez, /readyz, /metrics)`)
      yield* followReadiness(listener, Ref.get(serving), context)

      // Under discovery.mode dns the peers are known once DNS answered: the first round runs
      // before the engine, so a bootstrap pages the discovered peers.
      if (plan.config.discovery.mode === "dns") {
        yield* DiscoveryLoop.start(plan.config.discovery).pipe(Effect.provide(context), Effect.provide(DnsResolver.layer({ onAddresses: dialler.remember })))
      }

      // A new or wiped disk pages its peers' logs (the engine's Bootstrap) while replication runs.
      // The log end is read before the engine starts: once it runs, replication adds entries.
      const needed = yield* Effect.provide(Effect.orElseSucceed(Bootstrap.needed, () => true), context)
      const heldAtStart = yield* Effect.provide(Effect.orElseSucceed(Effect.flatMap(Store.Store, (store) => store.logEnd), () => 0), context)
      // The engine runs its failover controller before writes open: on a fresh disk of the
      // primary region it is what opens them, once the bootstrap brought the epoch records.
      const engine = yield* startEngine(plan).pipe(Effect.provide(context))
      const failover = yield* failoverOf(plan).pipe(Effect.provide(context))
      if (plan.config.enabled) yield* startMonitor(plan, failover).pipe(Effect.provide(context))
      const waitedMs = yield* writesOpen(context)
      io.log(
        needed
          ? `bootstrap (store held ${heldAtStart} log entries): paging every peer's log over CatchUp in the background; client writes open after ${waitedMs} ms`
          : "bootstrap: not needed (an earlier bootstrap completed)"
      )
      const api = yield* Scope.make()
      yield* Scope.extend(GrpcServer.serveNode(failover === undefined ? {} : { promote: failover.promote }), api).pipe(Effect.provide(context))
      yield* Ref.set(serving, true)
      io.log(`ready: ${plan.config.localRegion}/${plan.settings.nodeId} takes writes on ${listener.address}`)
      let reloadsDone = 0
      if (io.reloads !== undefined) {
        const counted = (config: Config.ReplicationConfig) => Effect.ensuring(reload(config, io, plan.config.discovery.mode === "dns"), Effect.sync(() => void reloadsDone++))
        yield* Effect.forkScoped(Stream.runForEach(io.reloads, counted).pipe(Effect.provide(context)))
      }

      const stop = yield* Effect.raceFirst(
        Effect.map(io.shutdown, (reason) => ({ _tag: "Shutdown" as const, reason })),
        Effect.map(Fiber.await(engine), (exit) => ({ _tag: "EngineStopped" as const, exit }))
      )
      yield* Ref.set(serving, false)
      listener.health.set(false)
      yield* Scope.close(api, Exit.void)
      if (stop._tag === "EngineStopped") {
        return yield* new ServeError({ stage: "run", message: `the engine stopped unexpectedly: ${Exit.isFailure(stop.exit) ? String(stop.exit.cause) : "it returned"}` })
      }
      io.log(`${stop.reason}: refusing new client writes, draining replication (at most ${plan.drainTimeoutMs} ms)`)
      const discovery = plan.config.discovery.mode === "dns" ? DiscoveryLoop.roundNow(plan.config.discovery).pipe(Effect.provide(DnsResolver.layer({ onAddresses: dialler.remember }))) : Effect.succeed(true)
      const refresh = { once: reloadsApplied(io.reloadsReceived ?? (() => 0), () => reloadsDone), discover: discovery }
      io.log(Drain.describe(yield* Effect.provide(Drain.run(drainSettings(plan), refresh), context), plan.drainTimeoutMs))
      io.log("stopping: closing the HTTP server, the gRPC server and the store")
    })
  )).pipe(Effect.withClock(CallbackClock.make()))
