/**
 * The configuration file's schema: the replication section as written in YAML (snake_case
 * keys, the seed's spellings of strategies), with the bounds every key must meet, and its
 * decoding into a `ConfigError` that names the first key at fault. Unknown keys are errors, so
 * a typo cannot silently fall back to a default; the error lists the keys the section takes.
 * Turning the decoded file into settings is `Config`'s job; pure.
 */
import { Either, ParseResult, Schema } from "effect"
import * as Timestamp from "../../replication/Timestamp.js"
import * as ConfigError from "./ConfigError.js"

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

/** The `agent:` section. */
export const AgentFile = section(
  {
    max_retries: Schema.optional(integerAtLeast(0)),
    retry_delay_ms: Schema.optional(durationMs(0)),
    retry_delay_max_ms: Schema.optional(durationMs(0)),
    batch_size: Schema.optional(integerAtLeast(1)),
    flush_delay_ms: Schema.optional(durationMs(0)),
    request_timeout_secs: Schema.optional(durationSecs(1)),
    batches_in_flight_max: Schema.optional(integerAtLeast(1)),
    // 5,000 of the largest changes the store takes stay below the 16 MiB message bound.
    catch_up_batch_size: Schema.optional(Schema.Number.pipe(Schema.int(), Schema.between(1, 5_000)).annotations(expecting("an integer from 1 to 5000"))),
    buffer_size: Schema.optional(integerAtLeast(1))
  },
  "agent settings"
)

/** The `health:` section. */
export const HealthFile = section({ lag_ms_max: Schema.optional(durationMs(1)) }, "health settings")

/** The `failover:` section. */
export const FailoverFile = section(
  {
    detect_after_ms: Schema.optional(durationMs(1)),
    promote_back_after_ms: Schema.optional(durationMs(0)),
    fence_after_ms: Schema.optional(durationMs(0)),
    confirm_after_ms: Schema.optional(durationMs(0)),
    check_interval_ms: Schema.optional(durationMs(1))
  },
  "failover settings"
)

/** The `heartbeat:` section. */
export const HeartbeatFile = section(
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

/** The `security:` section. */
export const SecurityFile = section(
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

/** The `grpc:` section. */
export const GrpcFile = section(
  {
    listen: Schema.optional(ListenAddress),
    max_in_flight_per_target: Schema.optional(integerBetween(1, 1_024)),
    max_message_bytes: Schema.optional(integerBetween(1_024, 2 ** 31 - 1)),
    replication_stream: Schema.optional(Flag),
    max_write_operations: Schema.optional(integerBetween(1, 1_000_000))
  },
  "gRPC server settings"
)

/** The `http:` section. */
export const HttpFile = section({ listen: Schema.optional(ListenAddress) }, "HTTP server settings")

/** The `store:` section. */
export const StoreFile = section(
  {
    kind: Schema.optional(StoreKindField),
    path: Schema.optional(FilePath),
    cluster_file: Schema.optional(FilePath),
    prefix: Schema.optional(Prefix),
    min_free_mb: Schema.optional(integerBetween(0, 1_048_576))
  },
  "store settings"
)

/** The `process:` section: how the node's process runs, apart from what it serves. */
export const ProcessFile = section({ idle_gc: Schema.optional(Flag) }, "process settings")

/** A DNS name (labels of letters, digits, `-` and `_`, a trailing dot allowed) of at most 253 characters. */
const DnsName = Schema.String.pipe(
  Schema.filter((text) => text.length <= 253 && /^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62})(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62}))*\.?$/.test(text))
).annotations(expecting("a DNS name such as inferadb-engine-0.eu-central-1.ts.net"))

const DnsLabel = Schema.String.pipe(Schema.filter((text) => /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/.test(text))).annotations(
  expecting("a Kubernetes name (lower-case letters, digits and '-', at most 63 characters)")
)

/** One target of the `discovery:` section: a hostname, or a Kubernetes headless service. */
export const DiscoveryTargetFile = section(
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

/** A decoded discovery target. */
export type DiscoveryTargetFile = typeof DiscoveryTargetFile.Type

const DiscoveryFile = section(
  {
    mode: Schema.optional(Schema.Literal("static", "dns").annotations(expecting("static or dns"))),
    interval_ms: Schema.optional(durationMs(100)),
    targets: Schema.optional(Schema.Array(DiscoveryTargetFile).annotations({ message: () => "a list of discovery targets" }))
  },
  "discovery settings"
)

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

/** The whole replication section. */
export const ReplicationFile = section(
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
    process: Schema.optional(ProcessFile),
    discovery: Schema.optional(DiscoveryFile),
    regions: Schema.Array(RegionFile).annotations({ message: () => "a list of regions" }),
    replication_targets: Schema.optional(
      Schema.Record({ key: Id, value: IdList }).annotations({ message: () => "a mapping from region id to a list of region ids" })
    ),
    vaults: Schema.optional(Schema.Array(VaultFile).annotations({ message: () => "a list of vaults" }))
  },
  "replication settings"
)

/** A decoded replication section, keys as written in the file. */
export type ReplicationFile = typeof ReplicationFile.Type

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
  process: Object.keys(ProcessFile.fields),
  discovery: Object.keys(DiscoveryFile.fields),
  targets: Object.keys(DiscoveryTargetFile.fields),
  regions: Object.keys(RegionFile.fields),
  zones: Object.keys(ZoneFile.fields),
  nodes: Object.keys(NodeFile.fields),
  vaults: Object.keys(VaultFile.fields)
}

const decodeReplicationFile = Schema.decodeUnknownEither(ReplicationFile, { onExcessProperty: "error", errors: "first" })

/** Decodes a raw section, or names the first key at fault and what it should be. */
export const decodeFile = (raw: unknown, paths: ConfigError.Paths): Either.Either<ReplicationFile, ConfigError.ConfigError> =>
  Either.mapLeft(decodeReplicationFile(raw), (error) => {
    const issue = ParseResult.ArrayFormatter.formatIssueSync(error.issue)[0]
    if (issue === undefined) return ConfigError.make(paths.prefix, ConfigError.show(raw), "valid replication settings", error.message)
    const segments = issue.path.filter((segment): segment is ConfigError.Segment => typeof segment !== "symbol")
    const value = ConfigError.valueAt(raw, segments)
    return ConfigError.make(ConfigError.formatPath(paths, segments), ConfigError.isSecret(segments) ? ConfigError.showSecret(value) : ConfigError.show(value), expectedFor(issue, segments))
  })

const expectedFor = (issue: ParseResult.ArrayFormatterIssue, segments: ReadonlyArray<ConfigError.Segment>): string => {
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
