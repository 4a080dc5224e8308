/**
 * Liveness over the in-memory cluster: a node that stops answering heartbeats is marked
 * Unreachable after the timeout, and needs several good heartbeats to be Healthy again. And
 * the PrimaryReplica write lease the rounds carry (`Primacy`): renewed by agreement, lost to
 * silence or a newer epoch, and waited out by a region that takes over.
 */
import { describe, expect, it } from "@effect/vitest"
import { Clock as EffectClock, Effect, Either, TestClock } from "effect"
import * as Heartbeater from "../../src/replication/Heartbeater.js"
import type * as Replica from "../../src/replication/Replica.js"
import * as Topology from "../../src/replication/Topology.js"
import * as Cluster from "./fixtures/cluster.js"

const statusOf = (node: Cluster.RunningNode, region: string) =>
  Effect.map(node.topology.current, (topology) => Topology.regionNodes(Topology.findRegion(topology, region)!)[0]!.status)

describe("Heartbeater", () => {
  it.effect("a stopped node is marked Unreachable after the heartbeat timeout and recovers only after three good heartbeats", () =>
    Effect.gen(function* () {
      const cluster = Cluster.make({ regions: ["us", "eu"] })
      const us = yield* cluster.start("us")
      let eu = yield* cluster.start("eu")
      yield* TestClock.adjust(5_000)
      expect(yield* statusOf(us, "eu")).toBe("Healthy")
      yield* eu.stop
      for (let second = 0; second < 32; second++) yield* TestClock.adjust(1_000)
      expect(yield* statusOf(us, "eu")).toBe("Unreachable")
      eu = yield* cluster.start("eu")
      yield* TestClock.adjust(1_000)
      expect(yield* statusOf(us, "eu")).toBe("Unreachable")
      for (let second = 0; second < 3; second++) yield* TestClock.adjust(1_000)
      expect(yield* statusOf(us, "eu")).toBe("Healthy")
    }))

  it.effect("heartbeats measure each node's clock against its peers': two hours off is degraded on /healthz, with the reason", () =>
    Effect.gen(function* () {
      const cluster = Cluster.make({ regions: ["us", "eu", "ap"] })
      const us = yield* cluster.start("us", { clockOffsetMs: 2 * 3_600_000 })
      const eu = yield* cluster.start("eu")
      yield* cluster.start("ap")
      for (let second = 0; second < 3; second++) yield* TestClock.adjust(1_000)
      const skewed = yield* us.health
      expect(skewed.status).toBe("degraded")
      expect(skewed.clock).toMatchObject({ degraded: true, peers: 2, beyond: 2 })
      expect(skewed.reason).toContain("clock off by more than max_offset_ms")
      // eu sees one peer (us) beyond the bound and one (ap) within it: not a majority, healthy.
      expect(yield* eu.health).toMatchObject({ status: "healthy", clock: { degraded: false, peers: 2, beyond: 1 } })
    }))

  it.effect("a node that never answered a heartbeat is marked Unreachable after the grace period", () =>
    Effect.gen(function* () {
      const cluster = Cluster.make({ regions: ["us", "eu"] })
      const us = yield* cluster.start("us")
      for (let second = 0; second < 29; second++) yield* TestClock.adjust(1_000)
      expect(yield* statusOf(us, "eu")).toBe("Healthy")
      for (let second = 0; second < 3; second++) yield* TestClock.adjust(1_000)
      expect(yield* statusOf(us, "eu")).toBe("Unreachable")
    }))
})

const write = (node: Cluster.RunningNode, subject: string) =>
  node.replica.write([{ op: "insert", tuple: { vault: "acme", resource: "document:readme", relation: "viewer", subject: `user:${subject}` } }] satisfies ReadonlyArray<Replica.Operation>)

/** Three regions under PrimaryReplica with `us` primary, all started, once `us` takes writes. */
const threeRegions = Effect.gen(function* () {
  const cluster = Cluster.make({ regions: ["us", "eu", "ap"], strategy: "PrimaryReplica", primary: "us" })
  const us = yield* cluster.start("us")
  const eu = yield* cluster.start("eu")
  const ap = yield* cluster.start("ap")
  expect(yield* Cluster.writable(us, 3)).toBe(true)
  return { us, eu, ap }
})

/** The cluster's lease is its heartbeat timeout. */
const leaseMs = 30_000

describe("Heartbeater and the write lease", () => {
  it.effect("a primary takes writes once more than half of the regions agreed with its view, and refuses them once they have been silent for the lease", () =>
    Effect.gen(function* () {
      const { us, eu, ap } = yield* threeRegions
      yield* write(us, "alice")
      yield* eu.stop
      yield* ap.stop
      const stoppedAtMs = yield* EffectClock.currentTimeMillis
      for (let second = 0; second < leaseMs / 2_000; second++) yield* TestClock.adjust(1_000)
      yield* write(us, "carol")
      // The first refusal is the lease's, about a lease after the last round the others answered
      // (before the primary, which lost them, fences itself).
      expect(yield* Cluster.settle(Effect.map(Effect.either(write(us, "bob")), Either.isLeft), { stepMs: 100 })).toBe(true)
      expect((yield* EffectClock.currentTimeMillis) - stoppedAtMs).toBeGreaterThan(leaseMs - 2_000)
      expect(yield* Effect.flip(write(us, "bob"))).toMatchObject({ _tag: "WriteRejected", reason: "NotPrimary", message: expect.stringMatching(/write lease lapsed/) })
    }))

  it.effect("a primary refuses writes as soon as a heartbeat answer shows a newer epoch", () =>
    Effect.gen(function* () {
      const { us, eu } = yield* threeRegions
      yield* eu.primacy.adopt({ epoch: 1, primary: "eu" })
      const adoptedAtMs = yield* EffectClock.currentTimeMillis
      // The answer that shows it comes within a round (an interval, 1 s): from then on us refuses,
      // first for the newer epoch it saw, then, once Failover has adopted it (which may come in
      // the same instant), as a replica of eu.
      expect(yield* Cluster.settle(Effect.map(Effect.either(write(us, "bob")), Either.isLeft), { stepMs: 10, budgetMs: 2_000 })).toBe(true)
      expect((yield* EffectClock.currentTimeMillis) - adoptedAtMs).toBeLessThanOrEqual(1_100)
      const state = yield* us.primacy.state
      expect(state.newerEpochSeen ?? { epoch: state.epoch, primary: state.primary }).toEqual({ epoch: 1, primary: "eu" })
      expect(yield* Effect.flip(write(us, "bob"))).toMatchObject({ reason: "NotPrimary", message: expect.stringMatching(/epoch 1 \(primary 'eu'\) has begun elsewhere|primary region 'eu'/) })
    }))

  it.effect("a changed view ends the heartbeater's pause: the round that seeks the new view's lease starts at once, not an interval later", () =>
    Effect.gen(function* () {
      const { eu, ap } = yield* threeRegions
      // Mid-interval: the last round is done and the next is most of a second away.
      yield* TestClock.adjust(1_000)
      yield* TestClock.adjust(100)
      for (const node of [ap, eu]) yield* node.primacy.adopt({ epoch: 1, primary: "eu" })
      expect((yield* eu.primacy.state).leaseRenewedAtMs).toBeUndefined()
      yield* TestClock.adjust(10)
      expect((yield* eu.primacy.state).leaseRenewedAtMs).toBeDefined()
    }))

  it.effect("a region that takes over waits until the lease a third region granted the old primary can have run out", () =>
    Effect.gen(function* () {
      const { us, eu, ap } = yield* threeRegions
      yield* us.stop
      for (const node of [eu, ap]) yield* node.primacy.adopt({ epoch: 1, primary: "eu" })
      yield* eu.topology.setPrimary("eu")
      yield* TestClock.adjust(1_000)
      const taking = yield* eu.primacy.state
      expect(taking.writableFromMs! - taking.leaseRenewedAtMs!).toBeGreaterThan(leaseMs - 3_000)
      expect(yield* Effect.flip(write(eu, "bob"))).toMatchObject({ reason: "NotPrimary", message: expect.stringMatching(/taking over epoch 1/) })
      expect(yield* Cluster.settle(Effect.isSuccess(write(eu, "bob")), { stepMs: 1_000, budgetMs: leaseMs })).toBe(true)
    }))

  it.effect("a region that takes over writes at once when the old primary answers with the new view itself", () =>
    Effect.gen(function* () {
      const { us, eu, ap } = yield* threeRegions
      for (const node of [us, eu, ap]) yield* node.primacy.adopt({ epoch: 1, primary: "eu" })
      yield* eu.topology.setPrimary("eu")
      yield* TestClock.adjust(1_000)
      yield* write(eu, "bob")
    }))

  it("a peer's heartbeat deadline follows its round trips and backs off after timeouts, within the floor and the cap", () => {
    const settings = { regionId: "us", nodeId: "us-node1", intervalMs: 200, requestTimeoutMs: 400, requestTimeoutMaxMs: 2_000 }
    // A link slower than the first deadline: every timeout doubles it until answers come back.
    const afterTimeout = Heartbeater.nextTimeout(settings, undefined, undefined)
    expect(afterTimeout.timeoutMs).toBe(800)
    expect(Heartbeater.nextTimeout(settings, afterTimeout, undefined).timeoutMs).toBe(1_600)
    expect(Heartbeater.nextTimeout(settings, { ...afterTimeout, timeoutMs: 1_600 }, undefined).timeoutMs).toBe(2_000)
    // Answers in about 460 ms keep the deadline above the round trip.
    let estimate = Heartbeater.nextTimeout(settings, undefined, 460)
    for (const sampleMs of [430, 500, 470, 450]) estimate = Heartbeater.nextTimeout(settings, estimate, sampleMs)
    expect(estimate.timeoutMs).toBeGreaterThan(500)
    expect(estimate.timeoutMs).toBeLessThanOrEqual(2_000)
    // A fast link never goes below the floor.
    expect(Heartbeater.nextTimeout(settings, undefined, 5).timeoutMs).toBe(400)
  })

  it("a timeout doubles the deadline and leaves the round-trip estimate alone, even before the first answer: the next answers bring the deadline back at once", () => {
    const settings = { regionId: "us", nodeId: "us-node1", intervalMs: 500, requestTimeoutMs: 1_000, requestTimeoutMaxMs: 3_000 }
    // The first heartbeat lost (its handshake, say): the peer must not count as slow for long.
    const lost = Heartbeater.nextTimeout(settings, undefined, undefined)
    expect(lost).toEqual({ smoothedMs: undefined, deviationMs: undefined, timeoutMs: 2_000 })
    const answered = Heartbeater.nextTimeout(settings, lost, 100)
    expect(answered).toEqual({ smoothedMs: 100, deviationMs: 50, timeoutMs: 1_000 })
    const lostAgain = Heartbeater.nextTimeout(settings, answered, undefined)
    expect(lostAgain).toEqual({ ...answered, timeoutMs: 2_000 })
    expect(Heartbeater.nextTimeout(settings, lostAgain, 100).timeoutMs).toBe(1_000)
  })
})

describe("Heartbeater.sideRequestsMax", () => {
  const settings: Heartbeater.Settings = { regionId: "us", nodeId: "us-node1", intervalMs: 200, requestTimeoutMs: 300, requestTimeoutMaxMs: 1_600 }
  const withPeer = (timeoutMs: number | undefined, answeredSentAtMs: number | undefined) => {
    const memory = Heartbeater.makeMemory()
    if (timeoutMs !== undefined) memory.roundTrips.set("eu-node1", { smoothedMs: 380, deviationMs: 30, timeoutMs })
    if (answeredSentAtMs !== undefined) {
      memory.recent.set("eu-node1", { ack: { _tag: "HeartbeatAck", region: "eu", node: "eu-node1", atMs: 0, epoch: 0, primary: "us", grantAgesMs: {} }, sentAtMs: answeredSentAtMs })
    }
    return memory
  }

  it("a slow peer that answers is asked every round, one request per interval its deadline spans", () => {
    // Deadline 880 ms over 200 ms rounds: 5 requests out at once, so an answer comes every round.
    expect(Heartbeater.sideRequestsMax(settings, withPeer(880, 9_600), "eu-node1", 10_000)).toBe(5)
    expect(Heartbeater.sideRequestsMax(settings, withPeer(400, 9_800), "eu-node1", 10_000)).toBe(2)
  })

  it("a silent peer has one request out at a time: never answered, or its latest answer older than its deadline and a round", () => {
    expect(Heartbeater.sideRequestsMax(settings, withPeer(1_600, undefined), "eu-node1", 10_000)).toBe(1)
    expect(Heartbeater.sideRequestsMax(settings, withPeer(undefined, undefined), "eu-node1", 10_000)).toBe(1)
    expect(Heartbeater.sideRequestsMax(settings, withPeer(880, 10_000 - 880 - 200 - 1), "eu-node1", 10_000)).toBe(1)
    expect(Heartbeater.sideRequestsMax(settings, withPeer(880, 10_000 - 880 - 200), "eu-node1", 10_000)).toBe(5)
  })
})
