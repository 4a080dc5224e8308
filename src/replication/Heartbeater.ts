/**
 * Liveness: every `intervalMs` this node sends a heartbeat to every other node of the
 * topology and records each answer with the TopologyManager, then runs the stale check. A
 * node that stops answering is marked Unreachable after the heartbeat timeout, including one
 * that never answered at all; it returns to Healthy only after several good heartbeats, or at
 * its first answer if it had never answered before (hysteresis lives in the TopologyManager).
 * Heartbeats go to every node whatever its status, so an Unreachable node is noticed when it
 * comes back.
 *
 * The answers also carry every peer's view of the primary (`Primacy`): after each round a
 * primary renews its write lease when nodes weighing more than half of the regions agreed with
 * its view (`Primacy.weightedMajority`), and any node remembers a newer epoch a peer answered
 * with and the leases peers report granting.
 */
import { Effect } from "effect"
import * as Clock from "./Clock.js"
import * as ClockOffset from "./ClockOffset.js"
import * as Handoff from "./Handoff.js"
import type * as Message from "./Message.js"
import * as Network from "./Network.js"
import * as Primacy from "./Primacy.js"
import * as Topology from "./Topology.js"
import * as TopologyManager from "./TopologyManager.js"

/** Heartbeat settings. */
export interface Settings {
  readonly regionId: string
  readonly nodeId: string
  readonly intervalMs: number
  /**
   * How long one heartbeat may take at first; keep it well below the heartbeat timeout. A round
   * waits for its answers at most `intervalMs`, and an answer that comes later still counts.
   */
  readonly requestTimeoutMs: number
  /**
   * The most a peer's heartbeat deadline may grow to. Each peer's deadline follows its observed
   * round trips (twice the smoothed round trip plus four deviations, as TCP's retransmission
   * timeout) and doubles after a timeout, so a link slower than `requestTimeoutMs` is still
   * heard (a fixed deadline under the round trip left such peers Unreachable for good: swarm
   * seed 20187).
   */
  readonly requestTimeoutMaxMs?: number
}

/** Round-trip estimate of one peer (RFC 6298 smoothing). */
interface RoundTrip {
  /** Undefined until the peer first answered. */
  readonly smoothedMs: number | undefined
  readonly deviationMs: number | undefined
  /** The deadline of the next heartbeat to the peer. */
  readonly timeoutMs: number
}

/**
 * The deadline after a round trip of `sampleMs` (or after a timeout, when undefined). A timeout
 * doubles the deadline and leaves the estimate alone, as RFC 6298 backs off its timer: until
 * December 2, 2026 a timeout before the peer's first answer seeded the smoothed round trip
 * with the doubled deadline, and the real round trips took tens of seconds to wear it down.
 * All that while the peer counted as slow, and a slow peer may stay silent for two deadlines
 * plus a round before it is stale: one lost handshake as a cluster started (every request to
 * the peer waits for the retransmission) held the detection of the primary's crash back by
 * 6.5 s, past its restart, so no region was promoted (scenarios/primary-failover.yaml, seed 1,
 * once the simulator sent lost handshakes again as TCP does).
 */
export const nextTimeout = (settings: Settings, previous: RoundTrip | undefined, sampleMs: number | undefined): RoundTrip => {
  const floorMs = settings.requestTimeoutMs
  const capMs = Math.max(floorMs, settings.requestTimeoutMaxMs ?? floorMs)
  if (sampleMs === undefined) {
    const timeoutMs = Math.min(capMs, (previous?.timeoutMs ?? floorMs) * 2)
    return { smoothedMs: previous?.smoothedMs, deviationMs: previous?.deviationMs, timeoutMs }
  }
  const smoothedMs = previous?.smoothedMs === undefined ? sampleMs : 0.875 * previous.smoothedMs + 0.125 * sampleMs
  const deviationMs =
    previous?.smoothedMs === undefined || previous.deviationMs === undefined ? sampleMs / 2 : 0.75 * previous.deviationMs + 0.25 * Math.abs(previous.smoothedMs - sampleMs)
  return { smoothedMs, deviationMs, timeoutMs: Math.min(capMs, Math.max(floorMs, 2 * smoothedMs + 4 * deviationMs)) }
}

const peersOf = (topology: Topology.Topology, selfNodeId: string) =>
  topology.regions.flatMap((region) =>
    region.zones.flatMap((zone) =>
      zone.nodes.filter((node) => node.id !== selfNodeId).map((node) => ({ regionId: region.id, zoneId: zone.id, node }))
    )
  )

/**
 * One round: heartbeat every peer concurrently, record answers, then mark stale nodes and
 * fold the answers into this node's lease.
 */
/** What a node's heartbeater remembers between rounds. */
export interface Memory {
  /** Per peer node: round-trip estimate and deadline. */
  readonly roundTrips: Map<string, RoundTrip>
  /** Per peer, how many side requests are outstanding (see `sideRequestsMax`). */
  readonly asking: Map<string, number>
  /** Peers with a probe (a side request with the first deadline) outstanding. */
  readonly probing: Set<string>
  /** Per peer node: its latest answer and when the request for it was sent (monotonic ms). */
  readonly recent: Map<string, { readonly ack: Message.HeartbeatAck; readonly sentAtMs: number }>
}

/** Fresh heartbeater memory. */
export const makeMemory = (): Memory => ({ roundTrips: new Map(), asking: new Map(), probing: new Set(), recent: new Map() })

/**
 * How many side requests a slow peer may have outstanding at `nowMs`. One while it is silent (its
 * latest answer is to a request older than its deadline and a round), so a dead peer is not asked
 * again every round. While it answers, one per interval its deadline spans, so it is asked every
 * round and its answers renew the primary's lease every round rather than once per round trip:
 * with one request out at a time, a 600 ms lease over round trips of 300-450 ms lapsed without
 * any fault and the primary refused writes for a second (swarm seed 212748917).
 */
export const sideRequestsMax = (settings: Settings, memory: Memory, peerNodeId: string, nowMs: number): number => {
  const timeoutMs = memory.roundTrips.get(peerNodeId)?.timeoutMs ?? settings.requestTimeoutMs
  const answeredSentAtMs = memory.recent.get(peerNodeId)?.sentAtMs
  if (answeredSentAtMs === undefined || nowMs - answeredSentAtMs > timeoutMs + settings.intervalMs) return 1
  return Math.max(1, Math.ceil(timeoutMs / settings.intervalMs))
}

export const round = (settings: Settings, memory: Memory, pool: Handoff.Pool, services: Services) =>
  Effect.gen(function* () {
    const { manager, clock, primacy } = services
    const topology = yield* manager.current
    const startedAtMs = services.now()
    // Only a two-region primary renews at the round's end (`renewPair`), for the view it starts with.
    const pair = topology.strategy === "PrimaryReplica" && topology.regions.length === 2
    const startView: Primacy.View | undefined = pair ? yield* Effect.map(primacy.state, ({ epoch, primary }) => ({ epoch, primary })) : undefined
    if (startView !== undefined && startView.primary === settings.regionId) yield* primacy.noteLapse(startedAtMs)
    const sentAtMs = yield* clock.physicalMs
    // Under PrimaryReplica the request says which lease this node runs on, so a node that grants it
    // one reports how long that grant binds (`Primacy.answerFor`).
    const leaseMs = topology.strategy === "PrimaryReplica" ? Primacy.leaseFor(primacy, topology.regions.length) : undefined
    const request: Message.Heartbeat = { _tag: "Heartbeat", fromRegion: settings.regionId, fromNode: settings.nodeId, sentAtMs, ...(leaseMs === undefined ? {} : { leaseMs }) }
    // A node running this round is alive: without recording itself, every node's stale check
    // would mark the node itself Unreachable after the timeout (and its own region unavailable).
    const self = topology.regions.flatMap((region) =>
      region.zones.flatMap((zone) => (zone.nodes.some((node) => node.id === settings.nodeId) ? [{ regionId: region.id, zoneId: zone.id }] : []))
    )[0]
    if (self !== undefined) yield* Effect.ignore(manager.recordHeartbeat(self.regionId, self.zoneId, settings.nodeId))
    // A peer whose deadline grew past the first one (a slow or silent link) is asked on the
    // side: the round does not wait for it, so one dead peer never slows the news from the
    // others (leases and grant reports would go stale). Every answer is folded in as it comes.
    const peers = peersOf(topology, settings.nodeId)
    const slow = (peer: Peer) => (memory.roundTrips.get(peer.node.id)?.timeoutMs ?? settings.requestTimeoutMs) > settings.requestTimeoutMs
    for (const peer of peers.filter(slow)) {
      const id = peer.node.id
      const outstanding = memory.asking.get(id) ?? 0
      if (outstanding >= sideRequestsMax(settings, memory, id, startedAtMs)) continue
      memory.asking.set(id, outstanding + 1)
      const done = Effect.sync(() => {
        const left = (memory.asking.get(id) ?? 1) - 1
        if (left > 0) memory.asking.set(id, left)
        else memory.asking.delete(id)
      })
      yield* pool.run(ask(settings, memory, services, topology, peer, request, startedAtMs, "side").pipe(Effect.ensuring(done)))
    }
    // A slow peer is also probed every round with the first deadline, on the side too: its long
    // side request may have been sent into a partition that has healed since, and waiting out
    // its deadline (up to the maximum, 10 s by default) kept a healed peer Unreachable long
    // enough to fence a freshly promoted primary (swarm seed 20 of primary-failover). A probe
    // that times out says nothing new of the link and leaves its deadline as it was.
    for (const peer of peers.filter(slow)) {
      if (memory.probing.has(peer.node.id)) continue
      memory.probing.add(peer.node.id)
      yield* pool.run(ask(settings, memory, services, topology, peer, request, startedAtMs, "probe").pipe(Effect.ensuring(Effect.sync(() => memory.probing.delete(peer.node.id)))))
    }
    // The round waits for its answers at most an interval: a peer that has not started serving
    // yet (or whose request was lost) held the whole round, and with it every other peer's next
    // request and the primary's first lease, for a request timeout (1.8 s at start-up: swarm
    // seeds 301614, 302121). A late answer still counts when it comes; the stale check runs once
    // the prompt answers are in (running it before them flapped peers: seed 400847).
    const prompt = peers.filter((peer) => !slow(peer))
    const answered = new Handoff.Gate(prompt.length === 0)
    let outstanding = prompt.length
    const counted = Effect.suspend(() => (--outstanding === 0 ? answered.open : Effect.void))
    // Counted when the request ends (`ask` fails with nothing); one that dies of a defect is not
    // counted, and the round then waits its interval out, as for a lost answer.
    for (const peer of prompt) yield* pool.run(Effect.zipRight(ask(settings, memory, services, topology, peer, request, startedAtMs, "round"), counted))
    yield* answered.awaitWithin(settings.intervalMs)
    yield* manager.checkStaleNodes()
    if (startView !== undefined) yield* renewPair(settings, memory, services, topology, startView, startedAtMs)
  })

/**
 * Renews a two-region primary's lease at the end of a round (`Primacy.pairRenewal`), unless its
 * view changed during the round: the next round, which starts at once, speaks for the new view.
 */
const renewPair = (settings: Settings, memory: Memory, services: Services, topology: Topology.Topology, startView: Primacy.View, startedAtMs: number) =>
  Effect.gen(function* () {
    const primacy = services.primacy
    const state = yield* primacy.state
    if (state.epoch !== startView.epoch || state.primary !== startView.primary) return
    // A round ends at most an interval after it starts, answers or none; one that took longer
    // spans a stop of this node (a pause, a stall), whose answers may have failed at their
    // deadlines without a word of a newer epoch: it vouches for nothing. The lease then lapses,
    // and the next round waits to hear the other region (`Primacy.lapseIn`).
    const endedAtMs = services.now()
    if (endedAtMs - startedAtMs > 2 * settings.intervalMs) return
    const renewal = Primacy.pairRenewal({
      topology,
      regionId: settings.regionId,
      state,
      // After a lapse, only answers to requests sent since count: older ones predate the stop.
      latest: [...memory.recent.values()].filter((entry) => state.lapsedAtMs === undefined || entry.sentAtMs >= state.lapsedAtMs).map((entry) => entry.ack),
      startedAtMs,
      endedAtMs,
      leaseMs: primacy.pairLeaseMs,
      requesters: yield* recentRequesters(services.manager, endedAtMs, primacy.pairLeaseMs)
    })
    if (renewal !== undefined) yield* primacy.renewPair(renewal)
  })

/**
 * The nodes that asked this node for a heartbeat within a lease before `nowMs`: the longer of
 * `leaseMs` (this node's) and the one each said it runs on, which may hold that long.
 */
const recentRequesters = (manager: TopologyManager.TopologyManager["Type"], nowMs: number, leaseMs: number) =>
  Effect.map(manager.requestersSince(-Infinity), (requesters) => requesters.filter((requester) => requester.atMs >= nowMs - Math.max(leaseMs, requester.leaseMs ?? 0)))

type Peer = ReturnType<typeof peersOf>[number]

/**
 * The services the heartbeater runs with, taken once when it starts rather than looked up in
 * every round and request (a few per cent of a simulated node's Effect operations), and its
 * fiber's clock: `now` reads the monotonic clock without an Effect operation (`Clock.monotonicReader`).
 */
interface Services {
  readonly manager: TopologyManager.TopologyManager["Type"]
  readonly network: Network.Network["Type"]
  readonly clock: Clock.Clock["Type"]
  readonly primacy: Primacy.Primacy["Type"]
  readonly now: () => number
}

/**
 * One heartbeat to one peer: its answer (counted as that node) kept and folded in at once, so a
 * lease is renewed as soon as a majority answered rather than when the slowest peer of the round
 * did (one lost answer used to hold a new primary's first lease for a whole request timeout),
 * and its round trip noted.
 */
const ask = (settings: Settings, memory: Memory, services: Services, topology: Topology.Topology, peer: Peer, request: Message.Heartbeat, startedAtMs: number, kind: "round" | "side" | "probe") =>
  Effect.gen(function* () {
    const { manager, network, clock } = services
    const previous = memory.roundTrips.get(peer.node.id)
    const deadlineMs = kind === "probe" ? settings.requestTimeoutMs : (previous?.timeoutMs ?? settings.requestTimeoutMs)
    const response = yield* Effect.either(network.send({ regionId: peer.regionId, nodeId: peer.node.id, endpoint: peer.node.endpoint }, request, deadlineMs))
    const nowMs = services.now()
    const elapsedMs = nowMs - startedAtMs
    // An answer taken in after its deadline says nothing of the peer's liveness or round trip:
    // for those it is a timeout, as if the deadline's timer had fired first. A node that was
    // stopped (a pause, a stall) finds both waiting when it runs again, and the simulator took
    // the answer in first (Node runs expired timers before it reads sockets): it counted an
    // answer the primary sent before it crashed as heard when the pause ended, and the pause as
    // the primary's round trip, which let that peer stay silent for two doubled deadlines more;
    // the region was promoted after the primary restarted (`sim swarm --scenario
    // scenarios/primary-failover.yaml`, seed 47000085). The view it carries still counts, late
    // or not: a newer epoch must never be missed (dropping it let a node paused across a
    // two-region hand-back renew its lease and take writes in its old epoch, on real processes).
    const late = elapsedMs > deadlineMs
    if (response._tag === "Left" || late) {
      if (kind !== "probe") memory.roundTrips.set(peer.node.id, nextTimeout(settings, memory.roundTrips.get(peer.node.id), undefined))
      if (response._tag === "Left" || response.right._tag !== "HeartbeatAck") return
    } else {
      const estimate = nextTimeout(settings, memory.roundTrips.get(peer.node.id), elapsedMs)
      memory.roundTrips.set(peer.node.id, estimate)
      if (response.right._tag !== "HeartbeatAck") return
      yield* clock.noteOffset(peer.node.id, ClockOffset.estimate(request.sentAtMs, response.right.atMs, yield* clock.physicalMs, nowMs))
      // The answer counts as the node it was sent to, whatever it calls itself. A peer heard only
      // through slow answers may stay silent for two of its deadlines plus a round before it is stale.
      const allowanceMs = estimate.timeoutMs > settings.requestTimeoutMs ? 2 * estimate.timeoutMs + settings.intervalMs : 0
      yield* Effect.ignore(manager.recordHeartbeat(peer.regionId, peer.zoneId, peer.node.id, allowanceMs))
    }
    memory.recent.set(peer.node.id, { ack: { ...response.right, region: peer.regionId, node: peer.node.id }, sentAtMs: startedAtMs })
    yield* fold(topology, settings, memory, services)
  })

/**
 * Folds the latest answer of every peer asked within the lease into this node's lease, grant
 * reports and newer epochs. The answers may come from different rounds (slow peers answer on
 * the side), so a renewal runs from the earliest request among them: every agreeing node
 * granted its lease after that moment, so the lease never outlives a grant.
 */
const fold = (topology: Topology.Topology, settings: Settings, memory: Memory, services: Services) =>
  Effect.gen(function* () {
    const primacy = services.primacy
    const nowMs = services.now()
    // Latest first: the renewal runs from the latest request with which the answers reach a
    // quorum, so an older answer from a node that has gone silent since (still within the lease)
    // does not hold every renewal back to its request (seen with one node of two crashed).
    const fresh = [...memory.recent.values()].filter((entry) => nowMs - entry.sentAtMs <= primacy.leaseMs).sort((a, b) => b.sentAtMs - a.sentAtMs)
    if (fresh.length === 0) return
    const state = yield* primacy.state
    const requesters = yield* recentRequesters(services.manager, nowMs, primacy.leaseMs)
    const roundOf = (entries: typeof fresh): Primacy.Round => ({
      topology,
      regionId: settings.regionId,
      state,
      acks: entries.map((entry) => entry.ack),
      startedAtMs: entries[entries.length - 1]!.sentAtMs,
      endedAtMs: nowMs,
      leaseMs: primacy.leaseMs,
      requesters
    })
    const tally = Primacy.tally(roundOf(fresh))
    yield* primacy.report(tally, nowMs)
    if (tally.newer !== undefined) yield* primacy.observe(tally.newer)
    // Two regions renew once per round instead (`renewPair`): a quorum of both is not needed there.
    // Only a primary renews: every other node would find no renewal in any prefix.
    if (topology.regions.length < 3 || state.primary !== settings.regionId) return
    // Only the renewal of each prefix, not its whole tally: this runs on every answer, and the
    // tallies' grant reports were most of the simulator's heartbeat folding.
    for (let count = 1; count <= fresh.length; count++) {
      const renewal = Primacy.renewal(roundOf(fresh.slice(0, count)))
      if (renewal !== undefined) return yield* primacy.renew(renewal)
    }
  })

/** Runs heartbeat rounds forever; fork it. */
export const run = (settings: Settings): Effect.Effect<never, never, TopologyManager.TopologyManager | Network.Network | Clock.Clock | Primacy.Primacy> =>
  Effect.scoped(
    Effect.gen(function* () {
      const memory = makeMemory()
      const pool = yield* Handoff.Pool.make()
      const services: Services = {
        manager: yield* TopologyManager.TopologyManager,
        network: yield* Network.Network,
        clock: yield* Clock.Clock,
        primacy: yield* Primacy.Primacy,
        now: yield* Clock.monotonicReader
      }
      const primacy = services.primacy
      // Rounds start every interval, however long the last one waited for its answers: pausing
      // a whole interval after a round that waited an interval for a lost answer spaced the next
      // request two intervals out, and with the timeout at three intervals and a round trip on
      // top, ONE lost heartbeat made a healthy peer Unreachable (a restarted primary then never
      // held a majority long enough to confirm itself: swarm seed 701171). A changed view (a
      // promotion, an unfencing, a hand-back) needs a lease before its first write: the next
      // round starts at once. A round acts on the view as it is when it starts, so it closes
      // the view-change latch first.
      const pause = (startedAtMs: number) => Effect.suspend(() => primacy.viewChanged.awaitWithin(Math.max(0, startedAtMs + settings.intervalMs - services.now())))
      const once = Effect.suspend(() => {
        const startedAtMs = services.now()
        primacy.viewChanged.unsafeClose()
        return Effect.zipRight(round(settings, memory, pool, services), pause(startedAtMs))
      })
      // Without `Effect.forever`'s yield after each round (`Handoff.repeat`): a round waits for
      // its answers or its pause, and a round that waits for neither (no peer to wait for and a
      // view changed meanwhile) is still preempted by the runtime after a bounded number of operations.
      return yield* Handoff.repeat(once)
    })
  )
