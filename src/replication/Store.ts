/**
 * The Store: a region's durable state. It holds the tuple states, the change log (every
 * change this region committed or applied, in order, which feeds subscribers and the
 * replication agent), the replication cursors per target region, and the counters that
 * number origin sequences and revisions.
 *
 * The service is typed; underneath sits a `KvDriver` (keys and strings). The key layout and
 * encoding (the compact form of `StoredForm`) are written here once for every backend:
 *
 *   t/<vault>\0<resource>\0<relation>\0<subject>  -> TupleState
 *   l/<position, 15 digits>                        -> LogEntry
 *   c/<target region>                              -> cursor (last log position the target acknowledged)
 *   r/<target region>                              -> relay scope the cursor moved under (see `Relay.scopeOf`)
 *   m/<counter name>                               -> integer counters
 *   m/origin                                       -> this store's origin key (see `Change.originKey`)
 *   m/hlc                                          -> the highest HLC value a node recorded here ("<ms>.<logical>")
 *
 * Everything a write or an apply changes happens in one transaction, so the tuple state, the
 * log entry and the counters can never disagree after a crash.
 */
import { Context, Deferred, Effect, Either, Layer, Schema } from "effect"
import * as Change from "./Change.js"
import { StoreError } from "./Errors.js"
import * as KvDriver from "./KvDriver.js"
import * as RecentLog from "./RecentLog.js"
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
    /**
     * Runs `body` atomically; nothing of a failed or interrupted body is kept. It succeeds once
     * the transaction is durable. `afterCommit`, when given, then runs with the body's result,
     * and the `afterCommit`s of this Store's transactions run one at a time in commit order (for
     * backends that serialize transactions: memory, lmdb), even when commits complete together
     * (lmdb's group commit): the replica announces new log entries through it, in log order.
     */
    readonly transaction: <A, E, R>(
      body: (tx: StoreTransaction) => Effect.Effect<A, E, R>,
      afterCommit?: (result: A) => Effect.Effect<void>
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
    /**
     * The relay scope (`Relay.scopeOf`) under which the cursor towards `target` moved, or
     * undefined when none was recorded (a new target, or a store written before scopes).
     */
    readonly getRelayScope: (target: string) => Effect.Effect<ReadonlyArray<string> | undefined, StoreError>
    readonly setRelayScope: (target: string, scope: ReadonlyArray<string>) => Effect.Effect<void, StoreError>
    readonly close: Effect.Effect<void>
  }
>() {}

const tuplePrefix = "t/"
const logPrefix = "l/"
const cursorPrefix = "c/"
const relayScopePrefix = "r/"
const counterPrefix = "m/"
const positionDigits = 15
const originKey = `${counterPrefix}origin`
const clockKey = `${counterPrefix}hlc`

const readClock = (tx: KvDriver.KvTransaction): Effect.Effect<Timestamp.Timestamp, StoreError> =>
  Effect.flatMap(tx.get(clockKey), (text) => {
    if (text === undefined) return Effect.succeed(Timestamp.zero)
    const [physical, logical] = text.split(".").map(Number)
    return Number.isSafeInteger(physical) && Number.isSafeInteger(logical) && physical! >= 0 && logical! >= 0
      ? Effect.succeed({ physicalMs: physical!, logical: logical! })
      : Effect.fail(new StoreError({ operation: "readClock", message: `${clockKey} holds '${text}', not '<ms>.<logical>'` }))
  })

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

// Written in the compact form (`StoredForm`), without Schema: the store holds only what this
// node wrote. Values stored as JSON objects by earlier versions are still read, through the Schemas.
const encodeTupleState = StoredForm.encodeTupleState
const encodeLogEntry = StoredForm.encodeLogEntry

// Decoding is synchronous (Either, not an Effect): every read of the hot paths goes through it.
const decodeWith = <A, I>(compact: (text: string) => Either.Either<A, string>, legacy: Schema.Schema<A, I>, operation: string) => {
  const decodeLegacy = Schema.decodeUnknownEither(Schema.parseJson(legacy))
  return (text: string): Effect.Effect<A, StoreError> => {
    const decoded = StoredForm.isCompact(text) ? compact(text) : Either.mapLeft(decodeLegacy(text), (error) => error.message)
    return decoded._tag === "Right"
      ? Effect.succeed(decoded.right)
      : Effect.fail(new StoreError({ operation, message: `stored value does not decode: ${decoded.left}` }))
  }
}

const decodeTupleState = decodeWith(StoredForm.decodeTupleState, TupleState.TupleState, "getTuple")
const decodeLogEntry = decodeWith(StoredForm.decodeLogEntry, LogEntry, "readLog")
const RelayScopeJson = Schema.parseJson(Schema.Array(Schema.String))
const encodeRelayScope = Schema.encodeSync(RelayScopeJson)
const decodeRelayScopeEither = Schema.decodeUnknownEither(RelayScopeJson)
const decodeRelayScope = (text: string): Effect.Effect<ReadonlyArray<string>, StoreError> => {
  const decoded = decodeRelayScopeEither(text)
  return decoded._tag === "Right"
    ? Effect.succeed(decoded.right)
    : Effect.fail(new StoreError({ operation: "getRelayScope", message: `stored value does not decode: ${decoded.left.message}` }))
}

/** Reads `key` and continues with its text: at once when the backend reads synchronously, else as an Effect. */
const readThen = <A>(tx: KvDriver.KvTransaction, key: string, then: (text: string | undefined) => Effect.Effect<A, StoreError>): Effect.Effect<A, StoreError> => {
  const getNow = tx.getNow
  if (getNow === undefined) return Effect.flatMap(tx.get(key), then)
  return Effect.suspend(() => {
    const text = getNow(key)
    return text._tag === "Left" ? Effect.fail(text.left) : then(text.right)
  })
}

const integerOf = (key: string, text: string | undefined): Effect.Effect<number, StoreError> => {
  if (text === undefined) return Effect.succeed(0)
  const value = Number(text)
  return Number.isSafeInteger(value)
    ? Effect.succeed(value)
    : Effect.fail(new StoreError({ operation: "readInteger", message: `${key} holds '${text}', not an integer` }))
}

const readInteger = (tx: KvDriver.KvTransaction, key: string): Effect.Effect<number, StoreError> => readThen(tx, key, (text) => integerOf(key, text))

/** The typed view of one run of a transaction body; `appended` collects the log entries it wrote. */
const makeTransaction = (tx: KvDriver.KvTransaction, appended: Array<LogEntry> = []): StoreTransaction => ({
  getTuple: (tuple) => readThen(tx, tupleKey(tuple), (text) => (text === undefined ? Effect.succeed(TupleState.empty) : decodeTupleState(text))),
  putTuple: (tuple, state) => Effect.sync(() => tx.set(tupleKey(tuple), encodeTupleState(state))),
  appendLog: (entry) =>
    Effect.map(readInteger(tx, `${counterPrefix}logEnd`), (end) => {
      const position = end + 1
      const stored = { ...entry, position }
      appended.push(stored)
      tx.set(logKey(position), encodeLogEntry(stored))
      tx.set(`${counterPrefix}logEnd`, String(position))
      return position
    }),
  next: (counter, atLeast = 0) =>
    Effect.map(readInteger(tx, `${counterPrefix}${counter}`), (value) => {
      const next = Math.max(value + 1, atLeast)
      tx.set(`${counterPrefix}${counter}`, String(next))
      return next
    }),
  raiseClock: (timestamp) =>
    Effect.map(readClock(tx), (stored) => {
      if (Timestamp.order(timestamp, stored) > 0) tx.set(clockKey, Timestamp.format(timestamp))
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

/**
 * Hands out turns in the order transaction bodies end (which is commit order on backends that
 * run bodies one at a time), and lets each holder act only when every earlier holder is done.
 */
const makeTurns = () => {
  let issued = 0
  let turn = 0
  const done = new Set<number>()
  const waiting = new Map<number, Deferred.Deferred<void>>()
  const finish = (ticket: number) =>
    Effect.suspend(() => {
      done.add(ticket)
      waiting.delete(ticket)
      while (done.delete(turn)) turn++
      const next = waiting.get(turn)
      if (next === undefined) return Effect.void
      waiting.delete(turn)
      return Deferred.succeed(next, undefined)
    })
  const awaitTurn = (ticket: number): Effect.Effect<void> =>
    Effect.suspend(() => {
      if (ticket === turn) return Effect.void
      return Effect.flatMap(Deferred.make<void>(), (wake) => {
        waiting.set(ticket, wake)
        return Deferred.await(wake)
      })
    })
  return { take: () => issued++, finish, awaitTurn }
}

/** Builds the typed Store over any driver. */
export const make = (driver: KvDriver.KvDriver): Store["Type"] => {
  const read = <A>(body: (tx: KvDriver.KvTransaction) => Effect.Effect<A, StoreError>) => (driver.read ?? driver.transact)(body)
  const turns = makeTurns()
  const recent = RecentLog.make()
  const readStoredLog = (from: number, limit: number): Effect.Effect<ReadonlyArray<LogEntry>, StoreError> =>
    read((tx) =>
      Effect.flatMap(tx.range(logKey(Math.max(1, from)), prefixEnd(logPrefix), limit), (entries) =>
        Effect.forEach(entries, ([, text]) => decodeLogEntry(text))
      )
    )
  /** Runs a transaction and, once it is durable, keeps the log entries of its body's last run in `recent`. */
  const transact = <A, E, R>(body: (tx: StoreTransaction) => Effect.Effect<A, E, R>): Effect.Effect<A, E | StoreError, R> =>
    Effect.suspend(() => {
      let appended: Array<LogEntry> = []
      return Effect.tap(
        driver.transact((tx) => body(makeTransaction(tx, (appended = [])))),
        () => Effect.sync(() => recent.add(appended))
      )
    })
  return {
    transaction: (body, afterCommit) => {
      if (afterCommit === undefined) return transact(body)
      return Effect.suspend(() => {
        // The ticket of the body's last run (a backend may run it more than once); every ticket
        // taken is finished exactly once, or the turns of later transactions would never come.
        let ticket: number | undefined
        const takeTicket = Effect.flatMap(
          Effect.sync(() => {
            const previous = ticket
            ticket = turns.take()
            return previous
          }),
          (previous) => (previous === undefined ? Effect.void : turns.finish(previous))
        )
        const finishTicket = Effect.suspend(() => (ticket === undefined ? Effect.void : turns.finish(ticket)))
        return transact((tx) => Effect.tap(body(tx), () => takeTicket)).pipe(
          Effect.tap((result) => Effect.zipRight(turns.awaitTurn(ticket!), afterCommit(result))),
          Effect.ensuring(finishTicket)
        )
      })
    },
    getTuple: (tuple) => read((tx) => makeTransaction(tx).getTuple(tuple)),
    scanTuples: (prefix) =>
      read((tx) => {
        const start = scanPrefix(prefix)
        return Effect.flatMap(tx.range(start, prefixEnd(start), Number.MAX_SAFE_INTEGER), (entries) =>
          Effect.forEach(entries, ([, text]) => decodeTupleState(text))
        )
      }),
    // The log's tail comes from memory when this Store wrote it (`RecentLog`), else from the backend.
    readLog: (from, limit) =>
      Effect.suspend(() => {
        const held = recent.read(Math.max(1, from), limit)
        return held === undefined ? readStoredLog(from, limit) : Effect.succeed(held)
      }),
    logEnd: read((tx) => readInteger(tx, `${counterPrefix}logEnd`)),
    clockHighWater: read(readClock),
    getCursor: (target) => read((tx) => readInteger(tx, `${cursorPrefix}${target}`)),
    origin: (candidate) =>
      driver.transact((tx) =>
        Effect.map(tx.get(originKey), (stored) => {
          if (stored !== undefined) return stored
          tx.set(originKey, candidate)
          return candidate
        })
      ),
    advanceCursor: (target, position) =>
      driver.transact((tx) =>
        Effect.map(readInteger(tx, `${cursorPrefix}${target}`), (current) => {
          if (position > current) tx.set(`${cursorPrefix}${target}`, String(position))
        })
      ),
    getRelayScope: (target) => read((tx) => Effect.flatMap(tx.get(`${relayScopePrefix}${target}`), (text) => (text === undefined ? Effect.succeed(undefined) : decodeRelayScope(text)))),
    setRelayScope: (target, scope) => driver.transact((tx) => Effect.sync(() => tx.set(`${relayScopePrefix}${target}`, encodeRelayScope(scope)))),
    close: driver.close
  }
}

/** A Store over any driver layer-free value, e.g. one built by a runtime backend. */
export const layerDriver = (driver: Effect.Effect<KvDriver.KvDriver, StoreError>): Layer.Layer<Store, StoreError> =>
  Layer.effect(Store, Effect.map(driver, make))

/**
 * An in-memory Store over a disk that outlives the node, so the simulator and tests can crash
 * a node and restart it on the same disk.
 */
export const layerMemory = (disk: KvDriver.MemoryDisk = KvDriver.makeMemoryDisk()): Layer.Layer<Store> =>
  Layer.effect(Store, Effect.map(KvDriver.makeMemory(disk), make))
