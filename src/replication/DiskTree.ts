/**
 * The committed contents of an in-memory disk (`KvDriver.MemoryDisk`): string keys in
 * lexicographic order, and a value that a commit never changes in place. A commit builds the
 * next tree from the last (`withWrites`) and publishes it, so a reader that took the tree
 * before keeps reading one committed state however many commits land meanwhile: the
 * snapshot a simulated transaction reads from costs nothing to take.
 *
 * Backed by a copy-on-write B+ tree (sorted-btree): the next tree shares every node the
 * commit did not touch and copies each touched node once per commit, however many of its keys
 * the commit wrote. A persistent red-black tree, which this replaced, copied a path of about
 * 15 small nodes per key written, twice for an overwrite (remove, then insert): a quarter of
 * the bytes a write-heavy simulation allocated.
 */
import SortedBTree from "sorted-btree"

// Node's loader (and the bundle, which follows it) hands this CommonJS module's exports object
// over as the default import; vitest's loader, which honours `__esModule`, hands over the class.
const loaded: unknown = SortedBTree
const BTree = (typeof loaded === "function" ? loaded : SortedBTree.default) as typeof SortedBTree.default

/** A committed state: never changed in place (published trees are frozen). */
export type DiskTree = InstanceType<typeof BTree<string, unknown>>

// Keys are plain strings: the built-in comparison orders them by UTF-16 code units, as the
// byte-oriented backends order their UTF-8 keys for the characters our key layout uses.
const compare = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0)

/** Keys per node: a commit copies one node per level it touches, so smaller nodes copy less; 32 keeps the tree at most 3 levels deep for 30,000 keys. */
const nodeSize = 32

const frozen = (tree: DiskTree): DiskTree => {
  tree.freeze()
  return tree
}

/** A tree with no keys. */
export const empty = (): DiskTree => frozen(new BTree<string, unknown>(undefined, compare, nodeSize))

/** The value at `key`, undefined when it has none. */
export const get = (tree: DiskTree, key: string): unknown => tree.get(key)

/** Entries with `start <= key < end` in key order, at most `limit` of them. */
export const range = (tree: DiskTree, start: string, end: string, limit: number): Array<readonly [string, unknown]> => {
  const out: Array<readonly [string, unknown]> = []
  if (limit <= 0) return out
  tree.forRange(start, end, false, (key, value) => {
    out.push([key, value])
    return out.length >= limit ? { break: true } : undefined
  })
  return out
}

/** Entries from `start` on, in key order, until the caller stops. */
export const from = (tree: DiskTree, start: string): IterableIterator<[string, unknown]> => tree.entries(start)

/**
 * The tree after `writes` (key to value; a value equal to `removed` removes the key), as a new
 * tree: `tree` itself is unchanged.
 */
export const withWrites = (tree: DiskTree, writes: ReadonlyMap<string, unknown>, removed: unknown): DiskTree => {
  const next = tree.clone()
  // The clone of a frozen tree is writable: `freeze` marks the instance, not the shared nodes.
  for (const [key, value] of writes) {
    if (value === removed) next.delete(key)
    else next.set(key, value)
  }
  return frozen(next)
}
