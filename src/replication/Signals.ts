/**
 * Per-key signals: a fiber takes the signal of a key and waits on it; `fire` opens it for
 * every fiber that took it and starts a fresh one for the next takers. Nothing is kept for a
 * key nobody took since it last fired. The agent ends retry waits with them (an acknowledgement
 * from a target, a heartbeat answer from a region).
 *
 * A signal is a `Handoff.Gate`, not a `Deferred`: one is taken per batch sent, and a Deferred
 * costs several times as much to make and complete (see `bench:sim`'s notes); a gate can also
 * be waited on together with others and a timer in one suspension (`Handoff.awaitAny`).
 */
import { Effect } from "effect"
import * as Handoff from "./Handoff.js"

/** The signals of one kind, by key. */
export interface Signals<K> {
  /** The signal `fire(key)` opens next; take it before the event you wait for could happen. */
  readonly next: (key: K) => Effect.Effect<Handoff.Gate>
  /** Opens the current signal of `key`, if anyone took it. */
  readonly fire: (key: K) => Effect.Effect<void>
  /** The same, done at once: for callers that fire several signals, or fire inside a step of their own. */
  readonly unsafeFire: (key: K) => void
}

/** Empty signals. */
export const make = <K>(): Signals<K> => {
  const pending = new Map<K, Handoff.Gate>()
  const unsafeFire = (key: K): void => {
    const current = pending.get(key)
    if (current === undefined) return
    pending.delete(key)
    current.unsafeOpen()
  }
  return {
    next: (key) =>
      Effect.sync(() => {
        let current = pending.get(key)
        if (current === undefined) pending.set(key, (current = new Handoff.Gate()))
        return current
      }),
    fire: (key) => Effect.sync(() => unsafeFire(key)),
    unsafeFire
  }
}
