/**
 * This node's knowledge of who takes writes under PrimaryReplica (an epoch and its primary
 * region, the "view") and the write lease that stops a primary that was paused or cut off
 * from taking writes after another region may have been promoted. The Failover controller
 * decides views and hands every change to `adopt`; the Heartbeater carries views between
 * nodes; the Replica asks `checkWrite` before it takes a write. Nothing here is persisted:
 * Failover settles the view from the epoch records in the store whenever the node starts.
 *
 * - Agreement. Every heartbeat answer carries the answering node's view. A node that answers
 *   a heartbeat from the region it believes primary records the time: it granted that region
 *   a lease. A primary renews its lease after a heartbeat round in which nodes holding more
 *   than half of the regions' weight (its own included) answered with the same epoch and
 *   primary; each node weighs 1/n of its n-node region (`weightedMajority`). A region's nodes
 *   are those of this node's topology and those that asked it for a heartbeat within a lease
 *   though the topology lacks them (`nodesOfRegion`). The lease runs `leaseMs` from the start
 *   of that round.
 * - Newer epochs. An answer with a higher epoch than this node's is remembered
 *   (`newerEpochSeen`); from then on this node takes no writes, and Failover adopts it.
 * - Takeover. A region that takes a view over (promotion, hand-back, unfencing) takes writes
 *   only once leases granted under older views can have run out: the regions that agreed
 *   with it report, per region, how long ago they last granted one, and it waits out every
 *   such lease granted to a region whose nodes have not all agreed. Any two weighted majorities
 *   share a node, and a node answers with views in epoch order, so an older primary's lease
 *   has run out before a newer primary's first write.
 * - Reported grants. The same ages tell every asker when its peers last granted each region a
 *   lease (`grantsReportedAtMs`); Failover does not promote a successor while the primary may
 *   still hold one, so a primary that a third region still reaches keeps its role.
 *
 * With two regions no quorum can vouch for a primary (the orchestration document keeps a
 * two-region deployment writable with one region left, and Failover never fences there): the
 * lease there is `pairRenewal`'s, renewed by the node's own rounds, with a takeover waiting for
 * the other region's nodes to move on. With one region there is no lease.
 *
 * Limits: leases are durations on each node's own clock, so a holder writes for a little less
 * than its lease (`heldMs`), which allows clocks drifting within `driftPpmMax` (offsets do not
 * matter); a node restarted on a
 * non-empty store, or on a new or wiped one, counts its start as a grant to every region, as it
 * cannot remember what it granted before, but it answers with the view of its stored epoch
 * records, which may be older than a view it adopted from a heartbeat answer before it stopped.
 */
import { Context, Effect } from "effect"
import * as Clock from "./Clock.js"
import { WriteRejected } from "./Errors.js"
import * as Handoff from "./Handoff.js"
import type * as Message from "./Message.js"
import * as Store from "./Store.js"
import * as Topology from "./Topology.js"

/** The reserved vault of epoch records (see `Failover`): they travel under any view, lease or not. */
export const epochVault = "_failover"

/** Who takes writes, as one node believes. */
export interface View {
  /** Grows by one with every change of primary made by failover. */
  readonly epoch: number
  /** The region that takes writes in `epoch`; undefined when none does (its own region is fenced, or another strategy). */
  readonly primary: Topology.RegionId | undefined
}

/** One node's view with its lease and what it granted (monotonic milliseconds, `Clock.monotonicMs`). */
export interface State extends View {
  /** Start of the last heartbeat round in which a weighted majority of nodes (`weightedMajority`) agreed with the view. */
  readonly leaseRenewedAtMs: number | undefined
  /** When leases granted under older views can have run out; undefined until a round agreed. */
  readonly writableFromMs: number | undefined
  /** A higher epoch a peer answered with, not yet adopted. */
  readonly newerEpochSeen?: View
  /** Per region, when this node last answered a heartbeat from it while it believed it primary. */
  readonly grantedAtMs: Readonly<Record<Topology.RegionId, number>>
  /**
   * Per region, the latest end of a lease this node granted it to a node that said which lease
   * it runs on (`Heartbeat.leaseMs`): the grant's time plus that lease, over every such grant, so
   * a short lease granted last does not hide a longer one granted just before (the nodes of one
   * region run different settings in the middle of a rolling update). Grants to nodes that said
   * none bind for this node's own lease.
   */
  readonly grantedUntilMs: Readonly<Record<Topology.RegionId, number>>
  /** Per region, until when a lease a peer reported granting it may be held (an upper bound; see `tally`). */
  readonly grantsReportedUntilMs: Readonly<Record<Topology.RegionId, number>>
  /**
   * Two regions: when this node last took a view whose primary another region (or none) was
   * before, or started on a disk that ran before (see `pairRenewal`).
   */
  readonly takenOverAtMs?: number
  /**
   * Two regions: the start of the first heartbeat round that found this node's lease run out in
   * its current view (the node was stopped, or stalled). Until every node of the other region
   * has answered since with this epoch or a newer one, or a lease has passed, it takes no write,
   * as after a takeover (see `pairRenewal`).
   */
  readonly lapsedAtMs?: number
  /**
   * The epoch in which another node of this node's region serves as primary, by its latest answer
   * within a lease; undefined when none does. A node that started fenced on a disk that ran
   * before (it may have missed a failover) takes its region's role back at once on this
   * evidence: its sibling has been watching all along (see `Failover.decide`).
   */
  readonly regionServesIn?: number
  /**
   * Set while this node runs on a new or wiped disk whose bootstrap has not paged every region
   * yet (`Settings.recovering`, until `settle`): its view is the configured one or what it heard
   * since, and may be older than an epoch its disk held before. Until then it vouches only for
   * views of an epoch of at least `vouchesFromEpoch` (`vouches`): its answers for any other say
   * so (`HeartbeatAck.recovering`) and no lease counts them, its own included (`renewal`). Two
   * wiped single-node regions of three, each back on the configured view, made a majority for
   * the old primary while the third region held the newer epoch, and the old primary took a
   * write in epoch 0 after the operator had promoted another region (swarm seed 99301893,
   * December 5, 2026).
   */
  readonly recovering?: { readonly vouchesFromEpoch: number }
  /**
   * Since when every tally of this primary's answers found no majority for its view, though one
   * counting the answers of recovering nodes that agree with it would have been (`Tally.heldByRecovering`);
   * cleared by a renewal, a tally without that, or a change of view. Failover advances the view
   * to an epoch those nodes vouch for once this has lasted its detection delay (`Failover.decide`).
   */
  readonly heldByRecoveringSinceMs?: number
  /**
   * Set on a new or wiped disk (`Settings.recovering`) until its lease is first renewed (a
   * majority's renewal counts only nodes that vouch, so a deployment of three regions cut to two
   * does not wait again) or the view changes: such a node renews its two-region lease
   * (`pairRenewal`) only once a node of the other region that vouches for its view (its own disk
   * not recovering, `HeartbeatAck.recovering`) has answered agreeing with it. Its bootstrap may
   * have paged the other region through a node
   * whose disk is as new as its own: the primary region's wiped disk and a wiped node of the
   * promoted region paged each other while the one disk that held the newer epoch was down, and
   * the old primary took writes in epoch 0 after the operator's epoch 1 (swarm seed 147100067 over
   * two-region-handback-pause.yaml, December 7, 2026).
   */
  readonly awaitingVouch?: true
  /**
   * Set at every start, on any disk, until every node of every other region has answered this
   * node while not recovering (`peersHeard`, from `Heartbeater`'s fold) or the operator promotes
   * this node's region on it (`operatorPromoted`): until then a two-region node renews no lease
   * (`pairRenewal`), whatever view it holds or adopts meanwhile. Two regions have no quorum, and
   * on per-node disks one node of the other region may be the only one holding a newer epoch
   * while its siblings, down when it was dealt, answer with an older one: the original primary
   * restarted, heard such a sibling and unfenced in epoch 0 while the only disk holding the
   * operator's epoch 1 was down (`two-region-stale-sibling.yaml`, found by a code review, December
   * 7, 2026); a wiped primary disk bootstrapped from the stale sibling alone, and a wiped disk of
   * the other region adopted a stale record naming its own region, likewise.
   */
  readonly awaitingPeers?: true
}

/** Settings of one node's Primacy. */
export interface Settings {
  /** The view before Failover settles one: epoch 0 and the configured primary. */
  readonly initial: View
  /** How long a round of agreement lets a primary take writes; also how long a grant binds. */
  readonly leaseMs: number
  /**
   * With two regions, how long a round of the node's own lets it take writes, and how long a
   * takeover waits at most (`pairRenewal`): more than two heartbeat intervals, as a round ends
   * at most an interval after it starts and rounds start every interval.
   */
  readonly pairLeaseMs: number
  /** The regions a restarted node, or one on a new or wiped disk, may have granted leases to before. */
  readonly regions: ReadonlyArray<Topology.RegionId>
  /**
   * The node starts on a new or wiped disk whose bootstrap has not completed (`State.recovering`):
   * the lowest epoch it vouches for until `settle` (`recoveringFloor`).
   */
  readonly recovering?: { readonly vouchesFromEpoch: number }
}

/**
 * How far above this node's wall clock at start (in epochs, which are milliseconds there) a
 * recovering node still doubts an epoch (`recoveringFloor`). Epochs minted by a disk that had not
 * paged its peers count from the wall clock in milliseconds (`Failover`'s `flooredEpoch`), and
 * any later promotion counts up from one by the number of regions at most: an epoch this disk
 * could have held before it was wiped was dealt before this start, on a clock at most twice
 * `Clock.maxOffsetMs` ahead of this one, plus what promotions added since; this margin allows
 * for those (hundreds of promotions in a second). An epoch at or above the floor was minted
 * after this start, so no view this node held before can be newer than it; one minted in the
 * first moments after the start is doubted as well (Failover advances again).
 *
 * Until December 7, 2026 the floor lay a minute *below* the wall clock at start, in seconds: a
 * region wiped a few seconds after an epoch was minted from the wall clock vouched for that
 * epoch though its old disk had moved on to a newer one, and the region that held the older
 * epoch took writes in it after the newer one's (`three-region-wiped-vouch-stale.yaml`).
 */
export const recoveringMarginMs = 1_000

/** The lowest epoch a node recovering since `physicalMs` (its wall clock at start) vouches for. */
export const recoveringFloor = (physicalMs: number, maxOffsetMs: number): number => Math.ceil(physicalMs + 2 * maxOffsetMs + recoveringMarginMs)

/** Whether a node in `state` vouches for its own view: not while recovering, for a view below the floor. */
export const vouches = (state: State): boolean => state.recovering === undefined || state.epoch >= state.recovering.vouchesFromEpoch

/** What a heartbeat answer carries. */
export type Answer = Pick<Message.HeartbeatAck, "epoch" | "primary" | "grantAgesMs" | "grantLeasesMs" | "recovering">

/** A lease renewal computed from one heartbeat round (see `tally`). */
export interface Renewal {
  /** The view the round's answers agreed with; ignored if the node has moved on since. */
  readonly view: View
  readonly renewedAtMs: number
  readonly writableFromMs: number
  /** Two regions: the round heard every node of the other region since the lease ran out (`lapsedAtMs` is over). */
  readonly endsLapse?: boolean
}

/** The Primacy service of one node. */
export class Primacy extends Context.Tag("inferadb/Primacy")<
  Primacy,
  {
    readonly leaseMs: number
    readonly pairLeaseMs: number
    readonly state: Effect.Effect<State>
    /** Takes a view (Failover); a changed view starts without a lease. */
    readonly adopt: (view: View) => Effect.Effect<void>
    /**
     * Opened at each change of view, so the heartbeater can seek a lease at once; the heartbeater
     * closes it when a round starts.
     */
    readonly viewChanged: Handoff.Gate
    /** Answers a heartbeat from a node of `asker`; records a grant when `asker` is primary in the view. */
    readonly answer: (asker: Topology.RegionId, askerLeaseMs?: number) => Effect.Effect<Answer>
    /** Renews a two-region lease (`pairRenewal`), if the view is still the one the round started with. */
    readonly renewPair: (renewal: Renewal) => Effect.Effect<void>
    /** Two regions: a round starts at `atMs`; if the lease has run out by then, it has lapsed (`lapseIn`). */
    readonly noteLapse: (atMs: number) => Effect.Effect<void>
    /** The operator promoted this node's region on this node: their word ends `State.awaitingPeers`. */
    readonly operatorPromoted: Effect.Effect<void>
    /**
     * Ends `State.recovering`: the bootstrap has paged every region and Failover has adopted the
     * newest epoch record it brought, so this node's view counts whatever its epoch.
     */
    readonly settle: Effect.Effect<void>
    /**
     * Steps done at once, outside an Effect: the heartbeater folds each answer into the lease in
     * the callback that takes it in (`Heartbeater`), and a heartbeat is answered at once
     * (`Network.AnswerAtOnce`).
     */
    readonly now: {
      /** `state`, read at once. */
      readonly state: () => State
      /** `answer`, at once. */
      readonly answer: (asker: Topology.RegionId, askerLeaseMs?: number) => Answer
      /** Renews the lease, if the view is still the one the round agreed with. */
      readonly renew: (renewal: Renewal) => void
      /** Every node of every other region has answered this node, not recovering: ends `State.awaitingPeers`. */
      readonly peersHeard: () => void
      /** Remembers a view a peer answered with, if its epoch is higher than this node's. */
      readonly observe: (view: View) => void
      /**
       * Remembers what the latest answers say: the grants peers reported (`Tally.grantsReportedAtMs`),
       * whether a sibling serves (`Tally.regionServesIn`, which replaces `State.regionServesIn`), and
       * whether only recovering nodes hold the lease back (`Tally.heldByRecovering`, counted from
       * `atMs` and only for the view this node still holds: `State.heldByRecoveringSinceMs`).
       */
      readonly report: (tally: Pick<Tally, "grantsReportedUntilMs" | "regionServesIn" | "heldByRecovering">, atMs: number) => void
    }
  }
>() {}

// ---------------------------------------------------------------------------------------
// Pure rules

const sameView = (a: View, b: View): boolean => a.epoch === b.epoch && a.primary === b.primary

/** A node's state when it starts; `restartedAtMs` when it ran before (counted as a grant to every region). */
export const initialState = (view: View, regions: ReadonlyArray<Topology.RegionId>, restartedAtMs: number | undefined): State => ({
  ...view,
  leaseRenewedAtMs: undefined,
  writableFromMs: undefined,
  grantedAtMs: restartedAtMs === undefined ? {} : Object.fromEntries(regions.map((region) => [region, restartedAtMs])),
  grantedUntilMs: {},
  grantsReportedUntilMs: {},
  ...(restartedAtMs === undefined ? {} : { takenOverAtMs: restartedAtMs })
})

/**
 * `state` after adopting `view` at `nowMs`: unchanged if it is the same view, else without a
 * lease; a view that names a new primary is a takeover by that region (see `pairRenewal`).
 */
export const adoptIn = (state: State, view: View, nowMs: number): State => {
  if (sameView(state, view)) return state
  const { newerEpochSeen, lapsedAtMs: _lapsed, heldByRecoveringSinceMs: _held, awaitingVouch: _awaiting, ...rest } = state
  const stillNewer = newerEpochSeen !== undefined && newerEpochSeen.epoch > view.epoch
  const takenOverAtMs = view.primary !== undefined && view.primary !== state.primary ? nowMs : state.takenOverAtMs
  return {
    ...rest,
    ...view,
    leaseRenewedAtMs: undefined,
    writableFromMs: undefined,
    ...(stillNewer ? { newerEpochSeen } : {}),
    ...(takenOverAtMs === undefined ? {} : { takenOverAtMs })
  }
}

/**
 * The answer to a heartbeat from a node of `asker` at `nowMs`, and the state with the grant
 * recorded, with the lease the asker said it runs on (`askerLeaseMs`, absent from older nodes).
 */
export const answerFor = (state: State, asker: Topology.RegionId, nowMs: number, askerLeaseMs?: number): { readonly state: State; readonly answer: Answer } => {
  const next = state.primary !== undefined && state.primary === asker ? granted(state, asker, nowMs, askerLeaseMs) : state
  const grantAgesMs: Record<string, number> = {}
  for (const [region, atMs] of Object.entries(next.grantedAtMs)) grantAgesMs[region] = Math.max(0, Math.floor(nowMs - atMs))
  // Reported as a length from the latest grant, so that its time plus the length is that end.
  const leases = Object.entries(next.grantedUntilMs).flatMap(([region, untilMs]) => {
    const atMs = next.grantedAtMs[region]
    return atMs === undefined ? [] : [[region, Math.max(0, Math.ceil(untilMs - atMs))] as const]
  })
  return {
    state: next,
    answer: {
      epoch: state.epoch,
      ...(state.primary === undefined ? {} : { primary: state.primary }),
      grantAgesMs,
      ...(leases.length === 0 ? {} : { grantLeasesMs: Object.fromEntries(leases) }),
      ...(vouches(state) ? {} : { recovering: true })
    }
  }
}

/** `state` with a grant to `asker` at `nowMs`, on the lease it said it runs on (or none said). */
const granted = (state: State, asker: Topology.RegionId, nowMs: number, askerLeaseMs: number | undefined): State => ({
  ...state,
  grantedAtMs: { ...state.grantedAtMs, [asker]: nowMs },
  ...(askerLeaseMs === undefined ? {} : { grantedUntilMs: { ...state.grantedUntilMs, [asker]: Math.max(state.grantedUntilMs[asker] ?? -Infinity, nowMs + askerLeaseMs) } })
})

/**
 * How long a grant to `grantee` that `answer` reports may bind: the lease the grantee said it runs
 * on, or `leaseMs` (the asking node's own) when that is longer or the grantee said none. Nodes in
 * the middle of a rolling update that changes the heartbeat timeout run leases of different
 * lengths; waiting out only its own let a region that took over write while an old primary with
 * a longer lease, paused across the promotion, still held one (`three-region-mixed-lease.yaml`).
 */
const bindingLeaseMs = (answer: Answer, grantee: Topology.RegionId, leaseMs: number): number => Math.max(leaseMs, answer.grantLeasesMs?.[grantee] ?? 0)

/** One heartbeat round as the asking node saw it. */
export interface Round {
  readonly topology: Topology.Topology
  readonly regionId: Topology.RegionId
  /** The asking node's state when the answers are in (its view then is the one agreed with). */
  readonly state: State
  readonly acks: ReadonlyArray<Message.HeartbeatAck>
  readonly startedAtMs: number
  readonly endedAtMs: number
  readonly leaseMs: number
  /**
   * Nodes that sent the asking node a heartbeat request within the last lease
   * (`TopologyManager.requestersSince`): a region's nodes are those its topology holds and
   * these; absent means none.
   */
  readonly requesters?: ReadonlyArray<Requester>
}

/** A node that asked this node for a heartbeat lately (`TopologyManager.requestersSince`). */
export interface Requester {
  readonly regionId: Topology.RegionId
  readonly nodeId: Topology.NodeId
  /** The lease its request said it runs on (`Message.Heartbeat.leaseMs`), if it said one. */
  readonly leaseMs?: number
}

/**
 * The nodes of `region` as a round counts them: those the topology holds, and those that asked
 * for a heartbeat within a lease though the topology lacks them (a replaced pod back before
 * this node's next discovery round). One that asked may hold a lease, and this node does not ask
 * it, so it never agrees: its region carries less weight and has not moved on.
 */
const nodesOfRegion = (region: Topology.Region, requesters: ReadonlyArray<Requester> | undefined): ReadonlyArray<Topology.NodeId> => {
  const known = Topology.regionNodes(region).map((node) => node.id)
  const strangers = (requesters ?? []).filter((requester) => requester.regionId === region.id && !known.includes(requester.nodeId)).map((requester) => requester.nodeId)
  return strangers.length === 0 ? known : [...known, ...new Set(strangers)]
}

/** What one heartbeat round means for the asking node. */
export interface Tally {
  /** A renewal, when the node is primary in its view and a weighted majority of nodes agreed. */
  readonly renewal: Renewal | undefined
  /** The highest epoch above the node's own that any answer carried. */
  readonly newer: View | undefined
  /** Per region, until when a lease any answer says was granted to it may be held, on this node's clock. */
  readonly grantsReportedUntilMs: Readonly<Record<Topology.RegionId, number>>
  /** The highest epoch in which a node of the asking node's region answered naming that region primary (`State.regionServesIn`). */
  readonly regionServesIn: number | undefined
  /**
   * The node's view, when it is primary in it and vouches for it, the answers make no majority
   * for it, yet they would if the nodes that agree but are recovering (`HeartbeatAck.recovering`) counted.
   * Such nodes are on new or wiped disks that have not paged every region: while a region they
   * must page is down they never vouch for an epoch below their floor, and a primary in such an
   * epoch never gets a lease again until that region is back (swarm seed 61400011 over
   * primary-failover.yaml: a new cluster's primary crashed before one region's disk had paged it,
   * and the other two regions took no write for 18 s, operator promotion or not).
   */
  readonly heldByRecovering: View | undefined
}

/** Folds one round's answers: a renewal, a newer epoch, and the grants peers reported. */
export const tally = (round: Round): Tally => {
  const renewed = renewal(round)
  return {
    renewal: renewed,
    // Two regions renew by `pairRenewal`, which counts no vote of the other region's recovering nodes either way.
    heldByRecovering:
      renewed === undefined && round.topology.regions.length >= 3 && vouches(round.state) && renewal(round, true) !== undefined
        ? { epoch: round.state.epoch, primary: round.state.primary }
        : undefined,
    ...tallyReports(round)
  }
}

/** What a round's answers report besides a renewal (`tally`). */
const tallyReports = (round: Round): Pick<Tally, "newer" | "grantsReportedUntilMs" | "regionServesIn"> => ({
  newer: round.acks.reduce<View | undefined>(
    (best, ack) => (ack.epoch > (best?.epoch ?? round.state.epoch) ? { epoch: ack.epoch, primary: ack.primary } : best),
    undefined
  ),
  // An answer left the peer before the round ended, so the end less the age is no earlier than the grant.
  grantsReportedUntilMs: round.acks.reduce<Record<Topology.RegionId, number>>((latest, ack) => {
    for (const [grantee, ageMs] of Object.entries(ack.grantAgesMs)) {
      latest[grantee] = Math.max(latest[grantee] ?? -Infinity, round.endedAtMs - ageMs + bindingLeaseMs(ack, grantee, round.leaseMs))
    }
    return latest
  }, {}),
  // A recovering sibling's view may be the configured one it started with, not evidence that its region serves.
  regionServesIn: round.acks.reduce<number | undefined>(
    (best, ack) => (ack.region === round.regionId && ack.primary === round.regionId && ack.recovering !== true ? Math.max(best ?? ack.epoch, ack.epoch) : best),
    undefined
  )
})

/**
 * A renewal when the node is primary in its view and a weighted majority of nodes agreed; it
 * may take writes once every lease an agreeing node granted to a region that has not moved on
 * (not all of its nodes agreed) can have run out. With `countRecovering`, the answers of nodes
 * that agree but do not vouch yet count as well: only to tell what holds a lease back (`tally`).
 */
export const renewal = (round: Round, countRecovering = false): Renewal | undefined => {
  const view: View = { epoch: round.state.epoch, primary: round.state.primary }
  if (view.primary !== round.regionId) return undefined
  // A node on a disk still recovering vouches for no view below its floor, its own included (`State.recovering`).
  const agreeing = new Map<Topology.RegionId, Array<Answer>>(vouches(round.state) ? [[round.regionId, [answerFor(round.state, round.regionId, round.endedAtMs).answer]]] : [])
  const counted = new Set<Topology.NodeId>()
  for (const ack of round.acks) {
    if (ack.epoch !== view.epoch || ack.primary !== view.primary || (ack.recovering === true && !countRecovering) || counted.has(ack.node)) continue
    counted.add(ack.node)
    agreeing.set(ack.region, [...(agreeing.get(ack.region) ?? []), ack])
  }
  const agreeingNodes = (region: Topology.Region) => agreeing.get(region.id)?.length ?? 0
  // Answers come from the nodes this node asked, those of its topology: a node that asked for a
  // heartbeat though the topology lacks it (`nodesOfRegion`) weighs in its region but never agrees.
  const sizes = new Map(round.topology.regions.map((region) => [region.id, Math.max(1, nodesOfRegion(region, round.requesters).length)]))
  const nodesIn = (region: Topology.Region) => sizes.get(region.id)!
  if (!weightedMajority(round.topology.regions.map((region) => [agreeingNodes(region), nodesIn(region)]))) return undefined
  const movedOn = new Set(round.topology.regions.filter((region) => agreeingNodes(region) >= nodesIn(region)).map((region) => region.id))
  let writableFromMs = round.endedAtMs
  for (const answer of [...agreeing.values()].flat()) {
    for (const [grantee, ageMs] of Object.entries(answer.grantAgesMs)) {
      if (grantee !== round.regionId && !movedOn.has(grantee)) writableFromMs = Math.max(writableFromMs, round.endedAtMs + bindingLeaseMs(answer, grantee, round.leaseMs) - ageMs)
    }
  }
  return { view, renewedAtMs: round.startedAtMs, writableFromMs }
}

/**
 * Whether nodes that agree, `[agreeing, nodes]` per region, hold more than half of the regions'
 * weight when each node weighs 1/nodes of its region. Any two such sets share a node (their
 * weights add up to more than the whole), and a node answers views in epoch order, which is
 * what makes leases safe; yet a region with one node of two down still carries half its
 * weight, so one node down in each of two two-node regions no longer stops writes. (Counting a
 * region whole when any one of its nodes answers would let two nodes of one region, cut from
 * each other, each vouch for a different primary.) Exact: integers over a common denominator.
 */
export const weightedMajority = (regions: ReadonlyArray<readonly [agreeing: number, nodes: number]>): boolean => {
  const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b))
  const denominator = regions.reduce((lcm, [, nodes]) => (lcm / gcd(lcm, nodes)) * nodes, 1)
  const weight = regions.reduce((sum, [agreeing, nodes]) => sum + Math.min(agreeing, nodes) * (denominator / nodes), 0)
  return weight * 2 > regions.length * denominator
}

/** `state` after a renewal: a later lease, and the earliest moment any agreeing round allows. */
export const renewIn = (state: State, renewal: Renewal): State => {
  if (!sameView(state, renewal.view)) return state
  // A majority renews only from nodes that vouch (`renewal`): the wait `awaitingVouch` stands for is over.
  const { awaitingVouch: _vouched, ...rest } = state
  return {
    ...rest,
    leaseRenewedAtMs: Math.max(state.leaseRenewedAtMs ?? renewal.renewedAtMs, renewal.renewedAtMs),
    writableFromMs: Math.min(state.writableFromMs ?? renewal.writableFromMs, renewal.writableFromMs)
  }
}

/** The last heartbeat round of a node of a two-region deployment (see `pairRenewal`). */
export interface PairRound {
  readonly topology: Topology.Topology
  readonly regionId: Topology.RegionId
  /** The node's state when the round ended; its view must be the one the round started with. */
  readonly state: State
  /** The latest answer of every peer heard since the node started, or since its lease lapsed (`State.lapsedAtMs`). */
  readonly latest: ReadonlyArray<Message.HeartbeatAck>
  readonly startedAtMs: number
  readonly endedAtMs: number
  readonly leaseMs: number
  /**
   * Nodes that sent this node a heartbeat request within the last lease
   * (`TopologyManager.requestersSince`), which a takeover waits for too when its topology lacks
   * them; absent means none.
   */
  readonly requesters?: ReadonlyArray<Requester>
}

/**
 * The lease of a primary of a two-region deployment, where no quorum can vouch for it (either
 * region alone stays writable). Two rules, which together keep a node that was paused, or that
 * has not heard of a hand-back yet, from taking writes after the region it handed to took some:
 *
 * - A round that ended without a newer epoch renews the lease from its start, answers or not.
 *   Rounds start every interval whatever the peers do, so only a node that stopped running them
 *   (paused, or starved) lets it lapse. A node whose lease lapsed waits as after a takeover
 *   (below), from the round that found it lapsed: its first rounds after a stop may hear nobody
 *   (their requests were sent before it, or fail at once on connections that died with it), and
 *   renewing from such a round let a node paused across a hand-back take the writes of its
 *   backlog in its old epoch, after the region it was handed to took some (chaos e2e on real
 *   processes, about one run in three; `sim swarm --scenario
 *   scenarios/two-region-handback-pause.yaml` once the simulator took a backlog in over time).
 * - A node that took the role over from the other region (a hand-back, a promotion) or started on
 *   a disk that ran before takes writes only once every node of the other region has answered
 *   with its epoch or a newer one, or once a lease has passed since the takeover. A node of the
 *   other region that has not heard of the takeover renewed its lease from a round that started
 *   before it (or it would have heard), so that lease has run out by then. Swarm seed 25001788:
 *   a node paused across a hand-back took two writes in the old epoch when it resumed, after
 *   the region it was handed to had taken writes in the new one.
 *
 * Left open, as two regions have no quorum: a node that hears nobody for a whole lease (cut off
 * from every peer) keeps renewing and keeps its epoch, and one whose lease lapsed takes writes
 * again after a lease though it heard nobody.
 */
export const pairRenewal = (round: PairRound): Renewal | undefined => {
  const view: View = { epoch: round.state.epoch, primary: round.state.primary }
  if (view.primary !== round.regionId || round.state.newerEpochSeen !== undefined) return undefined
  if (round.state.awaitingPeers === true) return undefined
  if (round.state.awaitingVouch === true && !round.latest.some((ack) => ack.region !== round.regionId && ack.recovering !== true && ack.epoch === view.epoch && ack.primary === view.primary)) return undefined
  // The other region's nodes this node knows of, and those that asked it for a heartbeat within
  // a lease though its topology lacks them (a replaced pod back before this node's next
  // discovery round): one that asked may hold a lease in the old epoch, and this node does not
  // ask it, so only a lease's wait covers it (swarm seed 93100038 over
  // two-region-handback-pause.yaml with discovery).
  const movedOn = (region: Topology.Region) => nodesOfRegion(region, round.requesters).every((nodeId) => round.latest.some((ack) => ack.node === nodeId && ack.epoch >= view.epoch))
  const { takenOverAtMs, lapsedAtMs } = round.state
  const waitFromMs = Math.max(takenOverAtMs ?? -Infinity, lapsedAtMs ?? -Infinity)
  const waiting = Number.isFinite(waitFromMs) && round.topology.regions.some((region) => region.id !== round.regionId && !movedOn(region))
  // The other region's nodes may run longer leases than this node's (a rolling update that
  // changes the heartbeat settings): wait out the longest any of them said it runs on.
  const othersLeasesMs = [
    ...round.latest.filter((ack) => ack.region !== round.regionId).map((ack) => ack.leaseMs ?? 0),
    ...(round.requesters ?? []).filter((requester) => requester.regionId !== round.regionId).map((requester) => requester.leaseMs ?? 0)
  ]
  const writableFromMs = waiting ? Math.max(round.endedAtMs, waitFromMs + Math.max(round.leaseMs, ...othersLeasesMs)) : round.endedAtMs
  return { view, renewedAtMs: round.startedAtMs, writableFromMs, ...(lapsedAtMs !== undefined && !waiting ? { endsLapse: true } : {}) }
}

/**
 * `state` when a heartbeat round starts at `atMs`: lapsed (`lapsedAtMs`) if it held a lease in
 * its view that has run out by then; a lapse stands until a round ends it (`renewPairIn`).
 */
export const lapseIn = (state: State, atMs: number, leaseMs: number): State =>
  state.lapsedAtMs === undefined && state.leaseRenewedAtMs !== undefined && atMs - state.leaseRenewedAtMs > heldMs(leaseMs) ? { ...state, lapsedAtMs: atMs } : state

/**
 * `state` after a two-region renewal: unlike a quorum's, the latest round's takeover wait
 * stands, as a round knows only what answered it (a later round may find the other region gone
 * from its answers again, say after one of its nodes restarted with an older view).
 */
export const renewPairIn = (state: State, renewal: Renewal): State => {
  if (!sameView(state, renewal.view)) return state
  const { lapsedAtMs, awaitingVouch: _vouched, ...rest } = state
  return {
    ...rest,
    leaseRenewedAtMs: Math.max(state.leaseRenewedAtMs ?? renewal.renewedAtMs, renewal.renewedAtMs),
    writableFromMs: renewal.writableFromMs,
    ...(lapsedAtMs === undefined || renewal.endsLapse === true ? {} : { lapsedAtMs })
  }
}

/** `state` after peers reported grants: the latest end per region stands. */
export const reportGrantsIn = (state: State, reported: Readonly<Record<Topology.RegionId, number>>): State => {
  const merged: Record<Topology.RegionId, number> = { ...state.grantsReportedUntilMs }
  for (const [grantee, untilMs] of Object.entries(reported)) merged[grantee] = Math.max(merged[grantee] ?? -Infinity, untilMs)
  return { ...state, grantsReportedUntilMs: merged }
}

/**
 * Until when a lease this node granted `region`, or a peer reported granting it, may be held:
 * this node's latest grant for `leaseMs` (its own lease), or a grant to a node that said it runs
 * on a longer one for that (`State.grantedUntilMs`).
 */
export const grantHeldUntilMs = (state: State, region: Topology.RegionId, leaseMs: number): number | undefined => {
  const own = state.grantedAtMs[region]
  const ownUntil = own === undefined ? undefined : Math.max(own + leaseMs, state.grantedUntilMs[region] ?? -Infinity)
  const reported = state.grantsReportedUntilMs[region]
  return ownUntil === undefined ? reported : reported === undefined ? ownUntil : Math.max(ownUntil, reported)
}

/** `state` after a peer answered with `view`. */
export const observeIn = (state: State, view: View): State =>
  view.epoch > Math.max(state.epoch, state.newerEpochSeen?.epoch ?? -1) ? { ...state, newerEpochSeen: view } : state

/**
 * The fastest rate at which two nodes' monotonic clocks may drift apart, each from true time:
 * NTP slews a clock by at most 500 ppm, and a machine's oscillator drifts well under that.
 */
export const driftPpmMax = 500

/**
 * How long a lease of `leaseMs` lets its holder write, on its own clock: less than `leaseMs` by
 * the drift a holder's slow clock and a grantor's fast one can build up between them, so the
 * holder stops before any node that granted it (or waits it out) counts it over, on clocks that
 * drift within `driftPpmMax`. Until December 8, 2026 the holder wrote for the whole `leaseMs`:
 * with a 30 s lease, the primary 100 ppm slow and the other regions 100 ppm fast, an operator's
 * promotion during a partition took writes 2-6 ms before the old primary stopped (split brain;
 * `scenarios/three-region-lease-drift.yaml` runs 500 ppm each way on a 15 s lease).
 */
export const heldMs = (leaseMs: number): number => Math.floor((leaseMs * (1_000_000 - driftPpmMax)) / (1_000_000 + driftPpmMax))

/** The lease a deployment of `regionCount` regions runs on: `pairLeaseMs` with two, else `leaseMs`. */
export const leaseFor = (primacy: Pick<Primacy["Type"], "leaseMs" | "pairLeaseMs">, regionCount: number): number =>
  regionCount === 2 ? primacy.pairLeaseMs : primacy.leaseMs

/**
 * Whether a PrimaryReplica write may be taken now: refused once a newer epoch has been seen
 * and, with two or more regions, while the lease has lapsed or a takeover is still waiting
 * (with two, the lease of `pairRenewal`).
 */
export const checkWrite = (state: State, nowMs: number, leaseMs: number, regionCount: number): WriteRejected | undefined => {
  const seen = state.newerEpochSeen
  if (seen !== undefined && seen.epoch > state.epoch) {
    return new WriteRejected({
      reason: "NotPrimary",
      message: `epoch ${seen.epoch} (primary '${seen.primary ?? "none"}') has begun elsewhere; this node's epoch ${state.epoch} is over`
    })
  }
  if (regionCount < 2) return undefined
  if (regionCount === 2 && state.awaitingPeers === true) {
    return new WriteRejected({
      reason: "NotPrimary",
      message: `this node has not heard every node of the other region since it started: one that is down may hold an epoch newer than ${state.epoch} (two regions have no quorum); promote this region to write without it`
    })
  }
  if (regionCount === 2 && (state.leaseRenewedAtMs === undefined || nowMs - state.leaseRenewedAtMs > heldMs(leaseMs))) {
    const ran = state.leaseRenewedAtMs === undefined ? "has not ended yet" : `started ${Math.round(nowMs - state.leaseRenewedAtMs)} ms ago`
    return new WriteRejected({
      reason: "NotPrimary",
      message: `write lease lapsed: this node's last heartbeat round ${ran} (lease ${leaseMs} ms); it may have been paused while the other region took over`
    })
  }
  if (regionCount >= 3 && (state.leaseRenewedAtMs === undefined || nowMs - state.leaseRenewedAtMs > heldMs(leaseMs))) {
    const heard = state.leaseRenewedAtMs === undefined ? "never" : `${Math.round(nowMs - state.leaseRenewedAtMs)} ms ago`
    // Say why when it is this node's own disk that keeps its vote out (`State.recovering`).
    const recovering = vouches(state) ? "" : "; this node's disk is new or wiped and has not paged every region yet, so it counts no vote for this epoch, its own included"
    return new WriteRejected({
      reason: "NotPrimary",
      message: `write lease lapsed: more than half of the regions last agreed that '${state.primary ?? "none"}' is primary of epoch ${state.epoch} ${heard} (lease ${leaseMs} ms); another region may have been promoted${recovering}`
    })
  }
  if (state.writableFromMs === undefined || nowMs < state.writableFromMs) {
    return new WriteRejected({
      reason: "NotPrimary",
      message:
        regionCount === 2 && state.lapsedAtMs !== undefined
          ? `write lease ran out (this node was stopped or stalled): waiting ${Math.ceil((state.writableFromMs ?? nowMs) - nowMs)} ms more for the other region's nodes to answer with epoch ${state.epoch}, in case they took over meanwhile`
          : regionCount === 2
          ? `taking over epoch ${state.epoch}: waiting ${Math.ceil((state.writableFromMs ?? nowMs) - nowMs)} ms more for the other region's nodes to answer with this epoch or for their leases to run out`
          : `taking over epoch ${state.epoch}: waiting until ${Math.ceil((state.writableFromMs ?? nowMs) - nowMs)} ms from now for leases granted to an older primary to run out`
    })
  }
  return undefined
}

// ---------------------------------------------------------------------------------------
// The service

/** `state` without `awaitingPeers`. */
const withoutAwaitingPeers = (state: State): State => {
  if (state.awaitingPeers === undefined) return state
  const { awaitingPeers: _heard, ...rest } = state
  return rest
}

/** `report`'s step (see the service). */
const reportIn = (current: State, tally: Pick<Tally, "grantsReportedUntilMs" | "regionServesIn" | "heldByRecovering">, atMs: number): State => {
  const { grantsReportedUntilMs, regionServesIn, heldByRecovering } = tally
  const { regionServesIn: _previous, heldByRecoveringSinceMs, ...reported } = reportGrantsIn(current, grantsReportedUntilMs)
  // A view adopted since the answers were tallied starts without a hold.
  const held = heldByRecovering !== undefined && sameView(current, heldByRecovering) ? { heldByRecoveringSinceMs: heldByRecoveringSinceMs ?? atMs } : {}
  return regionServesIn === undefined ? { ...reported, ...held } : { ...reported, ...held, regionServesIn }
}

/** Builds one node's Primacy; a non-empty store means the node ran before. */
export const make = (settings: Settings): Effect.Effect<Primacy["Type"], never, Store.Store> =>
  Effect.gen(function* () {
    const store = yield* Store.Store
    // Every heartbeat this node answers reads the clock: read from the fiber's clock taken here,
    // without an Effect operation each time (`Clock.monotonicReader`).
    const now = yield* Clock.monotonicReader
    const nowMs = now()
    // A store that cannot be read is treated as one that was written before: the safe side.
    const ranBefore = (yield* Effect.orElseSucceed(store.logEnd, () => 1)) > 0
    // A new or wiped disk remembers as little of its grants as a restarted one: less. Counting
    // no grant, a wiped node vouched for a promotion at once while the old primary, cut off,
    // still held the lease its old disk had granted (`three-region-wipe-promote-isolated.yaml`).
    const started = initialState(settings.initial, settings.regions, ranBefore || settings.recovering !== undefined ? nowMs : undefined)
    // A plain cell rather than a Ref: every step is synchronous either way, and `now` steps it outside an Effect.
    let state: State = settings.recovering === undefined ? { ...started, awaitingPeers: true } : { ...started, recovering: settings.recovering, awaitingVouch: true, awaitingPeers: true }
    const step = (next: (current: State) => State): void => {
      state = next(state)
    }
    const viewChanged = new Handoff.Gate()
    const synchronous: Primacy["Type"]["now"] = {
      state: () => state,
      answer: (asker, askerLeaseMs) => {
        const answered = answerFor(state, asker, now(), askerLeaseMs)
        state = answered.state
        return answered.answer
      },
      renew: (renewal) => step((current) => renewIn(current, renewal)),
      peersHeard: () => step(withoutAwaitingPeers),
      observe: (view) => step((current) => observeIn(current, view)),
      report: (tally, atMs) => step((current) => reportIn(current, tally, atMs))
    }
    return {
      leaseMs: settings.leaseMs,
      pairLeaseMs: settings.pairLeaseMs,
      state: Effect.sync(() => state),
      adopt: (view) =>
        Effect.flatMap(Clock.monotonicMs, (atMs) =>
          Effect.suspend(() => {
            const next = adoptIn(state, view, atMs)
            const changed = next !== state
            state = next
            return changed ? viewChanged.open : Effect.void
          })
        ),
      viewChanged,
      answer: (asker, askerLeaseMs) => Effect.sync(() => synchronous.answer(asker, askerLeaseMs)),
      renewPair: (renewal) => Effect.sync(() => step((current) => renewPairIn(current, renewal))),
      operatorPromoted: Effect.sync(() => step(withoutAwaitingPeers)),
      noteLapse: (atMs) => Effect.sync(() => step((current) => lapseIn(current, atMs, settings.pairLeaseMs))),
      // The next heartbeat round counts this node's vote (at most an interval away). Starting one at
      // once moved every node's rounds at start-up, and with them when a peer's silence was seen.
      settle: Effect.sync(() =>
        step((current) => {
          if (current.recovering === undefined) return current
          const { recovering: _recovering, ...settled } = current
          return settled
        })
      ),
      now: synchronous
    } satisfies Primacy["Type"]
  })
