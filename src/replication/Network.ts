/**
 * The Network service: request/response messaging between engine nodes. It knows nothing of
 * gRPC; production provides it over gRPC (`src/runtime`), the simulator over its seeded
 * network, and tests over the in-memory hub below. Every implementation passes messages
 * through the protobuf `WireCodec`, so encoding bugs show up everywhere.
 */
import { Cause, Context, Effect, Either, Exit, Layer, Runtime, Scope } from "effect"
import { NetworkError, networkError } from "./Errors.js"
import * as Handoff from "./Handoff.js"
import type * as Message from "./Message.js"
import type * as Random from "./Random.js"
import * as WireCodec from "./WireCodec.js"

/**
 * The largest message a node sends or takes unless configured (`grpc.max_message_bytes`):
 * 16 MiB. A request or an answer above its bound fails `TooLarge` (`Errors.NetworkError`),
 * in production and in the simulator.
 */
export const messageBytesMaxDefault = 16 * 1024 * 1024

/**
 * Whether a request takes one of the in-flight slots a node keeps per peer
 * (`grpc.max_in_flight_per_target`, production's and the simulator's): replication batches only.
 * Heartbeats skip the bound, so liveness is measured while batches queue. CatchUp pages skip it
 * too: a bootstrap keeps its own few pages in flight (`Bootstrap.pagesInFlightMax`), and taking
 * slots it held the batches of live replication behind its pages. With one slot per peer, a
 * node paging a 199-entry log five entries a page over 420 ms round trips left its agent's
 * batches waiting behind up to four pages each, past their deadline, for the whole bootstrap:
 * its region got no replication for 30 s after the heal (swarm seed 160000252).
 */
export const takesInFlightSlot = (request: Message.Request): boolean => request._tag === "ReplicateBatch"

/** Where a message goes: one node of one region. */
export interface Peer {
  readonly regionId: string
  readonly nodeId: string
  readonly endpoint: string
}

/** Answers requests on behalf of the local node. */
export type Handler = (request: Message.Request) => Effect.Effect<Message.Response>

/**
 * Answers a request at once, without an Effect, where it can (a heartbeat); undefined sends it
 * to the `Handler`. A network that takes it (the simulator's) answers such requests without a
 * fiber: a fiber and an Effect per heartbeat answered were a twelfth of a swarm's work.
 */
export type AnswerAtOnce = (request: Message.Request) => Message.Response | undefined

/** The Network service of one node. */
export class Network extends Context.Tag("inferadb/Network")<
  Network,
  {
    /** Sends one request and waits for its response, failing after `timeoutMs`. */
    readonly send: (target: Peer, request: Message.Request, timeoutMs: number) => Effect.Effect<Message.Response, NetworkError>
    /** Starts answering requests with `handler` (or `atOnce`, where it answers) until the scope closes. */
    readonly serve: (handler: Handler, atOnce?: AnswerAtOnce) => Effect.Effect<void, never, Scope.Scope>
    /**
     * `send` without a fiber, where the network offers it (the simulator's): calls `done` once
     * with the answer or with what `send` would fail with, and returns what abandons the request
     * (`done` is then never called). See `caller`.
     */
    readonly call?: Call
  }
>() {}

/**
 * Sends a request and calls back with its outcome; returns what abandons it. The outcome is
 * undefined when sending died of a defect (a bug, which the node's watch on its fibers reports:
 * `DeadFibers`): the caller learns nothing of the peer, but its request is over.
 */
export type Call = (target: Peer, request: Message.Request, timeoutMs: number, done: (outcome: Either.Either<Message.Response, NetworkError> | undefined) => void) => () => void

/**
 * `send` over a network's callback form: interrupting it abandons the request, and a request
 * that died (an `undefined` outcome) dies here too. The simulated network's `send` is this over
 * its `call`, so the two share one mapping of outcomes.
 */
export const sendOver =
  (call: Call) =>
  (target: Peer, request: Message.Request, timeoutMs: number): Effect.Effect<Message.Response, NetworkError> =>
    Handoff.waitFor((resume) =>
      call(target, request, timeoutMs, (outcome) =>
        resume(outcome === undefined ? Effect.dieMessage("the request died") : Either.isRight(outcome) ? Effect.succeed(outcome.right) : Effect.fail(outcome.left))
      )
    )

/**
 * The network's `call`, or one that runs `send` on a fiber of its own in `runtime` (production's
 * gRPC network): a caller that takes answers in callbacks runs the same code on both. Heartbeats
 * go this way: in the simulator, a fiber and an Effect per heartbeat answer were an eighth of
 * every Effect operation of a swarm.
 */
export const caller = <R>(network: Network["Type"], runtime: Runtime.Runtime<R>): Call => {
  if (network.call !== undefined) return network.call
  const run = Runtime.runCallback(runtime)
  return (target, request, timeoutMs, done) => {
    let waiting = true
    const cancel = run(Effect.either(network.send(target, request, timeoutMs)), {
      onExit: (exit) => {
        if (!waiting) return
        waiting = false
        // `send` fails only with a NetworkError. An interruption is the node's end: nothing is told.
        if (Exit.isSuccess(exit)) done(exit.value)
        else if (!Cause.isInterruptedOnly(exit.cause)) done(undefined)
      }
    })
    return () => {
      if (!waiting) return
      waiting = false
      cancel()
    }
  }
}

/**
 * An in-memory network shared by the nodes of a test. Links can be cut per direction and
 * messages dropped with a seeded probability, either on the way out (never applied) or on
 * the way back (applied, but the sender does not learn it): both must be survivable.
 */
export interface MemoryHub {
  readonly handlers: Map<string, Handler>
  readonly blocked: Set<string>
  lossRate: number
  readonly random: Random.Stream | undefined
  readonly stats: { delivered: number; lost: number; refused: number }
}

/** A hub with every link up. */
export const makeHub = (options: { readonly random?: Random.Stream; readonly lossRate?: number } = {}): MemoryHub => ({
  handlers: new Map(),
  blocked: new Set(),
  lossRate: options.lossRate ?? 0,
  random: options.random,
  stats: { delivered: 0, lost: 0, refused: 0 }
})

const linkKey = (from: string, to: string) => `${from}->${to}`

/** Cuts the link between two regions, both ways unless `oneWay`. */
export const partition = (hub: MemoryHub, from: string, to: string, oneWay = false): void => {
  hub.blocked.add(linkKey(from, to))
  if (!oneWay) hub.blocked.add(linkKey(to, from))
}

/** Restores every link. */
export const heal = (hub: MemoryHub): void => hub.blocked.clear()

const lost = (hub: MemoryHub): boolean => hub.random !== undefined && hub.lossRate > 0 && hub.random.next() < hub.lossRate

/**
 * A handler that died (a bug) is logged at Error and fails its sender as `serve`'s gRPC server and
 * the simulated network answer it: INTERNAL, which production's network reports as `Rejected`.
 * The hub runs the handler on the sender's fiber, where the defect would otherwise end the sender.
 */
const handlerDied = (target: Peer, defect: unknown) =>
  Effect.zipRight(Effect.logError("handling a request died with a defect (a bug)", Cause.die(defect)), Effect.fail(networkError(target, "Rejected", "INTERNAL: internal error")))

const deliver = (hub: MemoryHub, self: Peer, target: Peer, request: Message.Request) =>
  Effect.gen(function* () {
    if (hub.blocked.has(linkKey(self.regionId, target.regionId))) {
      return yield* Effect.fail(networkError(target, "Unreachable", "link is partitioned"))
    }
    const handler = hub.handlers.get(target.nodeId)
    if (handler === undefined) return yield* Effect.fail(networkError(target, "Unreachable", "node is not serving"))
    if (lost(hub)) {
      hub.stats.lost++
      return yield* Effect.fail(networkError(target, "Timeout", "request lost"))
    }
    const decoded = WireCodec.decodeRequest(WireCodec.encodeRequest(request))
    const response: Message.Response = Either.isLeft(decoded)
      ? { _tag: "Refused", reason: "Malformed", message: decoded.left }
      : yield* Effect.catchAllDefect(handler(decoded.right), (defect) => handlerDied(target, defect))
    if (response._tag === "Refused") hub.stats.refused++
    if (lost(hub)) {
      hub.stats.lost++
      return yield* Effect.fail(networkError(target, "Timeout", "response lost"))
    }
    const answer = WireCodec.decodeResponse(WireCodec.encodeResponse(response, Either.getOrUndefined(decoded)))
    if (Either.isLeft(answer)) return yield* Effect.fail(networkError(target, "Malformed", answer.left))
    hub.stats.delivered++
    return answer.right
  })

/** The Network of one node on an in-memory hub. */
export const layerMemory = (hub: MemoryHub, self: Peer): Layer.Layer<Network> =>
  Layer.succeed(Network, {
    send: (target, request, timeoutMs) =>
      deliver(hub, self, target, request).pipe(
        Effect.timeoutFail({ duration: timeoutMs, onTimeout: () => networkError(target, "Timeout", `no answer within ${timeoutMs} ms`) })
      ),
    serve: (handler) =>
      Effect.acquireRelease(
        Effect.sync(() => void hub.handlers.set(self.nodeId, handler)),
        () => Effect.sync(() => void hub.handlers.delete(self.nodeId))
      )
  })
