/**
 * The last log entries a Store committed, kept decoded in memory so that readers of the log's
 * tail (the agent, once per target, and the change feed's catch-up) take them from here
 * instead of reading and decoding the backend again. Only durable entries are added (after
 * their transaction committed), so nothing read from here can be lost by a crash.
 *
 * It holds what this Store instance appended and nothing else: the nodes sharing a regional
 * store each see only their own appends, so a read stops at the first position missing here and
 * the caller reads on from the backend. The bound is `entriesMax` entries; the lowest
 * positions leave first.
 */
import type * as Store from "./Store.js"

/** Entries kept at most: several agent batches per target, a few MB of decoded objects. */
export const entriesMax = 16_384

/** The recent entries of one Store. */
export interface RecentLog {
  /** Adds entries that just became durable. */
  readonly add: (entries: ReadonlyArray<Store.LogEntry>) => void
  /**
   * Entries from `from` on, consecutive, at most `limit`; undefined when `from` is not held
   * (the caller reads the backend).
   */
  readonly read: (from: number, limit: number) => ReadonlyArray<Store.LogEntry> | undefined
}

/** An empty recent log. */
export const make = (): RecentLog => {
  // A ring indexed by position: an entry evicts the one `entriesMax` positions below it, so the
  // lowest positions leave first without a map's hashing and deletes on every append.
  const slots: Array<Store.LogEntry | undefined> = new Array(entriesMax)
  const held = (position: number): Store.LogEntry | undefined => {
    const entry = slots[position % entriesMax]
    return entry?.position === position ? entry : undefined
  }
  return {
    add: (entries) => {
      for (const entry of entries) {
        const slot = entry.position % entriesMax
        // An entry arriving after one `entriesMax` positions above it is already evicted.
        if ((slots[slot]?.position ?? 0) < entry.position) slots[slot] = entry
      }
    },
    read: (from, limit) => {
      if (held(from) === undefined) return undefined
      const entries: Array<Store.LogEntry> = []
      for (let position = from; entries.length < limit; position++) {
        const entry = held(position)
        if (entry === undefined) break
        entries.push(entry)
      }
      return entries
    }
  }
}
