/**
 * Automatic failover under PrimaryReplica (the orchestration document's story): when the
 * primary region is lost, the highest-priority available region (LOWEST `failoverPriority`
 * number) promotes itself; writes continue there; when the original primary is back and has
 * re-synced, the acting primary hands the role back to it.
 *
 * Every node runs this controller. It decides from its own TopologyManager view (node
 * statuses come from the Heartbeater and stale checks) and its region's Store, and acts
 * through `setPrimary` and ordinary replicated writes:
 *
 * - Epochs. Each primary change has an epoch number. The region that takes the role writes
 *   an epoch record, a tuple in the reserved vault `_failover`
 *   (`epoch:<n>#primary@region:<id>`), through `Replica.write`. Records travel in the
 *   replication log like any change, so a region that takes the role from a record has
 *   applied everything the previous primary logged before it. Every node adopts the newest
 *   record it holds (higher epoch; on equal epochs the region with the lower failover
 *   priority number), so views converge once the network does. A region whose promotion
 *   record was lost before it replicated (its disk was wiped first) takes the epoch
 *   its peers name it primary of back once its disk has paged their logs, and records it.
 * - Promotion. A node whose region is `Router.electPrimary` of its view promotes its region
 *   after the primary has been unavailable for `detectAfterMs`, if it sees at least half of
 *   the regions (so a region cut off on its own does not promote itself when there are three
 *   or more) and neither it nor any peer reporting to it has agreed with a heartbeat from the
 *   primary within the write lease: a primary that came back before the promotion, or that a
 *   third region still reaches (a non-transitive partition), keeps its role.
 * - Write lease (`Primacy`). Every change of this node's view goes to `Primacy.adopt`. With
 *   three or more regions a primary takes writes only while nodes weighing more than half of
 *   the regions agree with its view in heartbeat answers (`Primacy.weightedMajority`), and a region that takes the role over waits
 *   until leases they granted to an older primary have run out; any node stops taking writes
 *   as soon as a heartbeat answer shows a newer epoch. Such an epoch that names another region
 *   is adopted at the next check, before its record arrives; the role itself is taken only
 *   from a record, after everything logged before it.
 * - Fencing. A primary that has lost contact with at least half of the regions for
 *   `fenceAfterMs` stops taking writes (it names the next region in failover order primary in
 *   its own view). Only regions it had established contact with since it started count as
 *   lost: a peer that has not answered yet, say one whose process starts later, is no sign of a
 *   partition, and the write lease keeps the primary from taking writes until a majority has
 *   answered. With only
 *   two regions it never fences: nothing tells a lost DR region from a partition, and the
 *   document keeps a two-region deployment writable with one region left. A node whose
 *   region would be primary by its own records starts fenced when its disk ran before (its
 *   bootstrap completed or it holds a log): it may have missed a failover while it was down.
 *   It serves again at once when another node of its region answers as primary of the same
 *   epoch (`Primacy.State.regionServesIn`): that node has been watching all along. A
 *   fenced node takes the role back after it has seen more than half of the regions for
 *   `confirmAfterMs` without learning of a newer epoch, counting only regions it has heard
 *   from since it started (a peer never heard counts as available only for its grace period). (A wiped disk of the primary region
 *   cannot tell a new cluster from a failover it missed; see Limits.)
 * - A declared region no node of which is known yet (DNS discovery has not found one) is not
 *   counted down while `TopologyManager.awaited` holds it: the heartbeat timeout after it was
 *   declared, the grace a node never heard gets.
 * - Promotion needs a strict majority of regions, so two regions never fail over on their
 *   own; the operator's `promote` does it (a region that sees only a minority of three or more
 *   refuses). Epochs are dealt round-robin in failover order (`nextEpoch`), so two regions
 *   that promote at once never start the same epoch. An operator's promotion on a disk that has
 *   not paged its peers counts from the wall clock in milliseconds, above any epoch dealt since: the
 *   disk may have lost a newer epoch with a wipe while the peer holding it is down.
 * - Advance. Nodes on such disks vouch for no epoch below their floor until they have paged
 *   every region (`Primacy.State.recovering`), and a region they must page may be down for
 *   good. A primary whose answers have made a majority only if those nodes counted, for
 *   `detectAfterMs` (`Primacy.State.heldByRecoveringSinceMs`), moves to a new epoch of its own
 *   counted from the wall clock, which they vouch for; it takes writes once the usual takeover
 *   wait is over.
 * - Hand-back. The acting primary hands the role back to the original primary (the region
 *   with the lowest failover priority number) once that region has been available for
 *   `promoteBackAfterMs` and has caught up: the agent's durable cursor towards it has reached
 *   the end of the local log. The record is written before the role is given up, so the
 *   original primary adopts it only after it has applied every change logged before it.
 *
 * Limits (there is no consensus protocol here): with three or more regions the write lease
 * keeps two regions from taking writes at the same time as long as node clocks drift apart by
 * no more than `Primacy.driftPpmMax` each, and the promotion rule above keeps an old primary from taking writes after
 * the promotion in the cases the simulator explores. A peer's report of its grants is up to
 * one heartbeat round old, though, so a promotion can still come while the old primary holds
 * a lease granted just after that report (or reported in an answer that was lost); the old
 * primary then takes writes in its epoch after the new epoch began, until its lease runs out
 * or it hears of the new epoch, while the new primary waits that lease out before its first
 * write. A region that adopted an epoch from a heartbeat answer and restarts before the record
 * reaches its store answers with its older view again. With two regions there is no quorum
 * lease, only `Primacy.pairRenewal`'s (a region that takes over waits for the other region's
 * nodes to move on or for a lease to pass, and a node that ran no round for a lease stops): an
 * operator who promotes one while the old primary still serves clients makes two writers
 * (the simulator's epoch checker shows it). There a fresh disk of the configured primary region
 * takes no client write until its bootstrap has paged the other region (or the operator
 * promotes it), so a two-region cluster whose other region is down cannot start taking writes
 * without the operator. With three or more regions a node of the primary region restarted on a
 * wiped disk while another region holds a newer epoch would take writes in the old epoch until
 * its bootstrap brings the newer record (swarm seed 70238), but its write lease needs a majority
 * agreeing with its view, and a majority that adopted the newer epoch answers with it; a node on
 * a new or wiped disk counts in no such majority for a view below its floor until its bootstrap
 * completes (`Primacy.State.recovering`), or two wiped disks back on epoch 0 made one (swarm seed
 * 99301893). The floor rests on wall clocks agreeing within `maxOffsetMs` and on promotions not
 * outrunning the clock by a second (`Primacy.recoveringMarginMs`). The epoch checker reports
 * every case it finds; a consensus-backed epoch store would remove them.
 */
import { Context, Data, Duration, Effect, Ref } from "effect"
import * as Clock from "./Clock.js"
import * as Bootstrap from "./Bootstrap.js"
import type { StoreError } from "./Errors.js"
import * as Handoff from "./Handoff.js"
import * as Primacy from "./Primacy.js"
import * as Replica from "./Replica.js"
import * as Router from "./Router.js"
import * as Store from "./Store.js"
import * as Topology from "./Topology.js"
import * as TopologyManager from "./TopologyManager.js"
import type * as Tuple from "./Tuple.js"

/** The reserved vault that holds epoch records; tenants must not use it. */
export const epochVault = Primacy.epochVault

/** Failover settings of one node. */
export interface Settings {
  readonly regionId: Topology.RegionId
  readonly nodeId: Topology.NodeId
  /** How long the primary must be unavailable before the elected region promotes itself. */
  readonly detectAfterMs: number
  /** How long the original primary must be available (and caught up) before it gets the role back. */
  readonly promoteBackAfterMs: number
  /** How long a primary may see at most half of the regions before it stops taking writes. */
  readonly fenceAfterMs: number
  /** How long a fenced node must see more than half of the regions before it serves again. */
  readonly confirmAfterMs: number
  /** How often the controller looks at its view. */
  readonly checkIntervalMs: number
}


/** Why a node's view of the primary changed. */
export type Cause = "initial" | "promoted" | "adopted" | "reclaimed" | "handed-back" | "fenced" | "confirmed" | "advanced"

/** One change of a node's view of the primary. */
export interface EpochChange {
  readonly epoch: number
  readonly primary: Topology.RegionId | undefined
  readonly fenced: boolean
  /** Effect clock time of the change. */
  readonly atMs: number
  readonly cause: Cause
}

/** What one node believes now, and how it got there. */
export interface State {
  readonly epoch: number
  /** The primary of `epoch` (the local region when it is fenced). */
  readonly primary: Topology.RegionId | undefined
  /** The local region is primary by the records but does not take writes. */
  readonly fenced: boolean
  /** The promotion is not yet in an epoch record. */
  readonly unrecorded: boolean
  readonly history: ReadonlyArray<EpochChange>
}

/** One epoch record. */
export interface EpochRecord {
  readonly epoch: number
  readonly primary: Topology.RegionId
}

/** The controller of one node. */
export class Failover extends Context.Tag("inferadb/Failover")<
  Failover,
  {
    /** Runs the controller until interrupted; idles unless the strategy is PrimaryReplica. */
    readonly run: Effect.Effect<never>
    /** What this node believes now. */
    readonly state: Effect.Effect<State>
    /**
     * The operator's `inferadb-repl promote`: makes this node's region primary of a new epoch
     * now, whatever the detection rules say. It is how a two-region deployment (which never
     * fails over on its own: nothing tells a lost region from a partition there) moves its
     * primary; the operator must know the old primary is down or cut off from clients.
     */
    readonly promote: Effect.Effect<Promotion, PromoteRefused>
  }
>() {}

/** What an operator promotion did. */
export interface Promotion {
  readonly epoch: number
  readonly primary: Topology.RegionId
  /** False when this region already was the unfenced primary. */
  readonly changed: boolean
}

/** An operator promotion that cannot be done (another strategy). */
export class PromoteRefused extends Data.TaggedError("PromoteRefused")<{ readonly message: string }> {}

// ---------------------------------------------------------------------------------------
// Epoch records

const epochDigits = 12

/** The tuple that records `primary` as the primary of `epoch`. */
export const recordTuple = (record: EpochRecord): Tuple.Tuple => ({
  vault: epochVault,
  resource: `epoch:${String(record.epoch).padStart(epochDigits, "0")}`,
  relation: "primary",
  subject: `region:${record.primary}`
})

/** The record a tuple of the epoch vault holds, if it is one. */
export const parseRecord = (tuple: Tuple.Tuple): EpochRecord | undefined => {
  if (tuple.vault !== epochVault || tuple.relation !== "primary") return undefined
  const epoch = Number(tuple.resource.slice("epoch:".length))
  if (!tuple.resource.startsWith("epoch:") || !Number.isSafeInteger(epoch) || !tuple.subject.startsWith("region:")) return undefined
  return { epoch, primary: tuple.subject.slice("region:".length) }
}

const rank = (topology: Topology.Topology, region: Topology.RegionId | undefined): number =>
  Topology.findRegion(topology, region ?? "")?.failoverPriority ?? Number.MAX_SAFE_INTEGER

/** Whether record `a` is newer than epoch `epoch` held with primary `primary`. */
export const isNewer = (topology: Topology.Topology, record: EpochRecord, epoch: number, primary: Topology.RegionId | undefined): boolean =>
  record.epoch > epoch ||
  (record.epoch === epoch && record.primary !== primary && (rank(topology, record.primary) < rank(topology, primary) ||
    (rank(topology, record.primary) === rank(topology, primary) && record.primary < (primary ?? ""))))

/** The newest of a set of records (known regions only). */
export const newest = (topology: Topology.Topology, records: ReadonlyArray<EpochRecord>): EpochRecord | undefined => {
  let best: EpochRecord | undefined
  for (const record of records) {
    if (Topology.findRegion(topology, record.primary) === undefined) continue
    if (best === undefined || isNewer(topology, record, best.epoch, best.primary)) best = record
  }
  return best
}

// ---------------------------------------------------------------------------------------
// Decisions: a pure function of (settings, tracking, observation)

/** The controller's memory between checks. */
export interface Tracking extends State {
  readonly primaryDownSinceMs: number | undefined
  readonly minoritySinceMs: number | undefined
  readonly majoritySinceMs: number | undefined
  readonly originalUpSinceMs: number | undefined
  /**
   * Fenced only because the node started on a new or wiped disk that has not paged its peers'
   * logs yet: it cannot know whether a failover happened while its old disk was away.
   */
  readonly awaitingBootstrap?: boolean
  /** Since when peers have named this region primary of a newer epoch it holds no record of (see `namesSelf`). */
  readonly namedSinceMs?: number | undefined
}

/** What the controller sees at one check. */
export interface Observation {
  readonly topology: Topology.Topology
  readonly nowMs: number
  readonly newest: EpochRecord | undefined
  /** A higher epoch a peer answered a heartbeat with (`Primacy`), not in the store yet. */
  readonly observed: Primacy.View | undefined
  /** The epoch in which another node of this region serves as primary, by its latest answer (`Primacy.State.regionServesIn`). */
  readonly regionServesIn?: number
  /** Until when a write lease this node, or a peer that said so, granted the primary of its view may be held. */
  readonly grantHeldUntilMs: number | undefined
  /** Whether the local log has been shipped to the original primary up to its end. */
  readonly originalCaughtUp: boolean
  /** Whether this node's disk has paged every peer's log (see `Bootstrap`). */
  readonly bootstrapped?: boolean
  /**
   * Regions heard from since this node started, with when each last answered
   * (`TopologyManager.heardAt`); absent means
   * every available region. Confirming a fenced primary and promoting need this evidence: a
   * peer never heard counts as available during its grace period, and a restarted primary that
   * confirmed itself on that guess took writes in its old epoch while the other region had been
   * promoted (swarm seed 502216).
   */
  readonly heard?: ReadonlyMap<Topology.RegionId, number>
  /**
   * Per region: since when it has answered without a silence longer than the stale check allows,
   * up to now (`TopologyManager.heardThroughoutSince`; a region not in it is silent now); absent
   * means since it was last seen available. A hand-back needs the original primary heard
   * throughout `promoteBackAfterMs`.
   */
  readonly heardThroughSince?: ReadonlyMap<Topology.RegionId, number>
  /**
   * Regions contact was established with since this node started (an answer while available, or
   * the answers that brought them back: `TopologyManager.contactedRegions`); absent means every
   * region. Fencing needs contact lost: a region never reached is not evidence of a partition. As a cluster starts, a peer whose process starts later than the heartbeat
   * timeout (or whose first answer, over a new connection, takes that long) is Unreachable
   * without ever having been reached, and a primary that fenced for it refused writes for
   * `confirmAfterMs` after every peer was up (chaos seeds 9990613, 9990634, 9990636). Until a
   * majority answers, the write lease keeps such a primary from taking writes anyway.
   */
  readonly contacted?: ReadonlySet<Topology.RegionId>
  /**
   * Declared regions no node of which is known yet, within their grace period
   * (`TopologyManager.awaited`); absent means none. The primary is not counted down while its
   * region is here: not knowing a region's nodes yet is no sign that they are gone.
   */
  readonly awaited?: ReadonlySet<Topology.RegionId>
  /**
   * Since when this primary's lease has been held back only by nodes that agree with its view but
   * do not vouch for it yet (`Primacy.State.heldByRecoveringSinceMs`); absent when it is not.
   */
  readonly heldByRecoveringSinceMs?: number
}

/** What to do after a check. */
export type Action =
  | { readonly _tag: "None" }
  | { readonly _tag: "Adopt"; readonly record: EpochRecord }
  | { readonly _tag: "Reclaim"; readonly epoch: number }
  | { readonly _tag: "Promote"; readonly epoch: number }
  | { readonly _tag: "Record"; readonly epoch: number }
  | { readonly _tag: "HandBack"; readonly record: EpochRecord }
  | { readonly _tag: "Fence"; readonly successor: Topology.RegionId }
  | { readonly _tag: "Unfence" }
  /** The primary moves its view to a new epoch of its own; the check deals it from the wall clock (`flooredEpoch`). */
  | { readonly _tag: "Advance"; readonly epoch: number }

/** The region that is primary when every region is up: the lowest failover priority number. */
export const originalPrimary = (topology: Topology.Topology): Topology.RegionId | undefined =>
  [...topology.regions].sort((a, b) => a.failoverPriority - b.failoverPriority || (a.id < b.id ? -1 : 1))[0]?.id

/**
 * The first epoch after `after` that `region` may start: epochs are dealt out round-robin in
 * failover order (the region at position i of N starts only epochs e with e mod N = i), so two
 * regions that promote at the same time (an operator and the automatic rule, or two views of
 * a partition) never start the same epoch: every epoch has one primary by construction.
 */
export const nextEpoch = (topology: Topology.Topology, after: number, region: Topology.RegionId): number => {
  const order = [...topology.regions].sort((a, b) => a.failoverPriority - b.failoverPriority || (a.id < b.id ? -1 : 1)).map((candidate) => candidate.id)
  const position = order.indexOf(region)
  if (position < 0 || order.length === 0) return after + 1
  let epoch = after + 1
  while (epoch % order.length !== position) epoch++
  return epoch
}

/** The region that takes writes while `region` is fenced: the next one in failover order. */
export const successor = (topology: Topology.Topology, region: Topology.RegionId): Topology.RegionId | undefined =>
  [...topology.regions]
    .filter((candidate) => candidate.id !== region)
    .sort((a, b) => a.failoverPriority - b.failoverPriority || (a.id < b.id ? -1 : 1))[0]?.id

const since = (condition: boolean, previous: number | undefined, nowMs: number): number | undefined =>
  condition ? (previous ?? nowMs) : undefined

const heldFor = (sinceMs: number | undefined, nowMs: number, durationMs: number): boolean =>
  sinceMs !== undefined && nowMs - sinceMs >= durationMs

/**
 * Since when the original primary has been up for the hand-back: seen available at every check
 * since `availableSinceMs`, and heard throughout since then. Checks alone missed an outage a
 * little longer than the heartbeat timeout that ended between two stale checks: the acting
 * primary then handed back 200 ms after the original restarted, before its own takeover wait
 * had let it take a write (two-region-handback-pause with 600 ms heartbeats,
 * `test/sim/Scenarios.test.ts`).
 */
const originalUpSince = (availableSinceMs: number | undefined, observation: Observation, original: Topology.RegionId): number | undefined => {
  if (availableSinceMs === undefined || observation.heardThroughSince === undefined) return availableSinceMs
  const heardSinceMs = observation.heardThroughSince.get(original)
  return heardSinceMs === undefined ? undefined : Math.max(availableSinceMs, heardSinceMs)
}

/** Whether `region` answered at `sinceMs` or later (and not only before, nor never). */
const heardSince = (heard: ReadonlyMap<Topology.RegionId, number>, region: Topology.RegionId, sinceMs: number): boolean => {
  const atMs = heard.get(region)
  return atMs !== undefined && atMs >= sinceMs
}

/** Whether the primary of this node's view counts as down: another region, unavailable, and not awaited. */
const primaryDown = (
  primary: Topology.RegionId | undefined,
  self: Topology.RegionId,
  available: (region: Topology.RegionId) => boolean,
  awaited: ReadonlySet<Topology.RegionId> | undefined
): boolean => primary !== undefined && primary !== self && !available(primary) && awaited?.has(primary) !== true

/** One check: updated timers and the action to take. */
export const decide = (settings: Settings, tracking: Tracking, observation: Observation): { readonly tracking: Tracking; readonly action: Action } => {
  const { topology, nowMs } = observation
  const self = settings.regionId
  const available = (region: Topology.RegionId) => region === self || Topology.isRegionAvailable(topology, region)
  const visible = topology.regions.filter((region) => available(region.id)).length
  const contacted = observation.contacted
  const lost = topology.regions.filter((region) => !available(region.id) && (contacted === undefined || contacted.has(region.id))).length
  const heard = observation.heard
  const answeredSince = (sinceMs: number) =>
    heard === undefined ? visible : topology.regions.filter((region) => region.id === self || (available(region.id) && heardSince(heard, region.id, sinceMs))).length
  const answered = answeredSince(-Infinity)
  const total = topology.regions.length
  const original = originalPrimary(topology)
  const next: Tracking = {
    ...tracking,
    primaryDownSinceMs: since(primaryDown(tracking.primary, self, available, observation.awaited), tracking.primaryDownSinceMs, nowMs),
    minoritySinceMs: since((total - lost) * 2 <= total && total > 2, tracking.minoritySinceMs, nowMs),
    majoritySinceMs: since(answered * 2 > total, tracking.majoritySinceMs, nowMs),
    originalUpSinceMs: since(original !== undefined && original !== self && available(original), tracking.originalUpSinceMs, nowMs),
    namedSinceMs: since(namesSelf(observation, tracking, self), tracking.namedSinceMs, nowMs)
  }
  const act = (action: Action) => ({ tracking: next, action })
  const latest = newest(topology, [observation.newest, adoptable(observation.observed, self)].flatMap((record) => (record === undefined ? [] : [record])))
  if (latest !== undefined && isNewer(topology, latest, next.epoch, next.primary)) {
    return act({ _tag: "Adopt", record: latest })
  }
  if (heldFor(next.namedSinceMs, nowMs, settings.detectAfterMs) && observation.observed !== undefined) {
    return act({ _tag: "Reclaim", epoch: observation.observed.epoch })
  }
  if (next.primary === self && next.fenced) {
    // A fresh disk that has paged every peer's log and found no newer epoch (it would have been
    // adopted above) may serve at once; a restarted one waits to be sure it missed nothing.
    const bootstrappedClean = next.awaitingBootstrap === true && observation.bootstrapped === true
    // A sibling serving in this very epoch has been watching all along: nothing was missed. On a
    // store the region's nodes share, a node that starts after its sibling finds a disk that ran
    // before, and refused its writes for `confirmAfterMs` while the sibling took them (swarm seed
    // 44001111; with FoundationDB, every node restarted in a rolling upgrade did the same).
    const siblingServes = observation.regionServesIn === next.epoch
    return act(bootstrappedClean || siblingServes || heldFor(next.majoritySinceMs, nowMs, settings.confirmAfterMs) ? { _tag: "Unfence" } : { _tag: "None" })
  }
  if (next.primary === self) {
    const after = successor(topology, self)
    if (heldFor(next.minoritySinceMs, nowMs, settings.fenceAfterMs) && after !== undefined) return act({ _tag: "Fence", successor: after })
    if (next.unrecorded) return act({ _tag: "Record", epoch: next.epoch })
    if (original !== undefined && original !== self && heldFor(originalUpSince(next.originalUpSinceMs, observation, original), nowMs, settings.promoteBackAfterMs) && observation.originalCaughtUp) {
      return act({ _tag: "HandBack", record: { epoch: nextEpoch(topology, next.epoch, original), primary: original } })
    }
    // Nodes on new or wiped disks vouch only for epochs minted since they started until they have
    // paged every region, and a region they must page may be down for good: the view moves on to
    // such an epoch, counted from the wall clock (`Primacy.Tally.heldByRecovering`).
    if (heldFor(observation.heldByRecoveringSinceMs, nowMs, settings.detectAfterMs) && observation.bootstrapped !== false) {
      return act({ _tag: "Advance", epoch: nextEpoch(topology, next.epoch, self) })
    }
    return act({ _tag: "None" })
  }
  const elected = Router.electPrimary(topology) === self
  const granted = observation.grantHeldUntilMs !== undefined && nowMs < observation.grantHeldUntilMs
  // A strict majority of regions: with two regions nothing tells a lost primary from a cut
  // link, so they never fail over on their own (the operator's `promote` does it). The majority
  // must have answered since the primary was seen down: a region cut off from everyone sees
  // each peer go stale at its own deadline, and one whose view still held a silent peer up
  // promoted itself alone, fenced itself at once and took writes only `confirmAfterMs` after
  // the partition healed (`sim swarm --scenario scenarios/chaos-primary-pause.yaml`, seed 36000496).
  const downSinceMs = next.primaryDownSinceMs
  if (downSinceMs !== undefined && heldFor(downSinceMs, nowMs, settings.detectAfterMs) && elected && answeredSince(downSinceMs) * 2 > total && !granted) {
    return act({ _tag: "Promote", epoch: nextEpoch(topology, next.epoch, self) })
  }
  return act({ _tag: "None" })
}

/**
 * An observed epoch is adopted early only when it names another region: taking the role
 * needs the record, which arrives after everything the previous primary logged before it.
 */
const adoptable = (observed: Primacy.View | undefined, self: Topology.RegionId): EpochRecord | undefined =>
  observed?.primary === undefined || observed.primary === self ? undefined : { epoch: observed.epoch, primary: observed.primary }

/**
 * Whether peers name this region primary of an epoch newer than this node's view (`observed`).
 * Normally its record is on the way: a hand-back writes it before the giver changes its view.
 * But a region that promotes itself answers with its new view before its record has replicated,
 * and when its disk is wiped before that (swarm seed 608946: 260 ms after the promotion) the
 * record is gone: the peers wait for a record only this region can write, and this node waits
 * for one naming another region, so nobody takes writes again. A node whose disk has paged its
 * peers' logs (a record that replicated anywhere would have been adopted) and that has heard
 * the epoch for `detectAfterMs` without its record arriving takes the epoch back and records it.
 */
const namesSelf = (observation: Observation, tracking: Tracking, self: Topology.RegionId): boolean =>
  observation.observed?.primary === self && observation.observed.epoch > tracking.epoch && observation.bootstrapped !== false

// ---------------------------------------------------------------------------------------
// The controller

const initialTracking = (epoch: number, primary: Topology.RegionId | undefined, fenced: boolean, nowMs: number): Tracking => ({
  epoch,
  primary,
  fenced,
  unrecorded: false,
  history: [{ epoch, primary, fenced, atMs: nowMs, cause: "initial" }],
  primaryDownSinceMs: undefined,
  minoritySinceMs: undefined,
  majoritySinceMs: undefined,
  originalUpSinceMs: undefined
})

const withChange = (tracking: Tracking, change: Omit<EpochChange, "atMs">, nowMs: number): Tracking => ({
  ...tracking,
  epoch: change.epoch,
  primary: change.primary,
  fenced: change.fenced,
  history: [...tracking.history, { ...change, atMs: nowMs }]
})

/** A change of view in words, for the operator. */
const describeChange = (change: Omit<EpochChange, "atMs">): string => {
  switch (change.cause) {
    case "promoted":
      return `promoted: this region is primary of epoch ${change.epoch}`
    case "adopted":
      return `adopted epoch ${change.epoch}: ${change.primary ?? "no region"} is primary`
    case "reclaimed":
      return `reclaimed epoch ${change.epoch}: peers name this region primary of it and its record was lost before it replicated`
    case "handed-back":
      return `handed back: ${change.primary ?? "no region"} is primary of epoch ${change.epoch}`
    case "fenced":
      return `fenced: this region stops taking writes in epoch ${change.epoch} (it lost contact with at least half of the regions, or restarted and may have missed a failover)`
    case "confirmed":
      return `unfenced: this region takes writes again as primary of epoch ${change.epoch}`
    case "advanced":
      return `advanced: this region stays primary in epoch ${change.epoch}, counted from the wall clock, which nodes on new or wiped disks vouch for`
    case "initial":
      return `primary view at start: epoch ${change.epoch}, ${change.primary ?? "no region"} primary${change.fenced ? " (this region fenced)" : ""}`
  }
}

/**
 * The log line of a change of this node's view: its description, then its fields as the history
 * keeps them, for tools. The chaos harness reads every node's history from these lines, as the
 * simulator reads it from the node; the README documents the format ("Health, metrics and
 * logs"): keep the two in step.
 */
export const changeLine = (change: Omit<EpochChange, "atMs">): string =>
  `${describeChange(change)} (epoch change: epoch=${change.epoch} primary=${change.primary ?? ""} fenced=${change.fenced} cause=${change.cause})`

/** Logs a change as it happens: promotion, fencing and an advance at warning, the rest at info. */
const logChange = (change: Omit<EpochChange, "atMs">): Effect.Effect<void> =>
  change.cause === "promoted" || change.cause === "fenced" || change.cause === "advanced" ? Effect.logWarning(changeLine(change)) : Effect.logInfo(changeLine(change))

/** What the controller acts through. */
interface Io {
  readonly tracking: Ref.Ref<Tracking>
  readonly writeRecord: (record: EpochRecord) => Effect.Effect<boolean>
  readonly setPrimary: (region: Topology.RegionId | undefined) => Effect.Effect<void>
  /** Hands a view to `Primacy`, which guards the write path with it. */
  readonly adopt: (view: Pick<EpochChange, "epoch" | "primary" | "fenced">) => Effect.Effect<void>
}

/** Adopts a node's starting view, the first change of its history, and logs it as one. */
const adoptStart = (io: Io, view: Pick<EpochChange, "epoch" | "primary" | "fenced">): Effect.Effect<void> =>
  Effect.zipRight(io.adopt(view), logChange({ ...view, cause: "initial" }))

/** The view `Primacy` holds for a node's state: a fenced region takes no writes. */
const primacyView = (view: Pick<EpochChange, "epoch" | "primary" | "fenced">): Primacy.View => ({
  epoch: view.epoch,
  primary: view.fenced ? undefined : view.primary
})

/**
 * The decision with the epoch it deals counted from the wall clock (`floored`, above the epoch it
 * was given) where it must be: an advance always, a promotion by a disk that has not paged its
 * peers (see `flooredEpoch`).
 */
const dealt = (action: Action, observation: Observation, floored: (after: number) => Effect.Effect<number>): Effect.Effect<Action> => {
  if (action._tag === "Advance") return Effect.map(floored(action.epoch - 1), (epoch) => ({ _tag: "Advance" as const, epoch }))
  if (action._tag === "Promote" && observation.bootstrapped === false) return Effect.map(floored(action.epoch), (epoch) => ({ _tag: "Promote" as const, epoch }))
  return Effect.succeed(action)
}

/** Carries out one decision. */
const perform = (settings: Settings, io: Io, action: Action, nowMs: number): Effect.Effect<void> =>
  Effect.gen(function* () {
    const current = yield* Ref.get(io.tracking)
    const change = (next: Omit<EpochChange, "atMs">, unrecorded?: boolean) =>
      Effect.zipRight(Ref.set(io.tracking, { ...withChange(current, next, nowMs), ...(unrecorded === undefined ? {} : { unrecorded }) }), Effect.zipRight(io.adopt(next), logChange(next)))
    const recordPromotion = (epoch: number) =>
      Effect.flatMap(io.writeRecord({ epoch, primary: settings.regionId }), (written) =>
        written ? Ref.update(io.tracking, (state) => (state.epoch === epoch ? { ...state, unrecorded: false } : state)) : Effect.void
      )
    switch (action._tag) {
      case "None":
        return
      case "Adopt":
        yield* change({ ...action.record, fenced: false, cause: "adopted" }, false)
        return yield* io.setPrimary(action.record.primary)
      case "Reclaim": {
        // A fenced node stays fenced in the reclaimed epoch: it still confirms before serving.
        const fenced = current.primary === settings.regionId && current.fenced
        yield* change({ epoch: action.epoch, primary: settings.regionId, fenced, cause: "reclaimed" }, true)
        return fenced ? undefined : yield* io.setPrimary(settings.regionId)
      }
      case "Promote":
        yield* change({ epoch: action.epoch, primary: settings.regionId, fenced: false, cause: "promoted" }, true)
        yield* io.setPrimary(settings.regionId)
        return yield* recordPromotion(action.epoch)
      case "Record":
        return yield* recordPromotion(action.epoch)
      case "HandBack":
        // The record goes into the log while this region is still primary, before the role is given up.
        if (!(yield* io.writeRecord(action.record))) return
        yield* change({ ...action.record, fenced: false, cause: "handed-back" })
        return yield* io.setPrimary(action.record.primary)
      case "Fence":
        yield* change({ epoch: current.epoch, primary: settings.regionId, fenced: true, cause: "fenced" })
        return yield* io.setPrimary(action.successor)
      case "Unfence":
        yield* change({ epoch: current.epoch, primary: settings.regionId, fenced: false, cause: "confirmed" })
        yield* Ref.update(io.tracking, (state) => ({ ...state, awaitingBootstrap: false }))
        return yield* io.setPrimary(settings.regionId)
      case "Advance":
        yield* change({ epoch: action.epoch, primary: settings.regionId, fenced: false, cause: "advanced" }, true)
        return yield* recordPromotion(action.epoch)
    }
  })

/**
 * Whether the local log has been shipped to the original primary up to its end. The hand-back
 * record travels in log order, so the original primary takes the role only once it has applied
 * everything logged before it: the cursor check only spares it a long backlog, and a region
 * with no direct edge to it (a ring) has no cursor to look at.
 */
const caughtUpWithOriginal = (store: Store.Store["Type"], topology: Topology.Topology, self: Topology.RegionId): Effect.Effect<boolean, StoreError> =>
  Effect.gen(function* () {
    const original = originalPrimary(topology)
    const direct = original !== undefined && Topology.targetsOf(topology, self).includes(original)
    return original === undefined || original === self || !direct ? true : (yield* store.getCursor(original)) >= (yield* store.logEnd)
  })

/** The epoch records a replica holds. */
const recordsIn = (replica: Replica.Replica["Type"]): Effect.Effect<ReadonlyArray<EpochRecord>, StoreError> =>
  Effect.map(replica.list({ vault: epochVault }), (tuples) =>
    tuples.flatMap((tuple) => {
      const record = parseRecord(tuple)
      return record === undefined ? [] : [record]
    })
  )

/** The observation's view of what was heard at `nowMs` (`Observation.heard`, `heardThroughSince`). */
const heardOf = (heard: TopologyManager.Heard, nowMs: number) => {
  const heardThroughSince = new Map<Topology.RegionId, number>()
  for (const region of heard.spans.keys()) {
    const sinceMs = TopologyManager.heardThroughoutSince(heard, region, nowMs)
    if (sinceMs !== undefined) heardThroughSince.set(region, sinceMs)
  }
  return { heard: heard.lastMs, heardThroughSince }
}

/** What `observe` reads from. */
interface Sources {
  readonly store: Store.Store["Type"]
  readonly manager: TopologyManager.TopologyManager["Type"]
  readonly primacy: Primacy.Primacy["Type"]
  readonly readRecords: Effect.Effect<ReadonlyArray<EpochRecord>, StoreError>
  readonly bootstrapNeeded: Effect.Effect<boolean>
}

/** What one check sees. */
const observe = (sources: Sources, settings: Settings, topology: Topology.Topology, nowMs: number, current: Tracking): Effect.Effect<Observation, StoreError> =>
  Effect.gen(function* () {
    const { manager, primacy } = sources
    // Read before the records: a bootstrap writes every page before its completion marker, so a
    // disk seen complete here has every record it paged in the read below. Read after them, a
    // bootstrap completing in between looked complete with a record missing.
    const bootstrapped = !(yield* sources.bootstrapNeeded)
    const primacyState = yield* primacy.state
    return {
      topology,
      nowMs,
      newest: newest(topology, yield* sources.readRecords),
      observed: primacyState.newerEpochSeen,
      ...(primacyState.regionServesIn === undefined ? {} : { regionServesIn: primacyState.regionServesIn }),
      grantHeldUntilMs: current.primary === undefined ? undefined : Primacy.grantHeldUntilMs(primacyState, current.primary, primacy.leaseMs),
      ...(primacyState.heldByRecoveringSinceMs === undefined ? {} : { heldByRecoveringSinceMs: primacyState.heldByRecoveringSinceMs }),
      originalCaughtUp: yield* caughtUpWithOriginal(sources.store, topology, settings.regionId),
      bootstrapped,
      ...heardOf(yield* manager.heard, nowMs),
      contacted: yield* manager.contactedRegions,
      awaited: yield* manager.awaited
    }
  })

/** Builds the controller of one node; under PrimaryReplica it settles its starting view first. */
export const make = (settings: Settings) =>
  Effect.gen(function* () {
    const replica = yield* Replica.Replica
    const store = yield* Store.Store
    const manager = yield* TopologyManager.TopologyManager
    const primacy = yield* Primacy.Primacy
    const clock = yield* Clock.Clock
    const tracking = yield* Ref.make(initialTracking(0, undefined, false, 0))
    const io: Io = {
      tracking,
      writeRecord: (record) => Effect.map(Effect.either(replica.write([{ op: "insert", tuple: recordTuple(record) }])), (written) => written._tag === "Right"),
      // A rejected change of primary (an unknown region) leaves the view as it was.
      setPrimary: (region) => (region === undefined ? Effect.void : Effect.ignore(manager.setPrimary(region))),
      adopt: (view) => primacy.adopt(primacyView(view))
    }
    const bootstrapNeeded = Effect.orElseSucceed(Effect.provideService(Bootstrap.needed, Store.Store, store), () => true)
    const readRecords = recordsIn(replica)

    /** Starting point: the newest record, else the configured primary; fenced if it is us and we ran before. */
    const start = Effect.gen(function* () {
      const topology = yield* manager.current
      const record = newest(topology, yield* Effect.orElseSucceed(readRecords, () => []))
      const primary = record?.primary ?? Topology.primaryRegion(topology)?.id
      // A disk that ran before (its bootstrap completed, or it holds a log: an empty log alone
      // does not make a disk new) may have missed a failover while it was down: it starts fenced.
      const fresh = yield* bootstrapNeeded
      const ranBefore = !fresh || (yield* Effect.orElseSucceed(store.logEnd, () => 0)) > 0
      const fenced = primary === settings.regionId && ranBefore && successor(topology, settings.regionId) !== undefined
      yield* Ref.set(tracking, { ...initialTracking(record?.epoch ?? 0, primary, fenced, yield* Clock.monotonicMs), awaitingBootstrap: fenced && fresh })
      yield* adoptStart(io, { epoch: record?.epoch ?? 0, primary, fenced })
      yield* io.setPrimary(fenced ? successor(topology, settings.regionId) : primary)
    })

    /**
     * The epoch a disk that has not paged its peers yet (new or wiped) promotes itself to: above
     * `after`, and counted from the wall clock in milliseconds, above any epoch dealt since (see
     * `promote`). Such a disk may have lost a newer epoch with its old contents; one minted
     * above the wall clock is newer than that, so recovering nodes that started a little before
     * vouch for it (`Primacy.recoveringFloor`), this one included, though their bootstraps are
     * not complete: a region wiped while the primary was down (paused, and so never paged) could
     * not otherwise be promoted, and no region took writes (swarm seed 99400001 over
     * primary-failover.yaml, December 5, 2026). Milliseconds rather than seconds since December
     * 7, 2026, when the floor moved above the wall clock at start: a promotion counts up by as
     * many as the regions, which in seconds outruns the clock after a few quick promotions and
     * would have needed a floor tens of seconds high, the wait before a wiped region vouches.
     */
    const flooredEpoch = (topology: Topology.Topology, after: number) =>
      Effect.map(clock.physicalMs, (physicalMs) => nextEpoch(topology, Math.max(after, Math.floor(physicalMs)), settings.regionId))

    // Checks and operator promotions take turns, so a decision never acts on a stale view.
    const turn = yield* Effect.makeSemaphore(1)

    const check = Effect.gen(function* () {
      const topology = yield* manager.current
      if (topology.strategy !== "PrimaryReplica") return
      const nowMs = yield* Clock.monotonicMs
      const current = yield* Ref.get(tracking)
      const observation = yield* observe({ store, manager, primacy, readRecords, bootstrapNeeded }, settings, topology, nowMs, current)
      const decided = decide(settings, current, observation)
      yield* Ref.set(tracking, decided.tracking)
      yield* perform(settings, io, yield* dealt(decided.action, observation, (after) => flooredEpoch(topology, after)), nowMs)
      // A fresh disk of the primary region takes writes only once its bootstrap brought the
      // epoch records and this check adopted any newer one (see `Engine`).
      if (observation.bootstrapped === true && !(yield* replica.writesOpen)) yield* replica.openWrites
      // Likewise its view counts in leases again only now (`Primacy.State.recovering`).
      if (observation.bootstrapped === true) yield* primacy.settle
    }).pipe(turn.withPermits(1))

    const promote: Effect.Effect<Promotion, PromoteRefused> = Effect.gen(function* () {
      const topology = yield* manager.current
      if (topology.strategy !== "PrimaryReplica") return yield* new PromoteRefused({ message: `promote applies to PrimaryReplica, not ${topology.strategy}` })
      const current = yield* Ref.get(tracking)
      // Already primary, yet a node that started while the other region was down waits for
      // every node of it (`Primacy.State.awaitingPeers`): the operator's word ends that too.
      if (current.primary === settings.regionId && !current.fenced) return yield* Effect.as(primacy.operatorPromoted, { epoch: current.epoch, primary: settings.regionId, changed: false })
      // With three or more regions a promoted region needs a majority for its write lease: one
      // that sees only a minority would take the role and then refuse every write.
      const visible = topology.regions.filter((region) => region.id === settings.regionId || Topology.isRegionAvailable(topology, region.id)).length
      if (topology.regions.length >= 3 && visible * 2 <= topology.regions.length) {
        return yield* new PromoteRefused({ message: `${settings.regionId} sees ${visible} of ${topology.regions.length} regions; promote a region that sees a majority` })
      }
      const recorded = newest(topology, yield* Effect.orElseSucceed(readRecords, () => []))
      // A disk that has not paged its peers may have lost a newer epoch with a wipe while the one
      // peer that holds it is down: its promotion counts from the wall clock in milliseconds instead,
      // above any epoch dealt since (swarm seed 87100056 over two-region-discovery-wipe.yaml: the
      // acting primary handed the role back in epoch 2, lost its disk, and, promoted again while
      // the original primary was down, took epoch 1 and writes in it after epoch 2's).
      const after = Math.max(current.epoch, recorded?.epoch ?? 0, (yield* primacy.state).newerEpochSeen?.epoch ?? 0)
      const epoch = (yield* bootstrapNeeded) ? yield* flooredEpoch(topology, after) : nextEpoch(topology, after, settings.regionId)
      yield* Effect.logWarning(`operator promotion: ${settings.regionId} becomes primary of epoch ${epoch} (was ${current.primary ?? "none"} in epoch ${current.epoch})`)
      yield* perform(settings, io, { _tag: "Promote", epoch }, yield* Clock.monotonicMs)
      // The operator's word also opens the writes a fresh two-region primary disk holds until its
      // bootstrap has paged the other region (see `Engine`), and ends the wait for every node of
      // the other region to answer (`Primacy.State.awaitingPeers`): they said that region is down.
      yield* Effect.zipRight(Effect.unlessEffect(replica.openWrites, replica.writesOpen), primacy.operatorPromoted)
      return { epoch, primary: settings.regionId, changed: true }
    }).pipe(turn.withPermits(1))

    // The starting view is settled while the node is built, before it serves anything, so a
    // restarted primary never takes a write before it has fenced itself.
    const primaryReplica = (yield* manager.current).strategy === "PrimaryReplica"
    if (primaryReplica) yield* start

    // A store failure skips one check; the next one looks again. Under another strategy the
    // controller idles without holding a host timer (see `Handoff.parked`).
    const run: Effect.Effect<never> = primaryReplica
      ? Handoff.repeat(Effect.zipRight(Effect.sleep(Duration.millis(settings.checkIntervalMs)), Effect.ignore(check))).pipe(
          Effect.annotateLogs({ component: "failover" })
        )
      : Handoff.parked

    const state: Effect.Effect<State> = Effect.map(Ref.get(tracking), ({ epoch, primary, fenced, unrecorded, history }) => ({ epoch, primary, fenced, unrecorded, history }))
    return { run, state, promote } satisfies Failover["Type"]
  })
