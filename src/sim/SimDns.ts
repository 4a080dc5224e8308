/**
 * The DNS a simulated deployment finds its nodes through, in a scenario with `discovery:`, as
 * the Kubernetes deployment does (`deploy/kubernetes`: `discovery.mode: dns` over a headless
 * Service with `publishNotReadyAddresses`). A node's record exists from its pod's creation (its
 * first start) on, whether its process runs or not. During a `dns_outage` fault every lookup
 * fails: each node's discovery round fails and keeps the topology it has (`Discovery.runSync`),
 * and a node that starts then runs its engine with no peers known, as `serve` does once its
 * first round failed.
 *
 * Each node starts with every declared region and zone but no node (`withoutNodes`), as `serve`
 * does under DNS discovery, and learns every node, itself included, from its discovery rounds
 * (`Discovery.start` before the engine, then every `intervalMs`), through the shared code
 * `serve` runs. Before this the simulator declared every node up front, and a node started on a
 * wiped disk could never run its bootstrap without its peers known.
 *
 * A `crash` fault with `replaced` is a pod Kubernetes deletes and creates again (a rolling
 * update of the StatefulSet, a drained machine): its record is withdrawn until the node starts
 * again (`withdraw`), so every peer's discovery removes the node from its topology meanwhile and
 * adds it back, as new, once it runs again. Its name and endpoint are the same as before (a
 * StatefulSet pod's host name is stable), and its disk is kept (the pod's volume).
 */
import { Effect } from "effect"
import * as Discovery from "../replication/Discovery.js"
import * as Topology from "../replication/Topology.js"

/** How a scenario's nodes discover each other. */
export interface Settings {
  /** Between discovery rounds (`discovery.interval_ms` of `serve`). */
  readonly intervalMs: number
  /** How long a start waits for its first round before the engine starts regardless. */
  readonly firstRoundWaitMs: number
}

/** `topology` with every region and zone kept and no node: what `serve` starts with under DNS discovery. */
export const withoutNodes = (topology: Topology.Topology): Topology.Topology => ({
  ...topology,
  regions: topology.regions.map((region) => ({ ...region, zones: region.zones.map((zone) => ({ ...zone, nodes: [] })) }))
})

/** Every node of `topology` as DNS reports it: endpoint, region, zone and id, with no health (DNS knows none). */
export const endpointsOf = (topology: Topology.Topology): ReadonlyArray<Discovery.DiscoveredEndpoint> =>
  topology.regions.flatMap((region) =>
    region.zones.flatMap((zone) => zone.nodes.map((node) => ({ endpoint: node.endpoint, regionId: region.id, nodeId: node.id, zoneId: zone.id })))
  )

/** The records of one run and whether lookups answer. */
export class SimDns {
  private outage = false
  private readonly published = new Set<string>()

  constructor(
    /** The scenario's `discovery`: how often and how long the nodes' rounds run. */
    readonly settings: Settings,
    private readonly endpoints: ReadonlyArray<Discovery.DiscoveredEndpoint>
  ) {}

  /** Whether lookups fail now. */
  get failing(): boolean {
    return this.outage
  }

  /** A node's pod exists from now on: its record is published. */
  publish(nodeId: string): void {
    this.published.add(nodeId)
  }

  /** A node's pod is gone (deleted, to be created again): its record is withdrawn until its next `publish`. */
  withdraw(nodeId: string): void {
    this.published.delete(nodeId)
  }

  /** Whether a node's record is published now. */
  isPublished(nodeId: string): boolean {
    return this.published.has(nodeId)
  }

  /** Every lookup fails from now on (`dns_outage`), until `restore`. */
  fail(): void {
    this.outage = true
  }

  /** Lookups answer again; returns whether they had failed. */
  restore(): boolean {
    const was = this.outage
    this.outage = false
    return was
  }

  /** What each node's discovery rounds ask: every published record, or a failure during an outage. */
  readonly source: Discovery.EndpointSource["Type"] = {
    discover: Effect.suspend(() =>
      this.outage
        ? Effect.fail(new Discovery.DiscoveryError({ message: "DNS lookups fail (dns_outage)" }))
        : Effect.succeed(this.endpoints.filter((endpoint) => this.published.has(endpoint.nodeId)))
    )
  }
}
