/**
 * Room left on the lmdb store's disk, checked before each lmdb transaction. lmdb-js 3.5.6 does
 * not survive a full disk: after a few commits failed with ENOSPC, a node of the chaos harness's
 * full-disk scenario (`scenarios/chaos-disk-full.yaml`) aborted with "malloc(): invalid next
 * size" inside lmdb's native write path (lmdb's author reports segfaults on full disks too).
 * So the store stops short of it: while the disk has less than `store.min_free_mb` free, every
 * commit is refused with a StoreError before lmdb writes anything, the node reports itself not
 * ready (`Store.checkCommits`), and it takes writes again once there is room.
 *
 * `statfs` is one system call; it runs once per lmdb transaction (a group commit, at most one
 * fsync's worth of transactions), so it costs nothing measurable.
 */
import * as fs from "node:fs"

/** The default of `store.min_free_mb`: more than lmdb grows its file by for any one commit this node makes. */
export const defaultMinFreeBytes = 64 * 2 ** 20

/** A commit refused for want of room; the Store reports it as a StoreError of operation `room` (gRPC RESOURCE_EXHAUSTED: nothing was written). */
export class Short extends Error {}

const mb = (bytes: number): string => (bytes / 2 ** 20).toFixed(1)

/** A check of the disk under `directory`: undefined while it has `minFreeBytes` free (0 turns it off), else why not. */
export const make = (directory: string, minFreeBytes: number): (() => Short | undefined) => {
  if (minFreeBytes <= 0) return () => undefined
  return () => {
    let freeBytes: number
    try {
      const stats = fs.statfsSync(directory)
      freeBytes = stats.bavail * stats.bsize
    } catch {
      // A disk that cannot be asked is not refused for it: lmdb's own commit says what is wrong.
      return undefined
    }
    if (freeBytes >= minFreeBytes) return undefined
    return new Short(
      `the disk of ${directory} has ${mb(freeBytes)} MB free, under store.min_free_mb (${mb(minFreeBytes)} MB): writes are refused until there is room (lmdb can crash on a full disk)`
    )
  }
}
