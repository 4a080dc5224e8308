/**
 * The chaos judge's own reader of a node's lmdb disk, for `store_integrity`: it reads what the
 * Store wrote (tuple states, log, recorded end) as the Store does, and the check then fails a
 * disk whose log has a gap or whose tuple state names a change its log lacks. The damage is done
 * with lmdb itself, below the Store, as a crash or a broken commit would leave it.
 */
import { describe, expect, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Context, Effect, Layer } from "effect"
import { open } from "lmdb"
import type * as Change from "../../src/replication/Change.js"
import * as Store from "../../src/replication/Store.js"
import * as StoredState from "../../src/chaos/StoredState.js"
import * as StoredLayout from "../../src/sim/StoredLayout.js"
import * as KvLmdb from "../../src/runtime/KvLmdb.js"
import * as Checkers from "../../src/sim/Checkers.js"

const change = (seq: number, subject: string): Change.Change => ({
  id: { origin: "us/n1/abc", seq },
  op: seq % 3 === 0 ? "delete" : "insert",
  tuple: { vault: "acme", resource: "document:readme", relation: "viewer", subject },
  timestamp: { physicalMs: 1_000 + seq, logical: seq % 2 },
  originRegion: "us",
  originNode: "n1",
  originRevision: seq,
  committedAtMs: 1_000 + seq,
  context: seq > 1 ? { "us/n1/abc": seq - 1 } : {}
})

/** Writes `count` changes through the Store, each to its own tuple, in transactions of two. */
const writeStore = (directory: string, count: number) =>
  Effect.scoped(
    Effect.gen(function* () {
      const store = Context.get(yield* Layer.build(KvLmdb.layerLmdb({ path: directory })), Store.Store)
      for (let seq = 1; seq <= count; seq += 2) {
        yield* store.transaction((tx) =>
          Effect.gen(function* () {
            const changes = [seq, seq + 1].filter((at) => at <= count).map((at) => change(at, `user:u${at}`))
            yield* tx.putTuples(changes.map((written) => [written.tuple, { frontier: [written] }] as const))
            yield* tx.appendLogs(changes.map((written) => ({ change: written, receivedFrom: seq % 4 === 1 ? null : "eu", appliedAtMs: 2_000 + seq })))
          })
        )
      }
      return yield* store.readLog(1, count)
    })
  )

type Lmdb = ReturnType<typeof open<string, Buffer>>

/** Why the judge's reader refused each value of the disk it left out, in the order it read them. */
const refusals = (directory: string): ReadonlyArray<string> => (StoredState.read("us", "us-node1", directory).unreadable ?? []).map((value) => value.why)

/** Changes the disk below the Store: `edit` gets lmdb's root database and the log's (KvLmdb), with binary keys and text values. */
const damage = async (directory: string, edit: (root: Lmdb, log: Lmdb) => void) => {
  const root = open<string, Buffer>({ path: directory, keyEncoding: "binary", encoding: "string" })
  edit(root, root.openDB<string, Buffer>("log", { keyEncoding: "binary", encoding: "string" }) as unknown as Lmdb)
  await root.flushed
  await root.close()
}

const key = (text: string) => Buffer.from(text, "latin1")

describe("StoredState (the chaos judge's reader of a node's disk)", () => {
  it("reads a key's text from its bytes, one UTF-16 code unit each, as the store writes them", () => {
    // A character above U+FFFF is two code units, three bytes each: not what UTF-8 decoding reads.
    const text = "t/acme\u0000document:\u00fc\u4e2d\u0000viewer\u0000user:\u{1F600}"
    const units = Array.from({ length: text.length }, (_, index) => text.charCodeAt(index))
    const bytes = Buffer.from(units.flatMap((unit) =>
      unit < 0x80 ? [unit] : unit < 0x800 ? [0xc0 | (unit >> 6), 0x80 | (unit & 0x3f)] : [0xe0 | (unit >> 12), 0x80 | ((unit >> 6) & 0x3f), 0x80 | (unit & 0x3f)]
    ))
    expect(bytes.toString("utf8")).not.toBe(text)
    expect(StoredLayout.keyText(bytes, "k")).toBe(text)
    expect(StoredLayout.tupleOfKey(text, "k")).toEqual({ vault: "acme", resource: "document:\u00fc\u4e2d", relation: "viewer", subject: "user:\u{1F600}" })
    expect(() => StoredLayout.keyText(Buffer.from([0xf0, 0x9f, 0x98, 0x80]), "k")).toThrow(/k: a key's byte 0 starts no code unit/)
  })

  it.live("reads the tuple states, log and recorded end the Store wrote, and store_integrity passes", () =>
    Effect.gen(function* () {
      const directory = fs.mkdtempSync(path.join(os.tmpdir(), "stored-state-"))
      try {
        const written = yield* writeStore(directory, 7)
        const state = StoredState.read("us", "us-node1", directory)
        expect(state.log).toEqual(written)
        expect(state.logEnd).toBe(7)
        expect(state.tuples.size).toBe(7)
        for (const entry of written) {
          const held = [...state.tuples.values()].find((tuple) => tuple.tuple.subject === entry.change.tuple.subject)
          expect(held?.frontier).toEqual([entry.change])
        }
        expect(Checkers.storeIntegrity([state])).toEqual([])
      } finally {
        fs.rmSync(directory, { recursive: true, force: true })
      }
    }))

  it.live("a log gap and a tuple state whose change is not logged fail store_integrity, as does a value that is not the layout, saying where", () =>
    Effect.gen(function* () {
      const directory = fs.mkdtempSync(path.join(os.tmpdir(), "stored-state-"))
      try {
        yield* writeStore(directory, 6)
        yield* Effect.promise(() => damage(directory, (_, log) => void log.remove(key("l/000000000000003"))))
        const gap = Checkers.storeIntegrity([StoredState.read("us", "us-node1", directory)])
        expect(gap.map((violation) => violation.checker)).toEqual(["store_integrity"])
        const problems = (gap[0]!.details as { examples: ReadonlyArray<{ problem: string }> }).examples.map((example) => example.problem)
        expect(problems).toEqual(["log positions are not 1 to the recorded end", "a frontier change is not in the log"])

        // The dictionary's key of the origin the values name by number, gone, then back.
        yield* Effect.promise(() => damage(directory, (root) => void root.remove(key("k/us/n1/abc"))))
        expect(refusals(directory)).toEqual([
          "us-node1 t/acme\\0document:readme\\0viewer\\0user:u1 member 0 origin is number 1, which no k/ key holds",
          "us-node1 t/acme\\0document:readme\\0viewer\\0user:u2 member 0 origin is number 1, which no k/ key holds",
          "us-node1 t/acme\\0document:readme\\0viewer\\0user:u3 member 0 origin is number 1, which no k/ key holds",
          "us-node1 t/acme\\0document:readme\\0viewer\\0user:u4 member 0 origin is number 1, which no k/ key holds",
          "us-node1 t/acme\\0document:readme\\0viewer\\0user:u5 member 0 origin is number 1, which no k/ key holds",
          "us-node1 t/acme\\0document:readme\\0viewer\\0user:u6 member 0 origin is number 1, which no k/ key holds",
          "us-node1 l/000000000000001 origin is number 1, which no k/ key holds",
          "us-node1 l/000000000000002 origin is number 1, which no k/ key holds",
          "us-node1 l/000000000000004 origin is number 1, which no k/ key holds",
          "us-node1 l/000000000000005 origin is number 1, which no k/ key holds",
          "us-node1 l/000000000000006 origin is number 1, which no k/ key holds"
        ])
        yield* Effect.promise(() => damage(directory, (root) => void root.put(key("k/us/n1/abc"), "1")))
        yield* Effect.promise(() => damage(directory, (_, log) => void log.put(key("l/000000000000004"), '[4,null,"soon",1]')))
        expect(refusals(directory)).toEqual(["us-node1 l/000000000000004 has 4 fields, not 16 (or 17)"])
        yield* Effect.promise(() => damage(directory, (root) => void root.put(key("t/acme\u0000document:readme\u0000viewer\u0000user:u1"), "{not json")))
        expect(refusals(directory)[0]).toMatch(/^us-node1 t\/acme\\0document:readme\\0viewer\\0user:u1 is not JSON/)
        yield* Effect.promise(() => damage(directory, (root) => void root.put(key("t/acme"), "[]")))
        expect(refusals(directory)[0]).toBe("us-node1 t/acme is not a tuple's key")
        // Each is a store_integrity finding, with the value's key and why, not the judge's own failure.
        const damaged = Checkers.storeIntegrity([StoredState.read("us", "us-node1", directory)])
        const examples = (damaged[0]!.details as { examples: ReadonlyArray<{ problem: string; key?: string }> }).examples
        expect(examples.filter((example) => example.problem === "a stored value is not the documented layout").map((example) => example.key)).toEqual([
          "t/acme",
          "t/acme\u0000document:readme\u0000viewer\u0000user:u1",
          "l/000000000000004"
        ])
      } finally {
        fs.rmSync(directory, { recursive: true, force: true })
      }
    }))

  it("reads the delta layout as its documentation spells it: differences, whole values, the origin key's region and node, and 'from its origin region'", () => {
    const tuple = { vault: "acme", resource: "document:readme", relation: "viewer", subject: "user:a" }
    const context = { "eu/eu-node1/zz": 7 }
    // Region "us/west" (7 characters, a slash in it), node "n1", applied 5 ms after its commit, from its origin region.
    expect(StoredLayout.logEntry(Buffer.from(`[4,0,5,"us/west/n1/tok",9,1,"acme","document:readme","viewer","user:a",1000,2,7,3,1,{"eu/eu-node1/zz":7}]`), "e")).toEqual({
      position: 4,
      receivedFrom: "us/west",
      appliedAtMs: 1006,
      change: { id: { origin: "us/west/n1/tok", seq: 9 }, op: "insert", tuple, timestamp: { physicalMs: 1000, logical: 2 }, originRegion: "us/west", originNode: "n1", originRevision: 1_001_003, committedAtMs: 1001, context }
    })
    // The region and node given apart, values whole, received from another region; a delete.
    expect(StoredLayout.frontier(Buffer.from(`[["x",9,0,1000,2,["us","n1"],[77],[2000],{"eu/eu-node1/zz":7}]]`), "m", tuple)).toEqual([
      { id: { origin: "x", seq: 9 }, op: "delete", tuple, timestamp: { physicalMs: 1000, logical: 2 }, originRegion: "us", originNode: "n1", originRevision: 77, committedAtMs: 2000, context }
    ])
    expect(() => StoredLayout.frontier(Buffer.from(`[["x",9,2,1000,2,["us","n1"],0,0,{}]]`), "m", tuple)).toThrow(/m member 0 op is neither 1 nor 0/)
    expect(() => StoredLayout.frontier(Buffer.from(`[["us-n1-tok",9,1,1000,2,2,0,0,{}]]`), "m", tuple)).toThrow(/m member 0 origin 'us-n1-tok' does not spell a region of 2 characters and a node/)
    expect(() => StoredLayout.frontier(Buffer.from(`[["us/n1/tok",9,1,1000,2,2,"0",0,{}]]`), "m", tuple)).toThrow(/m member 0 revision is not an integer/)
    // An origin written as the number a k/ key gives it; a number no key gives is refused, as is a key given two numbers' place.
    const names = new Map<number, string>()
    StoredLayout.addOriginName(names, "k/us/n1/tok", Buffer.from("3"), "k")
    expect(StoredLayout.frontier(Buffer.from(`[[3,9,1,1000,2,2,0,0,{}]]`), "m", tuple, names)[0]!.id.origin).toBe("us/n1/tok")
    expect(StoredLayout.logEntry(Buffer.from(`[4,0,5,3,9,1,"acme","document:readme","viewer","user:a",1000,2,2,3,1,{}]`), "e", names).change.originNode).toBe("n1")
    expect(() => StoredLayout.frontier(Buffer.from(`[[4,9,1,1000,2,2,0,0,{}]]`), "m", tuple, names)).toThrow(/m member 0 origin is number 4, which no k\/ key holds/)
    expect(() => StoredLayout.addOriginName(names, "k/eu/n1/tok", Buffer.from("3"), "k2")).toThrow(/k2: 3 is not a number the dictionary may give it/)
    expect(() => StoredLayout.addOriginName(names, "k/eu/n1/tok", Buffer.from("0"), "k3")).toThrow(/k3: 0 is not a number/)
  })

  it("reads the older object form and members that hold their own tuple as well, which must be the key's", () => {
    const entry = { position: 3, change: change(3, "user:old"), receivedFrom: "eu", appliedAtMs: 9 }
    const tuple = entry.change.tuple
    expect(StoredLayout.logEntry(Buffer.from(JSON.stringify(entry)), "old")).toEqual(entry)
    expect(StoredLayout.frontier(Buffer.from(JSON.stringify({ frontier: [entry.change] })), "old", tuple)).toEqual([entry.change])
    // The compact member as written before December 2026: the whole change, tuple included.
    const c = entry.change
    const whole = [c.id.origin, c.id.seq, c.op, tuple.vault, tuple.resource, tuple.relation, tuple.subject, c.timestamp.physicalMs, c.timestamp.logical, c.originRegion, c.originNode, c.originRevision, c.committedAtMs, c.context]
    expect(StoredLayout.frontier(Buffer.from(JSON.stringify([whole])), "old", tuple)).toEqual([c])
    expect(() => StoredLayout.frontier(Buffer.from(JSON.stringify([whole])), "old", { ...tuple, subject: "user:other" })).toThrow(/old member 0 is a change of .*user:old, not of the key's tuple/)
    // The member as written from December 2026 to December 5 leaves the tuple out; the key's is used.
    const member = [c.id.origin, c.id.seq, c.op, c.timestamp.physicalMs, c.timestamp.logical, c.originRegion, c.originNode, c.originRevision, c.committedAtMs, c.context]
    expect(StoredLayout.frontier(Buffer.from(JSON.stringify([member])), "new", tuple)).toEqual([c])
    expect(() => StoredLayout.frontier(Buffer.from(JSON.stringify([member.slice(2)])), "new", tuple)).toThrow(/new member 0 has 8 fields, not 9 \(or 10 or 14\)/)
    expect(() => StoredLayout.logEntry(Buffer.from(JSON.stringify({ ...entry, change: { ...entry.change, op: "upsert" } })), "old")).toThrow(/old op is neither insert nor delete/)
  })
})
