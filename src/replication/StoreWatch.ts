/**
 * The store watchdog: a node whose store stopped ending transactions ends itself, so that its
 * supervisor starts it again (Kubernetes restarts the pod's container; the simulator and the
 * chaos harness do the same, `Startup.restartAfterExitMs`).
 *
 * Why: in a CI run of December 6, 2026 (`graceful-stop-wipe` on real processes), a node
 * restarted on a wiped disk committed its first 10 log entries and then nothing more for 40 s.
 * Every client write to it timed out, every batch sent to it too, and its bootstrap never
 * finished, while it answered heartbeats as if healthy: the run never converged. The embedded
 * store keeps one lmdb transaction in flight and the writes of later ones behind it
 * (`KvLmdb.GroupCommit`), so one lmdb commit that never settles holds every later one. A stalled
 * disk (a hung device, a lost network volume) looks the same from inside the process.
 *
 * Ending the process loses nothing: a transaction acknowledges nothing before its commit is
 * durable, and what waited behind the stalled one never was. A new process opens the same disk
 * and goes on from what it holds; the clients and the peers' agents send again what they did not
 * see acknowledged.
 *
 * Stalled: transactions pending and none ended for `stallMs`. A busy store ends transactions all
 * the time, so load alone never looks stalled. Two looks further apart than twice the interval
 * (the process was paused, SIGSTOP, or starved of CPU) start the count again: a pause is not a
 * stall of the store.
 */
import { Data, Duration, Effect } from "effect"
import * as Clock from "./Clock.js"
import * as Store from "./Store.js"

/** The node's store has not ended a transaction for too long: the node ends (and is started again). */
export class StoreStalled extends Data.TaggedError("StoreStalled")<{ readonly message: string }> {}

export interface Settings {
  /** Transactions pending and none ended for this long is a stall. */
  readonly stallMs: number
  /** How often the watchdog looks. */
  readonly checkEveryMs: number
}

/**
 * Defaults: far beyond any commit a working disk takes (an fsync under load takes milliseconds, a
 * slow disk hundreds of them), and well within what a stalled node may cost before its peers and
 * clients notice it as down. A look every 2 s, not every second: each look is a timer event of
 * every simulated node, and the simulator's runs are counted in events.
 */
export const settingsDefault: Settings = { stallMs: 15_000, checkEveryMs: 2_000 }

/** What the watchdog knows between two looks. */
export interface Watch {
  /** When the store was last seen idle or ending transactions. */
  movingAtMs: number
  lookedAtMs: number
  ended: number
}

/** One look: the stall's length so far (0 when there is none), counted from the last look that saw the store idle or moving. */
export const look = (watch: Watch, settings: Settings, nowMs: number, progress: Store.StoreProgress): number => {
  const paused = nowMs - watch.lookedAtMs > 2 * settings.checkEveryMs
  watch.lookedAtMs = nowMs
  if (progress.pending === 0 || progress.ended !== watch.ended || paused) {
    watch.movingAtMs = nowMs
    watch.ended = progress.ended
    return 0
  }
  return nowMs - watch.movingAtMs
}

/** Looks every `checkEveryMs` for ever; fails once the store has stalled for `stallMs`. */
export const run = (settings: Settings): Effect.Effect<never, StoreStalled, Store.Store> =>
  Effect.gen(function* () {
    const store = yield* Store.Store
    const startMs = yield* Clock.monotonicMs
    const watch: Watch = { movingAtMs: startMs, lookedAtMs: startMs, ended: (yield* store.progress).ended }
    while (true) {
      yield* Effect.sleep(Duration.millis(settings.checkEveryMs))
      const progress = yield* store.progress
      const stalledMs = look(watch, settings, yield* Clock.monotonicMs, progress)
      if (stalledMs < settings.stallMs) continue
      const backend = yield* store.describeCommits
      const message = `the store has ended no transaction for ${Math.round(stalledMs)} ms with ${progress.pending} pending (a commit that never completes holds every later one)${backend === undefined ? "" : ` [${backend}]`}: ending this node so that its supervisor starts it again; nothing pending was acknowledged`
      // A warning here: what ends the node (`serve`'s exit, the simulator's) says it as an error.
      yield* Effect.logWarning(message)
      return yield* new StoreStalled({ message })
    }
  })
