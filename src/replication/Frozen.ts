/**
 * Deep freezing, for values that are handed over by reference where production hands over a
 * copy (the in-memory store's committed values, messages on the simulated network). A frozen
 * value cannot be changed through a reference the writer or sender kept, so sharing it cannot
 * hide a lost write or let two nodes see each other's memory; a change attempt throws (module
 * code is strict), which shows the bug at once instead of bending the run.
 */

/** Freezes a plain value and everything it holds, in place, and returns it. */
export const deep = <A>(value: A): A => {
  // A frozen object was frozen whole by an earlier call (children are frozen before their
  // parent), so shared, already committed parts are not walked again.
  if (typeof value !== "object" || value === null || Object.isFrozen(value)) return value
  for (const key of Object.keys(value)) deep((value as Record<string, unknown>)[key])
  return Object.freeze(value)
}
