/**
 * The topology a decoded configuration file declares: built and validated with
 * `TopologyBuilder` (including the deployment checks, so a configuration that cannot deliver
 * every change is refused), with each `TopologyError` turned into a `ConfigError` at the key to
 * change, plus the checks that need the built topology (SourcePriority ranks and the node id).
 */
import { Either } from "effect"
import * as Topology from "../../replication/Topology.js"
import * as TopologyBuilder from "../../replication/TopologyBuilder.js"
import * as ConfigError from "./ConfigError.js"
import type * as FileSchema from "./FileSchema.js"

const builderFor = (file: FileSchema.ReplicationFile): TopologyBuilder.TopologyBuilder => {
  let builder = TopologyBuilder.make(file.strategy, file.local_region)
  for (const region of file.regions) {
    builder = TopologyBuilder.addRegion(builder, {
      id: region.id,
      name: region.name ?? region.id,
      isPrimary: region.is_primary ?? false,
      ...(region.priority === undefined ? {} : { failoverPriority: region.priority })
    })
    for (const zone of region.zones ?? []) {
      builder = TopologyBuilder.addZone(builder, region.id, { id: zone.id, name: zone.name ?? zone.id })
      for (const node of zone.nodes ?? []) {
        builder = TopologyBuilder.addNode(builder, region.id, zone.id, { id: node.id, endpoint: node.endpoint })
      }
    }
  }
  const targets = file.replication_targets ?? TopologyBuilder.fullMesh(file.regions.map((region) => region.id))
  for (const [source, regionTargets] of Object.entries(targets)) {
    builder = TopologyBuilder.setReplicationTargets(builder, source, regionTargets)
  }
  for (const vault of file.vaults ?? []) {
    builder = TopologyBuilder.addVault(builder, {
      vault: vault.id,
      homeRegion: vault.home_region,
      ...(vault.allowed_regions === undefined ? {} : { allowedRegions: vault.allowed_regions })
    })
  }
  return builder
}

/** The topology, valid and deployable: a configuration that cannot deliver every change is refused. */
export const buildTopology = (file: FileSchema.ReplicationFile, paths: ConfigError.Paths): Either.Either<Topology.Topology, ConfigError.ConfigError> =>
  Either.mapLeft(
    Either.flatMap(TopologyBuilder.build(builderFor(file)), (topology) =>
      TopologyBuilder.validateDeployment(topology, { peerNodesRequired: file.discovery?.mode !== "dns" })
    ),
    (error) =>
    topologyConfigError(error, file, paths)
  )

interface NodeEntry {
  readonly path: ReadonlyArray<ConfigError.Segment>
  readonly id: string
  readonly endpoint: string
}

const nodeEntries = (file: FileSchema.ReplicationFile): ReadonlyArray<NodeEntry> =>
  file.regions.flatMap((region, r) =>
    (region.zones ?? []).flatMap((zone, z) =>
      (zone.nodes ?? []).map((node, n) => ({ path: ["regions", r, "zones", z, "nodes", n], id: node.id, endpoint: node.endpoint }))
    )
  )

/** Index of the second occurrence (the one declared in conflict), or of the first, or 0. */
const secondIndex = <A>(values: ReadonlyArray<A>, match: (value: A) => boolean): number => {
  const indices = values.flatMap((value, index) => (match(value) ? [index] : []))
  return indices[1] ?? indices[0] ?? 0
}

const topologyConfigError = (error: TopologyBuilder.TopologyError, file: FileSchema.ReplicationFile, paths: ConfigError.Paths): ConfigError.ConfigError => {
  const at = (segments: ReadonlyArray<ConfigError.Segment>, expected: string): ConfigError.ConfigError =>
    ConfigError.make(ConfigError.formatPath(paths, segments), ConfigError.show(ConfigError.valueAt(file, segments)), expected, error.message)
  const regionIndex = (id: string | undefined) => secondIndex(file.regions, (region) => region.id === id)
  const declared = `one of the declared regions (${file.regions.map((region) => region.id).join(", ")})`
  switch (error.reason) {
    case "NoRegions":
      return at(["regions"], "at least one region")
    case "DuplicateRegion":
      return at(["regions", regionIndex(error.region), "id"], "a region id not used by another region")
    case "DuplicateZone":
      return duplicateZoneError(error, file, at)
    case "DuplicateNode":
    case "DuplicateEndpoint":
      return duplicateNodeError(error, file, paths, at)
    case "InvalidFailoverPriority":
    case "DuplicateFailoverPriority":
      return failoverPriorityError(error, file, paths)
    case "UnknownLocalRegion":
      return at(["local_region"], declared)
    case "PrimaryCount":
      return primaryCountError(file, at)
    case "UnknownSourceRegion":
      return at(["replication_targets", error.region ?? ""], `${declared} as key`)
    case "UnknownTargetRegion":
    case "SelfLoop":
    case "DuplicateTarget":
      return targetError(error, file, at, declared)
    case "VaultsRequireMultiMaster":
      return at(["vaults"], `no vault placements: they need strategy MultiMaster, and the strategy is ${file.strategy}`)
    case "DuplicateVault":
    case "UnknownVaultRegion":
    case "HomeRegionNotAllowed":
      return vaultError(error, file, at, declared)
    case "RegionWithoutNodes":
    case "NoTargets":
    case "NotStronglyConnected":
    case "ResidencyDisconnected":
      return deploymentError(error, file, at)
    case "BlankId":
    case "UnknownRegion":
    case "UnknownZone":
      // The file schema and its nesting rule these out; kept so a new reason still names a path.
      return at(["regions"], "a valid topology")
  }
}

const duplicateZoneError = (error: TopologyBuilder.TopologyError, file: FileSchema.ReplicationFile, at: ConfigError.At): ConfigError.ConfigError => {
  const r = file.regions.findIndex((region) => region.id === error.region)
  const z = secondIndex(file.regions[r]?.zones ?? [], (zone) => zone.id === error.zone)
  return at(["regions", r, "zones", z, "id"], `a zone id not used by another zone of region '${error.region}'`)
}

const duplicateNodeError = (error: TopologyBuilder.TopologyError, file: FileSchema.ReplicationFile, paths: ConfigError.Paths, at: ConfigError.At): ConfigError.ConfigError => {
  const entries = nodeEntries(file)
  const sameId = (entry: NodeEntry) => entry.id === error.node
  const sameEndpoint = (entry: NodeEntry) => entry.endpoint === error.endpoint
  const match = error.reason === "DuplicateNode" ? sameId : sameEndpoint
  const conflicting = entries[secondIndex(entries, match)]
  const first = entries.find(match)
  const key = error.reason === "DuplicateNode" ? "id" : "endpoint"
  const firstPath = first === undefined ? "" : ` (already used at ${ConfigError.formatPath(paths, [...first.path, key])})`
  return at([...(conflicting?.path ?? ["regions"]), key], `a node ${key} unique across all regions${firstPath}`)
}

const failoverPriorityError = (error: TopologyBuilder.TopologyError, file: FileSchema.ReplicationFile, paths: ConfigError.Paths): ConfigError.ConfigError => {
  const r = file.regions.findIndex((region) => region.id === error.region)
  const region = file.regions[r]
  const effective = region?.priority ?? r + 1
  return ConfigError.make(
    ConfigError.formatPath(paths, ["regions", r, "priority"]),
    ConfigError.show(effective),
    "a failover priority not used by another region (lower = higher priority; an unset priority is the region's position + 1)",
    error.message
  )
}

const primaryCountError = (file: FileSchema.ReplicationFile, at: ConfigError.At): ConfigError.ConfigError => {
  const primaries = file.regions.flatMap((region, index) => (region.is_primary === true ? [index] : []))
  const second = primaries[1]
  return second === undefined
    ? at(["regions"], "exactly one region with is_primary: true (strategy PrimaryReplica)")
    : at(["regions", second, "is_primary"], "false: strategy PrimaryReplica allows exactly one primary region")
}

const targetError = (error: TopologyBuilder.TopologyError, file: FileSchema.ReplicationFile, at: ConfigError.At, declared: string): ConfigError.ConfigError => {
  const source = error.region ?? ""
  const targets = file.replication_targets?.[source] ?? []
  const index = secondIndex(targets, (target) => target === error.target)
  const expected =
    error.reason === "SelfLoop"
      ? `a region other than '${source}' itself`
      : error.reason === "DuplicateTarget"
        ? "a region not already listed"
        : declared
  return at(["replication_targets", source, index], expected)
}

const vaultError = (error: TopologyBuilder.TopologyError, file: FileSchema.ReplicationFile, at: ConfigError.At, declared: string): ConfigError.ConfigError => {
  const vaults = file.vaults ?? []
  const v = secondIndex(vaults, (vault) => vault.id === error.vault)
  const vault = vaults[v]
  if (error.reason === "DuplicateVault") return at(["vaults", v, "id"], "a vault id not placed by another entry")
  if (error.reason === "HomeRegionNotAllowed") {
    return at(["vaults", v, "allowed_regions"], `a list of regions that includes the home region '${vault?.home_region}'`)
  }
  if (vault?.home_region === error.target) return at(["vaults", v, "home_region"], declared)
  const allowed = (vault?.allowed_regions ?? []).indexOf(error.target ?? "")
  return at(["vaults", v, "allowed_regions", Math.max(allowed, 0)], declared)
}

/** Errors of `TopologyBuilder.validateDeployment`: each names the key to change. */
const deploymentError = (error: TopologyBuilder.TopologyError, file: FileSchema.ReplicationFile, at: ConfigError.At): ConfigError.ConfigError => {
  const region = error.region ?? ""
  switch (error.reason) {
    case "RegionWithoutNodes": {
      const r = file.regions.findIndex((candidate) => candidate.id === region)
      const zones = file.regions[r]?.zones ?? []
      const nodes = "at least one node: a peer region without nodes can never be replicated to"
      return zones.length === 0 ? at(["regions", r, "zones"], `a zone with ${nodes}`) : at(["regions", r, "zones", 0, "nodes"], nodes)
    }
    case "NoTargets":
      return at(["replication_targets", region], `at least one target region ('${region}' would keep its writes to itself)`)
    case "ResidencyDisconnected": {
      const v = (file.vaults ?? []).findIndex((vault) => vault.id === error.vault)
      return at(
        ["vaults", v, "allowed_regions"],
        `regions that the replication targets connect among themselves: '${region}' cannot reach '${error.target}' without passing through a region outside the set`
      )
    }
    default:
      return at(
        ["replication_targets", region],
        `targets through which '${region}' reaches every region (it cannot reach '${error.target}'; a replication graph must be strongly connected)`
      )
  }
}

/**
 * SourcePriority must rank every region: a change from an unranked region has no defined
 * winner (the original gave it priority 0, which silently made it lose everywhere). A rank of a
 * region the topology does not declare is kept, not refused: a region removed from the
 * deployment leaves its changes in every log and store, and they still meet concurrent writes
 * at nodes they reach late, so every node must go on ranking them alike. A reload that dropped
 * the rank would be refused by serve while the simulator applied it (chaos seed 58029: a
 * `remove_region` never happened on real nodes), and a restart on such a file would leave the
 * resolver without a rank for changes it holds. `undeclaredRanks` names them for the start-up log.
 */
export const checkRegionPriorities = (file: FileSchema.ReplicationFile, topology: Topology.Topology, paths: ConfigError.Paths): ConfigError.ConfigError | undefined => {
  if (file.conflict_resolution !== "SourcePriority") return undefined
  const listed = file.region_priorities ?? []
  const declared = topology.regions.map((region) => region.id)
  for (const [index, region] of listed.entries()) {
    if (listed.indexOf(region) !== index) {
      return ConfigError.make(ConfigError.formatPath(paths, ["region_priorities", index]), ConfigError.show(region), "a region not already listed")
    }
  }
  const missing = declared.filter((region) => !listed.includes(region))
  if (missing.length === 0) return undefined
  return ConfigError.make(
    ConfigError.formatPath(paths, ["region_priorities"]),
    ConfigError.show(file.region_priorities),
    `a list that ranks every region, lowest priority first; missing ${missing.map((region) => `'${region}'`).join(", ")}`,
    "SourcePriority needs a priority for every region"
  )
}

/** The regions `region_priorities` ranks that the topology does not declare (kept: see `checkRegionPriorities`). */
export const undeclaredRanks = (regionPriorities: ReadonlyArray<string>, topology: Topology.Topology): ReadonlyArray<string> =>
  regionPriorities.filter((region) => topology.regions.every((declared) => declared.id !== region))

/** A node id that names a node of another region would make this process impersonate it. */
export const checkNodeId = (file: FileSchema.ReplicationFile, topology: Topology.Topology, paths: ConfigError.Paths): ConfigError.ConfigError | undefined => {
  if (file.node_id === undefined) return undefined
  const owner = topology.regions.find((region) => Topology.regionNodes(region).some((node) => node.id === file.node_id))
  if (owner === undefined || owner.id === topology.localRegion) return undefined
  return ConfigError.make(
    ConfigError.formatPath(paths, ["node_id"]),
    ConfigError.show(file.node_id),
    `a node of the local region '${topology.localRegion}'`,
    `node '${file.node_id}' is declared in region '${owner.id}'`
  )
}
