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
import { Effect, Either } from "effect"
import * as Clock from "./Clock.js"
import * as ClockOffset from "./ClockOffset.js"
import type { NetworkError } from "./Errors.js"
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

/**
 * What a heartbeater works with. Its requests go out and their answers come in as callbacks
 * (`Network.caller`), not as a fiber and an Effect per request: in the simulator those were an
 * eighth of every Effect operation of a swarm. An answer is folded in by its callback at once;
 * the little that needs an Effect (a node's status change, which the manager publishes under its
 * lock, or a clock read only through an Effect) is left to the heartbeater's fiber (`deferred`),
 * which runs it at its next wait, before the round's stale check.
 */
interface Beats {
  readonly settings: Settings
  readonly memory: Memory
  readonly services: Services
  readonly call: Network.Call
  /** Requests out, as what abandons each; all are abandoned when the heartbeater ends. */
  readonly outstanding: Set<() => void>
  /** Work answers left to the fiber, and the gate that wakes it for them. */
  readonly deferred: Array<Effect.Effect<void>>
  readonly woken: Handoff.Gate
  stopped: boolean
}

/**
 * The services the heartbeater runs with, taken once when it starts rather than looked up in
 * every round and request (a few per cent of a simulated node's Effect operations), and its
 * fiber's clock: `now` reads the monotonic clock without an Effect operation (`Clock.monotonicReader`).
 */
interface Services {
  readonly manager: TopologyManager.TopologyManager["Type"]
  readonly clock: Clock.Clock["Type"]
  readonly primacy: Primacy.Primacy["Type"]
  readonly now: () => number
}

type Peer = ReturnType<typeof peersOf>[number]

type Kind = "round" | "side" | "probe"

/** Leaves `work` to the heartbeater's fiber and wakes it. */
const defer = (beats: Beats, work: Effect.Effect<void>): void => {
  beats.deferred.push(work)
  beats.woken.unsafeOpen()
}

/** Runs the work answers left, in the order they came. */
const runDeferred = (beats: Beats): Effect.Effect<void> =>
  Effect.suspend(() => {
    beats.woken.unsafeClose()
    const work = beats.deferred.splice(0)
    return work.length === 0 ? Effect.void : Effect.zipRight(Effect.all(work, { discard: true }), runDeferred(beats))
  })

/**
 * Waits until one of `gates` opens or `untilMs` (monotonic) comes, whichever is first, and runs
 * what answers leave to the fiber meanwhile. The timer ends the wait whatever the clock reads
 * when it fires: a node's clock may read a hair short of `untilMs` then, and waiting again for
 * the rest spun on timers of no length.
 */
const waitFor = (beats: Beats, gates: ReadonlyArray<Handoff.Gate>, untilMs: number): Effect.Effect<void> =>
  Effect.suspend(() => {
    if (beats.deferred.length > 0) return Effect.zipRight(runDeferred(beats), waitFor(beats, gates, untilMs))
    const leftMs = untilMs - beats.services.now()
    if (gates.some((gate) => gate.isOpen) || leftMs <= 0) return Effect.void
    return Effect.zipRight(
      Handoff.awaitAny([beats.woken, ...gates], leftMs),
      Effect.suspend(() => (beats.woken.isOpen ? waitFor(beats, gates, untilMs) : runDeferred(beats)))
    )
  })

/**
 * One round: heartbeat every peer concurrently, record answers, then mark stale nodes and
 * fold the answers into this node's lease.
 */
const round = (beats: Beats) =>
  Effect.gen(function* () {
    const { settings, memory, services } = beats
    const { manager, clock, primacy } = services
    const topology = yield* manager.current
    const startedAtMs = services.now()
    // Only a two-region primary renews at the round's end (`renewPair`), for the view it starts with.
    const pair = topology.strategy === "PrimaryReplica" && topology.regions.length === 2
    const startView: Primacy.View | undefined = pair ? viewIn(primacy.now.state()) : undefined
    if (startView !== undefined && startView.primary === settings.regionId) yield* primacy.noteLapse(startedAtMs)
    const sentAtMs = yield* clock.physicalMs
    // Under PrimaryReplica the request says which lease this node runs on, so a node that grants it
    // one reports how long that grant binds (`Primacy.answerFor`).
    const leaseMs = topology.strategy === "PrimaryReplica" ? Primacy.leaseFor(primacy, topology.regions.length) : undefined
    const request: Message.Heartbeat = { _tag: "Heartbeat", fromRegion: settings.regionId, fromNode: settings.nodeId, sentAtMs, ...(leaseMs === undefined ? {} : { leaseMs }) }
    // A node running this round is alive: without recording itself, every node's stale check
    // would mark the node itself Unreachable after the timeout (and its own region unavailable).
    const self = selfOf(topology, settings.nodeId)
    if (self !== undefined && !manager.recordHeartbeatQuietly(self.regionId, self.zoneId, settings.nodeId)) {
      yield* Effect.ignore(manager.recordHeartbeat(self.regionId, self.zoneId, settings.nodeId))
    }
    const peers = peersOf(topology, settings.nodeId)
    const slow = (peer: Peer) => (memory.roundTrips.get(peer.node.id)?.timeoutMs ?? settings.requestTimeoutMs) > settings.requestTimeoutMs
    askSlow(beats, topology, peers.filter(slow), request, startedAtMs)
    // The round waits for its answers at most an interval: a peer that has not started serving
    // yet (or whose request was lost) held the whole round, and with it every other peer's next
    // request and the primary's first lease, for a request timeout (1.8 s at start-up: swarm
    // seeds 301614, 302121). A late answer still counts when it comes; the stale check runs once
    // the prompt answers are in (running it before them flapped peers: seed 400847).
    const prompt = peers.filter((peer) => !slow(peer))
    const answered = new Handoff.Gate(prompt.length === 0)
    let unanswered = prompt.length
    const counted = () => {
      if (--unanswered === 0) answered.unsafeOpen()
    }
    for (const peer of prompt) ask(beats, topology, peer, request, startedAtMs, "round", counted)
    yield* waitFor(beats, [answered], startedAtMs + settings.intervalMs)
    yield* manager.checkStaleNodes()
    if (startView !== undefined) yield* renewPair(beats, topology, startView, startedAtMs)
  })

const viewIn = ({ epoch, primary }: Primacy.State): Primacy.View => ({ epoch, primary })

/** Where this node sits in `topology`, if it does. */
const selfOf = (topology: Topology.Topology, nodeId: string) =>
  topology.regions.flatMap((region) => region.zones.flatMap((zone) => (zone.nodes.some((node) => node.id === nodeId) ? [{ regionId: region.id, zoneId: zone.id }] : [])))[0]

/**
 * A peer whose deadline grew past the first one (a slow or silent link) is asked on the side:
 * the round does not wait for it, so one dead peer never slows the news from the others (leases
 * and grant reports would go stale). Every answer is folded in as it comes.
 *
 * A slow peer is also probed every round with the first deadline, on the side too: its long
 * side request may have been sent into a partition that has healed since, and waiting out its
 * deadline (up to the maximum, 10 s by default) kept a healed peer Unreachable long enough to
 * fence a freshly promoted primary (swarm seed 20 of primary-failover). A probe that times out
 * says nothing new of the link and leaves its deadline as it was.
 */
const askSlow = (beats: Beats, topology: Topology.Topology, slow: ReadonlyArray<Peer>, request: Message.Heartbeat, startedAtMs: number): void => {
  const { settings, memory } = beats
  for (const peer of slow) {
    const id = peer.node.id
    const outstanding = memory.asking.get(id) ?? 0
    if (outstanding >= sideRequestsMax(settings, memory, id, startedAtMs)) continue
    memory.asking.set(id, outstanding + 1)
    ask(beats, topology, peer, request, startedAtMs, "side", () => {
      const left = (memory.asking.get(id) ?? 1) - 1
      if (left > 0) memory.asking.set(id, left)
      else memory.asking.delete(id)
    })
  }
  for (const peer of slow) {
    if (memory.probing.has(peer.node.id)) continue
    memory.probing.add(peer.node.id)
    ask(beats, topology, peer, request, startedAtMs, "probe", () => memory.probing.delete(peer.node.id))
  }
}

/**
 * Renews a two-region primary's lease at the end of a round (`Primacy.pairRenewal`), unless its
 * view changed during the round: the next round, which starts at once, speaks for the new view.
 */
const renewPair = (beats: Beats, topology: Topology.Topology, startView: Primacy.View, startedAtMs: number) =>
  Effect.suspend(() => {
    const { settings, memory, services } = beats
    const primacy = services.primacy
    const state = primacy.now.state()
    if (state.epoch !== startView.epoch || state.primary !== startView.primary) return Effect.void
    // A round ends at most an interval after it starts, answers or none; one that took longer
    // spans a stop of this node (a pause, a stall), whose answers may have failed at their
    // deadlines without a word of a newer epoch: it vouches for nothing. The lease then lapses,
    // and the next round waits to hear the other region (`Primacy.lapseIn`).
    const endedAtMs = services.now()
    if (endedAtMs - startedAtMs > 2 * settings.intervalMs) return Effect.void
    const renewal = Primacy.pairRenewal({
      topology,
      regionId: settings.regionId,
      state,
      // After a lapse, only answers to requests sent since count: older ones predate the stop.
      latest: [...memory.recent.values()].filter((entry) => state.lapsedAtMs === undefined || entry.sentAtMs >= state.lapsedAtMs).map((entry) => entry.ack),
      startedAtMs,
      endedAtMs,
      leaseMs: primacy.pairLeaseMs,
      requesters: recentRequesters(services.manager, endedAtMs, primacy.pairLeaseMs)
    })
    return renewal === undefined ? Effect.void : primacy.renewPair(renewal)
  })

/**
 * The nodes that asked this node for a heartbeat within a lease before `nowMs`: the longer of
 * `leaseMs` (this node's) and the one each said it runs on, which may hold that long.
 */
const recentRequesters = (manager: TopologyManager.TopologyManager["Type"], nowMs: number, leaseMs: number) =>
  manager.requestersSince(-Infinity).filter((requester) => requester.atMs >= nowMs - Math.max(leaseMs, requester.leaseMs ?? 0))

/**
 * One heartbeat to one peer: its answer (counted as that node) kept and folded in at once, so a
 * lease is renewed as soon as a majority answered rather than when the slowest peer of the round
 * did (one lost answer used to hold a new primary's first lease for a whole request timeout),
 * and its round trip noted. `ended` runs once the answer (or the failure) has been taken in.
 */
const ask = (beats: Beats, topology: Topology.Topology, peer: Peer, request: Message.Heartbeat, startedAtMs: number, kind: Kind, ended: () => void): void => {
  const { settings, memory } = beats
  const previous = memory.roundTrips.get(peer.node.id)
  const deadlineMs = kind === "probe" ? settings.requestTimeoutMs : (previous?.timeoutMs ?? settings.requestTimeoutMs)
  let settled = false
  const abandon = beats.call({ regionId: peer.regionId, nodeId: peer.node.id, endpoint: peer.node.endpoint }, request, deadlineMs, (outcome) => {
    settled = true
    beats.outstanding.delete(abandon)
    if (beats.stopped) return
    // A request that died (a bug) frees its side slot or probe, as a failed one does; a round's
    // request is not counted, and the round waits its interval out, as for a lost answer.
    if (outcome === undefined) return kind === "round" ? undefined : ended()
    const rest = takeOrDie(() => take(beats, topology, peer, request, startedAtMs, kind, deadlineMs, outcome))
    if (rest === undefined) ended()
    else defer(beats, Effect.zipRight(rest, Effect.sync(ended)))
  })
  // A network may answer before it returns (a request above the size bound fails at once).
  if (!settled) beats.outstanding.add(abandon)
}

/**
 * `taking`, where a throw (a bug) becomes a defect of the heartbeater's fiber, which ends the node
 * as any of its loops that dies does (`Engine`), in the simulator and in production alike. Thrown
 * in the callback, it escaped into the simulator's event loop, or into the fiber runtime that
 * called production's callback.
 */
const takeOrDie = (taking: () => Effect.Effect<void> | undefined): Effect.Effect<void> | undefined => {
  try {
    return taking()
  } catch (defect) {
    return Effect.die(defect)
  }
}

/**
 * Takes in one answer (or failure) at once; gives back what is left for the fiber, if anything.
 *
 * An answer taken in after its deadline says nothing of the peer's liveness or round trip:
 * for those it is a timeout, as if the deadline's timer had fired first. A node that was
 * stopped (a pause, a stall) finds both waiting when it runs again, and the simulator took
 * the answer in first (Node runs expired timers before it reads sockets): it counted an
 * answer the primary sent before it crashed as heard when the pause ended, and the pause as
 * the primary's round trip, which let that peer stay silent for two doubled deadlines more;
 * the region was promoted after the primary restarted (`sim swarm --scenario
 * scenarios/primary-failover.yaml`, seed 47000085). The view it carries still counts, late
 * or not: a newer epoch must never be missed (dropping it let a node paused across a
 * two-region hand-back renew its lease and take writes in its old epoch, on real processes).
 */
const take = (
  beats: Beats,
  topology: Topology.Topology,
  peer: Peer,
  request: Message.Heartbeat,
  startedAtMs: number,
  kind: Kind,
  deadlineMs: number,
  outcome: Either.Either<Message.Response, NetworkError>
): Effect.Effect<void> | undefined => {
  const { settings, memory, services } = beats
  const nowMs = services.now()
  const late = nowMs - startedAtMs > deadlineMs
  if (Either.isLeft(outcome) || late) {
    if (kind !== "probe") memory.roundTrips.set(peer.node.id, nextTimeout(settings, memory.roundTrips.get(peer.node.id), undefined))
    if (Either.isLeft(outcome) || outcome.right._tag !== "HeartbeatAck") return undefined
    remember(beats, topology, peer, outcome.right, startedAtMs)
    return undefined
  }
  const estimate = nextTimeout(settings, memory.roundTrips.get(peer.node.id), nowMs - startedAtMs)
  memory.roundTrips.set(peer.node.id, estimate)
  const answer = outcome.right
  if (answer._tag !== "HeartbeatAck") return undefined
  const heard = (physicalMs: number): Effect.Effect<void> | undefined => {
    services.clock.noteOffset(peer.node.id, ClockOffset.estimate(request.sentAtMs, answer.atMs, physicalMs, nowMs))
    // The answer counts as the node it was sent to, whatever it calls itself. A peer heard only
    // through slow answers may stay silent for two of its deadlines plus a round before it is stale.
    const allowanceMs = estimate.timeoutMs > settings.requestTimeoutMs ? 2 * estimate.timeoutMs + settings.intervalMs : 0
    const { manager } = services
    if (manager.recordHeartbeatQuietly(peer.regionId, peer.zoneId, peer.node.id, allowanceMs)) return remember(beats, topology, peer, answer, startedAtMs)
    return Effect.zipRight(
      Effect.ignore(manager.recordHeartbeat(peer.regionId, peer.zoneId, peer.node.id, allowanceMs)),
      Effect.sync(() => remember(beats, topology, peer, answer, startedAtMs))
    )
  }
  const physicalNow = services.clock.physicalNow
  if (physicalNow !== undefined) return heard(physicalNow())
  return Effect.flatMap(services.clock.physicalMs, (physicalMs) => heard(physicalMs) ?? Effect.void)
}

/**
 * Whether every node of every other region has answered this node since it started, from a disk
 * that is not recovering (`Primacy.State.awaitingPeers`): each has then told this node the
 * newest epoch its disk holds, and a newer one than this node's was observed.
 */
const everyPeerHeard = (topology: Topology.Topology, regionId: Topology.RegionId, memory: Beats["memory"]): boolean =>
  topology.regions.every(
    (region) =>
      region.id === regionId ||
      Topology.regionNodes(region).every((node) => {
        const answer = memory.recent.get(node.id)?.ack
        return answer !== undefined && answer.recovering !== true
      })
  )

/** Keeps a peer's latest answer and folds it in. */
const remember = (beats: Beats, topology: Topology.Topology, peer: Peer, answer: Message.HeartbeatAck, startedAtMs: number): undefined => {
  beats.memory.recent.set(peer.node.id, { ack: { ...answer, region: peer.regionId, node: peer.node.id }, sentAtMs: startedAtMs })
  fold(topology, beats)
  return undefined
}

/**
 * Folds the latest answer of every peer asked within the lease into this node's lease, grant
 * reports and newer epochs. The answers may come from different rounds (slow peers answer on
 * the side), so a renewal runs from the earliest request among them: every agreeing node
 * granted its lease after that moment, so the lease never outlives a grant.
 */
const fold = (topology: Topology.Topology, beats: Beats): void => {
  const { settings, memory, services } = beats
  const primacy = services.primacy
  // Only PrimaryReplica reads the flag: other strategies skip the walk over every node on every answer.
  if (topology.strategy === "PrimaryReplica" && primacy.now.state().awaitingPeers === true && everyPeerHeard(topology, settings.regionId, memory)) primacy.now.peersHeard()
  const nowMs = services.now()
  // Latest first: the renewal runs from the latest request with which the answers reach a
  // quorum, so an older answer from a node that has gone silent since (still within the lease)
  // does not hold every renewal back to its request (seen with one node of two crashed).
  const fresh = [...memory.recent.values()].filter((entry) => nowMs - entry.sentAtMs <= primacy.leaseMs).sort((a, b) => b.sentAtMs - a.sentAtMs)
  if (fresh.length === 0) return
  const state = primacy.now.state()
  const requesters = recentRequesters(services.manager, nowMs, primacy.leaseMs)
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
  primacy.now.report(tally, nowMs)
  if (tally.newer !== undefined) primacy.now.observe(tally.newer)
  // Two regions renew once per round instead (`renewPair`): a quorum of both is not needed there.
  // Only a primary renews: every other node would find no renewal in any prefix.
  if (topology.regions.length < 3 || state.primary !== settings.regionId) return
  // Only the renewal of each prefix, not its whole tally: this runs on every answer, and the
  // tallies' grant reports were most of the simulator's heartbeat folding.
  for (let count = 1; count <= fresh.length; count++) {
    const renewal = Primacy.renewal(roundOf(fresh.slice(0, count)))
    if (renewal === undefined) continue
    primacy.now.renew(renewal)
    // The latest quorum may leave out a region whose every node agrees among all the answers, and
    // a takeover waits out the leases granted to a region that has not moved on: the whole set's
    // earlier writable moment counts too (`renewIn` keeps the latest lease and the earliest such
    // moment). Without it, the grants every new disk counts at its start (`Primacy.initialState`)
    // held a new three-region cluster's first write for a whole lease whenever a quorum of two
    // regions answered first.
    if (count < fresh.length) {
      const whole = Primacy.renewal(roundOf(fresh))
      if (whole !== undefined) primacy.now.renew(whole)
    }
    return
  }
}

/** Runs heartbeat rounds forever; fork it. */
export const run = (settings: Settings): Effect.Effect<never, never, TopologyManager.TopologyManager | Network.Network | Clock.Clock | Primacy.Primacy> =>
  Effect.scoped(
    Effect.gen(function* () {
      const services: Services = {
        manager: yield* TopologyManager.TopologyManager,
        clock: yield* Clock.Clock,
        primacy: yield* Primacy.Primacy,
        now: yield* Clock.monotonicReader
      }
      const beats: Beats = {
        settings,
        memory: makeMemory(),
        services,
        call: Network.caller(yield* Network.Network, yield* Effect.runtime<never>()),
        outstanding: new Set(),
        deferred: [],
        woken: new Handoff.Gate(),
        stopped: false
      }
      // Requests still out when the heartbeater ends are abandoned: nothing takes their answers in.
      yield* Effect.addFinalizer(() =>
        Effect.sync(() => {
          beats.stopped = true
          for (const abandon of [...beats.outstanding]) abandon()
          beats.outstanding.clear()
        })
      )
      const primacy = services.primacy
      // Rounds start every interval, however long the last one waited for its answers: pausing
      // a whole interval after a round that waited an interval for a lost answer spaced the next
      // request two intervals out, and with the timeout at three intervals and a round trip on
      // top, ONE lost heartbeat made a healthy peer Unreachable (a restarted primary then never
      // held a majority long enough to confirm itself: swarm seed 701171). A changed view (a
      // promotion, an unfencing, a hand-back) needs a lease before its first write: the next
      // round starts at once. A round acts on the view as it is when it starts, so it closes
      // the view-change latch first.
      const viewChanged = primacy.viewChanged
      const once = Effect.suspend(() => {
        const startedAtMs = services.now()
        viewChanged.unsafeClose()
        return Effect.zipRight(round(beats), waitFor(beats, [viewChanged], startedAtMs + settings.intervalMs))
      })
      // Without `Effect.forever`'s yield after each round (`Handoff.repeat`): a round waits for
      // its answers or its pause, and a round that waits for neither (no peer to wait for and a
      // view changed meanwhile) is still preempted by the runtime after a bounded number of operations.
      return yield* Handoff.repeat(once)
    })
  )
