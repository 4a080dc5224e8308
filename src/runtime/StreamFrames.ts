/**
 * The frames of a ReplicateStream (`proto/.../messages.proto`: `RequestFrame`, `ResponseFrame`)
 * and of a WriteStream (`WriteFrame`, `WriteResultFrame`, laid out the same way): an id and an
 * already encoded request or response, or an id and a gRPC status.
 *
 * Written by hand over protobuf-es's wire reader and writer rather than through the generated
 * codecs, because the envelope inside is encoded and decoded by `WireCodec` on its own: the
 * generated `RequestFrame.decode` would decode the whole batch a second time into objects we do
 * not use. The bytes are the ones the generated codecs read and write (checked against them in
 * `test/runtime/StreamFrames.test.ts`). Decoding never throws: what is not a frame comes back as
 * a reason, and the transport refuses it.
 */
import * as grpc from "@grpc/grpc-js"
import { BinaryReader, BinaryWriter, WireType } from "@bufbuild/protobuf/wire"

/** A request frame as read: its id, the encoded request it carries, and (a WriteFrame's `timeout_ms`) the sender's time left, 0 for none. */
export interface RequestFrame {
  readonly id: number
  readonly request: Uint8Array
  readonly timeoutMs: number
}

/** A response frame as read: its id and either an encoded `Response` or a failure status. */
export type ResponseFrame =
  | { readonly id: number; readonly response: Uint8Array }
  | { readonly id: number; readonly code: grpc.status; readonly details: string }

const idField = 1
const bodyField = 2
// Field 3 is a response frame's status code and a WriteFrame's `timeout_ms` (a RequestFrame has none).
const codeField = 3
const timeoutField = 3
const detailsField = 4

// Both frames carry their envelope in field 2 after the id, so they are written alike; a
// WriteFrame adds the sender's time left in field 3 (written only above 0, as proto3 does).
const encodeWithBody = (id: number, body: Uint8Array, timeoutMs = 0): Buffer => {
  const writer = new BinaryWriter().tag(idField, WireType.Varint).uint64(id).tag(bodyField, WireType.LengthDelimited).bytes(body)
  if (timeoutMs > 0) writer.tag(timeoutField, WireType.Varint).uint32(Math.min(Math.ceil(timeoutMs), 0xffffffff))
  return toBuffer(writer.finish())
}

/** Encodes a request frame around an encoded request; a WriteFrame may carry the sender's time left (`timeoutMs` above 0). */
export const encodeRequest: (id: number, request: Uint8Array, timeoutMs?: number) => Buffer = encodeWithBody

/** Encodes a response frame around an encoded `Response`. */
export const encodeResponse = (id: number, response: Uint8Array): Buffer => encodeWithBody(id, response)

/** Encodes a response frame that fails its request with a gRPC status (never OK). */
export const encodeFailure = (id: number, code: grpc.status, details: string): Buffer =>
  toBuffer(
    new BinaryWriter()
      .tag(idField, WireType.Varint)
      .uint64(id)
      .tag(codeField, WireType.Varint)
      .uint32(code)
      .tag(detailsField, WireType.LengthDelimited)
      .string(details)
      .finish()
  )

/** The fields of a frame, read in any order; unknown fields are skipped, as protobuf requires. */
interface Fields {
  id: number
  body: Uint8Array | undefined
  code: number
  details: string
}

const readFields = (bytes: Uint8Array): Fields | string => {
  // An id of 0 is absent on the wire (proto3 leaves out defaults); a sender starts at 1.
  const fields: Fields = { id: 0, body: undefined, code: 0, details: "" }
  try {
    const reader = new BinaryReader(bytes)
    while (reader.pos < reader.len) {
      const [field, wireType] = reader.tag()
      if (field === idField && wireType === WireType.Varint) {
        const id = Number(reader.uint64())
        if (!Number.isSafeInteger(id)) return "frame id is not a safe integer"
        fields.id = id
      } else if (field === bodyField && wireType === WireType.LengthDelimited) fields.body = reader.bytes()
      else if (field === codeField && wireType === WireType.Varint) fields.code = reader.uint32()
      else if (field === detailsField && wireType === WireType.LengthDelimited) fields.details = reader.string()
      else reader.skip(wireType, field)
    }
  } catch (error) {
    return `malformed frame: ${error instanceof Error ? error.message : String(error)}`
  }
  return fields
}

/** Reads a request frame, or says why the bytes are not one. */
export const decodeRequest = (bytes: Uint8Array): RequestFrame | string => {
  const fields = readFields(bytes)
  if (typeof fields === "string") return fields
  if (fields.body === undefined) return "request frame has no request"
  return { id: fields.id, request: fields.body, timeoutMs: fields.code }
}

/** Reads a response frame, or says why the bytes are not one. */
export const decodeResponse = (bytes: Uint8Array): ResponseFrame | string => {
  const fields = readFields(bytes)
  if (typeof fields === "string") return fields
  if (fields.code !== grpc.status.OK) return { id: fields.id, code: fields.code, details: fields.details }
  if (fields.body === undefined) return "response frame has neither a response nor a status"
  return { id: fields.id, response: fields.body }
}

const toBuffer = (bytes: Uint8Array): Buffer => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
