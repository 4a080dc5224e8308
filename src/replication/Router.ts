/**
 * Region-aware request routing: given a read or a write (and, under MultiMaster, the vault it
 * touches), choose the region and then the node that should serve it. The topology is read
 * from the `TopologyManager` on every call, so routing follows run-time changes (health,
 * nodes coming and going, a new primary) without restarts.
 *
 * Routing table (the seed's, with MultiMaster made real):
 *
 * | strategy       | read                  | write                                  |
 * | -------------- | --------------------- | -------------------------------------- |
 * | ActiveActive   | local region          | local region                           |
 * | PrimaryReplica | local region          | primary region, never anywhere else    |
 * | MultiMaster    | local region (*)      | the vault's home region                |
 *
 * (*) when the request names a vault whose residency set excludes the local region, its data
 * is not here, so the read goes to the vault's home region instead.
 *
 * Failover, when the chosen region has no node that is not Unreachable, is deterministic:
 * the other available regions ordered by `failoverPriority` (lower number = higher priority,
 * as in the orchestration document), then by id. Writes under PrimaryReplica never fail over
 * (a second writer would break single-writer); the failover controller promotes a new primary
 * with `TopologyManager.setPrimary`, using `electPrimary`. MultiMaster traffic for a vault
 * never leaves the vault's residency set.
 *
 * This module routes; it does not send. The replication agent uses `pickNode` to send a
 * batch to one node of a target region.
 */
import { Context, Data, Effect, Either, Layer, Ref, Schema } from "effect"
import * as Topology from "./Topology.js"
import * as TopologyManager from "./TopologyManager.js"

/** How a node is chosen within a region, spelled as in the seed document. */
export const LoadBalancingStrategy = Schema.Literal("RoundRobin", "FirstAvailable")
export type LoadBalancingStrategy = typeof LoadBalancingStrategy.Type

/** Whether a request reads or writes. */
export type RequestType = "Read" | "Write"

/** A request to route. MultiMaster writes must name their vault. */
export interface RouteRequest {
  readonly type: RequestType
  readonly vault?: Topology.VaultId
}

/** One node of one region. */
export interface NodeChoice {
  readonly regionId: Topology.RegionId
  readonly zoneId: Topology.ZoneId
  readonly nodeId: Topology.NodeId
  readonly endpoint: string
}

/** Where a request goes; `failover` is true when it is not the region the table prefers. */
export interface RouteDecision extends NodeChoice {
  readonly failover: boolean
}

/** Machine-readable cause of a `RouteError`. */
export type RouteErrorReason = "NoHealthyRegion" | "PrimaryUnavailable" | "UnknownVault" | "ResidencyViolation" | "UnknownRegion"

/** No region or node may serve the request. */
export class RouteError extends Data.TaggedError("RouteError")<{
  readonly reason: RouteErrorReason
  readonly message: string
  readonly regionId?: Topology.RegionId
  readonly vault?: Topology.VaultId
}> {}

/** The regions a request may go to, most preferred first, and the error when none is available. */
export interface RoutePlan {
  /** The region the routing table prefers (it may be unavailable). */
  readonly preferred: Topology.RegionId
  /** `preferred`, then the permitted failover regions in failover order. */
  readonly candidates: ReadonlyArray<Topology.RegionId>
  /** Built only when needed: errors capture a stack trace, too costly for every routed request. */
  readonly whenNone: () => RouteError
}

/** Router settings. */
export interface Options {
  /** Defaults to RoundRobin. */
  readonly loadBalancing?: LoadBalancingStrategy
}

/** The router service. */
export class Router extends Context.Tag("inferadb/Router")<
  Router,
  {
    /** Chooses the region and node for a request. */
    readonly route: (request: RouteRequest) => Effect.Effect<RouteDecision, RouteError>
    /** Whether a region has at least one node that is not Unreachable. */
    readonly isRegionAvailable: (regionId: Topology.RegionId) => Effect.Effect<boolean>
    /** One usable node of a region: Healthy preferred, then Degraded, never Unreachable. */
    /**
     * One node of a region. With `probe`, a region whose nodes all look Unreachable still
     * yields one (in turn): the replication agent never gives up on a target, and its own
     * request deadline, not the heartbeat's, decides whether a slow link answers.
     */
    readonly pickNode: (regionId: Topology.RegionId, options?: { readonly probe?: boolean }) => Effect.Effect<NodeChoice, RouteError>
  }
>() {}

/** A router over the running topology manager. */
export const make = (options: Options = {}): Effect.Effect<Router["Type"], never, TopologyManager.TopologyManager> =>
  Effect.gen(function* () {
    const manager = yield* TopologyManager.TopologyManager
    const strategy = options.loadBalancing ?? "RoundRobin"
    // Next round-robin position per region; deterministic, no randomness.
    const turns = yield* Ref.make<ReadonlyMap<Topology.RegionId, number>>(new Map())
    const pickIn = (topology: Topology.Topology, regionId: Topology.RegionId) => pickNodeIn(topology, regionId, strategy, turns)
    return {
      route: (request) =>
        Effect.gen(function* () {
          const topology = yield* manager.current
          const { preferred, candidates, whenNone } = yield* plan(topology, request)
          const chosen = candidates.find((regionId) => Topology.isRegionAvailable(topology, regionId))
          if (chosen === undefined) return yield* Effect.fail(whenNone())
          const node = yield* pickIn(topology, chosen)
          return { ...node, failover: chosen !== preferred }
        }),
      isRegionAvailable: (regionId) => Effect.map(manager.current, (topology) => Topology.isRegionAvailable(topology, regionId)),
      pickNode: (regionId, options) => Effect.flatMap(manager.current, (topology) => pickNodeIn(topology, regionId, strategy, turns, options?.probe ?? false))
    }
  })

/** A router that reads the topology from `TopologyManager`. */
export const layer = (options: Options = {}): Layer.Layer<Router, never, TopologyManager.TopologyManager> =>
  Layer.effect(Router, make(options))

/**
 * The available regions other than `excluding`, in failover order: lowest
 * `failoverPriority` number first (lower = higher priority), ties broken by region id.
 */
export const failoverOrder = (
  topology: Topology.Topology,
  excluding: ReadonlyArray<Topology.RegionId> = []
): ReadonlyArray<Topology.RegionId> =>
  topology.regions
    .filter((region) => !excluding.includes(region.id) && Topology.isRegionAvailable(topology, region.id))
    .sort((a, b) => a.failoverPriority - b.failoverPriority || compareIds(a.id, b.id))
    .map((region) => region.id)

/**
 * The region that should be primary now: the available region with the highest priority
 * (lowest `failoverPriority`, then id), or undefined when no region is available.
 */
export const electPrimary = (topology: Topology.Topology): Topology.RegionId | undefined => failoverOrder(topology)[0]

/**
 * The routing table as a pure function: where a request may go, in order. It does not look
 * at availability of the preferred region; `route` takes the first available candidate.
 *
 * Under MultiMaster a write must name a vault with a placement; a missing vault or a vault
 * without placement is an `UnknownVault` error rather than a guess (there is no implicit
 * "home at the local region"). A read naming a vault without placement is rejected the same way.
 */
export const plan = (topology: Topology.Topology, request: RouteRequest): Either.Either<RoutePlan, RouteError> => {
  if (topology.strategy === "MultiMaster" && (request.type === "Write" || request.vault !== undefined)) {
    return planForVault(topology, request)
  }
  if (topology.strategy === "PrimaryReplica" && request.type === "Write") return planForPrimary(topology)
  const local = topology.localRegion
  return Either.right({
    preferred: local,
    candidates: [local, ...failoverOrder(topology, [local])],
    whenNone: () =>
      new RouteError({
        reason: "NoHealthyRegion",
        message: `no region is available for a ${request.type.toLowerCase()} (local region '${local}' is down)`
      })
  })
}

const planForPrimary = (topology: Topology.Topology): Either.Either<RoutePlan, RouteError> => {
  const primary = Topology.primaryRegion(topology)
  const message =
    primary === undefined
      ? "no primary region is configured; writes are refused until one is promoted"
      : `primary region '${primary.id}' is unavailable; writes are refused until a new primary is promoted (no write failover under PrimaryReplica)`
  const whenNone = () => new RouteError({ reason: "PrimaryUnavailable", message, ...(primary === undefined ? {} : { regionId: primary.id }) })
  if (primary === undefined) return Either.left(whenNone())
  return Either.right({ preferred: primary.id, candidates: [primary.id], whenNone })
}

const planForVault = (topology: Topology.Topology, request: RouteRequest): Either.Either<RoutePlan, RouteError> => {
  const vault = request.vault
  if (vault === undefined) {
    const message = "a MultiMaster write must name its vault: its home region takes the write"
    return Either.left(new RouteError({ reason: "UnknownVault", message }))
  }
  const placement = Topology.vaultPlacement(topology, vault)
  if (placement === undefined) {
    return Either.left(new RouteError({ reason: "UnknownVault", vault, message: `vault '${vault}' has no placement, so it has no home region` }))
  }
  if (request.type === "Write") {
    // Only the home region takes a vault's writes (the replica refuses them anywhere else), so
    // a write never fails over: it waits for the home region or fails.
    const home = placement.homeRegion
    const whenNone = () =>
      new RouteError({ reason: "NoHealthyRegion", vault, regionId: home, message: `home region '${home}' of vault '${vault}' is unavailable; its writes go nowhere else` })
    return Either.right({ preferred: home, candidates: [home], whenNone })
  }
  const allowed = (regionId: Topology.RegionId) => Topology.vaultAllowedIn(topology, vault, regionId)
  const preferred = allowed(topology.localRegion) ? topology.localRegion : placement.homeRegion
  const candidates = [preferred, ...failoverOrder(topology, [preferred]).filter(allowed)]
  return Either.right({ preferred, candidates, whenNone: () => residencyError(topology, vault, candidates) })
}

/** Nothing permitted is available: blame residency if something else could have served it. */
const residencyError = (topology: Topology.Topology, vault: Topology.VaultId, permitted: ReadonlyArray<Topology.RegionId>): RouteError => {
  const outside = failoverOrder(topology, permitted).map((id) => `'${id}'`)
  return outside.length > 0
    ? new RouteError({
        reason: "ResidencyViolation",
        vault,
        message: `no region allowed for vault '${vault}' is available; ${outside.join(", ")} are up but outside its residency set`
      })
    : new RouteError({ reason: "NoHealthyRegion", vault, message: `no region is available for vault '${vault}'` })
}

/** A usable node of a region under the load-balancing strategy. */
const pickNodeIn = (
  topology: Topology.Topology,
  regionId: Topology.RegionId,
  strategy: LoadBalancingStrategy,
  turns: Ref.Ref<ReadonlyMap<Topology.RegionId, number>>,
  probe = false
): Effect.Effect<NodeChoice, RouteError> => {
  const region = Topology.findRegion(topology, regionId)
  if (region === undefined) {
    return Effect.fail(new RouteError({ reason: "UnknownRegion", regionId, message: `region '${regionId}' is not in the topology` }))
  }
  const usable = usableNodes(region)
  const pool = usable.length === 0 && probe ? allNodes(region) : usable
  if (pool.length === 0) {
    return Effect.fail(new RouteError({ reason: "NoHealthyRegion", regionId, message: `region '${regionId}' has no Healthy or Degraded node` }))
  }
  if (strategy === "FirstAvailable") return Effect.succeed(pool[0] as NodeChoice)
  return Ref.modify(turns, (current) => {
    const turn = (current.get(regionId) ?? 0) % pool.length
    return [pool[turn] as NodeChoice, new Map([...current, [regionId, (turn + 1) % pool.length]])]
  })
}

/** Every node of a region in declaration order, whatever its status. */
const allNodes = (region: Topology.Region): ReadonlyArray<NodeChoice> =>
  region.zones.flatMap((zone) => zone.nodes.map((node): NodeChoice => ({ regionId: region.id, zoneId: zone.id, nodeId: node.id, endpoint: node.endpoint })))

/** Healthy nodes in declaration order, or, when there are none, the Degraded ones. */
const usableNodes = (region: Topology.Region): ReadonlyArray<NodeChoice> => {
  const withStatus = (status: Topology.NodeStatus) =>
    region.zones.flatMap((zone) =>
      zone.nodes
        .filter((node) => node.status === status)
        .map((node): NodeChoice => ({ regionId: region.id, zoneId: zone.id, nodeId: node.id, endpoint: node.endpoint }))
    )
  const healthy = withStatus("Healthy")
  return healthy.length > 0 ? healthy : withStatus("Degraded")
}

// Plain code-unit order, independent of the machine's locale.
const compareIds = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0)
