/**
 * This node's role as operators see it: under PrimaryReplica the epoch, its primary region and
 * whether this node would take a client write right now (its disk opened writes, its region is
 * primary in its view and, with three or more regions, its write lease holds); under the other
 * strategies epoch 0, no primary, and writable once the disk opened writes. It asks the same
 * rules the write path asks (`Replica.checkWritable`, `Primacy.checkWrite`), so it cannot say
 * "writable" while writes are refused; `/healthz` and the metrics show it.
 */
import { Effect } from "effect"
import * as Clock from "./Clock.js"
import * as Primacy from "./Primacy.js"
import * as Replica from "./Replica.js"
import * as Topology from "./Topology.js"
import * as TopologyManager from "./TopologyManager.js"

/** One node's role now. */
export interface Role {
  readonly strategy: Topology.ReplicationStrategy
  /** The PrimaryReplica epoch this node is in (0 under other strategies). */
  readonly epoch: number
  /** The region that takes writes in `epoch`, as this node sees it; undefined when none does or under other strategies. */
  readonly primary: Topology.RegionId | undefined
  /** Whether a client write to this node would be taken now (for MultiMaster: in the vaults homed here). */
  readonly writable: boolean
  /** Why it is not writable; absent when it is. */
  readonly reason?: string
}

/** The vault a PrimaryReplica write check is asked for: any tenant vault (the epoch vault is exempt from the lease). */
const probeVault = "_role"

/** This node's role now. */
export const current = (regionId: Topology.RegionId): Effect.Effect<Role, never, Replica.Replica | Primacy.Primacy | TopologyManager.TopologyManager> =>
  Effect.gen(function* () {
    const topology = yield* (yield* TopologyManager.TopologyManager).current
    const primacy = yield* Primacy.Primacy
    const state = yield* primacy.state
    const primaryReplica = topology.strategy === "PrimaryReplica"
    const base = { strategy: topology.strategy, epoch: primaryReplica ? state.epoch : 0, primary: primaryReplica ? state.primary : undefined }
    if (!(yield* (yield* Replica.Replica).writesOpen)) return { ...base, writable: false, reason: "the disk is still paging its peers' logs (bootstrap)" }
    if (!primaryReplica) return { ...base, writable: true }
    const refused =
      Replica.checkWritable(topology, regionId, probeVault) ??
      Primacy.checkWrite(state, yield* Clock.monotonicMs, Primacy.leaseFor(primacy, topology.regions.length), topology.regions.length) ??
      (state.primary === regionId ? undefined : { message: `this node's view names ${state.primary ?? "no region"} primary of epoch ${state.epoch}` })
    return refused === undefined ? { ...base, writable: true } : { ...base, writable: false, reason: refused.message }
  })
