/**
 * Which region forwards which change to which target.
 *
 * Changes travel along a shortest-path tree of the replication graph rooted at their origin
 * (breadth-first, neighbours in id order, restricted to the regions the vault may live in).
 * A region sends a change to a target only if it is the target's parent in that tree. In a
 * full mesh every change goes straight from its origin to every region, once; in a ring
 * (A->B->C->A) it is relayed hop by hop; in any strongly connected graph it reaches every
 * allowed region. A change is never sent to its origin or back to the region it came from,
 * and never to a region outside the vault's residency set, nor through one. A change whose
 * origin region was removed from the deployment is flooded instead (`undeclaredOrigin`).
 */
import type * as Change from "./Change.js"
import * as Topology from "./Topology.js"

type Parents = ReadonlyMap<string, string>

const cache = new WeakMap<Topology.Topology, Map<string, Parents>>()

/** Breadth-first parents from `origin` over the regions accepted by `allowed`. */
const treeFrom = (topology: Topology.Topology, origin: string, allowed: (region: string) => boolean): Parents => {
  const parents = new Map<string, string>()
  const visited = new Set([origin])
  let frontier = [origin]
  while (frontier.length > 0) {
    const next: Array<string> = []
    for (const region of frontier) {
      const neighbours = [...Topology.targetsOf(topology, region)].sort()
      for (const neighbour of neighbours) {
        if (visited.has(neighbour) || !allowed(neighbour) || Topology.findRegion(topology, neighbour) === undefined) continue
        visited.add(neighbour)
        parents.set(neighbour, region)
        next.push(neighbour)
      }
    }
    frontier = next
  }
  return parents
}

/** The residency class of a vault: its sorted allowed regions, or `*` when it may be stored anywhere. */
const residencyOf = (topology: Topology.Topology, vault: string): string => {
  const placement = Topology.vaultPlacement(topology, vault)
  return placement?.allowedRegions === undefined ? "*" : [...placement.allowedRegions].sort().join(",")
}

const parentsIn = (topology: Topology.Topology, origin: string, residency: string): Parents => {
  const cacheKey = `${origin}|${residency}`
  let perTopology = cache.get(topology)
  if (perTopology === undefined) {
    perTopology = new Map()
    cache.set(topology, perTopology)
  }
  let parents = perTopology.get(cacheKey)
  if (parents === undefined) {
    const allowed = residency === "*" ? () => true : (region: string) => residency.split(",").includes(region)
    parents = treeFrom(topology, origin, allowed)
    perTopology.set(cacheKey, parents)
  }
  return parents
}

const parentsFor = (topology: Topology.Topology, origin: string, vault: string): Parents => parentsIn(topology, origin, residencyOf(topology, vault))

const declaredCache = new WeakMap<Topology.Topology, ReadonlySet<string>>()

/** Whether the topology declares `region` (a region removed from the deployment is not declared). */
const isDeclared = (topology: Topology.Topology, region: string): boolean => {
  let declared = declaredCache.get(topology)
  if (declared === undefined) {
    declared = new Set(topology.regions.map((entry) => entry.id))
    declaredCache.set(topology, declared)
  }
  return declared.has(region)
}

/**
 * The origin in scope keys of changes whose origin region the topology does not declare: a
 * region removed from the deployment. Such changes have no relay tree (its root is gone), so
 * every region that holds one floods it to each of its targets but the one it came from, and a
 * receiver that has it already ignores it. Before, nobody sent them: a change of the removed
 * region that had reached one surviving region but not another never got there, and the
 * survivors answered differently for good. Parentheses keep it apart from region ids.
 */
export const undeclaredOrigin = "(undeclared)"

/** The scope entry that records which regions the topology declared (`removedSince`). */
const declaredPrefix = "(declared "

const declaredEntry = (topology: Topology.Topology): string => `${declaredPrefix}${topology.regions.map((region) => region.id).sort().join(",")})`

/**
 * The regions declared when `recorded` (a cursor's scope) was recorded and not declared now:
 * removed since. The cursor passed their changes while they sent them themselves, and now
 * nobody does but the regions that hold them, so the agent looks back for those (`Agent`).
 * Only the regions removed since count: a region removed long ago was looked back for then, and
 * its whole history is not sent again at every topology change. Empty for a scope recorded
 * before this entry was kept.
 */
export const removedSince = (recorded: ReadonlyArray<string> | undefined, topology: Topology.Topology): ReadonlySet<string> => {
  const entry = recorded?.find((key) => key.startsWith(declaredPrefix))
  if (entry === undefined) return new Set()
  return new Set(entry.slice(declaredPrefix.length, -1).split(",").filter((region) => region !== "" && !isDeclared(topology, region)))
}

/**
 * The name of a sibling node (same region, its own store): `<region>/<node>`. It is the
 * agent's target name for that node and the `receivedFrom` of log entries the sibling sent;
 * it never equals a region id, so the region rules below treat such entries like local ones.
 */
export const siblingKey = (regionId: string, nodeId: string): string => `${regionId}/${nodeId}`

/** The `receivedFrom` of a batch's entries: the sending region, or the sending sibling node. */
export const receivedFrom = (localRegion: string, fromRegion: string, fromNode: string): string =>
  fromRegion === localRegion ? siblingKey(fromRegion, fromNode) : fromRegion

/** Whether `holder` should send `change` (received from `receivedFrom`, null if local) to `target`. */
export const shouldSend = (
  topology: Topology.Topology,
  holder: string,
  target: string,
  change: Change.Change,
  receivedFrom: string | null
): boolean => {
  if (target === change.originRegion || target === receivedFrom || target === holder) return false
  if (!Topology.vaultAllowedIn(topology, change.tuple.vault, target)) return false
  if (!isDeclared(topology, change.originRegion)) return Topology.targetsOf(topology, holder).includes(target)
  return parentsFor(topology, change.originRegion, change.tuple.vault).get(target) === holder
}

/**
 * The tree a change travels along: its origin region and its vault's residency class
 * (`<origin>|<sorted allowed regions or *>`). Changes with one scope key take the same tree.
 */
export const scopeKey = (topology: Topology.Topology, change: Change.Change): string =>
  `${isDeclared(topology, change.originRegion) ? change.originRegion : undeclaredOrigin}|${residencyOf(topology, change.tuple.vault)}`

/**
 * The scope keys for which `holder` is the parent of `target` under `topology`: the changes it
 * alone must send there; then the regions declared (see `removedSince`). When a topology change adds a key to a target's scope, the holder's
 * cursor for that target has moved past changes of that key it was not responsible for, and
 * it must look back for them (see `Agent`). Sorted, so equal scopes compare equal as text.
 */
export const scopeOf = (topology: Topology.Topology, holder: string, target: string): ReadonlyArray<string> => {
  const residencies = [...new Set(["*", ...topology.vaults.map((placement) => residencyOf(topology, placement.vault))])].sort()
  const keys: Array<string> = []
  for (const origin of topology.regions.map((region) => region.id).sort()) {
    if (origin === target) continue
    for (const residency of residencies) if (parentsIn(topology, origin, residency).get(target) === holder) keys.push(`${origin}|${residency}`)
  }
  // Changes of removed regions are flooded over every edge (`undeclaredOrigin`): this one's too.
  if (holder !== target && Topology.targetsOf(topology, holder).includes(target)) {
    for (const residency of residencies) if (residency === "*" || residency.split(",").includes(target)) keys.push(`${undeclaredOrigin}|${residency}`)
  }
  // Not a tree: the regions declared, so that a removal shows in the recorded scope (`removedSince`).
  keys.push(declaredEntry(topology))
  return keys
}
