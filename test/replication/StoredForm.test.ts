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
  Effect.flatMap(Effect.flatMap(KvDriver.makeMemory<string>(disk), (driver) => Store.make(driver, { numberOrigins: true })), body)

describe("StoredForm", () => {
  it("a log entry and a tuple state read back equal to what was written", () => {
    expect(StoredForm.decodeLogEntry(StoredForm.encodeLogEntry(entry))).toEqual(Either.right(entry))
    const state: TupleState.TupleState = { frontier: [change, { ...change, id: { origin: "eu-central-1/node-b/zz", seq: 8 }, op: "insert" }] }
    expect(StoredForm.decodeTupleState(StoredForm.encodeTupleState(state), tuple)).toEqual(Either.right(state))
    expect(StoredForm.decodeTupleState(StoredForm.encodeTupleState(TupleState.empty), tuple)).toEqual(Either.right(TupleState.empty))
  })

  it("the stored text is byte for byte the documented layout (a data directory outlives the code)", () => {
    // The origin key spells region and node (source 9), the revision is 1000 times the commit
    // time (0) and the commit time the timestamp's (0), the entry was applied 77 ms after its
    // commit, received from another region than its origin, and a delete is 0.
    expect(StoredForm.encodeLogEntry(entry)).toBe(
      `[9,"eu-central-1",77,"us-west-1/node-a/k3x9",42,0,"acme","document:readme","viewer","user:alice",1700000000123,3,9,0,0,{"us-west-1/node-a/k3x9":41,"eu-central-1/node-b/zz":7}]`
    )
    expect(StoredForm.encodeTupleState({ frontier: [change] })).toBe(`[["us-west-1/node-a/k3x9",42,0,1700000000123,3,9,0,0,{"us-west-1/node-a/k3x9":41,"eu-central-1/node-b/zz":7}]]`)
    // Received from its origin region; an origin key that does not spell the region and node; an
    // insert whose commit time and revision lie off its timestamp.
    const other: Change.Change = { ...change, op: "insert", originNode: "node-b", originRevision: 1_700_000_000_130_004, committedAtMs: 1_700_000_000_130 }
    expect(StoredForm.encodeLogEntry({ ...entry, change: other, receivedFrom: "us-west-1", appliedAtMs: 1_700_000_000_129 })).toBe(
      `[9,0,-1,"us-west-1/node-a/k3x9",42,1,"acme","document:readme","viewer","user:alice",1700000000123,3,["us-west-1","node-b"],4,7,{"us-west-1/node-a/k3x9":41,"eu-central-1/node-b/zz":7}]`
    )
    // A value that is not a safe integer is written whole.
    expect(StoredForm.encodeTupleState({ frontier: [{ ...change, committedAtMs: 2 ** 53 + 2 }] })).toBe(
      `[["us-west-1/node-a/k3x9",42,0,1700000000123,3,9,[1700000000123000],[9007199254740994],{"us-west-1/node-a/k3x9":41,"eu-central-1/node-b/zz":7}]]`
    )
    expect(StoredForm.encodeTupleState(TupleState.empty)).toBe("[]")
  })

  it.effect("values in the compact layout written before December 5, 2026 (every field whole) still read, through the Store too", () =>
    Effect.gen(function* () {
      const earlierEntry = `[1,"eu-central-1",1700000000200,"us-west-1/node-a/k3x9",42,"delete","acme","document:readme","viewer","user:alice",1700000000123,3,"us-west-1","node-a",1700000000123000,1700000000123,{"us-west-1/node-a/k3x9":41,"eu-central-1/node-b/zz":7}]`
      const earlierState = `[["us-west-1/node-a/k3x9",42,"delete",1700000000123,3,"us-west-1","node-a",1700000000123000,1700000000123,{"us-west-1/node-a/k3x9":41,"eu-central-1/node-b/zz":7}]]`
      expect(StoredForm.decodeLogEntry(earlierEntry)).toEqual(Either.right({ ...entry, position: 1 }))
      expect(StoredForm.decodeTupleState(earlierState, tuple)).toEqual(Either.right({ frontier: [change] }))
      yield* withStore(diskWith(earlierState, earlierEntry), (store) =>
        Effect.gen(function* () {
          expect(yield* store.getTuple(tuple)).toEqual({ frontier: [change] })
          expect(yield* store.readLog(1, 10)).toEqual([{ ...entry, position: 1 }])
        })
      )
    }))

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

  it("any change is stored as the documented delta layout, and reads back equal", () => {
    // The oracle spells the layout out from the module's documentation, not from its code.
    // Any code point, and any UTF-16 code unit (lone surrogates, which JSON escapes).
    const anyText = fc.oneof(fc.string({ unit: "binary", maxLength: 12 }), fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((unit) => String.fromCharCode(unit)), maxLength: 12 }))
    // Slashes often, as origin keys and region ids hold them.
    const text = fc.oneof(anyText, fc.constantFrom("", "/", "us/west", "a/", "/b"), fc.array(fc.constantFrom("a", "/", "\u00fc"), { maxLength: 6 }).map((parts) => parts.join("")))
    // Safe integers, near each other or not, and numbers that are not safe integers.
    const number = fc.oneof(fc.maxSafeNat(), fc.integer(), fc.integer({ min: 1_700_000_000_000, max: 1_700_000_000_100 }), fc.constantFrom(2 ** 53, -(2 ** 53) - 2, 2 ** 60, 0.5), fc.double({ noNaN: true, noDefaultInfinity: true }).filter((value) => !Object.is(value, -0)))
    const drawn = changeOf(text, number)
    // Origin keys as `Change.originKey` builds them, most of the time.
    const anyChange = fc.tuple(drawn, fc.boolean(), text, fc.boolean(), number).map(([c, spelled, token, near, revision]) => ({
      ...c,
      id: spelled ? { ...c.id, origin: `${c.originRegion}/${c.originNode}/${token}` } : c.id,
      ...(near && Number.isSafeInteger(c.timestamp.physicalMs) && Math.abs(c.timestamp.physicalMs) < 2 ** 40 ? { committedAtMs: c.timestamp.physicalMs + 3, originRevision: (c.timestamp.physicalMs + 3) * 1000 + (revision % 1000) } : {})
    }))
    const difference = (value: number, base: number) => (Number.isSafeInteger(value) && Number.isSafeInteger(base) && Number.isSafeInteger(value - base) ? value - base : [value])
    const source = (c: Change.Change) => (c.id.origin.startsWith(`${c.originRegion}/${c.originNode}/`) && !c.originNode.includes("/") ? c.originRegion.length : [c.originRegion, c.originNode])
    const tail = (c: Change.Change) => [c.timestamp.physicalMs, c.timestamp.logical, source(c), difference(c.originRevision, 1000 * c.committedAtMs), difference(c.committedAtMs, c.timestamp.physicalMs), c.context]
    // A store's dictionary numbers origin keys (`OriginIds`): the origin field is then the number the writer is given.
    const ids = new Map<string, number>()
    let numbered = false
    const idOf = (origin: string): number => ids.get(origin) ?? ids.set(origin, ids.size + 1).size
    const originField = (origin: string): string | number => (numbered ? idOf(origin) : origin)
    const names = { originOf: (id: number) => [...ids].find(([, number]) => number === id)?.[0] }
    const head = (c: Change.Change) => [originField(c.id.origin), c.id.seq, c.op === "insert" ? 1 : 0]
    const memberFields = (c: Change.Change) => [...head(c), ...tail(c)]
    const answers = { spelled: 0, near: 0, whole: 0, fromOrigin: 0, numbered: 0 }
    fc.assert(
      fc.property(anyChange, fc.array(anyChange, { maxLength: 3 }), number, fc.option(text, { nil: null }), fc.boolean(), number, fc.boolean(), (first, others0, position, received, fromOrigin, appliedAtMs, numbers) => {
        numbered = numbers
        const field = numbered ? originField : StoredForm.wholeOrigins
        // A frontier's members are all changes of one tuple, the one its state is stored under.
        const others = others0.map((other) => ({ ...other, tuple: first.tuple }))
        const receivedFrom = fromOrigin ? first.originRegion : received
        const logEntry: Store.LogEntry = { position, change: first, receivedFrom, appliedAtMs }
        const state: TupleState.TupleState = { frontier: [first, ...others] }
        const from = receivedFrom === first.originRegion ? 0 : receivedFrom
        const c = first
        expect(StoredForm.encodeLogEntry(logEntry, field)).toBe(
          JSON.stringify([position, from, difference(appliedAtMs, c.committedAtMs), ...head(c), c.tuple.vault, c.tuple.resource, c.tuple.relation, c.tuple.subject, ...tail(c)])
        )
        expect(StoredForm.encodeTupleState(state, field)).toBe(JSON.stringify(state.frontier.map(memberFields)))
        expect(StoredForm.encodeTupleState({ frontier: [...others, first] }, field)).toBe(JSON.stringify([...others, first].map(memberFields)))
        expect(StoredForm.decodeLogEntry(StoredForm.encodeLogEntry(logEntry, field), names)).toEqual(Either.right(logEntry))
        expect(StoredForm.decodeTupleState(StoredForm.encodeTupleState(state, field), first.tuple, names)).toEqual(Either.right(state))
        if (numbered) {
          answers.numbered++
          // A number the reader's dictionary does not hold is a damaged value, not some other key.
          expect(StoredForm.decodeLogEntry(StoredForm.encodeLogEntry(logEntry, field))).toEqual(Either.left(`a stored origin is number ${idOf(c.id.origin)}, which the store's dictionary does not hold`))
        }
        if (typeof source(c) === "number") answers.spelled++
        if (typeof difference(c.committedAtMs, c.timestamp.physicalMs) === "number") answers.near++
        else answers.whole++
        if (from === 0) answers.fromOrigin++
      }),
      { numRuns: 500 }
    )
    // Every branch of the layout was drawn, often.
    expect(Math.min(answers.spelled, answers.near, answers.whole, answers.fromOrigin, answers.numbered)).toBeGreaterThan(25)
  })

  it("the compact form is less than two thirds the size of the JSON object form, a tuple state half of it", () => {
    expect(StoredForm.encodeLogEntry(entry).length).toBeLessThan((JSON.stringify(entry).length * 2) / 3)
    const state = { frontier: [change] }
    expect(StoredForm.encodeTupleState(state).length).toBeLessThan(JSON.stringify(state).length / 2)
  })

  it("a change as bench:repl writes it takes less than two thirds of the earlier compact layout's bytes", () => {
    const written: Change.Change = {
      id: { origin: "us-west-1/us-west-1-node1/k3x9ab", seq: 123_456 },
      op: "insert",
      tuple: { vault: "bench", resource: "drain:w1234", relation: "viewer", subject: "user:u57" },
      timestamp: { physicalMs: 1_764_918_000_123, logical: 0 },
      originRegion: "us-west-1",
      originNode: "us-west-1-node1",
      originRevision: 1_764_918_000_123_001,
      committedAtMs: 1_764_918_000_123,
      context: {}
    }
    const c = written
    const earlierMember = [c.id.origin, c.id.seq, c.op, c.timestamp.physicalMs, c.timestamp.logical, c.originRegion, c.originNode, c.originRevision, c.committedAtMs, c.context]
    const earlier = JSON.stringify([123_456, "us-west-1", 1_764_918_000_125, c.id.origin, c.id.seq, c.op, ...Object.values(c.tuple), ...earlierMember.slice(3)]).length + JSON.stringify([earlierMember]).length
    const now = StoredForm.encodeLogEntry({ position: 123_456, change: c, receivedFrom: "us-west-1", appliedAtMs: 1_764_918_000_125 }).length + StoredForm.encodeTupleState({ frontier: [c] }).length
    expect([earlier, now]).toEqual([341, 195])
    // With the origin key numbered in the store's dictionary (`OriginIds`), as lmdb's store writes it.
    const numbered = StoredForm.encodeLogEntry({ position: 123_456, change: c, receivedFrom: "us-west-1", appliedAtMs: 1_764_918_000_125 }, () => 1).length + StoredForm.encodeTupleState({ frontier: [c] }, () => 1).length
    expect(numbered).toBe(129)
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
      // A member in the delta layout with text where a number belongs, and a log entry whose op is neither 1 nor 0.
      const misshapen = diskWith(`[["us/n/t",1,1,"soon",0,2,0,0,{}]]`, `[1,null,0,"us/n/t",1,"upsert","v","r","rel","s",5,0,2,0,0,{}]`)
      expect((yield* withStore(misshapen, (store) => Effect.flip(store.getTuple(tuple)))).message).toContain("a stored number is not one")
      expect((yield* withStore(misshapen, (store) => Effect.flip(store.readLog(1, 1)))).message).toContain("neither 1 nor 0")
      const tupleRead = yield* withStore(disk, (store) => Effect.flip(store.getTuple(tuple)))
      expect(tupleRead.operation).toBe("getTuple")
      expect(tupleRead.message).toContain("stored value does not decode")
      const logRead = yield* withStore(disk, (store) => Effect.flip(store.readLog(1, 1)))
      expect(logRead.operation).toBe("readLog")
      const legacyBroken = yield* withStore(diskWith(`{"frontier":[{"op":"insert"}]}`, "{}"), (store) => Effect.flip(store.getTuple(tuple)))
      expect(legacyBroken.message).toContain("stored value does not decode")
    }))
})
