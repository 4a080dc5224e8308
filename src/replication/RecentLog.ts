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

/** Slots a recent log starts with; it doubles up to `entriesMax` as entries arrive. */
const slotsInitial = 64

/** An empty recent log. */
export const make = (): RecentLog => {
  // A ring indexed by position: an entry evicts the one `entriesMax` positions below it, so the
  // lowest positions leave first without a map's hashing and deletes on every append. It starts
  // small and doubles while two entries that the full-size ring keeps apart would share a slot:
  // a simulated run starts thousands of stores, most of which append a few hundred entries.
  let slots: Array<Store.LogEntry | undefined> = new Array(slotsInitial).fill(undefined)
  const held = (position: number): Store.LogEntry | undefined => {
    const entry = slots[position % slots.length]
    return entry?.position === position ? entry : undefined
  }
  const grow = () => {
    const larger: Array<Store.LogEntry | undefined> = new Array(slots.length * 2).fill(undefined)
    for (const entry of slots) if (entry !== undefined) larger[entry.position % larger.length] = entry
    slots = larger
  }
  const put = (entry: Store.LogEntry) => {
    let occupant = slots[entry.position % slots.length]
    // Two positions share a slot of the full-size ring only when they are a multiple of
    // `entriesMax` apart; any other two sharing one here need a larger ring.
    while (occupant !== undefined && (occupant.position - entry.position) % entriesMax !== 0 && slots.length < entriesMax) {
      grow()
      occupant = slots[entry.position % slots.length]
    }
    // An entry arriving after one `entriesMax` positions above it is already evicted.
    if ((occupant?.position ?? 0) < entry.position) slots[entry.position % slots.length] = entry
  }
  return {
    add: (entries) => {
      for (const entry of entries) put(entry)
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
