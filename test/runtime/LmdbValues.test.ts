/**
 * The reused buffer lmdb reads a group's values from (`LmdbValues`): within a group no value's
 * bytes are ever written over, whatever the sizes; a group that outgrows the buffer moves to a
 * new one; only the next group (`reset`) or a failure (`discard`) starts over. The lmdb-level
 * test in `Store.contract.test.ts` reads values back through lmdb, where a value written over
 * after lmdb's writer thread copied it goes unseen; this one holds the rule itself.
 */
import { describe, expect, it } from "@effect/vitest"
import * as fc from "fast-check"
import { LmdbValues } from "../../src/runtime/LmdbValues.js"

type Region = Buffer & { readonly start: number; readonly end: number }

/** What lmdb is given for one value: the buffer and the value's place in it, as they are at the put. */
interface Given {
  readonly buffer: Region
  readonly start: number
  readonly end: number
  readonly bytes: Buffer
}

const give = (values: LmdbValues, text: string): Given => {
  const wrapped = values.bytesOf(text) as unknown as Record<string, Region>
  const buffer = Object.values(wrapped)[0]!
  return { buffer, start: buffer.start, end: buffer.end, bytes: Buffer.from(buffer.subarray(buffer.start, buffer.end)) }
}

const overlaps = (a: Given, b: Given): boolean => a.buffer === b.buffer && a.start < b.end && b.start < a.end

describe("LmdbValues", () => {
  it("within a group every value keeps its own bytes, in the same or a new buffer, until the next group", () => {
    // Sizes up to 600 KB with multi-byte characters: groups outgrow the 1 MB first buffer.
    const text = fc.oneof(
      fc.string({ unit: "binary", maxLength: 40 }),
      fc.tuple(fc.constantFrom("v", "\u00e9", "\u4e2d", "\u{1F600}"), fc.integer({ min: 1, max: 150_000 })).map(([unit, count]) => unit.repeat(count))
    )
    fc.assert(
      fc.property(fc.array(fc.array(text, { maxLength: 12 }), { minLength: 1, maxLength: 4 }), (groups) => {
        const values = new LmdbValues()
        for (const group of groups) {
          values.reset()
          const given = group.map((value) => give(values, value))
          given.forEach((value, index) => {
            // Each value is its text's UTF-8, still there after the rest of the group was written.
            expect(Buffer.from(value.buffer.subarray(value.start, value.end)).equals(Buffer.from(group[index]!, "utf8"))).toBe(true)
            for (const other of given.slice(index + 1)) expect(overlaps(value, other)).toBe(false)
          })
        }
      }),
      { numRuns: 60 }
    )
  })

  it("a new group starts at the beginning of the buffer, and a failure gives a fresh one", () => {
    const values = new LmdbValues()
    const first = give(values, "first")
    values.reset()
    const again = give(values, "again")
    expect(again.buffer).toBe(first.buffer)
    expect(again.start).toBe(0)
    values.discard()
    const afterFailure = give(values, "after")
    expect(afterFailure.buffer).not.toBe(first.buffer)
    expect(afterFailure.start).toBe(0)
  })

  it("a buffer grown past 8 MB by one group is given back at the next", () => {
    const values = new LmdbValues()
    values.reset()
    // 5 MB (a buffer of its size), then 5 MB more (a buffer of twice that).
    give(values, "x".repeat(5 << 20))
    const grown = give(values, "y".repeat(5 << 20))
    expect(grown.buffer.length).toBeGreaterThan(8 << 20)
    values.reset()
    const next = give(values, "small")
    expect(next.buffer).not.toBe(grown.buffer)
    expect(next.buffer.length).toBe(1 << 20)
  })
})
