/**
 * The node's gRPC server beyond replication: the public Relationships API (Write, Delete,
 * Read, Check, Watch) and CatchUp paging over the durable log, served by `makeServer` on
 * 127.0.0.1 with real grpc-js clients generated from the protos. Real time throughout.
 */
import * as grpc from "@grpc/grpc-js"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either } from "effect"
import * as Proto from "../../src/proto/inferadb/replication/v1/messages.js"
import { RelationshipsClient, ReplicationClient, RelationshipsService } from "../../src/proto/inferadb/replication/v1/service.js"
import * as Metrics from "../../src/replication/Metrics.js"
import * as Store from "../../src/replication/Store.js"
import * as WireCodec from "../../src/replication/WireCodec.js"
import type * as Auth from "../../src/runtime/Auth.js"
import * as GrpcServer from "../../src/runtime/GrpcServer.js"
import * as PromMetrics from "../../src/runtime/PromMetrics.js"
import * as Cluster from "../replication/fixtures/cluster.js"
import * as Nodes from "./fixtures/grpcNodes.js"

const WEST = "us-west-1"
const EUROPE = "eu-central-1"

/** Runs one grpc-js callback-style call as an Effect. */
const call = <A>(invoke: (callback: (error: grpc.ServiceError | null, value?: A) => void) => unknown): Effect.Effect<A, grpc.ServiceError> =>
  Effect.async<A, grpc.ServiceError>((resume) => {
    invoke((error, value) => resume(error === null && value !== undefined ? Effect.succeed(value) : Effect.fail(error!)))
  })

const statusOf = <A>(effect: Effect.Effect<A, grpc.ServiceError>) => Effect.map(Effect.flip(effect), (error) => grpc.status[error.code])

/** How many requests the server counted as refused for `reason`, as `/metrics` reports them. */
const refused = (metrics: PromMetrics.PromMetrics, reason: GrpcServer.RefusalReason) =>
  Effect.promise(async () => {
    const counter = await metrics.registry.getSingleMetric(PromMetrics.names.requestsRefusedTotal)!.get()
    return counter.values.find((value) => value.labels["reason"] === reason)?.value ?? 0
  })

interface ServeOptions {
  readonly uninterruptible?: boolean
  readonly writeOperationsMax?: number
  readonly messageBytesMax?: number
}

/**
 * A started node of a MultiMaster cluster where `us-only` may live in us-west-1 alone, served
 * by `makeServer` (optionally bound inside an uninterruptible region, as in a layer or an
 * acquireRelease). Refusals are counted both in memory (`totals`) and in prom-client (`prom`).
 */
const serveWest = (auth: Auth.Options = { mode: "insecure" }, options: ServeOptions = {}) =>
  Effect.gen(function* () {
    const cluster = Cluster.make({
      regions: [WEST, EUROPE],
      strategy: "MultiMaster",
      vaults: [
        { vault: "acme", homeRegion: WEST },
        { vault: "us-only", homeRegion: WEST, allowedRegions: [WEST] },
        { vault: "eu-home", homeRegion: EUROPE }
      ]
    })
    // Not acquireRelease: its acquire is uninterruptible, and the node's fibers would inherit that.
    const node = yield* cluster.start(WEST)
    yield* Effect.addFinalizer(() => node.stop)
    const totals = Metrics.makeMemory()
    const prom = PromMetrics.make()
    const memory = Metrics.recorderMemory(totals)
    const server = GrpcServer.makeServer({
      bind: "127.0.0.1:0",
      auth,
      metrics: {
        ...memory,
        requestRefused: (reason) => {
          memory.requestRefused(reason)
          prom.recorder.requestRefused(reason)
        }
      },
      ...(options.writeOperationsMax === undefined ? {} : { writeOperationsMax: options.writeOperationsMax }),
      ...(options.messageBytesMax === undefined ? {} : { messageBytesMax: options.messageBytesMax }),
      replica: node.replica,
      feed: node.feed,
      store: node.store,
      topology: node.topology,
      shutdownGraceMs: 100
    })
    const listener = yield* (options.uninterruptible === true ? Effect.uninterruptible(server) : server)
    const address = `127.0.0.1:${listener.port}`
    const relationships = yield* Effect.acquireRelease(
      Effect.sync(() => new RelationshipsClient(address, grpc.credentials.createInsecure())),
      (client) => Effect.sync(() => client.close())
    )
    const replication = yield* Effect.acquireRelease(
      Effect.sync(() => new ReplicationClient(address, grpc.credentials.createInsecure())),
      (client) => Effect.sync(() => client.close())
    )
    return { node, listener, totals, prom, relationships, replication, nodeMetrics: cluster.metrics.get(WEST)! }
  }).pipe(Effect.orDie)

const relationship = (resource: string, relation: string, subject: string): Proto.Relationship => ({ resource, relation, subject })
const insert = (value: Proto.Relationship): Proto.WriteOperation => ({ op: Proto.Operation.OPERATION_INSERT, relationship: value })
const aliceViews = relationship("document:readme", "viewer", "user:alice")
const bobEdits = relationship("document:readme", "editor", "user:bob")

describe("GrpcServer", () => {
  it.scopedLive("a write through the public API is durable and visible to Read and Check, and a Delete removes it", () =>
    Effect.gen(function* () {
      const { relationships: client } = yield* serveWest()
      const written = yield* call<Proto.WriteResponse>((done) => client.write({ vault: "acme", operations: [insert(aliceViews), insert(bobEdits)] }, done))
      expect(written).toMatchObject({ position: 2 })
      // Revisions start from the wall clock in microseconds (they never repeat after a wiped disk).
      expect(written.revision).toBeGreaterThan(Date.now() * 1_000 - 60_000_000)

      const all = yield* call<Proto.ReadResponse>((done) => client.read({ vault: "acme", resource: "document:readme", pageSize: 0, pageToken: "" }, done))
      expect(all.nextPageToken).toBe("")
      expect(all.tuples.map((tuple) => tuple.relation).sort()).toStrictEqual(["editor", "viewer"])
      const viewers = yield* call<Proto.ReadResponse>((done) => client.read({ vault: "acme", resource: "document:readme", relation: "viewer", pageSize: 0, pageToken: "" }, done))
      expect(viewers.tuples).toStrictEqual([{ vault: "acme", ...aliceViews }])
      const tuple = { vault: "acme", ...aliceViews }
      expect(yield* call<Proto.CheckResponse>((done) => client.check({ tuple }, done))).toStrictEqual({ allowed: true })

      const deleted = yield* call<Proto.DeleteResponse>((done) => client.delete({ vault: "acme", relationships: [aliceViews] }, done))
      expect(deleted.position).toBe(3)
      expect(deleted.revision).toBeGreaterThan(written.revision)
      expect(yield* call<Proto.CheckResponse>((done) => client.check({ tuple }, done))).toStrictEqual({ allowed: false })
    })
  )

  it.scopedLive("invalid public API requests are answered INVALID_ARGUMENT and counted; a write the strategy forbids is FAILED_PRECONDITION and not", () =>
    Effect.gen(function* () {
      const { relationships: client, totals, listener, prom } = yield* serveWest()
      const noType = relationship("readme", "viewer", "user:alice")
      expect(yield* statusOf(call((done) => client.write({ vault: "acme", operations: [insert(noType)] }, done)))).toBe("INVALID_ARGUMENT")
      const unspecified = { op: Proto.Operation.OPERATION_UNSPECIFIED, relationship: aliceViews }
      expect(yield* statusOf(call((done) => client.write({ vault: "acme", operations: [unspecified] }, done)))).toBe("INVALID_ARGUMENT")
      expect(yield* statusOf(call((done) => client.write({ vault: "acme", operations: [] }, done)))).toBe("INVALID_ARGUMENT")
      expect(yield* statusOf(call((done) => client.check({}, done)))).toBe("INVALID_ARGUMENT")
      expect(yield* statusOf(call((done) => client.read({ vault: "acme", resource: "", pageSize: 0, pageToken: "" }, done)))).toBe("INVALID_ARGUMENT")
      expect(yield* statusOf(call((done) => client.read({ vault: "acme", resource: "document:readme", pageSize: 0, pageToken: "not a token!" }, done)))).toBe("INVALID_ARGUMENT")
      expect(yield* statusOf(call((done) => client.write({ vault: "eu-home", operations: [insert(aliceViews)] }, done)))).toBe("FAILED_PRECONDITION")
      expect(totals.refused).toBe(6)
      expect(yield* refused(prom, "Invalid")).toBe(6)

      // Bytes that are not a WriteRequest at all are counted as a malformed request.
      const raw = new grpc.Client(`127.0.0.1:${listener.port}`, grpc.credentials.createInsecure())
      const garbage = call<Buffer>((done) =>
        raw.makeUnaryRequest(RelationshipsService.write.path, (value: Buffer) => value, (value: Buffer) => value, Buffer.from([0x0a, 0xff]), done)
      )
      expect(yield* statusOf(garbage)).toBe("INVALID_ARGUMENT")
      raw.close()
      expect(totals.refused).toBe(7)
      expect(yield* refused(prom, "Malformed")).toBe(1)
    })
  )

  it.scopedLive("a watch from position 1 streams the existing log and then new changes, filtered, until the client cancels", () =>
    Effect.gen(function* () {
      const { relationships: client, node } = yield* serveWest()
      yield* call((done) => client.write({ vault: "acme", operations: [insert(aliceViews), insert(bobEdits)] }, done))
      const subscribersBefore = (yield* node.feed.stats).subscribers

      const stream = client.watch({ fromPosition: 1, filter: { vault: "acme", relation: "viewer", operation: Proto.Operation.OPERATION_UNSPECIFIED }, changesPerEventMax: 0 })
      stream.on("error", () => {}) // cancelling ends the stream with CANCELLED on the client side
      const events: Array<Proto.WatchEvent> = []
      stream.on("data", (event: Proto.WatchEvent) => void events.push(event))
      expect(yield* Nodes.eventually(Effect.sync(() => events.length >= 1))).toBe(true)

      const carol = relationship("document:readme", "viewer", "user:carol")
      yield* call((done) => client.write({ vault: "acme", operations: [insert(carol)] }, done))
      expect(yield* Nodes.eventually(Effect.sync(() => events.length >= 2))).toBe(true)
      const subjects = events.map((event) => (event.event?.$case === "change" ? event.event.value.change?.tuple?.subject : event.event?.$case))
      expect(subjects).toStrictEqual(["user:alice", "user:carol"])
      const first = events[0]!.event
      expect(first?.$case === "change" && first.value.position).toBe(1)

      stream.cancel()
      expect(yield* Nodes.eventually(Effect.map(node.feed.stats, (stats) => stats.subscribers === subscribersBefore))).toBe(true)
    })
  )

  it.scopedLive("a watch that asks for batches gets the same changes, in log order, several to an event", () =>
    Effect.gen(function* () {
      const { relationships: client } = yield* serveWest()
      const subjects = Array.from({ length: 30 }, (_, index) => `user:u${index}`)
      yield* call((done) => client.write({ vault: "acme", operations: subjects.map((subject) => insert(relationship("document:readme", "viewer", subject))) }, done))
      const stream = client.watch({ fromPosition: 1, changesPerEventMax: 8 })
      stream.on("error", () => {})
      const events: Array<Proto.WatchEvent> = []
      stream.on("data", (event: Proto.WatchEvent) => void events.push(event))
      const received = () => events.flatMap((event) => (event.event?.$case === "changes" ? event.event.value.entries : event.event?.$case === "change" ? [event.event.value] : []))
      expect(yield* Nodes.eventually(Effect.sync(() => received().length >= subjects.length))).toBe(true)
      stream.cancel()
      expect(received().map((entry) => entry.change?.tuple?.subject)).toStrictEqual(subjects)
      expect(received().map((entry) => entry.position)).toStrictEqual(subjects.map((_, index) => index + 1))
      const sizes = events.map((event) => (event.event?.$case === "changes" ? event.event.value.entries.length : 1))
      expect(Math.max(...sizes)).toBe(8)
      expect(events.length).toBeLessThan(subjects.length)
    })
  )

  it.scopedLive("a watch's events stay within the server's message bound however many changes the watcher asks for, and carry every change in order", () =>
    Effect.gen(function* () {
      // 4 KiB: 1,000 changes to an event would be far above it, and the server would refuse to
      // send the event (RESOURCE_EXHAUSTED), ending the stream before its first change.
      const messageBytesMax = 4_096
      const { relationships: client } = yield* serveWest({ mode: "insecure" }, { messageBytesMax })
      const subjects = Array.from({ length: 60 }, (_, index) => `user:someone-with-a-long-name-${index}`)
      for (let from = 0; from < subjects.length; from += 10) {
        yield* call((done) => client.write({ vault: "acme", operations: subjects.slice(from, from + 10).map((subject) => insert(relationship("document:readme", "viewer", subject))) }, done))
      }
      const stream = client.watch({ fromPosition: 1, changesPerEventMax: 1_000 })
      const failures: Array<string> = []
      stream.on("error", (error: Error) => void failures.push(error.message))
      const events: Array<Proto.WatchEvent> = []
      stream.on("data", (event: Proto.WatchEvent) => void events.push(event))
      const received = () => events.flatMap((event) => (event.event?.$case === "changes" ? event.event.value.entries : []))
      expect(yield* Nodes.eventually(Effect.sync(() => received().length >= subjects.length || failures.length > 0))).toBe(true)
      stream.cancel()
      expect(failures).toEqual([])
      expect(received().map((entry) => entry.change?.tuple?.subject)).toStrictEqual(subjects)
      expect(events.length).toBeGreaterThan(1)
      for (const event of events) expect(Proto.WatchEvent.encode(event).finish().length).toBeLessThanOrEqual(messageBytesMax)
    })
  )

  it.scopedLive("a Read of more tuples than one message carries comes in pages within the server's bound, each going on after the last, deleted tuples left out, until the last page says so", () =>
    Effect.gen(function* () {
      // 2 KiB: 60 tuples with long subjects are about 4 KiB; whole, the answer would be refused
      // (RESOURCE_EXHAUSTED) whatever the client did.
      const messageBytesMax = 2_048
      const { relationships: client } = yield* serveWest({ mode: "insecure" }, { messageBytesMax })
      const subjects = Array.from({ length: 60 }, (_, index) => `user:someone-with-a-long-name-${String(index).padStart(2, "0")}`)
      for (let from = 0; from < subjects.length; from += 10) {
        yield* call((done) => client.write({ vault: "acme", operations: subjects.slice(from, from + 10).map((subject) => insert(relationship("document:big", "viewer", subject))) }, done))
      }
      const deleted = new Set([subjects[3]!, subjects[31]!])
      yield* call((done) => client.delete({ vault: "acme", relationships: [...deleted].map((subject) => relationship("document:big", "viewer", subject)) }, done))
      const pages = (pageSize: number) =>
        Effect.gen(function* () {
          const answers: Array<Proto.ReadResponse> = []
          let pageToken = ""
          do {
            const answer = yield* call<Proto.ReadResponse>((done) => client.read({ vault: "acme", resource: "document:big", pageSize, pageToken }, done))
            answers.push(answer)
            pageToken = answer.nextPageToken
          } while (pageToken !== "" && answers.length < 100)
          return answers
        })
      const expected = subjects.filter((subject) => !deleted.has(subject))
      // Pages end at the bound: several, each within it.
      const bounded = yield* pages(0)
      expect(bounded.length).toBeGreaterThan(1)
      for (const answer of bounded) expect(Proto.ReadResponse.encode(answer).finish().length).toBeLessThanOrEqual(messageBytesMax)
      expect(bounded.flatMap((answer) => answer.tuples.map((tuple) => tuple.subject))).toStrictEqual(expected)
      // Pages end at the requested size: 7 stored tuples looked at each, deleted ones included.
      const small = yield* pages(7)
      expect(small.length).toBe(Math.ceil(subjects.length / 7) + (subjects.length % 7 === 0 ? 1 : 0))
      expect(small.flatMap((answer) => answer.tuples.map((tuple) => tuple.subject))).toStrictEqual(expected)
      expect(small[small.length - 1]?.nextPageToken).toBe("")
    })
  )

  it.scopedLive("a watch on a server bound inside an uninterruptible region still stops and releases its subscription when the client cancels", () =>
    Effect.gen(function* () {
      const { relationships: client, node } = yield* serveWest({ mode: "insecure" }, { uninterruptible: true })
      const subscribersBefore = (yield* node.feed.stats).subscribers
      const stream = client.watch({ fromPosition: 0, changesPerEventMax: 0 })
      stream.on("error", () => {})
      expect(yield* Nodes.eventually(Effect.map(node.feed.stats, (stats) => stats.subscribers === subscribersBefore + 1))).toBe(true)
      stream.cancel()
      expect(yield* Nodes.eventually(Effect.map(node.feed.stats, (stats) => stats.subscribers === subscribersBefore), 2_000)).toBe(true)
    })
  )

  it.scopedLive("catch-up pages through the log and leaves out vaults the requesting region may not store", () =>
    Effect.gen(function* () {
      const { replication: client, node, nodeMetrics } = yield* serveWest()
      const write = (vault: string, subject: string) => node.replica.write([{ op: "insert", tuple: { vault, resource: "document:a", relation: "viewer", subject } }])
      yield* write("acme", "user:1")
      yield* write("us-only", "user:2")
      yield* write("acme", "user:3")
      const page = (afterPosition: number, limit: number) =>
        call<Proto.CatchUpResponse>((done) => client.catchUp({ fromRegion: EUROPE, fromNode: "test", afterPosition, limit, ownRegionOrphansOnly: false, knownOrigins: [] }, done))

      const first = yield* page(0, 2)
      expect(first.entries.map((entry) => entry.position)).toStrictEqual([1])
      expect([first.endPosition, first.logEnd]).toStrictEqual([2, 3])
      const second = yield* page(first.endPosition, 2)
      expect(second.entries.map((entry) => entry.position)).toStrictEqual([3])
      expect(second.endPosition).toBe(3)
      const done = yield* page(second.endPosition, 2)
      expect([done.entries.length, done.endPosition, done.logEnd]).toStrictEqual([0, 3, 3])

      const stored = yield* node.store.readLog(1, 10)
      expect(WireCodec.logEntryFromProto(first.entries[0]!)).toStrictEqual(Either.right(stored[0]))
      const westItself = yield* call<Proto.CatchUpResponse>((done) => client.catchUp({ fromRegion: WEST, fromNode: "test", afterPosition: 0, limit: 0, ownRegionOrphansOnly: false, knownOrigins: [] }, done))
      expect(westItself.entries.map((entry) => entry.position)).toStrictEqual([1, 2, 3])

      const unknown = call((done) => client.catchUp({ fromRegion: "mars-1", fromNode: "test", afterPosition: 0, limit: 10, ownRegionOrphansOnly: false, knownOrigins: [] }, done))
      expect(yield* statusOf(unknown)).toBe("FAILED_PRECONDITION")
      // The route hands CatchUp to the replication handler, which counts what it refuses.
      expect(nodeMetrics.refused).toBe(1)
    })
  )

  it.scopedLive("the public API and catch-up demand the same credentials as replication", () =>
    Effect.gen(function* () {
      const { relationships, replication, totals } = yield* serveWest({ mode: "token", token: "region-secret" })
      const tuple = { vault: "acme", ...aliceViews }
      expect(yield* statusOf(call((done) => relationships.check({ tuple }, done)))).toBe("UNAUTHENTICATED")
      expect(yield* statusOf(call((done) => replication.catchUp({ fromRegion: EUROPE, fromNode: "test", afterPosition: 0, limit: 1, ownRegionOrphansOnly: false, knownOrigins: [] }, done)))).toBe("UNAUTHENTICATED")
      const refusedWatch = relationships.watch({ fromPosition: 1, changesPerEventMax: 0 })
      const watchStatus = yield* Effect.async<string>((resume) => {
        refusedWatch.on("error", (error: grpc.ServiceError) => resume(Effect.succeed(grpc.status[error.code])))
      })
      expect(watchStatus).toBe("UNAUTHENTICATED")
      expect(totals.refused).toBe(3)

      const metadata = new grpc.Metadata()
      metadata.set("authorization", "Bearer region-secret")
      expect(yield* call<Proto.CheckResponse>((done) => relationships.check({ tuple }, metadata, done))).toStrictEqual({ allowed: false })
    })
  )

  it.scopedLive("a tuple whose store key exceeds the store's key limit is refused INVALID_ARGUMENT before any store work, and counted", () =>
    Effect.gen(function* () {
      const { relationships: client, node, prom } = yield* serveWest()
      const withSubject = (length: number) => relationship("document:readme", "viewer", `user:${"x".repeat(length)}`)
      const slack = Store.tupleKeyBytesMax - Store.tupleKeyBytes({ vault: "acme", ...withSubject(0) })
      const atLimit = withSubject(slack)
      const oversized = withSubject(slack + 1)
      expect(Store.tupleKeyBytes({ vault: "acme", ...atLimit })).toBe(Store.tupleKeyBytesMax)

      const details = yield* Effect.flip(call((done) => client.write({ vault: "acme", operations: [insert(aliceViews), insert(oversized)] }, done)))
      expect(grpc.status[details.code]).toBe("INVALID_ARGUMENT")
      expect(details.details).toContain(`exceeds ${Store.tupleKeyBytesMax} bytes`)
      expect(yield* statusOf(call((done) => client.delete({ vault: "acme", relationships: [oversized] }, done)))).toBe("INVALID_ARGUMENT")
      expect(yield* statusOf(call((done) => client.check({ tuple: { vault: "acme", ...oversized } }, done)))).toBe("INVALID_ARGUMENT")
      expect(yield* refused(prom, "TupleKeyTooLarge")).toBe(3)
      // Nothing of the refused write reached the store, not even its valid operation.
      expect(yield* node.store.logEnd).toBe(0)

      expect(yield* call<Proto.WriteResponse>((done) => client.write({ vault: "acme", operations: [insert(atLimit)] }, done))).toMatchObject({ position: 1 })
    })
  )

  it.scopedLive("a write with more operations than writeOperationsMax is refused INVALID_ARGUMENT and counted; one at the bound is written", () =>
    Effect.gen(function* () {
      const { relationships: client, node, prom } = yield* serveWest({ mode: "insecure" }, { writeOperationsMax: 3 })
      const subjects = (count: number) => Array.from({ length: count }, (_, index) => relationship("document:readme", "viewer", `user:${index}`))
      const tooMany = yield* Effect.flip(call((done) => client.write({ vault: "acme", operations: subjects(4).map(insert) }, done)))
      expect(grpc.status[tooMany.code]).toBe("INVALID_ARGUMENT")
      expect(tooMany.details).toContain("4 operations exceed the 3 allowed")
      expect(yield* statusOf(call((done) => client.delete({ vault: "acme", relationships: subjects(4) }, done)))).toBe("INVALID_ARGUMENT")
      expect(yield* refused(prom, "TooManyOperations")).toBe(2)
      expect(yield* node.store.logEnd).toBe(0)

      const written = yield* call<Proto.WriteResponse>((done) => client.write({ vault: "acme", operations: subjects(3).map(insert) }, done))
      expect(written).toMatchObject({ position: 3 })
      expect(GrpcServer.writeOperationsMaxDefault).toBe(5_000)
    })
  )

  it.scopedLive("refusals at the transport are counted by reason: oversized headers, an oversized message, failed authentication", () =>
    Effect.gen(function* () {
      const messageBytesMax = 64 * 1024
      const { relationships: client, prom } = yield* serveWest({ mode: "token", token: "region-secret" }, { messageBytesMax })
      const authorized = () => {
        const metadata = new grpc.Metadata()
        metadata.set("authorization", "Bearer region-secret")
        return metadata
      }
      const tuple = { vault: "acme", ...aliceViews }

      const bigHeaders = authorized()
      bigHeaders.set("x-padding", "p".repeat(GrpcServer.headerBytesMaxDefault))
      expect(yield* statusOf(call((done) => client.check({ tuple }, bigHeaders, done)))).toBe("RESOURCE_EXHAUSTED")
      expect(yield* refused(prom, "HeadersTooLarge")).toBe(1)

      const huge = relationship("document:readme", "viewer", `user:${"x".repeat(messageBytesMax)}`)
      const oversized = call((done) => client.write({ vault: "acme", operations: [insert(huge)] }, authorized(), done))
      expect(yield* statusOf(oversized)).toBe("RESOURCE_EXHAUSTED")
      expect(yield* refused(prom, "MessageTooLarge")).toBe(1)

      expect(yield* statusOf(call((done) => client.check({ tuple }, done)))).toBe("UNAUTHENTICATED")
      expect(yield* refused(prom, "Unauthenticated")).toBe(1)

      // A normal, authenticated write still goes through.
      const written = yield* call<Proto.WriteResponse>((done) => client.write({ vault: "acme", operations: [insert(aliceViews)] }, authorized(), done))
      expect(written).toMatchObject({ position: 1 })
      expect(yield* call<Proto.CheckResponse>((done) => client.check({ tuple }, authorized(), done))).toStrictEqual({ allowed: true })
    })
  )
})
