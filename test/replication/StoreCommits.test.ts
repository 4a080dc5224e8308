/**
 * `Store.checkCommits`: healthy while transactions commit; after a store failure it says how
 * many failed in a row and why the last did, and a probe commit brings it back once the disk
 * works again. A body's own failure is not the store's.
 */
import { describe, expect, it } from "@effect/vitest"
import { Data, Deferred, Effect, Either, Exit, Fiber } from "effect"
import { StoreError } from "../../src/replication/Errors.js"
import * as KvDriver from "../../src/replication/KvDriver.js"
import * as Store from "../../src/replication/Store.js"
import { change } from "./fixtures/storeContract.js"

class Refused extends Data.TaggedError("Refused")<{}> {}

/**
 * A memory store whose commits fail while `failing.on` is set; `now`: whether its small writes
 * may run at once (`KvDriver.transactNow`), else they go through `transact` as on the backends
 * without it (FoundationDB).
 */
const failingStore = (pipelined: boolean, now = true) =>
  Effect.gen(function* () {
    const failing = { on: false, commits: 0 }
    const atCommit = () => {
      failing.commits++
      return failing.on ? Effect.fail(new StoreError({ operation: "commit", message: "No space left on device" })) : undefined
    }
    const driver = yield* KvDriver.makeMemory<unknown>(KvDriver.makeMemoryDisk(), { pipelined, atCommit })
    expect(driver.transactNow).toBeDefined()
    const { transactNow: _, ...withoutNow } = driver
    return { store: Store.makeMemory(now ? driver : withoutNow), failing }
  })

const write = (store: Store.Store["Type"], target: string) => Effect.exit(store.advanceCursor(target, 1))

const failureMessage = (exit: Exit.Exit<unknown, StoreError>): string =>
  Exit.isFailure(exit) && exit.cause._tag === "Fail" ? exit.cause.error.message : `not a failure: ${String(exit)}`

describe("Store.checkCommits", () => {
  for (const [pipelined, now] of [[false, true], [true, true], [false, false], [true, false]] as const) {
    it.effect(`reports failing commits and recovers through a probe commit (${pipelined ? "pipelined" : "serial"} driver, cursors written ${now ? "at once" : "through transact"})`, () =>
      Effect.gen(function* () {
        const { store, failing } = yield* failingStore(pipelined, now)
        // Nothing run yet, then a commit that worked: healthy, and no probe is written.
        yield* store.checkCommits
        expect(Exit.isSuccess(yield* write(store, "eu"))).toBe(true)
        const commitsWhileHealthy = failing.commits
        yield* store.checkCommits
        expect(failing.commits).toBe(commitsWhileHealthy)

        failing.on = true
        expect(Exit.isFailure(yield* write(store, "ap"))).toBe(true)
        // Reads still work on a disk that cannot commit: a read alone would call it healthy.
        expect(yield* store.getCursor("eu")).toBe(1)
        // The probe fails too, and counts: two transactions in a row.
        const first = yield* Effect.exit(store.checkCommits)
        expect(failureMessage(first)).toBe("2 transactions in a row did not commit, the last: No space left on device")
        expect(Exit.isFailure(yield* write(store, "ap"))).toBe(true)
        expect(failureMessage(yield* Effect.exit(store.checkCommits))).toMatch(/^4 transactions in a row did not commit/)

        expect(yield* store.failedTransactions).toEqual({ inARow: 4, total: 4 })

        // The disk works again: the probe commits, and the store is healthy without any other write.
        failing.on = false
        yield* store.checkCommits
        expect(yield* store.failedTransactions).toEqual({ inARow: 0, total: 4 })
        const afterRecovery = failing.commits
        yield* store.checkCommits
        expect(failing.commits).toBe(afterRecovery)
        expect(yield* store.getCursor("ap")).toBe(0)
      }))
  }

  it.effect("a body that fails with its own error is not a failed commit, and a commit that works clears the count", () =>
    Effect.gen(function* () {
      const { store, failing } = yield* failingStore(false)
      const refused = yield* Effect.exit(store.transaction(() => Effect.fail(new Refused())))
      expect(Exit.isFailure(refused)).toBe(true)
      yield* store.checkCommits
      failing.on = true
      yield* write(store, "eu")
      failing.on = false
      expect(Exit.isSuccess(yield* write(store, "eu"))).toBe(true)
      const commits = failing.commits
      yield* store.checkCommits
      expect(failing.commits).toBe(commits)
    }))
})

/**
 * A transaction run at once whose writes are handed over behind a commit in flight must see its
 * own commit through even when its fiber is interrupted: the wait settles the commit, and a commit
 * left unsettled would hold every later one for ever.
 */
describe("Store transactions run at once, interrupted", () => {
  const gatedStore = (pipelined: boolean) =>
    Effect.gen(function* () {
      // One gate per commit: three before the interruptions settle, two after.
      const gates = yield* Effect.all(Array.from({ length: 5 }, () => Deferred.make<void, StoreError>()))
      let next = 0
      const driver = yield* KvDriver.makeMemory<unknown>(KvDriver.makeMemoryDisk(), { pipelined, atCommit: () => Deferred.await(gates[next++]!) })
      return { store: Store.makeMemory(driver), gates }
    })

  const entry = (seq: number): Omit<Store.LogEntry, "position"> => ({ change: change(seq, `user:u${seq}`), receivedFrom: null, appliedAtMs: seq })

  for (const pipelined of [true, false]) {
    it.effect(`an interrupted cursor write and an interrupted append leave the store going (${pipelined ? "pipelined" : "serial"} driver)`, () =>
      Effect.gen(function* () {
        const { store, gates } = yield* gatedStore(pipelined)
        const announced: Array<number> = []
        const append = (seq: number) =>
          store.transactionNow([], (tx) => Either.map(tx.appendLogs([entry(seq)]), (entries) => entries[0]!.position), (position) => void announced.push(position))
        const first = yield* Effect.fork(append(1))
        yield* Effect.yieldNow()
        const cursor = yield* Effect.fork(store.advanceCursor("eu", 7))
        const second = yield* Effect.fork(append(2))
        yield* Effect.yieldNow()
        const interrupting = yield* Effect.fork(Effect.zip(Fiber.interrupt(cursor), Fiber.interrupt(second)))
        yield* Effect.yieldNow()
        for (const gate of gates) yield* Deferred.succeed(gate, undefined)
        yield* Fiber.join(first)
        yield* Fiber.join(interrupting)
        // Whatever each caller learnt, nothing is left pending and later transactions run.
        expect(yield* store.progress).toEqual({ pending: 0, ended: 3 })
        expect(Exit.isSuccess(yield* Effect.exit(append(3)))).toBe(true)
        expect(Exit.isSuccess(yield* Effect.exit(store.advanceCursor("ap", 1)))).toBe(true)
        const end = yield* store.logEnd
        // Pipelined, the interrupted ones had handed their writes over and saw them through (the
        // caller may still learn of the interruption); serial, an interrupted one may have been
        // stopped before its commit, and then wrote nothing.
        if (pipelined) {
          expect([yield* store.getCursor("eu"), end]).toEqual([7, 3])
          expect(announced).toEqual([1, 2, 3])
        } else {
          expect(announced).toEqual((yield* store.readLog(1, 10)).map((logged) => logged.position))
        }
      }))
  }
})

