/**
 * Room left in the lmdb map under an address-space limit (`ulimit -v`, RLIMIT_AS), checked before
 * each lmdb transaction beside the disk's (`DiskRoom`). When the data file outgrows its map,
 * lmdb-js maps it again, twice as large, beside the old map; under a limit that mapping fails,
 * and lmdb-js does not report it: the process dies of a segmentation fault (a writer under
 * `ulimit -v 3000000` with a 256 MB map did at about 500 MB of data). So under a limit the store
 * stops short of its map (`KvLmdb.mapSizeForFile`: a quarter of the address space left at open): while
 * the data file is within `headroomBytes` of the map's end, every commit is refused with a
 * StoreError of operation `room` before lmdb writes anything, the node reports itself not ready
 * (`Store.checkCommits`) and says why: raise the limit and restart. Reads go on. Without a limit
 * the map grows as lmdb grows it.
 *
 * One `stat` per lmdb transaction (a group commit), like `DiskRoom`'s `statfs`.
 */
import * as fs from "node:fs"
import { Short } from "./DiskRoom.js"

/** How near the map's end the data file may come: more than lmdb grows its file by for any one commit this node makes (as `DiskRoom.defaultMinFreeBytes`). */
export const headroomBytes = 64 * 2 ** 20

const mib = (bytes: number): string => (bytes / 2 ** 20).toFixed(0)

/**
 * A check of lmdb's `dataFile` against a map of `mapBytes` under an address-space limit of
 * `limitBytes` (undefined: none, and nothing is ever refused): undefined while the file has
 * room, else why not.
 */
export const make = (dataFile: string, mapBytes: number, limitBytes: number | undefined): (() => Short | undefined) => {
  if (limitBytes === undefined) return () => undefined
  return () => {
    let fileBytes: number
    try {
      fileBytes = fs.statSync(dataFile).size
    } catch {
      // A file that cannot be asked is not refused for it: lmdb's own commit says what is wrong.
      return undefined
    }
    if (fileBytes + headroomBytes < mapBytes) return undefined
    return new Short(
      `the store's data file (${mib(fileBytes)} MiB) has come within ${mib(headroomBytes)} MiB of its ${mib(mapBytes)} MiB map, and under this process's address-space limit (ulimit -v, ${mib(limitBytes)} MiB) lmdb crashes when it cannot map more: writes are refused; raise the limit and restart the node`
    )
  }
}
