/**
 * Effect's global set of root fibers, for dropping a finished run without interrupting it.
 *
 * Effect keeps every fiber started with `runFork` in a process-wide set until the fiber ends, so a
 * node whose fibers are simply dropped stays reachable for ever (a swarm worker ran out of memory
 * after about a thousand seeds). Interrupting every node at the end of a run frees them, but runs
 * every finalizer of every layer and scope of every node, about a twentieth of a swarm's CPU time,
 * for a world that is about to be thrown away. Removing a finished run's fibers from that set
 * instead leaves them nothing that reaches them: the world, its schedulers and their tasks are
 * garbage together.
 *
 * The set is Effect's own (`Fiber.unsafeRoots` reads it); it is reached through `globalValue` with
 * the key Effect registers it under. If a later Effect keeps it elsewhere, `available` is false
 * and the caller interrupts instead; a test holds this module to the set `Fiber.unsafeRoots` reads.
 */
import { type Fiber, FiberRef, type Scheduler } from "effect"
import { globalValue } from "effect/GlobalValue"

/** The key `effect/internal/fiberScope` registers its global scope under. */
const globalScopeKey = Symbol.for("effect/FiberScope/Global")

const roots = (): Set<unknown> | undefined => {
  // Called only once Effect has forked a fiber, so the scope exists and `compute` never runs.
  const scope: unknown = globalValue(globalScopeKey, () => undefined)
  const candidate = (scope as { readonly roots?: unknown } | undefined)?.roots
  return candidate instanceof Set ? candidate : undefined
}

/** Whether this Effect keeps its roots where `forget` can reach them. */
export const available = (): boolean => roots() !== undefined

/**
 * Removes from Effect's root set every fiber that runs on `scheduler` (a dropped incarnation's).
 * By the scheduler each fiber runs on, not by the incarnation's list of the fibers it scheduled:
 * a `FiberMap` starts its fibers at once, and one that has waited ever since was never on that
 * list (with the list alone, 2 to 14 roots stayed after default swarm seeds 7004-7007).
 */
export const forgetRunningOn = (scheduler: Scheduler.Scheduler): void => {
  const set = roots()
  if (set === undefined) return
  for (const fiber of set) {
    if ((fiber as Fiber.RuntimeFiber<unknown, unknown>).getFiberRef(FiberRef.currentScheduler) === scheduler) set.delete(fiber)
  }
}
