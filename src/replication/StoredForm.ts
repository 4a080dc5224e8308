/**
 * The compact stored form of log entries and tuple states: JSON arrays of the fields in a
 * fixed order, written and read without Schema. The store holds only what this node wrote
 * itself (changes from elsewhere were validated when they arrived, by the wire codec), so
 * validating every field on every read and write bought nothing and cost a fifth of the CPU of
 * the write and apply paths. Arrays instead of objects also halve the bytes (no field names).
 *
 * A tuple state's frontier members leave out the tuple: every member is a change of the tuple
 * whose key the state is stored under, so the key already holds it.
 *
 * Since December 5, 2026 the fields that repeat what another field says are written as what
 * they add to it (the "delta" layout below): a change's origin region and node are the first
 * two parts of its origin key (`Change.originKey`), its commit time, revision and apply time lie
 * within a few milliseconds of its timestamp, and a change is received from its origin region
 * more often than not. Written whole, those were two fifths of a stored change's bytes (a
 * `bench:repl` change's log entry and tuple state took 341 bytes, now 195), and lmdb writes and maps every one of them:
 * the store's size, the disk's bytes per commit and the file pages a node keeps resident all
 * follow them. Every value is still written exactly: where a difference would not be an exact
 * integer, or the origin key does not start with the region and node, the field holds the value
 * itself instead.
 *
 * The layouts (`StoredLayout.ts` in the simulator reads them from this description):
 * - a log entry is `[position, from, applied, origin, seq, op, vault, resource, relation,
 *   subject, physicalMs, logical, source, revision, committed, context]` (16 fields) and a frontier
 *   member `[origin, seq, op, physicalMs, logical, source, revision, committed, context]` (9),
 *   where
 *   - `op` is 1 for an insert and 0 for a delete;
 *   - `committed` is `committedAtMs - physicalMs`, `revision` is `originRevision - 1000 *
 *     committedAtMs` and `applied` is `appliedAtMs - committedAtMs`, each written instead as
 *     `[value]` (the value itself in a one-element array) unless every number involved and the
 *     difference are safe integers;
 *   - `source` is the length of `originRegion` when `origin` starts with `originRegion + "/" +
 *     originNode + "/"` and `originNode` holds no `/` (the node is then the text between the
 *     first two `/` after the region), else `[originRegion, originNode]`;
 *   - `from` is 0 when the change was received from its own origin region, else `receivedFrom`
 *     (null for a change this node wrote);
 * - before: a log entry `[position, receivedFrom, appliedAtMs, origin, seq, op, vault, resource,
 *   relation, subject, physicalMs, logical, originRegion, originNode, originRevision,
 *   committedAtMs, context]` (17 fields), a member the same change fields without the tuple
 *   (10), and before that members with the tuple (14). These are still read.
 *
 * Since December 6, 2026 the `origin` field of the delta layout may also be a positive integer:
 * the origin key's number in the store's dictionary (`OriginIds`, the `k/<origin key>` keys that
 * hold each number, written in the same transaction as the first value that uses it). An origin
 * key is about 40 characters and was written twice per change, a fifth of a stored change's
 * bytes; lmdb keeps the tuple states' pages about half full (many writers insert at many places
 * in the key order, and it splits a full page in half), so every byte of a tuple state took two
 * of the store's file and of the pages a node keeps mapped. A field that is text is the key itself
 * (stores that keep no dictionary, values written before it, and a writer that could not read
 * the dictionary in its transaction).
 *
 * Reading checks the shape (an array of one of those lengths, the numbers where numbers belong)
 * and nothing more. Stores written before this form hold JSON objects; `Store` still reads
 * those through its Schemas, so an existing data directory keeps working (`isCompact` tells the
 * two apart).
 */
import { Either } from "effect"
import type * as Change from "./Change.js"
import type * as Store from "./Store.js"
import type * as Tuple from "./Tuple.js"
import type * as TupleState from "./TupleState.js"

/** The origin keys a store numbers (`OriginIds`): what a stored number in an origin field stands for. */
export interface OriginNames {
  readonly originOf: (id: number) => string | undefined
}

/** What a writer puts in a change's origin field: the key's number in the store's dictionary, or the key itself. */
export type OriginField = (origin: string) => string | number

/** Every origin key written whole: stores without a dictionary, and the values the tests pin. */
export const wholeOrigins: OriginField = (origin) => origin

const noNames: OriginNames = { originOf: () => undefined }

/** Fields of a log entry and of a frontier member in the delta layout. */
const logEntryFieldCount = 16
const memberFieldCount = 9

/** The earlier layouts: a whole change (14 fields), a log entry (3 more) and a member without the tuple (10). */
const earlierChangeFieldCount = 14
const earlierMemberFieldCount = 10

// Objects are built with the Schema's field order, so a decoded value looks the same whichever form it was read from.
const earlierChangeOf = (fields: ReadonlyArray<unknown>, offset: number): Change.Change =>
  earlierMemberOf(fields, offset, {
    vault: fields[offset + 3] as string,
    resource: fields[offset + 4] as string,
    relation: fields[offset + 5] as string,
    subject: fields[offset + 6] as string
  }, 7)

/** The change of an earlier frontier member (`rest` is where the fields after the tuple start: 7 with it, 3 without). */
const earlierMemberOf = (fields: ReadonlyArray<unknown>, offset: number, tuple: Tuple.Tuple, rest: number): Change.Change => ({
  id: { origin: fields[offset] as string, seq: fields[offset + 1] as number },
  op: fields[offset + 2] as Change.Operation,
  tuple,
  timestamp: { physicalMs: fields[offset + rest] as number, logical: fields[offset + rest + 1] as number },
  originRegion: fields[offset + rest + 2] as string,
  originNode: fields[offset + rest + 3] as string,
  originRevision: fields[offset + rest + 4] as number,
  committedAtMs: fields[offset + rest + 5] as number,
  context: fields[offset + rest + 6] as Record<string, number>
})

/** `value` as what it adds to `base`, or `[value]` where that difference would not be exact. */
const difference = (value: number, base: number): number | readonly [number] => {
  const added = value - base
  return Number.isSafeInteger(value) && Number.isSafeInteger(base) && Number.isSafeInteger(added) ? added : [value]
}

/** The `source` field: the region's length when the origin key spells region and node, else both. */
const sourceOf = (change: Change.Change): number | readonly [string, string] => {
  const { origin } = change.id
  const region = change.originRegion
  const node = change.originNode
  const spelled =
    !node.includes("/") &&
    origin.length > region.length + node.length + 1 &&
    origin.startsWith(region) &&
    origin.charCodeAt(region.length) === 0x2f &&
    origin.startsWith(node, region.length + 1) &&
    origin.charCodeAt(region.length + node.length + 1) === 0x2f
  return spelled ? region.length : [region, node]
}

/**
 * A log entry's fields in their stored order.
 *
 * Each stored value is one `JSON.stringify` of one array: the store keeps a value until its
 * commit is durable, and a value built from pieces of other strings kept all the pieces alive
 * across the fsync, long enough for the young generation's collector to copy and promote them
 * (at the origin of `bench:repl`, two fifths of the bytes promoted, by a sampling heap profile
 * of what survived minor collections, before December 2026).
 */
const logEntryFields = (entry: Store.LogEntry, origin: OriginField): ReadonlyArray<unknown> => {
  const change = entry.change
  return [
    entry.position,
    entry.receivedFrom !== null && entry.receivedFrom === change.originRegion ? 0 : entry.receivedFrom,
    difference(entry.appliedAtMs, change.committedAtMs),
    origin(change.id.origin),
    change.id.seq,
    change.op === "insert" ? 1 : 0,
    change.tuple.vault,
    change.tuple.resource,
    change.tuple.relation,
    change.tuple.subject,
    change.timestamp.physicalMs,
    change.timestamp.logical,
    sourceOf(change),
    difference(change.originRevision, change.committedAtMs * 1_000),
    difference(change.committedAtMs, change.timestamp.physicalMs),
    change.context
  ]
}

/** A frontier member's fields: the change's without its tuple, which the state's key holds. */
const memberFields = (change: Change.Change, origin: OriginField): ReadonlyArray<unknown> => [
  origin(change.id.origin),
  change.id.seq,
  change.op === "insert" ? 1 : 0,
  change.timestamp.physicalMs,
  change.timestamp.logical,
  sourceOf(change),
  difference(change.originRevision, change.committedAtMs * 1_000),
  difference(change.committedAtMs, change.timestamp.physicalMs),
  change.context
]

/** The log entry as text in the delta layout, its origin field written by `origin`. */
export const encodeLogEntry = (entry: Store.LogEntry, origin: OriginField = wholeOrigins): string => JSON.stringify(logEntryFields(entry, origin))

/** `[[...member], ...]`, one array per frontier member, each without the tuple, origin fields written by `origin`. */
export const encodeTupleState = (state: TupleState.TupleState, origin: OriginField = wholeOrigins): string =>
  JSON.stringify(state.frontier.map((change) => memberFields(change, origin)))

/** Whether stored text is in this form (a JSON array) rather than the older JSON object. */
export const isCompact = (text: string): boolean => text.charCodeAt(0) === 0x5b

const parse = (text: string): Either.Either<unknown, string> => {
  try {
    return Either.right(JSON.parse(text))
  } catch (error) {
    return Either.left(error instanceof Error ? error.message : String(error))
  }
}

/** Thrown inside the delta readers for a field of the wrong kind, and turned into a Left by `reading`. */
class Misshapen extends Error {}

/** A number written by `difference` against `base`. */
const undo = (field: unknown, base: number): number => {
  if (typeof field === "number") return base + field
  if (Array.isArray(field) && typeof field[0] === "number") return field[0]
  throw new Misshapen("a stored difference is neither a number nor [number]")
}

const number = (field: unknown): number => {
  if (typeof field !== "number") throw new Misshapen("a stored number is not one")
  return field
}

const operation = (field: unknown): Change.Operation => {
  if (field === 1) return "insert"
  if (field === 0) return "delete"
  throw new Misshapen("a stored operation is neither 1 nor 0")
}

/** A change in the delta layout, from `fields` at `at`: origin, seq, op, then physicalMs, logical, source, revision, committed, context at `rest`. */
/** An origin field: the key itself, or its number in the store's dictionary. */
const originOf = (field: unknown, names: OriginNames): string => {
  if (typeof field === "string") return field
  const named = typeof field === "number" ? names.originOf(field) : undefined
  if (named === undefined) throw new Misshapen(typeof field === "number" ? `a stored origin is number ${field}, which the store's dictionary does not hold` : "a stored origin is neither text nor a number")
  return named
}

const deltaChangeOf = (fields: ReadonlyArray<unknown>, at: number, tuple: Tuple.Tuple, rest: number, names: OriginNames): Change.Change => {
  const origin = originOf(fields[at], names)
  const physicalMs = number(fields[rest])
  const committedAtMs = undo(fields[rest + 4], physicalMs)
  const source = fields[rest + 2]
  let originRegion: string
  let originNode: string
  if (typeof source === "number") {
    originRegion = origin.slice(0, source)
    originNode = origin.slice(source + 1, origin.indexOf("/", source + 1))
  } else if (Array.isArray(source) && typeof source[0] === "string" && typeof source[1] === "string") {
    originRegion = source[0]
    originNode = source[1]
  } else {
    throw new Misshapen("a stored source is neither a length nor [region, node]")
  }
  return {
    id: { origin, seq: number(fields[at + 1]) },
    op: operation(fields[at + 2]),
    tuple,
    timestamp: { physicalMs, logical: number(fields[rest + 1]) },
    originRegion,
    originNode,
    originRevision: undo(fields[rest + 3], committedAtMs * 1_000),
    committedAtMs,
    context: fields[rest + 5] as Record<string, number>
  }
}

/** `read` applied, with a misshapen field as a Left. */
const reading = <A>(read: () => A): Either.Either<A, string> => {
  try {
    return Either.right(read())
  } catch (error) {
    if (error instanceof Misshapen) return Either.left(error.message)
    throw error
  }
}

const deltaLogEntryOf = (value: ReadonlyArray<unknown>, names: OriginNames): Store.LogEntry => {
  const tuple: Tuple.Tuple = { vault: value[6] as string, resource: value[7] as string, relation: value[8] as string, subject: value[9] as string }
  const change = deltaChangeOf(value, 3, tuple, 10, names)
  const from = value[1]
  if (from !== 0 && from !== null && typeof from !== "string") throw new Misshapen("a stored sender is neither 0, null nor text")
  const receivedFrom = from === 0 ? change.originRegion : from
  return { position: number(value[0]), change, receivedFrom, appliedAtMs: undo(value[2], change.committedAtMs) }
}

/** Reads a log entry in this form (either layout), numbered origins through `names`; Left says why the text is not one. */
export const decodeLogEntry = (text: string, names: OriginNames = noNames): Either.Either<Store.LogEntry, string> =>
  Either.flatMap(parse(text), (value) => {
    if (Array.isArray(value) && value.length === logEntryFieldCount) return reading(() => deltaLogEntryOf(value, names))
    if (!Array.isArray(value) || value.length !== 3 + earlierChangeFieldCount) return Either.left(`a stored log entry is not an array of ${logEntryFieldCount} fields (or ${3 + earlierChangeFieldCount})`)
    return Either.right({ position: value[0] as number, change: earlierChangeOf(value, 3), receivedFrom: value[1] as string | null, appliedAtMs: value[2] as number })
  })

/**
 * Reads a tuple state in this form, stored under `tuple`'s key, numbered origins through
 * `names`; Left says why the text is not one. Members in the earlier layouts (with the tuple, as
 * written before December 2026, or without it and with every field whole, before December 5)
 * keep reading.
 */
export const decodeTupleState = (text: string, tuple: Tuple.Tuple, names: OriginNames = noNames): Either.Either<TupleState.TupleState, string> =>
  Either.flatMap(parse(text), (value) => {
    if (!Array.isArray(value)) return Either.left("a stored tuple state is not an array")
    // One object for every member: each is a change of this tuple, and decoded values are never changed.
    const own: Tuple.Tuple = { vault: tuple.vault, resource: tuple.resource, relation: tuple.relation, subject: tuple.subject }
    return reading(() => {
      const frontier: Array<Change.Change> = []
      for (const member of value) {
        if (Array.isArray(member) && member.length === memberFieldCount) frontier.push(deltaChangeOf(member, 0, own, 3, names))
        else if (Array.isArray(member) && member.length === earlierMemberFieldCount) frontier.push(earlierMemberOf(member, 0, own, 3))
        else if (Array.isArray(member) && member.length === earlierChangeFieldCount) frontier.push(earlierChangeOf(member, 0))
        else throw new Misshapen(`a stored frontier member is not an array of ${memberFieldCount} fields (or ${earlierMemberFieldCount} or ${earlierChangeFieldCount})`)
      }
      return { frontier }
    })
  })
