/**
 * The one error of configuration decoding, and the key paths it names. Every problem in a
 * configuration file or its environment overrides becomes one `ConfigError` naming the exact
 * key path (`engine.replication.agent.batch_size`, `replication.regions[1].zones[0].nodes[0].id`)
 * or the environment variable that set the value, the offending value (secrets shown only by
 * length) and what was expected. Shared by the schema, environment and topology steps of
 * `Config`; pure.
 */
import { Data } from "effect"

/** The configuration is invalid; `path` is the key path or environment variable at fault. */
export class ConfigError extends Data.TaggedError("ConfigError")<{
  readonly path: string
  readonly value: string
  readonly expected: string
  readonly message: string
}> {}

/** An error at `path` (a key path or variable): the value found, what was expected and why. */
export const make = (path: string, value: string, expected: string, detail?: string): ConfigError =>
  new ConfigError({
    path,
    value,
    expected,
    message: `${path}: expected ${expected}, got ${value}${detail === undefined ? "" : ` (${detail})`}`
  })

/** One step of a key path: a key, or an index into a list. */
export type Segment = string | number

/** How to print a key path: the section prefix used by the file, and which keys the environment set. */
export interface Paths {
  readonly prefix: "replication" | "engine.replication"
  /** Dotted key (`agent.batch_size`) -> environment variable that set it. */
  readonly origins: ReadonlyMap<string, string>
}

/** The key path as the file spells it (`replication.regions[0].id`), or the variable that set it. */
export const formatPath = (paths: Paths, segments: ReadonlyArray<Segment>): string => {
  for (let length = 1; length <= segments.length; length++) {
    const origin = paths.origins.get(segments.slice(0, length).join("."))
    if (origin !== undefined) return origin
  }
  return paths.prefix + segments.map((segment) => (typeof segment === "number" ? `[${segment}]` : `.${segment}`)).join("")
}

/** The value at a key path of a raw (undecoded) section, or undefined. */
export const valueAt = (root: unknown, segments: ReadonlyArray<Segment>): unknown =>
  segments.reduce<unknown>(
    (current, segment) => (isRecord(current) || Array.isArray(current) ? (current as Record<Segment, unknown>)[segment] : undefined),
    root
  )

/** A value as an error shows it: JSON, cut at 200 characters, `(missing)` when absent. */
export const show = (value: unknown): string => {
  if (value === undefined) return "(missing)"
  const text = JSON.stringify(value) ?? String(value)
  return text.length > 200 ? `${text.slice(0, 197)}...` : text
}

/** Whether a raw value is a mapping (not null, not a list). */
export const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

/** Keys whose values are secrets: errors say how long the value is, never what it is. */
const secretKeys: ReadonlySet<string> = new Set(["security.token"])

/** Whether the key path holds a secret, shown only by its length. */
export const isSecret = (segments: ReadonlyArray<Segment>): boolean => secretKeys.has(segments.join("."))

/** A secret as an error shows it: its length, never its text. */
export const showSecret = (value: unknown): string =>
  typeof value === "string" ? `(redacted, ${value.length} characters)` : value === undefined ? "(missing)" : "(redacted)"

/** Makes the error for a key path of the file being decoded. */
export type At = (segments: ReadonlyArray<Segment>, expected: string) => ConfigError
