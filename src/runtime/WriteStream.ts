/**
 * A client's writes to one node as frames on one long-lived WriteStream (`service.proto`),
 * behind the same promise a Write call gives: the response, or a gRPC-style error whose `code`,
 * `details` and `message` ("14 UNAVAILABLE: ...") read as grpc-js's `ServiceError` does, so
 * callers that judge a failed write by its status (`chaos/Workload.certainlyNotWritten`) judge a
 * streamed one the same way.
 *
 * What a write's failure says, as for a Write call:
 * - the status the node answered for this write (a refusal, a store failure), as it is;
 * - the client's deadline passing: DEADLINE_EXCEEDED. Each frame carries the client's timeout
 *   (`timeout_ms`), and the node commits nothing past it, as for a Write call's deadline; a
 *   write it was committing just then may still be durable, so the outcome is unknown;
 * - the stream ending under the write (the connection dropped, the node stopped): UNAVAILABLE
 *   whatever status the stream ended with, since the node may or may not have committed it.
 *   Kept as they are: a stream that never connected ("No connection established"; its frames
 *   never left this process) and one the node refused as it opened (UNAUTHENTICATED,
 *   PERMISSION_DENIED, UNIMPLEMENTED: the node's server reads no frame of such a stream). A
 *   stream that ended is replaced at the next write.
 * A node that answers the stream UNIMPLEMENTED handled nothing on it: the write is sent again
 * as a Write call, and so is every later one (`fallback`).
 */
import * as grpc from "@grpc/grpc-js"
import { Either } from "effect"
import * as Proto from "../proto/inferadb/replication/v1/messages.js"
import { RelationshipsService } from "../proto/inferadb/replication/v1/service.js"
import * as ReplicationStream from "./ReplicationStream.js"

/** Where a write landed, as `WriteResponse` says. */
export interface Written {
  readonly revision: number
  readonly position: number
  /** The failover epoch the node took it in (PrimaryReplica; 0 otherwise, or from an older node). */
  readonly epoch: number
}

/** The writes of one client to one node. */
export interface WriteStream {
  readonly write: (request: Proto.WriteRequest) => Promise<Written>
  /** Cancels the open stream: writes waiting on it fail UNAVAILABLE. */
  readonly close: () => void
}

/**
 * A write whose frame is larger fails alone, RESOURCE_EXHAUSTED, before it is sent: the node's
 * default `grpc.max_message_bytes` (`GrpcServer.messageBytesMaxDefault`). Sent, the node would
 * end the whole stream for it, and every write in flight on it would fail with an unknown
 * outcome. A node configured lower still does that.
 */
export const frameBytesMax = 16 * 1024 * 1024

/** An error shaped as grpc-js's `ServiceError`. */
const serviceError = (code: grpc.status, details: string): grpc.ServiceError =>
  Object.assign(new Error(`${code} ${grpc.status[code]}: ${details}`), { code, details, metadata: new grpc.Metadata() })

/**
 * Statuses a node ends a stream with before it reads a frame (the call is refused as it opens),
 * so no write on it was handled.
 */
const refusedAtOpen: ReadonlySet<grpc.status> = new Set([grpc.status.UNIMPLEMENTED, grpc.status.UNAUTHENTICATED, grpc.status.PERMISSION_DENIED])

/** The longest delay a Node timer keeps (2^31 - 1 ms). */
const timerDelayMaxMs = 2 ** 31 - 1

/** The status a caller sees for a write whose stream failed as `failure` says. */
const statusOf = (failure: ReplicationStream.StreamFailure): grpc.ServiceError => {
  if (failure.streamEnded === undefined || refusedAtOpen.has(failure.code)) return serviceError(failure.code, failure.details)
  if (failure.code === grpc.status.UNAVAILABLE && /No connection established/.test(failure.details)) return serviceError(failure.code, failure.details)
  return serviceError(grpc.status.UNAVAILABLE, `the write stream ended (${grpc.status[failure.code]}: ${failure.details}); the write may or may not have been committed`)
}

/**
 * Writes over a stream on `client`, each with `timeoutMs` to be answered; `fallback` is the
 * unary Write, taken once the node says it has no WriteStream.
 */
export const make = (client: grpc.Client, metadata: () => grpc.Metadata, timeoutMs: number, fallback: (request: Proto.WriteRequest) => Promise<Written>): WriteStream => {
  let stream: ReplicationStream.ReplicationStream | undefined
  let unimplemented = false
  const open = () => ReplicationStream.open(client, RelationshipsService.writeStream.path, metadata(), frameBytesMax, "write stream")

  /** What a write's outcome on the stream makes of its promise. */
  const written = (request: Proto.WriteRequest, outcome: ReplicationStream.Outcome): Written | Promise<Written> => {
    if (Either.isRight(outcome)) {
      const response = Proto.WriteResponse.decode(outcome.right)
      return { revision: response.revision, position: response.position, epoch: response.epoch }
    }
    if (outcome.left.code === grpc.status.UNIMPLEMENTED && outcome.left.streamEnded === true) {
      unimplemented = true
      return fallback(request)
    }
    throw statusOf(outcome.left)
  }

  // Without a fiber: a timer of its own for the deadline, and the stream's callback (`start`).
  const send = (request: Proto.WriteRequest): Promise<Written> =>
    new Promise<Written>((resolve, reject) => {
      if (stream === undefined || stream.closed()) stream = open()
      let settled = false
      let timer: ReturnType<typeof setTimeout> | undefined
      const settle = (outcome: ReplicationStream.Outcome) => {
        if (settled) return
        settled = true
        if (timer !== undefined) clearTimeout(timer)
        try {
          resolve(written(request, outcome))
        } catch (error) {
          reject(error)
        }
      }
      // The frame says how long this client waits, so that the node commits nothing after it gave up.
      const stop = stream.start(Proto.WriteRequest.encode(request).finish(), timeoutMs, settle)
      // Node fires a timer beyond its bound (about 24.8 days) or of no finite delay at once: such a deadline never passes.
      if (settled || !(timeoutMs <= timerDelayMaxMs)) return
      timer = setTimeout(() => {
        stop()
        settle(Either.left({ code: grpc.status.DEADLINE_EXCEEDED, details: `Deadline exceeded after ${timeoutMs} ms on the write stream` }))
      }, timeoutMs)
    })

  return {
    write: (request) => (unimplemented ? fallback(request) : send(request)),
    close: () => stream?.cancel()
  }
}
