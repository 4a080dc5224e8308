/**
 * The in-memory driver's pipelined commits (`KvDriver.makeMemory` with `pipelined`), the model of
 * the embedded backend's group commit that the simulator's per-node disks run: later bodies read
 * writes still on their way to the disk, readers see only durable data, and a commit that fails
 * takes every commit handed over behind it along, so nothing that read its writes is durable.
 */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Either, Exit, Fiber, Option } from "effect"
import { StoreError } from "../../src/replication/Errors.js"
import * as KvDriver from "../../src/replication/KvDriver.js"

/** An `atCommit` whose n-th commit waits for the n-th gate and then succeeds or fails as told. */
const gatedCommits = Effect.gen(function* () {
  const gates = yield* Effect.all(Array.from({ length: 4 }, () => Deferred.make<void, StoreError>()))
  let next = 0
  const atCommit = () => Deferred.await(gates[next++]!)
  return { gates, atCommit }
})

const write = (driver: KvDriver.KvDriver<unknown>, key: string, value: unknown) => driver.transact((tx) => Effect.sync(() => tx.set(key, value)))

/** A transaction that reads `from` and writes what it saw under `to`. */
const copy = (driver: KvDriver.KvDriver<unknown>, from: string, to: string) =>
  driver.transact((tx) => Effect.flatMap(tx.get(from), (seen) => Effect.sync(() => tx.set(to, seen ?? "nothing"))))

const committed = (driver: KvDriver.KvDriver<unknown>, key: string) => (driver.read ?? driver.transact)((tx) => tx.get(key))

describe("the pipelined in-memory driver", () => {
  it.effect("a later body reads writes still on their way to the disk; readers see them once durable, in order", () =>
    Effect.gen(function* () {
      const { gates, atCommit } = yield* gatedCommits
      const driver = yield* KvDriver.makeMemory<unknown>(KvDriver.makeMemoryDisk(), { pipelined: true, atCommit })
      const first = yield* Effect.fork(write(driver, "a", 1))
      const second = yield* Effect.fork(copy(driver, "a", "b"))
      yield* Effect.yieldNow()
      expect(yield* committed(driver, "a")).toBeUndefined()
      yield* Deferred.succeed(gates[0]!, undefined)
      yield* Deferred.succeed(gates[1]!, undefined)
      yield* Fiber.join(first)
      yield* Fiber.join(second)
      expect([yield* committed(driver, "a"), yield* committed(driver, "b")]).toEqual([1, 1])
    }))

  it.effect("a failed commit fails the commits handed over behind it, none of them reaches the disk, and the driver goes on once they settled", () =>
    Effect.gen(function* () {
      const { gates, atCommit } = yield* gatedCommits
      const driver = yield* KvDriver.makeMemory<unknown>(KvDriver.makeMemoryDisk(), { pipelined: true, atCommit })
      const failing = yield* Effect.fork(write(driver, "a", 1))
      const dependent = yield* Effect.fork(copy(driver, "a", "b"))
      yield* Effect.yieldNow()
      // The second commit would succeed on its own; it read the first one's write, so it must not.
      yield* Deferred.succeed(gates[1]!, undefined)
      yield* Deferred.fail(gates[0]!, new StoreError({ operation: "commit", message: "disk full" }))
      expect(Exit.isFailure(yield* Fiber.await(failing))).toBe(true)
      expect(Exit.isFailure(yield* Fiber.await(dependent))).toBe(true)
      expect([yield* committed(driver, "a"), yield* committed(driver, "b")]).toEqual([undefined, undefined])
      yield* Deferred.succeed(gates[2]!, undefined)
      yield* copy(driver, "a", "c")
      expect(yield* committed(driver, "c")).toBe("nothing")
    }))

  // Swarm seed 7300635: a batch whose changes a node found in a commit still in flight was
  // acknowledged as ignored at once; that commit then failed, the sender moved its cursor on, and
  // one node of the region never got the change.
  it.effect("a body that writes nothing is done only once the commits it may have read are durable, and fails with them", () =>
    Effect.gen(function* () {
      const { gates, atCommit } = yield* gatedCommits
      const driver = yield* KvDriver.makeMemory<unknown>(KvDriver.makeMemoryDisk(), { pipelined: true, atCommit })
      const peek = driver.transact((tx) => tx.get("a"))
      const failing = yield* Effect.fork(write(driver, "a", 1))
      const reader = yield* Effect.fork(peek)
      yield* Effect.yieldNow()
      // It saw the write in flight, so it may not answer yet.
      expect(yield* Fiber.poll(reader)).toEqual(Option.none())
      yield* Deferred.fail(gates[0]!, new StoreError({ operation: "commit", message: "disk full" }))
      expect(Exit.isFailure(yield* Fiber.await(failing))).toBe(true)
      expect(Exit.isFailure(yield* Fiber.await(reader))).toBe(true)
      // Once that has settled, it reads the disk; a commit that succeeds lets it answer with what it saw.
      const written = yield* Effect.fork(write(driver, "a", 2))
      const later = yield* Effect.fork(peek)
      yield* Effect.yieldNow()
      expect(yield* Fiber.poll(later)).toEqual(Option.none())
      yield* Deferred.succeed(gates[1]!, undefined)
      yield* Fiber.join(written)
      expect(yield* Fiber.join(later)).toBe(2)
      // With nothing in flight it answers at once.
      expect(yield* peek).toBe(2)
    }))

  it.effect("without pipelining a commit is durable before the next body starts, as on a regional disk", () =>
    Effect.gen(function* () {
      const { gates, atCommit } = yield* gatedCommits
      const driver = yield* KvDriver.makeMemory<unknown>(KvDriver.makeMemoryDisk(), { atCommit })
      const first = yield* Effect.fork(write(driver, "a", 1))
      const second = yield* Effect.fork(copy(driver, "a", "b"))
      yield* Effect.yieldNow()
      yield* Deferred.fail(gates[0]!, new StoreError({ operation: "commit", message: "disk full" }))
      yield* Deferred.succeed(gates[1]!, undefined)
      expect(Exit.isFailure(yield* Fiber.await(first))).toBe(true)
      yield* Fiber.join(second)
      expect(yield* committed(driver, "b")).toBe("nothing")
    }))
})

/** `transactNow`'s outcome as an Effect, and whether it was over at once. */
const settled = <A>(now: KvDriver.Now<A, StoreError>) => ({
  atOnce: now._tag === "Done",
  effect: (now._tag === "Done" ? (Either.isRight(now.outcome) ? Effect.succeed(now.outcome.right) : Effect.fail(now.outcome.left)) : now.outcome) as Effect.Effect<A, StoreError>
})

const writeNow = (driver: KvDriver.KvDriver<unknown>, key: string, value: unknown) => settled(driver.transactNow!((tx) => Either.right(tx.set(key, value))))

/** `copy`, at once. */
const copyNow = (driver: KvDriver.KvDriver<unknown>, from: string, to: string) =>
  settled(driver.transactNow!((tx) => Either.map(tx.getNow(from), (seen) => tx.set(to, seen ?? "nothing"))))

describe("transactNow, a body run at once", () => {
  for (const pipelined of [false, true]) {
    const kind = pipelined ? "pipelined" : "serial"
    it.effect(`is over, durable, when it returns while the writer is free and the commit is not delayed (${kind})`, () =>
      Effect.gen(function* () {
        const driver = yield* KvDriver.makeMemory<unknown>(KvDriver.makeMemoryDisk(), { pipelined })
        const first = writeNow(driver, "a", 1)
        expect(first.atOnce).toBe(true)
        expect(yield* committed(driver, "a")).toBe(1)
        const failed = settled(driver.transactNow!((tx) => (tx.set("b", 2), Either.left(new StoreError({ operation: "test", message: "the body refused" })))))
        expect(failed.atOnce).toBe(true)
        expect(Exit.isFailure(yield* Effect.exit(failed.effect))).toBe(true)
        // A body that failed wrote nothing.
        expect(yield* committed(driver, "b")).toBeUndefined()
      }))

    it.effect(`waits for a body that holds the writer, and then sees its writes (${kind})`, () =>
      Effect.gen(function* () {
        const driver = yield* KvDriver.makeMemory<unknown>(KvDriver.makeMemoryDisk(), { pipelined })
        const release = yield* Deferred.make<void>()
        const holder = yield* Effect.fork(driver.transact((tx) => Effect.zipRight(Deferred.await(release), Effect.sync(() => tx.set("a", 1)))))
        yield* Effect.yieldNow()
        const copied = copyNow(driver, "a", "b")
        expect(copied.atOnce).toBe(false)
        const copying = yield* Effect.fork(copied.effect)
        yield* Effect.yieldNow()
        expect(yield* committed(driver, "b")).toBeUndefined()
        yield* Deferred.succeed(release, undefined)
        yield* Fiber.join(holder)
        yield* Fiber.join(copying)
        expect(yield* committed(driver, "b")).toBe(1)
      }))
  }

  it.effect("pipelined: reads a commit in flight, is durable only after it, and fails with it", () =>
    Effect.gen(function* () {
      const { gates, atCommit } = yield* gatedCommits
      const driver = yield* KvDriver.makeMemory<unknown>(KvDriver.makeMemoryDisk(), { pipelined: true, atCommit })
      const first = yield* Effect.fork(write(driver, "a", 1))
      yield* Effect.yieldNow()
      const dependent = copyNow(driver, "a", "b")
      // Its body ran at once over the write in flight; its own commit waits behind that one.
      expect(dependent.atOnce).toBe(false)
      const waiting = yield* Effect.fork(dependent.effect)
      yield* Effect.yieldNow()
      expect(yield* Fiber.poll(waiting)).toEqual(Option.none())
      yield* Deferred.succeed(gates[1]!, undefined)
      yield* Deferred.fail(gates[0]!, new StoreError({ operation: "commit", message: "disk full" }))
      expect(Exit.isFailure(yield* Fiber.await(first))).toBe(true)
      expect(Exit.isFailure(yield* Fiber.await(waiting))).toBe(true)
      expect([yield* committed(driver, "a"), yield* committed(driver, "b")]).toEqual([undefined, undefined])
      // Once everything in flight has settled, it runs at once again, over the disk.
      yield* Deferred.succeed(gates[2]!, undefined)
      const after = copyNow(driver, "a", "c")
      expect(after.atOnce).toBe(false)
      yield* after.effect
      expect(yield* committed(driver, "c")).toBe("nothing")
    }))

  it.effect("serial: a delayed commit holds the writer through the delay, as a regional disk's transaction does", () =>
    Effect.gen(function* () {
      const { gates, atCommit } = yield* gatedCommits
      const driver = yield* KvDriver.makeMemory<unknown>(KvDriver.makeMemoryDisk(), { atCommit })
      const delayed = writeNow(driver, "a", 1)
      expect(delayed.atOnce).toBe(false)
      const first = yield* Effect.fork(delayed.effect)
      const second = yield* Effect.fork(copy(driver, "a", "b"))
      yield* Effect.yieldNow()
      // The next body has not run: it would have read the disk without the delayed write.
      yield* Deferred.succeed(gates[0]!, undefined)
      yield* Fiber.join(first)
      yield* Deferred.succeed(gates[1]!, undefined)
      yield* Fiber.join(second)
      expect([yield* committed(driver, "a"), yield* committed(driver, "b")]).toEqual([1, 1])
    }))
})
