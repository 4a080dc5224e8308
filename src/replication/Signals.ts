/**
 * Per-key signals: a fiber takes the signal of a key and waits on it; `fire` completes it for
 * every fiber that took it and starts a fresh one for the next takers. Nothing is kept for a
 * key nobody took since it last fired. The agent ends retry waits with them (an acknowledgement
 * from a target, a heartbeat answer from a region).
 */
import { Deferred, Effect } from "effect"

/** The signals of one kind, by key. */
export interface Signals<K> {
  /** The signal `fire(key)` completes next; take it before the event you wait for could happen. */
  readonly next: (key: K) => Effect.Effect<Deferred.Deferred<void>>
  /** Completes the current signal of `key`, if anyone took it. */
  readonly fire: (key: K) => Effect.Effect<void>
}

/** Empty signals. */
export const make = <K>(): Signals<K> => {
  const pending = new Map<K, Deferred.Deferred<void>>()
  return {
    next: (key) =>
      Effect.suspend(() => {
        const current = pending.get(key)
        if (current !== undefined) return Effect.succeed(current)
        return Effect.tap(Deferred.make<void>(), (created) => Effect.sync(() => pending.set(key, created)))
      }),
    fire: (key) =>
      Effect.suspend(() => {
        const current = pending.get(key)
        if (current === undefined) return Effect.void
        pending.delete(key)
        return Deferred.succeed(current, undefined)
      })
  }
}
