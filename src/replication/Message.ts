/**
 * The replication protocol between regions, as Schema data. Every transport pushes these
 * through the one binary codec (`WireCodec`, protobuf on the wire, these schemas on decode), so
 * the simulator exercises exactly the bytes production sends, and a malformed message is a
 * typed `Malformed` error rather than a crash.
 */
import { Schema } from "effect"
import * as Change from "./Change.js"
import * as Store from "./Store.js"

/** A whole, non-negative number: counts and millisecond readings on the wire are integers. */
const Whole = Schema.Number.pipe(Schema.int(), Schema.nonNegative())

/** A batch of changes shipped from one region to another, in the sender's log order. */
export const ReplicateBatch = Schema.TaggedStruct("ReplicateBatch", {
  batchId: Schema.String,
  fromRegion: Schema.NonEmptyString,
  fromNode: Schema.NonEmptyString,
  changes: Schema.Array(Change.Change)
})
export type ReplicateBatch = typeof ReplicateBatch.Type

/** A liveness probe; the answer carries the receiver's clock for skew diagnostics. */
export const Heartbeat = Schema.TaggedStruct("Heartbeat", {
  fromRegion: Schema.NonEmptyString,
  fromNode: Schema.NonEmptyString,
  sentAtMs: Whole,
  /** The write lease the sender runs on (`Primacy.leaseFor`); absent from nodes that predate it. */
  leaseMs: Schema.optional(Whole)
})
export type Heartbeat = typeof Heartbeat.Type

/**
 * Asks for one page of the receiver's durable log: a node whose disk is new or was wiped
 * pages every peer's log from the start (see `Bootstrap`). The receiver leaves out entries of
 * vaults the asking region may not store.
 */
export const CatchUp = Schema.TaggedStruct("CatchUp", {
  fromRegion: Schema.NonEmptyString,
  fromNode: Schema.NonEmptyString,
  /** Start after this log position (0 = from the beginning). */
  afterPosition: Whole,
  /** Most log positions to scan; the receiver caps it (`Replica.catchUpPageSizeMax`). */
  limit: Whole,
  /**
   * Only entries written in the asking region under an origin not in `knownOrigins`, or
   * received from the asking region: the stragglers of the region's old (wiped) disks that
   * reached a peer after the asker's bootstrap, which relay would never send back to the region
   * they came from.
   */
  ownRegionOrphansOnly: Schema.optional(Schema.Boolean),
  knownOrigins: Schema.optional(Schema.Array(Schema.String))
})
export type CatchUp = typeof CatchUp.Type

/** Any request a node can receive from another node. */
export const Request = Schema.Union(ReplicateBatch, Heartbeat, CatchUp)
export type Request = typeof Request.Type

/** The receiver applied (or already had) every change of the batch, durably. */
export const BatchAck = Schema.TaggedStruct("BatchAck", {
  batchId: Schema.String,
  region: Schema.NonEmptyString,
  node: Schema.NonEmptyString,
  applied: Whole,
  ignored: Whole,
  /** The receiver's physical clock when the batch became durable; lag is this minus commit time. */
  appliedAtMs: Whole
})
export type BatchAck = typeof BatchAck.Type

/**
 * Answer to a heartbeat: the receiver's clock, and its view of the primary with the write
 * leases it granted (`Primacy`), so the asker can renew its own lease or learn of a newer epoch.
 */
export const HeartbeatAck = Schema.TaggedStruct("HeartbeatAck", {
  region: Schema.NonEmptyString,
  node: Schema.NonEmptyString,
  atMs: Whole,
  /** The receiver's primary epoch. */
  epoch: Whole,
  /** The region the receiver believes takes writes in `epoch`, if it knows of one. */
  primary: Schema.optional(Schema.NonEmptyString),
  /** Per region, milliseconds since the receiver last agreed with a heartbeat from it as primary. */
  grantAgesMs: Schema.Record({ key: Schema.NonEmptyString, value: Whole }),
  /** The receiver's own write lease; absent from nodes that predate it. */
  leaseMs: Schema.optional(Whole),
  /**
   * Per region in `grantAgesMs`, how long from that latest grant the leases granted to nodes of
   * the region that said which lease they run on (`Heartbeat.leaseMs`) may bind; a region
   * missing here had none say. Absent when none did (and from nodes that predate it): never an
   * empty record, which the wire cannot tell apart.
   */
  grantLeasesMs: Schema.optional(Schema.Record({ key: Schema.NonEmptyString, value: Whole })),
  /**
   * True while the receiver runs on a new or wiped disk whose bootstrap has not paged every region
   * yet: its view may lack epoch records the disk held before, so no write lease counts its answer
   * (`Primacy.renewal`). Absent from other nodes and from nodes that predate it.
   */
  recovering: Schema.optional(Schema.Literal(true))
})
export type HeartbeatAck = typeof HeartbeatAck.Type

/** The receiver refused the request; nothing of it was applied. */
export const Refused = Schema.TaggedStruct("Refused", {
  reason: Schema.Literal("UnknownRegion", "ResidencyViolation", "Malformed", "Unauthenticated", "Unavailable"),
  message: Schema.String
})
export type Refused = typeof Refused.Type

/** One page of a log, answering `CatchUp`. */
export const LogPage = Schema.TaggedStruct("LogPage", {
  /** The entries the asking region may store, in log order. */
  entries: Schema.Array(Store.LogEntry),
  /** The last position this page covers (filtered-out entries included): the next `afterPosition`. */
  endPosition: Whole,
  /** The receiver's log end when the page was read; the asker is caught up when `endPosition >= logEnd`. */
  logEnd: Whole
})
export type LogPage = typeof LogPage.Type

/** Any response. */
export const Response = Schema.Union(BatchAck, HeartbeatAck, Refused, LogPage)
export type Response = typeof Response.Type
