/**
 * Runs the seeds of `sim swarm` on several cores: `--jobs N` worker threads, each running one
 * seed after another in its own process-wide copy of the simulator (never a thread per seed),
 * and hands the outcomes back in seed order, so everything printed and written from them is
 * the same for any number of jobs. With one job the seeds run in this thread, as they always did.
 *
 * A worker receives the base scenario (decoded, plain data) and the canary once, then one seed
 * number at a time, and sends back only what the tally, the failure lines and the reports need:
 * the counts and trace hash of a passing seed, the drawn scenario and whole result of a failing
 * one, the error text of a seed that crashed the simulator.
 *
 * Workers start through `bin/worker.mjs`, which runs `SwarmWorker.ts` from the bundle in dist/
 * when it is current (as `bin/launch.mjs` does for the command line) and from its sources
 * through tsx otherwise; a command line running its sources makes its workers run theirs too.
 * The wall clock here only measures; it never decides which seeds run or in what order
 * they are reported (a `--time` limit decides how many seeds run, as with one job).
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { Worker } from "node:worker_threads"
import type * as Canary from "../sim/canary/Canary.js"
import type { RunOptions } from "../sim/Run.js"
import type * as Scenario from "../sim/Scenario.js"
import * as Swarm from "../sim/Swarm.js"

/** One seed's outcome as a worker sends it: the whole run only for a failing seed. */
export type SeedOutcome =
  | { readonly kind: "passed"; readonly counted: Swarm.Counted }
  | { readonly kind: "failed"; readonly outcome: Swarm.Outcome }
  | { readonly kind: "crashed"; readonly seed: number; readonly error: string }

/** What every worker is started with. */
export interface WorkerSettings {
  readonly base: Scenario.Scenario | undefined
  readonly canary: Canary.Name | undefined
}

/** The real clock, for the wall time a run took (the only figure that differs between runs). */
export const wallClock = (): number => performance.now()

export const failureText = (error: unknown): string => (error instanceof Error ? (error.stack ?? error.message) : String(error))

/** Runs one seed in this thread; a simulator crash becomes an outcome of its own. */
export const runSeed = (seed: number, settings: WorkerSettings): SeedOutcome => {
  const runOptions: RunOptions = { wallClock, ...(settings.canary === undefined ? {} : { canary: settings.canary }) }
  let outcome: Swarm.Outcome
  try {
    outcome = Swarm.runSeed(seed, settings.base, runOptions)
  } catch (error) {
    return { kind: "crashed", seed, error: failureText(error) }
  }
  if (outcome.result.violations.length > 0) return { kind: "failed", outcome }
  const { traceHash, violations, events, tasks, effectOps, simulatedMs, wallMs } = outcome.result
  return { kind: "passed", counted: { seed, result: { traceHash, violations, events, tasks, effectOps, simulatedMs, wallMs } } }
}

/** The seed an outcome is for. */
export const seedOf = (outcome: SeedOutcome): number =>
  outcome.kind === "passed" ? outcome.counted.seed : outcome.kind === "failed" ? outcome.outcome.seed : outcome.seed

/**
 * The outcomes of the seeds `nextSeed` hands out (increasing, until it returns undefined), in
 * that order, run on `jobs` threads.
 */
export const outcomes = (nextSeed: () => number | undefined, jobs: number, settings: WorkerSettings): AsyncIterable<SeedOutcome> =>
  jobs <= 1 ? inThisThread(nextSeed, settings) : inWorkers(nextSeed, jobs, settings)

async function* inThisThread(nextSeed: () => number | undefined, settings: WorkerSettings): AsyncGenerator<SeedOutcome> {
  for (let seed = nextSeed(); seed !== undefined; seed = nextSeed()) yield runSeed(seed, settings)
}

/** The repository root: the nearest directory above this module (in src/cli/ or in dist/) holding the launcher. */
const repositoryRoot = (): string => {
  let directory = path.dirname(fileURLToPath(import.meta.url))
  while (!fs.existsSync(path.join(directory, "bin", "launch.mjs"))) {
    const parent = path.dirname(directory)
    if (parent === directory) throw new Error(`no bin/launch.mjs above ${fileURLToPath(import.meta.url)}`)
    directory = parent
  }
  return directory
}

/** Whether this module runs from its TypeScript source (through tsx) rather than from the bundle. */
const fromSources = (): boolean => import.meta.url.endsWith(".ts")

const startWorker = (settings: WorkerSettings): Worker =>
  new Worker(path.join(repositoryRoot(), "bin", "worker.mjs"), {
    workerData: { entry: "src/cli/SwarmWorker.ts", settings },
    env: fromSources() ? { ...process.env, INFERADB_REPL_SOURCES: "1" } : process.env,
    resourceLimits: { maxYoungGenerationSizeMb: workerYoungGenerationMb }
  })

/**
 * The young generation of a worker's heap. A simulation allocates short-lived objects fast
 * (fibers, continuations, messages); with V8's default for worker threads, scavenges and the
 * promotions they force cost a tenth of a 2-job swarm's time (120 seeds: 30.8 s wall and 57.2 CPU
 * s by default, 27.3 s and 51.3 s with this), for about 50 MB more per worker.
 */
const workerYoungGenerationMb = 96

/**
 * Seeds handed out beyond the oldest one not yet reported, at most: a seed that runs long lets
 * the other workers run ahead this far (their outcomes wait in memory) before they idle.
 */
const seedsAheadMax = 256

/** A worker thread and the seed it is running, if any. */
interface Job {
  readonly worker: Worker
  seed: number | undefined
}

async function* inWorkers(nextSeed: () => number | undefined, jobs: number, settings: WorkerSettings): AsyncGenerator<SeedOutcome> {
  /** Seeds handed out and not yet yielded, in order; outcomes that arrived ahead of their turn. */
  const dispatched: Array<number> = []
  const arrived = new Map<number, SeedOutcome>()
  let wake: (() => void) | undefined
  let exhausted = false
  const pool: Array<Job> = []

  /** The next seed to hand out, unless they have run out or the workers are too far ahead. */
  const takeSeed = (): number | undefined => {
    if (exhausted || dispatched.length >= seedsAheadMax) return undefined
    const seed = nextSeed()
    if (seed === undefined) exhausted = true
    else dispatched.push(seed)
    return seed
  }
  const assign = (job: Job, seed: number | undefined): void => {
    job.seed = seed
    if (seed !== undefined) job.worker.postMessage(seed)
  }
  const deliver = (outcome: SeedOutcome): void => {
    arrived.set(seedOf(outcome), outcome)
    wake?.()
  }
  /** Starts a worker on `seed`; it takes the next seed whenever it answers. */
  const hire = (seed: number): void => {
    const job: Job = { worker: startWorker(settings), seed: undefined }
    job.worker.on("message", (outcome: SeedOutcome) => {
      deliver(outcome)
      assign(job, takeSeed())
    })
    // A worker that dies takes only its current seed with it (counted as crashed); another takes its place.
    const lost = (error: string) => {
      if (!pool.includes(job)) return
      pool.splice(pool.indexOf(job), 1)
      if (job.seed !== undefined) deliver({ kind: "crashed", seed: job.seed, error })
      topUp()
    }
    job.worker.on("error", (error) => lost(`the worker thread failed: ${failureText(error)}`))
    job.worker.on("exit", (code) => lost(`the worker thread exited with code ${code}`))
    pool.push(job)
    assign(job, seed)
  }
  /** Gives idle workers a seed and starts workers until there are `jobs`, while seeds remain. */
  const topUp = (): void => {
    for (const job of pool) if (job.seed === undefined) assign(job, takeSeed())
    for (let seed = pool.length < jobs ? takeSeed() : undefined; seed !== undefined; seed = pool.length < jobs ? takeSeed() : undefined) hire(seed)
  }

  try {
    topUp()
    while (dispatched.length > 0) {
      const outcome = arrived.get(dispatched[0]!)
      if (outcome === undefined) {
        await new Promise<void>((resolve) => (wake = resolve))
        continue
      }
      arrived.delete(dispatched.shift()!)
      topUp()
      yield outcome
    }
  } finally {
    const stopping = pool.splice(0)
    await Promise.all(stopping.map((job) => job.worker.terminate()))
  }
}
