/**
 * How a `serve` process writes its log: one line per event on stdout, through Effect's Logger,
 * so every fiber of the node (agent, monitor, failover, gRPC calls) logs the same way and
 * carries the same annotations. Each line has the time (ISO 8601, UTC), the level, the region
 * and the node (annotations set once by the command), the message, and any other annotation
 * (`target`, `component`, ...).
 *
 * - `json`: one JSON object per line (`time`, `level`, `region`, `node`, `message`, then the
 *   other annotations and a `cause` when there is one), for log shippers.
 * - `pretty`: `2026-11-30T07:59:00.123Z INFO  us-west-1/node-1 message target=eu-central-1`.
 */
import { Cause, HashMap, Layer, List, Logger, LogLevel } from "effect"

/** Output formats of `--log-format`. */
export const formats = ["pretty", "json"] as const
export type Format = (typeof formats)[number]

/** Levels of `--log-level`, lowest first. */
export const levels = ["trace", "debug", "info", "warning", "error", "none"] as const
export type Level = (typeof levels)[number]

const levelOf: Record<Level, LogLevel.LogLevel> = {
  trace: LogLevel.Trace,
  debug: LogLevel.Debug,
  info: LogLevel.Info,
  warning: LogLevel.Warning,
  error: LogLevel.Error,
  none: LogLevel.None
}

/** The annotations every line leads with, in this order. */
const leading = ["region", "node"] as const

const text = (message: unknown): string => {
  const parts = Array.isArray(message) ? message : [message]
  return parts.map((part) => (typeof part === "string" ? part : part instanceof Error ? `${part.name}: ${part.message}` : JSON.stringify(part))).join(" ")
}

/** One log line's fields, in print order. */
export const fields = (options: Logger.Logger.Options<unknown>): Record<string, unknown> => {
  const annotations = Object.fromEntries(HashMap.toEntries(options.annotations))
  const record: Record<string, unknown> = {
    time: options.date.toISOString(),
    level: options.logLevel.label.toLowerCase(),
    ...Object.fromEntries(leading.map((key) => [key, annotations[key] ?? ""])),
    message: text(options.message)
  }
  for (const [key, value] of Object.entries(annotations)) if (!(leading as ReadonlyArray<string>).includes(key)) record[key] = value
  for (const span of List.toArray(options.spans)) record[`span.${span.label}`] = options.date.getTime() - span.startTime
  if (!Cause.isEmpty(options.cause)) record["cause"] = Cause.pretty(options.cause)
  return record
}

/** A JSON-lines line. */
export const jsonLine = (options: Logger.Logger.Options<unknown>): string => JSON.stringify(fields(options))

/** A human-readable line: time, level, region/node, message, then key=value annotations. */
export const prettyLine = (options: Logger.Logger.Options<unknown>): string => {
  const { time, level, region, node, message, ...rest } = fields(options)
  const extra = Object.entries(rest).map(([key, value]) => `${key}=${typeof value === "string" && !/\s/.test(value) ? value : JSON.stringify(value)}`)
  return [String(time), String(level).toUpperCase().padEnd(5), `${String(region)}/${String(node)}`, String(message), ...extra].join(" ")
}

/** A logger writing lines of `format` to `write`. */
export const make = (format: Format, write: (line: string) => void): Logger.Logger<unknown, void> =>
  Logger.make((options) => write(format === "json" ? jsonLine(options) : prettyLine(options)))

/** Replaces Effect's default logger with one writing `format` to stdout, and drops lines below `level`. */
export const layer = (options: { readonly format: Format; readonly level: Level; readonly write?: (line: string) => void }): Layer.Layer<never> =>
  Layer.merge(
    Logger.replace(Logger.defaultLogger, make(options.format, options.write ?? ((line) => void process.stdout.write(`${line}\n`)))),
    Logger.minimumLogLevel(levelOf[options.level])
  )
