/**
 * V8's helper threads for `sim swarm` on several jobs. Besides each thread running JavaScript,
 * V8 keeps a process-wide pool of helper threads (one per core by default, then four) for
 * concurrent compilation and garbage collection. A simulation keeps them busy: one job alone
 * used about 1.45 cores of this 2-core machine, so with two jobs the helpers of both competed
 * with the jobs themselves, and two jobs ran 120 swarm seeds no faster than one (19.8-22.4 s
 * against 20.5-23.0 s). With one helper thread the same runs took 16.5-17.1 s.
 *
 * The pool's size is fixed when Node starts (`--v8-pool-size`), so a swarm on several jobs runs
 * its own command line again in a child process with it, unless the process already has a size
 * (node's own flags or NODE_OPTIONS), which then stands. The child inherits stdin, stdout and
 * stderr, its exit code becomes this process's, and an interrupt or termination sent to this
 * process is passed on. The seeds run, and everything printed and written, do not depend on it.
 */
import { type ChildProcess, spawn } from "node:child_process"

/** Helper threads for a swarm on several jobs. */
export const poolSizeForJobs = 1

const poolFlag = "--v8-pool-size"

/**
 * The helper-thread pool size this process was started with (node's flags, else NODE_OPTIONS);
 * undefined when it has V8's default.
 */
export const poolSize = (): number | undefined => {
  const flags = [...process.execArgv, ...(process.env["NODE_OPTIONS"] ?? "").split(/\s+/)]
  // `--v8-pool-size=N` or `--v8-pool-size N`, as node takes either.
  const at = flags.findIndex((argument) => argument === poolFlag || argument.startsWith(`${poolFlag}=`))
  if (at === -1) return undefined
  const flag = flags[at]!
  return Number(flag === poolFlag ? flags[at + 1] : flag.slice(poolFlag.length + 1))
}

/**
 * Runs this command line again with `poolSizeForJobs` helper threads; resolves to its exit code.
 * The interrupt and termination handlers are in place before the child is started: a signal
 * that came while `spawn` was still waiting for the child's `exec` killed this process by
 * default and left the child running on its own (seen under load, in the suite).
 */
export const rerunWithPool = (): Promise<number> =>
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
    child = spawn(process.execPath, [...process.execArgv, `${poolFlag}=${poolSizeForJobs}`, ...process.argv.slice(1)], { stdio: "inherit" })
    child.on("error", (error) => {
      process.stderr.write(`could not run the swarm again with ${poolFlag}=${poolSizeForJobs}: ${error.message}\n`)
      settle(1)
    })
    // A child ended by a signal exits as a shell reports it: 128 plus the signal's number.
    child.on("exit", (code, signal) => settle(code ?? 128 + (signal === null ? 0 : signalNumber(signal))))
  })

const signalNumber = (signal: NodeJS.Signals): number => ({ SIGINT: 2, SIGKILL: 9, SIGTERM: 15 })[signal as string] ?? 1
