/**
 * The Store: a region's durable state. It holds the tuple states, the change log (every
 * change this region committed or applied, in order, which feeds subscribers and the
 * replication agent), the replication cursors per target region, and the counters that
 * number origin sequences and revisions.
 *
 * The service is typed; underneath sits a `KvDriver` (ordered keys, values in the backend's
 * representation, see `StoreEncoding.ts`: Schema-validated JSON text on disks, frozen decoded
 * values in memory). The key layout is written here once for every backend:
 *
 *   t/<vault>\0<resource>\0<relation>\0<subject>  -> TupleState
 *   l/<position, 15 digits>                        -> LogEntry
 *   c/<target region>                              -> cursor (last log position the target acknowledged)
 *   m/<counter name>                               -> integer counters
 *   m/origin                                       -> this store's origin key (see `Change.originKey`)
 *   m/hlc                                          -> the highest HLC value a node recorded here ("<ms>.<logical>")
 *
 * Everything a write or an apply changes happens in one transaction, so the tuple state, the
 * log entry and the counters can never disagree after a crash.
 */
import { Context, Effect, Layer, Schema } from "effect"
import * as Change from "./Change.js"
import { StoreError } from "./Errors.js"
import * as KvDriver from "./KvDriver.js"
import * as StoreEncoding from "./StoreEncoding.js"
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
  /** Appends to the log and returns the entry's position (1-based, gap-free). */
  readonly appendLog: (entry: Omit<LogEntry, "position">) => Effect.Effect<number, StoreError>
  /** Increments a counter and returns its new value (first value is 1, or `atLeast` when larger). */
  readonly next: (counter: Exclude<Counter, "logEnd">, atLeast?: number) => Effect.Effect<number, StoreError>
  /** Raises the stored HLC high-water to `timestamp` (kept if already higher). */
  readonly raiseClock: (timestamp: Timestamp.Timestamp) => Effect.Effect<void, StoreError>
}

/** The Store service. */
export class Store extends Context.Tag("inferadb/Store")<
  Store,
  {
    /** Runs `body` atomically; nothing of a failed or interrupted body is kept. */
    readonly transaction: <A, E, R>(
      body: (tx: StoreTransaction) => Effect.Effect<A, E, R>
    ) => Effect.Effect<A, E | StoreError, R>
    readonly getTuple: (tuple: Tuple.Tuple) => Effect.Effect<TupleState.TupleState, StoreError>
    /** Tuple states whose key starts with the given parts, in key order. */
    readonly scanTuples: (prefix: {
      readonly vault?: string
      readonly resource?: string
      readonly relation?: string
    }) => Effect.Effect<ReadonlyArray<TupleState.TupleState>, StoreError>
    /** Log entries with `position >= from`, at most `limit`, in order. */
    readonly readLog: (from: number, limit: number) => Effect.Effect<ReadonlyArray<LogEntry>, StoreError>
    /** Position of the last log entry (0 when empty). */
    readonly logEnd: Effect.Effect<number, StoreError>
    /** The HLC high-water recorded by `raiseClock` (zero when none), for a restarted node's clock. */
    readonly clockHighWater: Effect.Effect<Timestamp.Timestamp, StoreError>
    /** Last log position the target acknowledged (0 when none). */
    readonly getCursor: (target: string) => Effect.Effect<number, StoreError>
    /**
     * The origin key this store numbers its changes under: `candidate` when the store has none
     * yet (a new or wiped disk), else the one stored. Nodes sharing a store share its origin.
     */
    readonly origin: (candidate: string) => Effect.Effect<string, StoreError>
    /** Moves a cursor forward; a smaller position than the stored one is ignored. */
    readonly advanceCursor: (target: string, position: number) => Effect.Effect<void, StoreError>
    readonly close: Effect.Effect<void>
  }
>() {}

const tuplePrefix = "t/"
const logPrefix = "l/"
const cursorPrefix = "c/"
const counterPrefix = "m/"
const positionDigits = 15
const originKey = `${counterPrefix}origin`
const clockKey = `${counterPrefix}hlc`

const logKey = (position: number): string => `${logPrefix}${String(position).padStart(positionDigits, "0")}`
const tupleKey = (tuple: Tuple.Tuple): string => `${tuplePrefix}${Tuple.key(tuple)}`

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

/** The cells of one value representation, compiled once per Store. */
interface Cells<V> {
  readonly tupleState: StoreEncoding.Cell<TupleState.TupleState, V>
  readonly logEntry: StoreEncoding.Cell<LogEntry, V>
  readonly integer: StoreEncoding.Cell<number, V>
  readonly text: StoreEncoding.Cell<string, V>
}

const cellsOf = <V>(encoding: StoreEncoding.StoreEncoding<V>): Cells<V> => ({
  tupleState: encoding.schema(TupleState.TupleState),
  logEntry: encoding.schema(LogEntry),
  integer: encoding.integer,
  text: encoding.text
})

// Decoding is synchronous (Either, not an Effect): every read of the hot paths goes through it.
const decodeWith = <A, V>(cell: StoreEncoding.Cell<A, V>, operation: string, stored: V): Effect.Effect<A, StoreError> => {
  const decoded = cell.decode(stored)
  return decoded._tag === "Right"
    ? Effect.succeed(decoded.right)
    : Effect.fail(new StoreError({ operation, message: `stored value does not decode: ${decoded.left}` }))
}

const readInteger = <V>(cells: Cells<V>, tx: KvDriver.KvTransaction<V>, key: string): Effect.Effect<number, StoreError> =>
  Effect.flatMap(tx.get(key), (stored) => {
    if (stored === undefined) return Effect.succeed(0)
    const value = cells.integer.decode(stored)
    return value._tag === "Right"
      ? Effect.succeed(value.right)
      : Effect.fail(new StoreError({ operation: "readInteger", message: `${key} holds ${value.left}` }))
  })

/** The stored HLC high-water, kept as text ("<ms>.<logical>") in every representation. */
const readClock = <V>(cells: Cells<V>, tx: KvDriver.KvTransaction<V>): Effect.Effect<Timestamp.Timestamp, StoreError> =>
  Effect.flatMap(tx.get(clockKey), (stored) => {
    if (stored === undefined) return Effect.succeed(Timestamp.zero)
    const decoded = cells.text.decode(stored)
    const text = decoded._tag === "Right" ? decoded.right : String(stored)
    const [physical, logical] = text.split(".").map(Number)
    return decoded._tag === "Right" && Number.isSafeInteger(physical) && Number.isSafeInteger(logical) && physical! >= 0 && logical! >= 0
      ? Effect.succeed({ physicalMs: physical!, logical: logical! })
      : Effect.fail(new StoreError({ operation: "readClock", message: `${clockKey} holds '${text}', not '<ms>.<logical>'` }))
  })

const makeTransaction = <V>(cells: Cells<V>, tx: KvDriver.KvTransaction<V>): StoreTransaction => ({
  getTuple: (tuple) =>
    Effect.flatMap(tx.get(tupleKey(tuple)), (stored) =>
      stored === undefined ? Effect.succeed(TupleState.empty) : decodeWith(cells.tupleState, "getTuple", stored)
    ),
  putTuple: (tuple, state) => Effect.sync(() => tx.set(tupleKey(tuple), cells.tupleState.encode(state))),
  appendLog: (entry) =>
    Effect.map(readInteger(cells, tx, `${counterPrefix}logEnd`), (end) => {
      const position = end + 1
      tx.set(logKey(position), cells.logEntry.encode({ ...entry, position }))
      tx.set(`${counterPrefix}logEnd`, cells.integer.encode(position))
      return position
    }),
  next: (counter, atLeast = 0) =>
    Effect.map(readInteger(cells, tx, `${counterPrefix}${counter}`), (value) => {
      const next = Math.max(value + 1, atLeast)
      tx.set(`${counterPrefix}${counter}`, cells.integer.encode(next))
      return next
    }),
  raiseClock: (timestamp) =>
    Effect.map(readClock(cells, tx), (stored) => {
      if (Timestamp.order(timestamp, stored) > 0) tx.set(clockKey, cells.text.encode(Timestamp.format(timestamp)))
    })
})

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

/** Builds the typed Store over a driver that keeps text (the byte-oriented backends). */
export const make = (driver: KvDriver.KvDriver): Store["Type"] => makeWith(driver, StoreEncoding.json)

/** Builds the typed Store over a driver whose values have the representation `encoding` gives. */
export const makeWith = <V>(driver: KvDriver.KvDriver<V>, encoding: StoreEncoding.StoreEncoding<V>): Store["Type"] => {
  const cells = cellsOf(encoding)
  const read = <A>(body: (tx: KvDriver.KvTransaction<V>) => Effect.Effect<A, StoreError>) => (driver.read ?? driver.transact)(body)
  return {
    transaction: (body) => driver.transact((tx) => body(makeTransaction(cells, tx))),
    getTuple: (tuple) => read((tx) => makeTransaction(cells, tx).getTuple(tuple)),
    scanTuples: (prefix) =>
      read((tx) => {
        const start = scanPrefix(prefix)
        return Effect.flatMap(tx.range(start, prefixEnd(start), Number.MAX_SAFE_INTEGER), (entries) =>
          Effect.forEach(entries, ([, stored]) => decodeWith(cells.tupleState, "getTuple", stored))
        )
      }),
    readLog: (from, limit) =>
      read((tx) =>
        Effect.flatMap(tx.range(logKey(Math.max(1, from)), prefixEnd(logPrefix), limit), (entries) =>
          Effect.forEach(entries, ([, stored]) => decodeWith(cells.logEntry, "readLog", stored))
        )
      ),
    logEnd: read((tx) => readInteger(cells, tx, `${counterPrefix}logEnd`)),
    clockHighWater: read((tx) => readClock(cells, tx)),
    getCursor: (target) => read((tx) => readInteger(cells, tx, `${cursorPrefix}${target}`)),
    origin: (candidate) =>
      driver.transact((tx) =>
        Effect.flatMap(tx.get(originKey), (stored) => {
          if (stored !== undefined) return decodeWith(cells.text, "origin", stored)
          tx.set(originKey, cells.text.encode(candidate))
          return Effect.succeed(candidate)
        })
      ),
    advanceCursor: (target, position) =>
      driver.transact((tx) =>
        Effect.map(readInteger(cells, tx, `${cursorPrefix}${target}`), (current) => {
          if (position > current) tx.set(`${cursorPrefix}${target}`, cells.integer.encode(position))
        })
      ),
    close: driver.close
  }
}

/** The Store over an in-memory driver, which keeps decoded values (`StoreEncoding.decoded`). */
export const makeMemory = (driver: KvDriver.KvDriver<unknown>): Store["Type"] => makeWith(driver, StoreEncoding.decoded)

/** A Store over any driver layer-free value, e.g. one built by a runtime backend. */
export const layerDriver = (driver: Effect.Effect<KvDriver.KvDriver, StoreError>): Layer.Layer<Store, StoreError> =>
  Layer.effect(Store, Effect.map(driver, make))

/**
 * An in-memory Store over a disk that outlives the node, so the simulator and tests can crash
 * a node and restart it on the same disk.
 */
export const layerMemory = (disk: KvDriver.MemoryDisk = KvDriver.makeMemoryDisk()): Layer.Layer<Store> =>
  Layer.effect(Store, Effect.map(KvDriver.makeMemory(disk), makeMemory))
