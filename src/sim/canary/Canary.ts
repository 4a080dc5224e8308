/**
 * Canaries: deliberately broken variants of the replicator that the checkers must catch (a
 * check that cannot fail proves nothing). They are built here, around the shared code, never
 * inside it:
 *
 * - `keep-local`: each region resolves conflicts by keeping its own change whenever one of
 *   the concurrent candidates is local (the original implementation's "keep local" rule,
 *   which left regions with different values forever); otherwise last-write-wins.
 * - `ack-without-apply`: the receiving node's network answers a share of replication batches
 *   with a `BatchAck` without handing them to the replica, so the sender advances its cursor
 *   past changes the target never stored.
 * - `broken-winner`: every node resolves last-write-wins in reverse (the smallest timestamp
 *   wins). Regions agree with each other, so only a judge with its own rule catches it.
 * - `broken-clock`: the first node's Clock reads an hour ahead of its wall clock, so its
 *   writes (and, through HLC, everything stamped after them) carry timestamps far in the future.
 * - `send-dies`: a share of every node's batch sends die (a defect below the agent, as grpc-js
 *   threw on a closed channel) instead of failing. The agent retries them and logs each as a bug;
 *   the run must say so (`defects`) even though it converges.
 * - `ask-dies`: a share of every node's heartbeat requests die below the heartbeater, inside the
 *   fiber that sends them (this wrapped network has no callback form, so `Network.caller` sends
 *   each on a fiber of its own); nothing catches that, and only the watch on every fiber
 *   (`DeadFibers`) says so (`defects`).
 * - `drain-early`: a graceful stop's drain looks at the targets' cursors once and says every
 *   target caught up, whatever they acknowledged (as a drain that waited for the region's
 *   targets and forgot the siblings, or read a cursor it had not persisted yet, would). The node
 *   exits with changes that only its disk holds; only the `drained` check sees it before a wipe
 *   takes them.
 * - `no-rank-check`: nodes start without the start-up check of SourcePriority's ranks against
 *   their store (`Ranks`): a node restarted with a removed region's rank dropped (`configure`)
 *   runs, and the first change it applies that is concurrent with one of that region's dies in
 *   the resolver (`defects`), where `serve` and the simulator's nodes refuse to start.
 * - `ack-before-durable`: every store transaction returns as soon as its body has run, while
 *   its writes are still on their way to the disk (the commit goes on in a fiber of its own),
 *   and reads see those writes, as a store opened without fsync would. The node acknowledges a
 *   client's write, and hands its changes to the agent and the feed, before they are durable:
 *   the defect behind the acknowledged writes real processes lost. A commit that is slow
 *   (`store` faults) when the node crashes, or that fails, takes the write with it, and the
 *   node numbers its next changes with the lost ones' ids again: `acknowledged` must see that
 *   the change under such an id is not the one acknowledged (`unique_ids` sees the reuse only
 *   where a copy of the lost change reached another region first).
 * - `origin-keys-unwritten`: a node's store never writes its dictionary's keys (`k/<origin
 *   key>`, see `OriginIds`) while its values hold the numbers they give, as a store that wrote a
 *   number's key after its first use, and crashed or failed a commit in between, would leave its
 *   disk. The node reads its own values from the numbers it keeps in memory; only a reader of
 *   the disk itself sees that they name nothing (`store_integrity`, through the judges' own
 *   reader). It bites where disks keep text and have one writer (`wire: bytes`, per-node disks).
 * - `no-store-watch`: nodes run without their store watchdog (`StoreWatch`): a node whose store
 *   stalled (`stall`) answers heartbeats and takes requests that wait for ever, and never
 *   converges (`liveness`, on store-stall.yaml), as the real node did before the watchdog.
 */
import { Deferred, Effect, Fiber, Layer } from "effect"
import type * as Change from "../../replication/Change.js"
import * as Clock from "../../replication/Clock.js"
import * as ConflictResolver from "../../replication/ConflictResolver.js"
import type * as Message from "../../replication/Message.js"
import * as Network from "../../replication/Network.js"
import type * as Drain from "../../replication/Drain.js"
import type * as KvDriver from "../../replication/KvDriver.js"
import * as OriginIds from "../../replication/OriginIds.js"

/** The canaries a run can be built with. */
export const names = [
  "keep-local",
  "ack-without-apply",
  "broken-winner",
  "broken-clock",
  "send-dies",
  "ask-dies",
  "drain-early",
  "no-rank-check",
  "ack-before-durable",
  "origin-keys-unwritten",
  "no-store-watch"
] as const
export type Name = (typeof names)[number]

/** A resolver that keeps the local region's candidate when there is one. */
export const keepLocal = (regionId: string): ConflictResolver.ConflictResolver => ({
  strategy: "LastWriteWins",
  resolve: (candidates: ReadonlyArray<Change.Change>) => {
    const local = candidates.filter((candidate) => candidate.originRegion === regionId)
    return ConflictResolver.lastWriteWins.resolve(local.length > 0 ? local : candidates)
  }
})

/** A resolver whose last-write-wins order is reversed: the oldest concurrent change wins. */
export const brokenWinner: ConflictResolver.ConflictResolver = {
  strategy: "LastWriteWins",
  resolve: (candidates: ReadonlyArray<Change.Change>) => {
    const first = candidates[0]
    if (first === undefined) throw new Error("brokenWinner called with no candidates")
    return candidates.reduce((best, candidate) => (ConflictResolver.lastWriteWinsOrder(candidate, best) < 0 ? candidate : best), first)
  }
}

/** How far ahead of its wall clock the broken clock reads: an hour. */
export const clockAheadMs = 3_600_000

/** Wraps a node's Clock layer so that its physical source, and so every timestamp it stamps, runs `aheadMs` ahead. */
export const clockAhead =
  (aheadMs: number) =>
  (inner: Layer.Layer<Clock.Clock>): Layer.Layer<Clock.Clock> =>
    Layer.effect(
      Clock.Clock,
      Effect.flatMap(Clock.Clock, (clock) => Clock.make({ mode: clock.mode, physicalMs: Effect.map(clock.physicalMs, (ms) => ms + aheadMs) }))
    ).pipe(Layer.provide(inner))

/** Share of batches acknowledged without being applied. */
const unappliedShare = 0.25

/** Wraps a node's Network so that its handler skips some batches but acknowledges them. */
export const ackWithoutApply =
  (regionId: string, nodeId: string, random: () => number) =>
  (inner: Layer.Layer<Network.Network>): Layer.Layer<Network.Network> =>
    Layer.effect(
      Network.Network,
      Effect.map(Network.Network, (network) => ({
        send: network.send,
        serve: (handler: Network.Handler) =>
          network.serve((request) => {
            if (request._tag !== "ReplicateBatch" || random() >= unappliedShare) return handler(request)
            const ack: Message.BatchAck = { _tag: "BatchAck", batchId: request.batchId, region: regionId, node: nodeId, applied: request.changes.length, ignored: 0, appliedAtMs: 0 }
            return Effect.succeed(ack)
          })
      }))
    ).pipe(Layer.provide(inner))

/** Share of batch sends that die. */
const dyingShare = 0.1

/** Wraps a node's Network so that some of its requests of kind `tag` die instead of failing. */
const requestsDie =
  (tag: Message.Request["_tag"], random: () => number) =>
  <E, R>(inner: Layer.Layer<Network.Network, E, R>): Layer.Layer<Network.Network, E, R> =>
    Layer.effect(
      Network.Network,
      Effect.map(Network.Network, (network) => ({
        serve: network.serve,
        send: (peer: Network.Peer, request: Message.Request, timeoutMs: number) =>
          request._tag === tag && random() < dyingShare ? Effect.die(new Error(`canary: the ${tag} send died`)) : network.send(peer, request, timeoutMs)
      }))
    ).pipe(Layer.provide(inner))

/** Wraps a node's Network so that some of its batch sends die instead of failing. */
export const sendDies = (random: () => number) => requestsDie("ReplicateBatch", random)

/** Wraps a node's Network so that some of its heartbeat requests die instead of failing. */
export const askDies = (random: () => number) => requestsDie("Heartbeat", random)

/** A drain that gives up at its first look and reports itself complete. */
export const drainEarly =
  (drain: (timeoutMs: number) => Effect.Effect<Drain.Drained>) =>
  (_timeoutMs: number): Effect.Effect<Drain.Drained> =>
    Effect.map(drain(0), (drained) => ({ ...drained, complete: true, behind: [], targetsUnknown: false }))

/** A store driver whose transactions drop every write of the dictionary's keys (`k/...`) and keep the rest. */
export const originKeysUnwritten = <V>(driver: KvDriver.KvDriver<V>): KvDriver.KvDriver<V> => {
  const dropping = <T extends KvDriver.KvTransaction<V>>(tx: T): T => ({ ...tx, set: (key: string, value: V) => (key.startsWith(OriginIds.prefix) ? undefined : tx.set(key, value)) })
  const unwritten = <A, E, R>(body: (tx: KvDriver.KvTransaction<V>) => Effect.Effect<A, E, R>) => (tx: KvDriver.KvTransaction<V>) => body(dropping(tx))
  const within = driver.transactWithin
  const now = driver.transactNow
  return {
    ...driver,
    transact: (body) => driver.transact(unwritten(body)),
    ...(within === undefined ? {} : { transactWithin: (body, restore) => within(unwritten(body), restore) }),
    ...(now === undefined ? {} : { transactNow: (body) => now((tx) => body(dropping(tx))) })
  }
}

/**
 * A store driver that counts writes as committed once they are handed over to the disk, as
 * lmdb opened with `noSync` would: a transaction succeeds once its body has run (the body runs
 * inside the real transaction, in a fiber of its own that goes on to the commit), and reads see
 * what was handed over, durable or not (they run as transactions too, so a reader never sees
 * less than a writer was told). A body that fails, or a transaction refused before its body
 * ran, fails as before.
 */
export const ackBeforeDurable = <V>(driver: KvDriver.KvDriver<V>): KvDriver.KvDriver<V> => {
  const transact = <A, E, R>(body: (tx: KvDriver.KvTransaction<V>) => Effect.Effect<A, E, R>) =>
    Effect.flatMap(Deferred.make<A, E>(), (ran) =>
      Effect.flatMap(
        Effect.forkDaemon(driver.transact((tx) => Effect.onExit(body(tx), (exit) => Deferred.done(ran, exit)))),
        (commit) => Effect.raceFirst(Deferred.await(ran), Fiber.join(commit))
      )
    )
  return { transact, read: transact, close: driver.close }
}
