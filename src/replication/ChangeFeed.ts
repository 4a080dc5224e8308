/**
 * The change feed: every committed change of this region, in log order, to whoever listens.
 *
 * The durable log in the Store is the source of truth; the feed only adds low-latency
 * delivery on top. Each subscriber gets a bounded buffer (`buffer_size`). When a buffer
 * overflows the subscriber is not silently skipped ahead, as in the original: it receives an
 * explicit `Lagged` event and then re-reads the missed range from the durable log, so it sees
 * every change exactly once and in order. `dropped` counts the buffer overflows.
 */
import { Context, Effect, Queue, Scope, Stream } from "effect"
import * as Change from "./Change.js"
import type { StoreError } from "./Errors.js"
import * as Handoff from "./Handoff.js"
import * as Store from "./Store.js"
import * as Tuple from "./Tuple.js"

/** Which changes a subscriber wants; every present field must match. */
export interface Filter {
  readonly vault?: string
  readonly resourceType?: string
  readonly relation?: string
  readonly operation?: Change.Operation
}

/** What a subscriber receives. */
export type FeedEvent =
  | { readonly _tag: "Change"; readonly entry: Store.LogEntry }
  /** The subscriber's buffer overflowed; delivery resumes from the durable log at `resumeFrom`. */
  | { readonly _tag: "Lagged"; readonly resumeFrom: number }

/** Counters reported by /healthz. */
export interface FeedStats {
  readonly published: number
  readonly subscribers: number
  readonly dropped: number
}

/** The ChangeFeed service of one node. */
export class ChangeFeed extends Context.Tag("inferadb/ChangeFeed")<
  ChangeFeed,
  {
    /** Announces entries that were just committed to the durable log. */
    /** Announces new log entries, at once: a transaction that commits in one step announces them in it (`Store.transactionNow`). */
    readonly publish: (entries: ReadonlyArray<Store.LogEntry>) => void
    /**
     * Subscribes for the lifetime of the scope. Without `from` delivery starts with the next
     * published change; with `from` it starts at that log position (1 = the beginning).
     */
    readonly subscribe: (options?: {
      readonly filter?: Filter
      readonly from?: number
    }) => Effect.Effect<Stream.Stream<FeedEvent, StoreError>, StoreError, Scope.Scope>
    /** Waits until the log holds an entry after `position`, or at most `timeoutMs` when given, or until `orUntil` opens (with a timeout only). */
    readonly awaitBeyond: (position: number, timeoutMs?: number, orUntil?: Handoff.Gate) => Effect.Effect<void>
    /** The last published log position. */
    readonly logEnd: Effect.Effect<number>
    readonly stats: Effect.Effect<FeedStats>
  }
>() {}

/** Whether an entry passes a filter. */
export const matches = (filter: Filter, entry: Store.LogEntry): boolean => {
  const change = entry.change
  return (
    (filter.vault === undefined || filter.vault === change.tuple.vault) &&
    (filter.resourceType === undefined || filter.resourceType === Tuple.resourceType(change.tuple)) &&
    (filter.relation === undefined || filter.relation === change.tuple.relation) &&
    (filter.operation === undefined || filter.operation === change.op)
  )
}

interface Subscriber {
  readonly filter: Filter
  readonly queue: Queue.Queue<Store.LogEntry>
  overflowed: boolean
}

/** Log entries read per step while a subscriber catches up from the durable log. */
const catchUpPageSize = 256

/** Builds a feed over the node's Store with a per-subscriber buffer of `bufferSize` entries. */
export const make = (options: { readonly bufferSize: number }) =>
  Effect.gen(function* () {
    const store = yield* Store.Store
    // The last published position, and the fibers waiting for it to pass a position. A plain
    // waiter list (not a stream per wait): the agent waits once per round on the hot path.
    let end = yield* store.logEnd
    const waiters = new Set<{ readonly after: number; readonly wake: Handoff.Gate }>()
    // Plain counters, changed in the step that publishes: a publish is part of a write's or an
    // applied batch's commit step (`Store.transactionNow`).
    let published = 0
    let dropped = 0
    const subscribers = new Set<Subscriber>()

    // A dropping queue takes what fits and drops the rest, which is what overflowed.
    const offer = (subscriber: Subscriber, entries: ReadonlyArray<Store.LogEntry>) => {
      let accepted = 0
      for (const entry of entries) if (subscriber.queue.unsafeOffer(entry)) accepted++
      if (accepted === entries.length) return
      subscriber.overflowed = true
      dropped += entries.length - accepted
    }

    const publish = (entries: ReadonlyArray<Store.LogEntry>) => {
      if (entries.length === 0) return
      for (const subscriber of subscribers) {
        const matching = entries.filter((entry) => matches(subscriber.filter, entry))
        if (matching.length > 0) offer(subscriber, matching)
      }
      published += entries.length
      end = Math.max(end, entries[entries.length - 1]!.position)
      for (const waiter of waiters) {
        if (end <= waiter.after) continue
        waiters.delete(waiter)
        waiter.wake.unsafeOpen()
      }
    }

    const subscribe = (subscribeOptions: { readonly filter?: Filter; readonly from?: number } = {}) =>
      Effect.gen(function* () {
        const queue = yield* Queue.dropping<Store.LogEntry>(options.bufferSize)
        const subscriber: Subscriber = { filter: subscribeOptions.filter ?? {}, queue, overflowed: false }
        const start = subscribeOptions.from ?? end + 1
        yield* Effect.acquireRelease(
          Effect.sync(() => subscribers.add(subscriber)),
          () => Effect.zipRight(Effect.sync(() => subscribers.delete(subscriber)), Queue.shutdown(queue))
        )
        return deliveries(store, subscriber, start)
      })

    return {
      publish,
      subscribe,
      awaitBeyond: (position: number, timeoutMs?: number, orUntil?: Handoff.Gate) =>
        Effect.suspend(() => {
          if (end > position) return Effect.void
          const waiter = { after: position, wake: new Handoff.Gate() }
          waiters.add(waiter)
          // The waiter leaves the list in the step that ends its wait, however it ends.
          return Handoff.awaitAny(orUntil !== undefined && timeoutMs !== undefined ? [waiter.wake, orUntil] : [waiter.wake], timeoutMs, () => waiters.delete(waiter))
        }),
      logEnd: Effect.sync(() => end),
      stats: Effect.sync(() => ({ published, dropped, subscribers: subscribers.size }))
    }
  })

/**
 * The stream one subscriber reads: catch up from the log while behind, then take from the
 * buffer, skipping anything the catch-up already delivered; on overflow, say so and catch up.
 */
const deliveries = (store: Store.Store["Type"], subscriber: Subscriber, start: number): Stream.Stream<FeedEvent, StoreError> =>
  Stream.suspend(() => deliveriesFrom(store, subscriber, start))

const deliveriesFrom = (store: Store.Store["Type"], subscriber: Subscriber, start: number): Stream.Stream<FeedEvent, StoreError> => {
  // `delivered` is the last log position handed out; `catchingUp` is true while reading the log.
  const state = { delivered: start - 1, catchingUp: true }
  const step: Effect.Effect<ReadonlyArray<FeedEvent>, StoreError> = Effect.gen(function* () {
    if (subscriber.overflowed) {
      subscriber.overflowed = false
      state.catchingUp = true
      return [{ _tag: "Lagged", resumeFrom: state.delivered + 1 }]
    }
    if (state.catchingUp) {
      const page = yield* store.readLog(state.delivered + 1, catchUpPageSize)
      if (page.length === 0) {
        state.catchingUp = false
        return []
      }
      state.delivered = page[page.length - 1]!.position
      return page.filter((entry) => matches(subscriber.filter, entry)).map((entry) => ({ _tag: "Change", entry }) as const)
    }
    // Everything buffered at once (at least one entry), so a burst reaches the stream as one chunk.
    const taken = yield* Queue.takeBetween(subscriber.queue, 1, catchUpPageSize)
    const events: Array<FeedEvent> = []
    for (const entry of taken) {
      if (entry.position <= state.delivered) continue
      state.delivered = entry.position
      events.push({ _tag: "Change", entry })
    }
    return events
  })
  return Stream.repeatEffect(step).pipe(Stream.flattenIterables)
}
