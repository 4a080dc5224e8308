/**
 * The narrow ordered key-value driver that every Store backend implements: string keys in
 * lexicographic order, string values, and serializable transactions. `Store.ts` adds the key
 * layout, encoding and validation once for all backends, so a new backend (embedded,
 * FoundationDB) writes only these few functions.
 *
 * This file also holds the in-memory backend. Its committed data lives in a `MemoryDisk` that
 * outlives the node using it, so a simulated crash (interrupting the node's fibers) keeps
 * every committed transaction and loses exactly the ones that had not committed.
 */
import { Effect, Either, Option, RedBlackTree, Order } from "effect"
import type { StoreError } from "./Errors.js"

/** Reads and buffered writes inside one transaction. Writes become visible on commit. */
export interface KvTransaction {
  readonly get: (key: string) => Effect.Effect<string | undefined, StoreError>
  /**
   * The same read, done at once, on backends whose reads are synchronous (memory, lmdb). The
   * Store's hot paths read through it when present: a read then costs no Effect of its own.
   */
  readonly getNow?: (key: string) => Either.Either<string | undefined, StoreError>
  /** Entries with `start <= key < end` in key order, at most `limit` of them. */
  readonly range: (
    start: string,
    end: string,
    limit: number
  ) => Effect.Effect<ReadonlyArray<readonly [string, string]>, StoreError>
  readonly set: (key: string, value: string) => void
  readonly remove: (key: string) => void
}

/** An ordered key-value backend. */
export interface KvDriver {
  /**
   * Runs `body` as one serializable transaction and commits its writes atomically and
   * durably before succeeding. A failed or interrupted body commits nothing. Backends with
   * optimistic concurrency may run `body` more than once, so it must not have other effects.
   */
  readonly transact: <A, E, R>(
    body: (tx: KvTransaction) => Effect.Effect<A, E, R>
  ) => Effect.Effect<A, E | StoreError, R>
  /**
   * Runs a read-only `body` over committed data without waiting for writers, when the backend
   * can (each read sees some committed state). Store uses it for its read-only methods so log
   * tailing and health checks never queue behind a durable commit.
   */
  readonly read?: <A, E, R>(body: (tx: KvTransaction) => Effect.Effect<A, E, R>) => Effect.Effect<A, E | StoreError, R>
  /** Releases the backend. */
  readonly close: Effect.Effect<void>
}

/** A transaction view that refuses writes: a read-only body writing is a broken invariant. */
export const readOnly = (
  get: KvTransaction["get"],
  range: KvTransaction["range"]
): KvTransaction => ({
  get,
  range,
  set: (key) => {
    throw new Error(`write of '${key}' inside a read-only store access`)
  },
  remove: (key) => {
    throw new Error(`removal of '${key}' inside a read-only store access`)
  }
})

/** The committed contents of an in-memory store; survives the crash of the node using it. */
export interface MemoryDisk {
  tree: RedBlackTree.RedBlackTree<string, string>
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
  tree: RedBlackTree.empty<string, string>(Order.string),
  commits: 0,
  lock: Effect.unsafeMakeSemaphore(1)
})

/** Entries of a tree in `[start, end)`, at most `limit`. */
const treeRange = (
  tree: RedBlackTree.RedBlackTree<string, string>,
  start: string,
  end: string,
  limit: number
): Array<readonly [string, string]> => {
  const out: Array<readonly [string, string]> = []
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
export const makeMemory = (disk: MemoryDisk): Effect.Effect<KvDriver> =>
  Effect.sync(() => ({
    transact: (body) =>
      disk.lock.withPermits(1)(
        Effect.suspend(() => {
          const pending = new Map<string, string | null>()
          const snapshot = disk.tree
          const read = (key: string): string | undefined => {
            const buffered = pending.get(key)
            if (buffered !== undefined) return buffered ?? undefined
            return Option.getOrUndefined(RedBlackTree.findFirst(snapshot, key))
          }
          const tx: KvTransaction = {
            get: (key) => Effect.sync(() => read(key)),
            getNow: (key) => Either.right(read(key)),
            range: (start, end, limit) => Effect.sync(() => overlayRange(snapshot, pending, start, end, limit)),
            set: (key, value) => void pending.set(key, value),
            remove: (key) => void pending.set(key, null)
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
  tree: RedBlackTree.RedBlackTree<string, string>,
  pending: ReadonlyMap<string, string | null>
): RedBlackTree.RedBlackTree<string, string> => {
  let next = tree
  for (const [key, value] of pending) {
    next = RedBlackTree.removeFirst(next, key)
    if (value !== null) next = RedBlackTree.insert(next, key, value)
  }
  return next
}

/** A range read that sees the transaction's own buffered writes. */
const overlayRange = (
  tree: RedBlackTree.RedBlackTree<string, string>,
  pending: ReadonlyMap<string, string | null>,
  start: string,
  end: string,
  limit: number
): Array<readonly [string, string]> => {
  const touched = [...pending.keys()].filter((key) => key >= start && key < end)
  if (touched.length === 0) return treeRange(tree, start, end, limit)
  const merged = new Map(treeRange(tree, start, end, limit + touched.length))
  for (const key of touched) {
    const value = pending.get(key)
    if (value === null || value === undefined) merged.delete(key)
    else merged.set(key, value)
  }
  return [...merged.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).slice(0, limit)
}
