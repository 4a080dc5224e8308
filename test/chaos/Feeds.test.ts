/**
 * The chaos harness's feed of one node's log (`Feeds.ts`) across wipes and restarts, over a fake
 * client whose streams the test feeds by hand.
 */
import { describe, expect, it } from "vitest"
import { Feed } from "../../src/chaos/Feeds.js"
import type * as Change from "../../src/replication/Change.js"
import type * as Store from "../../src/replication/Store.js"
import type * as ApiClient from "../../src/runtime/ApiClient.js"

const change = (origin: string, seq: number): Change.Change => ({
  id: { origin, seq },
  op: "insert",
  tuple: { vault: "acme", resource: `doc:${origin}-${seq}`, relation: "viewer", subject: "user:u" },
  timestamp: { physicalMs: seq, logical: 0 },
  originRegion: "a",
  originNode: "a-node1",
  originRevision: seq,
  committedAtMs: seq,
  context: {}
})

const entry = (position: number, origin: string, seq: number): Store.LogEntry => ({ position, change: change(origin, seq), receivedFrom: null, appliedAtMs: seq })

/** A client whose every `watch` is recorded; the test delivers entries to the latest stream. */
const fakeClient = () => {
  const streams: Array<{ readonly from: number; readonly deliver: (entry: Store.LogEntry) => void; cancelled: boolean }> = []
  const client = {
    watch: (fromPosition: number, onEntry: (entry: Store.LogEntry) => void): ApiClient.Watching => {
      const stream = { from: fromPosition, deliver: onEntry, cancelled: false }
      streams.push(stream)
      return { cancel: () => void (stream.cancelled = true), done: new Promise<void>(() => undefined) }
    }
  } as unknown as ApiClient.ApiClient
  return { client, streams, latest: () => streams[streams.length - 1]! }
}

describe("chaos feeds", () => {
  it("a wipe whose own restart never came up still starts a new generation at the next restart (chaos seed 9990803)", () => {
    const { client, streams, latest } = fakeClient()
    const feed = new Feed("a-node1", "a", client, () => undefined)
    feed.start()
    latest().deliver(entry(1, "old", 1))
    latest().deliver(entry(2, "old", 2))
    // The disk is wiped; its restart is killed before it is ready (no resume), then a crash
    // fault's restart brings the node up on the empty disk.
    feed.wiped()
    expect(streams[0]!.cancelled).toBe(true)
    const opened = streams.length
    feed.resume()
    expect(streams.length).toBe(opened + 1)
    expect(latest().from).toBe(1)
    latest().deliver(entry(1, "new", 1))
    expect(feed.log.map((logged) => logged.change.id.origin)).toEqual(["new"])
    expect(feed.generations).toHaveLength(2)
  })

  it("a restart without a wipe resumes after the last position read, in the same generation", () => {
    const { client, latest } = fakeClient()
    const feed = new Feed("a-node1", "a", client, () => undefined)
    feed.start()
    latest().deliver(entry(1, "old", 1))
    feed.resume()
    expect(latest().from).toBe(2)
    latest().deliver(entry(2, "old", 2))
    expect(feed.log.map((logged) => logged.position)).toEqual([1, 2])
    expect(feed.generations).toHaveLength(1)
  })
})
