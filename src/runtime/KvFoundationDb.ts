/**
 * The FoundationDB Store backend: a `KvDriver` over the `foundationdb` npm binding, for
 * regions that run an FDB cluster (the orchestration document's layout: one cluster per
 * region). Several engine nodes of a region may share one cluster and prefix; FDB's
 * serializable transactions keep them consistent.
 *
 * The binding is an optional dependency with a native part (libfdb_c), so it is loaded
 * (`require`, at run time) only when this store is selected, and the few parts of its API used here
 * are declared locally so the project compiles without it. A missing binding is a StoreError
 * that says what to install.
 *
 * Transactions run through the binding's `db.doTransaction`, which re-runs the body on
 * conflicts and retryable errors: the body only reads through the FDB transaction and
 * buffers its writes (`KvEncoding.buffered`), which are applied to the FDB transaction just
 * before it commits, so a re-run starts clean. FDB may also report `commit_unknown_result`
 * and retry a transaction that did commit; to never apply one twice, every writing
 * transaction also records its sequence number under a per-driver marker key, and a re-run
 * that finds its own number there stops with a StoreError instead of committing again.
 *
 * Key layout under the region's `prefix` (UTF-8, must not contain NUL):
 *   <prefix> 0x00 <KvEncoding key>   the Store's keys
 *   <prefix> 0x01 <driver id>        commit marker of one running driver (cleared on close;
 *                                    a crashed process leaves this one small key behind)
 *
 * FDB's limits apply: a transaction lasts at most 5 s and writes at most 10 MB, keys are at
 * most 10 kB and values 100 kB. Errors past them surface as StoreErrors.
 */
import { randomUUID } from "node:crypto"
import { createRequire } from "node:module"
import { Duration, Effect, Exit, FiberId, Layer, Runtime } from "effect"
import { StoreError } from "../replication/Errors.js"
import * as Handoff from "../replication/Handoff.js"
import type * as KvDriver from "../replication/KvDriver.js"
import * as Store from "../replication/Store.js"
import * as KvEncoding from "./KvEncoding.js"

/** The parts of the binding's `Transaction` this driver uses. */
export interface FdbTransaction {
  get(key: Buffer): Promise<Buffer | null | undefined>
  getRangeAll(start: Buffer, end: Buffer, options?: { readonly limit?: number }): Promise<ReadonlyArray<readonly [Buffer, Buffer]>>
  set(key: Buffer, value: Buffer): void
  clear(key: Buffer): void
}

/** The parts of the binding's `Database` this driver uses. */
export interface FdbDatabase {
  doTransaction<T>(body: (transaction: FdbTransaction) => Promise<T>): Promise<T>
  close(): void
}

/** The parts of the `foundationdb` module this driver uses. */
export interface FdbBinding {
  setAPIVersion(version: number): void
  open(clusterFile?: string): FdbDatabase
}

/** How to reach the region's data. */
export interface Options {
  /** The region's key prefix, e.g. `inferadb/us-east-1`; non-empty, without NUL. */
  readonly prefix: string
  /** The cluster file; default `FDB_CLUSTER_FILE`, then the client's default location. */
  readonly clusterFile?: string
  /** FDB API version; must not exceed the installed client's (7.3 clients: 730). */
  readonly apiVersion?: number
  /** Loads the binding; tests replace it. Default: `import("foundationdb")`. */
  readonly importBinding?: () => Promise<unknown>
}

/** The API version of the FDB 7.3 clients the deployment document installs. */
export const defaultApiVersion = 730

const bindingPackage = "foundationdb"

/** What to do when the binding cannot be loaded. */
export const installHint = [
  "To use the FoundationDB store:",
  "(1) install the FoundationDB client package for your OS, which provides libfdb_c",
  "(Debian/Ubuntu: foundationdb-clients_<version>_amd64.deb, RHEL: foundationdb-clients-<version>.x86_64.rpm,",
  "macOS: FoundationDB-<version>.pkg, from https://github.com/apple/foundationdb/releases, matching your cluster's version, e.g. 7.3.43);",
  `(2) run \`npm install ${bindingPackage}\` in this project;`,
  "(3) point FDB_CLUSTER_FILE (or the store's clusterFile option) at the cluster file.",
  "The FoundationDB store is only loaded when it is selected (KvFoundationDb.layerFoundationDb, the serve command's FoundationDB store option);",
  "select the embedded lmdb store (KvLmdb.layerLmdb) to run without it."
].join(" ")

const describe = (error: unknown): string => (error instanceof Error ? error.message : String(error))

const isBinding = (value: unknown): value is FdbBinding =>
  typeof value === "object" &&
  value !== null &&
  typeof (value as Partial<FdbBinding>).open === "function" &&
  typeof (value as Partial<FdbBinding>).setAPIVersion === "function"

// `require` rather than `import()`: the bundle is a script (see scripts/build.mjs), whose import()
// of a package named at run time Node 20 allows only behind an experimental flag.
const requireBinding = (): Promise<unknown> => Promise.resolve().then(() => createRequire(import.meta.url)(bindingPackage) as unknown)

/** Loads the binding, or fails with a StoreError saying what to install. */
export const loadBinding = (importBinding: () => Promise<unknown> = requireBinding): Effect.Effect<FdbBinding, StoreError> =>
  Effect.flatMap(
    Effect.tryPromise({
      try: importBinding,
      catch: (error) =>
        new StoreError({ operation: "loadFoundationDb", message: `the '${bindingPackage}' binding could not be loaded (${describe(error)}). ${installHint}` })
    }),
    (loaded) => {
      // An ES import of the CommonJS binding puts module.exports under `default`.
      const candidate = (loaded as { readonly default?: unknown }).default ?? loaded
      return isBinding(candidate)
        ? Effect.succeed(candidate)
        : Effect.fail(new StoreError({ operation: "loadFoundationDb", message: `'${bindingPackage}' loaded but has no open/setAPIVersion. ${installHint}` }))
    }
  )

const failure = (operation: string, error: unknown) => new StoreError({ operation, message: `FoundationDB: ${describe(error)}` })

/** The byte prefixes of one region. */
interface Layout {
  readonly data: Buffer
  readonly marker: Buffer
}

const layoutFor = (prefix: string, driverId: string): Layout | undefined => {
  if (prefix.length === 0 || prefix.includes("\u0000")) return undefined
  const base = Buffer.from(prefix, "utf8")
  return { data: Buffer.concat([base, Buffer.of(0x00)]), marker: Buffer.concat([base, Buffer.of(0x01), Buffer.from(driverId, "utf8")]) }
}

const dataKey = (layout: Layout, key: string): Buffer => Buffer.concat([layout.data, KvEncoding.encodeKey(key)])

/**
 * Committed reads through one FDB transaction attempt. A failed read remembers the binding's
 * own error, so the attempt can rethrow it and let `doTransaction` decide whether to retry.
 */
const attemptReader = (layout: Layout, transaction: FdbTransaction, readFailures: Array<unknown>): KvEncoding.CommittedReader => {
  const read = <A>(operation: string, run: () => Promise<A>) =>
    Effect.tryPromise({
      try: run,
      catch: (error) => {
        readFailures.push(error)
        return failure(operation, error)
      }
    })
  return {
    get: (key) =>
      read("get", () => transaction.get(dataKey(layout, key))).pipe(
        Effect.map((value) => (value === null || value === undefined ? undefined : KvEncoding.decodeValue(value)))
      ),
    range: (start, end, limit) =>
      limit <= 0
        ? Effect.succeed([])
        : read("range", () => transaction.getRangeAll(dataKey(layout, start), dataKey(layout, end), { limit })).pipe(
            Effect.map((entries) =>
              entries.map(([key, value]) => [KvEncoding.decodeKey(key.subarray(layout.data.length)), KvEncoding.decodeValue(value)] as const)
            )
          )
  }
}

/**
 * Runs a promise-returning job; if the fiber is interrupted, aborts the job's signal and waits
 * until the job has settled, so no transaction of this driver is still in flight afterwards.
 */
const settleBeforeInterrupt = <A>(job: (signal: AbortSignal) => Promise<A>): Effect.Effect<A, StoreError> =>
  Effect.async<A, StoreError>((resume) => {
    const controller = new AbortController()
    const settled = job(controller.signal).then(
      (value) => resume(Effect.succeed(value)),
      (error) => resume(Effect.fail(failure("transact", error)))
    )
    return Effect.promise(() => {
      controller.abort()
      return settled
    })
  })

/** Thrown out of an attempt to make `doTransaction` stop without committing. */
const stopWithoutCommit = new Error("stop without commit")

/**
 * Runs `body` as the driver's transaction number `number` through `doTransaction`. Each
 * attempt runs the body afresh over the attempt's FDB transaction; only a successful body's
 * buffered writes, plus the marker, are applied before the binding commits.
 */
const runTransaction = <A, E, R>(
  db: FdbDatabase,
  layout: Layout,
  number: number,
  body: (tx: KvDriver.KvTransaction) => Effect.Effect<A, E, R>
): Effect.Effect<A, E | StoreError, R> =>
  Effect.gen(function* () {
    const runtime = yield* Effect.runtime<R>()
    const marker = KvEncoding.encodeValue(String(number))
    let attempts = 0
    let outcome: Exit.Exit<A, E | StoreError> | undefined

    const attempt = async (transaction: FdbTransaction, signal: AbortSignal): Promise<A> => {
      attempts++
      // Only a re-run can follow a commit that reported commit_unknown_result.
      if (attempts > 1 && (await transaction.get(layout.marker))?.equals(marker) === true) {
        outcome = Exit.fail(new StoreError({ operation: "commit", message: "FoundationDB reported commit_unknown_result and the transaction had committed; its result is lost, read again to see it" }))
        throw stopWithoutCommit
      }
      const readFailures: Array<unknown> = []
      const { transaction: view, writes } = KvEncoding.buffered(attemptReader(layout, transaction, readFailures))
      const exit = await Runtime.runPromiseExit(runtime)(body(view), { signal })
      // The binding's own error lets doTransaction retry what FDB calls retryable.
      if (Exit.isFailure(exit) && readFailures.length > 0) throw readFailures[0]
      if (Exit.isFailure(exit) || signal.aborted) {
        // An aborted signal means the caller was interrupted: nothing waits for this outcome.
        outcome = Exit.isFailure(exit) ? exit : Exit.interrupt(FiberId.none)
        throw stopWithoutCommit
      }
      for (const [key, value] of writes) {
        if (value === null) transaction.clear(dataKey(layout, key))
        else transaction.set(dataKey(layout, key), KvEncoding.encodeValue(value))
      }
      if (writes.size > 0) transaction.set(layout.marker, marker)
      return exit.value
    }

    const settled = yield* settleBeforeInterrupt((signal) =>
      db.doTransaction((transaction) => attempt(transaction, signal)).then(
        (value): Exit.Exit<A, E | StoreError> => Exit.succeed(value),
        (error: unknown) => {
          if (error === stopWithoutCommit && outcome !== undefined) return outcome
          throw error
        }
      )
    )
    return yield* settled
  })

/**
 * A driver over an open database. Its transactions run one at a time, so the marker key
 * (written only by this driver) names the last transaction of this driver that committed.
 */
const makeDriver = (db: FdbDatabase, layout: Layout): Effect.Effect<KvDriver.KvDriver> =>
  Effect.sync((): KvDriver.KvDriver => {
    const lock = new Handoff.Lock()
    let sequence = 0
    let closed = false
    const clearMarker = Effect.tryPromise(() => db.doTransaction(async (transaction) => transaction.clear(layout.marker))).pipe(
      Effect.timeout(Duration.seconds(2)),
      Effect.ignore
    )
    return {
      transact: (body) => lock.with(Effect.suspend(() => runTransaction(db, layout, ++sequence, body))),
      close: Effect.suspend(() => {
        if (closed) return Effect.void
        closed = true
        return Effect.zipRight(clearMarker, Effect.sync(() => db.close())).pipe(
          Effect.catchAllDefect((defect) => Effect.logWarning(`closing FoundationDB failed: ${String(defect)}`))
        )
      })
    }
  })

/** Opens the database for a region; fails with a StoreError when the binding is missing. */
export const makeScoped = (options: Options) =>
  Effect.gen(function* () {
    const layout = layoutFor(options.prefix, randomUUID())
    if (layout === undefined) {
      return yield* new StoreError({ operation: "open", message: `FoundationDB prefix must be non-empty and free of NUL, got '${options.prefix}'` })
    }
    const binding = yield* loadBinding(options.importBinding)
    const clusterFile = options.clusterFile ?? process.env["FDB_CLUSTER_FILE"]
    const db = yield* Effect.try({
      try: () => {
        // The binding accepts the same version again and throws on a different one.
        binding.setAPIVersion(options.apiVersion ?? defaultApiVersion)
        return clusterFile === undefined ? binding.open() : binding.open(clusterFile)
      },
      catch: (error) => failure("open", error)
    })
    return yield* Effect.acquireRelease(makeDriver(db, layout), (driver) => driver.close)
  })

/** The Store over FoundationDB under `options.prefix`; the database is closed with the scope. */
export const layerFoundationDb = (options: Options): Layer.Layer<Store.Store, StoreError> =>
  Layer.scoped(Store.Store, Effect.flatMap(makeScoped(options), (driver) => Store.make(driver, { numberOrigins: false })))
