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
 * adds it back, as new, once it runs again. Its name is the same as before (a StatefulSet pod's
 * host name is stable) and its disk is kept (the pod's volume), but its address is not: a pod
 * created again gets an address of its own, and Kubernetes hands the address a deleted pod freed
 * to the next pod it creates (`addressOf`). A peer whose discovery round has not run since still
 * sends to the old address, which then reaches whichever pod holds it now: the simulated network
 * delivers by address, as a real one does. Before this a replaced pod kept its address, and no
 * run ever sent a node a request meant for another.
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
  /** Each node's address now: its declared endpoint until its pod is first created again. */
  private readonly addresses: Map<string, string>
  /** Addresses freed by deleted pods, per region, oldest first: the next pod created there takes the oldest. */
  private readonly freed = new Map<string, Array<string>>()
  /** Nodes whose pod was deleted: they get an address at their next start. */
  private readonly readdressed = new Set<string>()
  private addressesCreated = 0

  constructor(
    /** The scenario's `discovery`: how often and how long the nodes' rounds run. */
    readonly settings: Settings,
    private readonly endpoints: ReadonlyArray<Discovery.DiscoveredEndpoint>
  ) {
    this.addresses = new Map(endpoints.map((endpoint) => [endpoint.nodeId, endpoint.endpoint]))
  }

  /** The address a node serves at and its record names now. */
  addressOf(nodeId: string): string {
    return this.addresses.get(nodeId) ?? `sim://${nodeId}`
  }

  /**
   * A deleted pod's new address: the oldest one another deleted pod of its region freed, or a new
   * one. Its own old address goes back to the region's free addresses for the pod created after it.
   */
  private readdress(nodeId: string): void {
    const regionId = this.endpoints.find((endpoint) => endpoint.nodeId === nodeId)?.regionId ?? ""
    const free = this.freed.get(regionId) ?? []
    const old = this.addressOf(nodeId)
    const reused = free.findIndex((address) => address !== old)
    const address = reused >= 0 ? free.splice(reused, 1)[0]! : `sim://${regionId}/pod-address-${++this.addressesCreated}`
    free.push(old)
    this.freed.set(regionId, free)
    this.addresses.set(nodeId, address)
  }

  /** Whether lookups fail now. */
  get failing(): boolean {
    return this.outage
  }

  /** A node's pod exists from now on: its record is published. */
  publish(nodeId: string): void {
    if (this.readdressed.delete(nodeId)) this.readdress(nodeId)
    this.published.add(nodeId)
  }

  /** A node's pod is gone (deleted, to be created again): its record is withdrawn until its next `publish`, which gives it a new address. */
  withdraw(nodeId: string): void {
    this.published.delete(nodeId)
    this.readdressed.add(nodeId)
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
        : Effect.succeed(
            this.endpoints.filter((endpoint) => this.published.has(endpoint.nodeId)).map((endpoint) => ({ ...endpoint, endpoint: this.addressOf(endpoint.nodeId) }))
          )
    )
  }
}
