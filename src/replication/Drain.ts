/**
 * The drain of a node that is asked to stop (SIGTERM to `serve`, a graceful crash in the
 * simulator): once its public API is withdrawn, the agent keeps shipping until every target it
 * ships to (siblings included on per-node stores) acknowledged the log as it stood when the drain
 * began, or the timeout passed. It first seals the node's writes (`Replica.sealWrites`): a write
 * still committing when the stop's request grace ran out is not acknowledged once durable, as it
 * may lie past the log end the drain reads. Both `serve` and the simulator's nodes run this one
 * drain, so the simulator judges what production runs.
 */
import { Clock as EffectClock, Effect } from "effect"
import * as Agent from "./Agent.js"
import type { StoreError } from "./Errors.js"
import * as Replica from "./Replica.js"
import * as Store from "./Store.js"
import * as TopologyManager from "./TopologyManager.js"

/** How long a stop waits for every target to acknowledge the whole log, unless told otherwise. */
export const timeoutMsDefault = 5_000
/** How often the drain looks at the targets' cursors. */
export const pollMs = 50
/** How often a drain whose discovery round failed tries another (a DNS lookup each time). */
export const refreshRetryMs = 250

/** Whose log drains where: the node, and whether it replicates at all. */
export interface Settings {
  readonly regionId: string
  readonly nodeId: string
  readonly storeShape: Agent.StoreShape
  /** A node with replication off has no target to wait for. */
  readonly enabled: boolean
  readonly timeoutMs: number
}

/** How far the drain got. */
export interface Drained {
  readonly complete: boolean
  /** The log end when the drain began: every write this node acknowledged lies at or before it. */
  readonly logEnd: number
  readonly behind: ReadonlyArray<{ readonly target: string; readonly cursor: number }>
  /**
   * No discovery round worked during the drain, so the node did not know which siblings it had
   * to wait for: the drain is not complete, whatever the cursors of the nodes it knew say.
   */
  readonly targetsUnknown: boolean
}

/**
 * One look at the cursors of the targets this node ships to: the agent's own list, so on
 * per-node stores every node drains its log to every target region and every sibling (not only
 * the region's leader, which would let any other node exit with changes only its disk holds).
 */
const look = (settings: Settings, drainTo: number): Effect.Effect<Drained, StoreError, Store.Store | TopologyManager.TopologyManager> =>
  Effect.gen(function* () {
    const store = yield* Store.Store
    const topology = yield* (yield* TopologyManager.TopologyManager).current
    const targets = settings.enabled ? Agent.targetsFor(topology, settings) : []
    const cursors = yield* Effect.forEach(targets, (target) => Effect.map(store.getCursor(target), (cursor) => ({ target, cursor })))
    const behind = cursors.filter(({ cursor }) => cursor < drainTo)
    return { complete: behind.length === 0, logEnd: drainTo, behind, targetsUnknown: false }
  })

/** What a drain runs before it looks at the cursors; both succeed at once by default. */
export interface Refresh<R> {
  /** Once, first (the reloads sent before the stop, applied). */
  readonly once: Effect.Effect<void, never, R>
  /** A discovery round under DNS discovery: true when it worked, so the node's targets are as current as it can know them. */
  readonly discover: Effect.Effect<boolean, never, R>
}

/**
 * Waits until every target acknowledged the log as it stood when the drain began, or the timeout
 * passed, after `refresh`. The public API is already withdrawn, so that covers every write this
 * node acknowledged. Changes peers keep sending meanwhile are still shipped while the agent runs
 * but not waited for: their senders hold them, and under a steady load a drain to the moving log
 * end would wait for a moment when every cursor happens to be at the end at once.
 *
 * A failed discovery round is tried again every `refreshRetryMs`, and until one works the drain
 * is not complete (unless the log is empty). Before December 6, 2026 a failed round left the
 * node draining to the siblings it knew, and one that had known none (DNS out since before its
 * sibling's record appeared) reported at once that every target had its log: swarm seed
 * 62000390, 37 acknowledged changes on its disk alone.
 */
export const run = <R = never>(
  settings: Settings,
  refresh: Refresh<R> = { once: Effect.void, discover: Effect.succeed(true) }
): Effect.Effect<Drained, never, Replica.Replica | Store.Store | TopologyManager.TopologyManager | R> =>
  Effect.gen(function* () {
    // No write is acknowledged from here on, so the log end read below holds every one that was.
    yield* Effect.flatMap(Replica.Replica, (replica) => replica.sealWrites)
    yield* refresh.once
    // Under DNS discovery a round first, so siblings that appeared since the last one are waited for too (`Discovery.roundNow`).
    let known = yield* refresh.discover
    const startedMs = yield* EffectClock.currentTimeMillis
    let discoveredMs = startedMs
    let drainTo: number | undefined = undefined
    while (true) {
      if (!known && (yield* EffectClock.currentTimeMillis) - discoveredMs >= refreshRetryMs) {
        known = yield* refresh.discover
        discoveredMs = yield* EffectClock.currentTimeMillis
      }
      const looked: { readonly drainTo: number | undefined; readonly drained: Drained } = yield* lookOnce(settings, drainTo)
      drainTo = looked.drainTo
      // A log that was empty when the drain began holds no write to lose, whoever the siblings are.
      const nothingToShip = drainTo === 0
      const drained: Drained = { ...looked.drained, complete: looked.drained.complete && (known || nothingToShip), targetsUnknown: !known && !nothingToShip }
      if (drained.complete || (yield* EffectClock.currentTimeMillis) - startedMs >= settings.timeoutMs) return drained
      yield* Effect.sleep(pollMs)
    }
  })

/** One look, reading the log end first if the drain has not got it yet (a store that does not answer is a look with no result). */
const lookOnce = (
  settings: Settings,
  given: number | undefined
): Effect.Effect<{ readonly drainTo: number | undefined; readonly drained: Drained }, never, Store.Store | TopologyManager.TopologyManager> =>
  Effect.gen(function* () {
    const drainTo = given ?? (yield* Effect.orElseSucceed(Effect.flatMap(Store.Store, (store) => store.logEnd), () => undefined))
    const unknown: Drained = { complete: false, logEnd: drainTo ?? 0, behind: [], targetsUnknown: false }
    const drained = drainTo === undefined ? unknown : yield* Effect.orElseSucceed(look(settings, drainTo), () => unknown)
    return { drainTo, drained }
  })

/** The drain's outcome in one line, for the log. */
export const describe = (drained: Drained, timeoutMs: number): string =>
  drained.complete
    ? `drained: every target acknowledged the log up to position ${drained.logEnd}`
    : `drain timed out after ${timeoutMs} ms: ${[
        ...(drained.targetsUnknown ? ["no discovery round worked, so the siblings to drain to are unknown"] : []),
        ...drained.behind.map(({ target, cursor }) => `${target} acknowledged ${cursor} of ${drained.logEnd}`)
      ].join(", ") || "the store did not answer"}`
