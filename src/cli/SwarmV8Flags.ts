/**
 * The V8 flags `sim swarm` runs with. Both are fixed when Node starts, so a swarm started
 * without them runs its own command line again in a child process with them; a flag the user
 * gave (node's own flags or NODE_OPTIONS) stands. The child inherits stdin, stdout and stderr,
 * its exit code becomes this process's, and an interrupt or termination sent to this process
 * is passed on. The seeds run, and everything printed and written, do not depend on them.
 *
 * - Several jobs: one V8 helper thread (`--v8-pool-size=1`). Besides each thread running
 *   JavaScript, V8 keeps a process-wide pool of helper threads (one per core by default, then
 *   four) for concurrent compilation and garbage collection. A simulation keeps them busy: one
 *   job alone used about 1.45 cores of this 2-core machine, so with two jobs the helpers of both
 *   competed with the jobs themselves, and two jobs ran 120 swarm seeds no faster than one
 *   (19.8-22.4 s against 20.5-23.0 s). With one helper thread the same runs took 16.5-17.1 s.
 *   (The workers' young generation is set apart, in `SwarmJobs`.)
 * - Several jobs: the garbage collector's and the optimizing compiler's work on the jobs' own
 *   threads (`--single-threaded-gc`, `--no-concurrent-recompilation`). One job keeps about 1.5
 *   cores busy, its helpers doing a third of the work (`npm run bench:sim`'s `threadCpu`: 8.4
 *   CPU seconds on the main thread and 6.6 on the others over 100 seeds), so with one job per
 *   core the helpers' work can only take cores from the jobs, and handing it over costs besides.
 *   On their own threads, 300 swarm seeds on two jobs, alternated over 7 pairs of seed ranges
 *   (December 7, 2026): 780-869 against 749-841 seeds/min (7 of 7 pairs faster) and 2-6% less
 *   CPU; with `--single-threaded` (every kind of V8 background work) 771-818 against 820-836 for
 *   these two alone, over 3 pairs.
 * - Several jobs: an old generation of 256 MB at first (`--initial-old-space-size=256`), below
 *   which V8 does not collect it in full. A job keeps about 40 MB alive between seeds, and V8 set
 *   the next full collection at a small multiple of that, so each job marked its heap every few
 *   seeds (31 full collections in 400 seeds on two jobs, 19 with the leak below).
 *   Until December 7, 2026 a swarm leaked about 1 MB per seed (the fibers a crash left behind;
 *   `Scheduler.crash`), which grew that room by itself, at the cost of memory without bound (a
 *   one-job swarm reached 3.3 GB in about 3,000 seeds). With the leak fixed, two jobs ran 1,200
 *   seeds at 929 and 956 seeds/min against 983 and 1,055 with it (the same two seed ranges); 800
 *   seeds of one range ran at 927 seeds/min with this flag against 848 without it (1.0 against
 *   0.7 GB), and 1,200 of two others at 1,005 and 974 against 1,059 and 1,050 with the leak, in
 *   0.85-0.9 GB against 2.8-3.0 GB and growing. 512 and 1,024 MB were no faster (999 and 990
 *   seeds/min on the first of those ranges).
 * - One job: a 128 MB semi-space (`--max-semi-space-size=128`). The job runs in this thread,
 *   whose default semi-space is 16 MB. A seed's world lives longer than the young generation
 *   takes to fill, so each scavenge copies and promotes what the running seed holds; a larger
 *   young generation fills less often for about as much to copy. December 1, 2026: 32 MB ran 60
 *   seeds at 294-296 against 277-278 seeds/min (64 MB no faster then). December 7, with the
 *   simulator about twice as fast: 150 seeds from 7000 took 464 scavenges (2.4 s) at 32 MB, 240
 *   (1.8 s) at 64 and 137 (1.4 s) at 128; 300 seeds from 9500000, alternated, 717 and 678
 *   seeds/min at 128 MB against 643 and 620 at 32, in 650-700 against 400-450 MB of peak
 *   resident memory, and from 9600000 762 and 776 against 747 and 741 (640-790 against 350 MB):
 *   2-11% faster in 6 of 6 pairs; 256 MB was no faster (690) in 1.06 GB. Several jobs gain
 *   nothing from a larger one (`SwarmJobs`' workers: 384 against 96 MB, 400 seeds, 901 and 904
 *   against 910 and 904 seeds/min); why one job gains and two do not, I did not find (perhaps two
 *   young generations then crowd the cores' caches).
 */
import { type ChildProcess, spawn } from "node:child_process"

/** Helper threads for a swarm on several jobs. */
export const poolSizeForJobs = 1

/** The semi-space, in MB, for a swarm on one job. */
export const semiSpaceMbForOneJob = 128

/** The old generation, in MB, below which a swarm on several jobs is not collected in full. */
export const initialOldSpaceMbForJobs = 256

/** V8's background work a swarm on several jobs keeps on its jobs' threads. */
export const onJobThreadsFlags: ReadonlyArray<string> = ["--single-threaded-gc", "--no-concurrent-recompilation"]

const poolFlag = "--v8-pool-size"
const semiSpaceFlag = "--max-semi-space-size"
const initialOldSpaceFlag = "--initial-old-space-size"

/** The flags this process was started with: node's own, then NODE_OPTIONS. */
const startFlags = (): ReadonlyArray<string> => [...process.execArgv, ...(process.env["NODE_OPTIONS"] ?? "").split(/\s+/)]

/**
 * The value this process was started with for `flag` (node's flags, else NODE_OPTIONS);
 * undefined when it has V8's default.
 */
const startedWith = (flag: string): number | undefined => {
  const flags = startFlags()
  // `--flag=N` or `--flag N`, as node takes either.
  const at = flags.findIndex((argument) => argument === flag || argument.startsWith(`${flag}=`))
  if (at === -1) return undefined
  const given = flags[at]!
  return Number(given === flag ? flags[at + 1] : given.slice(flag.length + 1))
}

/** The helper-thread pool size this process was started with; undefined for V8's default. */
export const poolSize = (): number | undefined => startedWith(poolFlag)

/** The semi-space (MB) this process was started with; undefined for V8's default. */
export const semiSpaceMb = (): number | undefined => startedWith(semiSpaceFlag)

/** The initial old generation (MB) this process was started with; undefined for V8's default. */
export const initialOldSpaceMb = (): number | undefined => startedWith(initialOldSpaceFlag)

/** A boolean V8 flag's name without `--`, `no-` or its spelling with `_`. */
const booleanName = (argument: string): string => {
  const name = argument.replace(/^--/, "").replaceAll("_", "-")
  return name.startsWith("no-") ? name.slice(3) : name
}

/** Whether this process was started with boolean flag `flag` either way (`--flag` or `--no-flag`, `_` or `-`): then the user's choice stands. */
const givenEitherWay = (flag: string): boolean => {
  const flags = startFlags()
  return flags.some((argument) => argument.startsWith("--") && booleanName(argument) === booleanName(flag))
}

/** Whether V8's background work runs on the jobs' own threads (`onJobThreadsFlags`, as given). */
export const backgroundOnJobThreads = (): boolean => {
  const flags = startFlags().map((argument) => argument.replaceAll("_", "-"))
  return onJobThreadsFlags.every((flag) => flags.includes(flag))
}

/** The flags a swarm on `jobs` jobs runs with that this process was not started with. */
export const missingFor = (jobs: number): ReadonlyArray<string> =>
  jobs > 1
    ? [
        ...(poolSize() === undefined ? [`${poolFlag}=${poolSizeForJobs}`] : []),
        ...(initialOldSpaceMb() === undefined ? [`${initialOldSpaceFlag}=${initialOldSpaceMbForJobs}`] : []),
        ...onJobThreadsFlags.filter((flag) => !givenEitherWay(flag))
      ]
    : semiSpaceMb() === undefined ? [`${semiSpaceFlag}=${semiSpaceMbForOneJob}`] : []

/**
 * Runs this command line again with `flags`; resolves to its exit code. The interrupt and
 * termination handlers are in place before the child is started: a signal that came while
 * `spawn` was still waiting for the child's `exec` killed this process by default and left the
 * child running on its own (seen under load, in the suite).
 */
export const rerunWith = (flags: ReadonlyArray<string>): Promise<number> =>
  new Promise((resolve) => {
    // Assigned in this same synchronous turn, before any handler can run.
    let child: ChildProcess | undefined
    const forward = (signal: NodeJS.Signals) => () => void child?.kill(signal)
    const handlers = (["SIGINT", "SIGTERM"] as const).map((signal) => [signal, forward(signal)] as const)
    for (const [signal, handler] of handlers) process.on(signal, handler)
    const settle = (code: number) => {
      for (const [signal, handler] of handlers) process.off(signal, handler)
      resolve(code)
    }
    child = spawn(process.execPath, [...process.execArgv, ...flags, ...process.argv.slice(1)], { stdio: "inherit" })
    child.on("error", (error) => {
      process.stderr.write(`could not run the swarm again with ${flags.join(" ")}: ${error.message}\n`)
      settle(1)
    })
    // A child ended by a signal exits as a shell reports it: 128 plus the signal's number.
    child.on("exit", (code, signal) => settle(code ?? 128 + (signal === null ? 0 : signalNumber(signal))))
  })

const signalNumber = (signal: NodeJS.Signals): number => ({ SIGINT: 2, SIGKILL: 9, SIGTERM: 15 })[signal as string] ?? 1
