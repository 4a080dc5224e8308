/**
 * The start-up check of SourcePriority's ranks against what the store holds: a node whose store
 * holds changes of a region `region_priorities` does not rank must not start. The resolver
 * cannot order such a change against a concurrent one (`ConflictResolver.sourcePriority`), so
 * every read, write and apply of its tuple would fail, and every sender would retry the same
 * batch for ever. The natural way there: a region removed for good, and its rank dropped with it.
 * `serve` and the simulator's nodes run this one check (the simulator's `configure` fault
 * restarts a node with other ranks).
 */
import { Effect } from "effect"
import type * as ConflictResolver from "./ConflictResolver.js"
import type { StoreError } from "./Errors.js"
import * as Store from "./Store.js"

/** Why a node with `resolver` must not start on the current store, or undefined when it may. */
export const refusal = (resolver: ConflictResolver.ConflictResolver): Effect.Effect<string | undefined, StoreError, Store.Store> => {
  const ranks = resolver.ranks
  if (ranks === undefined) return Effect.succeed(undefined)
  return Effect.flatMap(Store.Store, (store) =>
    Effect.map(store.regionsHeld, (held) => {
      const unranked = held.filter((region) => !ranks(region))
      if (unranked.length === 0) return undefined
      const named = unranked.map((region) => `'${region}'`).join(", ")
      return `replication.region_priorities: expected a rank for every region whose changes this node's store holds, and ${named} ha${unranked.length === 1 ? "s" : "ve"} none; a region removed from the topology keeps its rank, in the same place on every node`
    })
  )
}
