/**
 * A region's durable state read straight off its simulated disk, for the checkers: every
 * tuple's frontier and the whole change log. It reads the stored encoding (the Store's JSON
 * values) without going through the Store service, so it does not depend on a node running
 * and cannot be fooled by one; it is only called outside the simulation's hot path.
 */
import { RedBlackTree } from "effect"
import type * as Change from "../replication/Change.js"
import type * as KvDriver from "../replication/KvDriver.js"
import type * as Store from "../replication/Store.js"
import * as TraceHash from "./TraceHash.js"
import * as Tuple from "../replication/Tuple.js"
import type * as TupleState from "../replication/TupleState.js"

/** One region's tuples (by `Tuple.key`) and log. */
export interface RegionState {
  readonly regionId: string
  /** The disk this state was read from: a node id (per-node stores) or the region id (shared). */
  readonly replica: string
  readonly tuples: ReadonlyMap<string, { readonly tuple: Tuple.Tuple; readonly frontier: ReadonlyArray<Change.Change> }>
  readonly log: ReadonlyArray<Store.LogEntry>
}

const tuplePrefix = "t/"
const logPrefix = "l/"

/** Every entry of the disk whose key starts with `prefix`, in key order. */
const entries = function* (disk: KvDriver.MemoryDisk, prefix: string): Generator<readonly [string, string]> {
  for (const [key, value] of RedBlackTree.greaterThanEqual(disk.tree, prefix)) {
    if (!key.startsWith(prefix)) return
    yield [key, value]
  }
}

/** Reads a region's whole state. */
export const read = (regionId: string, disk: KvDriver.MemoryDisk, replica: string = regionId): RegionState => {
  const tuples = new Map<string, { readonly tuple: Tuple.Tuple; readonly frontier: ReadonlyArray<Change.Change> }>()
  for (const [, value] of entries(disk, tuplePrefix)) {
    const state = JSON.parse(value) as TupleState.TupleState
    const first = state.frontier[0]
    if (first !== undefined) tuples.set(Tuple.key(first.tuple), { tuple: first.tuple, frontier: state.frontier })
  }
  const log: Array<Store.LogEntry> = []
  for (const [, value] of entries(disk, logPrefix)) log.push(JSON.parse(value) as Store.LogEntry)
  return { regionId, replica, tuples, log }
}

/**
 * Digests per vault of a region's tuple states (the change ids of every tuple's frontier),
 * cheap enough to compare while the run goes on. Stored values are not compared as text: a
 * version vector's key order depends on how the change arrived. `cache` remembers the ids of
 * values already parsed, so a probe only parses tuples that changed since the last one.
 */
export const digest = (disk: KvDriver.MemoryDisk, cache: Map<string, { readonly value: string; readonly ids: string }>): ReadonlyMap<string, string> => {
  const hashes = new Map<string, TraceHash.TraceHash>()
  for (const [key, value] of entries(disk, tuplePrefix)) {
    let known = cache.get(key)
    if (known === undefined || known.value !== value) {
      const state = JSON.parse(value) as TupleState.TupleState
      known = { value, ids: state.frontier.map((change) => `${change.id.origin}#${change.id.seq}`).join(",") }
      cache.set(key, known)
    }
    const vault = key.slice(tuplePrefix.length, key.indexOf("\u0000"))
    let hash = hashes.get(vault)
    if (hash === undefined) {
      hash = new TraceHash.TraceHash()
      hashes.set(vault, hash)
    }
    hash.string(key).string(known.ids)
  }
  return new Map([...hashes].map(([vault, hash]) => [vault, hash.hex()]))
}
