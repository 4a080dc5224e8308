/**
 * The wire codec the simulated network pushes every message through, so the simulator
 * exercises the bytes production sends. It is the protobuf `WireCodec`; switching to another
 * codec (e.g. `Message`'s JSON text) is a change to the four bindings below.
 */
import type { Either } from "effect"
import type * as Message from "../replication/Message.js"
import * as WireCodec from "../replication/WireCodec.js"

/** One encoded message. */
export type Wire = Uint8Array

/** Encodes a request. */
export const encodeRequest = (request: Message.Request): Wire => WireCodec.encodeRequest(request)

/** Decodes a request, or says why the bytes are not one. */
export const decodeRequest = (wire: Wire): Either.Either<Message.Request, string> => WireCodec.decodeRequest(wire)

/** Encodes a response to `answering`. */
export const encodeResponse = (response: Message.Response, answering: Message.Request | undefined): Wire =>
  WireCodec.encodeResponse(response, answering)

/** Decodes a response, or says why the bytes are not one. */
export const decodeResponse = (wire: Wire): Either.Either<Message.Response, string> => WireCodec.decodeResponse(wire)

/** Size of an encoded message in bytes (for statistics). */
export const size = (wire: Wire): number => wire.length
