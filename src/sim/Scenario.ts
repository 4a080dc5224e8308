/**
 * Scenarios: what one simulation run sets up (topology, strategy, clocks, network, workload),
 * which faults it injects when, what it checks and how much simulated time it may take.
 *
 * A scenario is plain data (`Scenario`), so tests and property-based generators can build
 * and shrink one directly, fault schedules included. `decode` reads the YAML form documented
 * in `scenarios/README.md` with Effect Schema: unknown keys are errors, and every problem is
 * reported with its key path (`faults[2].region: unknown region 'x'`).
 */
import { Either, ParseResult, Schema } from "effect"
import * as YAML from "yaml"
import type * as Agent from "../replication/Agent.js"
import * as ConflictResolver from "../replication/ConflictResolver.js"
import * as Discovery from "../replication/Discovery.js"
import type * as Failover from "../replication/Failover.js"
import type * as Timestamp from "../replication/Timestamp.js"
import type * as Topology from "../replication/Topology.js"
import * as TopologyBuilder from "../replication/TopologyBuilder.js"
import * as Codec from "./Codec.js"
import type * as SimDns from "./SimDns.js"
import type * as SimNetwork from "./SimNetwork.js"
import * as TopologyFaults from "./TopologyFaults.js"

// ---------------------------------------------------------------------------------------------
// The model
// ---------------------------------------------------------------------------------------------

/** A closed interval; a value is drawn uniformly from it (fixed when min = max). */
export interface Range {
  readonly min: number
  readonly max: number
}

/** One region: its failover priority (lower = higher), whether it starts primary, its nodes. */
export interface RegionSpec {
  readonly id: string
  readonly priority: number
  readonly primary: boolean
  readonly nodes: ReadonlyArray<string>
}

/** The topology every node starts with (each with itself as the local region). */
export interface TopologySpec {
  readonly strategy: Topology.ReplicationStrategy
  readonly regions: ReadonlyArray<RegionSpec>
  /** Directed replication graph; absent = full mesh. */
  readonly targets: Readonly<Record<string, ReadonlyArray<string>>> | undefined
  readonly vaults: ReadonlyArray<Topology.VaultPlacement>
}

/** Replication settings shared by every node. */
export interface ReplicationSpec {
  readonly conflictResolution: ConflictResolver.Strategy
  readonly regionPriorities: ReadonlyArray<string>
  readonly clock: Timestamp.ClockMode
  readonly agent: Agent.Settings
  readonly bufferSize: number
  readonly heartbeat: HeartbeatSpec
  /**
   * Regions or nodes that run other heartbeat settings than `heartbeat` (a node's entry over its
   * region's): mixed configurations, as during a rolling update that changes them. The write
   * lease is the heartbeat timeout, so nodes then hold and honour leases of different lengths.
   */
  readonly heartbeatOverrides?: Readonly<Record<string, Partial<HeartbeatSpec>>>
  readonly failover: Omit<Failover.Settings, "regionId" | "nodeId">
}

/** Heartbeat settings of a node. */
export interface HeartbeatSpec {
  readonly intervalMs: number
  readonly timeoutMs: number
  readonly recoverAfter: number
}

/** The heartbeat settings node `nodeId` of `regionId` runs with (`ReplicationSpec.heartbeatOverrides`). */
export const heartbeatOf = (replication: ReplicationSpec, regionId: string, nodeId: string): HeartbeatSpec => {
  const overrides = replication.heartbeatOverrides
  if (overrides === undefined) return replication.heartbeat
  return { ...replication.heartbeat, ...overrides[regionId], ...overrides[nodeId] }
}

/**
 * The longest of each heartbeat setting any node runs with, for the judge's windows: a fault is
 * noticed, and a lease runs out, by the slowest node's settings.
 */
export const slowestHeartbeat = (replication: ReplicationSpec): HeartbeatSpec => {
  const all = [replication.heartbeat, ...Object.values(replication.heartbeatOverrides ?? {}).map((override) => ({ ...replication.heartbeat, ...override }))]
  return {
    intervalMs: Math.max(...all.map((spec) => spec.intervalMs)),
    timeoutMs: Math.max(...all.map((spec) => spec.timeoutMs)),
    recoverAfter: Math.max(...all.map((spec) => spec.recoverAfter))
  }
}

/** A node's wall-clock error: drawn once per node from the `clock/<node>` stream. */
export interface ClockSpec {
  readonly offsetMs: Range
  readonly driftPpm: Range
}

/** The clients' writes. */
export interface WorkloadSpec {
  readonly startMs: number
  readonly durationMs: number
  /** Mean writes per second issued by the clients of each client region (Poisson arrivals). */
  readonly ratePerSec: number
  readonly regions: ReadonlyArray<string>
  readonly vaults: ReadonlyArray<string>
  readonly resourceTypes: ReadonlyArray<string>
  readonly relations: ReadonlyArray<string>
  /** Distinct tuples per vault. */
  readonly tuples: number
  /** Tuples per vault that take `hotFraction` of all operations, to force conflicts. */
  readonly hotTuples: number
  readonly hotFraction: number
  readonly deleteFraction: number
  readonly opsPerWriteMax: number
  /** A client gives up on a write after this long (the server may still be working on it); none when absent. */
  readonly deadlineMs?: number
}

/** A node or, for every node of it, a region. */
export type Target = string

/** One fault; `atMs` is simulated time since the start. */
export type Fault =
  | { readonly atMs: number; readonly kind: "isolate"; readonly region: string }
  | { readonly atMs: number; readonly kind: "split"; readonly groups: ReadonlyArray<ReadonlyArray<string>> }
  | { readonly atMs: number; readonly kind: "one_way"; readonly from: string; readonly to: string }
  | { readonly atMs: number; readonly kind: "bridge"; readonly node: string; readonly groups: ReadonlyArray<ReadonlyArray<string>> }
  | { readonly atMs: number; readonly kind: "heal" }
  /** Every DNS lookup fails until the next `heal` (scenarios with `discovery`; see `SimDns`). */
  | { readonly atMs: number; readonly kind: "dns_outage" }
  /**
   * `replaced` (scenarios with `discovery`): the crash of a pod that Kubernetes deletes and
   * creates again (a rolling update, a drained machine), not a process that restarts in its pod:
   * its DNS record is gone until the node starts again, so every peer's discovery removes the
   * node and later adds it back as new (see `SimDns.withdraw`). The disk stays (the pod's volume).
   *
   * `graceful`: the node is stopped as SIGTERM stops `serve` (Kubernetes deletes a pod so, a
   * rolling update does it to every pod in turn), not killed: it refuses new client writes,
   * finishes those in flight, drains replication (`Drain`, at most its default timeout), lets its
   * finalizers run and exits. The `drained` check holds it to what the drain then claims.
   */
  | { readonly atMs: number; readonly kind: "crash"; readonly target: Target; readonly replaced?: boolean; readonly graceful?: boolean }
  /**
   * `stall`: the target's store stops completing commits, for the life of its process (per-node
   * stores only): the commit it is given next never becomes durable, and every later one waits
   * behind it, while the node reads, answers heartbeats and takes requests that then wait for
   * ever. A real lmdb commit did that once (CI run of December 6, 2026); `StoreWatch` ends such a
   * node and its supervisor starts it again.
   */
  | { readonly atMs: number; readonly kind: "restart" | "pause" | "resume" | "wipe" | "stall"; readonly target: Target }
  | { readonly atMs: number; readonly kind: "clock_jump"; readonly target: Target; readonly deltaMs: number }
  | { readonly atMs: number; readonly kind: "store"; readonly region: string; readonly slowMs: Range; readonly failRate: number }
  /** The operator's `inferadb-repl promote` on a live node of `region` (PrimaryReplica). */
  | { readonly atMs: number; readonly kind: "promote"; readonly region: string }
  /**
   * The operator edits the target's configuration file: its processes started from now on run
   * with these `region_priorities` (SourcePriority); a running one keeps its own until it is
   * restarted. The list is the scenario's, less regions removed for good before it (a
   * decommission whose rank an operator drops), or the scenario's whole list (the rank put back).
   */
  | { readonly atMs: number; readonly kind: "configure"; readonly target: Target; readonly regionPriorities: ReadonlyArray<string> }
  /** A replication target or a whole region added or removed at run time (see `TopologyFaults`). */
  | { readonly atMs: number; readonly kind: "topology"; readonly change: TopologyFaults.TopologyChange }

/** The checks a run can make. */
export const checkNames = ["safety", "liveness", "convergence", "acknowledged", "drained", "residency", "unique_ids", "store_integrity", "timestamps", "progress", "epochs", "failover"] as const
export type CheckName = (typeof checkNames)[number]

/** Thresholds some checks take; unset ones use the checker's default. */
export interface CheckSettings {
  /** `progress`: least share of writes acknowledged among those attempted outside fault windows (0..1). */
  readonly minAvailability?: number
  /** `timestamps`: how far ahead of real time a timestamp may run, beyond the clock error the scenario declares. */
  readonly maxClockOffsetMs?: number
}

/** A whole scenario. */
export interface Scenario {
  readonly name: string
  readonly description: string
  /** Simulated milliseconds the run may take at most. */
  readonly budgetMs: number
  readonly topology: TopologySpec
  /** One disk per node (lmdb, memory: as `serve` ships) or one per region (FoundationDB). */
  readonly store: Agent.StoreShape
  readonly replication: ReplicationSpec
  readonly clocks: { readonly default: ClockSpec; readonly nodes: Readonly<Record<string, Partial<ClockSpec>>> }
  readonly network: SimNetwork.Settings
  readonly workload: WorkloadSpec
  readonly faults: ReadonlyArray<Fault>
  readonly checks: ReadonlyArray<CheckName>
  /** Thresholds of the checks (optional, so scenarios built in code may leave it out). */
  readonly checkSettings?: CheckSettings
  /** Bounds of the seeded op count after which a running fiber yields. */
  readonly scheduler: { readonly yieldOpsMin: number; readonly yieldOpsMax: number }
  /** How messages travel (see `Codec.ts`); frozen objects when unset. */
  readonly wire?: Codec.Wire
  /**
   * How the nodes come up: each node's first process starts at a time drawn from its
   * `startup/<node>` stream in `[0, spreadMs]` (see `Startup.ts`), as a deployment's processes
   * do, not all at one instant, or at the time `atMs` gives its node or its region (the node's
   * entry first). Every node starts at 0 when unset. `restartMs`: how long a restarted process
   * takes before it serves, drawn per restart in `[min, max]` (`Startup.restartDelayMs`); at once
   * when unset.
   */
  readonly startup?: {
    readonly spreadMs: number
    readonly atMs?: Readonly<Record<Target, number>>
    readonly restartMs?: { readonly min: number; readonly max: number }
  }
  /**
   * Nodes find each other through DNS at run time, as `serve` does under `discovery.mode: dns`
   * (see `SimDns`), instead of every node's topology declaring every node from the start.
   */
  readonly discovery?: SimDns.Settings
}

/** Every node id with its region, in declaration order. */
export const nodesOf = (scenario: Pick<Scenario, "topology">): ReadonlyArray<{ readonly regionId: string; readonly nodeId: string }> =>
  scenario.topology.regions.flatMap((region) => region.nodes.map((nodeId) => ({ regionId: region.id, nodeId })))

/** The region a scenario declares primary, else its first (PrimaryReplica's default). */
export const primaryOf = (scenario: Pick<Scenario, "topology">): Scenario["topology"]["regions"][number] | undefined =>
  scenario.topology.regions.find((region) => region.primary) ?? scenario.topology.regions[0]

/** The nodes a fault target names: one node, or every node of a region. */
export const targetNodes = (scenario: Pick<Scenario, "topology">, target: Target): ReadonlyArray<string> => {
  const region = scenario.topology.regions.find((candidate) => candidate.id === target)
  return region !== undefined ? region.nodes : nodesOf(scenario).some((node) => node.nodeId === target) ? [target] : []
}

/**
 * The most any node's wall clock may run ahead of simulated real time, by the scenario's own
 * declaration: its largest offset, its largest positive drift over the whole budget, and every
 * forward clock jump aimed at it. HLC timestamps carry the greatest clock they have seen, so
 * the bound for every node's timestamps is the maximum over nodes.
 */
export const clockErrorAheadMs = (scenario: Scenario): number =>
  nodesOf(scenario).reduce((most, { regionId, nodeId }) => {
    const spec = { ...scenario.clocks.default, ...scenario.clocks.nodes[nodeId] }
    const driftMs = (Math.max(0, spec.driftPpm.max) * scenario.budgetMs) / 1_000_000
    const jumpsMs = scenario.faults.reduce((sum, fault) => (fault.kind === "clock_jump" && fault.deltaMs > 0 && (fault.target === nodeId || fault.target === regionId) ? sum + fault.deltaMs : sum), 0)
    return Math.max(most, spec.offsetMs.max + driftMs + jumpsMs)
  }, 0)

/** The topology as node `nodeId` of `regionId` starts with it (before any `topology` fault). */
export const topologyFor = (scenario: Scenario, regionId: string): Either.Either<Topology.Topology, TopologyBuilder.TopologyError> =>
  TopologyFaults.build(scenario.topology, regionId)

// ---------------------------------------------------------------------------------------------
// The file format (snake_case YAML)
// ---------------------------------------------------------------------------------------------

const NonNegative = Schema.Number.pipe(Schema.nonNegative())
const Positive = Schema.Number.pipe(Schema.positive())
const Count = Schema.Number.pipe(Schema.int(), Schema.positive())
const Probability = Schema.Number.pipe(Schema.between(0, 1))
const Id = Schema.NonEmptyTrimmedString
const Groups = Schema.Array(Schema.Array(Id))

const RangeFile = Schema.Union(Schema.Number, Schema.Struct({ min: Schema.Number, max: Schema.Number }), Schema.Tuple(Schema.Number, Schema.Number))

const LatencyFile = Schema.Union(
  Schema.Struct({ fixed: NonNegative }),
  Schema.Struct({ uniform: Schema.Tuple(NonNegative, NonNegative) }),
  Schema.Struct({ normal: Schema.Struct({ mean: NonNegative, stddev: NonNegative, min: Schema.optional(NonNegative) }) })
)

const LinkFile = Schema.Struct({
  latency: Schema.optional(LatencyFile),
  loss: Schema.optional(Probability),
  duplicate: Schema.optional(Probability)
})

const RegionFile = Schema.Struct({
  id: Id,
  priority: Schema.optional(Schema.Number.pipe(Schema.int(), Schema.positive())),
  primary: Schema.optional(Schema.Boolean),
  /** Node ids, or a count (ids `<region>-node<i>`). */
  nodes: Schema.optional(Schema.Union(Count, Schema.Array(Id)))
})

const TopologyFile = Schema.Struct({
  strategy: Schema.Literal("ActiveActive", "PrimaryReplica", "MultiMaster"),
  regions: Schema.Array(RegionFile),
  targets: Schema.optional(Schema.Union(Schema.Literal("full_mesh"), Schema.Record({ key: Schema.String, value: Schema.Array(Id) }))),
  vaults: Schema.optional(Schema.Array(Schema.Struct({ id: Id, home: Id, allowed: Schema.optional(Schema.Array(Id)) })))
})

const HeartbeatFile = Schema.Struct({ interval_ms: Schema.optional(Positive), timeout_ms: Schema.optional(Positive), recover_after: Schema.optional(Count) })

const ReplicationFile = Schema.Struct({
  conflict_resolution: Schema.optional(Schema.Literal("LastWriteWins", "SourcePriority", "InsertWins")),
  region_priorities: Schema.optional(Schema.Array(Id)),
  clock: Schema.optional(Schema.Literal("hlc", "wall")),
  agent: Schema.optional(
    Schema.Struct({
      batch_size: Schema.optional(Count),
      flush_delay_ms: Schema.optional(NonNegative),
      retry_delay_ms: Schema.optional(NonNegative),
      retry_delay_max_ms: Schema.optional(NonNegative),
      max_retries: Schema.optional(Schema.Number.pipe(Schema.int(), Schema.nonNegative())),
      request_timeout_ms: Schema.optional(Positive),
      batches_in_flight_max: Schema.optional(Count),
      catch_up_batch_size: Schema.optional(Count)
    })
  ),
  buffer_size: Schema.optional(Count),
  heartbeat: Schema.optional(HeartbeatFile),
  heartbeat_overrides: Schema.optional(Schema.Record({ key: Schema.String, value: HeartbeatFile })),
  failover: Schema.optional(
    Schema.Struct({
      detect_after_ms: Schema.optional(NonNegative),
      promote_back_after_ms: Schema.optional(NonNegative),
      fence_after_ms: Schema.optional(NonNegative),
      confirm_after_ms: Schema.optional(NonNegative),
      check_interval_ms: Schema.optional(Positive)
    })
  )
})

const ClockFile = Schema.Struct({ offset_ms: Schema.optional(RangeFile), drift_ppm: Schema.optional(RangeFile) })

const ClocksFile = Schema.Struct({
  offset_ms: Schema.optional(RangeFile),
  drift_ppm: Schema.optional(RangeFile),
  nodes: Schema.optional(Schema.Record({ key: Schema.String, value: ClockFile }))
})

const NetworkFile = Schema.Struct({
  down_refuses: Schema.optional(Probability),
  in_flight_per_target_max: Schema.optional(Count),
  // As `serve`'s `grpc.max_message_bytes` takes it.
  message_bytes_max: Schema.optional(Schema.Number.pipe(Schema.int(), Schema.between(1_024, 2 ** 31 - 1))),
  latency: Schema.optional(LatencyFile),
  loss: Schema.optional(Probability),
  duplicate: Schema.optional(Probability),
  local: Schema.optional(LinkFile),
  links: Schema.optional(
    Schema.Array(
      Schema.Struct({
        from: Id,
        to: Id,
        both_ways: Schema.optional(Schema.Boolean),
        latency: Schema.optional(LatencyFile),
        loss: Schema.optional(Probability),
        duplicate: Schema.optional(Probability)
      })
    )
  )
})

const WorkloadFile = Schema.Struct({
  start_ms: Schema.optional(NonNegative),
  duration_ms: Schema.optional(NonNegative),
  rate_per_sec: Schema.optional(NonNegative),
  regions: Schema.optional(Schema.Array(Id)),
  vaults: Schema.optional(Schema.Array(Id)),
  resource_types: Schema.optional(Schema.Array(Id)),
  relations: Schema.optional(Schema.Array(Id)),
  tuples: Schema.optional(Count),
  hot_tuples: Schema.optional(Schema.Number.pipe(Schema.int(), Schema.nonNegative())),
  hot_fraction: Schema.optional(Probability),
  delete_fraction: Schema.optional(Probability),
  ops_per_write_max: Schema.optional(Count),
  deadline_ms: Schema.optional(Positive)
})

const at = { at_ms: NonNegative }

/** An edge change names `from` and `to`, a region change names `region`; one struct, so a mistake gets one clear message. */
const TopologyFaultFile = Schema.Struct({
  at_ms: NonNegative,
  kind: Schema.Literal("topology"),
  change: Schema.Literal("add_target", "remove_target", "add_region", "remove_region"),
  from: Schema.optional(Id),
  to: Schema.optional(Id),
  region: Schema.optional(Id)
}).pipe(
  Schema.filter((fault) => {
    const edge = fault.change === "add_target" || fault.change === "remove_target"
    const fits = edge ? fault.from !== undefined && fault.to !== undefined && fault.region === undefined : fault.region !== undefined && fault.from === undefined && fault.to === undefined
    return fits || (edge ? `${fault.change} takes the keys from and to (regions), not region` : `${fault.change} takes the key region, not from or to`)
  })
)
const FaultFile = Schema.Union(
  Schema.Struct({ ...at, kind: Schema.Literal("isolate"), region: Id }),
  Schema.Struct({ ...at, kind: Schema.Literal("split"), groups: Groups }),
  Schema.Struct({ ...at, kind: Schema.Literal("one_way"), from: Id, to: Id }),
  Schema.Struct({ ...at, kind: Schema.Literal("bridge"), node: Id, groups: Groups }),
  Schema.Struct({ ...at, kind: Schema.Literal("heal") }),
  Schema.Struct({ ...at, kind: Schema.Literal("dns_outage") }),
  // One member per kind (not one member for five literals): a union tries only the members whose
  // kind matches, so a broken fault of another kind is not also reported as a broken crash.
  Schema.Struct({ ...at, kind: Schema.Literal("crash"), target: Id, replaced: Schema.optional(Schema.Boolean), graceful: Schema.optional(Schema.Boolean) }),
  Schema.Struct({ ...at, kind: Schema.Literal("restart"), target: Id }),
  Schema.Struct({ ...at, kind: Schema.Literal("pause"), target: Id }),
  Schema.Struct({ ...at, kind: Schema.Literal("resume"), target: Id }),
  Schema.Struct({ ...at, kind: Schema.Literal("wipe"), target: Id }),
  Schema.Struct({ ...at, kind: Schema.Literal("stall"), target: Id }),
  Schema.Struct({ ...at, kind: Schema.Literal("clock_jump"), target: Id, delta_ms: Schema.Number }),
  Schema.Struct({ ...at, kind: Schema.Literal("store"), region: Id, slow_ms: Schema.optional(RangeFile), fail_rate: Schema.optional(Probability) }),
  Schema.Struct({ ...at, kind: Schema.Literal("promote"), region: Id }),
  Schema.Struct({ ...at, kind: Schema.Literal("configure"), target: Id, region_priorities: Schema.Array(Id) }),
  TopologyFaultFile
)

const ScenarioFile = Schema.Struct({
  name: Id,
  description: Schema.optional(Schema.String),
  budget_ms: Positive,
  topology: TopologyFile,
  store: Schema.optional(Schema.Literal("per_node", "shared")),
  replication: Schema.optional(ReplicationFile),
  clocks: Schema.optional(ClocksFile),
  network: Schema.optional(NetworkFile),
  workload: Schema.optional(WorkloadFile),
  faults: Schema.optional(Schema.Array(FaultFile)),
  checks: Schema.optional(Schema.Array(Schema.Literal(...checkNames))),
  check_settings: Schema.optional(Schema.Struct({ min_availability: Schema.optional(Probability), max_clock_offset_ms: Schema.optional(NonNegative) })),
  scheduler: Schema.optional(Schema.Struct({ yield_ops_min: Schema.optional(Count), yield_ops_max: Schema.optional(Count) })),
  wire: Schema.optional(Schema.Literal(...Codec.wires)),
  startup: Schema.optional(
    Schema.Struct({
      spread_ms: Schema.optional(NonNegative),
      at_ms: Schema.optional(Schema.Record({ key: Id, value: NonNegative })),
      restart_ms: Schema.optional(Schema.Struct({ min: NonNegative, max: NonNegative }))
    })
  ),
  discovery: Schema.optional(Schema.Struct({ interval_ms: Positive, first_round_wait_ms: Schema.optional(NonNegative) }))
})
type ScenarioFile = typeof ScenarioFile.Type

// ---------------------------------------------------------------------------------------------
// Defaults
// ---------------------------------------------------------------------------------------------

/** Settings a scenario file may leave out, sized so a run takes well under a second. */
export const defaults = {
  agent: { maxRetries: 5, retryDelayMs: 50, retryDelayMaxMs: 1_000, batchSize: 50, flushDelayMs: 10, requestTimeoutMs: 1_000 } satisfies Agent.Settings,
  bufferSize: 1_000,
  heartbeat: { intervalMs: 500, timeoutMs: 3_000, recoverAfter: 3 },
  failover: { detectAfterMs: 2_000, promoteBackAfterMs: 5_000, fenceAfterMs: 0, confirmAfterMs: 10_000, checkIntervalMs: 250 },
  remote: { latency: { kind: "uniform", minMs: 20, maxMs: 80 }, loss: 0, duplicate: 0 } satisfies SimNetwork.Link,
  local: { latency: { kind: "uniform", minMs: 0.2, maxMs: 1 }, loss: 0, duplicate: 0 } satisfies SimNetwork.Link,
  workload: {
    startMs: 500,
    durationMs: 10_000,
    ratePerSec: 10,
    resourceTypes: ["document", "folder"],
    relations: ["viewer", "editor"],
    tuples: 50,
    hotTuples: 2,
    hotFraction: 0.3,
    deleteFraction: 0.35,
    opsPerWriteMax: 2
  },
  scheduler: { yieldOpsMin: 64, yieldOpsMax: 2048 }
} as const

// ---------------------------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------------------------

/** A scenario file that does not decode or refers to things it does not declare. */
export class ScenarioError extends Schema.TaggedError<ScenarioError>()("ScenarioError", {
  source: Schema.String,
  problems: Schema.Array(Schema.String)
}) {
  override get message(): string {
    return `${this.source}:\n${this.problems.map((problem) => `  ${problem}`).join("\n")}`
  }
}

const formatPath = (path: ReadonlyArray<PropertyKey>): string =>
  path.reduce<string>((text, key) => (typeof key === "number" ? `${text}[${key}]` : text === "" ? String(key) : `${text}.${String(key)}`), "")

/** Decodes YAML text into a scenario; `source` names the file in errors. */
export const decode = (text: string, source = "scenario"): Either.Either<Scenario, ScenarioError> => {
  let raw: unknown
  try {
    raw = YAML.parse(text)
  } catch (error) {
    return Either.left(new ScenarioError({ source, problems: [`not valid YAML: ${String(error)}`] }))
  }
  const decoded = Schema.decodeUnknownEither(ScenarioFile, { errors: "all", onExcessProperty: "error" })(raw)
  if (Either.isLeft(decoded)) {
    const issues = ParseResult.ArrayFormatter.formatErrorSync(decoded.left).map((issue) => ({ path: formatPath(issue.path) || "(root)", message: issue.message }))
    return Either.left(new ScenarioError({ source, problems: summarizeIssues(issues) }))
  }
  const scenario = fromFile(decoded.right)
  const problems = validate(scenario)
  return problems.length === 0 ? Either.right(scenario) : Either.left(new ScenarioError({ source, problems }))
}

/**
 * One line per key path. Union members each report their own mismatch; they are merged into
 * "expected A | B, got X", and an optional key's "expected undefined" is dropped when the
 * value has problems further down.
 */
const summarizeIssues = (issues: ReadonlyArray<{ readonly path: string; readonly message: string }>): ReadonlyArray<string> => {
  const deeper = (path: string) => issues.some((issue) => issue.path !== path && (issue.path.startsWith(`${path}.`) || issue.path.startsWith(`${path}[`)))
  const kept = issues.filter((issue) => !(issue.message.startsWith("Expected undefined") && deeper(issue.path)))
  const byPath = new Map<string, Array<string>>()
  for (const issue of kept) byPath.set(issue.path, [...(byPath.get(issue.path) ?? []), issue.message])
  return [...byPath].map(([path, messages]) => {
    const mismatches = messages.map((message) => /^Expected (.+), actual (.+)$/s.exec(message))
    if (mismatches.every((match) => match !== null)) {
      const expected = [...new Set(mismatches.flatMap((match) => match![1]!.split(" | ")))].join(" | ")
      return `${path}: expected ${expected}, got ${mismatches[0]![2]}`
    }
    return `${path}: ${[...new Set(messages)].join("; ")}`
  })
}

const range = (value: typeof RangeFile.Type | undefined, fallback: Range): Range => {
  if (value === undefined) return fallback
  if (typeof value === "number") return { min: value, max: value }
  if (Array.isArray(value)) return { min: value[0], max: value[1] }
  return value as Range
}

const latency = (value: typeof LatencyFile.Type | undefined, fallback: SimNetwork.Latency): SimNetwork.Latency => {
  if (value === undefined) return fallback
  if ("fixed" in value) return { kind: "fixed", ms: value.fixed }
  if ("uniform" in value) return { kind: "uniform", minMs: value.uniform[0], maxMs: value.uniform[1] }
  return { kind: "normal", meanMs: value.normal.mean, stddevMs: value.normal.stddev, minMs: value.normal.min ?? 0 }
}

const link = (
  value: { readonly latency?: typeof LatencyFile.Type | undefined; readonly loss?: number | undefined; readonly duplicate?: number | undefined } | undefined,
  fallback: SimNetwork.Link): SimNetwork.Link => ({
  latency: latency(value?.latency, fallback.latency),
  loss: value?.loss ?? fallback.loss,
  duplicate: value?.duplicate ?? fallback.duplicate
})

const regionsFromFile = (file: ScenarioFile): ReadonlyArray<RegionSpec> =>
  file.topology.regions.map((region, index) => ({
    id: region.id,
    priority: region.priority ?? index + 1,
    primary: region.primary ?? false,
    nodes:
      region.nodes === undefined
        ? [`${region.id}-node1`]
        : typeof region.nodes === "number"
          ? Array.from({ length: region.nodes }, (_, position) => `${region.id}-node${position + 1}`)
          : region.nodes
  }))

const faultFromFile = (fault: typeof FaultFile.Type): Fault => {
  const atMs = fault.at_ms
  switch (fault.kind) {
    case "isolate":
      return { atMs, kind: "isolate", region: fault.region }
    case "split":
      return { atMs, kind: "split", groups: fault.groups }
    case "one_way":
      return { atMs, kind: "one_way", from: fault.from, to: fault.to }
    case "bridge":
      return { atMs, kind: "bridge", node: fault.node, groups: fault.groups }
    case "heal":
    case "dns_outage":
      return { atMs, kind: fault.kind }
    case "clock_jump":
      return { atMs, kind: "clock_jump", target: fault.target, deltaMs: fault.delta_ms }
    case "store":
      return { atMs, kind: "store", region: fault.region, slowMs: range(fault.slow_ms, { min: 0, max: 0 }), failRate: fault.fail_rate ?? 0 }
    case "promote":
      return { atMs, kind: "promote", region: fault.region }
    case "configure":
      return { atMs, kind: "configure", target: fault.target, regionPriorities: fault.region_priorities }
    case "crash":
      return { atMs, kind: "crash", target: fault.target, ...(fault.replaced === true ? { replaced: true } : {}), ...(fault.graceful === true ? { graceful: true } : {}) }
    case "topology":
      // The file schema's filter guarantees the keys each change takes.
      return {
        atMs,
        kind: "topology",
        change: fault.change === "add_target" || fault.change === "remove_target" ? { op: fault.change, from: fault.from!, to: fault.to! } : { op: fault.change, region: fault.region! }
      }
    default:
      return { atMs, kind: fault.kind, target: fault.target }
  }
}

/** The network settings of a scenario file's `network` block. */
const networkOf = (network: typeof NetworkFile.Type): SimNetwork.Settings => {
  const remote = link(network, defaults.remote)
  return {
    ...(network.down_refuses === undefined ? {} : { downRefuses: network.down_refuses }),
    ...(network.in_flight_per_target_max === undefined ? {} : { inFlightPerTargetMax: network.in_flight_per_target_max }),
    ...(network.message_bytes_max === undefined ? {} : { messageBytesMax: network.message_bytes_max }),
    remote,
    local: link(network.local, defaults.local),
    links: (network.links ?? []).flatMap((entry) => {
      const override = link(entry, remote)
      const forward = { from: entry.from, to: entry.to, link: override }
      return entry.both_ways === true ? [forward, { from: entry.to, to: entry.from, link: override }] : [forward]
    })
  }
}

/** A scenario's network settings as a file's `network` block. */
const networkToFile = (network: SimNetwork.Settings) => ({
  ...(network.downRefuses === undefined ? {} : { down_refuses: network.downRefuses }),
  ...(network.inFlightPerTargetMax === undefined ? {} : { in_flight_per_target_max: network.inFlightPerTargetMax }),
  ...(network.messageBytesMax === undefined ? {} : { message_bytes_max: network.messageBytesMax }),
  ...linkToFile(network.remote),
  local: linkToFile(network.local),
  ...(network.links.length === 0 ? {} : { links: network.links.map((entry) => ({ from: entry.from, to: entry.to, ...linkToFile(entry.link) })) })
})

/** `replication.heartbeat` with defaults filled in, and `heartbeat_overrides` when given. */
const heartbeatFromFile = (replication: NonNullable<ScenarioFile["replication"]>): Pick<ReplicationSpec, "heartbeat" | "heartbeatOverrides"> => {
  const heartbeat = replication.heartbeat ?? {}
  return {
    heartbeat: {
      intervalMs: heartbeat.interval_ms ?? defaults.heartbeat.intervalMs,
      timeoutMs: heartbeat.timeout_ms ?? defaults.heartbeat.timeoutMs,
      recoverAfter: heartbeat.recover_after ?? defaults.heartbeat.recoverAfter
    },
    ...(replication.heartbeat_overrides === undefined ? {} : { heartbeatOverrides: overridesFromFile(replication.heartbeat_overrides) })
  }
}

/** `replication.heartbeat_overrides` as the model keeps it. */
const overridesFromFile = (file: Readonly<Record<string, typeof HeartbeatFile.Type>>): Record<string, Partial<HeartbeatSpec>> =>
  Object.fromEntries(
    Object.entries(file).map(([target, spec]) => [
      target,
      {
        ...(spec.interval_ms === undefined ? {} : { intervalMs: spec.interval_ms }),
        ...(spec.timeout_ms === undefined ? {} : { timeoutMs: spec.timeout_ms }),
        ...(spec.recover_after === undefined ? {} : { recoverAfter: spec.recover_after })
      }
    ])
  )

/** The model's heartbeat overrides as the file writes them. */
const overridesToFile = (overrides: Readonly<Record<string, Partial<HeartbeatSpec>>>): Record<string, typeof HeartbeatFile.Type> =>
  Object.fromEntries(
    Object.entries(overrides).map(([target, spec]) => [
      target,
      {
        ...(spec.intervalMs === undefined ? {} : { interval_ms: spec.intervalMs }),
        ...(spec.timeoutMs === undefined ? {} : { timeout_ms: spec.timeoutMs }),
        ...(spec.recoverAfter === undefined ? {} : { recover_after: spec.recoverAfter })
      }
    ])
  )

/** `replication.agent` with defaults filled in; the window and catch-up size stay unset unless given, as in `serve`. */
const agentFromFile = (agent: NonNullable<NonNullable<ScenarioFile["replication"]>["agent"]>): Agent.Settings => ({
  batchSize: agent.batch_size ?? defaults.agent.batchSize,
  flushDelayMs: agent.flush_delay_ms ?? defaults.agent.flushDelayMs,
  retryDelayMs: agent.retry_delay_ms ?? defaults.agent.retryDelayMs,
  retryDelayMaxMs: agent.retry_delay_max_ms ?? defaults.agent.retryDelayMaxMs,
  maxRetries: agent.max_retries ?? defaults.agent.maxRetries,
  requestTimeoutMs: agent.request_timeout_ms ?? defaults.agent.requestTimeoutMs,
  ...(agent.batches_in_flight_max === undefined ? {} : { batchesInFlightMax: agent.batches_in_flight_max }),
  ...(agent.catch_up_batch_size === undefined ? {} : { catchUpBatchSize: agent.catch_up_batch_size })
})

/** The model of a decoded file, with defaults filled in. */
const fromFile = (file: ScenarioFile): Scenario => {
  const regions = regionsFromFile(file)
  const replication = file.replication ?? {}
  const failover = replication.failover ?? {}
  const network = file.network ?? {}
  const workload = file.workload ?? {}
  const vaults = (file.topology.vaults ?? []).map((vault): Topology.VaultPlacement =>
    vault.allowed === undefined ? { vault: vault.id, homeRegion: vault.home } : { vault: vault.id, homeRegion: vault.home, allowedRegions: vault.allowed }
  )
  const targets = file.topology.targets
  return {
    name: file.name,
    description: (file.description ?? "").trim(),
    budgetMs: file.budget_ms,
    topology: { strategy: file.topology.strategy, regions, targets: targets === undefined || targets === "full_mesh" ? undefined : targets, vaults },
    store: file.store ?? "per_node",
    replication: {
      conflictResolution: replication.conflict_resolution ?? "LastWriteWins",
      regionPriorities: replication.region_priorities ?? [],
      clock: replication.clock ?? "hlc",
      agent: agentFromFile(replication.agent ?? {}),
      bufferSize: replication.buffer_size ?? defaults.bufferSize,
      ...heartbeatFromFile(replication),
      failover: {
        detectAfterMs: failover.detect_after_ms ?? defaults.failover.detectAfterMs,
        promoteBackAfterMs: failover.promote_back_after_ms ?? defaults.failover.promoteBackAfterMs,
        fenceAfterMs: failover.fence_after_ms ?? defaults.failover.fenceAfterMs,
        confirmAfterMs: failover.confirm_after_ms ?? defaults.failover.confirmAfterMs,
        checkIntervalMs: failover.check_interval_ms ?? defaults.failover.checkIntervalMs
      }
    },
    clocks: {
      default: { offsetMs: range(file.clocks?.offset_ms, { min: 0, max: 0 }), driftPpm: range(file.clocks?.drift_ppm, { min: 0, max: 0 }) },
      nodes: Object.fromEntries(
        Object.entries(file.clocks?.nodes ?? {}).map(([node, spec]) => [
          node,
          {
            ...(spec.offset_ms === undefined ? {} : { offsetMs: range(spec.offset_ms, { min: 0, max: 0 }) }),
            ...(spec.drift_ppm === undefined ? {} : { driftPpm: range(spec.drift_ppm, { min: 0, max: 0 }) })
          }
        ])
      )
    },
    network: networkOf(network),
    workload: {
      startMs: workload.start_ms ?? defaults.workload.startMs,
      durationMs: workload.duration_ms ?? defaults.workload.durationMs,
      ratePerSec: workload.rate_per_sec ?? defaults.workload.ratePerSec,
      regions: workload.regions ?? regions.map((region) => region.id),
      vaults: workload.vaults ?? (vaults.length > 0 ? vaults.map((vault) => vault.vault) : ["acme"]),
      resourceTypes: workload.resource_types ?? defaults.workload.resourceTypes,
      relations: workload.relations ?? defaults.workload.relations,
      tuples: workload.tuples ?? defaults.workload.tuples,
      hotTuples: workload.hot_tuples ?? defaults.workload.hotTuples,
      hotFraction: workload.hot_fraction ?? defaults.workload.hotFraction,
      deleteFraction: workload.delete_fraction ?? defaults.workload.deleteFraction,
      opsPerWriteMax: workload.ops_per_write_max ?? defaults.workload.opsPerWriteMax,
      ...(workload.deadline_ms === undefined ? {} : { deadlineMs: workload.deadline_ms })
    },
    faults: [...(file.faults ?? []).map(faultFromFile)].sort((a, b) => a.atMs - b.atMs),
    checks: file.checks ?? defaultChecks(file.topology.strategy),
    ...checkSettingsFromFile(file.check_settings),
    ...executionFromFile(file)
  }
}

/** How a run executes (the scheduler's yield points, how messages travel, how nodes come up), from a file; `wire` and `startup` only when given. */
const executionFromFile = (file: ScenarioFile): Pick<Scenario, "scheduler" | "wire" | "startup" | "discovery"> => ({
  scheduler: {
    yieldOpsMin: file.scheduler?.yield_ops_min ?? defaults.scheduler.yieldOpsMin,
    yieldOpsMax: file.scheduler?.yield_ops_max ?? defaults.scheduler.yieldOpsMax
  },
  ...(file.wire === undefined ? {} : { wire: file.wire }),
  ...(file.startup === undefined
    ? {}
    : {
        startup: {
          spreadMs: file.startup.spread_ms ?? 0,
          ...(file.startup.at_ms === undefined ? {} : { atMs: file.startup.at_ms }),
          ...(file.startup.restart_ms === undefined ? {} : { restartMs: file.startup.restart_ms })
        }
      }),
  ...(file.discovery === undefined
    ? {}
    : { discovery: { intervalMs: file.discovery.interval_ms, firstRoundWaitMs: file.discovery.first_round_wait_ms ?? Discovery.firstRoundWaitMsDefault } })
})

/** The file form of `executionFromFile`'s part of a scenario. */
const executionToFile = (scenario: Scenario) => ({
  scheduler: { yield_ops_min: scenario.scheduler.yieldOpsMin, yield_ops_max: scenario.scheduler.yieldOpsMax },
  ...(scenario.wire === undefined ? {} : { wire: scenario.wire }),
  ...(scenario.startup === undefined
    ? {}
    : {
        startup: {
          spread_ms: scenario.startup.spreadMs,
          ...(scenario.startup.atMs === undefined ? {} : { at_ms: scenario.startup.atMs }),
          ...(scenario.startup.restartMs === undefined ? {} : { restart_ms: scenario.startup.restartMs })
        }
      }),
  ...(scenario.discovery === undefined ? {} : { discovery: { interval_ms: scenario.discovery.intervalMs, first_round_wait_ms: scenario.discovery.firstRoundWaitMs } })
})

/** The check settings a file gives, left out entirely when it gives none (so encoding round-trips). */
const checkSettingsFromFile = (settings: ScenarioFile["check_settings"]): { readonly checkSettings?: CheckSettings } => {
  if (settings === undefined) return {}
  return {
    checkSettings: {
      ...(settings.min_availability === undefined ? {} : { minAvailability: settings.min_availability }),
      ...(settings.max_clock_offset_ms === undefined ? {} : { maxClockOffsetMs: settings.max_clock_offset_ms })
    }
  }
}

const checkSettingsToFile = (settings: CheckSettings | undefined): Pick<ScenarioFile, "check_settings"> => {
  if (settings === undefined) return {}
  return {
    check_settings: {
      ...(settings.minAvailability === undefined ? {} : { min_availability: settings.minAvailability }),
      ...(settings.maxClockOffsetMs === undefined ? {} : { max_clock_offset_ms: settings.maxClockOffsetMs })
    }
  }
}

/** The checks that apply to every strategy when a scenario names none. */
const commonChecks: ReadonlyArray<CheckName> = ["safety", "liveness", "convergence", "acknowledged", "drained", "residency", "unique_ids", "store_integrity", "timestamps", "progress"]

/** The checks that apply to a strategy when a scenario names none. */
export const defaultChecks = (strategy: Topology.ReplicationStrategy): ReadonlyArray<CheckName> =>
  strategy === "PrimaryReplica" ? [...commonChecks, "epochs"] : commonChecks

/** Cross-references a decoded scenario; returns its problems, each with a key path. */
export const validate = (scenario: Scenario): ReadonlyArray<string> => {
  const problems: Array<string> = []
  const regionIds = new Set(scenario.topology.regions.map((region) => region.id))
  const nodeIds = new Set(nodesOf(scenario).map((node) => node.nodeId))
  const region = (path: string, id: string) => {
    if (!regionIds.has(id)) problems.push(`${path}: unknown region '${id}'`)
  }
  const node = (path: string, id: string) => {
    if (!nodeIds.has(id)) problems.push(`${path}: unknown node '${id}'`)
  }
  const target = (path: string, id: string) => {
    if (!regionIds.has(id) && !nodeIds.has(id)) problems.push(`${path}: '${id}' is neither a region nor a node`)
  }
  const built = topologyFor(scenario, scenario.topology.regions[0]?.id ?? "none")
  if (Either.isLeft(built)) problems.push(`topology: ${built.left.message}`)
  const resolver = ConflictResolver.make({ strategy: scenario.replication.conflictResolution, regionPriorities: scenario.replication.regionPriorities })
  if (Either.isLeft(resolver)) problems.push(`replication.conflict_resolution: ${resolver.left.message}`)
  scenario.replication.regionPriorities.forEach((id, index) => region(`replication.region_priorities[${index}]`, id))
  // As in the node configuration: a region missing from the list is an error, not priority 0.
  const unranked = scenario.replication.conflictResolution === "SourcePriority" ? [...regionIds].filter((id) => !scenario.replication.regionPriorities.includes(id)) : []
  if (unranked.length > 0) problems.push(`replication.region_priorities: SourcePriority needs a priority for every region; missing ${unranked.map((id) => `'${id}'`).join(", ")}`)
  for (const id of Object.keys(scenario.clocks.nodes)) node(`clocks.nodes.${id}`, id)
  for (const id of Object.keys(scenario.replication.heartbeatOverrides ?? {})) target(`replication.heartbeat_overrides.${id}`, id)
  scenario.network.links.forEach((entry, index) => {
    region(`network.links[${index}].from`, entry.from)
    region(`network.links[${index}].to`, entry.to)
  })
  scenario.workload.regions.forEach((id, index) => region(`workload.regions[${index}]`, id))
  if (scenario.topology.strategy === "MultiMaster") {
    const placed = new Set(scenario.topology.vaults.map((vault) => vault.vault))
    scenario.workload.vaults.forEach((vault, index) => {
      if (!placed.has(vault)) problems.push(`workload.vaults[${index}]: vault '${vault}' has no placement in topology.vaults`)
    })
  }
  if (scenario.workload.hotTuples > scenario.workload.tuples) problems.push(`workload.hot_tuples: must not exceed workload.tuples (${scenario.workload.tuples})`)
  if (scenario.scheduler.yieldOpsMin > scenario.scheduler.yieldOpsMax) problems.push("scheduler.yield_ops_min: must not exceed scheduler.yield_ops_max")
  scenario.faults.forEach((fault, index) => {
    if (fault.kind === "dns_outage" && scenario.discovery === undefined) problems.push(`faults[${index}]: dns_outage needs discovery (nodes that find each other through DNS)`)
    if (fault.kind === "crash" && fault.replaced === true && scenario.discovery === undefined) {
      problems.push(`faults[${index}].replaced: a replaced pod's DNS record comes and goes only with discovery (nodes that find each other through DNS)`)
    }
  })
  if ((scenario.startup?.spreadMs ?? 0) >= scenario.budgetMs) problems.push(`startup.spread_ms: must be below budget_ms (${scenario.budgetMs}), or some node might never start`)
  for (const [id, atMs] of Object.entries(scenario.startup?.atMs ?? {})) {
    target(`startup.at_ms.${id}`, id)
    if (atMs >= scenario.budgetMs) problems.push(`startup.at_ms.${id}: must be below budget_ms (${scenario.budgetMs}), or it would never start`)
  }
  const restart = scenario.startup?.restartMs
  if (restart !== undefined && restart.min > restart.max) problems.push(`startup.restart_ms: min (${restart.min}) must not exceed max (${restart.max})`)
  if (restart !== undefined && restart.max >= scenario.budgetMs) problems.push(`startup.restart_ms.max: must be below budget_ms (${scenario.budgetMs}), or a restarted node might never serve`)
  scenario.faults.forEach((fault, index) => validateFault(fault, `faults[${index}]`, { region, node, target }))
  scenario.faults.forEach((fault, index) => problems.push(...configureProblems(scenario, fault, `faults[${index}]`)))
  problems.push(...TopologyFaults.problems(scenario.topology, scenario.faults))
  return problems
}

/**
 * A `configure` fault's ranks: under SourcePriority, the scenario's list in its order, less
 * regions a topology fault removed at or before it (their changes stay in the logs: dropping
 * their rank is the operator's mistake the nodes must refuse to start on). Other changes to the
 * ranks would make regions resolve conflicts differently, which no node can see.
 */
const configureProblems = (scenario: Scenario, fault: Fault, path: string): ReadonlyArray<string> => {
  if (fault.kind !== "configure") return []
  if (scenario.replication.conflictResolution !== "SourcePriority") return [`${path}: configure sets region_priorities, which only SourcePriority has`]
  const removed = new Set(
    scenario.faults.flatMap((other) => (other.kind === "topology" && other.atMs <= fault.atMs && !TopologyFaults.isTargetChange(other.change) && other.change.op === "remove_region" ? [other.change.region] : []))
  )
  const kept = scenario.replication.regionPriorities.filter((region) => fault.regionPriorities.includes(region))
  const same = kept.length === fault.regionPriorities.length && kept.every((region, index) => region === fault.regionPriorities[index])
  const dropped = scenario.replication.regionPriorities.filter((region) => !fault.regionPriorities.includes(region))
  if (same && dropped.every((region) => removed.has(region))) return []
  return [`${path}.region_priorities: expected replication.region_priorities in its order, less regions a topology fault removed before ${fault.atMs} ms`]
}

const validateFault = (
  fault: Fault,
  path: string,
  check: { readonly region: (path: string, id: string) => void; readonly node: (path: string, id: string) => void; readonly target: (path: string, id: string) => void }
): void => {
  switch (fault.kind) {
    case "isolate":
    case "store":
    case "promote":
      return check.region(`${path}.region`, fault.region)
    case "split":
      return fault.groups.forEach((group, index) => group.forEach((id, position) => check.region(`${path}.groups[${index}][${position}]`, id)))
    case "bridge":
      check.node(`${path}.node`, fault.node)
      return fault.groups.forEach((group, index) => group.forEach((id, position) => check.region(`${path}.groups[${index}][${position}]`, id)))
    case "one_way":
      check.region(`${path}.from`, fault.from)
      return check.region(`${path}.to`, fault.to)
    case "heal":
    case "dns_outage":
      return
    case "topology":
      if (!TopologyFaults.isTargetChange(fault.change)) return check.region(`${path}.region`, fault.change.region)
      check.region(`${path}.from`, fault.change.from)
      return check.region(`${path}.to`, fault.change.to)
    default:
      return check.target(`${path}.target`, fault.target)
  }
}

// ---------------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------------

/**
 * Writes a scenario in the file format, so that `decode(encode(scenario))` equals the
 * scenario. Generated scenarios (swarm draws, shrunk schedules) are written this way and
 * replay with `sim run`. Every setting is written out, defaults included, so a file stays
 * the same run when a default changes later.
 */
export const encode = (scenario: Scenario): string => {
  const document = new YAML.Document(toFile(scenario))
  flowStyle(document.contents, 0)
  return document.toString({ lineWidth: 0 })
}

/** Small collections below the top-level sections are written on one line. */
const flowStyle = (node: unknown, depth: number): boolean => {
  if (!YAML.isCollection(node)) return true
  const children = node.items.map((item) => (YAML.isPair(item) ? item.value : item))
  const childrenFlow = children.map((child) => flowStyle(child, depth + 1)).every(Boolean)
  const listOfMaps = YAML.isSeq(node) && children.some((child) => YAML.isMap(child))
  const listOfScalars = YAML.isSeq(node) && children.every((child) => !YAML.isCollection(child))
  node.flow = (depth >= 2 || (depth === 1 && listOfScalars)) && !listOfMaps && childrenFlow
  return node.flow
}

const rangeToFile = (value: Range): { readonly min: number; readonly max: number } => ({ min: value.min, max: value.max })

const latencyToFile = (latency: SimNetwork.Latency): typeof LatencyFile.Type => {
  switch (latency.kind) {
    case "fixed":
      return { fixed: latency.ms }
    case "uniform":
      return { uniform: [latency.minMs, latency.maxMs] }
    case "normal":
      return { normal: { mean: latency.meanMs, stddev: latency.stddevMs, min: latency.minMs } }
  }
}

const linkToFile = (link: SimNetwork.Link) => ({ latency: latencyToFile(link.latency), loss: link.loss, duplicate: link.duplicate })

const faultToFile = (fault: Fault): typeof FaultFile.Type => {
  const at_ms = fault.atMs
  switch (fault.kind) {
    case "isolate":
      return { at_ms, kind: "isolate", region: fault.region }
    case "split":
      return { at_ms, kind: "split", groups: fault.groups }
    case "one_way":
      return { at_ms, kind: "one_way", from: fault.from, to: fault.to }
    case "bridge":
      return { at_ms, kind: "bridge", node: fault.node, groups: fault.groups }
    case "heal":
    case "dns_outage":
      return { at_ms, kind: fault.kind }
    case "clock_jump":
      return { at_ms, kind: "clock_jump", target: fault.target, delta_ms: fault.deltaMs }
    case "store":
      return { at_ms, kind: "store", region: fault.region, slow_ms: rangeToFile(fault.slowMs), fail_rate: fault.failRate }
    case "promote":
      return { at_ms, kind: "promote", region: fault.region }
    case "configure":
      return { at_ms, kind: "configure", target: fault.target, region_priorities: fault.regionPriorities }
    case "crash":
      return { at_ms, kind: "crash", target: fault.target, ...(fault.replaced === true ? { replaced: true } : {}), ...(fault.graceful === true ? { graceful: true } : {}) }
    case "topology": {
      const { change } = fault
      return TopologyFaults.isTargetChange(change)
        ? { at_ms, kind: "topology", change: change.op, from: change.from, to: change.to }
        : { at_ms, kind: "topology", change: change.op, region: change.region }
    }
    default:
      return { at_ms, kind: fault.kind, target: fault.target }
  }
}

const clockToFile = (spec: Partial<ClockSpec>) => ({
  ...(spec.offsetMs === undefined ? {} : { offset_ms: rangeToFile(spec.offsetMs) }),
  ...(spec.driftPpm === undefined ? {} : { drift_ppm: rangeToFile(spec.driftPpm) })
})

/** The file form of a scenario (the inverse of `fromFile`). */
const toFile = (scenario: Scenario): ScenarioFile => {
  const { topology, replication, workload, network } = scenario
  const conflictResolution = replication.conflictResolution
  if (conflictResolution === "Custom") throw new Error("a scenario with a custom conflict resolver has no file form")
  return {
    name: scenario.name,
    ...(scenario.description === "" ? {} : { description: scenario.description }),
    budget_ms: scenario.budgetMs,
    topology: {
      strategy: topology.strategy,
      regions: topology.regions.map((region) => ({ id: region.id, priority: region.priority, ...(region.primary ? { primary: true } : {}), nodes: region.nodes })),
      ...(topology.targets === undefined ? {} : { targets: topology.targets }),
      ...(topology.vaults.length === 0
        ? {}
        : { vaults: topology.vaults.map((vault) => ({ id: vault.vault, home: vault.homeRegion, ...(vault.allowedRegions === undefined ? {} : { allowed: vault.allowedRegions }) })) })
    },
    store: scenario.store,
    replication: {
      conflict_resolution: conflictResolution,
      ...(replication.regionPriorities.length === 0 ? {} : { region_priorities: replication.regionPriorities }),
      clock: replication.clock,
      agent: {
        batch_size: replication.agent.batchSize,
        flush_delay_ms: replication.agent.flushDelayMs,
        retry_delay_ms: replication.agent.retryDelayMs,
        retry_delay_max_ms: replication.agent.retryDelayMaxMs,
        max_retries: replication.agent.maxRetries,
        request_timeout_ms: replication.agent.requestTimeoutMs,
        ...(replication.agent.batchesInFlightMax === undefined ? {} : { batches_in_flight_max: replication.agent.batchesInFlightMax }),
        ...(replication.agent.catchUpBatchSize === undefined ? {} : { catch_up_batch_size: replication.agent.catchUpBatchSize })
      },
      buffer_size: replication.bufferSize,
      heartbeat: { interval_ms: replication.heartbeat.intervalMs, timeout_ms: replication.heartbeat.timeoutMs, recover_after: replication.heartbeat.recoverAfter },
      ...(replication.heartbeatOverrides === undefined ? {} : { heartbeat_overrides: overridesToFile(replication.heartbeatOverrides) }),
      failover: {
        detect_after_ms: replication.failover.detectAfterMs,
        promote_back_after_ms: replication.failover.promoteBackAfterMs,
        fence_after_ms: replication.failover.fenceAfterMs,
        confirm_after_ms: replication.failover.confirmAfterMs,
        check_interval_ms: replication.failover.checkIntervalMs
      }
    },
    clocks: {
      offset_ms: rangeToFile(scenario.clocks.default.offsetMs),
      drift_ppm: rangeToFile(scenario.clocks.default.driftPpm),
      ...(Object.keys(scenario.clocks.nodes).length === 0 ? {} : { nodes: Object.fromEntries(Object.entries(scenario.clocks.nodes).map(([node, spec]) => [node, clockToFile(spec)])) })
    },
    network: networkToFile(network),
    workload: {
      start_ms: workload.startMs,
      duration_ms: workload.durationMs,
      rate_per_sec: workload.ratePerSec,
      regions: workload.regions,
      vaults: workload.vaults,
      resource_types: workload.resourceTypes,
      relations: workload.relations,
      tuples: workload.tuples,
      hot_tuples: workload.hotTuples,
      hot_fraction: workload.hotFraction,
      delete_fraction: workload.deleteFraction,
      ops_per_write_max: workload.opsPerWriteMax,
      ...(workload.deadlineMs === undefined ? {} : { deadline_ms: workload.deadlineMs })
    },
    faults: scenario.faults.map(faultToFile),
    checks: scenario.checks,
    ...checkSettingsToFile(scenario.checkSettings),
    ...executionToFile(scenario)
  }
}
