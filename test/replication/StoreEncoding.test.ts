/**
 * The Store's value representations: disks keep Schema-validated JSON and refuse values that
 * do not decode; memory keeps decoded values frozen, so no reference a writer kept can change
 * what committed (a simulated crash must lose exactly what had not committed).
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Exit } from "effect"
import type * as Change from "../../src/replication/Change.js"
import * as KvDriver from "../../src/replication/KvDriver.js"
import * as Store from "../../src/replication/Store.js"
import * as StoreEncoding from "../../src/replication/StoreEncoding.js"
import * as TupleState from "../../src/replication/TupleState.js"

const tuple = { vault: "acme", resource: "document:readme", relation: "viewer", subject: "user:alice" }

const change = (seq: number): Change.Change => ({
  id: { origin: "us", seq },
  op: "insert",
  tuple,
  timestamp: { physicalMs: seq, logical: 0 },
  originRegion: "us",
  originNode: "n1",
  originRevision: seq,
  committedAtMs: seq,
  context: { eu: 1 }
})

describe("StoreEncoding", () => {
  it.effect("a tuple state committed to the memory store cannot be changed through the writer's reference", () =>
    Effect.gen(function* () {
      const disk = KvDriver.makeMemoryDisk()
      const store = Store.makeMemory(yield* KvDriver.makeMemory(disk))
      const written = { frontier: [change(1)] }
      yield* store.transaction((tx) => tx.putTuple(tuple, written))
      expect(() => (written.frontier as Array<Change.Change>).push(change(2))).toThrow(TypeError)
      expect(() => {
        ;(written.frontier[0]!.context as Record<string, number>)["eu"] = 7
      }).toThrow(TypeError)
      const read = yield* store.getTuple(tuple)
      expect(read.frontier).toEqual([change(1)])
    }))

  it.effect("a memory transaction that fails keeps none of its values, and a read sees the committed one", () =>
    Effect.gen(function* () {
      const store = Store.makeMemory(yield* KvDriver.makeMemory(KvDriver.makeMemoryDisk()))
      yield* store.transaction((tx) => tx.putTuple(tuple, { frontier: [change(1)] }))
      const failed = yield* Effect.exit(store.transaction((tx) => Effect.zipRight(tx.putTuple(tuple, { frontier: [change(2)] }), Effect.fail("abort"))))
      expect(Exit.isFailure(failed)).toBe(true)
      expect((yield* store.getTuple(tuple)).frontier.map((each) => each.id.seq)).toEqual([1])
    }))

  it("the JSON encoding refuses stored text that is not a valid tuple state, saying why", () => {
    const cell = StoreEncoding.json.schema(TupleState.TupleState)
    const text = cell.encode({ frontier: [change(1)] })
    expect(Either.getOrThrow(cell.decode(text))).toEqual({ frontier: [change(1)] })
    const broken = cell.decode(text.replace('"insert"', '"upsert"'))
    expect(Either.isLeft(broken) && broken.left).toContain("upsert")
    expect(Either.isLeft(StoreEncoding.json.integer.decode("12x"))).toBe(true)
  })

  it.effect("a stored counter that is not an integer is a store error naming its key", () =>
    Effect.gen(function* () {
      const disk = KvDriver.makeMemoryDisk()
      const driver = yield* KvDriver.makeMemory(disk)
      yield* driver.transact((tx) => Effect.sync(() => tx.set("m/logEnd", "three")))
      const error = yield* Effect.flip(Store.makeMemory(driver).logEnd)
      expect(error.message).toContain("m/logEnd")
    }))
})
