/**
 * The compact stored form of log entries and tuple states: JSON arrays of the fields in a
 * fixed order, written and read without Schema. The store holds only what this node wrote
 * itself (changes from elsewhere were validated when they arrived, by the wire codec), so
 * validating every field on every read and write bought nothing and cost a fifth of the CPU of
 * the write and apply paths. Arrays instead of objects also halve the bytes (no field names).
 *
 * A tuple state's frontier members leave out the tuple: every member is a change of the tuple
 * whose key the state is stored under, so the key already holds it. A tuple state was two
 * thirds of a change's stored bytes and its tree took three fifths of the store's pages (lmdb,
 * `bench:repl`'s writes); a tuple written again four times over takes its four parts once.
 * Members written before this (with the tuple, 14 fields) are still read.
 *
 * Reading checks the shape (an array of the right length) and nothing more. Stores written
 * before this form hold JSON objects; `Store` still reads those through its Schemas, so an
 * existing data directory keeps working (`isCompact` tells the two apart).
 */
import { Either } from "effect"
import type * as Change from "./Change.js"
import type * as Store from "./Store.js"
import type * as Tuple from "./Tuple.js"
import type * as TupleState from "./TupleState.js"

/** A change as the array `[origin, seq, op, vault, resource, relation, subject, physicalMs, logical, originRegion, originNode, originRevision, committedAtMs, context]`. */
const changeFieldCount = 14

/** A frontier member: the change's fields without its tuple, `[origin, seq, op, physicalMs, logical, originRegion, originNode, originRevision, committedAtMs, context]`. */
const memberFieldCount = 10

// Objects are built with the Schema's field order, so a decoded value looks the same whichever form it was read from.
const changeOf = (fields: ReadonlyArray<unknown>, offset: number): Change.Change =>
  memberOf(fields, offset, {
    vault: fields[offset + 3] as string,
    resource: fields[offset + 4] as string,
    relation: fields[offset + 5] as string,
    subject: fields[offset + 6] as string
  }, 7)

/** The change of a frontier member (`rest` is where the fields after the tuple start: 7 with it, 3 without). */
const memberOf = (fields: ReadonlyArray<unknown>, offset: number, tuple: Tuple.Tuple, rest: number): Change.Change => ({
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

/**
 * A log entry's fields in their stored order: `[position, receivedFrom, appliedAtMs, ...change]`.
 *
 * Each stored value is one `JSON.stringify` of one array. Until December 2026 a change was
 * stringified once and both values were cut from that text and joined again
 * (`[${...},${fields}]`, `[${member}]`), and the store keeps a value until its commit is
 * durable: each change left the whole text, its slices, the joined pieces and the flat copies
 * that writing them into lmdb's buffer made alive across the fsync, long enough for the young
 * generation's collector to copy and promote them (at the origin of `bench:repl`, two fifths of
 * the bytes promoted, by a sampling heap profile of what survived minor collections). Now a
 * value and the flat copy its write makes are all that is kept. (V8 returns `JSON.stringify`'s
 * text in a few pieces too, so that copy stays; node 20, checked with `%DebugPrint`.)
 */
const logEntryFields = (entry: Store.LogEntry): ReadonlyArray<unknown> => {
  const change = entry.change
  return [
    entry.position,
    entry.receivedFrom,
    entry.appliedAtMs,
    change.id.origin,
    change.id.seq,
    change.op,
    change.tuple.vault,
    change.tuple.resource,
    change.tuple.relation,
    change.tuple.subject,
    change.timestamp.physicalMs,
    change.timestamp.logical,
    change.originRegion,
    change.originNode,
    change.originRevision,
    change.committedAtMs,
    change.context
  ]
}

/** A frontier member's fields: the change's without its tuple, which the state's key holds. */
const memberFields = (change: Change.Change): ReadonlyArray<unknown> => [
  change.id.origin,
  change.id.seq,
  change.op,
  change.timestamp.physicalMs,
  change.timestamp.logical,
  change.originRegion,
  change.originNode,
  change.originRevision,
  change.committedAtMs,
  change.context
]

/** `[position, receivedFrom, appliedAtMs, ...change]`. */
export const encodeLogEntry = (entry: Store.LogEntry): string => JSON.stringify(logEntryFields(entry))

/** `[[...member], ...]`, one array per frontier member, each without the tuple. */
export const encodeTupleState = (state: TupleState.TupleState): string => JSON.stringify(state.frontier.map(memberFields))

/** Whether stored text is in this form (a JSON array) rather than the older JSON object. */
export const isCompact = (text: string): boolean => text.charCodeAt(0) === 0x5b

const parse = (text: string): Either.Either<unknown, string> => {
  try {
    return Either.right(JSON.parse(text))
  } catch (error) {
    return Either.left(error instanceof Error ? error.message : String(error))
  }
}

/** Reads a log entry in this form; Left says why the text is not one. */
export const decodeLogEntry = (text: string): Either.Either<Store.LogEntry, string> =>
  Either.flatMap(parse(text), (value) => {
    if (!Array.isArray(value) || value.length !== 3 + changeFieldCount) return Either.left(`a stored log entry is not an array of ${3 + changeFieldCount} fields`)
    return Either.right({ position: value[0] as number, change: changeOf(value, 3), receivedFrom: value[1] as string | null, appliedAtMs: value[2] as number })
  })

/**
 * Reads a tuple state in this form, stored under `tuple`'s key; Left says why the text is not
 * one. Members with the tuple (as written before December 2026) keep their own.
 */
export const decodeTupleState = (text: string, tuple: Tuple.Tuple): Either.Either<TupleState.TupleState, string> =>
  Either.flatMap(parse(text), (value) => {
    if (!Array.isArray(value)) return Either.left("a stored tuple state is not an array")
    const frontier: Array<Change.Change> = []
    // One object for every member: each is a change of this tuple, and decoded values are never changed.
    const own: Tuple.Tuple = { vault: tuple.vault, resource: tuple.resource, relation: tuple.relation, subject: tuple.subject }
    for (const member of value) {
      if (Array.isArray(member) && member.length === memberFieldCount) frontier.push(memberOf(member, 0, own, 3))
      else if (Array.isArray(member) && member.length === changeFieldCount) frontier.push(changeOf(member, 0))
      else return Either.left(`a stored frontier member is not an array of ${memberFieldCount} fields`)
    }
    return Either.right({ frontier })
  })
