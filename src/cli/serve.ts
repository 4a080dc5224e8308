/**
 * `inferadb-repl serve`: runs one engine node until SIGTERM or SIGINT.
 *
 *   inferadb-repl serve --config <file> [--http-port <n>] [--grpc-port <n>] [--data-dir <dir>]
 *                       [--store lmdb|foundationdb|memory] [--seed <n>] [--drain-timeout-ms <ms>]
 *                       [--log-format pretty|json] [--log-level trace|debug|info|warning|error|none]
 *
 * The file is decoded with the environment's `INFERADB__...` overrides (`Config.parseBytes`,
 * which also refuses invalid UTF-8); the flags then override the file. Exit codes: 0 after a
 * clean shutdown (drained or not), 64 on a usage error (an unknown option, a missing --config,
 * a malformed flag value; see main.ts), 2 when the configuration is invalid (the message names
 * the key path, the value and what was
 * expected), 1 when the node could not start (a port in use, an unreadable certificate, a
 * store that does not open) or stopped abnormally. The first signal drains and stops; a
 * second one, a second or more later, exits at once with 130. SIGHUP reloads the file and applies
 * its topology (regions, nodes, replication targets, vaults) without a restart; a file that does
 * not decode is reported and changes nothing.
 *
 * The wiring itself is `runtime/Serve.ts`; this file reads the file, picks the seed, handles
 * signals and turns the outcome into an exit code.
 */
import { Command, InvalidArgumentError, Option as CommandOption } from "commander"
import { Cause, Deferred, Effect, Either, Exit, Option, Queue, Stream } from "effect"
import { randomInt } from "node:crypto"
import * as fs from "node:fs"
import * as Config from "../runtime/config/Config.js"
import * as Logging from "../runtime/Logging.js"
import * as Serve from "../runtime/Serve.js"
import * as Canary from "../sim/canary/Canary.js"
import * as Version from "./Version.js"

/** Exit code of an invalid configuration. */
export const exitConfigInvalid = 2
/** Exit code when the node could not start or failed while running. */
export const exitFailed = 1
/** Exit code when a second signal cut the drain short. */
export const exitInterrupted = 130
/** Exit code when the store stopped ending transactions (`StoreWatch`): the supervisor starts the node again. */
export const exitStoreStalled = 3

/** A repeated signal forces the exit only this long after the first one. */
const forceAfterMs = 1_000

/** Seeds are drawn below this bound (crypto.randomInt's range limit is 2^48). */
const seedBound = 2 ** 47

const parsePort = (value: string): number => {
  const port = Number(value)
  if (!/^\d+$/.test(value) || port > 65_535) throw new InvalidArgumentError("a port is an integer from 0 to 65535")
  return port
}

const parseSeed = (value: string): number => {
  const seed = Number(value)
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(seed)) throw new InvalidArgumentError("a seed is a non-negative integer")
  return seed
}

const parseMs = (value: string): number => {
  const ms = Number(value)
  if (!/^\d+$/.test(value) || ms > 3_600_000) throw new InvalidArgumentError("a duration in milliseconds from 0 to 3600000")
  return ms
}

interface Options {
  readonly config: string
  readonly httpPort?: number
  readonly grpcPort?: number
  readonly dataDir?: string
  readonly store?: Config.StoreKind
  readonly seed?: number
  readonly drainTimeoutMs?: number
  readonly logFormat: Logging.Format
  readonly logLevel: Logging.Level
  readonly canary?: ServeCanary
}

/**
 * Deliberately broken builds of the node for the chaos harness's canary (a check that cannot
 * fail proves nothing): `keep-local` resolves conflicts by keeping the local region's change,
 * which the checkers must catch; `send-dies` makes a tenth of the node's batch sends die below
 * the agent, which retries them and logs each as a bug, which the judge's `defects` must catch
 * though the run converges; `stall-store` makes an lmdb commit never complete, which the node's
 * store watchdog must end (exit 3). Hidden from --help; the startup log says which is on.
 */
const serveCanaries = ["keep-local", "send-dies", "stall-store"] as const

/** Commits the `stall-store` canary's lmdb makes before its next one never completes: the start's writes and a few of the test's. */
const stallAfterCommits = 40
type ServeCanary = (typeof serveCanaries)[number]

const fail = (code: number, message: string): never => {
  process.stderr.write(`${message}\n`)
  process.exit(code)
}

/** Reads and decodes the configuration, or exits with 2 naming what is wrong. */
const loadPlan = (options: Options): Serve.Plan => {
  let bytes = new Uint8Array()
  try {
    bytes = fs.readFileSync(options.config)
  } catch (error) {
    fail(exitConfigInvalid, `cannot read the configuration file ${options.config}: ${error instanceof Error ? error.message : String(error)}`)
  }
  const config = Config.parseBytes(bytes, process.env)
  if (Either.isLeft(config)) return fail(exitConfigInvalid, `invalid configuration in ${options.config}: ${config.left.message}`)
  const overrides: Serve.Overrides = {
    ...(options.httpPort === undefined ? {} : { httpPort: options.httpPort }),
    ...(options.grpcPort === undefined ? {} : { grpcPort: options.grpcPort }),
    ...(options.dataDir === undefined ? {} : { dataDir: options.dataDir }),
    ...(options.store === undefined ? {} : { store: options.store })
  }
  const planned = Serve.plan(config.right, overrides, {
    seed: options.seed ?? randomInt(0, seedBound),
    version: Version.version(),
    ...(options.drainTimeoutMs === undefined ? {} : { drainTimeoutMs: options.drainTimeoutMs })
  })
  if (Either.isLeft(planned)) return fail(exitConfigInvalid, `invalid configuration in ${options.config}: ${planned.left.message}`)
  if (options.canary === undefined) return planned.right
  if (options.canary === "stall-store") {
    if (planned.right.store.kind !== "lmdb") return fail(exitConfigInvalid, "--canary stall-store needs the lmdb store")
    process.stdout.write(`canary: ${options.canary} (a deliberately broken node: its lmdb commit after the first ${stallAfterCommits} never completes)\n`)
    return { ...planned.right, store: { ...planned.right.store, stallAfterCommits } }
  }
  if (options.canary === "send-dies") {
    process.stdout.write(`canary: ${options.canary} (a deliberately broken node: a tenth of its batch sends die below the agent)\n`)
    // Not a seeded stream: a real run is not deterministic anyway, and which sends die does not matter.
    return { ...planned.right, networkCanary: Canary.sendDies(Math.random) }
  }
  process.stdout.write(`canary: ${options.canary} (a deliberately broken node: its conflict resolution keeps the local change)\n`)
  return { ...planned.right, settings: { ...planned.right.settings, resolver: Canary.keepLocal(planned.right.config.localRegion) } }
}

/**
 * The first SIGTERM/SIGINT completes `shutdown`; another one at least `forceAfterMs` later
 * exits at once. Earlier repeats are ignored: a terminal's Ctrl-C can reach the process twice
 * (directly and relayed by a wrapper such as tsx) within milliseconds.
 */
const onSignals = (shutdown: Deferred.Deferred<string>): void => {
  let firstAtMs: number | undefined
  const handle = (signal: NodeJS.Signals) => {
    if (firstAtMs === undefined) {
      firstAtMs = Date.now()
      return void Deferred.unsafeDone(shutdown, Exit.succeed(signal))
    }
    if (Date.now() - firstAtMs < forceAfterMs) return
    fail(exitInterrupted, `${signal} again: exiting without waiting for the drain`)
  }
  process.on("SIGTERM", handle)
  process.on("SIGINT", handle)
}

/** SIGHUP re-reads the configuration file; one that reads and decodes is offered to the node. */
const onReload = (options: Options, reloads: Queue.Queue<Config.ReplicationConfig>, received: { count: number }): void => {
  process.on("SIGHUP", () => {
    let bytes = new Uint8Array()
    try {
      bytes = fs.readFileSync(options.config)
    } catch (error) {
      return void process.stderr.write(`SIGHUP: cannot read ${options.config}, nothing reloaded: ${error instanceof Error ? error.message : String(error)}\n`)
    }
    const config = Config.parseBytes(bytes, process.env)
    if (Either.isLeft(config)) return void process.stderr.write(`SIGHUP: invalid configuration in ${options.config}, nothing reloaded: ${config.left.message}\n`)
    Queue.unsafeOffer(reloads, config.right)
    received.count++
  })
}

const run = async (options: Options): Promise<void> => {
  const plan = loadPlan(options)
  const shutdown = Deferred.unsafeMake<string>(Effect.runSync(Effect.fiberId))
  onSignals(shutdown)
  // Every line of the node, from any fiber, goes through one logger carrying its region and node.
  const logged = <A, E>(effect: Effect.Effect<A, E>) =>
    effect.pipe(
      Effect.annotateLogs({ region: plan.settings.regionId, node: plan.settings.nodeId }),
      Effect.provide(Logging.layer({ format: options.logFormat, level: options.logLevel }))
    )
  const log = (line: string) => Effect.runSync(logged(Effect.logInfo(line)))
  const reloads = Effect.runSync(Queue.unbounded<Config.ReplicationConfig>())
  const received = { count: 0 }
  onReload(options, reloads, received)
  const abort = (message: string) => {
    Effect.runSync(logged(Effect.logError(message)))
    fail(exitStoreStalled, `serve failed: ${message}`)
  }
  const exit = await Effect.runPromiseExit(logged(Serve.run(plan, { log, shutdown: Deferred.await(shutdown), reloads: Stream.fromQueue(reloads), reloadsReceived: () => received.count, abort })))
  if (Exit.isSuccess(exit)) {
    log("stopped")
    process.exit(0)
  }
  const failure = Cause.failureOption(exit.cause)
  if (Option.isSome(failure)) {
    fail(failure.value.stage === "config" ? exitConfigInvalid : exitFailed, `serve failed: ${failure.value.message}`)
  }
  fail(exitFailed, `serve failed: ${Cause.pretty(exit.cause)}`)
}

/** The `serve` command (its description is in main.ts, which lists it without loading this file). */
export const command = (): Command =>
  new Command("serve")
    .requiredOption("--config <file>", "YAML configuration (see examples/); INFERADB__... variables override it")
    .option("--http-port <n>", "HTTP port (overrides http.listen's port)", parsePort)
    .option("--grpc-port <n>", "gRPC port (overrides grpc.listen's port; peers still dial the topology's endpoint)", parsePort)
    .option("--data-dir <dir>", "lmdb directory (overrides store.path)")
    .addOption(new CommandOption("--store <kind>", "store backend (overrides store.kind)").choices(["lmdb", "foundationdb", "memory"]))
    .option("--seed <n>", "seed of the node's randomness (retry jitter); random and printed when omitted", parseSeed)
    .addOption(new CommandOption("--canary <name>", "a deliberately broken node, for the chaos harness's canary").choices(serveCanaries).hideHelp())
    .option("--drain-timeout-ms <ms>", `how long shutdown waits for targets to acknowledge the log (default ${Serve.drainTimeoutMsDefault})`, parseMs)
    .addOption(new CommandOption("--log-format <format>", "log lines: pretty (time level region/node message) or json (one object per line)").choices(Logging.formats).default("pretty"))
    .addOption(new CommandOption("--log-level <level>", "lowest level logged").choices(Logging.levels).default("info"))
    .action((options: Options) => run(options))
