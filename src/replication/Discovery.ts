/**
 * Discovery: where the engine nodes of every region are, as reported by something outside
 * the replication system (a static list, Kubernetes DNS, Tailscale MagicDNS), and how that
 * report becomes a topology or updates the running one.
 *
 * The boundary: this module turns a list of `DiscoveredEndpoint`s into topology changes. It
 * does no network IO of its own; DNS goes through the injectable `DnsResolver` service, whose
 * real implementation lives in `src/runtime` (nothing here imports `node:dns`), and tests and
 * the simulator provide fakes.
 *
 * Node ids of DNS-discovered nodes are `<regionId>/<label>`, where the label is the first DNS
 * label of the record's host name (a StatefulSet pod name such as `inferadb-engine-0`) or,
 * when the resolver knows no host name, the address with `.` and `:` turned into `-`. The
 * region prefix is needed because node ids are unique across the topology while every
 * region's StatefulSet names its pods alike; nodes should use the same form for their own id.
 */
import { Context, Data, Duration, Effect, Either, Layer, pipe, Ref, type Scope, Stream, SubscriptionRef } from "effect"
import * as Handoff from "./Handoff.js"
import * as Topology from "./Topology.js"
import * as TopologyBuilder from "./TopologyBuilder.js"
import * as TopologyManager from "./TopologyManager.js"

/** One engine node as reported by discovery. */
export interface DiscoveredEndpoint {
  readonly endpoint: string
  readonly regionId: Topology.RegionId
  readonly nodeId: Topology.NodeId
  /** Defaults to the configured default zone. */
  readonly zoneId?: Topology.ZoneId
  /** Health as reported by the discovery system; absent means "no opinion". */
  readonly health?: Topology.NodeStatus
}

/** Discovery could not produce a trustworthy list of endpoints. */
export class DiscoveryError extends Data.TaggedError("DiscoveryError")<{
  readonly message: string
  readonly regionId?: Topology.RegionId
  readonly hostname?: string
}> {}

/** Where endpoints come from. */
export class EndpointSource extends Context.Tag("inferadb/EndpointSource")<
  EndpointSource,
  {
    /** Every endpoint of every region, sorted by region, zone and node id. */
    readonly discover: Effect.Effect<ReadonlyArray<DiscoveredEndpoint>, DiscoveryError>
  }
>() {}

/** One DNS answer: an address and, when the resolver knows it, the host name behind it. */
export interface DnsRecord {
  readonly address: string
  readonly hostname?: string
}

/**
 * DNS resolution. For a Kubernetes headless service the runtime implementation returns one
 * record per ready pod, with the pod's host name when it can learn it (SRV or PTR records).
 */
export class DnsResolver extends Context.Tag("inferadb/DnsResolver")<
  DnsResolver,
  {
    readonly resolve: (hostname: string) => Effect.Effect<ReadonlyArray<DnsRecord>, DiscoveryError>
  }
>() {}

/** A DNS name to resolve into the nodes of one region. */
export interface DnsTarget {
  readonly regionId: Topology.RegionId
  readonly hostname: string
  readonly port: number
  readonly zoneId?: Topology.ZoneId
}

/** Settings of `layerDns`. */
export interface DnsOptions {
  readonly targets: ReadonlyArray<DnsTarget>
  /** URL scheme of the endpoints; defaults to `http` as in the seed document. */
  readonly scheme?: string
}

/** A Kubernetes headless service of one region: `<service>.<namespace>.svc[.<clusterDomain>]`. */
export const kubernetesHeadless = (options: {
  readonly regionId: Topology.RegionId
  readonly service: string
  readonly namespace: string
  readonly port: number
  readonly clusterDomain?: string
  readonly zoneId?: Topology.ZoneId
}): DnsTarget => ({
  regionId: options.regionId,
  hostname: [options.service, options.namespace, "svc", ...(options.clusterDomain === undefined ? [] : [options.clusterDomain])].join("."),
  port: options.port,
  ...(options.zoneId === undefined ? {} : { zoneId: options.zoneId })
})

/** A region reached over Tailscale MagicDNS: `<service>.<tailscaleDomain>` (Helm `remoteClusters`). */
export const tailscaleMagicDns = (options: {
  readonly regionId: Topology.RegionId
  readonly serviceName: string
  readonly tailscaleDomain: string
  readonly port: number
  readonly zoneId?: Topology.ZoneId
}): DnsTarget => ({
  regionId: options.regionId,
  hostname: `${options.serviceName}.${options.tailscaleDomain}`,
  port: options.port,
  ...(options.zoneId === undefined ? {} : { zoneId: options.zoneId })
})

/** A fixed list of endpoints. */
export const layerStatic = (endpoints: ReadonlyArray<DiscoveredEndpoint>): Layer.Layer<EndpointSource> =>
  Layer.succeed(EndpointSource, { discover: Effect.succeed(sortEndpoints(endpoints)) })

/**
 * Endpoints from DNS: each target name resolves to one endpoint per address. If any name
 * fails to resolve, the whole discovery fails: a partial list would make `sync` remove the
 * nodes of a region whose DNS merely blipped.
 */
export const layerDns = (options: DnsOptions): Layer.Layer<EndpointSource, never, DnsResolver> =>
  Layer.effect(
    EndpointSource,
    Effect.map(DnsResolver, (resolver) => ({
      discover: pipe(
        // Names are resolved at once (a slow name does not hold up the others); results keep their order.
        Effect.forEach(
          options.targets,
          (target) => Effect.map(resolver.resolve(target.hostname), (records) => endpointsOf(target, records, options.scheme ?? "http")),
          { concurrency: "unbounded" }
        ),
        Effect.map((perTarget) => sortEndpoints(perTarget.flat()))
      )
    }))
  )

/** Settings for building a topology from discovery. */
export interface TopologyConfig {
  readonly localRegion: Topology.RegionId
  readonly strategy: Topology.ReplicationStrategy
  /** Zone of endpoints that do not name one. */
  readonly defaultZone: Topology.ZoneId
  /** Required under PrimaryReplica: discovery cannot know which region is primary. */
  readonly primaryRegion?: Topology.RegionId
  /** Lower = higher priority. Regions not listed get their position (sorted by id) plus one. */
  readonly failoverPriorities?: Readonly<Record<Topology.RegionId, number>>
  /** MultiMaster vault placements. */
  readonly vaults?: ReadonlyArray<Topology.VaultPlacement>
}

/**
 * A validated topology from discovered endpoints: regions, zones and nodes sorted by id,
 * every region replicating to every other (full mesh). Node status is the reported health,
 * or Healthy when none is reported.
 */
export const buildTopology = (
  config: TopologyConfig,
  endpoints: ReadonlyArray<DiscoveredEndpoint>
): Either.Either<Topology.Topology, TopologyBuilder.TopologyError> => {
  const zoned = sortEndpoints(endpoints.map((endpoint) => ({ ...endpoint, zoneId: zoneOf(endpoint, config.defaultZone) })))
  const regionIds = unique(zoned.map((endpoint) => endpoint.regionId))
  const withRegions = regionIds.reduce(
    (builder, regionId) => addDiscoveredRegion(builder, config, regionId, zoned.filter((endpoint) => endpoint.regionId === regionId)),
    TopologyBuilder.make(config.strategy, config.localRegion)
  )
  const meshed = Object.entries(TopologyBuilder.fullMesh(regionIds)).reduce(
    (builder, [source, targets]) => TopologyBuilder.setReplicationTargets(builder, source, targets),
    withRegions
  )
  return TopologyBuilder.build((config.vaults ?? []).reduce((builder, placement) => TopologyBuilder.addVault(builder, placement), meshed))
}

/** Adds one region with its zones and nodes (endpoints already sorted and zoned). */
const addDiscoveredRegion = (
  builder: TopologyBuilder.TopologyBuilder,
  config: TopologyConfig,
  regionId: Topology.RegionId,
  endpoints: ReadonlyArray<DiscoveredEndpoint>
): TopologyBuilder.TopologyBuilder => {
  const priority = config.failoverPriorities?.[regionId]
  const region = TopologyBuilder.addRegion(builder, {
    id: regionId,
    name: regionId,
    isPrimary: regionId === config.primaryRegion,
    ...(priority === undefined ? {} : { failoverPriority: priority })
  })
  return endpoints.reduce((current, endpoint) => {
    const zoneId = zoneOf(endpoint, config.defaultZone)
    const withZone = Topology.findRegion(current, regionId)?.zones.some((zone) => zone.id === zoneId)
      ? current
      : TopologyBuilder.addZone(current, regionId, { id: zoneId })
    const node = { id: endpoint.nodeId, endpoint: endpoint.endpoint, status: endpoint.health ?? "Healthy" } as const
    return TopologyBuilder.addNode(withZone, regionId, zoneId, node)
  }, region)
}

/** What one `sync` changed, each list sorted by region, zone and node id. */
export interface SyncSummary {
  readonly added: ReadonlyArray<TopologyManager.NodeRef>
  readonly removed: ReadonlyArray<TopologyManager.NodeRef>
  readonly statusChanged: ReadonlyArray<TopologyManager.NodeRef>
}

/** Settings of `sync`. */
export interface SyncOptions {
  /** Zone of endpoints that do not name one. */
  readonly defaultZone: Topology.ZoneId
  /** Priorities for regions that discovery creates; otherwise one past the largest in use. */
  readonly failoverPriorities?: Readonly<Record<Topology.RegionId, number>>
}

/**
 * Brings the running topology in line with a fresh endpoint list: nodes that appeared are
 * added (creating their region, fully meshed, or zone when needed), nodes that vanished or
 * moved (other zone or endpoint) are removed, and reported health is applied as an explicit
 * status. Regions and zones left empty are kept: removing a region changes replication and
 * residency, which is an operator's decision, and an empty region is simply unavailable.
 *
 * Each step is one manager change; a step that fails stops the sync with the error (the
 * next sync starts over from the then-current topology). New nodes whose id and endpoint are
 * free are added before vanished nodes are removed, so a rolling replacement does not leave
 * a region momentarily empty.
 *
 * Reported health overrides heartbeat bookkeeping (see `TopologyManager.updateNodeStatus`);
 * DNS reports no health, so with `layerDns` heartbeats alone decide liveness.
 */
export const sync = (
  endpoints: ReadonlyArray<DiscoveredEndpoint>,
  options: SyncOptions
): Effect.Effect<SyncSummary, DiscoveryError | TopologyManager.TopologyManagerError, TopologyManager.TopologyManager> =>
  Effect.gen(function* () {
    const manager = yield* TopologyManager.TopologyManager
    const plan = yield* planSync(yield* manager.current, endpoints, options.defaultZone)
    const clashes = (entry: Entry) => plan.remove.some((gone) => gone.nodeId === entry.nodeId || gone.endpoint === entry.endpoint)
    for (const entry of plan.add.filter((entry) => !clashes(entry))) yield* addEntry(manager, entry, options)
    for (const entry of plan.remove) yield* manager.removeNode(entry.regionId, entry.zoneId, entry.nodeId)
    for (const entry of plan.add.filter(clashes)) yield* addEntry(manager, entry, options)
    for (const entry of plan.status) yield* manager.updateNodeStatus(entry.regionId, entry.zoneId, entry.nodeId, entry.status)
    return { added: plan.add.map(refOf), removed: plan.remove.map(refOf), statusChanged: plan.status.map(refOf) }
  })

/**
 * One round now, outside the loop: discover and sync, or keep the topology on a failure; true
 * when the round worked. A node that is asked to stop runs one before its drain: it drains to
 * the siblings it knows, and one that started after its last round (a round may be
 * `discovery.interval_ms` away) would be left without the changes that only the stopping node
 * holds. After a failed round the drain knows no more than before, so it tries again
 * (`Drain.run`).
 */
export const roundNow = (options: SyncOptions): Effect.Effect<boolean, never, EndpointSource | TopologyManager.TopologyManager> =>
  Effect.flatMap(EndpointSource, (source) => Effect.flatMap(source.discover, (endpoints) => sync(endpoints, options))).pipe(
    Effect.as(true),
    Effect.catchAll((error) => Effect.as(Effect.logWarning(`discovery round before the drain failed; the drain is not complete until one works: ${error.message}`), false))
  )

/** Counters of the `runSync` loop. */
export interface SyncStats {
  readonly rounds: number
  readonly failures: number
  readonly lastError: string | undefined
}

/** Settings of `runSync`. */
export interface RunSyncOptions extends SyncOptions {
  /** Where the loop counts rounds and failures; a private counter when absent. */
  readonly stats?: Ref.Ref<SyncStats>
}

/** Zero counters. */
export const emptyStats: SyncStats = { rounds: 0, failures: 0, lastError: undefined }

/**
 * Discovers and syncs now and then every `intervalMs`, forever; fork it. A failed round is
 * counted, and the topology keeps its last good state until a later round works. Logs say
 * each thing once: every round that changed the topology (what it added and removed), the
 * first failure of a streak (warning) and the round that ends it.
 */
export const runSync = (
  intervalMs: number,
  options: RunSyncOptions
): Effect.Effect<never, never, EndpointSource | TopologyManager.TopologyManager> =>
  Effect.gen(function* () {
    const source = yield* EndpointSource
    const stats = options.stats ?? (yield* Ref.make(emptyStats))
    const failing = yield* Ref.make(false)
    const round = pipe(
      Effect.flatMap(source.discover, (endpoints) => sync(endpoints, options)),
      Effect.tap((summary) =>
        Effect.zipRight(
          Effect.flatMap(Ref.getAndSet(failing, false), (wasFailing) => (wasFailing ? Effect.logInfo("discovery recovered: a sync round works again") : Effect.void)),
          Effect.suspend(() => {
            const changed = describeSummary(summary)
            return changed === undefined ? Effect.void : Effect.logInfo(`discovery: ${changed}`)
          })
        )
      ),
      Effect.zipRight(Ref.update(stats, (current) => ({ ...current, rounds: current.rounds + 1 }))),
      Effect.catchAll((error) =>
        Effect.zipRight(
          Effect.flatMap(Ref.getAndSet(failing, true), (wasFailing) =>
            wasFailing ? Effect.void : Effect.logWarning(`discovery sync failed; keeping the current topology until a round works: ${error.message}`)
          ),
          Ref.update(stats, (current) => ({ rounds: current.rounds + 1, failures: current.failures + 1, lastError: error.message }))
        )
      )
    )
    const manager = yield* TopologyManager.TopologyManager
    // Until the next round, or until a node this node does not know asks it for a heartbeat,
    // then at least `strangerRoundGapMs` after the round.
    const pause = Effect.flatMap(manager.strangerAsked, (asked) =>
      Effect.zipRight(asked.awaitWithin(intervalMs), Effect.suspend(() => (asked.isOpen ? Effect.sleep(Duration.millis(Math.min(intervalMs, strangerRoundGapMs))) : Effect.void)))
    )
    return yield* Handoff.repeat(Effect.zipRight(round, pause))
  })

/**
 * The least time between a round and one a stranger's heartbeat request cued (see `runSync`).
 * Every node asks every node it knows each heartbeat interval, so a node that started after this
 * node's last round asks it within an interval; without the cue the two met only at this node's
 * next round, which is `discovery.interval_ms` away (10 s by default). Meanwhile this node counted
 * the newcomer's region as one with no node that answers: three-region PrimaryReplica seeds whose
 * nodes started over 1.5 s with rounds 11.8 s apart held no write lease until the second round
 * (swarm seed 99027438). The gap bounds the DNS lookups a node that never appears in DNS causes.
 */
export const strangerRoundGapMs = 1_000

/** How long a start waits for the first round by default (`serve`'s `DiscoveryLoop`, the simulator). */
export const firstRoundWaitMsDefault = 15_000

/**
 * Forks `runSync` into the scope and waits until its first round finished (worked or failed) or
 * `firstRoundWaitMs` passed; returns the loop's counters. A node runs it before its engine, so
 * that a bootstrap already sees the peers the first round found (`serve` under `discovery.mode:
 * dns`, and the simulator's `discovery:` scenarios, over the same code).
 */
export const start = (
  intervalMs: number,
  options: SyncOptions & { readonly firstRoundWaitMs: number }
): Effect.Effect<Ref.Ref<SyncStats>, never, Scope.Scope | EndpointSource | TopologyManager.TopologyManager> =>
  Effect.gen(function* () {
    const stats = yield* SubscriptionRef.make(emptyStats)
    const firstRound = stats.changes.pipe(
      Stream.filter((current) => current.rounds > 0),
      Stream.take(1),
      Stream.runDrain
    )
    yield* Effect.forkScoped(runSync(intervalMs, { ...options, stats }))
    // `changes` starts with the current value, so a round that finished already is seen too.
    yield* firstRound.pipe(Effect.timeout(Duration.millis(options.firstRoundWaitMs)), Effect.ignore)
    return stats
  })

/** What a sync changed, for a log line; undefined when it changed nothing. */
export const describeSummary = (summary: SyncSummary): string | undefined => {
  const nodes = (refs: ReadonlyArray<TopologyManager.NodeRef>) => refs.map((ref) => `${ref.nodeId} (zone ${ref.zoneId})`).join(", ")
  const parts = [
    ...(summary.added.length === 0 ? [] : [`added ${nodes(summary.added)}`]),
    ...(summary.removed.length === 0 ? [] : [`removed ${nodes(summary.removed)}`]),
    ...(summary.statusChanged.length === 0 ? [] : [`status of ${nodes(summary.statusChanged)} as reported`])
  ]
  return parts.length === 0 ? undefined : parts.join("; ")
}

// ---------------------------------------------------------------------------------------
// Pure helpers

/** A node as discovery wants it, with its zone resolved. */
interface Entry extends TopologyManager.NodeRef {
  readonly endpoint: string
  readonly health: Topology.NodeStatus | undefined
}

interface SyncPlan {
  readonly add: ReadonlyArray<Entry>
  readonly remove: ReadonlyArray<Entry>
  readonly status: ReadonlyArray<Entry & { readonly status: Topology.NodeStatus }>
}

/** The changes that take `topology` to the discovered node set. */
const planSync = (
  topology: Topology.Topology,
  endpoints: ReadonlyArray<DiscoveredEndpoint>,
  defaultZone: Topology.ZoneId
): Either.Either<SyncPlan, DiscoveryError> => {
  const wanted = sortEntries(
    endpoints.map((endpoint) => ({
      regionId: endpoint.regionId,
      zoneId: zoneOf(endpoint, defaultZone),
      nodeId: endpoint.nodeId,
      endpoint: endpoint.endpoint,
      health: endpoint.health
    }))
  )
  const duplicate = wanted.find((entry, index) => wanted.findIndex((other) => other.nodeId === entry.nodeId) !== index)
  if (duplicate !== undefined) {
    return Either.left(new DiscoveryError({ regionId: duplicate.regionId, message: `discovery reported node '${duplicate.nodeId}' more than once` }))
  }
  const existing = sortEntries(currentEntries(topology))
  const same = (a: Entry) => (b: Entry) => a.regionId === b.regionId && a.zoneId === b.zoneId && a.nodeId === b.nodeId && a.endpoint === b.endpoint
  const kept = existing.flatMap((entry) => {
    const match = wanted.find(same(entry))
    return match === undefined ? [] : [{ ...entry, reported: match.health }]
  })
  return Either.right({
    add: wanted.filter((entry) => !existing.some(same(entry))),
    remove: existing.filter((entry) => !wanted.some(same(entry))),
    status: kept.flatMap((entry) => (entry.reported === undefined || entry.reported === entry.health ? [] : [{ ...entry, status: entry.reported }]))
  })
}

/** Adds a node, creating its region (fully meshed) or zone when they do not exist yet. */
const addEntry = (
  manager: TopologyManager.TopologyManager["Type"],
  entry: Entry,
  options: SyncOptions
): Effect.Effect<void, TopologyManager.TopologyManagerError> =>
  Effect.gen(function* () {
    const topology = yield* manager.current
    const node: Topology.Node = { id: entry.nodeId, endpoint: entry.endpoint, status: entry.health ?? "Healthy" }
    const zone: Topology.Zone = { id: entry.zoneId, name: entry.zoneId, nodes: [node] }
    const region = Topology.findRegion(topology, entry.regionId)
    if (region === undefined) {
      const others = topology.regions.map((existing) => existing.id)
      const nextPriority = Math.max(0, ...topology.regions.map((existing) => existing.failoverPriority)) + 1
      const failoverPriority = options.failoverPriorities?.[entry.regionId] ?? nextPriority
      const added: Topology.Region = { id: entry.regionId, name: entry.regionId, isPrimary: false, failoverPriority, zones: [zone] }
      return yield* manager.addRegion(added, { targets: others, sources: others })
    }
    if (!region.zones.some((existing) => existing.id === entry.zoneId)) return yield* manager.addZone(entry.regionId, zone)
    return yield* manager.addNode(entry.regionId, entry.zoneId, node)
  })

/** The nodes of the topology as entries; `health` holds the current status. */
const currentEntries = (topology: Topology.Topology): ReadonlyArray<Entry> =>
  topology.regions.flatMap((region) =>
    region.zones.flatMap((zone) =>
      zone.nodes.map((node) => ({ regionId: region.id, zoneId: zone.id, nodeId: node.id, endpoint: node.endpoint, health: node.status }))
    )
  )

/** One endpoint per distinct node id among the answers for a target. */
const endpointsOf = (target: DnsTarget, records: ReadonlyArray<DnsRecord>, scheme: string): ReadonlyArray<DiscoveredEndpoint> => {
  const endpoints = records.map((record) => ({
    endpoint: `${scheme}://${hostForUrl(record.hostname ?? record.address)}:${target.port}`,
    regionId: target.regionId,
    nodeId: `${target.regionId}/${nodeLabel(record)}`,
    ...(target.zoneId === undefined ? {} : { zoneId: target.zoneId })
  }))
  // A resolver may repeat an answer (several record types for one pod); keep the first.
  return endpoints.filter((endpoint, index) => endpoints.findIndex((other) => other.nodeId === endpoint.nodeId) === index)
}

const nodeLabel = (record: DnsRecord): string =>
  record.hostname === undefined ? record.address.replace(/[.:]/g, "-") : (record.hostname.split(".")[0] ?? record.hostname)

// IPv6 literals need brackets inside a URL.
const hostForUrl = (host: string): string => (host.includes(":") ? `[${host}]` : host)

const zoneOf = (endpoint: DiscoveredEndpoint, defaultZone: Topology.ZoneId): Topology.ZoneId => endpoint.zoneId ?? defaultZone

const refOf = (entry: Entry): TopologyManager.NodeRef => ({ regionId: entry.regionId, zoneId: entry.zoneId, nodeId: entry.nodeId })

const unique = <A>(values: ReadonlyArray<A>): ReadonlyArray<A> => values.filter((value, index) => values.indexOf(value) === index)

// Plain code-unit order, independent of the machine's locale.
const compareIds = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0)

const byLocation = (a: { regionId: string; zoneId?: string; nodeId: string }, b: { regionId: string; zoneId?: string; nodeId: string }): number =>
  compareIds(a.regionId, b.regionId) || compareIds(a.zoneId ?? "", b.zoneId ?? "") || compareIds(a.nodeId, b.nodeId)

const sortEndpoints = (endpoints: ReadonlyArray<DiscoveredEndpoint>): ReadonlyArray<DiscoveredEndpoint> => [...endpoints].sort(byLocation)

const sortEntries = <A extends Entry>(entries: ReadonlyArray<A>): ReadonlyArray<A> => [...entries].sort(byLocation)
