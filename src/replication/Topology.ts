/**
 * The multi-region topology as plain immutable data: regions contain zones, zones contain
 * nodes, and a directed replication-targets graph says which region ships changes to which.
 *
 * This file holds the data model and pure queries only. Construction and validation live in
 * `TopologyBuilder.ts`; run-time changes (node health, heartbeats, add/remove) live in
 * `TopologyManager.ts`. Keeping the data inert lets the router, agent and simulator share it.
 */
import { Schema } from "effect"

/** Identifier of a geographic region, e.g. `us-west-1`. */
export const RegionId = Schema.NonEmptyTrimmedString
export type RegionId = string

/** Identifier of an availability zone inside a region, e.g. `us-west-1a`. */
export const ZoneId = Schema.NonEmptyTrimmedString
export type ZoneId = string

/** Identifier of one engine node (process), e.g. `node1`. */
export const NodeId = Schema.NonEmptyTrimmedString
export type NodeId = string

/** Tenant identifier; the seed's original called this a vault. */
export const VaultId = Schema.NonEmptyTrimmedString
export type VaultId = string

/** The topology pattern, spelled as in the seed document. */
export const ReplicationStrategy = Schema.Literal("ActiveActive", "PrimaryReplica", "MultiMaster")
export type ReplicationStrategy = typeof ReplicationStrategy.Type

/** Health of one node as seen by the local region. */
export const NodeStatus = Schema.Literal("Healthy", "Degraded", "Unreachable")
export type NodeStatus = typeof NodeStatus.Type

/** One engine node and the gRPC endpoint it listens on. */
export interface Node {
  readonly id: NodeId
  readonly endpoint: string
  readonly status: NodeStatus
}

/** An availability zone and its nodes. */
export interface Zone {
  readonly id: ZoneId
  readonly name: string
  readonly nodes: ReadonlyArray<Node>
}

/**
 * A region. `failoverPriority` follows the orchestration document: a lower number is a
 * higher priority, so on primary loss the available region with the smallest number wins.
 */
export interface Region {
  readonly id: RegionId
  readonly name: string
  readonly isPrimary: boolean
  readonly failoverPriority: number
  readonly zones: ReadonlyArray<Zone>
}

/**
 * Where a tenant lives under MultiMaster: the home region takes its writes, and its data
 * never leaves `allowedRegions` (data residency). When `allowedRegions` is absent the vault
 * may be replicated everywhere the graph reaches.
 */
export interface VaultPlacement {
  readonly vault: VaultId
  readonly homeRegion: RegionId
  readonly allowedRegions?: ReadonlyArray<RegionId>
}

/** A validated topology; build one with `TopologyBuilder`. */
export interface Topology {
  readonly strategy: ReplicationStrategy
  readonly localRegion: RegionId
  readonly regions: ReadonlyArray<Region>
  /** Directed graph: region -> regions it ships changes to. */
  readonly replicationTargets: Readonly<Record<RegionId, ReadonlyArray<RegionId>>>
  /** MultiMaster tenant placement; empty for the other strategies. */
  readonly vaults: ReadonlyArray<VaultPlacement>
}

/** Looks a region up by id. */
export const findRegion = (topology: Topology, regionId: RegionId): Region | undefined =>
  topology.regions.find((region) => region.id === regionId)

/** All nodes of a region, zones flattened in declaration order. */
export const regionNodes = (region: Region): ReadonlyArray<Node> =>
  // Most regions have one zone: its own list, without a copy (heartbeats, routing and leases ask often).
  region.zones.length === 1 ? region.zones[0]!.nodes : region.zones.flatMap((zone) => zone.nodes)

/** The regions a region ships its changes to (empty when it has none). */
export const targetsOf = (topology: Topology, regionId: RegionId): ReadonlyArray<RegionId> =>
  topology.replicationTargets[regionId] ?? []

/** The region currently marked primary, if any. */
export const primaryRegion = (topology: Topology): Region | undefined =>
  topology.regions.find((region) => region.isPrimary)

/** The placement of a vault under MultiMaster, if one is configured. */
export const vaultPlacement = (topology: Topology, vault: VaultId): VaultPlacement | undefined =>
  topology.vaults.find((placement) => placement.vault === vault)

/**
 * Whether a vault's data may be stored in a region. Vaults without a placement, or without
 * a residency set, may be stored anywhere.
 */
export const vaultAllowedIn = (topology: Topology, vault: VaultId, regionId: RegionId): boolean => {
  const placement = vaultPlacement(topology, vault)
  if (placement === undefined || placement.allowedRegions === undefined) return true
  return placement.allowedRegions.includes(regionId)
}

/** Whether a region has at least one node that is not Unreachable. */
export const isRegionAvailable = (topology: Topology, regionId: RegionId): boolean => {
  const region = findRegion(topology, regionId)
  if (region === undefined) return false
  return regionNodes(region).some((node) => node.status !== "Unreachable")
}
