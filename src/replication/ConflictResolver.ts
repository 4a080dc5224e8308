/**
 * The four conflict strategies. A resolver picks the winner among changes to one tuple that
 * are mutually concurrent (none supersedes another). Causally ordered changes never reach a
 * resolver: `TupleState` discards superseded changes first, so a change that follows another
 * wins under every strategy.
 *
 * Every resolver is a pure function of the *set* of candidates: candidates are sorted by id
 * before a strategy sees them and every built-in order is total, so the winner never depends
 * on arrival order or on which region is resolving. There is no "keep local" anywhere.
 */
import { Data, Either, Order } from "effect"
import * as Change from "./Change.js"
import * as Timestamp from "./Timestamp.js"

/** Strategy names as in the seed document. */
export type Strategy = "LastWriteWins" | "SourcePriority" | "InsertWins" | "Custom"

/**
 * A user-supplied resolver: given the concurrent candidates sorted by id (at least two),
 * return one of them. It must be pure; `test/replication/ConflictResolver.properties.test.ts`
 * can be pointed at it to check that it converges.
 */
export type CustomResolve = (candidates: ReadonlyArray<Change.Change>) => Change.Change

/** A configured resolver. */
export interface ConflictResolver {
  readonly strategy: Strategy
  /** Picks the winner among mutually concurrent changes to one tuple (non-empty). */
  readonly resolve: (candidates: ReadonlyArray<Change.Change>) => Change.Change
  /**
   * Whether changes from `region` can be ranked (absent: every region can). Only SourcePriority
   * cannot rank a region its list leaves out; the apply path refuses such changes
   * (`Replica.checkBatch`) so that `resolve` never meets one.
   */
  readonly ranks?: (region: string) => boolean
}

/** The resolver could not be built from its settings. */
export class ResolverConfigError extends Data.TaggedError("ResolverConfigError")<{ readonly message: string }> {}

/**
 * Last-write-wins order: timestamp, then origin node, then origin region, then origin
 * sequence. The last two make the order total even for equal timestamps on equal node ids.
 */
export const lastWriteWinsOrder: Order.Order<Change.Change> = Order.combineAll([
  Order.mapInput(Timestamp.order, (change: Change.Change) => change.timestamp),
  Order.mapInput(Order.string, (change: Change.Change) => change.originNode),
  Order.mapInput(Order.string, (change: Change.Change) => change.originRegion),
  Order.mapInput(Order.number, (change: Change.Change) => change.id.seq)
])

const maxBy = (order: Order.Order<Change.Change>) => (candidates: ReadonlyArray<Change.Change>): Change.Change => {
  const sorted = [...candidates].sort(Change.compareIds)
  let best = sorted[0]
  if (best === undefined) throw new Error("ConflictResolver.resolve called with no candidates")
  for (const candidate of sorted) if (order(candidate, best) > 0) best = candidate
  return best
}

/** Last-write-wins resolver. */
export const lastWriteWins: ConflictResolver = { strategy: "LastWriteWins", resolve: maxBy(lastWriteWinsOrder) }

/** Insert-wins resolver: any concurrent insert beats deletes; among inserts, last write wins. */
export const insertWins: ConflictResolver = {
  strategy: "InsertWins",
  resolve: (candidates) => {
    const inserts = candidates.filter((change) => change.op === "insert")
    return lastWriteWins.resolve(inserts.length > 0 ? inserts : candidates)
  }
}

/**
 * Source-priority resolver. As in the seed, the list runs from lowest to highest priority:
 * the last region listed wins. Ties (same region) fall back to last-write-wins. A change from
 * a region missing from the list is a broken invariant: configuration validation rejects
 * a declared region without a rank, and the apply path rejects changes from a region without
 * one (a region removed from the deployment whose rank the operator dropped).
 */
export const sourcePriority = (regionPriorities: ReadonlyArray<string>): Either.Either<ConflictResolver, ResolverConfigError> => {
  if (regionPriorities.length === 0) {
    return Either.left(new ResolverConfigError({ message: "SourcePriority needs a non-empty region_priorities list" }))
  }
  const duplicate = regionPriorities.find((region, index) => regionPriorities.indexOf(region) !== index)
  if (duplicate !== undefined) {
    return Either.left(new ResolverConfigError({ message: `region_priorities lists '${duplicate}' twice` }))
  }
  const rank = (change: Change.Change): number => {
    const index = regionPriorities.indexOf(change.originRegion)
    if (index < 0) throw new Error(`SourcePriority: region '${change.originRegion}' has no priority`)
    return index
  }
  const order = Order.combine(Order.mapInput(Order.number, rank), lastWriteWinsOrder)
  return Either.right({ strategy: "SourcePriority", resolve: maxBy(order), ranks: (region) => regionPriorities.includes(region) })
}

/** Wraps a user-supplied resolver so it always sees candidates in canonical order. */
export const custom = (resolve: CustomResolve): ConflictResolver => ({
  strategy: "Custom",
  resolve: (candidates) => {
    const sorted = [...candidates].sort(Change.compareIds)
    const winner = resolve(sorted)
    if (!sorted.includes(winner)) throw new Error("Custom conflict resolver returned a change that was not a candidate")
    return winner
  }
})

/** Builds a resolver from configuration. */
export const make = (options: {
  readonly strategy: Strategy
  readonly regionPriorities?: ReadonlyArray<string>
  readonly custom?: CustomResolve
}): Either.Either<ConflictResolver, ResolverConfigError> => {
  switch (options.strategy) {
    case "LastWriteWins":
      return Either.right(lastWriteWins)
    case "InsertWins":
      return Either.right(insertWins)
    case "SourcePriority":
      return sourcePriority(options.regionPriorities ?? [])
    case "Custom":
      return options.custom === undefined
        ? Either.left(new ResolverConfigError({ message: "conflict_resolution Custom needs a resolver function supplied in code" }))
        : Either.right(custom(options.custom))
  }
}
