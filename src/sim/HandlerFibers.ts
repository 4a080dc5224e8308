/**
 * The fibers one incarnation of a simulated node runs its requests on, its peers' and those from
 * outside (clients, operators), reused: a request that ends gives its fiber back, and the next
 * one runs on it.
 *
 * `serve` runs each gRPC call in a fiber of its own, and so did the simulator, through
 * `Runtime.runFork`: about one root fiber for every two simulated events (every heartbeat and
 * batch a node answers, every client write), each with its fiber refs copied in, its start and its end, and
 * registered in and removed from Effect's set of root fibers. Handing a request to a waiting
 * fiber is one resumption instead. What a handler sees is the same: it runs concurrently with
 * everything else the node does, with the incarnation's runtime, and `onExit` gets its exit,
 * a defect or an interruption included (a crash interrupts the fiber, and the job it ran then
 * gets the fiber's exit). Handlers set no fiber ref for good (only `locally`,
 * which restores it), so one handler leaves nothing on the fiber for the next.
 *
 * A crash drops the incarnation's scheduler with every fiber on it, waiting ones included; the
 * next incarnation starts with a pool of its own.
 */
import { Effect, Exit, type Fiber } from "effect"

interface Job {
  readonly effect: Effect.Effect<unknown, unknown>
  readonly onExit: (exit: Exit.Exit<unknown, unknown>) => void
}

/** One fiber of the pool: the job it runs now, if any, and how it waits for the next. */
interface Worker {
  job: Job | undefined
  readonly next: Effect.Effect<never>
}

export class HandlerFibers {
  /** Fibers waiting for a request, as the callbacks that hand one over. */
  private readonly idle: Array<(job: Job) => void> = []

  /** `fork` starts a fiber of the incarnation (its runtime and scheduler). */
  constructor(private readonly fork: (effect: Effect.Effect<never>) => Fiber.RuntimeFiber<never>) {}

  /** Runs `effect` on a waiting fiber, or on a new one when none waits; `onExit` is called with its exit. */
  run<A, E>(effect: Effect.Effect<A, E>, onExit: (exit: Exit.Exit<A, E>) => void): void {
    const job = { effect, onExit } as Job
    const waiting = this.idle.pop()
    if (waiting !== undefined) return waiting(job)
    const worker: Worker = { job, next: this.waitFor(() => worker) }
    // The fiber itself ends only when it is interrupted (its incarnation crashed, say): the job it
    // was running then gets the fiber's exit, as the job's own fiber gave it when each had one.
    this.fork(this.serve(worker, job)).addObserver((exit) => {
      const running = worker.job
      worker.job = undefined
      running?.onExit(exit)
    })
  }

  // A job's exit is handed over from one match on its outcome, and the fiber then waits for the
  // next job, which its wake-up runs directly: about half the Effect operations of running each
  // job through `Effect.exit` and taking the next one as a value.
  private serve(worker: Worker, job: Job): Effect.Effect<never> {
    return Effect.matchCauseEffect(job.effect, {
      onFailure: (cause) => this.handBack(worker, job, Exit.failCause(cause)),
      onSuccess: (value) => this.handBack(worker, job, Exit.succeed(value))
    })
  }

  private handBack(worker: Worker, job: Job, exit: Exit.Exit<unknown, unknown>): Effect.Effect<never> {
    worker.job = undefined
    job.onExit(exit)
    return worker.next
  }

  /** Waits for the next job and runs it; a fiber interrupted while it waits leaves the pool. */
  private waitFor(workerOf: () => Worker): Effect.Effect<never> {
    return Effect.async<never>((resume) => {
      const handOver = (job: Job) => {
        const worker = workerOf()
        worker.job = job
        resume(this.serve(worker, job))
      }
      this.idle.push(handOver)
      return Effect.sync(() => {
        const index = this.idle.indexOf(handOver)
        if (index !== -1) this.idle.splice(index, 1)
      })
    })
  }
}
