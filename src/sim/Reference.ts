/**
 * The reference rule, applied to a whole history by the checkers: for each tuple, the changes
 * no other change supersedes (the maximal set), and the winner the strategy's resolver picks
 * among them. It is computed independently of the code under test (`TupleState.merge` is not
 * used): a change with dot (region R, sequence s) is superseded exactly when some change of
 * the same tuple carries a context covering it, so one pass collects, per tuple, the highest
 * sequence each region's changes are covered up to, and a second pass keeps the rest. Linear
 * in the history times the number of regions.
 */
import * as Change from "../replication/Change.js"
import type * as ConflictResolver from "../replication/ConflictResolver.js"
import * as Tuple from "../replication/Tuple.js"

/** The rule's verdict on one tuple. */
export interface Verdict {
  readonly tuple: Tuple.Tuple
  /** Changes nobody supersedes, sorted by id. */
  readonly maximal: ReadonlyArray<Change.Change>
  readonly winner: Change.Change
  /** Every distinct change to the tuple. */
  readonly changes: number
}

/** The verdict per tuple key for a history (duplicates allowed). */
export const evaluate = (history: Iterable<Change.Change>, resolver: ConflictResolver.ConflictResolver): ReadonlyMap<string, Verdict> => {
  const groups = new Map<string, { readonly changes: Map<string, Change.Change>; readonly coveredUpTo: Map<string, number> }>()
  for (const change of history) {
    const key = Tuple.key(change.tuple)
    let group = groups.get(key)
    if (group === undefined) {
      group = { changes: new Map(), coveredUpTo: new Map() }
      groups.set(key, group)
    }
    const id = Change.idString(change)
    if (group.changes.has(id)) continue
    group.changes.set(id, change)
    for (const [region, seq] of Object.entries(change.context)) {
      if ((group.coveredUpTo.get(region) ?? 0) < seq) group.coveredUpTo.set(region, seq)
    }
  }
  const verdicts = new Map<string, Verdict>()
  for (const [key, group] of groups) {
    const maximal = [...group.changes.values()]
      .filter((change) => (group.coveredUpTo.get(change.id.origin) ?? 0) < change.id.seq)
      .sort(Change.compareIds)
    const first = maximal[0]
    if (first === undefined) throw new Error(`reference: every change to ${key} is superseded, so the history has a causal cycle`)
    const winner = maximal.length === 1 ? first : resolver.resolve(maximal)
    verdicts.set(key, { tuple: first.tuple, maximal, winner, changes: group.changes.size })
  }
  return verdicts
}
