/**
 * The replica's write and apply paths: strategy rules, whole-batch validation, idempotent
 * apply, conflict counting, and durability of acknowledged writes across a crash.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, TestClock } from "effect"
import type * as Change from "../../src/replication/Change.js"
import * as ConflictResolver from "../../src/replication/ConflictResolver.js"
import * as Store from "../../src/replication/Store.js"
import type * as Message from "../../src/replication/Message.js"
import * as Timestamp from "../../src/replication/Timestamp.js"
import * as Cluster from "./fixtures/cluster.js"

const tuple = { vault: "acme", resource: "document:readme", relation: "viewer", subject: "user:alice" }

const batchOf = (node: Cluster.RunningNode, fromRegion: string) =>
  Effect.map(node.store.readLog(1, 100), (entries): Message.ReplicateBatch => ({
    _tag: "ReplicateBatch",
    batchId: "test",
    fromRegion,
    fromNode: `${fromRegion}-node1`,
    changes: entries.map((entry) => entry.change)
  }))

describe("Replica", () => {
  it.effect("a write is durable and logged before it is acknowledged", () =>
    Effect.gen(function* () {
      const cluster = Cluster.make({ regions: ["us", "eu"] })
      const us = yield* cluster.start("us")
      const ack = yield* us.replica.write([{ op: "insert", tuple }])
      expect(ack).toMatchObject({ revision: 1, position: 1 })
      yield* us.stop
      const again = yield* cluster.start("us")
      expect(yield* again.replica.check(tuple)).toBe(true)
      const ids = (yield* again.store.readLog(1, 10)).map((entry) => entry.change.id)
      expect(ids).toEqual([{ origin: ack.changes[0]!.id.origin, seq: 1 }])
      expect(ids[0]!.origin).toMatch(/^us\/us-node1\//)
    }))

  it.effect("a later write to the same tuple carries what the region had seen as its context", () =>
    Effect.gen(function* () {
      const us = yield* Cluster.make({ regions: ["us", "eu"] }).start("us")
      yield* us.replica.write([{ op: "insert", tuple }])
      const ack = yield* us.replica.write([{ op: "delete", tuple }])
      expect(ack.changes[0]!.context).toEqual({ [ack.changes[0]!.id.origin]: 1 })
      expect(yield* us.replica.check(tuple)).toBe(false)
    }))

  it.effect("a write or a batch naming one tuple twice merges the second change over the first, as two writes would", () =>
    Effect.gen(function* () {
      const cluster = Cluster.make({ regions: ["us", "eu"] })
      const us = yield* cluster.start("us")
      const eu = yield* cluster.start("eu")
      const ack = yield* us.replica.write([
        { op: "insert", tuple },
        { op: "delete", tuple }
      ])
      const [insert, remove] = ack.changes
      expect(remove!.id.seq).toBe(insert!.id.seq + 1)
      expect(Timestamp.order(remove!.timestamp, insert!.timestamp)).toBeGreaterThan(0)
      // The delete has seen the insert of its own write, so it supersedes it instead of conflicting.
      expect(remove!.context).toEqual({ [insert!.id.origin]: insert!.id.seq })
      expect(yield* us.replica.check(tuple)).toBe(false)
      const applied = yield* eu.replica.applyBatch(yield* batchOf(us, "us"))
      expect([applied.applied, applied.ignored]).toEqual([2, 0])
      expect(yield* eu.replica.check(tuple)).toBe(false)
      expect((yield* eu.store.getTuple(tuple)).frontier.map((change) => change.id)).toEqual([remove!.id])
      expect((yield* eu.replica.stats).conflicts).toBe(0)
    }))

  it.effect("a write whose change no message could carry is refused whole, and nothing of it is written", () =>
    Effect.gen(function* () {
      const cluster = Cluster.make({ regions: ["us", "eu"], messageBytesMax: 1_024 })
      const us = yield* cluster.start("us")
      // Twenty stores of eu have written the tuple: a change superseding them all names each.
      const changes = Array.from({ length: 20 }, (_, index): Change.Change => ({
        id: { origin: `eu/eu-node${index}/token${index}`, seq: 1 },
        op: "insert",
        tuple,
        timestamp: { physicalMs: 1_000 + index, logical: 0 },
        originRegion: "eu",
        originNode: `eu-node${index}`,
        originRevision: 1,
        committedAtMs: 1_000,
        context: {}
      }))
      yield* us.replica.applyBatch({ _tag: "ReplicateBatch", batchId: "many", fromRegion: "eu", fromNode: "eu-node1", changes })
      const before = (yield* us.store.readLog(1, 100)).length
      const other = { ...tuple, subject: "user:bob" }
      const refused = yield* Effect.either(us.replica.write([{ op: "insert", tuple: other }, { op: "delete", tuple }]))
      expect(Either.isLeft(refused) && refused.left._tag === "WriteRejected" && refused.left.reason).toBe("TooLarge")
      expect((yield* us.store.readLog(1, 100)).length).toBe(before)
      expect(yield* us.replica.check(other)).toBe(false)
      expect(yield* us.replica.check(tuple)).toBe(true)
      // Another tuple is written as before.
      const ack = yield* us.replica.write([{ op: "insert", tuple: other }])
      expect(ack.changes[0]!.id.seq).toBe(1)
    }))

  it.effect("applying the same batch twice is a no-op the second time", () =>
    Effect.gen(function* () {
      const cluster = Cluster.make({ regions: ["us", "eu"] })
      const us = yield* cluster.start("us")
      const eu = yield* cluster.start("eu")
      yield* us.replica.write([{ op: "insert", tuple }])
      const batch = yield* batchOf(us, "us")
      const first = yield* eu.replica.applyBatch(batch)
      const second = yield* eu.replica.applyBatch(batch)
      expect([first.applied, first.ignored, second.applied, second.ignored]).toEqual([1, 0, 0, 1])
      expect((yield* eu.store.readLog(1, 10)).length).toBe(1)
    }))

  it.effect("concurrent writes are counted as conflicts and resolved the same way on both sides", () =>
    Effect.gen(function* () {
      const cluster = Cluster.make({ regions: ["us", "eu"], resolver: ConflictResolver.insertWins })
      const us = yield* cluster.start("us")
      const eu = yield* cluster.start("eu")
      yield* us.replica.write([{ op: "insert", tuple }])
      yield* eu.replica.write([{ op: "delete", tuple }])
      yield* eu.replica.applyBatch(yield* batchOf(us, "us"))
      // Only us's own change: eu's log also holds the received insert now.
      const usBatch = yield* Effect.map(batchOf(eu, "eu"), (batch) => ({ ...batch, changes: batch.changes.filter((change) => change.originRegion === "eu") }))
      yield* us.replica.applyBatch(usBatch)
      const usStats = yield* us.replica.stats
      const euStats = yield* eu.replica.stats
      expect([usStats.conflicts, euStats.conflicts]).toEqual([1, 1])
      // InsertWins: us kept its local insert, eu took the remote insert.
      expect([usStats.resolvedLocal, euStats.resolvedRemote]).toEqual([1, 1])
      expect(yield* us.replica.check(tuple)).toBe(true)
      expect(yield* eu.replica.check(tuple)).toBe(true)
    }))

  it.effect("a batch from an unknown region is refused whole and nothing of it is applied", () =>
    Effect.gen(function* () {
      const cluster = Cluster.make({ regions: ["us", "eu"] })
      const us = yield* cluster.start("us")
      const eu = yield* cluster.start("eu")
      yield* us.replica.write([{ op: "insert", tuple }])
      const batch = yield* batchOf(us, "us")
      const response = yield* eu.replica.handle({ ...batch, fromRegion: "mars" })
      expect(response).toMatchObject({ _tag: "Refused", reason: "UnknownRegion" })
      expect(yield* eu.replica.check(tuple)).toBe(false)
      expect((yield* eu.replica.stats).rejectedBatches).toBe(1)
    }))

  it.effect("a change of a region removed from the deployment, relayed by a declared one, is applied; under SourcePriority only while the region keeps its rank", () =>
    Effect.gen(function* () {
      const removed = (change: Change.Change): Change.Change => ({ ...change, id: { origin: "ap/ap-node1/t0", seq: 1 }, originRegion: "ap", originNode: "ap-node1" })
      const relayed = (resolver: ConflictResolver.ConflictResolver) =>
        Effect.gen(function* () {
          const cluster = Cluster.make({ regions: ["us", "eu"], resolver })
          const us = yield* cluster.start("us")
          const eu = yield* cluster.start("eu")
          yield* us.replica.write([{ op: "insert", tuple }])
          const batch = yield* batchOf(us, "us")
          const response = yield* eu.replica.handle({ ...batch, changes: batch.changes.map(removed) })
          return { response, present: yield* eu.replica.check(tuple) }
        })
      // Refused, a wiped node could not bootstrap from a peer holding one, and the survivors split for good.
      expect(yield* relayed(ConflictResolver.lastWriteWins)).toMatchObject({ response: { _tag: "BatchAck" }, present: true })
      const ranked = Either.getOrThrow(ConflictResolver.sourcePriority(["ap", "eu", "us"]))
      expect(yield* relayed(ranked)).toMatchObject({ response: { _tag: "BatchAck" }, present: true })
      // Without a rank the resolver could not order it: refused whole, with what to do.
      const unranked = yield* relayed(Either.getOrThrow(ConflictResolver.sourcePriority(["eu", "us"])))
      expect(unranked).toMatchObject({ response: { _tag: "Refused", reason: "UnknownRegion" }, present: false })
      expect(unranked.response).toHaveProperty("message", expect.stringContaining("region_priorities does not rank"))
    }))

  it.effect("an orphan page holds what the asker's region may have lost, never the asker's own changes under the origin it knows", () =>
    Effect.gen(function* () {
      const cluster = Cluster.make({ regions: ["us", "eu", "asia"] })
      const us = yield* cluster.start("us")
      const eu = yield* cluster.start("eu")
      const asia = yield* cluster.start("asia")
      const own = (yield* us.replica.write([{ op: "insert", tuple }])).changes[0]!
      const relayed = (yield* asia.replica.write([{ op: "insert", tuple: { ...tuple, subject: "user:bob" } }])).changes[0]!
      // eu received both from us: us's own change, and asia's that us relayed.
      const applied = yield* eu.replica.handle({ _tag: "ReplicateBatch", batchId: "from-us", fromRegion: "us", fromNode: "us-node1", changes: [own, relayed] })
      expect(applied).toMatchObject({ _tag: "BatchAck", applied: 2 })
      const orphans = (knownOrigins: ReadonlyArray<string>) =>
        Effect.map(
          eu.replica.handle({ _tag: "CatchUp", fromRegion: "us", fromNode: "us-node1", afterPosition: 0, limit: 100, ownRegionOrphansOnly: true, knownOrigins }),
          (response) => (response._tag === "LogPage" ? response.entries.map((entry) => entry.change.id) : response)
        )
      // us on the disk that wrote its change: only asia's change, which us's disk relayed, may be missing there.
      expect(yield* orphans([own.id.origin])).toEqual([relayed.id])
      // us on a new disk (another origin): its region's earlier change comes back too.
      expect(yield* orphans(["us/us-node1/new-disk"])).toEqual([own.id, relayed.id])
    }))

  it.effect("a write mixing vaults or with no operations is rejected as invalid", () =>
    Effect.gen(function* () {
      const us = yield* Cluster.make({ regions: ["us", "eu"] }).start("us")
      const empty = yield* Effect.flip(us.replica.write([]))
      const mixed = yield* Effect.flip(us.replica.write([{ op: "insert", tuple }, { op: "insert", tuple: { ...tuple, vault: "other" } }]))
      expect(empty).toMatchObject({ reason: "Invalid" })
      expect(mixed).toMatchObject({ reason: "Invalid" })
      expect((yield* us.store.readLog(1, 10)).length).toBe(0)
    }))

  it.effect("list returns only tuples whose winning change is an insert", () =>
    Effect.gen(function* () {
      const us = yield* Cluster.make({ regions: ["us", "eu"] }).start("us")
      yield* us.replica.write([
        { op: "insert", tuple },
        { op: "insert", tuple: { ...tuple, subject: "user:bob" } },
        { op: "insert", tuple: { ...tuple, resource: "document:other" } }
      ])
      yield* us.replica.write([{ op: "delete", tuple: { ...tuple, subject: "user:bob" } }])
      const listed = yield* us.replica.list({ vault: "acme", resource: "document:readme" })
      expect(listed.map((entry) => entry.subject)).toEqual(["user:alice"])
    }))
})

describe("the HLC high-water", () => {
  it.effect("survives a restart: a node whose clock went back stamps its next write above every earlier one", () =>
    Effect.gen(function* () {
      const cluster = Cluster.make({ regions: ["us", "eu"] })
      yield* TestClock.adjust(60_000)
      const us = yield* cluster.start("us")
      const first = yield* us.replica.write([{ op: "insert", tuple }])
      yield* us.stop
      // Restarted with its clock set back a minute (TestClock cannot go back: the node's clock
      // reads a minute behind instead, as after an NTP step).
      const behind = yield* cluster.start("us", { clockOffsetMs: -60_000 })
      const second = yield* behind.replica.write([{ op: "delete", tuple }])
      expect(Timestamp.order(second.changes[0]!.timestamp, first.changes[0]!.timestamp)).toBe(1)
      expect(yield* behind.store.clockHighWater).toEqual(second.changes[0]!.timestamp)
    }))

  it.effect("a CatchUp page reads the log on past the entries this node holds in memory, as far as the limit or the log end", () =>
    Effect.gen(function* () {
      const cluster = Cluster.make({ regions: ["us", "eu"] })
      const us = yield* cluster.start("us")
      for (const subject of ["user:a", "user:b", "user:c"]) yield* us.replica.write([{ op: "insert", tuple: { ...tuple, subject } }])
      // A sibling sharing the store appends positions 4-6; this node then writes position 7.
      const sibling = yield* Effect.provide(Store.Store, Store.layerMemory(cluster.disks.get("us")!))
      const copies = (yield* us.store.readLog(1, 3)).map(({ position: _, ...entry }) => entry)
      yield* sibling.transaction((tx) => tx.appendLogs(copies))
      yield* us.replica.write([{ op: "insert", tuple: { ...tuple, subject: "user:d" } }])
      // What it holds in memory stops at the sibling's entries.
      expect((yield* us.store.readLog(1, 100)).map((entry) => entry.position)).toEqual([1, 2, 3])
      const serve = us.replica.handle
      const page = yield* serve({ _tag: "CatchUp", fromRegion: "eu", fromNode: "eu-node1", afterPosition: 0, limit: 100 })
      expect(page).toMatchObject({ _tag: "LogPage", endPosition: 7, logEnd: 7 })
      expect(page._tag === "LogPage" ? page.entries.map((entry) => entry.position) : []).toEqual([1, 2, 3, 4, 5, 6, 7])
      const limited = yield* serve({ _tag: "CatchUp", fromRegion: "eu", fromNode: "eu-node1", afterPosition: 1, limit: 4 })
      expect(limited).toMatchObject({ _tag: "LogPage", endPosition: 5, logEnd: 7 })
    }))
})
