/**
 * The production configuration of a node: decodes the YAML of the seed document (either a
 * top-level `replication:` section or `engine.replication:`) plus `INFERADB__...` environment
 * overrides into a typed `ReplicationConfig` whose topology has passed `TopologyBuilder`
 * validation. The simulator never reads it; it builds nodes from its scenarios.
 *
 * The steps live beside this module, one job each: `Utf8` (strict decoding of the bytes),
 * `Environment` (the overrides), `FileSchema` (the file's keys and bounds), `FileTopology` (the
 * declared topology and its errors) and `ConfigError` (the one error, naming the key path).
 * This module holds the decoded settings, their defaults, the checks across keys and the
 * assembly.
 *
 * Besides the seed's keys the section holds the runtime's: `security` (how regions
 * authenticate each other), `grpc` and `http` (where the node listens), `store` (where its
 * durable state lives) and `discovery` (where the nodes come from). Their defaults that depend
 * on the topology (the gRPC address is the local node's endpoint, the lmdb directory is named
 * after the region and node) are computed by `grpcListen`, `storePath` and `storePrefix`, so an
 * overridden local region moves them too.
 *
 * This module is pure: the caller reads the file (`parseBytes` takes its bytes and refuses
 * invalid UTF-8) and passes the environment in. File I/O and `process.env` belong to the
 * runtime wiring, which also reads `security.token_file` and the PEM files.
 */
import { Either } from "effect"
import * as YAML from "yaml"
import type * as Agent from "../../replication/Agent.js"
import * as Clock from "../../replication/Clock.js"
import type * as ConflictResolver from "../../replication/ConflictResolver.js"
import * as Discovery from "../../replication/Discovery.js"
import type * as Engine from "../../replication/Engine.js"
import type * as Health from "../../replication/Health.js"
import type * as Timestamp from "../../replication/Timestamp.js"
import * as Topology from "../../replication/Topology.js"
import * as DiskRoom from "../DiskRoom.js"
import * as ConfigError from "./ConfigError.js"
import * as Environment from "./Environment.js"
import * as FileSchema from "./FileSchema.js"
import * as FileTopology from "./FileTopology.js"
import * as Utf8 from "./Utf8.js"

// ---------------------------------------------------------------------------------------------
// The decoded configuration
// ---------------------------------------------------------------------------------------------

/** The `agent:` section: the agent's own settings plus the change feed's buffer. */
export interface AgentSettings extends Agent.Settings {
  /** Change feed buffer per subscriber; an overflowing subscriber is told and catches up from the log. */
  readonly bufferSize: number
}

/** The `health:` section: the lag past which replication health is degraded (`Health.Thresholds`). */
export type HealthSettings = Pick<Health.Thresholds, "lagMsMax">

/** The `heartbeat:` section (`Engine.HeartbeatSettings`). */
export type HeartbeatSettings = Engine.HeartbeatSettings

/** The `failover:` section: the PrimaryReplica failover controller's timers (`Failover.Settings`), in milliseconds. */
export type FailoverSettings = Engine.FailoverTimers

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
  /** Batches to peers over one ReplicateStream each (true) or one unary Replicate call each. */
  readonly replicationStream: boolean
  /** Most operations one public Write or Delete request may carry; more get INVALID_ARGUMENT. */
  readonly writeOperationsMax: number
}

/** The `http:` section: `/healthz`, `/livez`, `/readyz` and `/metrics`. */
export interface HttpSettings {
  readonly listen: string
}

/** The `process:` section. */
export interface ProcessSettings {
  /** Collect the young generation when the event loop is idle (`IdleGc`). */
  readonly idleGc: boolean
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
  /** lmdb: commits are refused while its disk has less free (MiB; 0 turns that off; see `runtime/DiskRoom`). */
  readonly minFreeMb: number
}

/** Where the nodes of every region come from: `regions` in the file, or DNS at run time. */
export type DiscoveryMode = "static" | "dns"

/** The `discovery:` section; under `dns`, `serve` resolves `targets` every `intervalMs`. */
export interface DiscoverySettings {
  readonly mode: DiscoveryMode
  readonly intervalMs: number
  /** Every target has its zone: `zone`, else its region's first declared zone, else the region id. */
  readonly targets: ReadonlyArray<Discovery.DnsTarget>
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
  readonly process: ProcessSettings
  readonly discovery: DiscoverySettings
  readonly topology: Topology.Topology
}

/** The settings a configuration gets when its file leaves them out. */
export type Defaults = Pick<
  ReplicationConfig,
  "conflictResolution" | "regionPriorities" | "clock" | "maxOffsetMs" | "agent" | "health" | "heartbeat" | "failover" | "security" | "grpc" | "http" | "store" | "process" | "discovery"
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
  grpc: { listen: undefined, inFlightPerTargetMax: 8, messageBytesMax: 16 * 1024 * 1024, replicationStream: true, writeOperationsMax: 5_000 },
  http: { listen: "127.0.0.1:8080" },
  store: { kind: "lmdb", path: undefined, clusterFile: undefined, prefix: undefined, minFreeMb: DiskRoom.defaultMinFreeBytes / 2 ** 20 },
  process: { idleGc: true },
  discovery: { mode: "static", intervalMs: 10_000, targets: [] }
}

/**
 * A configuration built in code (tests) around an already validated topology.
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
// From the decoded file to settings
// ---------------------------------------------------------------------------------------------

/** The cluster domain of `service` targets that name none: Node's SRV queries apply no search domains. */
const clusterDomainDefault = "cluster.local"

/**
 * The node id under `dns`: discovery names nodes `<region>/<first DNS label>`, so a bare
 * `node_id` (the seed's StatefulSet sets the pod name) is qualified with the local region.
 */
const discoveredNodeId = (file: FileSchema.ReplicationFile): Topology.NodeId | undefined =>
  file.discovery?.mode !== "dns" || file.node_id === undefined || file.node_id.includes("/") ? file.node_id : `${file.local_region}/${file.node_id}`

const discoverySettings = (file: FileSchema.ReplicationFile): DiscoverySettings => ({
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

const agentSettings = (file: FileSchema.ReplicationFile): AgentSettings => {
  const agent = file.agent ?? {}
  return {
    maxRetries: agent.max_retries ?? defaults.agent.maxRetries,
    retryDelayMs: agent.retry_delay_ms ?? defaults.agent.retryDelayMs,
    retryDelayMaxMs: agent.retry_delay_max_ms ?? defaults.agent.retryDelayMaxMs,
    batchSize: agent.batch_size ?? defaults.agent.batchSize,
    flushDelayMs: agent.flush_delay_ms ?? defaults.agent.flushDelayMs,
    requestTimeoutMs: agent.request_timeout_secs === undefined ? defaults.agent.requestTimeoutMs : agent.request_timeout_secs * 1000,
    ...(agent.batches_in_flight_max === undefined ? {} : { batchesInFlightMax: agent.batches_in_flight_max }),
    ...(agent.catch_up_batch_size === undefined ? {} : { catchUpBatchSize: agent.catch_up_batch_size }),
    bufferSize: agent.buffer_size ?? defaults.agent.bufferSize
  }
}

const failoverSettings = (file: FileSchema.ReplicationFile): FailoverSettings => ({
  detectAfterMs: file.failover?.detect_after_ms ?? defaults.failover.detectAfterMs,
  promoteBackAfterMs: file.failover?.promote_back_after_ms ?? defaults.failover.promoteBackAfterMs,
  fenceAfterMs: file.failover?.fence_after_ms ?? defaults.failover.fenceAfterMs,
  confirmAfterMs: file.failover?.confirm_after_ms ?? defaults.failover.confirmAfterMs,
  checkIntervalMs: file.failover?.check_interval_ms ?? defaults.failover.checkIntervalMs
})

const heartbeatSettings = (file: FileSchema.ReplicationFile): HeartbeatSettings => ({
  intervalMs: file.heartbeat?.interval_ms ?? defaults.heartbeat.intervalMs,
  timeoutMs: file.heartbeat?.timeout_ms ?? defaults.heartbeat.timeoutMs,
  recoverAfter: file.heartbeat?.recover_after ?? defaults.heartbeat.recoverAfter
})

// ---------------------------------------------------------------------------------------------
// Checks across keys
// ---------------------------------------------------------------------------------------------

/**
 * Checks that `lower` stays below `upper` (or at most `upper` unless `strict`). The error names
 * whichever of the two keys the user actually set, preferring the upper one.
 */
const checkOrdered = (
  paths: ConfigError.Paths,
  section: Record<string, unknown> | undefined,
  sectionName: string,
  lower: { readonly key: string; readonly value: number },
  upper: { readonly key: string; readonly value: number },
  strict: boolean
): ConfigError.ConfigError | undefined => {
  if (strict ? lower.value < upper.value : lower.value <= upper.value) return undefined
  const relation = strict ? ">" : ">="
  if (section?.[upper.key] !== undefined || section?.[lower.key] === undefined) {
    return ConfigError.make(
      ConfigError.formatPath(paths, [sectionName, upper.key]),
      ConfigError.show(upper.value),
      `an integer ${relation} ${sectionName}.${lower.key} (${lower.value})`
    )
  }
  return ConfigError.make(
    ConfigError.formatPath(paths, [sectionName, lower.key]),
    ConfigError.show(lower.value),
    `an integer ${strict ? "<" : "<="} ${sectionName}.${upper.key} (${upper.value})`
  )
}

const pemKeys = ["ca_file", "cert_file", "key_file"] as const

/**
 * The security section must say what it means: a token or certificate given under another
 * mode would be silently ignored (a node meant to require a token would run open), so it is
 * an error, and each mode's required keys must be present.
 */
const checkSecurity = (file: FileSchema.ReplicationFile, paths: ConfigError.Paths): ConfigError.ConfigError | undefined => {
  const security = file.security ?? {}
  const mode = security.mode ?? defaults.security.mode
  const at = (key: string, expected: string): ConfigError.ConfigError => {
    const value = security[key as keyof typeof security]
    return ConfigError.make(ConfigError.formatPath(paths, ["security", key]), key === "token" ? ConfigError.showSecret(value) : ConfigError.show(value), expected)
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

/** The discovery section must be complete under `dns` and must not carry targets it would ignore. */
const checkDiscovery = (file: FileSchema.ReplicationFile, paths: ConfigError.Paths): ConfigError.ConfigError | undefined => {
  const discovery = file.discovery ?? {}
  const targets = discovery.targets ?? []
  const at = (segments: ReadonlyArray<ConfigError.Segment>, expected: string) => ConfigError.make(ConfigError.formatPath(paths, segments), ConfigError.show(ConfigError.valueAt(file, segments)), expected)
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

const checkDiscoveryTarget = (
  target: FileSchema.DiscoveryTargetFile,
  declared: ReadonlyArray<string>,
  at: (key: string | undefined, expected: string) => ConfigError.ConfigError
): ConfigError.ConfigError | undefined => {
  if (!declared.includes(target.region)) return at("region", `one of the declared regions (${declared.join(", ")})`)
  const kubernetes = (["service", "namespace", "cluster_domain"] as const).find((key) => target[key] !== undefined)
  if (target.hostname !== undefined) {
    return kubernetes === undefined ? undefined : at(kubernetes, "no Kubernetes service settings next to hostname (give one name per target)")
  }
  if (target.service === undefined) return at(kubernetes === undefined ? undefined : "service", "a hostname, or a Kubernetes headless service with its namespace")
  return target.namespace === undefined ? at("namespace", "the namespace of the headless service") : undefined
}

const checkSettings = (file: FileSchema.ReplicationFile, paths: ConfigError.Paths): ConfigError.ConfigError | undefined => {
  const agent = agentSettings(file)
  const heartbeat = heartbeatSettings(file)
  return (
    checkSecurity(file, paths) ??
    checkDiscovery(file, paths) ??
    checkOrdered(paths, file.agent, "agent", { key: "batch_size", value: agent.batchSize }, { key: "buffer_size", value: agent.bufferSize }, false) ??
    checkOrdered(paths, file.agent, "agent", { key: "batch_size", value: agent.batchSize }, { key: "catch_up_batch_size", value: agent.catchUpBatchSize ?? agent.batchSize }, false) ??
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

// ---------------------------------------------------------------------------------------------
// Assembly
// ---------------------------------------------------------------------------------------------

const assemble = (file: FileSchema.ReplicationFile, topology: Topology.Topology): ReplicationConfig => ({
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
    replicationStream: file.grpc?.replication_stream ?? defaults.grpc.replicationStream,
    writeOperationsMax: file.grpc?.max_write_operations ?? defaults.grpc.writeOperationsMax
  },
  http: { listen: file.http?.listen ?? defaults.http.listen },
  store: {
    kind: file.store?.kind ?? defaults.store.kind,
    path: file.store?.path,
    clusterFile: file.store?.cluster_file,
    prefix: file.store?.prefix,
    minFreeMb: file.store?.min_free_mb ?? defaults.store.minFreeMb
  },
  process: { idleGc: file.process?.idle_gc ?? defaults.process.idleGc },
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
  readonly prefix: ConfigError.Paths["prefix"]
}

/** Finds the replication section: `replication:` or `engine.replication:`, never both. */
const locate = (root: unknown): Either.Either<Located, ConfigError.ConfigError> => {
  const expected = "a mapping with a replication: or engine.replication: section"
  if (!ConfigError.isRecord(root)) return Either.left(ConfigError.make("(document)", ConfigError.show(root), expected))
  const engine = root["engine"]
  const hasTop = root["replication"] !== undefined
  const hasEngine = ConfigError.isRecord(engine) && engine["replication"] !== undefined
  if (hasTop && hasEngine) {
    return Either.left(
      ConfigError.make("replication", "sections at both replication and engine.replication", "exactly one replication section: replication or engine.replication")
    )
  }
  if (hasTop) return Either.right({ raw: root["replication"], prefix: "replication" })
  if (hasEngine) return Either.right({ raw: engine["replication"], prefix: "engine.replication" })
  return Either.left(ConfigError.make("replication", "(missing)", expected))
}

/**
 * Decodes an already parsed document (the object a YAML or JSON parser returns) with
 * environment overrides applied on top. Replication is disabled unless `enabled: true`.
 */
export const fromObject = (
  root: unknown,
  env: Readonly<Record<string, string | undefined>> = {}
): Either.Either<ReplicationConfig, ConfigError.ConfigError> =>
  Either.gen(function* () {
    const located = yield* locate(root)
    const mapping = ConfigError.isRecord(located.raw) ? located.raw : undefined
    const overridden: Environment.Overridden = mapping === undefined ? { raw: {}, origins: new Map() } : yield* Environment.applyEnvironment(mapping, env)
    const paths: ConfigError.Paths = { prefix: located.prefix, origins: overridden.origins }
    // A section that is not a mapping is decoded as is, so the schema names what it should be.
    const file = yield* FileSchema.decodeFile(mapping === undefined ? located.raw : overridden.raw, paths)
    const settingsError = checkSettings(file, paths)
    if (settingsError !== undefined) return yield* Either.left(settingsError)
    const topology = yield* FileTopology.buildTopology(file, paths)
    const topologyError = FileTopology.checkRegionPriorities(file, topology, paths) ?? FileTopology.checkNodeId(file, topology, paths)
    if (topologyError !== undefined) return yield* Either.left(topologyError)
    return assemble(file, topology)
  })

/** Parses YAML text (see the seed document and `examples/`) with environment overrides. */
export const parse = (
  yamlText: string,
  env: Readonly<Record<string, string | undefined>> = {}
): Either.Either<ReplicationConfig, ConfigError.ConfigError> =>
  Either.flatMap(parseYaml(yamlText), (root) => fromObject(root, env))

/**
 * Decodes the bytes of a configuration file as strict UTF-8, then parses them as `parse` does.
 * Invalid UTF-8 is an error naming its byte offset and line, not replacement characters that
 * would end up in an id or endpoint.
 */
export const parseBytes = (
  bytes: Uint8Array,
  env: Readonly<Record<string, string | undefined>> = {}
): Either.Either<ReplicationConfig, ConfigError.ConfigError> => Either.flatMap(Utf8.decodeUtf8(bytes), (text) => parse(text, env))

const parseYaml = (yamlText: string): Either.Either<unknown, ConfigError.ConfigError> => {
  const document = YAML.parseDocument(yamlText)
  const syntaxError = document.errors[0]
  if (syntaxError !== undefined) {
    const position = syntaxError.linePos?.[0]
    const where = position === undefined ? "yaml" : `yaml:${position.line}:${position.col}`
    const problem = (syntaxError.message.split("\n")[0] ?? "").replace(/ at line \d+, column \d+:?$/, "")
    return Either.left(ConfigError.make(where, ConfigError.show(problem), "valid YAML"))
  }
  // Alias resolution happens here and can fail (unresolved or excessive aliases).
  return Either.try({
    try: () => document.toJS() as unknown,
    catch: (cause) => ConfigError.make("yaml", ConfigError.show(cause instanceof Error ? cause.message : String(cause)), "valid YAML")
  })
}
