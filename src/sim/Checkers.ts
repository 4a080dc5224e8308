/**
 * The checkers: they run after a simulation, outside the code they check, over the regions'
 * disks (every tuple's frontier and every log entry, not one visible value) and the history
 * the simulator recorded. Each returns violations as plain data `{ checker, message, details }`.
 *
 * - safety: every region's whole tuple state equals the strategy's rule applied to the union
 *   of all regions' logs (every committed change), as far as residency lets the region hold it;
 *   the value each region serves (its own resolver over its frontier) equals the rule's.
 * - acknowledged: every acknowledged change is in that union; each acknowledged change that
 *   is not its tuple's final winner is labelled by cause (see `classifyLosses`).
 * - residency: no region ever logged (so never stored) a change of a vault it may not hold.
 * - epochs (PrimaryReplica): at most one region served as primary and took writes per epoch,
 *   and no region took a write in an epoch after a newer epoch had begun elsewhere.
 * - failover: the document's story happened: a promotion, writes on the new primary, and the
 *   original primary back in charge at the end.
 * Liveness (convergence within the budget) is decided by the run loop, which owns time.
 */
import * as Change from "../replication/Change.js"
import type * as ConflictResolver from "../replication/ConflictResolver.js"
import type * as Failover from "../replication/Failover.js"
import * as Topology from "../replication/Topology.js"
import * as Tuple from "../replication/Tuple.js"
import * as TupleState from "../replication/TupleState.js"
import type { History, WriteRecord } from "./History.js"
import * as Reference from "./Reference.js"
import type { RegionState } from "./RegionState.js"

/** One broken property. */
export interface Violation {
  readonly checker: string
  readonly message: string
  readonly details: Readonly<Record<string, unknown>>
}

/** Examples kept per violation, so a report stays readable. */
const examplesMax = 5

const ids = (changes: ReadonlyArray<Change.Change>): string => changes.map(Change.idString).join(",")

/** The union history: every change in any region's log. */
export const unionHistory = (regions: ReadonlyArray<RegionState>): ReadonlyArray<Change.Change> =>
  regions.flatMap((region) => region.log.map((entry) => entry.change))

/** The rule applied to the union history, or a violation when the history is not causal. */
export const reference = (
  regions: ReadonlyArray<RegionState>,
  resolver: ConflictResolver.ConflictResolver
): { readonly verdicts: ReadonlyMap<string, Reference.Verdict> } | { readonly violation: Violation } => {
  try {
    return { verdicts: Reference.evaluate(unionHistory(regions), resolver) }
  } catch (error) {
    return { violation: { checker: "safety", message: String(error), details: {} } }
  }
}

/** Safety: every region holds exactly the rule's frontier and value for every tuple it may hold. */
export const safety = (
  regions: ReadonlyArray<RegionState>,
  verdicts: ReadonlyMap<string, Reference.Verdict>,
  topology: Topology.Topology,
  resolverOf: (regionId: string) => ConflictResolver.ConflictResolver
): ReadonlyArray<Violation> =>
  regions.flatMap((region) => {
    const mismatches: Array<Record<string, unknown>> = []
    let count = 0
    const note = (mismatch: Record<string, unknown>) => {
      count++
      if (mismatches.length < examplesMax) mismatches.push(mismatch)
    }
    for (const [key, verdict] of verdicts) {
      if (!Topology.vaultAllowedIn(topology, verdict.tuple.vault, region.regionId)) continue
      const held = region.tuples.get(key)
      const expectedFrontier = ids(verdict.maximal)
      const heldFrontier = held === undefined ? "" : ids(held.frontier)
      const expectedValue = verdict.winner.op === "insert"
      const heldValue = held !== undefined && TupleState.winner({ frontier: held.frontier }, resolverOf(region.regionId))?.op === "insert"
      if (heldFrontier !== expectedFrontier || heldValue !== expectedValue) {
        note({ tuple: key.replaceAll("\u0000", " "), expectedFrontier, heldFrontier, expectedPresent: expectedValue, heldPresent: heldValue })
      }
    }
    for (const key of region.tuples.keys()) if (!verdicts.has(key)) note({ tuple: key.replaceAll("\u0000", " "), problem: "held but in no log" })
    if (count === 0) return []
    return [{ checker: "safety", message: `${region.regionId}: ${count} tuple(s) differ from the rule applied to the whole history`, details: { region: region.regionId, mismatches: count, examples: mismatches } }]
  })

/** Where regions still differ: tuples whose frontiers are not the same in every region that may hold them. */
export const divergence = (regions: ReadonlyArray<RegionState>, topology: Topology.Topology): { readonly tuples: number; readonly examples: ReadonlyArray<Record<string, unknown>> } => {
  const keys = new Set(regions.flatMap((region) => [...region.tuples.keys()]))
  const examples: Array<Record<string, unknown>> = []
  let tuples = 0
  for (const key of keys) {
    const vault = key.slice(0, key.indexOf("\u0000"))
    const holders = regions.filter((region) => Topology.vaultAllowedIn(topology, vault, region.regionId))
    const frontiers = Object.fromEntries(holders.map((region) => [region.regionId, ids(region.tuples.get(key)?.frontier ?? [])]))
    if (new Set(Object.values(frontiers)).size <= 1) continue
    tuples++
    if (examples.length < examplesMax) examples.push({ tuple: key.replaceAll("\u0000", " "), frontiers })
  }
  return { tuples, examples }
}

/** Residency: no region ever logged a change of a vault it may not hold. */
export const residency = (regions: ReadonlyArray<RegionState>, topology: Topology.Topology): ReadonlyArray<Violation> =>
  regions.flatMap((region) => {
    const outside = region.log.filter((entry) => !Topology.vaultAllowedIn(topology, entry.change.tuple.vault, region.regionId))
    if (outside.length === 0) return []
    return [
      {
        checker: "residency",
        message: `${region.regionId} stored ${outside.length} change(s) of vaults it may not hold`,
        details: { region: region.regionId, vaults: [...new Set(outside.map((entry) => entry.change.tuple.vault))], examples: outside.slice(0, examplesMax).map((entry) => Change.idString(entry.change)) }
      }
    ]
  })

/** Why an acknowledged change is not its tuple's final winner. */
export type LossCause = "superseded" | "concurrent" | "clock-skew" | "tie"

/** Acknowledged changes by fate. */
export interface Losses {
  readonly survived: number
  readonly superseded: number
  readonly concurrent: number
  readonly "clock-skew": number
  readonly tie: number
}

/** Whether the strategy decided between two changes by their timestamps. */
const decidedByTimestamp = (strategy: ConflictResolver.Strategy, loser: Change.Change, winner: Change.Change): boolean =>
  strategy === "LastWriteWins" ||
  (strategy === "InsertWins" && loser.op === winner.op) ||
  (strategy === "SourcePriority" && loser.originRegion === winner.originRegion)

/**
 * Labels every acknowledged change that lost: `superseded` (a causally later change
 * replaced it: not a loss), `tie` (equal timestamps, broken by node and region), `clock-skew`
 * (lost on timestamps to a concurrent change although it was acknowledged later in simulated
 * real time), `concurrent` (lost to a concurrent change by the rule).
 */
export const classifyLosses = (
  writes: ReadonlyArray<WriteRecord>,
  verdicts: ReadonlyMap<string, Reference.Verdict>,
  history: History,
  strategy: ConflictResolver.Strategy
): { readonly losses: Losses; readonly examples: ReadonlyArray<Record<string, unknown>> } => {
  const counts = { survived: 0, superseded: 0, concurrent: 0, "clock-skew": 0, tie: 0 }
  const examples: Array<Record<string, unknown>> = []
  for (const write of writes) {
    if (write.outcome !== "acknowledged") continue
    for (const change of write.changes) {
      const verdict = verdicts.get(Tuple.key(change.tuple))
      if (verdict === undefined) continue
      const cause = causeOf(change, verdict, history, strategy)
      counts[cause === undefined ? "survived" : cause]++
      if (cause !== undefined && cause !== "superseded" && examples.length < examplesMax) {
        examples.push({ change: Change.idString(change), lostTo: Change.idString(verdict.winner), cause, write: write.id })
      }
    }
  }
  return { losses: counts, examples }
}

const causeOf = (change: Change.Change, verdict: Reference.Verdict, history: History, strategy: ConflictResolver.Strategy): LossCause | undefined => {
  const id = Change.idString(change)
  const winner = verdict.winner
  if (Change.idString(winner) === id) return undefined
  if (!verdict.maximal.some((member) => Change.idString(member) === id)) return "superseded"
  if (change.timestamp.physicalMs === winner.timestamp.physicalMs && change.timestamp.logical === winner.timestamp.logical) return "tie"
  const lostAt = history.acknowledgedAt.get(id)
  const wonAt = history.acknowledgedAt.get(Change.idString(winner))
  if (decidedByTimestamp(strategy, change, winner) && lostAt !== undefined && wonAt !== undefined && lostAt > wonAt) return "clock-skew"
  return "concurrent"
}

/** Acknowledged: every acknowledged change is in some region's log. */
export const acknowledged = (writes: ReadonlyArray<WriteRecord>, regions: ReadonlyArray<RegionState>): ReadonlyArray<Violation> => {
  const known = new Set(unionHistory(regions).map(Change.idString))
  const missing = writes.flatMap((write) =>
    write.outcome === "acknowledged" ? write.changes.filter((change) => !known.has(Change.idString(change))).map((change) => ({ write: write.id, change: Change.idString(change) })) : []
  )
  if (missing.length === 0) return []
  return [{ checker: "acknowledged", message: `${missing.length} acknowledged change(s) are in no region's log`, details: { missing: missing.length, examples: missing.slice(0, examplesMax) } }]
}

/** One node's epoch history with where it ran. */
export interface NodeEpochs {
  readonly nodeId: string
  readonly regionId: string
  readonly history: ReadonlyArray<Failover.EpochChange>
}

/** When each epoch's primary began serving, and which region served it. */
export const epochStarts = (nodes: ReadonlyArray<NodeEpochs>): ReadonlyMap<number, ReadonlyArray<{ readonly primary: string; readonly atMs: number; readonly nodeId: string }>> => {
  const starts = new Map<number, Array<{ readonly primary: string; readonly atMs: number; readonly nodeId: string }>>()
  for (const node of nodes) {
    for (const change of node.history) {
      if (change.fenced || change.primary !== node.regionId) continue
      const list = starts.get(change.epoch) ?? []
      list.push({ primary: change.primary, atMs: change.atMs, nodeId: node.nodeId })
      starts.set(change.epoch, list)
    }
  }
  return starts
}

/** Epochs: one serving region per epoch; no write in an epoch after a newer one began elsewhere. */
export const epochs = (writes: ReadonlyArray<WriteRecord>, nodes: ReadonlyArray<NodeEpochs>): ReadonlyArray<Violation> => {
  const violations: Array<Violation> = []
  const starts = epochStarts(nodes)
  for (const [epoch, list] of starts) {
    const primaries = [...new Set(list.map((start) => start.primary))]
    if (primaries.length > 1) {
      violations.push({ checker: "epochs", message: `epoch ${epoch}: ${primaries.join(" and ")} each served as primary`, details: { epoch, primaries, starts: list } })
    }
  }
  const writers = new Map<number, Set<string>>()
  for (const write of writes) {
    if (write.outcome !== "acknowledged" || write.epoch === undefined || write.targetRegion === undefined) continue
    const set = writers.get(write.epoch) ?? new Set()
    set.add(write.targetRegion)
    writers.set(write.epoch, set)
  }
  for (const [epoch, regions] of writers) {
    if (regions.size > 1) violations.push({ checker: "epochs", message: `epoch ${epoch}: ${[...regions].join(" and ")} each accepted writes`, details: { epoch, regions: [...regions] } })
  }
  const stale = writes.filter((write) => {
    if (write.outcome !== "acknowledged" || write.epoch === undefined || write.targetRegion === undefined) return false
    const admittedAtMs = write.admittedAtMs ?? write.startedAtMs
    return [...starts].some(([epoch, list]) => epoch > write.epoch! && list.some((start) => start.primary !== write.targetRegion && start.atMs <= admittedAtMs))
  })
  if (stale.length > 0) {
    violations.push({
      checker: "epochs",
      message: `${stale.length} write(s) were accepted by a region in an epoch after a newer epoch had begun elsewhere (split brain)`,
      details: { examples: stale.slice(0, examplesMax).map((write) => ({ write: write.id, region: write.targetRegion, epoch: write.epoch, admittedAtMs: write.admittedAtMs ?? write.startedAtMs })) }
    })
  }
  return violations
}

/** What a PrimaryReplica run did around the loss of its primary. */
export interface FailoverTimings {
  /** When the original primary region was first hit by a fault. */
  readonly lossAtMs: number | undefined
  readonly promotedAtMs: number | undefined
  readonly promotedRegion: string | undefined
  /** Loss to first promotion. */
  readonly detectMs: number | undefined
  /** Loss to the first write acknowledged by another region. */
  readonly rtoMs: number | undefined
  /** Writes acknowledged before the promotion that the promoted region did not have then. */
  readonly rpo: number | undefined
  /** When the original primary served again after the promotion. */
  readonly promotedBackAtMs: number | undefined
  /** Every epoch: its primary, when that primary began serving it, and who took writes in it. */
  readonly epochs: ReadonlyArray<{ readonly epoch: number; readonly primary: string; readonly startedAtMs: number; readonly acceptedWrites: Readonly<Record<string, number>> }>
}

const tenths = (ms: number): number => Math.round(ms * 10) / 10

/** Failover timings from the epoch histories and the write history. */
export const failoverTimings = (
  original: string | undefined,
  lossAtMs: number | undefined,
  nodes: ReadonlyArray<NodeEpochs>,
  history: History
): FailoverTimings => {
  const promotion = nodes
    .flatMap((node) => node.history.filter((change) => change.cause === "promoted").map((change) => ({ ...change, regionId: node.regionId })))
    .filter((change) => lossAtMs === undefined || change.atMs >= lossAtMs)
    .sort((a, b) => a.atMs - b.atMs)[0]
  const promotedAtMs = promotion?.atMs
  const back = nodes
    .filter((node) => node.regionId === original)
    .flatMap((node) => node.history.filter((change) => change.primary === original && !change.fenced && promotedAtMs !== undefined && change.atMs > promotedAtMs))
    .sort((a, b) => a.atMs - b.atMs)[0]
  const firstElsewhere = history.writes
    .filter((write) => write.outcome === "acknowledged" && write.targetRegion !== original && lossAtMs !== undefined && write.startedAtMs >= lossAtMs)
    .sort((a, b) => (a.endedAtMs ?? 0) - (b.endedAtMs ?? 0))[0]
  const rpo =
    promotion === undefined
      ? undefined
      : history.writes.filter(
          (write) =>
            write.outcome === "acknowledged" &&
            (write.endedAtMs ?? Infinity) <= promotion.atMs &&
            write.changes.some((change) => {
              const at = history.durableAt.get(Change.idString(change))?.get(promotion.regionId)
              return at === undefined || at > promotion.atMs
            })
        ).length
  const starts = epochStarts(nodes)
  const epochs = [...starts]
    .sort(([a], [b]) => a - b)
    .map(([epoch, list]) => {
      const accepted: Record<string, number> = {}
      for (const write of history.writes) {
        if (write.outcome === "acknowledged" && write.epoch === epoch && write.targetRegion !== undefined) accepted[write.targetRegion] = (accepted[write.targetRegion] ?? 0) + 1
      }
      const first = [...list].sort((a, b) => a.atMs - b.atMs)[0]!
      return { epoch, primary: first.primary, startedAtMs: tenths(first.atMs), acceptedWrites: accepted }
    })
  return {
    lossAtMs,
    promotedAtMs,
    promotedRegion: promotion?.regionId,
    detectMs: promotedAtMs === undefined || lossAtMs === undefined ? undefined : tenths(promotedAtMs - lossAtMs),
    rtoMs: firstElsewhere?.endedAtMs === undefined || lossAtMs === undefined ? undefined : tenths(firstElsewhere.endedAtMs - lossAtMs),
    rpo,
    promotedBackAtMs: back?.atMs,
    epochs
  }
}

/** The failover story: a promotion, writes elsewhere, and the original primary serving at the end. */
export const failoverStory = (
  timings: FailoverTimings,
  original: string | undefined,
  finalStates: ReadonlyArray<{ readonly nodeId: string; readonly state: Failover.State | undefined }>
): ReadonlyArray<Violation> => {
  const violations: Array<Violation> = []
  if (timings.promotedAtMs === undefined) violations.push({ checker: "failover", message: "no region was promoted after the primary was lost", details: { lossAtMs: timings.lossAtMs } })
  if (timings.rtoMs === undefined) violations.push({ checker: "failover", message: "no write was accepted by another region after the primary was lost", details: {} })
  const wrong = finalStates.filter(({ state }) => state === undefined || state.primary !== original || state.fenced)
  if (wrong.length > 0) {
    violations.push({
      checker: "failover",
      message: `at the end, ${wrong.length} node(s) do not serve under the original primary '${original ?? "none"}'`,
      details: { nodes: wrong.map(({ nodeId, state }) => ({ nodeId, primary: state?.primary, fenced: state?.fenced, epoch: state?.epoch })) }
    })
  }
  return violations
}
