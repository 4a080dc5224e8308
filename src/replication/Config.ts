/**
 * The replication configuration: decodes the YAML of the seed document (either a top-level
 * `replication:` section or `engine.replication:`) plus `INFERADB__...` environment overrides
 * into a typed `ReplicationConfig` whose topology has passed `TopologyBuilder` validation.
 *
 * Every problem becomes one `ConfigError` naming the exact key path (`engine.replication.agent.batch_size`,
 * `replication.regions[1].zones[0].nodes[0].id`) or the environment variable that set the value,
 * the offending value and what was expected. Unknown keys and unknown replication variables are
 * errors, so a typo cannot silently fall back to a default.
 *
 * Besides the seed's keys the section holds the runtime's: `security` (how regions
 * authenticate each other), `grpc` and `http` (where the node listens) and `store` (where its
 * durable state lives). Their defaults that depend on the topology (the gRPC address is the
 * local node's endpoint, the lmdb directory is named after the region and node) are computed
 * by `grpcListen`, `storePath` and `storePrefix`, so an overridden local region moves them too.
 *
 * This module is pure: the caller reads the file (`parseBytes` takes its bytes and refuses
 * invalid UTF-8) and passes the environment in. File I/O and
 * `process.env` belong to the runtime wiring, which also reads `security.token_file` and the
 * PEM files.
 */
import { Data, Either, ParseResult, Schema } from "effect"
import * as YAML from "yaml"
import * as Clock from "./Clock.js"
import * as Discovery from "./Discovery.js"
import type * as ConflictResolver from "./ConflictResolver.js"
import * as Timestamp from "./Timestamp.js"
import * as Topology from "./Topology.js"
import * as TopologyBuilder from "./TopologyBuilder.js"

// ---------------------------------------------------------------------------------------------
// The decoded configuration
// ---------------------------------------------------------------------------------------------

/** Replication agent bounds; see the `agent:` section of the seed. */
export interface AgentSettings {
  /** Failures after which backoff stops growing and the agent probes at `retryDelayMaxMs` (never gives up). */
  readonly maxRetries: number
  /** Base delay of the exponential backoff between retries. */
  readonly retryDelayMs: number
  /** Cap of the exponential backoff. */
  readonly retryDelayMaxMs: number
  /** Changes per batch sent to a target. */
  readonly batchSize: number
  /** How long a partial batch may wait for more changes before it is sent anyway. */
  readonly flushDelayMs: number
  /** Deadline of one replication request (configured in seconds as `request_timeout_secs`). */
  readonly requestTimeoutMs: number
  /** Batches sent to one target before the first of them is acknowledged (`batches_in_flight_max`). */
  readonly batchesInFlightMax?: number
  /** Change feed buffer per subscriber; an overflowing subscriber is told and catches up from the log. */
  readonly bufferSize: number
}

/** Thresholds of the replication health report. */
export interface HealthSettings {
  /** Replication lag above which the replication health is `degraded`. */
  readonly lagMsMax: number
}

/** Node liveness tracking. */
export interface HeartbeatSettings {
  readonly intervalMs: number
  /** A node without a heartbeat for this long is marked Unreachable. */
  readonly timeoutMs: number
  /** Consecutive good heartbeats a node needs to return to Healthy (prevents flapping). */
  readonly recoverAfter: number
}

/** The PrimaryReplica failover controller's timers (`Failover.Settings`), in milliseconds. */
export interface FailoverSettings {
  /** How long the primary must be unavailable before the elected region promotes itself. */
  readonly detectAfterMs: number
  /** How long the original primary must be available (and caught up) before it gets the role back. */
  readonly promoteBackAfterMs: number
  /** How long a primary may see at most half of the regions before it stops taking writes. */
  readonly fenceAfterMs: number
  /** How long a fenced primary must see more than half of the regions before it serves again. */
  readonly confirmAfterMs: number
  /** How often the controller looks at its view. */
  readonly checkIntervalMs: number
}

/** How gRPC calls between regions (and to the public API) are authenticated; see `runtime/Auth.ts`. */
export type SecurityMode = "insecure" | "token" | "mtls"

/**
 * The `security:` section. File paths are kept as written: this module does no I/O, the
 * runtime reads `token_file` and the PEM files when it starts.
 */
export interface SecuritySettings {
  readonly mode: SecurityMode
  /** The shared bearer token (token mode, optional under mtls); never printed. */
  readonly token: string | undefined
  /** A file whose content (trimmed) is the bearer token, instead of `token`. */
  readonly tokenFile: string | undefined
  readonly caFile: string | undefined
  readonly certFile: string | undefined
  readonly keyFile: string | undefined
  /** Name to verify peers' server certificates against instead of their endpoint host. */
  readonly serverNameOverride: string | undefined
}

/** The `grpc:` section: the node's replication and public API server. */
export interface GrpcSettings {
  /** `host:port` to bind; undefined means the local node's endpoint (see `grpcListen`). */
  readonly listen: string | undefined
  /** Replication batches in flight per target endpoint. */
  readonly inFlightPerTargetMax: number
  /** Largest gRPC message sent or received, in bytes. */
  readonly messageBytesMax: number
  /** Most operations one public Write or Delete request may carry; more get INVALID_ARGUMENT. */
  readonly writeOperationsMax: number
}

/** The `http:` section: `/healthz`, `/livez`, `/readyz` and `/metrics`. */
export interface HttpSettings {
  readonly listen: string
}

/** Where the region's durable state lives. */
export type StoreKind = "lmdb" | "foundationdb" | "memory"

/** The `store:` section. */
export interface StoreSettings {
  readonly kind: StoreKind
  /** lmdb directory; undefined means `.data/<local_region>-<node_id>` (see `storePath`). */
  readonly path: string | undefined
  /** FoundationDB cluster file; undefined means `FDB_CLUSTER_FILE`, then the client's default. */
  readonly clusterFile: string | undefined
  /** FoundationDB key prefix; undefined means `inferadb/<local_region>` (see `storePrefix`). */
  readonly prefix: string | undefined
}

/** The whole decoded replication configuration. */
export interface ReplicationConfig {
  readonly enabled: boolean
  readonly strategy: Topology.ReplicationStrategy
  readonly localRegion: Topology.RegionId
  /** This process's node id, when set (`node_id` or `INFERADB__ENGINE__NODE_ID`). */
  readonly nodeId: Topology.NodeId | undefined
  readonly conflictResolution: ConflictResolver.Strategy
  /** SourcePriority order, lowest priority first (the last region listed wins), as in the seed. */
  readonly regionPriorities: ReadonlyArray<Topology.RegionId>
  readonly clock: Timestamp.ClockMode
  /** How far ahead of this node's clock a received timestamp may pull its HLC; also the offset from its peers past which it reports degraded. */
  readonly maxOffsetMs: number
  readonly agent: AgentSettings
  readonly health: HealthSettings
  readonly heartbeat: HeartbeatSettings
  readonly failover: FailoverSettings
  readonly security: SecuritySettings
  readonly grpc: GrpcSettings
  readonly http: HttpSettings
  readonly store: StoreSettings
  readonly discovery: DiscoverySettings
  readonly topology: Topology.Topology
}

/** The settings a configuration gets when its file leaves them out. */
export type Defaults = Pick<
  ReplicationConfig,
  "conflictResolution" | "regionPriorities" | "clock" | "maxOffsetMs" | "agent" | "health" | "heartbeat" | "failover" | "security" | "grpc" | "http" | "store" | "discovery"
>

/** Defaults of every optional setting (the seed's values where it gives one). */
export const defaults: Defaults = {
  conflictResolution: "LastWriteWins",
  regionPriorities: [],
  clock: "hlc",
  maxOffsetMs: Clock.maxOffsetMsDefault,
  agent: {
    maxRetries: 5,
    retryDelayMs: 100,
    retryDelayMaxMs: 10_000,
    batchSize: 100,
    flushDelayMs: 10,
    requestTimeoutMs: 10_000,
    bufferSize: 10_000
  },
  health: { lagMsMax: 5_000 },
  heartbeat: { intervalMs: 1_000, timeoutMs: 30_000, recoverAfter: 3 },
  // Sized for the default heartbeat (1 s interval, 30 s timeout, 3 to recover).
  failover: { detectAfterMs: 10_000, promoteBackAfterMs: 30_000, fenceAfterMs: 0, confirmAfterMs: 60_000, checkIntervalMs: 1_000 },
  security: {
    mode: "insecure",
    token: undefined,
    tokenFile: undefined,
    caFile: undefined,
    certFile: undefined,
    keyFile: undefined,
    serverNameOverride: undefined
  },
  grpc: { listen: undefined, inFlightPerTargetMax: 8, messageBytesMax: 16 * 1024 * 1024, writeOperationsMax: 5_000 },
  http: { listen: "127.0.0.1:8080" },
  store: { kind: "lmdb", path: undefined, clusterFile: undefined, prefix: undefined },
  discovery: { mode: "static", intervalMs: 10_000, targets: [] }
}

/**
 * A configuration built in code (tests, simulator) around an already validated topology.
 * Replication is enabled unless the overrides say otherwise; settings are not re-validated.
 */
export const make = (
  topology: Topology.Topology,
  overrides: Partial<Omit<ReplicationConfig, "topology" | "strategy" | "localRegion">> = {}
): ReplicationConfig => ({
  enabled: true,
  nodeId: undefined,
  ...defaults,
  ...overrides,
  strategy: topology.strategy,
  localRegion: topology.localRegion,
  topology
})

// ---------------------------------------------------------------------------------------------
// The error
// ---------------------------------------------------------------------------------------------

/** The configuration is invalid; `path` is the key path or environment variable at fault. */
export class ConfigError extends Data.TaggedError("ConfigError")<{
  readonly path: string
  readonly value: string
  readonly expected: string
  readonly message: string
}> {}

const configError = (path: string, value: string, expected: string, detail?: string): ConfigError =>
  new ConfigError({
    path,
    value,
    expected,
    message: `${path}: expected ${expected}, got ${value}${detail === undefined ? "" : ` (${detail})`}`
  })

// ---------------------------------------------------------------------------------------------
// The file schema (snake_case, as written in YAML)
// ---------------------------------------------------------------------------------------------

/** Makes every failure inside a leaf schema report `text` as what was expected. */
const expecting = (text: string) => ({ message: () => ({ message: text, override: true }) })

const integerAtLeast = (minimum: number) =>
  Schema.Number.pipe(Schema.int(), Schema.greaterThanOrEqualTo(minimum)).annotations(expecting(`an integer >= ${minimum}`))

const Id = Schema.NonEmptyTrimmedString.annotations(expecting("a non-empty string without surrounding spaces"))
const Endpoint = Schema.NonEmptyTrimmedString.annotations(expecting("a non-empty endpoint such as host:port"))
const Name = Schema.String.annotations(expecting("a string"))
const Flag = Schema.Boolean.annotations(expecting("true or false"))
const IdList = Schema.Array(Id).annotations({ message: () => "a list of region ids" })

const StrategyField = Schema.transformLiterals(
  ["ActiveActive", "ActiveActive"],
  ["active_active", "ActiveActive"],
  ["PrimaryReplica", "PrimaryReplica"],
  ["primary_replica", "PrimaryReplica"],
  ["MultiMaster", "MultiMaster"],
  ["multi_master", "MultiMaster"]
).annotations(expecting("one of ActiveActive, PrimaryReplica, MultiMaster (or active_active, primary_replica, multi_master)"))

const ConflictResolutionField = Schema.transformLiterals(
  ["LastWriteWins", "LastWriteWins"],
  ["lww", "LastWriteWins"],
  ["last_write_wins", "LastWriteWins"],
  ["SourcePriority", "SourcePriority"],
  ["source_priority", "SourcePriority"],
  ["InsertWins", "InsertWins"],
  ["insert_wins", "InsertWins"],
  ["Custom", "Custom"],
  ["custom", "Custom"]
).annotations(
  expecting(
    "one of LastWriteWins, SourcePriority, InsertWins, Custom (or lww, last_write_wins, source_priority, insert_wins, custom)"
  )
)

const ClockField = Timestamp.ClockMode.annotations(expecting('"hlc" or "wall"'))

const section = <Fields extends Schema.Struct.Fields>(fields: Fields, what: string) =>
  Schema.Struct(fields).annotations({ message: () => `a mapping (${what})` })

/**
 * The longest duration a timer may wait, in milliseconds. Node's timers (which Effect's clock
 * uses) hold a signed 32-bit delay; Effect never fires a sleep beyond it, so a longer delay,
 * timeout or threshold would silently never elapse.
 */
export const timerMsMax = 2 ** 31 - 1

/** A duration key: an integer number of milliseconds from `minimum` up to `timerMsMax`. */
const durationMs = (minimum: number) =>
  Schema.Number.pipe(Schema.int(), Schema.between(minimum, timerMsMax)).annotations(
    expecting(`an integer >= ${minimum} and <= ${timerMsMax} (milliseconds; Node timers overflow above 2^31-1 ms)`)
  )

/** A duration key in whole seconds, whose milliseconds stay within `timerMsMax`. */
const durationSecs = (minimum: number) => {
  const maximum = Math.floor(timerMsMax / 1000)
  return Schema.Number.pipe(Schema.int(), Schema.between(minimum, maximum)).annotations(
    expecting(`an integer >= ${minimum} and <= ${maximum} (seconds; Node timers overflow above 2^31-1 ms)`)
  )
}

const AgentFile = section(
  {
    max_retries: Schema.optional(integerAtLeast(0)),
    retry_delay_ms: Schema.optional(durationMs(0)),
    retry_delay_max_ms: Schema.optional(durationMs(0)),
    batch_size: Schema.optional(integerAtLeast(1)),
    flush_delay_ms: Schema.optional(durationMs(0)),
    request_timeout_secs: Schema.optional(durationSecs(1)),
    batches_in_flight_max: Schema.optional(integerAtLeast(1)),
    buffer_size: Schema.optional(integerAtLeast(1))
  },
  "agent settings"
)

const HealthFile = section({ lag_ms_max: Schema.optional(durationMs(1)) }, "health settings")

const FailoverFile = section(
  {
    detect_after_ms: Schema.optional(durationMs(1)),
    promote_back_after_ms: Schema.optional(durationMs(0)),
    fence_after_ms: Schema.optional(durationMs(0)),
    confirm_after_ms: Schema.optional(durationMs(0)),
    check_interval_ms: Schema.optional(durationMs(1))
  },
  "failover settings"
)

const HeartbeatFile = section(
  {
    interval_ms: Schema.optional(durationMs(1)),
    timeout_ms: Schema.optional(durationMs(1)),
    recover_after: Schema.optional(integerAtLeast(1))
  },
  "heartbeat settings"
)

const integerBetween = (minimum: number, maximum: number) =>
  Schema.Number.pipe(Schema.int(), Schema.between(minimum, maximum)).annotations(expecting(`an integer from ${minimum} to ${maximum}`))

/** `host:port`, the host a name, an IPv4 address or a bracketed IPv6 address; port 0 picks a free one. */
const listenPattern = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})$/

/** Whether `text` is a `host:port` address a server can bind. */
export const isListenAddress = (text: string): boolean => {
  const match = listenPattern.exec(text)
  return match !== null && Number(match[1]) <= 65_535
}

const ListenAddress = Schema.String.pipe(Schema.filter(isListenAddress)).annotations(
  expecting("host:port with a port from 0 to 65535, e.g. 127.0.0.1:8080")
)
const FilePath = Schema.NonEmptyTrimmedString.annotations(expecting("a non-empty file path"))
const Token = Schema.NonEmptyTrimmedString.annotations(expecting("a non-empty token without surrounding spaces"))
const Prefix = Schema.NonEmptyString.pipe(Schema.filter((text) => !text.includes("\u0000"))).annotations(
  expecting("a non-empty key prefix without NUL characters")
)

const SecurityModeField = Schema.Literal("insecure", "token", "mtls").annotations(expecting("one of insecure, token, mtls"))
const StoreKindField = Schema.Literal("lmdb", "foundationdb", "memory").annotations(expecting("one of lmdb, foundationdb, memory"))

const SecurityFile = section(
  {
    mode: Schema.optional(SecurityModeField),
    token: Schema.optional(Token),
    token_file: Schema.optional(FilePath),
    ca_file: Schema.optional(FilePath),
    cert_file: Schema.optional(FilePath),
    key_file: Schema.optional(FilePath),
    server_name_override: Schema.optional(Id)
  },
  "security settings"
)

const GrpcFile = section(
  {
    listen: Schema.optional(ListenAddress),
    max_in_flight_per_target: Schema.optional(integerBetween(1, 1_024)),
    max_message_bytes: Schema.optional(integerBetween(1_024, 2 ** 31 - 1)),
    max_write_operations: Schema.optional(integerBetween(1, 1_000_000))
  },
  "gRPC server settings"
)

const HttpFile = section({ listen: Schema.optional(ListenAddress) }, "HTTP server settings")

const StoreFile = section(
  {
    kind: Schema.optional(StoreKindField),
    path: Schema.optional(FilePath),
    cluster_file: Schema.optional(FilePath),
    prefix: Schema.optional(Prefix)
  },
  "store settings"
)

// ---------------------------------------------------------------------------------------------
// Discovery: the nodes from the file (static) or from DNS at run time
// ---------------------------------------------------------------------------------------------

/** Where the nodes of every region come from: `regions` in the file, or DNS at run time. */
export type DiscoveryMode = "static" | "dns"

/** The `discovery:` section; under `dns`, `serve` resolves `targets` every `intervalMs`. */
export interface DiscoverySettings {
  readonly mode: DiscoveryMode
  readonly intervalMs: number
  /** Every target has its zone: `zone`, else its region's first declared zone, else the region id. */
  readonly targets: ReadonlyArray<Discovery.DnsTarget>
}

/** A DNS name (labels of letters, digits, `-` and `_`, a trailing dot allowed) of at most 253 characters. */
const DnsName = Schema.String.pipe(
  Schema.filter((text) => text.length <= 253 && /^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62})(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62}))*\.?$/.test(text))
).annotations(expecting("a DNS name such as inferadb-engine-0.eu-central-1.ts.net"))
const DnsLabel = Schema.String.pipe(Schema.filter((text) => /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/.test(text))).annotations(
  expecting("a Kubernetes name (lower-case letters, digits and '-', at most 63 characters)")
)

const DiscoveryTargetFile = section(
  {
    region: Id,
    hostname: Schema.optional(DnsName),
    service: Schema.optional(DnsLabel),
    namespace: Schema.optional(DnsLabel),
    cluster_domain: Schema.optional(DnsName),
    port: integerBetween(1, 65_535),
    zone: Schema.optional(Id)
  },
  "a discovery target with region, port and either hostname or service and namespace"
)

const DiscoveryFile = section(
  {
    mode: Schema.optional(Schema.Literal("static", "dns").annotations(expecting("static or dns"))),
    interval_ms: Schema.optional(durationMs(100)),
    targets: Schema.optional(Schema.Array(DiscoveryTargetFile).annotations({ message: () => "a list of discovery targets" }))
  },
  "discovery settings"
)

/** The cluster domain of `service` targets that name none: Node's SRV queries apply no search domains. */
const clusterDomainDefault = "cluster.local"

/**
 * The node id under `dns`: discovery names nodes `<region>/<first DNS label>`, so a bare
 * `node_id` (the seed's StatefulSet sets the pod name) is qualified with the local region.
 */
const discoveredNodeId = (file: ReplicationFile): Topology.NodeId | undefined =>
  file.discovery?.mode !== "dns" || file.node_id === undefined || file.node_id.includes("/") ? file.node_id : `${file.local_region}/${file.node_id}`

const discoverySettings = (file: ReplicationFile): DiscoverySettings => ({
  mode: file.discovery?.mode ?? defaults.discovery.mode,
  intervalMs: file.discovery?.interval_ms ?? defaults.discovery.intervalMs,
  targets: (file.discovery?.targets ?? []).map((target) => {
    const region = file.regions.find((candidate) => candidate.id === target.region)
    const zoneId = target.zone ?? region?.zones?.[0]?.id ?? target.region
    return target.service === undefined
      ? { regionId: target.region, hostname: target.hostname ?? "", port: target.port, zoneId }
      : Discovery.kubernetesHeadless({
          regionId: target.region,
          service: target.service,
          namespace: target.namespace ?? "",
          clusterDomain: target.cluster_domain ?? clusterDomainDefault,
          port: target.port,
          zoneId
        })
  })
})

/** The discovery section must be complete under `dns` and must not carry targets it would ignore. */
const checkDiscovery = (file: ReplicationFile, paths: Paths): ConfigError | undefined => {
  const discovery = file.discovery ?? {}
  const targets = discovery.targets ?? []
  const at = (segments: ReadonlyArray<Segment>, expected: string) => configError(formatPath(paths, segments), show(valueAt(file, segments)), expected)
  if (discovery.mode !== "dns") {
    return targets.length === 0 ? undefined : at(["discovery", "targets"], "no targets while discovery.mode is static (set mode: dns to use them)")
  }
  const declared = file.regions.map((region) => region.id)
  for (const [index, target] of targets.entries()) {
    const error = checkDiscoveryTarget(target, declared, (key, expected) => at(["discovery", "targets", index, ...(key === undefined ? [] : [key])], expected))
    if (error !== undefined) return error
  }
  const missing = declared.filter((region) => !targets.some((target) => target.region === region))
  if (missing.length > 0) {
    return at(["discovery", "targets"], `a target for every region when discovery.mode is dns; missing ${missing.map((region) => `'${region}'`).join(", ")}`)
  }
  if (file.node_id === undefined) {
    return at(["node_id"], "this node's id when discovery.mode is dns (INFERADB__ENGINE__NODE_ID, e.g. the pod name)")
  }
  if (file.node_id.includes("/") && !file.node_id.startsWith(`${file.local_region}/`)) {
    return at(["node_id"], `a bare id or '${file.local_region}/<label>' (discovery names nodes <region>/<first DNS label>)`)
  }
  return file.grpc?.listen === undefined
    ? at(["grpc", "listen"], "an address to bind when discovery.mode is dns (this node's endpoint is known only once DNS answers)")
    : undefined
}

type DiscoveryTargetFile = typeof DiscoveryTargetFile.Type

const checkDiscoveryTarget = (
  target: DiscoveryTargetFile,
  declared: ReadonlyArray<string>,
  at: (key: string | undefined, expected: string) => ConfigError
): ConfigError | undefined => {
  if (!declared.includes(target.region)) return at("region", `one of the declared regions (${declared.join(", ")})`)
  const kubernetes = (["service", "namespace", "cluster_domain"] as const).find((key) => target[key] !== undefined)
  if (target.hostname !== undefined) {
    return kubernetes === undefined ? undefined : at(kubernetes, "no Kubernetes service settings next to hostname (give one name per target)")
  }
  if (target.service === undefined) return at(kubernetes === undefined ? undefined : "service", "a hostname, or a Kubernetes headless service with its namespace")
  return target.namespace === undefined ? at("namespace", "the namespace of the headless service") : undefined
}

const NodeFile = section({ id: Id, endpoint: Endpoint }, "a node with id and endpoint")

const ZoneFile = section(
  { id: Id, name: Schema.optional(Name), nodes: Schema.optional(Schema.Array(NodeFile).annotations({ message: () => "a list of nodes" })) },
  "a zone with id, name and nodes"
)

const RegionFile = section(
  {
    id: Id,
    name: Schema.optional(Name),
    is_primary: Schema.optional(Flag),
    priority: Schema.optional(integerAtLeast(0)),
    zones: Schema.optional(Schema.Array(ZoneFile).annotations({ message: () => "a list of zones" }))
  },
  "a region with id, name, is_primary, priority and zones"
)

const VaultFile = section(
  { id: Id, home_region: Id, allowed_regions: Schema.optional(IdList) },
  "a vault with id, home_region and allowed_regions"
)

const ReplicationFile = section(
  {
    enabled: Schema.optional(Flag),
    strategy: StrategyField,
    local_region: Id,
    node_id: Schema.optional(Id),
    conflict_resolution: Schema.optional(ConflictResolutionField),
    region_priorities: Schema.optional(IdList),
    clock: Schema.optional(ClockField),
    max_offset_ms: Schema.optional(durationMs(1)),
    agent: Schema.optional(AgentFile),
    health: Schema.optional(HealthFile),
    heartbeat: Schema.optional(HeartbeatFile),
    failover: Schema.optional(FailoverFile),
    security: Schema.optional(SecurityFile),
    grpc: Schema.optional(GrpcFile),
    http: Schema.optional(HttpFile),
    store: Schema.optional(StoreFile),
    discovery: Schema.optional(DiscoveryFile),
    regions: Schema.Array(RegionFile).annotations({ message: () => "a list of regions" }),
    replication_targets: Schema.optional(
      Schema.Record({ key: Id, value: IdList }).annotations({ message: () => "a mapping from region id to a list of region ids" })
    ),
    vaults: Schema.optional(Schema.Array(VaultFile).annotations({ message: () => "a list of vaults" }))
  },
  "replication settings"
)

type ReplicationFile = typeof ReplicationFile.Type

/** The keys each section accepts, to name the alternatives when a key is unknown. */
const sectionKeys: Readonly<Record<string, ReadonlyArray<string>>> = {
  "": Object.keys(ReplicationFile.fields),
  agent: Object.keys(AgentFile.fields),
  health: Object.keys(HealthFile.fields),
  heartbeat: Object.keys(HeartbeatFile.fields),
  failover: Object.keys(FailoverFile.fields),
  security: Object.keys(SecurityFile.fields),
  grpc: Object.keys(GrpcFile.fields),
  http: Object.keys(HttpFile.fields),
  store: Object.keys(StoreFile.fields),
  discovery: Object.keys(DiscoveryFile.fields),
  targets: Object.keys(DiscoveryTargetFile.fields),
  regions: Object.keys(RegionFile.fields),
  zones: Object.keys(ZoneFile.fields),
  nodes: Object.keys(NodeFile.fields),
  vaults: Object.keys(VaultFile.fields)
}

// ---------------------------------------------------------------------------------------------
// Key paths
// ---------------------------------------------------------------------------------------------

type Segment = string | number

/** How to print a key path: the section prefix used by the file, and which keys the environment set. */
interface Paths {
  readonly prefix: "replication" | "engine.replication"
  /** Dotted key (`agent.batch_size`) -> environment variable that set it. */
  readonly origins: ReadonlyMap<string, string>
}

const formatPath = (paths: Paths, segments: ReadonlyArray<Segment>): string => {
  for (let length = 1; length <= segments.length; length++) {
    const origin = paths.origins.get(segments.slice(0, length).join("."))
    if (origin !== undefined) return origin
  }
  return paths.prefix + segments.map((segment) => (typeof segment === "number" ? `[${segment}]` : `.${segment}`)).join("")
}

const valueAt = (root: unknown, segments: ReadonlyArray<Segment>): unknown =>
  segments.reduce<unknown>(
    (current, segment) => (isRecord(current) || Array.isArray(current) ? (current as Record<Segment, unknown>)[segment] : undefined),
    root
  )

const show = (value: unknown): string => {
  if (value === undefined) return "(missing)"
  const text = JSON.stringify(value) ?? String(value)
  return text.length > 200 ? `${text.slice(0, 197)}...` : text
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

// ---------------------------------------------------------------------------------------------
// Environment overrides
// ---------------------------------------------------------------------------------------------

type EnvKind = "boolean" | "integer" | "string" | "list"

interface EnvBinding {
  readonly path: ReadonlyArray<string>
  readonly kind: EnvKind
}

const replicationPrefixes = ["INFERADB__ENGINE__REPLICATION__", "INFERADB__REPLICATION__"] as const

const upper = (key: string): string => key.toUpperCase()

/** `<SECTION>__<KEY>` variables of a runtime section: integers where the file takes integers, else strings. */
const sectionVariables = (section: string, fields: Schema.Struct.Fields): Array<[string, EnvBinding]> => {
  const integers = new Set(["max_in_flight_per_target", "max_message_bytes", "max_write_operations"])
  return Object.keys(fields).map((key) => [
    `${upper(section)}__${upper(key)}`,
    { path: [section, key], kind: integers.has(key) ? "integer" : "string" }
  ])
}

/** Keys whose values are secrets: errors say how long the value is, never what it is. */
const secretKeys: ReadonlySet<string> = new Set(["security.token"])

const isSecret = (segments: ReadonlyArray<Segment>): boolean => secretKeys.has(segments.join("."))

const showSecret = (value: unknown): string =>
  typeof value === "string" ? `(redacted, ${value.length} characters)` : value === undefined ? "(missing)" : "(redacted)"

/** Suffixes accepted after either replication prefix. Agent keys also have the seed's short form. */
const replicationVariables: ReadonlyMap<string, EnvBinding> = new Map<string, EnvBinding>([
  ["ENABLED", { path: ["enabled"], kind: "boolean" }],
  ["STRATEGY", { path: ["strategy"], kind: "string" }],
  ["LOCAL_REGION", { path: ["local_region"], kind: "string" }],
  ["NODE_ID", { path: ["node_id"], kind: "string" }],
  ["CONFLICT_RESOLUTION", { path: ["conflict_resolution"], kind: "string" }],
  ["CLOCK", { path: ["clock"], kind: "string" }],
  ["MAX_OFFSET_MS", { path: ["max_offset_ms"], kind: "integer" }],
  ["REGION_PRIORITIES", { path: ["region_priorities"], kind: "list" }],
  ...Object.keys(AgentFile.fields).flatMap((key): Array<[string, EnvBinding]> => [
    [`AGENT__${upper(key)}`, { path: ["agent", key], kind: "integer" }],
    [upper(key), { path: ["agent", key], kind: "integer" }]
  ]),
  ...Object.keys(HealthFile.fields).map((key): [string, EnvBinding] => [`HEALTH__${upper(key)}`, { path: ["health", key], kind: "integer" }]),
  ...Object.keys(HeartbeatFile.fields).map((key): [string, EnvBinding] => [`HEARTBEAT__${upper(key)}`, { path: ["heartbeat", key], kind: "integer" }]),
  ...Object.keys(FailoverFile.fields).map((key): [string, EnvBinding] => [`FAILOVER__${upper(key)}`, { path: ["failover", key], kind: "integer" }]),
  ...sectionVariables("security", SecurityFile.fields),
  ...sectionVariables("grpc", GrpcFile.fields),
  ...sectionVariables("http", HttpFile.fields),
  ...sectionVariables("store", StoreFile.fields),
  ["DISCOVERY__MODE", { path: ["discovery", "mode"], kind: "string" }],
  ["DISCOVERY__INTERVAL_MS", { path: ["discovery", "interval_ms"], kind: "integer" }]
])

/** The engine-wide variables the Kubernetes StatefulSet of the seed sets from pod metadata. */
const engineVariables: ReadonlyMap<string, EnvBinding> = new Map<string, EnvBinding>([
  ["INFERADB__ENGINE__NODE_ID", { path: ["node_id"], kind: "string" }],
  ["INFERADB__ENGINE__LOCAL_REGION", { path: ["local_region"], kind: "string" }]
])

/** Every environment variable this module reads. */
export const environmentVariables: ReadonlyArray<string> = [
  ...engineVariables.keys(),
  ...replicationPrefixes.flatMap((prefix) => [...replicationVariables.keys()].map((suffix) => prefix + suffix))
]

const bindingOf = (name: string): EnvBinding | "unknown" | undefined => {
  const engine = engineVariables.get(name)
  if (engine !== undefined) return engine
  const prefix = replicationPrefixes.find((candidate) => name.startsWith(candidate))
  if (prefix === undefined) return undefined
  return replicationVariables.get(name.slice(prefix.length)) ?? "unknown"
}

const parseEnvValue = (name: string, raw: string, kind: EnvKind): Either.Either<unknown, ConfigError> => {
  switch (kind) {
    case "string":
      return Either.right(raw)
    case "boolean": {
      const lowered = raw.trim().toLowerCase()
      return lowered === "true" || lowered === "false"
        ? Either.right(lowered === "true")
        : Either.left(configError(name, show(raw), "true or false"))
    }
    case "integer": {
      const parsed = /^[+-]?\d+$/.test(raw.trim()) ? Number(raw.trim()) : Number.NaN
      return Number.isSafeInteger(parsed) ? Either.right(parsed) : Either.left(configError(name, show(raw), "an integer"))
    }
    case "list": {
      const items = raw.trim() === "" ? [] : raw.split(",").map((item) => item.trim())
      return items.includes("")
        ? Either.left(configError(name, show(raw), "a comma-separated list of region ids, e.g. us-west-1,eu-central-1"))
        : Either.right(items)
    }
  }
}

/** Returns a copy of `root` with `value` at `path`; a non-mapping in the way is left for the schema to report. */
const setIn = (root: Record<string, unknown>, path: ReadonlyArray<string>, value: unknown): Record<string, unknown> => {
  const [head, ...rest] = path
  if (head === undefined) return root
  if (rest.length === 0) return { ...root, [head]: value }
  const child = root[head] ?? {}
  return isRecord(child) ? { ...root, [head]: setIn(child, rest, value) } : root
}

interface Overridden {
  readonly raw: Record<string, unknown>
  readonly origins: ReadonlyMap<string, string>
}

/** Applies the replication environment variables to the raw replication section, in name order. */
const applyEnvironment = (
  raw: Record<string, unknown>,
  env: Readonly<Record<string, string | undefined>>
): Either.Either<Overridden, ConfigError> => {
  let result = raw
  const origins = new Map<string, string>()
  const values = new Map<string, string>()
  for (const name of Object.keys(env).sort()) {
    const value = env[name]
    const binding = bindingOf(name)
    if (value === undefined || binding === undefined) continue
    if (binding === "unknown") return Either.left(unknownVariable(name, value))
    const key = binding.path.join(".")
    const earlier = origins.get(key)
    if (earlier !== undefined && values.get(key) !== value) {
      const display = isSecret(binding.path) ? showSecret : show
      return Either.left(configError(name, display(value), `the same value as ${earlier} (${display(values.get(key))}), which sets the same key`))
    }
    const parsed = parseEnvValue(name, value, binding.kind)
    if (Either.isLeft(parsed)) return Either.left(parsed.left)
    result = setIn(result, binding.path, parsed.right)
    origins.set(key, earlier ?? name)
    values.set(key, value)
  }
  return Either.right({ raw: result, origins })
}

const unknownVariable = (name: string, value: string): ConfigError =>
  configError(
    name,
    show(value),
    `a known replication variable (INFERADB__ENGINE__REPLICATION__ followed by one of ${[...replicationVariables.keys()].join(", ")})`,
    "unknown variables are rejected so that a typo cannot go unnoticed"
  )

// ---------------------------------------------------------------------------------------------
// Schema decoding
// ---------------------------------------------------------------------------------------------

const decodeReplicationFile = Schema.decodeUnknownEither(ReplicationFile, { onExcessProperty: "error", errors: "first" })

const decodeFile = (raw: unknown, paths: Paths): Either.Either<ReplicationFile, ConfigError> =>
  Either.mapLeft(decodeReplicationFile(raw), (error) => {
    const issue = ParseResult.ArrayFormatter.formatIssueSync(error.issue)[0]
    if (issue === undefined) return configError(paths.prefix, show(raw), "valid replication settings", error.message)
    const segments = issue.path.filter((segment): segment is Segment => typeof segment !== "symbol")
    const value = valueAt(raw, segments)
    return configError(formatPath(paths, segments), isSecret(segments) ? showSecret(value) : show(value), expectedFor(issue, segments))
  })

const expectedFor = (issue: ParseResult.ArrayFormatterIssue, segments: ReadonlyArray<Segment>): string => {
  switch (issue._tag) {
    case "Missing":
      return "a value (this key is required)"
    case "Unexpected": {
      const parent = segments.slice(0, -1).filter((segment): segment is string => typeof segment === "string").at(-1) ?? ""
      return `one of the keys ${(sectionKeys[parent] ?? []).join(", ")} (unknown keys are rejected to catch typos)`
    }
    default:
      return issue.message
  }
}

// ---------------------------------------------------------------------------------------------
// From the decoded file to settings and topology
// ---------------------------------------------------------------------------------------------

const agentSettings = (file: ReplicationFile): AgentSettings => {
  const agent = file.agent ?? {}
  return {
    maxRetries: agent.max_retries ?? defaults.agent.maxRetries,
    retryDelayMs: agent.retry_delay_ms ?? defaults.agent.retryDelayMs,
    retryDelayMaxMs: agent.retry_delay_max_ms ?? defaults.agent.retryDelayMaxMs,
    batchSize: agent.batch_size ?? defaults.agent.batchSize,
    flushDelayMs: agent.flush_delay_ms ?? defaults.agent.flushDelayMs,
    requestTimeoutMs: agent.request_timeout_secs === undefined ? defaults.agent.requestTimeoutMs : agent.request_timeout_secs * 1000,
    ...(agent.batches_in_flight_max === undefined ? {} : { batchesInFlightMax: agent.batches_in_flight_max }),
    bufferSize: agent.buffer_size ?? defaults.agent.bufferSize
  }
}

const failoverSettings = (file: ReplicationFile): FailoverSettings => ({
  detectAfterMs: file.failover?.detect_after_ms ?? defaults.failover.detectAfterMs,
  promoteBackAfterMs: file.failover?.promote_back_after_ms ?? defaults.failover.promoteBackAfterMs,
  fenceAfterMs: file.failover?.fence_after_ms ?? defaults.failover.fenceAfterMs,
  confirmAfterMs: file.failover?.confirm_after_ms ?? defaults.failover.confirmAfterMs,
  checkIntervalMs: file.failover?.check_interval_ms ?? defaults.failover.checkIntervalMs
})

const heartbeatSettings = (file: ReplicationFile): HeartbeatSettings => ({
  intervalMs: file.heartbeat?.interval_ms ?? defaults.heartbeat.intervalMs,
  timeoutMs: file.heartbeat?.timeout_ms ?? defaults.heartbeat.timeoutMs,
  recoverAfter: file.heartbeat?.recover_after ?? defaults.heartbeat.recoverAfter
})

/**
 * Checks that `lower` stays below `upper` (or at most `upper` unless `strict`). The error names
 * whichever of the two keys the user actually set, preferring the upper one.
 */
const checkOrdered = (
  paths: Paths,
  section: Record<string, unknown> | undefined,
  sectionName: string,
  lower: { readonly key: string; readonly value: number },
  upper: { readonly key: string; readonly value: number },
  strict: boolean
): ConfigError | undefined => {
  if (strict ? lower.value < upper.value : lower.value <= upper.value) return undefined
  const relation = strict ? ">" : ">="
  if (section?.[upper.key] !== undefined || section?.[lower.key] === undefined) {
    return configError(
      formatPath(paths, [sectionName, upper.key]),
      show(upper.value),
      `an integer ${relation} ${sectionName}.${lower.key} (${lower.value})`
    )
  }
  return configError(
    formatPath(paths, [sectionName, lower.key]),
    show(lower.value),
    `an integer ${strict ? "<" : "<="} ${sectionName}.${upper.key} (${upper.value})`
  )
}

const pemKeys = ["ca_file", "cert_file", "key_file"] as const

/**
 * The security section must say what it means: a token or certificate given under another
 * mode would be silently ignored (a node meant to require a token would run open), so it is
 * an error, and each mode's required keys must be present.
 */
const checkSecurity = (file: ReplicationFile, paths: Paths): ConfigError | undefined => {
  const security = file.security ?? {}
  const mode = security.mode ?? defaults.security.mode
  const at = (key: string, expected: string): ConfigError => {
    const value = security[key as keyof typeof security]
    return configError(formatPath(paths, ["security", key]), key === "token" ? showSecret(value) : show(value), expected)
  }
  if (security.token !== undefined && security.token_file !== undefined) {
    return at("token_file", "no token_file when security.token is set (give the token one way only)")
  }
  if (mode === "insecure") {
    const stray = (["token", "token_file", ...pemKeys, "server_name_override"] as const).find((key) => security[key] !== undefined)
    return stray === undefined ? undefined : at(stray, "no value while security.mode is insecure (set mode: token or mtls to use it)")
  }
  if (mode === "token") {
    if (security.token === undefined && security.token_file === undefined) return at("token", "a bearer token (or token_file) when security.mode is token")
    const stray = ([...pemKeys, "server_name_override"] as const).find((key) => security[key] !== undefined)
    return stray === undefined ? undefined : at(stray, "no certificate settings while security.mode is token (use mode: mtls)")
  }
  const missing = pemKeys.find((key) => security[key] === undefined)
  return missing === undefined ? undefined : at(missing, "a PEM file path when security.mode is mtls")
}

const checkSettings = (file: ReplicationFile, paths: Paths): ConfigError | undefined => {
  const agent = agentSettings(file)
  const heartbeat = heartbeatSettings(file)
  return (
    checkSecurity(file, paths) ??
    checkDiscovery(file, paths) ??
    checkOrdered(paths, file.agent, "agent", { key: "batch_size", value: agent.batchSize }, { key: "buffer_size", value: agent.bufferSize }, false) ??
    checkOrdered(
      paths,
      file.agent,
      "agent",
      { key: "retry_delay_ms", value: agent.retryDelayMs },
      { key: "retry_delay_max_ms", value: agent.retryDelayMaxMs },
      false
    ) ??
    checkOrdered(
      paths,
      file.heartbeat,
      "heartbeat",
      { key: "interval_ms", value: heartbeat.intervalMs },
      { key: "timeout_ms", value: heartbeat.timeoutMs },
      true
    )
  )
}

const builderFor = (file: ReplicationFile): TopologyBuilder.TopologyBuilder => {
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
const buildTopology = (file: ReplicationFile, paths: Paths): Either.Either<Topology.Topology, ConfigError> =>
  Either.mapLeft(
    Either.flatMap(TopologyBuilder.build(builderFor(file)), (topology) =>
      TopologyBuilder.validateDeployment(topology, { peerNodesRequired: file.discovery?.mode !== "dns" })
    ),
    (error) =>
    topologyConfigError(error, file, paths)
  )

// ---------------------------------------------------------------------------------------------
// Topology errors -> key paths
// ---------------------------------------------------------------------------------------------

interface NodeEntry {
  readonly path: ReadonlyArray<Segment>
  readonly id: string
  readonly endpoint: string
}

const nodeEntries = (file: ReplicationFile): ReadonlyArray<NodeEntry> =>
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

const topologyConfigError = (error: TopologyBuilder.TopologyError, file: ReplicationFile, paths: Paths): ConfigError => {
  const at = (segments: ReadonlyArray<Segment>, expected: string): ConfigError =>
    configError(formatPath(paths, segments), show(valueAt(file, segments)), expected, error.message)
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

type At = (segments: ReadonlyArray<Segment>, expected: string) => ConfigError

const duplicateZoneError = (error: TopologyBuilder.TopologyError, file: ReplicationFile, at: At): ConfigError => {
  const r = file.regions.findIndex((region) => region.id === error.region)
  const z = secondIndex(file.regions[r]?.zones ?? [], (zone) => zone.id === error.zone)
  return at(["regions", r, "zones", z, "id"], `a zone id not used by another zone of region '${error.region}'`)
}

const duplicateNodeError = (error: TopologyBuilder.TopologyError, file: ReplicationFile, paths: Paths, at: At): ConfigError => {
  const entries = nodeEntries(file)
  const sameId = (entry: NodeEntry) => entry.id === error.node
  const sameEndpoint = (entry: NodeEntry) => entry.endpoint === error.endpoint
  const match = error.reason === "DuplicateNode" ? sameId : sameEndpoint
  const conflicting = entries[secondIndex(entries, match)]
  const first = entries.find(match)
  const key = error.reason === "DuplicateNode" ? "id" : "endpoint"
  const firstPath = first === undefined ? "" : ` (already used at ${formatPath(paths, [...first.path, key])})`
  return at([...(conflicting?.path ?? ["regions"]), key], `a node ${key} unique across all regions${firstPath}`)
}

const failoverPriorityError = (error: TopologyBuilder.TopologyError, file: ReplicationFile, paths: Paths): ConfigError => {
  const r = file.regions.findIndex((region) => region.id === error.region)
  const region = file.regions[r]
  const effective = region?.priority ?? r + 1
  return configError(
    formatPath(paths, ["regions", r, "priority"]),
    show(effective),
    "a failover priority not used by another region (lower = higher priority; an unset priority is the region's position + 1)",
    error.message
  )
}

const primaryCountError = (file: ReplicationFile, at: At): ConfigError => {
  const primaries = file.regions.flatMap((region, index) => (region.is_primary === true ? [index] : []))
  const second = primaries[1]
  return second === undefined
    ? at(["regions"], "exactly one region with is_primary: true (strategy PrimaryReplica)")
    : at(["regions", second, "is_primary"], "false: strategy PrimaryReplica allows exactly one primary region")
}

const targetError = (error: TopologyBuilder.TopologyError, file: ReplicationFile, at: At, declared: string): ConfigError => {
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

const vaultError = (error: TopologyBuilder.TopologyError, file: ReplicationFile, at: At, declared: string): ConfigError => {
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
const deploymentError = (error: TopologyBuilder.TopologyError, file: ReplicationFile, at: At): ConfigError => {
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

// ---------------------------------------------------------------------------------------------
// Checks that need the topology
// ---------------------------------------------------------------------------------------------

/**
 * SourcePriority must rank every region: a change from an unranked region has no defined
 * winner (the original gave it priority 0, which silently made it lose everywhere).
 */
const checkRegionPriorities = (file: ReplicationFile, topology: Topology.Topology, paths: Paths): ConfigError | undefined => {
  if (file.conflict_resolution !== "SourcePriority") return undefined
  const listed = file.region_priorities ?? []
  const declared = topology.regions.map((region) => region.id)
  for (const [index, region] of listed.entries()) {
    if (!declared.includes(region)) {
      return configError(formatPath(paths, ["region_priorities", index]), show(region), `one of the declared regions (${declared.join(", ")})`)
    }
    if (listed.indexOf(region) !== index) {
      return configError(formatPath(paths, ["region_priorities", index]), show(region), "a region not already listed")
    }
  }
  const missing = declared.filter((region) => !listed.includes(region))
  if (missing.length === 0) return undefined
  return configError(
    formatPath(paths, ["region_priorities"]),
    show(file.region_priorities),
    `a list that ranks every region, lowest priority first; missing ${missing.map((region) => `'${region}'`).join(", ")}`,
    "SourcePriority needs a priority for every region"
  )
}

/** A node id that names a node of another region would make this process impersonate it. */
const checkNodeId = (file: ReplicationFile, topology: Topology.Topology, paths: Paths): ConfigError | undefined => {
  if (file.node_id === undefined) return undefined
  const owner = topology.regions.find((region) => Topology.regionNodes(region).some((node) => node.id === file.node_id))
  if (owner === undefined || owner.id === topology.localRegion) return undefined
  return configError(
    formatPath(paths, ["node_id"]),
    show(file.node_id),
    `a node of the local region '${topology.localRegion}'`,
    `node '${file.node_id}' is declared in region '${owner.id}'`
  )
}

const assemble = (file: ReplicationFile, topology: Topology.Topology): ReplicationConfig => ({
  enabled: file.enabled ?? false,
  strategy: file.strategy,
  localRegion: file.local_region,
  nodeId: discoveredNodeId(file),
  conflictResolution: file.conflict_resolution ?? defaults.conflictResolution,
  regionPriorities: file.region_priorities ?? defaults.regionPriorities,
  clock: file.clock ?? defaults.clock,
  maxOffsetMs: file.max_offset_ms ?? defaults.maxOffsetMs,
  agent: agentSettings(file),
  health: { lagMsMax: file.health?.lag_ms_max ?? defaults.health.lagMsMax },
  heartbeat: heartbeatSettings(file),
  failover: failoverSettings(file),
  security: {
    mode: file.security?.mode ?? defaults.security.mode,
    token: file.security?.token,
    tokenFile: file.security?.token_file,
    caFile: file.security?.ca_file,
    certFile: file.security?.cert_file,
    keyFile: file.security?.key_file,
    serverNameOverride: file.security?.server_name_override
  },
  grpc: {
    listen: file.grpc?.listen,
    inFlightPerTargetMax: file.grpc?.max_in_flight_per_target ?? defaults.grpc.inFlightPerTargetMax,
    messageBytesMax: file.grpc?.max_message_bytes ?? defaults.grpc.messageBytesMax,
    writeOperationsMax: file.grpc?.max_write_operations ?? defaults.grpc.writeOperationsMax
  },
  http: { listen: file.http?.listen ?? defaults.http.listen },
  store: {
    kind: file.store?.kind ?? defaults.store.kind,
    path: file.store?.path,
    clusterFile: file.store?.cluster_file,
    prefix: file.store?.prefix
  },
  discovery: discoverySettings(file),
  topology
})

// ---------------------------------------------------------------------------------------------
// Settings whose defaults depend on the topology
// ---------------------------------------------------------------------------------------------

/** The node this process runs as: `node_id`, else the first node declared in the local region. */
export const localNode = (config: ReplicationConfig): Topology.Node | undefined => {
  const region = Topology.findRegion(config.topology, config.localRegion)
  const nodes = region === undefined ? [] : Topology.regionNodes(region)
  return config.nodeId === undefined ? nodes[0] : nodes.find((node) => node.id === config.nodeId)
}

/** `host:port` of an endpoint, without a URL scheme or trailing slashes. */
const hostPort = (endpoint: string): string => endpoint.replace(/^(?:grpcs?|https?):\/\//, "").replace(/\/+$/, "")

/** The gRPC address to bind: `grpc.listen`, else the local node's endpoint; undefined when neither exists. */
export const grpcListen = (config: ReplicationConfig): string | undefined => {
  if (config.grpc.listen !== undefined) return config.grpc.listen
  const node = localNode(config)
  return node === undefined ? undefined : hostPort(node.endpoint)
}

/** The lmdb directory: `store.path`, else `.data/<local_region>-<node_id>` (a discovered id's `/` becomes `-`). */
export const storePath = (config: ReplicationConfig): string =>
  config.store.path ?? `.data/${config.localRegion}-${(localNode(config)?.id ?? config.nodeId ?? "node").replaceAll("/", "-")}`

/** The FoundationDB key prefix: `store.prefix`, else `inferadb/<local_region>`. */
export const storePrefix = (config: ReplicationConfig): string => config.store.prefix ?? `inferadb/${config.localRegion}`

// ---------------------------------------------------------------------------------------------
// Entry points
// ---------------------------------------------------------------------------------------------

interface Located {
  readonly raw: unknown
  readonly prefix: Paths["prefix"]
}

/** Finds the replication section: `replication:` or `engine.replication:`, never both. */
const locate = (root: unknown): Either.Either<Located, ConfigError> => {
  const expected = "a mapping with a replication: or engine.replication: section"
  if (!isRecord(root)) return Either.left(configError("(document)", show(root), expected))
  const engine = root["engine"]
  const hasTop = root["replication"] !== undefined
  const hasEngine = isRecord(engine) && engine["replication"] !== undefined
  if (hasTop && hasEngine) {
    return Either.left(
      configError("replication", "sections at both replication and engine.replication", "exactly one replication section: replication or engine.replication")
    )
  }
  if (hasTop) return Either.right({ raw: root["replication"], prefix: "replication" })
  if (hasEngine) return Either.right({ raw: engine["replication"], prefix: "engine.replication" })
  return Either.left(configError("replication", "(missing)", expected))
}

/**
 * Decodes an already parsed document (the object a YAML or JSON parser returns) with
 * environment overrides applied on top. Replication is disabled unless `enabled: true`.
 */
export const fromObject = (
  root: unknown,
  env: Readonly<Record<string, string | undefined>> = {}
): Either.Either<ReplicationConfig, ConfigError> =>
  Either.gen(function* () {
    const located = yield* locate(root)
    const mapping = isRecord(located.raw) ? located.raw : undefined
    const overridden: Overridden = mapping === undefined ? { raw: {}, origins: new Map() } : yield* applyEnvironment(mapping, env)
    const paths: Paths = { prefix: located.prefix, origins: overridden.origins }
    // A section that is not a mapping is decoded as is, so the schema names what it should be.
    const file = yield* decodeFile(mapping === undefined ? located.raw : overridden.raw, paths)
    const settingsError = checkSettings(file, paths)
    if (settingsError !== undefined) return yield* Either.left(settingsError)
    const topology = yield* buildTopology(file, paths)
    const topologyError = checkRegionPriorities(file, topology, paths) ?? checkNodeId(file, topology, paths)
    if (topologyError !== undefined) return yield* Either.left(topologyError)
    return assemble(file, topology)
  })

/** Parses YAML text (see the seed document and `examples/`) with environment overrides. */
export const parse = (
  yamlText: string,
  env: Readonly<Record<string, string | undefined>> = {}
): Either.Either<ReplicationConfig, ConfigError> =>
  Either.flatMap(parseYaml(yamlText), (root) => fromObject(root, env))

/**
 * Decodes the bytes of a configuration file as strict UTF-8, then parses them as `parse` does.
 * Invalid UTF-8 is an error naming its byte offset and line, not replacement characters that
 * would end up in an id or endpoint.
 */
export const parseBytes = (
  bytes: Uint8Array,
  env: Readonly<Record<string, string | undefined>> = {}
): Either.Either<ReplicationConfig, ConfigError> => Either.flatMap(decodeUtf8(bytes), (text) => parse(text, env))

const decodeUtf8 = (bytes: Uint8Array): Either.Either<string, ConfigError> =>
  Either.try({
    try: () => new TextDecoder("utf-8", { fatal: true }).decode(bytes),
    catch: () => invalidUtf8Error(bytes, invalidUtf8Offset(bytes) ?? 0)
  })

const invalidUtf8Error = (bytes: Uint8Array, offset: number): ConfigError => {
  const lineStart = bytes.lastIndexOf(0x0a, offset - 1) + 1
  let line = 1
  for (let index = 0; index < lineStart; index++) if (bytes[index] === 0x0a) line++
  const column = offset - lineStart + 1
  const shown = Array.from(bytes.subarray(offset, offset + 4), (byte) => `0x${byte.toString(16).padStart(2, "0")}`).join(" ")
  return configError(`yaml:${line}:${column}`, `bytes ${shown}`, "UTF-8 text", `invalid UTF-8 at byte offset ${offset}, line ${line}`)
}

/**
 * The offset of the first byte that does not begin a well-formed UTF-8 sequence (the Unicode
 * standard's table of well-formed byte sequences: no overlong forms, surrogates or code points
 * above U+10FFFF), or undefined when every sequence is well formed.
 */
const invalidUtf8Offset = (bytes: Uint8Array): number | undefined => {
  let index = 0
  while (index < bytes.length) {
    const length = utf8SequenceLength(bytes, index)
    if (length === 0) return index
    index += length
  }
  return undefined
}

/** Lengths and allowed second bytes of a sequence, by lead byte; a lead not listed is invalid. */
const utf8Leads: ReadonlyArray<readonly [leadLow: number, leadHigh: number, length: number, secondLow: number, secondHigh: number]> = [
  [0x00, 0x7f, 1, 0, 0],
  [0xc2, 0xdf, 2, 0x80, 0xbf],
  [0xe0, 0xe0, 3, 0xa0, 0xbf],
  [0xe1, 0xec, 3, 0x80, 0xbf],
  [0xed, 0xed, 3, 0x80, 0x9f],
  [0xee, 0xef, 3, 0x80, 0xbf],
  [0xf0, 0xf0, 4, 0x90, 0xbf],
  [0xf1, 0xf3, 4, 0x80, 0xbf],
  [0xf4, 0xf4, 4, 0x80, 0x8f]
]

/** The length of the well-formed sequence starting at `index`, or 0 when it is not well formed. */
const utf8SequenceLength = (bytes: Uint8Array, index: number): number => {
  const lead = bytes[index] ?? 0
  const row = utf8Leads.find(([low, high]) => lead >= low && lead <= high)
  if (row === undefined) return 0
  const [, , length, secondLow, secondHigh] = row
  if (length === 1) return 1
  const second = bytes[index + 1]
  if (second === undefined || second < secondLow || second > secondHigh) return 0
  for (let offset = 2; offset < length; offset++) {
    const next = bytes[index + offset]
    if (next === undefined || next < 0x80 || next > 0xbf) return 0
  }
  return length
}

const parseYaml = (yamlText: string): Either.Either<unknown, ConfigError> => {
  const document = YAML.parseDocument(yamlText)
  const syntaxError = document.errors[0]
  if (syntaxError !== undefined) {
    const position = syntaxError.linePos?.[0]
    const where = position === undefined ? "yaml" : `yaml:${position.line}:${position.col}`
    const problem = (syntaxError.message.split("\n")[0] ?? "").replace(/ at line \d+, column \d+:?$/, "")
    return Either.left(configError(where, show(problem), "valid YAML"))
  }
  // Alias resolution happens here and can fail (unresolved or excessive aliases).
  return Either.try({
    try: () => document.toJS() as unknown,
    catch: (cause) => configError("yaml", show(cause instanceof Error ? cause.message : String(cause)), "valid YAML")
  })
}
