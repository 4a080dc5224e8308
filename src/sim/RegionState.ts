/**
 * A region's durable state read straight off its simulated disk, for the checkers: every
 * tuple's frontier and the whole change log. It reads the stored values without going through
 * the Store service, so it does not depend on a node running and cannot be fooled by one; it is
 * only called outside the simulation's hot path. A disk holds them decoded and frozen (see
 * `StoreEncoding.decoded`), or as the byte-oriented backends' text when the run keeps it so
 * (`StoreFaults.StoredAs`), which the judge's own reader of the documented layout decodes
 * (`StoredLayout`), not the Store's codec.
 */
import type * as Change from "../replication/Change.js"
import * as DiskTree from "../replication/DiskTree.js"
import type * as KvDriver from "../replication/KvDriver.js"
import type * as Store from "../replication/Store.js"
import * as Oracle from "./Oracle.js"
import * as StoredLayout from "./StoredLayout.js"
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
  /** The log's end as the store's counter records it (`m/logEnd`; 0 when absent); unknown where nodes are judged through their API. */
  readonly logEnd?: number
  /** Stored values the judges' reader refused (left out of `tuples` and `log`), for `store_integrity`. */
  readonly unreadable?: ReadonlyArray<StoredLayout.UnreadableValue>
}

const tuplePrefix = "t/"
const logPrefix = "l/"
const originNamePrefix = "k/"
const logEndKey = "m/logEnd"

/** Every entry of the disk whose key starts with `prefix`, in key order. */
const entries = function* (disk: KvDriver.MemoryDisk, prefix: string): Generator<readonly [string, unknown]> {
  for (const [key, value] of DiskTree.from(disk.tree, prefix)) {
    if (!key.startsWith(prefix)) return
    yield [key, value]
  }
}

/** A stored tuple state's frontier and its tuple: decoded, or text whose tuple is the key's. */
const tupleStateAt = (key: string, value: unknown, names: StoredLayout.OriginNames): { readonly tuple: Tuple.Tuple; readonly frontier: ReadonlyArray<Change.Change> } | undefined => {
  if (typeof value === "string") {
    const tuple = StoredLayout.tupleOfKey(key, key)
    const frontier = StoredLayout.frontier(value, key, tuple, names)
    return frontier.length === 0 ? undefined : { tuple, frontier }
  }
  const state = value as TupleState.TupleState
  const first = state.frontier[0]
  return first === undefined ? undefined : { tuple: first.tuple, frontier: state.frontier }
}

/** The disk's dictionary of origin keys (`k/` keys), for text values that hold numbers in their place. */
const originNames = (disk: KvDriver.MemoryDisk, refused: Array<StoredLayout.UnreadableValue> = []): Map<number, string> => {
  const names = new Map<number, string>()
  for (const [key, value] of entries(disk, originNamePrefix)) StoredLayout.readable(key, refused, () => StoredLayout.addOriginName(names, key, value as string, key))
  return names
}

/** Reads a region's whole state. */
export const read = (regionId: string, disk: KvDriver.MemoryDisk, replica: string = regionId): RegionState => {
  const refused: Array<StoredLayout.UnreadableValue> = []
  const names = originNames(disk, refused)
  const tuples = new Map<string, { readonly tuple: Tuple.Tuple; readonly frontier: ReadonlyArray<Change.Change> }>()
  for (const [key, value] of entries(disk, tuplePrefix)) {
    const state = StoredLayout.readable(key, refused, () => tupleStateAt(key, value, names))
    if (state !== undefined) tuples.set(Tuple.key(state.tuple), state)
  }
  const log: Array<Store.LogEntry> = []
  for (const [key, value] of entries(disk, logPrefix)) {
    const entry = typeof value === "string" ? StoredLayout.readable(key, refused, () => StoredLayout.logEntry(value, key, names)) : (value as Store.LogEntry)
    if (entry !== undefined) log.push(entry)
  }
  const stored = DiskTree.get(disk.tree, logEndKey)
  const logEnd = typeof stored === "string" ? StoredLayout.readable(logEndKey, refused, () => StoredLayout.counter(stored, logEndKey)) : typeof stored === "number" ? stored : 0
  return { regionId, replica, tuples, log, logEnd: logEnd ?? 0, ...(refused.length === 0 ? {} : { unreadable: refused }) }
}

/**
 * Digests per vault of a region's tuple states, cheap enough to compare while the run goes on:
 * per tuple, the answer the rule gives over the stored changes (present or absent) and what
 * each frontier change is (id, operation, timestamp, origin node), so two regions agree only
 * when they serve the same answers from the same changes, even if ids were to collide. Stored
 * values are not compared as text: a version vector's key order depends on how the change
 * arrived. `cache` remembers what was computed for values already seen (a changed tuple is a
 * new frozen object), so a probe only summarizes tuples that changed since the last one. A text
 * value's origin numbers mean what the disk's dictionary says when it is read (a wiped disk
 * numbers keys afresh), so a summary is reused only under the same dictionary.
 */
export const digest = (
  disk: KvDriver.MemoryDisk,
  cache: Map<string, { readonly value: unknown; readonly names: string; readonly summary: string }>,
  rules: Oracle.Rules
): ReadonlyMap<string, string> => {
  const hashes = new Map<string, TraceHash.TraceHash>()
  const names = originNames(disk)
  const spelled = [...names].join()
  for (const [key, value] of entries(disk, tuplePrefix)) {
    let known = cache.get(key)
    if (known === undefined || known.value !== value || known.names !== spelled) {
      const refused: Array<StoredLayout.UnreadableValue> = []
      const state = StoredLayout.readable(key, refused, () => tupleStateAt(key, value, names))
      known = { value, names: spelled, summary: refused.length > 0 ? `unreadable|${refused[0]!.why}` : summaryOf(state?.frontier ?? [], rules) }
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
const summaryOf = (frontier: ReadonlyArray<Change.Change>, rules: Oracle.Rules): string => {
  const answer = Oracle.present(rules, frontier) ? "present" : "absent"
  const changes = frontier.map((change) => `${Oracle.idOf(change)}:${change.op}:${change.timestamp.physicalMs}.${change.timestamp.logical}:${change.originNode}`)
  return `${answer}|${changes.join(",")}`
}
