/**
 * Swarm testing: every setting of a run drawn from one seed (the FoundationDB and TigerBeetle
 * VOPR way of finding the configurations nobody thought to write down). `swarmScenario(seed)`
 * is a pure function from a seed to a plain `Scenario`: region count, strategy with vault
 * placements and residency sets, conflict resolution, clock mode and clock errors, network
 * latency, loss and duplication, replication graph, agent and failover settings, workload size
 * and hotness, and a fault schedule mixing every kind of fault (replication-graph changes from
 * their own stream, `topology-faults`, so adding them left every other draw of a seed as it was). `swarmFrom(base, seed)` keeps a
 * scenario file's settings and draws only its clocks and faults.
 *
 * Each part is drawn from its own stream derived from `swarm` (`topology`, `replication`,
 * `network`, `workload`, `clocks`, `faults`), so changing how one part is drawn does not shift
 * the others. The run itself uses the same seed, whose streams (`network`, `workload`, ...)
 * are derived from the master seed under other names, so the draw and the run stay independent.
 *
 * Drawn scenarios are valid by construction (every fault names a declared region or node, a
 * vault's residency set is strongly connected in the replication graph, request timeouts exceed
 * round trips) and end healed within their budget, so a failure is the code's, not the draw's.
 * This module only draws and runs; writing files and printing belong to the command line.
 */
import * as Discovery from "../replication/Discovery.js"
import * as Drain from "../replication/Drain.js"
import * as Random from "../replication/Random.js"
import type * as ConflictResolver from "../replication/ConflictResolver.js"
import type * as Topology from "../replication/Topology.js"
import type * as Codec from "./Codec.js"
import { Either } from "effect"
import * as FaultWindows from "./FaultWindows.js"
import { endOf, enderOf, hitsRegion } from "./Faults.js"
import { stopTimings } from "./Node.js"
import { type RunOptions, type RunResult, runScenario } from "./Run.js"
import {
  type ClockSpec,
  type Fault,
  type RegionSpec,
  type ReplicationSpec,
  type Scenario,
  type TopologySpec,
  type WorkloadSpec,
  defaultChecks,
  defaults,
  nodesOf,
  primaryOf,
  slowestHeartbeat,
  targetNodes,
  validate
} from "./Scenario.js"
import * as SimNetwork from "./SimNetwork.js"
import * as Startup from "./Startup.js"
import * as TopologyFaults from "./TopologyFaults.js"
import { TraceHash } from "./TraceHash.js"

// ---------------------------------------------------------------------------------------------
// Bounds of what is drawn
// ---------------------------------------------------------------------------------------------

const regionIdsAll = ["us-west-1", "eu-central-1", "ap-southeast-1", "us-east-1", "sa-east-1"] as const
const vaultIdsAll = ["acme", "globex", "initech", "umbrella"] as const
const regionCountMin = 2
const regionCountMax = 5
/** Fault episodes (a fault and its end) per scenario at most. */
const episodesMax = 8
/** Writes per second across all client regions at most, so one seed stays around a second of wall time. */
const writesPerSecTotalMax = 36
/** Simulated time after the heal in which every region must converge (more under PrimaryReplica, see `settleMs`). */
const convergenceAllowanceMs = 30_000
/**
 * Share of seeds whose messages travel as protobuf bytes rather than frozen objects, so whole
 * drawn runs keep exercising the wire codec (see `Codec.ts`) at a fraction of its cost.
 */
const wireBytesShare = 0.25

/**
 * The least share of writes a drawn run must acknowledge among those offered outside the
 * windows in which the documented rules allow refusals (`FaultWindows.ts`, plus a grace). Without
 * a floor, `progress` failed a run only when none was acknowledged, and a primary that refused
 * writes for seconds after the cluster started, with no fault to explain it, passed 1,000 seeds.
 */
const swarmMinAvailability = 0.8

// ---------------------------------------------------------------------------------------------
// Drawing helpers
// ---------------------------------------------------------------------------------------------

type Stream = Random.Stream

const intBetween = (random: Stream, min: number, max: number): number => min + random.int(max - min + 1)

/** A multiple of `step` in [min, max]. */
const stepBetween = (random: Stream, min: number, max: number, step: number): number => intBetween(random, Math.ceil(min / step), Math.floor(max / step)) * step

const chance = (random: Stream, probability: number): boolean => random.next() < probability

const pick = <A>(random: Stream, items: ReadonlyArray<A>): A => items[random.int(items.length)]!

const weighted = <A>(random: Stream, entries: ReadonlyArray<readonly [A, number]>): A => {
  const total = entries.reduce((sum, [, weight]) => sum + weight, 0)
  let draw = random.next() * total
  for (const [value, weight] of entries) {
    draw -= weight
    if (draw < 0) return value
  }
  return entries[entries.length - 1]![0]
}

const shuffle = <A>(random: Stream, items: ReadonlyArray<A>): Array<A> => {
  const out = [...items]
  for (let index = out.length - 1; index > 0; index--) {
    const other = random.int(index + 1)
    ;[out[index], out[other]] = [out[other]!, out[index]!]
  }
  return out
}

/** A probability with three decimals, at most `max`. */
const probability = (random: Stream, max: number): number => Math.round(random.next() * max * 1000) / 1000

/** A non-empty subset, in the original order. */
const someOf = <A>(random: Stream, items: ReadonlyArray<A>): Array<A> => {
  const chosen = items.filter(() => chance(random, 0.5))
  return chosen.length > 0 ? chosen : [pick(random, items)]
}

// ---------------------------------------------------------------------------------------------
// Topology
// ---------------------------------------------------------------------------------------------

type Targets = Record<string, Array<string>>

const ring = (order: ReadonlyArray<string>): Targets => Object.fromEntries(order.map((region, index) => [region, [order[(index + 1) % order.length]!]]))

const addEdge = (targets: Targets, from: string, to: string): void => {
  const list = (targets[from] ??= [])
  if (from !== to && !list.includes(to)) list.push(to)
}

/** A replication graph over the regions; absent = full mesh. Every drawn graph is strongly connected. */
const drawGraph = (random: Stream, regionIds: ReadonlyArray<string>): { readonly name: string; readonly targets: Targets | undefined } => {
  if (regionIds.length < 3) return { name: "full mesh", targets: undefined }
  const shape = weighted(random, [["full mesh", 5], ["ring", 2], ["star", 2], ["ring with chords", 1]] as const)
  const order = shuffle(random, regionIds)
  switch (shape) {
    case "full mesh":
      return { name: shape, targets: undefined }
    case "ring":
      return { name: shape, targets: ring(order) }
    case "star": {
      const [hub, ...leaves] = order as [string, ...Array<string>]
      return { name: `star around ${hub}`, targets: { [hub]: leaves, ...Object.fromEntries(leaves.map((leaf) => [leaf, [hub]])) } }
    }
    case "ring with chords": {
      const targets = ring(order)
      for (const from of regionIds) for (const to of regionIds) if (chance(random, 0.3)) addEdge(targets, from, to)
      return { name: shape, targets }
    }
  }
}

/** MultiMaster placements: a home region each, and half of them a residency set that includes it. */
const drawVaults = (random: Stream, regionIds: ReadonlyArray<string>): Array<Topology.VaultPlacement> =>
  vaultIdsAll.slice(0, intBetween(random, 1, vaultIdsAll.length)).map((vault) => {
    const homeRegion = pick(random, regionIds)
    if (chance(random, 0.5)) return { vault, homeRegion }
    const allowedRegions = regionIds.filter((region) => region === homeRegion || chance(random, 0.4))
    return { vault, homeRegion, allowedRegions }
  })

/**
 * Changes of a vault travel only through regions that may hold it (see `Relay.ts`), so every
 * residency set must be strongly connected on its own: a ring through its regions is added.
 */
const connectResidencySets = (targets: Targets, vaults: ReadonlyArray<Topology.VaultPlacement>): void => {
  for (const vault of vaults) {
    const allowed = vault.allowedRegions ?? []
    if (allowed.length < 2) continue
    allowed.forEach((region, index) => addEdge(targets, region, allowed[(index + 1) % allowed.length]!))
  }
}

const drawTopology = (random: Stream): { readonly spec: TopologySpec; readonly graph: string } => {
  const regionIds = regionIdsAll.slice(0, intBetween(random, regionCountMin, regionCountMax))
  const strategy = weighted(random, [["ActiveActive", 4], ["PrimaryReplica", 3], ["MultiMaster", 3]] as const)
  const priorities = shuffle(random, regionIds.map((_, index) => index + 1))
  const regions: Array<RegionSpec> = regionIds.map((id, index) => {
    const nodeCount = weighted(random, [[1, 6], [2, 3], [3, 1]] as const)
    return {
      id,
      priority: priorities[index]!,
      primary: strategy === "PrimaryReplica" && priorities[index] === 1,
      nodes: Array.from({ length: nodeCount }, (_, position) => `${id}-node${position + 1}`)
    }
  })
  const graph = drawGraph(random, regionIds)
  const vaults = strategy === "MultiMaster" ? drawVaults(random, regionIds) : []
  if (graph.targets !== undefined) connectResidencySets(graph.targets, vaults)
  return { spec: { strategy, regions, targets: graph.targets, vaults }, graph: graph.name }
}

// ---------------------------------------------------------------------------------------------
// Replication settings, network, workload
// ---------------------------------------------------------------------------------------------

const drawLatency = (random: Stream, slowdown: number): SimNetwork.Latency => {
  const kind = weighted(random, [["fixed", 2], ["uniform", 5], ["normal", 3]] as const)
  if (kind === "fixed") return { kind, ms: stepBetween(random, 5, 150, 5) * slowdown }
  if (kind === "uniform") {
    const minMs = stepBetween(random, 5, 80, 5) * slowdown
    return { kind, minMs, maxMs: minMs + stepBetween(random, 5, 150, 5) * slowdown }
  }
  return { kind, meanMs: stepBetween(random, 20, 150, 5) * slowdown, stddevMs: stepBetween(random, 5, 50, 5), minMs: 5 }
}

const drawLink = (random: Stream, slowdown: number): SimNetwork.Link => ({
  latency: drawLatency(random, slowdown),
  loss: chance(random, 0.4) ? 0 : probability(random, 0.05),
  duplicate: chance(random, 0.5) ? 0 : probability(random, 0.05)
})

const drawNetwork = (random: Stream, regionIds: ReadonlyArray<string>): SimNetwork.Settings => {
  const remote = drawLink(random, 1)
  const pairs = shuffle(random, regionIds.flatMap((from) => regionIds.filter((to) => to !== from).map((to) => [from, to] as const)))
  const links: Array<SimNetwork.Settings["links"][number]> = []
  const overridden = (from: string, to: string) => links.some((entry) => entry.from === from && entry.to === to)
  // A few slower, lossier directed links (some both ways), each pair overridden once.
  for (const [from, to] of pairs.slice(0, intBetween(random, 0, 2))) {
    if (overridden(from, to)) continue
    const link = drawLink(random, 2)
    links.push({ from, to, link })
    if (chance(random, 0.5) && !overridden(to, from)) links.push({ from: to, to: from, link })
  }
  return { remote, local: defaults.local, links }
}

/** Share of seeds whose heartbeat timeout (the write lease) is 10-30 intervals rather than 3-6. */
const longLeaseChance = 0.2

/**
 * The heartbeat interval and timeout: 200-1,000 ms apart with a timeout of 3-6 intervals, or on
 * a share of seeds (a stream of their own, `longRandom`, so the other draws of a seed stay as
 * they were) 200-300 ms apart with a timeout of 10-30 intervals (2-9 s). The shipped defaults
 * are 1 s and 30 s: a lease of thirty rounds, which no seed ran with before (December 3, 2026).
 */
const drawHeartbeat = (random: Stream, longRandom: Stream): { readonly intervalMs: number; readonly timeoutMs: number } => {
  const intervalMs = stepBetween(random, 200, 1_000, 50)
  const timeoutMs = intervalMs * intBetween(random, 3, 6)
  if (!chance(longRandom, longLeaseChance)) return { intervalMs, timeoutMs }
  const longIntervalMs = stepBetween(longRandom, 200, 300, 50)
  return { intervalMs: longIntervalMs, timeoutMs: longIntervalMs * intBetween(longRandom, 10, 30) }
}

/** Share of seeds in the middle of a rolling update of the heartbeat timeout: some nodes run another one. */
const mixedHeartbeatChance = 0.15

/**
 * Mixed heartbeat timeouts (from a stream of their own, `random`, so the other draws of a seed
 * stay as they were): on a share of seeds one region, or one node, runs a timeout (its write
 * lease) half, twice or three times the others', as nodes do while a rolling update changes
 * `heartbeat.timeout_ms`. Until December 3, 2026 every node ran the same settings, and a region
 * taking over waited out only its own lease (`three-region-mixed-lease.yaml`).
 */
const withMixedHeartbeats = (replication: ReplicationSpec, random: Stream, topology: TopologySpec): ReplicationSpec => {
  if (!chance(random, mixedHeartbeatChance)) return replication
  const { intervalMs, timeoutMs } = replication.heartbeat
  const region = pick(random, topology.regions)
  const target = region.nodes.length > 1 && chance(random, 0.5) ? pick(random, region.nodes) : region.id
  const factor = pick(random, [0.5, 2, 3])
  const otherTimeoutMs = Math.max(3 * intervalMs, Math.round((timeoutMs * factor) / 50) * 50)
  return otherTimeoutMs === timeoutMs ? replication : { ...replication, heartbeatOverrides: { [target]: { timeoutMs: otherTimeoutMs } } }
}

/** Share of seeds that run other than the default agent window, catch-up batch size and per-endpoint request bound. */
const windowsChance = 0.3

/**
 * On a share of seeds (a stream of their own, so every other draw of a seed stays as it was):
 * the agent's `batches_in_flight_max` and `catch_up_batch_size`, and the nodes' bound on
 * requests in flight per endpoint (`grpc.max_in_flight_per_target`), all operator settings
 * `serve` takes. Until December 3, 2026 every seed ran the defaults (4 batches, ten batches'
 * worth, 8 requests), so no seed had batches wait for a permit behind a window wider than the
 * bound; on real processes a window of 16 stopped replication for good there (`GrpcNetwork`).
 */
const withWindows = (random: Stream, replication: ReplicationSpec, network: SimNetwork.Settings): { readonly replication: ReplicationSpec; readonly network: SimNetwork.Settings } => {
  if (!chance(random, windowsChance)) return { replication, network }
  const { batchSize } = replication.agent
  const agent = {
    ...replication.agent,
    batchesInFlightMax: pick(random, [1, 2, 8, 16, 32]),
    ...(chance(random, 0.5) ? { catchUpBatchSize: batchSize * pick(random, [1, 3, 20]) } : {})
  }
  return { replication: { ...replication, agent }, network: { ...network, inFlightPerTargetMax: pick(random, [1, 2, 4, 8]) } }
}

/** Share of drawn seeds whose nodes bound messages far below the default (`withMessageBound`). */
const messageBoundChance = 0.15

/**
 * On a share of seeds (a stream of its own): a message bound (`grpc.max_message_bytes`, an
 * operator setting `serve` takes, 1 KiB or more) small enough that ordinary and catch-up batches
 * and CatchUp pages are above it, yet every single change fits. Until December 3, 2026 the
 * simulator bounded no message, and a batch above the bound was retried as it was forever.
 */
const withMessageBound = (random: Stream, network: SimNetwork.Settings): SimNetwork.Settings =>
  chance(random, messageBoundChance) ? { ...network, messageBytesMax: pick(random, [2_048, 4_096, 16_384, 65_536]) } : network

const drawReplication = (random: Stream, regionIds: ReadonlyArray<string>, network: SimNetwork.Settings): ReplicationSpec => {
  const conflictResolution = weighted<ConflictResolver.Strategy>(random, [["LastWriteWins", 6], ["SourcePriority", 2], ["InsertWins", 2]])
  const { intervalMs, timeoutMs: heartbeatTimeoutMs } = drawHeartbeat(random, random.derive("heartbeat-long"))
  const slowestMs = SimNetwork.slowestOneWayMs(network)
  return {
    conflictResolution,
    regionPriorities: conflictResolution === "SourcePriority" ? shuffle(random, regionIds) : [],
    clock: chance(random, 0.6) ? "hlc" : "wall",
    agent: {
      batchSize: pick(random, [5, 10, 20, 50, 100]),
      flushDelayMs: intBetween(random, 0, 50),
      retryDelayMs: stepBetween(random, 20, 100, 10),
      retryDelayMaxMs: stepBetween(random, 500, 2_000, 100),
      maxRetries: intBetween(random, 2, 8),
      // A request must outlive a round trip over the slowest link plus the slowest drawn commit.
      requestTimeoutMs: Math.max(stepBetween(random, 300, 1_500, 100), Math.ceil((4 * slowestMs + 400) / 100) * 100)
    },
    bufferSize: pick(random, [20, 100, 1_000]),
    heartbeat: { intervalMs, timeoutMs: heartbeatTimeoutMs, recoverAfter: intBetween(random, 2, 4) },
    failover: {
      detectAfterMs: stepBetween(random, 1_000, 4_000, 250),
      promoteBackAfterMs: stepBetween(random, 2_000, 6_000, 500),
      fenceAfterMs: 0,
      confirmAfterMs: stepBetween(random, 3_000, 12_000, 1_000),
      checkIntervalMs: pick(random, [100, 250, 500])
    }
  }
}

const drawWorkload = (random: Stream, topology: TopologySpec): WorkloadSpec => {
  const deadlines = random.derive("deadlines")
  const regionIds = topology.regions.map((region) => region.id)
  const regions = chance(random, 0.8) ? regionIds : someOf(random, regionIds)
  const tuples = intBetween(random, 5, 60)
  return {
    startMs: stepBetween(random, 200, 1_000, 50),
    durationMs: stepBetween(random, 2_000, 8_000, 100),
    ratePerSec: intBetween(random, 2, Math.max(3, Math.floor(writesPerSecTotalMax / regions.length))),
    regions,
    vaults: topology.vaults.length > 0 ? topology.vaults.map((vault) => vault.vault) : vaultIdsAll.slice(0, intBetween(random, 1, 2)),
    resourceTypes: defaults.workload.resourceTypes,
    relations: defaults.workload.relations,
    tuples,
    hotTuples: intBetween(random, 0, Math.min(5, tuples)),
    hotFraction: stepBetween(random, 0, 80, 5) / 100,
    deleteFraction: stepBetween(random, 0, 60, 5) / 100,
    opsPerWriteMax: intBetween(random, 1, 4),
    // Clients that give up while the server may still be working (a stalled or paused node).
    ...(chance(deadlines, 0.3) ? { deadlineMs: stepBetween(deadlines, 100, 2_000, 50) } : {})
  }
}

// ---------------------------------------------------------------------------------------------
// Clocks and faults (also drawn for a scenario file with `swarmFrom`)
// ---------------------------------------------------------------------------------------------

const symmetric = (spread: number): ClockSpec["offsetMs"] => ({ min: spread === 0 ? 0 : -spread, max: spread })

const drawClocks = (random: Stream, scenario: Scenario): Scenario["clocks"] => {
  const offsetSpreadMs = pick(random, [0, 10, 50, 200, 500])
  const driftSpreadPpm = pick(random, [0, 50, 200, 500])
  const nodes: Record<string, Partial<ClockSpec>> = {}
  for (const { nodeId } of nodesOf(scenario)) {
    if (!chance(random, 0.15)) continue
    const offsetMs = stepBetween(random, 100, 1_000, 10) * (chance(random, 0.5) ? -1 : 1)
    nodes[nodeId] = { offsetMs: { min: offsetMs, max: offsetMs } }
  }
  return { default: { offsetMs: symmetric(offsetSpreadMs), driftPpm: symmetric(driftSpreadPpm) }, nodes }
}

/** Splits regions into `count` non-empty groups (fewer when there are fewer regions). */
const groupsOf = (random: Stream, regionIds: ReadonlyArray<string>, count: number): Array<Array<string>> => {
  const order = shuffle(random, regionIds)
  const groups: Array<Array<string>> = Array.from({ length: Math.min(count, order.length) }, () => [])
  order.forEach((region, index) => groups[index < groups.length ? index : random.int(groups.length)]!.push(region))
  return groups
}

type EpisodeKind = "isolate" | "split" | "one_way" | "bridge" | "crash" | "pause" | "store" | "clock_jump" | "wipe"

/** One fault and, for most kinds, the fault that ends it `durationMs` later. */
const drawEpisode = (random: Stream, scenario: Scenario, kind: EpisodeKind, atMs: number): ReadonlyArray<Fault> => {
  const regionIds = scenario.topology.regions.map((region) => region.id)
  const nodeIds = nodesOf(scenario).map((node) => node.nodeId)
  const endMs = atMs + stepBetween(random, 200, 5_000, 10)
  const target = () => (chance(random, 0.6) ? pick(random, nodeIds) : pick(random, regionIds))
  const healed: Fault = { atMs: endMs, kind: "heal" }
  switch (kind) {
    case "isolate":
      return [{ atMs, kind, region: pick(random, regionIds) }, healed]
    case "split":
      return [{ atMs, kind, groups: groupsOf(random, regionIds, chance(random, 0.7) ? 2 : 3) }, healed]
    case "one_way": {
      const [from, to] = shuffle(random, regionIds) as [string, string]
      return [{ atMs, kind, from, to }, healed]
    }
    case "bridge":
      return [{ atMs, kind, node: pick(random, nodeIds), groups: groupsOf(random, regionIds, 2) }, healed]
    case "crash":
    case "pause": {
      const chosen = target()
      const end: Fault = { atMs: endMs, kind: kind === "crash" ? "restart" : "resume", target: chosen }
      // Now and then nothing ends the fault but the heal after the last fault.
      const episode: Array<Fault> = chance(random, 0.9) ? [{ atMs, kind, target: chosen }, end] : [{ atMs, kind, target: chosen }]
      return [...episode, ...operatorPromotion(random, scenario, kind, chosen, atMs, endMs)]
    }
    case "store": {
      const region = pick(random, regionIds)
      const slowMinMs = chance(random, 0.5) ? 0 : intBetween(random, 0, 20)
      const slowMs = slowMinMs === 0 && chance(random, 0.5) ? { min: 0, max: 0 } : { min: slowMinMs, max: slowMinMs + intBetween(random, 10, 180) }
      const failRate = slowMs.max === 0 || chance(random, 0.5) ? stepBetween(random, 1, 30, 1) / 100 : 0
      return [{ atMs, kind, region, slowMs, failRate }, { atMs: endMs, kind, region, slowMs: { min: 0, max: 0 }, failRate: 0 }]
    }
    case "wipe":
      return [{ atMs, kind, target: target() }]
    case "clock_jump":
      return [{ atMs, kind, target: target(), deltaMs: stepBetween(random, 50, 2_000, 10) * (chance(random, 0.6) ? -1 : 1) }]
  }
}

/**
 * An operator who sees the primary region crash promotes another region halfway through the
 * outage (`inferadb-repl promote`), as a two-region PrimaryReplica deployment needs: it never
 * fails over on its own. With two regions, promoting while the old primary still runs is an
 * operator error the epochs check would rightly flag, so it is drawn here only for crashes; with
 * three or more the write lease makes it safe, and `promotionsWhileCut` draws it.
 */
const operatorPromotion = (random: Stream, scenario: Scenario, kind: "crash" | "pause", target: string, atMs: number, endMs: number): ReadonlyArray<Fault> => {
  if (kind !== "crash" || scenario.topology.strategy !== "PrimaryReplica") return []
  const primary = primaryOf(scenario)
  const down = new Set(targetNodes(scenario, target))
  if (primary === undefined || !primary.nodes.every((node) => down.has(node)) || !chance(random, 0.6)) return []
  const others = scenario.topology.regions.filter((region) => region.id !== primary.id)
  if (others.length === 0) return []
  return [{ atMs: Math.round((atMs + (endMs - atMs) / 2) / 10) * 10, kind: "promote", region: pick(random, others).id }]
}

const episodeKinds: ReadonlyArray<readonly [EpisodeKind, number]> = [
  ["isolate", 3],
  ["split", 2],
  ["one_way", 2],
  ["bridge", 1],
  ["crash", 3],
  ["pause", 2],
  ["store", 2],
  ["clock_jump", 2],
  ["wipe", 2]
]

/**
 * A stall (`stall`: a node's commits hang for the life of its process, until its StoreWatch ends
 * it), as a real lmdb commit once did: on per-node stores, where the simulator applies it, in one
 * seed in six, at a time and on a target of its own stream, so the other faults every seed drew
 * before stalls existed are drawn as they were.
 */
const drawStalls = (random: Stream, scenario: Scenario): ReadonlyArray<Fault> => {
  if (scenario.store === "shared" || !chance(random, 1 / 6)) return []
  const { startMs, durationMs } = scenario.workload
  const windowStartMs = durationMs > 0 ? startMs : 0
  const atMs = stepBetween(random, windowStartMs, (durationMs > 0 ? startMs + durationMs : 5_000) + 2_000, 10)
  const target = chance(random, 0.8) ? pick(random, nodesOf(scenario).map((node) => node.nodeId)) : pick(random, scenario.topology.regions.map((region) => region.id))
  return [{ atMs, kind: "stall", target }]
}

/** Share of graceful stops that a slow disk in the node's region precedes (`hiccupsBeforeStops`). */
const hiccupChance = 0.2

/**
 * Before some graceful stops, the node's region's disks slow to 2-3 s a commit (a cloud volume's
 * hiccup) from just before the stop to just after it, on a stream of their own, so every other
 * draw stays as it was (though a drawn store fault of that region active then is replaced by the
 * slowdown and ends with it, as a `store` fault sets the region's disks whole): the writes in
 * flight then outlive the stop's 2 s request grace and
 * commit during the drain. Drawn slowdowns lasted at most 200 ms a commit before December 8,
 * 2026, and no seed could show that such writes were acknowledged after the drain had fixed
 * the log end it drains to (`scenarios/graceful-stop-late-ack.yaml`).
 */
const hiccupsBeforeStops = (random: Stream, scenario: Scenario, faults: ReadonlyArray<Fault>): ReadonlyArray<Fault> =>
  faults.flatMap((fault) => {
    if (fault.kind !== "crash" || fault.graceful !== true || !chance(random, hiccupChance)) return []
    const region = Startup.regionOfTarget(scenario, fault.target)
    if (region === undefined) return []
    const fromMs = Math.max(0, fault.atMs - stepBetween(random, 100, 400, 10))
    const slowMinMs = stepBetween(random, 2_000, 2_500, 10)
    return [
      { atMs: fromMs, kind: "store", region, slowMs: { min: slowMinMs, max: slowMinMs + 500 }, failRate: 0 },
      { atMs: fault.atMs + 10, kind: "store", region, slowMs: { min: 0, max: 0 }, failRate: 0 }
    ] satisfies ReadonlyArray<Fault>
  })

/** A fault schedule over the workload's span (and two seconds after), sorted by time. */
const drawFaults = (random: Stream, scenario: Scenario): ReadonlyArray<Fault> => {
  const { startMs, durationMs } = scenario.workload
  const windowStartMs = durationMs > 0 ? startMs : 0
  const windowEndMs = (durationMs > 0 ? startMs + durationMs : 5_000) + 2_000
  const count = chance(random, 0.1) ? 0 : intBetween(random, 1, episodesMax)
  const faults: Array<Fault> = []
  for (let episode = 0; episode < count; episode++) {
    const atMs = stepBetween(random, windowStartMs, windowEndMs, 10)
    faults.push(...drawEpisode(random, scenario, weighted(random, episodeKinds), atMs))
  }
  return promotionsWhileDown(scenario, faults.sort((a, b) => a.atMs - b.atMs))
}

/**
 * Keeps an operator promotion only while every node of the primary region is down (crashed,
 * and neither restarted nor wiped back up since): promoting while the old primary runs again is
 * the operator error the epochs check rightly flags, and another episode may have brought it
 * back before the promotion its crash drew (swarm seed 602129: a wipe restarted it first).
 */
const promotionsWhileDown = (scenario: Scenario, faults: ReadonlyArray<Fault>): ReadonlyArray<Fault> => {
  const primary = primaryOf(scenario)
  const down = new Set<string>()
  return faults.filter((fault) => {
    if (fault.kind === "crash") for (const node of targetNodes(scenario, fault.target)) down.add(node)
    if (fault.kind === "restart" || fault.kind === "wipe") for (const node of targetNodes(scenario, fault.target)) down.delete(node)
    return fault.kind !== "promote" || (primary !== undefined && primary.nodes.every((node) => down.has(node)))
  })
}

/**
 * With three regions or more, an operator who sees the primary region cut off or paused (running,
 * and perhaps still taking writes) promotes another region during the episode, in half of them:
 * the write lease, not the operator, must keep the two from taking writes at once (the old
 * primary's lease runs out before the new one's first write). Until December 7, 2026 the swarm
 * promoted only while every node of the primary region was down, and never drew what
 * `three-region-wipe-promote-isolated.yaml` now holds: a promotion that wiped disks vouched for
 * at once while the cut-off primary still held the lease their old contents had granted. On a
 * stream of its own, so every other fault a seed drew before is drawn as it was; not over a file
 * whose failover story is checked, which expects the controller's promotion.
 */
const promotionsWhileCut = (random: Stream, scenario: Scenario, faults: ReadonlyArray<Fault>): ReadonlyArray<Fault> => {
  const primary = primaryOf(scenario)
  // A file's failover story (`checksFor`) is told of the controller's promotion, not an operator's.
  if (scenario.topology.strategy !== "PrimaryReplica" || scenario.topology.regions.length < 3 || primary === undefined || scenario.checks.includes("failover")) return []
  const others = scenario.topology.regions.filter((region) => region.id !== primary.id)
  const silences = (fault: Fault): boolean =>
    (fault.kind === "isolate" && fault.region === primary.id) || (fault.kind === "pause" && "target" in fault && primary.nodes.every((node) => targetNodes(scenario, fault.target).includes(node)))
  return faults.flatMap((fault, index) => {
    if (!silences(fault) || !chance(random, 0.5)) return []
    const target = "target" in fault ? fault.target : undefined
    const ends = (later: Fault) => (fault.kind === "isolate" ? later.kind === "heal" : later.kind === "resume" && "target" in later && later.target === target)
    const endMs = faults.slice(index + 1).find(ends)?.atMs ?? fault.atMs + 5_000
    return [{ atMs: stepBetween(random, fault.atMs + 10, Math.max(fault.atMs + 10, endMs - 10), 10), kind: "promote", region: pick(random, others).id }]
  })
}

/** Share of schedules with replication-graph changes, and how many changes one draws at most. */
const topologyChance = 0.3
const topologyEpisodesMax = 2

/**
 * One replication-graph episode at `atMs`: an edge taken away and given back, a chord added
 * (and, usually, taken away again), or a whole region removed and added back (not under
 * PrimaryReplica, whose lease counts a fixed set of regions, nor a vault's home region). Each
 * one leaves the graph as it found it or with one more edge, so the graph a drawn schedule ends
 * with is the scenario's own (plus chords): strongly connected, every residency set reachable;
 * or, for a decommission (`maybeDecommission`), that graph without the region.
 */
const drawTopologyEpisode = (random: Stream, scenario: Scenario, graph: TopologyFaults.Graph, atMs: number): ReadonlyArray<Fault> => {
  const regionIds = scenario.topology.regions.map((region) => region.id)
  const endMs = atMs + stepBetween(random, 300, 4_000, 10)
  const edges = regionIds.flatMap((from) => (graph.targets[from] ?? []).map((to) => ({ from, to })))
  const chords = regionIds.flatMap((from) => regionIds.filter((to) => to !== from && !(graph.targets[from] ?? []).includes(to)).map((to) => ({ from, to })))
  const homes = new Set(scenario.topology.vaults.map((vault) => vault.homeRegion))
  // Not under discovery either: its rounds add a region DNS still resolves back to the topology
  // (`Discovery.sync`), so a reload cannot remove one there (an open limit, README).
  const removable = scenario.topology.strategy === "PrimaryReplica" || scenario.discovery !== undefined ? [] : regionIds.filter((region) => !homes.has(region))
  const kind = weighted(random, [["edge", edges.length > 0 ? 3 : 0], ["chord", chords.length > 0 ? 2 : 0], ["region", removable.length > 0 ? 2 : 0]] as const)
  const at = (whenMs: number, change: TopologyFaults.TopologyChange): Fault => ({ atMs: whenMs, kind: "topology", change })
  switch (kind) {
    case "edge": {
      const { from, to } = pick(random, edges)
      return [at(atMs, { op: "remove_target", from, to }), at(endMs, { op: "add_target", from, to })]
    }
    case "chord": {
      const { from, to } = pick(random, chords)
      return chance(random, 0.7) ? [at(atMs, { op: "add_target", from, to }), at(endMs, { op: "remove_target", from, to })] : [at(atMs, { op: "add_target", from, to })]
    }
    case "region": {
      const region = pick(random, removable)
      return [at(atMs, { op: "remove_region", region }), at(endMs, { op: "add_region", region })]
    }
  }
}

/** Share of schedules whose last episode removes a region that are decommissions: the region is never added back. */
const decommissionChance = 0.3

/**
 * The schedule with its last episode's `add_region` left out, some of the time: a decommission,
 * which the regions left must survive (they split for good until December 2026, as no test
 * could remove a region for good). Drawn from a stream of its own, so the other draws of a seed
 * stay as they were; kept only when the regions left make a deployment.
 */
const maybeDecommission = (random: Stream, scenario: Scenario, faults: ReadonlyArray<Fault>): ReadonlyArray<Fault> => {
  const last = faults[faults.length - 1]
  if (last?.kind !== "topology" || last.change.op !== "add_region" || !chance(random, decommissionChance)) return faults
  const decommissioned = faults.slice(0, -1)
  return TopologyFaults.problems(scenario.topology, decommissioned).length === 0 ? decommissioned : faults
}

/** Replication-graph episodes one after another (never overlapping) within the fault window. */
const drawTopologyFaults = (random: Stream, scenario: Scenario): ReadonlyArray<Fault> => {
  if (!chance(random, topologyChance)) return []
  const { startMs, durationMs } = scenario.workload
  const windowEndMs = (durationMs > 0 ? startMs + durationMs : 5_000) + 2_000
  let graph = TopologyFaults.initial(scenario.topology)
  let fromMs = durationMs > 0 ? startMs : 0
  const faults: Array<Fault> = []
  for (let episode = intBetween(random, 1, topologyEpisodesMax); episode > 0 && fromMs < windowEndMs; episode--) {
    const drawn = drawTopologyEpisode(random, scenario, graph, stepBetween(random, fromMs, windowEndMs, 10))
    for (const fault of drawn) if (fault.kind === "topology") graph = Either.getOrThrow(TopologyFaults.apply(graph, fault.change))
    faults.push(...drawn)
    fromMs = drawn[drawn.length - 1]!.atMs + 10
  }
  return maybeDecommission(random.derive("decommission"), scenario, faults)
}

/** The stretch a removed region stays out of the graph: from its `remove_region` to its `add_region`, if it comes back. */
interface Removal {
  readonly region: string
  readonly atMs: number
  readonly untilMs: number | undefined
}

const removalsIn = (faults: ReadonlyArray<Fault>): ReadonlyArray<Removal> =>
  faults.flatMap((fault, index) => {
    if (fault.kind !== "topology" || TopologyFaults.isTargetChange(fault.change) || fault.change.op !== "remove_region") return []
    const region = fault.change.region
    const back = faults.slice(index + 1).find((later) => later.kind === "topology" && !TopologyFaults.isTargetChange(later.change) && later.change.op === "add_region" && later.change.region === region)
    return [{ region, atMs: fault.atMs, untilMs: back?.atMs }]
  })

/**
 * An operator's mistake and its repair, under SourcePriority, while a region is out of the graph
 * (every schedule with a removal long enough for it, drawn from a stream of its own, so the other
 * draws of a seed stay as they were): one node of
 * another region gets a file without the removed region's rank and is restarted on it; the rank is
 * put back and the node restarted again. A node whose store holds the removed region's changes
 * refuses to start on the first file (exit 2, `Ranks.ts`) and its supervisor tries again every
 * second until the rank is back; one whose store holds none starts, and refuses the removed
 * region's changes that its peers still flood until the second restart. Until December 5, 2026
 * only `scenarios/rank-dropped.yaml` had such a fault; no drawn schedule did.
 */
const drawConfigureFaults = (random: Stream, scenario: Scenario, topologyFaults: ReadonlyArray<Fault>, restartMaxMs: number): ReadonlyArray<Fault> => {
  const ranks = scenario.replication.regionPriorities
  const removals = removalsIn(topologyFaults)
  if (scenario.replication.conflictResolution !== "SourcePriority" || ranks.length === 0 || removals.length === 0) return []
  const removal = pick(random, removals)
  const node = pick(random, scenario.topology.regions.filter((region) => region.id !== removal.region).flatMap((region) => region.nodes))
  let atMs = removal.atMs
  const after = (minMs: number, maxMs: number) => (atMs += stepBetween(random, minMs, maxMs, 10))
  const faults: ReadonlyArray<Fault> = [
    { atMs: after(10, 500), kind: "configure", target: node, regionPriorities: ranks.filter((region) => region !== removal.region) },
    { atMs: after(10, 300), kind: "crash", target: node },
    { atMs: after(10, 300), kind: "restart", target: node },
    // Long enough for that start to finish (and refuse, if it does) before the file is mended.
    { atMs: after(restartMaxMs + 100, restartMaxMs + 1_000), kind: "configure", target: node, regionPriorities: ranks },
    { atMs: after(10, 300), kind: "crash", target: node },
    { atMs: after(10, 300), kind: "restart", target: node }
  ]
  // All of it while the region is out: back in the graph, it would need its rank on that node.
  return removal.untilMs === undefined || atMs < removal.untilMs ? faults : []
}

/** Share of drawn scenarios whose nodes find each other through DNS, as the Kubernetes deployment's do. */
const discoveryChance = 0.25

/** Share of discovery scenarios whose rounds are further apart than the write lease (the heartbeat timeout). */
const longDiscoveryChance = 0.3

/**
 * Discovery (from its own stream, so the other draws of a seed stay as they were): on a quarter
 * of seeds, rounds 0.5-2 s apart; on some of those (a stream of their own, `longRandom`) rounds
 * 1.5 to 3 heartbeat timeouts apart instead. The shipped defaults run discovery every 10 s, and
 * any heartbeat timeout under that makes a node's topology lag its peers' restarts by more than a
 * lease. Drawn 0.5-2 s apart against heartbeat timeouts of 0.6-6 s, rounds were mostly shorter
 * than the lease, and a restarted node (which waits a lease before its first write) was back in
 * every topology before it could write: 700 drawn seeds with a replaced pod in a three-region
 * PrimaryReplica deployment never had a primary-region node take writes that the new primary
 * did not know of (`three-region-promote-replaced.yaml`, December 3, 2026).
 */
const drawDiscovery = (random: Stream, longRandom: Stream, heartbeatTimeoutMs: number): Pick<Scenario, "discovery"> => {
  if (!chance(random, discoveryChance)) return {}
  const shortMs = pick(random, [500, 1_000, 2_000])
  const intervalMs = chance(longRandom, longDiscoveryChance) ? stepBetween(longRandom, 1.5 * heartbeatTimeoutMs, 3 * heartbeatTimeoutMs, 100) : shortMs
  return { discovery: { intervalMs, firstRoundWaitMs: Discovery.firstRoundWaitMsDefault } }
}

/** Chance that a scenario with `discovery` gets DNS outages, and how many at most. */
const dnsOutageChance = 0.7
const dnsOutagesMax = 2

/**
 * DNS outages of a scenario with `discovery` (from their own stream, `dns-faults`, so other
 * scenarios draw as before): each from a time in the fault window to a heal 0.5-4 s later, one
 * after another. A node that starts or restarts meanwhile runs its engine with no node known.
 */
const drawDnsOutages = (random: Stream, scenario: Scenario): ReadonlyArray<Fault> => {
  if (scenario.discovery === undefined || !chance(random, dnsOutageChance)) return []
  const { startMs, durationMs } = scenario.workload
  const windowEndMs = (durationMs > 0 ? startMs + durationMs : 5_000) + 2_000
  const faults: Array<Fault> = []
  let fromMs = durationMs > 0 ? startMs : 0
  for (let outage = intBetween(random, 1, dnsOutagesMax); outage > 0 && fromMs < windowEndMs; outage--) {
    const atMs = stepBetween(random, fromMs, windowEndMs, 10)
    const endMs = atMs + stepBetween(random, 500, 4_000, 10)
    faults.push({ atMs, kind: "dns_outage" }, { atMs: endMs, kind: "heal" })
    fromMs = endMs + 10
  }
  return faults
}

/** Share of drawn crashes under discovery that are pods Kubernetes deletes and creates again. */
const replacedChance = 0.5

/**
 * Under discovery, marks about half of the drawn crashes `replaced` (from their own stream,
 * `pods`, so every other draw of a seed stays as it was): a rolling update or a drained machine
 * deletes a pod and creates it again, and its DNS record is gone meanwhile, where a process
 * that crashes in its pod keeps its record (`SimDns.withdraw`).
 */
const replacedPods = (random: Stream, scenario: Scenario, faults: ReadonlyArray<Fault>): ReadonlyArray<Fault> =>
  scenario.discovery === undefined ? faults : faults.map((fault) => (fault.kind === "crash" && chance(random, replacedChance) ? { ...fault, replaced: true } : fault))

/** How a seed's schedule is drawn over a base scenario. */
export interface DrawOptions {
  /**
   * False: no crash is drawn graceful, the schedules seeds drew before graceful stops were
   * drawn (December 3, 2026), which tests of a seed's failover story pin.
   */
  readonly gracefulStops?: boolean
  /**
   * False: restarted processes serve at once (no `startup.restart_ms` drawn), the schedules seeds
   * drew before restart delays were drawn (December 4, 2026), which tests of a seed's story pin.
   */
  readonly restartDelays?: boolean
}

/** Share of drawn crashes that are graceful stops (SIGTERM: drain, then exit). */
const gracefulChance = 0.3

/**
 * Marks about a third of the drawn crashes `graceful` (from their own stream, `graceful`, so every
 * other draw of a seed stays as it was): Kubernetes stops a pod with SIGTERM, and `serve` drains
 * before it exits; a kill (OOM, a node lost) is the rest. The drawn schedule is then judged by the
 * `drained` check wherever it judges acknowledged writes.
 */
const gracefulStops = (random: Stream, faults: ReadonlyArray<Fault>): ReadonlyArray<Fault> =>
  faults.map((fault) => (fault.kind === "crash" && chance(random, gracefulChance) ? { ...fault, graceful: true } : fault))

/** Share of drawn schedules with a rolling update (`rollingUpdate`). */
const rollingChance = 0.1

/**
 * On a tenth of schedules (from its own stream, `rolling`, so every other draw of a seed stays as
 * it was), a rolling update of one region, as Kubernetes runs one for a new image or
 * configuration: each node in turn is stopped gracefully (SIGTERM: drain, exit), down for 0.3-1.5
 * s, started again (on an empty disk, for volumes that do not outlive their pod, on a third of
 * updates), and the next node follows once it has been up 0.5-2 s (with a restart delay drawn,
 * the last one may not serve yet: harsher than Kubernetes, which waits for the new pod's
 * readiness, so a drain may wait for a sibling still starting). Single graceful stops drawn
 * among the crashes never stop every node of a region one after another, each draining to the
 * siblings the previous one left behind.
 */
const rollingUpdate = (random: Stream, scenario: Scenario, faults: ReadonlyArray<Fault>): ReadonlyArray<Fault> => {
  if (!chance(random, rollingChance)) return faults
  const { startMs, durationMs } = scenario.workload
  const region = pick(random, scenario.topology.regions)
  const emptyDisks = chance(random, 1 / 3)
  let atMs = stepBetween(random, durationMs > 0 ? startMs : 0, (durationMs > 0 ? startMs + durationMs : 5_000) + 2_000, 10)
  const update: Array<Fault> = []
  for (const node of region.nodes) {
    const upMs = atMs + stepBetween(random, 300, 1_500, 10)
    update.push({ atMs, kind: "crash", target: node, graceful: true }, { atMs: upMs, kind: emptyDisks ? "wipe" : "restart", target: node })
    atMs = upMs + stepBetween(random, 500, 2_000, 10)
  }
  return [...faults, ...update].sort((a, b) => a.atMs - b.atMs)
}

/**
 * How long after a graceful stop was asked for the node may still run: the requests in flight,
 * then the drain (`Node.stopTimings`, `Drain.timeoutMsDefault`). Failover expectations count the
 * loss from then, the latest the region can be lost.
 */
const gracefulExitMs = stopTimings.requestGraceMs + Drain.timeoutMsDefault

/**
 * A schedule as failover expectations see it, each graceful stop read the way that expects the
 * least: the loss of the primary region as short as it may be, the loss of any other region as
 * long. A node with nothing to drain exits at once, one that drains may run `gracefulExitMs`
 * longer, and a start asked for meanwhile comes once it has exited.
 * - A stop of the primary region is a kill at its latest exit, and its loss ends at the start
 *   that follows. When that start was asked for before the latest exit, the node may have exited
 *   at once and been started again by it, so the stop is dropped: it loses nothing for sure.
 * - A stop of any other region is a kill when it is asked for, and a start asked for before its
 *   latest exit is read at that exit.
 * Until December 5, 2026 every graceful stop was read at its latest exit, and a region next in
 * line stopped while the primary was down counted as up for 7 s it was not (swarm seed 92000145
 * over chaos-primary-pause.yaml: the primary crashed at 1.21 s, eu-central-1 was stopped at
 * 1.89 s, drained at once and served again only at 7.67 s; nobody could be promoted before the
 * primary served again at 10.5 s, and the judge expected the failover story). A start asked
 * for before the primary's latest exit was moved to that exit too, which made its loss longer
 * than it may have been: a stop of a node already crashed does nothing (seed 93001040, once
 * starts are matched by node: us-west-1 crashed at 6.35 s, a stop of its crashed node at 6.38 s
 * did nothing, and its restart at 9.32 s would have been read at 13.38 s).
 */
const asKills = (scenario: Scenario, faults: ReadonlyArray<Fault>, ofPrimary: (fault: Fault) => boolean): ReadonlyArray<Fault> => {
  const seen: Array<Fault | undefined> = [...faults]
  faults.forEach((fault, index) => {
    if (fault.kind !== "crash" || fault.graceful !== true) return
    const exitMs = fault.atMs + gracefulExitMs
    // The start that ends the stop, whether it names the node or its region (`enderOf`).
    const end = enderOf(scenario, faults, index)
    const ending = faults[end]
    const startsBeforeExit = ending !== undefined && ending.atMs < exitMs
    if (ofPrimary(fault)) {
      seen[index] = startsBeforeExit ? undefined : { atMs: exitMs, kind: "crash", target: fault.target }
      return
    }
    seen[index] = { atMs: fault.atMs, kind: "crash", target: fault.target }
    if (startsBeforeExit) seen[end] = { ...ending, atMs: exitMs }
  })
  return seen.filter((fault) => fault !== undefined).sort((a, b) => a.atMs - b.atMs)
}

/**
 * Simulated time a run needs after the heal to converge (and, under PrimaryReplica, to hand the
 * role back), plus the time its slowest link may need to carry the workload's changes at the
 * drawn agent settings (`drainAllowanceMs`).
 */
const settleMs = (scenario: Scenario): number => {
  const { failover } = scenario.replication
  const heartbeat = slowestHeartbeat(scenario.replication)
  const handBack = heartbeat.timeoutMs * 2 + failover.detectAfterMs + failover.promoteBackAfterMs + failover.confirmAfterMs
  return convergenceAllowanceMs + (scenario.topology.strategy === "PrimaryReplica" ? handBack : 0) + drainAllowanceMs(scenario)
}

/** Bytes a change takes in a batch at most, its context naming all five regions: what a message bound lets through. */
const changeBytesMax = 700
/** A target's commit of a batch, at most, once the heal ended every slow-disk fault. */
const commitAllowanceMs = 50

/**
 * How long one link may take, at most, to carry every change the workload can write, by the
 * documented agent rules (README, "agent.*"): a target behind gets batches of
 * `catch_up_batch_size` (10 × `batch_size` by default, at most 1,000), no more than the message
 * bound carries, `batches_in_flight_max` (4) of them in flight within
 * `network.in_flight_per_target_max` (8), each a round trip over the slowest link and a commit,
 * and a lost request or answer costs its request timeout and a backoff. Every change may cross
 * every hop of a relay chain, one after another. Written from those rules, not from the agent's
 * code, so an agent that stalls still fails the budget. Until December 5, 2026 the budget allowed 30 s
 * whatever the settings, and a seed whose window of one batch of 5 changes crossed a 260 ms
 * link (about 14 changes a second, where clients wrote about 30) drained in 31.2 s after the
 * heal and failed liveness though every batch went as configured (swarm seed 81000863).
 */
export const drainAllowanceMs = (scenario: Scenario): number => {
  const { agent } = scenario.replication
  const { network, workload } = scenario
  // Poisson arrivals: a quarter above the mean rate, every write of the most operations.
  const changes = 1.25 * workload.ratePerSec * workload.regions.length * (workload.durationMs / 1_000) * workload.opsPerWriteMax
  const catchUpBatch = Math.max(agent.batchSize, agent.catchUpBatchSize ?? Math.min(10 * agent.batchSize, 1_000))
  const perBatch = Math.max(1, Math.min(catchUpBatch, Math.floor(((network.messageBytesMax ?? 16 * 1024 * 1024) - 256) / changeBytesMax)))
  const window = Math.min(agent.batchesInFlightMax ?? 4, network.inFlightPerTargetMax ?? 8)
  const lossMax = Math.max(network.remote.loss, network.local.loss, ...network.links.map((entry) => entry.link.loss))
  const roundTripMs = 2 * SimNetwork.slowestOneWayMs(network) + commitAllowanceMs + 2 * lossMax * (agent.requestTimeoutMs + agent.retryDelayMaxMs)
  const rounds = Math.ceil(changes / perBatch / window) + scenario.topology.regions.length - 1
  return Math.ceil(rounds * roundTripMs)
}

/**
 * Replaces the clocks and faults of a scenario with ones drawn from the seed (and draws how its
 * messages travel); the budget covers the heal.
 */
const drawChaos = (scenario: Scenario, seed: number | string, options: DrawOptions = {}): Scenario => {
  const swarm = Random.make(seed).derive("swarm")
  // Under discovery too (since December 8, 2026): a reload there declares no node and keeps those found.
  const topologyFaults = drawTopologyFaults(swarm.derive("topology-faults"), scenario)
  const kills = replacedPods(swarm.derive("pods"), scenario, drawFaults(swarm.derive("faults"), scenario))
  // A rolling update may start a node of the primary region again: operator promotions are kept only while it is down, then too.
  const crashes = options.gracefulStops === false ? kills : promotionsWhileDown(scenario, rollingUpdate(swarm.derive("rolling"), scenario, gracefulStops(swarm.derive("graceful"), kills)))
  const restartMs = options.restartDelays === false ? scenario.startup?.restartMs : drawRestartMs(swarm.derive("restart"), scenario)
  const configureFaults = drawConfigureFaults(swarm.derive("configure-faults"), scenario, topologyFaults, restartMs?.max ?? 0)
  const cutPromotions = promotionsWhileCut(swarm.derive("cut-promotions"), scenario, crashes)
  const hiccups = hiccupsBeforeStops(swarm.derive("stop-hiccups"), scenario, crashes)
  const faults = [...crashes, ...cutPromotions, ...hiccups, ...topologyFaults, ...configureFaults, ...drawDnsOutages(swarm.derive("dns-faults"), scenario), ...drawStalls(swarm.derive("stalls"), scenario)].sort(
    (a, b) => a.atMs - b.atMs
  )
  const workloadEndMs = scenario.workload.durationMs > 0 ? scenario.workload.startMs + scenario.workload.durationMs : 0
  const startup = { ...drawStartup(swarm.derive("startup"), scenario), ...(restartMs === undefined ? {} : { restartMs }) }
  // The expectations read the schedule as it plays out: graceful stops as kills when the node
  // exits at the latest, restarts once their processes may last have started, but the primary
  // region's as soon as they may, since its loss must last long enough for the failover story
  // (seed 1500005 over chaos-primary-pause.yaml: the primary's only node wiped at 5.8 s served
  // again 2.86 s later, before anyone could be promoted, where 4.9 s was read: its range was 2.25-4.9 s).
  const primaryNodes = new Set(primaryOf(scenario)?.nodes ?? [])
  const ofPrimary = (fault: Fault): boolean => "target" in fault && targetNodes(scenario, fault.target).some((node) => primaryNodes.has(node))
  const seen = Startup.bootedFaults({ ...scenario, startup }, asKills(scenario, faults, ofPrimary), ofPrimary)
  // As the run heals (`Run.healedAt`): after the last fault, a restart once it may have started.
  const healedAtMs = Startup.bootedFaults({ ...scenario, startup }, faults).reduce((latest, fault) => Math.max(latest, fault.atMs), workloadEndMs)
  // A base file's availability floor was calibrated for its own schedule, not for drawn ones:
  // drawn schedules get the swarm's own.
  const { checkSettings, ...base } = scenario
  const drawn: Scenario = {
    ...base,
    checkSettings: { ...checkSettings, minAvailability: swarmMinAvailability },
    clocks: drawClocks(swarm.derive("clocks"), scenario),
    faults,
    checks: withDrained(checksFor({ ...scenario, startup }, seen, healedAtMs), faults)
  }
  return {
    ...drawn,
    budgetMs: Math.max(scenario.budgetMs, Math.max(healedAtMs, Startup.latestStartMs({ startup })) + settleMs(drawn)),
    wire: drawWire(swarm.derive("wire"), scenario),
    startup
  }
}

/**
 * How far apart the nodes' first processes start: at one instant on a share of seeds, else
 * spread over up to 3 s, which is longer than many drawn heartbeat timeouts (a node then gives
 * up on a peer before that peer has started, as on real processes). On a share of seeds some
 * regions (up to half of them) start late as a whole, one to three heartbeat timeouts after the
 * others, as a region whose machines came up last: the regions up first see them down before
 * they have ever answered (a primary fenced itself for such peers on real processes).
 */
const drawStartup = (random: Stream, scenario: Scenario): Scenario["startup"] & {} => {
  const spreadMs = chance(random, 0.25) ? 0 : stepBetween(random, 100, 3_000, 50)
  if (!chance(random, 0.3)) return { spreadMs }
  const regionIds = scenario.topology.regions.map((region) => region.id)
  const late = shuffle(random, regionIds).slice(0, intBetween(random, 1, Math.max(1, Math.floor(regionIds.length / 2))))
  const { timeoutMs } = scenario.replication.heartbeat
  const lateMs = stepBetween(random, timeoutMs, 3 * timeoutMs, 50)
  return { spreadMs, atMs: Object.fromEntries(late.map((region) => [region, lateMs])) }
}

/**
 * How long restarted processes take before they serve (`Startup.restartDelayMs`): the base
 * file's range when it gives one, else, on three seeds in five, up to 0.3-6 s (a `serve` process
 * took 0.3-3.5 s to listen on a quiet machine and up to 5 s under a chaos run's five nodes, on
 * December 4, 2026), from its own `restart` stream so every other draw of a seed stays as it
 * was; at once on the rest, as before.
 */
const drawRestartMs = (random: Stream, scenario: Scenario): { readonly min: number; readonly max: number } | undefined => {
  if (scenario.startup?.restartMs !== undefined) return scenario.startup.restartMs
  if (!chance(random, 0.6)) return undefined
  const max = stepBetween(random, 300, 6_000, 50)
  return { min: stepBetween(random, 0, max / 2, 50), max }
}

/** Bytes when the base scenario asks for them, else bytes on a fixed share of seeds. */
const drawWire = (random: Stream, scenario: Scenario): Codec.Wire =>
  chance(random, wireBytesShare) || scenario.wire === "bytes" ? "bytes" : "objects"

/**
 * Whether `fault` takes `regionId` down, as the failover expectations read another region
 * (`checksFor`). A wipe of every node of a region restarts them at once on empty disks: that
 * region notices the loss a heartbeat timeout after it started again, as a crashed one does
 * after its restart (swarm seed 65000291 over chaos-primary-pause.yaml: the primary crashed at
 * 7.46 s, eu-central-1 was wiped at 10.92 s, just before it could have been promoted, and nobody
 * was promoted before the workload ended at 12.3 s). A crash, pause or wipe of any one node of the
 * region counts: faults of its nodes one at a time may overlap and take the whole region down
 * together, which a reading of each fault alone misses (a region of two nodes, each crashed by a
 * fault of its own, was up throughout for this rule until December 5, 2026). With one node per
 * region, as in every shipped file with the failover check, nothing changes.
 */
const takesDown = (scenario: Scenario, fault: Fault, regionId: string): boolean => {
  if (fault.kind !== "crash" && fault.kind !== "pause" && fault.kind !== "wipe") return hitsRegion(fault, scenario, regionId)
  const nodes = new Set(Startup.reachedNodes(scenario, fault))
  return targetNodes(scenario, regionId).some((node) => nodes.has(node))
}

/** The longest stretch of `[fromMs, untilMs)` that none of `blocked` covers. */
const longestClearMs = (fromMs: number, untilMs: number, blocked: ReadonlyArray<FaultWindows.Window>): number => {
  let longest = 0
  let clearFromMs = fromMs
  for (const stretch of [...blocked].sort((a, b) => a.startMs - b.startMs)) {
    if (stretch.startMs > clearFromMs) longest = Math.max(longest, Math.min(stretch.startMs, untilMs) - clearFromMs)
    clearFromMs = Math.max(clearFromMs, stretch.endMs)
  }
  return Math.max(longest, untilMs - clearFromMs)
}

/**
 * Whether the region next in line, promoted when the primary is lost at `fromMs`, may find too
 * few of the other regions able to vouch for it. Nodes on new or wiped disks vouch for no epoch
 * minted before they started until they have paged every region (`Failover`'s Advance), so when
 * a majority needs such a node the promoted region first sees its majority made of them for
 * `detect_after_ms`, moves to an epoch counted from the wall clock, and takes writes once they
 * have adopted it and vouched for it. A disk is new from its node's first start and from its last
 * wipe; it has paged the primary's region once both have run, for an agent backoff and a
 * request, with nothing cutting the primary off, taking the region down or failing its store.
 * Swarm seed 99000042 over three-region-wipe-primary-down.yaml: us-west-1, the primary, started
 * at 3.85 s, its answers to ap-southeast-1 cut until 7.03 s and ap-southeast-1's store failing
 * from 6.01 to 8.73 s; us-west-1 crashed at 7.75 s, eu-central-1 was promoted at 13.05 s,
 * advanced at 15.8 s, and no write was accepted before the workload ended at 16.5 s.
 */
const vouchersMayBeUnpaged = (scenario: Scenario, faults: ReadonlyArray<Fault>, healedAtMs: number, fromMs: number, primaryId: string, silencesPrimary: (fault: Fault) => boolean): boolean => {
  const pageWithinMs = scenario.replication.agent.retryDelayMaxMs + scenario.replication.agent.requestTimeoutMs
  const primaryStartMs = Startup.latestStartOfMs(scenario, primaryId, targetNodes(scenario, primaryId))
  const paged = (regionId: string): boolean => {
    const nodes = new Set(targetNodes(scenario, regionId))
    const reaches = (fault: Fault & { readonly target: string }) => Startup.reachedNodes(scenario, fault).some((node) => nodes.has(node))
    const wipesMs = faults.filter((fault) => fault.kind === "wipe" && fault.atMs < fromMs && reaches(fault)).map((fault) => fault.atMs)
    const newSinceMs = Math.max(Startup.latestStartOfMs(scenario, regionId, [...nodes]), ...wipesMs)
    const blocked = faults.flatMap((fault, index) => {
      if (fault.atMs >= fromMs) return []
      if (fault.kind === "store") {
        if (fault.region !== regionId || fault.failRate === 0) return []
        // A store fault lasts until the next one on the same region sets the store again.
        const next = faults.find((later, at) => at > index && later.kind === "store" && later.region === regionId)
        return [{ startMs: fault.atMs, endMs: next?.atMs ?? healedAtMs }]
      }
      return silencesPrimary(fault) || takesDown(scenario, fault, regionId) ? [{ startMs: fault.atMs, endMs: endOf(scenario, faults, index, healedAtMs) }] : []
    })
    return longestClearMs(Math.max(newSinceMs, primaryStartMs), fromMs, blocked) >= pageWithinMs
  }
  // The region promoted (the first in line) counts itself; a strict majority needs that many more.
  const others = scenario.topology.regions
    .filter((region) => region.id !== primaryId)
    .sort((a, b) => a.priority - b.priority)
    .slice(1)
  return others.filter((region) => paged(region.id)).length < Math.floor(scenario.topology.regions.length / 2)
}

/** When the operator's promotions at or after `fromMs` come. */
const promotionsFrom = (faults: ReadonlyArray<Fault>, fromMs: number): ReadonlyArray<number> =>
  faults.filter((fault) => fault.kind === "promote" && fault.atMs >= fromMs).map((fault) => fault.atMs)

/**
 * How long after the primary's last answer another region may still count it up, for a loss
 * that starts at `fromMs`: the heartbeat timeout, or two of the longest heartbeat deadlines plus
 * a round when a pause of the primary ended shortly before. The heartbeats queued during the
 * pause were answered late but within their deadlines, so the others' round-trip estimate for
 * it grew, and a peer whose deadline is past the first counts the primary up for two deadlines
 * plus a round after its last answer (`Heartbeater`'s slow peers). A crash or a cut loses those
 * requests instead, and a lost request leaves the estimate alone. Deadlines run from the first
 * (`max(interval, min(agent.request_timeout_ms, heartbeat.timeout_ms / 2))`) to the longest
 * (`max(agent.request_timeout_ms, heartbeat.timeout_ms)`), as `Engine` sets them, and each
 * prompt answer takes an eighth off the smoothed round trip while the deviation follows it
 * (twice it, in the end, which makes the deadline ten times it): from the longest, the estimate is
 * back under the first after `ln(10 × longest / first) / ln(8 / 7)` rounds at most. Until
 * December 5, 2026 the failover story was expected as if the deadline came back at once (swarm
 * seed 94001309 over chaos-primary-pause.yaml: us-west-1 paused from 1 s to 4.13 s, while the
 * other regions started, and isolated at 4.46 s; eu-central-1's estimate was 450 ms, it counted
 * us-west-1 up until 8.34 s, and the isolation healed at 9.25 s, before anyone could be promoted).
 */
const staleAfterMs = (scenario: Scenario, faults: ReadonlyArray<Fault>, healedAtMs: number, fromMs: number, silencesPrimary: (fault: Fault) => boolean): number => {
  const heartbeat = slowestHeartbeat(scenario.replication)
  const requestMs = scenario.replication.agent.requestTimeoutMs
  const firstMs = Math.max(heartbeat.intervalMs, Math.min(requestMs, heartbeat.timeoutMs / 2))
  const longestMs = Math.max(requestMs, heartbeat.timeoutMs)
  const recoveryMs = Math.ceil(Math.log((10 * longestMs) / firstMs) / Math.log(8 / 7)) * heartbeat.intervalMs
  const pausedBefore = faults.some(
    (fault, index) => fault.kind === "pause" && silencesPrimary(fault) && fault.atMs < fromMs && endOf(scenario, faults, index, healedAtMs) >= fromMs - recoveryMs
  )
  return pausedBefore ? Math.max(heartbeat.timeoutMs, 2 * longestMs + heartbeat.intervalMs) : heartbeat.timeoutMs
}

/**
 * A base scenario's checks for a drawn schedule: its `failover` story (the primary is lost, a
 * region is promoted, the role comes back) is only expected when some drawn fault takes the
 * original primary region down. `faults` is the schedule as it plays out (`asKills`, then
 * `Startup.bootedFaults`); exported for tests that hand it one.
 */
export const checksFor = (scenario: Scenario, faults: ReadonlyArray<Fault>, healedAtMs: number): Scenario["checks"] => {
  if (!scenario.checks.includes("failover")) return scenario.checks
  const primary = primaryOf(scenario)
  // Long enough to be noticed (a heartbeat timeout) and acted on (the detection delay), with
  // room for one more heartbeat round; a two-region deployment is never failed over on its own.
  // The story needs a write taken elsewhere, so the loss must last that long while clients
  // still write, with room for the promoted region's first lease round and a few writes
  // (a pause at 17.3 s of a workload ending at 21.5 s cannot be failed over in time: seed 91).
  // The slowest node's settings: a promotion also waits out the longest lease the primary may hold.
  const { failover } = scenario.replication
  const heartbeat = slowestHeartbeat(scenario.replication)
  const neededMs = heartbeat.timeoutMs + failover.detectAfterMs + heartbeat.intervalMs + failover.checkIntervalMs
  const advanceMs = failover.detectAfterMs + 3 * heartbeat.intervalMs + failover.checkIntervalMs
  const writesUntilMs = scenario.workload.startMs + scenario.workload.durationMs
  const tailMs = heartbeat.intervalMs + 3 * (1_000 / Math.max(scenario.workload.ratePerSec, 0.001))
  // Another region taken down during the loss (a crash, a pause, a partition) holds the
  // promotion back: a majority is needed, a region cut off or paused must be heard
  // `recover_after` rounds again, and a restarted node notices the loss only a heartbeat timeout
  // after it started (the primary paused at 10.96 s, the region to be promoted crashed at
  // 11.95 s and restarted at 16.01 s, and was promoted at 21.51 s as the primary resumed: `sim
  // swarm --scenario scenarios/primary-failover.yaml`, seed 35000060). A region cut off just
  // as the primary is lost waits for a majority's answers after the heal (`Failover.decide`;
  // it promoted itself on a stale view before, then fenced: seed 36000496 over
  // chaos-primary-pause.yaml), which is what `rejoinMs` allows for.
  const rejoinMs = heartbeat.recoverAfter * heartbeat.intervalMs + failover.checkIntervalMs
  // A region may be promoted (by the controller, or an operator) on a view that still holds
  // another region up, within a heartbeat timeout of that region going down; when that region
  // stays down past the timeout, the promoted one fences itself and takes writes only
  // `confirm_after_ms` after it sees a majority again (swarm seeds
  // 46000476 and 46000479 over primary-late-start-crash.yaml: promoted at 11.4 and 14.03 s, a
  // region crashed 1 s before, no write before the workload ended).
  // The primary may go unheard before the fault that loses it: an earlier fault on it, or a cut
  // of the way its answers travel, that lasts into this one starts the detection clock then
  // (swarm seed 61000269 over primary-late-start-crash.yaml: us-west-1 crashed at 4.05 s and
  // restarted at 5.74 s, but its answers to eu-central-1 were cut from 4.61 to 8.53 s; it crashed
  // again at 7.96 s, and eu-central-1 was promoted at 11.12 s, before it could notice
  // ap-southeast-1 isolated at 9.03 s, so it fenced itself and took no write).
  const silencesPrimary = (fault: Fault): boolean =>
    primary !== undefined && (hitsRegion(fault, scenario, primary.id) || (fault.kind === "one_way" && fault.from === primary.id))
  const unheardSinceMs = (fromMs: number): number => {
    let sinceMs = fromMs
    for (let changed = true; changed; ) {
      changed = false
      faults.forEach((fault, index) => {
        if (!silencesPrimary(fault) || fault.atMs >= sinceMs || endOf(scenario, faults, index, healedAtMs) < sinceMs) return
        sinceMs = fault.atMs
        changed = true
      })
    }
    return sinceMs
  }
  // Longer than the heartbeat timeout when the primary was paused shortly before (`staleAfterMs`).
  const slowerMs = (fromMs: number): number => staleAfterMs(scenario, faults, healedAtMs, fromMs, silencesPrimary) - heartbeat.timeoutMs
  const promotedByMs = (fromMs: number): number =>
    Math.min(unheardSinceMs(fromMs) + heartbeat.timeoutMs + slowerMs(fromMs) + failover.detectAfterMs, ...promotionsFrom(faults, fromMs))
  // A region paused during the loss answers the heartbeats queued meanwhile when it resumes,
  // and each answer grants the lost primary a lease from that moment (a lease is the heartbeat
  // timeout), and a paused candidate sees the primary down only from then on: nobody is promoted
  // before both have run out (seed 47000085 over chaos-primary-pause.yaml and primary-failover.yaml).
  const resumedMs = Math.max(rejoinMs, heartbeat.timeoutMs, failover.detectAfterMs) + failover.checkIntervalMs
  const afterMs = (fault: Fault, unnoticed: boolean, restartsFenced: boolean): number =>
    unnoticed || restartsFenced ? rejoinMs + failover.confirmAfterMs : fault.kind === "crash" || fault.kind === "wipe" ? neededMs : fault.kind === "pause" ? resumedMs : fault.kind === "dns_outage" ? discoveredMs : rejoinMs
  // Under discovery a DNS outage holds the promotion back when some nodes may not know each other
  // yet: it began before every node could have had a round after the last start, or a node
  // started again during it (each start knows no node). They meet at their first round after the
  // heal, and a node learnt then counts as up until a heartbeat timeout passes without its answer
  // (swarm seed 84000030 over chaos-primary-pause.yaml with discovery: nodes started until 1.2 s,
  // DNS failed from 1.91 to 3.71 s, the primary was paused from 2.26 to 7.03 s, and nobody was
  // promoted in time).
  const discoveredMs = (scenario.discovery?.intervalMs ?? 0) + neededMs
  const strangersDuring = (index: number): boolean => FaultWindows.strangersDuring(scenario, faults, index, healedAtMs)
  // The loss itself counts too when it also takes another region down (a split into singletons).
  // A region may be promoted as early as a round before `promotedByMs` (the primary's last
  // answer came up to a round before the loss), or by an operator's promote.
  const promotedFromMs = (fromMs: number): number =>
    Math.min(unheardSinceMs(fromMs) + heartbeat.timeoutMs + failover.detectAfterMs - 2 * heartbeat.intervalMs, ...promotionsFrom(faults, fromMs))
  const promotableAtMs = (fromMs: number, untilMs: number): number => {
    const promotedAtMs = promotedByMs(fromMs)
    const earliestPromotionMs = promotedFromMs(fromMs)
    const promotableMs = faults.reduce((atMs, fault, index) => {
      const endMs = endOf(scenario, faults, index, healedAtMs)
      // A one-way cut between two other regions takes neither down, but they cannot hear each
      // other (answers go the other way), and with the primary lost a majority needs them both
      // (seed 52000337 over chaos-primary-pause.yaml: ap-southeast-1 -> eu-central-1 cut from
      // 5.52 to 8.59 s while the primary was paused from 4.89 to 9.35 s; nobody was promoted).
      const cutsOthers = fault.kind === "one_way" && fault.from !== primary?.id && fault.to !== primary?.id
      const hitsOther = cutsOthers || strangersDuring(index) || scenario.topology.regions.some((region) => region.id !== primary?.id && takesDown(scenario, fault, region.id))
      // A fault after the story could have been told (a promotion and a few writes) changes nothing.
      if (!hitsOther || fault.atMs >= untilMs || fault.atMs >= atMs + tailMs || endMs <= fromMs) return atMs
      // Unnoticed at the promotion, and noticed after it: it outlasts a heartbeat timeout.
      const unnoticed = fault.atMs + heartbeat.timeoutMs + heartbeat.intervalMs > promotedAtMs && endMs - fault.atMs > heartbeat.timeoutMs
      // A crash after a promotion may have hit the promoted region: it restarts fenced, on a
      // disk that ran before, and takes writes only once it has seen a majority for
      // `confirm_after_ms` (swarm seed 910056 over primary-failover.yaml: us-west-1 paused at
      // 3.88 s, eu-central-1 promoted at 8.65 s and crashed at 8.86 s, restarted at 11.6 s and
      // fenced past the workload's end at 21.5 s).
      const restartsFenced = fault.kind === "crash" && fault.atMs >= earliestPromotionMs
      return Math.max(atMs, endMs + afterMs(fault, unnoticed, restartsFenced))
    }, fromMs + neededMs + slowerMs(fromMs))
    // A region still on a disk that has not paged the primary's makes the promoted one advance
    // first: `detect_after_ms` after a round that shows it, and rounds for the others to adopt and
    // vouch for the new epoch (`vouchersMayBeUnpaged`).
    return primary !== undefined && vouchersMayBeUnpaged(scenario, faults, healedAtMs, fromMs, primary.id, silencesPrimary) ? promotableMs + advanceMs : promotableMs
  }
  // A fault before every process has started may find the primary not running yet: a pause
  // of a process that does not exist does nothing, in the simulator as with SIGSTOP (swarm seed
  // 36000368 over chaos-primary-pause.yaml paused the primary at 2.25 s; it started at 3.05 s).
  // Nor is a primary region that starts so late that another region is promoted first the
  // primary until the role is handed back (`FaultWindows.lateStartHandBack`): a fault on it
  // before that loses no primary (swarm seed 58000083 over primary-failover.yaml: us-west-1
  // started at 8.45 s, eu-central-1 had been promoted at 6.08 s, and us-west-1 was paused at
  // 11.89 s, before it could have the role back).
  const startedByMs = Math.max(Startup.latestStartMs(scenario), ...FaultWindows.lateStartHandBack(scenario).map((window) => window.endMs))
  // A bridge through a node of the primary region keeps it reachable until the next heal, through
  // every partition drawn on top of it (seed 36000456 over chaos-primary-pause.yaml). A bridge
  // through a node of another region keeps the primary reachable from that node through every
  // partition too, and a region whose node still hears the primary tells the others, so nobody
  // is promoted: the documented non-transitive partition (seed 76000073 over
  // chaos-primary-pause.yaml: [us-west-1] | [ap-southeast-1, eu-central-1] bridged by
  // ap-southeast-1-node1 from 0.79 s to 5.3 s; us-west-1 kept the role and took every write).
  // A crash, pause or wipe of the primary still loses it.
  const partitions: ReadonlySet<Fault["kind"]> = new Set(["isolate", "split", "one_way", "bridge"])
  const bridgedAt = (lossFault: Fault): boolean =>
    faults.some(
      (fault, index) =>
        fault.kind === "bridge" &&
        fault.atMs <= lossFault.atMs &&
        endOf(scenario, faults, index, healedAtMs) > lossFault.atMs &&
        (primary?.nodes.includes(fault.node) === true || partitions.has(lossFault.kind))
    )
  const lost =
    primary !== undefined &&
    scenario.topology.regions.length > 2 &&
    faults.some((fault, index) => {
      if (fault.atMs < startedByMs || !hitsRegion(fault, scenario, primary.id) || bridgedAt(fault)) return false
      const untilMs = Math.min(endOf(scenario, faults, index, healedAtMs), writesUntilMs)
      return untilMs - promotableAtMs(fault.atMs, untilMs) >= tailMs
    })
  return lost ? scenario.checks : scenario.checks.filter((check) => check !== "failover")
}

/** Where acknowledged writes are judged and a graceful stop was drawn, so is what its drain promised them. */
const withDrained = (checks: Scenario["checks"], faults: ReadonlyArray<Fault>): Scenario["checks"] =>
  checks.includes("acknowledged") && !checks.includes("drained") && faults.some((fault) => fault.kind === "crash" && fault.graceful === true) ? [...checks, "drained"] : checks

const checked = (scenario: Scenario): Scenario => {
  const problems = validate(scenario)
  if (problems.length > 0) throw new Error(`swarm drew an invalid scenario:\n  ${problems.join("\n  ")}`)
  return scenario
}

// ---------------------------------------------------------------------------------------------
// Public
// ---------------------------------------------------------------------------------------------

/** The scenario a swarm seed stands for: every setting drawn from the seed. Pure. */
export const swarmScenario = (seed: number | string): Scenario => {
  const swarm = Random.make(seed).derive("swarm")
  const { spec: topology, graph } = drawTopology(swarm.derive("topology"))
  const regionIds = topology.regions.map((region) => region.id)
  const drawn = drawNetwork(swarm.derive("network"), regionIds)
  const mixed = withMixedHeartbeats(drawReplication(swarm.derive("replication"), regionIds, drawn), swarm.derive("heartbeat-mixed"), topology)
  const windowed = withWindows(swarm.derive("windows"), mixed, drawn)
  const replication = windowed.replication
  const network = withMessageBound(swarm.derive("message-bound"), windowed.network)
  const scheduling = swarm.derive("scheduler")
  const discovery = drawDiscovery(swarm.derive("discovery"), swarm.derive("discovery-long"), replication.heartbeat.timeoutMs)
  const found = discovery.discovery === undefined ? "" : ", nodes found through DNS"
  const base: Scenario = {
    name: "swarm",
    description: `Drawn from swarm seed ${seed}: ${regionIds.length} regions, ${topology.strategy}, ${graph}, ${replication.conflictResolution} over ${replication.clock} timestamps${found}.`,
    budgetMs: 0,
    topology,
    // Per-node disks as `serve` ships them (lmdb), or a regional one as with FoundationDB.
    store: chance(swarm.derive("store"), 0.7) ? "per_node" : "shared",
    replication,
    clocks: { default: { offsetMs: symmetric(0), driftPpm: symmetric(0) }, nodes: {} },
    network,
    workload: drawWorkload(swarm.derive("workload"), topology),
    faults: [],
    checks: defaultChecks(topology.strategy),
    scheduler: { yieldOpsMin: pick(scheduling, [16, 64, 128]), yieldOpsMax: pick(scheduling, [256, 1_024, 4_096]) },
    ...discovery
  }
  return checked(drawChaos(base, seed))
}

/** A scenario file's settings with clocks and faults drawn from the seed. Pure. */
export const swarmFrom = (base: Scenario, seed: number | string, options: DrawOptions = {}): Scenario =>
  checked({ ...drawChaos(base, seed, options), name: `${base.name}-swarm`, description: `${base.name} with clocks and faults drawn from swarm seed ${seed}.` })

/** The scenario a seed stands for, drawn whole or over a base scenario. */
export const scenarioFor = (seed: number | string, base: Scenario | undefined): Scenario => (base === undefined ? swarmScenario(seed) : swarmFrom(base, seed))

/** One seed of a swarm: the drawn scenario and its run. */
export interface Outcome {
  readonly seed: number
  readonly scenario: Scenario
  readonly result: RunResult
}

/** Draws the scenario of a seed and runs it with the same seed. */
export const runSeed = (seed: number, base: Scenario | undefined, options: RunOptions = {}): Outcome => {
  const scenario = scenarioFor(seed, base)
  return { seed, scenario, result: runScenario(scenario, seed, options) }
}

/** What the tally needs of one seed's run (a worker sends no more than this for a passing seed). */
export interface Counted {
  readonly seed: number
  readonly result: Pick<RunResult, "traceHash" | "violations" | "events" | "tasks" | "effectOps" | "simulatedMs" | "wallMs">
}

/** Totals of a swarm so far. */
export interface Summary {
  readonly seeds: number
  /** Every seed's trace hash folded in the order added: equal for two swarms that took the same paths. */
  readonly traceHash: string
  readonly passed: number
  readonly failed: number
  readonly failedSeeds: ReadonlyArray<number>
  /** Failed seeds per checker (a seed counts once per checker that flagged it). */
  readonly failuresByChecker: Readonly<Record<string, number>>
  readonly events: number
  readonly tasks: number
  /** Effect operations of all runs: work that, unlike the wall time, does not depend on the machine. */
  readonly effectOps: number
  readonly simulatedMs: number
  readonly wallMs: number
  readonly eventsPerSec: number
  readonly simulatedSecondsPerWallSecond: number
}

/** Adds outcomes up as they come, without keeping them; add them in seed order for a reproducible `traceHash`. */
export class Tally {
  private seeds = 0
  private readonly traceHash = new TraceHash()
  private readonly failedSeeds: Array<number> = []
  private readonly byChecker: Record<string, number> = {}
  private events = 0
  private tasks = 0
  private effectOps = 0
  private simulatedMs = 0
  private wallMs = 0

  add(outcome: Counted): void {
    const { result } = outcome
    this.seeds++
    this.traceHash.string(String(outcome.seed)).string(result.traceHash)
    this.events += result.events
    this.tasks += result.tasks
    this.effectOps += result.effectOps
    this.simulatedMs += result.simulatedMs
    this.wallMs += result.wallMs
    if (result.violations.length === 0) return
    this.failedSeeds.push(outcome.seed)
    for (const checker of new Set(result.violations.map((violation) => violation.checker))) this.byChecker[checker] = (this.byChecker[checker] ?? 0) + 1
  }

  summary(): Summary {
    const wallSeconds = this.wallMs / 1000
    return {
      seeds: this.seeds,
      traceHash: this.traceHash.hex(),
      passed: this.seeds - this.failedSeeds.length,
      failed: this.failedSeeds.length,
      failedSeeds: [...this.failedSeeds],
      failuresByChecker: { ...this.byChecker },
      events: this.events,
      tasks: this.tasks,
      effectOps: this.effectOps,
      simulatedMs: this.simulatedMs,
      wallMs: Math.round(this.wallMs),
      eventsPerSec: wallSeconds > 0 ? Math.round(this.events / wallSeconds) : 0,
      simulatedSecondsPerWallSecond: wallSeconds > 0 ? Math.round((this.simulatedMs / 1000 / wallSeconds) * 10) / 10 : 0
    }
  }
}
