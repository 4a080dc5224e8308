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
   * How long one heartbeat may take. A round waits for its slowest answer, so this also bounds
   * how late the next round starts; keep it well below the heartbeat timeout.
   */
  readonly requestTimeoutMs: number
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
export const round = (settings: Settings) =>
  Effect.gen(function* () {
    const manager = yield* TopologyManager.TopologyManager
    const network = yield* Network.Network
    const clock = yield* Clock.Clock
    const primacy = yield* Primacy.Primacy
    const topology = yield* manager.current
    const startedAtMs = yield* Clock.monotonicMs
    const sentAtMs = yield* clock.physicalMs
    const request = { _tag: "Heartbeat", fromRegion: settings.regionId, fromNode: settings.nodeId, sentAtMs } as const
    // A node running this round is alive: without recording itself, every node's stale check
    // would mark the node itself Unreachable after the timeout (and its own region unavailable).
    const self = topology.regions.flatMap((region) =>
      region.zones.flatMap((zone) => (zone.nodes.some((node) => node.id === settings.nodeId) ? [{ regionId: region.id, zoneId: zone.id }] : []))
    )[0]
    if (self !== undefined) yield* Effect.ignore(manager.recordHeartbeat(self.regionId, self.zoneId, settings.nodeId))
    const answers = yield* Effect.forEach(
      peersOf(topology, settings.nodeId),
      (peer) =>
        network.send({ regionId: peer.regionId, nodeId: peer.node.id, endpoint: peer.node.endpoint }, request, settings.requestTimeoutMs).pipe(
          Effect.flatMap((response): Effect.Effect<ReadonlyArray<Message.HeartbeatAck>> =>
            response._tag === "HeartbeatAck"
              ? // The answer counts as the node it was sent to, whatever it calls itself.
                Effect.as(Effect.ignore(manager.recordHeartbeat(peer.regionId, peer.zoneId, peer.node.id)), [{ ...response, region: peer.regionId, node: peer.node.id }])
              : Effect.succeed([])
          ),
          Effect.orElseSucceed(() => [])
        ),
      { concurrency: "unbounded" }
    )
    yield* manager.checkStaleNodes()
    const endedAtMs = yield* Clock.monotonicMs
    const { renewal, newer, grantsReportedAtMs } = Primacy.tally({
      topology,
      regionId: settings.regionId,
      state: yield* primacy.state,
      acks: answers.flat(),
      startedAtMs,
      endedAtMs,
      leaseMs: primacy.leaseMs
    })
    yield* primacy.reportGrants(grantsReportedAtMs)
    if (newer !== undefined) yield* primacy.observe(newer)
    if (renewal !== undefined) yield* primacy.renew(renewal)
  })

/** Runs heartbeat rounds forever; fork it. */
export const run = (settings: Settings): Effect.Effect<never, never, TopologyManager.TopologyManager | Network.Network | Clock.Clock | Primacy.Primacy> =>
  Effect.forever(Effect.zipRight(round(settings), Effect.sleep(Duration.millis(settings.intervalMs))))
