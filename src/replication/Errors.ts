/**
 * The typed errors that cross the wire or the store. They are Schema-backed so a transport
 * can carry them and a caller can match on `_tag`. Broken invariants are not here: those are
 * defects (`Effect.die`), not errors a caller is expected to handle.
 */
import { Schema } from "effect"

/** The durable store failed or returned data that does not decode. */
export class StoreError extends Schema.TaggedError<StoreError>()("StoreError", {
  operation: Schema.String,
  message: Schema.String
}) {}

/**
 * A message could not be delivered or answered in time. `TooLarge`: the request or its answer
 * is larger than the transport carries (`grpc.max_message_bytes` on either end): sending the
 * same message again can never succeed, a smaller one may.
 */
export class NetworkError extends Schema.TaggedError<NetworkError>()("NetworkError", {
  target: Schema.String,
  reason: Schema.Literal("Unreachable", "Timeout", "Rejected", "Malformed", "Unauthenticated", "TooLarge"),
  message: Schema.String
}) {}

/**
 * A NetworkError towards a node. A network builds one for every lost or timed-out message, so
 * it is built cheaply: without re-validating its fields (they are typed), and without a stack
 * trace, which would only show the network's own frames (9 µs against 2 µs per error, 20
 * frames deep; both costs were visible in a simulation's profile).
 */
export const networkError = (target: { readonly regionId: string; readonly nodeId: string }, reason: NetworkError["reason"], message: string): NetworkError => {
  const stackFrames = Error.stackTraceLimit
  Error.stackTraceLimit = 0
  try {
    return new NetworkError({ target: `${target.regionId}/${target.nodeId}`, reason, message }, true)
  } finally {
    Error.stackTraceLimit = stackFrames
  }
}

/** A client write this region may not accept (wrong region for the strategy, residency, bad input). */
export class WriteRejected extends Schema.TaggedError<WriteRejected>()("WriteRejected", {
  reason: Schema.Literal("NotPrimary", "NotHomeRegion", "ResidencyViolation", "UnknownVault", "Invalid", "Bootstrapping", "DeadlineExceeded", "TooLarge", "Stopping"),
  message: Schema.String
}) {}

/** A replication batch this region refused to apply; nothing of it was applied. */
export class ApplyRejected extends Schema.TaggedError<ApplyRejected>()("ApplyRejected", {
  reason: Schema.Literal("UnknownRegion", "ResidencyViolation", "Malformed"),
  message: Schema.String
}) {}
