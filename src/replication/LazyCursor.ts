/**
 * A replication cursor persisted lazily: the agent moves it in memory as batches are
 * acknowledged, and one background fiber per target writes the latest position to the Store,
 * with at most one write in flight. While a write waits for its durable commit, newer
 * positions coalesce into the next write, so the agent's rounds never wait for the store and
 * a burst of acknowledgements costs one cursor write per commit, not one per batch.
 *
 * With a relay scope (`Store.advanceCursor`), a write moves the stored cursor only while the store
 * records that scope.
 *
 * What a crash costs: the stored cursor is behind the acknowledged one by at most the batches
 * acknowledged since the last cursor write became durable (with the store's group commit, about
 * one commit interval's worth, of the order of the batches in flight). A restart resends them,
 * and the receiver ignores them: applying a change twice is a no-op.
 */
import { Duration, Effect, type Scope } from "effect"
import * as Handoff from "./Handoff.js"
import * as Store from "./Store.js"

/** One target's cursor. */
export interface LazyCursor {
  /** Moves the cursor to `position` (a smaller one than the last is ignored); persisted soon after. A plain call: the agent moves it inside a step of its own. */
  readonly advance: (position: number) => void
}

/**
 * Starts the writer of `target`'s cursor, starting from `initial`; it stops when the scope
 * closes. A write the store fails is tried again after `retryDelayMs`: waiting for the next
 * advance instead left the stored cursor behind for good once the log went quiet, and with it
 * the acting primary's "caught up" check, so the role was never handed back (swarm seed 1000300).
 *
 * The writer waits on a gate that any advance opens, so advances during a write cause one more
 * write. A sliding queue of one did the same at about twice the Effect
 * operations per acknowledged batch (a tenth of a swarm's operations went to this loop).
 */
export const make = (
  target: string,
  initial: number,
  retryDelayMs: number,
  scope?: ReadonlyArray<string>
): Effect.Effect<LazyCursor, never, Store.Store | Scope.Scope> =>
  Effect.gen(function* () {
    const store = yield* Store.Store
    const moved = new Handoff.Gate()
    let latest = initial
    let written = initial
    const retry = (error: { readonly message: string }) =>
      Effect.logWarning(`persisting the cursor towards ${target} failed, retrying (a restart resends from the last one): ${error.message}`).pipe(
        Effect.zipRight(Effect.sleep(Duration.millis(retryDelayMs)))
      )
    // Another node sharing the store recorded another relay scope: this writer's acknowledgements
    // move nothing. Its fiber is replaced when its agent reloads that topology, and the new one
    // sends from the stored cursor; a node whose configuration differs for good keeps it there
    // (a restart resends). Said once per writer, not at every commit.
    let warned = false
    const refused = (position: number) =>
      Effect.suspend(() => {
        written = position
        if (warned) return Effect.void
        warned = true
        return Effect.logWarning(`the cursor towards ${target} was not moved to ${position}: the store records another relay scope than this agent's`)
      })
    const writeLatest: Effect.Effect<void> = Effect.suspend(() => {
      const position = latest
      if (position <= written) {
        moved.unsafeClose()
        return moved.await
      }
      return Effect.matchEffect(store.advanceCursor(target, position, scope), {
        onSuccess: (moved) => (moved ? Effect.sync(() => void (written = position)) : refused(position)),
        onFailure: retry
      })
    })
    yield* Effect.forkScoped(Handoff.repeat(writeLatest))
    return {
      advance: (position) => {
        if (position <= latest) return
        latest = position
        moved.unsafeOpen()
      }
    }
  })
