/**
 * The change feed: true counters, filtered subscriptions, and a slow subscriber that is told
 * it lagged and then catches up from the durable log without missing a change.
 */
import { describe, expect, it } from "@effect/vitest"
import { Chunk, type Clock, Effect, Fiber, Stream, TestClock } from "effect"
import * as ChangeFeed from "../../src/replication/ChangeFeed.js"
import * as Store from "../../src/replication/Store.js"
import * as Cluster from "./fixtures/cluster.js"

const write = (node: Cluster.RunningNode, subject: string, resource = "document:readme", op: "insert" | "delete" = "insert") =>
  node.replica.write([{ op, tuple: { vault: "acme", resource, relation: "viewer", subject: `user:${subject}` } }])

const positions = (events: Chunk.Chunk<ChangeFeed.FeedEvent>) =>
  Chunk.toArray(events).flatMap((event) => (event._tag === "Change" ? [event.entry.position] : []))

/** A log entry at `position` (its content does not matter to waits). */
const entry = (position: number): Store.LogEntry => ({
  position,
  change: {
    id: { origin: "us", seq: position },
    op: "insert",
    tuple: { vault: "acme", resource: "document:readme", relation: "viewer", subject: "user:a" },
    timestamp: { physicalMs: position, logical: 0 },
    originRegion: "us",
    originNode: "n1",
    originRevision: position,
    committedAtMs: position,
    context: {}
  },
  receivedFrom: null,
  appliedAtMs: position
})

describe("ChangeFeed", () => {
  it.scoped("a bounded wait ends at its timeout when nothing is published, at once when something is, and not at all when already beyond", () =>
    Effect.gen(function* () {
      const feed = yield* Effect.provide(ChangeFeed.make({ bufferSize: 8 }), Store.layerMemory())
      const timedOut = yield* Effect.fork(feed.awaitBeyond(0, 1_000))
      yield* TestClock.adjust(999)
      expect(timedOut.unsafePoll()).toBeNull()
      yield* TestClock.adjust(1)
      yield* Fiber.join(timedOut)
      const woken = yield* Effect.fork(feed.awaitBeyond(0, 1_000))
      yield* TestClock.adjust(10)
      feed.publish([entry(1)])
      yield* Fiber.join(woken)
      yield* feed.awaitBeyond(0, 1_000)
    }))

  it.scoped("a bounded wait that a publish ends cancels its timer's sleep", () =>
    Effect.gen(function* () {
      // A clock whose sleeps never end on their own and count how many are still pending.
      let sleeping = 0
      const clock: Clock.Clock = {
        ...(yield* Effect.clock),
        sleep: () =>
          Effect.async<void>(() => {
            sleeping++
            return Effect.sync(() => void sleeping--)
          })
      }
      const feed = yield* Effect.provide(ChangeFeed.make({ bufferSize: 8 }), Store.layerMemory())
      const woken = yield* Effect.fork(Effect.withClock(feed.awaitBeyond(0, 1_000), clock))
      for (let turn = 0; turn < 5 && sleeping === 0; turn++) yield* Effect.yieldNow()
      expect(sleeping).toBe(1)
      feed.publish([entry(1)])
      yield* Fiber.join(woken)
      for (let turn = 0; turn < 5 && sleeping > 0; turn++) yield* Effect.yieldNow()
      expect(sleeping).toBe(0)
    }))

  it.scoped("every committed write is published once and the counters are true", () =>
    Effect.gen(function* () {
      const node = yield* Cluster.make({ regions: ["us", "eu"] }).start("us")
      const stream = yield* node.feed.subscribe()
      const collected = yield* Effect.fork(Stream.runCollect(Stream.take(stream, 3)))
      yield* write(node, "a")
      yield* write(node, "b")
      yield* write(node, "c")
      expect(positions(yield* Fiber.join(collected))).toEqual([1, 2, 3])
      const stats = yield* node.feed.stats
      expect(stats).toEqual({ published: 3, subscribers: 1, dropped: 0 })
    }))

  it.scoped("a filtered subscription sees only matching changes", () =>
    Effect.gen(function* () {
      const node = yield* Cluster.make({ regions: ["us", "eu"] }).start("us")
      const stream = yield* node.feed.subscribe({ filter: { resourceType: "folder", operation: "delete" } })
      const collected = yield* Effect.fork(Stream.runCollect(Stream.take(stream, 1)))
      yield* write(node, "a")
      yield* write(node, "b", "folder:x")
      yield* write(node, "b", "folder:x", "delete")
      const events = Chunk.toArray(yield* Fiber.join(collected))
      expect(events.map((event) => (event._tag === "Change" ? event.entry.change.op : "lag"))).toEqual(["delete"])
    }))

  it.scoped("a subscriber that overflows its buffer is told it lagged and still receives every change in order", () =>
    Effect.gen(function* () {
      const node = yield* Cluster.make({ regions: ["us", "eu"], bufferSize: 2 }).start("us")
      const stream = yield* node.feed.subscribe()
      // Nobody reads while ten writes land in a buffer of two.
      for (let index = 0; index < 10; index++) yield* write(node, `s${index}`)
      expect((yield* node.feed.stats).dropped).toBe(8)
      const reader = yield* Effect.fork(Stream.runCollect(Stream.take(Stream.filter(stream, (event) => event._tag === "Change"), 11)))
      yield* write(node, "after")
      expect(positions(yield* Fiber.join(reader))).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11])
    }))

  it.scoped("the lagged event names where delivery resumes", () =>
    Effect.gen(function* () {
      const node = yield* Cluster.make({ regions: ["us", "eu"], bufferSize: 1 }).start("us")
      const stream = yield* node.feed.subscribe()
      for (let index = 0; index < 3; index++) yield* write(node, `s${index}`)
      const events = Chunk.toArray(yield* Stream.runCollect(Stream.take(stream, 4)))
      // The buffer overflowed before the subscriber read anything, so it resumes from the start.
      expect(events[0]).toEqual({ _tag: "Lagged", resumeFrom: 1 })
      expect(positions(Chunk.fromIterable(events))).toEqual([1, 2, 3])
    }))

  it.scoped("a subscription from a cursor replays the durable log first", () =>
    Effect.gen(function* () {
      const node = yield* Cluster.make({ regions: ["us", "eu"] }).start("us")
      for (let index = 0; index < 5; index++) yield* write(node, `s${index}`)
      const stream = yield* node.feed.subscribe({ from: 3 })
      const collected = yield* Effect.fork(Stream.runCollect(Stream.take(stream, 4)))
      yield* write(node, "live")
      expect(positions(yield* Fiber.join(collected))).toEqual([3, 4, 5, 6])
    }))
})
