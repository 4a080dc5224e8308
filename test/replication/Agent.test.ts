/**
 * The agent over in-memory regions: batching and flush timing, backoff, convergence through
 * partitions and loss, relay along a ring, residency, and resume after restart.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, TestClock } from "effect"
import * as Agent from "../../src/replication/Agent.js"
import { networkError } from "../../src/replication/Errors.js"
import * as KvDriver from "../../src/replication/KvDriver.js"
import * as Network from "../../src/replication/Network.js"
import * as Random from "../../src/replication/Random.js"
import * as Topology from "../../src/replication/Topology.js"
import type * as Tuple from "../../src/replication/Tuple.js"
import * as Cluster from "./fixtures/cluster.js"

const tuple = (subject: string, vault = "acme"): Tuple.Tuple => ({ vault, resource: "document:readme", relation: "viewer", subject: `user:${subject}` })
const insert = (subject: string, vault = "acme") => [{ op: "insert" as const, tuple: tuple(subject, vault) }]

describe("Agent", () => {
  it.effect("two regions that each take writes end with the same state", () =>
    Effect.gen(function* () {
      const cluster = Cluster.make({ regions: ["us", "eu"] })
      const us = yield* cluster.start("us")
      const eu = yield* cluster.start("eu")
      yield* us.replica.write(insert("alice"))
      yield* eu.replica.write(insert("bob"))
      expect(yield* Cluster.settle(Cluster.converged([us, eu]))).toBe(true)
      expect(yield* eu.replica.check(tuple("alice"))).toBe(true)
      expect(yield* us.replica.check(tuple("bob"))).toBe(true)
    }))

  // A lone change to an idle target waited the flush delay for a batch to fill: at 1,000
  // changes/s that delay was the replication lag's p99 (`npm run bench:repl`).
  it.effect("an idle target gets a lone change at once; behind a batch in flight, a partial batch waits until that one is acknowledged, at most the flush delay", () =>
    Effect.gen(function* () {
      const cluster = Cluster.make({ regions: ["us", "eu"], agent: { batchSize: 100, flushDelayMs: 50 } })
      const us = yield* cluster.start("us")
      const eu = yield* cluster.start("eu")
      const at = (ms: number) => Effect.zipRight(TestClock.setTime(ms), Effect.repeatN(Effect.yieldNow(), 20))
      yield* at(0)
      // eu takes 100 ms to answer a batch, so one stays in flight that long.
      let answerMs = 100
      const handler = cluster.hub.handlers.get("eu-node1")!
      cluster.hub.handlers.set("eu-node1", (request) => Effect.zipRight(Effect.sleep(request._tag === "ReplicateBatch" ? answerMs : 0), handler(request)))
      yield* us.replica.write(insert("alice"))
      yield* at(10)
      yield* us.replica.write(insert("bob"))
      // alice went out at 0 (not 50): applied by 100.
      yield* at(99)
      expect(yield* eu.replica.check(tuple("alice"))).toBe(false)
      yield* at(101)
      expect(yield* eu.replica.check(tuple("alice"))).toBe(true)
      // bob, behind alice's batch, went out with the flush delay, at 60: applied by 160.
      yield* at(155)
      expect(yield* eu.replica.check(tuple("bob"))).toBe(false)
      yield* at(165)
      expect(yield* eu.replica.check(tuple("bob"))).toBe(true)
      // Answers in 30 ms: carol goes at once (applied by 230); dave, written at 210 behind her,
      // goes when her batch is acknowledged at 230, not at the flush delay's 260: applied by 260.
      answerMs = 30
      yield* at(200)
      yield* us.replica.write(insert("carol"))
      yield* at(210)
      yield* us.replica.write(insert("dave"))
      yield* at(231)
      expect(yield* eu.replica.check(tuple("carol"))).toBe(true)
      yield* at(258)
      expect(yield* eu.replica.check(tuple("dave"))).toBe(false)
      yield* at(262)
      expect(yield* eu.replica.check(tuple("dave"))).toBe(true)
    }))

  // Such rounds move the cursor themselves, outside the window and the in-order queue (`Agent.runTarget`).
  it.effect("the changes a target sent are passed over: the cursor towards it reaches the log end and is persisted, and nothing goes back", () =>
    Effect.gen(function* () {
      const cluster = Cluster.make({ regions: ["us", "eu"] })
      const us = yield* cluster.start("us")
      const eu = yield* cluster.start("eu")
      for (let index = 0; index < 3; index++) yield* eu.replica.write(insert(`e${index}`))
      expect(yield* Cluster.settle(Cluster.converged([us, eu]))).toBe(true)
      const logEnd = yield* us.store.logEnd
      expect(logEnd).toBe(3)
      expect(yield* Cluster.settle(Effect.map(us.store.getCursor("eu"), (cursor) => cursor === logEnd))).toBe(true)
      expect(cluster.metrics.get("us")!.batchSizes).toEqual([])
      // A change of us's own after them goes out alone.
      yield* us.replica.write(insert("u0"))
      expect(yield* Cluster.settle(Cluster.converged([us, eu]))).toBe(true)
      expect(cluster.metrics.get("us")!.batchSizes).toEqual([1])
      expect(yield* Cluster.settle(Effect.map(us.store.getCursor("eu"), (cursor) => cursor === 4))).toBe(true)
    }))

  it.effect("changes go out in batches of at most batch_size, in log order", () =>
    Effect.gen(function* () {
      const cluster = Cluster.make({ regions: ["us", "eu"], agent: { batchSize: 4 } })
      const us = yield* cluster.start("us")
      const eu = yield* cluster.start("eu")
      for (let index = 0; index < 10; index++) yield* us.replica.write(insert(`u${index}`))
      expect(yield* Cluster.settle(Cluster.converged([us, eu]))).toBe(true)
      const sizes = cluster.metrics.get("us")!.batchSizes
      expect(Math.max(...sizes)).toBeLessThanOrEqual(4)
      expect(sizes.reduce((a, b) => a + b, 0)).toBe(10)
      const applied = yield* eu.store.readLog(1, 100)
      expect(applied.map((entry) => entry.change.id.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
    }))

  it.effect("a target further behind than a window of batches gets catch-up batches until it has caught up", () =>
    Effect.gen(function* () {
      const cluster = Cluster.make({ regions: ["us", "eu"], agent: { batchSize: 4, catchUpBatchSize: 20 } })
      const us = yield* cluster.start("us")
      const eu = yield* cluster.start("eu")
      Network.partition(cluster.hub, "us", "eu")
      for (let index = 0; index < 60; index++) yield* us.replica.write(insert(`u${index}`))
      Network.heal(cluster.hub)
      expect(yield* Cluster.settle(Cluster.converged([us, eu]))).toBe(true)
      const sizes = cluster.metrics.get("us")!.batchSizes
      expect(Math.max(...sizes)).toBe(20)
      expect(sizes.reduce((a, b) => a + b, 0)).toBe(60)
      // Caught up, it is back to ordinary batches.
      const before = sizes.length
      for (let index = 0; index < 6; index++) yield* us.replica.write(insert(`v${index}`))
      expect(yield* Cluster.settle(Cluster.converged([us, eu]))).toBe(true)
      expect(Math.max(...cluster.metrics.get("us")!.batchSizes.slice(before))).toBeLessThanOrEqual(4)
      expect(Agent.catchUpBatchSizeOf({ ...Cluster.agentSettings, batchSize: 100 })).toBe(1_000)
      expect(Agent.catchUpBatchSizeOf({ ...Cluster.agentSettings, batchSize: 5 })).toBe(50)
      expect(Agent.catchUpBatchSizeOf({ ...Cluster.agentSettings, batchSize: 2_000 })).toBe(2_000)
    }))

  /**
   * eu is down for `outageS` while us writes, with backoffs of 5-10 minutes; then it starts again,
   * `offsetMs` after one of us's heartbeat rounds (they start on whole seconds): the restarted eu.
   */
  const restartAfterOutage = (outageS: number, offsetMs = 0) =>
    Effect.gen(function* () {
      const cluster = Cluster.make({ regions: ["us", "eu"], agent: { maxRetries: 0, retryDelayMs: 600_000, retryDelayMaxMs: 600_000 } })
      const us = yield* cluster.start("us")
      const eu = yield* cluster.start("eu")
      yield* TestClock.adjust(2_000)
      yield* eu.stop
      yield* us.replica.write(insert("alice"))
      for (let second = 0; second < outageS; second++) yield* TestClock.adjust(1_000)
      expect((yield* us.agent.stats).targets[0]!.consecutiveFailures).toBeGreaterThan(0)
      yield* TestClock.adjust(offsetMs)
      return yield* cluster.start("eu")
    })

  /** Whether the write reached eu `afterS` seconds after it came back (without a wake-up it would wait minutes). */
  const arrivesAfterRestart = (outageS: number, afterS: number) =>
    Effect.gen(function* () {
      const eu = yield* restartAfterOutage(outageS)
      for (let second = 0; second < afterS; second++) yield* TestClock.adjust(1_000)
      return yield* eu.replica.check(tuple("alice"))
    })

  it.effect("a backoff ends when heartbeats see a target region that was down come back", () =>
    // Past the heartbeat timeout (30 s) eu is Unreachable; three good heartbeats (one a second)
    // make it available again, and the send follows at once.
    Effect.map(arrivesAfterRestart(35, 6), (arrived) => expect(arrived).toBe(true)))

  it.effect("after an outage shorter than the heartbeat timeout, the first heartbeat answer from the target ends the backoff", () =>
    // Down for 5 s, eu is never marked Unreachable; the next heartbeat round hears it again.
    Effect.map(arrivesAfterRestart(5, 3), (arrived) => expect(arrived).toBe(true)))

  it.effect("a restarted target's first heartbeat ends the backoff at once, before this node's own next round could hear it", () =>
    Effect.gen(function* () {
      // eu comes back 300 ms after one of us's rounds, 700 ms before the next.
      const eu = yield* restartAfterOutage(5, 300)
      let arrivedAfterMs: number | undefined
      for (let elapsedMs = 0; elapsedMs <= 2_000 && arrivedAfterMs === undefined; elapsedMs += 10) {
        if (yield* eu.replica.check(tuple("alice"))) arrivedAfterMs = elapsedMs
        else yield* TestClock.adjust(10)
      }
      // Without the cue it arrives with us's next round, 700 ms later (checked by removing it).
      expect(arrivedAfterMs).toBeDefined()
      expect(arrivedAfterMs!).toBeLessThan(100)
    }))

  it.effect("once one batch of a window gets through to a target, the others in backoff retry at once", () =>
    Effect.gen(function* () {
      // Every message is lost for 5 s: four batches of one change time out together, each into
      // a jittered 5-10 minute backoff (timeouts, not refusals: heartbeat answers do not end these).
      const cluster = Cluster.make({ regions: ["us", "eu"], seed: 7, agent: { batchSize: 1, batchesInFlightMax: 4, maxRetries: 0, retryDelayMs: 600_000, retryDelayMaxMs: 600_000 } })
      const us = yield* cluster.start("us")
      const eu = yield* cluster.start("eu")
      yield* TestClock.adjust(2_000)
      cluster.hub.lossRate = 1
      const subjects = ["a", "b", "c", "d"]
      for (const subject of subjects) yield* us.replica.write(insert(subject))
      for (let second = 0; second < 5; second++) yield* TestClock.adjust(1_000)
      cluster.hub.lossRate = 0
      const arrivedAtS = new Map<string, number>()
      for (let second = 0; second <= 700 && arrivedAtS.size < subjects.length; second++) {
        for (const subject of subjects) if (!arrivedAtS.has(subject) && (yield* eu.replica.check(tuple(subject)))) arrivedAtS.set(subject, second)
        yield* TestClock.adjust(1_000)
      }
      expect(arrivedAtS.size).toBe(subjects.length)
      // Without the wake-up each batch would wait out its own backoff, minutes apart.
      const times = [...arrivedAtS.values()]
      expect(Math.min(...times)).toBeGreaterThanOrEqual(250)
      expect(Math.max(...times) - Math.min(...times)).toBeLessThanOrEqual(1)
    }))

  it.effect("a partition stops delivery, retries back off, and the regions converge after heal", () =>
    Effect.gen(function* () {
      const cluster = Cluster.make({ regions: ["us", "eu"] })
      const us = yield* cluster.start("us")
      const eu = yield* cluster.start("eu")
      Network.partition(cluster.hub, "us", "eu")
      yield* us.replica.write(insert("alice"))
      yield* eu.replica.write([{ op: "delete", tuple: tuple("alice") }])
      yield* TestClock.adjust(2_000)
      const stats = yield* us.agent.stats
      expect(stats.targets[0]!.consecutiveFailures).toBeGreaterThan(3)
      expect(yield* eu.replica.check(tuple("alice"))).toBe(false)
      Network.heal(cluster.hub)
      expect(yield* Cluster.settle(Cluster.converged([us, eu]))).toBe(true)
      expect((yield* us.agent.stats).targets[0]!.consecutiveFailures).toBe(0)
    }))

  it.effect("with a third of messages lost, three regions still converge and keep every acknowledged write", () =>
    Effect.gen(function* () {
      const cluster = Cluster.make({ regions: ["a", "b", "c"], seed: 42 })
      cluster.hub.lossRate = 0.33
      const nodes = [yield* cluster.start("a"), yield* cluster.start("b"), yield* cluster.start("c")]
      for (let index = 0; index < 12; index++) yield* nodes[index % 3]!.replica.write(insert(`w${index}`))
      expect(yield* Cluster.settle(Cluster.converged(nodes), { budgetMs: 120_000 })).toBe(true)
      for (const node of nodes) {
        for (let index = 0; index < 12; index++) expect(yield* node.replica.check(tuple(`w${index}`))).toBe(true)
      }
      expect(cluster.hub.stats.lost).toBeGreaterThan(0)
    }))

  it.effect("a ring A->B->C->A relays every change to every region, each change arriving once", () =>
    Effect.gen(function* () {
      const cluster = Cluster.make({ regions: ["a", "b", "c"], targets: { a: ["b"], b: ["c"], c: ["a"] } })
      const nodes = [yield* cluster.start("a"), yield* cluster.start("b"), yield* cluster.start("c")]
      yield* nodes[0]!.replica.write(insert("from-a"))
      yield* nodes[1]!.replica.write(insert("from-b"))
      expect(yield* Cluster.settle(Cluster.converged(nodes))).toBe(true)
      expect(yield* nodes[2]!.replica.check(tuple("from-a"))).toBe(true)
      expect(yield* nodes[0]!.replica.check(tuple("from-b"))).toBe(true)
      // Every region ends with exactly the two changes: nothing was sent back or twice.
      for (const node of nodes) expect((yield* node.store.readLog(1, 100)).length).toBe(2)
      const ignored = yield* Effect.forEach(nodes, (node) => Effect.map(node.replica.stats, (stats) => stats.ignored))
      expect(ignored).toEqual([0, 0, 0])
    }))

  it.effect("a restarted node resumes from its durable cursor and skips nothing", () =>
    Effect.gen(function* () {
      const cluster = Cluster.make({ regions: ["us", "eu"] })
      const us = yield* cluster.start("us")
      let eu = yield* cluster.start("eu")
      yield* us.replica.write(insert("first"))
      expect(yield* Cluster.settle(Cluster.converged([us, eu]))).toBe(true)
      const cursorBefore = yield* us.store.getCursor("eu")
      yield* us.stop
      yield* eu.replica.write(insert("while-us-down"))
      const usAgain = yield* cluster.start("us")
      expect(yield* usAgain.store.getCursor("eu")).toBe(cursorBefore)
      yield* usAgain.replica.write(insert("after-restart"))
      expect(yield* Cluster.settle(Cluster.converged([usAgain, eu]))).toBe(true)
      expect(yield* eu.replica.check(tuple("after-restart"))).toBe(true)
      expect(yield* usAgain.replica.check(tuple("while-us-down"))).toBe(true)
      // The restarted node did not resend what the target had already acknowledged.
      expect((yield* eu.replica.stats).ignored).toBe(0)
      yield* eu.stop
      eu = yield* cluster.start("eu")
      expect(yield* eu.replica.check(tuple("first"))).toBe(true)
    }))

  it.effect("a node restarted on a wiped disk pages its history back from its peers and numbers new writes under a new origin", () =>
    Effect.gen(function* () {
      const cluster = Cluster.make({ regions: ["us", "eu"], bootstrap: true })
      const us = yield* cluster.start("us")
      const eu = yield* cluster.start("eu")
      const first = yield* us.replica.write(insert("before-wipe"))
      expect(yield* Cluster.settle(Cluster.converged([us, eu]))).toBe(true)
      yield* us.stop
      cluster.disks.set("us", KvDriver.makeMemoryDisk())
      const wiped = yield* cluster.start("us")
      expect(yield* Cluster.settle(wiped.replica.check(tuple("before-wipe")))).toBe(true)
      const second = yield* wiped.replica.write(insert("after-wipe"))
      expect(second.changes[0]!.id.origin).not.toBe(first.changes[0]!.id.origin)
      expect(second.changes[0]!.id.seq).toBe(1)
      // The new disk's revision counter starts from the clock, so a client never sees a revision again.
      expect(second.revision).toBeGreaterThan(first.revision)
      expect(yield* Cluster.settle(eu.replica.check(tuple("after-wipe")))).toBe(true)
    }))

  it.effect("a wiped node's bootstrap pages a source that was down at that source's first heartbeat, not after its backoff", () =>
    Effect.gen(function* () {
      const cluster = Cluster.make({ regions: ["us", "eu"], bootstrap: true, agent: { retryDelayMs: 600_000, retryDelayMaxMs: 600_000 } })
      const us = yield* cluster.start("us")
      let eu = yield* cluster.start("eu")
      yield* us.replica.write(insert("before-wipe"))
      expect(yield* Cluster.settle(Cluster.converged([us, eu]))).toBe(true)
      yield* eu.stop
      yield* us.stop
      cluster.disks.set("us", KvDriver.makeMemoryDisk())
      const wiped = yield* cluster.start("us")
      // The bootstrap finds eu down and waits its 10-minute backoff; us's rounds start on whole
      // seconds from its start, and eu comes back 2.3 s in, 700 ms before us's next round.
      yield* TestClock.adjust(2_300)
      expect(yield* wiped.replica.check(tuple("before-wipe"))).toBe(false)
      eu = yield* cluster.start("eu")
      let pagedAfterMs: number | undefined
      for (let elapsedMs = 0; elapsedMs <= 2_000 && pagedAfterMs === undefined; elapsedMs += 10) {
        if (yield* wiped.replica.check(tuple("before-wipe"))) pagedAfterMs = elapsedMs
        else yield* TestClock.adjust(10)
      }
      // Without a cue it waits out the backoff; with answers alone, us's next round (700 ms).
      expect(pagedAfterMs).toBeDefined()
      expect(pagedAfterMs!).toBeLessThan(100)
    }))

  // The window's batches settle in log order on whichever fiber completes one (`InOrder`): the
  // cursor must never pass a batch still in flight, however the later ones are acknowledged.
  it.effect("batches acknowledged out of order move the cursor in log order: never past one still in flight", () =>
    Effect.gen(function* () {
      const cluster = Cluster.make({ regions: ["us", "eu"], agent: { batchSize: 1, flushDelayMs: 0, batchesInFlightMax: 4 } })
      const us = yield* cluster.start("us")
      const eu = yield* cluster.start("eu")
      const at = (ms: number) => Effect.zipRight(TestClock.setTime(ms), Effect.repeatN(Effect.yieldNow(), 20))
      yield* at(0)
      // eu answers the batch of the first change after 100 ms, the others at once.
      const handler = cluster.hub.handlers.get("eu-node1")!
      cluster.hub.handlers.set("eu-node1", (request) =>
        Effect.zipRight(Effect.sleep(request._tag === "ReplicateBatch" && request.changes.some((change) => change.tuple.subject === "user:a") ? 100 : 0), handler(request))
      )
      for (const subject of ["a", "b", "c"]) yield* us.replica.write(insert(subject))
      yield* at(50)
      // b and c are applied and acknowledged; a is not, so the cursor stays before it.
      expect(yield* eu.replica.check(tuple("c"))).toBe(true)
      expect(yield* eu.replica.check(tuple("a"))).toBe(false)
      const stats = (yield* us.agent.stats).targets.find((target) => target.target === "eu")!
      expect(stats.cursor).toBe(0)
      expect(stats.batches).toBe(0)
      // Once a's batch is acknowledged, the cursor moves past all three at once.
      yield* at(150)
      expect(yield* eu.replica.check(tuple("a"))).toBe(true)
      const after = (yield* us.agent.stats).targets.find((target) => target.target === "eu")!
      expect(after.cursor).toBe(3)
      expect(after.batches).toBe(3)
      expect(yield* Cluster.settle(Effect.map(us.store.getCursor("eu"), (cursor) => cursor === 3))).toBe(true)
    }))

  it.effect("a change the target refuses for good is split out of its batch and skipped, and the changes around it still arrive", () =>
    Effect.gen(function* () {
      const cluster = Cluster.make({ regions: ["us", "eu"], agent: { batchSize: 10, flushDelayMs: 20 } })
      const us = yield* cluster.start("us")
      const eu = yield* cluster.start("eu")
      yield* us.replica.write(insert("before"))
      // A log entry whose id names another region than its origin: every receiver refuses it as Malformed.
      const poison = { ...(yield* us.store.readLog(1, 1))[0]!.change, id: { origin: "mars/n/t", seq: 1 } }
      yield* us.store.transaction((tx) => tx.appendLog({ change: poison, receivedFrom: null, appliedAtMs: 0 }))
      yield* us.replica.write(insert("after"))
      expect(yield* Cluster.settle(eu.replica.check(tuple("after")))).toBe(true)
      expect(yield* eu.replica.check(tuple("before"))).toBe(true)
      expect(cluster.metrics.get("us")!.skipped).toBe(1)
      expect(yield* Cluster.settle(Effect.map(us.store.getCursor("eu"), (cursor) => cursor === 3))).toBe(true)
    }))

  it.effect("a send that dies below the agent is retried as a transient failure, and the batches behind it still arrive", () =>
    Effect.gen(function* () {
      // The first batch us sends dies in the network layer (as grpc-js threw on a channel another
      // request had just closed). The sender's fiber ended without an outcome, and every later
      // batch waited behind it in the in-order queue: nothing more reached eu.
      let deaths = 0
      const cluster = Cluster.make({
        regions: ["us", "eu"],
        agent: { batchSize: 1 },
        network: (region, network) => ({
          ...network,
          send: (peer, request, timeoutMs) =>
            region === "us" && request._tag === "ReplicateBatch" && deaths++ === 0 ? Effect.die(new Error("Channel has been shut down")) : network.send(peer, request, timeoutMs)
        })
      })
      const us = yield* cluster.start("us")
      const eu = yield* cluster.start("eu")
      for (const subject of ["a", "b", "c"]) yield* us.replica.write(insert(subject))
      expect(yield* Cluster.settle(Cluster.converged([us, eu]))).toBe(true)
      for (const subject of ["a", "b", "c"]) expect(yield* eu.replica.check(tuple(subject))).toBe(true)
      expect(deaths).toBeGreaterThan(1)
    }))

  it.effect("a batch above the message bound is split until it fits, and every change arrives; a change alone above it is skipped", () =>
    Effect.gen(function* () {
      // The transport takes at most 3 changes a message, as a small grpc.max_message_bytes would
      // (the network fails a larger one TooLarge, as GrpcNetwork maps grpc-js's RESOURCE_EXHAUSTED),
      // and never the change to "huge". A batch of 10 was sent as it was, again and again, forever.
      const sent: Array<number> = []
      const cluster = Cluster.make({
        regions: ["us", "eu"],
        agent: { batchSize: 10, flushDelayMs: 50 },
        network: (region, network) => ({
          ...network,
          send: (peer, request, timeoutMs) => {
            if (region !== "us" || request._tag !== "ReplicateBatch") return network.send(peer, request, timeoutMs)
            sent.push(request.changes.length)
            const tooLarge = request.changes.length > 3 || request.changes.some((change) => change.tuple.subject === "user:huge")
            return tooLarge ? Effect.fail(networkError(peer, "TooLarge", "RESOURCE_EXHAUSTED: Sent message larger than max")) : network.send(peer, request, timeoutMs)
          }
        })
      })
      const us = yield* cluster.start("us")
      const eu = yield* cluster.start("eu")
      const subjects = ["a", "b", "c", "d", "e", "huge", "f", "g", "h", "i"]
      yield* us.replica.write(subjects.map((subject) => insert(subject)[0]!))
      const arrived = Effect.map(Effect.forEach(subjects.filter((subject) => subject !== "huge"), (subject) => eu.replica.check(tuple(subject))), (all) => all.every(Boolean))
      expect(yield* Cluster.settle(arrived)).toBe(true)
      expect(yield* eu.replica.check(tuple("huge"))).toBe(false)
      // 10 split into 5 and 5, each into 3 and 2, and the 2 holding "huge" into single changes.
      expect(sent.some((count) => count === 10)).toBe(true)
      expect(sent.every((count) => count === 10 || count <= 5)).toBe(true)
      expect(sent.filter((count) => count === 1).length).toBeGreaterThanOrEqual(1)
      // Nothing more is sent once the split batch went through: the skip is not retried forever.
      const settled = sent.length
      yield* TestClock.adjust(10_000)
      expect(sent.length).toBe(settled)
    }))

  it.effect("the window is kept within the network's bound per endpoint: 32 batches allowed, 2 in flight at most", () =>
    Effect.gen(function* () {
      // Wider than the bound, the rest of a window only queued in the node for a slot, timing out
      // there (swarm seed 130001316). Each send here takes 50 ms, so a wider window would show.
      const inFlight = { now: 0, most: 0 }
      const cluster = Cluster.make({
        regions: ["us", "eu"],
        agent: { batchSize: 1, batchesInFlightMax: 32 },
        inFlightPerTargetMax: 2,
        network: (region, network) => ({
          ...network,
          send: (peer, request, timeoutMs) =>
            region !== "us" || request._tag !== "ReplicateBatch"
              ? network.send(peer, request, timeoutMs)
              : Effect.acquireUseRelease(
                  Effect.sync(() => {
                    inFlight.now++
                    inFlight.most = Math.max(inFlight.most, inFlight.now)
                  }),
                  () => Effect.zipRight(Effect.sleep("50 millis"), network.send(peer, request, timeoutMs)),
                  () => Effect.sync(() => void inFlight.now--)
                )
        })
      })
      const us = yield* cluster.start("us")
      const eu = yield* cluster.start("eu")
      const subjects = Array.from({ length: 12 }, (_, index) => `s${index}`)
      for (const subject of subjects) yield* us.replica.write(insert(subject))
      const arrived = Effect.map(Effect.forEach(subjects, (subject) => eu.replica.check(tuple(subject))), (all) => all.every(Boolean))
      expect(yield* Cluster.settle(arrived)).toBe(true)
      expect(inFlight.most).toBe(2)
    }))

  it.effect("MultiMaster never ships a vault outside its residency set and rejects writes away from home", () =>
    Effect.gen(function* () {
      const cluster = Cluster.make({
        regions: ["us", "eu", "ap"],
        strategy: "MultiMaster",
        vaults: [
          { vault: "global", homeRegion: "us" },
          { vault: "gdpr", homeRegion: "eu", allowedRegions: ["eu"] }
        ]
      })
      const nodes = [yield* cluster.start("us"), yield* cluster.start("eu"), yield* cluster.start("ap")]
      yield* nodes[0]!.replica.write(insert("x", "global"))
      yield* nodes[1]!.replica.write(insert("y", "gdpr"))
      const away = yield* Effect.flip(nodes[2]!.replica.write(insert("z", "global")))
      expect(away).toMatchObject({ _tag: "WriteRejected", reason: "NotHomeRegion" })
      expect(yield* Cluster.settle(Effect.map(nodes[2]!.replica.check(tuple("x", "global")), (present) => present))).toBe(true)
      yield* TestClock.adjust(1_000)
      expect(yield* nodes[0]!.replica.check(tuple("y", "gdpr"))).toBe(false)
      expect(yield* nodes[2]!.replica.check(tuple("y", "gdpr"))).toBe(false)
      expect((yield* nodes[0]!.store.readLog(1, 100)).some((entry) => entry.change.tuple.vault === "gdpr")).toBe(false)
    }))

  it.effect("PrimaryReplica accepts writes only at the primary", () =>
    Effect.gen(function* () {
      const cluster = Cluster.make({ regions: ["us", "eu"], strategy: "PrimaryReplica", primary: "us" })
      const us = yield* cluster.start("us")
      const eu = yield* cluster.start("eu")
      expect(yield* Cluster.leased(us)).toBe(true)
      yield* us.replica.write(insert("alice"))
      const rejected = yield* Effect.flip(eu.replica.write(insert("bob")))
      expect(rejected).toMatchObject({ _tag: "WriteRejected", reason: "NotPrimary" })
      expect(yield* Cluster.settle(eu.replica.check(tuple("alice")))).toBe(true)
    }))
})

describe("Agent following the topology", () => {
  it.effect("a region removed at run time stops receiving changes and gets them all once it is added back", () =>
    Effect.gen(function* () {
      const cluster = Cluster.make({ regions: ["us", "eu", "ap"] })
      const us = yield* cluster.start("us")
      const eu = yield* cluster.start("eu")
      const ap = yield* cluster.start("ap")
      const removed = Topology.findRegion(yield* us.topology.current, "ap")!
      yield* us.topology.removeRegion("ap")
      yield* eu.topology.removeRegion("ap")
      yield* us.replica.write(insert("while-removed"))
      expect(yield* Cluster.settle(eu.replica.check(tuple("while-removed")))).toBe(true)
      yield* TestClock.adjust(1_000)
      expect(yield* ap.replica.check(tuple("while-removed"))).toBe(false)
      yield* us.topology.addRegion(removed, { targets: ["us", "eu"], sources: ["us", "eu"] })
      yield* eu.topology.addRegion(removed, { targets: ["us", "eu"], sources: ["us", "eu"] })
      expect(yield* Cluster.settle(Cluster.converged([us, eu, ap]))).toBe(true)
      expect(yield* ap.replica.check(tuple("while-removed"))).toBe(true)
    }))
})

describe("Agent across relay-tree changes", () => {
  const ring = { us: ["eu"], eu: ["ap"], ap: ["us"] }
  const withChord = { us: ["eu", "ap"], eu: ["ap"], ap: ["us"] }
  const reload = (nodes: ReadonlyArray<Cluster.RunningNode>, targets: Record<string, ReadonlyArray<string>>) =>
    Effect.forEach(nodes, (node) => node.topology.reconfigure(Cluster.topologyFor({ regions: ["us", "eu", "ap"], targets }, node.region)), { discard: true })

  it.effect("a region that becomes a target's parent again re-sends what it skipped while another region was the parent", () =>
    Effect.gen(function* () {
      const cluster = Cluster.make({ regions: ["us", "eu", "ap"], targets: ring })
      const nodes = [yield* cluster.start("us"), yield* cluster.start("eu"), yield* cluster.start("ap")]
      const [us, eu, ap] = nodes as [Cluster.RunningNode, Cluster.RunningNode, Cluster.RunningNode]
      // us ships its own changes to ap directly from now on, but that link is down: its batches wait.
      yield* reload(nodes, withChord)
      Network.partition(cluster.hub, "us", "ap", true)
      for (let index = 0; index < 6; index++) yield* us.replica.write(insert(`chord${index}`))
      // eu holds them and moves its cursor towards ap past them: under this tree they are not its to send.
      expect(yield* Cluster.settle(Effect.map(eu.store.getCursor("ap"), (cursor) => cursor >= 6))).toBe(true)
      expect(yield* ap.replica.check(tuple("chord0"))).toBe(false)
      // The chord goes away: eu is ap's parent for us's changes again, and nothing else will send them.
      yield* reload(nodes, ring)
      Network.heal(cluster.hub)
      expect(yield* Cluster.settle(Cluster.converged(nodes))).toBe(true)
      expect(yield* ap.replica.check(tuple("chord5"))).toBe(true)
    }))

  it.effect("a region removed for good: the changes of it that only one survivor holds reach the others, relayed by that survivor, and a later removal does not send them again", () =>
    Effect.gen(function* () {
      const regions = ["us", "eu", "ap", "sa"]
      const meshOf = (left: ReadonlyArray<string>) => Object.fromEntries(left.map((region) => [region, left.filter((other) => other !== region)]))
      // Changes of ap that the regions left send each other after ap is gone.
      let relayed = 0
      const cluster = Cluster.make({
        regions,
        targets: meshOf(regions),
        network: (region, network) => ({
          ...network,
          send: (peer, request, timeoutMs) => {
            if (region !== "ap" && request._tag === "ReplicateBatch") relayed += request.changes.filter((change) => change.originRegion === "ap").length
            return network.send(peer, request, timeoutMs)
          }
        })
      })
      const nodes = [yield* cluster.start("us"), yield* cluster.start("eu"), yield* cluster.start("ap"), yield* cluster.start("sa")]
      const [us, eu, ap] = nodes as [Cluster.RunningNode, Cluster.RunningNode, Cluster.RunningNode, Cluster.RunningNode]
      // ap sends its changes straight to each region; its links to us and sa are down, so only eu gets them.
      Network.partition(cluster.hub, "ap", "us", true)
      Network.partition(cluster.hub, "ap", "sa", true)
      for (let index = 0; index < 4; index++) yield* ap.replica.write(insert(`gone${index}`))
      expect(yield* Cluster.settle(eu.replica.check(tuple("gone3")))).toBe(true)
      // ap is decommissioned: the others reload without it.
      const reloadTo = (left: ReadonlyArray<string>) =>
        Effect.forEach(
          nodes.filter((node) => left.includes(node.region)),
          (node) => node.topology.reconfigure(Cluster.topologyFor({ regions: left, targets: meshOf(left) }, node.region)),
          { discard: true }
        )
      yield* reloadTo(["us", "eu", "sa"])
      const left = nodes.filter((node) => node.region !== "ap")
      expect(yield* Cluster.settle(Cluster.converged(left))).toBe(true)
      expect(yield* us.replica.check(tuple("gone0"))).toBe(true)
      expect(yield* us.replica.check(tuple("gone3"))).toBe(true)
      expect(relayed).toBeGreaterThan(0)
      // sa goes too: the look-backs are for sa's changes, not for ap's all over again.
      const before = relayed
      yield* reloadTo(["us", "eu"])
      // Each look-back ends by recording its new scope: wait for both.
      const lookedBack = (node: Cluster.RunningNode, target: string) => Effect.map(node.store.getRelayScope(target), (scope) => scope?.includes("(declared eu,us)") === true)
      expect(yield* Cluster.settle(Effect.zipWith(lookedBack(us, "eu"), lookedBack(eu, "us"), (a, b) => a && b))).toBe(true)
      expect(relayed).toBe(before)
    }))

  it.effect("a target added at run time receives the whole log relevant to it", () =>
    Effect.gen(function* () {
      const cluster = Cluster.make({ regions: ["us", "eu", "ap"], targets: ring })
      const nodes = [yield* cluster.start("us"), yield* cluster.start("eu"), yield* cluster.start("ap")]
      const [us, , ap] = nodes as [Cluster.RunningNode, Cluster.RunningNode, Cluster.RunningNode]
      for (let index = 0; index < 5; index++) yield* us.replica.write(insert(`early${index}`))
      expect(yield* Cluster.settle(Cluster.converged(nodes))).toBe(true)
      yield* reload(nodes, withChord)
      expect(yield* Cluster.settle(Effect.map(us.store.getCursor("ap"), (cursor) => cursor >= 5))).toBe(true)
      // us's scope towards ap is recorded with the cursor; the early changes went the new way too (duplicates are no-ops).
      expect(yield* us.store.getRelayScope("ap")).toEqual(["us|*", "(undeclared)|*", "(declared ap,eu,us)"])
      expect(yield* ap.replica.check(tuple("early4"))).toBe(true)
    }))
})

describe("Agent.backoffMs", () => {
  const settings = { ...Cluster.agentSettings, retryDelayMs: 100, retryDelayMaxMs: 1_000, maxRetries: 5 }

  it("grows exponentially with jitter in [50%, 100%] and is capped", () => {
    const random = Random.make(3)
    const delays = [1, 2, 3, 4, 5].map((failures) => Agent.backoffMs(settings, failures, random))
    const bases = [100, 200, 400, 800, 1_000]
    delays.forEach((delay, index) => {
      expect(delay).toBeGreaterThanOrEqual(bases[index]! / 2)
      expect(delay).toBeLessThanOrEqual(bases[index]!)
    })
  })

  it("keeps probing at the capped interval after max_retries instead of giving up", () => {
    const random = Random.make(4)
    for (let failures = 6; failures < 200; failures += 37) {
      const delay = Agent.backoffMs(settings, failures, random)
      expect(delay).toBeGreaterThanOrEqual(500)
      expect(delay).toBeLessThanOrEqual(1_000)
    }
  })
})
