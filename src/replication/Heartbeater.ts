/**
 * Liveness: every `intervalMs` this node sends a heartbeat to every other node of the
 * topology and records each answer with the TopologyManager, then runs the stale check. A
 * node that stops answering is marked Unreachable after the heartbeat timeout, including one
 * that never answered at all; it returns to Healthy only after several good heartbeats
 * (hysteresis lives in the TopologyManager). Heartbeats go to every node whatever its status,
 * so an Unreachable node is noticed when it comes back.
 *
 * The answers also carry every peer's view of the primary (`Primacy`): after each round a
 * primary renews its write lease when more than half of the regions agreed with its view, and
 * any node remembers a newer epoch a peer answered with and the leases peers report granting.
 */
import { Duration, Effect } from "effect"
import * as Clock from "./Clock.js"
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
   * How long one heartbeat may take at first. A round waits for its slowest answer, so this
   * also bounds how late the next round starts; keep it well below the heartbeat timeout.
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
  readonly smoothedMs: number
  readonly deviationMs: number
  /** The deadline of the next heartbeat to the peer. */
  readonly timeoutMs: number
}

/** The deadline after a round trip of `sampleMs` (or after a timeout, when undefined). */
export const nextTimeout = (settings: Settings, previous: RoundTrip | undefined, sampleMs: number | undefined): RoundTrip => {
  const floorMs = settings.requestTimeoutMs
  const capMs = Math.max(floorMs, settings.requestTimeoutMaxMs ?? floorMs)
  if (sampleMs === undefined) {
    const timeoutMs = Math.min(capMs, (previous?.timeoutMs ?? floorMs) * 2)
    return { smoothedMs: previous?.smoothedMs ?? timeoutMs, deviationMs: previous?.deviationMs ?? 0, timeoutMs }
  }
  const smoothedMs = previous === undefined ? sampleMs : 0.875 * previous.smoothedMs + 0.125 * sampleMs
  const deviationMs = previous === undefined ? sampleMs / 2 : 0.75 * previous.deviationMs + 0.25 * Math.abs(previous.smoothedMs - sampleMs)
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
export const round = (settings: Settings, roundTrips: Map<string, RoundTrip> = new Map(), asking: Set<string> = new Set()) =>
  Effect.gen(function* () {
    const manager = yield* TopologyManager.TopologyManager
    const clock = yield* Clock.Clock
    const topology = yield* manager.current
    const startedAtMs = yield* Clock.monotonicMs
    const sentAtMs = yield* clock.physicalMs
    const request: Message.Heartbeat = { _tag: "Heartbeat", fromRegion: settings.regionId, fromNode: settings.nodeId, sentAtMs }
    // A node running this round is alive: without recording itself, every node's stale check
    // would mark the node itself Unreachable after the timeout (and its own region unavailable).
    const self = topology.regions.flatMap((region) =>
      region.zones.flatMap((zone) => (zone.nodes.some((node) => node.id === settings.nodeId) ? [{ regionId: region.id, zoneId: zone.id }] : []))
    )[0]
    if (self !== undefined) yield* Effect.ignore(manager.recordHeartbeat(self.regionId, self.zoneId, settings.nodeId))
    // A peer whose deadline grew past the first one (a slow or silent link) is asked on the
    // side: the round does not wait for it, so one dead peer never slows the news from the
    // others (leases and grant reports would go stale). Its answer still counts as a
    // heartbeat and reports grants and newer epochs; it only misses this round's lease tally.
    const peers = peersOf(topology, settings.nodeId)
    const slow = (peer: Peer) => (roundTrips.get(peer.node.id)?.timeoutMs ?? settings.requestTimeoutMs) > settings.requestTimeoutMs
    for (const peer of peers.filter(slow)) {
      // One side request per peer at a time: a silent peer is not asked again every round.
      if (asking.has(peer.node.id)) continue
      asking.add(peer.node.id)
      yield* Effect.forkScoped(
        Effect.flatMap(ask(settings, roundTrips, peer, request, startedAtMs), (acks) => fold(topology, settings, acks, startedAtMs, false)).pipe(
          Effect.ensuring(Effect.sync(() => asking.delete(peer.node.id)))
        )
      )
    }
    const answers = yield* Effect.forEach(peers.filter((peer) => !slow(peer)), (peer) => ask(settings, roundTrips, peer, request, startedAtMs), { concurrency: "unbounded" })
    yield* manager.checkStaleNodes()
    yield* fold(topology, settings, answers.flat(), startedAtMs, true)
  })

type Peer = ReturnType<typeof peersOf>[number]

/** One heartbeat to one peer: its answer (counted as that node), and its round trip noted. */
const ask = (settings: Settings, roundTrips: Map<string, RoundTrip>, peer: Peer, request: Message.Heartbeat, startedAtMs: number) =>
  Effect.gen(function* () {
    const manager = yield* TopologyManager.TopologyManager
    const network = yield* Network.Network
    const previous = roundTrips.get(peer.node.id)
    return yield* network.send({ regionId: peer.regionId, nodeId: peer.node.id, endpoint: peer.node.endpoint }, request, previous?.timeoutMs ?? settings.requestTimeoutMs).pipe(
      Effect.tap(() => Effect.map(Clock.monotonicMs, (nowMs) => void roundTrips.set(peer.node.id, nextTimeout(settings, previous, nowMs - startedAtMs)))),
      Effect.flatMap((response): Effect.Effect<ReadonlyArray<Message.HeartbeatAck>> =>
        response._tag === "HeartbeatAck"
          ? // The answer counts as the node it was sent to, whatever it calls itself.
            Effect.as(Effect.ignore(manager.recordHeartbeat(peer.regionId, peer.zoneId, peer.node.id)), [{ ...response, region: peer.regionId, node: peer.node.id }])
          : Effect.succeed([])
      ),
      Effect.orElseSucceed(() => {
        roundTrips.set(peer.node.id, nextTimeout(settings, previous, undefined))
        return []
      })
    )
  })

/** Folds answers into this node's lease (only a whole round may renew it), grant reports and newer epochs. */
const fold = (topology: Topology.Topology, settings: Settings, acks: ReadonlyArray<Message.HeartbeatAck>, startedAtMs: number, renews: boolean) =>
  Effect.gen(function* () {
    const primacy = yield* Primacy.Primacy
    const { renewal, newer, grantsReportedAtMs } = Primacy.tally({
      topology,
      regionId: settings.regionId,
      state: yield* primacy.state,
      acks,
      startedAtMs,
      endedAtMs: yield* Clock.monotonicMs,
      leaseMs: primacy.leaseMs
    })
    yield* primacy.reportGrants(grantsReportedAtMs)
    if (newer !== undefined) yield* primacy.observe(newer)
    if (renews && renewal !== undefined) yield* primacy.renew(renewal)
  })

/** Runs heartbeat rounds forever; fork it. */
export const run = (settings: Settings): Effect.Effect<never, never, TopologyManager.TopologyManager | Network.Network | Clock.Clock | Primacy.Primacy> =>
  Effect.scoped(
    Effect.suspend(() => {
      const roundTrips = new Map<string, RoundTrip>()
      const asking = new Set<string>()
      return Effect.forever(Effect.zipRight(round(settings, roundTrips, asking), Effect.sleep(Duration.millis(settings.intervalMs))))
    })
  )
