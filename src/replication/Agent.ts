/**
 * The replication agent: ships this region's durable log to each target region.
 *
 * One fiber per target tails the log from a durable cursor. It collects up to `batchSize`
 * changes that `Relay` says this region should send to the target, waits at most
 * `flushDelayMs` for a partial batch to fill, sends the batch to ONE node of the target
 * region chosen by the router, with up to `batchesInFlightMax` batches in flight, and
 * advances the cursor, in log order, only past batches the target acknowledged as durable; the
 * cursor is persisted lazily (`LazyCursor`), so a restart may resend the last batches. Failures back off exponentially with seeded jitter up to
 * `maxRetries`, then keep probing at `retryDelayMaxMs` forever: a target is never given up.
 *
 * Guarantees: batches are formed in log order; a receiver that applies them out of order still
 * ends with the same state (an origin's later change to a tuple supersedes its earlier ones);
 * a resent batch is harmless because applying a change twice is a no-op; a restarted
 * node resumes from its durable cursor (at most the batches acknowledged since its last cursor
 * write are resent), so nothing is skipped.
 *
 * Relay-tree changes: each target fiber relays under the topology it started with and is
 * restarted when a topology change moves this region's place in the relay trees towards that
 * target (`Relay.scopeOf`); before moving its cursor it looks back for the changes its new scope
 * makes it responsible for, which the cursor passed while another region was their parent
 * (`lookBack`), so a change in flight when the tree changed is never stranded.
 *
 * Who ships depends on the store shape. On a shared regional store (one log per region) only
 * the region's replication leader (its lowest-id node that is not Unreachable) runs the agent;
 * two leaders for a moment only cause duplicate sends, which are no-ops. On per-node stores
 * every node is a replica with its own log: each node ships its whole log to the target
 * regions (so a region of k nodes sends each change up to k times; duplicates are no-ops) and
 * to every sibling node of its region except the one an entry came from. A change that
 * reached any node of a region therefore reaches every other node and every target even if
 * the node that first received it loses its disk right after.
 */
import { Cause, Context, Duration, Effect, FiberMap, Stream } from "effect"
import * as ChangeFeed from "./ChangeFeed.js"
import * as Clock from "./Clock.js"
import type { NetworkError } from "./Errors.js"
import * as Handoff from "./Handoff.js"
import type * as Message from "./Message.js"
import * as LazyCursor from "./LazyCursor.js"
import * as Metrics from "./Metrics.js"
import * as Network from "./Network.js"
import * as Random from "./Random.js"
import * as Relay from "./Relay.js"
import * as Router from "./Router.js"
import * as Signals from "./Signals.js"
import * as Store from "./Store.js"
import * as Topology from "./Topology.js"
import * as TopologyManager from "./TopologyManager.js"
import * as WireCodec from "./WireCodec.js"

/** Agent settings: the seed's `agent` block plus our named bounds (the `agent:` section of the configuration). */
export interface Settings {
  /** Failures after which backoff stops growing and the agent probes at `retryDelayMaxMs` (never gives up). */
  readonly maxRetries: number
  /** Base delay of the exponential backoff between retries. */
  readonly retryDelayMs: number
  /** Cap of the exponential backoff. */
  readonly retryDelayMaxMs: number
  /** Changes per batch sent to a target. */
  readonly batchSize: number
  /** How long a partial batch may wait for more changes before it is sent anyway. */
  readonly flushDelayMs: number
  /** Deadline of one replication request (configured in seconds as `request_timeout_secs`). */
  readonly requestTimeoutMs: number
  /** Batches sent to one target before the first of them is acknowledged (`batches_in_flight_max`). */
  readonly batchesInFlightMax?: number
  /**
   * Changes per batch while the target is further behind than a window of `batchSize` batches
   * covers (`catch_up_batch_size`; see `catchUpBatchSizeOf`): a backlog drains in fewer, larger
   * batches, since each batch costs a round trip, a transaction and an acknowledgement.
   */
  readonly catchUpBatchSize?: number
}

/**
 * The catch-up batch size: as configured, else ten batches' worth but at most 1,000 changes
 * (a batch of 1,000 of the largest changes the store takes stays far below the 16 MiB message
 * bound), and never below `batchSize`.
 */
export const catchUpBatchSizeOf = (settings: Settings): number =>
  Math.max(settings.batchSize, settings.catchUpBatchSize ?? Math.min(10 * settings.batchSize, catchUpBatchSizeCap))

const catchUpBatchSizeCap = 1_000

/** Batches in flight per target at most. */
const windowOf = (settings: Settings): number => settings.batchesInFlightMax ?? batchesInFlightMaxDefault

/** The batches one target may have in flight: a semaphore that also says how many are taken. */
interface Window {
  /** Waits for a free slot and takes it. Only the target's own round loop takes. */
  readonly take: Effect.Effect<void>
  readonly release: () => void
  /** Batches taken and not released yet (collected, in flight, or waiting to be acknowledged in order). */
  readonly taken: () => number
  /** Opens at the next release (take it before waiting). */
  readonly nextRelease: () => Handoff.Gate
}

/**
 * A counter and a gate: one fiber takes (the target's round loop), so a waiter needs no place in
 * a queue, and a free slot is taken in one step. Effect's semaphore cost about six Effect
 * operations per batch more, its release an Effect of its own where every caller is in a step
 * already.
 */
const makeWindow = (size: number): Window => {
  let taken = 0
  let released = new Handoff.Gate()
  const take: Effect.Effect<void> = Effect.suspend(() => {
    if (taken < size) {
      taken++
      return Effect.void
    }
    return Effect.zipRight(released.await, take)
  })
  return {
    take,
    release: () => {
      taken--
      released.unsafeOpen()
      released = new Handoff.Gate()
    },
    taken: () => taken,
    nextRelease: () => released
  }
}

/** Changes in the next batch to a target `behind` log entries behind: a catch-up batch when a window of ordinary ones would not hold them. */
const batchLimit = (settings: Settings, behind: number): number => (behind > windowOf(settings) * settings.batchSize ? catchUpBatchSizeOf(settings) : settings.batchSize)

/** Whether each node has its own store (lmdb, memory) or the region shares one (FoundationDB). */
export type StoreShape = "per_node" | "shared"

/** The targets this node ships its log to under `topology`. */
export const targetsFor = (topology: Topology.Topology, options: { readonly regionId: string; readonly nodeId: string; readonly storeShape: StoreShape }): ReadonlyArray<string> => {
  if (options.storeShape === "shared") return isLeader(topology, options.regionId, options.nodeId) ? Topology.targetsOf(topology, options.regionId) : []
  const region = Topology.findRegion(topology, options.regionId)
  const siblings = region === undefined ? [] : Topology.regionNodes(region).filter((node) => node.id !== options.nodeId)
  return [...Topology.targetsOf(topology, options.regionId), ...siblings.map((node) => Relay.siblingKey(options.regionId, node.id))]
}

/** Whether this region's node ships a log entry to `target`: relay rules for regions, all but its sender for siblings. */
export const sendsTo = (topology: Topology.Topology, regionId: string, target: string, entry: Store.LogEntry): boolean =>
  target.startsWith(Relay.siblingKey(regionId, "")) ? entry.receivedFrom !== target : Relay.shouldSend(topology, regionId, target, entry.change, entry.receivedFrom)

/** Per-target statistics. */
export interface TargetStats {
  readonly target: string
  readonly changesReplicated: number
  readonly batches: number
  readonly failures: number
  readonly consecutiveFailures: number
  /** Apply time at the target minus commit time at the origin, for the last batch; 0 when caught up. */
  readonly lagMs: number
  readonly cursor: number
  readonly lastError: string | undefined
}

/** Agent-wide statistics. */
export interface AgentStats {
  readonly changesReplicated: number
  readonly failures: number
  readonly targets: ReadonlyArray<TargetStats>
}

/** The Agent service. */
export class Agent extends Context.Tag("inferadb/Agent")<
  Agent,
  {
    /** Runs until interrupted, following topology changes. Fork it. */
    readonly run: Effect.Effect<never>
    readonly stats: Effect.Effect<AgentStats>
  }
>() {}

const emptyTarget = (target: string): TargetStats => ({
  target,
  changesReplicated: 0,
  batches: 0,
  failures: 0,
  consecutiveFailures: 0,
  lagMs: 0,
  cursor: 0,
  lastError: undefined
})

/** Log entries scanned per round at most, so filtered-out stretches advance the cursor in steps. */
const scanPagesMax = 8

/** Backoff before attempt `attempt + 1` (0-based failures so far), with jitter in [50%, 100%]. */
export const backoffMs = (settings: Settings, failures: number, random: Random.Stream): number => {
  const exponent = Math.min(Math.max(failures - 1, 0), 30)
  const capped = failures > settings.maxRetries ? settings.retryDelayMaxMs : Math.min(settings.retryDelayMs * 2 ** exponent, settings.retryDelayMaxMs)
  return Math.round(capped * (0.5 + 0.5 * random.next()))
}

/** Whether this node leads its region's replication: the lowest id among its available nodes. */
export const isLeader = (topology: Topology.Topology, regionId: string, nodeId: string): boolean => {
  const region = Topology.findRegion(topology, regionId)
  if (region === undefined) return false
  const available = Topology.regionNodes(region).filter((node) => node.status !== "Unreachable" || node.id === nodeId)
  const leader = available.map((node) => node.id).sort()[0]
  return leader === undefined || leader === nodeId
}

/** A batch ready to send, and the log position the cursor moves to once it is acknowledged. */
interface Pending {
  readonly changes: ReadonlyArray<Store.LogEntry>
  readonly scannedTo: number
}

/** An acknowledged batch and how long it took. */
interface Sent {
  readonly ack: Message.BatchAck
  readonly durationMs: number
}

/** A batch in the window, in log order; `done` once acknowledged (`sent` undefined: nothing was sent or all of it was skipped). */
interface InFlight {
  readonly pending: Pending
  done: boolean
  sent: Sent | undefined
}

/**
 * The window's batches in log order, settled from the front as they are acknowledged (they may
 * be acknowledged out of order). Whichever fiber completes a batch settles every done batch at
 * the front itself: a fiber of its own, woken for each acknowledgement, cost a scheduler task and
 * two hand-offs per batch (about 5% of a simulated run's tasks). `settling` keeps one fiber at
 * it at a time, so the front is settled once and in order.
 */
class InOrder {
  private readonly batches: Array<InFlight> = []
  private settling = false

  constructor(private readonly settle: (batch: InFlight) => Effect.Effect<void>) {}

  /** Whether no batch is in the window: none in flight, none waiting to be settled. */
  get isEmpty(): boolean {
    return this.batches.length === 0
  }

  /** Appends the next batch of the log. */
  add(pending: Pending): InFlight {
    const batch: InFlight = { pending, done: false, sent: undefined }
    this.batches.push(batch)
    return batch
  }

  /** Marks `batch` acknowledged, then settles the front of the window while it is done. */
  complete(batch: InFlight, sent: Sent | undefined): Effect.Effect<void> {
    return Effect.suspend(() => {
      batch.done = true
      batch.sent = sent
      return this.settleFront
    })
  }

  private readonly settleFront: Effect.Effect<void> = Effect.suspend(() => {
    const front = this.batches[0]
    if (this.settling || front === undefined || !front.done) return Effect.void
    this.settling = true
    this.batches.shift()
    // Not released on an interruption: that ends the target's fiber, and this window with it.
    return Effect.zipRight(
      this.settle(front),
      Effect.suspend(() => {
        this.settling = false
        return this.settleFront
      })
    )
  })
}

/** What moving a target's cursor updates besides the cursor. */
interface CursorMoves {
  readonly metrics: Metrics.Metrics["Type"]
  readonly logEnd: Effect.Effect<number>
  readonly updateTarget: (target: string, change: (stats: TargetStats) => TargetStats) => void
}

/**
 * Moves the cursor to `scannedTo`, with the statistics of the batch acknowledged up to it
 * (`counted`) if one was sent, then `andThen` (a release of the window), all in one step after
 * reading the log's end.
 */
const moveCursor = (
  moves: CursorMoves,
  target: string,
  scannedTo: number,
  counted: ((stats: TargetStats) => TargetStats) | undefined,
  cursor: LazyCursor.LazyCursor,
  andThen?: () => void
): Effect.Effect<void> =>
  Effect.map(moves.logEnd, (logEnd) => {
    // Persisted lazily (`LazyCursor`): a round never waits for a durable cursor write.
    cursor.advance(scannedTo)
    const caughtUp = scannedTo >= logEnd
    if (caughtUp) moves.metrics.lag(target, 0)
    moves.updateTarget(target, (before) => {
      const stats = counted === undefined ? before : counted(before)
      return { ...stats, cursor: scannedTo, lagMs: caughtUp ? 0 : stats.lagMs }
    })
    andThen?.()
  })

/**
 * Records an acknowledged batch in the metrics, with the lag it measured, and returns what it
 * changes in the target's statistics, which the agent applies with the cursor's move in one update.
 */
const acknowledged = (metrics: Metrics.Metrics["Type"], target: string, pending: Pending, sent: Sent) => {
  const oldestCommitMs = Math.min(...pending.changes.map((entry) => entry.change.committedAtMs))
  const lagMs = Math.max(0, sent.ack.appliedAtMs - oldestCommitMs)
  metrics.batchReplicated(target, pending.changes.length, sent.durationMs)
  metrics.targetConnected(target, true)
  metrics.lag(target, lagMs)
  return (stats: TargetStats): TargetStats => ({
    ...stats,
    changesReplicated: stats.changesReplicated + pending.changes.length,
    batches: stats.batches + 1,
    consecutiveFailures: 0,
    lagMs,
    lastError: undefined
  })
}

/** Why a send failed; `forGood` when the target will refuse these changes whatever happens. */
interface SendFailure {
  readonly forGood: boolean
  readonly reason: string
  readonly message: string
  /** The target could not be reached at all (nothing listening, no route): a heartbeat answer from it means it is back. */
  readonly unreachable?: boolean
}

const transient = (message: string): SendFailure => ({ forGood: false, reason: "transient", message })

/**
 * A network failure is transient, but for a batch above the message bound (`TooLarge`): sent
 * again it fails again, so it is split like a batch refused for good (`refusedForGood`), down to
 * the single change, which is skipped only when it alone is above the bound. Until December 3,
 * 2026 it was retried as it was, forever: replication to the target stopped for good once one
 * batch (a catch-up batch of large changes, say) was above `grpc.max_message_bytes` of either
 * end. The simulator did not bound messages then, so no seed could show it.
 */
const networkFailure = (error: NetworkError): SendFailure =>
  error.reason === "TooLarge"
    ? { forGood: true, reason: "TooLarge", message: `${error.reason}: ${error.message}` }
    : { ...transient(`${error.reason}: ${error.message}`), unreachable: error.reason === "Unreachable" }

/**
 * A send that died (a defect below the agent, a bug, not a failure the network reports) is
 * logged as the bug it is and retried as a transient failure. Dying ended the sender's fiber
 * without an outcome, and every later batch to the target waited behind it in the in-order
 * queue for good: replication to the target stopped without a word (`bench:repl` with
 * batches_in_flight_max 16, where grpc-js threw on a channel another request had closed).
 */
const sendDied =
  (target: string) =>
  (defect: unknown): Effect.Effect<never, SendFailure> =>
    Effect.zipRight(
      Effect.logError(`sending a batch to ${target} died (a bug); retrying it as a transient failure`, Cause.die(defect)),
      Effect.fail(transient(`the send died: ${defect instanceof Error ? defect.message : String(defect)}`))
    )

/**
 * Refusals that name the batch's content, not the link or the configuration: retrying the same
 * changes can never succeed. (An unknown region or a failed authentication refuses every batch
 * alike; those are retried until the operator fixes the configuration, and health shows them.)
 */
const refusedForGoodReasons: ReadonlySet<string> = new Set(["ResidencyViolation", "Malformed"])

/**
 * What a look-back (`lookBack` in `make`) owes a target when its scope went from `recorded` to
 * `scope`, before the relay tests: the entries whose scope key it gained, and those whose origin
 * region was removed since (flooded now, and nobody else sends them on). Undefined when it
 * gained nothing.
 */
const owedAfter = (topology: Topology.Topology, scope: ReadonlyArray<string>, recorded: ReadonlyArray<string> | undefined) => {
  const gained = new Set(scope.filter((key) => !(recorded ?? []).includes(key)))
  if (gained.size === 0) return undefined
  const removed = Relay.removedSince(recorded, topology)
  return (entry: Store.LogEntry): boolean => gained.has(Relay.scopeKey(topology, entry.change)) || removed.has(entry.change.originRegion)
}

/** Sends the log's entries in `span` (after `after`, up to `upTo`) that `picks` picks, a batch at a time; how many it sent. */
const resend = <E>(
  store: Store.Store["Type"],
  batchSize: number,
  picks: (entry: Store.LogEntry) => boolean,
  send: (pending: Pending) => Effect.Effect<unknown, E>,
  span: { readonly after: number; readonly upTo: number }
) =>
  Effect.gen(function* () {
    let resent = 0
    for (let from = span.after + 1; from <= span.upTo; ) {
      const entries = (yield* store.readLog(from, batchSize)).filter((entry) => entry.position <= span.upTo)
      if (entries.length === 0) break
      from = entries[entries.length - 1]!.position + 1
      const changes = entries.filter(picks)
      if (changes.length > 0) yield* send({ changes, scannedTo: from - 1 })
      resent += changes.length
    }
    return resent
  })

/** Default of `batchesInFlightMax`: enough to fill a slow or long link, few enough to bound resends after a restart. */
export const batchesInFlightMaxDefault = 4

/** The request carrying a pending batch to `target`; its id names the log positions it spans. */
const batchRequest = (from: { readonly regionId: string; readonly nodeId: string }, target: string, pending: Pending): Message.ReplicateBatch => ({
  _tag: "ReplicateBatch",
  batchId: `${from.regionId}>${target}:${pending.changes[0]!.position}-${pending.changes[pending.changes.length - 1]!.position}`,
  fromRegion: from.regionId,
  fromNode: from.nodeId,
  changes: pending.changes.map((entry) => entry.change)
})

/**
 * The wait before a retry: the backoff, cut short when another batch got through to the target
 * since this attempt started (`answered`: the batches of a window fail together when a target
 * is down, each into its own jittered backoff, and the first one through must not leave the
 * rest holding the window and the in-order cursor) or, for a target region (not a sibling),
 * when heartbeats see it come back: the region available again after it was down (a region
 * that was down got its backlog only after the rest of a capped backoff, 5-10 s by default,
 * which added seconds to every recovery), or, when this attempt could not reach it at all, any
 * heartbeat answer from it or heartbeat it sends (a restarted target's first round). A sibling
 * node that could not be reached is cued the same way by its own heartbeats and answers: a
 * restarted sibling got what its siblings took meanwhile only after the rest of the backoff
 * (2.6-3.1 s after the workload ended on three of six seeds of a node crashed for 7 s, with the
 * 10 s default cap). A target that refuses while heartbeats find it well waits the
 * whole backoff. All of it is one wait on gates and a timer (`Handoff.awaitAny`).
 */
const retryWait = (
  topologies: TopologyManager.TopologyManager["Type"],
  failed: { readonly target: string; readonly sibling: { readonly regionId: string; readonly nodeId: string } | undefined; readonly unreachable: boolean },
  delayMs: number,
  answered: Handoff.Gate
): Effect.Effect<void> => {
  if (failed.sibling !== undefined) {
    const { regionId, nodeId } = failed.sibling
    return failed.unreachable ? Effect.flatMap(topologies.heardFromNode(regionId, nodeId), (heard) => Handoff.awaitAny([answered, heard], delayMs)) : Handoff.awaitAny([answered], delayMs)
  }
  const cues = failed.unreachable ? [topologies.returning(failed.target), topologies.heardFrom(failed.target)] : [topologies.returning(failed.target)]
  return Effect.flatMap(Effect.all(cues), (gates) => Handoff.awaitAny([answered, ...gates], delayMs))
}

/** The node of a sibling target of region `regionId` (`Relay.siblingKey`); undefined for a target region. */
const siblingNodeOf = (regionId: string, target: string): { readonly regionId: string; readonly nodeId: string } | undefined => {
  const prefix = Relay.siblingKey(regionId, "")
  return target.startsWith(prefix) ? { regionId, nodeId: target.slice(prefix.length) } : undefined
}

/** The sibling node a per-node store ships to under `target` (`Relay.siblingKey`), while it is in the topology. */
const siblingPeer = (topologies: TopologyManager.TopologyManager["Type"], regionId: string, target: string) =>
  Effect.flatMap(topologies.current, (topology) => {
    const nodeId = target.slice(Relay.siblingKey(regionId, "").length)
    const region = Topology.findRegion(topology, regionId)
    const node = region === undefined ? undefined : Topology.regionNodes(region).find((candidate) => candidate.id === nodeId)
    return node === undefined ? Effect.fail(`sibling node '${nodeId}' is no longer in the topology`) : Effect.succeed({ regionId, nodeId, endpoint: node.endpoint })
  })

/**
 * Reads forward from `cursor` and keeps what `keep` keeps, up to a batch: a catch-up batch when
 * more is waiting than a window of ordinary batches holds, and never more than the node's
 * message bound carries (a batch above it was refused by the node's own transport, and only then
 * split, `networkFailure`).
 */
const collectFrom = (store: Store.Store["Type"], settings: Settings, bytesMax: number, keep: (entry: Store.LogEntry) => boolean, cursor: number) =>
  Effect.gen(function* () {
    const batch: Array<Store.LogEntry> = []
    const logEnd = yield* store.logEnd
    const limit = batchLimit(settings, logEnd - cursor)
    let scannedTo = cursor
    const size = new WireCodec.BatchBytes(bytesMax)
    let full = false
    // Up to the log end read above: a page read past it finds nothing (readers see durable
    // entries only, and the end is read from durable state), yet it missed the recent entries
    // kept in memory and read the backend, once in about every round.
    for (let page = 0; page < scanPagesMax && !full && batch.length < limit && scannedTo < logEnd; page++) {
      const entries = yield* store.readLog(scannedTo + 1, limit)
      if (entries.length === 0) break
      for (const entry of entries) {
        if (batch.length >= limit) break
        if (keep(entry)) {
          // At least one change, whatever its size: the transport says when it alone is too large.
          full = !size.fits(batch, entry.change)
          if (full) break
          batch.push(entry)
        }
        scannedTo = entry.position
      }
    }
    return { changes: batch, scannedTo } satisfies Pending
  })

/** Who the agent ships for, with what settings, within which bounds of the node's network. */
interface MakeOptions {
  readonly regionId: string
  readonly nodeId: string
  readonly settings: Settings
  readonly storeShape: StoreShape
  /** The largest message this node sends (`Engine.Settings.messageBytesMax`): a batch is kept within it. */
  readonly messageBytesMax?: number
  /** Requests this node's network keeps in flight to one endpoint (`Engine.Settings.inFlightPerTargetMax`): the window is kept within it. */
  readonly inFlightPerTargetMax?: number
}

/** Builds the agent of one node. */
export const make = (options: MakeOptions) =>
  Effect.gen(function* () {
    const store = yield* Store.Store
    const feed = yield* ChangeFeed.ChangeFeed
    const network = yield* Network.Network
    const router = yield* Router.Router
    const topologies = yield* TopologyManager.TopologyManager
    const clock = yield* Clock.Clock
    const metrics = yield* Metrics.Metrics
    const random = (yield* Random.Random).derive(`agent/${options.regionId}/${options.nodeId}`)
    // A window wider than the network's bound per endpoint only queued batches in this node,
    // where they timed out waiting for a slot and were retried behind the rest: 32 batches over
    // one slot across five regions converged 30 s after the heal, past the seed's budget (swarm
    // seed 130001316; 123000087 before it), though correct.
    const settings = { ...options.settings, batchesInFlightMax: Math.min(windowOf(options.settings), options.inFlightPerTargetMax ?? Infinity) }
    // Changed in place, in the steps that change them; `stats` copies them out.
    const targets = new Map<string, TargetStats>()
    const updateTarget = (target: string, change: (stats: TargetStats) => TargetStats): void =>
      void targets.set(target, change(targets.get(target) ?? emptyTarget(target)))
    const cursors: CursorMoves = { metrics, logEnd: feed.logEnd, updateTarget }

    // Per target, the signal its next acknowledgement fires (see `retryWait`).
    const answers = Signals.make<string>()
    const siblingPrefix = Relay.siblingKey(options.regionId, "")
    const shouldSend = (topology: Topology.Topology, target: string, entry: Store.LogEntry): boolean => sendsTo(topology, options.regionId, target, entry)

    const bytesMax = options.messageBytesMax ?? Network.messageBytesMaxDefault
    const collect = (target: string, cursor: number, topology: Topology.Topology) =>
      collectFrom(store, settings, bytesMax, (entry) => shouldSend(topology, target, entry), cursor)

    /** Sends once to one node of the target region (or to the sibling node). */
    const sendOnce = (target: string, request: Message.ReplicateBatch): Effect.Effect<Message.BatchAck, SendFailure> =>
      Effect.gen(function* () {
        const peer = target.startsWith(siblingPrefix)
          ? yield* Effect.mapError(siblingPeer(topologies, options.regionId, target), transient)
          : yield* Effect.map(Effect.mapError(router.pickNode(target, { probe: true }), (error) => transient(`no node to send to: ${error.message}`)), (route) => ({
              regionId: route.regionId,
              nodeId: route.nodeId,
              endpoint: route.endpoint
            }))
        const response = yield* Effect.mapError(network.send(peer, request, settings.requestTimeoutMs), networkFailure)
        if (response._tag === "BatchAck") return response
        if (response._tag === "Refused") {
          const message = `refused (${response.reason}): ${response.message}`
          return yield* Effect.fail(refusedForGoodReasons.has(response.reason) ? { forGood: true, reason: response.reason, message } : transient(message))
        }
        return yield* Effect.fail(transient(`unexpected response ${response._tag}`))
      })

    /** Sends until acknowledged, backing off between failures; never gives up on the target. */
    const sendUntilAcknowledged = (target: string, pending: Pending): Effect.Effect<Sent | undefined> =>
      Effect.gen(function* () {
        const request = batchRequest(options, target, pending)
        let failures = 0
        while (true) {
          const startedMs = yield* clock.physicalMs
          const answered = yield* answers.next(target)
          const outcome = yield* Effect.either(Effect.catchAllDefect(sendOnce(target, request), sendDied(target)))
          if (outcome._tag === "Right") return yield* Effect.as(answers.fire(target), { ack: outcome.right, durationMs: (yield* clock.physicalMs) - startedMs })
          if (outcome.left.forGood) return yield* refusedForGood(target, pending, outcome.left)
          failures++
          metrics.replicationFailed(target)
          metrics.targetConnected(target, false)
          updateTarget(target, (stats) => ({ ...stats, failures: stats.failures + 1, consecutiveFailures: failures, lastError: outcome.left.message }))
          yield* Effect.logDebug(`replication to ${target} failed (${failures}): ${outcome.left.message}`)
          yield* retryWait(topologies, { target, sibling: siblingNodeOf(options.regionId, target), unreachable: outcome.left.unreachable === true }, backoffMs(settings, failures, random), answered)
        }
      })

    /**
     * A batch the target refuses for good (a change it may never store, or cannot decode) is
     * split in halves and each half sent on its own, down to the single change, which is then
     * skipped with a logged and counted reason: nothing behind it waits forever.
     */
    const refusedForGood = (target: string, pending: Pending, failure: SendFailure): Effect.Effect<Sent | undefined> =>
      Effect.gen(function* () {
        if (pending.changes.length === 1) {
          const change = pending.changes[0]!.change
          metrics.changeSkipped(target, failure.reason)
          yield* Effect.logWarning(`skipping change ${change.id.origin}#${change.id.seq} towards ${target}, which refuses it for good: ${failure.message}`)
          return undefined
        }
        const middle = Math.ceil(pending.changes.length / 2)
        const halves = [pending.changes.slice(0, middle), pending.changes.slice(middle)]
        let last: Sent | undefined
        for (const changes of halves) last = (yield* sendUntilAcknowledged(target, { changes, scannedTo: pending.scannedTo })) ?? last
        return last
      })

    /**
     * Waits for work: new log entries, and, while other batches to the target are in flight,
     * for a partial batch to fill until one of them is acknowledged, at most `flushDelayMs` more
     * (Nagle's rule: one partial batch waits behind those in flight, not for a fixed delay). A
     * target with nothing in flight gets the first change at once: every change of a write of
     * one change at 1,000 writes/s waited the whole 10 ms flush delay before (lag p50 10 ms,
     * `BENCH_CHANGES_PER_WRITE=1 BENCH_LAG_RATES=1000 npm run bench:repl`).
     */
    // The nodes of a region share its store but each has its own feed, so a change that another
    // node of the region committed or applied wakes only that node's feed. The store's log end is
    // the truth; the feed is only the fast wake-up, and a re-read every `retryDelayMaxMs` bounds
    // how long such a change can wait for this region's leader. A re-read that finds nothing new
    // waits again at once: an idle target used to get an empty round every `retryDelayMaxMs`
    // (a flush delay, a log read and a pass through the in-order queue), a third of an idle
    // simulated cluster's work.
    const awaitWork = (cursor: number, window: Window) =>
      Effect.gen(function* () {
        while ((yield* store.logEnd) <= cursor) {
          yield* feed.awaitBeyond(cursor, settings.retryDelayMaxMs)
        }
        if (window.taken() > 1 && (yield* store.logEnd) - cursor < settings.batchSize) {
          yield* feed.awaitBeyond(cursor + settings.batchSize - 1, settings.flushDelayMs, window.nextRelease())
        }
      })

    /**
     * Moves the durable cursor past a batch acknowledged in log order (`InOrder`), freeing a
     * slot of the window.
     */
    const advancePast = (target: string, batch: InFlight, window: Window, cursor: LazyCursor.LazyCursor) =>
      moveCursor(cursors, target, batch.pending.scannedTo, batch.sent === undefined ? undefined : acknowledged(metrics, target, batch.pending, batch.sent), cursor, window.release)

    /**
     * Before a target's fiber moves its cursor under `topology`, it sends what that topology
     * newly makes it responsible for: the changes at or before the cursor whose relay scope
     * (`Relay.scopeKey`) was not in the scope recorded with the cursor. Under the old relay tree
     * another region was their parent for this target, so the cursor passed them unsent, and
     * that region may never send them now (its edge gone, its batch lost in flight). Receivers
     * ignore the ones they already have. The scope is recorded only once they were all
     * acknowledged, so a crash in between looks back again.
     */
    const lookBack = (target: string, topology: Topology.Topology) =>
      Effect.gen(function* () {
        const scope = Relay.scopeOf(topology, options.regionId, target)
        const recorded = yield* store.getRelayScope(target)
        if (recorded !== undefined && recorded.join("\n") === scope.join("\n")) return
        const owed = owedAfter(topology, scope, recorded)
        // A scope that owes nothing new is recorded at once: old-scope moves skip nothing it owes.
        if (owed === undefined) return yield* Effect.asVoid(store.setRelayScope(target, scope))
        let [lookedTo, cursor, resent] = [0, yield* store.getCursor(target), 0]
        // Recorded only if no other node sharing the store moved the cursor past what was looked
        // back over meanwhile, under a scope that may have skipped what this one owes; else again,
        // over all that this target gets in that stretch (whatever the mover's scope skipped).
        for (let settled = false, pass = 0; !settled; pass++) {
          const picks = (entry: Store.LogEntry) => (pass > 0 || owed(entry)) && shouldSend(topology, target, entry)
          resent += yield* resend(store, settings.batchSize, picks, (pending) => sendUntilAcknowledged(target, pending), { after: lookedTo, upTo: cursor })
          lookedTo = cursor
          ;({ cursor, recorded: settled } = yield* store.setRelayScope(target, scope, lookedTo))
        }
        if (resent > 0) yield* Effect.logInfo(`relay tree towards ${target} changed: re-sent ${resent} changes up to position ${cursor} that another region was to send`)
      })

    /**
     * Ships the log to one target with up to `batchesInFlightMax` batches in flight: each batch
     * is collected after the previous one (log order), sent on its own fiber until acknowledged,
     * and the cursor follows the acknowledgements in log order. The receiver may apply batches
     * out of order; that is safe because an origin's later change to a tuple always supersedes
     * its earlier ones (see `VersionVector`), and applying is idempotent.
     */
    const runTarget = (target: string, topology: Topology.Topology): Effect.Effect<never> =>
      Effect.scoped(
        Effect.gen(function* () {
          updateTarget(target, (stats) => stats)
          if (!target.startsWith(siblingPrefix)) {
            // A store failure retries the look-back after the capped delay; the cursor waits for it.
            yield* lookBack(target, topology).pipe(
              Effect.tapError((error) =>
                Effect.zipRight(Effect.logWarning(`looking back towards ${target} failed: ${error.message}`), Effect.sleep(Duration.millis(settings.retryDelayMaxMs)))
              ),
              Effect.eventually
            )
          }
          const window = makeWindow(windowOf(settings))
          const senders = yield* Handoff.Pool.make()
          let next = yield* Effect.orElseSucceed(store.getCursor(target), () => 0)
          // On a shared store a region target's cursor moves only under the scope this fiber relays
          // under (`Store.advanceCursor`); a node's own store has one writer, whose old fiber is gone.
          const relayScope = options.storeShape !== "shared" || target.startsWith(siblingPrefix) ? undefined : Relay.scopeOf(topology, options.regionId, target)
          const cursor = yield* Effect.provideService(LazyCursor.make(target, next, settings.retryDelayMaxMs, relayScope), Store.Store, store)
          const inOrder = new InOrder((batch) => advancePast(target, batch, window, cursor))
          // Whether the last round kept its slot of the window for this one (it sent nothing).
          let holding = false
          while (true) {
            if (!holding) yield* window.take
            holding = false
            const collected = yield* Effect.either(Effect.zipRight(awaitWork(next, window), collect(target, next, topology)))
            if (collected._tag === "Left") {
              // A store failure skips this round; the capped delay bounds how often it is retried.
              window.release()
              yield* Effect.logWarning(`replication round towards ${target} failed: ${collected.left.message}`)
              yield* Effect.sleep(Duration.millis(settings.retryDelayMaxMs))
              continue
            }
            const pending = collected.right
            // A round that found nothing to send, with no batch ahead of it, moves the cursor
            // itself and keeps its slot for the next round. Most rounds of a node that applies
            // what other regions send are such rounds (its agent towards the sender wakes for
            // every applied batch); through the window and the in-order queue each cost about
            // twelve Effect operations more.
            if (pending.changes.length === 0 && inOrder.isEmpty) {
              yield* moveCursor(cursors, target, pending.scannedTo, undefined, cursor)
              next = pending.scannedTo
              holding = true
              continue
            }
            const batch = inOrder.add(pending)
            yield* pending.changes.length === 0 ? inOrder.complete(batch, undefined) : senders.run(Effect.flatMap(sendUntilAcknowledged(target, pending), (result) => inOrder.complete(batch, result)))
            next = pending.scannedTo
          }
        })
      ).pipe(Effect.annotateLogs({ target }))

    /**
     * Starts and stops per-target fibers as the topology changes. A target fiber relays under
     * the topology it started with; it is restarted when a change moves this region's place in
     * the relay trees towards that target (its `Relay.scopeOf`), never for a health change.
     */
    const run: Effect.Effect<never> = Effect.scoped(
      Effect.gen(function* () {
        const fibers = yield* FiberMap.make<string, never>()
        const running = new Map<string, string>()
        yield* topologies.changes.pipe(
          Stream.runForEach((topology) =>
            Effect.gen(function* () {
              const wanted = new Set(targetsFor(topology, options))
              metrics.targetsTotal(Topology.targetsOf(topology, options.regionId).length)
              for (const target of [...running.keys()]) {
                if (wanted.has(target)) continue
                running.delete(target)
                yield* FiberMap.remove(fibers, target)
              }
              for (const target of wanted) {
                const scope = target.startsWith(siblingPrefix) ? "" : Relay.scopeOf(topology, options.regionId, target).join("\n")
                if (running.get(target) === scope) continue
                // The old fiber must be gone before the new one reads the cursor: an acknowledgement
                // landing after that read would move the cursor past changes the new scope must send.
                if (running.has(target)) yield* FiberMap.remove(fibers, target)
                running.set(target, scope)
                yield* FiberMap.run(fibers, target, runTarget(target, topology))
              }
            })
          )
        )
        return yield* Handoff.parked
      })
    )

    const stats = Effect.sync(() => {
      const list = [...targets.values()].sort((a, b) => (a.target < b.target ? -1 : 1))
      return {
        changesReplicated: list.reduce((sum, target) => sum + target.changesReplicated, 0),
        failures: list.reduce((sum, target) => sum + target.failures, 0),
        targets: list
      }
    })

    return { run, stats } satisfies Agent["Type"]
  })
