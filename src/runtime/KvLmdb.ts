/**
 * The embedded Store backend: a `KvDriver` over lmdb (a memory-mapped B+tree in one
 * directory, no server). It is the production store for a single node; the region's nodes
 * each keep their own.
 *
 * Group commit. Transaction bodies run one at a time (a semaphore) and buffer their writes
 * (`KvEncoding.buffered`); at the end of a body its writes are handed to lmdb's write queue in
 * one `batch` and the semaphore is released at once, before the commit is durable. lmdb-js
 * commits everything queued while its previous commit was being written in one LMDB
 * transaction with one fsync, so concurrent client writes, applied batches and cursor writes
 * share a durable commit instead of taking an fsync each. Each transaction still waits, before
 * it succeeds, until the commit holding its writes is on disk: nothing is acknowledged before
 * it is durable; one that wrote nothing waits for the commits in flight when it ended, whose
 * writes it may have read (a batch found already applied is acknowledged as ignored).
 *
 * Serializability across the pipeline: writes handed to lmdb but not yet committed are kept in
 * an in-memory overlay (`KvDriver.InFlightCommits`) that later transaction bodies read through,
 * so each body sees the state every earlier body left. lmdb commits its queue in order, so a transaction is never
 * durable before one it read from. Read-only accesses (`read`: log tailing, health, tuple
 * checks) see only what lmdb has committed, never the overlay, so nothing shipped to another
 * region or shown to a client can be lost by a crash.
 *
 * A commit that fails must take every later one in flight with it: their bodies may have read its
 * writes through the overlay. Handed to lmdb's own queue one by one, a later batch went into an
 * LMDB transaction of its own once the earlier one was being written, and committed after the
 * earlier one failed (a full disk, say), making durable state that depends on writes that never
 * were: a log gap, a frontier naming a change the log does not hold. So `GroupCommit` keeps one
 * LMDB transaction in flight and hands what waits behind it to lmdb only once it is durable; if
 * it fails, what waits fails unwritten. Until every commit handed over before the failure has
 * settled, new transactions are refused; then the overlay is empty and the driver goes on from
 * what is on disk, as a restarted node would (a full disk refuses writes while it is full and
 * takes them again once there is room). The simulator found the same flaw in its model of this
 * driver (`KvDriver.makeMemory` with `pipelined`) through the `store_integrity` check, on seeds
 * with failing store commits.
 *
 * Only this process may write the directory: serialization is in-process.
 *
 * Two databases in one environment (one LMDB transaction covers both): the log's entries
 * (`Store.logPrefix`) in a database of their own, everything else in the root one. LMDB splits a
 * full page in half unless the new key goes at the very end of the database. The log only grows
 * at its end, but in the root database the counters and tuple states sort after it, so every log
 * page was left half empty; in a database of its own, the log fills its pages. It takes half the
 * pages it took, and a store about a fifth less disk and memory-mapped memory (`bench:repl`'s
 * stores: 274 MB before). A directory written before keeps its log in the root database; it is
 * moved over when the store opens (`moveLog`).
 *
 * Durability: the environment is opened with `noSync: false` and `noMetaSync: false` (lmdb's
 * defaults, stated so nobody flips them) and `overlappingSync: false`, so the commit promise
 * itself means "on disk" rather than "visible, flush pending": lmdb's writer then commits without
 * MDB_NOSYNC, and lmdb documents a write's promise as resolving once the transaction is fully
 * written to the storage medium. `db.flushed` is not awaited: it follows lmdb's newest LMDB
 * transaction, so under load a commit waited for the next one too, and after a failed commit it
 * could wait for one that never came. Never enable `noSync`/`noMetaSync`/`useWritemap` here: lmdb
 * documents them as trading durability for speed.
 */
import { Effect, Either, Layer } from "effect"
import * as fs from "node:fs"
import { open, type Database as LmdbDatabase, type DatabaseOptions, type RootDatabase } from "lmdb"
import { StoreError } from "../replication/Errors.js"
import * as Handoff from "../replication/Handoff.js"
import * as KvDriver from "../replication/KvDriver.js"
import * as Store from "../replication/Store.js"
import * as DiskRoom from "./DiskRoom.js"
import * as KvEncoding from "./KvEncoding.js"
import { LmdbValues } from "./LmdbValues.js"
import * as MapRoom from "./MapRoom.js"

/**
 * The address space the data file is mapped into at open: 16 GiB. lmdb-js starts from a small map
 * and maps the file again, larger, each time the database outgrows it, and it never unmaps the
 * earlier maps (buffers it handed out may point into them). A page read through an earlier map
 * stays resident there too, so the node's resident set counted much of the store twice: the
 * origin of `bench:repl` held 431 MB of file pages for a 260 MB store while it served a
 * bootstrap (the whole log read through the newest map, much of it still resident in older
 * ones). One map from the start reads every page through one mapping. It is address space,
 * not memory: the file grows with the data, not to the map's size (on Linux, without
 * `useWritemap`), and nothing is resident until read. A database larger than this is mapped
 * again, as before.
 */
const mapSizeBytesDefault = 16 * 2 ** 30

/**
 * The share of the address space left under a limit (`ulimit -v`, RLIMIT_AS) that the map takes
 * at open: a quarter, so node's own later reservations (heap growth, thread stacks) and a few
 * growths of the map still fit. lmdb-js cannot map more than the limit allows, and it does not
 * fail then: the process dies of a segmentation fault at open, with no word of why (a node under
 * `ulimit -v 20000000` did, from December 3, 2026, when the map became 16 GiB). Under a limit the
 * map does not grow: commits stop short of its end (`MapRoom`), as growing it is what crashes.
 */
const limitedShare = 4

/**
 * The soft limit on this process's address space in bytes, from the text of `/proc/self/limits`;
 * undefined when it is unlimited, or the text says nothing of it (not Linux, say).
 */
export const addressSpaceLimitBytes = (limits: string | undefined): number | undefined => {
  const soft = /^Max address space\s+(\S+)/m.exec(limits ?? "")?.[1]
  const bytes = soft === undefined || soft === "unlimited" ? Number.NaN : Number(soft)
  return Number.isSafeInteger(bytes) && bytes > 0 ? bytes : undefined
}

/** The address space this process has taken, in bytes, from the text of `/proc/self/status` (`VmSize`); 0 when it does not say. */
export const addressSpaceUsedBytes = (status: string | undefined): number => {
  const kib = Number(/^VmSize:\s+(\d+) kB/m.exec(status ?? "")?.[1])
  return Number.isSafeInteger(kib) ? kib * 1024 : 0
}

/**
 * The map to open with: the default, or under an address-space limit a quarter of what is left
 * of it (`limitBytes` less `usedBytes`), in whole MiB and at least one.
 */
export const mapSizeFor = (limitBytes: number | undefined, usedBytes: number): number =>
  limitBytes === undefined ? mapSizeBytesDefault : Math.min(mapSizeBytesDefault, Math.max(2 ** 20, Math.floor(Math.max(0, limitBytes - usedBytes) / limitedShare / 2 ** 20) * 2 ** 20))

/** Bytes in whole MiB, for messages. */
const mib = (bytes: number): number => Math.round(bytes / 2 ** 20)

/** This process's file in /proc, or undefined where there is none. */
const procSelf = (name: string): string | undefined => {
  try {
    return fs.readFileSync(`/proc/self/${name}`, "utf8")
  } catch {
    return undefined
  }
}

/** The map size this process opens with now (`mapSizeFor`), and the limit behind it. */
interface MapSize {
  readonly sizeBytes: number
  readonly limitBytes: number | undefined
}

/**
 * Why a data file of `fileBytes` is not opened under an address-space limit of which `usedBytes`
 * are taken; undefined when it is (or there is no limit). lmdb maps at least the whole file, and
 * a mapping that does not fit killed the process with a segmentation fault (a store grown without
 * a limit, opened under one): the store fails to open instead, saying what to do. The file must
 * fit in half of what is left, the rest being node's own.
 */
export const unmappable = (limitBytes: number | undefined, usedBytes: number, fileBytes: number): string | undefined => {
  if (limitBytes === undefined || fileBytes + MapRoom.headroomBytes <= (limitBytes - usedBytes) / 2) return undefined
  return `the data file (${mib(fileBytes)} MiB) does not fit in the address space this process may map (ulimit -v ${mib(limitBytes)} MiB, ${mib(usedBytes)} MiB of it taken): lmdb would crash mapping it; raise the limit`
}

/**
 * The map a data file of `fileBytes` is opened with under an address-space limit: `mapSizeFor`'s
 * quarter, or for a file already near or past that (written under a larger limit, say) room for
 * two headrooms of writes beyond it, within half of what is left (`unmappable` keeps the file and
 * one headroom within that half).
 */
export const mapSizeForFile = (limitBytes: number, usedBytes: number, fileBytes: number): number => {
  const fileMiB = Math.ceil(fileBytes / 2 ** 20) * 2 ** 20
  const halfLeft = Math.floor(Math.max(0, limitBytes - usedBytes) / 2 / 2 ** 20) * 2 ** 20
  return Math.max(mapSizeFor(limitBytes, usedBytes), Math.min(halfLeft, fileMiB + 2 * MapRoom.headroomBytes), fileMiB)
}

/** The map size this process opens a data file of `fileBytes` with now, or why it does not open it (`unmappable`). */
const mapSizeNow = (fileBytes: number): MapSize | string => {
  const limitBytes = addressSpaceLimitBytes(procSelf("limits"))
  if (limitBytes === undefined) return { sizeBytes: mapSizeBytesDefault, limitBytes }
  const usedBytes = addressSpaceUsedBytes(procSelf("status"))
  return unmappable(limitBytes, usedBytes, fileBytes) ?? { sizeBytes: mapSizeForFile(limitBytes, usedBytes, fileBytes), limitBytes }
}

/** lmdb's data file under `path`: `data.mdb` in the directory, or the file itself for an earlier file store. */
const dataFileOf = (path: string): string => (isEarlierFileStore(path) ? path : `${path}/data.mdb`)

/** The size of a file, 0 when there is none. */
const sizeOf = (file: string): number => fs.statSync(file, { throwIfNoEntry: false })?.size ?? 0

/** Where the lmdb environment lives. */
export interface Options {
  /** A directory; created when missing. */
  readonly path: string
  /** Initial map size in bytes (default `mapSizeBytesDefault`, less under an address-space limit: `mapSizeForFile`); lmdb grows it as needed, except under a limit (`MapRoom`). */
  readonly mapSizeBytes?: number
  /** Commits are refused while the disk has less free (`store.min_free_mb`; `DiskRoom`); 0 turns that off. Default `DiskRoom.defaultMinFreeBytes`. */
  readonly minFreeBytes?: number
  /** Told of every durable commit (`inferadb_engine_store_commit_*` and `_durable_wait_seconds` on /metrics, `PromMetrics.storeCommitObserver`). */
  readonly onCommit?: (commit: CommitObservation) => void
  /**
   * The `stall-store` canary of `serve`: after this many lmdb commits, the next group is handed
   * over and never written, as the commit that never settled in a CI run of December 6, 2026;
   * every later one waits behind it. For the test of the store watchdog on a real process.
   */
  readonly stallAfterCommits?: number
}

/**
 * One durable commit of the group commit: how long lmdb took to write and sync it (from the
 * hand-over of the group to its durable promise), how many transaction bodies it held, and how
 * long each of those waited from the end of its body until it was durable (the commit in
 * flight ahead of it, then its own).
 */
export interface CommitObservation {
  readonly durationMs: number
  readonly transactions: number
  readonly durableWaitsMs: ReadonlyArray<number>
}

// Values are text (`Store`'s compact form) kept as UTF-8 bytes; lmdb's "string" encoding writes and
// reads those bytes itself, so a read is one decode from lmdb's buffer instead of a copy into a new
// Buffer and a decode of that (three times faster), and the bytes on disk are the same as before.
// Keys are strings too: the key encoder writes `KvEncoding.encodeKey`'s bytes straight into lmdb's
// own buffer, where a Buffer key cost an allocation per key on every read and write.
type Database = LmdbDatabase<string, string>

const keyEncoder = { writeKey: KvEncoding.writeKey, readKey: KvEncoding.readKey }

/** The root database (tuple states, counters, cursors) and the log's own. */
interface Databases {
  readonly root: RootDatabase<string, string>
  readonly log: Database
  /** lmdb's data file: `data.mdb` in the directory, or the file itself for an earlier file store. */
  readonly dataFile: string
  /** The map it was opened with, and the address-space limit behind it (`MapRoom`). */
  readonly map: MapSize
}

/**
 * The log database's name. LMDB records a named database as a key of the root one (the name and
 * its terminating NUL); it sorts between the log's keys and the counters', where no Store range
 * reaches, and root ranges skip it.
 */
const logDatabaseName = "log"
const logDatabaseRecord = `${logDatabaseName}\u0000`

/** The log's keys are exactly `[logStart, logEnd)`: the prefix with its last character raised by one ends it. */
const logStart = Store.logPrefix
const logEnd = `${Store.logPrefix.slice(0, -1)}${String.fromCharCode(Store.logPrefix.charCodeAt(Store.logPrefix.length - 1) + 1)}`

const isLogKey = (key: string): boolean => key.startsWith(Store.logPrefix)

/** Log entries moved per transaction when an older directory's log leaves the root database. */
const moveChunk = 10_000

const failure = (operation: string, error: unknown) =>
  new StoreError({ operation: error instanceof DiskRoom.Short ? "room" : operation, message: `lmdb: ${error instanceof Error ? error.message : String(error)}` })

const openDatabases = (options: Options): Effect.Effect<Databases, StoreError> =>
  Effect.suspend(() => {
    const dataFile = dataFileOf(options.path)
    const map = mapSizeNow(sizeOf(dataFile))
    if (typeof map === "string") return Effect.fail(new StoreError({ operation: "open", message: `lmdb at ${options.path}: ${map}` }))
    return Effect.flatMap(openBoth(options, dataFile, map), (databases) =>
      mapSizeNote(options, map).pipe(
        Effect.zipRight(moveOlderLog(options, databases)),
        Effect.as(databases),
        Effect.tapError(() => Effect.promise(() => databases.root.close()))
      )
    )
  })

/** Says so when an address-space limit made the map smaller than the default (`mapSizeFor`): the store holds no more than it. */
const mapSizeNote = (options: Options, map: MapSize): Effect.Effect<void> => {
  if (options.mapSizeBytes !== undefined || map.limitBytes === undefined || map.sizeBytes >= mapSizeBytesDefault) return Effect.void
  return Effect.logInfo(
    `lmdb at ${options.path}: the address space is limited to ${mib(map.limitBytes)} MiB (ulimit -v), so the data file is mapped in ${mib(map.sizeBytes)} MiB, and writes are refused once it nears that (a larger limit gives a larger map)`
  )
}

/** Moves an older directory's log (`moveLog`), saying so: a large one takes a while. */
const moveOlderLog = (options: Options, databases: Databases): Effect.Effect<void, StoreError> =>
  Effect.flatMap(lmdbTry(() => databases.root.getKeysCount({ start: logStart, end: logEnd, limit: 1 }) > 0), (older) =>
    older
      ? Effect.logInfo(`lmdb at ${options.path}: moving the log an earlier version kept in the root database into its own`).pipe(
          Effect.zipRight(lmdbTry(() => moveLog(databases))),
          Effect.flatMap((moved) => Effect.logInfo(`lmdb at ${options.path}: moved ${moved} log entries`))
        )
      : Effect.void
  )

/**
 * Whether `path` holds a store an earlier version wrote as a file. The path is a directory
 * (`data.mdb` and `lock.mdb` in it), but lmdb-js guessed from the name when not told: one with
 * an extension (`/var/lib/inferadb.data`, mktemp's `/tmp/tmp.X7f2`) was taken for a file, so an
 * existing directory of that name failed to open ("Is a directory") and a new one was created as
 * a file. Such a file store is still opened as one.
 */
const isEarlierFileStore = (path: string): boolean => {
  try {
    return fs.statSync(path).isFile()
  } catch {
    return false
  }
}

const lmdbTry = <A>(body: () => A): Effect.Effect<A, StoreError> => Effect.try({ try: body, catch: (error) => failure("open", error) })

/** The durability the store opens lmdb with (see the top of this file): a commit's promise means "on disk". */
export const durability = { noSync: false, noMetaSync: false, overlappingSync: false } as const

const openBoth = (options: Options, dataFile: string, map: MapSize): Effect.Effect<Databases, StoreError> =>
  lmdbTry(() => {
    const sizeBytes = options.mapSizeBytes ?? map.sizeBytes
    const root = open<string, string>({
      path: options.path,
      // An earlier file store's data file is the path itself (`dataFileOf`).
      noSubdir: dataFile === options.path,
      keyEncoder,
      encoding: "string",
      ...durability,
      mapSize: sizeBytes
    })
    try {
      const log = root.openDB<string, string>(logDatabaseName, { keyEncoder, encoding: "string" } as DatabaseOptions)
      return { root, log, dataFile, map: { sizeBytes, limitBytes: map.limitBytes } }
    } catch (error) {
      void root.close()
      throw error
    }
  })

/**
 * Moves the log entries a directory written before the log had its own database keeps in the
 * root one, lowest first, a chunk per durable transaction: a crash in between leaves the rest
 * where it was, and the next open moves it. Runs before the store takes any transaction, and
 * says how many it moved (a large log takes a while: the node logs it).
 */
const moveLog = ({ root, log }: Databases): number => {
  let moved = 0
  for (;;) {
    const chunk = Array.from(root.getRange({ start: logStart, end: logEnd, limit: moveChunk }))
    if (chunk.length === 0) return moved
    moved += chunk.length
    root.transactionSync(() => {
      for (const { key, value } of chunk) {
        log.putSync(key, value)
        root.removeSync(key)
      }
    })
  }
}

// lmdb reads are synchronous. `get` must stay lazy (read when the Effect runs, not when it is
// built): the Store builds some read Effects once (`logEnd`) and runs them many times.
const getNow = (db: Database, key: string): Either.Either<string | undefined, StoreError> => {
  try {
    const value = db.get(key)
    return Either.right(value === undefined ? undefined : value)
  } catch (error) {
    return Either.left(failure("get", error))
  }
}

const entriesOf = (db: Database, start: string, end: string, limit: number): Array<readonly [string, string]> =>
  Array.from(db.getRange({ start, end, limit }), ({ key, value }) => [key, value] as const)

/**
 * `[start, end)` over both databases, in key order. Store's ranges lie inside one of them; a
 * range over both (the log's keys sort between the root's) puts the log's entries in their place.
 */
const rangeOver = ({ root, log }: Databases, start: string, end: string, limit: number): ReadonlyArray<readonly [string, string]> => {
  if (limit <= 0 || start >= end) return []
  if (start >= logStart && end <= logEnd) return entriesOf(log, start, end, limit)
  // One more than asked, for the log database's own record, which is skipped.
  const rooted = entriesOf(root, start, end, limit + 1).filter(([key]) => key !== logDatabaseRecord)
  const logged = start < logEnd && end > logStart ? entriesOf(log, start < logStart ? logStart : start, end > logEnd ? logEnd : end, limit) : []
  const merged = logged.length === 0 ? rooted : [...rooted.filter(([key]) => key < logStart), ...logged, ...rooted.filter(([key]) => key >= logEnd)]
  return merged.slice(0, limit)
}

const committedReader = (databases: Databases): KvEncoding.CommittedReader & Pick<Required<KvEncoding.CommittedReader>, "getNow"> => {
  const getFrom = (key: string) => getNow(isLogKey(key) ? databases.log : databases.root, key)
  return {
    get: (key) => Effect.suspend(() => getFrom(key)),
    getNow: getFrom,
    range: (start, end, limit) =>
      Effect.try({
        try: () => rangeOver(databases, start, end, limit),
        catch: (error) => failure("range", error)
      })
  }
}

// lmdb-js's compiled-in default, which `Store.keyBytesMax` restates for the shared code; the
// open database reports its own (untyped) `maxKeySize`.
const defaultKeySizeMax = Store.keyBytesMax

const keySizeMax = (db: Database): number => (db as unknown as { readonly maxKeySize?: number }).maxKeySize ?? defaultKeySizeMax

/** Committed data with the pending writes laid over it: what the next transaction body reads. */
const pendingOver = (committed: KvEncoding.CommittedReader & Pick<Required<KvEncoding.CommittedReader>, "getNow">, pending: KvDriver.InFlightWrites<string | null>): KvEncoding.CommittedReader => {
  const getNow = (key: string): Either.Either<string | undefined, StoreError> => {
    const value = pending.get(key)
    return value === undefined ? committed.getNow(key) : Either.right(value ?? undefined)
  }
  return {
    get: (key) => Effect.suspend(() => getNow(key)),
    getNow,
    range: (start, end, limit) =>
      Effect.suspend(() => (pending.isEmpty ? committed.range(start, end, limit) : KvEncoding.overlayRange(committed, pending.merged(), start, end, limit)))
  }
}

/**
 * Checks the keys of buffered writes. Done before anything reaches lmdb: its batch keeps the
 * writes made before a throwing one, so nothing that can throw may run inside it.
 */
const checkKeys = (db: Database, writes: ReadonlyMap<string, string | null>): Effect.Effect<void, StoreError> =>
  Effect.suspend(() => {
    const max = keySizeMax(db)
    for (const key of writes.keys()) {
      // A UTF-16 code unit takes at most three bytes: short keys need no count.
      if (key.length > 0 && key.length * 3 <= max) continue
      const bytes = Store.keyBytes(key)
      if (bytes === 0 || bytes > max) {
        return Effect.fail(new StoreError({ operation: "commit", message: `key of ${bytes} bytes is outside lmdb's 1..${max} bytes` }))
      }
    }
    return Effect.void
  })

/** A body's writes waiting for their commit, and how to tell the body its outcome. */
interface Queued {
  readonly writes: ReadonlyMap<string, string | null>
  /** `performance.now()` when the body handed its writes over. */
  readonly submittedMs: number
  readonly resolve: () => void
  readonly reject: (error: unknown) => void
}

/**
 * Group commit with a failure boundary. One LMDB transaction is in flight at a time; the writes
 * of bodies that end meanwhile wait here and go to lmdb together, in hand-over order, as the
 * next transaction, once the one in flight is durable. If it fails, every write waiting behind it
 * fails too, unwritten: those bodies may have read the failed writes. (Handing each body's writes
 * to lmdb's own queue at once let lmdb commit a later batch in a transaction of its own after an
 * earlier one had failed. lmdb's conditional writes could gate a batch on its predecessor, but a
 * conditional batch whose transaction failed while lmdb was writing it sometimes never settled.)
 */
class GroupCommit {
  private writing = false
  private queued: Array<Queued> = []
  /** The group in flight: when it was handed to lmdb, its bodies, and its last write (what a stall's report looks for in lmdb). */
  private inFlightSinceMs = 0
  private inFlightBodies = 0
  private lastWrite: { readonly key: string; readonly value: string | null } | undefined
  // The group in flight's value bytes (`LmdbValues`): one group at a time, so one buffer serves.
  private readonly values = new LmdbValues()

  /** Groups handed to lmdb so far (`Options.stallAfterCommits`). */
  private groups = 0

  constructor(
    private readonly databases: Databases,
    /** Why the disk or the map has too little room for a commit now (`DiskRoom`, `MapRoom`); undefined while they have enough. */
    private readonly roomShort: () => Error | undefined,
    private readonly onCommit: ((commit: CommitObservation) => void) | undefined,
    private readonly stallAfter: number | undefined
  ) {}

  /** Hands a body's writes over; the promise settles once they are durable, or rejects if they will never be. */
  submit(writes: ReadonlyMap<string, string | null>): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queued.push({ writes, submittedMs: performance.now(), resolve, reject })
      if (!this.writing) this.next()
    })
  }

  private next(): void {
    const group = this.queued
    this.queued = []
    this.writing = group.length > 0
    if (group.length === 0) return
    // Refused before lmdb writes a page: a full disk is the one failure lmdb-js does not survive.
    const short = this.roomShort()
    if (short !== undefined) return this.fail(group, short)
    let committed: Promise<boolean>
    const startedMs = performance.now()
    this.inFlightSinceMs = startedMs
    this.inFlightBodies = group.length
    this.lastWrite = lastWriteOf(group)
    // The canary's stall: the group stays in flight for ever, as lmdb's commit that never settled.
    if (this.stallAfter !== undefined && this.groups++ >= this.stallAfter) return
    this.values.reset()
    try {
      committed = this.databases.root.batch(() => {
        for (const { writes } of group) {
          for (const [key, value] of writes) this.write(key, value)
        }
      })
    } catch (error) {
      // The database was closed under the waiting writes: they were never written.
      return this.fail(group, error)
    }
    // lmdb rejects a promise of its own for the transaction as well (made at the end of this
    // event turn, when it starts writing); the failure is reported through `committed`, so that
    // one must not surface as an unhandled rejection, which would end the process.
    setImmediate(() => void this.databases.root.committed.then(ignore, ignore))
    committed.then(
      (applied) => {
        if (!applied) return this.fail(group, new Error("lmdb did not commit the batch"))
        const durableMs = performance.now()
        for (const { resolve } of group) resolve()
        this.next()
        this.observe(group, startedMs, durableMs)
      },
      (error: unknown) => void lmdbCause(error).then((cause) => this.fail(group, cause))
    )
  }

  /**
   * The group in flight, for the report of a stalled store (`StoreWatch`): how long lmdb has had it
   * and whether lmdb's committed data holds its last write, which tells a commit lmdb made but
   * never reported (its promise lost) from one its writer never made.
   */
  describe(): string {
    if (!this.writing) return `no lmdb commit in flight, ${this.queued.length} transaction(s) waiting`
    const ageMs = Math.round(performance.now() - this.inFlightSinceMs)
    return `an lmdb commit of ${this.inFlightBodies} transaction(s) handed over ${ageMs} ms ago has not settled (${this.heldByLmdb()}), ${this.queued.length} waiting behind it`
  }

  private heldByLmdb(): string {
    const last = this.lastWrite
    if (last === undefined) return "its writes unknown"
    try {
      this.databases.root.resetReadTxn()
      const db = isLogKey(last.key) ? this.databases.log : this.databases.root
      const committed = db.get(last.key) ?? null
      return committed === last.value ? "lmdb's committed data holds its last write: lmdb committed it and never said so" : "lmdb's committed data lacks its last write: lmdb's writer never committed it"
    } catch (error) {
      return `lmdb could not be read: ${error instanceof Error ? error.message : String(error)}`
    }
  }

  // After the group is settled and the next one handed over: an observer that throws costs a
  // metric, never an acknowledgement.
  private observe(group: ReadonlyArray<Queued>, startedMs: number, durableMs: number): void {
    if (this.onCommit === undefined) return
    try {
      this.onCommit({ durationMs: durableMs - startedMs, transactions: group.length, durableWaitsMs: group.map(({ submittedMs }) => durableMs - submittedMs) })
    } catch {
      // A metric lost; the commit stands.
    }
  }

  /** One write, to the database its key lives in. */
  private write(key: string, value: string | null): void {
    const db = isLogKey(key) ? this.databases.log : this.databases.root
    if (value === null) void db.remove(key)
    // lmdb's typings want the database's value type; it takes bytes wrapped by `asBinary` too.
    else void db.put(key, this.values.bytesOf(value) as unknown as string)
  }

  private fail(group: ReadonlyArray<Queued>, cause: unknown): void {
    const behind = this.queued
    this.queued = []
    this.writing = false
    this.values.discard()
    for (const { reject } of group) reject(cause)
    const message = `an earlier commit failed, so this one was not written: ${cause instanceof Error ? cause.message : String(cause)}`
    for (const { reject } of behind) reject(new Error(message))
  }
}

const ignore = () => undefined

/** The last write of a group, in hand-over order. */
const lastWriteOf = (group: ReadonlyArray<Queued>): { readonly key: string; readonly value: string | null } | undefined => {
  let last: { readonly key: string; readonly value: string | null } | undefined
  for (const { writes } of group) for (const [key, value] of writes) last = { key, value }
  return last
}

/** How long a failed commit's waiting writes wait for lmdb's own error before failing with the generic one. */
const causeWaitMs = 1_000

/**
 * lmdb rejects a failed commit's writes with a generic error whose `commitError` promise is
 * rejected, at once, with lmdb's own (a full disk, an I/O error); that one says why. Bounded, so
 * the writes waiting behind the failure are failed even if lmdb never says.
 */
const lmdbCause = (error: unknown): Promise<unknown> => {
  const commitError = (error as { readonly commitError?: Promise<unknown> } | undefined)?.commitError
  if (commitError === undefined) return Promise.resolve(error)
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(error), causeWaitMs)
    const settle = (value: unknown) => {
      clearTimeout(timer)
      resolve(value)
    }
    commitError.then(
      () => settle(error),
      (cause: unknown) => settle(cause)
    )
  })
}

/** A driver over an open lmdb database. */
const makeDriver = (databases: Databases, options: Options): Effect.Effect<KvDriver.KvDriver> =>
  Effect.sync((): KvDriver.KvDriver => {
    const lock = new Handoff.Lock()
    let closed = false
    const disk = DiskRoom.make(options.path, options.minFreeBytes ?? DiskRoom.defaultMinFreeBytes)
    const map = MapRoom.make(databases.dataFile, databases.map.sizeBytes, databases.map.limitBytes)
    const commits = new GroupCommit(databases, () => disk() ?? map(), options.onCommit, options.stallAfterCommits)
    const reader = committedReader(databases)
    const inFlight = new KvDriver.InFlightCommits<string | null>()
    const bodyReader = pendingOver(reader, inFlight.writes)

    // The durability of the commit handed over last: commits become durable in order, and one
    // that fails fails every later one, so it settles as everything handed over so far does.
    let lastDurable: Promise<void> | undefined

    /**
     * Starts the commit of a body's writes (under the lock) and returns its durability, to await
     * after the lock. A body that wrote nothing may still have decided on writes in flight (a
     * batch whose changes it found already there, acknowledged as ignored), so it waits for them:
     * acknowledged at once, it outlived them when their commit failed, and its sender moved on.
     */
    const start = (writes: ReadonlyMap<string, string | null>): Effect.Effect<Promise<void> | undefined, StoreError> =>
      Effect.flatMap(checkKeys(databases.root, writes), () => {
        const broken = inFlight.brokenBy()
        if (broken !== undefined) return Effect.fail(broken)
        if (writes.size === 0) return Effect.succeed(inFlight.unsettled === 0 ? undefined : lastDurable)
        const commit = inFlight.begin(writes)
        lastDurable = commits.submit(writes).then(
          () => inFlight.succeeded(commit),
          (error: unknown) => {
            inFlight.failed(failure("commit", error))
            throw error
          }
        )
        return Effect.succeed(lastDurable)
      })

    const awaitDurable = (durable: Promise<void> | undefined): Effect.Effect<void, StoreError> =>
      durable === undefined ? Effect.void : Effect.tryPromise({ try: () => durable, catch: (error) => failure("commit", error) })

    // The lock covers the body and the hand-over to lmdb only; the wait for durability runs after
    // it, so the next body runs while this commit is on its way to disk. Once the writes are
    // handed over they will commit, so the rest is uninterruptible: the caller learns the outcome.
    const transactWithin = <A, E, R>(body: (tx: KvDriver.KvTransaction<string>) => Effect.Effect<A, E, R>, restore: Handoff.Restore): Effect.Effect<A, E | StoreError, R> =>
      Effect.flatMap(
        lock.takeThen(
          restore,
          lock.holding(
            Effect.suspend(() => {
              const refused = inFlight.resumable()
              if (refused !== undefined) return Effect.fail(refused)
              const { transaction, writes } = KvEncoding.buffered(bodyReader)
              return Effect.flatMap(restore(body(transaction)), (result) => Effect.map(start(writes), (durable) => ({ result, durable })))
            })
          )
        ),
        ({ durable, result }) => (durable === undefined ? Effect.succeed(result) : Effect.as(awaitDurable(durable), result))
      )

    return {
      transact: (body) => Effect.uninterruptibleMask((restore) => transactWithin(body, restore)),
      transactWithin,
      // lmdb reads see the last committed state without the writer lock, so log tailing and
      // health checks never wait behind an fsync'd commit, and never see writes not yet durable.
      read: (body) => body(KvDriver.readOnly(reader.get, reader.range, reader.getNow)),
      readNow: reader.getNow,
      describeCommits: () => `${commits.describe()}; the writer lock ${lock.isHeld ? "held by a transaction body" : "free"}`,
      close: Effect.suspend(() => {
        if (closed) return Effect.void
        closed = true
        return Effect.promise(() => databases.root.close()).pipe(
          Effect.catchAllDefect((defect) => Effect.logWarning(`closing lmdb failed: ${String(defect)}`))
        )
      })
    }
  })

/** An lmdb driver that is closed when the scope closes. */
export const makeScoped = (options: Options) =>
  Effect.acquireRelease(Effect.flatMap(openDatabases(options), (databases) => makeDriver(databases, options)), (driver) => driver.close)

/** The Store over lmdb at `options.path`; the database is closed when the layer's scope closes. */
export const layerLmdb = (options: Options): Layer.Layer<Store.Store, StoreError> =>
  Layer.scoped(Store.Store, Effect.flatMap(makeScoped(options), (driver) => Store.make(driver, { numberOrigins: true })))
