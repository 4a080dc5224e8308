/**
 * One engine node, wired: topology manager, router, change feed, primacy (the node's view of
 * the PrimaryReplica epoch and its write lease), the Failover controller that keeps it up to
 * date, replica and agent over the abstract Store, Clock, Network, Random and Metrics
 * services. Production (`src/runtime`), the simulator (`src/sim`) and the test fixtures all
 * build nodes with this one layer and run them with `run`, which owns the start order; they
 * differ only in which implementations of those five services they provide.
 */
import { Context, Duration, Effect, Either, Fiber, Layer } from "effect"
import * as Bootstrap from "./Bootstrap.js"
import * as Failover from "./Failover.js"
import * as Agent from "./Agent.js"
import * as Backlog from "./Backlog.js"
import * as ChangeFeed from "./ChangeFeed.js"
import * as Clock from "./Clock.js"
import * as ClockOffset from "./ClockOffset.js"
import * as ConflictResolver from "./ConflictResolver.js"
import type { StoreError } from "./Errors.js"
import * as Health from "./Health.js"
import * as Heartbeater from "./Heartbeater.js"
import type * as Metrics from "./Metrics.js"
import * as Network from "./Network.js"
import * as Primacy from "./Primacy.js"
import type * as Random from "./Random.js"
import * as Replica from "./Replica.js"
import * as Role from "./Role.js"
import * as Router from "./Router.js"
import type * as Store from "./Store.js"
import type * as StoreWatch from "./StoreWatch.js"
import * as Topology from "./Topology.js"
import * as TopologyManager from "./TopologyManager.js"

/** Everything one node needs to know beyond its services. */
export interface Settings {
  readonly regionId: Topology.RegionId
  readonly nodeId: Topology.NodeId
  readonly topology: Topology.Topology
  readonly resolver: ConflictResolver.ConflictResolver
  readonly agent: Agent.Settings
  /** Per-subscriber change feed buffer (`buffer_size`). */
  readonly bufferSize: number
  readonly heartbeat: HeartbeatSettings
  /** The PrimaryReplica failover controller's timers (`failover:` in the configuration). */
  readonly failover: FailoverTimers
  readonly health: Health.Thresholds
  readonly loadBalancing?: Router.LoadBalancingStrategy
  /** Per-node stores make every node a replica that ships its own log (see `Agent`). */
  readonly storeShape: Agent.StoreShape
  /**
   * How long a node on a new or wiped disk refuses client writes while it pages its peers'
   * logs (`Bootstrap`); past it writes are taken and the bootstrap goes on behind them.
   */
  readonly bootstrapTimeoutMs: number
  /**
   * The largest message this node sends or takes (`grpc.max_message_bytes`); default
   * `Network.messageBytesMaxDefault`. The agent's batches and the CatchUp pages this node answers
   * with are kept within it, so none is refused as too large by this node's own transport.
   */
  readonly messageBytesMax?: number
  /**
   * Requests the node's network keeps in flight to one endpoint (`grpc.max_in_flight_per_target`);
   * the agent's window per target (`batches_in_flight_max`) is kept within it. Unset: no bound.
   */
  readonly inFlightPerTargetMax?: number
  /**
   * When the node ends itself because its store stopped ending transactions (`StoreWatch`); default
   * `StoreWatch.settingsDefault`. Run by the node's host from the moment its store is open, beside
   * everything else, not by the engine: a stalled store holds fibers that cannot be interrupted,
   * and a node stalled while it is built never reaches the engine.
   */
  readonly storeWatch?: StoreWatch.Settings
}

/** Node liveness tracking (the `heartbeat:` section of the configuration). */
export interface HeartbeatSettings {
  /** How often a node asks its peers whether they are alive. */
  readonly intervalMs: number
  /** A node without a heartbeat for this long is marked Unreachable. */
  readonly timeoutMs: number
  /** Consecutive good heartbeats a node needs to return to Healthy (prevents flapping). */
  readonly recoverAfter: number
}

/** The failover controller's settings that are not the node's identity. */
export type FailoverTimers = Omit<Failover.Settings, "regionId" | "nodeId">

/**
 * Default of `bootstrapTimeoutMs`: no wait. Change ids cannot collide (each disk numbers its
 * changes under its own origin), so the wait only buys writes that see the history a wiped
 * disk lost; without it such a write is concurrent with that history and the strategy decides,
 * as for any write made during a partition. The simulator's progress check showed the price of
 * waiting: a node that crashed before its first bootstrap finished, restarted while cut off,
 * refused every write for the whole wait (swarm seed 7058).
 */
export const bootstrapTimeoutMsDefault = 0

/**
 * What `settingsFromConfig` reads of a decoded configuration: production's `ReplicationConfig`
 * (`src/runtime/config/Config.ts`) has these keys and more. Declared here so that the shared
 * code does not depend on the runtime's configuration module.
 */
export interface NodeConfig {
  readonly localRegion: Topology.RegionId
  /** The configured node id, if any. */
  readonly nodeId: Topology.NodeId | undefined
  readonly topology: Topology.Topology
  readonly conflictResolution: ConflictResolver.Strategy
  /** SourcePriority order, lowest priority first. */
  readonly regionPriorities: ReadonlyArray<Topology.RegionId>
  readonly agent: Agent.Settings & { readonly bufferSize: number }
  readonly heartbeat: HeartbeatSettings
  readonly failover: FailoverTimers
  readonly health: Pick<Health.Thresholds, "lagMsMax">
}

/**
 * Node settings from a decoded configuration. The node id is the configured one, or the
 * first node declared in the local region. `custom` supplies the Custom resolver's function.
 */
export const settingsFromConfig = (
  config: NodeConfig,
  options: {
    readonly custom?: ConflictResolver.CustomResolve
    readonly nodeId?: string
    readonly storeShape?: Agent.StoreShape
    readonly bootstrapTimeoutMs?: number
    readonly messageBytesMax?: number
    readonly inFlightPerTargetMax?: number
  } = {}
): Either.Either<Settings, ConflictResolver.ResolverConfigError> => {
  const region = Topology.findRegion(config.topology, config.localRegion)
  const nodeId = options.nodeId ?? config.nodeId ?? (region === undefined ? undefined : Topology.regionNodes(region)[0]?.id)
  if (nodeId === undefined) {
    return Either.left(new ConflictResolver.ResolverConfigError({ message: `region '${config.localRegion}' declares no node to run as` }))
  }
  const resolver = ConflictResolver.make({
    strategy: config.conflictResolution,
    regionPriorities: config.regionPriorities,
    ...(options.custom === undefined ? {} : { custom: options.custom })
  })
  return Either.map(resolver, (resolver) => ({
    regionId: config.localRegion,
    nodeId,
    topology: config.topology,
    resolver,
    agent: config.agent,
    bufferSize: config.agent.bufferSize,
    heartbeat: config.heartbeat,
    failover: config.failover,
    storeShape: options.storeShape ?? "per_node",
    bootstrapTimeoutMs: options.bootstrapTimeoutMs ?? bootstrapTimeoutMsDefault,
    ...(options.messageBytesMax === undefined ? {} : { messageBytesMax: options.messageBytesMax }),
    ...(options.inFlightPerTargetMax === undefined ? {} : { inFlightPerTargetMax: options.inFlightPerTargetMax }),
    health: { maxRetries: config.agent.maxRetries, lagMsMax: config.health.lagMsMax }
  }))
}

/** The services a node provides. */
export type Services = Replica.Replica | ChangeFeed.ChangeFeed | Agent.Agent | Router.Router | TopologyManager.TopologyManager | Primacy.Primacy | Failover.Failover

/** The services a node needs from its environment (real or simulated). */
export type Requirements = Store.Store | Clock.Clock | Network.Network | Random.Random | Metrics.Metrics

/**
 * Builds one node's services, each after those it needs: topology manager, router, change feed,
 * primacy, replica, agent, then the failover controller, which settles the node's starting view
 * while the node is built, before it serves anything (so a restarted primary never takes a write
 * before it has fenced itself). One effect instead of a graph of layers: building a graph
 * (memoized, each layer in a scope of its own, merged branches in fibers of their own) cost a
 * simulated node's start about 3,700 Effect operations, a tenth of a simulator run's.
 */
export const build = (settings: Settings): Effect.Effect<Context.Context<Services>, StoreError, Requirements> =>
  Effect.gen(function* () {
    const topology = yield* TopologyManager.make(settings.topology, {
      heartbeatTimeoutMs: settings.heartbeat.timeoutMs,
      recoverAfter: settings.heartbeat.recoverAfter
    })
    const withTopology = Context.make(TopologyManager.TopologyManager, topology)
    const router = yield* Effect.provide(Router.make(settings.loadBalancing === undefined ? {} : { loadBalancing: settings.loadBalancing }), withTopology)
    const feed = yield* ChangeFeed.make({ bufferSize: settings.bufferSize })
    const primacy = yield* Primacy.make({
      initial: { epoch: 0, primary: settings.topology.strategy === "PrimaryReplica" ? Topology.primaryRegion(settings.topology)?.id : undefined },
      // A lost primary is noticed one heartbeat timeout after its last answer, and a successor is
      // promoted later still, so by then the leases it was granted have run out: a takeover waits
      // only when the old primary was still heard from (and safety never rests on this choice).
      leaseMs: settings.heartbeat.timeoutMs,
      // Two regions: three rounds, so that a healthy node renews twice within its lease while a
      // takeover after a region was lost waits seconds rather than the heartbeat timeout.
      pairLeaseMs: Math.min(settings.heartbeat.timeoutMs, 3 * settings.heartbeat.intervalMs),
      regions: settings.topology.regions.map((region) => region.id),
      // A new or wiped disk vouches for no primary until its bootstrap has paged every region and
      // Failover has adopted what it brought (`Primacy.State.recovering`, `Failover.make`'s check).
      ...(yield* recoveringOf(settings))
    })
    const shared = withTopology.pipe(Context.add(Router.Router, router), Context.add(ChangeFeed.ChangeFeed, feed), Context.add(Primacy.Primacy, primacy))
    const messageBytesMax = settings.messageBytesMax ?? Network.messageBytesMaxDefault
    const replica = yield* Effect.provide(Replica.make({ regionId: settings.regionId, nodeId: settings.nodeId, resolver: settings.resolver, messageBytesMax }), shared)
    const agent = yield* Effect.provide(
      Agent.make({ regionId: settings.regionId, nodeId: settings.nodeId, settings: settings.agent, storeShape: settings.storeShape, messageBytesMax, ...(settings.inFlightPerTargetMax === undefined ? {} : { inFlightPerTargetMax: settings.inFlightPerTargetMax }) }),
      shared
    )
    const withReplica = shared.pipe(Context.add(Replica.Replica, replica), Context.add(Agent.Agent, agent))
    const failover = yield* Effect.provide(Failover.make({ regionId: settings.regionId, nodeId: settings.nodeId, ...settings.failover }), withReplica)
    return Context.add(withReplica, Failover.Failover, failover)
  })

/** Under PrimaryReplica, a new or wiped disk's `Primacy.Settings.recovering`: the lowest epoch it vouches for until its bootstrap completes. */
const recoveringOf = (settings: Settings): Effect.Effect<Pick<Primacy.Settings, "recovering">, never, Store.Store | Clock.Clock> =>
  Effect.gen(function* () {
    if (settings.topology.strategy !== "PrimaryReplica" || !(yield* Effect.orElseSucceed(Bootstrap.needed, () => true))) return {}
    const clock = yield* Clock.Clock
    return { recovering: { vouchesFromEpoch: Primacy.recoveringFloor(yield* clock.physicalMs, clock.maxOffsetMs) } }
  })

/** One node's services as a layer (`build`). */
export const layer = (settings: Settings): Layer.Layer<Services, StoreError, Requirements> => Layer.effectContext(build(settings))

/**
 * Runs a node until interrupted: answers requests, heartbeats its peers, bootstraps a new or
 * wiped disk from its peers' logs (client writes wait for it at most `bootstrapTimeoutMs`, by
 * default not at all), and ships the log to targets. Interrupting it is a crash or a shutdown:
 * what was committed stays in the Store.
 */
export const run = (
  settings: Settings
): Effect.Effect<
  never,
  never,
  Replica.Replica | Agent.Agent | Network.Network | TopologyManager.TopologyManager | Clock.Clock | Primacy.Primacy | Store.Store | Failover.Failover
> =>
  Effect.scoped(
    Effect.gen(function* () {
      const replica = yield* Replica.Replica
      const agent = yield* Agent.Agent
      const network = yield* Network.Network
      const failover = yield* Failover.Failover
      yield* network.serve(replica.handle, replica.answerAtOnce)
      // The controller runs before writes open: on a fresh disk of the primary region it is what
      // opens them, once the bootstrap brought the epoch records (see `bootstrapThenOpen`).
      const controller = yield* Effect.forkScoped(failover.run)
      yield* bootstrapThenOpen(settings)
      const heartbeats = yield* Effect.forkScoped(
        Heartbeater.run({
          regionId: settings.regionId,
          nodeId: settings.nodeId,
          intervalMs: settings.heartbeat.intervalMs,
          // An answer slower than the interval is still an answer: timing out at the interval left
          // peers with a longer round trip Unreachable for good (found by the swarm).
          requestTimeoutMs: Math.max(settings.heartbeat.intervalMs, Math.min(settings.agent.requestTimeoutMs, settings.heartbeat.timeoutMs / 2)),
          requestTimeoutMaxMs: Math.max(settings.agent.requestTimeoutMs, settings.heartbeat.timeoutMs)
        })
      )
      // Each of these runs for ever; one that ends died of a bug. It ends the node with it, as a
      // thread that dies takes its process down: `serve` exits (and is restarted) and the
      // simulator counts it, instead of a node that goes on without heartbeats or failover.
      return yield* agent.run.pipe(Effect.raceFirst(Fiber.join(controller)), Effect.raceFirst(Fiber.join(heartbeats)))
    })
  )

/**
 * Bootstraps if the disk needs it, and opens client writes when it is done or its time is up.
 * A disk whose bootstrap completed before (or a zero timeout) opens them at once, before
 * anything is forked, so a restarted node never refuses writes it could take.
 */
const bootstrapThenOpen = (settings: Settings) =>
  Effect.gen(function* () {
    const replica = yield* Replica.Replica
    const needed = yield* Effect.orElseSucceed(Bootstrap.needed, () => true)
    // A fresh disk of the primary region cannot know whether another region was promoted while
    // its old disk was away. With three or more regions its write lease says so (a majority that
    // adopted a newer epoch answers with it); with two there is no lease, so only its failover
    // controller opens writes: once the bootstrap has paged the other region's log, which brings
    // any newer epoch record (`Failover`), or when the operator promotes it. No timer opens them:
    // one that did (the heartbeat timeout) made two writers when the operator had promoted the
    // other region and it was cut off while this disk came back (swarm seed 706580).
    const hold =
      needed &&
      settings.topology.strategy === "PrimaryReplica" &&
      settings.topology.regions.length < 3 &&
      Topology.primaryRegion(settings.topology)?.id === settings.regionId
    const waitMs = hold ? 0 : settings.bootstrapTimeoutMs
    if (!needed || (!hold && waitMs === 0)) yield* replica.openWrites
    const bootstrapSettings: Bootstrap.Settings = {
      regionId: settings.regionId,
      nodeId: settings.nodeId,
      storeShape: settings.storeShape,
      pageSize: Replica.catchUpPageSizeMax,
      requestTimeoutMs: settings.agent.requestTimeoutMs,
      // As the heartbeater's deadlines grow for a slow peer.
      requestTimeoutMaxMs: Math.max(settings.agent.requestTimeoutMs, settings.heartbeat.timeoutMs),
      retryDelayMs: settings.agent.retryDelayMs,
      retryDelayMaxMs: settings.agent.retryDelayMaxMs
    }
    // A store failure (a transient one: a slow or failing disk) must not end these for the
    // incarnation: a bootstrap given up left a rebuilt disk without its peers' history for good,
    // since their agents never resend it (swarm seed 401434). Each resumes from what it recorded
    // in the store, so it is simply run again after the capped retry delay.
    const onStoreFailure = (what: string) => <A, R>(effect: Effect.Effect<A, StoreError, R>): Effect.Effect<A, never, R> =>
      effect.pipe(
        Effect.tapError((error) =>
          Effect.zipRight(Effect.logWarning(`${what} stopped on a store failure, retrying: ${error.message}`), Effect.sleep(Duration.millis(settings.agent.retryDelayMaxMs)))
        ),
        Effect.eventually
      )
    // A bootstrapped disk keeps asking for its region's late stragglers (its region may have had an older disk).
    const tail = Bootstrap.tailOrphans({ ...bootstrapSettings, intervalMs: settings.agent.retryDelayMaxMs * orphanTailIntervals }).pipe(onStoreFailure("the orphan tail"))
    // Regions that join the topology later and this disk never paged are paged then.
    const after = Effect.zipRight(Effect.forkScoped(Bootstrap.followSources(bootstrapSettings, tail).pipe(onStoreFailure("paging a joined region"))), tail)
    if (!needed) return yield* Effect.forkScoped(after)
    const bootstrap = Bootstrap.run(bootstrapSettings).pipe(onStoreFailure("bootstrap"), Effect.zipRight(hold ? Effect.void : replica.openWrites), Effect.zipRight(after))
    const opener = Effect.gen(function* () {
      yield* Effect.sleep(Duration.millis(waitMs))
      if (yield* replica.writesOpen) return
      yield* Effect.logWarning(`bootstrap not complete after ${waitMs} ms: taking client writes while it goes on`)
      yield* replica.openWrites
    })
    yield* Effect.forkScoped(bootstrap)
    if (waitMs > 0) yield* Effect.forkScoped(opener)
  })

/** The orphan tail asks every this many capped retry delays (`agent.retry_delay_max_ms`). */
const orphanTailIntervals = 5

/** The node's replication health now, with every target's backlog (left out when the store does not answer), its role and its clock. */
export const health = (settings: Settings): Effect.Effect<Health.ReplicationHealth, never, Services | Store.Store | Clock.Clock> =>
  Effect.gen(function* () {
    const feed = yield* ChangeFeed.ChangeFeed
    const agent = yield* Agent.Agent
    const clock = yield* Clock.Clock
    const backlog = yield* Backlog.measureBounded(settings.regionId)
    // A peer's estimate counts while it is younger than the heartbeat timeout: a silent peer's
    // last reading says nothing of the clock now.
    const offset = ClockOffset.status(yield* clock.offsets, yield* Clock.monotonicMs, clock.maxOffsetMs, settings.heartbeat.timeoutMs)
    return Health.compute({
      enabled: true,
      feed: yield* feed.stats,
      agent: yield* agent.stats,
      thresholds: settings.health,
      ...(backlog._tag === "Some" ? { backlog: backlog.value } : {}),
      role: yield* Role.current(settings.regionId),
      clock: offset
    })
  })
