/**
 * The protobuf wire codec: every protocol message survives a round trip unchanged, encoding is
 * canonical, and bytes that are not a valid message (garbage, truncated, or protobuf with
 * invalid content) decode to `Left` with a reason and never throw.
 *
 * Replay a failure with the seed fast-check prints: `FC_SEED=<seed> npx vitest run <file>`.
 * `FC_RUNS` raises or lowers the number of cases (default 300).
 */
import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import fc from "fast-check"
import * as Proto from "../../src/proto/inferadb/replication/v1/messages.js"
import type * as Change from "../../src/replication/Change.js"
import type * as Message from "../../src/replication/Message.js"
import type * as Store from "../../src/replication/Store.js"
import * as WireCodec from "../../src/replication/WireCodec.js"

const runs = Number(process.env["FC_RUNS"] ?? 300)
const seed = process.env["FC_SEED"] === undefined ? {} : { seed: Number(process.env["FC_SEED"]) }
const parameters = { numRuns: runs, ...seed }

// ---------------------------------------------------------------------------------------------
// Arbitraries of valid protocol values
// ---------------------------------------------------------------------------------------------

/** Well-formed Unicode without NUL (UTF-8 cannot carry lone surrogates; the Tuple schema forbids NUL). */
const part = fc.string({ unit: "grapheme", minLength: 1, maxLength: 10 }).filter((text) => !text.includes("\u0000"))
const objectRef = fc.tuple(fc.stringMatching(/^[a-z]{1,8}$/), part).map(([type, id]) => `${type}:${id}`)
const region = fc.constantFrom("us-west-1", "eu-central-1", "ap-southeast-1", "r0", "région-ü")
const bigCount = fc.oneof(fc.integer({ min: 1, max: 1_000 }), fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }))
const wholeMs = fc.oneof(fc.integer({ min: 0, max: 2_000_000_000_000 }), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }))

const change: fc.Arbitrary<Change.Change> = fc
  .record({
    origin: region,
    seq: bigCount,
    op: fc.constantFrom<Change.Operation>("insert", "delete"),
    tuple: fc.record({ vault: part, resource: objectRef, relation: part, subject: objectRef }),
    timestamp: fc.record({ physicalMs: wholeMs, logical: fc.nat() }),
    originNode: part,
    originRevision: bigCount,
    committedAtMs: wholeMs,
    context: fc.dictionary(region, bigCount, { maxKeys: 4 })
  })
  .map(({ origin, seq, ...rest }) => ({ id: { origin: origin, seq }, originRegion: origin, ...rest }))

const replicateBatch: fc.Arbitrary<Message.ReplicateBatch> = fc.record({
  _tag: fc.constant("ReplicateBatch" as const),
  batchId: fc.string({ maxLength: 20 }),
  fromRegion: region,
  fromNode: part,
  changes: fc.array(change, { maxLength: 6 })
})

const heartbeat: fc.Arbitrary<Message.Heartbeat> = fc.record(
  {
    _tag: fc.constant("Heartbeat" as const),
    fromRegion: region,
    fromNode: part,
    sentAtMs: fc.maxSafeNat(),
    leaseMs: fc.maxSafeNat()
  },
  { requiredKeys: ["_tag", "fromRegion", "fromNode", "sentAtMs"] }
)

const response: fc.Arbitrary<Message.Response> = fc.oneof(
  fc.record({
    _tag: fc.constant("BatchAck" as const),
    batchId: fc.string({ maxLength: 20 }),
    region,
    node: part,
    applied: fc.maxSafeNat(),
    ignored: fc.maxSafeNat(),
    appliedAtMs: fc.maxSafeNat()
  }),
  fc.record(
    {
      _tag: fc.constant("HeartbeatAck" as const),
      region,
      node: part,
      atMs: fc.maxSafeNat(),
      epoch: fc.maxSafeNat(),
      primary: region,
      grantAgesMs: fc.dictionary(region, fc.maxSafeNat(), { maxKeys: 4 }),
      leaseMs: fc.maxSafeNat(),
      // Never empty: the wire cannot tell an empty map from none (see `Message.HeartbeatAck`).
      grantLeasesMs: fc.dictionary(region, fc.maxSafeNat(), { minKeys: 1, maxKeys: 4 }),
      // Only true is sent; absent reads as a node that vouches (or predates the field).
      recovering: fc.constant(true as const)
    },
    { requiredKeys: ["_tag", "region", "node", "atMs", "epoch", "grantAgesMs"] }
  ),
  fc.record({
    _tag: fc.constant("Refused" as const),
    reason: fc.constantFrom<Message.Refused["reason"]>("UnknownRegion", "ResidencyViolation", "Malformed", "Unauthenticated", "Unavailable"),
    message: fc.string({ maxLength: 40 })
  })
)

// ---------------------------------------------------------------------------------------------
// Fixed examples
// ---------------------------------------------------------------------------------------------

const exampleChange: Change.Change = {
  id: { origin: "us-west-1", seq: 7 },
  op: "insert",
  tuple: { vault: "acme", resource: "document:readme", relation: "viewer", subject: "user:alice" },
  timestamp: { physicalMs: 1_700_000_000_123, logical: 2 },
  originRegion: "us-west-1",
  originNode: "node1",
  originRevision: 5,
  committedAtMs: 1_700_000_000_123,
  context: { "eu-central-1": 3, "us-west-1": 6 }
}

const exampleBatch: Message.ReplicateBatch = {
  _tag: "ReplicateBatch",
  batchId: "us-west-1/node1/12",
  fromRegion: "us-west-1",
  fromNode: "node1",
  changes: [exampleChange, { ...exampleChange, id: { origin: "eu-central-1", seq: 4 }, originRegion: "eu-central-1", op: "delete", context: {} }]
}

const examples: ReadonlyArray<Message.Request | Message.Response> = [
  exampleBatch,
  { _tag: "ReplicateBatch", batchId: "", fromRegion: "r0", fromNode: "n", changes: [] },
  { _tag: "Heartbeat", fromRegion: "us-west-1", fromNode: "node1", sentAtMs: 1_700_000_000_000 },
  { _tag: "Heartbeat", fromRegion: "us-west-1", fromNode: "node1", sentAtMs: 5 },
  { _tag: "BatchAck", batchId: "b1", region: "eu-central-1", node: "node2", applied: 3, ignored: 1, appliedAtMs: 1_700_000_000_999 },
  { _tag: "HeartbeatAck", region: "eu-central-1", node: "node2", atMs: 0, epoch: 0, grantAgesMs: {} },
  { _tag: "HeartbeatAck", region: "eu-central-1", node: "node2", atMs: 5, epoch: 3, primary: "us-west-1", grantAgesMs: { "us-west-1": 0, "ap-southeast-1": 12_000 } },
  { _tag: "Refused", reason: "UnknownRegion", message: "batch from unknown region 'mars-1'" },
  { _tag: "Refused", reason: "ResidencyViolation", message: "" },
  { _tag: "Refused", reason: "Malformed", message: "m" },
  { _tag: "Refused", reason: "Unauthenticated", message: "m" },
  { _tag: "Refused", reason: "Unavailable", message: "m" }
]

const isRequest = (message: Message.Request | Message.Response): message is Message.Request =>
  message._tag === "ReplicateBatch" || message._tag === "Heartbeat"

const roundTrip = (message: Message.Request | Message.Response): Either.Either<Message.Request | Message.Response, string> =>
  isRequest(message)
    ? WireCodec.decodeRequest(WireCodec.encodeRequest(message))
    : WireCodec.decodeResponse(WireCodec.encodeResponse(message))

/** Bytes of a Request envelope holding a batch with one change, after `edit` changed the change. */
const batchBytesWith = (edit: (change: Proto.Change) => Proto.Change): Uint8Array => {
  const valid = WireCodec.changeToProto(exampleChange)
  return Proto.Request.encode({
    body: { $case: "replicateBatch", value: { batchId: "b", fromRegion: "us-west-1", fromNode: "node1", changes: [edit(valid)] } }
  }).finish()
}

const leftReason = <A>(result: Either.Either<A, string>): string => {
  if (Either.isRight(result)) throw new Error(`expected Left, got ${JSON.stringify(result.right)}`)
  return result.left
}

describe("WireCodec", () => {
  it("every message type survives an encode and decode unchanged", () => {
    for (const message of examples) expect(roundTrip(message)).toStrictEqual(Either.right(message))
  })

  it("any valid batch of random changes survives a round trip unchanged", () => {
    fc.assert(
      fc.property(replicateBatch, (batch) => {
        expect(WireCodec.decodeRequest(WireCodec.encodeRequest(batch))).toEqual(Either.right(batch))
      }),
      parameters
    )
  })

  it("any valid heartbeat or response survives a round trip unchanged", () => {
    fc.assert(
      fc.property(fc.oneof(heartbeat, response), (message) => {
        expect(roundTrip(message)).toEqual(Either.right(message))
      }),
      parameters
    )
  })

  it("a change's log entry survives a round trip, with and without the region it came from", () => {
    const local: Store.LogEntry = { position: 12, change: exampleChange, receivedFrom: null, appliedAtMs: 1_700_000_000_200 }
    const relayed: Store.LogEntry = { ...local, receivedFrom: "eu-central-1" }
    for (const entry of [local, relayed]) {
      const bytes = Proto.LogEntry.encode(WireCodec.logEntryToProto(entry)).finish()
      expect(WireCodec.logEntryFromProto(Proto.LogEntry.decode(bytes))).toStrictEqual(Either.right(entry))
    }
  })

  it("a heartbeat answer from a node that predates primary views decodes as epoch 0 with no primary and no grants", () => {
    const old = Proto.Response.encode({ body: { $case: "heartbeatAck", value: { region: "eu-central-1", node: "node2", atMs: 7, epoch: 0, grantAgesMs: {}, grantLeasesMs: {} } } }).finish()
    expect(WireCodec.decodeResponse(old)).toStrictEqual(Either.right({ _tag: "HeartbeatAck", region: "eu-central-1", node: "node2", atMs: 7, epoch: 0, grantAgesMs: {} }))
  })

  it("a heartbeat from a node that predates leases in messages decodes with no lease, and one that says it keeps it", () => {
    const request = (leaseMs?: number) =>
      Proto.Request.encode({ body: { $case: "heartbeat", value: { fromRegion: "eu-central-1", fromNode: "node2", sentAtMs: 7, ...(leaseMs === undefined ? {} : { leaseMs }) } } }).finish()
    expect(WireCodec.decodeRequest(request())).toStrictEqual(Either.right({ _tag: "Heartbeat", fromRegion: "eu-central-1", fromNode: "node2", sentAtMs: 7 }))
    expect(WireCodec.decodeRequest(request(8_000))).toStrictEqual(Either.right({ _tag: "Heartbeat", fromRegion: "eu-central-1", fromNode: "node2", sentAtMs: 7, leaseMs: 8_000 }))
  })

  it("a heartbeat answer encodes to the same bytes whatever the order of its grant ages", () => {
    const ack = (grantAgesMs: Record<string, number>): Message.HeartbeatAck => ({ _tag: "HeartbeatAck", region: "r0", node: "n", atMs: 1, epoch: 2, primary: "r1", grantAgesMs })
    expect(WireCodec.encodeResponse(ack({ r2: 5, r1: 3 }))).toStrictEqual(WireCodec.encodeResponse(ack({ r1: 3, r2: 5 })))
  })

  it("one message always encodes to the same bytes, whatever the order of its version vector's keys", () => {
    const reordered: Message.ReplicateBatch = {
      ...exampleBatch,
      changes: [{ ...exampleChange, context: { "us-west-1": 6, "eu-central-1": 3 } }, exampleBatch.changes[1]!]
    }
    expect(WireCodec.encodeRequest(reordered)).toStrictEqual(WireCodec.encodeRequest(exampleBatch))
  })

  it("an ack answering a batch carries the highest origin sequence per origin region of that batch", () => {
    const ack: Message.BatchAck = { _tag: "BatchAck", batchId: exampleBatch.batchId, region: "eu-central-1", node: "n2", applied: 2, ignored: 0, appliedAtMs: 1 }
    const withMarks = WireCodec.decodeResponseWithHighWater(WireCodec.encodeResponse(ack, exampleBatch))
    expect(withMarks).toStrictEqual(Either.right({ response: ack, highWater: { "eu-central-1": 4, "us-west-1": 7 } }))
    const otherBatch = WireCodec.decodeResponseWithHighWater(WireCodec.encodeResponse(ack, { ...exampleBatch, batchId: "other" }))
    expect(otherBatch).toStrictEqual(Either.right({ response: ack, highWater: {} }))
    expect(WireCodec.decodeResponse(WireCodec.encodeResponse(ack, exampleBatch))).toStrictEqual(Either.right(ack))
  })

  it("empty bytes and bytes that are not protobuf decode to Left with a reason", () => {
    expect(leftReason(WireCodec.decodeRequest(new Uint8Array()))).toContain("no body")
    expect(leftReason(WireCodec.decodeResponse(new Uint8Array()))).toContain("no body")
    expect(leftReason(WireCodec.decodeRequest(Uint8Array.of(0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f)))).toContain("not valid protobuf")
    expect(leftReason(WireCodec.decodeRequest(Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)))).toContain("not valid protobuf")
    expect(leftReason(WireCodec.decodeRequest(new TextEncoder().encode('{"_tag":"Heartbeat"}')))).not.toBe("")
  })

  it("protobuf whose content breaks the protocol decodes to Left naming what is wrong", () => {
    const cases: ReadonlyArray<readonly [string, (change: Proto.Change) => Proto.Change, string]> = [
      ["unspecified operation", (change) => ({ ...change, op: Proto.Operation.OPERATION_UNSPECIFIED }), "op"],
      ["unknown operation", (change) => ({ ...change, op: 9 as Proto.Operation }), "op"],
      ["sequence 0", (change) => ({ ...change, id: { origin: "us-west-1", seq: 0 } }), "seq"],
      ["missing tuple", ({ tuple: _tuple, ...change }) => change, "tuple"],
      ["empty vault", (change) => ({ ...change, tuple: { ...change.tuple!, vault: "" } }), "vault"],
      ["resource without a type", (change) => ({ ...change, tuple: { ...change.tuple!, resource: "readme" } }), "resource"],
      ["empty origin region", (change) => ({ ...change, originRegion: "" }), "originRegion"],
      ["revision 0", (change) => ({ ...change, originRevision: 0 }), "originRevision"],
      ["a context entry of 0", (change) => ({ ...change, context: { "us-west-1": 0 } }), "context"],
      ["a sequence above 2^53", (change) => ({ ...change, id: { origin: "us-west-1", seq: 2 ** 60 } }), "MAX_SAFE_INTEGER"]
    ]
    for (const [name, edit, mentioned] of cases) {
      expect(leftReason(WireCodec.decodeRequest(batchBytesWith(edit))), name).toContain(mentioned)
    }
    const emptyRegion = Proto.Request.encode({ body: { $case: "heartbeat", value: { fromRegion: "", fromNode: "n", sentAtMs: 1 } } }).finish()
    expect(leftReason(WireCodec.decodeRequest(emptyRegion))).toContain("fromRegion")
    const unknownReason = Proto.Response.encode({ body: { $case: "refused", value: { reason: Proto.RefusedReason.REFUSED_REASON_UNSPECIFIED, message: "" } } }).finish()
    expect(leftReason(WireCodec.decodeResponse(unknownReason))).toContain("reason")
  })

  it("random bytes never make decoding throw, and whatever decodes is a valid message", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        const request = WireCodec.decodeRequest(bytes)
        const response = WireCodec.decodeResponse(bytes)
        if (Either.isRight(request)) expect(WireCodec.decodeRequest(WireCodec.encodeRequest(request.right))).toStrictEqual(request)
        if (Either.isRight(response)) expect(WireCodec.decodeResponse(WireCodec.encodeResponse(response.right))).toStrictEqual(response)
      }),
      parameters
    )
  })

  it("corrupting bytes of a valid batch never makes decoding throw", () => {
    const valid = WireCodec.encodeRequest(exampleBatch)
    const corruption = fc.array(fc.tuple(fc.nat({ max: valid.length - 1 }), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 })
    fc.assert(
      fc.property(corruption, fc.nat({ max: valid.length }), (edits, cut) => {
        const bytes = valid.slice(0, Math.max(cut, 1))
        for (const [index, value] of edits) if (index < bytes.length) bytes[index] = value
        const decoded = WireCodec.decodeRequest(bytes)
        expect(Either.isLeft(decoded) || Either.isRight(decoded)).toBe(true)
      }),
      parameters
    )
  })
})

describe("WireCodec.BatchBytes", () => {
  // The agent cuts its batches with it: counting by the strings' lengths while far from the
  // bound must cut each batch exactly where the closer bound alone cuts it.
  it("cuts a batch where summing changeBytesBound alone cuts it, at any bound", () => {
    fc.assert(
      fc.property(fc.array(change, { minLength: 1, maxLength: 40 }), fc.integer({ min: 0, max: 12_000 }), (changes, bytesMax) => {
        const kept: Array<{ readonly change: Change.Change }> = []
        const size = new WireCodec.BatchBytes(bytesMax)
        for (const next of changes) {
          if (!size.fits(kept, next)) break
          kept.push({ change: next })
        }
        let expected = 0
        let bytes = WireCodec.messageReserveBytes
        for (const next of changes) {
          const bound = WireCodec.changeBytesBound(next)
          if (expected > 0 && bytes + bound > bytesMax) break
          bytes += bound
          expected++
        }
        expect(kept.length).toBe(expected)
        expect(WireCodec.changeBytesCeiling(changes[0]!)).toBeGreaterThanOrEqual(WireCodec.changeBytesBound(changes[0]!))
      }),
      parameters
    )
  })
})
