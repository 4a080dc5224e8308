/**
 * The byte length the shared code predicts for a store key (`Store.keyBytes`, which the API's
 * tuple size check relies on) against the bytes the byte-oriented backends actually write.
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
})
