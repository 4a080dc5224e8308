/**
 * The checkers: they run after a simulation, outside the code they check, over the regions'
 * disks (every tuple's frontier and every log entry, not one visible value) and the history
 * the simulator recorded. The rule they hold the regions to is `Oracle.ts`, the README's rules
 * written again, never the resolver under test. Each returns violations as plain data
 * `{ checker, message, details }`.
 *
 * - safety: after convergence, every region's whole tuple state equals the rule applied to the
 *   union of all regions' logs, as far as residency lets the region hold it, and the answer
 *   each region serves equals the rule's; before convergence, every region serves the rule's
 *   answer for the changes it stores.
 * - convergence: every region that may hold a tuple serves the same answer for it (present or
 *   absent, by the rule over the changes each region stores).
 * - acknowledged: every acknowledged change is in that union, itself and not another change
 *   under its id; each acknowledged change that is not its tuple's final winner is labelled by
 *   cause (see `classifyLosses`).
 * - drained (`DrainCheck.ts`): a graceful stop's completed drain left every write the node
 *   acknowledged on its siblings' disks and in the regions its region ships to, judged from the
 *   disks the moment the drain said so.
 * - residency: no region ever logged (so never stored) a change of a vault it may not hold, and
 *   under MultiMaster no change of a vault was written outside its home region (`homeRegions`).
 * - unique_ids: no two different changes share an id.
 * - store_integrity: each disk is one whole history: its log holds exactly the positions 1 to
 *   the end its counter records, and every change in a tuple's frontier is in its log (a tuple
 *   state, its log entries and the counters change in one transaction, so nothing else can be
 *   left behind, not by a crash and not by a commit that failed), and every stored value reads
 *   as the documented layout (a number in an origin field with the `k/` key that spells it out).
 * - timestamps: no change's timestamp runs further ahead of real time than the clocks allow.
 * - progress: a workload that offered writes had some acknowledged, and enough of those
 *   attempted outside fault windows.
 * - epochs (PrimaryReplica): at most one region served as primary and took writes per epoch,
 *   and no region took a write in an epoch after a newer epoch had begun elsewhere, unless that
 *   epoch was forgotten meanwhile: every disk that recorded it was wiped while no running node
 *   held it (then its number may also be used again); and no hand-back came sooner than
 *   `promote_back_after_ms` after an outage of the original region its peers must have seen
 *   (`handBack`).
 * - failover: the document's story happened: a promotion, writes on the new primary, and the
 *   original primary back in charge at the end.
 * Liveness (convergence within the budget) is decided by the run loop, which owns time.
 */
import type * as Change from "../replication/Change.js"
import type * as Failover from "../replication/Failover.js"
import type * as Topology from "../replication/Topology.js"
import * as Tuple from "../replication/Tuple.js"
import * as FaultWindows from "./FaultWindows.js"
import type { History, WriteRecord } from "./History.js"
import * as Oracle from "./Oracle.js"
import type { RegionState } from "./RegionState.js"

/** One broken property. */
export interface Violation {
  readonly checker: string
  readonly message: string
  readonly details: Readonly<Record<string, unknown>>
}

/**
 * What a region answers for a tuple (present or not) given the changes it stores: the
 * observation being judged, supplied by the run from the nodes it built.
 */
export type Served = (regionId: string, frontier: ReadonlyArray<Change.Change>) => boolean

/** Examples kept per violation, so a report stays readable. */
const examplesMax = 5

const ids = (changes: ReadonlyArray<Change.Change>): string => changes.map(Oracle.idOf).join(",")

const readable = (key: string): string => key.replaceAll("\u0000", " ")

/** The union history: every change in any region's log. */
export const unionHistory = (regions: ReadonlyArray<RegionState>): ReadonlyArray<Change.Change> =>
  regions.flatMap((region) => region.log.map((entry) => entry.change))

/**
 * The disks of the regions in the deployment at the end, and the changes only the disks of the
 * regions in `removed` hold. A region removed for good (a decommission) is out of the
 * deployment: its own nodes run on with their view, its peers refuse what it ships, so the run
 * is judged over the regions left, and what it had not shipped is gone with it (not a broken
 * guarantee, as a wiped disk's changes are not). Residency, ids and store integrity still hold
 * on every disk.
 */
export const deployed = (
  disks: ReadonlyArray<RegionState>,
  removed: ReadonlySet<string>
): { readonly regions: ReadonlyArray<RegionState>; readonly lostWithRegion: ReadonlySet<string> } => {
  if (removed.size === 0) return { regions: disks, lostWithRegion: new Set() }
  const regions = disks.filter((disk) => !removed.has(disk.regionId))
  const kept = new Set(unionHistory(regions).map(Oracle.idOf))
  const lostWithRegion = new Set<string>()
  for (const disk of disks) {
    if (!removed.has(disk.regionId)) continue
    for (const entry of disk.log) if (!kept.has(Oracle.idOf(entry.change))) lostWithRegion.add(Oracle.idOf(entry.change))
  }
  return { regions, lostWithRegion }
}

/** The rule applied to the union history, or a violation when the history is not causal. */
export const reference = (
  regions: ReadonlyArray<RegionState>,
  rules: Oracle.Rules
): { readonly verdicts: ReadonlyMap<string, Oracle.Verdict> } | { readonly violation: Violation } => {
  try {
    return { verdicts: Oracle.evaluate(unionHistory(regions), rules) }
  } catch (error) {
    return { violation: { checker: "safety", message: String(error), details: {} } }
  }
}

/** Counts problems and keeps the first few as examples. */
const collector = () => {
  const examples: Array<Record<string, unknown>> = []
  let count = 0
  return {
    note: (example: Record<string, unknown>) => {
      count++
      if (examples.length < examplesMax) examples.push(example)
    },
    get count() {
      return count
    },
    examples
  }
}

/** A region's name, and the node whose disk it is where each node has its own. */
const diskName = (region: RegionState): string => (region.replica === region.regionId ? region.regionId : `${region.regionId} (${region.replica})`)

/** Safety after convergence: every region holds exactly the rule's frontier and serves the rule's answer for every tuple it may hold. */
export const safety = (regions: ReadonlyArray<RegionState>, verdicts: ReadonlyMap<string, Oracle.Verdict>, topology: Topology.Topology, served: Served): ReadonlyArray<Violation> =>
  regions.flatMap((region) => {
    const found = collector()
    for (const [key, verdict] of verdicts) {
      if (!allowedBy(topology.vaults)(verdict.tuple.vault, region.regionId)) continue
      const held = region.tuples.get(key)
      const expectedFrontier = ids(verdict.maximal)
      const heldFrontier = held === undefined ? "" : ids(held.frontier)
      const expectedPresent = verdict.winner.op === "insert"
      const heldPresent = held !== undefined && served(region.regionId, held.frontier)
      if (heldFrontier !== expectedFrontier || heldPresent !== expectedPresent) {
        found.note({ tuple: readable(key), expectedFrontier, heldFrontier, expectedPresent, heldPresent })
      }
    }
    for (const key of region.tuples.keys()) if (!verdicts.has(key)) found.note({ tuple: readable(key), problem: "held but in no log" })
    if (found.count === 0) return []
    return [{ checker: "safety", message: `${diskName(region)}: ${found.count} tuple(s) differ from the rule applied to the whole history`, details: { region: region.regionId, replica: region.replica, mismatches: found.count, examples: found.examples } }]
  })

/** Safety at any time: every region serves the rule's answer for the changes it stores. */
export const servedAnswers = (regions: ReadonlyArray<RegionState>, rules: Oracle.Rules, served: Served): ReadonlyArray<Violation> =>
  regions.flatMap((region) => {
    const found = collector()
    for (const [key, held] of region.tuples) {
      const expectedPresent = Oracle.present(rules, held.frontier)
      const heldPresent = served(region.regionId, held.frontier)
      if (heldPresent !== expectedPresent) found.note({ tuple: readable(key), frontier: ids(held.frontier), expectedPresent, heldPresent })
    }
    if (found.count === 0) return []
    return [{ checker: "safety", message: `${diskName(region)}: serves ${found.count} tuple(s) against the rule over its own stored changes`, details: { region: region.regionId, replica: region.replica, mismatches: found.count, examples: found.examples } }]
  })

/** Every tuple key any region holds, with the regions that may hold its vault. */
const tupleHolders = function* (regions: ReadonlyArray<RegionState>, topology: Topology.Topology): Generator<readonly [string, ReadonlyArray<RegionState>]> {
  for (const key of new Set(regions.flatMap((region) => [...region.tuples.keys()]))) {
    const vault = key.slice(0, key.indexOf("\u0000"))
    yield [key, regions.filter((region) => allowedBy(topology.vaults)(vault, region.regionId))]
  }
}

/**
 * Convergence: for every tuple key held anywhere, every region that may hold it gives the same
 * answer, present or absent, by the rule over the changes that region stores (compared as
 * answers, not as change ids, so two different changes under one id cannot pass for one).
 * Each disk is judged on its own, named by its replica: keyed by region, a region's second
 * disk overwrote its first, so the chaos harness took a node still bootstrapping after a wipe
 * for converged because its sibling was, and read it too early (graceful-stop-wipe on a busy
 * machine, December 4, 2026).
 */
export const convergence = (regions: ReadonlyArray<RegionState>, topology: Topology.Topology, rules: Oracle.Rules): ReadonlyArray<Violation> => {
  const found = collector()
  for (const [key, holders] of tupleHolders(regions, topology)) {
    const answers = Object.fromEntries(
      holders.map((region) => {
        const held = region.tuples.get(key)
        return [region.replica, held !== undefined && Oracle.present(rules, held.frontier) ? "present" : "absent"]
      })
    )
    if (new Set(Object.values(answers)).size > 1) found.note({ tuple: readable(key), answers })
  }
  if (found.count === 0) return []
  return [{ checker: "convergence", message: `${found.count} tuple(s) get different answers in different regions`, details: { tuples: found.count, examples: found.examples } }]
}

/** Where regions still differ: tuples whose frontiers are not the same in every region that may hold them. */
export const divergence = (regions: ReadonlyArray<RegionState>, topology: Topology.Topology): { readonly tuples: number; readonly examples: ReadonlyArray<Record<string, unknown>> } => {
  const found = collector()
  for (const [key, holders] of tupleHolders(regions, topology)) {
    const frontiers = Object.fromEntries(holders.map((region) => [region.replica, ids(region.tuples.get(key)?.frontier ?? [])]))
    if (new Set(Object.values(frontiers)).size > 1) found.note({ tuple: readable(key), frontiers })
  }
  return { tuples: found.count, examples: found.examples }
}

/** Residency: no region ever logged a change of a vault it may not hold. */
export const residency = (regions: ReadonlyArray<RegionState>, topology: Topology.Topology): ReadonlyArray<Violation> =>
  regions.flatMap((region) => {
    const outside = region.log.filter((entry) => !allowedBy(topology.vaults)(entry.change.tuple.vault, region.regionId))
    if (outside.length === 0) return []
    return [
      {
        checker: "residency",
        message: `${region.regionId} stored ${outside.length} change(s) of vaults it may not hold`,
        details: { region: region.regionId, vaults: [...new Set(outside.map((entry) => entry.change.tuple.vault))], examples: outside.slice(0, examplesMax).map((entry) => Oracle.idOf(entry.change)) }
      }
    ]
  })

/**
 * Home regions (MultiMaster): every change of a placed vault was written by a node of the vault's
 * home region, the README's rule ("each vault has a home region that takes its writes"), read
 * from the scenario's placements rather than from the production router or write check. Judged
 * over every change any disk logged and every acknowledged write's changes (a wiped disk may
 * have taken the only copy). Until December 7, 2026 nothing judged it: a code review's mutant
 * that let every region take any vault's writes passed `multi-master-residency.yaml`.
 */
export const homeRegions = (
  regions: ReadonlyArray<RegionState>,
  acknowledged: ReadonlyArray<WriteRecord>,
  vaults: ReadonlyArray<{ readonly vault: string; readonly homeRegion: string }>
): ReadonlyArray<Violation> => {
  const homeOf = new Map(vaults.map((placement) => [placement.vault, placement.homeRegion]))
  const strayed = new Map<string, Change.Change>()
  const judge = (change: Change.Change) => {
    const home = homeOf.get(change.tuple.vault)
    if (home !== undefined && change.originRegion !== home) strayed.set(Oracle.idOf(change), change)
  }
  for (const region of regions) for (const entry of region.log) judge(entry.change)
  for (const write of acknowledged) if (write.outcome === "acknowledged") write.changes.forEach(judge)
  if (strayed.size === 0) return []
  const examples = [...strayed.values()].slice(0, examplesMax)
  return [
    {
      checker: "residency",
      message: `${strayed.size} change(s) were written outside their vault's home region`,
      details: { examples: examples.map((change) => ({ change: Oracle.idOf(change), vault: change.tuple.vault, writtenIn: change.originRegion, home: homeOf.get(change.tuple.vault) })) }
    }
  ]
}

/** A change put on the wire towards a region, as the network saw it. */
export interface Sent {
  readonly fromNode: string
  readonly toRegion: string
  readonly change: Change.Change
}

/** Whether a vault may live in a region, read from the scenario's placements (not the code under test). */
/**
 * The residency rule as the README states it, written here rather than taken from
 * `Topology.vaultAllowedIn`, so a bug in the production rule cannot agree with its judge: a
 * vault with a residency set lives only in its regions; any other vault lives anywhere.
 */
export const allowedBy =
  (vaults: ReadonlyArray<{ readonly vault: string; readonly allowedRegions?: ReadonlyArray<string> | undefined }>) =>
  (vault: string, region: string): boolean => {
    const placement = vaults.find((candidate) => candidate.vault === vault)
    return placement?.allowedRegions === undefined || placement.allowedRegions.includes(region)
  }

/**
 * Residency on the wire: no change of a vault was ever sent to a region outside its residency
 * set, in a batch or a catch-up page, whether or not the receiver refused it. (`residency`
 * judges what was stored; a change sent and refused would never show there.)
 */
export const residencyOnWire = (outside: ReadonlyArray<Sent>): ReadonlyArray<Violation> =>
  outside.length === 0
    ? []
    : [
        {
          checker: "residency",
          message: `${outside.length} change(s) were sent to a region outside their vault's residency set`,
          details: { examples: outside.slice(0, examplesMax).map((sent) => ({ from: sent.fromNode, to: sent.toRegion, vault: sent.change.tuple.vault, change: Oracle.idOf(sent.change) })) }
        }
      ]

/** Why an acknowledged change is not its tuple's final winner. */
export type LossCause = "missing" | "superseded" | "concurrent" | "clock-skew" | "tie"

/** Acknowledged changes by fate. */
export interface Losses {
  readonly survived: number
  /** In no region's log (itself: `isSameChange`), a wiped disk's or a removed region's included. */
  readonly missing: number
  readonly superseded: number
  readonly concurrent: number
  readonly "clock-skew": number
  readonly tie: number
}

/** Whether the strategy decided between two changes by their timestamps. */
const decidedByTimestamp = (strategy: Oracle.Strategy, loser: Change.Change, winner: Change.Change): boolean =>
  strategy === "LastWriteWins" ||
  (strategy === "InsertWins" && loser.op === winner.op) ||
  (strategy === "SourcePriority" && loser.originRegion === winner.originRegion)

/**
 * Labels every acknowledged change that lost: `missing` (in no region's log, itself),
 * `superseded` (a causally later change
 * replaced it: not a loss), `tie` (equal timestamps, broken by node and region), `clock-skew`
 * (lost on timestamps to a concurrent change although it was acknowledged later in simulated
 * real time), `concurrent` (lost to a concurrent change by the rule).
 */
export const classifyLosses = (
  writes: ReadonlyArray<WriteRecord>,
  verdicts: ReadonlyMap<string, Oracle.Verdict>,
  history: History,
  strategy: Oracle.Strategy
): { readonly losses: Losses; readonly examples: ReadonlyArray<Record<string, unknown>> } => {
  const counts = { survived: 0, missing: 0, superseded: 0, concurrent: 0, "clock-skew": 0, tie: 0 }
  const examples: Array<Record<string, unknown>> = []
  for (const write of writes) {
    if (write.outcome !== "acknowledged") continue
    for (const change of write.changes) {
      const verdict = verdicts.get(Tuple.key(change.tuple))
      const cause = verdict === undefined ? "missing" : causeOf(change, verdict, history, strategy)
      counts[cause === undefined ? "survived" : cause]++
      if (cause !== undefined && cause !== "superseded" && examples.length < examplesMax) {
        examples.push({ change: Oracle.idOf(change), ...(cause === "missing" || verdict === undefined ? {} : { lostTo: Oracle.idOf(verdict.winner) }), cause, write: write.id })
      }
    }
  }
  return { losses: counts, examples }
}

/** Why an acknowledged change is not its tuple's final winner, or undefined when it is. */
export const causeOf = (change: Change.Change, verdict: Oracle.Verdict, history: History, strategy: Oracle.Strategy): LossCause | undefined => {
  // In no log, itself: neither replaced nor outvoted, but gone (until December 5, 2026 such a
  // change counted as superseded, so a report listed none of the writes the check found lost).
  if (!isLogged(change, verdict)) return "missing"
  const id = Oracle.idOf(change)
  const winner = verdict.winner
  if (Oracle.idOf(winner) === id) return undefined
  if (!verdict.maximal.some((member) => Oracle.idOf(member) === id)) return "superseded"
  if (change.timestamp.physicalMs === winner.timestamp.physicalMs && change.timestamp.logical === winner.timestamp.logical) return "tie"
  const lostAt = history.acknowledgedAt.get(id)
  const wonAt = history.acknowledgedAt.get(Oracle.idOf(winner))
  if (decidedByTimestamp(strategy, change, winner) && lostAt !== undefined && wonAt !== undefined && lostAt > wonAt) return "clock-skew"
  return "concurrent"
}

/**
 * Whether `logged` is the change `acknowledged` names, not another one under its id: the same
 * tuple, operation and timestamp. A node that acknowledged a write whose commit it then lost
 * numbers its next changes with the lost ones' ids again, and the client's change is gone though
 * its id is in a log (until December 5, 2026 this check looked at ids alone, and a canary that
 * acknowledges before the commit is durable lost writes it did not see).
 */
const isSameChange = (logged: Change.Change, acknowledged: Change.Change): boolean =>
  logged === acknowledged ||
  (logged.op === acknowledged.op &&
    logged.timestamp.physicalMs === acknowledged.timestamp.physicalMs &&
    logged.timestamp.logical === acknowledged.timestamp.logical &&
    Tuple.key(logged.tuple) === Tuple.key(acknowledged.tuple))

/** How logs (changes by id, `Oracle.byId`) hold `change`: itself, only another change under its id, or not at all. */
const loggedAs = (logged: ReadonlyMap<string, ReadonlyArray<Change.Change>>, change: Change.Change): "itself" | "another" | "none" => {
  const held = logged.get(Oracle.idOf(change))
  if (held === undefined) return "none"
  return held.some((candidate) => isSameChange(candidate, change)) ? "itself" : "another"
}

/** Whether the tuple's logs hold `change` itself, not only another change under its id. */
const isLogged = (change: Change.Change, verdict: Oracle.Verdict): boolean => loggedAs(verdict.logged, change) === "itself"

/** Acknowledged: every acknowledged change is in some region's log, itself and not another change under its id. */
export const acknowledged = (writes: ReadonlyArray<WriteRecord>, regions: ReadonlyArray<RegionState>): ReadonlyArray<Violation> => {
  const logged = Oracle.byId(unionHistory(regions))
  const missing: Array<{ readonly write: number; readonly change: string; readonly idNamesAnother?: true }> = []
  for (const write of writes) {
    if (write.outcome !== "acknowledged") continue
    for (const change of write.changes) {
      const as = loggedAs(logged, change)
      if (as !== "itself") missing.push({ write: write.id, change: Oracle.idOf(change), ...(as === "another" ? { idNamesAnother: true as const } : {}) })
    }
  }
  if (missing.length === 0) return []
  const reused = missing.filter((entry) => entry.idNamesAnother === true).length
  const why = reused === 0 ? "" : ` (${reused} of them: their id names another change there)`
  return [{ checker: "acknowledged", message: `${missing.length} acknowledged change(s) are in no region's log${why}`, details: { missing: missing.length, idNamesAnother: reused, examples: missing.slice(0, examplesMax) } }]
}

/** Everything that makes a change itself, in a canonical text (context keys sorted). */
const fingerprint = (change: Change.Change): string =>
  JSON.stringify([
    Tuple.key(change.tuple),
    change.op,
    change.timestamp.physicalMs,
    change.timestamp.logical,
    change.originRegion,
    change.originNode,
    change.originRevision,
    change.committedAtMs,
    Object.entries(change.context).sort(([left], [right]) => (left < right ? -1 : left > right ? 1 : 0))
  ])

/** Unique ids: no two different changes (tuple, op, timestamp, origin or context) share an id anywhere in the union of the regions' logs. */
export const uniqueIds = (regions: ReadonlyArray<RegionState>): ReadonlyArray<Violation> => {
  const byId = new Map<string, Map<string, Change.Change>>()
  // One object is one change: regions that hold the very object a message carried (the
  // simulator passes frozen objects unless `wire: bytes`) need its fingerprint once, not once
  // per region (the fingerprints were 6% of a run at 1,000 writes/s).
  const fingerprinted = new Set<Change.Change>()
  for (const change of unionHistory(regions)) {
    if (fingerprinted.has(change)) continue
    fingerprinted.add(change)
    const id = Oracle.idOf(change)
    const versions = byId.get(id) ?? new Map<string, Change.Change>()
    versions.set(fingerprint(change), change)
    byId.set(id, versions)
  }
  const found = collector()
  for (const [id, versions] of byId) {
    if (versions.size > 1) found.note({ id, changes: [...versions.values()].map((change) => ({ tuple: Tuple.format(change.tuple), op: change.op, timestamp: change.timestamp, originNode: change.originNode })) })
  }
  if (found.count === 0) return []
  return [{ checker: "unique_ids", message: `${found.count} change id(s) each name more than one different change`, details: { ids: found.count, examples: found.examples } }]
}

/** Store integrity, per disk: log positions 1..end with no gap or excess, and every frontier change logged. */
export const storeIntegrity = (regions: ReadonlyArray<RegionState>): ReadonlyArray<Violation> => {
  const found = collector()
  for (const region of regions) {
    for (const value of region.unreadable ?? []) found.note({ disk: region.replica, problem: "a stored value is not the documented layout", key: value.key, why: value.why })
    const positions = region.log.map((entry) => entry.position)
    const firstOff = positions.findIndex((position, index) => position !== index + 1)
    if (firstOff !== -1 || (region.logEnd !== undefined && positions.length !== region.logEnd)) {
      found.note({ disk: region.replica, problem: "log positions are not 1 to the recorded end", logEnd: region.logEnd, entries: positions.length, firstOutOfPlace: firstOff === -1 ? undefined : { index: firstOff, position: positions[firstOff] } })
    }
    const logged = new Set(region.log.map((entry) => Oracle.idOf(entry.change)))
    for (const [key, { frontier }] of region.tuples) {
      const missing = frontier.filter((change) => !logged.has(Oracle.idOf(change)))
      if (missing.length > 0) found.note({ disk: region.replica, problem: "a frontier change is not in the log", tuple: key, changes: missing.map(Oracle.idOf) })
    }
  }
  if (found.count === 0) return []
  return [{ checker: "store_integrity", message: `${found.count} inconsistenc(ies) between a disk's tuple states, log and counters`, details: { problems: found.count, examples: found.examples } }]
}

/** The bound of the timestamps check. */
export interface TimestampBound {
  /** How far ahead of real time a timestamp may be, in ms. */
  readonly maxOffsetMs: number
  /** The wall-clock reading that simulated time 0 stands for (`SimClock.defaultEpochMs`). */
  readonly epochMs: number
}

/** Default `maxOffsetMs`: a generous bound on clock error beyond what a scenario declares. */
export const defaultMaxOffsetMs = 500

/**
 * Timestamps: no change's physical timestamp is more than `maxOffsetMs` ahead of the real
 * time at which it was first durable anywhere (its acknowledgement at the origin, or a target's
 * batch acknowledgement). A change is stamped before it is durable, so a correct clock is
 * never ahead of that time by more than its error. Changes never seen durable are skipped.
 */
export const timestamps = (changes: Iterable<Change.Change>, history: History, bound: TimestampBound): ReadonlyArray<Violation> => {
  const found = collector()
  const checked = new Set<string>()
  let aheadMsMax = 0
  for (const change of changes) {
    const id = Oracle.idOf(change)
    if (checked.has(id)) continue
    checked.add(id)
    const durable = history.durableAt.get(id)
    if (durable === undefined || durable.size === 0) continue
    const firstDurableMs = Math.min(...durable.values())
    const aheadMs = change.timestamp.physicalMs - (bound.epochMs + firstDurableMs)
    if (aheadMs <= bound.maxOffsetMs) continue
    aheadMsMax = Math.max(aheadMsMax, aheadMs)
    found.note({ change: id, originNode: change.originNode, physicalMs: change.timestamp.physicalMs, firstDurableAtMs: firstDurableMs, aheadMs: Math.round(aheadMs) })
  }
  if (found.count === 0) return []
  return [
    {
      checker: "timestamps",
      message: `${found.count} change(s) carry timestamps more than ${bound.maxOffsetMs} ms ahead of the real time they became durable (up to ${Math.round(aheadMsMax)} ms)`,
      details: { changes: found.count, maxOffsetMs: bound.maxOffsetMs, aheadMsMax: Math.round(aheadMsMax), examples: found.examples }
    }
  ]
}

/** What the progress check needs of the run. */
export interface ProgressSettings {
  /** When writes may legitimately be refused (see `FaultWindows.ts`). */
  readonly windows: ReadonlyArray<FaultWindows.Window>
  /** Least share of writes acknowledged outside the windows; undefined: no availability bound. */
  readonly minAvailability: number | undefined
  /** Time after a window during which writes may still fail while the system recovers. */
  readonly graceMs: number
}

/** Default recovery time after a fault window, in simulated ms. */
export const availabilityGraceMs = 2_000

/**
 * Progress: a workload that offered writes had at least one acknowledged; and, when the
 * scenario declares a minimum, acknowledged / attempted among the writes that overlap no fault
 * window (plus grace) is at least that. Writes still pending at the end are not counted.
 */
export const progress = (writes: ReadonlyArray<WriteRecord>, settings: ProgressSettings): ReadonlyArray<Violation> => {
  // A write whose change no message could carry is refused by rule (README, "Refused requests"),
  // whatever the faults: not a write the system failed to take.
  const answered = writes.filter((write) => write.outcome !== "pending" && !(write.outcome === "rejected" && write.reason?.startsWith("WriteRejected(TooLarge)") === true))
  const acknowledged = writes.filter((write) => write.outcome === "acknowledged").length
  const clear = answered.filter((write) => !FaultWindows.overlaps(settings.windows, write.startedAtMs, write.endedAtMs ?? write.startedAtMs, settings.graceMs))
  // Nothing acknowledged at all is a failure as soon as one write was offered while no fault
  // could refuse it (a schedule that keeps the primary down for the whole workload may not).
  if (acknowledged === 0 && clear.length > 0) {
    return [{ checker: "progress", message: `the workload offered ${writes.length} write(s), ${clear.length} of them outside fault windows, and none was acknowledged`, details: { attempted: writes.length, clear: clear.length } }]
  }
  if (settings.minAvailability === undefined) return []
  if (clear.length === 0) return []
  const clearAcknowledged = clear.filter((write) => write.outcome === "acknowledged").length
  const availability = clearAcknowledged / clear.length
  if (availability >= settings.minAvailability) return []
  const refused = clear.filter((write) => write.outcome !== "acknowledged").slice(0, examplesMax)
  return [
    {
      checker: "progress",
      message: `availability outside fault windows was ${availability.toFixed(3)} (${clearAcknowledged}/${clear.length}), below the scenario's minimum ${settings.minAvailability}`,
      details: { attempted: clear.length, acknowledged: clearAcknowledged, availability, minAvailability: settings.minAvailability, windows: settings.windows, examples: refused.map((write) => ({ write: write.id, outcome: write.outcome, reason: write.reason, startedAtMs: write.startedAtMs })) }
    }
  ]
}

/** One node's epoch history with where it ran. */
export interface NodeEpochs {
  readonly nodeId: string
  readonly regionId: string
  readonly history: ReadonlyArray<Failover.EpochChange>
}

/** An epoch every record of which was lost with wiped disks at `atMs`, while no running node held it. */
export interface ForgottenEpoch {
  readonly epoch: number
  readonly atMs: number
}

/**
 * Which life of `epoch` a moment falls in: 0 until it is first forgotten, 1 until the next
 * time, and so on. An epoch forgotten may be begun again, by any region, under the same number.
 */
const lifeOf = (forgotten: ReadonlyArray<ForgottenEpoch>, epoch: number, atMs: number): number =>
  forgotten.filter((entry) => entry.epoch === epoch && entry.atMs <= atMs).length

/** When the life of `epoch` that `atMs` falls in ended (it was forgotten), or Infinity. */
const lifeEndsAtMs = (forgotten: ReadonlyArray<ForgottenEpoch>, epoch: number, atMs: number): number =>
  Math.min(Infinity, ...forgotten.filter((entry) => entry.epoch === epoch && entry.atMs > atMs).map((entry) => entry.atMs))

/** An epoch's name in a verdict: its number, and which life of it after it was first forgotten. */
const lifeKey = (forgotten: ReadonlyArray<ForgottenEpoch>, epoch: number, atMs: number): number | string => {
  const life = lifeOf(forgotten, epoch, atMs)
  return life === 0 ? epoch : `${epoch} (life ${life + 1}, after it was forgotten)`
}

type Start = { readonly primary: string; readonly atMs: number; readonly nodeId: string }

/** When each epoch's primary began serving, and which region served it, keyed by `keyOf`. */
const startsBy = <K>(nodes: ReadonlyArray<NodeEpochs>, keyOf: (epoch: number, atMs: number) => K): ReadonlyMap<K, ReadonlyArray<Start>> => {
  const starts = new Map<K, Array<Start>>()
  for (const node of nodes) {
    for (const change of node.history) {
      if (change.fenced || change.primary !== node.regionId) continue
      const key = keyOf(change.epoch, change.atMs)
      const list = starts.get(key) ?? []
      list.push({ primary: change.primary, atMs: change.atMs, nodeId: node.nodeId })
      starts.set(key, list)
    }
  }
  return starts
}

/** When each epoch's primary began serving, and which region served it. */
export const epochStarts = (nodes: ReadonlyArray<NodeEpochs>): ReadonlyMap<number, ReadonlyArray<Start>> => startsBy(nodes, (epoch) => epoch)

/**
 * Epochs: one serving region per epoch; no write in an epoch after a newer one began elsewhere.
 * `staleBy` is the moment a write counts from: in the simulator its acknowledgement, which is its
 * commit (the history notes it as the node returns); on real processes (`invoked`), where a
 * client knows only when it sent a write and when the answer came back, its sending: only a
 * write sent after the newer epoch's first write was acknowledged was certainly committed after
 * it, and an answer delayed on its way back would otherwise be taken for a split brain.
 */
export const epochs = (
  writes: ReadonlyArray<WriteRecord>,
  nodes: ReadonlyArray<NodeEpochs>,
  staleBy: "acknowledged" | "invoked" = "acknowledged",
  forgotten: ReadonlyArray<ForgottenEpoch> = []
): ReadonlyArray<Violation> => {
  const violations: Array<Violation> = []
  const starts = startsBy(nodes, (epoch, atMs) => lifeKey(forgotten, epoch, atMs))
  for (const [epoch, list] of starts) {
    const primaries = [...new Set(list.map((start) => start.primary))]
    if (primaries.length > 1) {
      violations.push({ checker: "epochs", message: `epoch ${epoch}: ${primaries.join(" and ")} each served as primary`, details: { epoch, primaries, starts: list } })
    }
  }
  const at = (write: WriteRecord) => (staleBy === "invoked" ? write.startedAtMs : (write.endedAtMs ?? write.startedAtMs))
  const keyOf = (write: WriteRecord & { readonly epoch: number }) => lifeKey(forgotten, write.epoch, at(write))
  const writers = new Map<number | string, Set<string>>()
  for (const write of writes) {
    if (write.outcome !== "acknowledged" || write.epoch === undefined || write.targetRegion === undefined) continue
    const key = keyOf(write as WriteRecord & { readonly epoch: number })
    const set = writers.get(key) ?? new Set()
    set.add(write.targetRegion)
    writers.set(key, set)
  }
  for (const [epoch, regions] of writers) {
    if (regions.size > 1) violations.push({ checker: "epochs", message: `epoch ${epoch}: ${[...regions].join(" and ")} each accepted writes`, details: { epoch, regions: [...regions] } })
  }
  // Split brain is two regions taking writes at once: a write acknowledged in an epoch after
  // another region acknowledged one in a newer epoch. Judged at acknowledgement time, so a node
  // that stalls between admitting and committing a write is caught. (A promotion alone is not a
  // write: the new primary waits out the old one's lease before its first write.)
  // Per life of an epoch (see `lifeOf`): its first write, and when it was forgotten, if it was.
  const firstWrites = new Map<number | string, { readonly epoch: number; readonly region: string; readonly atMs: number; readonly endsAtMs: number }>()
  for (const write of writes) {
    if (write.outcome !== "acknowledged" || write.epoch === undefined || write.targetRegion === undefined || write.endedAtMs === undefined) continue
    const key = keyOf(write as WriteRecord & { readonly epoch: number })
    const first = firstWrites.get(key)
    if (first === undefined || write.endedAtMs < first.atMs) {
      firstWrites.set(key, { epoch: write.epoch, region: write.targetRegion, atMs: write.endedAtMs, endsAtMs: lifeEndsAtMs(forgotten, write.epoch, write.endedAtMs) })
    }
  }
  const stale = writes.filter((write) => {
    if (write.outcome !== "acknowledged" || write.epoch === undefined || write.targetRegion === undefined) return false
    const atMs = at(write)
    return [...firstWrites.values()].some((first) => first.epoch > write.epoch! && first.region !== write.targetRegion && first.atMs <= atMs && atMs < first.endsAtMs)
  })
  if (stale.length > 0) {
    violations.push({
      checker: "epochs",
      message: `${stale.length} write(s) were accepted by a region in an epoch after a newer epoch had begun elsewhere (split brain)`,
      details: { examples: stale.slice(0, examplesMax).map((write) => ({ write: write.id, region: write.targetRegion, epoch: write.epoch, admittedAtMs: write.admittedAtMs ?? write.startedAtMs, acknowledgedAtMs: write.endedAtMs })) }
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
              const at = history.durableAt.get(Oracle.idOf(change))?.get(promotion.regionId)
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

/** What the hand-back check needs of a run (see `handBack`). */
export interface HandBackRules {
  /** The scenario's `failover.promote_back_after_ms`. */
  readonly promoteBackAfterMs: number
  /**
   * How long the original region must be stopped for its peers to notice: the longest silence
   * the README lets a peer leave unseen (the heartbeat timeout, or a slow peer's allowance) plus
   * the longest an answer sent before the outage can take to be heard.
   */
  readonly visibleAfterMs: number
}

/**
 * epochs, the hand-back: the README gives the original primary the role back once it has been
 * back for `promote_back_after_ms`. Every hand-back (a node's epoch change with cause
 * "handed-back") after an outage of the original region that its peers must have noticed (every
 * node of it stopped for longer than `visibleAfterMs`, from the schedule) must come at least that
 * long after the outage ended, less a thousandth for clock drift. Until December 5, 2026 an
 * outage a little longer than the heartbeat timeout that ended between two stale checks went
 * unseen, and the acting primary handed the role back 200 ms after the original restarted.
 */
export const handBack = (nodes: ReadonlyArray<NodeEpochs>, outages: ReadonlyArray<FaultWindows.Window>, rules: HandBackRules): ReadonlyArray<Violation> =>
  nodes.flatMap((node) =>
    node.history
      .filter((change) => change.cause === "handed-back")
      .flatMap((change) => {
        const early = outages.filter(
          (outage) => outage.endMs - outage.startMs > rules.visibleAfterMs && outage.endMs <= change.atMs && change.atMs < outage.endMs + rules.promoteBackAfterMs * 0.999 - 1
        )
        return early.map((outage) => ({
          checker: "epochs",
          message: `${node.nodeId} handed the role back to ${change.primary} ${tenths(change.atMs - outage.endMs)} ms after its outage (${tenths(outage.startMs)}-${tenths(outage.endMs)} ms) ended, before promote_back_after_ms (${rules.promoteBackAfterMs} ms)`,
          details: { nodeId: node.nodeId, epoch: change.epoch, handedBackAtMs: change.atMs, outage, promoteBackAfterMs: rules.promoteBackAfterMs }
        }))
      })
  )

/** The failover story: a promotion, writes elsewhere, and the original primary serving at the end. */
export const failoverStory = (
  timings: FailoverTimings,
  original: string | undefined,
  finalStates: ReadonlyArray<FinalView>
): ReadonlyArray<Violation> => {
  const violations: Array<Violation> = []
  if (timings.promotedAtMs === undefined) violations.push({ checker: "failover", message: "no region was promoted after the primary was lost", details: { lossAtMs: timings.lossAtMs } })
  if (timings.rtoMs === undefined) violations.push({ checker: "failover", message: "no write was accepted by another region after the primary was lost", details: {} })
  violations.push(...servingAtEnd(original, finalStates))
  return violations
}

/** A node's view of the primary at the end of a run; undefined when it has none. */
export interface FinalView {
  readonly nodeId: string
  readonly state: { readonly primary: string | undefined; readonly fenced: boolean; readonly epoch: number } | undefined
}

/** The end of the failover story: once the original primary is back, every node serves under it, unfenced. */
export const servingAtEnd = (original: string | undefined, finalStates: ReadonlyArray<FinalView>): ReadonlyArray<Violation> => {
  const wrong = finalStates.filter(({ state }) => state === undefined || state.primary !== original || state.fenced)
  if (wrong.length === 0) return []
  return [
    {
      checker: "failover",
      message: `at the end, ${wrong.length} node(s) do not serve under the original primary '${original ?? "none"}'`,
      details: { nodes: wrong.map(({ nodeId, state }) => ({ nodeId, primary: state?.primary, fenced: state?.fenced, epoch: state?.epoch })) }
    }
  ]
}
