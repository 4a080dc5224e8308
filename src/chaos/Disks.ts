/**
 * Full disks on real nodes: how the real harness applies a scenario's `store` fault. The
 * simulator fails a share of a region's commits (`fail_rate`); on real processes the failure
 * is the one disks have, no space left. Every node of a region that a failing store fault
 * names keeps its data on a tmpfs of its own (`sizeMb`), mounted in its folder; the fault fills
 * what is left of it with one file, so lmdb's commits that need new pages fail with ENOSPC
 * (commits that fit in pages lmdb freed earlier still go through: the disk decides the rate,
 * not the scenario), and a `store` fault with `fail_rate: 0` for the region, or heal-all,
 * deletes the file. Slow commits (`slow_ms`) have no counterpart here and are reported as not
 * applied.
 *
 * Mounting needs root, as the network namespaces do. When the run ends, what the disk holds
 * (the node's data, and the directories of earlier wipes) is copied into the node's folder for
 * the report, and the tmpfs is unmounted.
 */
import { execFile, execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { promisify } from "node:util"

/** The size of each node's tmpfs: room for a run's data many times over above `store.min_free_mb` (64 MB by default), small enough to fill at once. */
export const sizeMb = 256

/** One node's disk. */
export interface Disk {
  /** Where the tmpfs is mounted. */
  readonly mount: string
  /** Whether the filler file is on it. */
  full: boolean
}

const fillerName = "filler"

/** Mounts a tmpfs at `<folder>/disk`; throws, naming the reason, when it cannot. */
export const mount = (folder: string): Disk => {
  const directory = path.join(folder, "disk")
  fs.mkdirSync(directory, { recursive: true })
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", `size=${sizeMb}m`, "tmpfs", directory], { stdio: ["ignore", "ignore", "pipe"] })
  } catch (error) {
    throw new Error(`could not mount a ${sizeMb} MB tmpfs for a full-disk fault at ${directory} (needs root): ${error instanceof Error ? error.message : String(error)}`)
  }
  return { mount: directory, full: false }
}

/**
 * Fills what is left of the disk with one file, until the disk refuses more. The space is taken
 * by `fallocate` in a child process, so the harness goes on sending writes and reading feeds
 * meanwhile: filling 256 MB by writes from the harness itself blocked it for up to 6 s on a
 * busy machine (nine nodes on two cores, `chaos swarm` seed 52001), its workload and client
 * deadlines with it. Writes take the last bytes, or all of them where `fallocate` fails.
 */
export const fill = async (disk: Disk): Promise<void> => {
  if (disk.full) return
  disk.full = true
  const file = path.join(disk.mount, fillerName)
  const { bavail, bsize } = fs.statfsSync(disk.mount)
  try {
    await execFileAsync("fallocate", ["-l", String(bavail * bsize), file])
  } catch {
    // Not installed, or refused: the writes below fill it all.
  }
  fillWith(file)
}

const execFileAsync = promisify(execFile)

/** Writes `file` (appending) until its disk refuses more (ENOSPC), down to the last half-kilobyte that fits. */
export const fillWith = (file: string): void => {
  const chunk = Buffer.alloc(64 * 1024, 1)
  const fd = fs.openSync(file, "a")
  try {
    for (;;) fs.writeSync(fd, chunk)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOSPC") throw error
    // The last bytes: a smaller write may still fit after a chunk did not.
    for (let size = chunk.length / 2; size >= 512; size /= 2) {
      try {
        fs.writeSync(fd, chunk, 0, size)
      } catch {
        // Full at this size; try a smaller one.
      }
    }
  } finally {
    fs.closeSync(fd)
  }
}

/** Deletes the filler file: the disk has room again. */
export const free = (disk: Disk): void => {
  disk.full = false
  fs.rmSync(path.join(disk.mount, fillerName), { force: true })
}

/** Copies what the disk holds (but the filler) into `into`, then unmounts it. */
export const unmount = (disk: Disk, into: string): void => {
  try {
    for (const name of fs.readdirSync(disk.mount)) {
      if (name !== fillerName) fs.cpSync(path.join(disk.mount, name), path.join(into, name), { recursive: true })
    }
  } finally {
    // Whatever the copy did, the mount goes: a run must leave nothing mounted behind.
    unmountNow(disk)
  }
}

/** Unmounts at once, keeping nothing (the last resort on a signal). */
export const unmountNow = (disk: Disk): void => {
  try {
    // Lazily: a process that still has a file open there cannot keep the mount behind.
    execFileSync("umount", ["-l", disk.mount], { stdio: "ignore" })
  } catch {
    // Already unmounted.
  }
}
