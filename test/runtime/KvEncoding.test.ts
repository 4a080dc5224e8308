/**
 * The byte length the shared code predicts for a store key (`Store.keyBytes`, which the API's
 * tuple size check relies on) against the bytes the byte-oriented backends actually write, and
 * lmdb's key encoder (`writeKey`, `readKey`) against `encodeKey` and `decodeKey`.
 * Replay a failure with the seed fast-check prints: `FC_SEED=<seed> npx vitest run <file>`.
 */
import { describe, expect, it } from "@effect/vitest"
import fc from "fast-check"
import * as Store from "../../src/replication/Store.js"
import * as KvEncoding from "../../src/runtime/KvEncoding.js"

const seed = process.env["FC_SEED"] === undefined ? {} : { seed: Number(process.env["FC_SEED"]) }

/** Any code point, or a mix of one- to four-byte characters and lone surrogates. */
const keys = fc.oneof(fc.string({ unit: "binary" }), fc.string({ unit: fc.constantFrom("a", "\u0000", "é", "€", "🌍", "\ud800", "\udfff") }))

describe("KvEncoding", () => {
  it("Store.keyBytes is the length of every key KvEncoding writes, lone surrogates and astral characters included", () => {
    fc.assert(
      fc.property(keys, (key) => {
        expect(Store.keyBytes(key)).toBe(KvEncoding.encodeKey(key).length)
      }),
      { numRuns: 500, ...seed }
    )
  })

  it("writeKey puts encodeKey's bytes into lmdb's buffer at any offset, and readKey reads the key back", () => {
    fc.assert(
      fc.property(keys, fc.nat(16), (key, offset) => {
        const expected = KvEncoding.encodeKey(key)
        const target = Buffer.alloc(offset + expected.length + 8, 0xaa)
        const end = KvEncoding.writeKey(key, target, offset)
        expect(end).toBe(offset + expected.length)
        expect(target.subarray(offset, end)).toEqual(expected)
        // Nothing around the key is touched.
        expect([...target.subarray(0, offset), ...target.subarray(end)].every((byte) => byte === 0xaa)).toBe(true)
        expect(KvEncoding.readKey(target, offset, end)).toBe(key)
      }),
      { numRuns: 500, ...seed }
    )
  })

  it("writeKey throws a RangeError for a key that does not fit the buffer instead of cutting it short", () => {
    for (const key of ["abcdef", "ab\ud800cd"]) {
      const bytes = KvEncoding.encodeKey(key).length
      expect(() => KvEncoding.writeKey(key, Buffer.alloc(bytes + 2), 3)).toThrow(RangeError)
      expect(KvEncoding.writeKey(key, Buffer.alloc(bytes + 3), 3)).toBe(bytes + 3)
    }
  })
})
