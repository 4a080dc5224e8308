/**
 * The gRPC server of an engine node: one grpc-js Server on one address answering the
 * Replication service (Replicate, ReplicateStream, Heartbeat, CatchUp) and the public Relationships API
 * (Write, Delete, Read, Check, Watch), as declared in `proto/inferadb/replication/v1`.
 *
 * The server is bound once (`listen`); what answers is attached later and detached when its
 * scope closes: `serveReplication(handler)` (this is what `Network.serve` does in production)
 * and `serveNode(services)` for CatchUp and the public API. Until then calls get UNAVAILABLE,
 * which a sender treats like an unreachable node.
 *
 * Every method receives raw bytes and decodes them itself, so nothing a peer sends can crash
 * the server or escape as an unhandled error: replication bytes go through `WireCodec` and
 * malformed ones are answered `Refused{Malformed}`; other undecodable requests get
 * INVALID_ARGUMENT. Every call is authenticated first (`Auth`). Requests are bounded before any
 * store work: headers (`headerBytesMax`), message size (`messageBytesMax`, enforced by grpc-js),
 * operations per write (`writeOperationsMax`) and tuple size (`Store.tupleKeyBytesMax`).
 *
 * Every refusal the server decides itself is counted through `Metrics.requestRefused` under a
 * `RefusalReason`: at the transport (oversized headers or message, failed authentication) and
 * for well-formed requests that can never succeed (INVALID_ARGUMENT). A write sent to the wrong
 * region (FAILED_PRECONDITION and the like) is not a refusal of the request itself and is not
 * counted; refusals the replication handler decides are its to count.
 */
import * as grpc from "@grpc/grpc-js"
import { Cause, Chunk, Context, Data, Effect, Either, Exit, Fiber, FiberSet, Option, ParseResult, Runtime, RuntimeFlags, Schema, type Scope, Stream } from "effect"
import * as Proto from "../proto/inferadb/replication/v1/messages.js"
import { OperatorService, RelationshipsService, ReplicationService } from "../proto/inferadb/replication/v1/service.js"
import * as ChangeFeed from "../replication/ChangeFeed.js"
import * as Clock from "../replication/Clock.js"
import type { StoreError, WriteRejected } from "../replication/Errors.js"
import type * as Failover from "../replication/Failover.js"
import type * as Message from "../replication/Message.js"
import * as Guards from "../replication/Guards.js"
import * as Metrics from "../replication/Metrics.js"
import * as Network from "../replication/Network.js"
import * as ProtoReader from "../replication/ProtoReader.js"
import * as ReadPages from "./ReadPages.js"
import * as Replica from "../replication/Replica.js"
import * as Store from "../replication/Store.js"
import * as TopologyManager from "../replication/TopologyManager.js"
import * as Tuple from "../replication/Tuple.js"
import * as WireCodec from "../replication/WireCodec.js"
import * as Auth from "./Auth.js"
import * as FlowControl from "./FlowControl.js"
import * as GrpcHealth from "./GrpcHealth.js"
import * as StreamFrames from "./StreamFrames.js"

/** Largest message the server accepts or sends, in bytes, unless configured. */
export const messageBytesMaxDefault = Network.messageBytesMaxDefault
/** Concurrent calls (HTTP/2 streams) per client connection, unless configured; more wait in the client. */
export const streamsPerConnectionMaxDefault = 128
/** Concurrent Watch streams per server, unless configured; more get RESOURCE_EXHAUSTED. */
export const watchersMaxDefault = 256
/**
 * Requests of one ReplicateStream handled at once; past it the server stops reading the stream
 * until one is answered. A sender keeps its own bound (`max_in_flight_per_target`) far below.
 */
export const streamRequestsInFlightMax = 64
/** How long shutdown waits for calls in flight before cutting them, unless configured. */
export const shutdownGraceMsDefault = 2_000
/**
 * Permits of the semaphore that counts client writes in flight: so many that they never limit
 * writes (the connection and stream bounds do); withdrawing the API takes them all to wait for
 * the writes in flight.
 */
const writesInFlightPermits = 2 ** 31 - 1
/** Most operations one Write or Delete request may carry, unless configured; more get INVALID_ARGUMENT. */
export const writeOperationsMaxDefault = 5_000
/**
 * Largest request header list, in bytes as HTTP/2 counts it (name + value + 32 per field),
 * unless configured; larger ones get RESOURCE_EXHAUSTED. Neither grpc-js nor Node's HTTP/2
 * server bounds it by default; a bearer token needs well under 1 KiB.
 */
export const headerBytesMaxDefault = 16 * 1024
/** Longest refusal message sent back, in characters (decode reasons can be long). */
const refusalMessageCharsMax = 2_000

/** How to listen. */
export interface ListenOptions {
  /** `host:port` to bind, e.g. `0.0.0.0:8081`; port 0 picks a free port. */
  readonly bind: string
  readonly credentials: Auth.Credentials
  readonly messageBytesMax?: number
  readonly headerBytesMax?: number
  readonly writeOperationsMax?: number
  readonly streamsPerConnectionMax?: number
  readonly watchersMax?: number
  readonly shutdownGraceMs?: number
}

/**
 * Why the server refused a request: the `reason` label of
 * `inferadb_engine_replication_requests_refused_total`.
 */
export type RefusalReason =
  | "Unauthenticated"
  | "HeadersTooLarge"
  | "MessageTooLarge"
  | "Malformed"
  | "Invalid"
  | "TupleKeyTooLarge"
  | "TooManyOperations"
  | "UnknownRegion"

/** The server could not bind its address. */
export class ListenError extends Data.TaggedError("ListenError")<{ readonly address: string; readonly message: string }> {}

/** The node services CatchUp and the public API answer from. */
export interface NodeServices {
  readonly replica: Replica.Replica["Type"]
  readonly feed: ChangeFeed.ChangeFeed["Type"]
  readonly store: Store.Store["Type"]
  readonly topology: TopologyManager.TopologyManager["Type"]
  /** The operator's promote (the node's failover controller), under PrimaryReplica. */
  readonly promote?: Failover.Failover["Type"]["promote"]
}

/** A bound server. */
export interface Listener {
  /** The port actually bound (the chosen one when the address asked for port 0). */
  readonly port: number
  /** `host:port` actually bound. */
  readonly address: string
  /** Answers Replicate and Heartbeat with `handler` until the scope closes. */
  readonly serveReplication: (handler: Network.Handler) => Effect.Effect<void, never, Scope.Scope>
  /** Answers CatchUp and the Relationships API from `services` until the scope closes. */
  readonly serveNode: (services: NodeServices) => Effect.Effect<void, never, Scope.Scope>
  /** The standard health service's status (NOT_SERVING until set); reflection is served too (`GrpcHealth`). */
  readonly health: GrpcHealth.Health
}

/** The node's bound gRPC server as a service. */
export class GrpcServer extends Context.Tag("inferadb/runtime/GrpcServer")<GrpcServer, Listener>() {}

/** A call ends with this gRPC status instead of a response. */
class CallFailure extends Data.TaggedError("CallFailure")<{ readonly code: grpc.status; readonly details: string }> {}

/** What the method implementations share. */
interface ServerContext {
  readonly runtime: Runtime.Runtime<never>
  readonly metrics: Metrics.Recorder
  readonly credentials: Auth.Credentials
  readonly watchersMax: number
  readonly writeOperationsMax: number
  /** The largest message the server sends or takes (`grpc.max_message_bytes`). */
  readonly messageBytesMax: number
  readonly slots: {
    replication: Network.Handler | undefined
    /** Ends each open ReplicateStream once its requests in flight are answered. */
    readonly streams: Set<() => void>
    /** Ends each open WriteStream once its writes in flight are answered. */
    readonly apiStreams: Set<() => void>
    node: { readonly services: NodeServices; readonly watches: FiberSet.FiberSet; readonly writes: Effect.Semaphore } | undefined
    watchers: number
  }
}

// ---------------------------------------------------------------------------------------------
// Listening
// ---------------------------------------------------------------------------------------------

/** Binds a server on `options.bind` for the lifetime of the scope. */
export const listen = (options: ListenOptions): Effect.Effect<Listener, ListenError, Scope.Scope | Metrics.Metrics> =>
  Effect.gen(function* () {
    const messageBytesMax = options.messageBytesMax ?? messageBytesMaxDefault
    const context: ServerContext = {
      // Calls run as fibers of this runtime; they must stay interruptible (a cancelled Watch
      // stops) even when the server is bound inside an uninterruptible region such as a layer.
      runtime: Runtime.enableRuntimeFlag(yield* Effect.runtime<never>(), RuntimeFlags.Interruption),
      metrics: yield* Metrics.Metrics,
      credentials: options.credentials,
      watchersMax: options.watchersMax ?? watchersMaxDefault,
      messageBytesMax,
      writeOperationsMax: options.writeOperationsMax ?? writeOperationsMaxDefault,
      slots: { replication: undefined, streams: new Set(), apiStreams: new Set(), node: undefined, watchers: 0 }
    }
    const server = new grpc.Server({
      "grpc.max_receive_message_length": messageBytesMax,
      "grpc.max_send_message_length": messageBytesMax,
      "grpc.max_concurrent_streams": options.streamsPerConnectionMax ?? streamsPerConnectionMaxDefault,
      interceptors: [transportLimits(context, options.headerBytesMax ?? headerBytesMaxDefault)]
    })
    FlowControl.widenServerStreams(server)
    server.addService(serviceDefinition, implementation(context))
    const health = GrpcHealth.addTo(server)
    yield* Effect.addFinalizer(() =>
      Effect.zipRight(Effect.zipRight(endStreams(context), endStreamsOf(context.slots.apiStreams)), shutdown(server, options.shutdownGraceMs ?? shutdownGraceMsDefault))
    )
    const port = yield* bind(server, options.bind, options.credentials.server)
    FlowControl.widenServerConnections(server)
    return {
      port,
      address: `${hostOf(options.bind)}:${port}`,
      health,
      serveReplication: (handler) =>
        Effect.acquireRelease(
          Effect.suspend(() => (context.slots.replication === undefined ? Effect.sync(() => void (context.slots.replication = handler)) : Effect.dieMessage("replication is already being served"))),
          // Open streams are ended too: their senders reconnect to whatever serves next.
          () => Effect.zipRight(Effect.sync(() => void (context.slots.replication = undefined)), endStreams(context))
        ),
      serveNode: (services) =>
        Effect.gen(function* () {
          if (context.slots.node !== undefined) return yield* Effect.dieMessage("the node API is already being served")
          const writes = yield* Effect.makeSemaphore(writesInFlightPermits)
          // Finalizers run in reverse: closing the scope interrupts the open Watch streams, then
          // empties the slot and waits (at most the shutdown grace) for the writes already past
          // it, so that when the scope is closed every write this node will acknowledge is in its
          // log, where the drain that follows sees it.
          // Open WriteStreams end once their writes in flight are answered; writes sent after
          // that are answered UNAVAILABLE, as unary ones are.
          yield* Effect.addFinalizer(() =>
            Effect.zipRight(
              Effect.sync(() => void (context.slots.node = undefined)),
              Effect.timeoutOption(writes.withPermits(writesInFlightPermits)(Effect.void), options.shutdownGraceMs ?? shutdownGraceMsDefault)
            ).pipe(Effect.zipRight(endStreamsOf(context.slots.apiStreams)))
          )
          const watches = yield* FiberSet.make()
          context.slots.node = { services, watches, writes }
        })
    } satisfies Listener
  })

/** Options of `makeServer`: where to listen, how to authenticate, and the node to serve. */
export interface ServerOptions extends NodeServices, Omit<ListenOptions, "credentials"> {
  readonly auth: Auth.Options
  readonly metrics: Metrics.Recorder
}

/**
 * A server answering everything for one node: replication through `replica.handle`, CatchUp
 * from its Store and the public API from its services, until the scope closes.
 */
export const makeServer = (options: ServerOptions): Effect.Effect<Listener, ListenError | Auth.AuthConfigError, Scope.Scope> =>
  Effect.gen(function* () {
    const credentials = yield* Auth.load(options.auth)
    const listener = yield* Effect.provideService(listen({ ...options, credentials }), Metrics.Metrics, options.metrics)
    yield* listener.serveReplication(options.replica.handle)
    yield* listener.serveNode(options)
    return listener
  })

/**
 * Serves CatchUp, the public API and (given the failover controller's `promote`) the operator
 * API of the node in context on its GrpcServer until the scope closes.
 */
export const serveNode = (
  operator: Pick<NodeServices, "promote"> = {}
): Effect.Effect<void, never, Scope.Scope | GrpcServer | Replica.Replica | ChangeFeed.ChangeFeed | Store.Store | TopologyManager.TopologyManager> =>
  Effect.gen(function* () {
    const listener = yield* GrpcServer
    yield* listener.serveNode({
      replica: yield* Replica.Replica,
      feed: yield* ChangeFeed.ChangeFeed,
      store: yield* Store.Store,
      topology: yield* TopologyManager.TopologyManager,
      ...operator
    })
  })

const hostOf = (address: string): string => address.slice(0, Math.max(address.lastIndexOf(":"), 0))

const bind = (server: grpc.Server, address: string, credentials: grpc.ServerCredentials): Effect.Effect<number, ListenError> =>
  Effect.async<number, ListenError>((resume) => {
    server.bindAsync(address, credentials, (error, port) =>
      resume(error === null ? Effect.succeed(port) : Effect.fail(new ListenError({ address, message: error.message })))
    )
  })

/** Ends every open stream of `stops` as soon as its requests in flight are answered. */
const endStreamsOf = (stops: Set<() => void>): Effect.Effect<void> =>
  Effect.sync(() => {
    for (const end of stops) end()
  })

/** Ends every open ReplicateStream as soon as its requests in flight are answered. */
const endStreams = (context: ServerContext): Effect.Effect<void> => endStreamsOf(context.slots.streams)

const shutdown = (server: grpc.Server, graceMs: number): Effect.Effect<void> =>
  Effect.async<void>((resume) => server.tryShutdown(() => resume(Effect.void))).pipe(
    Effect.timeoutOption(graceMs),
    Effect.ensuring(Effect.sync(() => server.forceShutdown()))
  )

// ---------------------------------------------------------------------------------------------
// The service definition: raw bytes in and out, decoded by the implementations
// ---------------------------------------------------------------------------------------------

const identity = (bytes: Buffer): Buffer => bytes

const rawMethod = (method: { readonly path: string; readonly requestStream: boolean; readonly responseStream: boolean }): grpc.MethodDefinition<Buffer, Buffer> => ({
  path: method.path,
  requestStream: method.requestStream,
  responseStream: method.responseStream,
  requestSerialize: identity,
  requestDeserialize: identity,
  responseSerialize: identity,
  responseDeserialize: identity
})

const serviceDefinition: grpc.ServiceDefinition = {
  replicate: rawMethod(ReplicationService.replicate),
  replicateStream: rawMethod(ReplicationService.replicateStream),
  heartbeat: rawMethod(ReplicationService.heartbeat),
  catchUp: rawMethod(ReplicationService.catchUp),
  write: rawMethod(RelationshipsService.write),
  writeStream: rawMethod(RelationshipsService.writeStream),
  delete: rawMethod(RelationshipsService.delete),
  read: rawMethod(RelationshipsService.read),
  check: rawMethod(RelationshipsService.check),
  watch: rawMethod(RelationshipsService.watch),
  promote: rawMethod(OperatorService.promote)
}

const implementation = (context: ServerContext): grpc.UntypedServiceImplementation => ({
  replicate: unary(context, (bytes) => replicate(context, ["ReplicateBatch", "CatchUp"], bytes)),
  replicateStream: replicateStream(context),
  heartbeat: unary(context, (bytes) => replicate(context, ["Heartbeat"], bytes)),
  catchUp: unary(context, (bytes) => catchUp(context, bytes)),
  write: unary(context, (bytes, timeoutMs) => write(context, bytes, timeoutMs)),
  writeStream: writeStream(context),
  delete: unary(context, (bytes, timeoutMs) => remove(context, bytes, timeoutMs)),
  read: unary(context, (bytes) => read(context, bytes)),
  check: unary(context, (bytes) => check(context, bytes)),
  watch: watch(context),
  promote: unary(context, (bytes) => promote(context, bytes))
})

const toBuffer = (bytes: Uint8Array): Buffer => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)

/** The status a failed call ends with; a defect is logged and answered INTERNAL without details. */
const statusOf = (context: ServerContext, cause: Cause.Cause<CallFailure>): grpc.StatusObject => {
  const failure = Cause.failureOption(cause)
  if (Option.isSome(failure)) return { code: failure.value.code, details: failure.value.details, metadata: new grpc.Metadata() }
  if (!Cause.isInterruptedOnly(cause)) Runtime.runFork(context.runtime)(Effect.logError("gRPC call failed with a defect", cause))
  return { code: grpc.status.INTERNAL, details: "internal error", metadata: new grpc.Metadata() }
}

/** Counts a refusal under `reason` and returns the status the call ends with. */
const refuse = (context: ServerContext, reason: RefusalReason, code: grpc.status, details: string): CallFailure => {
  context.metrics.requestRefused(reason)
  return new CallFailure({ code, details })
}

/** Whether the call may proceed; a refusal is counted and answered UNAUTHENTICATED. */
const authenticated = (context: ServerContext, call: Auth.IncomingCall): CallFailure | undefined => {
  const refusal = context.credentials.authenticate(call)
  return refusal === undefined ? undefined : refuse(context, "Unauthenticated", grpc.status.UNAUTHENTICATED, refusal)
}

/** The size of a header list as HTTP/2 counts it (RFC 9113, 6.5.2): name + value + 32 per field. */
const headerListBytes = (metadata: grpc.Metadata): number => {
  let bytes = 0
  for (const [name, value] of Object.entries(metadata.toHttp2Headers())) {
    for (const item of Array.isArray(value) ? value : [value]) bytes += name.length + Buffer.byteLength(String(item)) + 32
  }
  return bytes
}

/**
 * A stream's answer frame, or, when it is above the server's bound, a failure frame for that
 * request alone, in grpc-js's words for a unary answer it will not send (RESOURCE_EXHAUSTED,
 * which the caller's network takes for `TooLarge`). Written as it was, grpc-js ended the whole
 * stream with that status, and every request in flight on it failed as if it were too large
 * itself: the agent skipped single changes that fit, for good (`chaos run
 * scenarios/small-messages.yaml`, a CatchUp page above the bound beside batches of one change).
 */
const withinBound = (id: number, frame: Buffer, bytesMax: number): Buffer =>
  frame.length <= bytesMax ? frame : StreamFrames.encodeFailure(id, grpc.status.RESOURCE_EXHAUSTED, `Sent message larger than max (${frame.length} vs. ${bytesMax})`)

/**
 * Refusals at the transport, before any method runs: headers above `headerBytesMax` are
 * answered RESOURCE_EXHAUSTED here, and grpc-js's own refusal of an oversized message is
 * counted. grpc-js sends that refusal from inside its base call (`this.sendStatus`), below
 * every interceptor's responder, so the base call's own method is the one place to see it.
 */
const transportLimits =
  (context: ServerContext, headerBytesMax: number): grpc.ServerInterceptor =>
  (_method, call) => {
    const send = call.sendStatus.bind(call)
    call.sendStatus = (status) => {
      if (status.code === grpc.status.RESOURCE_EXHAUSTED && status.details?.startsWith("Received message") === true) {
        context.metrics.requestRefused("MessageTooLarge" satisfies RefusalReason)
      }
      send(status)
    }
    return new grpc.ServerInterceptingCall(call, {
      start: (next) =>
        next({
          onReceiveMetadata: (metadata, pass) => {
            const bytes = headerListBytes(metadata)
            if (bytes <= headerBytesMax) return pass(metadata)
            const refused = refuse(context, "HeadersTooLarge", grpc.status.RESOURCE_EXHAUSTED, `request headers of ${bytes} bytes exceed ${headerBytesMax} bytes`)
            call.sendStatus({ code: refused.code, details: refused.details })
          }
        })
    })
  }

/**
 * A unary method: authenticate, then run `body` on the request bytes and the caller's time left
 * (from the call's deadline; 0 when it has none).
 */
const unary =
  (context: ServerContext, body: (bytes: Buffer, timeoutMs: number) => Effect.Effect<Uint8Array, CallFailure>): grpc.handleUnaryCall<Buffer, Buffer> =>
  (call, callback) => {
    const refused = authenticated(context, call)
    if (refused !== undefined) return callback({ code: refused.code, details: refused.details })
    Runtime.runCallback(context.runtime)(body(call.request, timeLeftMs(call.getDeadline())), {
      onExit: (exit) => (Exit.isSuccess(exit) ? callback(null, toBuffer(exit.value)) : callback(statusOf(context, exit.cause)))
    })
  }

/**
 * The caller's time left by a call's deadline, at least 1 ms once it is set (a deadline already
 * past still is one); 0 when there is none. grpc-js gives the deadline as a wall-clock Date (or
 * epoch milliseconds) computed from the call's `grpc-timeout`, and Infinity for none.
 */
const timeLeftMs = (deadline: grpc.Deadline): number => {
  const atMs = deadline instanceof Date ? deadline.getTime() : deadline
  return Number.isFinite(atMs) ? Math.max(1, atMs - Date.now()) : 0
}

/** Decodes a request message, or refuses it as malformed (counted). */
const decodeMessage = <A>(context: ServerContext, codec: Proto.MessageFns<A>, bytes: Buffer): Effect.Effect<A, CallFailure> =>
  Effect.try({
    try: () => codec.decode(ProtoReader.over(bytes)),
    catch: (error) =>
      refuse(context, "Malformed", grpc.status.INVALID_ARGUMENT, `malformed request: ${error instanceof Error ? error.message : String(error)}`)
  })

/** A well-formed request that can never succeed: counted and answered INVALID_ARGUMENT. */
const invalid = (context: ServerContext, details: string, reason: RefusalReason = "Invalid") =>
  refuse(context, reason, grpc.status.INVALID_ARGUMENT, details)

const requireNode = (context: ServerContext): Effect.Effect<NodeServices, CallFailure> =>
  context.slots.node === undefined
    ? Effect.fail(new CallFailure({ code: grpc.status.UNAVAILABLE, details: "this node is not serving its API yet" }))
    : Effect.succeed(context.slots.node.services)

// A commit refused for want of disk room (`DiskRoom`) wrote nothing, and says so: RESOURCE_EXHAUSTED
// is gRPC's code for a full file system. Any other store failure leaves the client unsure.
const storeFailure = (error: StoreError) =>
  new CallFailure({ code: error.operation === "room" ? grpc.status.RESOURCE_EXHAUSTED : grpc.status.UNAVAILABLE, details: `store: ${error.message}` })

// ---------------------------------------------------------------------------------------------
// Replication
// ---------------------------------------------------------------------------------------------

const refusal = (reason: Message.Refused["reason"], message: string): Message.Refused => ({
  _tag: "Refused",
  reason,
  message: message.length > refusalMessageCharsMax ? `${message.slice(0, refusalMessageCharsMax)}...` : message
})

/**
 * Replicate and Heartbeat: decode with WireCodec, refuse what is malformed, answer with the
 * handler. Replicate carries the protocol's bulk messages (batches and CatchUp pages).
 */
const replicate = (context: ServerContext, expected: ReadonlyArray<Message.Request["_tag"]>, bytes: Uint8Array): Effect.Effect<Uint8Array, CallFailure> =>
  Effect.gen(function* () {
    const decoded = WireCodec.decodeRequest(bytes)
    const request = Either.flatMap(decoded, (request) =>
      expected.includes(request._tag) ? Either.right(request) : Either.left(`this method takes a ${expected.join(" or ")}, not a ${request._tag}`)
    )
    if (Either.isLeft(request)) {
      context.metrics.requestRefused("Malformed")
      return WireCodec.encodeResponse(refusal("Malformed", request.left))
    }
    const handler = context.slots.replication
    if (handler === undefined) return yield* new CallFailure({ code: grpc.status.UNAVAILABLE, details: "this node is not serving replication yet" })
    // Refusals the handler decides (unknown region, residency) are counted by the handler.
    const response = yield* handler(request.right)
    return WireCodec.encodeResponse(response, request.right)
  })

/** Ends a streaming call with a status (grpc-js sends an emitted error's code and details). */
const failStream =
  (call: NodeJS.EventEmitter) =>
  (failure: { readonly code: grpc.status; readonly details: string }): void =>
    void call.emit("error", { code: failure.code, details: failure.details })

/**
 * A stream of framed requests (ReplicateStream, WriteStream): every request frame is handled as
 * the unary call it stands for would be (`handle`, on the frame's encoded request) and answered
 * by a frame with its id, carrying the encoded response or the status the call would have ended
 * with. Requests are handled concurrently, as concurrent calls are. A frame that is not one ends
 * the stream INVALID_ARGUMENT (counted Malformed): without its id nothing can be answered. The
 * stream ends when the sender ends its side and every request is answered, or when `stops` is
 * called on it (the node stops serving what the stream carries: UNAVAILABLE, once the requests in
 * flight are answered).
 */
const framedStream =
  (context: ServerContext, stops: Set<() => void>, stoppedDetails: string, handle: (request: Uint8Array, timeoutMs: number) => Effect.Effect<Uint8Array, CallFailure>): grpc.handleBidiStreamingCall<Buffer, Buffer> =>
  (call) => {
    const fail = failStream(call)
    const refused = authenticated(context, call)
    if (refused !== undefined) return fail(refused)
    let inFlight = 0
    // Reading stops while the requests in flight are at the bound or the sender does not read its
    // answers (the write buffer is full): a sender cannot make the node hold unbounded work.
    let unread = false
    const readIfRoom = () => (inFlight < streamRequestsInFlightMax && !unread ? call.resume() : call.pause())
    let finished = false
    let ending: (() => void) | undefined
    const finish = (end: () => void) => {
      if (finished) return
      finished = true
      stops.delete(stop)
      end()
    }
    const endIfIdle = () => (ending !== undefined && inFlight === 0 ? finish(ending) : undefined)
    const stop = () => {
      ending ??= () => fail({ code: grpc.status.UNAVAILABLE, details: stoppedDetails })
      endIfIdle()
    }
    stops.add(stop)
    const send = (frame: Buffer) => {
      if (call.write(frame) || unread) return
      unread = true
      call.once("drain", () => {
        unread = false
        readIfRoom()
      })
    }
    const answer = (id: number) => (exit: Exit.Exit<Uint8Array, CallFailure>) => {
      inFlight--
      if (finished) return
      if (Exit.isSuccess(exit)) send(withinBound(id, StreamFrames.encodeResponse(id, exit.value), context.messageBytesMax))
      else {
        const status = statusOf(context, exit.cause)
        send(StreamFrames.encodeFailure(id, status.code, status.details ?? ""))
      }
      readIfRoom()
      endIfIdle()
    }
    call.on("data", (bytes: Buffer) => {
      if (finished) return
      const frame = StreamFrames.decodeRequest(bytes)
      if (typeof frame === "string") return finish(() => fail(refuse(context, "Malformed", grpc.status.INVALID_ARGUMENT, `malformed request frame: ${frame}`)))
      if (ending !== undefined) return send(StreamFrames.encodeFailure(frame.id, grpc.status.UNAVAILABLE, stoppedDetails))
      inFlight++
      readIfRoom()
      Runtime.runCallback(context.runtime)(handle(frame.request, frame.timeoutMs), { onExit: answer(frame.id) })
    })
    call.on("end", () => {
      ending ??= () => call.end()
      endIfIdle()
    })
    call.on("cancelled", () => finish(() => undefined))
  }

/** ReplicateStream: Replicate calls as frames (batches and CatchUp pages), ended when replication stops being served. */
const replicateStream = (context: ServerContext) =>
  framedStream(context, context.slots.streams, "this node stopped serving replication", (request) => replicate(context, ["ReplicateBatch", "CatchUp"], request))

/** WriteStream: Write calls as frames, ended when the node stops serving its API. */
const writeStream = (context: ServerContext) =>
  framedStream(context, context.slots.apiStreams, "this node stopped serving its API", (request, timeoutMs) => write(context, toBuffer(request), timeoutMs))

/**
 * The CatchUp method: a thin route to the replication handler (`Replica.handle` answers the
 * protocol's `CatchUp` message, residency filter included), for peers that page a log over
 * the dedicated method rather than the `Replicate` envelope.
 */
const catchUp = (context: ServerContext, bytes: Buffer): Effect.Effect<Uint8Array, CallFailure> =>
  Effect.gen(function* () {
    const request = yield* decodeMessage(context, Proto.CatchUpRequest, bytes)
    const handler = context.slots.replication
    if (handler === undefined) return yield* new CallFailure({ code: grpc.status.UNAVAILABLE, details: "this node is not serving replication yet" })
    const { ownRegionOrphansOnly, knownOrigins, ...page } = request
    const response = yield* handler({ _tag: "CatchUp", ...page, ...(ownRegionOrphansOnly ? { ownRegionOrphansOnly, knownOrigins } : {}) })
    if (response._tag === "LogPage") return WireCodec.encodeLogPage(response)
    const code = response._tag === "Refused" && response.reason === "UnknownRegion" ? grpc.status.FAILED_PRECONDITION : grpc.status.UNAVAILABLE
    return yield* new CallFailure({ code, details: response._tag === "Refused" ? response.message : `unexpected answer ${response._tag}` })
  })

// ---------------------------------------------------------------------------------------------
// The public Relationships API
// ---------------------------------------------------------------------------------------------

// Decoded synchronously (Either, not an Effect): a write of 100 operations decodes 100 tuples.
const decodeTupleSync = Schema.decodeUnknownEither(Tuple.Tuple)

/** A valid tuple whose store key fits every backend, or why not; checked before any store work. */
const tupleOrFailure = (context: ServerContext, value: unknown): Either.Either<Tuple.Tuple, CallFailure> => {
  // A tuple the fast guard accepts is copied field by field, as the Schema's decoder would.
  const decoded = Guards.isTuple(value) ? Either.right({ vault: value.vault, resource: value.resource, relation: value.relation, subject: value.subject }) : decodeTupleSync(value)
  if (Either.isLeft(decoded)) return Either.left(invalid(context, `invalid tuple: ${ParseResult.TreeFormatter.formatErrorSync(decoded.left)}`))
  const keyBytes = Store.tupleKeyBytes(decoded.right)
  return keyBytes <= Store.tupleKeyBytesMax
    ? Either.right(decoded.right)
    : Either.left(invalid(context, `tuple key of ${keyBytes} bytes exceeds ${Store.tupleKeyBytesMax} bytes`, "TupleKeyTooLarge"))
}

const decodeTuple = (context: ServerContext, value: unknown): Effect.Effect<Tuple.Tuple, CallFailure> => Effect.suspend(() => tupleOrFailure(context, value))

/** The operations of a Write or Delete, all decoded before anything is written, or the first one's failure. */
const decodeOperations = <A>(
  context: ServerContext,
  vault: string,
  items: ReadonlyArray<A>,
  parts: (item: A) => { readonly op: string | number; readonly relationship: Proto.Relationship | undefined }
): Effect.Effect<ReadonlyArray<Replica.Operation>, CallFailure> =>
  Effect.suspend(() => {
    const operations: Array<Replica.Operation> = []
    for (const item of items) {
      const { op, relationship } = parts(item)
      if (op !== "insert" && op !== "delete") return Effect.fail(invalid(context, `unknown operation ${op}`))
      if (relationship === undefined) return Effect.fail(invalid(context, "an operation has no relationship"))
      const tuple = tupleOrFailure(context, { vault, ...relationship })
      if (Either.isLeft(tuple)) return Effect.fail(tuple.left)
      operations.push({ op, tuple: tuple.right })
    }
    return Effect.succeed(operations)
  })

/** Refuses a Write or Delete with more than `writeOperationsMax` operations, before decoding them. */
const checkOperationCount = (context: ServerContext, count: number): Effect.Effect<void, CallFailure> =>
  count <= context.writeOperationsMax
    ? Effect.void
    : Effect.fail(invalid(context, `${count} operations exceed the ${context.writeOperationsMax} allowed in one write`, "TooManyOperations"))

const writeFailure = (context: ServerContext, error: WriteRejected | StoreError): CallFailure => {
  if (error._tag === "StoreError") return storeFailure(error)
  if (error.reason === "Invalid") return invalid(context, `${error.reason}: ${error.message}`)
  // The request is valid but sent where the strategy does not take it: not counted as refused.
  const code =
    error.reason === "UnknownVault"
      ? grpc.status.NOT_FOUND
      : error.reason === "ResidencyViolation"
        ? grpc.status.PERMISSION_DENIED
        : error.reason === "Bootstrapping" || error.reason === "Stopping"
          ? grpc.status.UNAVAILABLE
          : error.reason === "DeadlineExceeded"
            ? grpc.status.DEADLINE_EXCEEDED
            : error.reason === "TooLarge"
              ? grpc.status.RESOURCE_EXHAUSTED
              : grpc.status.FAILED_PRECONDITION
  return new CallFailure({ code, details: `${error.reason}: ${error.message}` })
}

/**
 * Commits a client write while holding one permit of the slot's `writes`, checking the slot again
 * once it holds it: withdrawing the API takes every permit, so it waits for the writes in flight
 * and no write starts committing after it. `deadlineMs` (monotonic) is the client's: past it the
 * replica commits nothing (DEADLINE_EXCEEDED), as the simulator's clients have always had it.
 */
const commit = (context: ServerContext, operations: ReadonlyArray<Replica.Operation>, deadlineMs: number | undefined): Effect.Effect<Replica.WriteAck, CallFailure> =>
  Effect.flatMap(requireNode(context), () => {
    const slot = context.slots.node!
    return slot.writes.withPermits(1)(
      Effect.suspend(() =>
        context.slots.node === slot
          ? Effect.mapError(slot.services.replica.write(operations, deadlineMs === undefined ? {} : { deadlineMs }), (error) => writeFailure(context, error))
          : Effect.fail(new CallFailure({ code: grpc.status.UNAVAILABLE, details: "this node stopped serving its API" }))
      )
    )
  })

/**
 * The monotonic deadline (`Clock.monotonicMs`, the clock the replica checks it by) of a request
 * whose caller had `timeoutMs` left when it arrived; undefined for none (0). Taken first thing in
 * the request's handling, so what the node spends on it counts against the caller's time.
 */
const deadlineOf = (timeoutMs: number): Effect.Effect<number | undefined> =>
  timeoutMs > 0 ? Effect.map(Clock.monotonicMs, (nowMs) => nowMs + timeoutMs) : Effect.succeed(undefined)

const write = (context: ServerContext, bytes: Buffer, timeoutMs: number): Effect.Effect<Uint8Array, CallFailure> =>
  Effect.gen(function* () {
    const deadlineMs = yield* deadlineOf(timeoutMs)
    const request = yield* decodeMessage(context, Proto.WriteRequest, bytes)
    yield* checkOperationCount(context, request.operations.length)
    const operations = yield* decodeOperations(context, request.vault, request.operations, (operation) => ({
      op: WireCodec.operationFromProto(operation.op),
      relationship: operation.relationship
    }))
    const ack = yield* commit(context, operations, deadlineMs)
    return Proto.WriteResponse.encode({ revision: ack.revision, position: ack.position, epoch: ack.epoch ?? 0 }).finish()
  })

const remove = (context: ServerContext, bytes: Buffer, timeoutMs: number): Effect.Effect<Uint8Array, CallFailure> =>
  Effect.gen(function* () {
    const deadlineMs = yield* deadlineOf(timeoutMs)
    const request = yield* decodeMessage(context, Proto.DeleteRequest, bytes)
    yield* checkOperationCount(context, request.relationships.length)
    const operations = yield* decodeOperations(context, request.vault, request.relationships, (relationship) => ({ op: "delete", relationship }))
    const ack = yield* commit(context, operations, deadlineMs)
    return Proto.DeleteResponse.encode({ revision: ack.revision, position: ack.position, epoch: ack.epoch ?? 0 }).finish()
  })

const read = (context: ServerContext, bytes: Buffer): Effect.Effect<Uint8Array, CallFailure> =>
  Effect.gen(function* () {
    const request = yield* decodeMessage(context, Proto.ReadRequest, bytes)
    if (request.vault === "" || request.resource === "") return yield* invalid(context, "a read needs a vault and a resource")
    const after = request.pageToken === "" ? undefined : ReadPages.afterToken(request.pageToken)
    if (request.pageToken !== "" && after === undefined) return yield* invalid(context, "the page token is not one this API gave (next_page_token of an earlier answer)")
    const node = yield* requireNode(context)
    const prefix = { vault: request.vault, resource: request.resource, ...(request.relation === undefined ? {} : { relation: request.relation }) }
    const page = yield* Effect.mapError(node.replica.listPage(prefix, { ...(after === undefined ? {} : { after }), limit: ReadPages.pageSizeOf(request.pageSize) }), storeFailure)
    // A page ends before its answer would pass this server's message bound: whole, it failed for good.
    const fit = ReadPages.fitting(page.tuples, context.messageBytesMax)
    const next = fit.endsAt ?? page.scannedTo
    return Proto.ReadResponse.encode({ tuples: fit.kept.map((tuple) => ({ ...tuple })), nextPageToken: next === undefined ? "" : ReadPages.tokenOf(next) }).finish()
  })

const check = (context: ServerContext, bytes: Buffer): Effect.Effect<Uint8Array, CallFailure> =>
  Effect.gen(function* () {
    const request = yield* decodeMessage(context, Proto.CheckRequest, bytes)
    const tuple = yield* decodeTuple(context, request.tuple)
    const node = yield* requireNode(context)
    const allowed = yield* Effect.mapError(node.replica.check(tuple), storeFailure)
    return Proto.CheckResponse.encode({ allowed }).finish()
  })

/** The operator's promote: FAILED_PRECONDITION when this node cannot take the role now. */
const promote = (context: ServerContext, bytes: Buffer): Effect.Effect<Uint8Array, CallFailure> =>
  Effect.gen(function* () {
    yield* decodeMessage(context, Proto.PromoteRequest, bytes)
    const node = yield* requireNode(context)
    if (node.promote === undefined) return yield* new CallFailure({ code: grpc.status.FAILED_PRECONDITION, details: "this node runs no failover controller (the strategy is not PrimaryReplica)" })
    const done = yield* Effect.mapError(node.promote, (refused) => new CallFailure({ code: grpc.status.FAILED_PRECONDITION, details: refused.message }))
    return Proto.PromoteResponse.encode(done).finish()
  })

// ---------------------------------------------------------------------------------------------
// Watch: a server stream over the change feed, with transport backpressure
// ---------------------------------------------------------------------------------------------

const filterFromProto = (context: ServerContext, filter: Proto.WatchFilter | undefined): Effect.Effect<ChangeFeed.Filter, CallFailure> => {
  if (filter === undefined) return Effect.succeed({})
  const operation = filter.operation === Proto.Operation.OPERATION_UNSPECIFIED ? undefined : WireCodec.operationFromProto(filter.operation)
  if (typeof operation === "number") return Effect.fail(invalid(context, `unknown operation ${operation}`))
  return Effect.succeed({
    ...(filter.vault === undefined ? {} : { vault: filter.vault }),
    ...(filter.resourceType === undefined ? {} : { resourceType: filter.resourceType }),
    ...(filter.relation === undefined ? {} : { relation: filter.relation }),
    ...(operation === undefined ? {} : { operation })
  })
}

const eventBytes = (event: ChangeFeed.FeedEvent): Uint8Array =>
  event._tag === "Change" ? WireCodec.encodeWatchChange(event.entry) : WireCodec.encodeWatchLagged(event.resumeFrom)

/** The most changes one Watch event carries, whatever the watcher asks for (`changes_per_event_max`). */
export const watchChangesPerEventMax = 1_000

/**
 * The events of one chunk as messages: with `changesPerEvent` above 0, consecutive changes go
 * together in `changes` events of at most that many and at most `bytesMax` bytes (by
 * `WireCodec.logEntryBytesBound`; a `Lagged` event stays on its own). Until December 3, 2026 an
 * event held `changesPerEvent` changes whatever their size, and a server whose
 * `grpc.max_message_bytes` was below such an event refused to send it: the stream failed
 * RESOURCE_EXHAUSTED, and a watcher could never read past it (`chaos run
 * scenarios/small-messages.yaml`: no node's log could be read back). A change whose own event
 * is above the bound still fails the stream so: no message can carry it.
 */
const chunkToMessages = (events: Chunk.Chunk<ChangeFeed.FeedEvent>, changesPerEvent: number, bytesMax: number): Array<Uint8Array> => {
  if (changesPerEvent === 0) return Chunk.toArray(Chunk.map(events, eventBytes))
  const messages: Array<Uint8Array> = []
  let batch: Array<Store.LogEntry> = []
  let bytes = WireCodec.watchEventEnvelopeBytes
  const flush = () => {
    if (batch.length > 0) messages.push(WireCodec.encodeWatchChanges(batch))
    batch = []
    bytes = WireCodec.watchEventEnvelopeBytes
  }
  for (const event of events) {
    if (event._tag === "Lagged") {
      flush()
      messages.push(eventBytes(event))
      continue
    }
    const entryBytes = WireCodec.logEntryBytesBound(event.entry)
    if (bytes + entryBytes > bytesMax) flush()
    batch.push(event.entry)
    bytes += entryBytes
    if (batch.length >= changesPerEvent) flush()
  }
  flush()
  return messages
}

/**
 * Writes the events the feed had ready (one chunk) in one step, then waits for the stream to
 * drain when the client reads slower than the feed.
 */
const writeEvents = (call: grpc.ServerWritableStream<Buffer, Buffer>, events: Chunk.Chunk<ChangeFeed.FeedEvent>, changesPerEvent: number, bytesMax: number): Effect.Effect<void> =>
  Effect.async<void>((resume) => {
    let flowing = true
    for (const message of chunkToMessages(events, changesPerEvent, bytesMax)) flowing = call.write(toBuffer(message))
    if (flowing) return resume(Effect.void)
    const drained = () => resume(Effect.void)
    call.once("drain", drained)
    return Effect.sync(() => void call.removeListener("drain", drained))
  })

/** Holds one of the bounded watcher places for the lifetime of the scope. */
const reserveWatcher = (context: ServerContext): Effect.Effect<void, CallFailure, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.suspend(() => {
      if (context.slots.watchers >= context.watchersMax) {
        return Effect.fail(new CallFailure({ code: grpc.status.RESOURCE_EXHAUSTED, details: `at most ${context.watchersMax} watchers` }))
      }
      context.slots.watchers++
      return Effect.void
    }),
    () => Effect.sync(() => void context.slots.watchers--)
  )

const streamChanges = (context: ServerContext, call: grpc.ServerWritableStream<Buffer, Buffer>, node: NodeServices): Effect.Effect<void, CallFailure> =>
  Effect.scoped(
    Effect.gen(function* () {
      const request = yield* decodeMessage(context, Proto.WatchRequest, call.request)
      const filter = yield* filterFromProto(context, request.filter)
      yield* reserveWatcher(context)
      const from = request.fromPosition === 0 ? {} : { from: request.fromPosition }
      const events = yield* Effect.mapError(node.feed.subscribe({ filter, ...from }), storeFailure)
      const changesPerEvent = Math.min(request.changesPerEventMax, watchChangesPerEventMax)
      yield* Stream.runForEachChunk(Stream.mapError(events, storeFailure), (chunk) => writeEvents(call, chunk, changesPerEvent, context.messageBytesMax))
    })
  )

const watch =
  (context: ServerContext): grpc.handleServerStreamingCall<Buffer, Buffer> =>
  (call) => {
    const fail = failStream(call)
    const refused = authenticated(context, call)
    if (refused !== undefined) return fail(refused)
    const node = context.slots.node
    if (node === undefined) return fail({ code: grpc.status.UNAVAILABLE, details: "this node is not serving its API yet" })
    let cancelled = false
    const fiber = Runtime.runSync(context.runtime)(FiberSet.run(node.watches, streamChanges(context, call, node.services)))
    call.on("cancelled", () => {
      cancelled = true
      Runtime.runFork(context.runtime)(Fiber.interrupt(fiber))
    })
    fiber.addObserver((exit) => {
      if (cancelled) return
      if (Exit.isSuccess(exit)) return void call.end()
      if (Cause.isInterruptedOnly(exit.cause)) return fail({ code: grpc.status.UNAVAILABLE, details: "the node stopped serving" })
      fail(statusOf(context, exit.cause))
    })
  }
