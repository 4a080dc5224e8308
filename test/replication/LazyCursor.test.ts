/**
 * The lazily persisted replication cursor: positions coalesce into background writes, and a
 * write the store fails is tried again even when no later position comes.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, TestClock } from "effect"
import { StoreError } from "../../src/replication/Errors.js"
import * as KvDriver from "../../src/replication/KvDriver.js"
import * as LazyCursor from "../../src/replication/LazyCursor.js"
import * as Store from "../../src/replication/Store.js"

/** An in-memory store whose first `failures` cursor writes fail. */
const failingCursorWrites = (failures: number) =>
  Effect.map(Store.Store.pipe(Effect.provide(Store.layerMemory(KvDriver.makeMemoryDisk()))), (store): Store.Store["Type"] => {
    let left = failures
    return {
      ...store,
      advanceCursor: (target, position) =>
        left-- > 0 ? Effect.fail(new StoreError({ operation: "commit", message: "injected" })) : store.advanceCursor(target, position)
    }
  })

describe("LazyCursor", () => {
  it.scoped("persists the latest position, and retries a failed write without waiting for another advance", () =>
    Effect.gen(function* () {
      const store = yield* failingCursorWrites(2)
      const cursor = yield* Effect.provideService(LazyCursor.make("eu", 0, 1_000), Store.Store, store)
      cursor.advance(5)
      cursor.advance(9)
      yield* TestClock.adjust(10)
      // Two failed writes, then the retry after the delay stores the last position.
      expect(yield* store.getCursor("eu")).toBe(0)
      yield* TestClock.adjust(1_000)
      yield* TestClock.adjust(1_000)
      expect(yield* store.getCursor("eu")).toBe(9)
      // A smaller position never moves it back.
      cursor.advance(3)
      yield* TestClock.adjust(1_000)
      expect(yield* store.getCursor("eu")).toBe(9)
    }))
})
