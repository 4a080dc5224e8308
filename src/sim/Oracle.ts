/**
 * The judge's model of the conflict rules, written from the README ("Changes and causality"
 * and the conflict strategies table) and sharing no code with what it judges: nothing here
 * comes from the resolver, the version vectors, the tuple state or the stores, so a bug in a
 * strategy cannot agree with itself. Only the shape of a change (a type) is borrowed.
 *
 * The rules, as the README states them:
 * - B supersedes A exactly when B's context has seen A's dot: `B.context[key of A's dot] >= A.seq`.
 *   Per tuple, the changes nobody supersedes (the maximal set) decide its value.
 * - LastWriteWins: greatest timestamp (physical ms, then logical counter), then origin node id,
 *   then origin region, then origin sequence.
 * - SourcePriority: the origin region listed last in `regionPriorities` wins; same region: LWW.
 * - InsertWins: any concurrent insert beats deletes; among inserts, LWW.
 * - Custom: the user's function, given the candidates sorted by id.
 *
 * The dot's key is read through `dotKey` alone: it is the origin region today and may become a
 * per-disk replica key, so nothing here assumes it names a region (`originRegion` does).
 */
import type * as Change from "../replication/Change.js"
import * as Tuple from "../replication/Tuple.js"

/** The strategy names of the README's table. */
export type Strategy = "LastWriteWins" | "SourcePriority" | "InsertWins" | "Custom"

/** What the judge needs to know of a run's conflict settings. */
export interface Rules {
  readonly strategy: Strategy
  /** SourcePriority: lowest priority first; the last region listed wins. */
  readonly regionPriorities: ReadonlyArray<string>
  /** Custom: the user's pure function over candidates sorted by id. */
  readonly custom?: (candidates: ReadonlyArray<Change.Change>) => Change.Change
}

/** The rule's verdict on one tuple. */
export interface Verdict {
  readonly tuple: Tuple.Tuple
  /** Changes nobody supersedes, sorted by id. */
  readonly maximal: ReadonlyArray<Change.Change>
  readonly winner: Change.Change
  /** Every distinct change id seen for the tuple. */
  readonly changes: number
  /** The changes logged for the tuple by id, each distinct object once (a region that decoded a change from bytes holds an object of its own). */
  readonly logged: ReadonlyMap<string, ReadonlyArray<Change.Change>>
}

/** The key a dot is counted under in version vectors: the one place that knows the dot's shape. */
const dotKey = (change: Change.Change): string => change.id.origin

/** A change's id as text, e.g. `us-west-1#42`. */
export const idOf = (change: Change.Change): string => `${dotKey(change)}#${change.id.seq}`

/** What `context` has seen of one dot key (0: nothing). Own properties only, so no key is special. */
const seenOf = (context: Readonly<Record<string, number>>, key: string): number => (Object.hasOwn(context, key) ? context[key]! : 0)

/** Whether `later` causally follows `earlier`: its context has seen `earlier`'s dot. */
export const supersedes = (later: Change.Change, earlier: Change.Change): boolean => seenOf(later.context, dotKey(earlier)) >= earlier.id.seq

const compareText = (left: string, right: string): number => (left < right ? -1 : left > right ? 1 : 0)

/** Canonical order by id: dot key, then sequence. */
export const compareIds = (left: Change.Change, right: Change.Change): number => compareText(dotKey(left), dotKey(right)) || left.id.seq - right.id.seq

/**
 * The changes of one tuple that no other change supersedes, sorted by id. One pass finds, per
 * dot key, the highest sequence any context has seen; a change survives when its own sequence
 * is above that. Duplicate ids count once.
 */
export const maximal = (changes: Iterable<Change.Change>): ReadonlyArray<Change.Change> => {
  const byId = new Map<string, Change.Change>()
  const seenUpTo = new Map<string, number>()
  for (const change of changes) {
    if (!byId.has(idOf(change))) byId.set(idOf(change), change)
    for (const [key, seq] of Object.entries(change.context)) if ((seenUpTo.get(key) ?? 0) < seq) seenUpTo.set(key, seq)
  }
  return [...byId.values()].filter((change) => (seenUpTo.get(dotKey(change)) ?? 0) < change.id.seq).sort(compareIds)
}

/**
 * Last-write-wins: positive when `left` beats `right`. The README's chain ends at the origin
 * sequence; two candidates equal on all of it (possible only if dot keys stop naming regions)
 * fall to the one first in id order, the order candidates are presented in.
 */
export const compareLastWrite = (left: Change.Change, right: Change.Change): number =>
  left.timestamp.physicalMs - right.timestamp.physicalMs ||
  left.timestamp.logical - right.timestamp.logical ||
  compareText(left.originNode, right.originNode) ||
  compareText(left.originRegion, right.originRegion) ||
  left.id.seq - right.id.seq ||
  compareIds(right, left)

/** The candidate that beats every other under `compare`. */
const best = (candidates: ReadonlyArray<Change.Change>, compare: (left: Change.Change, right: Change.Change) => number): Change.Change => {
  const [first, ...rest] = candidates
  if (first === undefined) throw new Error("oracle: no candidates to decide between")
  return rest.reduce((winner, candidate) => (compare(candidate, winner) > 0 ? candidate : winner), first)
}

/** SourcePriority's rank of a change: its origin region's position in the list (higher wins). */
const rankOf = (rules: Rules, change: Change.Change): number => {
  const rank = rules.regionPriorities.indexOf(change.originRegion)
  if (rank < 0) throw new Error(`oracle: region '${change.originRegion}' has no SourcePriority rank`)
  return rank
}

/** The winner among mutually concurrent changes to one tuple, by the strategy's rule. */
export const winner = (rules: Rules, candidates: ReadonlyArray<Change.Change>): Change.Change => {
  const sorted = [...candidates].sort(compareIds)
  if (sorted.length === 1) return sorted[0]!
  switch (rules.strategy) {
    case "LastWriteWins":
      return best(sorted, compareLastWrite)
    case "SourcePriority":
      return best(sorted, (left, right) => rankOf(rules, left) - rankOf(rules, right) || compareLastWrite(left, right))
    case "InsertWins": {
      const inserts = sorted.filter((change) => change.op === "insert")
      return best(inserts.length > 0 ? inserts : sorted, compareLastWrite)
    }
    case "Custom":
      return customWinner(rules, sorted)
  }
}

const customWinner = (rules: Rules, sorted: ReadonlyArray<Change.Change>): Change.Change => {
  if (rules.custom === undefined) throw new Error("oracle: strategy Custom without a function")
  const chosen = rules.custom(sorted)
  if (!sorted.includes(chosen)) throw new Error("oracle: the Custom function returned a change that was not a candidate")
  return chosen
}

/** Whether a tuple is present given a set of its changes: the maximal set's winner is an insert. */
export const present = (rules: Rules, changes: ReadonlyArray<Change.Change>): boolean => {
  const frontier = maximal(changes)
  return frontier.length > 0 && winner(rules, frontier).op === "insert"
}

/** Changes by id, each distinct object once. */
export const byId = (changes: ReadonlyArray<Change.Change>): ReadonlyMap<string, ReadonlyArray<Change.Change>> => {
  const found = new Map<string, Array<Change.Change>>()
  for (const change of changes) {
    const id = idOf(change)
    const held = found.get(id)
    if (held === undefined) found.set(id, [change])
    else if (!held.includes(change)) held.push(change)
  }
  return found
}

/**
 * The verdict per tuple key for a history (duplicates allowed). Throws when every change to
 * a tuple is superseded (a causal cycle) or a change cannot be ranked.
 */
export const evaluate = (history: Iterable<Change.Change>, rules: Rules): ReadonlyMap<string, Verdict> => {
  const groups = new Map<string, Array<Change.Change>>()
  for (const change of history) {
    const key = Tuple.key(change.tuple)
    const group = groups.get(key)
    if (group === undefined) groups.set(key, [change])
    else group.push(change)
  }
  const verdicts = new Map<string, Verdict>()
  for (const [key, group] of groups) {
    const top = maximal(group)
    if (top.length === 0) throw new Error(`oracle: every change to ${key} is superseded, so the history has a causal cycle`)
    const logged = byId(group)
    verdicts.set(key, { tuple: top[0]!.tuple, maximal: top, winner: winner(rules, top), changes: logged.size, logged })
  }
  return verdicts
}
