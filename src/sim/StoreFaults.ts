/**
 * Store faults for one region: a wrapper around the region's in-memory `KvDriver` that can
 * make commits slow (the committing fiber sleeps on the simulated clock while holding the
 * transaction, as a slow fsync would) or fail (a `StoreError`, nothing committed) with a
 * probability. Only transactions that write are affected; reads pass through untouched. The
 * fault schedule changes the settings while the run goes on.
 */
import { Effect, Layer } from "effect"
import { StoreError } from "../replication/Errors.js"
import * as KvDriver from "../replication/KvDriver.js"
import type * as Random from "../replication/Random.js"
import * as Store from "../replication/Store.js"

/** The current store fault settings of one region, and what they did. */
export class StoreFaults {
  /** Extra commit latency, drawn uniformly from [slowMinMs, slowMaxMs]; 0 when not slow. */
  slowMinMs = 0
  slowMaxMs = 0
  /** Probability that a commit fails. */
  failRate = 0
  /** Transactions run (reads included), commits slowed and commits failed. */
  transactions = 0
  slowed = 0
  failed = 0

  constructor(
    /** The region's store-fault stream (derived from `faults`). */
    private readonly random: Random.Stream
  ) {}

  /** Clears every store fault. */
  reset(): void {
    this.slowMinMs = 0
    this.slowMaxMs = 0
    this.failRate = 0
  }

  /** What happens at commit: maybe a delay, maybe a failure. */
  readonly atCommit: Effect.Effect<void, StoreError> = Effect.suspend(() => {
    if (this.failRate > 0 && this.random.next() < this.failRate) {
      this.failed++
      return Effect.fail(new StoreError({ operation: "commit", message: "injected commit failure" }))
    }
    if (this.slowMaxMs <= 0) return Effect.void
    this.slowed++
    return Effect.sleep(this.slowMinMs + this.random.next() * (this.slowMaxMs - this.slowMinMs))
  })
}

/** A driver whose writing transactions go through `faults` before they commit. */
export const wrap = <V>(driver: KvDriver.KvDriver<V>, faults: StoreFaults): KvDriver.KvDriver<V> => ({
  transact: (body) =>
    driver.transact((tx) => {
      faults.transactions++
      let wrote = false
      const tracked: KvDriver.KvTransaction<V> = {
        get: tx.get,
        range: tx.range,
        set: (key, value) => {
          wrote = true
          tx.set(key, value)
        },
        remove: (key) => {
          wrote = true
          tx.remove(key)
        }
      }
      return Effect.flatMap(body(tracked), (result) => (wrote ? Effect.as(faults.atCommit, result) : Effect.succeed(result)))
    }),
  close: driver.close
})

/** A Store over a region's disk with injectable faults. */
export const layer = (disk: KvDriver.MemoryDisk, faults: StoreFaults): Layer.Layer<Store.Store, StoreError> =>
  Layer.effect(Store.Store, Effect.map(KvDriver.makeMemory(disk), (driver) => Store.makeMemory(wrap(driver, faults))))
