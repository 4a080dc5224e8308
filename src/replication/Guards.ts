/**
 * Fast guards for the hot shapes that arrive from outside: a replication batch (every change
 * of it), a page of a peer's log (every entry of it: a bootstrap's bulk), a Watch stream's log
 * entries (at a client) and a client's tuple. Effect Schema's decoder was a seventh of a receiving node's CPU
 * (it builds a parse tree and Either per field); these plain checks say the same yes or no.
 *
 * They are a fast path only: a value a guard accepts is used as it is, anything else goes to
 * the Schema, which refuses it with its usual message. So a guard must never accept what the
 * Schema refuses; `test/replication/Guards.test.ts` checks that they agree on valid values and
 * on every kind of damaged one. The rules are those of the Schemas: `Tuple.ts` (parts
 * non-empty, without NUL; resource and subject `type:id`), `Change.ts`, `Timestamp.ts`,
 * `VersionVector.ts` (Dot, and a record of positive integers), `Store.LogEntry`,
 * `Message.ReplicateBatch` and `Message.LogPage`.
 */
import type * as Change from "./Change.js"
import type * as Message from "./Message.js"
import type * as Store from "./Store.js"
import type * as Tuple from "./Tuple.js"

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null && !Array.isArray(value)

const hasOwn = Object.prototype.hasOwnProperty

/** A property the value holds itself (the Schema ignores inherited ones, and so must a guard). */
const own = (value: Record<string, unknown>, key: string): unknown => (hasOwn.call(value, key) ? value[key] : undefined)

const isNonEmptyString = (value: unknown): value is string => typeof value === "string" && value.length > 0

const isPart = (value: unknown): value is string => isNonEmptyString(value) && !value.includes("\u0000")

const isObjectRef = (value: unknown): value is string => isPart(value) && value.indexOf(":") > 0

const isPositiveInteger = (value: unknown): value is number => typeof value === "number" && Number.isSafeInteger(value) && value > 0

const isWhole = (value: unknown): value is number => typeof value === "number" && Number.isSafeInteger(value) && value >= 0

/** A tuple as `Tuple.Tuple` takes it. */
export const isTuple = (value: unknown): value is Tuple.Tuple =>
  isRecord(value) && isPart(own(value, "vault")) && isObjectRef(own(value, "resource")) && isPart(own(value, "relation")) && isObjectRef(own(value, "subject"))

const isVersionVector = (value: unknown): boolean => {
  if (!isRecord(value)) return false
  for (const key of Object.keys(value)) if (!isPositiveInteger(own(value, key))) return false
  return true
}

/** A change as `Change.Change` takes it. */
export const isChange = (value: unknown): value is Change.Change => {
  if (!isRecord(value)) return false
  const id = own(value, "id")
  const timestamp = own(value, "timestamp")
  return (
    isRecord(id) &&
    isNonEmptyString(own(id, "origin")) &&
    isPositiveInteger(own(id, "seq")) &&
    (own(value, "op") === "insert" || own(value, "op") === "delete") &&
    isTuple(own(value, "tuple")) &&
    isRecord(timestamp) &&
    isWhole(own(timestamp, "physicalMs")) &&
    isWhole(own(timestamp, "logical")) &&
    isNonEmptyString(own(value, "originRegion")) &&
    isNonEmptyString(own(value, "originNode")) &&
    isPositiveInteger(own(value, "originRevision")) &&
    isWhole(own(value, "committedAtMs")) &&
    isVersionVector(own(value, "context"))
  )
}

// Indexed, not `every`: `every` skips the holes of a sparse array, which the Schema refuses.
const isChangeArray = (value: unknown): boolean => {
  if (!Array.isArray(value)) return false
  for (let index = 0; index < value.length; index++) if (!isChange(value[index])) return false
  return true
}

/** A batch as `Message.ReplicateBatch` takes it. */
export const isReplicateBatch = (value: unknown): value is Message.ReplicateBatch =>
  isRecord(value) &&
  own(value, "_tag") === "ReplicateBatch" &&
  typeof own(value, "batchId") === "string" &&
  isNonEmptyString(own(value, "fromRegion")) &&
  isNonEmptyString(own(value, "fromNode")) &&
  isChangeArray(own(value, "changes"))

/** A log entry as `Store.LogEntry` takes it (a Watch stream's entries, and each of a log page's). */
export const isLogEntry = (value: unknown): value is Store.LogEntry => {
  if (!isRecord(value)) return false
  const receivedFrom = own(value, "receivedFrom")
  return (
    typeof own(value, "position") === "number" &&
    isChange(own(value, "change")) &&
    (receivedFrom === null || typeof receivedFrom === "string") &&
    typeof own(value, "appliedAtMs") === "number"
  )
}

/** A page of a peer's log as `Message.LogPage` takes it. */
export const isLogPage = (value: unknown): value is Message.LogPage => {
  if (!isRecord(value) || own(value, "_tag") !== "LogPage" || !isWhole(own(value, "endPosition")) || !isWhole(own(value, "logEnd"))) return false
  const entries = own(value, "entries")
  if (!Array.isArray(entries)) return false
  // Indexed, as for changes: the Schema refuses a sparse array.
  for (let index = 0; index < entries.length; index++) if (!isLogEntry(entries[index])) return false
  return true
}
