/**
 * Store faults for one region: the commit hook of the region's in-memory `KvDriver`s, which can
 * make commits slow (the commit waits on the simulated clock, as a slow fsync would) or fail (a
 * `StoreError`, nothing committed) with a probability. Only transactions that write are
 * affected; reads pass through untouched. The fault schedule changes the settings while the run
 * goes on.
 */
import { Effect } from "effect"
import { StoreError } from "../replication/Errors.js"
import * as Handoff from "../replication/Handoff.js"
import * as KvDriver from "../replication/KvDriver.js"
import type * as Random from "../replication/Random.js"
import * as Store from "../replication/Store.js"
import type * as Codec from "./Codec.js"

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

  /** What happens at commit: maybe a delay, maybe a failure; undefined when neither. */
  readonly atCommit = (): Effect.Effect<void, StoreError> | undefined => {
    if (this.failRate > 0 && this.random.next() < this.failRate) {
      this.failed++
      return Effect.fail(new StoreError({ operation: "commit", message: "injected commit failure" }))
    }
    if (this.slowMaxMs <= 0) return undefined
    this.slowed++
    return Effect.sleep(this.slowMinMs + this.random.next() * (this.slowMaxMs - this.slowMinMs))
  }
}

/** A driver that counts the transactions it runs (reads included). */
const counted = <V>(driver: KvDriver.KvDriver<V>, faults: StoreFaults): KvDriver.KvDriver<V> => {
  const within = driver.transactWithin
  const now = driver.transactNow
  return {
    transact: (body) => Effect.suspend(() => {
      faults.transactions++
      return driver.transact(body)
    }),
    ...(within === undefined ? {} : { transactWithin: (body, restore) => Effect.suspend(() => {
      faults.transactions++
      return within(body, restore)
    }) }),
    ...(now === undefined ? {} : { transactNow: (body) => {
      faults.transactions++
      return now(body)
    } }),
    ...(driver.read === undefined ? {} : { read: driver.read }),
    ...(driver.readNow === undefined ? {} : { readNow: driver.readNow }),
    ...(driver.describeCommits === undefined ? {} : { describeCommits: driver.describeCommits }),
    close: driver.close
  }
}

/**
 * How a simulated disk keeps its values: `decoded` (the values themselves, frozen, as the
 * in-memory store does: most runs) or `text` (the compact stored form the byte-oriented
 * backends write, lmdb and FoundationDB, through the same Store code they run). Runs whose
 * messages travel as bytes (`wire: bytes`, see `Codec.ts`) keep their disks as text too, so
 * the stored form is exercised under every fault the simulator injects, as the codec is.
 */
export type StoredAs = "decoded" | "text"

/** How a run's disks keep their values: as text when its messages travel as bytes. */
export const storedAsOf = (wire: Codec.Wire | undefined): StoredAs => (wire === "bytes" ? "text" : "decoded")

/**
 * A Store over a disk with injectable faults: every transaction that writes goes through
 * `faults.atCommit` before it is durable. A node's own disk commits as the embedded backend
 * does (`pipelined`: later bodies run, reading its writes, while a slow commit is on its way to
 * the disk, and a failed commit takes them with it); a regional disk commits one transaction
 * at a time, as FoundationDB's transactions are durable before they return. Made as a service,
 * not a layer: a simulated node's start builds its services directly (`Node.start`).
 */
export const make = (
  disk: KvDriver.MemoryDisk,
  faults: StoreFaults,
  shape: "per_node" | "shared",
  storedAs: StoredAs,
  decorate: DecorateDriver = (driver) => driver,
  stalled: () => boolean = () => false
): Effect.Effect<Store.Store["Type"], StoreError> => {
  // A stalled store's commit never completes (`stall`): it waits for ever, and with it every
  // commit behind it, as one lmdb commit that never settled held the group commit of a real node.
  const atCommit = () => (stalled() ? Handoff.parked : faults.atCommit())
  const options: KvDriver.MemoryOptions = { pipelined: shape === "per_node", atCommit }
  return storedAs === "text"
    ? Effect.flatMap(KvDriver.makeMemory<string>(disk, options), (driver) => Store.make(decorate(counted(driver, faults)), { numberOrigins: shape === "per_node" }))
    : Effect.map(KvDriver.makeMemory(disk, options), (driver) => Store.makeMemory(decorate(counted(driver, faults))))
}

/** Wraps the driver a node's Store runs on (a canary's broken variant: `canary/Canary.ts`). */
export type DecorateDriver = <V>(driver: KvDriver.KvDriver<V>) => KvDriver.KvDriver<V>
