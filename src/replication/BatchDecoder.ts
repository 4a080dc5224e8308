/**
 * Decodes a `Request` envelope holding a `ReplicateBatch` straight into the plain batch the
 * wire codec hands to its guard, without the generated decoders' objects in between.
 *
 * The generated path builds a `Proto.Change` (and its Dot, Tuple, Timestamp and context) for
 * every change, reads each uint64 as a BigInt, turns it into a string and that into a number,
 * and keeps a recursion counter on the reader in a try/finally per message; `WireCodec` then
 * copies every change into the protocol's shape. Here each change is read into locals and built
 * once. Everything else stays the generated decoders' job: this returns undefined for an
 * envelope that holds anything but batches, and the caller decodes it the usual way.
 *
 * The result must be exactly what the generated path gives for the same bytes, whatever the
 * bytes: the same loop (fields in any order, the last occurrence winning, a wrong wire type or
 * an unknown field skipped, a zero tag or an end-group tag ending the message where it stands,
 * a nested message read from wherever its length says), the same defaults, the same errors.
 * `test/replication/BatchDecoder.test.ts` checks that against the generated decoders on valid
 * batches and on damaged bytes. The result is unvalidated, like the generated one: the caller
 * still runs `Guards.isReplicateBatch` and the Schema.
 */
import * as ProtoReader from "./ProtoReader.js"

type Reader = ProtoReader.ProtoReader

/** Wire tags (field number << 3 | wire type) of the fields read here. */
const varint = (field: number) => (field << 3) | 0
const delimited = (field: number) => (field << 3) | 2

/** Whether a tag the message does not know ends it (as the generated loop breaks) rather than being skipped. */
const ends = (tag: number): boolean => (tag & 7) === 4 || tag === 0

const nestedEnd = (reader: Reader): number => {
  const length = reader.uint32()
  return reader.pos + length
}

const decodeDot = (reader: Reader, end: number) => {
  let origin = ""
  let seq = 0
  while (reader.pos < end) {
    const tag = reader.uint32()
    if (tag === delimited(1)) origin = reader.string()
    else if (tag === varint(2)) seq = reader.uint64Number()
    else if (ends(tag)) break
    else reader.skip(tag & 7)
  }
  return { origin, seq }
}

const decodeTuple = (reader: Reader, end: number) => {
  let vault = ""
  let resource = ""
  let relation = ""
  let subject = ""
  while (reader.pos < end) {
    const tag = reader.uint32()
    if (tag === delimited(1)) vault = reader.string()
    else if (tag === delimited(2)) resource = reader.string()
    else if (tag === delimited(3)) relation = reader.string()
    else if (tag === delimited(4)) subject = reader.string()
    else if (ends(tag)) break
    else reader.skip(tag & 7)
  }
  return { vault, resource, relation, subject }
}

const decodeTimestamp = (reader: Reader, end: number) => {
  let physicalMs = 0
  let logical = 0
  while (reader.pos < end) {
    const tag = reader.uint32()
    if (tag === varint(1)) physicalMs = reader.uint64Number()
    else if (tag === varint(2)) logical = reader.uint64Number()
    else if (ends(tag)) break
    else reader.skip(tag & 7)
  }
  return { physicalMs, logical }
}

/** One entry of a change's context map, set on `context` as the generated decoder sets it. */
const decodeContextEntry = (reader: Reader, end: number, context: Record<string, number>): void => {
  let key = ""
  let value = 0
  while (reader.pos < end) {
    const tag = reader.uint32()
    if (tag === delimited(1)) key = reader.string()
    else if (tag === varint(2)) value = reader.uint64Number()
    else if (ends(tag)) break
    else reader.skip(tag & 7)
  }
  context[key] = value
}

/** `Operation` as `WireCodec.operationFromProto` maps it. */
const operation = (op: number): string | number => (op === 1 ? "insert" : op === 2 ? "delete" : op)

const decodeChange = (reader: Reader, end: number) => {
  let id: { origin: string; seq: number } | undefined
  let op = 0
  let tuple: ReturnType<typeof decodeTuple> | undefined
  let timestamp: ReturnType<typeof decodeTimestamp> | undefined
  let originRegion = ""
  let originNode = ""
  let originRevision = 0
  let committedAtMs = 0
  const context: Record<string, number> = {}
  while (reader.pos < end) {
    const tag = reader.uint32()
    if (tag === delimited(1)) id = decodeDot(reader, nestedEnd(reader))
    else if (tag === varint(2)) op = reader.int32()
    else if (tag === delimited(3)) tuple = decodeTuple(reader, nestedEnd(reader))
    else if (tag === delimited(4)) timestamp = decodeTimestamp(reader, nestedEnd(reader))
    else if (tag === delimited(5)) originRegion = reader.string()
    else if (tag === delimited(6)) originNode = reader.string()
    else if (tag === varint(7)) originRevision = reader.uint64Number()
    else if (tag === varint(8)) committedAtMs = reader.uint64Number()
    else if (tag === delimited(9)) decodeContextEntry(reader, nestedEnd(reader), context)
    else if (ends(tag)) break
    else reader.skip(tag & 7)
  }
  return { id, op: operation(op), tuple, timestamp, originRegion, originNode, originRevision, committedAtMs, context }
}

const decodeBatch = (reader: Reader, end: number) => {
  let batchId = ""
  let fromRegion = ""
  let fromNode = ""
  const changes: Array<ReturnType<typeof decodeChange>> = []
  while (reader.pos < end) {
    const tag = reader.uint32()
    if (tag === delimited(1)) batchId = reader.string()
    else if (tag === delimited(2)) fromRegion = reader.string()
    else if (tag === delimited(3)) fromNode = reader.string()
    else if (tag === delimited(4)) changes.push(decodeChange(reader, nestedEnd(reader)))
    else if (ends(tag)) break
    else reader.skip(tag & 7)
  }
  return { _tag: "ReplicateBatch" as const, batchId, fromRegion, fromNode, changes }
}

/** Request's oneof `body`: the fields that are not a batch send the caller the generated way. */
const otherBodies = new Set([delimited(2), delimited(3)])

/**
 * The batch in a `Request` envelope, in the shape `WireCodec` guards; undefined when the envelope
 * holds no batch or holds another body too (decode those the generated way). Throws on bytes that
 * are not protobuf, as the generated decoders do.
 */
export const decodeBatchRequest = (bytes: Uint8Array): ReturnType<typeof decodeBatch> | undefined => {
  const reader = new ProtoReader.ProtoReader(bytes)
  let batch: ReturnType<typeof decodeBatch> | undefined
  while (reader.pos < reader.len) {
    const tag = reader.uint32()
    if (tag === delimited(1)) batch = decodeBatch(reader, nestedEnd(reader))
    else if (otherBodies.has(tag)) return undefined
    else if (ends(tag)) break
    else reader.skip(tag & 7)
  }
  return batch
}
