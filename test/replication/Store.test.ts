/**
 * The Store contract, run over every backend available here. Runtime backends (embedded,
 * FoundationDB) add themselves to `backends` in `test/runtime/Store.contract.test.ts` by
 * calling `contract` with their layer.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Logger } from "effect"
import { StoreError } from "../../src/replication/Errors.js"
import type * as Change from "../../src/replication/Change.js"
import * as DiskTree from "../../src/replication/DiskTree.js"
import * as Handoff from "../../src/replication/Handoff.js"
import * as KvDriver from "../../src/replication/KvDriver.js"
import * as Store from "../../src/replication/Store.js"
import { contract } from "./fixtures/storeContract.js"

describe("Store over the memory driver", () => {
  contract(() => {
    const disk = KvDriver.makeMemoryDisk()
    return { layer: Store.layerMemory(disk), reopen: () => Store.layerMemory(disk) }
  })
})

describe("Store.regionsHeld on a store written before it was recorded", () => {
  it.effect("reads the log once, records what it found, and then reads only the record", () =>
    Effect.gen(function* () {
      // Text values, as the byte-oriented backends keep them (lmdb, FoundationDB).
      const disk = KvDriver.makeMemoryDisk()
      const store = yield* Store.make(yield* KvDriver.makeMemory<string>(disk), { numberOrigins: true })
      const change = (region: string, seq: number): Change.Change => ({
        id: { origin: `${region}/n1/t`, seq },
        op: "insert",
        tuple: { vault: "acme", resource: "document:readme", relation: "viewer", subject: `user:${seq}` },
        timestamp: { physicalMs: seq, logical: 0 },
        originRegion: region,
        originNode: "n1",
        originRevision: seq,
        committedAtMs: seq,
        context: {}
      })
      const entries = Array.from({ length: 2_500 }, (_, index) => ({ change: change(index === 1_700 ? "eu" : "us", index + 1), receivedFrom: null, appliedAtMs: 1 }))
      yield* store.transaction((tx) => tx.appendLogs(entries))
      // What an earlier version left: the same log, without the record of its regions.
      const recorded = [...DiskTree.from(disk.tree, "")].map(([key]) => key).filter((key) => key.startsWith("o/") || key === "m/regionsIndexed")
      expect(recorded).toEqual(["o/eu", "o/us"])
      disk.tree = DiskTree.withWrites(disk.tree, new Map(recorded.map((key) => [key, undefined])), undefined)
      const commits = disk.commits
      const lines: Array<string> = []
      const logged = Logger.replace(Logger.defaultLogger, Logger.make(({ logLevel, message }) => void lines.push(`${logLevel.label} ${String(message)}`)))
      expect(yield* Effect.provide(store.regionsHeld, logged)).toEqual(["eu", "us"])
      expect(disk.commits).toBe(commits + 1)
      // An upgraded node says why its first start reads the whole log.
      expect(lines).toEqual([
        "INFO reading the log's 2500 entries once to record which regions' changes it holds (a store written before December 5, 2026)",
        "INFO recorded the regions the log holds changes of: eu, us"
      ])
      expect([...DiskTree.from(disk.tree, "")].map(([key]) => key).filter((key) => key.startsWith("o/") || key.startsWith("m/regions"))).toEqual(["m/regionsIndexed", "o/eu", "o/us"])
      // Recorded now: asked again, nothing is written and nothing said.
      expect(yield* Effect.provide(store.regionsHeld, logged)).toEqual(["eu", "us"])
      expect(disk.commits).toBe(commits + 1)
      expect(lines).toHaveLength(2)
    }))
})

// `afterCommit` (the change feed's publication) runs in commit order, and a transaction that
// fails or is interrupted must still give up its turn: a turn never given up held every later
// transaction's publication for good, and with it every reader of the feed.
describe("Store.transaction's afterCommit", () => {
  const memoryStore = (pipelined: boolean) => Effect.map(KvDriver.makeMemory<unknown>(KvDriver.makeMemoryDisk(), { pipelined }), Store.makeMemory)
  const bump = (tx: Store.StoreTransaction) => tx.next("revision")

  for (const pipelined of [false, true]) {
    it.effect(`runs in commit order, and after a failed or interrupted transaction the later ones still run (${pipelined ? "pipelined" : "serial"} driver)`, () =>
      Effect.gen(function* () {
        const store = yield* memoryStore(pipelined)
        const ran: Array<string> = []
        const gate = new Handoff.Gate()
        // The first one's publication waits on a gate; the second's must wait behind it.
        const first = yield* Effect.fork(store.transaction(bump, () => Effect.zipRight(gate.await, Effect.sync(() => void ran.push("first")))))
        yield* Effect.yieldNow()
        const second = yield* Effect.fork(store.transaction(bump, () => Effect.sync(() => void ran.push("second"))))
        for (let turn = 0; turn < 10; turn++) yield* Effect.yieldNow()
        expect(ran).toEqual([])
        gate.unsafeOpen()
        yield* Fiber.join(first)
        yield* Fiber.join(second)
        expect(ran).toEqual(["first", "second"])
        // A body that fails, then one interrupted while its publication waits: the next still publishes.
        expect(Exit.isFailure(yield* Effect.exit(store.transaction((tx) => Effect.zipRight(bump(tx), Effect.fail("refused")), () => Effect.void)))).toBe(true)
        const stuck = yield* Effect.fork(store.transaction(bump, () => Effect.never))
        for (let turn = 0; turn < 10; turn++) yield* Effect.yieldNow()
        const third = yield* Effect.fork(store.transaction(bump, () => Effect.sync(() => void ran.push("third"))))
        for (let turn = 0; turn < 10; turn++) yield* Effect.yieldNow()
        expect(ran).toEqual(["first", "second"])
        yield* Fiber.interrupt(stuck)
        yield* Fiber.join(third)
        expect(ran).toEqual(["first", "second", "third"])
      }))

    it.effect(`a transaction whose caller is interrupted while its commit is on its way to a slow disk still commits, and later ones run (${pipelined ? "pipelined" : "serial"} driver)`, () =>
      Effect.gen(function* () {
        const disk = KvDriver.makeMemoryDisk()
        const slow = new Handoff.Gate()
        let delayed = true
        const store = Store.makeMemory(yield* KvDriver.makeMemory<unknown>(disk, { pipelined, atCommit: () => (delayed ? slow.await : undefined) }))
        const waiting = yield* Effect.fork(store.transaction(bump, () => Effect.void))
        for (let turn = 0; turn < 10; turn++) yield* Effect.yieldNow()
        expect(disk.commits).toBe(0)
        const interrupting = yield* Effect.fork(Fiber.interrupt(waiting))
        for (let turn = 0; turn < 10; turn++) yield* Effect.yieldNow()
        slow.unsafeOpen()
        delayed = false
        yield* Fiber.join(interrupting)
        // The serial driver commits inside the interruptible body, as FoundationDB does: nothing of
        // an interrupted transaction is kept. The pipelined one, as lmdb does, commits what it handed over.
        expect(disk.commits).toBe(pipelined ? 1 : 0)
        const next = yield* Effect.timeoutFail(store.transaction(bump, () => Effect.void), { duration: "1 second", onTimeout: () => "the next transaction never ended" })
        expect(next).toBe(pipelined ? 2 : 1)
        expect(yield* store.progress).toEqual({ pending: 0, ended: 2 })
      }))

    it.effect(`counts every transaction once in its progress and failures, however it ends: committed, refused by its body, failed to commit, interrupted in its body or its publication (${pipelined ? "pipelined" : "serial"} driver)`, () =>
      Effect.gen(function* () {
        const store = yield* memoryStore(pipelined)
        yield* store.transaction(bump, () => Effect.void)
        expect(yield* store.progress).toEqual({ pending: 0, ended: 1 })
        yield* Effect.exit(store.transaction((tx) => Effect.zipRight(bump(tx), Effect.fail("refused")), () => Effect.void))
        yield* Effect.exit(store.transaction(() => Effect.fail(new StoreError({ operation: "commit", message: "the disk is full" }))))
        expect(yield* store.failedTransactions).toEqual({ inARow: 1, total: 1 })
        const inBody = yield* Effect.fork(store.transaction(() => Effect.never))
        yield* Effect.yieldNow()
        expect((yield* store.progress).pending).toBe(1)
        yield* Fiber.interrupt(inBody)
        const inPublication = yield* Effect.fork(store.transaction(bump, () => Effect.never))
        for (let turn = 0; turn < 10; turn++) yield* Effect.yieldNow()
        yield* Fiber.interrupt(inPublication)
        expect(yield* store.progress).toEqual({ pending: 0, ended: 5 })
        // A commit clears the failures in a row, and the turns still come.
        expect(yield* store.transaction(bump, () => Effect.void)).toBeGreaterThan(0)
        expect(yield* store.failedTransactions).toEqual({ inARow: 0, total: 1 })
      }))
  }
})
