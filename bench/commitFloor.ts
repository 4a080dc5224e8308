/**
 * How long this machine's disk takes to make one lone write durable: lmdb transactions of 200
 * puts of 200 bytes (about what a 100-change write stores: a log entry and a tuple state per
 * change), committed one at a time, 20 ms apart, in a fresh directory, with the durability
 * `KvLmdb` opens the store with (`noSync` and `noMetaSync` off, `overlappingSync` off: the commit
 * returns once the disk has it). p50, p99 and max of 200 commits, after 10 unmeasured ones.
 *
 * Why the bench reports it. A change leaves its origin only once the commit that holds it is
 * durable (nothing shipped may be lost by a crash), so at a low rate, where no other write shares
 * its commit, every change waits for one lone commit before it travels: the lag's p99 cannot be
 * below this figure's p99, whatever the replicator does, and the distance between the two is
 * what the replicator and the machine's scheduling add. The disk of the 2-core test VMs varies
 * through the day: on December 7, 2026 `bench:store`'s `loneWrite` (the whole write path on a
 * fresh node) had a commit p99 of 6.3 ms in the morning, and this measure 2.0-2.8 ms in the
 * afternoon (a throwaway variant with 100 appended and 100 randomly placed puts per commit, in a
 * store of 400,000 keys: 2.6 ms), while the lag at 1,000 changes/s had a p99 of 7-9 ms.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { open } from "lmdb"
import * as KvLmdb from "../src/runtime/KvLmdb.js"

export interface CommitFloor {
  readonly commits: number
  readonly gapMs: number
  readonly p50Ms: number
  readonly p99Ms: number
  readonly maxMs: number
}

/** What to measure: `commits` timed commits (after 10 untimed), `gapMs` apart. */
export interface Settings {
  readonly commits: number
  readonly gapMs: number
}

const defaults: Settings = { commits: 200, gapMs: 20 }
const warmUp = 10
const putsPerCommit = 200

/** The prefix of the temporary directories the measurement writes in (and removes). */
export const dirPrefix = "inferadb-commit-floor-"

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

// As `bench:store`'s `spread`, which cannot be imported: that file runs its bench when loaded,
// and the bench's figure check (test/bench/compareFigures.test.ts) reads its fields in its source.
const quantile = (sorted: ReadonlyArray<number>, q: number): number => Number(sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!.toFixed(2))

export const measure = async ({ commits, gapMs }: Settings = defaults): Promise<CommitFloor> => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), dirPrefix))
  const db = open<string, string>({ path: dir, encoding: "string", ...KvLmdb.durability })
  const value = "v".repeat(200)
  try {
    const durations: Array<number> = []
    for (let commit = 0; commit < warmUp + commits; commit++) {
      await sleep(gapMs)
      const startedMs = performance.now()
      db.transactionSync(() => {
        for (let put = 0; put < putsPerCommit; put++) db.putSync(`${String(commit).padStart(6, "0")}/${put}`, value)
      })
      if (commit >= warmUp) durations.push(performance.now() - startedMs)
    }
    const sorted = durations.sort((a, b) => a - b)
    return { commits, gapMs, p50Ms: quantile(sorted, 0.5), p99Ms: quantile(sorted, 0.99), maxMs: quantile(sorted, 1) }
  } finally {
    await db.close()
    fs.rmSync(dir, { recursive: true, force: true })
  }
}
