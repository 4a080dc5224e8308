/**
 * The in-memory tail of the log: consecutive entries from a held position, nothing for a
 * position it does not hold, and a bound on what it keeps.
 */
import { describe, expect, it } from "@effect/vitest"
import * as fc from "fast-check"
import * as RecentLog from "../../src/replication/RecentLog.js"
import type * as Store from "../../src/replication/Store.js"

const entry = (position: number): Store.LogEntry => ({
  position,
  change: {
    id: { origin: "us/n/t", seq: position },
    op: "insert",
    tuple: { vault: "acme", resource: "document:readme", relation: "viewer", subject: `user:u${position}` },
    timestamp: { physicalMs: position, logical: 0 },
    originRegion: "us",
    originNode: "n",
    originRevision: position,
    committedAtMs: position,
    context: {}
  },
  receivedFrom: null,
  appliedAtMs: position
})

const positions = (entries: ReadonlyArray<Store.LogEntry> | undefined) => entries?.map((held) => held.position)

describe("RecentLog", () => {
  it("reads consecutive held entries from a held position, stopping at the first gap or the limit", () => {
    const recent = RecentLog.make()
    recent.add([entry(5), entry(6)])
    recent.add([entry(8)])
    recent.add([entry(7)])
    recent.add([entry(10)])
    expect(positions(recent.read(5, 100))).toEqual([5, 6, 7, 8])
    expect(positions(recent.read(6, 2))).toEqual([6, 7])
    expect(positions(recent.read(10, 100))).toEqual([10])
    expect(recent.read(4, 100)).toBeUndefined()
    expect(recent.read(9, 100)).toBeUndefined()
  })

  it("keeps at most entriesMax entries, dropping the lowest positions first", () => {
    const recent = RecentLog.make()
    const total = RecentLog.entriesMax + 10
    for (let position = 1; position <= total; position += 100) {
      recent.add(Array.from({ length: Math.min(100, total - position + 1) }, (_, index) => entry(position + index)))
    }
    expect(recent.read(10, 1)).toBeUndefined()
    expect(positions(recent.read(11, 1))).toEqual([11])
    expect(recent.read(11, Number.MAX_SAFE_INTEGER)!.length).toBe(RecentLog.entriesMax)
  })

  it("an entry arriving after one entriesMax positions above it does not evict that one", () => {
    const recent = RecentLog.make()
    const high = 1 + RecentLog.entriesMax
    recent.add([entry(high)])
    recent.add([entry(1)])
    expect(recent.read(1, 10)).toBeUndefined()
    expect(positions(recent.read(high, 10))).toEqual([high])
  })

  it("holds an added position unless a higher one a multiple of entriesMax above it was added, however it grew", () => {
    const span = 3 * RecentLog.entriesMax
    // Batches of runs of consecutive positions, as a store appends them, in any order.
    const run = fc.tuple(fc.integer({ min: 1, max: span }), fc.integer({ min: 1, max: 600 }))
    fc.assert(
      fc.property(fc.array(fc.array(run, { minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 12 }), fc.array(fc.integer({ min: 1, max: span + 600 }), { maxLength: 20 }), (batches, probes) => {
        const recent = RecentLog.make()
        const added = new Set<number>()
        for (const batch of batches) {
          const entries = batch.flatMap(([first, count]) => Array.from({ length: count }, (_, i) => entry(first + i)))
          recent.add(entries)
          for (const held of entries) added.add(held.position)
        }
        const highest = Math.max(...added)
        const holds = (position: number): boolean => {
          if (!added.has(position)) return false
          for (let above = position + RecentLog.entriesMax; above <= highest; above += RecentLog.entriesMax) if (added.has(above)) return false
          return true
        }
        for (const from of [...probes, ...added].slice(0, 60)) {
          const read = recent.read(from, 1_000)
          if (!holds(from)) {
            expect(read).toBeUndefined()
            continue
          }
          const expected: Array<number> = []
          for (let position = from; expected.length < 1_000 && holds(position); position++) expected.push(position)
          expect(positions(read)).toEqual(expected)
        }
      }),
      { numRuns: 60 }
    )
  })
})
