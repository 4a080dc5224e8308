/**
 * The replication graph as `topology` faults change it during a run: which declared regions
 * are part of the deployment and which replication targets (edges) each one has. A fault adds
 * or removes one edge, or removes a region (with its edges) or adds it back (with the edges it
 * has then). Every node gets the new configuration as a config reload would give it
 * (`TopologyManager.reconfigure`); a removed region's own nodes keep running and see the
 * others with their own region still in place (a node cannot run outside its topology), so
 * they keep shipping to peers that now refuse them, until their region is added back. A region
 * never added back is decommissioned: the run is judged over the regions left (`Run.ts`).
 *
 * This module is pure data: the graph, a change applied to it, each region's view of it as a
 * `Topology`, and the problems of a schedule for `Scenario.validate` (each with its key path).
 */
import { Either } from "effect"
import type * as Topology from "../replication/Topology.js"
import * as TopologyBuilder from "../replication/TopologyBuilder.js"
import type { Fault, TopologySpec } from "./Scenario.js"

/** An edge of the replication graph added or removed: `from` starts or stops shipping to `to`. */
export interface TargetChange {
  readonly op: "add_target" | "remove_target"
  readonly from: string
  readonly to: string
}

/** A region removed from the deployment (with its edges), or added back. */
export interface RegionChange {
  readonly op: "add_region" | "remove_region"
  readonly region: string
}

/** One change of the replication graph. */
export type TopologyChange = TargetChange | RegionChange

/** Whether a change adds or removes an edge (else a region). */
export const isTargetChange = (change: TopologyChange): change is TargetChange => change.op === "add_target" || change.op === "remove_target"

/** The graph at one moment: the regions removed, and each region's targets (kept while it is removed). */
export interface Graph {
  readonly removed: ReadonlySet<string>
  readonly targets: Readonly<Record<string, ReadonlyArray<string>>>
}

/** The graph a scenario starts with: every region, its declared targets (default: full mesh). */
export const initial = (spec: TopologySpec): Graph => {
  const regionIds = spec.regions.map((region) => region.id)
  const declared = spec.targets ?? TopologyBuilder.fullMesh(regionIds)
  return { removed: new Set(), targets: Object.fromEntries(regionIds.map((id) => [id, [...(declared[id] ?? [])]])) }
}

/** One line for a change, as reports and traces show it. */
export const describe = (change: TopologyChange): string =>
  isTargetChange(change) ? `${change.op} ${change.from} -> ${change.to}` : `${change.op} ${change.region}`

/** The graph after `change`, or why the change does not fit the graph. */
export const apply = (graph: Graph, change: TopologyChange): Either.Either<Graph, string> => {
  switch (change.op) {
    case "add_target":
    case "remove_target": {
      const list = graph.targets[change.from] ?? []
      const present = list.includes(change.to)
      if (change.op === "add_target" && present) return Either.left(`'${change.from}' already replicates to '${change.to}'`)
      if (change.op === "remove_target" && !present) return Either.left(`'${change.from}' does not replicate to '${change.to}'`)
      const next = change.op === "add_target" ? [...list, change.to] : list.filter((target) => target !== change.to)
      return Either.right({ ...graph, targets: { ...graph.targets, [change.from]: next } })
    }
    case "remove_region":
      if (graph.removed.has(change.region)) return Either.left(`region '${change.region}' is already removed`)
      return Either.right({ ...graph, removed: new Set([...graph.removed, change.region]) })
    case "add_region":
      if (!graph.removed.has(change.region)) return Either.left(`region '${change.region}' is not removed, so it cannot be added`)
      return Either.right({ ...graph, removed: new Set([...graph.removed].filter((region) => region !== change.region)) })
  }
}

/**
 * The topology spec `regionId`'s nodes run with: the regions not removed (and their own),
 * the edges among them, residency sets without the regions they do not see.
 */
export const viewOf = (spec: TopologySpec, graph: Graph, regionId: string): TopologySpec => {
  const seen = (id: string) => id === regionId || !graph.removed.has(id)
  const regions = spec.regions.filter((region) => seen(region.id))
  return {
    ...spec,
    regions,
    targets: Object.fromEntries(regions.map((region) => [region.id, (graph.targets[region.id] ?? []).filter(seen)])),
    vaults: spec.vaults.map((vault) => (vault.allowedRegions === undefined ? vault : { ...vault, allowedRegions: vault.allowedRegions.filter(seen) }))
  }
}

/** Builds the topology of a spec as a node of `regionId` starts with it. */
export const build = (spec: TopologySpec, regionId: string): Either.Either<Topology.Topology, TopologyBuilder.TopologyError> => {
  let builder = TopologyBuilder.make(spec.strategy, regionId)
  for (const region of spec.regions) {
    builder = TopologyBuilder.addRegion(builder, { id: region.id, name: region.id, isPrimary: region.primary, failoverPriority: region.priority })
    builder = TopologyBuilder.addZone(builder, region.id, { id: `${region.id}a` })
    for (const nodeId of region.nodes) builder = TopologyBuilder.addNode(builder, region.id, `${region.id}a`, { id: nodeId, endpoint: `sim://${nodeId}` })
  }
  const targets = spec.targets ?? TopologyBuilder.fullMesh(spec.regions.map((region) => region.id))
  for (const [region, list] of Object.entries(targets)) builder = TopologyBuilder.setReplicationTargets(builder, region, list)
  for (const vault of spec.vaults) builder = TopologyBuilder.addVault(builder, vault)
  return TopologyBuilder.build(builder)
}

/**
 * The problems of a schedule's topology faults, each with its key path: unknown regions, a
 * change that does not fit the graph at its time, a region removal the strategy cannot take,
 * a view no node could run with, and an end state in which convergence could not be expected
 * (a region still removed, a graph that is not strongly connected or leaves a residency set
 * disconnected). Regions named by the faults are checked by the caller as for other faults.
 */
export const problems = (spec: TopologySpec, faults: ReadonlyArray<Fault>): ReadonlyArray<string> => {
  const found: Array<string> = []
  const known = new Set(spec.regions.map((region) => region.id))
  let graph = initial(spec)
  let changed = false
  faults.forEach((fault, index) => {
    if (fault.kind !== "topology") return
    changed = true
    const path = `faults[${index}]`
    const { change } = fault
    const named = isTargetChange(change) ? [change.from, change.to] : [change.region]
    if (!named.every((id) => known.has(id))) return
    if (isTargetChange(change) && change.from === change.to) return found.push(`${path}.to: a region cannot replicate to itself`)
    if (change.op === "remove_region") {
      if (spec.strategy === "PrimaryReplica") return found.push(`${path}.change: a PrimaryReplica scenario cannot remove a region (its write lease counts the regions it started with)`)
      const homed = spec.vaults.find((vault) => vault.homeRegion === change.region)
      if (homed !== undefined) return found.push(`${path}.region: '${change.region}' is the home region of vault '${homed.vault}' and cannot be removed`)
    }
    const next = apply(graph, change)
    if (Either.isLeft(next)) return found.push(`${path}: at ${fault.atMs} ms ${next.left}`)
    graph = next.right
    for (const region of spec.regions) {
      const view = build(viewOf(spec, graph, region.id), region.id)
      if (Either.isLeft(view)) return found.push(`${path}: the topology '${region.id}' would run with is invalid: ${view.left.message}`)
    }
  })
  if (!changed || found.length > 0) return found
  // A region may stay removed (a decommission): the regions left must then make a deployment.
  const survivor = spec.regions.find((region) => !graph.removed.has(region.id))?.id ?? ""
  const final = Either.flatMap(build(viewOf(spec, graph, survivor), survivor), TopologyBuilder.validateDeployment)
  if (Either.isLeft(final)) found.push(`faults: after the last topology change ${final.left.message}`)
  return found
}

/** The regions a run ends without: removed by a topology fault and never added back (a decommission). */
export const removedAtEnd = (spec: TopologySpec, faults: ReadonlyArray<Fault>): ReadonlySet<string> => {
  let graph = initial(spec)
  for (const fault of faults) {
    if (fault.kind !== "topology") continue
    const next = apply(graph, fault.change)
    if (Either.isRight(next)) graph = next.right
  }
  return graph.removed
}
