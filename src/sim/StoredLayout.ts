/**
 * The judge's own reader of the Store's stored values, decoded from the layout
 * `replication/Store.ts` and `replication/StoredForm.ts` document, not through the Store or its
 * codecs: the judge does not share the code it judges. The chaos harness reads a real node's
 * lmdb disk with it (`chaos/StoredState.ts`), and the simulator its disks when a run keeps them
 * as the byte-oriented backends do (`wire: bytes`, see `Codec.ts`).
 *
 * Values are UTF-8 JSON. A log entry is `[position, from, applied, origin, seq, op, vault,
 * resource, relation, subject, physicalMs, logical, source, revision, committed, context]` and a
 * tuple state `[[...member], ...]`, a member being `[origin, seq, op, physicalMs, logical, source,
 * revision, committed, context]`: the tuple is the one the key names. `op` is 1 (insert) or 0
 * (delete); `committed` is the commit time less `physicalMs`, `revision` the origin revision less
 * 1000 times the commit time, `applied` the apply time less the commit time, each either that
 * integer or `[the value itself]`; `source` is the length of the origin region's id, which
 * `origin` starts with, followed by `/`, the node's id (up to the next `/`) and `/`, or
 * `[region, node]`; `from` is 0 for "received from the origin region", else the region received
 * from (or null). `origin` is the origin key, or (since December 6, 2026) a positive integer: the
 * number the store's dictionary gives that key, a key `k/<origin key>` whose value is the number's
 * text. Stores written before December 5, 2026 hold the earlier compact layout: a log
 * entry `[position, receivedFrom, appliedAtMs, ...change]`, a change being `[origin, seq, op,
 * vault, resource, relation, subject, physicalMs, logical, originRegion, originNode,
 * originRevision, committedAtMs, context]` with `op` as text, a member the change without its
 * tuple (10 fields); members written before December 2026 are whole changes (14 fields), and
 * stores written before the compact form hold the same values as JSON objects with the fields'
 * names; a member that names its own tuple must name the key's. Counters are the integer's text.
 * Keys are each UTF-16 code unit in its UTF-8 form (KvEncoding's CESU-8).
 */
import type * as Change from "../replication/Change.js"
import type * as Store from "../replication/Store.js"
import * as Tuple from "../replication/Tuple.js"

/** A value the judge cannot read as the documented layout says; the message says where and why. */
class Unreadable extends Error {}

/** A stored value that is not the documented layout, and why (the message names where it is). */
export interface UnreadableValue {
  readonly key: string
  readonly why: string
}

/**
 * `read()`, or undefined with the value noted in `refused` where this reader refuses it: a
 * damaged disk is the run's finding (`store_integrity`), not the judge's own failure.
 */
export const readable = <A>(key: string, refused: Array<UnreadableValue>, read: () => A): A | undefined => {
  try {
    return read()
  } catch (error) {
    if (!(error instanceof Unreadable)) throw error
    refused.push({ key, why: error.message })
    return undefined
  }
}

const changeFieldCount = 14
const memberFieldCount = 10
const deltaEntryFieldCount = 16
const deltaMemberFieldCount = 9

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null && !Array.isArray(value)

const text = (value: unknown, where: string): string => {
  if (typeof value !== "string") throw new Unreadable(`${where} is not text`)
  return value
}

const whole = (value: unknown, where: string): number => {
  if (typeof value !== "number" || !Number.isSafeInteger(value)) throw new Unreadable(`${where} is not an integer`)
  return value
}

const operation = (value: unknown, where: string): Change.Operation => {
  if (value !== "insert" && value !== "delete") throw new Unreadable(`${where} is neither insert nor delete`)
  return value
}

const context = (value: unknown, where: string): Record<string, number> => {
  if (!isRecord(value)) throw new Unreadable(`${where} is not a version vector`)
  for (const [key, seq] of Object.entries(value)) whole(seq, `${where}.${key}`)
  return value as Record<string, number>
}

/** A change from its compact array, starting at `offset`. */
const changeFromArray = (fields: ReadonlyArray<unknown>, offset: number, where: string): Change.Change => ({
  id: { origin: text(fields[offset], `${where} origin`), seq: whole(fields[offset + 1], `${where} seq`) },
  op: operation(fields[offset + 2], `${where} op`),
  tuple: {
    vault: text(fields[offset + 3], `${where} vault`),
    resource: text(fields[offset + 4], `${where} resource`),
    relation: text(fields[offset + 5], `${where} relation`),
    subject: text(fields[offset + 6], `${where} subject`)
  },
  timestamp: { physicalMs: whole(fields[offset + 7], `${where} physicalMs`), logical: whole(fields[offset + 8], `${where} logical`) },
  originRegion: text(fields[offset + 9], `${where} originRegion`),
  originNode: text(fields[offset + 10], `${where} originNode`),
  originRevision: whole(fields[offset + 11], `${where} originRevision`),
  committedAtMs: whole(fields[offset + 12], `${where} committedAtMs`),
  context: context(fields[offset + 13], `${where} context`)
})

/** A frontier member without its tuple (the key's), from its compact array. */
const memberFromArray = (fields: ReadonlyArray<unknown>, tuple: Tuple.Tuple, where: string): Change.Change =>
  changeFromArray([fields[0], fields[1], fields[2], tuple.vault, tuple.resource, tuple.relation, tuple.subject, ...fields.slice(3)], 0, where)

/** The store's dictionary: each number an origin field may hold, and the origin key it stands for. */
export type OriginNames = ReadonlyMap<number, string>

const noNames: OriginNames = new Map()

/** Adds the dictionary's key `key` (its text, `k/<origin key>`) holding `stored` to `names`. */
export const addOriginName = (names: Map<number, string>, key: string, stored: Stored, where: string): void => {
  if (!key.startsWith("k/") || key.length === 2) throw new Unreadable(`${where} is not a dictionary key`)
  const id = whole(parse(stored, where), where)
  const known = names.get(id)
  if (id < 1 || (known !== undefined && known !== key.slice(2))) throw new Unreadable(`${where}: ${id} is not a number the dictionary may give it`)
  names.set(id, key.slice(2))
}

/** An origin field: the key as text, or the number the dictionary gives it. */
const originField = (value: unknown, names: OriginNames, where: string): string => {
  if (typeof value === "string") return value
  const named = names.get(whole(value, `${where} origin`))
  if (named === undefined) throw new Unreadable(`${where} origin is number ${String(value)}, which no k/ key holds`)
  return named
}

/** A field written as what it adds to `base`, or as `[value]`. */
const added = (value: unknown, base: number, where: string): number => {
  if (Array.isArray(value) && value.length === 1) return whole(value[0], where)
  const sum = base + whole(value, where)
  if (!Number.isSafeInteger(sum)) throw new Unreadable(`${where} adds up to no integer`)
  return sum
}

/**
 * A change in the delta layout: `head` is `[origin, seq, op]`, `tail` is `[physicalMs, logical,
 * source, revision, committed, context]`. The region and node are rebuilt from the origin key
 * as the layout spells them: region, `/`, node, `/`.
 */
const changeFromDelta = (head: ReadonlyArray<unknown>, tuple: Tuple.Tuple, tail: ReadonlyArray<unknown>, names: OriginNames, where: string): Change.Change => {
  const origin = originField(head[0], names, where)
  const op = head[2] === 1 ? "insert" : head[2] === 0 ? "delete" : undefined
  if (op === undefined) throw new Unreadable(`${where} op is neither 1 nor 0`)
  const physicalMs = whole(tail[0], `${where} physicalMs`)
  const committedAtMs = added(tail[4], physicalMs, `${where} committed`)
  const source = tail[2]
  let region: string
  let node: string
  if (Array.isArray(source)) {
    if (source.length !== 2) throw new Unreadable(`${where} source is not [region, node]`)
    region = text(source[0], `${where} source region`)
    node = text(source[1], `${where} source node`)
  } else {
    const length = whole(source, `${where} source`)
    const parts = origin.slice(length + 1).split("/")
    if (origin[length] !== "/" || parts.length < 2) throw new Unreadable(`${where} origin '${origin}' does not spell a region of ${length} characters and a node`)
    region = origin.slice(0, length)
    node = parts[0]!
  }
  return {
    id: { origin, seq: whole(head[1], `${where} seq`) },
    op,
    tuple,
    timestamp: { physicalMs, logical: whole(tail[1], `${where} logical`) },
    originRegion: region,
    originNode: node,
    originRevision: added(tail[3], committedAtMs * 1000, `${where} revision`),
    committedAtMs,
    context: context(tail[5], `${where} context`)
  }
}

/** A change in the older object form. */
const changeFromObject = (value: unknown, where: string): Change.Change => {
  if (!isRecord(value) || !isRecord(value["id"]) || !isRecord(value["tuple"]) || !isRecord(value["timestamp"])) throw new Unreadable(`${where} is not a change`)
  const { id, tuple, timestamp } = value
  return changeFromArray(
    [id["origin"], id["seq"], value["op"], tuple["vault"], tuple["resource"], tuple["relation"], tuple["subject"], timestamp["physicalMs"], timestamp["logical"], value["originRegion"], value["originNode"], value["originRevision"], value["committedAtMs"], value["context"]],
    0,
    where
  )
}

/** A stored value's bytes (lmdb) or text (the simulator's text disks). */
type Stored = Uint8Array | string

const parse = (stored: Stored, where: string): unknown => {
  try {
    return JSON.parse(typeof stored === "string" ? stored : Buffer.from(stored).toString("utf8"))
  } catch (error) {
    throw new Unreadable(`${where} is not JSON: ${error instanceof Error ? error.message : String(error)}`)
  }
}

/** A stored log entry, its origin numbers read through `names`. */
export const logEntry = (stored: Stored, where: string, names: OriginNames = noNames): Store.LogEntry => {
  const value = parse(stored, where)
  if (Array.isArray(value) && value.length === deltaEntryFieldCount) {
    const tuple = { vault: text(value[6], `${where} vault`), resource: text(value[7], `${where} resource`), relation: text(value[8], `${where} relation`), subject: text(value[9], `${where} subject`) }
    const change = changeFromDelta(value.slice(3, 6), tuple, value.slice(10), names, where)
    const receivedFrom = value[1] === 0 ? change.originRegion : value[1] === null ? null : text(value[1], `${where} from`)
    return { position: whole(value[0], `${where} position`), change, receivedFrom, appliedAtMs: added(value[2], change.committedAtMs, `${where} applied`) }
  }
  if (Array.isArray(value)) {
    if (value.length !== 3 + changeFieldCount) throw new Unreadable(`${where} has ${value.length} fields, not ${deltaEntryFieldCount} (or ${3 + changeFieldCount})`)
    const receivedFrom = value[1] === null ? null : text(value[1], `${where} receivedFrom`)
    return { position: whole(value[0], `${where} position`), change: changeFromArray(value, 3, where), receivedFrom, appliedAtMs: whole(value[2], `${where} appliedAtMs`) }
  }
  if (!isRecord(value)) throw new Unreadable(`${where} is neither an array nor an object`)
  const receivedFrom = value["receivedFrom"] === null ? null : text(value["receivedFrom"], `${where} receivedFrom`)
  return { position: whole(value["position"], `${where} position`), change: changeFromObject(value["change"], where), receivedFrom, appliedAtMs: whole(value["appliedAtMs"], `${where} appliedAtMs`) }
}

/**
 * A key's text from its bytes: each UTF-16 code unit of the key in its UTF-8 form, one to three
 * bytes (KvEncoding's documented CESU-8, which plain UTF-8 decoding gets wrong for characters
 * above U+FFFF).
 */
export const keyText = (bytes: Uint8Array, where: string): string => {
  let text = ""
  for (let index = 0; index < bytes.length; ) {
    const first = bytes[index]!
    const width = first < 0x80 ? 1 : (first & 0xe0) === 0xc0 ? 2 : (first & 0xf0) === 0xe0 ? 3 : 0
    if (width === 0 || index + width > bytes.length) throw new Unreadable(`${where}: a key's byte ${index} starts no code unit`)
    const unit =
      width === 1 ? first : width === 2 ? ((first & 0x1f) << 6) | (bytes[index + 1]! & 0x3f) : ((first & 0x0f) << 12) | ((bytes[index + 1]! & 0x3f) << 6) | (bytes[index + 2]! & 0x3f)
    text += String.fromCharCode(unit)
    index += width
  }
  return text
}

/** The tuple a tuple state's key names: `t/` and the four parts joined by NUL. */
export const tupleOfKey = (key: string, where: string): Tuple.Tuple => {
  const parts = key.startsWith("t/") ? key.slice(2).split("\u0000") : []
  if (parts.length !== 4 || parts.some((part) => part.length === 0)) throw new Unreadable(`${where} is not a tuple's key`)
  return { vault: parts[0]!, resource: parts[1]!, relation: parts[2]!, subject: parts[3]! }
}

/** A stored tuple state's frontier, stored under the key of `tuple`, its origin numbers read through `names`. */
export const frontier = (stored: Stored, where: string, tuple: Tuple.Tuple, names: OriginNames = noNames): ReadonlyArray<Change.Change> => {
  const value = parse(stored, where)
  const members = Array.isArray(value) ? value : isRecord(value) && Array.isArray(value["frontier"]) ? value["frontier"] : undefined
  if (members === undefined) throw new Unreadable(`${where} is not a tuple state`)
  return members.map((member: unknown, index) => {
    const at = `${where} member ${index}`
    if (Array.isArray(member) && member.length === deltaMemberFieldCount) return changeFromDelta(member.slice(0, 3), tuple, member.slice(3), names, at)
    if (Array.isArray(member) && member.length === memberFieldCount) return memberFromArray(member, tuple, at)
    if (Array.isArray(member) && member.length !== changeFieldCount) throw new Unreadable(`${at} has ${member.length} fields, not ${deltaMemberFieldCount} (or ${memberFieldCount} or ${changeFieldCount})`)
    const change = Array.isArray(member) ? changeFromArray(member, 0, at) : changeFromObject(member, at)
    if (Tuple.key(change.tuple) !== Tuple.key(tuple)) throw new Unreadable(`${at} is a change of ${Tuple.format(change.tuple)}, not of the key's tuple`)
    return change
  })
}

/** A stored counter (the log's recorded end). */
export const counter = (stored: Stored, where: string): number => whole(parse(stored, where), where)
