/**
 * Environment overrides of the configuration file: the `INFERADB__ENGINE__REPLICATION__...`
 * (or `INFERADB__REPLICATION__...`) variables, and the engine-wide node id and local region the
 * seed's Kubernetes StatefulSet sets from pod metadata. Each is applied to the raw section
 * before the schema decodes it, remembering which variable set which key so errors name the
 * variable. Unknown replication variables are errors. Pure: the caller passes the environment.
 */
import { Either, type Schema } from "effect"
import * as ConfigError from "./ConfigError.js"
import * as FileSchema from "./FileSchema.js"

type EnvKind = "boolean" | "integer" | "string" | "list"

interface EnvBinding {
  readonly path: ReadonlyArray<string>
  readonly kind: EnvKind
}

const replicationPrefixes = ["INFERADB__ENGINE__REPLICATION__", "INFERADB__REPLICATION__"] as const

const upper = (key: string): string => key.toUpperCase()

/** `<SECTION>__<KEY>` variables of a runtime section: integers and booleans where the file takes them, else strings. */
const sectionVariables = (section: string, fields: Schema.Struct.Fields): Array<[string, EnvBinding]> => {
  const integers = new Set(["max_in_flight_per_target", "max_message_bytes", "max_write_operations", "min_free_mb"])
  const booleans = new Set(["idle_gc", "replication_stream"])
  return Object.keys(fields).map((key) => [
    `${upper(section)}__${upper(key)}`,
    { path: [section, key], kind: integers.has(key) ? "integer" : booleans.has(key) ? "boolean" : "string" }
  ])
}

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
  ...Object.keys(FileSchema.AgentFile.fields).flatMap((key): Array<[string, EnvBinding]> => [
    [`AGENT__${upper(key)}`, { path: ["agent", key], kind: "integer" }],
    [upper(key), { path: ["agent", key], kind: "integer" }]
  ]),
  ...Object.keys(FileSchema.HealthFile.fields).map((key): [string, EnvBinding] => [`HEALTH__${upper(key)}`, { path: ["health", key], kind: "integer" }]),
  ...Object.keys(FileSchema.HeartbeatFile.fields).map((key): [string, EnvBinding] => [`HEARTBEAT__${upper(key)}`, { path: ["heartbeat", key], kind: "integer" }]),
  ...Object.keys(FileSchema.FailoverFile.fields).map((key): [string, EnvBinding] => [`FAILOVER__${upper(key)}`, { path: ["failover", key], kind: "integer" }]),
  ...sectionVariables("security", FileSchema.SecurityFile.fields),
  ...sectionVariables("grpc", FileSchema.GrpcFile.fields),
  ...sectionVariables("http", FileSchema.HttpFile.fields),
  ...sectionVariables("store", FileSchema.StoreFile.fields),
  ...sectionVariables("process", FileSchema.ProcessFile.fields),
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

const parseEnvValue = (name: string, raw: string, kind: EnvKind): Either.Either<unknown, ConfigError.ConfigError> => {
  switch (kind) {
    case "string":
      return Either.right(raw)
    case "boolean": {
      const lowered = raw.trim().toLowerCase()
      return lowered === "true" || lowered === "false"
        ? Either.right(lowered === "true")
        : Either.left(ConfigError.make(name, ConfigError.show(raw), "true or false"))
    }
    case "integer": {
      const parsed = /^[+-]?\d+$/.test(raw.trim()) ? Number(raw.trim()) : Number.NaN
      return Number.isSafeInteger(parsed) ? Either.right(parsed) : Either.left(ConfigError.make(name, ConfigError.show(raw), "an integer"))
    }
    case "list": {
      const items = raw.trim() === "" ? [] : raw.split(",").map((item) => item.trim())
      return items.includes("")
        ? Either.left(ConfigError.make(name, ConfigError.show(raw), "a comma-separated list of region ids, e.g. us-west-1,eu-central-1"))
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
  return ConfigError.isRecord(child) ? { ...root, [head]: setIn(child, rest, value) } : root
}

/** The raw section with the variables applied, and which variable set which dotted key. */
export interface Overridden {
  readonly raw: Record<string, unknown>
  readonly origins: ReadonlyMap<string, string>
}

/** Applies the replication environment variables to the raw replication section, in name order. */
export const applyEnvironment = (
  raw: Record<string, unknown>,
  env: Readonly<Record<string, string | undefined>>
): Either.Either<Overridden, ConfigError.ConfigError> => {
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
      const display = ConfigError.isSecret(binding.path) ? ConfigError.showSecret : ConfigError.show
      return Either.left(ConfigError.make(name, display(value), `the same value as ${earlier} (${display(values.get(key))}), which sets the same key`))
    }
    const parsed = parseEnvValue(name, value, binding.kind)
    if (Either.isLeft(parsed)) return Either.left(parsed.left)
    result = setIn(result, binding.path, parsed.right)
    origins.set(key, earlier ?? name)
    values.set(key, value)
  }
  return Either.right({ raw: result, origins })
}

const unknownVariable = (name: string, value: string): ConfigError.ConfigError =>
  ConfigError.make(
    name,
    ConfigError.show(value),
    `a known replication variable (INFERADB__ENGINE__REPLICATION__ followed by one of ${[...replicationVariables.keys()].join(", ")})`,
    "unknown variables are rejected so that a typo cannot go unnoticed"
  )
