/**
 * The bulk messages written without the generated encoders: a batch in its `Request` envelope,
 * a CatchUp page in its `Response` envelope, and Watch events of changes (`messages.proto`), from
 * our own objects and through `ProtoWriter`. The bytes are the generated encoders' byte for byte
 * (fields in number order, proto3 defaults left out, a map's entries in the order the generated
 * code takes them): `test/replication/BatchEncoder.test.ts` checks that on arbitrary messages.
 * A value the writer does not take (`ProtoWriter.Unwritable`) sends the caller to the generated
 * encoders, which are the judge of it.
 */
import type * as Change from "./Change.js"
import type * as Message from "./Message.js"
import { ProtoWriter } from "./ProtoWriter.js"
import { sortedRecord } from "./SortedRecord.js"
import type * as Store from "./Store.js"

const varint = 0
const delimited = 2

/** Length bytes reserved for a message: 1 below 128 bytes, 2 below 16 KiB, 4 below 256 MiB. */
const small = 1
const medium = 2
const large = 4

const stringField = (writer: ProtoWriter, field: number, value: string): void => {
  if (value !== "") writer.tag(field, delimited).string(value)
}

const varintField = (writer: ProtoWriter, field: number, value: number): void => {
  if (value !== 0) writer.tag(field, varint).varint(value)
}

const writeChange = (writer: ProtoWriter, change: Change.Change): void => {
  const id = writer.tag(1, delimited).fork(small)
  stringField(writer, 1, change.id.origin)
  varintField(writer, 2, change.id.seq)
  writer.join(id, small)
  varintField(writer, 2, change.op === "insert" ? 1 : 2)
  const tuple = writer.tag(3, delimited).fork(small)
  stringField(writer, 1, change.tuple.vault)
  stringField(writer, 2, change.tuple.resource)
  stringField(writer, 3, change.tuple.relation)
  stringField(writer, 4, change.tuple.subject)
  writer.join(tuple, small)
  const timestamp = writer.tag(4, delimited).fork(small)
  varintField(writer, 1, change.timestamp.physicalMs)
  varintField(writer, 2, change.timestamp.logical)
  writer.join(timestamp, small)
  stringField(writer, 5, change.originRegion)
  stringField(writer, 6, change.originNode)
  varintField(writer, 7, change.originRevision)
  varintField(writer, 8, change.committedAtMs)
  // The map's entries in the generated encoder's order: `Object.entries` of the sorted record,
  // which lists integer-like keys first, in numeric order.
  const context = sortedRecord(change.context)
  for (const key of Object.keys(context)) {
    const entry = writer.tag(9, delimited).fork(small)
    stringField(writer, 1, key)
    varintField(writer, 2, context[key]!)
    writer.join(entry, small)
  }
}

/** A change as a nested message in field `field`. */
const changeField = (writer: ProtoWriter, field: number, change: Change.Change): void => {
  const start = writer.tag(field, delimited).fork(medium)
  writeChange(writer, change)
  writer.join(start, medium)
}

/** A log entry as a nested message in field `field`. */
const logEntryField = (writer: ProtoWriter, field: number, entry: Store.LogEntry): void => {
  const start = writer.tag(field, delimited).fork(medium)
  varintField(writer, 1, entry.position)
  changeField(writer, 2, entry.change)
  // `optional`: present whenever set, even empty.
  if (entry.receivedFrom !== null) writer.tag(3, delimited).string(entry.receivedFrom)
  varintField(writer, 4, entry.appliedAtMs)
  writer.join(start, medium)
}

/** A `Request` holding the batch. */
export const batchRequest = (batch: Message.ReplicateBatch): Uint8Array => {
  const writer = new ProtoWriter()
  const body = writer.tag(1, delimited).fork(large)
  stringField(writer, 1, batch.batchId)
  stringField(writer, 2, batch.fromRegion)
  stringField(writer, 3, batch.fromNode)
  for (const change of batch.changes) changeField(writer, 4, change)
  writer.join(body, large)
  return writer.finish()
}

/** The fields of a `CatchUpResponse`. */
const writePage = (writer: ProtoWriter, page: Message.LogPage): void => {
  for (const entry of page.entries) logEntryField(writer, 1, entry)
  varintField(writer, 2, page.endPosition)
  varintField(writer, 3, page.logEnd)
}

/** A `Response` holding the CatchUp page (the `Replicate` method's answer). */
export const pageResponse = (page: Message.LogPage): Uint8Array => {
  const writer = new ProtoWriter()
  const body = writer.tag(4, delimited).fork(large)
  writePage(writer, page)
  writer.join(body, large)
  return writer.finish()
}

/** A `CatchUpResponse` on its own (the `CatchUp` method's answer). */
export const page = (page: Message.LogPage): Uint8Array => {
  const writer = new ProtoWriter()
  writePage(writer, page)
  return writer.finish()
}

/** A `WatchEvent` of one change (`change`), for a watcher that takes them one at a time. */
export const watchChange = (entry: Store.LogEntry): Uint8Array => {
  const writer = new ProtoWriter()
  logEntryField(writer, 1, entry)
  return writer.finish()
}

/** A `WatchEvent` of several changes (`changes`). */
export const watchChanges = (entries: ReadonlyArray<Store.LogEntry>): Uint8Array => {
  const writer = new ProtoWriter()
  const body = writer.tag(3, delimited).fork(large)
  for (const entry of entries) logEntryField(writer, 1, entry)
  writer.join(body, large)
  return writer.finish()
}
