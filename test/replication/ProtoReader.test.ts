/**
 * `ProtoReader` returns exactly what protobuf-es's own reader returns: on arbitrary strings
 * (short and long, ASCII and not, invalid UTF-8), on strings whose hashes collide, after its
 * table has been emptied, and on truncated input (both fail); and the generated decoders read
 * the same `uint64` numbers through it, at every size up to 2^64 (above 2^53 both fail).
 *
 * Replay a failure with the seed fast-check prints: `FC_SEED=<seed> npx vitest run <file>`.
 */
import { describe, expect, it } from "@effect/vitest"
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire"
import fc from "fast-check"
import * as Proto from "../../src/proto/inferadb/replication/v1/messages.js"
import * as ProtoReader from "../../src/replication/ProtoReader.js"

const runs = Number(process.env["FC_RUNS"] ?? 300)
const seed = process.env["FC_SEED"] === undefined ? {} : { seed: Number(process.env["FC_SEED"]) }
const parameters = { numRuns: runs, ...seed }

/** Strings of every kind the reader treats differently: short ASCII (looked up), long, non-ASCII. */
const text = fc.oneof(
  fc.constantFrom("", "acme", "viewer", "us-west-1", "us-west-1/us-west-1-node1/0123456789abcdef"),
  fc.string({ unit: fc.constantFrom(..."abcxyz019:/-_ ".split("")), maxLength: 60 }),
  fc.string({ unit: "grapheme", maxLength: 20 }),
  fc.string({ unit: "binary", maxLength: 60 })
)

const tuple = fc.record({ vault: text, resource: text, relation: text, subject: text })

const both = (bytes: Uint8Array) => ({ theirs: Proto.Tuple.decode(bytes), ours: Proto.Tuple.decode(ProtoReader.over(bytes)) })

/** A Tuple message whose `vault` field holds `raw` as its bytes, valid UTF-8 or not. */
const withRawVault = (raw: Uint8Array): Uint8Array => Uint8Array.from([0x0a, raw.length, ...raw])

describe("ProtoReader", () => {
  it("decodes every message as protobuf-es does, the first time and again", () => {
    fc.assert(
      fc.property(tuple, (value) => {
        const bytes = Proto.Tuple.encode(value).finish()
        const first = both(bytes)
        expect(first.ours).toEqual(first.theirs)
        expect(Proto.Tuple.decode(ProtoReader.over(bytes))).toEqual(first.theirs)
      }),
      parameters
    )
  })

  it("decodes bytes that are not UTF-8 as protobuf-es does", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 60 }), (raw) => {
        const bytes = withRawVault(raw)
        const { ours, theirs } = both(bytes)
        expect(ours).toEqual(theirs)
      }),
      parameters
    )
  })

  it("two strings whose bytes hash alike each come back as themselves", () => {
    // A birthday search over 8-letter strings finds a pair with the same 32-bit hash.
    const seen = new Map<number, string>()
    let pair: readonly [string, string] | undefined
    for (let index = 0; pair === undefined && index < 2_000_000; index++) {
      const candidate = index.toString(36).padStart(8, "_")
      const bytes = Buffer.from(candidate, "latin1")
      const hash = ProtoReader.asciiHash(bytes, 0, bytes.length)
      const earlier = seen.get(hash)
      if (earlier !== undefined) pair = [earlier, candidate]
      else seen.set(hash, candidate)
    }
    expect(pair).toBeDefined()
    const [first, second] = pair!
    expect(first).not.toBe(second)
    for (const vault of [first, second, first, second, second, first]) {
      expect(Proto.Tuple.decode(ProtoReader.over(Proto.Tuple.encode({ vault, resource: "", relation: "", subject: "" }).finish())).vault).toBe(vault)
    }
  })

  it("keeps returning the right strings once its table has filled and been emptied", () => {
    for (let index = 0; index < 10_000; index++) {
      const value = { vault: `v${index}`, resource: `doc:${index % 7}`, relation: "viewer", subject: `user:${index}` }
      expect(Proto.Tuple.decode(ProtoReader.over(Proto.Tuple.encode(value).finish()))).toEqual(value)
    }
  })

  it("the generated decoders read every uint64 through it as through protobuf-es, whole or cut short", () => {
    // Around every 7-bit boundary (the reader sums up to seven bytes itself), and anywhere up to 2^64.
    const edges = Array.from({ length: 10 }, (_, bytes) => 2n ** BigInt(7 * bytes)).flatMap((edge) => [edge - 1n, edge, edge + 1n]).filter((value) => value >= 0n)
    const uint64 = fc.oneof(fc.constantFrom(...edges, 2n ** 53n - 1n, 2n ** 53n, 2n ** 64n - 1n), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), fc.bigInt({ min: 0n, max: 2n ** 53n }))
    const outcome = (decode: () => unknown) => {
      try {
        return { value: decode() }
      } catch (error) {
        return { error: error instanceof Error ? error.message : String(error) }
      }
    }
    fc.assert(
      fc.property(uint64, uint64, fc.nat({ max: 24 }), (physicalMs, logical, cut) => {
        const whole = new BinaryWriter().tag(1, WireType.Varint).uint64(physicalMs).tag(2, WireType.Varint).uint64(logical).finish()
        for (const bytes of [whole, whole.subarray(0, Math.min(cut, whole.length))]) {
          expect(outcome(() => Proto.Timestamp.decode(ProtoReader.over(bytes)))).toEqual(outcome(() => Proto.Timestamp.decode(bytes)))
        }
      }),
      parameters
    )
  })

  it("a string whose length runs past the end fails, as protobuf-es does", () => {
    const truncated = Uint8Array.from([0x0a, 10, 0x61, 0x62])
    expect(() => Proto.Tuple.decode(truncated)).toThrow()
    expect(() => Proto.Tuple.decode(ProtoReader.over(truncated))).toThrow()
  })
})
