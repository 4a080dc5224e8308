/**
 * How the simulated network carries messages, chosen per scenario (`wire`):
 *
 * - `objects`: the message object itself, deeply frozen so the receiver cannot change the
 *   sender's memory (nor the other way round). Most runs use it: encoding and decoding every
 *   message cost about a quarter of a run.
 * - `bytes`: the protobuf bytes of `WireCodec`, decoded and validated on arrival, exactly what
 *   production sends; bytes that do not decode are answered `Refused{Malformed}`. Such a run's
 *   disks keep the stored text of the byte-oriented backends too (`StoreFaults.StoredAs`). Some
 *   scenario files and a fixed share of swarm seeds use it, so the codec and the stored form
 *   stay covered by whole runs.
 *
 * A message's trace identity (`digestRequest`, `digestResponse`) is read from the message, not
 * from its bytes, and is the same in both modes: a run gives the same trace hash whichever
 * way its messages travel, which is itself a check that the codec is faithful.
 */
import { Either } from "effect"
import type * as Change from "../replication/Change.js"
import * as Frozen from "../replication/Frozen.js"
import type * as Message from "../replication/Message.js"
import * as WireCodec from "../replication/WireCodec.js"

/** How messages travel. */
export type Wire = "objects" | "bytes"

/** The modes, for scenario files. */
export const wires: ReadonlyArray<Wire> = ["objects", "bytes"]

/** A message in flight, in the form its carrier uses. */
export type Parcel = Message.Request | Message.Response | Uint8Array

/** Packs messages for the network and unpacks them on arrival. */
export interface Carrier {
  readonly wire: Wire
  readonly packRequest: (request: Message.Request) => Parcel
  /** The request, or why the parcel is not one. */
  readonly unpackRequest: (parcel: Parcel) => Either.Either<Message.Request, string>
  /** Packs a response to `answering` (an ack carries the batch's high-water marks on the wire). */
  readonly packResponse: (response: Message.Response, answering: Message.Request | undefined) => Parcel
  readonly unpackResponse: (parcel: Parcel) => Either.Either<Message.Response, string>
  /** Bytes on the wire; 0 when messages travel as objects. */
  readonly size: (parcel: Parcel) => number
}

const objects: Carrier = {
  wire: "objects",
  packRequest: Frozen.deep,
  unpackRequest: (parcel) => Either.right(parcel as Message.Request),
  packResponse: Frozen.deep,
  unpackResponse: (parcel) => Either.right(parcel as Message.Response),
  size: () => 0
}

const bytes: Carrier = {
  wire: "bytes",
  packRequest: WireCodec.encodeRequest,
  unpackRequest: (parcel) => WireCodec.decodeRequest(parcel as Uint8Array),
  packResponse: WireCodec.encodeResponse,
  unpackResponse: (parcel) => WireCodec.decodeResponse(parcel as Uint8Array),
  size: (parcel) => (parcel as Uint8Array).length
}

/** The carrier of a wire mode. */
export const carrier = (wire: Wire): Carrier => (wire === "bytes" ? bytes : objects)

/** A change's id and timestamp (the timestamp tells clock modes apart). */
const identity = (change: Change.Change | undefined): string =>
  change === undefined ? "-" : `${change.id.origin}:${change.id.seq}@${change.timestamp.physicalMs}.${change.timestamp.logical}`

/** A request's identity in the trace: its kind and the fields that tell two requests apart. */
export const digestRequest = (request: Message.Request): string => {
  switch (request._tag) {
    case "ReplicateBatch": {
      const { changes } = request
      return `ReplicateBatch ${request.batchId} ${changes.length} ${identity(changes[0])}..${identity(changes[changes.length - 1])}`
    }
    case "Heartbeat":
      return `Heartbeat ${request.sentAtMs}`
    case "CatchUp":
      return `CatchUp ${request.afterPosition} ${request.limit}${request.ownRegionOrphansOnly === true ? " orphans" : ""}`
  }
}

/** A response's identity in the trace. */
export const digestResponse = (response: Message.Response): string => {
  switch (response._tag) {
    case "BatchAck":
      return `BatchAck ${response.applied}/${response.ignored} ${response.appliedAtMs}`
    case "HeartbeatAck":
      return `HeartbeatAck ${response.epoch} ${response.primary ?? "-"} ${response.atMs}`
    case "Refused":
      return `Refused ${response.reason}`
    case "LogPage":
      return `LogPage ${response.entries.length} ${response.endPosition} ${response.logEnd} ${identity(response.entries[response.entries.length - 1]?.change)}`
  }
}

/**
 * Whether a batch or a page is within `bytesMax` by an upper bound of its encoded size: the one
 * from its strings' lengths alone first (most messages are far below their bound), then the
 * closer one; undefined for the other messages, which are small.
 */
const withinByBound = (message: Message.Request | Message.Response, bytesMax: number): boolean | undefined => {
  if (message._tag === "ReplicateBatch") return WireCodec.batchBytesCeiling(message) <= bytesMax || WireCodec.batchBytesBound(message) <= bytesMax
  if (message._tag === "LogPage") return WireCodec.pageBytesCeiling(message) <= bytesMax || WireCodec.pageBytesBound(message) <= bytesMax
  return undefined
}

/**
 * A message's size on the wire when it is above `bytesMax`, else undefined: what production's
 * gRPC refuses to send or to take (`grpc.max_message_bytes`). Exact when the message travels as
 * bytes. As an object, a batch or a page whose upper bound (`withinByBound`) is within the bound
 * costs no encoding, and only one that may be above it is encoded to know; the other messages
 * (heartbeats, acknowledgements, refusals, CatchUp requests) hold a few short fields and are
 * taken to fit, as any bound `serve` accepts (1 KiB or more) holds them.
 */
export const bytesAbove = (
  carrier: Carrier,
  parcel: Parcel,
  message: Message.Request | Message.Response,
  answering: Message.Request | undefined,
  bytesMax: number
): number | undefined => {
  if (carrier.wire === "bytes") return carrier.size(parcel) > bytesMax ? carrier.size(parcel) : undefined
  if (withinByBound(message, bytesMax) !== false) return undefined
  const bytes = (message._tag === "ReplicateBatch" ? WireCodec.encodeRequest(message) : WireCodec.encodeResponse(message as Message.Response, answering)).length
  return bytes > bytesMax ? bytes : undefined
}
