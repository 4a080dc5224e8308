/**
 * The public API's WriteStream, both sides: `GrpcServer` answering frames as Write calls, and
 * `ApiClient` with `writeStream` (the `WriteStream` module) keeping a Write call's promise and
 * statuses, falling back to Write calls on a node without the method, and reporting a stream that
 * ended under a write as an unknown outcome (never as the refusal its status might read as). A
 * real node (`Cluster`, MultiMaster, `acme` homed in us-west-1, `eu-home` in eu-central-1) behind
 * `makeServer`; bare grpc-js servers stand in for an older node and a misbehaving one. Real time.
 */
import * as grpc from "@grpc/grpc-js"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Scope } from "effect"
import * as Proto from "../../src/proto/inferadb/replication/v1/messages.js"
import { RelationshipsService } from "../../src/proto/inferadb/replication/v1/service.js"
import * as Metrics from "../../src/replication/Metrics.js"
import * as ApiClient from "../../src/runtime/ApiClient.js"
import type * as Auth from "../../src/runtime/Auth.js"
import * as GrpcServer from "../../src/runtime/GrpcServer.js"
import * as StreamFrames from "../../src/runtime/StreamFrames.js"
import * as WriteStream from "../../src/runtime/WriteStream.js"
import * as Cluster from "../replication/fixtures/cluster.js"

const WEST = "us-west-1"
const EUROPE = "eu-central-1"

/** A started us-west-1 node served by `makeServer` in `scope`, with its refusals counted. */
/** Writes the served replica was asked for, counted as they start and as they end (each ending's error tag, or "ok"). */
interface SlowWrites {
  started: number
  readonly ended: Array<string>
}

const serveWest = (scope: Scope.Scope, auth: Auth.Options = { mode: "insecure" }, shutdownGraceMs = 100, slowWrites?: SlowWrites) =>
  Effect.gen(function* () {
    const cluster = Cluster.make({
      regions: [WEST, EUROPE],
      strategy: "MultiMaster",
      vaults: [
        { vault: "acme", homeRegion: WEST },
        { vault: "eu-home", homeRegion: EUROPE }
      ]
    })
    const node = yield* cluster.start(WEST)
    yield* Effect.addFinalizer(() => node.stop)
    const totals = Metrics.makeMemory()
    const listener = yield* Scope.extend(
      GrpcServer.makeServer({
        bind: "127.0.0.1:0",
        auth,
        metrics: Metrics.recorderMemory(totals),
        // With `slowWrites`, each write is counted as it starts, takes 300 ms more, and is counted as it ends.
        replica:
          slowWrites === undefined
            ? node.replica
            : {
                ...node.replica,
                write: (operations, writeOptions) =>
                  Effect.sync(() => void slowWrites.started++).pipe(
                    Effect.zipRight(Effect.sleep("300 millis")),
                    Effect.zipRight(node.replica.write(operations, writeOptions)),
                    Effect.tapBoth({
                      onFailure: (error) => Effect.sync(() => void slowWrites.ended.push(error._tag === "WriteRejected" ? error.reason : error._tag)),
                      onSuccess: () => Effect.sync(() => void slowWrites.ended.push("ok"))
                    })
                  )
              },
        feed: node.feed,
        store: node.store,
        topology: node.topology,
        shutdownGraceMs
      }),
      scope
    )
    return { node, totals, address: `127.0.0.1:${listener.port}` }
  }).pipe(Effect.orDie)

/** An ApiClient that writes on a WriteStream, closed with the test's scope. */
const streamingClient = (address: string, options: ApiClient.Options = {}) =>
  Effect.acquireRelease(
    Effect.sync(() => ApiClient.make(address, { writeStream: true, ...options })),
    (client) => Effect.sync(() => client.close())
  )

const viewers = (count: number, prefix = "user:u") => Array.from({ length: count }, (_, index) => ({ resource: "document:readme", relation: "viewer", subject: `${prefix}${index}` }))

/** A failed promise's gRPC status code and details. */
const failureOf = (promise: () => Promise<unknown>) =>
  Effect.flip(Effect.tryPromise({ try: promise, catch: (error) => error as grpc.ServiceError })).pipe(Effect.map((error) => ({ code: error.code, details: error.details, message: error.message })))

const identity = (bytes: Buffer): Buffer => bytes
const rawMethod = (method: { readonly path: string; readonly requestStream: boolean; readonly responseStream: boolean }) => ({
  ...method,
  requestSerialize: identity,
  requestDeserialize: identity,
  responseSerialize: identity,
  responseDeserialize: identity
})

/** What a bare server saw. */
interface Seen {
  unary: number
  streams: number
  frames: number
}

/**
 * A bare grpc-js Relationships server: Write answered at once, and WriteStream (unless
 * `withStream` is false: an older node) handled by `onFrame`.
 */
const bareServer = (seen: Seen, withStream: boolean, onFrame: (call: grpc.ServerDuplexStream<Buffer, Buffer>, frame: StreamFrames.RequestFrame) => void = () => undefined) =>
  Effect.acquireRelease(
    Effect.async<{ readonly server: grpc.Server; readonly address: string }>((resume) => {
      const server = new grpc.Server()
      const write = (_call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
        seen.unary++
        callback(null, Buffer.from(Proto.WriteResponse.encode({ revision: 7, position: seen.unary, epoch: 0 }).finish()))
      }
      const writeStream = (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
        seen.streams++
        call.on("data", (bytes: Buffer) => {
          seen.frames++
          const frame = StreamFrames.decodeRequest(bytes)
          if (typeof frame !== "string") onFrame(call, frame)
        })
        call.on("error", () => undefined)
      }
      server.addService(
        withStream ? { write: rawMethod(RelationshipsService.write), writeStream: rawMethod(RelationshipsService.writeStream) } : { write: rawMethod(RelationshipsService.write) },
        withStream ? { write, writeStream } : { write }
      )
      server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (_error, port) => resume(Effect.succeed({ server, address: `127.0.0.1:${port}` })))
    }),
    ({ server }) => Effect.sync(() => server.forceShutdown())
  )

describe("WriteStream", () => {
  it.scopedLive("writes on one stream are committed and answered as Write calls are; a refused write fails alone and the stream goes on", () =>
    Effect.gen(function* () {
      const { node, totals, address } = yield* serveWest(yield* Effect.scope)
      const client = yield* streamingClient(address)
      const written = yield* Effect.promise(() => Promise.all([0, 1, 2, 3].map((index) => client.insert("acme", viewers(5, `user:w${index}-`)))))
      // Four writes of five changes: each acknowledged with the position of its last change.
      expect(written.map((ack) => ack.position).sort((a, b) => a - b)).toStrictEqual([5, 10, 15, 20])
      expect(yield* Effect.promise(() => client.read("acme", "document:readme"))).toHaveLength(20)

      const invalid = yield* failureOf(() => client.insert("acme", [{ resource: "readme", relation: "viewer", subject: "user:x" }]))
      expect(invalid.code).toBe(grpc.status.INVALID_ARGUMENT)
      expect(invalid.message).toMatch(/^3 INVALID_ARGUMENT: invalid tuple/)
      expect(totals.refused).toBe(1)
      const misdirected = yield* failureOf(() => client.insert("eu-home", viewers(1)))
      expect(misdirected.code).toBe(grpc.status.FAILED_PRECONDITION)
      expect(misdirected.details).toContain(EUROPE)

      const after = yield* Effect.promise(() => client.delete("acme", viewers(1, "user:w0-")))
      expect(after.position).toBe(21)
      expect(yield* Effect.promise(() => client.write("acme", [{ op: "insert", ...viewers(1, "user:late")[0]! }]))).toMatchObject({ position: 22 })
      expect((yield* node.store.logEnd)).toBe(22)
    })
  )

  it.scopedLive("on the wire: each frame is answered by a frame with its id; a malformed request fails its write alone, a malformed frame ends the stream INVALID_ARGUMENT", () =>
    Effect.gen(function* () {
      const { totals, address } = yield* serveWest(yield* Effect.scope)
      const raw = yield* Effect.acquireRelease(
        Effect.sync(() => new grpc.Client(address, grpc.credentials.createInsecure())),
        (client) => Effect.sync(() => client.close())
      )
      const call = raw.makeBidiStreamRequest(RelationshipsService.writeStream.path, identity, identity, new grpc.Metadata(), {})
      const received: Array<StreamFrames.ResponseFrame | string> = []
      let ended: grpc.StatusObject | undefined
      call.on("data", (bytes: Buffer) => void received.push(StreamFrames.decodeResponse(bytes)))
      call.on("error", () => undefined)
      call.on("status", (status: grpc.StatusObject) => void (ended = status))
      const request = Proto.WriteRequest.encode({ vault: "acme", operations: [{ op: Proto.Operation.OPERATION_INSERT, relationship: { resource: "document:readme", relation: "viewer", subject: "user:alice" } }] }).finish()
      call.write(StreamFrames.encodeRequest(41, request))
      call.write(StreamFrames.encodeRequest(42, Uint8Array.of(0x0a, 0xff, 0xff)))
      yield* Effect.promise(() => waitFor(() => received.length === 2))
      const byId = new Map<number, StreamFrames.ResponseFrame | string>(received.map((frame) => (typeof frame === "string" ? [0, frame] : [frame.id, frame])))
      const first = byId.get(41)
      expect(first !== undefined && typeof first !== "string" && "response" in first && Proto.WriteResponse.decode(first.response).position).toBe(1)
      expect(byId.get(42)).toMatchObject({ id: 42, code: grpc.status.INVALID_ARGUMENT })
      expect(totals.refused).toBe(1)

      call.write(Buffer.from([0xff, 0xff, 0xff]))
      yield* Effect.promise(() => waitFor(() => ended !== undefined))
      expect(ended!.code).toBe(grpc.status.INVALID_ARGUMENT)
      expect(ended!.details).toMatch(/malformed request frame/)
      expect(totals.refused).toBe(2)
    })
  )

  it.scopedLive("a write above the node's message limit fails alone, RESOURCE_EXHAUSTED, before it is sent; the writes beside it go on", () =>
    Effect.gen(function* () {
      expect(WriteStream.frameBytesMax).toBe(GrpcServer.messageBytesMaxDefault)
      const { address } = yield* serveWest(yield* Effect.scope)
      const client = yield* streamingClient(address)
      const huge = [{ resource: "document:readme", relation: "viewer", subject: `user:${"x".repeat(WriteStream.frameBytesMax)}` }]
      const [tooLarge, beside] = yield* Effect.promise(() => Promise.allSettled([client.insert("acme", huge), client.insert("acme", viewers(3))]))
      expect(tooLarge.status === "rejected" && (tooLarge.reason as grpc.ServiceError).code).toBe(grpc.status.RESOURCE_EXHAUSTED)
      expect(beside).toMatchObject({ status: "fulfilled", value: { position: 3 } })
    })
  )

  it.scopedLive("in token mode the stream needs the token: without it every write fails UNAUTHENTICATED", () =>
    Effect.gen(function* () {
      const { address } = yield* serveWest(yield* Effect.scope, { mode: "token", token: "region-secret" })
      const stranger = yield* streamingClient(address, { token: "guess" })
      expect((yield* failureOf(() => stranger.insert("acme", viewers(1)))).code).toBe(grpc.status.UNAUTHENTICATED)
      const member = yield* streamingClient(address, { token: "region-secret" })
      expect(yield* Effect.promise(() => member.insert("acme", viewers(1)))).toMatchObject({ position: 1 })
    })
  )

  it.scopedLive("a node without WriteStream (an older version) gets Write calls, this write and every later one", () =>
    Effect.gen(function* () {
      const seen: Seen = { unary: 0, streams: 0, frames: 0 }
      const { address } = yield* bareServer(seen, false)
      const client = yield* streamingClient(address)
      expect(yield* Effect.promise(() => client.insert("acme", viewers(1)))).toMatchObject({ revision: 7, position: 1 })
      expect(yield* Effect.promise(() => client.insert("acme", viewers(1)))).toMatchObject({ position: 2 })
      expect(seen.unary).toBe(2)
    })
  )

  it.scopedLive("a write not answered in time fails DEADLINE_EXCEEDED; one on a stream that ends under it fails UNAVAILABLE whatever status the stream ended with", () =>
    Effect.gen(function* () {
      const seen: Seen = { unary: 0, streams: 0, frames: 0 }
      // The first frame is never answered; the second ends the stream RESOURCE_EXHAUSTED, a status
      // that, as a write's own answer, would say the write was refused.
      const { address } = yield* bareServer(seen, true, (call, frame) => {
        if (frame.id > 1) call.emit("error", { code: grpc.status.RESOURCE_EXHAUSTED, details: "the whole stream is refused" })
      })
      const client = yield* streamingClient(address, { callTimeoutMs: 300 })
      const started = Date.now()
      const late = yield* failureOf(() => client.insert("acme", viewers(1)))
      expect(late.code).toBe(grpc.status.DEADLINE_EXCEEDED)
      expect(Date.now() - started).toBeGreaterThanOrEqual(250)
      const cut = yield* failureOf(() => client.insert("acme", viewers(1)))
      expect(cut.code).toBe(grpc.status.UNAVAILABLE)
      expect(cut.details).toMatch(/may or may not have been committed/)
      expect(cut.details).toContain("RESOURCE_EXHAUSTED")
      // The next write opens a new stream.
      yield* failureOf(() => client.insert("acme", viewers(1)))
      expect(seen.streams).toBe(2)
    })
  )

  it.scopedLive("a write whose client's deadline passes before its commit is not committed, sent as a Write call or on the stream", () =>
    Effect.gen(function* () {
      const writes: SlowWrites = { started: 0, ended: [] }
      const { node, address } = yield* serveWest(yield* Effect.scope, { mode: "insecure" }, 100, writes)
      for (const [index, writeStream] of [false, true].entries()) {
        const client = yield* Effect.acquireRelease(
          Effect.sync(() => ApiClient.make(address, { writeStream, callTimeoutMs: 100 })),
          (client) => Effect.sync(() => client.close())
        )
        expect((yield* failureOf(() => client.insert("acme", viewers(2)))).code).toBe(grpc.status.DEADLINE_EXCEEDED)
        // The node held the write 300 ms, past the client's 100: it must refuse to commit it.
        yield* Effect.promise(() => waitFor(() => writes.ended.length === index + 1))
        expect(writes.ended[index]).toBe("DeadlineExceeded")
        expect(yield* node.store.logEnd).toBe(0)
      }
      // A client with time enough is served by the same node.
      const patient = yield* streamingClient(address, { callTimeoutMs: 5_000 })
      expect(yield* Effect.promise(() => patient.insert("acme", viewers(2)))).toMatchObject({ position: 2 })
    })
  )

  it.scopedLive("a server with open write streams stops without waiting out its shutdown grace, after answering the writes in flight", () =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const writes: SlowWrites = { started: 0, ended: [] }
      const { address } = yield* serveWest(scope, { mode: "insecure" }, 30_000, writes)
      const client = yield* streamingClient(address)
      expect(yield* Effect.promise(() => client.insert("acme", viewers(1)))).toMatchObject({ position: 1 })
      const inFlight = Effect.runPromiseExit(Effect.promise(() => client.insert("acme", viewers(50, "user:f"))))
      yield* Effect.promise(() => waitFor(() => writes.started === 2))
      const started = Date.now()
      yield* Scope.close(scope, Exit.void)
      expect(Date.now() - started).toBeLessThan(10_000)
      expect(yield* Effect.promise(() => inFlight)).toStrictEqual(Exit.succeed({ revision: expect.any(Number), position: 51, epoch: 0 }))
    })
  )
})

/** Polls `ready` every 5 ms for at most 5 s. */
const waitFor = async (ready: () => boolean): Promise<void> => {
  for (let waited = 0; !ready(); waited += 5) {
    if (waited > 5_000) throw new Error("condition not met within 5 s")
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}
