/**
 * The production Network over real gRPC on 127.0.0.1 (port 0): replication between two engine
 * nodes through the real handler, deadlines, reconnecting after a server restart, refusing
 * malformed bytes without crashing, and the per-target in-flight bound; then what is particular
 * to the ReplicateStream batches travel on (falling back to unary calls, malformed frames, its
 * bound, ending it when the server stops). Real time throughout.
 */
import * as grpc from "@grpc/grpc-js"
import * as http2 from "node:http2"
import type { AddressInfo } from "node:net"
import { describe, expect, it } from "@effect/vitest"
import { Cause, type Duration, Effect, Either, Exit, Fiber, Option, Schedule, Scope } from "effect"
import { ReplicationService } from "../../src/proto/inferadb/replication/v1/service.js"
import type * as Change from "../../src/replication/Change.js"
import * as Handoff from "../../src/replication/Handoff.js"
import type * as Message from "../../src/replication/Message.js"
import * as Metrics from "../../src/replication/Metrics.js"
import type * as Network from "../../src/replication/Network.js"
import * as WireCodec from "../../src/replication/WireCodec.js"
import * as Auth from "../../src/runtime/Auth.js"
import * as DialAddress from "../../src/runtime/DialAddress.js"
import * as GrpcNetwork from "../../src/runtime/GrpcNetwork.js"
import * as GrpcServer from "../../src/runtime/GrpcServer.js"
import * as ReplicationStream from "../../src/runtime/ReplicationStream.js"
import * as StreamFrames from "../../src/runtime/StreamFrames.js"
import * as Nodes from "./fixtures/grpcNodes.js"

const tuple = { vault: "acme", resource: "document:readme", relation: "viewer", subject: "user:alice" }

const change = (seq: number): Change.Change => ({
  id: { origin: "us-west-1", seq },
  op: "insert",
  tuple,
  timestamp: { physicalMs: 1_000 + seq, logical: 0 },
  originRegion: "us-west-1",
  originNode: Nodes.nodeIdOf("us-west-1"),
  originRevision: seq,
  committedAtMs: 1_000 + seq,
  context: {}
})

const heartbeat: Message.Heartbeat = { _tag: "Heartbeat", fromRegion: "r0", fromNode: "n0", sentAtMs: 1 }
const emptyBatch = (batchId: string): Message.ReplicateBatch => ({ _tag: "ReplicateBatch", batchId, fromRegion: "r0", fromNode: "n0", changes: [] })

const answer = (request: Message.Request): Message.Response =>
  request._tag === "Heartbeat"
    ? { _tag: "HeartbeatAck", region: "r1", node: "n1", atMs: 2, epoch: 0, grantAgesMs: {} }
    : request._tag === "ReplicateBatch"
      ? { _tag: "BatchAck", batchId: request.batchId, region: "r1", node: "n1", applied: 0, ignored: 0, appliedAtMs: 2 }
      : { _tag: "LogPage", entries: [], endPosition: request.afterPosition, logEnd: 0 }

/** A bare server on a free (or given) port answering with `handler`, counting into `totals`. */
const listen = (handler: Network.Handler, totals: Metrics.MemoryMetrics, bind = "127.0.0.1:0", messageBytesMax?: number) =>
  Effect.gen(function* () {
    const credentials = yield* Auth.load({ mode: "insecure" })
    const listener = yield* GrpcServer.listen({ bind, credentials, shutdownGraceMs: 100, ...(messageBytesMax === undefined ? {} : { messageBytesMax }) }).pipe(
      Effect.provide(Metrics.layerMemory(totals))
    )
    yield* listener.serveReplication(handler)
    return listener
  })

const client = (options: Partial<GrpcNetwork.ClientOptions> = {}) =>
  Effect.flatMap(Auth.load({ mode: "insecure" }), (credentials) => GrpcNetwork.makeClient({ credentials, ...options }))

const peerAt = (port: number): Network.Peer => ({ regionId: "r1", nodeId: "n1", endpoint: `127.0.0.1:${port}` })

/** A handler that answers once `hold` (given the requests held now) has run, counting the requests it holds now and at most. */
const counting = (hold: (now: number) => Effect.Effect<void>) => {
  const inFlight = { now: 0, most: 0 }
  const handler: Network.Handler = (request) =>
    Effect.acquireUseRelease(
      Effect.sync(() => {
        inFlight.now++
        inFlight.most = Math.max(inFlight.most, inFlight.now)
        return inFlight.now
      }),
      (now) => Effect.as(hold(now), answer(request)),
      () => Effect.sync(() => void inFlight.now--)
    )
  return { inFlight, handler }
}

/** A handler answering after `delay`, counting the requests it holds now and at most. */
const slowCounting = (delay: Duration.DurationInput) => counting(() => Effect.sleep(delay))

/**
 * A handler that holds every request until `level` are held at once, then answers them and every
 * later one at once; `inFlight` as in `slowCounting`. Whether the server reaches its bound does not
 * hang on how fast this machine reads frames: with a 40 ms sleep instead, the first answers went
 * out before a busy machine had read the bound's worth of requests (55 of 64 at most, CI of
 * December 4, 2026). A server that holds fewer never answers (the test's wait fails), and one that
 * holds more starts the next request while the first `level` have yet to finish.
 */
const heldUntil = (level: number) => {
  const reached = new Handoff.Gate()
  return counting((now) => {
    if (now >= level) reached.unsafeOpen()
    return reached.await
  })
}

/** One unary call with raw bytes from a plain grpc-js client. */
const rawCall = (port: number, path: string, bytes: Uint8Array) =>
  Effect.acquireUseRelease(
    Effect.sync(() => new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure())),
    (raw) =>
      Effect.async<Buffer, grpc.ServiceError>((resume) => {
        raw.makeUnaryRequest(path, (value: Buffer) => value, (value: Buffer) => value, Buffer.from(bytes), new grpc.Metadata(), { deadline: Date.now() + 2_000 }, (error, value) =>
          resume(error === null && value !== undefined ? Effect.succeed(value) : Effect.fail(error!))
        )
      }),
    (raw) => Effect.sync(() => raw.close())
  )

describe("GrpcNetwork", () => {
  it.scopedLive("a batch sent from one region to another over gRPC is applied by the receiver's replica and acknowledged", () =>
    Effect.gen(function* () {
      const [west, europe] = yield* Nodes.startNodes({ regions: ["us-west-1", "eu-central-1"] })
      const batch: Message.ReplicateBatch = { _tag: "ReplicateBatch", batchId: "west/1", fromRegion: "us-west-1", fromNode: west!.peer.nodeId, changes: [change(1)] }

      const first = yield* west!.network.send(europe!.peer, batch, 2_000)
      expect(first).toMatchObject({ _tag: "BatchAck", batchId: "west/1", region: "eu-central-1", applied: 1, ignored: 0 })
      expect(yield* europe!.replica.check(tuple)).toBe(true)

      const again = yield* west!.network.send(europe!.peer, batch, 2_000)
      expect(again).toMatchObject({ _tag: "BatchAck", applied: 0, ignored: 1 })
    })
  )

  it.scopedLive("a write in one region reaches the other region through the agent over gRPC", () =>
    Effect.gen(function* () {
      const [west, europe] = yield* Nodes.startNodes({ regions: ["us-west-1", "eu-central-1"] })
      yield* west!.replica.write([{ op: "insert", tuple }])
      expect(yield* Nodes.eventually(europe!.replica.check(tuple))).toBe(true)
      yield* europe!.replica.write([{ op: "delete", tuple }])
      expect(yield* Nodes.eventually(Effect.map(west!.replica.check(tuple), (present) => !present))).toBe(true)
    })
  )

  it.scopedLive("a CatchUp request travels over gRPC like a batch and comes back as a page of the receiver's log", () =>
    Effect.gen(function* () {
      const [west, europe] = yield* Nodes.startNodes({ regions: ["us-west-1", "eu-central-1"] })
      yield* europe!.replica.write([{ op: "insert", tuple }])
      const request: Message.CatchUp = { _tag: "CatchUp", fromRegion: "us-west-1", fromNode: west!.peer.nodeId, afterPosition: 0, limit: 10 }
      const response = yield* west!.network.send(europe!.peer, request, 2_000)
      expect(response).toMatchObject({ _tag: "LogPage", endPosition: 1, logEnd: 1 })
      expect(response._tag === "LogPage" ? response.entries.map((entry) => entry.change.tuple) : []).toEqual([tuple])
    })
  )

  it.scopedLive("a batch the receiver refuses comes back as a Refused response, counted once by the receiving node", () =>
    Effect.gen(function* () {
      const [west, europe] = yield* Nodes.startNodes({ regions: ["us-west-1", "eu-central-1"] })
      const fromMars: Message.ReplicateBatch = { _tag: "ReplicateBatch", batchId: "mars/1", fromRegion: "mars-1", fromNode: "m", changes: [] }
      const response = yield* west!.network.send(europe!.peer, fromMars, 2_000)
      expect(response).toMatchObject({ _tag: "Refused", reason: "UnknownRegion" })
      expect(europe!.metrics.refused).toBe(1)
    })
  )

  it.scopedLive("a handler slower than the deadline makes the send fail with Timeout at the deadline", () =>
    Effect.gen(function* () {
      const totals = Metrics.makeMemory()
      const listener = yield* listen((request) => Effect.as(Effect.sleep("3 seconds"), answer(request)), totals)
      const send = yield* client()
      const started = Date.now()
      const error = yield* Effect.flip(send(peerAt(listener.port), heartbeat, 200))
      expect(error.reason).toBe("Timeout")
      expect(Date.now() - started).toBeLessThan(1_500)
    })
  )

  it.scopedLive("a stopped server makes sends fail Unreachable, and a server restarted on the same port is reached again at once", () =>
    Effect.gen(function* () {
      const totals = Metrics.makeMemory()
      const send = yield* client()
      const firstScope = yield* Scope.make()
      const first = yield* Scope.extend(listen((request) => Effect.succeed(answer(request)), totals), firstScope)
      const peer = peerAt(first.port)
      expect(yield* send(peer, heartbeat, 1_000)).toMatchObject({ _tag: "HeartbeatAck" })

      yield* Scope.close(firstScope, Exit.void)
      const down = yield* Effect.flip(send(peer, heartbeat, 1_000))
      expect(down.reason).toBe("Unreachable")

      yield* listen((request) => Effect.succeed(answer(request)), totals, `127.0.0.1:${first.port}`)
      // The failed call dropped the channel, so the next one connects afresh instead of
      // waiting out the old channel's reconnect backoff (about one second in grpc-js).
      expect(yield* send(peer, heartbeat, 1_000)).toMatchObject({ _tag: "HeartbeatAck" })
    })
  )

  it.scopedLive("a request that waited for an in-flight permit while another request's failure closed the channel fails Unreachable on a new channel instead of dying", () =>
    Effect.gen(function* () {
      // One permit: the second batch waits for it while the first fails on the stopped server
      // and closes the channel. The second then ran on the closed channel, grpc-js threw
      // "Channel has been shut down", and the send died: an agent's sender fiber ended without
      // an outcome, and replication to the target stopped for good behind that batch.
      for (const replicationStream of [true, false]) {
        const totals = Metrics.makeMemory()
        const send = yield* client({ inFlightPerTargetMax: 1, replicationStream })
        const serverScope = yield* Scope.make()
        const server = yield* Scope.extend(listen((request) => Effect.succeed(answer(request)), totals), serverScope)
        const peer = peerAt(server.port)
        expect(yield* send(peer, emptyBatch("open"), 2_000)).toMatchObject({ _tag: "BatchAck" })
        yield* Scope.close(serverScope, Exit.void)

        const outcomes = yield* Effect.all([emptyBatch("first"), emptyBatch("second")].map((batch) => Effect.exit(send(peer, batch, 2_000))), { concurrency: "unbounded" })
        // A failure the caller retries, never a defect.
        const reasons = outcomes.map((outcome) =>
          Exit.isSuccess(outcome) ? "succeeded" : Option.match(Cause.failureOption(outcome.cause), { onNone: () => Cause.pretty(outcome.cause), onSome: (error) => error.reason })
        )
        expect(reasons).toEqual(["Unreachable", "Unreachable"])
        // And the endpoint still works once the peer is back.
        yield* listen((request) => Effect.succeed(answer(request)), totals, `127.0.0.1:${server.port}`)
        expect(yield* send(peer, emptyBatch("back"), 2_000)).toMatchObject({ _tag: "BatchAck" })
      }
    })
  )

  it.scopedLive("a channel dialled by name before the name resolved for our lookup learns its addresses from its first answer, so a rebuild in a DNS outage still reaches the peer", () =>
    Effect.gen(function* () {
      // Our lookup fails at first while grpc-js's own resolves localhost: the channel is dialled
      // by name and connects, as when the name began resolving between the two lookups.
      let resolves = false
      const asked: Array<string> = []
      const lookup: DialAddress.Lookup = (hostname) => {
        asked.push(hostname)
        const answer = resolves
          ? Promise.resolve([{ address: "127.0.0.1", family: 4 }])
          : Promise.reject(Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: "ENOTFOUND" }))
        // The name resolves from the first lookup on, until the test ends that.
        resolves = true
        return answer
      }
      const dialler = DialAddress.make(lookup)
      const send = yield* client({ dialler })
      const server = yield* listen((request) => Effect.succeed(answer(request)), Metrics.makeMemory())
      const endpoint = `localhost:${server.port}`
      expect(yield* send({ regionId: "r1", nodeId: "n1", endpoint }, heartbeat, 2_000)).toMatchObject({ _tag: "HeartbeatAck" })
      expect(asked[0]).toBe("localhost")
      const poll = Schedule.intersect(Schedule.spaced("20 millis"), Schedule.recurs(250))
      // The answer has the name looked up again, on its own fiber; then DNS fails again.
      yield* Effect.retry(Effect.filterOrFail(Effect.sync(() => asked.length), (count) => count >= 2), poll)
      resolves = false
      const fallback = yield* Effect.retry(Effect.filterOrFail(dialler.dialFor(endpoint), (dial) => dial.target.startsWith("ipv4:")), poll)
      expect(fallback.target).toBe(`ipv4:127.0.0.1:${server.port}`)
      expect(dialler.fallingBack()).toEqual(["localhost"])
    })
  )

  it.scopedLive("a peer whose name no lookup of ours ever resolved is reached at the addresses discovery remembered for it", () =>
    Effect.gen(function* () {
      // The name resolves nowhere on this machine: a pod discovery found while DNS answered,
      // which this node dials for the first time after DNS stopped answering.
      const name = "inferadb-peer-gone.invalid"
      const lookup: DialAddress.Lookup = (hostname) => Promise.reject(Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: "ENOTFOUND" }))
      const server = yield* listen((request) => Effect.succeed(answer(request)), Metrics.makeMemory())
      const endpoint = `${name}:${server.port}`
      const blind = yield* client({ dialler: DialAddress.make(lookup) })
      expect(yield* Effect.either(blind({ regionId: "r1", nodeId: "n1", endpoint }, heartbeat, 1_000))).toMatchObject({ _tag: "Left" })
      const dialler = DialAddress.make(lookup)
      dialler.remember(name, [{ address: "127.0.0.1", family: 4 }])
      const send = yield* client({ dialler })
      expect(yield* send({ regionId: "r1", nodeId: "n1", endpoint }, heartbeat, 2_000)).toMatchObject({ _tag: "HeartbeatAck" })
      expect(dialler.fallingBack()).toEqual([name])
    })
  )

  it.scopedLive("a connection that resets every stream (INTERNAL) is dropped: the next call opens a fresh one and gets through", () =>
    Effect.gen(function* () {
      // A bare HTTP/2 server: on its first connection it resets every stream with a protocol
      // error (as a broken proxy in between did in a chaos run, leaving one link dead for the
      // whole run); on later connections it answers like a gRPC server.
      const sessions: Array<http2.ServerHttp2Session> = []
      const server = http2.createServer()
      server.on("session", (session) => void sessions.push(session))
      server.on("stream", (stream) => {
        // Closing a stream with an error code makes it emit that error here too; it is the point.
        stream.on("error", () => undefined)
        if (stream.session === sessions[0]) return stream.close(http2.constants.NGHTTP2_PROTOCOL_ERROR)
        stream.resume()
        stream.on("end", () => {
          const message = Buffer.from(WireCodec.encodeResponse(answer(heartbeat)))
          const frame = Buffer.alloc(5 + message.length)
          frame.writeUInt32BE(message.length, 1)
          message.copy(frame, 5)
          stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true })
          stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }))
          stream.end(frame)
        })
      })
      const port = yield* Effect.acquireRelease(
        Effect.async<number>((resume) => void server.listen(0, "127.0.0.1", () => resume(Effect.succeed((server.address() as AddressInfo).port)))),
        () =>
          Effect.sync(() => {
            for (const session of sessions) session.destroy()
            server.close()
          })
      )
      const send = yield* client()
      const reset = yield* Effect.flip(send(peerAt(port), heartbeat, 2_000))
      expect(reset.message).toMatch(/INTERNAL/)
      expect(yield* send(peerAt(port), heartbeat, 2_000)).toMatchObject({ _tag: "HeartbeatAck" })
      expect(sessions.length).toBe(2)
    })
  )

  it.scopedLive("a send to a node that is not serving yet fails Unreachable", () =>
    Effect.gen(function* () {
      const credentials = yield* Auth.load({ mode: "insecure" })
      const listener = yield* GrpcServer.listen({ bind: "127.0.0.1:0", credentials, shutdownGraceMs: 100 }).pipe(Effect.provide(Metrics.layerNoop))
      const send = yield* client()
      const error = yield* Effect.flip(send(peerAt(listener.port), heartbeat, 1_000))
      expect(error.reason).toBe("Unreachable")
    })
  )

  it.scopedLive("malformed bytes from a raw gRPC client are refused as Malformed and counted, and the server keeps serving", () =>
    Effect.gen(function* () {
      const totals = Metrics.makeMemory()
      const listener = yield* listen((request) => Effect.succeed(answer(request)), totals)

      const garbage = yield* rawCall(listener.port, ReplicationService.replicate.path, Uint8Array.of(0x0a, 0xff, 0xff, 0xff))
      expect(WireCodec.decodeResponse(garbage)).toMatchObject(Either.right({ _tag: "Refused", reason: "Malformed" }))

      const wrongMethod = yield* rawCall(listener.port, ReplicationService.replicate.path, WireCodec.encodeRequest(heartbeat))
      expect(WireCodec.decodeResponse(wrongMethod)).toMatchObject(Either.right({ _tag: "Refused", reason: "Malformed" }))
      expect(totals.refused).toBe(2)

      const send = yield* client()
      expect(yield* send(peerAt(listener.port), emptyBatch("b1"), 1_000)).toMatchObject({ _tag: "BatchAck", batchId: "b1" })
    })
  )

  it.scopedLive("an ack carries the per-origin high-water marks of the batch it acknowledges", () =>
    Effect.gen(function* () {
      const totals = Metrics.makeMemory()
      const listener = yield* listen((request) => Effect.succeed(answer(request)), totals)
      const batch: Message.ReplicateBatch = { ...emptyBatch("b2"), changes: [change(3), change(9), change(4)] }
      const bytes = yield* rawCall(listener.port, ReplicationService.replicate.path, WireCodec.encodeRequest(batch))
      expect(WireCodec.decodeResponseWithHighWater(bytes)).toMatchObject(Either.right({ highWater: { "us-west-1": 9 } }))
    })
  )

  it.scopedLive("batches in flight to one target never exceed the configured bound; the rest wait their turn", () =>
    Effect.gen(function* () {
      const totals = Metrics.makeMemory()
      const { inFlight, handler: held } = heldUntil(2)
      const listener = yield* listen(held, totals)
      const send = yield* client({ inFlightPerTargetMax: 2 })
      const batches = Array.from({ length: 6 }, (_, index) => emptyBatch(`b${index}`))
      const acks = yield* Effect.forEach(batches, (batch) => send(peerAt(listener.port), batch, 3_000), { concurrency: "unbounded" })
      expect(acks.map((ack) => ack._tag)).toStrictEqual(Array(6).fill("BatchAck"))
      expect(inFlight.most).toBe(2)
    })
  )

  // The test above cannot tell a missing bound: once two are held its handler answers every
  // request at once, and a sender without a bound passed it (a request that finds a free permit
  // takes it without waiting, `GrpcNetwork.withPermit`, and dropping the permit there went unseen).
  it.scopedLive("a server that answers nothing holds exactly the bound of batches, however many are sent at once; the rest go out as answers come", () =>
    Effect.gen(function* () {
      const release = new Handoff.Gate()
      const { inFlight, handler } = counting(() => release.await)
      const listener = yield* listen(handler, Metrics.makeMemory())
      const send = yield* client({ inFlightPerTargetMax: 2 })
      const batches = Array.from({ length: 6 }, (_, index) => emptyBatch(`b${index}`))
      const sending = yield* Effect.fork(Effect.forEach(batches, (batch) => send(peerAt(listener.port), batch, 10_000), { concurrency: "unbounded" }))
      yield* until(() => inFlight.now === 2)
      // Proving that nothing more arrives needs a window: an unbounded sender's other four frames
      // follow the first two within milliseconds. A slow machine can only make this check weaker.
      yield* Effect.sleep("300 millis")
      expect(inFlight.now).toBe(2)
      release.unsafeOpen()
      const acks = yield* Fiber.join(sending)
      expect(acks.map((ack) => ack._tag)).toStrictEqual(Array(6).fill("BatchAck"))
      expect(inFlight.most).toBe(2)
    })
  )

  it.scopedLive("a batch that waited for a slot goes out with its whole deadline, not what the wait left of it", () =>
    Effect.gen(function* () {
      // One slot, answers after 600 ms, deadlines of 1,000 ms: the second batch waits about 600 ms
      // and then needs 600 more. Sent with what the wait left, it timed out on the wire, and behind
      // a window of batches much wider than the bound every one did (swarm seed 123000087).
      const { handler: slow } = slowCounting("600 millis")
      const listener = yield* listen(slow, Metrics.makeMemory())
      const send = yield* client({ inFlightPerTargetMax: 1 })
      const outcomes = yield* Effect.forEach([emptyBatch("first"), emptyBatch("second")], (batch) => Effect.either(send(peerAt(listener.port), batch, 1_000)), { concurrency: "unbounded" })
      expect(outcomes.map((outcome) => (Either.isRight(outcome) ? outcome.right._tag : outcome.left.reason))).toStrictEqual(["BatchAck", "BatchAck"])
    })
  )

  it("gRPC status codes map to the network error reasons the agent reports", () => {
    expect(GrpcNetwork.reasonFor(grpc.status.UNAVAILABLE)).toBe("Unreachable")
    expect(GrpcNetwork.reasonFor(grpc.status.DEADLINE_EXCEEDED)).toBe("Timeout")
    expect(GrpcNetwork.reasonFor(grpc.status.UNAUTHENTICATED)).toBe("Unauthenticated")
    expect(GrpcNetwork.reasonFor(grpc.status.INTERNAL)).toBe("Rejected")
    expect(GrpcNetwork.reasonFor(grpc.status.UNAVAILABLE, "SSL routines:ssl3_read_bytes:tlsv13 alert certificate required")).toBe("Unauthenticated")
    expect(GrpcNetwork.grpcAddress("grpc://engine-eu.internal:50051/")).toBe("engine-eu.internal:50051")
    expect(GrpcNetwork.grpcAddress("localhost:50052")).toBe("localhost:50052")
  })
})

const rawDefinition: grpc.ServiceDefinition = {
  replicate: { ...ReplicationService.replicate, requestSerialize: (value: Buffer) => value, requestDeserialize: (value: Buffer) => value, responseSerialize: (value: Buffer) => value, responseDeserialize: (value: Buffer) => value },
  replicateStream: { ...ReplicationService.replicateStream, requestSerialize: (value: Buffer) => value, requestDeserialize: (value: Buffer) => value, responseSerialize: (value: Buffer) => value, responseDeserialize: (value: Buffer) => value }
}

/** What a bare server saw: unary Replicate calls, streams opened and frames on them. */
interface Seen {
  unary: number
  streams: number
  frames: number
}

/** The answer bytes to an encoded request, as the real server would give them. */
const answerBytes = (bytes: Uint8Array): Buffer => {
  const request = WireCodec.decodeRequest(bytes)
  if (Either.isLeft(request)) throw new Error(request.left)
  return Buffer.from(WireCodec.encodeResponse(answer(request.right), request.right))
}

/** A bare grpc-js server with Replicate, and ReplicateStream unless `withStream` is false (a node of an older version). */
const bareServer = (
  seen: Seen,
  withStream: boolean,
  // Undefined: the frame is never answered.
  answerFrame = (frame: StreamFrames.RequestFrame): Buffer | undefined => StreamFrames.encodeResponse(frame.id, answerBytes(frame.request))
) =>
  Effect.acquireRelease(
    Effect.async<{ readonly server: grpc.Server; readonly port: number }>((resume) => {
      const server = new grpc.Server()
      const definition = withStream ? rawDefinition : { replicate: rawDefinition.replicate! }
      server.addService(definition, {
        replicate: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
          seen.unary++
          callback(null, answerBytes(call.request))
        },
        ...(withStream
          ? {
              replicateStream: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
                seen.streams++
                call.on("data", (bytes: Buffer) => {
                  seen.frames++
                  const frame = StreamFrames.decodeRequest(bytes)
                  if (typeof frame === "string") throw new Error(frame)
                  const answer = answerFrame(frame)
                  if (answer !== undefined) call.write(answer)
                })
                call.on("end", () => call.end())
              }
            }
          : {})
      })
      server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (_error, port) => resume(Effect.succeed({ server, port })))
    }),
    ({ server }) => Effect.sync(() => server.forceShutdown())
  )

/** A raw ReplicateStream from a plain grpc-js client: frames out, frames (and the end status) in. */
const rawStream = (port: number) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const raw = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure())
      const call = raw.makeBidiStreamRequest(ReplicationService.replicateStream.path, (value: Buffer) => value, (value: Buffer) => value, new grpc.Metadata(), {})
      const received: Array<Buffer> = []
      const ended: { status: grpc.StatusObject | undefined } = { status: undefined }
      call.on("data", (bytes: Buffer) => void received.push(bytes))
      call.on("error", () => undefined)
      call.on("status", (status: grpc.StatusObject) => void (ended.status = status))
      return { raw, call, received, ended }
    }),
    ({ raw, call }) =>
      Effect.sync(() => {
        call.cancel()
        raw.close()
      })
  )

/** Waits (polling, at most 5 s) until `ready` holds. */
const until = (ready: () => boolean) =>
  Effect.gen(function* () {
    for (let waited = 0; !ready(); waited += 5) {
      if (waited > 5_000) return yield* Effect.dieMessage("condition not met within 5 s")
      yield* Effect.sleep("5 millis")
    }
  })

describe("GrpcNetwork: the replication stream", () => {
  it.scopedLive("batches travel as frames of one stream per peer; configured off, as one unary Replicate call each", () =>
    Effect.gen(function* () {
      const seen: Seen = { unary: 0, streams: 0, frames: 0 }
      const { port } = yield* bareServer(seen, true)
      const send = yield* client()
      const acks = yield* Effect.forEach(["b1", "b2", "b3"], (id) => send(peerAt(port), emptyBatch(id), 2_000), { concurrency: "unbounded" })
      expect(acks.map((ack) => (ack._tag === "BatchAck" ? ack.batchId : ack._tag)).sort()).toStrictEqual(["b1", "b2", "b3"])
      expect(seen).toStrictEqual({ unary: 0, streams: 1, frames: 3 })

      const unaryOnly = yield* client({ replicationStream: false })
      for (const id of ["b4", "b5"]) expect(yield* unaryOnly(peerAt(port), emptyBatch(id), 2_000)).toMatchObject({ _tag: "BatchAck", batchId: id })
      expect(seen).toStrictEqual({ unary: 2, streams: 1, frames: 3 })
    })
  )

  it.effect("a stream opened on a closed channel fails its requests UNAVAILABLE instead of throwing, and is closed", () =>
    Effect.gen(function* () {
      const closed = new grpc.Client("127.0.0.1:1", grpc.credentials.createInsecure())
      closed.close()
      const stream = ReplicationStream.open(closed, ReplicationService.replicateStream.path, new grpc.Metadata(), 1_024)
      const failure = yield* Effect.flip(stream.send(Uint8Array.of(1, 2, 3)))
      expect(failure).toMatchObject({ code: grpc.status.UNAVAILABLE, details: expect.stringMatching(/could not start the call: Channel has been shut down/) })
      // Nothing was sent, so the failure does not say the stream ended under requests it may have handled.
      expect(failure.streamEnded).toBeUndefined()
      expect(stream.closed()).toBe(true)
    })
  )

  it.scopedLive("a peer without the stream (an older version) answers UNIMPLEMENTED once, then gets unary calls", () =>
    Effect.gen(function* () {
      const seen: Seen = { unary: 0, streams: 0, frames: 0 }
      const { port } = yield* bareServer(seen, false)
      const send = yield* client()
      for (const id of ["b1", "b2", "b3"]) expect(yield* send(peerAt(port), emptyBatch(id), 2_000)).toMatchObject({ _tag: "BatchAck", batchId: id })
      expect(seen).toStrictEqual({ unary: 3, streams: 0, frames: 0 })
    })
  )

  it.scopedLive("an answer frame that is not one fails the requests on the stream (INTERNAL), and the next request gets a fresh stream", () =>
    Effect.gen(function* () {
      const seen: Seen = { unary: 0, streams: 0, frames: 0 }
      const { port } = yield* bareServer(seen, true, (frame) =>
        Either.getOrUndefined(WireCodec.decodeRequest(frame.request))?._tag === "ReplicateBatch" && seen.streams === 1
          ? Buffer.from([0x12, 0x05, 0x01])
          : StreamFrames.encodeResponse(frame.id, answerBytes(frame.request))
      )
      const send = yield* client()
      const broken = yield* Effect.flip(send(peerAt(port), emptyBatch("b1"), 2_000))
      expect([broken.reason, broken.message]).toMatchObject(["Rejected", expect.stringMatching(/INTERNAL: malformed answer on the replication stream/)])
      expect(yield* send(peerAt(port), emptyBatch("b2"), 2_000)).toMatchObject({ _tag: "BatchAck", batchId: "b2" })
      expect(seen.streams).toBe(2)
    })
  )

  it.scopedLive("a batch its sender abandons is only cancelled: the stream and its channel go on, and the next batch travels on them", () =>
    Effect.gen(function* () {
      const seen: Seen = { unary: 0, streams: 0, frames: 0 }
      const isBatch = (frame: StreamFrames.RequestFrame, id: string) => {
        const request = Either.getOrUndefined(WireCodec.decodeRequest(frame.request))
        return request?._tag === "ReplicateBatch" && request.batchId === id
      }
      const { port } = yield* bareServer(seen, true, (frame) => (isBatch(frame, "never") ? undefined : StreamFrames.encodeResponse(frame.id, answerBytes(frame.request))))
      const send = yield* client()
      expect(yield* send(peerAt(port), emptyBatch("first"), 2_000)).toMatchObject({ _tag: "BatchAck" })
      const abandoned = yield* Effect.fork(send(peerAt(port), emptyBatch("never"), 10_000))
      yield* until(() => seen.frames === 2)
      yield* Fiber.interrupt(abandoned)
      expect(yield* send(peerAt(port), emptyBatch("next"), 2_000)).toMatchObject({ _tag: "BatchAck", batchId: "next" })
      expect(seen).toStrictEqual({ unary: 0, streams: 1, frames: 3 })
    })
  )

  it.scopedLive("a batch that misses its deadline while the channel answers others meanwhile fails Timeout alone: the channel and its stream go on", () =>
    Effect.gen(function* () {
      const seen: Seen = { unary: 0, streams: 0, frames: 0 }
      const unanswered = (frame: StreamFrames.RequestFrame) => {
        const request = Either.getOrUndefined(WireCodec.decodeRequest(frame.request))
        return request?._tag === "ReplicateBatch" && request.batchId === "never"
      }
      const { port } = yield* bareServer(seen, true, (frame) => (unanswered(frame) ? undefined : StreamFrames.encodeResponse(frame.id, answerBytes(frame.request))))
      const send = yield* client()
      const slow = yield* Effect.fork(send(peerAt(port), emptyBatch("never"), 400))
      yield* until(() => seen.frames === 1)
      yield* Effect.sleep("5 millis") // the next answer must come after the slow batch was sent, on another millisecond
      expect(yield* send(peerAt(port), emptyBatch("meanwhile"), 2_000)).toMatchObject({ _tag: "BatchAck" })
      expect((yield* Effect.flip(Fiber.join(slow))).reason).toBe("Timeout")
      expect(yield* send(peerAt(port), emptyBatch("next"), 2_000)).toMatchObject({ _tag: "BatchAck", batchId: "next" })
      expect(seen).toStrictEqual({ unary: 0, streams: 1, frames: 3 })
    })
  )

  it.scopedLive("a batch that misses its deadline on a channel silent for channelSilenceMs rebuilds the channel: the next batch opens a new stream", () =>
    Effect.gen(function* () {
      const seen: Seen = { unary: 0, streams: 0, frames: 0 }
      const { port } = yield* bareServer(seen, true, () => undefined)
      const send = yield* client()
      expect((yield* Effect.flip(send(peerAt(port), emptyBatch("first"), GrpcNetwork.channelSilenceMs + 300))).reason).toBe("Timeout")
      expect((yield* Effect.flip(send(peerAt(port), emptyBatch("second"), 300))).reason).toBe("Timeout")
      expect(seen).toMatchObject({ streams: 2, frames: 2 })
    })
  )

  it.scopedLive("a batch slower than its deadline fails Timeout at the deadline, and the next batch is answered", () =>
    Effect.gen(function* () {
      const totals = Metrics.makeMemory()
      const handler: Network.Handler = (request) =>
        request._tag === "ReplicateBatch" && request.batchId === "slow" ? Effect.as(Effect.sleep("3 seconds"), answer(request)) : Effect.succeed(answer(request))
      const listener = yield* listen(handler, totals)
      const send = yield* client()
      expect(yield* send(peerAt(listener.port), emptyBatch("first"), 2_000)).toMatchObject({ _tag: "BatchAck" })
      const started = Date.now()
      const error = yield* Effect.flip(send(peerAt(listener.port), emptyBatch("slow"), 200))
      expect(error.reason).toBe("Timeout")
      expect(Date.now() - started).toBeLessThan(1_500)
      expect(yield* send(peerAt(listener.port), emptyBatch("next"), 2_000)).toMatchObject({ _tag: "BatchAck", batchId: "next" })
    })
  )

  it.scopedLive("a stopped server fails the batches on its stream Unreachable, and one restarted on the same port gets the next batch at once", () =>
    Effect.gen(function* () {
      const totals = Metrics.makeMemory()
      const send = yield* client()
      const firstScope = yield* Scope.make()
      const first = yield* Scope.extend(listen((request) => Effect.succeed(answer(request)), totals), firstScope)
      const peer = peerAt(first.port)
      expect(yield* send(peer, emptyBatch("b1"), 1_000)).toMatchObject({ _tag: "BatchAck" })
      yield* Scope.close(firstScope, Exit.void)
      expect((yield* Effect.flip(send(peer, emptyBatch("b2"), 1_000))).reason).toBe("Unreachable")
      yield* listen((request) => Effect.succeed(answer(request)), totals, `127.0.0.1:${first.port}`)
      expect(yield* send(peer, emptyBatch("b3"), 1_000)).toMatchObject({ _tag: "BatchAck", batchId: "b3" })
    })
  )

  it.scopedLive("a server with open streams stops without waiting out its shutdown grace, after answering the batch in flight", () =>
    Effect.gen(function* () {
      const totals = Metrics.makeMemory()
      const send = yield* client()
      const scope = yield* Scope.make()
      const credentials = yield* Auth.load({ mode: "insecure" })
      const listener = yield* Scope.extend(GrpcServer.listen({ bind: "127.0.0.1:0", credentials, shutdownGraceMs: 30_000 }).pipe(Effect.provide(Metrics.layerMemory(totals))), scope)
      const handled = { started: false }
      const slow: Network.Handler = (request) => Effect.zipRight(Effect.sync(() => void (handled.started = true)), Effect.as(Effect.sleep("300 millis"), answer(request)))
      yield* Scope.extend(listener.serveReplication(slow), scope)
      const inFlight = yield* Effect.fork(send(peerAt(listener.port), emptyBatch("in-flight"), 5_000))
      yield* until(() => handled.started)
      const started = Date.now()
      yield* Scope.close(scope, Exit.void)
      expect(Date.now() - started).toBeLessThan(10_000)
      expect(yield* Effect.flatten(inFlight.await)).toMatchObject({ _tag: "BatchAck", batchId: "in-flight" })
      expect((yield* Effect.flip(send(peerAt(listener.port), emptyBatch("after"), 1_000))).reason).toBe("Unreachable")
    })
  )

  it.scopedLive("a frame that is not one ends the stream INVALID_ARGUMENT, counted Malformed; a malformed request in a frame is answered Refused; the server keeps serving", () =>
    Effect.gen(function* () {
      const totals = Metrics.makeMemory()
      const listener = yield* listen((request) => Effect.succeed(answer(request)), totals)

      const good = yield* rawStream(listener.port)
      good.call.write(StreamFrames.encodeRequest(7, Uint8Array.of(0x0a, 0xff, 0xff, 0xff)))
      good.call.write(StreamFrames.encodeRequest(8, WireCodec.encodeRequest(heartbeat)))
      good.call.write(StreamFrames.encodeRequest(9, WireCodec.encodeRequest(emptyBatch("b9"))))
      yield* until(() => good.received.length === 3)
      const answers = new Map(good.received.map((bytes) => {
        const frame = StreamFrames.decodeResponse(bytes)
        if (typeof frame === "string" || !("response" in frame)) throw new Error(`not an answer: ${JSON.stringify(frame)}`)
        return [frame.id, WireCodec.decodeResponse(frame.response)] as const
      }))
      expect(answers.get(7)).toMatchObject(Either.right({ _tag: "Refused", reason: "Malformed" }))
      expect(answers.get(8)).toMatchObject(Either.right({ _tag: "Refused", reason: "Malformed" }))
      expect(answers.get(9)).toMatchObject(Either.right({ _tag: "BatchAck", batchId: "b9" }))
      expect(totals.refused).toBe(2)

      const bad = yield* rawStream(listener.port)
      bad.call.write(Buffer.from([0x12, 0x03, 0x01, 0x02]))
      yield* until(() => bad.ended.status !== undefined)
      expect(bad.ended.status?.code).toBe(grpc.status.INVALID_ARGUMENT)
      expect(totals.refused).toBe(3)

      const send = yield* client()
      expect(yield* send(peerAt(listener.port), emptyBatch("after"), 1_000)).toMatchObject({ _tag: "BatchAck", batchId: "after" })
    })
  )

  it.scopedLive("one stream has at most streamRequestsInFlightMax requests handled at once; the rest are read as answers go out", () =>
    Effect.gen(function* () {
      const totals = Metrics.makeMemory()
      const { inFlight, handler: held } = heldUntil(GrpcServer.streamRequestsInFlightMax)
      const listener = yield* listen(held, totals)
      const stream = yield* rawStream(listener.port)
      const count = GrpcServer.streamRequestsInFlightMax * 2 + 5
      for (let id = 1; id <= count; id++) stream.call.write(StreamFrames.encodeRequest(id, WireCodec.encodeRequest(emptyBatch(`b${id}`))))
      yield* until(() => stream.received.length === count)
      expect(inFlight.most).toBe(GrpcServer.streamRequestsInFlightMax)
    })
  )

  it.scopedLive("a sender that does not read its answers makes the server stop reading its requests; once it reads, every request is answered", () =>
    Effect.gen(function* () {
      const totals = Metrics.makeMemory()
      const handled = { count: 0 }
      const listener = yield* listen((request) => Effect.sync(() => (handled.count++, answer(request))), totals)
      // A plain grpc-js client keeps HTTP/2's default 64 KiB window: about a thousand unread answers fill it.
      const stream = yield* rawStream(listener.port)
      stream.call.pause()
      const count = 5_000
      for (let id = 1; id <= count; id++) stream.call.write(StreamFrames.encodeRequest(id, WireCodec.encodeRequest(emptyBatch(`b${id}`))))
      // Wait until the server stopped handling requests (no progress for 300 ms) or handled them all.
      let seen = -1
      while (seen !== handled.count && handled.count < count) {
        seen = handled.count
        yield* Effect.sleep("300 millis")
      }
      expect(handled.count).toBeLessThan(count)
      stream.call.resume()
      yield* until(() => stream.received.length === count)
      expect(handled.count).toBe(count)
    })
  )

  it.scopedLive("a batch above the message bound fails alone (TooLarge, RESOURCE_EXHAUSTED); the batches beside it on the stream are acknowledged", () =>
    Effect.gen(function* () {
      const totals = Metrics.makeMemory()
      const listener = yield* listen((request) => Effect.succeed(answer(request)), totals)
      const send = yield* client({ messageBytesMax: 4_096 })
      const big: Message.ReplicateBatch = { ...emptyBatch("big"), changes: Array.from({ length: 40 }, (_, index) => change(index + 1)) }
      const [small, tooBig, after] = yield* Effect.all(
        [send(peerAt(listener.port), emptyBatch("small"), 2_000), Effect.either(send(peerAt(listener.port), big, 2_000)), send(peerAt(listener.port), emptyBatch("after"), 2_000)],
        { concurrency: "unbounded" }
      )
      expect(small).toMatchObject({ _tag: "BatchAck", batchId: "small" })
      expect(after).toMatchObject({ _tag: "BatchAck", batchId: "after" })
      expect(Either.isLeft(tooBig) ? [tooBig.left.reason, tooBig.left.message] : tooBig.right).toMatchObject(["TooLarge", expect.stringMatching(/RESOURCE_EXHAUSTED/)])
    })
  )

  it.scopedLive("a batch above the receiving server's bound, and an answer above the sending server's, fail TooLarge; a refusal of a full disk stays Rejected", () =>
    Effect.gen(function* () {
      const totals = Metrics.makeMemory()
      const entries = Array.from({ length: 40 }, (_, index) => ({ position: index + 1, change: change(index + 1), receivedFrom: null, appliedAtMs: 2 }))
      // The server takes and sends at most 4 KiB; the client's bound is the default, 16 MiB.
      const listener = yield* listen(
        (request) => Effect.succeed(request._tag === "CatchUp" ? { _tag: "LogPage", entries, endPosition: 40, logEnd: 40 } : answer(request)),
        totals,
        "127.0.0.1:0",
        4_096
      )
      for (const replicationStream of [true, false]) {
        const send = yield* client({ replicationStream })
        const big: Message.ReplicateBatch = { ...emptyBatch("big"), changes: Array.from({ length: 60 }, (_, index) => change(index + 1)) }
        const refused = yield* Effect.flip(send(peerAt(listener.port), big, 2_000))
        expect([refused.reason, refused.message]).toMatchObject(["TooLarge", expect.stringMatching(/RESOURCE_EXHAUSTED/)])
        const catchUp: Message.CatchUp = { _tag: "CatchUp", fromRegion: "r0", fromNode: "n0", afterPosition: 0, limit: 40 }
        const page = yield* Effect.flip(send(peerAt(listener.port), catchUp, 2_000))
        expect([page.reason, page.message]).toMatchObject(["TooLarge", expect.stringMatching(/RESOURCE_EXHAUSTED/)])
        expect(yield* send(peerAt(listener.port), emptyBatch("small"), 2_000)).toMatchObject({ _tag: "BatchAck", batchId: "small" })
        // Beside them, small batches on the same stream are never taken for too large: a page above
        // the server's bound fails alone (the stream goes on), and a batch above it ends the stream
        // (grpc-js ends it for any message above its bound), failing the small one Unreachable at worst.
        const [pageBeside, smallBesidePage] = yield* Effect.all([Effect.either(send(peerAt(listener.port), catchUp, 2_000)), send(peerAt(listener.port), emptyBatch("beside-page"), 2_000)], {
          concurrency: "unbounded"
        })
        expect(Either.isLeft(pageBeside) ? pageBeside.left.reason : pageBeside.right._tag).toBe("TooLarge")
        expect(smallBesidePage).toMatchObject({ _tag: "BatchAck", batchId: "beside-page" })
        const [bigBeside, smallBesideBig] = yield* Effect.all([Effect.either(send(peerAt(listener.port), big, 2_000)), Effect.either(send(peerAt(listener.port), emptyBatch("beside-big"), 2_000))], {
          concurrency: "unbounded"
        })
        expect(Either.isLeft(bigBeside) ? bigBeside.left.reason : bigBeside.right._tag).toBe("TooLarge")
        expect(Either.isLeft(smallBesideBig) ? smallBesideBig.left.reason : smallBesideBig.right._tag).not.toBe("TooLarge")
      }
      expect(GrpcNetwork.reasonFor(grpc.status.RESOURCE_EXHAUSTED, "store: 10 MB free, below store.min_free_mb")).toBe("Rejected")
      expect(GrpcNetwork.reasonFor(grpc.status.RESOURCE_EXHAUSTED, "Received message larger than max (5000 vs. 4096)")).toBe("TooLarge")
    })
  )

  it.scopedLive("with token auth, a stream without the right token is refused Unauthenticated and counted; with it, batches are acknowledged", () =>
    Effect.gen(function* () {
      const totals = Metrics.makeMemory()
      const credentials = yield* Auth.load({ mode: "token", token: "s3cret" })
      const listener = yield* GrpcServer.listen({ bind: "127.0.0.1:0", credentials, shutdownGraceMs: 100 }).pipe(Effect.provide(Metrics.layerMemory(totals)))
      yield* listener.serveReplication((request) => Effect.succeed(answer(request)))
      const wrong = yield* Effect.flatMap(Auth.load({ mode: "token", token: "guess" }), (credentials) => GrpcNetwork.makeClient({ credentials }))
      expect((yield* Effect.flip(wrong(peerAt(listener.port), emptyBatch("b1"), 2_000))).reason).toBe("Unauthenticated")
      expect(totals.refused).toBe(1)
      const right = yield* GrpcNetwork.makeClient({ credentials })
      expect(yield* right(peerAt(listener.port), emptyBatch("b2"), 2_000)).toMatchObject({ _tag: "BatchAck", batchId: "b2" })
    })
  )
})
