/**
 * What the lmdb driver says of its commits for a stalled store's report (`StoreWatch`): a
 * commit in flight, how long lmdb has had it and whether lmdb's committed data holds its last
 * write; nothing in flight once it settled. A stall itself cannot be made from outside lmdb; the
 * simulator's `stall` fault plays it (`test/sim/StoreStall.test.ts`).
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as KvLmdb from "../../src/runtime/KvLmdb.js"

describe("KvLmdb.describeCommits", () => {
  it.scoped("a commit handed to lmdb and not yet durable is described as such, then nothing is in flight", () =>
    Effect.gen(function* () {
      const directory = fs.mkdtempSync(path.join(os.tmpdir(), "inferadb-lmdb-commits-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => fs.rmSync(directory, { recursive: true, force: true })))
      const driver = yield* KvLmdb.makeScoped({ path: directory })
      expect(driver.describeCommits?.()).toBe("no lmdb commit in flight, 0 transaction(s) waiting; the writer lock free")
      // Handed over in this step: lmdb writes it on its own thread, so it is not durable yet.
      const first = yield* Effect.fork(driver.transact((tx) => Effect.sync(() => tx.set("m/probe", "1"))))
      const second = yield* Effect.fork(driver.transact((tx) => Effect.sync(() => tx.set("m/probe", "2"))))
      yield* Effect.yieldNow()
      expect(driver.describeCommits?.()).toMatch(
        /^an lmdb commit of 1 transaction\(s\) handed over \d+ ms ago has not settled \(lmdb's committed data lacks its last write: lmdb's writer never committed it\), 1 waiting behind it; the writer lock free$/
      )
      yield* Fiber.join(first)
      yield* Fiber.join(second)
      expect(driver.describeCommits?.()).toBe("no lmdb commit in flight, 0 transaction(s) waiting; the writer lock free")
    })
  )
})
