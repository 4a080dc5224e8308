/**
 * Every fiber of a node that dies of a defect is logged at error level, which the engine uses
 * only for bugs, so the simulator's and the chaos judge's `defects` check fail the run.
 *
 * A node forks long-lived loops (the agent's per-target fibers and their senders, which settle the window in order, the
 * lazy cursor, the fibers `Network.caller` sends a heartbeater's requests on where a network has no callback form, discovery, the bootstrap's tail) and Effect only
 * reports a forked fiber's unhandled end at debug level. One that died of a bug stopped its work
 * without a word: a heartbeat ask that dies leaves its peer unheard, so it is marked Unreachable
 * while the run may still converge; a sender that dies while it settles the window stops a target's cursor for good.
 * Until December 3, 2026 only the engine's own end and the agent's batch sends were watched.
 * The `ask-dies` canary (`sim/canary/Canary.ts`) shows the difference.
 */
import { Cause, Effect, Exit, type Fiber, Runtime, Supervisor } from "effect"

/** Tells `report` of each fiber that ends with a defect (not an interruption). */
class Reporter extends Supervisor.AbstractSupervisor<void> {
  constructor(private readonly report: (cause: Cause.Cause<unknown>) => void) {
    super()
  }

  get value(): Effect.Effect<void> {
    return Effect.void
  }

  override onEnd<A, E>(exit: Exit.Exit<A, E>, _fiber: Fiber.RuntimeFiber<A, E>): void {
    if (Exit.isFailure(exit) && Cause.isDie(exit.cause) && !Cause.isInterruptedOnly(exit.cause)) this.report(exit.cause)
  }
}

/**
 * Runs `effect` with every fiber it forks, at any depth, watched: one that dies of a defect is
 * logged at error level with its cause, through the logger `effect` runs with.
 */
export const supervised = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.flatMap(Effect.runtime<never>(), (runtime) => {
    const log = Runtime.runFork(runtime)
    return Effect.supervised(
      effect,
      new Reporter((cause) => void log(Effect.logError("a fiber died of a defect (a bug): its work stopped", cause)))
    )
  })
