/**
 * A region's durable state read straight off its simulated disk, for the checkers: every
 * tuple's frontier and the whole change log. It reads the stored encoding (`StoredForm`, the
 * Store's compact JSON arrays) without going through the Store service, so it does not depend on a node running
 * and cannot be fooled by one; it is only called outside the simulation's hot path.
 */
import { Either, RedBlackTree } from "effect"
import type * as Change from "../replication/Change.js"
import type * as KvDriver from "../replication/KvDriver.js"
import type * as Store from "../replication/Store.js"
import * as StoredForm from "../replication/StoredForm.js"
import * as Oracle from "./Oracle.js"
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

/** A stored value as the Store wrote it; a value that does not decode is a broken invariant of the run. */
const decoded = <A>(key: string, value: Either.Either<A, string>): A => {
  if (value._tag === "Left") throw new Error(`the simulated disk holds an undecodable value under '${key}': ${value.left}`)
  return value.right
}

/** Reads a region's whole state. */
export const read = (regionId: string, disk: KvDriver.MemoryDisk, replica: string = regionId): RegionState => {
  const tuples = new Map<string, { readonly tuple: Tuple.Tuple; readonly frontier: ReadonlyArray<Change.Change> }>()
  for (const [key, value] of entries(disk, tuplePrefix)) {
    const state = decoded(key, StoredForm.decodeTupleState(value))
    const first = state.frontier[0]
    if (first !== undefined) tuples.set(Tuple.key(first.tuple), { tuple: first.tuple, frontier: state.frontier })
  }
  const log: Array<Store.LogEntry> = []
  for (const [key, value] of entries(disk, logPrefix)) log.push(decoded(key, StoredForm.decodeLogEntry(value)))
  return { regionId, replica, tuples, log }
}

/**
 * Digests per vault of a region's tuple states, cheap enough to compare while the run goes on:
 * per tuple, the answer the rule gives over the stored changes (present or absent) and what
 * each frontier change is (id, operation, timestamp, origin node), so two regions agree only
 * when they serve the same answers from the same changes, even if ids were to collide. Stored
 * values are not compared as text: a version vector's key order depends on how the change
 * arrived. `cache` remembers what was computed for values already parsed, so a probe only
 * parses tuples that changed since the last one.
 */
export const digest = (
  disk: KvDriver.MemoryDisk,
  cache: Map<string, { readonly value: string; readonly summary: string }>,
  rules: Oracle.Rules
): ReadonlyMap<string, string> => {
  const hashes = new Map<string, TraceHash.TraceHash>()
  for (const [key, value] of entries(disk, tuplePrefix)) {
    let known = cache.get(key)
    if (known === undefined || known.value !== value) {
      known = { value, summary: summaryOf(decoded(key, StoredForm.decodeTupleState(value)), rules) }
      cache.set(key, known)
    }
    const vault = key.slice(tuplePrefix.length, key.indexOf("\u0000"))
    let hash = hashes.get(vault)
    if (hash === undefined) {
      hash = new TraceHash.TraceHash()
      hashes.set(vault, hash)
    }
    hash.string(key).string(known.summary)
  }
  return new Map([...hashes].map(([vault, hash]) => [vault, hash.hex()]))
}

/** One tuple's answer and frontier as text, for the digest. */
const summaryOf = (state: TupleState.TupleState, rules: Oracle.Rules): string => {
  const answer = Oracle.present(rules, state.frontier) ? "present" : "absent"
  const changes = state.frontier.map((change) => `${Oracle.idOf(change)}:${change.op}:${change.timestamp.physicalMs}.${change.timestamp.logical}:${change.originNode}`)
  return `${answer}|${changes.join(",")}`
}
