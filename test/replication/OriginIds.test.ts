/**
 * The store's dictionary of origin keys (`OriginIds`): a text store writes each origin key's
 * number in its place, never without the key that spells it out, through in-flight and failed
 * commits; another Store on the same disk and the judges' own reader (`StoredLayout`, through
 * `RegionState`) read the values back as they were written.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Fiber } from "effect"
import type * as Change from "../../src/replication/Change.js"
import * as DiskTree from "../../src/replication/DiskTree.js"
import { StoreError } from "../../src/replication/Errors.js"
import * as Handoff from "../../src/replication/Handoff.js"
import * as KvDriver from "../../src/replication/KvDriver.js"
import * as Store from "../../src/replication/Store.js"
import * as Checkers from "../../src/sim/Checkers.js"
import * as RegionState from "../../src/sim/RegionState.js"

const change = (origin: string, seq: number): Change.Change => ({
  id: { origin: `${origin}/n1/tok`, seq },
  op: "insert",
  tuple: { vault: "acme", resource: "document:readme", relation: "viewer", subject: `user:${origin}${seq}` },
  timestamp: { physicalMs: 1_700_000_000_000 + seq, logical: 0 },
  originRegion: origin,
  originNode: "n1",
  originRevision: (1_700_000_000_000 + seq) * 1000,
  committedAtMs: 1_700_000_000_000 + seq,
  context: {}
})

/** A write as the engine makes one: the log entry and the tuple's state, in one transaction. */
const write = (store: Store.Store["Type"], changes: ReadonlyArray<Change.Change>) =>
  store.transaction((tx) =>
    Effect.zipRight(
      tx.appendLogs(changes.map((c) => ({ change: c, receivedFrom: c.originRegion === "us" ? null : c.originRegion, appliedAtMs: c.committedAtMs + 1 }))),
      tx.putTuples(changes.map((c) => [c.tuple, { frontier: [c] }] as const))
    )
  )

const keysUnder = (disk: KvDriver.MemoryDisk, prefix: string) => [...DiskTree.from(disk.tree, prefix)].filter(([key]) => key.startsWith(prefix))

/** Opens a text Store on `disk`, as a simulated node's own disk or lmdb: commits pipelined, `atCommit` before each. */
const openOn = (disk: KvDriver.MemoryDisk, atCommit?: () => Effect.Effect<void, StoreError> | undefined, numberOrigins = true) =>
  Effect.flatMap(KvDriver.makeMemory<string>(disk, { pipelined: true, ...(atCommit === undefined ? {} : { atCommit }) }), (driver) => Store.make(driver, { numberOrigins }))

describe("OriginIds", () => {
  it.effect("a text store writes a number in place of each origin key, with the key that spells it out, and reads back what it wrote", () =>
    Effect.gen(function* () {
      const disk = KvDriver.makeMemoryDisk()
      const store = yield* openOn(disk)
      const written = [change("us", 1), change("eu", 2), change("us", 3)]
      yield* write(store, written)
      expect(keysUnder(disk, "k/")).toEqual([
        ["k/eu/n1/tok", "2"],
        ["k/us/n1/tok", "1"]
      ])
      expect(keysUnder(disk, "m/originIds")).toEqual([["m/originIds", "2"]])
      // The origin field holds the number; the rest of the layout is unchanged.
      const first = keysUnder(disk, "l/")[0]![1] as string
      expect(JSON.parse(first)[3]).toBe(1)
      const tupleText = keysUnder(disk, "t/").find(([key]) => key.endsWith("user:eu2"))![1] as string
      expect(JSON.parse(tupleText)[0][0]).toBe(2)
      const entries = yield* store.readLog(1, 10)
      expect(entries.map((entry) => entry.change)).toEqual(written)
      // Another Store on the disk (a restarted node) reads them, and numbers a new key after the others.
      const reopened = yield* openOn(disk)
      expect((yield* reopened.scanTuples({ vault: "acme" })).flatMap((state) => state.frontier)).toEqual([written[1], written[0], written[2]])
      yield* write(reopened, [change("ap", 4), change("us", 5)])
      expect(keysUnder(disk, "k/").map(([key, id]) => `${key}=${String(id)}`)).toEqual(["k/ap/n1/tok=3", "k/eu/n1/tok=2", "k/us/n1/tok=1"])
      // The judges' reader spells the numbers out from the k/ keys alone.
      const state = RegionState.read("us", disk)
      expect(state.log.map((entry) => entry.change.id.origin)).toEqual(["us/n1/tok", "eu/n1/tok", "us/n1/tok", "ap/n1/tok", "us/n1/tok"])
      expect([...state.tuples.values()].map((tuple) => tuple.frontier[0]!.id.origin).sort()).toEqual(["ap/n1/tok", "eu/n1/tok", "us/n1/tok", "us/n1/tok", "us/n1/tok"])
    }))

  it.effect("a key numbered by a commit still on its way to disk is found by the next body, not numbered twice", () =>
    Effect.gen(function* () {
      const disk = KvDriver.makeMemoryDisk()
      const held = new Handoff.Gate()
      let commits = 0
      const store = yield* openOn(disk, () => (++commits === 1 ? held.await : undefined))
      const first = yield* Effect.fork(write(store, [change("us", 1)]))
      while (commits === 0) yield* Effect.yieldNow()
      // The first commit is held: the second body reads its writes through the pipeline.
      const second = yield* Effect.fork(write(store, [change("us", 2), change("eu", 3)]))
      for (let turn = 0; turn < 20; turn++) yield* Effect.yieldNow()
      held.unsafeOpen()
      yield* Fiber.join(first)
      yield* Fiber.join(second)
      expect(keysUnder(disk, "k/")).toEqual([
        ["k/eu/n1/tok", "2"],
        ["k/us/n1/tok", "1"]
      ])
      expect((yield* store.readLog(1, 10)).map((entry) => entry.change.id.seq)).toEqual([1, 2, 3])
    }))

  it.effect("a failed commit takes its numbers with it; a number is never given to another key in the process, and values never name a number no key holds", () =>
    Effect.gen(function* () {
      const disk = KvDriver.makeMemoryDisk()
      let failNext = false
      const store = yield* openOn(disk, () => {
        if (!failNext) return undefined
        failNext = false
        return Effect.fail(new StoreError({ operation: "commit", message: "the disk refused" }))
      })
      yield* write(store, [change("us", 1)])
      failNext = true
      expect(Exit.isFailure(yield* Effect.exit(write(store, [change("eu", 2)])))).toBe(true)
      // The failed commit numbered eu 2; nothing of it is on disk, and the next key gets 3.
      expect(keysUnder(disk, "k/")).toEqual([["k/us/n1/tok", "1"]])
      yield* write(store, [change("ap", 3)])
      yield* write(store, [change("eu", 4)])
      expect(keysUnder(disk, "k/")).toEqual([
        ["k/ap/n1/tok", "3"],
        ["k/eu/n1/tok", "4"],
        ["k/us/n1/tok", "1"]
      ])
      expect((yield* store.readLog(1, 10)).map((entry) => entry.change.id.origin)).toEqual(["us/n1/tok", "ap/n1/tok", "eu/n1/tok"])
      expect(RegionState.read("us", disk).log.map((entry) => entry.change.id.origin)).toEqual(["us/n1/tok", "ap/n1/tok", "eu/n1/tok"])
    }))

  it.effect("a store with other writers (FoundationDB's shared prefix) writes every origin key whole", () =>
    Effect.gen(function* () {
      const disk = KvDriver.makeMemoryDisk()
      const store = yield* openOn(disk, undefined, false)
      yield* write(store, [change("us", 1)])
      expect(keysUnder(disk, "k/")).toEqual([])
      const entry = keysUnder(disk, "l/")[0]![1] as string
      expect(JSON.parse(entry)[3]).toBe("us/n1/tok")
    }))

  it.effect("a value naming a number no key holds fails its read with a StoreError, and the judges find it (store_integrity)", () =>
    Effect.gen(function* () {
      const disk = KvDriver.makeMemoryDisk()
      const store = yield* openOn(disk)
      yield* write(store, [change("us", 1)])
      disk.tree = DiskTree.withWrites(disk.tree, new Map([["k/us/n1/tok", undefined]]), undefined)
      const error = yield* Effect.flip(Effect.flatMap(openOn(disk), (reopened) => reopened.readLog(1, 10)))
      expect(error.message).toContain("a stored origin is number 1, which the store's dictionary does not hold")
      const judged = RegionState.read("us", disk)
      expect(judged.log).toEqual([])
      expect(judged.unreadable?.map((value) => value.key)).toEqual(["t/acme\u0000document:readme\u0000viewer\u0000user:us1", "l/000000000000001"])
      expect(judged.unreadable?.[0]?.why).toMatch(/origin is number 1, which no k\/ key holds/)
      expect(Checkers.storeIntegrity([judged]).map((violation) => violation.checker)).toEqual(["store_integrity"])
    }))
})
