/**
 * Builds and validates a `Topology.Topology`. The builder is an immutable value: every
 * `add*`/`set*` returns a new builder, and `build` either yields a topology that satisfies
 * every invariant below or a `TopologyError` that names the offending region, zone, node,
 * endpoint or vault. `validate` runs the same checks on a topology assembled elsewhere (the
 * topology manager validates a replacement topology with it).
 *
 * The original implementation silently ignored a zone or node added under an unknown parent;
 * here such an addition is remembered and reported by `build`, so a typo cannot drop a node.
 *
 * `validateDeployment` adds what a node needs to start from a configuration: every peer region
 * has a node to send to, and the replication graph connects every region to every other (and
 * every vault's residency set to itself). Those are not checked by `validate`, because a
 * run-time edit legitimately passes through states that break them (a region is added before
 * its nodes are).
 *
 * Defaults: a region's `failoverPriority` is its position in declaration order plus one (the
 * first region declared gets 1), a zone's name is its id, a node starts `Healthy`. As in the
 * orchestration document, a lower failover priority number means a higher priority.
 */
import { Data, Either } from "effect"
import { dual } from "effect/Function"
import * as Topology from "./Topology.js"

/** Machine-readable cause of a `TopologyError`. */
export type TopologyErrorReason =
  | "NoRegions"
  | "BlankId"
  | "DuplicateRegion"
  | "DuplicateZone"
  | "DuplicateNode"
  | "DuplicateEndpoint"
  | "InvalidFailoverPriority"
  | "DuplicateFailoverPriority"
  | "UnknownLocalRegion"
  | "PrimaryCount"
  | "UnknownRegion"
  | "UnknownZone"
  | "UnknownSourceRegion"
  | "UnknownTargetRegion"
  | "SelfLoop"
  | "DuplicateTarget"
  | "VaultsRequireMultiMaster"
  | "DuplicateVault"
  | "UnknownVaultRegion"
  | "HomeRegionNotAllowed"
  | "RegionWithoutNodes"
  | "NoTargets"
  | "NotStronglyConnected"
  | "ResidencyDisconnected"

/** Which part of the topology a `TopologyError` is about; only the relevant fields are set. */
export interface TopologyErrorLocation {
  readonly region?: Topology.RegionId
  readonly zone?: Topology.ZoneId
  readonly node?: Topology.NodeId
  readonly endpoint?: string
  readonly vault?: Topology.VaultId
  /**
   * The target region of a replication edge, the offending region of a vault placement, or the
   * region that `region` cannot reach.
   */
  readonly target?: Topology.RegionId
}

/** The topology breaks an invariant; `reason` says which and the location fields say where. */
export class TopologyError extends Data.TaggedError("TopologyError")<
  TopologyErrorLocation & {
    readonly reason: TopologyErrorReason
    readonly message: string
  }
> {}

/** A region as declared; `isPrimary` defaults to false, `failoverPriority` to position + 1. */
export interface RegionInput {
  readonly id: Topology.RegionId
  readonly name: string
  readonly isPrimary?: boolean
  /** Lower number = higher priority when a new primary is chosen. */
  readonly failoverPriority?: number
}

/** A zone as declared; `name` defaults to the id. */
export interface ZoneInput {
  readonly id: Topology.ZoneId
  readonly name?: string
}

/** A node as declared; `status` defaults to `Healthy`. */
export interface NodeInput {
  readonly id: Topology.NodeId
  readonly endpoint: string
  readonly status?: Topology.NodeStatus
}

/** An immutable topology under construction. */
export interface TopologyBuilder {
  readonly strategy: Topology.ReplicationStrategy
  readonly localRegion: Topology.RegionId
  readonly regions: ReadonlyArray<Topology.Region>
  readonly replicationTargets: Readonly<Record<Topology.RegionId, ReadonlyArray<Topology.RegionId>>>
  readonly vaults: ReadonlyArray<Topology.VaultPlacement>
  /** Additions that had nowhere to go (unknown parent); `build` reports the first. */
  readonly problems: ReadonlyArray<TopologyError>
}

/** An empty builder for a strategy and the region this process runs in. */
export const make = (strategy: Topology.ReplicationStrategy, localRegion: Topology.RegionId): TopologyBuilder => ({
  strategy,
  localRegion,
  regions: [],
  replicationTargets: {},
  vaults: [],
  problems: []
})

/** A builder holding an existing topology, to derive a changed one from it. */
export const fromTopology = (topology: Topology.Topology): TopologyBuilder => ({ ...topology, problems: [] })

/** Adds a region (without zones). */
export const addRegion: {
  (region: RegionInput): (self: TopologyBuilder) => TopologyBuilder
  (self: TopologyBuilder, region: RegionInput): TopologyBuilder
} = dual(2, (self: TopologyBuilder, region: RegionInput): TopologyBuilder => ({
  ...self,
  regions: [
    ...self.regions,
    {
      id: region.id,
      name: region.name,
      isPrimary: region.isPrimary ?? false,
      failoverPriority: region.failoverPriority ?? self.regions.length + 1,
      zones: []
    }
  ]
}))

/** Adds a zone to a region declared earlier; an unknown region is reported by `build`. */
export const addZone: {
  (regionId: Topology.RegionId, zone: ZoneInput): (self: TopologyBuilder) => TopologyBuilder
  (self: TopologyBuilder, regionId: Topology.RegionId, zone: ZoneInput): TopologyBuilder
} = dual(3, (self: TopologyBuilder, regionId: Topology.RegionId, zone: ZoneInput): TopologyBuilder => {
  if (Topology.findRegion(self, regionId) === undefined) {
    return withProblem(self, unknownRegion(regionId, `zone '${zone.id}'`))
  }
  return updateRegion(self, regionId, (region) => ({
    ...region,
    zones: [...region.zones, { id: zone.id, name: zone.name ?? zone.id, nodes: [] }]
  }))
})

/** Adds a node to a zone declared earlier; an unknown region or zone is reported by `build`. */
export const addNode: {
  (regionId: Topology.RegionId, zoneId: Topology.ZoneId, node: NodeInput): (self: TopologyBuilder) => TopologyBuilder
  (self: TopologyBuilder, regionId: Topology.RegionId, zoneId: Topology.ZoneId, node: NodeInput): TopologyBuilder
} = dual(4, (self: TopologyBuilder, regionId: Topology.RegionId, zoneId: Topology.ZoneId, node: NodeInput): TopologyBuilder => {
  const region = Topology.findRegion(self, regionId)
  if (region === undefined) return withProblem(self, unknownRegion(regionId, `node '${node.id}'`))
  if (!region.zones.some((zone) => zone.id === zoneId)) {
    return withProblem(
      self,
      new TopologyError({
        reason: "UnknownZone",
        region: regionId,
        zone: zoneId,
        node: node.id,
        message: `node '${node.id}' was added under zone '${zoneId}', which region '${regionId}' does not declare`
      })
    )
  }
  const added: Topology.Node = { id: node.id, endpoint: node.endpoint, status: node.status ?? "Healthy" }
  return updateRegion(self, regionId, (current) => ({
    ...current,
    zones: current.zones.map((zone) => (zone.id === zoneId ? { ...zone, nodes: [...zone.nodes, added] } : zone))
  }))
})

/** Sets (replaces) the regions a region ships its changes to. Unknown regions are reported by `build`. */
export const setReplicationTargets: {
  (regionId: Topology.RegionId, targets: ReadonlyArray<Topology.RegionId>): (self: TopologyBuilder) => TopologyBuilder
  (self: TopologyBuilder, regionId: Topology.RegionId, targets: ReadonlyArray<Topology.RegionId>): TopologyBuilder
} = dual(3, (self: TopologyBuilder, regionId: Topology.RegionId, targets: ReadonlyArray<Topology.RegionId>): TopologyBuilder => ({
  ...self,
  replicationTargets: { ...self.replicationTargets, [regionId]: [...targets] }
}))

/** Adds a MultiMaster vault placement. */
export const addVault: {
  (placement: Topology.VaultPlacement): (self: TopologyBuilder) => TopologyBuilder
  (self: TopologyBuilder, placement: Topology.VaultPlacement): TopologyBuilder
} = dual(2, (self: TopologyBuilder, placement: Topology.VaultPlacement): TopologyBuilder => ({
  ...self,
  vaults: [...self.vaults, placement]
}))

/** Every region ships to every other region: the default replication graph. */
export const fullMesh = (
  regionIds: ReadonlyArray<Topology.RegionId>
): Readonly<Record<Topology.RegionId, ReadonlyArray<Topology.RegionId>>> =>
  Object.fromEntries(regionIds.map((id) => [id, regionIds.filter((other) => other !== id)]))

/** The validated topology, or the first problem found. */
export const build = (self: TopologyBuilder): Either.Either<Topology.Topology, TopologyError> => {
  const problem = self.problems[0]
  if (problem !== undefined) return Either.left(problem)
  const { problems: _problems, ...topology } = self
  return validate(topology)
}

/**
 * Checks every invariant of an assembled topology and returns it unchanged, or the first
 * problem. Checks run in a fixed order so the reported problem is deterministic.
 */
export const validate = (topology: Topology.Topology): Either.Either<Topology.Topology, TopologyError> => {
  for (const check of checks) {
    const problem = check(topology)
    if (problem !== undefined) return Either.left(problem)
  }
  return Either.right(topology)
}

/**
 * Checks what a node needs to start from a configuration, on a topology that passed
 * `validate`: every region other than the local one declares a node, every region ships to
 * someone, every region reaches every other over `replicationTargets`, and every vault's
 * allowed regions reach each other without leaving the set. Returns the topology unchanged,
 * or the first problem.
 */
export const validateDeployment = (
  topology: Topology.Topology,
  options: {
    /** False when nodes are discovered at run time (DNS), so a peer region may start empty. */
    readonly peerNodesRequired?: boolean
  } = {}
): Either.Either<Topology.Topology, TopologyError> => {
  for (const check of deploymentChecks) {
    if (check === checkPeerNodes && options.peerNodesRequired === false) continue
    const problem = check(topology)
    if (problem !== undefined) return Either.left(problem)
  }
  return Either.right(topology)
}

type Check = (topology: Topology.Topology) => TopologyError | undefined

const withProblem = (self: TopologyBuilder, problem: TopologyError): TopologyBuilder => ({
  ...self,
  problems: [...self.problems, problem]
})

const updateRegion = (
  self: TopologyBuilder,
  regionId: Topology.RegionId,
  update: (region: Topology.Region) => Topology.Region
): TopologyBuilder => {
  // Only the first region with the id is updated; a duplicate id is reported by `validate`.
  const index = self.regions.findIndex((region) => region.id === regionId)
  return { ...self, regions: self.regions.map((region, at) => (at === index ? update(region) : region)) }
}

const unknownRegion = (regionId: Topology.RegionId, what: string): TopologyError =>
  new TopologyError({
    reason: "UnknownRegion",
    region: regionId,
    message: `${what} was added under region '${regionId}', which is not declared`
  })

const isBlank = (value: string): boolean => value.trim().length === 0

const allZones = (topology: Topology.Topology) =>
  topology.regions.flatMap((region) => region.zones.map((zone) => ({ region, zone })))

const allNodes = (topology: Topology.Topology) =>
  allZones(topology).flatMap(({ region, zone }) => zone.nodes.map((node) => ({ region, zone, node })))

/** The first value that occurs twice, in declaration order. */
const firstDuplicate = <A>(values: ReadonlyArray<A>): A | undefined =>
  values.find((value, index) => values.indexOf(value) !== index)

const checkRegionsPresent: Check = (topology) =>
  topology.regions.length === 0
    ? new TopologyError({ reason: "NoRegions", message: "the topology declares no regions" })
    : undefined

const checkBlankIds: Check = (topology) => {
  const region = topology.regions.find((candidate) => isBlank(candidate.id))
  if (region !== undefined) return blankId(`a region (named '${region.name}') has a blank id`, {})
  const zone = allZones(topology).find((entry) => isBlank(entry.zone.id))
  if (zone !== undefined) return blankId(`a zone of region '${zone.region.id}' has a blank id`, { region: zone.region.id })
  const node = allNodes(topology).find((entry) => isBlank(entry.node.id) || isBlank(entry.node.endpoint))
  if (node !== undefined) {
    return blankId(`a node in zone '${node.zone.id}' of region '${node.region.id}' has a blank id or endpoint`, {
      region: node.region.id,
      zone: node.zone.id,
      node: node.node.id
    })
  }
  const vault = topology.vaults.find((placement) => isBlank(placement.vault))
  return vault === undefined ? undefined : blankId(`a vault placement (home '${vault.homeRegion}') has a blank vault id`, {})
}

const blankId = (message: string, location: TopologyErrorLocation): TopologyError =>
  new TopologyError({ reason: "BlankId", message, ...location })

const checkUniqueRegions: Check = (topology) => {
  const duplicate = firstDuplicate(topology.regions.map((region) => region.id))
  return duplicate === undefined
    ? undefined
    : new TopologyError({ reason: "DuplicateRegion", region: duplicate, message: `region id '${duplicate}' is declared twice` })
}

/** Zone ids are unique within their region (two regions may both have a zone `default`). */
const checkUniqueZones: Check = (topology) => {
  for (const region of topology.regions) {
    const duplicate = firstDuplicate(region.zones.map((zone) => zone.id))
    if (duplicate !== undefined) {
      return new TopologyError({
        reason: "DuplicateZone",
        region: region.id,
        zone: duplicate,
        message: `zone id '${duplicate}' is declared twice in region '${region.id}'`
      })
    }
  }
  return undefined
}

/** Node ids and endpoints are unique across the whole topology: a change names its origin node. */
const checkUniqueNodes: Check = (topology) => {
  const nodes = allNodes(topology)
  const duplicateId = firstDuplicate(nodes.map((entry) => entry.node.id))
  if (duplicateId !== undefined) {
    return new TopologyError({
      reason: "DuplicateNode",
      node: duplicateId,
      message: `node id '${duplicateId}' is declared twice; node ids must be unique across all regions`
    })
  }
  const duplicateEndpoint = firstDuplicate(nodes.map((entry) => entry.node.endpoint))
  if (duplicateEndpoint === undefined) return undefined
  const owners = nodes.filter((entry) => entry.node.endpoint === duplicateEndpoint).map((entry) => entry.node.id)
  return new TopologyError({
    reason: "DuplicateEndpoint",
    endpoint: duplicateEndpoint,
    // The second owner is the one declared in conflict with the first.
    node: owners[1] ?? "",
    message: `endpoint '${duplicateEndpoint}' is used by more than one node (${owners.map((id) => `'${id}'`).join(", ")})`
  })
}

/** Failover must pick one region deterministically, so priorities are distinct non-negative integers. */
const checkFailoverPriorities: Check = (topology) => {
  const invalid = topology.regions.find((region) => !Number.isInteger(region.failoverPriority) || region.failoverPriority < 0)
  if (invalid !== undefined) {
    return new TopologyError({
      reason: "InvalidFailoverPriority",
      region: invalid.id,
      message: `region '${invalid.id}' has failover priority ${invalid.failoverPriority}; expected a non-negative integer (lower = higher priority)`
    })
  }
  const duplicate = firstDuplicate(topology.regions.map((region) => region.failoverPriority))
  if (duplicate === undefined) return undefined
  const holders = topology.regions.filter((region) => region.failoverPriority === duplicate).map((region) => region.id)
  return new TopologyError({
    reason: "DuplicateFailoverPriority",
    region: holders[1] ?? "",
    message: `regions ${holders.map((id) => `'${id}'`).join(" and ")} share failover priority ${duplicate} (an unset priority defaults to declaration position + 1)`
  })
}

const checkLocalRegion: Check = (topology) =>
  Topology.findRegion(topology, topology.localRegion) === undefined
    ? new TopologyError({
        reason: "UnknownLocalRegion",
        region: topology.localRegion,
        message: `local region '${topology.localRegion}' is not one of the declared regions (${regionList(topology)})`
      })
    : undefined

const checkPrimary: Check = (topology) => {
  if (topology.strategy !== "PrimaryReplica") return undefined
  const primaries = topology.regions.filter((region) => region.isPrimary).map((region) => `'${region.id}'`)
  if (primaries.length === 1) return undefined
  return new TopologyError({
    reason: "PrimaryCount",
    message:
      primaries.length === 0
        ? "PrimaryReplica needs exactly one primary region; none is marked is_primary"
        : `PrimaryReplica needs exactly one primary region; ${primaries.join(", ")} are all marked is_primary`
  })
}

const checkReplicationTargets: Check = (topology) => {
  for (const [source, targets] of Object.entries(topology.replicationTargets)) {
    if (Topology.findRegion(topology, source) === undefined) {
      return new TopologyError({
        reason: "UnknownSourceRegion",
        region: source,
        message: `replication targets are set for region '${source}', which is not declared (${regionList(topology)})`
      })
    }
    const problem = checkTargetsOf(topology, source, targets)
    if (problem !== undefined) return problem
  }
  return undefined
}

const checkTargetsOf = (
  topology: Topology.Topology,
  source: Topology.RegionId,
  targets: ReadonlyArray<Topology.RegionId>
): TopologyError | undefined => {
  for (const [index, target] of targets.entries()) {
    if (target === source) {
      return new TopologyError({ reason: "SelfLoop", region: source, target, message: `region '${source}' lists itself as a replication target` })
    }
    if (Topology.findRegion(topology, target) === undefined) {
      return new TopologyError({
        reason: "UnknownTargetRegion",
        region: source,
        target,
        message: `region '${source}' replicates to '${target}', which is not declared (${regionList(topology)})`
      })
    }
    if (targets.indexOf(target) !== index) {
      return new TopologyError({ reason: "DuplicateTarget", region: source, target, message: `region '${source}' lists target '${target}' twice` })
    }
  }
  return undefined
}

const checkVaults: Check = (topology) => {
  const first = topology.vaults[0]
  if (first === undefined) return undefined
  if (topology.strategy !== "MultiMaster") {
    return new TopologyError({
      reason: "VaultsRequireMultiMaster",
      vault: first.vault,
      message: `vault placements (such as '${first.vault}') need strategy MultiMaster, but the strategy is ${topology.strategy}`
    })
  }
  const duplicate = firstDuplicate(topology.vaults.map((placement) => placement.vault))
  if (duplicate !== undefined) {
    return new TopologyError({ reason: "DuplicateVault", vault: duplicate, message: `vault '${duplicate}' has more than one placement` })
  }
  for (const placement of topology.vaults) {
    const problem = checkPlacement(topology, placement)
    if (problem !== undefined) return problem
  }
  return undefined
}

const checkPlacement = (topology: Topology.Topology, placement: Topology.VaultPlacement): TopologyError | undefined => {
  const { vault, homeRegion, allowedRegions } = placement
  const unknown = [homeRegion, ...(allowedRegions ?? [])].find((region) => Topology.findRegion(topology, region) === undefined)
  if (unknown !== undefined) {
    return new TopologyError({
      reason: "UnknownVaultRegion",
      vault,
      target: unknown,
      message: `vault '${vault}' names region '${unknown}', which is not declared (${regionList(topology)})`
    })
  }
  if (allowedRegions !== undefined && !allowedRegions.includes(homeRegion)) {
    return new TopologyError({
      reason: "HomeRegionNotAllowed",
      vault,
      target: homeRegion,
      message: `vault '${vault}' has home region '${homeRegion}', which its allowed regions (${allowedRegions.join(", ")}) do not include`
    })
  }
  return undefined
}

const regionList = (topology: Topology.Topology): string =>
  `declared: ${topology.regions.map((region) => region.id).join(", ")}`

const checks: ReadonlyArray<Check> = [
  checkRegionsPresent,
  checkBlankIds,
  checkUniqueRegions,
  checkUniqueZones,
  checkUniqueNodes,
  checkFailoverPriorities,
  checkLocalRegion,
  checkPrimary,
  checkReplicationTargets,
  checkVaults
]

// ---------------------------------------------------------------------------------------------
// Deployment checks: the replication graph must be able to deliver every change
// ---------------------------------------------------------------------------------------------

/** A peer without nodes can never be sent to, so every change for it would wait forever. */
const checkPeerNodes: Check = (topology) => {
  const empty = topology.regions.find((region) => region.id !== topology.localRegion && Topology.regionNodes(region).length === 0)
  return empty === undefined
    ? undefined
    : new TopologyError({
        reason: "RegionWithoutNodes",
        region: empty.id,
        message: `peer region '${empty.id}' declares no nodes, so nothing can be replicated to it`
      })
}

/** A region without targets keeps every write it takes to itself. */
const checkTargetsPresent: Check = (topology) => {
  if (topology.regions.length < 2) return undefined
  const silent = topology.regions.find((region) => Topology.targetsOf(topology, region.id).length === 0)
  return silent === undefined
    ? undefined
    : new TopologyError({
        reason: "NoTargets",
        region: silent.id,
        message: `region '${silent.id}' replicates to no region, so its writes would never leave it`
      })
}

/**
 * Every region must reach every other: any region may take writes (every region under
 * ActiveActive, a promoted one under PrimaryReplica, a vault's home under MultiMaster), and
 * the relay delivers a change only along paths of the graph.
 */
const checkStronglyConnected: Check = (topology) => {
  const all = (_region: Topology.RegionId) => true
  for (const source of topology.regions) {
    const reached = reachableFrom(topology, source.id, all)
    const missed = topology.regions.find((region) => !reached.has(region.id))
    if (missed !== undefined) {
      return new TopologyError({
        reason: "NotStronglyConnected",
        region: source.id,
        target: missed.id,
        message: `region '${source.id}' cannot reach '${missed.id}' over the replication targets, so changes written in '${source.id}' would never arrive there`
      })
    }
  }
  return undefined
}

/**
 * A vault's changes travel only through its allowed regions (the relay never routes them
 * through another region), so its home and every allowed region must reach every other
 * allowed region inside the set.
 */
const checkResidencyConnected: Check = (topology) => {
  for (const { vault, homeRegion, allowedRegions } of topology.vaults) {
    if (allowedRegions === undefined) continue
    const allowed = (region: Topology.RegionId) => allowedRegions.includes(region)
    for (const source of [homeRegion, ...allowedRegions.filter((region) => region !== homeRegion)]) {
      const reached = reachableFrom(topology, source, allowed)
      const missed = allowedRegions.find((region) => !reached.has(region))
      if (missed !== undefined) {
        return new TopologyError({
          reason: "ResidencyDisconnected",
          vault,
          region: source,
          target: missed,
          message: `vault '${vault}': region '${source}' cannot reach '${missed}' through its allowed regions (${allowedRegions.join(", ")}) only, so its changes would never arrive there`
        })
      }
    }
  }
  return undefined
}

/** The regions reachable from `source` (itself included) over edges whose target `allowed` accepts. */
const reachableFrom = (
  topology: Topology.Topology,
  source: Topology.RegionId,
  allowed: (region: Topology.RegionId) => boolean
): ReadonlySet<Topology.RegionId> => {
  const reached = new Set([source])
  const pending = [source]
  for (let region = pending.pop(); region !== undefined; region = pending.pop()) {
    for (const target of Topology.targetsOf(topology, region)) {
      if (reached.has(target) || !allowed(target)) continue
      reached.add(target)
      pending.push(target)
    }
  }
  return reached
}

const deploymentChecks: ReadonlyArray<Check> = [checkPeerNodes, checkTargetsPresent, checkStronglyConnected, checkResidencyConnected]
