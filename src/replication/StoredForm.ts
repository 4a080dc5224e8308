/**
 * The compact stored form of log entries and tuple states: JSON arrays of the fields in a
 * fixed order, written and read without Schema. The store holds only what this node wrote
 * itself (changes from elsewhere were validated when they arrived, by the wire codec), so
 * validating every field on every read and write bought nothing and cost a fifth of the CPU of
 * the write and apply paths. Arrays instead of objects also halve the bytes (no field names).
 *
 * Reading checks the shape (an array of the right length) and nothing more. Stores written
 * before this form hold JSON objects; `Store` still reads those through its Schemas, so an
 * existing data directory keeps working (`isCompact` tells the two apart).
 */
import { Either } from "effect"
import type * as Change from "./Change.js"
import type * as Store from "./Store.js"
import type * as TupleState from "./TupleState.js"

/** A change as the array `[origin, seq, op, vault, resource, relation, subject, physicalMs, logical, originRegion, originNode, originRevision, committedAtMs, context]`. */
type ChangeFields = readonly [
  string, number, Change.Operation, string, string, string, string, number, number, string, string, number, number, Record<string, number>
]

const changeFieldCount = 14

const changeFields = (change: Change.Change): ChangeFields => [
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

// Objects are built with the Schema's field order, so a decoded value looks the same whichever form it was read from.
const changeOf = (fields: ReadonlyArray<unknown>, offset: number): Change.Change => ({
  id: { origin: fields[offset] as string, seq: fields[offset + 1] as number },
  op: fields[offset + 2] as Change.Operation,
  tuple: {
    vault: fields[offset + 3] as string,
    resource: fields[offset + 4] as string,
    relation: fields[offset + 5] as string,
    subject: fields[offset + 6] as string
  },
  timestamp: { physicalMs: fields[offset + 7] as number, logical: fields[offset + 8] as number },
  originRegion: fields[offset + 9] as string,
  originNode: fields[offset + 10] as string,
  originRevision: fields[offset + 11] as number,
  committedAtMs: fields[offset + 12] as number,
  context: fields[offset + 13] as Record<string, number>
})

/** How an encoder turns a change into its JSON array: `changeText`, or one transaction's `rememberingChangeText`. */
type ChangeText = (change: Change.Change) => string

/** The change's fields as a JSON array. */
const changeText: ChangeText = (change) => JSON.stringify(changeFields(change))

/**
 * A `changeText` that makes each change's text once, for one transaction. A new change is
 * written twice in its transaction (its log entry and its tuple's frontier), each time as the
 * same JSON array: `JSON.stringify` was 6-10% of the write and apply paths' CPU (profiles of
 * `bench:repl`, December 2026), half of it for the second copy. Keyed by the change object, so a
 * Map that lives one transaction (a few hundred entries) costs less than a second stringify; a
 * process-wide cache did not (its lookups cost as much, measured earlier).
 */
export const rememberingChangeText = (): ChangeText => {
  const texts = new Map<Change.Change, string>()
  return (change) => {
    let text = texts.get(change)
    if (text === undefined) {
      text = changeText(change)
      texts.set(change, text)
    }
    return text
  }
}

/** `[position, receivedFrom, appliedAtMs, ...change]`. */
export const encodeLogEntry = (entry: Store.LogEntry, text: ChangeText = changeText): string =>
  `[${entry.position},${entry.receivedFrom === null ? "null" : JSON.stringify(entry.receivedFrom)},${entry.appliedAtMs},${text(entry.change).slice(1)}`

/** `[[...change], ...]`, one array per frontier member. */
export const encodeTupleState = (state: TupleState.TupleState, text: ChangeText = changeText): string =>
  state.frontier.length === 1 ? `[${text(state.frontier[0]!)}]` : `[${state.frontier.map(text).join(",")}]`

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

/** Reads a tuple state in this form; Left says why the text is not one. */
export const decodeTupleState = (text: string): Either.Either<TupleState.TupleState, string> =>
  Either.flatMap(parse(text), (value) => {
    if (!Array.isArray(value)) return Either.left("a stored tuple state is not an array")
    const frontier: Array<Change.Change> = []
    for (const member of value) {
      if (!Array.isArray(member) || member.length !== changeFieldCount) return Either.left(`a stored frontier member is not an array of ${changeFieldCount} fields`)
      frontier.push(changeOf(member, 0))
    }
    return Either.right({ frontier })
  })
