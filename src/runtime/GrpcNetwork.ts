/**
 * The production Network: replication requests over gRPC (grpc-js), encoded by `WireCodec`.
 *
 * Client side: one grpc-js client (one channel) per target endpoint, created on first use and
 * cached. Batches and CatchUp pages go as frames of one long-lived ReplicateStream per endpoint
 * (`ReplicationStream`; why in `service.proto`), heartbeats as unary Heartbeat calls. A peer
 * that answers the stream UNIMPLEMENTED (an older version) gets one unary Replicate call per
 * request instead until its channel is rebuilt, and so does every peer when the stream is
 * configured off (`replicationStream: false`). Every request waits at most the caller's timeout
 * for a slot (below) and at most that again once sent (`request_timeout_secs`; a unary call
 * carries it as its deadline). When a request ends
 * UNAVAILABLE or INTERNAL, or gets no answer by its deadline on a channel silent for a second
 * (`channelSilenceMs`), the endpoint's channel (and its stream) is replaced and the next request
 * builds a fresh one, so a restarted or moved peer is reached at once instead of after the old
 * channel's reconnect backoff. A request its caller abandons is only cancelled. Channels use a
 * local subchannel pool for the same reason: a new channel must not inherit a failed connection.
 * A new channel to a peer whose name no longer resolves dials the addresses it last had
 * (`DialAddress`).
 * Backpressure: at most `inFlightPerTargetMax` batches are in flight per endpoint; further
 * sends wait for a slot at most their timeout, and then go out with their whole deadline.
 * Heartbeats and CatchUp pages skip that bound (`Network.takesInFlightSlot`), so liveness is
 * still measured while batches queue, and a bootstrap's pages never hold live batches back. gRPC failures map to `NetworkError` reasons.
 *
 * Server side: the layer binds a `GrpcServer` and `serve(handler)` attaches the handler to it;
 * the same server carries CatchUp and the public API (`GrpcServer.serveNode`).
 */
import * as grpc from "@grpc/grpc-js"
import { Context, Effect, Either, Layer, Option, type Scope } from "effect"
import { ReplicationService } from "../proto/inferadb/replication/v1/service.js"
import { NetworkError, networkError } from "../replication/Errors.js"
import type * as Message from "../replication/Message.js"
import type * as Metrics from "../replication/Metrics.js"
import * as Network from "../replication/Network.js"
import * as WireCodec from "../replication/WireCodec.js"
import * as Auth from "./Auth.js"
import * as DialAddress from "./DialAddress.js"
import * as FlowControl from "./FlowControl.js"
import * as GrpcServer from "./GrpcServer.js"
import * as ReplicationStream from "./ReplicationStream.js"

/** Batches in flight per target endpoint, unless configured. */
export const inFlightPerTargetMaxDefault = 8

/** How the client side connects. */
export interface ClientOptions {
  readonly credentials: Auth.Credentials
  readonly inFlightPerTargetMax?: number
  readonly messageBytesMax?: number
  /** Whether batches go over a ReplicateStream (default) or one unary Replicate call each. */
  readonly replicationStream?: boolean
  /** Where new channels dial; the system's DNS by default (tests substitute a lookup). */
  readonly dialler?: DialAddress.Dialler
}

/** Everything `layerGrpc` needs: where to listen, how to authenticate, and the bounds. */
export interface Options {
  /** `host:port` the server binds, e.g. `0.0.0.0:8081`; port 0 picks a free port. */
  readonly bind: string
  readonly auth: Auth.Options
  readonly inFlightPerTargetMax?: number
  readonly messageBytesMax?: number
  readonly replicationStream?: boolean
  readonly dialler?: DialAddress.Dialler
  readonly writeOperationsMax?: number
  readonly streamsPerConnectionMax?: number
  readonly watchersMax?: number
  readonly shutdownGraceMs?: number
}

/** The cached connection state of one endpoint. */
interface Target {
  client: grpc.Client | undefined
  /** The open ReplicateStream on `client`, if one was opened and has not ended. */
  stream: ReplicationStream.ReplicationStream | undefined
  /** False once the peer answered the stream UNIMPLEMENTED, until the channel is rebuilt. */
  streaming: boolean
  /** When `client` last brought an answer, or was made (wall clock, ms). */
  aliveAtMs: number
  /** `client` was dialled by a name nothing is known of: its first answer has the name looked up (`DialAddress.learn`). */
  unresolved: boolean
  readonly inFlight: Effect.Semaphore
}

/** The gRPC address of a topology endpoint: `host:port`, with any URL scheme removed. */
export const grpcAddress = (endpoint: string): string => endpoint.replace(/^(?:grpcs?|https?):\/\//, "").replace(/\/+$/, "")

/**
 * TLS alerts a server sends when it rejects our certificate. grpc-js reports them as
 * UNAVAILABLE; they are an authentication problem, not a connectivity one, and operators
 * should see them as such.
 */
const certificateRejected = /alert (?:certificate required|bad certificate|unknown ca|certificate unknown|certificate revoked|certificate expired|access denied)/i

/** How grpc-js says a message is above a bound, sending or receiving it. */
const messageTooLarge = /message larger than max/i

/** The NetworkError reason of a failed gRPC call. */
export const reasonFor = (code: grpc.status, details = ""): NetworkError["reason"] => {
  switch (code) {
    case grpc.status.UNAVAILABLE:
      return certificateRejected.test(details) ? "Unauthenticated" : "Unreachable"
    case grpc.status.CANCELLED:
      return "Unreachable"
    case grpc.status.DEADLINE_EXCEEDED:
      return "Timeout"
    case grpc.status.UNAUTHENTICATED:
    case grpc.status.PERMISSION_DENIED:
      return "Unauthenticated"
    // grpc-js's own refusals of a message above a channel's or a server's bound ("Sent message
    // larger than max", "Received message larger than max"); a full disk or too many watchers
    // are RESOURCE_EXHAUSTED too, and are ordinary refusals.
    case grpc.status.RESOURCE_EXHAUSTED:
      return messageTooLarge.test(details) ? "TooLarge" : "Rejected"
    default:
      return "Rejected"
  }
}

/**
 * Whether a failed call means the channel should be rebuilt before the next call. INTERNAL is
 * what grpc-js reports when the connection resets the call's stream (a broken HTTP/2 connection
 * or a misbehaving proxy in between): such a connection keeps failing every call, and grpc-js
 * would keep using it, so one link stayed dead for a whole chaos run.
 */
const resetsChannel = (code: grpc.status): boolean =>
  code === grpc.status.UNAVAILABLE || code === grpc.status.DEADLINE_EXCEEDED || code === grpc.status.INTERNAL

const identity = (bytes: Buffer): Buffer => bytes

/** What a failed request carries, whether it went as a unary call or as a stream frame. */
type CallFailure = Pick<grpc.ServiceError, "code" | "details">

/**
 * One unary call with raw bytes; interrupting it cancels the call. A channel that cannot make
 * the call (grpc-js throws once it is closed) fails it UNAVAILABLE, as a lost connection does:
 * a throw here would be a defect that ends the caller's fiber instead of a failure it retries.
 */
const unaryCall = (client: grpc.Client, path: string, bytes: Uint8Array, metadata: grpc.Metadata, deadline: Date) =>
  Effect.async<Uint8Array, CallFailure>((resume) => {
    let call: grpc.ClientUnaryCall
    try {
      call = client.makeUnaryRequest(path, identity, identity, Buffer.from(bytes), metadata, { deadline }, (error, value) => {
        if (error !== null) resume(Effect.fail(error))
        else resume(value === undefined ? Effect.fail({ code: grpc.status.INTERNAL, details: "the call succeeded without a response" }) : Effect.succeed(value))
      })
    } catch (error) {
      return resume(Effect.fail(ReplicationStream.unusableChannel(error)))
    }
    return Effect.sync(() => call.cancel())
  })

/** The endpoints a client has reached: a channel, a stream and an in-flight bound each. */
interface Endpoints {
  readonly targetFor: (endpoint: string) => Target
  /** The target's channel, built when it has none (see `DialAddress` for where it dials). */
  readonly clientFor: (target: Target, endpoint: string) => Effect.Effect<grpc.Client>
  readonly streamFor: (target: Target, client: grpc.Client) => ReplicationStream.ReplicationStream
  /** Replaces the target's channel (if it is still `client`) and retires its stream. */
  readonly reset: (target: Target, client: grpc.Client) => void
  /**
   * After an answer on `client`: it is alive. Returns the lookup to run when it is the first
   * answer on a channel dialled by a name nothing was known of (`DialAddress.learn`).
   */
  readonly answered: (target: Target, client: grpc.Client, endpoint: string) => Effect.Effect<void> | undefined
  readonly closeAll: () => void
}

const makeEndpoints = (options: ClientOptions): Endpoints => {
  const targets = new Map<string, Target>()
  const dialler = options.dialler ?? DialAddress.make()
  const inFlightMax = options.inFlightPerTargetMax ?? inFlightPerTargetMaxDefault
  const messageBytesMax = options.messageBytesMax ?? GrpcServer.messageBytesMaxDefault
  const streaming = options.replicationStream !== false
  const channelOptions: grpc.ChannelOptions = {
    ...options.credentials.channelOptions,
    ...FlowControl.clientOptions,
    "grpc.use_local_subchannel_pool": 1,
    "grpc.max_receive_message_length": messageBytesMax,
    "grpc.max_send_message_length": messageBytesMax
  }
  /** A new channel for `target`, dialled where `dialler` says. */
  const built = (target: Target, endpoint: string): Effect.Effect<grpc.Client> =>
    Effect.flatMap(dialler.dialFor(grpcAddress(endpoint)), (dial) => {
      // Another request may have built the channel while this one looked the name up.
      if (target.client !== undefined) return Effect.succeed(target.client)
      target.aliveAtMs = Date.now()
      target.unresolved = dial.unresolved === true
      // The configured TLS server name, if any, wins over the one a fallback dial sets.
      const client = (target.client = new grpc.Client(dial.target, options.credentials.channel, { ...dial.options, ...channelOptions }))
      return dial.news === undefined ? Effect.succeed(client) : Effect.as(Effect.logWarning(dial.news), client)
    })
  return {
    targetFor: (endpoint) => {
      const existing = targets.get(endpoint)
      if (existing !== undefined) return existing
      const created: Target = { client: undefined, stream: undefined, streaming, aliveAtMs: 0, unresolved: false, inFlight: Effect.unsafeMakeSemaphore(inFlightMax) }
      targets.set(endpoint, created)
      return created
    },
    // Read when the request runs, not when it is built: a request waits for an in-flight permit
    // after it is built, and a channel taken then may be closed by the time it runs (another
    // request failed and reset it). grpc-js throws on a closed channel; the agent's sender died
    // of it, and every batch behind the one it carried waited for good (`bench:repl` with
    // batches_in_flight_max 16: batches queued for permits while the restarted target refused them).
    clientFor: (target, endpoint) =>
      Effect.suspend(() => {
        if (target.client !== undefined) return Effect.succeed(target.client)
        return built(target, endpoint)
      }),
    streamFor: (target, client) => {
      if (target.stream === undefined || target.stream.closed()) {
        target.stream = ReplicationStream.open(client, ReplicationService.replicateStream.path, options.credentials.callMetadata(), messageBytesMax)
      }
      return target.stream
    },
    reset: (target, client) => {
      if (target.client !== client) return
      target.client = undefined
      // Requests already on the old stream may still be answered: it is retired, not cut.
      target.stream?.retire()
      target.stream = undefined
      target.streaming = streaming
      client.close()
    },
    answered: (target, client, endpoint) => {
      if (target.client !== client) return undefined
      target.aliveAtMs = Date.now()
      if (!target.unresolved) return undefined
      target.unresolved = false
      return dialler.learn(grpcAddress(endpoint))
    },
    closeAll: () => {
      for (const target of targets.values()) {
        target.stream?.cancel()
        target.client?.close()
      }
      targets.clear()
    }
  }
}

/**
 * One request on the endpoint's stream, or as a unary call when the peer has no stream, failing
 * DEADLINE_EXCEEDED at `deadline` either way: a request on the stream by the timer of its own
 * wait (`ReplicationStream.send`), a unary call also by a timeout around it, should grpc-js's
 * deadline not end it.
 */
const requestOn = (
  endpoints: Endpoints,
  credentials: Auth.Credentials,
  target: Target,
  client: grpc.Client,
  endpoint: string,
  request: Message.Request,
  deadline: Date
): Effect.Effect<Uint8Array, CallFailure> => {
  const bytes = WireCodec.encodeRequest(request)
  const remainingMs = () => Math.max(0, deadline.getTime() - Date.now())
  const unary = (path: string) =>
    Effect.suspend(() => {
      const leftMs = remainingMs()
      return Effect.timeoutFail(unaryCall(client, path, bytes, credentials.callMetadata(), deadline), { duration: leftMs, onTimeout: () => ReplicationStream.missedDeadline(leftMs) })
    })
  // Heartbeats have their own method (and skip the in-flight bound); batches and CatchUp pages go through Replicate.
  if (request._tag === "Heartbeat") return unary(ReplicationService.heartbeat.path)
  if (!target.streaming) return unary(ReplicationService.replicate.path)
  return Effect.catchIf(
    endpoints.streamFor(target, client).send(bytes, undefined, remainingMs()),
    (failure) => failure.code === grpc.status.UNIMPLEMENTED,
    () =>
      Effect.suspend(() => {
        if (target.client !== client || !target.streaming) return unary(ReplicationService.replicate.path)
        target.streaming = false
        return Effect.zipRight(Effect.logInfo(`${endpoint} has no ReplicateStream (an older version): one unary Replicate call per batch`), unary(ReplicationService.replicate.path))
      })
  )
}

/** How long a channel must have answered nothing before a missed deadline rebuilds it. */
export const channelSilenceMs = 1_000

/** Whether nothing came back on the target's channel since `sentAtMs`, nor for `channelSilenceMs`. */
const silent = (target: Target, sentAtMs: number): boolean => target.aliveAtMs <= sentAtMs && Date.now() - target.aliveAtMs >= channelSilenceMs

/**
 * Runs `call` holding one of the endpoint's in-flight permits, waiting at most `timeoutMs` for
 * it; the call keeps its own deadline (`attempt`), so a timeout there, and not the caller's
 * giving up, is what tells a hung channel. A permit that is free is taken at once, without the
 * timeout's race (two fibers forked and joined): nearly every request finds one.
 */
const withPermit = <A>(inFlight: Effect.Semaphore, timeoutMs: number, peer: Network.Peer, call: Effect.Effect<A, NetworkError>) =>
  Effect.flatMap(inFlight.withPermitsIfAvailable(1)(call), (done) => (Option.isSome(done) ? Effect.succeed(done.value) : waitForPermit(inFlight, timeoutMs, peer, call)))

const waitForPermit = <A>(inFlight: Effect.Semaphore, timeoutMs: number, peer: Network.Peer, call: Effect.Effect<A, NetworkError>) =>
  Effect.uninterruptibleMask((restore) =>
    Effect.flatMap(
      restore(inFlight.take(1).pipe(Effect.timeoutFail({ duration: timeoutMs, onTimeout: () => networkError(peer, "Timeout", `no answer within ${timeoutMs} ms`) }))),
      () => Effect.ensuring(restore(call), inFlight.release(1))
    )
  )

/** The client side of the network: cached channels per endpoint, closed with the scope. */
export const makeClient = (options: ClientOptions): Effect.Effect<Network.Network["Type"]["send"], never, Scope.Scope> =>
  Effect.gen(function* () {
    const endpoints = makeEndpoints(options)
    const scope = yield* Effect.scope
    yield* Effect.addFinalizer(() => Effect.sync(endpoints.closeAll))

    /**
     * One attempt on the endpoint's current channel, rebuilding the channel when it failed, or
     * when the request got no answer by its deadline and the channel has been silent: nothing
     * answered since the request was sent, nor for `channelSilenceMs`. A connection that answers
     * is alive, and a short deadline (a heartbeat's, fitted to recent round trips) is a latency
     * budget, not a verdict on it: one slow answer on a busy machine must not throw the
     * connection away, with the stream and every request on it, nor leave a peer whose name no
     * longer resolves unreachable. A request its caller abandons (an agent stopping or starting
     * over) is only cancelled, for the same reason.
     */
    const attempt = (peer: Network.Peer, target: Target, request: Message.Request, deadline: Date) =>
      Effect.flatMap(endpoints.clientFor(target, peer.endpoint), (client) => {
        const sentAtMs = Date.now()
        const dead = (code: grpc.status) => resetsChannel(code) && (code !== grpc.status.DEADLINE_EXCEEDED || silent(target, sentAtMs))
        return requestOn(endpoints, options.credentials, target, client, peer.endpoint, request, deadline).pipe(
          Effect.tap(() => {
            const learning = endpoints.answered(target, client, peer.endpoint)
            // The lookup runs on its own fiber, off the request's path.
            return learning === undefined ? Effect.void : Effect.forkIn(learning, scope)
          }),
          Effect.tapError((error) => Effect.sync(() => (target.client === client && dead(error.code) ? endpoints.reset(target, client) : undefined))),
          Effect.mapError((error) => networkError(peer, reasonFor(error.code, error.details), `${grpc.status[error.code] ?? error.code}: ${error.details}`))
        )
      })

    return (peer: Network.Peer, request: Message.Request, timeoutMs: number) =>
      Effect.gen(function* () {
        const target = endpoints.targetFor(peer.endpoint)
        // gRPC deadlines are wall-clock instants, whatever clock the Effect runtime uses. Set when
        // the request goes out, after its wait for a permit: one sent with what the wait left of
        // its deadline timed out on the wire, and with a window of batches much wider than the
        // bound every request did (the simulator's swarm seed 123000087 never converged).
        const call = Effect.suspend(() => attempt(peer, target, request, new Date(Date.now() + timeoutMs)))
        const bytes = yield* (Network.takesInFlightSlot(request) ? withPermit(target.inFlight, timeoutMs, peer, call) : call)
        const response = WireCodec.decodeResponse(bytes)
        if (Either.isLeft(response)) return yield* Effect.fail(networkError(peer, "Malformed", response.left))
        return response.right
      })
  })

/** The Network of a node whose server is the `GrpcServer` in context. */
export const make = (options: ClientOptions): Effect.Effect<Network.Network["Type"], never, Scope.Scope | GrpcServer.GrpcServer> =>
  Effect.gen(function* () {
    const listener = yield* GrpcServer.GrpcServer
    const send = yield* makeClient(options)
    return { send, serve: listener.serveReplication }
  })

/**
 * The production Network of one node: binds its gRPC server (exposed as `GrpcServer`, e.g. for
 * the bound port and the public API) and sends over cached gRPC channels.
 */
export const layerGrpc = (
  options: Options
): Layer.Layer<Network.Network | GrpcServer.GrpcServer, GrpcServer.ListenError | Auth.AuthConfigError, Metrics.Metrics> =>
  Layer.scopedContext(
    Effect.gen(function* () {
      const credentials = yield* Auth.load(options.auth)
      const listener = yield* GrpcServer.listen({ ...options, credentials })
      const network = yield* Effect.provideService(make({ ...options, credentials }), GrpcServer.GrpcServer, listener)
      return Context.make(GrpcServer.GrpcServer, listener).pipe(Context.add(Network.Network, network))
    })
  )
