/**
 * The replication agent: ships this region's durable log to each target region.
 *
 * One fiber per target tails the log from a durable cursor. It collects up to `batchSize`
 * changes that `Relay` says this region should send to the target, waits at most
 * `flushDelayMs` for a partial batch to fill, sends the batch to ONE node of the target
 * region chosen by the router, with up to `batchesInFlightMax` batches in flight, and
 * advances the cursor, in log order, only past batches the target acknowledged as durable. Failures back off exponentially with seeded jitter up to
 * `maxRetries`, then keep probing at `retryDelayMaxMs` forever: a target is never given up.
 *
 * Guarantees: batches are formed in log order; a receiver that applies them out of order still
 * ends with the same state (an origin's later change to a tuple supersedes its earlier ones);
 * a resent batch is harmless because applying a change twice is a no-op; a restarted
 * node resumes from its durable cursor, so nothing is skipped.
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
import { Context, Deferred, Duration, Effect, FiberMap, Layer, Queue, Ref, Stream } from "effect"
import * as ChangeFeed from "./ChangeFeed.js"
import type * as Config from "./Config.js"
import * as Clock from "./Clock.js"
import type { NetworkError } from "./Errors.js"
import type * as Message from "./Message.js"
import * as Metrics from "./Metrics.js"
import * as Network from "./Network.js"
import * as Random from "./Random.js"
import * as Relay from "./Relay.js"
import * as Router from "./Router.js"
import * as Store from "./Store.js"
import * as Topology from "./Topology.js"
import * as TopologyManager from "./TopologyManager.js"

/** Agent settings: the seed's `agent` block plus our named bounds (see `Config.AgentSettings`). */
export type Settings = Omit<Config.AgentSettings, "bufferSize">

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

/** A batch in the window: done when it was acknowledged (undefined: nothing was sent or all of it was skipped). */
interface InFlight {
  readonly pending: Pending
  readonly sent: Deferred.Deferred<Sent | undefined>
}

/** Why a send failed; `forGood` when the target will refuse these changes whatever happens. */
interface SendFailure {
  readonly forGood: boolean
  readonly reason: string
  readonly message: string
}

const transient = (message: string): SendFailure => ({ forGood: false, reason: "transient", message })

/**
 * Refusals that name the batch's content, not the link or the configuration: retrying the same
 * changes can never succeed. (An unknown region or a failed authentication refuses every batch
 * alike; those are retried until the operator fixes the configuration, and health shows them.)
 */
const refusedForGoodReasons: ReadonlySet<string> = new Set(["ResidencyViolation", "Malformed"])

/** Default of `batchesInFlightMax`: enough to fill a slow or long link, few enough to bound resends after a restart. */
export const batchesInFlightMaxDefault = 4

/** Builds the agent of one node. */
export const make = (options: { readonly regionId: string; readonly nodeId: string; readonly settings: Settings; readonly storeShape: StoreShape }) =>
  Effect.gen(function* () {
    const store = yield* Store.Store
    const feed = yield* ChangeFeed.ChangeFeed
    const network = yield* Network.Network
    const router = yield* Router.Router
    const topologies = yield* TopologyManager.TopologyManager
    const clock = yield* Clock.Clock
    const metrics = yield* Metrics.Metrics
    const random = (yield* Random.Random).derive(`agent/${options.regionId}/${options.nodeId}`)
    const { settings } = options
    const targets = yield* Ref.make(new Map<string, TargetStats>())

    const updateTarget = (target: string, change: (stats: TargetStats) => TargetStats) =>
      Ref.update(targets, (all) => new Map(all).set(target, change(all.get(target) ?? emptyTarget(target))))

    const siblingPrefix = Relay.siblingKey(options.regionId, "")
    const shouldSend = (topology: Topology.Topology, target: string, entry: Store.LogEntry): boolean => sendsTo(topology, options.regionId, target, entry)

    /** Reads forward from the cursor and keeps what should go to `target`, up to a batch. */
    const collect = (target: string, cursor: number) =>
      Effect.gen(function* () {
        const topology = yield* topologies.current
        const batch: Array<Store.LogEntry> = []
        let scannedTo = cursor
        for (let page = 0; page < scanPagesMax && batch.length < settings.batchSize; page++) {
          const entries = yield* store.readLog(scannedTo + 1, settings.batchSize)
          if (entries.length === 0) break
          for (const entry of entries) {
            if (batch.length >= settings.batchSize) break
            scannedTo = entry.position
            if (shouldSend(topology, target, entry)) batch.push(entry)
          }
        }
        return { changes: batch, scannedTo } satisfies Pending
      })

    const siblingPeer = (target: string) =>
      Effect.flatMap(topologies.current, (topology) => {
        const nodeId = target.slice(siblingPrefix.length)
        const region = Topology.findRegion(topology, options.regionId)
        const node = region === undefined ? undefined : Topology.regionNodes(region).find((candidate) => candidate.id === nodeId)
        return node === undefined ? Effect.fail(`sibling node '${nodeId}' is no longer in the topology`) : Effect.succeed({ regionId: options.regionId, nodeId, endpoint: node.endpoint })
      })

    /** Sends once to one node of the target region (or to the sibling node). */
    const sendOnce = (target: string, request: Message.ReplicateBatch): Effect.Effect<Message.BatchAck, SendFailure> =>
      Effect.gen(function* () {
        const peer = target.startsWith(siblingPrefix)
          ? yield* Effect.mapError(siblingPeer(target), transient)
          : yield* Effect.map(Effect.mapError(router.pickNode(target, { probe: true }), (error) => transient(`no node to send to: ${error.message}`)), (route) => ({
              regionId: route.regionId,
              nodeId: route.nodeId,
              endpoint: route.endpoint
            }))
        const response = yield* Effect.mapError(network.send(peer, request, settings.requestTimeoutMs), (error: NetworkError) => transient(`${error.reason}: ${error.message}`))
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
        const first = pending.changes[0]!.position
        const request: Message.ReplicateBatch = {
          _tag: "ReplicateBatch",
          batchId: `${options.regionId}>${target}:${first}-${pending.changes[pending.changes.length - 1]!.position}`,
          fromRegion: options.regionId,
          fromNode: options.nodeId,
          changes: pending.changes.map((entry) => entry.change)
        }
        let failures = 0
        while (true) {
          const startedMs = yield* clock.physicalMs
          const outcome = yield* Effect.either(sendOnce(target, request))
          if (outcome._tag === "Right") return { ack: outcome.right, durationMs: (yield* clock.physicalMs) - startedMs }
          if (outcome.left.forGood) return yield* refusedForGood(target, pending, outcome.left)
          failures++
          metrics.replicationFailed(target)
          metrics.targetConnected(target, false)
          yield* updateTarget(target, (stats) => ({ ...stats, failures: stats.failures + 1, consecutiveFailures: failures, lastError: outcome.left.message }))
          yield* Effect.logDebug(`replication to ${target} failed (${failures}): ${outcome.left.message}`)
          yield* Effect.sleep(Duration.millis(backoffMs(settings, failures, random)))
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

    /** Waits for work: new log entries, and for a partial batch at most `flushDelayMs` more. */
    // The nodes of a region share its store but each has its own feed, so a change that another
    // node of the region committed or applied wakes only that node's feed. The store's log end is
    // the truth; the feed is only the fast wake-up, and a re-read every `retryDelayMaxMs` bounds
    // how long such a change can wait for this region's leader.
    const awaitWork = (cursor: number) =>
      Effect.gen(function* () {
        if ((yield* store.logEnd) <= cursor) {
          yield* feed.awaitBeyond(cursor, settings.retryDelayMaxMs)
        }
        if ((yield* store.logEnd) - cursor < settings.batchSize) {
          yield* feed.awaitBeyond(cursor + settings.batchSize - 1, settings.flushDelayMs)
        }
      })

    /** Records an acknowledged batch: counters, metrics and the lag it measured. */
    const acknowledged = (target: string, pending: Pending, sent: Sent) =>
      Effect.gen(function* () {
        const oldestCommitMs = Math.min(...pending.changes.map((entry) => entry.change.committedAtMs))
        const lagMs = Math.max(0, sent.ack.appliedAtMs - oldestCommitMs)
        metrics.batchReplicated(target, pending.changes.length, sent.durationMs)
        metrics.targetConnected(target, true)
        metrics.lag(target, lagMs)
        yield* updateTarget(target, (stats) => ({
          ...stats,
          changesReplicated: stats.changesReplicated + pending.changes.length,
          batches: stats.batches + 1,
          consecutiveFailures: 0,
          lagMs,
          lastError: undefined
        }))
      })

    /**
     * Moves the durable cursor past batches in log order as they are acknowledged (they may be
     * acknowledged out of order), freeing a slot of the window for each.
     */
    const advanceInOrder = (target: string, inOrder: Queue.Queue<InFlight>, window: Effect.Semaphore) =>
      Effect.gen(function* () {
        const batch = yield* Queue.take(inOrder)
        const sent = yield* Deferred.await(batch.sent)
        if (sent !== undefined) yield* acknowledged(target, batch.pending, sent)
        yield* store.advanceCursor(target, batch.pending.scannedTo).pipe(
          Effect.catchAll((error) => Effect.logWarning(`moving the cursor towards ${target} failed (a restart resends from the last one): ${error.message}`))
        )
        const caughtUp = batch.pending.scannedTo >= (yield* feed.logEnd)
        if (caughtUp) metrics.lag(target, 0)
        yield* updateTarget(target, (stats) => ({ ...stats, cursor: batch.pending.scannedTo, lagMs: caughtUp ? 0 : stats.lagMs }))
        yield* window.release(1)
      })

    /**
     * Ships the log to one target with up to `batchesInFlightMax` batches in flight: each batch
     * is collected after the previous one (log order), sent on its own fiber until acknowledged,
     * and the cursor follows the acknowledgements in log order. The receiver may apply batches
     * out of order; that is safe because an origin's later change to a tuple always supersedes
     * its earlier ones (see `VersionVector`), and applying is idempotent.
     */
    const runTarget = (target: string): Effect.Effect<never> =>
      Effect.scoped(
        Effect.gen(function* () {
          yield* updateTarget(target, (stats) => stats)
          const window = yield* Effect.makeSemaphore(settings.batchesInFlightMax ?? batchesInFlightMaxDefault)
          const inOrder = yield* Queue.unbounded<InFlight>()
          yield* Effect.forkScoped(Effect.forever(advanceInOrder(target, inOrder, window)))
          let next = yield* Effect.orElseSucceed(store.getCursor(target), () => 0)
          while (true) {
            yield* window.take(1)
            const collected = yield* Effect.either(Effect.zipRight(awaitWork(next), collect(target, next)))
            if (collected._tag === "Left") {
              // A store failure skips this round; the capped delay bounds how often it is retried.
              yield* window.release(1)
              yield* Effect.logWarning(`replication round towards ${target} failed: ${collected.left.message}`)
              yield* Effect.sleep(Duration.millis(settings.retryDelayMaxMs))
              continue
            }
            const pending = collected.right
            const sent = yield* Deferred.make<Sent | undefined>()
            yield* Queue.offer(inOrder, { pending, sent })
            if (pending.changes.length === 0) yield* Deferred.succeed(sent, undefined)
            else yield* Effect.forkScoped(Effect.flatMap(sendUntilAcknowledged(target, pending), (result) => Deferred.succeed(sent, result)))
            next = pending.scannedTo
          }
        })
      ).pipe(Effect.annotateLogs({ target }))

    /** Starts and stops per-target fibers as the topology changes. */
    const run: Effect.Effect<never> = Effect.scoped(
      Effect.gen(function* () {
        const fibers = yield* FiberMap.make<string, never>()
        const running = new Set<string>()
        yield* topologies.changes.pipe(
          Stream.runForEach((topology) =>
            Effect.gen(function* () {
              const wanted = new Set(targetsFor(topology, options))
              metrics.targetsTotal(Topology.targetsOf(topology, options.regionId).length)
              for (const target of [...running]) {
                if (wanted.has(target)) continue
                running.delete(target)
                yield* FiberMap.remove(fibers, target)
              }
              for (const target of wanted) {
                if (running.has(target)) continue
                running.add(target)
                yield* FiberMap.run(fibers, target, runTarget(target))
              }
            })
          )
        )
        return yield* Effect.never
      })
    )

    const stats = Effect.map(Ref.get(targets), (all) => {
      const list = [...all.values()].sort((a, b) => (a.target < b.target ? -1 : 1))
      return {
        changesReplicated: list.reduce((sum, target) => sum + target.changesReplicated, 0),
        failures: list.reduce((sum, target) => sum + target.failures, 0),
        targets: list
      }
    })

    return { run, stats } satisfies Agent["Type"]
  })

/** The agent as a layer. */
export const layer = (options: {
  readonly regionId: string
  readonly nodeId: string
  readonly settings: Settings
  readonly storeShape: StoreShape
}): Layer.Layer<
  Agent,
  never,
  | Store.Store
  | ChangeFeed.ChangeFeed
  | Network.Network
  | Router.Router
  | TopologyManager.TopologyManager
  | Clock.Clock
  | Metrics.Metrics
  | Random.Random
> => Layer.effect(Agent, make(options))
