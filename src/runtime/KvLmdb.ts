/**
 * The embedded Store backend: a `KvDriver` over lmdb (a memory-mapped B+tree in one
 * directory, no server). It is the production store for a single node; the region's nodes
 * each keep their own.
 *
 * Transactions work like the memory driver's: one at a time (a semaphore), the body reads
 * committed data with lmdb's synchronous reads and buffers its writes (`KvEncoding.buffered`),
 * and the writes are committed in one lmdb write transaction whose completion is awaited
 * before the transaction succeeds. Only this process may write the directory: serialization
 * is in-process.
 *
 * Durability: a transaction is acknowledged only after lmdb has committed it and fsync'ed
 * the data and meta pages, so an acknowledged transaction survives `kill -9` and a power
 * loss. The environment is opened with `noSync: false` and `noMetaSync: false` (lmdb's
 * defaults, stated so nobody flips them) and `overlappingSync: false`, so the commit promise
 * itself means "on disk" rather than "visible, flush pending"; we additionally await
 * `db.flushed`. Never enable `noSync`/`noMetaSync`/`useWritemap` here: lmdb documents them as
 * trading durability for speed.
 */
import { Effect, Layer } from "effect"
import { open, type RootDatabase } from "lmdb"
import { StoreError } from "../replication/Errors.js"
import * as KvDriver from "../replication/KvDriver.js"
import * as Store from "../replication/Store.js"
import * as KvEncoding from "./KvEncoding.js"

/** Where the lmdb environment lives. */
export interface Options {
  /** A directory; created when missing. */
  readonly path: string
  /** Initial map size in bytes; lmdb grows it as needed. */
  readonly mapSizeBytes?: number
}

type Database = RootDatabase<Buffer, Buffer>

const failure = (operation: string, error: unknown) =>
  new StoreError({ operation, message: `lmdb: ${error instanceof Error ? error.message : String(error)}` })

const openDatabase = (options: Options): Effect.Effect<Database, StoreError> =>
  Effect.try({
    try: () =>
      open<Buffer, Buffer>({
        path: options.path,
        keyEncoding: "binary",
        encoding: "binary",
        noSync: false,
        noMetaSync: false,
        overlappingSync: false,
        ...(options.mapSizeBytes === undefined ? {} : { mapSize: options.mapSizeBytes })
      }),
    catch: (error) => failure("open", error)
  })

const committedReader = (db: Database): KvEncoding.CommittedReader => ({
  get: (key) =>
    Effect.try({
      try: () => {
        const value = db.get(KvEncoding.encodeKey(key))
        return value === undefined ? undefined : KvEncoding.decodeValue(value)
      },
      catch: (error) => failure("get", error)
    }),
  range: (start, end, limit) =>
    Effect.try({
      try: () => {
        if (limit <= 0) return []
        const entries = db.getRange({ start: KvEncoding.encodeKey(start), end: KvEncoding.encodeKey(end), limit })
        return Array.from(entries, ({ key, value }) => [KvEncoding.decodeKey(key), KvEncoding.decodeValue(value)] as const)
      },
      catch: (error) => failure("range", error)
    })
})

// lmdb-js's compiled-in default, which `Store.keyBytesMax` restates for the shared code; the
// open database reports its own (untyped) `maxKeySize`.
const defaultKeySizeMax = Store.keyBytesMax

const keySizeMax = (db: Database): number => (db as unknown as { readonly maxKeySize?: number }).maxKeySize ?? defaultKeySizeMax

/**
 * Commits buffered writes in one lmdb transaction and waits until they are on disk. Keys are
 * encoded and checked first: lmdb's batch commits the writes made before a throwing one, so
 * nothing that can throw may run inside it.
 */
const commit = (db: Database, writes: ReadonlyMap<string, string | null>): Effect.Effect<void, StoreError> =>
  Effect.gen(function* () {
    if (writes.size === 0) return
    const encoded: Array<readonly [Buffer, Buffer | null]> = []
    for (const [key, value] of writes) {
      const bytes = KvEncoding.encodeKey(key)
      if (bytes.length === 0 || bytes.length > keySizeMax(db)) {
        return yield* new StoreError({ operation: "commit", message: `key of ${bytes.length} bytes is outside lmdb's 1..${keySizeMax(db)} bytes` })
      }
      encoded.push([bytes, value === null ? null : KvEncoding.encodeValue(value)])
    }
    yield* Effect.tryPromise({
      try: async () => {
        const committed = await db.batch(() => {
          for (const [key, value] of encoded) {
            if (value === null) void db.remove(key)
            else void db.put(key, value)
          }
        })
        if (!committed) throw new Error("lmdb did not commit the batch")
        await db.flushed
      },
      catch: (error) => failure("commit", error)
    })
  })

/** A driver over an open lmdb database. */
const makeDriver = (db: Database): Effect.Effect<KvDriver.KvDriver> =>
  Effect.map(Effect.makeSemaphore(1), (lock): KvDriver.KvDriver => {
    let closed = false
    const reader = committedReader(db)
    return {
      transact: (body) =>
        lock.withPermits(1)(
          Effect.suspend(() => {
            const { transaction, writes } = KvEncoding.buffered(reader)
            // Once the commit starts it must finish before the permit is released, or the next
            // transaction could read the state from before it.
            return Effect.tap(body(transaction), () => Effect.uninterruptible(commit(db, writes)))
          })
        ),
      // lmdb reads see the last committed state without the writer lock, so log tailing and
      // health checks never wait behind an fsync'd commit.
      read: (body) => body(KvDriver.readOnly(reader.get, reader.range)),
      close: Effect.suspend(() => {
        if (closed) return Effect.void
        closed = true
        return Effect.promise(() => db.close()).pipe(
          Effect.catchAllDefect((defect) => Effect.logWarning(`closing lmdb failed: ${String(defect)}`))
        )
      })
    }
  })

/** An lmdb driver that is closed when the scope closes. */
export const makeScoped = (options: Options) =>
  Effect.acquireRelease(Effect.flatMap(openDatabase(options), makeDriver), (driver) => driver.close)

/** The Store over lmdb at `options.path`; the database is closed when the layer's scope closes. */
export const layerLmdb = (options: Options): Layer.Layer<Store.Store, StoreError> =>
  Layer.scoped(Store.Store, Effect.map(makeScoped(options), Store.make))
