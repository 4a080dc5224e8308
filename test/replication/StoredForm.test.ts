/**
 * The compact stored form: what the Store writes reads back equal, values written by earlier
 * versions (JSON objects, and frontier members that still held their tuple) still read, and
 * damaged values fail with a StoreError that says so.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Schema } from "effect"
import * as fc from "fast-check"
import type * as Change from "../../src/replication/Change.js"
import * as DiskTree from "../../src/replication/DiskTree.js"
import * as KvDriver from "../../src/replication/KvDriver.js"
import * as Store from "../../src/replication/Store.js"
import * as StoredForm from "../../src/replication/StoredForm.js"
import * as TupleState from "../../src/replication/TupleState.js"
import { changeOf } from "./fixtures/wire.js"

const change: Change.Change = {
  id: { origin: "us-west-1/node-a/k3x9", seq: 42 },
  op: "delete",
  tuple: { vault: "acme", resource: "document:readme", relation: "viewer", subject: "user:alice" },
  timestamp: { physicalMs: 1_700_000_000_123, logical: 3 },
  originRegion: "us-west-1",
  originNode: "node-a",
  originRevision: 1_700_000_000_123_000,
  committedAtMs: 1_700_000_000_123,
  context: { "us-west-1/node-a/k3x9": 41, "eu-central-1/node-b/zz": 7 }
}
const entry: Store.LogEntry = { position: 9, change, receivedFrom: "eu-central-1", appliedAtMs: 1_700_000_000_200 }
const tuple = change.tuple

/** A memory disk holding `value` under the tuple's key and as log entry 1, as an earlier version could have written it. */
const diskWith = (tupleValue: string, logValue: string): KvDriver.MemoryDisk => {
  const disk = KvDriver.makeMemoryDisk()
  disk.tree = DiskTree.withWrites(
    disk.tree,
    new Map([
      [`t/acme\u0000document:readme\u0000viewer\u0000user:alice`, tupleValue],
      [`l/${"1".padStart(15, "0")}`, logValue]
    ]),
    undefined
  )
  return disk
}

// The Store over a memory disk that holds text, as the byte-oriented backends keep it (the
// memory Store itself keeps decoded values).
const withStore = <A, E>(disk: KvDriver.MemoryDisk, body: (store: Store.Store["Type"]) => Effect.Effect<A, E>) =>
  Effect.flatMap(Effect.map(KvDriver.makeMemory<string>(disk), Store.make), body)

describe("StoredForm", () => {
  it("a log entry and a tuple state read back equal to what was written", () => {
    expect(StoredForm.decodeLogEntry(StoredForm.encodeLogEntry(entry))).toEqual(Either.right(entry))
    const state: TupleState.TupleState = { frontier: [change, { ...change, id: { origin: "eu-central-1/node-b/zz", seq: 8 }, op: "insert" }] }
    expect(StoredForm.decodeTupleState(StoredForm.encodeTupleState(state), tuple)).toEqual(Either.right(state))
    expect(StoredForm.decodeTupleState(StoredForm.encodeTupleState(TupleState.empty), tuple)).toEqual(Either.right(TupleState.empty))
  })

  it("the stored text is byte for byte the documented layout (a data directory outlives the code)", () => {
    // The log entry is what earlier versions wrote too; a frontier member leaves the tuple out.
    expect(StoredForm.encodeLogEntry(entry)).toBe(
      `[9,"eu-central-1",1700000000200,"us-west-1/node-a/k3x9",42,"delete","acme","document:readme","viewer","user:alice",1700000000123,3,"us-west-1","node-a",1700000000123000,1700000000123,{"us-west-1/node-a/k3x9":41,"eu-central-1/node-b/zz":7}]`
    )
    expect(StoredForm.encodeTupleState({ frontier: [change] })).toBe(
      `[["us-west-1/node-a/k3x9",42,"delete",1700000000123,3,"us-west-1","node-a",1700000000123000,1700000000123,{"us-west-1/node-a/k3x9":41,"eu-central-1/node-b/zz":7}]]`
    )
    expect(StoredForm.encodeTupleState(TupleState.empty)).toBe("[]")
  })

  it.effect("a tuple state whose members still hold their tuple, as written before, reads back through the Store", () =>
    Effect.gen(function* () {
      const earlier = `[["us-west-1/node-a/k3x9",42,"delete","acme","document:readme","viewer","user:alice",1700000000123,3,"us-west-1","node-a",1700000000123000,1700000000123,{"us-west-1/node-a/k3x9":41,"eu-central-1/node-b/zz":7}]]`
      const disk = diskWith(earlier, StoredForm.encodeLogEntry({ ...entry, position: 1 }))
      yield* withStore(disk, (store) =>
        Effect.gen(function* () {
          expect(yield* store.getTuple(tuple)).toEqual({ frontier: [change] })
          expect(yield* store.scanTuples({ vault: "acme" })).toEqual([{ frontier: [change] }])
          // Written again, it takes the new form and still reads back the same.
          const other = { ...change, id: { origin: "eu-central-1/node-b/zz", seq: 8 }, op: "insert" as const }
          yield* store.transaction((tx) => tx.putTuple(tuple, { frontier: [change, other] }))
          expect(yield* store.getTuple(tuple)).toEqual({ frontier: [change, other] })
          expect(yield* store.transaction((tx) => tx.getTuples([tuple, { ...tuple, subject: "user:nobody" }]))).toEqual([{ frontier: [change, other] }, TupleState.empty])
        })
      )
    }))

  it("any change is stored as the JSON array of its fields in the documented order, and reads back equal", () => {
    // The oracle spells the layout out from the module's documentation, not from its code.
    // Any code point, and any UTF-16 code unit (lone surrogates, which JSON escapes).
    const text = fc.oneof(fc.string({ unit: "binary", maxLength: 12 }), fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((unit) => String.fromCharCode(unit)), maxLength: 12 }))
    const whole = fc.oneof(fc.maxSafeNat(), fc.integer())
    const anyChange = changeOf(text, whole)
    const fields = (c: Change.Change) => [c.id.origin, c.id.seq, c.op, c.tuple.vault, c.tuple.resource, c.tuple.relation, c.tuple.subject, c.timestamp.physicalMs, c.timestamp.logical, c.originRegion, c.originNode, c.originRevision, c.committedAtMs, c.context]
    const memberFields = (c: Change.Change) => [c.id.origin, c.id.seq, c.op, c.timestamp.physicalMs, c.timestamp.logical, c.originRegion, c.originNode, c.originRevision, c.committedAtMs, c.context]
    fc.assert(
      fc.property(anyChange, fc.array(anyChange, { maxLength: 3 }), whole, fc.option(text, { nil: null }), whole, (first, drawn, position, receivedFrom, appliedAtMs) => {
        // A frontier's members are all changes of one tuple, the one its state is stored under.
        const others = drawn.map((other) => ({ ...other, tuple: first.tuple }))
        const logEntry: Store.LogEntry = { position, change: first, receivedFrom, appliedAtMs }
        const state: TupleState.TupleState = { frontier: [first, ...others] }
        expect(StoredForm.encodeLogEntry(logEntry)).toBe(JSON.stringify([position, receivedFrom, appliedAtMs, ...fields(first)]))
        expect(StoredForm.encodeTupleState(state)).toBe(JSON.stringify(state.frontier.map(memberFields)))
        expect(StoredForm.encodeTupleState({ frontier: [...others, first] })).toBe(JSON.stringify([...others, first].map(memberFields)))
        expect(StoredForm.decodeLogEntry(StoredForm.encodeLogEntry(logEntry))).toEqual(Either.right(logEntry))
        expect(StoredForm.decodeTupleState(StoredForm.encodeTupleState(state), first.tuple)).toEqual(Either.right(state))
      })
    )
  })

  it("the compact form is less than two thirds the size of the JSON object form, a tuple state half of it", () => {
    expect(StoredForm.encodeLogEntry(entry).length).toBeLessThan((JSON.stringify(entry).length * 2) / 3)
    const state = { frontier: [change] }
    expect(StoredForm.encodeTupleState(state).length).toBeLessThan(JSON.stringify(state).length / 2)
  })

  it.effect("values an earlier version stored as JSON objects still read through the Store", () =>
    Effect.gen(function* () {
      const legacyState = Schema.encodeSync(Schema.parseJson(TupleState.TupleState))({ frontier: [change] })
      const legacyEntry = Schema.encodeSync(Schema.parseJson(Store.LogEntry))({ ...entry, position: 1 })
      yield* withStore(diskWith(legacyState, legacyEntry), (store) =>
        Effect.gen(function* () {
          expect(yield* store.getTuple(tuple)).toEqual({ frontier: [change] })
          expect(yield* store.readLog(1, 10)).toEqual([{ ...entry, position: 1 }])
        })
      )
    }))

  it.effect("a damaged stored value fails the read with a StoreError naming the operation", () =>
    Effect.gen(function* () {
      const disk = diskWith("[[\"us\",1]]", "[1,null")
      const tupleRead = yield* withStore(disk, (store) => Effect.flip(store.getTuple(tuple)))
      expect(tupleRead.operation).toBe("getTuple")
      expect(tupleRead.message).toContain("stored value does not decode")
      const logRead = yield* withStore(disk, (store) => Effect.flip(store.readLog(1, 1)))
      expect(logRead.operation).toBe("readLog")
      const legacyBroken = yield* withStore(diskWith(`{"frontier":[{"op":"insert"}]}`, "{}"), (store) => Effect.flip(store.getTuple(tuple)))
      expect(legacyBroken.message).toContain("stored value does not decode")
    }))
})
