/**
 * `BatchDecoder` against the decoders generated from `messages.proto`: whatever the bytes, when
 * it gives a batch, the generated `Request.decode` gives the same batch (mapped to the protocol's
 * shape here, from the documented field meanings, not through `WireCodec`); and every canonical
 * encoding of a batch takes the fast path. The bytes are valid batches, then the same with bytes
 * flipped, cut off, or with arbitrary bytes put in (unknown fields, wrong wire types, zero and
 * end-group tags, nested lengths that lie, varints past 2^53).
 *
 * Replay a failure with the seed fast-check prints: `FC_SEED=<seed> npx vitest run <file>`.
 */
import { BinaryReader, BinaryWriter, WireType } from "@bufbuild/protobuf/wire"
import { describe, expect, it } from "@effect/vitest"
import fc from "fast-check"
import * as Proto from "../../src/proto/inferadb/replication/v1/messages.js"
import * as BatchDecoder from "../../src/replication/BatchDecoder.js"
import * as WireCodec from "../../src/replication/WireCodec.js"
import { batch } from "./fixtures/wire.js"

const runs = Number(process.env["FC_RUNS"] ?? 1_000)
const seed = process.env["FC_SEED"] === undefined ? {} : { seed: Number(process.env["FC_SEED"]) }
const parameters = { numRuns: runs, ...seed }

const operation = (op: Proto.Operation): string | number => (op === Proto.Operation.OPERATION_INSERT ? "insert" : op === Proto.Operation.OPERATION_DELETE ? "delete" : op)

/** The generated decoders' reading of the bytes, in the shape the wire codec guards. */
const reference = (bytes: Uint8Array): unknown => {
  const body = Proto.Request.decode(new BinaryReader(bytes)).body
  if (body?.$case !== "replicateBatch") return { notABatch: body?.$case }
  const { batchId, fromRegion, fromNode, changes } = body.value
  return {
    _tag: "ReplicateBatch",
    batchId,
    fromRegion,
    fromNode,
    changes: changes.map((change) => ({ ...change, op: operation(change.op) }))
  }
}

type Outcome = { readonly value: unknown } | { readonly thrown: string }

const outcome = (run: () => unknown): Outcome => {
  try {
    return { value: run() }
  } catch (error) {
    return { thrown: error instanceof Error ? error.message : String(error) }
  }
}

/** What the property demands of one input: a batch read fast is exactly the generated one. */
const agrees = (bytes: Uint8Array): void => {
  const fast = outcome(() => BatchDecoder.decodeBatchRequest(bytes))
  if ("thrown" in fast || fast.value === undefined) return // the generated decoders take over
  expect(outcome(() => reference(bytes))).toStrictEqual(fast)
}

const damaged = (bytes: Uint8Array) =>
  fc.oneof(
    fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })).map(([at, value]) => {
      const copy = Uint8Array.from(bytes)
      if (copy.length > 0) copy[at % copy.length] = value
      return copy
    }),
    fc.nat().map((at) => bytes.subarray(0, bytes.length === 0 ? 0 : at % bytes.length)),
    fc.tuple(fc.nat(), fc.uint8Array({ minLength: 1, maxLength: 12 })).map(([at, inserted]) => {
      const cut = bytes.length === 0 ? 0 : at % (bytes.length + 1)
      return Uint8Array.from([...bytes.subarray(0, cut), ...inserted, ...bytes.subarray(cut)])
    })
  )

describe("BatchDecoder", () => {
  it("reads every canonical batch envelope itself, as the generated decoders read it", () =>
    fc.assert(
      fc.property(batch, (message) => {
        const bytes = WireCodec.encodeRequest(message)
        const fast = BatchDecoder.decodeBatchRequest(bytes)
        expect(fast).toBeDefined()
        expect(fast).toStrictEqual(reference(bytes))
      }),
      parameters
    ))

  it("on damaged bytes, gives either nothing (the generated decoders then run) or exactly what they give", () =>
    fc.assert(
      fc.property(
        batch.chain((message) => damaged(WireCodec.encodeRequest(message))),
        (bytes) => agrees(bytes)
      ),
      { ...parameters, numRuns: runs * 5 }
    ))

  it("leaves envelopes holding a heartbeat or a page request to the generated decoders", () => {
    expect(BatchDecoder.decodeBatchRequest(WireCodec.encodeRequest({ _tag: "Heartbeat", fromRegion: "r", fromNode: "n", sentAtMs: 1 }))).toBeUndefined()
    const both = Uint8Array.from([
      ...WireCodec.encodeRequest({ _tag: "ReplicateBatch", batchId: "b", fromRegion: "r", fromNode: "n", changes: [] }),
      ...WireCodec.encodeRequest({ _tag: "CatchUp", fromRegion: "r", fromNode: "n", afterPosition: 0, limit: 1 })
    ])
    expect(BatchDecoder.decodeBatchRequest(both)).toBeUndefined()
    expect(BatchDecoder.decodeBatchRequest(new Uint8Array(0))).toBeUndefined()
  })

  it("reads a uint64 past 2^53 as the generated decoders do: refused, whatever its length", () => {
    for (const value of [2n ** 53n - 1n, 2n ** 53n, 2n ** 60n, 2n ** 64n - 1n]) {
      const change = new BinaryWriter().tag(8, WireType.Varint).uint64(value).finish()
      const changes = new BinaryWriter().tag(4, WireType.LengthDelimited).bytes(change).finish()
      const bytes = new BinaryWriter().tag(1, WireType.LengthDelimited).bytes(changes).finish()
      const fast = outcome(() => BatchDecoder.decodeBatchRequest(bytes))
      expect(fast).toStrictEqual(outcome(() => reference(bytes)))
      expect("thrown" in fast).toBe(value > BigInt(Number.MAX_SAFE_INTEGER))
    }
  })
})
