/**
 * The Store: a region's durable state. It holds the tuple states, the change log (every
 * change this region committed or applied, in order, which feeds subscribers and the
 * replication agent), the replication cursors per target region, and the counters that
 * number origin sequences and revisions.
 *
 * The service is typed; underneath sits a `KvDriver` (ordered keys, values in the backend's
 * representation): text on disks (lmdb, FoundationDB), in the compact form of `StoredForm`,
 * and decoded, frozen values in memory (`StoreEncoding.decoded`, what the simulator runs on).
 * The key layout is written here once for every backend:
 *
 *   t/<vault>\0<resource>\0<relation>\0<subject>  -> TupleState (its members stored without the tuple: the key is it)
 *   l/<position, 15 digits>                        -> LogEntry (appended: see `logPrefix`)
 *   c/<target region>                              -> cursor (last log position the target acknowledged)
 *   r/<target region>                              -> relay scope the cursor moved under (see `Relay.scopeOf`)
 *   m/<counter name>                               -> integer counters
 *   m/origin                                       -> this store's origin key (see `Change.originKey`)
 *   m/hlc                                          -> the highest HLC value a node recorded here ("<ms>.<logical>")
 *   m/commitProbe                                  -> written only by `checkCommits`, to learn whether commits work again
 *   o/<origin region>                              -> 1: the log holds changes that region wrote (see `regionsHeld`)
 *   m/regionsIndexed                               -> 1 once the `o/` keys cover every entry (see `regionsHeld`)
 *   k/<origin key>                                 -> the origin key's number, which text values may hold in its place (`OriginIds`)
 *   m/originIds                                    -> the highest such number handed out
 *
 * Everything a write or an apply changes happens in one transaction, so the tuple state, the
 * log entry and the counters can never disagree after a crash.
 */
import { Cause, Context, Effect, Either, Layer, Schema } from "effect"
import * as Change from "./Change.js"
import { StoreError } from "./Errors.js"
import * as Handoff from "./Handoff.js"
import * as KvDriver from "./KvDriver.js"
import * as OriginIds from "./OriginIds.js"
import * as RecentLog from "./RecentLog.js"
import * as StoreEncoding from "./StoreEncoding.js"
import * as StoredForm from "./StoredForm.js"
import * as Tuple from "./Tuple.js"
import * as TupleState from "./TupleState.js"
import * as Timestamp from "./Timestamp.js"

/** One entry of the durable change log. */
export const LogEntry = Schema.Struct({
  position: Schema.Number,
  change: Change.Change,
  /** The region this change was received from, or null when it was written here. */
  receivedFrom: Schema.NullOr(Schema.String),
  /** This region's physical clock when the change became durable here. */
  appliedAtMs: Schema.Number
})
export type LogEntry = typeof LogEntry.Type

/** Counters kept in the store. */
export type Counter = "originSeq" | "revision" | "logEnd"

/** Operations available inside one store transaction. */
export interface StoreTransaction {
  readonly getTuple: (tuple: Tuple.Tuple) => Effect.Effect<TupleState.TupleState, StoreError>
  readonly putTuple: (tuple: Tuple.Tuple, state: TupleState.TupleState) => Effect.Effect<void>
  /** The states of several tuples, in the order asked; one Effect for a whole batch. */
  readonly getTuples: (tuples: ReadonlyArray<Tuple.Tuple>) => Effect.Effect<ReadonlyArray<TupleState.TupleState>, StoreError>
  /** Sets several tuple states, in order (a tuple named twice keeps its last state). */
  readonly putTuples: (states: ReadonlyArray<readonly [Tuple.Tuple, TupleState.TupleState]>) => Effect.Effect<void>
  /** Appends to the log and returns the entry's position (1-based, gap-free). */
  readonly appendLog: (entry: Omit<LogEntry, "position">) => Effect.Effect<number, StoreError>
  /** Appends several entries, in order, and returns them with their positions. */
  readonly appendLogs: (entries: ReadonlyArray<Omit<LogEntry, "position">>) => Effect.Effect<ReadonlyArray<LogEntry>, StoreError>
  /** Increments a counter and returns its new value (first value is 1, or `atLeast` when larger). */
  readonly next: (counter: Exclude<Counter, "logEnd">, atLeast?: number) => Effect.Effect<number, StoreError>
  /** Takes `count` consecutive values of a counter, as `count` calls of `next` would, and returns the first. */
  readonly reserve: (counter: Exclude<Counter, "logEnd">, count: number) => Effect.Effect<number, StoreError>
  /** Raises the stored HLC high-water to `timestamp` (kept if already higher). */
  readonly raiseClock: (timestamp: Timestamp.Timestamp) => Effect.Effect<void, StoreError>
}

/**
 * `StoreTransaction` for a body that runs at once (`Store.transactionNow`): the same operations,
 * done in the body's own step, each read an `Either` instead of an Effect.
 */
export interface StoreTransactionNow {
  readonly getTuples: (tuples: ReadonlyArray<Tuple.Tuple>) => Either.Either<ReadonlyArray<TupleState.TupleState>, StoreError>
  readonly putTuples: (states: ReadonlyArray<readonly [Tuple.Tuple, TupleState.TupleState]>) => void
  readonly appendLogs: (entries: ReadonlyArray<Omit<LogEntry, "position">>) => Either.Either<ReadonlyArray<LogEntry>, StoreError>
  readonly next: (counter: Exclude<Counter, "logEnd">, atLeast?: number) => Either.Either<number, StoreError>
  readonly reserve: (counter: Exclude<Counter, "logEnd">, count: number) => Either.Either<number, StoreError>
  readonly raiseClock: (timestamp: Timestamp.Timestamp) => Either.Either<void, StoreError>
}

/** The Store service. */
export class Store extends Context.Tag("inferadb/Store")<
  Store,
  {
    /**
     * Runs `body` atomically; nothing of a failed or interrupted body is kept. It succeeds once
     * the transaction is durable. `afterCommit`, when given, then runs with the body's result,
     * and the `afterCommit`s of this Store's transactions run one at a time in commit order (for
     * backends that serialize transactions: memory, lmdb), even when commits complete together
     * (lmdb's group commit), together with those of `transactionNow`, through which the replica
     * announces new log entries, in log order.
     */
    readonly transaction: <A, E, R>(
      body: (tx: StoreTransaction) => Effect.Effect<A, E, R>,
      afterCommit?: (result: A) => Effect.Effect<void>
    ) => Effect.Effect<A, E | StoreError, R>
    /**
     * `transaction` for a body that runs at once: the replica's writes and applied batches. On
     * a backend that can (`KvDriver.transactNow`), a transaction whose writer is free and whose
     * commit is not delayed is over in one step, `afterCommit` included; through `transaction`
     * one cost about 45 Effect operations besides its body's, and the body's own reads and writes
     * a dozen more (December 2026). `reads`: the tuples the body reads, which a backend that reads
     * only through Effects (FoundationDB) reads before the body runs, with the counters and the
     * clock; a body that reads any other key fails there.
     */
    readonly transactionNow: <A, E>(
      reads: ReadonlyArray<Tuple.Tuple>,
      body: (tx: StoreTransactionNow) => Either.Either<A, E | StoreError>,
      afterCommit?: (result: A) => void
    ) => Effect.Effect<A, E | StoreError>
    readonly getTuple: (tuple: Tuple.Tuple) => Effect.Effect<TupleState.TupleState, StoreError>
    /**
     * Tuple states whose key starts with the given parts, in key order; with `page`, only those
     * after the tuple `after` (when given), at most `limit`.
     */
    readonly scanTuples: (
      prefix: {
        readonly vault?: string
        readonly resource?: string
        readonly relation?: string
      },
      page?: ScanPage
    ) => Effect.Effect<ReadonlyArray<TupleState.TupleState>, StoreError>
    /** Log entries with `position >= from`, at most `limit`, in order. */
    readonly readLog: (from: number, limit: number) => Effect.Effect<ReadonlyArray<LogEntry>, StoreError>
    /** Position of the last log entry (0 when empty). */
    readonly logEnd: Effect.Effect<number, StoreError>
    /** The HLC high-water recorded by `raiseClock` (zero when none), for a restarted node's clock. */
    readonly clockHighWater: Effect.Effect<Timestamp.Timestamp, StoreError>
    /**
     * The origin regions whose changes the log holds, in order. The first call on a store written
     * before this was recorded reads the whole log once to record it (`o/` keys); later calls
     * read those keys alone. `serve` asks it at start-up under SourcePriority: a change of a
     * region `region_priorities` does not rank could not be resolved.
     */
    readonly regionsHeld: Effect.Effect<ReadonlyArray<string>, StoreError>
    /** Last log position the target acknowledged (0 when none). */
    readonly getCursor: (target: string) => Effect.Effect<number, StoreError>
    /**
     * The origin key this store numbers its changes under: `candidate` when the store has none
     * yet (a new or wiped disk), else the one stored. Nodes sharing a store share its origin.
     */
    readonly origin: (candidate: string) => Effect.Effect<string, StoreError>
    /**
     * Moves a cursor forward; a smaller position than the stored one is ignored. With `scope`
     * (the relay scope the mover collected under), the cursor moves only while the scope
     * recorded for `target` is that one (or none is): on a store several nodes share, an agent
     * that slept through a relay-tree change must not move the region's cursor past changes its
     * old scope let it skip. False when the scope refused the move.
     */
    readonly advanceCursor: (target: string, position: number, scope?: ReadonlyArray<string>) => Effect.Effect<boolean, StoreError>
    /**
     * The relay scope (`Relay.scopeOf`) under which the cursor towards `target` moved, or
     * undefined when none was recorded (a new target, or a store written before scopes).
     */
    readonly getRelayScope: (target: string) => Effect.Effect<ReadonlyArray<string> | undefined, StoreError>
    /**
     * Records `target`'s relay scope and returns its cursor, and whether `scope` is now the one
     * recorded. With `lookedTo` (how far the caller sent what the scope newly owes), the scope is
     * recorded only while the cursor is not past it, in one transaction: otherwise another node
     * sharing the store moved the cursor under another scope meanwhile, and the caller must look
     * back that far too before trying again. A scope already recorded (by a node sharing the
     * store) stays so whatever the cursor: only movers under it move the cursor.
     */
    readonly setRelayScope: (
      target: string,
      scope: ReadonlyArray<string>,
      lookedTo?: number
    ) => Effect.Effect<{ readonly cursor: number; readonly recorded: boolean }, StoreError>
    /**
     * Whether this Store's transactions commit. Succeeds while the last one did (or none has
     * run); after a failure it commits a probe, and fails, saying how many failed in a row and
     * why the last did, until one commits again. A failing disk (full, read-only, I/O errors)
     * still answers reads, so a read alone would report it healthy while every write fails.
     */
    readonly checkCommits: Effect.Effect<void, StoreError>
    /** Transactions that failed with a store error: how many since the last that committed, and in all. */
    readonly failedTransactions: Effect.Effect<{ readonly inARow: number; readonly total: number }>
    /**
     * Transactions begun and not ended (waiting for the writer, running or waiting to be durable),
     * and how many have ended since the store opened, however they ended: what tells a store whose
     * commits stopped completing from a busy one (`StoreWatch`).
     */
    readonly progress: Effect.Effect<StoreProgress>
    /** What the backend knows of its commits in flight (`KvDriver.describeCommits`), for a stall's report. */
    readonly describeCommits: Effect.Effect<string | undefined>
    readonly close: Effect.Effect<void>
  }
>() {}

/** See `Store.progress`. */
export interface StoreProgress {
  readonly pending: number
  readonly ended: number
}

const tuplePrefix = "t/"

/** A page of a tuple scan: the tuples after `after`, at most `limit` of them. */
export interface ScanPage {
  readonly after?: Tuple.Tuple
  readonly limit?: number
}
/**
 * The prefix of log entries' keys. A driver may rely on how they are written: each transaction
 * appends positions above every one written before and never removes one, so the keys under it
 * grow at their end (`KvLmdb` keeps them in a database of their own, whose pages they fill).
 */
export const logPrefix = "l/"
const cursorPrefix = "c/"
const relayScopePrefix = "r/"
const counterPrefix = "m/"
const regionPrefix = "o/"
const regionsIndexedKey = `${counterPrefix}regionsIndexed`
const positionDigits = 15
const originKey = `${counterPrefix}origin`
const commitProbeKey = `${counterPrefix}commitProbe`
const clockKey = `${counterPrefix}hlc`

const logKey = (position: number): string => `${logPrefix}${String(position).padStart(positionDigits, "0")}`
const tupleKey = (tuple: Tuple.Tuple): string => `${tuplePrefix}${Tuple.key(tuple)}`
/** The tuple a tuple state's key was made from (`tupleKey`): its parts hold no NUL, so the split is exact. */
const tupleOfKey = (key: string): Tuple.Tuple => {
  const [vault = "", resource = "", relation = "", subject = ""] = key.slice(tuplePrefix.length).split("\u0000")
  return { vault, resource, relation, subject }
}

/**
 * The largest key, in bytes, that every backend stores: lmdb's maximum key size (FoundationDB
 * takes 10,000 bytes). A larger key fails only at commit, as a store error.
 */
export const keyBytesMax = 1978

/**
 * The largest tuple, in bytes of its store key (`t/` and the four parts joined by NUL). Checked
 * before any store work, whatever this region's backend, so that a tuple one region accepts
 * fits in every other region's store and can never stall replication there.
 */
export const tupleKeyBytesMax = keyBytesMax

/**
 * The bytes a key takes in the byte-oriented backends: each UTF-16 code unit in its UTF-8 form,
 * one to three bytes (the encoding of `runtime/KvEncoding.ts`, which keeps byte order equal to
 * string order).
 */
export const keyBytes = (key: string): number => {
  let bytes = 0
  for (let index = 0; index < key.length; index++) {
    const unit = key.charCodeAt(index)
    bytes += unit < 0x80 ? 1 : unit < 0x800 ? 2 : 3
  }
  return bytes
}

/** The bytes of a tuple's store key, to compare with `tupleKeyBytesMax`. */
export const tupleKeyBytes = (tuple: Tuple.Tuple): number => keyBytes(tupleKey(tuple))

/**
 * Tuple states are read knowing the tuple whose key they are stored under: the compact form
 * leaves it out of the frontier members (`StoredForm`). Both they and log entries are written
 * with the transaction's way of writing origin keys (`OriginIds`).
 */
interface TupleStateCell<V> {
  readonly encode: (state: TupleState.TupleState, origin: StoredForm.OriginField) => V
  readonly decode: (stored: V, tuple: Tuple.Tuple) => Either.Either<TupleState.TupleState, string>
}

interface LogEntryCell<V> {
  readonly encode: (entry: LogEntry, origin: StoredForm.OriginField) => V
  readonly decode: (stored: V) => Either.Either<LogEntry, string>
}

/** The conversions of one value representation, for every kind of value the Store keeps. */
interface Cells<V> {
  readonly tupleState: TupleStateCell<V>
  readonly logEntry: LogEntryCell<V>
  readonly relayScope: StoreEncoding.Cell<ReadonlyArray<string>, V>
  readonly integer: StoreEncoding.Cell<number, V>
  readonly text: StoreEncoding.Cell<string, V>
}

/** The relay scope of a target: the regions whose changes the cursor moved under. */
const RelayScope = Schema.Array(Schema.String)

/**
 * Text in the compact form (`StoredForm`), written and read without Schema: the store holds only
 * what this node wrote. Values stored as JSON objects by earlier versions are still read, through
 * the Schemas.
 */
const logEntryTextCell = (names: StoredForm.OriginNames): LogEntryCell<string> => {
  const legacyCell = StoreEncoding.json.schema(LogEntry)
  return { encode: StoredForm.encodeLogEntry, decode: (text) => (StoredForm.isCompact(text) ? StoredForm.decodeLogEntry(text, names) : legacyCell.decode(text)) }
}

/** Tuple states in the compact form, or as earlier versions' JSON objects (which hold the tuple). */
const tupleStateTextCell = (names: StoredForm.OriginNames): TupleStateCell<string> => {
  const legacyCell = StoreEncoding.json.schema(TupleState.TupleState)
  return {
    encode: StoredForm.encodeTupleState,
    decode: (text, tuple) => (StoredForm.isCompact(text) ? StoredForm.decodeTupleState(text, tuple, names) : legacyCell.decode(text))
  }
}

/** The cells of the byte-oriented backends, reading numbered origin keys through `names`. */
const textCells = (names: StoredForm.OriginNames): Cells<string> => ({
  tupleState: tupleStateTextCell(names),
  logEntry: logEntryTextCell(names),
  relayScope: StoreEncoding.json.schema(RelayScope),
  integer: StoreEncoding.json.integer,
  text: StoreEncoding.json.text
})

/** The cells of the in-memory backend: decoded values, frozen when written. */
const decodedCells: Cells<unknown> = {
  tupleState: StoreEncoding.decoded.schema(TupleState.TupleState),
  logEntry: StoreEncoding.decoded.schema(LogEntry),
  relayScope: StoreEncoding.decoded.schema(RelayScope),
  integer: StoreEncoding.decoded.integer,
  text: StoreEncoding.decoded.text
}

// Decoding is synchronous (Either, not an Effect): every read of the hot paths goes through it.
const decodeWith = <A, V>(cell: StoreEncoding.Cell<A, V>, operation: string, stored: V): Effect.Effect<A, StoreError> => {
  const decoded = cell.decode(stored)
  return decoded._tag === "Right"
    ? Effect.succeed(decoded.right)
    : Effect.fail(undecodable(operation, decoded.left))
}

/**
 * Decodes every item in one step, failing with the first that does not decode: what an
 * `Effect.forEach` of `decodeWith` gave, without its Effect operations per item (an agent or a
 * CatchUp page reads up to a thousand log entries at a time).
 */
const decodeEach = <I, A>(items: ReadonlyArray<I>, decode: (item: I) => Either.Either<A, string>, failure: (why: string) => StoreError): Effect.Effect<ReadonlyArray<A>, StoreError> =>
  Effect.suspend(() => {
    const values: Array<A> = []
    for (const item of items) {
      const decoded = decode(item)
      if (decoded._tag === "Left") return Effect.fail(failure(decoded.left))
      values.push(decoded.right)
    }
    return Effect.succeed(values)
  })

const undecodable = (operation: string, why: string): StoreError => new StoreError({ operation, message: `stored value does not decode: ${why}` })

const undecodableTuple = (why: string): StoreError => undecodable("getTuple", why)

const decodeTupleState = <V>(cells: Cells<V>, tuple: Tuple.Tuple, stored: V): Effect.Effect<TupleState.TupleState, StoreError> => {
  const decoded = cells.tupleState.decode(stored, tuple)
  return decoded._tag === "Right" ? Effect.succeed(decoded.right) : Effect.fail(undecodableTuple(decoded.left))
}

/** Reads `key` and continues with its value: at once when the backend reads synchronously, else as an Effect. */
const readThen = <V, A>(tx: KvDriver.KvTransaction<V>, key: string, then: (stored: V | undefined) => Effect.Effect<A, StoreError>): Effect.Effect<A, StoreError> => {
  const getNow = tx.getNow
  if (getNow === undefined) return Effect.flatMap(tx.get(key), then)
  return Effect.suspend(() => {
    const stored = getNow(key)
    return stored._tag === "Left" ? Effect.fail(stored.left) : then(stored.right)
  })
}

/** The integer `stored` under `key` (0 when absent). */
const integerOf = <V>(cells: Cells<V>, key: string, stored: V | undefined): Either.Either<number, StoreError> => {
  if (stored === undefined) return Either.right(0)
  const value = cells.integer.decode(stored)
  return value._tag === "Right" ? Either.right(value.right) : Either.left(new StoreError({ operation: "readInteger", message: `${key} holds ${value.left}` }))
}

/** Whether the recorded relay scope `stored` is `scope`; none recorded counts as any. */
const scopeIs = <V>(cells: Cells<V>, stored: V | undefined, scope: ReadonlyArray<string>): Either.Either<boolean, StoreError> => {
  if (stored === undefined) return Either.right(true)
  const recorded = cells.relayScope.decode(stored)
  return recorded._tag === "Right"
    ? Either.right(recorded.right.join("\n") === scope.join("\n"))
    : Either.left(new StoreError({ operation: "readRelayScope", message: `the relay scope holds ${recorded.left}` }))
}

type SmallWrite<V> = ReturnType<typeof smallWriteOf<V>>

const advanceCursorOf =
  <V>(cells: Cells<V>, smallWrite: SmallWrite<V>): Store["Type"]["advanceCursor"] =>
  (target, position, scope) => {
    const key = `${cursorPrefix}${target}`
    const scopeKey = `${relayScopePrefix}${target}`
    return smallWrite(scope === undefined ? [key] : [key, scopeKey], (tx, [stored, storedScope]) =>
      Either.flatMap(integerOf(cells, key, stored), (current) =>
        Either.map(scope === undefined ? Either.right(true) : scopeIs(cells, storedScope, scope), (allowed) => {
          if (allowed && position > current) tx.set(key, cells.integer.encode(position))
          return allowed
        })
      )
    )
  }

const setRelayScopeOf =
  <V>(cells: Cells<V>, smallWrite: SmallWrite<V>): Store["Type"]["setRelayScope"] =>
  (target, scope, lookedTo) => {
    const key = `${cursorPrefix}${target}`
    const scopeKey = `${relayScopePrefix}${target}`
    return smallWrite([key, scopeKey], (tx, [stored, storedScope]) =>
      Either.flatMap(integerOf(cells, key, stored), (cursor) =>
        Either.map(storedScope === undefined ? Either.right(false) : scopeIs(cells, storedScope, scope), (already) => {
          if (already) return { cursor, recorded: true }
          if (lookedTo !== undefined && cursor > lookedTo) return { cursor, recorded: false }
          tx.set(scopeKey, cells.relayScope.encode(scope))
          return { cursor, recorded: true }
        })
      )
    )
  }

const fromEither = <A, E>(either: Either.Either<A, E>): Effect.Effect<A, E> =>
  either._tag === "Right" ? Effect.succeed(either.right) : Effect.fail(either.left)

const readInteger = <V>(cells: Cells<V>, tx: KvDriver.KvTransaction<V>, key: string): Effect.Effect<number, StoreError> =>
  readThen(tx, key, (stored) => fromEither(integerOf(cells, key, stored)))

/** The stored HLC high-water, kept as text ("<ms>.<logical>") in every representation. */
const clockOf = <V>(cells: Cells<V>, stored: V | undefined): Either.Either<Timestamp.Timestamp, StoreError> => {
  if (stored === undefined) return Either.right(Timestamp.zero)
  const decoded = cells.text.decode(stored)
  const text = decoded._tag === "Right" ? decoded.right : String(stored)
  const [physical, logical] = text.split(".").map(Number)
  return decoded._tag === "Right" && Number.isSafeInteger(physical) && Number.isSafeInteger(logical) && physical! >= 0 && logical! >= 0
    ? Either.right({ physicalMs: physical!, logical: logical! })
    : Either.left(new StoreError({ operation: "readClock", message: `${clockKey} holds '${text}', not '<ms>.<logical>'` }))
}

const readClock = <V>(cells: Cells<V>, tx: KvDriver.KvTransaction<V>): Effect.Effect<Timestamp.Timestamp, StoreError> =>
  readThen(tx, clockKey, (stored) => fromEither(clockOf(cells, stored)))

/** Writes `timestamp` as the clock's high-water when it is above `stored`. */
const clockRaised = <V>(cells: Cells<V>, tx: KvDriver.KvTransaction<V>, timestamp: Timestamp.Timestamp, stored: Timestamp.Timestamp): void => {
  if (Timestamp.order(timestamp, stored) > 0) tx.set(clockKey, cells.text.encode(Timestamp.format(timestamp)))
}

/** Reads several keys at once, where the backend reads synchronously. */
const readManyNow = <V>(getNow: NonNullable<KvDriver.KvTransaction<V>["getNow"]>, keys: ReadonlyArray<string>): Either.Either<ReadonlyArray<V | undefined>, StoreError> => {
  const values: Array<V | undefined> = []
  for (const key of keys) {
    const stored = getNow(key)
    if (stored._tag === "Left") return Either.left(stored.left)
    values.push(stored.right)
  }
  return Either.right(values)
}

/** Reads several keys: at once, in one Effect, when the backend reads synchronously, else one after another. */
const readMany = <V>(tx: KvDriver.KvTransaction<V>, keys: ReadonlyArray<string>): Effect.Effect<ReadonlyArray<V | undefined>, StoreError> => {
  const getNow = tx.getNow
  if (getNow === undefined) return Effect.forEach(keys, (key) => tx.get(key))
  return Effect.suspend(() => fromEither(readManyNow(getNow, keys)))
}

const tupleStatesOf = <V>(cells: Cells<V>, tuples: ReadonlyArray<Tuple.Tuple>, stored: ReadonlyArray<V | undefined>): Either.Either<ReadonlyArray<TupleState.TupleState>, StoreError> => {
  const states: Array<TupleState.TupleState> = []
  for (let index = 0; index < stored.length; index++) {
    const value = stored[index]
    if (value === undefined) {
      states.push(TupleState.empty)
      continue
    }
    const decoded = cells.tupleState.decode(value, tuples[index]!)
    if (decoded._tag === "Left") return Either.left(undecodableTuple(decoded.left))
    states.push(decoded.right)
  }
  return Either.right(states)
}

const decodeTupleStates = <V>(cells: Cells<V>, tuples: ReadonlyArray<Tuple.Tuple>, stored: ReadonlyArray<V | undefined>): Effect.Effect<ReadonlyArray<TupleState.TupleState>, StoreError> =>
  fromEither(tupleStatesOf(cells, tuples, stored))

/**
 * Records that the log holds a change of `region` (`regionsHeld`). Where the backend reads at
 * once, a key already there is not written again; else it is written with every transaction
 * that appends that region's changes, a small key beside the counters every such one writes.
 */
const noteRegion = <V>(cells: Cells<V>, tx: KvDriver.KvTransaction<V>, region: string): void => {
  const key = `${regionPrefix}${region}`
  const held = tx.getNow?.(key)
  if (held !== undefined && held._tag === "Right" && held.right !== undefined) return
  tx.set(key, cells.integer.encode(1))
}

/** Appends entries after log position `end` and moves the log's end past them. */
const appendAfter = <V>(
  cells: Cells<V>,
  tx: KvDriver.KvTransaction<V>,
  origin: StoredForm.OriginField,
  appended: Array<LogEntry>,
  end: number,
  entries: ReadonlyArray<Omit<LogEntry, "position">>
) => {
  const written: Array<LogEntry> = []
  let noted: string | undefined
  for (const entry of entries) {
    // A batch's changes mostly come from one region: each run of one region is noted once.
    if (entry.change.originRegion !== noted) noteRegion(cells, tx, (noted = entry.change.originRegion))
    // Built in the field order entries read back from the store have (`StoredForm`), so every
    // log entry in memory shares one hidden class; a spread put `position` last and made the
    // code that reads entries (the agent, the feed, the recent log) see two shapes.
    const value: LogEntry = { position: end + written.length + 1, change: entry.change, receivedFrom: entry.receivedFrom, appliedAtMs: entry.appliedAtMs }
    tx.set(logKey(value.position), cells.logEntry.encode(value, origin))
    written.push(value)
    appended.push(value)
  }
  if (written.length > 0) tx.set(`${counterPrefix}logEnd`, cells.integer.encode(end + written.length))
  return written
}

/** Takes `count` values of a counter that holds `value`, the first at least `atLeast`; returns the first. */
const counterRaised = <V>(cells: Cells<V>, tx: KvDriver.KvTransaction<V>, counter: Exclude<Counter, "logEnd">, value: number, atLeast: number, count: number): number => {
  const first = Math.max(value + 1, atLeast)
  tx.set(`${counterPrefix}${counter}`, cells.integer.encode(first + count - 1))
  return first
}

/** Raises a counter by `count` (to at least `atLeast`) and returns its first new value. */
const raiseCounter = <V>(cells: Cells<V>, tx: KvDriver.KvTransaction<V>, counter: Exclude<Counter, "logEnd">, atLeast: number, count: number) =>
  Effect.map(readInteger(cells, tx, `${counterPrefix}${counter}`), (value) => counterRaised(cells, tx, counter, value, atLeast, count))

/**
 * The origin field a transaction writes (`OriginIds`): a key's durable number, else one an earlier
 * transaction still in flight gave it, else a new one, written with the transaction; `used`
 * collects the numbers it wrote, durable once it is. Only where the store keeps a dictionary and
 * the transaction reads at once (`numbersIn`); elsewhere every key is written whole.
 */
const originField = <V>(dictionary: OriginIds.OriginIds, cells: Cells<V>, getNow: NonNullable<KvDriver.KvTransaction<V>["getNow"]>, tx: KvDriver.KvTransaction<V>, used: Map<string, number>): StoredForm.OriginField => {
  const integerAt = (key: string): number | undefined => {
    const stored = getNow(key)
    if (stored._tag === "Left") return undefined
    if (stored.right === undefined) return 0
    const value = cells.integer.decode(stored.right)
    return value._tag === "Right" ? value.right : undefined
  }
  return (origin) => {
    const known = dictionary.idOf(origin) ?? used.get(origin)
    if (known !== undefined) return known
    const key = `${OriginIds.prefix}${origin}`
    const found = integerAt(key)
    // A read that failed, or a damaged number: the key is written whole, which every reader takes.
    if (found === undefined) return origin
    if (found > 0) {
      dictionary.found(origin, found)
      used.set(origin, found)
      return found
    }
    const highest = integerAt(OriginIds.counterKey)
    if (highest === undefined) return origin
    const id = dictionary.take(origin, highest)
    tx.set(key, cells.integer.encode(id))
    tx.set(OriginIds.counterKey, cells.integer.encode(id))
    used.set(origin, id)
    return id
  }
}

/**
 * The typed view of one run of a transaction body; `appended` collects the log entries it wrote,
 * and `origin` writes their origin fields and their tuples' (`originField`).
 */
const makeTransaction = <V>(
  cells: Cells<V>,
  tx: KvDriver.KvTransaction<V>,
  appended: Array<LogEntry> = [],
  origin: StoredForm.OriginField = StoredForm.wholeOrigins
): StoreTransaction => ({
  getTuple: (tuple) =>
    readThen(tx, tupleKey(tuple), (stored) => (stored === undefined ? Effect.succeed(TupleState.empty) : decodeTupleState(cells, tuple, stored))),
  getTuples: (tuples) => Effect.flatMap(readMany(tx, tuples.map(tupleKey)), (stored) => decodeTupleStates(cells, tuples, stored)),
  putTuple: (tuple, state) => Effect.sync(() => tx.set(tupleKey(tuple), cells.tupleState.encode(state, origin))),
  putTuples: (states) =>
    Effect.sync(() => {
      for (const [tuple, state] of states) tx.set(tupleKey(tuple), cells.tupleState.encode(state, origin))
    }),
  appendLog: (entry) => Effect.map(readInteger(cells, tx, `${counterPrefix}logEnd`), (end) => appendAfter(cells, tx, origin, appended, end, [entry])[0]!.position),
  appendLogs: (entries) => Effect.map(readInteger(cells, tx, `${counterPrefix}logEnd`), (end) => appendAfter(cells, tx, origin, appended, end, entries)),
  next: (counter, atLeast = 0) => raiseCounter(cells, tx, counter, atLeast, 1),
  reserve: (counter, count) => raiseCounter(cells, tx, counter, 0, count),
  raiseClock: (timestamp) => Effect.map(readClock(cells, tx), (stored) => clockRaised(cells, tx, timestamp, stored))
})

/** `makeTransaction` for a body that runs at once, reading through `read`. */
const makeTransactionNow = <V>(
  cells: Cells<V>,
  tx: KvDriver.KvTransaction<V>,
  read: (key: string) => Either.Either<V | undefined, StoreError>,
  appended: Array<LogEntry>,
  origin: StoredForm.OriginField
): StoreTransactionNow => {
  const integer = (key: string) => Either.flatMap(read(key), (stored) => integerOf(cells, key, stored))
  const raise = (counter: Exclude<Counter, "logEnd">, atLeast: number, count: number) =>
    Either.map(integer(`${counterPrefix}${counter}`), (value) => counterRaised(cells, tx, counter, value, atLeast, count))
  return {
    getTuples: (tuples) => Either.flatMap(readManyNow(read, tuples.map(tupleKey)), (stored) => tupleStatesOf(cells, tuples, stored)),
    putTuples: (states) => {
      for (const [tuple, state] of states) tx.set(tupleKey(tuple), cells.tupleState.encode(state, origin))
    },
    appendLogs: (entries) => Either.map(integer(`${counterPrefix}logEnd`), (end) => appendAfter(cells, tx, origin, appended, end, entries)),
    next: (counter, atLeast = 0) => raise(counter, atLeast, 1),
    reserve: (counter, count) => raise(counter, 0, count),
    raiseClock: (timestamp) => Either.map(Either.flatMap(read(clockKey), (stored) => clockOf(cells, stored)), (stored) => clockRaised(cells, tx, timestamp, stored))
  }
}

/** Every key besides its tuples' that a `StoreTransactionNow` may read. */
const keysReadNow: ReadonlyArray<string> = [`${counterPrefix}logEnd`, `${counterPrefix}revision`, `${counterPrefix}originSeq`, clockKey]

/**
 * A body of `transactionNow` as a body of `transaction`'s driver: over the backend's own
 * reads where they are done at once (lmdb without `transactNow`), else over the keys it may
 * read, read first (FoundationDB), and its own writes.
 */
const nowOver =
  <V, A, E>(cells: Cells<V>, reads: ReadonlyArray<Tuple.Tuple>, body: (tx: StoreTransactionNow) => Either.Either<A, E | StoreError>) =>
  (tx: KvDriver.KvTransaction<V>, appended: Array<LogEntry>, origin: StoredForm.OriginField): Effect.Effect<A, E | StoreError> => {
    const getNow = tx.getNow
    if (getNow !== undefined) return Effect.suspend(() => fromEither(body(makeTransactionNow(cells, tx, getNow, appended, origin))))
    const keys = [...reads.map(tupleKey), ...keysReadNow]
    return Effect.flatMap(readMany(tx, keys), (values) =>
      Effect.suspend(() => {
        const known = new Map<string, V | undefined>(keys.map((key, index) => [key, values[index]]))
        const read = (key: string): Either.Either<V | undefined, StoreError> =>
          known.has(key) ? Either.right(known.get(key)) : Either.left(new StoreError({ operation: "transaction", message: `the transaction read '${key}', which it did not declare` }))
        const recording: KvDriver.KvTransaction<V> = {
          ...tx,
          set: (key, value) => (known.set(key, value), tx.set(key, value)),
          remove: (key) => (known.set(key, undefined), tx.remove(key))
        }
        return fromEither(body(makeTransactionNow(cells, recording, read, appended, origin)))
      })
    )
  }

// "\uffff" sorts after every character a key part may contain, closing a prefix range.
const prefixEnd = (prefix: string): string => `${prefix}\uffff`

const scanPrefix = (prefix: { readonly vault?: string; readonly resource?: string; readonly relation?: string }): string => {
  const parts = [prefix.vault, prefix.resource, prefix.relation]
  const present: Array<string> = []
  for (const part of parts) {
    if (part === undefined) break
    present.push(part)
  }
  return present.length === 0 ? tuplePrefix : `${tuplePrefix}${present.join("\u0000")}\u0000`
}

/**
 * Hands out turns in the order transaction bodies end (which is commit order on backends that
 * run bodies one at a time), and lets each holder act only when every earlier holder is done.
 * Taking and finishing a turn are plain calls (a waiter waits on a gate), so a transaction's
 * turn costs no Effect operations of its own unless it has to wait.
 */
const makeTurns = () => {
  let issued = 0
  let turn = 0
  const done = new Set<number>()
  const waiting = new Map<number, Handoff.Gate>()
  const finish = (ticket: number): void => {
    done.add(ticket)
    waiting.delete(ticket)
    while (done.delete(turn)) turn++
    const next = waiting.get(turn)
    if (next === undefined) return
    waiting.delete(turn)
    next.unsafeOpen()
  }
  const awaitTurn = (ticket: number): Effect.Effect<void> =>
    Effect.suspend(() => {
      if (ticket === turn) return Effect.void
      const wake = new Handoff.Gate()
      waiting.set(ticket, wake)
      return wake.await
    })
  return { take: () => issued++, finish, awaitTurn, isTurn: (ticket: number): boolean => ticket === turn }
}

/**
 * `Store.transaction`: the body through the driver, then, once it is durable, the bookkeeping of
 * commits (`FailedCommits`), the log entries of the body's last run kept in `recent`, the origin
 * numbers it wrote settled in the dictionary, and `afterCommit` in its turn (after every earlier
 * transaction's). All of it is one uninterruptible region, with the body and the waits under
 * `restore`, and one match per outcome; the driver runs inside it (`KvDriver.transactWithin`)
 * where it can. Every ticket taken is finished exactly once, however the transaction ends (an
 * interruption included), or the turns of later transactions would never come.
 *
 * It was three regions, each with its own match (the turns, the bookkeeping of commits, the
 * driver's lock): 47 Effect operations per transaction with an `afterCommit` around a body of
 * three, of which a simulated event runs about one (December 2026).
 */
const transactionOf =
  <V>(parts: TransactionParts<V>) =>
  <A, E, R, E2 = never, R2 = never>(body: (tx: StoreTransaction) => Effect.Effect<A, E, R>, afterCommit?: (result: A) => Effect.Effect<void, E2, R2>): Effect.Effect<A, E | E2 | StoreError, R | R2> =>
    transactionOver(parts)((tx, appended, origin) => body(makeTransaction(parts.cells, tx, appended, origin)), afterCommit)

/**
 * `Store.transactionNow`: where the driver runs bodies at once (`KvDriver.transactNow`), the
 * body, its commit and, when those are over in the same step, the bookkeeping of `transactionOf`
 * and `afterCommit`, with no Effect operation of their own; a transaction that has to wait (for
 * the writer, a commit in flight or a slow disk) finishes as `transactionOf` does, in one
 * uninterruptible region. Elsewhere it is `transactionOf` with the body run at once (`nowOver`).
 */
const transactionNowOf =
  <V>(parts: TransactionParts<V>) =>
  <A, E>(reads: ReadonlyArray<Tuple.Tuple>, body: (tx: StoreTransactionNow) => Either.Either<A, E | StoreError>, afterCommit?: (result: A) => void): Effect.Effect<A, E | StoreError> => {
    const now = parts.driver.transactNow
    if (now === undefined) return transactionOver(parts)(nowOver(parts.cells, reads, body), afterCommit === undefined ? undefined : (result) => Effect.sync(() => afterCommit(result)))
    // One uninterruptible region from before the body to the end of `afterCommit`, as in
    // `transactionOf`: a commit handed over must be seen through (`KvDriver.Now`), and every
    // ticket taken finished exactly once.
    return Effect.uninterruptibleMask((restore) => Effect.suspend(() => {
      const { cells, dictionary, recent, failed, turns } = parts
      let appended: Array<LogEntry> = []
      let used: Map<string, number> | undefined
      // Taken when a body ends (a backend may run it more than once), as in `transactionOf`.
      let ticket: number | undefined
      const run = (tx: KvDriver.NowTransaction<V>) => {
        appended = []
        used = dictionary.numbers ? new Map() : undefined
        const origin = used === undefined ? StoredForm.wholeOrigins : originField(dictionary, cells, tx.getNow, tx, used)
        const ran = body(makeTransactionNow(cells, tx, tx.getNow, appended, origin))
        if (afterCommit !== undefined && ran._tag === "Right") {
          if (ticket !== undefined) turns.finish(ticket)
          ticket = turns.take()
        }
        return ran
      }
      const ended = (cause: Cause.Cause<E | StoreError>) => {
        if (ticket !== undefined) turns.finish(ticket)
        ticket = undefined
        return failed.endFailed(cause)
      }
      const committed = (result: A): Effect.Effect<A, E | StoreError> => {
        failed.endCommitted()
        recent.add(appended)
        if (used !== undefined && used.size > 0) dictionary.settle(used)
        if (afterCommit === undefined) return Effect.succeed(result)
        const mine = ticket!
        const announce = () => {
          afterCommit(result)
          turns.finish(mine)
          ticket = undefined
          return result
        }
        if (turns.isTurn(mine)) return Effect.succeed(announce())
        return Effect.matchCauseEffect(restore(turns.awaitTurn(mine)), { onFailure: (cause) => Effect.failCause(ended(cause)), onSuccess: () => Effect.succeed(announce()) })
      }
      failed.begin()
      const transacted = now(run)
      if (transacted._tag === "Done") return transacted.outcome._tag === "Right" ? committed(transacted.outcome.right) : Effect.failCause(ended(Cause.fail(transacted.outcome.left)))
      const outcome = transacted._tag === "Blocked" ? restore(transacted.outcome) : transacted.outcome
      return Effect.matchCauseEffect(outcome, { onFailure: (cause) => Effect.failCause(ended(cause)), onSuccess: committed })
    }))
  }

/** What a Store's transactions share: its driver and representation, and the bookkeeping around commits. */
interface TransactionParts<V> {
  readonly driver: KvDriver.KvDriver<V>
  readonly cells: Cells<V>
  readonly dictionary: OriginIds.OriginIds
  readonly recent: RecentLog.RecentLog
  readonly failed: FailedCommits
  readonly turns: ReturnType<typeof makeTurns>
}

/** `transactionOf` over a body given the driver's transaction, the entries it appends and its origin field. */
const transactionOver =
  <V>(parts: TransactionParts<V>) =>
  <A, E, R, E2 = never, R2 = never>(
    bodyOver: (tx: KvDriver.KvTransaction<V>, appended: Array<LogEntry>, origin: StoredForm.OriginField) => Effect.Effect<A, E, R>,
    afterCommit?: (result: A) => Effect.Effect<void, E2, R2>
  ): Effect.Effect<A, E | E2 | StoreError, R | R2> =>
    Effect.uninterruptibleMask((restore) => {
      const { driver, cells, dictionary, recent, failed, turns } = parts
      let appended: Array<LogEntry> = []
      // Made only where origin keys are numbered: the in-memory store's transactions allocate nothing for it.
      let used: Map<string, number> | undefined
      // The ticket of the body's last run (a backend may run it more than once).
      let ticket: number | undefined
      const run = (tx: KvDriver.KvTransaction<V>) => {
        appended = []
        const getNow = tx.getNow
        used = dictionary.numbers && getNow !== undefined ? new Map() : undefined
        const origin = getNow === undefined || used === undefined ? StoredForm.wholeOrigins : originField(dictionary, cells, getNow, tx, used)
        const ran = bodyOver(tx, appended, origin)
        return afterCommit === undefined ? ran : Effect.map(ran, takeTicket)
      }
      const takeTicket = (result: A): A => {
        if (ticket !== undefined) turns.finish(ticket)
        ticket = turns.take()
        return result
      }
      const failedWith = (cause: Cause.Cause<E | E2 | StoreError>) => {
        if (ticket !== undefined) turns.finish(ticket)
        ticket = undefined
        return Effect.failCause(cause)
      }
      const committed = (result: A) => {
        failed.endCommitted()
        recent.add(appended)
        if (used !== undefined && used.size > 0) dictionary.settle(used)
        if (afterCommit === undefined) return Effect.succeed(result)
        const mine = ticket!
        return Effect.matchCauseEffect(restore(turns.isTurn(mine) ? afterCommit(result) : Effect.zipRight(turns.awaitTurn(mine), afterCommit(result))), {
          onFailure: failedWith,
          onSuccess: () => {
            turns.finish(mine)
            ticket = undefined
            return Effect.succeed(result)
          }
        })
      }
      failed.begin()
      const transacted = driver.transactWithin === undefined ? restore(driver.transact(run)) : driver.transactWithin(run, restore)
      return Effect.matchCauseEffect(transacted, {
        onFailure: (cause) => failedWith(failed.endFailed(cause)),
        onSuccess: committed
      })
    })

/**
 * Builds the typed Store over a driver that keeps text (the byte-oriented backends), reading the
 * store's dictionary of origin keys first. `numberOrigins`: whether this Store writes origin keys
 * as numbers (`OriginIds`), for a store that has no other writer (lmdb, a simulated node's own
 * disk); a shared one (FoundationDB) writes them whole.
 */
export const make = (driver: KvDriver.KvDriver, options: { readonly numberOrigins: boolean }): Effect.Effect<Store["Type"], StoreError> =>
  Effect.suspend(() => {
    const dictionary = new OriginIds.OriginIds(options.numberOrigins)
    const cells = textCells(dictionary)
    // A store without a dictionary never held one (FoundationDB's prefixes are only ever written whole).
    if (!options.numberOrigins) return Effect.succeed(makeWith(driver, cells, dictionary))
    const loaded = (driver.read ?? driver.transact)((tx) =>
      Effect.flatMap(tx.range(OriginIds.prefix, prefixEnd(OriginIds.prefix), Number.MAX_SAFE_INTEGER), (entries) =>
        decodeEach(entries, ([key, stored]) => Either.map(cells.integer.decode(stored), (id) => dictionary.load(key.slice(OriginIds.prefix.length), id)), (why) => undecodable("originIds", why))
      )
    )
    return Effect.as(loaded, makeWith(driver, cells, dictionary))
  })

/** Builds the typed Store over an in-memory driver, which keeps decoded, frozen values (`StoreEncoding.decoded`). */
export const makeMemory = (driver: KvDriver.KvDriver<unknown>): Store["Type"] => makeWith(driver, decodedCells, new OriginIds.OriginIds(false))

/**
 * The transactions that failed with a store error since the last one that committed, and why
 * the last did. A body's own failures (a residency refusal, say) are neither: nothing was asked of
 * the store.
 */
class FailedCommits {
  count = 0
  total = 0
  last = ""
  /** `Store.progress`: kept exactly, an interrupted transaction included, or a watchdog would see a transaction pending for ever. */
  pending = 0
  ended = 0
  // One match on the outcome, with the bookkeeping done in place and uninterruptibly (the
  // transaction runs under `restore`): every transaction outside `Store.transaction` runs this.
  track<A, E, R>(transaction: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> {
    return Effect.uninterruptibleMask((restore) => {
      this.begin()
      return Effect.matchCauseEffect(restore(transaction), {
        onFailure: (cause) => Effect.failCause(this.endFailed(cause)),
        onSuccess: (value) => {
          this.endCommitted()
          return Effect.succeed(value)
        }
      })
    })
  }
  /** A transaction began (run uninterruptibly, with `endFailed` or `endCommitted` for its outcome). */
  begin(): void {
    this.pending++
  }
  /** A transaction failed with `cause`, which is returned; a store error counts as a failed commit. */
  endFailed<C extends Cause.Cause<unknown>>(cause: C): C {
    this.pending--
    this.ended++
    const error = Cause.failureOption(cause)
    if (error._tag === "Some" && error.value instanceof StoreError) {
      this.count++
      this.total++
      this.last = error.value.message
    }
    return cause
  }
  /** A transaction committed. */
  endCommitted(): void {
    this.pending--
    this.ended++
    this.count = 0
  }
  describe(): string {
    return `${this.count} transaction${this.count === 1 ? "" : "s"} in a row did not commit, the last: ${this.last}`
  }
}

/**
 * Records the origin region of every log entry once (`o/` keys and `m/regionsIndexed`), for a
 * store written before appends recorded them. Entries appended meanwhile record their own.
 */
const indexRegions = <V>(driver: KvDriver.KvDriver<V>, cells: Cells<V>, readLog: (from: number, limit: number) => Effect.Effect<ReadonlyArray<LogEntry>, StoreError>) =>
  Effect.gen(function* () {
    const read = driver.read ?? driver.transact
    if ((yield* read((tx) => tx.get(regionsIndexedKey))) !== undefined) return
    const found = new Set<string>()
    const end = yield* read((tx) => readInteger(cells, tx, `${counterPrefix}logEnd`))
    // Once per store, before the node serves: a large log takes a while, and an operator watching
    // an upgraded node start should see why it is not ready yet.
    if (end > 0) yield* Effect.logInfo(`reading the log's ${end} entries once to record which regions' changes it holds (a store written before December 5, 2026)`)
    for (let from = 1; from <= end; ) {
      const entries = yield* readLog(from, 1_000)
      if (entries.length === 0) break
      for (const entry of entries) found.add(entry.change.originRegion)
      from = entries[entries.length - 1]!.position + 1
    }
    yield* driver.transact((tx) =>
      Effect.sync(() => {
        for (const region of found) tx.set(`${regionPrefix}${region}`, cells.integer.encode(1))
        tx.set(regionsIndexedKey, cells.integer.encode(1))
      })
    )
    if (end > 0) yield* Effect.logInfo(`recorded the regions the log holds changes of: ${[...found].sort().join(", ") || "none"}`)
  })

/** Reads log entries from the backend (not from memory), `limit` of them from position `from` on. */
const storedLogReader =
  <V>(driver: KvDriver.KvDriver<V>, cells: Cells<V>) =>
  (from: number, limit: number): Effect.Effect<ReadonlyArray<LogEntry>, StoreError> =>
    (driver.read ?? driver.transact)((tx) =>
      Effect.flatMap(tx.range(logKey(Math.max(1, from)), prefixEnd(logPrefix), limit), (entries) =>
        decodeEach(entries, ([, stored]) => cells.logEntry.decode(stored), (why) => undecodable("readLog", why))
      )
    )

/** The origin regions recorded under `o/`, in key order. */
const regionsRecorded = <V>(tx: KvDriver.KvTransaction<V>) =>
  Effect.map(tx.range(regionPrefix, prefixEnd(regionPrefix), Number.MAX_SAFE_INTEGER), (keys) => keys.map(([key]) => key.slice(regionPrefix.length)))

/** Reads one committed key and continues with its value: at once where the backend can (`KvDriver.readNow`). */
const keyReader =
  <V>(backend: KvDriver.KvDriver<V>, read: <A>(body: (tx: KvDriver.KvTransaction<V>) => Effect.Effect<A, StoreError>) => Effect.Effect<A, StoreError>) =>
  <A>(key: string, then: (stored: V | undefined) => Either.Either<A, StoreError>): Effect.Effect<A, StoreError> => {
    const now = backend.readNow
    if (now === undefined) return read((tx) => readThen(tx, key, (stored) => fromEither(then(stored))))
    return Effect.suspend(() => fromEither(Either.flatMap(now(key), then)))
  }

/**
 * A small write whose reads are `keys`: at once where the backend can (`KvDriver.transactNow`),
 * else through `driver` (the backend's `transact`, tracked). Either way it counts in `failed`.
 */
const smallWriteOf =
  <V>(backend: KvDriver.KvDriver<V>, driver: KvDriver.KvDriver<V>, failed: FailedCommits) =>
  <A>(keys: ReadonlyArray<string>, body: (tx: KvDriver.KvTransaction<V>, stored: ReadonlyArray<V | undefined>) => Either.Either<A, StoreError>): Effect.Effect<A, StoreError> => {
    const now = backend.transactNow
    if (now === undefined) return driver.transact((tx) => Effect.flatMap(readMany(tx, keys), (stored) => fromEither(body(tx, stored))))
    // Uninterruptible from before the body to the end of its commit (`KvDriver.Now`).
    return Effect.uninterruptibleMask((restore) =>
      Effect.suspend(() => {
        failed.begin()
        const ran = now((tx) => Either.flatMap(readManyNow(tx.getNow, keys), (stored) => body(tx, stored)))
        if (ran._tag !== "Done") {
          return Effect.matchCauseEffect(ran._tag === "Blocked" ? restore(ran.outcome) : ran.outcome, {
            onFailure: (cause) => Effect.failCause(failed.endFailed(cause)),
            onSuccess: (value) => (failed.endCommitted(), Effect.succeed(value))
          })
        }
        if (ran.outcome._tag === "Right") failed.endCommitted()
        else failed.endFailed(Cause.fail(ran.outcome.left))
        return fromEither(ran.outcome)
      })
    )
  }

const makeWith = <V>(backend: KvDriver.KvDriver<V>, cells: Cells<V>, dictionary: OriginIds.OriginIds): Store["Type"] => {
  const failed = new FailedCommits()
  const driver: KvDriver.KvDriver<V> = { ...backend, transact: (body) => failed.track(backend.transact(body)) }
  const read = <A>(body: (tx: KvDriver.KvTransaction<V>) => Effect.Effect<A, StoreError>) => (driver.read ?? driver.transact)(body)
  const turns = makeTurns()
  const recent = RecentLog.make()
  const readStoredLog = storedLogReader(driver, cells)
  const smallWrite = smallWriteOf(backend, driver, failed)
  const readKey = keyReader(backend, read)
  const parts: TransactionParts<V> = { driver: backend, cells, dictionary, recent, failed, turns }
  return {
    transaction: transactionOf(parts),
    transactionNow: transactionNowOf(parts),
    getTuple: (tuple) => read((tx) => makeTransaction(cells, tx).getTuple(tuple)),
    scanTuples: (prefix, page) =>
      read((tx) => {
        const start = scanPrefix(prefix)
        // The least key above `after`'s: its key with a NUL appended (byte order is string order).
        const after = page?.after === undefined ? undefined : `${tupleKey(page.after)}\u0000`
        const from = after !== undefined && after > start ? after : start
        return Effect.flatMap(tx.range(from, prefixEnd(start), page?.limit ?? Number.MAX_SAFE_INTEGER), (entries) =>
          decodeEach(entries, ([key, stored]) => cells.tupleState.decode(stored, tupleOfKey(key)), undecodableTuple)
        )
      }),
    // The log's tail comes from memory when this Store wrote it (`RecentLog`), else from the backend.
    readLog: (from, limit) =>
      Effect.suspend(() => {
        const held = recent.read(Math.max(1, from), limit)
        return held === undefined ? readStoredLog(from, limit) : Effect.succeed(held)
      }),
    logEnd: readKey(`${counterPrefix}logEnd`, (stored) => integerOf(cells, `${counterPrefix}logEnd`, stored)),
    clockHighWater: readKey(clockKey, (stored) => clockOf(cells, stored)),
    regionsHeld: Effect.zipRight(indexRegions(driver, cells, readStoredLog), read(regionsRecorded)),
    getCursor: (target) => readKey(`${cursorPrefix}${target}`, (stored) => integerOf(cells, `${cursorPrefix}${target}`, stored)),
    origin: (candidate) =>
      driver.transact((tx) =>
        Effect.flatMap(tx.get(originKey), (stored) => {
          if (stored !== undefined) return decodeWith(cells.text, "origin", stored)
          tx.set(originKey, cells.text.encode(candidate))
          return Effect.succeed(candidate)
        })
      ),
    advanceCursor: advanceCursorOf(cells, smallWrite),
    getRelayScope: (target) =>
      read((tx) =>
        Effect.flatMap(tx.get(`${relayScopePrefix}${target}`), (stored) =>
          stored === undefined ? Effect.succeed(undefined) : decodeWith(cells.relayScope, "getRelayScope", stored)
        )
      ),
    setRelayScope: setRelayScopeOf(cells, smallWrite),
    checkCommits: Effect.suspend(() => {
      if (failed.count === 0) return Effect.void
      const probe = driver.transact((tx) => Effect.sync(() => tx.set(commitProbeKey, cells.integer.encode(failed.count))))
      return Effect.mapError(probe, () => new StoreError({ operation: "commit", message: failed.describe() }))
    }),
    failedTransactions: Effect.sync(() => ({ inARow: failed.count, total: failed.total })),
    progress: Effect.sync(() => ({ pending: failed.pending, ended: failed.ended })),
    describeCommits: Effect.sync(() => backend.describeCommits?.()),
    close: driver.close
  }
}

/**
 * An in-memory Store over a disk that outlives the node, so the simulator and tests can crash
 * a node and restart it on the same disk.
 */
export const layerMemory = (disk: KvDriver.MemoryDisk = KvDriver.makeMemoryDisk()): Layer.Layer<Store> =>
  Layer.effect(Store, Effect.map(KvDriver.makeMemory(disk), makeMemory))
