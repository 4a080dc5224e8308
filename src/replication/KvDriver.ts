/**
 * The narrow ordered key-value driver that every Store backend implements: string keys in
 * lexicographic order, values of one representation `V` (text for the byte-oriented backends),
 * and serializable transactions. `Store.ts` adds the key layout once for all backends and
 * `StoreEncoding.ts` the value representation, so a new backend (embedded, FoundationDB)
 * writes only these few functions.
 *
 * This file also holds the in-memory backend. Its committed data lives in a `MemoryDisk` that
 * outlives the node using it, so a simulated crash (interrupting the node's fibers) keeps
 * every committed transaction and loses exactly the ones that had not committed. It keeps the
 * Store's values as decoded, deeply frozen objects (`StoreEncoding.decoded`): nothing reaches
 * it from bytes, so there is nothing to validate, and a frozen value cannot be changed through
 * a reference the writer kept, which would let uncommitted state survive a simulated crash.
 */
import { Effect, Option, RedBlackTree, Order } from "effect"
import type { StoreError } from "./Errors.js"

/** Reads and buffered writes inside one transaction. Writes become visible on commit. */
export interface KvTransaction<V = string> {
  readonly get: (key: string) => Effect.Effect<V | undefined, StoreError>
  /** Entries with `start <= key < end` in key order, at most `limit` of them. */
  readonly range: (
    start: string,
    end: string,
    limit: number
  ) => Effect.Effect<ReadonlyArray<readonly [string, V]>, StoreError>
  readonly set: (key: string, value: V) => void
  readonly remove: (key: string) => void
}

/** An ordered key-value backend. */
export interface KvDriver<V = string> {
  /**
   * Runs `body` as one serializable transaction and commits its writes atomically and
   * durably before succeeding. A failed or interrupted body commits nothing. Backends with
   * optimistic concurrency may run `body` more than once, so it must not have other effects.
   */
  readonly transact: <A, E, R>(
    body: (tx: KvTransaction<V>) => Effect.Effect<A, E, R>
  ) => Effect.Effect<A, E | StoreError, R>
  /**
   * Runs a read-only `body` over committed data without waiting for writers, when the backend
   * can (each read sees some committed state). Store uses it for its read-only methods so log
   * tailing and health checks never queue behind a durable commit.
   */
  readonly read?: <A, E, R>(body: (tx: KvTransaction<V>) => Effect.Effect<A, E, R>) => Effect.Effect<A, E | StoreError, R>
  /** Releases the backend. */
  readonly close: Effect.Effect<void>
}

/** A transaction view that refuses writes: a read-only body writing is a broken invariant. */
export const readOnly = <V>(
  get: KvTransaction<V>["get"],
  range: KvTransaction<V>["range"]
): KvTransaction<V> => ({
  get,
  range,
  set: (key) => {
    throw new Error(`write of '${key}' inside a read-only store access`)
  },
  remove: (key) => {
    throw new Error(`removal of '${key}' inside a read-only store access`)
  }
})

/** Marks a key a memory transaction removed (a value may be any object, even null). */
const removed: unique symbol = Symbol("removed")

/** The committed contents of an in-memory store; survives the crash of the node using it. */
export interface MemoryDisk {
  /** Committed values, as `StoreEncoding.decoded` represents them. */
  tree: RedBlackTree.RedBlackTree<string, unknown>
  /**
   * One writer at a time per disk, not per driver: several nodes of a region may share a
   * disk (the regional database) and must still see serializable transactions.
   */
  readonly lock: Effect.Semaphore
  /** Number of committed transactions, for tests and simulator statistics. */
  commits: number
}

/** A fresh, empty disk. */
export const makeMemoryDisk = (): MemoryDisk => ({
  tree: RedBlackTree.empty<string, unknown>(Order.string),
  commits: 0,
  lock: Effect.unsafeMakeSemaphore(1)
})

/** Entries of a tree in `[start, end)`, at most `limit`. */
const treeRange = (
  tree: RedBlackTree.RedBlackTree<string, unknown>,
  start: string,
  end: string,
  limit: number
): Array<readonly [string, unknown]> => {
  const out: Array<readonly [string, unknown]> = []
  for (const [key, value] of RedBlackTree.greaterThanEqual(tree, start)) {
    if (key >= end || out.length >= limit) break
    out.push([key, value])
  }
  return out
}

/**
 * An in-memory driver over a disk. Transactions run one at a time (the disk's lock), so every
 * transaction sees the state the previous one committed: serializable by construction.
 */
export const makeMemory = (disk: MemoryDisk): Effect.Effect<KvDriver<unknown>> =>
  Effect.sync(() => ({
    transact: (body) =>
      disk.lock.withPermits(1)(
        Effect.suspend(() => {
          const pending = new Map<string, unknown>()
          const snapshot = disk.tree
          const tx: KvTransaction<unknown> = {
            get: (key) =>
              Effect.sync(() => {
                const buffered = pending.get(key)
                if (buffered !== undefined) return buffered === removed ? undefined : buffered
                return Option.getOrUndefined(RedBlackTree.findFirst(snapshot, key))
              }),
            range: (start, end, limit) => Effect.sync(() => overlayRange(snapshot, pending, start, end, limit)),
            set: (key, value) => void pending.set(key, value),
            remove: (key) => void pending.set(key, removed)
          }
          return Effect.tap(body(tx), () =>
            Effect.sync(() => {
              if (pending.size === 0) return
              disk.tree = applyWrites(disk.tree, pending)
              disk.commits++
            })
          )
        })
      ),
    read: (body) =>
      Effect.suspend(() => {
        const snapshot = disk.tree
        return body(
          readOnly(
            (key) => Effect.sync(() => Option.getOrUndefined(RedBlackTree.findFirst(snapshot, key))),
            (start, end, limit) => Effect.sync(() => treeRange(snapshot, start, end, limit))
          )
        )
      }),
    close: Effect.void
  }))

const applyWrites = (
  tree: RedBlackTree.RedBlackTree<string, unknown>,
  pending: ReadonlyMap<string, unknown>
): RedBlackTree.RedBlackTree<string, unknown> => {
  let next = tree
  for (const [key, value] of pending) {
    next = RedBlackTree.removeFirst(next, key)
    if (value !== removed) next = RedBlackTree.insert(next, key, value)
  }
  return next
}

/** A range read that sees the transaction's own buffered writes. */
const overlayRange = (
  tree: RedBlackTree.RedBlackTree<string, unknown>,
  pending: ReadonlyMap<string, unknown>,
  start: string,
  end: string,
  limit: number
): Array<readonly [string, unknown]> => {
  const touched = [...pending.keys()].filter((key) => key >= start && key < end)
  if (touched.length === 0) return treeRange(tree, start, end, limit)
  const merged = new Map(treeRange(tree, start, end, limit + touched.length))
  for (const key of touched) {
    const value = pending.get(key)
    if (value === removed || value === undefined) merged.delete(key)
    else merged.set(key, value)
  }
  return [...merged.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).slice(0, limit)
}
