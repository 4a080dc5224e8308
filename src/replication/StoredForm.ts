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

/** A change's text as both forms need it: the frontier member's JSON array, and the log's fields (no brackets). */
interface ChangeTexts {
  readonly member: string
  readonly fields: string
}

/** How an encoder gets a change's texts: `changeTexts`, or one transaction's `rememberingChangeTexts`. */
type TextsOf = (change: Change.Change) => ChangeTexts

// What JSON.stringify escapes in a string: quotes, backslashes, control characters and lone
// surrogates (any surrogate here, paired or not, is measured the slow way).
const escaped = /["\\\u0000-\u001f\ud800-\udfff]/

/** The length of a string's JSON text. */
const quotedLength = (value: string): number => (escaped.test(value) ? JSON.stringify(value).length : value.length + 2)

/**
 * The change's texts from one `JSON.stringify` of all its fields: the member is that text with
 * the tuple's four fields cut out, found by their lengths. Three stringify calls (before the
 * tuple, the tuple, after it) cost a third more than one; joined back together they made strings
 * of many pieces that lmdb's write flattens again, and `bench:store` spent a quarter more CPU per
 * change that way; two calls (the member and the whole) cost the apply path a tenth more. This
 * way still costs about 5-10% more CPU per change in `bench:store` than storing the whole change
 * in the frontier did, for 12% less disk (December 2026).
 */
const changeTexts: TextsOf = (change) => {
  const whole = JSON.stringify([
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
  ])
  // `["origin",seq,"op"` ends where the tuple's comma starts; the tuple's four fields and their commas follow.
  const headEnd = 1 + quotedLength(change.id.origin) + 1 + JSON.stringify(change.id.seq).length + 1 + quotedLength(change.op)
  const tupleLength =
    4 + quotedLength(change.tuple.vault) + quotedLength(change.tuple.resource) + quotedLength(change.tuple.relation) + quotedLength(change.tuple.subject)
  return { member: whole.slice(0, headEnd) + whole.slice(headEnd + tupleLength), fields: whole.slice(1, -1) }
}

/**
 * A `TextsOf` that makes each change's texts once, for one transaction. A new change is
 * written twice in its transaction (its log entry and its tuple's frontier): `JSON.stringify`
 * was 6-10% of the write and apply paths' CPU (profiles of `bench:repl`, December 2026), half of
 * it for the second copy. Keyed by the change object, so a Map that lives one transaction (a few
 * hundred entries) costs less than a second stringify; a process-wide cache did not (its lookups
 * cost as much, measured earlier).
 */
export const rememberingChangeTexts = (): TextsOf => {
  const texts = new Map<Change.Change, ChangeTexts>()
  return (change) => {
    let known = texts.get(change)
    if (known === undefined) {
      known = changeTexts(change)
      texts.set(change, known)
    }
    return known
  }
}

/** `[position, receivedFrom, appliedAtMs, ...change]`. */
export const encodeLogEntry = (entry: Store.LogEntry, texts: TextsOf = changeTexts): string =>
  `[${entry.position},${entry.receivedFrom === null ? "null" : JSON.stringify(entry.receivedFrom)},${entry.appliedAtMs},${texts(entry.change).fields}]`

/** `[[...member], ...]`, one array per frontier member, each without the tuple. */
export const encodeTupleState = (state: TupleState.TupleState, texts: TextsOf = changeTexts): string =>
  state.frontier.length === 1 ? `[${texts(state.frontier[0]!).member}]` : `[${state.frontier.map((change) => texts(change).member).join(",")}]`

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
