/**
 * The binary wire codec of the replication protocol: `Message` values to protobuf bytes
 * (`proto/inferadb/replication/v1/messages.proto`) and back.
 *
 * Decoding is two steps, protobuf first and then the same Effect Schemas that define
 * `Message`, so bytes that are not protobuf, and protobuf whose content breaks the protocol
 * (an empty region, a sequence of 0, an unknown operation), both come back as `Left` with a
 * reason; decoding never throws. A batch, the bulk of the traffic, is read by `BatchDecoder`
 * straight into its protocol shape (the same result as the generated decoders, without their
 * objects) and checked by a fast guard before the Schema. Encoding is canonical: map entries are written in key order,
 * so one message always has one byte form. The bulk messages (batches, CatchUp pages, Watch
 * events of changes) are written by `BatchEncoder`, to the generated encoders' bytes. Every transport (gRPC in production, the in-memory
 * hub in tests) pushes messages through this module, so tests exercise the bytes production
 * sends. Pure: no I/O, no clock; it depends on the generated messages module only, never on a
 * gRPC library.
 *
 * Two limits of the wire that the schemas do not state: numbers travel as 64-bit integers, so
 * encoding a non-integer where `Message` only says `Schema.Number` (heartbeat and ack times,
 * ack counts) is a defect and throws; every producer sends whole clock milliseconds and counts.
 * Strings travel as UTF-8, so a lone UTF-16 surrogate would arrive as U+FFFD.
 */
import { Either, ParseResult, Schema } from "effect"
import * as Proto from "../proto/inferadb/replication/v1/messages.js"
import * as ProtoReader from "./ProtoReader.js"
import type * as Change from "./Change.js"
import * as BatchDecoder from "./BatchDecoder.js"
import * as BatchEncoder from "./BatchEncoder.js"
import * as Guards from "./Guards.js"
import * as Message from "./Message.js"
import * as ProtoWriter from "./ProtoWriter.js"
import { sortedRecord } from "./SortedRecord.js"
import * as Store from "./Store.js"
import * as VersionVector from "./VersionVector.js"

// ---------------------------------------------------------------------------------------------
// Requests and responses
// ---------------------------------------------------------------------------------------------

/** Encodes a request to its protobuf bytes (a `Request` envelope). */
export const encodeRequest = (request: Message.Request): Uint8Array =>
  request._tag === "ReplicateBatch"
    ? fastOr(() => BatchEncoder.batchRequest(request), () => Proto.Request.encode({ body: requestBody(request) }).finish())
    : Proto.Request.encode({ body: requestBody(request) }).finish()

/**
 * `BatchEncoder`'s bytes, or the generated encoder's when the message holds a value the
 * writer does not take (`ProtoWriter.Unwritable`): the generated code says what becomes of it.
 */
const fastOr = (fast: () => Uint8Array, generated: () => Uint8Array): Uint8Array => {
  try {
    return fast()
  } catch (error) {
    if (error instanceof ProtoWriter.Unwritable) return generated()
    throw error
  }
}

/** Decodes protobuf bytes into a request, or says why they are not a valid one. */
export const decodeRequest = (bytes: Uint8Array): Either.Either<Message.Request, string> => {
  // Batches, the bulk of the traffic, are read without the generated objects (`BatchDecoder`);
  // on anything else, or bytes it cannot read, the generated decoders run and say why.
  const batch = fastBatch(bytes)
  if (batch !== undefined) return Guards.isReplicateBatch(batch) ? Either.right(batch) : validate(Message.Request, batch)
  return Either.flatMap(parse("Request", () => Proto.Request.decode(ProtoReader.over(bytes))), (envelope) => {
    const body = envelope.body
    if (body === undefined) return Either.left("Request has no body")
    // A valid batch, the bulk of the traffic, passes the fast guard; anything else meets the Schema.
    const request = requestFromProto(body)
    return Guards.isReplicateBatch(request) ? Either.right(request) : validate(Message.Request, request)
  })
}

const fastBatch = (bytes: Uint8Array): unknown => {
  try {
    return BatchDecoder.decodeBatchRequest(bytes)
  } catch {
    return undefined
  }
}

/**
 * Encodes a response to its protobuf bytes (a `Response` envelope). When it acknowledges the
 * batch given as `answering`, the ack carries that batch's per-origin high-water marks.
 */
export const encodeResponse = (response: Message.Response, answering?: Message.Request): Uint8Array =>
  response._tag === "LogPage"
    ? fastOr(() => BatchEncoder.pageResponse(response), () => Proto.Response.encode({ body: responseBody(response, answering) }).finish())
    : Proto.Response.encode({ body: responseBody(response, answering) }).finish()

/** A CatchUp page as the `CatchUp` method answers it: a `CatchUpResponse`, without the `Response` envelope. */
export const encodeLogPage = (page: Message.LogPage): Uint8Array =>
  fastOr(() => BatchEncoder.page(page), () => Proto.CatchUpResponse.encode({ entries: page.entries.map(logEntryToProto), endPosition: page.endPosition, logEnd: page.logEnd }).finish())

/** A Watch event of one change. */
export const encodeWatchChange = (entry: Store.LogEntry): Uint8Array =>
  fastOr(() => BatchEncoder.watchChange(entry), () => Proto.WatchEvent.encode({ event: { $case: "change", value: logEntryToProto(entry) } }).finish())

/** A Watch event of several changes, in log order. */
export const encodeWatchChanges = (entries: ReadonlyArray<Store.LogEntry>): Uint8Array =>
  fastOr(() => BatchEncoder.watchChanges(entries), () => Proto.WatchEvent.encode({ event: { $case: "changes", value: { entries: entries.map(logEntryToProto) } } }).finish())

/** A Watch event saying the watcher fell behind and resumes from `resumeFrom`. */
export const encodeWatchLagged = (resumeFrom: number): Uint8Array => Proto.WatchEvent.encode({ event: { $case: "lagged", value: { resumeFrom } } }).finish()

/** Decodes protobuf bytes into a response, or says why they are not a valid one. */
export const decodeResponse = (bytes: Uint8Array): Either.Either<Message.Response, string> =>
  Either.map(decodeResponseWithHighWater(bytes), (decoded) => decoded.response)

/** A decoded response and, for a `BatchAck`, the high-water marks it carried (else empty). */
export interface DecodedResponse {
  readonly response: Message.Response
  readonly highWater: VersionVector.VersionVector
}

/** Like `decodeResponse`, keeping the ack's per-origin high-water marks. */
export const decodeResponseWithHighWater = (bytes: Uint8Array): Either.Either<DecodedResponse, string> =>
  Either.flatMap(parse("Response", () => Proto.Response.decode(ProtoReader.over(bytes))), (envelope) => {
    const body = envelope.body
    if (body === undefined) return Either.left("Response has no body")
    // A log page (a bootstrap's bulk: validating its entries with the Schema was about a seventh
    // of a bootstrapping node's CPU) passes the fast guard; anything else meets the Schema.
    const raw = responseFromProto(body)
    const response: Either.Either<Message.Response, string> = Guards.isLogPage(raw) ? Either.right(raw) : validate(Message.Response, raw)
    const highWater = body.$case === "batchAck" ? validate(VersionVector.VersionVector, body.value.highWater) : Either.right(VersionVector.empty)
    return Either.zipWith(response, Either.mapLeft(highWater, (reason) => `highWater: ${reason}`), (response, highWater) => ({
      response,
      highWater
    }))
  })

/**
 * Per origin region, the highest origin sequence among a batch's changes. Once the batch is
 * acknowledged all of them are durable at the receiver; this is not a contiguous watermark.
 */
export const highWater = (batch: Message.ReplicateBatch): VersionVector.VersionVector => {
  // One record filled in place: `VersionVector.add` copies the vector for every change that
  // raises it, which is every change of a batch from one origin.
  const marks: Record<string, number> = {}
  for (const { id } of batch.changes) {
    if ((marks[id.origin] ?? 0) < id.seq) marks[id.origin] = id.seq
  }
  return marks
}

// ---------------------------------------------------------------------------------------------
// Log entries (catch-up pages and watch streams share these)
// ---------------------------------------------------------------------------------------------

/** A durable log entry as its protobuf message. */
export const logEntryToProto = (entry: Store.LogEntry): Proto.LogEntry => ({
  position: entry.position,
  change: changeToProto(entry.change),
  ...(entry.receivedFrom === null ? {} : { receivedFrom: entry.receivedFrom }),
  appliedAtMs: entry.appliedAtMs
})

/**
 * A protobuf log entry validated into a durable log entry, or why it is invalid. A valid entry
 * (a Watch stream's whole traffic) passes the fast guard; anything else meets the Schema, which
 * was about a sixth of the CPU of a client reading a stream (`bench:repl`'s reading back).
 */
export const logEntryFromProto = (entry: Proto.LogEntry): Either.Either<Store.LogEntry, string> => {
  const raw = logEntryFromProtoRaw(entry)
  return Guards.isLogEntry(raw) ? Either.right(raw) : validate(Store.LogEntry, raw)
}

const logEntryFromProtoRaw = (entry: Proto.LogEntry): unknown => ({
  position: entry.position,
  change: entry.change === undefined ? undefined : changeFromProto(entry.change),
  receivedFrom: entry.receivedFrom ?? null,
  appliedAtMs: entry.appliedAtMs
})

/** A change as its protobuf message. */
export const changeToProto = (change: Change.Change): Proto.Change => ({
  id: { origin: change.id.origin, seq: change.id.seq },
  op: change.op === "insert" ? Proto.Operation.OPERATION_INSERT : Proto.Operation.OPERATION_DELETE,
  tuple: { vault: change.tuple.vault, resource: change.tuple.resource, relation: change.tuple.relation, subject: change.tuple.subject },
  timestamp: { physicalMs: change.timestamp.physicalMs, logical: change.timestamp.logical },
  originRegion: change.originRegion,
  originNode: change.originNode,
  originRevision: change.originRevision,
  committedAtMs: change.committedAtMs,
  context: sortedRecord(change.context)
})

/** The operation an enum value names, or the raw value (which validation then refuses). */
export const operationFromProto = (op: Proto.Operation): Change.Operation | number =>
  op === Proto.Operation.OPERATION_INSERT ? "insert" : op === Proto.Operation.OPERATION_DELETE ? "delete" : op

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/** Runs a generated decoder, turning its exceptions (truncated input, bad wire types, overflows) into `Left`. */
const parse = <A>(what: string, decode: () => A): Either.Either<A, string> => {
  try {
    return Either.right(decode())
  } catch (error) {
    return Either.left(`${what} is not valid protobuf: ${error instanceof Error ? error.message : String(error)}`)
  }
}

/** Validates decoded protobuf content against a protocol schema. */
const validate = <A, I>(schema: Schema.Schema<A, I>, value: unknown): Either.Either<A, string> =>
  Either.mapLeft(Schema.decodeUnknownEither(schema)(value), (error) => ParseResult.TreeFormatter.formatErrorSync(error))

const requestBody = (request: Message.Request): Proto.Request["body"] => {
  switch (request._tag) {
    case "ReplicateBatch":
      return {
        $case: "replicateBatch",
        value: { batchId: request.batchId, fromRegion: request.fromRegion, fromNode: request.fromNode, changes: request.changes.map(changeToProto) }
      }
    case "Heartbeat":
      return {
        $case: "heartbeat",
        value: { fromRegion: request.fromRegion, fromNode: request.fromNode, sentAtMs: request.sentAtMs, ...(request.leaseMs === undefined ? {} : { leaseMs: request.leaseMs }) }
      }
    case "CatchUp":
      return {
        $case: "catchUp",
        value: {
          fromRegion: request.fromRegion,
          fromNode: request.fromNode,
          afterPosition: request.afterPosition,
          limit: request.limit,
          ownRegionOrphansOnly: request.ownRegionOrphansOnly ?? false,
          knownOrigins: [...(request.knownOrigins ?? [])]
        }
      }
  }
}

const requestFromProto = (body: NonNullable<Proto.Request["body"]>): unknown => {
  switch (body.$case) {
    case "replicateBatch":
      return batchFromProto(body.value)
    case "heartbeat":
      return heartbeatFromProto(body.value)
    case "catchUp": {
      const { ownRegionOrphansOnly, knownOrigins, ...page } = body.value
      return { _tag: "CatchUp", ...page, ...(ownRegionOrphansOnly ? { ownRegionOrphansOnly, knownOrigins } : {}) }
    }
  }
}

const responseBody = (response: Message.Response, answering: Message.Request | undefined): Proto.Response["body"] => {
  switch (response._tag) {
    case "BatchAck": {
      const batch = answering?._tag === "ReplicateBatch" && answering.batchId === response.batchId ? answering : undefined
      return {
        $case: "batchAck",
        value: {
          batchId: response.batchId,
          region: response.region,
          node: response.node,
          applied: response.applied,
          ignored: response.ignored,
          appliedAtMs: response.appliedAtMs,
          highWater: batch === undefined ? {} : sortedRecord(highWater(batch))
        }
      }
    }
    case "HeartbeatAck":
      return {
        $case: "heartbeatAck",
        value: {
          region: response.region,
          node: response.node,
          atMs: response.atMs,
          epoch: response.epoch,
          ...(response.primary === undefined ? {} : { primary: response.primary }),
          grantAgesMs: sortedRecord(response.grantAgesMs),
          ...(response.leaseMs === undefined ? {} : { leaseMs: response.leaseMs }),
          grantLeasesMs: sortedRecord(response.grantLeasesMs ?? {}),
          ...(response.recovering === true ? { recovering: true } : {})
        }
      }
    case "Refused":
      return { $case: "refused", value: { reason: refusedReasonToProto[response.reason], message: response.message } }
    case "LogPage":
      return { $case: "logPage", value: { entries: response.entries.map(logEntryToProto), endPosition: response.endPosition, logEnd: response.logEnd } }
  }
}

const changeFromProto = (change: Proto.Change): unknown => ({
  id: change.id,
  op: operationFromProto(change.op),
  tuple: change.tuple,
  timestamp: change.timestamp,
  originRegion: change.originRegion,
  originNode: change.originNode,
  originRevision: change.originRevision,
  committedAtMs: change.committedAtMs,
  context: change.context
})

const batchFromProto = (batch: Proto.ReplicateBatch): unknown => ({
  _tag: "ReplicateBatch",
  batchId: batch.batchId,
  fromRegion: batch.fromRegion,
  fromNode: batch.fromNode,
  changes: batch.changes.map(changeFromProto)
})

const heartbeatFromProto = (heartbeat: Proto.Heartbeat): unknown => ({
  _tag: "Heartbeat",
  fromRegion: heartbeat.fromRegion,
  fromNode: heartbeat.fromNode,
  sentAtMs: heartbeat.sentAtMs,
  ...(heartbeat.leaseMs === undefined ? {} : { leaseMs: heartbeat.leaseMs })
})

const responseFromProto = (body: NonNullable<Proto.Response["body"]>): unknown => {
  switch (body.$case) {
    case "batchAck": {
      const { highWater: _highWater, ...ack } = body.value
      return { _tag: "BatchAck", ...ack }
    }
    case "heartbeatAck": {
      const { primary, leaseMs, grantLeasesMs, recovering, ...ack } = body.value
      return {
        _tag: "HeartbeatAck",
        ...ack,
        ...(primary === undefined ? {} : { primary }),
        ...(leaseMs === undefined ? {} : { leaseMs }),
        ...(Object.keys(grantLeasesMs).length === 0 ? {} : { grantLeasesMs }),
        // Only true is meaningful: a false (which no node of ours sends) reads as absent.
        ...(recovering === true ? { recovering: true } : {})
      }
    }
    case "refused":
      return { _tag: "Refused", reason: refusedReasonFromProto.get(body.value.reason) ?? body.value.reason, message: body.value.message }
    case "logPage":
      return { _tag: "LogPage", entries: body.value.entries.map(logEntryFromProtoRaw), endPosition: body.value.endPosition, logEnd: body.value.logEnd }
  }
}

const refusedReasonToProto: Record<Message.Refused["reason"], Proto.RefusedReason> = {
  UnknownRegion: Proto.RefusedReason.REFUSED_REASON_UNKNOWN_REGION,
  ResidencyViolation: Proto.RefusedReason.REFUSED_REASON_RESIDENCY_VIOLATION,
  Malformed: Proto.RefusedReason.REFUSED_REASON_MALFORMED,
  Unauthenticated: Proto.RefusedReason.REFUSED_REASON_UNAUTHENTICATED,
  Unavailable: Proto.RefusedReason.REFUSED_REASON_UNAVAILABLE
}

const refusedReasonFromProto: ReadonlyMap<Proto.RefusedReason, Message.Refused["reason"]> = new Map(
  Object.entries(refusedReasonToProto).map(([name, value]) => [value, name as Message.Refused["reason"]])
)

// ---------------------------------------------------------------------------------------------
// Upper bounds of encoded sizes
// ---------------------------------------------------------------------------------------------
//
// What a message may take on the wire without encoding it, to keep messages within a transport's
// bound (`grpc.max_message_bytes`): a string field at most a tag, a length and its UTF-8 bytes
// (a surrogate counted as three bytes, so a pair as six); a number at most a tag and a ten-byte
// varint; a nested message at most a tag and a length. `test/sim/SimNetwork.contract.test.ts`
// holds them at or above the encoded bytes. Three bytes for every UTF-16 unit, as at first, made
// pages and batches under a small bound a third as long as they could be, and a wiped node's
// bootstrap over a lossy link took longer than a swarm seed's budget (129000865, 2 KiB bound).

/** At least the UTF-8 bytes of `text`. */
const utf8Bound = (text: string): number => {
  let bytes = text.length
  for (let index = 0; index < text.length; index++) {
    const unit = text.charCodeAt(index)
    if (unit >= 0x80) bytes += unit >= 0x800 ? 2 : 1
  }
  return bytes
}

/** The bytes a string field takes at most, by one of the two measures below. */
type StringBytes = (text: string) => number

const stringBound: StringBytes = (text) => 6 + utf8Bound(text)
/**
 * Three bytes for every UTF-16 unit: looser than `stringBound`, but it reads the string's length
 * only. A batch or a page far below its transport's bound needs no closer count; the scan of
 * every character of every change was 2% of a `sim run` (graceful-stop-wipe), done again for
 * each target and by the simulated network for every batch sent.
 */
const stringCeiling: StringBytes = (text) => 6 + 3 * text.length
const numberBound = 11
const nestedBound = 6

const changeBytes = (change: Change.Change, string: StringBytes): number => {
  let bytes = 5 * nestedBound + 6 * numberBound
  bytes += string(change.id.origin) + string(change.originRegion) + string(change.originNode)
  bytes += string(change.tuple.vault) + string(change.tuple.resource) + string(change.tuple.relation) + string(change.tuple.subject)
  for (const origin in change.context) bytes += nestedBound + string(origin) + numberBound
  return bytes
}

/** At least the bytes of a change encoded inside a message. */
export const changeBytesBound = (change: Change.Change): number => changeBytes(change, stringBound)

/** At least `changeBytesBound`, from the lengths of the change's strings alone. */
export const changeBytesCeiling = (change: Change.Change): number => changeBytes(change, stringCeiling)

const logEntryBytes = (entry: Store.LogEntry, string: StringBytes): number =>
  nestedBound + 2 * numberBound + string(entry.receivedFrom ?? "") + changeBytes(entry.change, string)

/** At least the bytes of a log entry encoded inside a message (a LogPage's, a Watch event's). */
export const logEntryBytesBound = (entry: Store.LogEntry): number => logEntryBytes(entry, stringBound)

/** Fields of a message around its changes or entries, at most. */
const envelopeBound = 64

const batchBytes = (batch: Message.ReplicateBatch, string: StringBytes): number => {
  let bytes = envelopeBound + string(batch.batchId) + string(batch.fromRegion) + string(batch.fromNode)
  for (const change of batch.changes) bytes += changeBytes(change, string)
  return bytes
}

/** At least the bytes of a ReplicateBatch request. */
export const batchBytesBound = (batch: Message.ReplicateBatch): number => batchBytes(batch, stringBound)

/** At least `batchBytesBound`, from the lengths of the batch's strings alone. */
export const batchBytesCeiling = (batch: Message.ReplicateBatch): number => batchBytes(batch, stringCeiling)

const pageBytes = (page: Message.LogPage, string: StringBytes): number => {
  let bytes = envelopeBound
  for (const entry of page.entries) bytes += logEntryBytes(entry, string)
  return bytes
}

/** At least the bytes of a LogPage answer. */
export const pageBytesBound = (page: Message.LogPage): number => pageBytes(page, stringBound)

/** At least `pageBytesBound`, from the lengths of the page's strings alone. */
export const pageBytesCeiling = (page: Message.LogPage): number => pageBytes(page, stringCeiling)

/** Fields of a Watch event around its entries, at most. */
export const watchEventEnvelopeBytes = envelopeBound

/** What a batch or a page keeps free of its bound besides its changes: its own fields, a batch id, a stream frame's header. */
export const messageReserveBytes = 256

/**
 * Room a change leaves in a message besides itself, in every form it travels: a log entry's
 * fields around it in a CatchUp page or a Watch event (its `receivedFrom`, a node id, among them).
 */
const entryReserveBytes = 256

/**
 * Whether `change` alone fits a message of `bytesMax` in every form it travels (a batch, a
 * CatchUp page, a Watch event). One that does not is skipped by every sender (`Agent`,
 * "refusedForGood"), so the write path refuses it before acknowledging it (`Replica`).
 */
export const changeTravels = (change: Change.Change, bytesMax: number): boolean =>
  messageReserveBytes + entryReserveBytes + changeBytesCeiling(change) <= bytesMax ||
  messageReserveBytes + entryReserveBytes + changeBytesBound(change) <= bytesMax

/**
 * A batch's bytes as it grows, within `bytesMax` less `messageReserveBytes`. Counted by `changeBytesCeiling` (the
 * strings' lengths alone) while that sum stays within the bound, and by the closer
 * `changeBytesBound` once it would not: then the batch so far is counted again that way. A batch
 * ends where the closer count alone would end it, so batches are the same as with that count
 * throughout, without scanning every character of every change of a batch far below its bound.
 */
export class BatchBytes {
  private bytes = messageReserveBytes
  private close = false

  constructor(private readonly bytesMax: number) {}

  /** Whether `change` fits after `batch` (always, after none); if so it is counted (the caller adds it). */
  fits(batch: ReadonlyArray<{ readonly change: Change.Change }>, change: Change.Change): boolean {
    if (!this.close) {
      const ceiling = changeBytesCeiling(change)
      if (this.bytes + ceiling <= this.bytesMax) {
        this.bytes += ceiling
        return true
      }
      this.close = true
      this.bytes = messageReserveBytes
      for (const entry of batch) this.bytes += changeBytesBound(entry.change)
    }
    const bound = changeBytesBound(change)
    if (batch.length > 0 && this.bytes + bound > this.bytesMax) return false
    this.bytes += bound
    return true
  }
}

/**
 * The entries of `scanned` (log order) that `keep` keeps, as many as fit with
 * `messageReserveBytes` in `bytesMax` by `size` (at least one, so a log never stalls on
 * a change that alone is above the bound: its transport says so), and the last scanned position
 * the kept ones cover; undefined when nothing was scanned.
 */
export const fitting = <A extends { readonly position: number }>(
  scanned: ReadonlyArray<A>,
  keep: (item: A) => boolean,
  size: (item: A) => number,
  bytesMax: number
): { readonly kept: ReadonlyArray<A>; readonly coveredTo: number | undefined } => {
  const kept: Array<A> = []
  let bytes = messageReserveBytes
  let coveredTo: number | undefined
  for (const item of scanned) {
    if (keep(item)) {
      const itemBytes = size(item)
      if (kept.length > 0 && bytes + itemBytes > bytesMax) break
      kept.push(item)
      bytes += itemBytes
    }
    coveredTo = item.position
  }
  return { kept, coveredTo }
}
