/**
 * The run-time owner of the topology: it holds the current `Topology.Topology`, applies
 * changes to it (nodes and regions coming and going, health, a new primary after failover, a
 * whole replacement), tracks heartbeats to find stale nodes, and tells subscribers what
 * changed. The router, the replication agent and discovery read and change the topology only
 * through this service.
 *
 * Every change is all-or-nothing and validated with `TopologyBuilder.validate`: a change
 * under an unknown parent, a duplicate, or anything that would break an invariant fails with
 * a `TopologyManagerError` and leaves the topology as it was. Nothing is a silent no-op.
 *
 * Changes are serialised by one lock and computed by pure functions over (topology, heartbeat
 * tracking, now), so the order of events always matches the order of states. Time comes from
 * Effect's `Clock`; tests drive it with `TestClock`.
 */
import { Context, Data, Duration, Effect, Either, Layer, Option, Queue, Ref, Scope, Stream, SubscriptionRef } from "effect"
import * as NodeClock from "./Clock.js"
import * as Handoff from "./Handoff.js"
import * as Signals from "./Signals.js"
import * as Topology from "./Topology.js"
import * as TopologyBuilder from "./TopologyBuilder.js"

/**
 * What changed. A region or zone arrives with its nodes: `RegionAdded` is followed by a
 * `ZoneAdded` per zone and a `NodeAdded` per node, and removal reports the nodes and zones
 * before the region, so a subscriber can keep an incremental copy. `TopologyReplaced` carries
 * the new topology: after it, subscribers should rebuild from the snapshot. `Lagged` says a
 * subscriber fell too far behind and `missed` events were dropped for it; it is always
 * followed by a `TopologyReplaced` snapshot that includes their effect.
 */
export type TopologyEvent = Data.TaggedEnum<{
  NodeAdded: { readonly regionId: Topology.RegionId; readonly zoneId: Topology.ZoneId; readonly nodeId: Topology.NodeId }
  NodeRemoved: { readonly regionId: Topology.RegionId; readonly zoneId: Topology.ZoneId; readonly nodeId: Topology.NodeId }
  NodeStatusChanged: {
    readonly regionId: Topology.RegionId
    readonly zoneId: Topology.ZoneId
    readonly nodeId: Topology.NodeId
    readonly oldStatus: Topology.NodeStatus
    readonly newStatus: Topology.NodeStatus
  }
  ZoneAdded: { readonly regionId: Topology.RegionId; readonly zoneId: Topology.ZoneId }
  ZoneRemoved: { readonly regionId: Topology.RegionId; readonly zoneId: Topology.ZoneId }
  RegionAdded: { readonly regionId: Topology.RegionId }
  RegionRemoved: { readonly regionId: Topology.RegionId }
  PrimaryChanged: { readonly oldPrimary: Topology.RegionId | undefined; readonly newPrimary: Topology.RegionId }
  TopologyReplaced: { readonly topology: Topology.Topology }
  Lagged: { readonly missed: number }
}>

/** Constructors and matchers for `TopologyEvent`. */
export const TopologyEvent = Data.taggedEnum<TopologyEvent>()

/** Machine-readable cause of a `TopologyManagerError`. */
export type TopologyManagerErrorReason =
  | "UnknownRegion"
  | "UnknownZone"
  | "UnknownNode"
  | "DuplicateRegion"
  | "DuplicateZone"
  | "DuplicateNode"
  /** The local region cannot be removed: this process runs in it. */
  | "LocalRegion"
  /** A vault's home region cannot be removed: its writes would have nowhere to go. */
  | "VaultHomeRegion"
  /** The primary cannot be removed under PrimaryReplica; promote another region first. */
  | "PrimaryRegion"
  /** The resulting topology fails `TopologyBuilder.validate`; `cause` says why. */
  | "Invalid"

/** A topology change was rejected; the topology is unchanged. */
export class TopologyManagerError extends Data.TaggedError("TopologyManagerError")<{
  readonly reason: TopologyManagerErrorReason
  readonly message: string
  readonly cause?: TopologyBuilder.TopologyError
}> {}

/**
 * What a node has heard of each region (`TopologyManager.heard`), for the regions with a node
 * that has answered a heartbeat since this manager started and is not Unreachable now.
 */
export interface Heard {
  /** When such a node last answered. */
  readonly lastMs: ReadonlyMap<Topology.RegionId, number>
  /** Per region, each such node's span of answers without a silence (see `heardThroughoutSince`). */
  readonly spans: ReadonlyMap<Topology.RegionId, ReadonlyArray<HeardSpan>>
}

/**
 * A node's answers since `sinceMs` with no silence between two of them longer than the stale
 * check allows; with no answer by `untilMs` that silence begins. Read with the time, not only
 * at stale checks: the check runs once a round, so a region down for a little longer than the
 * heartbeat timeout could come back between two checks unseen, and a hand-back timed from before
 * the outage gave it the role at once (`Failover`).
 */
export interface HeardSpan {
  readonly sinceMs: number
  readonly untilMs: number
}

/** Where a node sits. */
export interface NodeRef {
  readonly regionId: Topology.RegionId
  readonly zoneId: Topology.ZoneId
  readonly nodeId: Topology.NodeId
}

/** A node that sent this node a heartbeat request (see `requestersSince`). */
export interface NodeRequester {
  readonly regionId: Topology.RegionId
  readonly nodeId: Topology.NodeId
  /** When its latest request arrived. */
  readonly atMs: number
  /** The lease that request said its sender runs on (`Message.Heartbeat.leaseMs`), if it said one. */
  readonly leaseMs?: number
}

/** Extra replication edges for a region being added. */
export interface RegionLinks {
  /** Regions the new region ships its changes to. */
  readonly targets?: ReadonlyArray<Topology.RegionId>
  /** Existing regions that start shipping their changes to the new region. */
  readonly sources?: ReadonlyArray<Topology.RegionId>
}

/** Settings of the manager. */
export interface Options {
  /**
   * A node is stale when its last heartbeat is older than this. A node that never sent one
   * is measured from when tracking began (manager creation or the node's addition).
   */
  readonly heartbeatTimeoutMs: number
  /**
   * Consecutive heartbeats (each within `heartbeatTimeoutMs` of the previous one) that a
   * node demoted for staleness needs before it is Healthy again; one must not revive it.
   */
  readonly recoverAfter: number
  /** Events buffered per subscriber; beyond this the subscriber receives `Lagged`. */
  readonly subscriberEventsMax: number
}

/** Defaults: 30 s heartbeat timeout (as in the seed), 3 heartbeats to recover, 1024 events. */
export const defaultOptions: Options = { heartbeatTimeoutMs: 30_000, recoverAfter: 3, subscriberEventsMax: 1024 }

/**
 * One subscriber's view of the event sequence. Events arrive in commit order. Meant for a
 * single consuming fiber.
 */
export interface Subscription {
  /** Waits for the next event. */
  readonly take: Effect.Effect<TopologyEvent>
  /** The events as a stream (never ends while the subscription's scope is open). */
  readonly events: Stream.Stream<TopologyEvent>
}

/** The topology manager service. */
export class TopologyManager extends Context.Tag("inferadb/TopologyManager")<
  TopologyManager,
  {
    /** The topology now. */
    readonly current: Effect.Effect<Topology.Topology>
    /** The current topology, then every new one. */
    readonly changes: Stream.Stream<Topology.Topology>
    /** Subscribes to events from now on, until the scope closes. */
    readonly subscribe: Effect.Effect<Subscription, never, Scope.Scope>
    /** Adds a region with its zones and nodes, optionally wiring replication edges to it. */
    readonly addRegion: (region: Topology.Region, links?: RegionLinks) => Effect.Effect<void, TopologyManagerError>
    /**
     * Removes a region with its nodes, its replication edges and its place in vault residency
     * sets. Rejected for the local region, a vault's home region, and the PrimaryReplica primary.
     */
    readonly removeRegion: (regionId: Topology.RegionId) => Effect.Effect<void, TopologyManagerError>
    /** Adds a zone (with any nodes it holds) to a region. */
    readonly addZone: (regionId: Topology.RegionId, zone: Topology.Zone) => Effect.Effect<void, TopologyManagerError>
    /** Removes a zone and its nodes. */
    readonly removeZone: (regionId: Topology.RegionId, zoneId: Topology.ZoneId) => Effect.Effect<void, TopologyManagerError>
    /** Adds a node to a zone; node ids are unique across the topology. */
    readonly addNode: (regionId: Topology.RegionId, zoneId: Topology.ZoneId, node: Topology.Node) => Effect.Effect<void, TopologyManagerError>
    /** Removes a node. */
    readonly removeNode: (regionId: Topology.RegionId, zoneId: Topology.ZoneId, nodeId: Topology.NodeId) => Effect.Effect<void, TopologyManagerError>
    /**
     * Sets a node's status as reported by an authority (health check, operator, discovery).
     * An explicit status overrides heartbeat bookkeeping. Emits an event only on a real change.
     */
    readonly updateNodeStatus: (
      regionId: Topology.RegionId,
      zoneId: Topology.ZoneId,
      nodeId: Topology.NodeId,
      status: Topology.NodeStatus
    ) => Effect.Effect<void, TopologyManagerError>
    /**
     * Applies a reloaded configuration: regions, zones, nodes, replication targets and vault
     * placements come from `declared`; what this node learned at run time stays (the status of
     * every node that remains, and the current primary when it remains). A region set change
     * is refused under PrimaryReplica, whose write lease counts the regions it started with.
     * With `keepNodes` (DNS discovery, whose file declares no node) the nodes of every region that
     * remains are kept too, in place of any declared (taken only where it has none yet): discovery
     * found them, and dropping them until its next round left the node with no peer, itself included.
     */
    readonly reconfigure: (declared: Topology.Topology, options?: { readonly keepNodes?: boolean }) => Effect.Effect<void, TopologyManagerError>
    /** Replaces the whole topology after validating it; an invalid one is rejected. */
    readonly replaceTopology: (topology: Topology.Topology) => Effect.Effect<void, TopologyManagerError>
    /** Makes a region the only primary (failover and promotion back). */
    readonly setPrimary: (regionId: Topology.RegionId) => Effect.Effect<void, TopologyManagerError>
    /**
     * Records a heartbeat answer. `allowanceMs`, when larger than `heartbeatTimeoutMs`, is how
     * long this node may stay silent before it counts as stale (a link whose round trip is
     * close to the timeout would otherwise flap between Unreachable and recovering forever).
     */
    readonly recordHeartbeat: (
      regionId: Topology.RegionId,
      zoneId: Topology.ZoneId,
      nodeId: Topology.NodeId,
      allowanceMs?: number
    ) => Effect.Effect<void, TopologyManagerError>
    /**
     * `recordHeartbeat` at once, without an Effect, when the answer changes nothing anyone is told
     * of (a healthy node's answer, nearly all of them): true then. False leaves everything as it
     * was; the caller then runs `recordHeartbeat`, which publishes the change under the lock. The
     * heartbeater takes its answers in callbacks (`Heartbeater`), where an Effect per answer was
     * most of a simulated node's heartbeat work.
     */
    readonly recordHeartbeatQuietly: (regionId: Topology.RegionId, zoneId: Topology.ZoneId, nodeId: Topology.NodeId, allowanceMs?: number) => boolean
    /**
     * The gate the next heartbeat answer recorded from any node of `regionId`, or the next
     * heartbeat request one of them sends this node (`heardRequestFrom`), opens: the agent's cue
     * that a target it could not connect to is listening again, long before the node's status
     * could change (that needs the heartbeat timeout first).
     */
    readonly heardFrom: (regionId: Topology.RegionId) => Effect.Effect<Handoff.Gate>
    /**
     * The gate the next heartbeat answer recorded from node `nodeId` of `regionId`, or the next
     * heartbeat it sends this node, opens: `heardFrom` for one node, the agent's cue for a
     * sibling node (same region, its own store) it could not connect to.
     */
    readonly heardFromNode: (regionId: Topology.RegionId, nodeId: Topology.NodeId) => Effect.Effect<Handoff.Gate>
    /**
     * Tells the manager node `nodeId` of `regionId` sent this node a heartbeat: its process
     * runs, so `heardFrom(regionId)` and `heardFromNode(regionId, nodeId)` open. A restarted
     * node's first round asks every peer at once, up to a heartbeat interval before this node's
     * own round would hear it; an agent that could not connect to it waited out that interval
     * before it sent the backlog (`bench:repl`'s drain: 0.35-0.9 s after the restarted target was
     * ready, December 2026). Node statuses do not change: only an answer to this node's own
     * heartbeat shows that this node reaches the peer.
     */
    readonly heardRequestFrom: (regionId: Topology.RegionId, nodeId: Topology.NodeId, leaseMs?: number) => Effect.Effect<void>
    /** `heardRequestFrom` at once, outside an Effect (a heartbeat answered at once: `Network.AnswerAtOnce`). */
    readonly heardRequestFromNow: (regionId: Topology.RegionId, nodeId: Topology.NodeId, leaseMs?: number) => void
    /**
     * The topology of the manager's latest step, read at once: what `current` gives, or the one
     * its lock is about to publish.
     */
    readonly currentNow: () => Topology.Topology
    /**
     * The gate the next heartbeat request from a node the topology lacks, of a region it holds,
     * opens: under DNS discovery, the cue for an early round (`Discovery.runSync`). A node that
     * started after this node's last round is unknown here until the next one, and its region
     * counts no answer of it meanwhile.
     */
    readonly strangerAsked: Effect.Effect<Handoff.Gate>
    /**
     * The nodes that sent this node a heartbeat request at `sinceMs` or later, whether the
     * topology holds them or not, each with its region. Under DNS discovery a node can run and
     * hold a lease while this node's topology lacks it (its pod's record was withdrawn while it
     * was replaced, and this node has not run a round since it came back): a two-region takeover
     * that waited only for the nodes it knew took writes while such a node still took writes in
     * the old epoch (swarm seed 93100038 over two-region-handback-pause with discovery; see
     * `Primacy.pairRenewal`).
     */
    readonly requestersSince: (sinceMs: number) => ReadonlyArray<NodeRequester>
    /**
     * The gate opened when `regionId` next becomes available (`Topology.isRegionAvailable`) in
     * the published topology after it was not: the agent's cue that a target region that was
     * down is back, which cuts a backoff short.
     */
    readonly returning: (regionId: Topology.RegionId) => Effect.Effect<Handoff.Gate>
    /** Marks Unreachable every stale node (default timeout: `heartbeatTimeoutMs`); returns them. */
    readonly checkStaleNodes: (timeoutMs?: number) => Effect.Effect<ReadonlyArray<NodeRef>>
    /**
     * Regions with a node that has answered a heartbeat since this manager started and is not
     * Unreachable now, each with when such a node last answered and since when without a
     * silence: evidence of contact, where a node never heard from counts as Healthy until its
     * grace period ends (`Failover` must not confirm or promote on such a guess, nor promote on
     * answers older than the primary's loss, nor hand back to a region that was silent since).
     */
    readonly heard: Effect.Effect<Heard>
    /**
     * Regions with a node that contact was established with since this manager started (it
     * answered a heartbeat while available, or answered enough to recover), whatever its status
     * now: a region outside it that is Unreachable has not been lost, it was never reached
     * (`Failover` does not fence a primary for such regions).
     */
    readonly contactedRegions: Effect.Effect<ReadonlySet<Topology.RegionId>>
    /**
     * Declared regions this node knows no node of yet, declared less than `heartbeatTimeoutMs`
     * ago: the grace a node never heard from gets, for a region whose nodes are not known yet
     * (DNS discovery learns them at run time). Such a region is not available
     * (`Topology.isRegionAvailable` has no node to go by), but it is not lost either: a node
     * that started while DNS failed counted the primary region down from its first check, and
     * promoted itself the moment it came back from a pause longer than `detectAfterMs` (swarm
     * seed 85000125 over chaos-primary-pause with discovery). `Failover` does not count the
     * primary down while it is here.
     */
    readonly awaited: Effect.Effect<ReadonlySet<Topology.RegionId>>
    /** Runs `checkStaleNodes` every `intervalMs`, forever; fork it. */
    readonly runStaleChecks: (intervalMs: number, timeoutMs?: number) => Effect.Effect<never>
  }
>() {}

/** Builds a manager over an already validated topology; an invalid one is a defect. */
export const make = (initial: Topology.Topology, options: Partial<Options> = {}): Effect.Effect<TopologyManager["Type"]> =>
  Effect.gen(function* () {
    const settings = yield* checkOptions({ ...defaultOptions, ...options })
    const valid = TopologyBuilder.validate(initial)
    if (Either.isLeft(valid)) return yield* Effect.dieMessage(`TopologyManager.make: ${valid.left.message}`)
    const nowMs = yield* NodeClock.monotonicMs
    const state: Box<State> = { current: { topology: initial, tracking: reconcileTracking(new Map(), initial, nowMs), declared: reconcileDeclared(new Map(), initial, nowMs) } }
    const topologyRef = yield* SubscriptionRef.make(initial)
    const subscribers = yield* Ref.make<ReadonlySet<Subscriber>>(new Set())
    const lock = new Handoff.Lock()
    const core: Core = { settings, state, topologyRef, subscribers, lock, returned: Signals.make(), now: yield* NodeClock.monotonicReader }
    return service(core)
  })

/** A manager over `initial`. */
export const layer = (initial: Topology.Topology, options: Partial<Options> = {}): Layer.Layer<TopologyManager> =>
  Layer.effect(TopologyManager, make(initial, options))

// ---------------------------------------------------------------------------------------
// Service wiring

/** Heartbeat bookkeeping for one node. */
interface Tracking {
  readonly trackedSinceMs: number
  readonly lastHeartbeatMs: number | undefined
  /** Consecutive heartbeats since the node was demoted for staleness. */
  readonly goodHeartbeats: number
  /** Whether the stale check (not an authority) made the node Unreachable. */
  readonly demotedForStaleness: boolean
  /** The silence this node is allowed beyond the heartbeat timeout (see `recordHeartbeat`). */
  readonly allowanceMs?: number
  /**
   * Since when the node has answered without a silence longer than the stale check allows: the
   * answer that ended the latest such silence (or its first answer). Set whether or not a stale
   * check ran during the silence (see `HeardSpan`).
   */
  readonly heardSinceMs?: number
  /**
   * Contact was established: a heartbeat came while the node was available, or brought it back
   * (its first answer ever, or `recoverAfter` good heartbeats after it went silent).
   */
  readonly established?: boolean
}

interface State {
  readonly topology: Topology.Topology
  readonly tracking: ReadonlyMap<string, Tracking>
  /** Per region, since when it has been declared (manager creation or its addition): see `awaited`. */
  readonly declared: ReadonlyMap<Topology.RegionId, number>
}

interface Outcome<A> {
  readonly state: State
  readonly events: ReadonlyArray<TopologyEvent>
  readonly result: A
}

type Edit<A> = (state: State, nowMs: number, settings: Options) => Either.Either<Outcome<A>, TopologyManagerError>

interface Subscriber {
  readonly queue: Queue.Queue<TopologyEvent>
  /** Events dropped since the queue overflowed; while positive, nothing more is queued. */
  readonly missed: Ref.Ref<number>
  /** The snapshot owed right after a `Lagged`. */
  readonly owed: Ref.Ref<Option.Option<TopologyEvent>>
}

/**
 * The manager's state. A plain cell rather than a `Ref`: every edit is one synchronous step
 * either way, and a cell can also be read and stepped outside an Effect (`recordHeartbeatQuietly`).
 */
interface Box<A> {
  current: A
}

interface Core {
  readonly settings: Options
  readonly state: Box<State>
  readonly topologyRef: SubscriptionRef.SubscriptionRef<Topology.Topology>
  readonly subscribers: Ref.Ref<ReadonlySet<Subscriber>>
  readonly lock: Handoff.Lock
  /** Per region, the signal its next return to availability fires (see `returning`). */
  readonly returned: Signals.Signals<Topology.RegionId>
  /**
   * The monotonic clock of the fiber that made the manager (`Clock.monotonicReader`), read without
   * an Effect operation: every heartbeat sent and answered is an edit that reads it.
   */
  readonly now: () => number
}

const checkOptions = (settings: Options): Effect.Effect<Options> =>
  settings.heartbeatTimeoutMs > 0 && Number.isInteger(settings.recoverAfter) && settings.recoverAfter >= 1 &&
    Number.isInteger(settings.subscriberEventsMax) && settings.subscriberEventsMax >= 1
    ? Effect.succeed(settings)
    : Effect.dieMessage(`TopologyManager: invalid options ${JSON.stringify(settings)}`)

const service = (core: Core): TopologyManager["Type"] => {
  const apply = <A>(edit: Edit<A>) => commit(core, edit)
  // Per region and per node, the signal its next recorded heartbeat answer or heartbeat request fires (see `heardFrom`).
  const hearing = Signals.make<Topology.RegionId>()
  // Nodes are keyed with their region: node ids need only be unique within a region.
  const hearingNode = Signals.make<string>()
  // Fired at once, in the step that records what was heard: two Effects of their own were four
  // Effect operations per heartbeat answer and per heartbeat request.
  const heard = (regionId: Topology.RegionId, nodeId: Topology.NodeId): void => {
    hearing.unsafeFire(regionId)
    hearingNode.unsafeFire(`${regionId}/${nodeId}`)
  }
  // Per node (keyed with its region), its latest heartbeat request; kept for every node that sent
  // one, known to the topology or not (see `requestersSince`). Nodes are few; entries are never dropped.
  const requesters = new Map<string, NodeRequester>()
  // The signal the next heartbeat request from a node of a known region that the topology lacks fires (`strangerAsked`).
  const strangers = Signals.make<"stranger">()
  const requestersSince = (sinceMs: number) => [...requesters.values()].filter((requester) => requester.atMs >= sinceMs)
  const requested = (regionId: Topology.RegionId, nodeId: Topology.NodeId, leaseMs: number | undefined): void => {
    const topology = core.state.current.topology
    const atMs = core.now()
    requesters.set(requesterKey(regionId, nodeId), { regionId, nodeId, atMs, ...(leaseMs === undefined ? {} : { leaseMs }) })
    const region = topology.regions.find((candidate) => candidate.id === regionId)
    if (region !== undefined && !Topology.regionNodes(region).some((node) => node.id === nodeId)) strangers.unsafeFire("stranger")
    heard(regionId, nodeId)
  }
  return {
    current: SubscriptionRef.get(core.topologyRef),
    changes: core.topologyRef.changes,
    subscribe: subscribe(core),
    addRegion: (region, links = {}) => apply(structural((topology) => addRegionTo(topology, region, links))),
    removeRegion: (regionId) => apply(structural((topology) => removeRegionFrom(topology, regionId))),
    addZone: (regionId, zone) => apply(structural((topology) => addZoneTo(topology, regionId, zone))),
    removeZone: (regionId, zoneId) => apply(structural((topology) => removeZoneFrom(topology, regionId, zoneId))),
    addNode: (regionId, zoneId, node) => apply(structural((topology) => addNodeTo(topology, { regionId, zoneId, nodeId: node.id }, node))),
    removeNode: (regionId, zoneId, nodeId) => apply(structural((topology) => removeNodeFrom(topology, { regionId, zoneId, nodeId }))),
    reconfigure: (declared, options) => apply(structural((topology) => reconfigured(topology, options?.keepNodes === true ? withNodesOf(topology, declared) : declared))),
    replaceTopology: (topology) => apply(structural(() => Either.right({ topology, events: [TopologyEvent.TopologyReplaced({ topology })] }))),
    setPrimary: (regionId) => apply(structural((topology) => movePrimary(topology, regionId))),
    updateNodeStatus: (regionId, zoneId, nodeId, status) => apply(explicitStatus({ regionId, zoneId, nodeId }, status)),
    recordHeartbeat: (regionId, zoneId, nodeId, allowanceMs) => Effect.map(apply(heartbeat({ regionId, zoneId, nodeId }, allowanceMs)), () => heard(regionId, nodeId)),
    recordHeartbeatQuietly: (regionId, zoneId, nodeId, allowanceMs) => {
      const quiet = Option.isSome(stepQuietly(core, heartbeat({ regionId, zoneId, nodeId }, allowanceMs)))
      if (quiet) heard(regionId, nodeId)
      return quiet
    },
    heardFrom: (regionId) => hearing.next(regionId),
    heardFromNode: (regionId, nodeId) => hearingNode.next(`${regionId}/${nodeId}`),
    heardRequestFrom: (regionId, nodeId, leaseMs) => Effect.sync(() => requested(regionId, nodeId, leaseMs)),
    heardRequestFromNow: requested,
    currentNow: () => core.state.current.topology,
    requestersSince,
    strangerAsked: strangers.next("stranger"),
    returning: (regionId) => core.returned.next(regionId),
    checkStaleNodes: (timeoutMs = core.settings.heartbeatTimeoutMs) => apply(staleCheck(timeoutMs)).pipe(Effect.orDie),
    heard: Effect.sync(() => heardByRegion(core.state.current, core.settings)),
    contactedRegions: Effect.sync(() => regionsWith(core.state.current, (_, known) => known?.established === true)),
    awaited: Effect.sync(() => awaitedRegions(core.state.current, core.now(), core.settings.heartbeatTimeoutMs)),
    runStaleChecks: (intervalMs, timeoutMs = core.settings.heartbeatTimeoutMs) =>
      Handoff.repeat(Effect.zipRight(Effect.sleep(Duration.millis(intervalMs)), apply(staleCheck(timeoutMs)).pipe(Effect.orDie)))
  }
}

/**
 * Runs one edit. Every edit moves the state in one synchronous step (`stepQuietly`, or a step under the lock); the lock only
 * keeps the publications (a new topology, events) in the order of the steps. An edit that has
 * nothing to publish (a heartbeat from a healthy node, a stale check that finds nobody stale:
 * nearly all of them) therefore skips the lock, whose take and release were a third of the
 * Effect operations of a heartbeat round in the simulator.
 */
const commit = <A>(core: Core, edit: Edit<A>): Effect.Effect<A, TopologyManagerError> =>
  Effect.flatMap(
    Effect.sync(() => stepQuietly(core, edit)),
    (quiet) => (Option.isSome(quiet) ? Effect.succeed(quiet.value) : commitAndPublish(core, edit))
  )

/** Runs `edit` when it has nothing to publish, and gives its result; None leaves the state as it was. */
const stepQuietly = <A>(core: Core, edit: Edit<A>): Option.Option<A> => {
  const before = core.state.current
  const outcome = edit(before, core.now(), core.settings)
  if (Either.isLeft(outcome) || outcome.right.events.length > 0 || outcome.right.state.topology !== before.topology) return Option.none()
  core.state.current = outcome.right.state
  return Option.some(outcome.right.result)
}

/** Runs one edit under the lock: new state, new topology for `changes`, then the events. */
const commitAndPublish = <A>(core: Core, edit: Edit<A>): Effect.Effect<A, TopologyManagerError> =>
  core.lock.with(
    Effect.gen(function* () {
      const nowMs = core.now()
      const step = yield* Effect.sync((): Either.Either<Outcome<A> & { readonly before: State }, TopologyManagerError> => {
        const before = core.state.current
        const outcome = edit(before, nowMs, core.settings)
        if (Either.isLeft(outcome)) return Either.left(outcome.left)
        core.state.current = outcome.right.state
        return Either.right({ ...outcome.right, before })
      })
      if (Either.isLeft(step)) return yield* Effect.fail(step.left)
      const { before, state, events, result } = step.right
      if (state.topology !== before.topology) {
        yield* SubscriptionRef.set(core.topologyRef, state.topology)
        for (const regionId of regionsReturned(before.topology, state.topology)) yield* core.returned.fire(regionId)
      }
      yield* publish(core, events)
      return result
    })
  )

/** Regions available in `after` that were not in `before`. */
const regionsReturned = (before: Topology.Topology, after: Topology.Topology): ReadonlyArray<Topology.RegionId> =>
  after.regions.filter((region) => Topology.isRegionAvailable(after, region.id) && !Topology.isRegionAvailable(before, region.id)).map((region) => region.id)

// ---------------------------------------------------------------------------------------
// Event delivery
//
// Each subscriber has its own bounded queue (`subscriberEventsMax`), so a slow subscriber
// never slows the manager and never holds memory without bound. It is never silently
// skipped either: when its queue is full, further events are counted instead of queued, and
// once it has drained the queue it receives `Lagged{missed}` followed by a `TopologyReplaced`
// snapshot taken under the lock, after which ordinary events resume. Topology events are rare
// (membership and health changes), so a healthy subscriber never sees `Lagged` in practice.

const subscribe = (core: Core): Effect.Effect<Subscription, never, Scope.Scope> =>
  Effect.acquireRelease(
    core.lock.with(
      Effect.gen(function* () {
        const subscriber: Subscriber = {
          queue: yield* Queue.dropping<TopologyEvent>(core.settings.subscriberEventsMax),
          missed: yield* Ref.make(0),
          owed: yield* Ref.make(Option.none<TopologyEvent>())
        }
        yield* Ref.update(core.subscribers, (set) => new Set([...set, subscriber]))
        return subscriber
      })
    ),
    (subscriber) =>
      Effect.zipRight(
        Ref.update(core.subscribers, (set) => new Set([...set].filter((other) => other !== subscriber))),
        Queue.shutdown(subscriber.queue)
      )
  ).pipe(
    Effect.map((subscriber): Subscription => {
      const take = takeNext(core, subscriber)
      return { take, events: Stream.repeatEffect(take) }
    })
  )

// Most edits (a heartbeat from a healthy node) publish nothing: they skip the walk over subscribers.
const publish = (core: Core, events: ReadonlyArray<TopologyEvent>): Effect.Effect<void> =>
  events.length === 0
    ? Effect.void
    : Effect.flatMap(Ref.get(core.subscribers), (subscribers) =>
        Effect.forEach(subscribers, (subscriber) => Effect.forEach(events, (event) => deliver(subscriber, event), { discard: true }), {
          discard: true
        })
      )

const deliver = (subscriber: Subscriber, event: TopologyEvent): Effect.Effect<void> =>
  Effect.gen(function* () {
    const missed = yield* Ref.get(subscriber.missed)
    // Once an event is dropped, later ones are dropped too, so the subscriber never sees an
    // event whose predecessors it missed; the snapshot after `Lagged` covers all of them.
    if (missed > 0) return yield* Ref.set(subscriber.missed, missed + 1)
    const queued = yield* Queue.offer(subscriber.queue, event)
    if (!queued) yield* Ref.set(subscriber.missed, 1)
  })

const takeNext = (core: Core, subscriber: Subscriber): Effect.Effect<TopologyEvent> =>
  Effect.gen(function* () {
    const owed = yield* Ref.getAndSet(subscriber.owed, Option.none())
    if (Option.isSome(owed)) return owed.value
    const queued = yield* Queue.poll(subscriber.queue)
    if (Option.isSome(queued)) return queued.value
    const lagged = yield* core.lock.with(resynchronise(core, subscriber))
    if (Option.isSome(lagged)) return lagged.value
    return yield* Queue.take(subscriber.queue)
  })

/** Under the lock (so no event can slip between): report the loss and owe a snapshot. */
const resynchronise = (core: Core, subscriber: Subscriber): Effect.Effect<Option.Option<TopologyEvent>> =>
  Effect.gen(function* () {
    const missed = yield* Ref.getAndSet(subscriber.missed, 0)
    if (missed === 0) return Option.none()
    const topology = yield* SubscriptionRef.get(core.topologyRef)
    yield* Ref.set(subscriber.owed, Option.some(TopologyEvent.TopologyReplaced({ topology })))
    return Option.some(TopologyEvent.Lagged({ missed }))
  })

// ---------------------------------------------------------------------------------------
// Edits: pure functions of (state, now)

interface TopologyEdit {
  readonly topology: Topology.Topology
  readonly events: ReadonlyArray<TopologyEvent>
}

/** A change of shape: validated as a whole, then heartbeat tracking follows the new node set. */
const structural =
  (change: (topology: Topology.Topology) => Either.Either<TopologyEdit, TopologyManagerError>): Edit<void> =>
  (state, nowMs) =>
    Either.flatMap(change(state.topology), ({ topology, events }) =>
      Either.map(validated(topology), (valid) => ({
        state: { topology: valid, tracking: reconcileTracking(state.tracking, valid, nowMs), declared: reconcileDeclared(state.declared, valid, nowMs) },
        events: valid === state.topology ? [] : events,
        result: undefined
      }))
    )

const validated = (topology: Topology.Topology): Either.Either<Topology.Topology, TopologyManagerError> =>
  Either.mapLeft(TopologyBuilder.validate(topology), (cause) => {
    const duplicate = cause.reason === "DuplicateRegion" || cause.reason === "DuplicateZone" || cause.reason === "DuplicateNode"
    const reason = duplicate ? cause.reason : "Invalid"
    return new TopologyManagerError({ reason, message: `rejected topology change: ${cause.message}`, cause })
  })

const explicitStatus =
  (ref: NodeRef, status: Topology.NodeStatus): Edit<void> =>
  (state) =>
    Either.map(requireNode(state.topology, ref), (node) => {
      const key = nodeKey(ref)
      const tracking = state.tracking.get(key)
      const cleared = tracking === undefined ? [] : [[key, { ...tracking, goodHeartbeats: 0, demotedForStaleness: false }] as const]
      return {
        state: { ...state, topology: withNodeStatus(state.topology, ref, status), tracking: withEntries(state.tracking, cleared) },
        events: statusEvents(ref, node.status, status),
        result: undefined
      }
    })

/**
 * A heartbeat always refreshes `lastHeartbeatMs`. It changes the status only of a node the
 * stale check demoted, and only after `recoverAfter` consecutive heartbeats: one late node
 * that sends a single heartbeat must not flap back to Healthy.
 */
const heartbeat =
  (ref: NodeRef, allowanceMs: number | undefined): Edit<void> =>
  (state, nowMs, settings) =>
    Either.map(requireNode(state.topology, ref), (node) => {
      const key = nodeKey(ref)
      const tracking = state.tracking.get(key) ?? freshTracking(nowMs)
      const next = { ...afterHeartbeat(tracking, nowMs, settings), ...(allowanceMs === undefined ? {} : { allowanceMs }) }
      const recovered = tracking.demotedForStaleness && !next.demotedForStaleness
      const status: Topology.NodeStatus = recovered ? "Healthy" : node.status
      const established = tracking.established === true || status !== "Unreachable"
      return {
        state: {
          ...state,
          // Nearly every heartbeat leaves the status as it was: no second lookup of the node then.
          topology: status === node.status ? state.topology : withNodeStatus(state.topology, ref, status),
          tracking: withEntries(state.tracking, [[key, established ? { ...next, established } : next]])
        },
        events: statusEvents(ref, node.status, status),
        result: undefined
      }
    })

/**
 * A heartbeat's effect on a node's tracking. A node demoted for staleness comes back after
 * `recoverAfter` consecutive heartbeats, so a flapping link does not flap the topology; one that
 * had never answered before comes back at its first: it was not flapping, it was not reached yet
 * (a process that started late, a first connection slower than the heartbeat timeout). Holding
 * such a node Unreachable for `recoverAfter` round trips kept a slow region unavailable for
 * seconds after a quiet start (swarm seed 24000192: a 600 ms round trip against a 900 ms timeout).
 */
const afterHeartbeat = (tracking: Tracking, nowMs: number, settings: Options): Tracking => {
  const consecutive = tracking.lastHeartbeatMs !== undefined && nowMs - tracking.lastHeartbeatMs <= Math.max(settings.heartbeatTimeoutMs, tracking.allowanceMs ?? 0)
  const heard = { lastHeartbeatMs: nowMs, heardSinceMs: consecutive ? (tracking.heardSinceMs ?? nowMs) : nowMs }
  if (!tracking.demotedForStaleness) return { ...tracking, ...heard }
  if (tracking.lastHeartbeatMs === undefined) return { ...tracking, ...heard, goodHeartbeats: 0, demotedForStaleness: false }
  const goodHeartbeats = consecutive ? tracking.goodHeartbeats + 1 : 1
  return goodHeartbeats >= settings.recoverAfter ? { ...tracking, ...heard, goodHeartbeats: 0, demotedForStaleness: false } : { ...tracking, ...heard, goodHeartbeats }
}

/** Visits every node of the topology with its region and its heartbeat tracking. */
const eachTracked = (state: State, visit: (regionId: Topology.RegionId, node: Topology.Node, known: Tracking | undefined) => void): void => {
  for (const region of state.topology.regions) {
    for (const zone of region.zones) {
      for (const node of zone.nodes) visit(region.id, node, state.tracking.get(nodeKeyOf(region.id, zone.id, node.id)))
    }
  }
}

/** The regions with a node that passes `test`, given the node and its heartbeat tracking. */
const regionsWith = (state: State, test: (node: Topology.Node, known: Tracking | undefined) => boolean): ReadonlySet<Topology.RegionId> => {
  const found = new Set<Topology.RegionId>()
  eachTracked(state, (regionId, node, known) => void (test(node, known) ? found.add(regionId) : undefined))
  return found
}

/** Per region with a node that has answered and is not Unreachable: its latest answer, and each such node's span of answers without a silence. */
const heardByRegion = (state: State, settings: Options): Heard => {
  const lastMs = new Map<Topology.RegionId, number>()
  const spans = new Map<Topology.RegionId, Array<HeardSpan>>()
  eachTracked(state, (regionId, node, known) => {
    const atMs = known?.lastHeartbeatMs
    if (atMs === undefined || node.status === "Unreachable") return
    lastMs.set(regionId, Math.max(atMs, lastMs.get(regionId) ?? atMs))
    const span = { sinceMs: known?.heardSinceMs ?? atMs, untilMs: atMs + Math.max(settings.heartbeatTimeoutMs, known?.allowanceMs ?? 0) }
    spans.set(regionId, [...(spans.get(regionId) ?? []), span])
  })
  return { lastMs, spans }
}

/**
 * Since when `regionId` has been heard without a silence at `nowMs`: the earliest start of a span
 * of one of its nodes that has not gone silent since (see `Heard.spans`); undefined when none.
 */
export const heardThroughoutSince = (heard: Heard, regionId: Topology.RegionId, nowMs: number): number | undefined => {
  const starts = (heard.spans.get(regionId) ?? []).filter((span) => nowMs <= span.untilMs).map((span) => span.sinceMs)
  return starts.length === 0 ? undefined : Math.min(...starts)
}

/**
 * Every node silent for longer than `timeoutMs` (never-heard nodes count from tracking start).
 * Every heartbeat round runs it and nearly every one finds nobody: that case builds nothing and
 * leaves the state as it was.
 */
const staleCheck =
  (timeoutMs: number): Edit<ReadonlyArray<NodeRef>> =>
  (state, nowMs) => {
    const stale = staleNodes(state, nowMs, timeoutMs)
    if (stale.length === 0) return Either.right({ state, events: [], result: [] })
    const topology = stale.reduce((current, { ref }) => withNodeStatus(current, ref, "Unreachable"), state.topology)
    const demoted = stale.map(({ ref }) => {
      const tracking = state.tracking.get(nodeKey(ref)) ?? freshTracking(nowMs)
      return [nodeKey(ref), { ...tracking, goodHeartbeats: 0, demotedForStaleness: true }] as const
    })
    return Either.right({
      state: { ...state, topology, tracking: withEntries(state.tracking, demoted) },
      events: stale.map(({ ref, node }) => TopologyEvent.NodeStatusChanged({ ...ref, oldStatus: node.status, newStatus: "Unreachable" })),
      result: stale.map(({ ref }) => ref)
    })
  }

/** The nodes not yet Unreachable whose silence exceeds `timeoutMs` (or their allowance), in declaration order. */
const staleNodes = (state: State, nowMs: number, timeoutMs: number): ReadonlyArray<{ readonly ref: NodeRef; readonly node: Topology.Node }> => {
  const stale: Array<{ readonly ref: NodeRef; readonly node: Topology.Node }> = []
  for (const region of state.topology.regions) {
    for (const zone of region.zones) {
      for (const node of zone.nodes) {
        if (node.status === "Unreachable") continue
        const tracking = state.tracking.get(nodeKeyOf(region.id, zone.id, node.id))
        const silentSinceMs = tracking === undefined ? nowMs : (tracking.lastHeartbeatMs ?? tracking.trackedSinceMs)
        if (nowMs - silentSinceMs > Math.max(timeoutMs, tracking?.allowanceMs ?? 0)) stale.push({ ref: { regionId: region.id, zoneId: zone.id, nodeId: node.id }, node })
      }
    }
  }
  return stale
}

const addRegionTo = (
  topology: Topology.Topology,
  region: Topology.Region,
  links: RegionLinks
): Either.Either<TopologyEdit, TopologyManagerError> => {
  if (Topology.findRegion(topology, region.id) !== undefined) {
    return fail("DuplicateRegion", `region '${region.id}' already exists`)
  }
  const targets = links.targets ?? []
  const sources = links.sources ?? []
  const unknown = [...targets, ...sources].find((id) => Topology.findRegion(topology, id) === undefined)
  if (unknown !== undefined) return fail("UnknownRegion", `region '${region.id}' is linked to unknown region '${unknown}'`)
  const replicationTargets: Record<Topology.RegionId, ReadonlyArray<Topology.RegionId>> = { ...topology.replicationTargets }
  for (const source of sources) replicationTargets[source] = [...Topology.targetsOf(topology, source), region.id]
  if (targets.length > 0) replicationTargets[region.id] = targets
  return Either.right({
    topology: { ...topology, regions: [...topology.regions, region], replicationTargets },
    events: [TopologyEvent.RegionAdded({ regionId: region.id }), ...region.zones.flatMap((zone) => zoneAddedEvents(region.id, zone))]
  })
}

const removeRegionFrom = (topology: Topology.Topology, regionId: Topology.RegionId): Either.Either<TopologyEdit, TopologyManagerError> =>
  Either.flatMap(requireRegion(topology, regionId), (region) => {
    if (regionId === topology.localRegion) return fail("LocalRegion", `region '${regionId}' is the local region and cannot be removed`)
    const homed = topology.vaults.find((placement) => placement.homeRegion === regionId)
    if (homed !== undefined) return fail("VaultHomeRegion", `region '${regionId}' is the home region of vault '${homed.vault}'; move the vault first`)
    if (topology.strategy === "PrimaryReplica" && region.isPrimary) {
      return fail("PrimaryRegion", `region '${regionId}' is the primary; promote another region with setPrimary first`)
    }
    return Either.right({
      topology: withoutRegion(topology, regionId),
      events: [...region.zones.flatMap((zone) => zoneRemovedEvents(regionId, zone)), TopologyEvent.RegionRemoved({ regionId })]
    })
  })

/** The topology without a region, its replication edges, and its place in residency sets. */
const withoutRegion = (topology: Topology.Topology, regionId: Topology.RegionId): Topology.Topology => ({
  ...topology,
  regions: topology.regions.filter((region) => region.id !== regionId),
  replicationTargets: Object.fromEntries(
    Object.entries(topology.replicationTargets)
      .filter(([source]) => source !== regionId)
      .map(([source, targets]) => [source, targets.filter((target) => target !== regionId)])
  ),
  vaults: topology.vaults.map((placement) =>
    placement.allowedRegions === undefined
      ? placement
      : { ...placement, allowedRegions: placement.allowedRegions.filter((allowed) => allowed !== regionId) }
  )
})

const addZoneTo = (
  topology: Topology.Topology,
  regionId: Topology.RegionId,
  zone: Topology.Zone
): Either.Either<TopologyEdit, TopologyManagerError> =>
  Either.flatMap(requireRegion(topology, regionId), (region) =>
    region.zones.some((existing) => existing.id === zone.id)
      ? fail("DuplicateZone", `zone '${zone.id}' already exists in region '${regionId}'`)
      : Either.right({
          topology: mapRegion(topology, regionId, (current) => ({ ...current, zones: [...current.zones, zone] })),
          events: zoneAddedEvents(regionId, zone)
        })
  )

const removeZoneFrom = (
  topology: Topology.Topology,
  regionId: Topology.RegionId,
  zoneId: Topology.ZoneId
): Either.Either<TopologyEdit, TopologyManagerError> =>
  Either.map(requireZone(topology, regionId, zoneId), (zone) => ({
    topology: mapRegion(topology, regionId, (region) => ({ ...region, zones: region.zones.filter((existing) => existing.id !== zoneId) })),
    events: zoneRemovedEvents(regionId, zone)
  }))

const addNodeTo = (topology: Topology.Topology, ref: NodeRef, node: Topology.Node): Either.Either<TopologyEdit, TopologyManagerError> =>
  Either.flatMap(requireZone(topology, ref.regionId, ref.zoneId), () => {
    const existing = allNodeRefs(topology).find((entry) => entry.node.id === node.id)
    if (existing !== undefined) {
      return fail("DuplicateNode", `node '${node.id}' already exists (in zone '${existing.ref.zoneId}' of region '${existing.ref.regionId}')`)
    }
    return Either.right({
      topology: mapZone(topology, ref, (zone) => ({ ...zone, nodes: [...zone.nodes, node] })),
      events: [TopologyEvent.NodeAdded(ref)]
    })
  })

const removeNodeFrom = (topology: Topology.Topology, ref: NodeRef): Either.Either<TopologyEdit, TopologyManagerError> =>
  Either.map(requireNode(topology, ref), () => ({
    topology: mapZone(topology, ref, (zone) => ({ ...zone, nodes: zone.nodes.filter((node) => node.id !== ref.nodeId) })),
    events: [TopologyEvent.NodeRemoved(ref)]
  }))

/**
 * `declared` with the nodes `current` holds in each of its regions, zone by zone, in place of the
 * declared ones (see `reconfigure`'s `keepNodes`). A region that holds none yet takes the declared
 * ones, the starting point discovery's first answer replaces: re-adding them where discovery had
 * replaced them would bring back nodes that are gone, each a vote in the lease and, with a lower
 * id, a leader of a shared store.
 */
const withNodesOf = (current: Topology.Topology, declared: Topology.Topology): Topology.Topology => ({
  ...declared,
  regions: declared.regions.map((region) => {
    const running = Topology.findRegion(current, region.id)
    if (running === undefined || Topology.regionNodes(running).length === 0) return region
    const zones = [...region.zones, ...running.zones.filter((zone) => !region.zones.some((declaredZone) => declaredZone.id === zone.id))]
    return { ...region, zones: zones.map((zone) => ({ ...zone, nodes: running.zones.find((candidate) => candidate.id === zone.id)?.nodes ?? [] })) }
  })
})

/** A declared topology with the run-time state of `current` carried over (see `reconfigure`). */
const reconfigured = (current: Topology.Topology, declared: Topology.Topology): Either.Either<TopologyEdit, TopologyManagerError> => {
  if (declared.localRegion !== current.localRegion) {
    return fail("LocalRegion", `a reloaded configuration runs this node in '${declared.localRegion}', not '${current.localRegion}'`)
  }
  const regionIds = (topology: Topology.Topology) => topology.regions.map((region) => region.id).sort().join(",")
  if (current.strategy === "PrimaryReplica" && regionIds(current) !== regionIds(declared)) {
    return fail("Invalid", `PrimaryReplica cannot change its regions at run time (${regionIds(current)} -> ${regionIds(declared)}): restart the nodes`)
  }
  // The deployment checks a configuration file passes (`runtime/config/FileTopology`), here too:
  // serve parses a reloaded file before it gets here, the simulator's reloads do not, and the
  // simulator applied graphs that serve refuses (a ring with a region removed leaves its
  // predecessor without targets), seen when the chaos harness ran relay-tree-change on real nodes.
  // Peer regions may be empty: under DNS discovery they start so.
  const deployable = TopologyBuilder.validateDeployment(declared, { peerNodesRequired: false })
  if (Either.isLeft(deployable)) {
    return Either.left(new TopologyManagerError({ reason: "Invalid", message: `a reloaded configuration is not a deployment: ${deployable.left.message}`, cause: deployable.left }))
  }
  const statusOf = new Map(current.regions.flatMap((region) => Topology.regionNodes(region).map((node) => [`${region.id}/${node.id}`, node.status] as const)))
  const primary = Topology.primaryRegion(current)?.id
  const keepPrimary = declared.strategy === "PrimaryReplica" && primary !== undefined && Topology.findRegion(declared, primary) !== undefined
  const topology: Topology.Topology = {
    ...declared,
    regions: declared.regions.map((region) => ({
      ...region,
      isPrimary: keepPrimary ? region.id === primary : region.isPrimary,
      zones: region.zones.map((zone) => ({ ...zone, nodes: zone.nodes.map((node) => ({ ...node, status: statusOf.get(`${region.id}/${node.id}`) ?? node.status })) }))
    }))
  }
  return Either.right({ topology, events: [TopologyEvent.TopologyReplaced({ topology })] })
}

/** Makes `regionId` the only primary; already being the only primary is not a change. */
const movePrimary = (topology: Topology.Topology, regionId: Topology.RegionId): Either.Either<TopologyEdit, TopologyManagerError> =>
  Either.map(requireRegion(topology, regionId), () => {
    const alreadySole = topology.regions.every((region) => region.isPrimary === (region.id === regionId))
    if (alreadySole) return { topology, events: [] }
    const oldPrimary = Topology.primaryRegion(topology)?.id
    return {
      topology: { ...topology, regions: topology.regions.map((region) => ({ ...region, isPrimary: region.id === regionId })) },
      events: oldPrimary === regionId ? [] : [TopologyEvent.PrimaryChanged({ oldPrimary, newPrimary: regionId })]
    }
  })

// ---------------------------------------------------------------------------------------
// Small pure helpers

const fail = (reason: TopologyManagerErrorReason, message: string): Either.Either<never, TopologyManagerError> =>
  Either.left(new TopologyManagerError({ reason, message }))

const requireRegion = (topology: Topology.Topology, regionId: Topology.RegionId): Either.Either<Topology.Region, TopologyManagerError> => {
  const region = Topology.findRegion(topology, regionId)
  return region === undefined ? fail("UnknownRegion", `region '${regionId}' does not exist`) : Either.right(region)
}

const requireZone = (
  topology: Topology.Topology,
  regionId: Topology.RegionId,
  zoneId: Topology.ZoneId
): Either.Either<Topology.Zone, TopologyManagerError> =>
  Either.flatMap(requireRegion(topology, regionId), (region) => {
    const zone = region.zones.find((candidate) => candidate.id === zoneId)
    return zone === undefined ? fail("UnknownZone", `zone '${zoneId}' does not exist in region '${regionId}'`) : Either.right(zone)
  })

const requireNode = (topology: Topology.Topology, ref: NodeRef): Either.Either<Topology.Node, TopologyManagerError> =>
  Either.flatMap(requireZone(topology, ref.regionId, ref.zoneId), (zone) => {
    const node = zone.nodes.find((candidate) => candidate.id === ref.nodeId)
    return node === undefined
      ? fail("UnknownNode", `node '${ref.nodeId}' does not exist in zone '${ref.zoneId}' of region '${ref.regionId}'`)
      : Either.right(node)
  })

const mapRegion = (topology: Topology.Topology, regionId: Topology.RegionId, f: (region: Topology.Region) => Topology.Region): Topology.Topology => ({
  ...topology,
  regions: topology.regions.map((region) => (region.id === regionId ? f(region) : region))
})

const mapZone = (topology: Topology.Topology, ref: Omit<NodeRef, "nodeId">, f: (zone: Topology.Zone) => Topology.Zone): Topology.Topology =>
  mapRegion(topology, ref.regionId, (region) => ({ ...region, zones: region.zones.map((zone) => (zone.id === ref.zoneId ? f(zone) : zone)) }))

/** The topology with one node's status set; the same object when nothing changes. */
const withNodeStatus = (topology: Topology.Topology, ref: NodeRef, status: Topology.NodeStatus): Topology.Topology => {
  const node = Either.getOrUndefined(requireNode(topology, ref))
  if (node === undefined || node.status === status) return topology
  return mapZone(topology, ref, (zone) => ({ ...zone, nodes: zone.nodes.map((each) => (each.id === ref.nodeId ? { ...each, status } : each)) }))
}

const statusEvents = (ref: NodeRef, oldStatus: Topology.NodeStatus, newStatus: Topology.NodeStatus): ReadonlyArray<TopologyEvent> =>
  oldStatus === newStatus ? [] : [TopologyEvent.NodeStatusChanged({ ...ref, oldStatus, newStatus })]

const zoneAddedEvents = (regionId: Topology.RegionId, zone: Topology.Zone): ReadonlyArray<TopologyEvent> => [
  TopologyEvent.ZoneAdded({ regionId, zoneId: zone.id }),
  ...zone.nodes.map((node) => TopologyEvent.NodeAdded({ regionId, zoneId: zone.id, nodeId: node.id }))
]

const zoneRemovedEvents = (regionId: Topology.RegionId, zone: Topology.Zone): ReadonlyArray<TopologyEvent> => [
  ...zone.nodes.map((node) => TopologyEvent.NodeRemoved({ regionId, zoneId: zone.id, nodeId: node.id })),
  TopologyEvent.ZoneRemoved({ regionId, zoneId: zone.id })
]

/** Every node with where it sits, in declaration order. */
const allNodeRefs = (topology: Topology.Topology): ReadonlyArray<{ readonly ref: NodeRef; readonly node: Topology.Node }> =>
  topology.regions.flatMap((region) =>
    region.zones.flatMap((zone) => zone.nodes.map((node) => ({ ref: { regionId: region.id, zoneId: zone.id, nodeId: node.id }, node })))
  )

const nodeKey = (ref: NodeRef): string => nodeKeyOf(ref.regionId, ref.zoneId, ref.nodeId)

// Keys of a node (`nodeKeyOf`) and of a requester (`requesterKey`): every id but the last has its
// length in front, so no two share a key the way joined strings could ("a/b" + "c" against "a" +
// "b/c"). Every heartbeat answer and request and every round's stale check builds one: as JSON
// arrays, building them took 0.7% of a swarm's CPU profile.
const nodeKeyOf = (regionId: Topology.RegionId, zoneId: Topology.ZoneId, nodeId: Topology.NodeId): string =>
  `${regionId.length}:${regionId}${zoneId.length}:${zoneId}${nodeId}`

const requesterKey = (regionId: Topology.RegionId, nodeId: Topology.NodeId): string => `${regionId.length}:${regionId}${nodeId}`

const freshTracking = (nowMs: number): Tracking => ({
  trackedSinceMs: nowMs,
  lastHeartbeatMs: undefined,
  goodHeartbeats: 0,
  demotedForStaleness: false
})

/**
 * Tracking for exactly the nodes of `topology`: surviving nodes keep theirs, new ones start
 * now (their grace period), removed ones are forgotten. A node that is Healthy again (say, in
 * a replacement topology) is no longer considered demoted.
 */
const reconcileTracking = (tracking: ReadonlyMap<string, Tracking>, topology: Topology.Topology, nowMs: number): ReadonlyMap<string, Tracking> =>
  new Map(
    allNodeRefs(topology).map(({ ref, node }) => {
      const key = nodeKey(ref)
      const existing = tracking.get(key) ?? freshTracking(nowMs)
      return [key, node.status === "Healthy" ? { ...existing, goodHeartbeats: 0, demotedForStaleness: false } : existing] as const
    })
  )

/** Since when each region of `topology` has been declared: surviving regions keep theirs, new ones start now. */
const reconcileDeclared = (declared: ReadonlyMap<Topology.RegionId, number>, topology: Topology.Topology, nowMs: number): ReadonlyMap<Topology.RegionId, number> =>
  new Map(topology.regions.map((region) => [region.id, declared.get(region.id) ?? nowMs] as const))

/** Regions with no node, declared less than `graceMs` before `nowMs` (see `awaited`). */
const awaitedRegions = (state: State, nowMs: number, graceMs: number): ReadonlySet<Topology.RegionId> =>
  new Set(
    state.topology.regions
      .filter((region) => Topology.regionNodes(region).length === 0 && nowMs - (state.declared.get(region.id) ?? nowMs) < graceMs)
      .map((region) => region.id)
  )

const withEntries = (
  tracking: ReadonlyMap<string, Tracking>,
  entries: ReadonlyArray<readonly [string, Tracking]>
): ReadonlyMap<string, Tracking> => {
  if (entries.length === 0) return tracking
  // Copying the map itself skips the array of every entry that spreading both built first: a
  // heartbeat copies the tracking of every node this way.
  const next = new Map(tracking)
  for (const [key, value] of entries) next.set(key, value)
  return next
}
