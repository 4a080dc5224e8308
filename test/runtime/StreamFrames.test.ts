/**
 * The ReplicateStream's and WriteStream's frames, written by hand in `StreamFrames`, against the
 * codecs generated from `messages.proto` (`RequestFrame`, `ResponseFrame`, `WriteFrame`,
 * `WriteResultFrame`): ours must read what they write and write what they read, for any id and
 * envelope, and never throw on bytes that are not a frame.
 */
import * as grpc from "@grpc/grpc-js"
import { describe, expect, it } from "@effect/vitest"
import * as fc from "fast-check"
import * as Proto from "../../src/proto/inferadb/replication/v1/messages.js"
import type * as Message from "../../src/replication/Message.js"
import * as WireCodec from "../../src/replication/WireCodec.js"
import * as StreamFrames from "../../src/runtime/StreamFrames.js"

const id = fc.oneof(fc.nat({ max: 1_000 }), fc.maxSafeNat())
const name = fc.string({ unit: "grapheme", maxLength: 12 })

const request: fc.Arbitrary<Message.Request> = fc.oneof(
  fc.record({ _tag: fc.constant("Heartbeat" as const), fromRegion: name, fromNode: name, sentAtMs: fc.nat() }),
  fc.record({ _tag: fc.constant("ReplicateBatch" as const), batchId: name, fromRegion: name, fromNode: name, changes: fc.constant([]) }),
  fc.record({ _tag: fc.constant("CatchUp" as const), fromRegion: name, fromNode: name, afterPosition: fc.nat(), limit: fc.integer({ min: 1, max: 10_000 }) })
)

const response: fc.Arbitrary<Message.Response> = fc.oneof(
  fc.record({ _tag: fc.constant("BatchAck" as const), batchId: name, region: name, node: name, applied: fc.nat(), ignored: fc.nat(), appliedAtMs: fc.nat() }),
  fc.record({ _tag: fc.constant("Refused" as const), reason: fc.constantFrom("Malformed" as const, "UnknownRegion" as const), message: name })
)

const status = fc.integer({ min: 1, max: 16 }) as fc.Arbitrary<grpc.status>

describe("StreamFrames", () => {
  it("a request frame reads back as the generated RequestFrame, and a generated one reads back as ours", () =>
    fc.assert(
      fc.property(id, request, (frameId, message) => {
        const envelope = WireCodec.encodeRequest(message)
        const ours = StreamFrames.encodeRequest(frameId, envelope)
        expect(Proto.RequestFrame.decode(ours)).toStrictEqual({ id: frameId, request: Proto.Request.decode(envelope) })
        const theirs = Proto.RequestFrame.encode({ id: frameId, request: Proto.Request.decode(envelope) }).finish()
        const read = StreamFrames.decodeRequest(theirs)
        expect(typeof read === "string" ? read : { id: read.id, request: Proto.Request.decode(read.request) }).toStrictEqual({
          id: frameId,
          request: Proto.Request.decode(envelope)
        })
      })
    ))

  it("a response frame, answer or failure, reads back as the generated ResponseFrame and the other way round", () =>
    fc.assert(
      fc.property(id, fc.option(response, { nil: undefined }), status, name, (frameId, message, code, details) => {
        if (message !== undefined) {
          const envelope = WireCodec.encodeResponse(message)
          const decoded = Proto.Response.decode(envelope)
          expect(Proto.ResponseFrame.decode(StreamFrames.encodeResponse(frameId, envelope))).toStrictEqual({ id: frameId, response: decoded, statusCode: 0, statusDetails: "" })
          const read = StreamFrames.decodeResponse(Proto.ResponseFrame.encode({ id: frameId, response: decoded, statusCode: 0, statusDetails: "" }).finish())
          expect(typeof read !== "string" && "response" in read ? { id: read.id, response: Proto.Response.decode(read.response) } : read).toStrictEqual({ id: frameId, response: decoded })
        } else {
          expect(Proto.ResponseFrame.decode(StreamFrames.encodeFailure(frameId, code, details))).toStrictEqual({ id: frameId, response: undefined, statusCode: code, statusDetails: details })
          const read = StreamFrames.decodeResponse(Proto.ResponseFrame.encode({ id: frameId, statusCode: code, statusDetails: details }).finish())
          expect(read).toStrictEqual({ id: frameId, code, details })
        }
      })
    ))

  it("WriteStream's frames are laid out alike: a WriteFrame and a WriteResultFrame read and write as the generated ones", () =>
    fc.assert(
      fc.property(id, name, fc.array(name, { maxLength: 3 }), fc.nat(), status, name, fc.nat({ max: 2 ** 32 - 1 }), (frameId, vault, subjects, revision, code, details, timeoutMs) => {
        const write: Proto.WriteRequest = {
          vault,
          operations: subjects.map((subject) => ({ op: Proto.Operation.OPERATION_INSERT, relationship: { resource: "doc:1", relation: "viewer", subject } }))
        }
        const request = Proto.WriteRequest.encode(write).finish()
        expect(Proto.WriteFrame.decode(StreamFrames.encodeRequest(frameId, request, timeoutMs))).toStrictEqual({ id: frameId, request: write, timeoutMs })
        const read = StreamFrames.decodeRequest(Proto.WriteFrame.encode({ id: frameId, request: write, timeoutMs }).finish())
        expect(typeof read === "string" ? read : { id: read.id, request: Proto.WriteRequest.decode(read.request), timeoutMs: read.timeoutMs }).toStrictEqual({ id: frameId, request: write, timeoutMs })
        const answer = { revision, position: revision + 1, epoch: revision % 5 }
        const answered = StreamFrames.encodeResponse(frameId, Proto.WriteResponse.encode(answer).finish())
        expect(Proto.WriteResultFrame.decode(answered)).toStrictEqual({ id: frameId, response: answer, statusCode: 0, statusDetails: "" })
        expect(Proto.WriteResultFrame.decode(StreamFrames.encodeFailure(frameId, code, details))).toStrictEqual({ id: frameId, response: undefined, statusCode: code, statusDetails: details })
        const theirs = StreamFrames.decodeResponse(Proto.WriteResultFrame.encode({ id: frameId, response: answer, statusCode: 0, statusDetails: "" }).finish())
        expect(typeof theirs !== "string" && "response" in theirs ? Proto.WriteResponse.decode(theirs.response) : theirs).toStrictEqual(answer)
      })
    ))

  it("fields in another order and fields it does not know are read past, as protobuf requires", () => {
    const envelope = WireCodec.encodeRequest({ _tag: "Heartbeat", fromRegion: "r", fromNode: "n", sentAtMs: 1 })
    // field 9 (varint 5), then the request (field 2), a WriteFrame's timeout (field 3, 7), then the id (field 1) last.
    const bytes = Uint8Array.from([0x48, 0x05, 0x12, envelope.length, ...envelope, 0x18, 0x07, 0x08, 0x2a])
    const read = StreamFrames.decodeRequest(bytes)
    expect(typeof read === "string" ? read : { id: read.id, request: Array.from(read.request) }).toStrictEqual({ id: 42, request: Array.from(envelope) })
    expect(typeof read === "string" ? read : read.timeoutMs).toBe(7)
  })

  it("bytes that are not a frame come back as a reason, never as an exception", () => {
    // proto3 leaves out an id of 0: a frame without one is frame 0.
    expect(StreamFrames.decodeRequest(Uint8Array.from([0x12, 0x00]))).toStrictEqual({ id: 0, request: new Uint8Array(0), timeoutMs: 0 })
    expect(StreamFrames.decodeRequest(Uint8Array.from([0x08, 0x01]))).toBe("request frame has no request")
    expect(StreamFrames.decodeResponse(Uint8Array.from([0x08, 0x01]))).toBe("response frame has neither a response nor a status")
    expect(StreamFrames.decodeRequest(Uint8Array.from([0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0x12, 0x00]))).toBe("frame id is not a safe integer")
    expect(StreamFrames.decodeRequest(Uint8Array.from([0x08, 0x01, 0x12, 0x05, 0x01]))).toMatch(/^malformed frame/)
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        expect(["string", "object"]).toContain(typeof StreamFrames.decodeRequest(bytes))
        expect(["string", "object"]).toContain(typeof StreamFrames.decodeResponse(bytes))
      }),
      { numRuns: 2_000 }
    )
  })
})
