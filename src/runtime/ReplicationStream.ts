/**
 * The sending side of one ReplicateStream (or WriteStream: the frames are laid out alike): a
 * long-lived bidirectional gRPC call that carries requests as frames and matches each answer to
 * its request by id (`StreamFrames`). `GrpcNetwork` keeps one per endpoint, `ApiClient` one per
 * node it writes to; see `service.proto` for why a stream rather than a unary call per request.
 *
 * A request fails exactly as its unary call would: with the status the peer put in its answer
 * frame, or with the status the whole stream ended with (every request still waiting gets it).
 * A stream that ended is never reused: the owner opens a new one. A stream the owner retires (its
 * channel is being replaced) takes no new requests, lets the waiting ones be answered, and is
 * cancelled once none waits, so a dead connection does not keep it open.
 */
import * as grpc from "@grpc/grpc-js"
import { Effect, Either } from "effect"
import * as StreamFrames from "./StreamFrames.js"

/** Why a request on the stream failed: the fields of a gRPC status. */
export interface StreamFailure {
  readonly code: grpc.status
  readonly details: string
  /**
   * Set when the status is the whole stream's end rather than an answer to this request: the
   * peer may or may not have handled the request (unless the stream never connected).
   */
  readonly streamEnded?: true
}

/** How one request ended: the encoded response, or why it failed. */
export type Outcome = Either.Either<Uint8Array, StreamFailure>

/** One open stream. */
export interface ReplicationStream {
  /**
   * Sends an encoded request and waits for the encoded response; interrupting stops the wait.
   * `timeoutMs` (a WriteFrame's) tells the peer how long the sender will wait. With `deadlineMs`
   * the wait itself ends there, failing DEADLINE_EXCEEDED as a unary call's deadline does.
   */
  readonly send: (request: Uint8Array, timeoutMs?: number, deadlineMs?: number) => Effect.Effect<Uint8Array, StreamFailure>
  /**
   * `send` without a fiber, for a caller outside Effect on a hot path (`WriteStream`, once per
   * client write: a fiber and a timeout race per write were about a third of the client's CPU in
   * `bench:repl`). Calls `done` once with the outcome, possibly before it returns, unless the
   * function it returns is called first, which stops the wait as interrupting `send` does.
   */
  readonly start: (request: Uint8Array, timeoutMs: number | undefined, done: (outcome: Outcome) => void) => () => void
  /** Whether the stream ended or was retired: it takes no new requests. */
  readonly closed: () => boolean
  /** Takes no new requests; cancels the call once no request waits for an answer. */
  readonly retire: () => void
  /** Cancels the call now: every waiting request fails CANCELLED. */
  readonly cancel: () => void
}

const identity = (bytes: Buffer): Buffer => bytes

/**
 * Opens the stream on `client` at `path`, authenticated by `metadata`. Requests above
 * `messageBytesMax` fail alone with RESOURCE_EXHAUSTED, as grpc-js fails an oversized unary
 * call, instead of ending the stream for every request on it.
 */
export const open = (client: grpc.Client, path: string, metadata: grpc.Metadata, messageBytesMax: number, name = "replication stream"): ReplicationStream => {
  let call: grpc.ClientDuplexStream<Buffer, Buffer>
  try {
    call = client.makeBidiStreamRequest<Buffer, Buffer>(path, identity, identity, metadata, {})
  } catch (error) {
    // Nothing was sent: the failure is not a stream ending under requests that may have been handled.
    return neverOpened(unusableChannel(error))
  }
  return opened(call, messageBytesMax, name)
}

/**
 * The failure of a request its channel could not even start: grpc-js throws once a channel is
 * closed. UNAVAILABLE, as for a lost connection, so the caller builds a new channel and retries.
 */
export const unusableChannel = (error: unknown): StreamFailure => ({
  code: grpc.status.UNAVAILABLE,
  details: `the channel could not start the call: ${error instanceof Error ? error.message : String(error)}`
})

/** The peer's bound when `failure` is grpc-js's refusal of a message above it ("... larger than max (N vs. M)"). */
const peerBoundOf = (failure: StreamFailure): number | undefined => {
  const found = failure.code === grpc.status.RESOURCE_EXHAUSTED ? /larger than max \((\d+) vs\.? (\d+)\)/.exec(failure.details) : null
  return found === null ? undefined : Number(found[2])
}

/**
 * How a request fails when the peer ended the stream for another message above its bound
 * (grpc-js ends a whole stream for one message it will not take): UNAVAILABLE, so it is sent
 * again, not taken for too large itself. Only a request whose own frame is above the peer's
 * bound fails with the peer's RESOURCE_EXHAUSTED (`TooLarge`).
 */
const besideTooLarge = (name: string, failure: StreamFailure): StreamFailure => ({
  code: grpc.status.UNAVAILABLE,
  details: `the peer ended the ${name} for another message above its bound (${failure.details})`,
  streamEnded: true
})

const nothingToStop = () => undefined

/** How a request that got no answer within `deadlineMs` fails, on the stream or as a unary call (`GrpcNetwork`). */
export const missedDeadline = (deadlineMs: number): StreamFailure => ({ code: grpc.status.DEADLINE_EXCEEDED, details: `no answer within ${deadlineMs} ms` })

/**
 * `start` as an Effect: the stream's `send`. Its deadline is a timer of the wait itself, as
 * `WriteStream`'s is: an `Effect.timeoutFail` around the send forked two fibers per batch (the
 * request and the timer) and joined their fiber refs when one won, and with the wait for an
 * in-flight permit that was a third of a millisecond of the agent's path from a durable commit
 * to the batch on the wire at 1,000 changes/s (`bench:repl`, December 2026).
 */
const sendOver =
  (start: ReplicationStream["start"]) =>
  (request: Uint8Array, timeoutMs?: number, deadlineMs?: number): Effect.Effect<Uint8Array, StreamFailure> =>
    Effect.async<Uint8Array, StreamFailure>((resume) => {
      let timer: ReturnType<typeof setTimeout> | undefined
      let settled = false
      const stop = start(request, timeoutMs, (outcome) => {
        settled = true
        if (timer !== undefined) clearTimeout(timer)
        resume(Either.isRight(outcome) ? Effect.succeed(outcome.right) : Effect.fail(outcome.left))
      })
      if (deadlineMs !== undefined && !settled) {
        timer = setTimeout(() => {
          settled = true
          stop()
          resume(Effect.fail(missedDeadline(deadlineMs)))
        }, deadlineMs)
      }
      return Effect.sync(() => {
        if (timer !== undefined) clearTimeout(timer)
        stop()
      })
    })

/** A stream that never opened: every request fails with `failure`. */
const neverOpened = (failure: StreamFailure): ReplicationStream => ({
  send: () => Effect.fail(failure),
  start: (_request, _timeoutMs, done) => refuse(done, failure),
  closed: () => true,
  retire: () => undefined,
  cancel: () => undefined
})

/** Fails a request at once, before anything was sent: there is nothing to stop. */
const refuse = (done: (outcome: Outcome) => void, failure: StreamFailure): (() => void) => {
  done(Either.left(failure))
  return nothingToStop
}

/** Why a stream that ended or was retired refuses a request before encoding it; undefined while it takes requests. */
const closedRefusal = (name: string, ended: StreamFailure | undefined, retired: boolean): StreamFailure | undefined => {
  if (ended !== undefined) return peerBoundOf(ended) === undefined ? ended : besideTooLarge(name, ended)
  return retired ? { code: grpc.status.UNAVAILABLE, details: `the ${name} was retired` } : undefined
}

/** Takes the peer's answer frames in, and ends the stream's requests when the call ends. */
const listen = (call: grpc.ClientDuplexStream<Buffer, Buffer>, name: string, answer: (bytes: Buffer) => void, end: (failure: StreamFailure) => void): void => {
  call.on("data", answer)
  // grpc-js reports a status other than OK as an 'error' (then 'status'); an OK status or the
  // end of the answers without a status means the peer closed the stream: nothing more comes.
  call.on("error", (error: grpc.ServiceError) => end({ code: error.code, details: error.details }))
  call.on("status", (status: grpc.StatusObject) => end({ code: grpc.status.UNAVAILABLE, details: `the peer ended the ${name} (${grpc.status[status.code]})` }))
  call.on("end", () => end({ code: grpc.status.UNAVAILABLE, details: `the peer ended the ${name}` }))
}

const opened = (call: grpc.ClientDuplexStream<Buffer, Buffer>, messageBytesMax: number, name: string): ReplicationStream => {
  // Each request's `done` and its frame's size (see `end`).
  const waiting = new Map<number, { readonly done: (outcome: Outcome) => void; readonly bytes: number }>()
  let nextId = 1
  let ended: StreamFailure | undefined
  let retired = false

  const cancelIfIdle = () => {
    if (retired && waiting.size === 0) call.cancel()
  }
  const end = (failure: StreamFailure) => {
    if (ended !== undefined) return
    ended = { ...failure, streamEnded: true }
    const peerBound = peerBoundOf(failure)
    const failed = [...waiting.values()]
    waiting.clear()
    for (const { done, bytes } of failed) done(Either.left(peerBound === undefined || bytes > peerBound ? ended : besideTooLarge(name, failure)))
  }
  const answer = (bytes: Buffer) => {
    const frame = StreamFrames.decodeResponse(bytes)
    if (typeof frame === "string") {
      end({ code: grpc.status.INTERNAL, details: `malformed answer on the ${name}: ${frame}` })
      return call.cancel()
    }
    const done = waiting.get(frame.id)?.done
    if (done === undefined) return // its sender stopped waiting (a timeout)
    waiting.delete(frame.id)
    done("response" in frame ? Either.right(frame.response) : Either.left({ code: frame.code, details: frame.details }))
    cancelIfIdle()
  }

  listen(call, name, answer, end)

  const start: ReplicationStream["start"] = (request, timeoutMs, done) => {
    const closed = closedRefusal(name, ended, retired)
    if (closed !== undefined) return refuse(done, closed)
    const frame = StreamFrames.encodeRequest(nextId, request, timeoutMs)
    if (frame.length > messageBytesMax) {
      return refuse(done, { code: grpc.status.RESOURCE_EXHAUSTED, details: `Sent message larger than max (${frame.length} vs. ${messageBytesMax})` })
    }
    const id = nextId++
    waiting.set(id, { done, bytes: frame.length })
    call.write(frame)
    return () => {
      waiting.delete(id)
      cancelIfIdle()
    }
  }

  return {
    send: sendOver(start),
    start,
    closed: () => ended !== undefined || retired,
    retire: () => {
      if (retired) return
      retired = true
      if (ended === undefined) call.end()
      cancelIfIdle()
    },
    cancel: () => {
      retired = true
      end({ code: grpc.status.CANCELLED, details: `the ${name} was closed` })
      call.cancel()
    }
  }
}
