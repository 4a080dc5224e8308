/**
 * The write lease of PrimaryReplica as pure rules: when a write may be taken
 * (`Primacy.checkWrite`), what a heartbeat answer grants (`answerFor`), and what one heartbeat
 * round means for the asking node (`tally`): a renewal when more than half of the regions
 * agreed, the wait a takeover owes to leases granted to an older primary, and newer epochs.
 */
import { describe, expect, it } from "@effect/vitest"
import { Clock as EffectClock, Effect, Either, TestClock } from "effect"
import type * as Change from "../../src/replication/Change.js"
import * as Clock from "../../src/replication/Clock.js"
import * as KvDriver from "../../src/replication/KvDriver.js"
import type * as Message from "../../src/replication/Message.js"
import * as Primacy from "../../src/replication/Primacy.js"
import * as Store from "../../src/replication/Store.js"
import type * as Topology from "../../src/replication/Topology.js"
import * as TopologyBuilder from "../../src/replication/TopologyBuilder.js"
import * as Cluster from "./fixtures/cluster.js"

const leaseMs = 3_000
const three = Cluster.topologyFor({ regions: ["a", "b", "c"], strategy: "PrimaryReplica", primary: "a" }, "a")

/** Region `b` has two nodes (b-node1, b-node2); `a` and `c` one each. */
const withTwoNodesInB: Topology.Topology = (() => {
  let builder = TopologyBuilder.make("PrimaryReplica", "a")
  for (const region of ["a", "b", "c"]) {
    builder = TopologyBuilder.addRegion(builder, { id: region, name: region, isPrimary: region === "a" })
    builder = TopologyBuilder.addZone(builder, region, { id: `${region}z` })
    builder = TopologyBuilder.addNode(builder, region, `${region}z`, { id: `${region}-node1`, endpoint: `mem://${region}1` })
  }
  builder = TopologyBuilder.addNode(builder, "b", "bz", { id: "b-node2", endpoint: "mem://b2" })
  return Either.getOrThrow(TopologyBuilder.build(builder))
})()

const state = (view: Primacy.View, extra: Partial<Primacy.State> = {}): Primacy.State => ({ ...Primacy.initialState(view, [], undefined), ...extra })

/** A lease renewed at `renewedAtMs` and writable from `writableFromMs`. */
const leased = (renewedAtMs: number, writableFromMs = renewedAtMs): Primacy.State =>
  state({ epoch: 0, primary: "a" }, { leaseRenewedAtMs: renewedAtMs, writableFromMs })

const ack = (region: string, view: Primacy.View, grantAgesMs: Record<string, number> = {}, node = `${region}-node1`): Message.HeartbeatAck => ({
  _tag: "HeartbeatAck",
  region,
  node,
  atMs: 0,
  epoch: view.epoch,
  ...(view.primary === undefined ? {} : { primary: view.primary }),
  grantAgesMs
})

const round = (acks: ReadonlyArray<Message.HeartbeatAck>, overrides: Partial<Primacy.Round> = {}): Primacy.Round => ({
  topology: three,
  regionId: "a",
  state: state({ epoch: 0, primary: "a" }),
  acks,
  startedAtMs: 10_000,
  endedAtMs: 10_200,
  leaseMs,
  ...overrides
})

const epochZero: Primacy.View = { epoch: 0, primary: "a" }

const change: Change.Change = {
  id: { origin: "a", seq: 1 },
  op: "insert",
  tuple: { vault: "acme", resource: "document:readme", relation: "viewer", subject: "user:alice" },
  timestamp: { physicalMs: 1, logical: 0 },
  originRegion: "a",
  originNode: "a-node1",
  originRevision: 1,
  committedAtMs: 1,
  context: {}
}

describe("Primacy.checkWrite", () => {
  it("with three regions a primary takes writes only while its lease holds and its takeover wait is over", () => {
    expect(Primacy.checkWrite(state(epochZero), 0, leaseMs, 3)?.message).toMatch(/write lease lapsed.*never/)
    // The holder writes for a little less than the lease (`heldMs`: clocks may drift apart).
    expect(Primacy.heldMs(leaseMs)).toBe(2_997)
    expect(Primacy.checkWrite(leased(1_000), 1_000 + Primacy.heldMs(leaseMs), leaseMs, 3)).toBeUndefined()
    expect(Primacy.checkWrite(leased(1_000), 1_001 + Primacy.heldMs(leaseMs), leaseMs, 3)).toMatchObject({ reason: "NotPrimary", message: expect.stringMatching(/write lease lapsed/) })
    expect(Primacy.checkWrite(leased(1_000, 2_500), 2_000, leaseMs, 3)?.message).toMatch(/taking over epoch 0: waiting until 500 ms from now/)
    expect(Primacy.checkWrite(leased(1_000, 2_500), 2_500, leaseMs, 3)).toBeUndefined()
  })

  it("with two regions a newer epoch seen elsewhere stops writes, as with three", () => {
    const outdated = Primacy.observeIn(leased(0), { epoch: 1, primary: "b" })
    expect(Primacy.checkWrite(outdated, 0, leaseMs, 2)).toMatchObject({ reason: "NotPrimary", message: expect.stringMatching(/epoch 1 \(primary 'b'\) has begun elsewhere/) })
    expect(Primacy.checkWrite(outdated, 0, leaseMs, 3)?.message).toMatch(/has begun elsewhere/)
  })

  it("with one region there is no lease at all", () => {
    expect(Primacy.checkWrite(state(epochZero), 0, leaseMs, 1)).toBeUndefined()
  })
})

/** Two regions: `a` (one node) and `b` (b-node1, b-node2). */
const pair: Topology.Topology = (() => {
  let builder = TopologyBuilder.make("PrimaryReplica", "a")
  for (const region of ["a", "b"]) {
    builder = TopologyBuilder.addRegion(builder, { id: region, name: region, isPrimary: region === "a" })
    builder = TopologyBuilder.addZone(builder, region, { id: `${region}z` })
    builder = TopologyBuilder.addNode(builder, region, `${region}z`, { id: `${region}-node1`, endpoint: `mem://${region}1` })
  }
  builder = TopologyBuilder.addNode(builder, "b", "bz", { id: "b-node2", endpoint: "mem://b2" })
  return Either.getOrThrow(TopologyBuilder.build(builder))
})()

const pairRound = (latest: ReadonlyArray<Message.HeartbeatAck>, overrides: Partial<Primacy.PairRound> = {}): Primacy.PairRound => ({
  topology: pair,
  regionId: "a",
  state: state({ epoch: 2, primary: "a" }),
  latest,
  startedAtMs: 10_000,
  endedAtMs: 10_200,
  leaseMs,
  ...overrides
})

describe("Primacy with two regions (pairRenewal)", () => {
  it.effect("a node renews no two-region lease after it starts until every node of the other region has answered it, or the operator promotes its region on it, whatever view it adopts meanwhile", () =>
    Effect.gen(function* () {
      const settings = { initial: { epoch: 2, primary: "a" }, leaseMs, pairLeaseMs: leaseMs, regions: ["a", "b"] }
      const primacy = yield* Primacy.make(settings).pipe(Effect.provide(Store.layerMemory(KvDriver.makeMemoryDisk())))
      const waiting = yield* primacy.state
      expect(waiting.awaitingPeers).toBe(true)
      expect(Primacy.pairRenewal(pairRound([], { state: waiting }))).toBeUndefined()
      expect(Primacy.checkWrite(waiting, 0, leaseMs, 2)?.message).toMatch(/has not heard every node of the other region/)
      // Three regions decide by a majority's lease instead: the flag does not hold them.
      expect(Primacy.checkWrite(waiting, 0, leaseMs, 3)?.message).not.toMatch(/has not heard every node/)
      // A view adopted meanwhile (a stale record naming this region) does not end the wait.
      yield* primacy.adopt({ epoch: 3, primary: "a" })
      expect((yield* primacy.state).awaitingPeers).toBe(true)
      primacy.now.peersHeard()
      const heard = yield* primacy.state
      expect(heard.awaitingPeers).toBeUndefined()
      expect(heard.takenOverAtMs).toBeUndefined()
      expect(Primacy.pairRenewal(pairRound([], { state: heard }))).toBeDefined()
      // The operator's promotion ends it as well.
      const other = yield* Primacy.make(settings).pipe(Effect.provide(Store.layerMemory(KvDriver.makeMemoryDisk())))
      yield* other.operatorPromoted
      expect((yield* other.state).awaitingPeers).toBeUndefined()
    }))

  it("a round renews the lease from its start, answers or none, and the lease lapses a lease after the last round started", () => {
    const renewal = Primacy.pairRenewal(pairRound([]))
    expect(renewal).toEqual({ view: { epoch: 2, primary: "a" }, renewedAtMs: 10_000, writableFromMs: 10_200 })
    const renewed = Primacy.renewPairIn(state({ epoch: 2, primary: "a" }), renewal!)
    expect(Primacy.checkWrite(renewed, 10_200 + 1, leaseMs, 2)).toBeUndefined()
    expect(Primacy.checkWrite(renewed, 10_000 + Primacy.heldMs(leaseMs), leaseMs, 2)).toBeUndefined()
    // A node paused for longer than a lease finds it lapsed when it resumes, before any round of its own.
    expect(Primacy.checkWrite(renewed, 10_000 + Primacy.heldMs(leaseMs) + 1, leaseMs, 2)).toMatchObject({ reason: "NotPrimary", message: expect.stringMatching(/write lease lapsed: .*may have been paused/) })
    expect(Primacy.checkWrite(state({ epoch: 2, primary: "a" }), 0, leaseMs, 2)?.message).toMatch(/round has not ended yet/)
  })

  // Swarm seed 147100067 over two-region-handback-pause.yaml: the primary region's wiped disk
  // paged a wiped node of the promoted region, whose one sibling holding epoch 1 was down, and
  // took writes in epoch 0 after the operator's epoch 1.
  it("a node on a new or wiped disk renews only once a node of the other region that is not recovering answered with its view", () => {
    const fresh = state({ epoch: 0, primary: "a" }, { recovering: { vouchesFromEpoch: 0 }, awaitingVouch: true })
    const recovering = { ...ack("b", { epoch: 0, primary: "a" }), recovering: true as const }
    expect(Primacy.pairRenewal(pairRound([], { state: fresh }))).toBeUndefined()
    expect(Primacy.pairRenewal(pairRound([recovering], { state: fresh }))).toBeUndefined()
    // Its own region's answer vouches for nothing here, nor one for another view.
    expect(Primacy.pairRenewal(pairRound([ack("a", { epoch: 0, primary: "a" }, {}, "a-node2")], { state: fresh }))).toBeUndefined()
    expect(Primacy.pairRenewal(pairRound([ack("b", { epoch: 0, primary: "b" })], { state: fresh }))).toBeUndefined()
    const renewal = Primacy.pairRenewal(pairRound([recovering, ack("b", { epoch: 0, primary: "a" }, {}, "b-node2")], { state: fresh }))
    expect(renewal?.writableFromMs).toBe(10_200)
    // Once renewed, later rounds renew as any node's do, answers or none.
    const renewed = Primacy.renewPairIn(fresh, renewal!)
    expect(renewed.awaitingVouch).toBeUndefined()
    expect(Primacy.pairRenewal(pairRound([], { state: renewed, startedAtMs: 11_000, endedAtMs: 11_100 }))?.writableFromMs).toBe(11_100)
    // A change of view (the operator's promotion, an adopted record) ends the wait too, as does a
    // majority's renewal (three regions or more), which counts only nodes that vouch.
    expect(Primacy.adoptIn(fresh, { epoch: 5, primary: "a" }, 10_000).awaitingVouch).toBeUndefined()
    expect(Primacy.renewIn(fresh, { view: { epoch: 0, primary: "a" }, renewedAtMs: 10_000, writableFromMs: 10_200 }).awaitingVouch).toBeUndefined()
    expect(Primacy.renewIn(fresh, { view: { epoch: 1, primary: "a" }, renewedAtMs: 10_000, writableFromMs: 10_200 }).awaitingVouch).toBe(true)
  })

  it("a node that is not primary in its view, or has seen a newer epoch, renews nothing", () => {
    expect(Primacy.pairRenewal(pairRound([], { state: state({ epoch: 2, primary: "b" }) }))).toBeUndefined()
    expect(Primacy.pairRenewal(pairRound([], { state: Primacy.observeIn(state({ epoch: 2, primary: "a" }), { epoch: 3, primary: "b" }) }))).toBeUndefined()
  })

  it("after taking the role over, it waits a lease from the takeover until every node of the other region answered with its epoch or a newer one", () => {
    const tookOver = Primacy.adoptIn(state({ epoch: 1, primary: "b" }), { epoch: 2, primary: "a" }, 9_000)
    expect(tookOver.takenOverAtMs).toBe(9_000)
    // b-node1 (paused, say) still answered with epoch 1 last; b-node2 handed the role back.
    const oneBehind = [ack("b", { epoch: 1, primary: "b" }, {}, "b-node1"), ack("b", { epoch: 2, primary: "a" }, {}, "b-node2")]
    const waiting = Primacy.pairRenewal(pairRound(oneBehind, { state: tookOver }))
    expect(waiting?.writableFromMs).toBe(9_000 + leaseMs)
    const renewed = Primacy.renewPairIn(tookOver, waiting!)
    expect(Primacy.checkWrite(renewed, 10_300, leaseMs, 2)).toMatchObject({ message: expect.stringMatching(/taking over epoch 2: waiting 1700 ms more/) })
    // A node the round never heard counts as not moved on.
    expect(Primacy.pairRenewal(pairRound([ack("b", { epoch: 2, primary: "a" }, {}, "b-node2")], { state: tookOver }))?.writableFromMs).toBe(9_000 + leaseMs)
    // Once both answered with epoch 2 (or newer), the wait is over, and the latest round's word stands.
    const bothOn = [ack("b", { epoch: 3, primary: "b" }, {}, "b-node1"), ack("b", { epoch: 2, primary: "a" }, {}, "b-node2")]
    const done = Primacy.pairRenewal(pairRound(bothOn, { state: tookOver, startedAtMs: 10_300, endedAtMs: 10_400 }))
    expect(done?.writableFromMs).toBe(10_400)
    expect(Primacy.checkWrite(Primacy.renewPairIn(renewed, done!), 10_400, leaseMs, 2)).toBeUndefined()
    // A lease past the takeover ends the wait even if a node of the other region never answers.
    expect(Primacy.checkWrite(renewed, 9_000 + leaseMs, leaseMs, 2)).toBeUndefined()
  })

  // Swarm seed 93100038 over two-region-handback-pause.yaml with discovery: b-node3's pod was
  // replaced, so this node's topology lacked it when it took over, yet it had asked this node for
  // a heartbeat and took writes in the old epoch.
  it("after taking the role over, it also waits for a node of the other region that asked it for a heartbeat though its topology lacks that node", () => {
    const tookOver = Primacy.adoptIn(state({ epoch: 1, primary: "b" }), { epoch: 2, primary: "a" }, 9_000)
    const bothOn = [ack("b", { epoch: 2, primary: "a" }, {}, "b-node1"), ack("b", { epoch: 2, primary: "a" }, {}, "b-node2")]
    const stranger = [{ regionId: "b", nodeId: "b-node3" }]
    expect(Primacy.pairRenewal(pairRound(bothOn, { state: tookOver }))?.writableFromMs).toBe(10_200)
    // The stranger is never asked, so only a lease from the takeover ends the wait...
    expect(Primacy.pairRenewal(pairRound(bothOn, { state: tookOver, requesters: stranger }))?.writableFromMs).toBe(9_000 + leaseMs)
    // ...unless its answer is there after all, with the new epoch; one of this region changes nothing.
    expect(Primacy.pairRenewal(pairRound([...bothOn, ack("b", { epoch: 2, primary: "a" }, {}, "b-node3")], { state: tookOver, requesters: stranger }))?.writableFromMs).toBe(10_200)
    expect(Primacy.pairRenewal(pairRound(bothOn, { state: tookOver, requesters: [{ regionId: "a", nodeId: "a-node9" }] }))?.writableFromMs).toBe(10_200)
  })

  it("after taking the role over, it waits the longest lease a node of the other region said it runs on when that is longer than its own", () => {
    const tookOver = Primacy.adoptIn(state({ epoch: 1, primary: "b" }), { epoch: 2, primary: "a" }, 9_000)
    const behind = (leaseSaid?: number) => ({ ...ack("b", { epoch: 1, primary: "b" }, {}, "b-node1"), ...(leaseSaid === undefined ? {} : { leaseMs: leaseSaid }) })
    expect(Primacy.pairRenewal(pairRound([behind()], { state: tookOver }))?.writableFromMs).toBe(9_000 + leaseMs)
    expect(Primacy.pairRenewal(pairRound([behind(8_000)], { state: tookOver }))?.writableFromMs).toBe(9_000 + 8_000)
    // A shorter one, or one this region's node said, changes nothing.
    expect(Primacy.pairRenewal(pairRound([behind(1_000)], { state: tookOver }))?.writableFromMs).toBe(9_000 + leaseMs)
    expect(Primacy.pairRenewal(pairRound([behind(), { ...ack("a", { epoch: 2, primary: "a" }, {}, "a-node2"), leaseMs: 8_000 }], { state: tookOver }))?.writableFromMs).toBe(9_000 + leaseMs)
    // One a requester said counts too.
    expect(Primacy.pairRenewal(pairRound([behind()], { state: tookOver, requesters: [{ regionId: "b", nodeId: "b-node1", leaseMs: 6_000 }] }))?.writableFromMs).toBe(9_000 + 6_000)
  })

  it("a node that started on a disk that ran before waits like a takeover; one on a fresh disk, or that was primary before, does not", () => {
    expect(Primacy.initialState({ epoch: 0, primary: "a" }, ["a", "b"], 500).takenOverAtMs).toBe(500)
    expect(Primacy.initialState({ epoch: 0, primary: "a" }, ["a", "b"], undefined).takenOverAtMs).toBeUndefined()
    expect(Primacy.pairRenewal(pairRound([], { state: state({ epoch: 2, primary: "a" }) }))?.writableFromMs).toBe(10_200)
    const sameRegion = Primacy.adoptIn(state({ epoch: 2, primary: "a" }), { epoch: 4, primary: "a" }, 9_000)
    expect(sameRegion.takenOverAtMs).toBeUndefined()
  })

  // Chaos e2e on real processes, about one run in three: a node paused across a hand-back
  // resumed, its first round's requests had all timed out at resume (so it waited for no one),
  // renewed its lease from that round, and took writes of its backlog in its old epoch.
  it("a node whose lease ran out by the start of a round waits like a takeover, from that round, for answers sent since", () => {
    const view: Primacy.View = { epoch: 2, primary: "a" }
    const held = state(view, { leaseRenewedAtMs: 5_000, writableFromMs: 5_100 })
    // Within the lease nothing lapses; a node that never held one has nothing to lapse.
    expect(Primacy.lapseIn(held, 5_000 + Primacy.heldMs(leaseMs), leaseMs)).toBe(held)
    expect(Primacy.lapseIn(state(view), 99_000, leaseMs).lapsedAtMs).toBeUndefined()
    const lapsed = Primacy.lapseIn(held, 9_000, leaseMs)
    expect(lapsed.lapsedAtMs).toBe(9_000)
    // A later round does not move the lapse on.
    expect(Primacy.lapseIn(lapsed, 12_000, leaseMs).lapsedAtMs).toBe(9_000)
    // Its first round heard nobody: the lease is renewed from its start, writes wait a lease.
    const silent = Primacy.pairRenewal(pairRound([], { state: lapsed, startedAtMs: 9_000, endedAtMs: 9_000 }))
    expect(silent).toEqual({ view, renewedAtMs: 9_000, writableFromMs: 9_000 + leaseMs })
    const waiting = Primacy.renewPairIn(lapsed, silent!)
    expect(waiting.lapsedAtMs).toBe(9_000)
    expect(Primacy.checkWrite(waiting, 9_100, leaseMs, 2)).toMatchObject({ reason: "NotPrimary", message: expect.stringMatching(/write lease ran out .*waiting 2900 ms more .*epoch 2/) })
    // One node of b answered since with epoch 2, the other not yet: still waiting.
    const half = Primacy.pairRenewal(pairRound([ack("b", view, {}, "b-node2")], { state: waiting, startedAtMs: 9_300, endedAtMs: 9_350 }))
    expect(half?.writableFromMs).toBe(9_000 + leaseMs)
    expect(half?.endsLapse).toBeUndefined()
    // Both answered since with epoch 2 (or newer): writable at once, and the lapse is over.
    const bothOn = [ack("b", view, {}, "b-node1"), ack("b", { epoch: 3, primary: "b" }, {}, "b-node2")]
    const heard = Primacy.pairRenewal(pairRound(bothOn, { state: waiting, startedAtMs: 9_600, endedAtMs: 9_650 }))
    expect(heard).toEqual({ view, renewedAtMs: 9_600, writableFromMs: 9_650, endsLapse: true })
    const over = Primacy.renewPairIn(waiting, heard!)
    expect(over.lapsedAtMs).toBeUndefined()
    expect(Primacy.checkWrite(over, 9_700, leaseMs, 2)).toBeUndefined()
    // Heard nobody for a lease after the lapse: writable again (two regions have no quorum), on
    // the lease of its latest round (the one from 9,000 is held only `heldMs`).
    expect(Primacy.checkWrite(waiting, 9_000 + leaseMs, leaseMs, 2)?.message).toMatch(/write lease lapsed/)
    const later = Primacy.renewPairIn(waiting, Primacy.pairRenewal(pairRound([], { state: waiting, startedAtMs: 11_000, endedAtMs: 11_000 }))!)
    expect(later.writableFromMs).toBe(9_000 + leaseMs)
    expect(Primacy.checkWrite(later, 9_000 + leaseMs - 1, leaseMs, 2)?.message).toMatch(/write lease ran out/)
    expect(Primacy.checkWrite(later, 9_000 + leaseMs, leaseMs, 2)).toBeUndefined()
    // Another view starts with no lapse.
    expect(Primacy.adoptIn(waiting, { epoch: 3, primary: "b" }, 9_800).lapsedAtMs).toBeUndefined()
  })
})

describe("Primacy views", () => {
  it("adopting another view drops the lease, adopting the same view keeps it, and a newer epoch seen is forgotten once adopted", () => {
    const current = leased(1_000)
    expect(Primacy.adoptIn(current, epochZero, 0)).toBe(current)
    expect(Primacy.adoptIn(current, { epoch: 1, primary: "b" }, 0)).toMatchObject({ epoch: 1, primary: "b", leaseRenewedAtMs: undefined, writableFromMs: undefined })
    const seen = Primacy.observeIn(current, { epoch: 2, primary: "c" })
    expect(Primacy.adoptIn(seen, { epoch: 1, primary: "b" }, 0).newerEpochSeen).toEqual({ epoch: 2, primary: "c" })
    expect(Primacy.adoptIn(seen, { epoch: 2, primary: "c" }, 0).newerEpochSeen).toBeUndefined()
  })

  it("only a higher epoch than both the view and what was seen before is remembered", () => {
    const seen = Primacy.observeIn(state({ epoch: 1, primary: "a" }), { epoch: 3, primary: "b" })
    expect(Primacy.observeIn(seen, { epoch: 2, primary: "c" }).newerEpochSeen).toEqual({ epoch: 3, primary: "b" })
    expect(Primacy.observeIn(state({ epoch: 1, primary: "a" }), { epoch: 1, primary: "b" }).newerEpochSeen).toBeUndefined()
  })

  it("answering a heartbeat from the primary of the view grants it a lease; answering anyone else grants nothing", () => {
    const follower = state({ epoch: 0, primary: "a" })
    const fromPrimary = Primacy.answerFor(follower, "a", 5_000)
    expect(fromPrimary.answer).toEqual({ epoch: 0, primary: "a", grantAgesMs: { a: 0 } })
    const later = Primacy.answerFor(fromPrimary.state, "c", 6_500.7)
    expect(later.answer).toEqual({ epoch: 0, primary: "a", grantAgesMs: { a: 1_500 } })
    expect(later.state.grantedAtMs).toEqual({ a: 5_000 })
    expect(Primacy.answerFor(state({ epoch: 2, primary: undefined }), "a", 0).answer).toEqual({ epoch: 2, grantAgesMs: {} })
  })

  it.effect("a node restarted on a store it wrote before counts its start as a grant to every region", () =>
    Effect.gen(function* () {
      yield* TestClock.adjust(7_000)
      const disk = KvDriver.makeMemoryDisk()
      const settings = { initial: epochZero, leaseMs, pairLeaseMs: leaseMs, regions: ["a", "b", "c"] }
      const fresh = yield* Effect.flatMap(Primacy.make(settings), (primacy) => primacy.state).pipe(Effect.provide(Store.layerMemory(disk)))
      expect(fresh.grantedAtMs).toEqual({})
      yield* Effect.flatMap(Store.Store, (store) => store.transaction((tx) => tx.appendLog({ change, receivedFrom: null, appliedAtMs: 1 }))).pipe(
        Effect.provide(Store.layerMemory(disk))
      )
      const restarted = yield* Effect.flatMap(Primacy.make(settings), (primacy) => primacy.state).pipe(Effect.provide(Store.layerMemory(disk)))
      expect(restarted.grantedAtMs).toEqual({ a: 7_000, b: 7_000, c: 7_000 })
    }))

  it.effect("a node on a new or wiped disk counts its start as a grant to every region too, and a takeover its vote makes waits it out", () =>
    Effect.gen(function* () {
      yield* TestClock.adjust(7_000)
      // c was wiped: whatever it granted the old primary a before is gone with the disk.
      const settings = { initial: epochZero, leaseMs, pairLeaseMs: leaseMs, regions: ["a", "b", "c"], recovering: { vouchesFromEpoch: 1_700_000_002_000 } }
      const wiped = yield* Effect.flatMap(Primacy.make(settings), (primacy) => primacy.state).pipe(Effect.provide(Store.layerMemory(KvDriver.makeMemoryDisk())))
      expect(wiped.grantedAtMs).toEqual({ a: 7_000, b: 7_000, c: 7_000 })
      // The operator promotes b while a, cut off, may still hold its lease; c adopts b's epoch,
      // minted after its start, and vouches for it, reporting its start as a grant to a.
      const promoted: Primacy.View = { epoch: 1_700_000_003_001, primary: "b" }
      const fromC = Primacy.answerFor(Primacy.adoptIn(wiped, promoted, 7_500), "b", 7_600).answer
      expect(fromC.recovering).toBeUndefined()
      expect(fromC.grantAgesMs["a"]).toBe(600)
      // b's first round with c's answer: a majority, but no write before a lease from c's start.
      const renewed = Primacy.renewal(round([{ ...ack("c", promoted), grantAgesMs: fromC.grantAgesMs }], { regionId: "b", state: state(promoted), startedAtMs: 7_550, endedAtMs: 7_650 }))
      expect(renewed?.writableFromMs).toBe(7_650 - 600 + leaseMs)
    }))
})

describe("Primacy.tally", () => {
  it("a primary renews its lease from the start of a round in which more than half of the regions agreed", () => {
    expect(Primacy.tally(round([ack("b", epochZero)])).renewal).toEqual({ view: epochZero, renewedAtMs: 10_000, writableFromMs: 10_200 })
    expect(Primacy.tally(round([ack("b", epochZero), ack("c", epochZero)])).renewal?.renewedAtMs).toBe(10_000)
  })

  it("answers that disagree, or too few answers, renew nothing", () => {
    expect(Primacy.tally(round([])).renewal).toBeUndefined()
    expect(Primacy.tally(round([ack("b", { epoch: 0, primary: "b" }), ack("c", { epoch: 0, primary: undefined })])).renewal).toBeUndefined()
    expect(Primacy.tally(round([ack("b", epochZero)], { state: state({ epoch: 0, primary: "b" }) })).renewal).toBeUndefined()
  })

  it("a sibling that answers naming its own region primary, unfenced, says its region serves in that epoch; a fenced one, or another region's node, says nothing", () => {
    // b-node1 asks: its sibling b-node2 serves in epoch 3; a-node1 naming b says nothing of b's nodes.
    const fromB = (acks: ReadonlyArray<Message.HeartbeatAck>) => Primacy.tally(round(acks, { topology: withTwoNodesInB, regionId: "b", state: state({ epoch: 3, primary: undefined }) }))
    expect(fromB([ack("b", { epoch: 3, primary: "b" }, {}, "b-node2")]).regionServesIn).toBe(3)
    expect(fromB([ack("b", { epoch: 3, primary: undefined }, {}, "b-node2")]).regionServesIn).toBeUndefined()
    expect(fromB([ack("a", { epoch: 3, primary: "b" })]).regionServesIn).toBeUndefined()
    expect(fromB([ack("b", { epoch: 3, primary: "a" }, {}, "b-node2")]).regionServesIn).toBeUndefined()
    expect(fromB([]).regionServesIn).toBeUndefined()
  })

  it("an answer with a higher epoch is reported as newer, the highest one when several are", () => {
    const tallied = Primacy.tally(round([ack("b", { epoch: 1, primary: "b" }), ack("c", { epoch: 2, primary: undefined })]))
    expect(tallied.renewal).toBeUndefined()
    expect(tallied.newer).toEqual({ epoch: 2, primary: undefined })
  })

  it("a takeover waits out a lease an agreeing region granted to an older primary that has not moved on", () => {
    const promoted: Primacy.View = { epoch: 1, primary: "b" }
    const takeover = (acks: ReadonlyArray<Message.HeartbeatAck>) => Primacy.tally(round(acks, { regionId: "b", state: state(promoted) })).renewal?.writableFromMs
    // c last agreed with a's heartbeat 1 s before answering: a may hold that lease for 2 s more.
    expect(takeover([ack("c", promoted, { a: 1_000 })])).toBe(10_200 + leaseMs - 1_000)
    // A grant older than the lease binds nobody; neither does one to a region that agreed itself.
    expect(takeover([ack("c", promoted, { a: 5_000 })])).toBe(10_200)
    expect(takeover([ack("c", promoted, { a: 1_000 }), ack("a", promoted)])).toBe(10_200)
    // Grants to the region taking over are its own affair.
    expect(takeover([ack("c", promoted, { b: 0 })])).toBe(10_200)
  })

  it("the taking-over node's own grants count like anyone's", () => {
    const promoted: Primacy.View = { epoch: 1, primary: "b" }
    const own = state(promoted, { grantedAtMs: { a: 9_700 } })
    expect(Primacy.tally(round([ack("c", promoted)], { regionId: "b", state: own })).renewal?.writableFromMs).toBe(9_700 + leaseMs)
  })

  it("quorums weigh each node 1/n of its n-node region: one node down in each of two two-node regions keeps the lease", () => {
    expect(Primacy.weightedMajority([[1, 2], [1, 2], [1, 1]])).toBe(true)
    expect(Primacy.weightedMajority([[1, 2], [1, 2], [0, 1]])).toBe(false)
    // Exactly half is not a majority, with any mix of region sizes.
    expect(Primacy.weightedMajority([[1, 2], [1, 2], [1, 2]])).toBe(false)
    expect(Primacy.weightedMajority([[1, 3], [2, 3], [1, 2], [0, 1]])).toBe(false)
    expect(Primacy.weightedMajority([[1, 3], [2, 3], [1, 2], [1, 2]])).toBe(false)
    expect(Primacy.weightedMajority([[1, 3], [3, 3], [1, 2], [1, 2]])).toBe(true)
    // Duplicate answers never weigh more than the region.
    expect(Primacy.weightedMajority([[5, 2], [0, 1], [0, 1]])).toBe(false)
    // Any two quorums share a node: exhaustively over every split of a (2, 2, 1, 3) topology.
    const sizes = [2, 2, 1, 3]
    const nodes = sizes.flatMap((size, region) => Array.from({ length: size }, (_, index) => `${region}.${index}`))
    const quorum = (members: ReadonlySet<string>) => Primacy.weightedMajority(sizes.map((size, region) => [nodes.filter((node) => node.startsWith(`${region}.`) && members.has(node)).length, size]))
    const subsets = Array.from({ length: 1 << nodes.length }, (_, mask) => new Set(nodes.filter((_, index) => (mask >> index) & 1)))
    const quorums = subsets.filter(quorum)
    expect(quorums.length).toBeGreaterThan(0)
    for (const first of quorums) for (const second of quorums) expect([...first].some((node) => second.has(node))).toBe(true)
    // The asking node of region a (two nodes, its sibling down) with b-node1 (b-node2 down) and c.
    const withTwoNodesInAAndB = Either.getOrThrow(
      TopologyBuilder.build(TopologyBuilder.addNode(TopologyBuilder.fromTopology(withTwoNodesInB), "a", "az", { id: "a-node2", endpoint: "mem://a2" }))
    )
    expect(Primacy.tally(round([ack("b", epochZero, {}, "b-node1"), ack("c", epochZero)], { topology: withTwoNodesInAAndB })).renewal).toBeDefined()
    expect(Primacy.tally(round([ack("b", epochZero, {}, "b-node1")], { topology: withTwoNodesInAAndB })).renewal).toBeUndefined()
  })

  it("a region agrees when more than half of its nodes do, and waits owed by any of them count", () => {
    const twoNodes = (acks: ReadonlyArray<Message.HeartbeatAck>) => Primacy.tally(round(acks, { topology: withTwoNodesInB }))
    expect(twoNodes([ack("b", epochZero, {}, "b-node1")]).renewal).toBeUndefined()
    expect(twoNodes([ack("b", epochZero, {}, "b-node1"), ack("b", epochZero, {}, "b-node1")]).renewal).toBeUndefined()
    expect(twoNodes([ack("b", epochZero, {}, "b-node1"), ack("b", epochZero, {}, "b-node2")]).renewal).toBeDefined()
    expect(twoNodes([ack("b", epochZero, {}, "b-node1"), ack("c", epochZero)]).renewal).toBeDefined()
    const promoted: Primacy.View = { epoch: 1, primary: "c" }
    const fromC = (acks: ReadonlyArray<Message.HeartbeatAck>) =>
      Primacy.tally(round(acks, { topology: withTwoNodesInB, regionId: "c", state: state(promoted) })).renewal?.writableFromMs
    // Region b moved on only if both its nodes did: a grant to it from region a's node still binds.
    expect(fromC([ack("a", promoted, { b: 500 }), ack("b", promoted, {}, "b-node1")])).toBe(10_200 + leaseMs - 500)
    expect(fromC([ack("a", promoted, { b: 500 }), ack("b", promoted, {}, "b-node1"), ack("b", promoted, {}, "b-node2")])).toBe(10_200)
  })

  it("a node that asked for a heartbeat though the topology lacks it weighs in its region and keeps the region from having moved on", () => {
    const promoted: Primacy.View = { epoch: 1, primary: "c" }
    // c took the role over from b, whose node b-node2 is missing from c's topology (a replaced pod back before c's next discovery round).
    const fromC = (acks: ReadonlyArray<Message.HeartbeatAck>, requesters: ReadonlyArray<Primacy.Requester>) =>
      Primacy.tally(round(acks, { topology: three, regionId: "c", state: state(promoted), requesters })).renewal?.writableFromMs
    const stranger: ReadonlyArray<Primacy.Requester> = [{ regionId: "b", nodeId: "b-node2" }]
    const agreed = [ack("a", promoted, { b: 500 }), ack("b", promoted)]
    // Without the stranger, b's one known node agreeing means b moved on, and a's grant to b binds nobody.
    expect(fromC(agreed, [])).toBe(10_200)
    // The stranger may hold a lease a granted to b: the takeover waits it out.
    expect(fromC(agreed, stranger)).toBe(10_200 + leaseMs - 500)
    // A requester the topology holds, or one of another region than b, changes nothing for b.
    expect(fromC(agreed, [{ regionId: "b", nodeId: "b-node1" }])).toBe(10_200)
    expect(fromC(agreed, [{ regionId: "a", nodeId: "a-node1" }])).toBe(10_200)
    // It also weighs: b's one answer is half of b, so c with b-node1 alone is no majority of three regions.
    expect(fromC([ack("b", promoted)], [])).toBe(10_200)
    expect(fromC([ack("b", promoted)], stranger)).toBeUndefined()
    expect(fromC([ack("b", promoted)], [...stranger, ...stranger])).toBeUndefined()
  })

  it("grants peers report are dated no earlier than they were made, the latest report per region stands, and the latest grant, own or reported, says how long the region may hold a lease", () => {
    const tallied = Primacy.tally(round([ack("b", epochZero, { a: 400 }), ack("c", { epoch: 0, primary: "b" }, { a: 100, b: 50 })], { regionId: "b", state: state(epochZero) }))
    expect(tallied.grantsReportedUntilMs).toEqual({ a: 10_100 + leaseMs, b: 10_150 + leaseMs })
    const merged = Primacy.reportGrantsIn(Primacy.reportGrantsIn(state(epochZero), tallied.grantsReportedUntilMs), { a: 12_000, c: 11_000 })
    expect(merged.grantsReportedUntilMs).toEqual({ a: 13_100, b: 13_150, c: 11_000 })
    const own = { ...merged, grantedAtMs: { a: 10_500, d: 1_000 } }
    expect([Primacy.grantHeldUntilMs(own, "a", leaseMs), Primacy.grantHeldUntilMs(own, "b", leaseMs), Primacy.grantHeldUntilMs(own, "d", leaseMs)]).toEqual([13_500, 13_150, 4_000])
    expect(Primacy.grantHeldUntilMs(own, "e", leaseMs)).toBeUndefined()
  })

  it("a grant binds for the lease its grantee said it runs on when that is longer than the waiting node's: nodes in a rolling update that changes the heartbeat timeout", () => {
    // b answers a-node1, which says it runs on an 8 s lease, as primary of epoch 0.
    const answered = Primacy.answerFor(state(epochZero), "a", 10_000, 8_000)
    expect(answered.answer).toMatchObject({ grantAgesMs: { a: 0 }, grantLeasesMs: { a: 8_000 } })
    expect(Primacy.grantHeldUntilMs(answered.state, "a", leaseMs)).toBe(18_000)
    // A later grant to a node of the region on a shorter lease, or that said none (both run in a
    // rolling update), does not hide the longer one: it binds until 18 s, reported from the latest grant.
    const shorter = Primacy.answerFor(answered.state, "a", 11_000, 1_000)
    expect(shorter.answer.grantLeasesMs).toEqual({ a: 7_000 })
    const silent = Primacy.answerFor(shorter.state, "a", 12_000)
    expect(silent.answer).toMatchObject({ grantAgesMs: { a: 0 }, grantLeasesMs: { a: 6_000 } })
    expect(Primacy.grantHeldUntilMs(silent.state, "a", leaseMs)).toBe(18_000)
    // Once this node's own lease from a later grant outlasts it, that binds.
    expect(Primacy.grantHeldUntilMs(Primacy.answerFor(silent.state, "a", 16_000).state, "a", leaseMs)).toBe(16_000 + leaseMs)
    // Without any length said, no lengths are reported.
    expect(Primacy.answerFor(state(epochZero), "a", 10_000).answer.grantLeasesMs).toBeUndefined()
    // A shorter lease than this node's binds for this node's.
    expect(Primacy.grantHeldUntilMs(Primacy.answerFor(state(epochZero), "a", 10_000, 1_000).state, "a", leaseMs)).toBe(10_000 + leaseMs)
    // Reported: c granted a 1 s ago on an 8 s lease; b, taking over, waits it out and promotes nothing before.
    const promoted: Primacy.View = { epoch: 1, primary: "b" }
    const fromC = { ...ack("c", promoted, { a: 1_000 }), grantLeasesMs: { a: 8_000 } }
    const tallied = Primacy.tally(round([fromC], { regionId: "b", state: state(promoted) }))
    expect(tallied.renewal?.writableFromMs).toBe(10_200 + 8_000 - 1_000)
    expect(tallied.grantsReportedUntilMs).toEqual({ a: 10_200 - 1_000 + 8_000 })
    // Without the length said, the waiting node's own lease stands, as before.
    expect(Primacy.tally(round([ack("c", promoted, { a: 1_000 })], { regionId: "b", state: state(promoted) })).renewal?.writableFromMs).toBe(10_200 + leaseMs - 1_000)
  })

  it("a node on a new or wiped disk vouches for no view below its floor until it settles: its answers say so and no lease counts them, its own included (swarm seed 99301893)", () => {
    const floor = Primacy.recoveringFloor(1_700_000_000_000, 500)
    // Twice the clock bound and a second's margin above its wall clock at start, in milliseconds.
    expect(floor).toBe(1_700_000_002_000)
    const recovering = { recovering: { vouchesFromEpoch: floor } }
    // Epoch 0, the configured view it starts with, is below the floor: its answer says so.
    expect(Primacy.answerFor(state(epochZero, recovering), "a", 0).answer).toEqual({ epoch: 0, primary: "a", grantAgesMs: { a: 0 }, recovering: true })
    expect(Primacy.vouches(state(epochZero, recovering))).toBe(false)
    // A view minted since (a wall-clock epoch) it vouches for; one minted just before its start,
    // or counted up from such a one, it doubts (an older disk of its may have held a newer one).
    const minted: Primacy.View = { epoch: 1_700_000_002_001, primary: "c" }
    expect(Primacy.vouches(state(minted, recovering))).toBe(true)
    expect(Primacy.vouches(state({ epoch: 1_699_999_995_000 + 2, primary: "c" }, recovering))).toBe(false)
    expect(Primacy.vouches(state({ epoch: 1_700_000_000_000, primary: "c" }, recovering))).toBe(false)
    expect(Primacy.answerFor(state(minted, recovering), "a", 0).answer.recovering).toBeUndefined()
    // The wiped old primary a and the wiped c, both on epoch 0: before, a majority of three.
    expect(Primacy.renewal(round([ack("c", epochZero)], { state: state(epochZero) }))).toBeDefined()
    const doubting = { ...ack("c", epochZero), recovering: true as const }
    expect(Primacy.renewal(round([doubting], { state: state(epochZero) }))).toBeUndefined()
    expect(Primacy.renewal(round([doubting], { state: state(epochZero, recovering) }))).toBeUndefined()
    // Its own vote does not count either: two settled peers make the majority without it.
    expect(Primacy.renewal(round([ack("b", epochZero)], { state: state(epochZero, recovering) }))).toBeUndefined()
    expect(Primacy.renewal(round([ack("b", epochZero), ack("c", epochZero)], { state: state(epochZero, recovering) }))).toBeDefined()
    // Nor is a recovering sibling's configured view evidence that its region serves.
    expect(Primacy.tally(round([{ ...ack("a", epochZero, {}, "a-node2"), recovering: true }])).regionServesIn).toBeUndefined()
    expect(Primacy.tally(round([ack("a", epochZero, {}, "a-node2")])).regionServesIn).toBe(0)    // A refused write says why when it is the node's own disk.
    expect(Primacy.checkWrite(state(epochZero, recovering), 0, leaseMs, 3)?.message).toMatch(/lapsed: .* never .*this node's disk is new or wiped and has not paged every region yet/)
    expect(Primacy.checkWrite(state(epochZero), 0, leaseMs, 3)?.message).not.toMatch(/new or wiped/)
  })

  it.effect("settle ends recovering: the node vouches for its view whatever its epoch", () =>
    Effect.gen(function* () {
      const settings = { initial: epochZero, leaseMs, pairLeaseMs: leaseMs, regions: ["a", "b", "c"], recovering: { vouchesFromEpoch: 1_700_000_002_000 } }
      const primacy = yield* Primacy.make(settings).pipe(Effect.provide(Store.layerMemory(KvDriver.makeMemoryDisk())))
      expect((yield* primacy.answer("b")).recovering).toBe(true)
      yield* primacy.settle
      expect((yield* primacy.answer("b")).recovering).toBeUndefined()
      expect((yield* primacy.state).recovering).toBeUndefined()
      expect(Primacy.vouches(yield* primacy.state)).toBe(true)
    })
  )

  it("a renewal applies only to the view it was counted for, and the earliest writable moment of any agreeing round stands", () => {
    const renewal: Primacy.Renewal = { view: epochZero, renewedAtMs: 5_000, writableFromMs: 8_000 }
    const renewed = Primacy.renewIn(state(epochZero), renewal)
    expect(renewed).toMatchObject({ leaseRenewedAtMs: 5_000, writableFromMs: 8_000 })
    expect(Primacy.renewIn(renewed, { view: epochZero, renewedAtMs: 4_000, writableFromMs: 6_000 })).toMatchObject({ leaseRenewedAtMs: 5_000, writableFromMs: 6_000 })
    expect(Primacy.renewIn(state({ epoch: 1, primary: "a" }), renewal).leaseRenewedAtMs).toBeUndefined()
  })

  it.effect("grants and lease ages run on the monotonic clock: an hour's wall-clock step changes none of them", () =>
    Effect.gen(function* () {
      const time = { wallMs: 1_700_000_000_000, monotonicMs: 5_000 }
      const machine: EffectClock.Clock = {
        [EffectClock.ClockTypeId]: EffectClock.ClockTypeId,
        unsafeCurrentTimeMillis: () => time.wallMs,
        currentTimeMillis: Effect.sync(() => time.wallMs),
        unsafeCurrentTimeNanos: () => BigInt(time.monotonicMs) * 1_000_000n,
        currentTimeNanos: Effect.sync(() => BigInt(time.monotonicMs) * 1_000_000n),
        sleep: () => Effect.void
      }
      const primacy = yield* Primacy.make({ initial: { epoch: 0, primary: "a" }, leaseMs: 1_000, pairLeaseMs: 1_000, regions: ["a", "b", "c"] }).pipe(
        Effect.provideService(Store.Store, Store.makeMemory(yield* KvDriver.makeMemory(KvDriver.makeMemoryDisk()))),
        Effect.withClock(machine)
      )
      yield* Effect.withClock(primacy.answer("a"), machine)
      expect((yield* primacy.state).grantedAtMs).toEqual({ a: 5_000 })
      time.wallMs -= 3_600_000 // NTP steps the wall clock back an hour
      time.monotonicMs += 400
      const answer = yield* Effect.withClock(primacy.answer("b"), machine)
      expect(answer.grantAgesMs).toEqual({ a: 400 })
      expect(yield* Effect.withClock(Clock.monotonicMs, machine)).toBe(5_400)
    }))
})

describe("Primacy.tally: a lease held back by recovering nodes (heldByRecovering)", () => {
  // b was promoted (epoch 1); a, the old primary, is down; c is on a new disk that has not paged a.
  const promotedB: Primacy.View = { epoch: 1, primary: "b" }
  const doubting = { ...ack("c", promotedB), recovering: true as const }
  const fromB = (acks: ReadonlyArray<Message.HeartbeatAck>, overrides: Partial<Primacy.Round> = {}) => Primacy.tally(round(acks, { regionId: "b", state: state(promotedB), ...overrides }))

  it("is set when the agreeing answers of recovering nodes would make the majority the others do not", () => {
    expect(fromB([doubting])).toMatchObject({ renewal: undefined, heldByRecovering: promotedB })
    // Settled, the same answer renews, and nothing is held back.
    expect(fromB([ack("c", promotedB)]).heldByRecovering).toBeUndefined()
    expect(fromB([ack("c", promotedB)]).renewal).toBeDefined()
  })

  it("is not set when even their answers make no majority, when they disagree, for a node that is not primary or does not vouch itself, or with two regions", () => {
    expect(fromB([]).heldByRecovering).toBeUndefined()
    expect(fromB([{ ...ack("c", epochZero), recovering: true }]).heldByRecovering).toBeUndefined()
    expect(fromB([doubting], { state: state({ epoch: 1, primary: "a" }) }).heldByRecovering).toBeUndefined()
    expect(fromB([doubting], { state: state(promotedB, { recovering: { vouchesFromEpoch: 1_700_000_002_000 } }) }).heldByRecovering).toBeUndefined()
    const two = Cluster.topologyFor({ regions: ["b", "c"], strategy: "PrimaryReplica", primary: "b" }, "b")
    expect(fromB([doubting], { topology: two }).heldByRecovering).toBeUndefined()
  })

  it.effect("the service keeps since when its view has been held back, until a tally without it or a change of view; a hold of a view it no longer holds is ignored", () =>
    Effect.gen(function* () {
      const settings = { initial: promotedB, leaseMs, pairLeaseMs: leaseMs, regions: ["a", "b", "c"] }
      const primacy = yield* Primacy.make(settings).pipe(Effect.provide(Store.layerMemory(KvDriver.makeMemoryDisk())))
      const report = (held: boolean, atMs: number, view = promotedB) =>
        Effect.sync(() => primacy.now.report({ grantsReportedUntilMs: {}, regionServesIn: undefined, heldByRecovering: held ? view : undefined }, atMs))
      yield* report(true, 1_000)
      yield* report(true, 1_500)
      expect((yield* primacy.state).heldByRecoveringSinceMs).toBe(1_000)
      yield* report(false, 1_600)
      expect((yield* primacy.state).heldByRecoveringSinceMs).toBeUndefined()
      yield* report(true, 1_700)
      expect((yield* primacy.state).heldByRecoveringSinceMs).toBe(1_700)
      yield* primacy.adopt({ epoch: 1_700_000_008, primary: "b" })
      expect((yield* primacy.state).heldByRecoveringSinceMs).toBeUndefined()
      // Answers tallied for epoch 1 that come after the change of view.
      yield* report(true, 1_800)
      expect((yield* primacy.state).heldByRecoveringSinceMs).toBeUndefined()
      yield* report(true, 1_900, { epoch: 1_700_000_008, primary: "b" })
      expect((yield* primacy.state).heldByRecoveringSinceMs).toBe(1_900)
    }))
})
