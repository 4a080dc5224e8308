/**
 * The `drained` check: what a graceful stop's drain promises, judged from the disks at the
 * moment the drain said it was complete. The README's rule, written here from the document and
 * not taken from the code under test (`Drain`, `Agent.targetsFor`): "the agent keeps shipping
 * until every target (on per-node stores every sibling node too) acknowledged the log as it
 * stood then, which holds every write the node acknowledged". So when the drain of a node on
 * per-node stores completes, every change of every write the node acknowledged before it completed is
 * on the disk of every sibling, and on some disk of every region its region ships to directly that
 * may hold the change's vault (a region's own changes go straight to each of its targets), or a
 * change that supersedes it there (a node ignores a change whose effect it already has, README's
 * rules: a change supersedes another when its context has seen the other's dot). That
 * is what makes a graceful stop safe for the disk: it may be wiped (a pod rescheduled on an empty
 * volume) without losing an acknowledged write.
 *
 * Under DNS discovery a node drains to the nodes it has found (a discovery round first, then
 * those), which the judge cannot know, so there the check asks for the promise's point alone: some
 * other disk holds each change, among the siblings whose DNS record exists and the target regions.
 * A disk wiped after the write began may have acknowledged the change and lost it since, so it
 * is not asked for it; but one that holds it (the drain shipped it there after the wipe) keeps the
 * promise as any other does (swarm seed 140017660: the node's one target region was wiped while it
 * drained, took the changes on its new disk, and was the only disk holding them). Shared regional
 * stores are not judged: the region's disk, not the node's, holds its writes, and the region's
 * leader ships them.
 */
import type * as Change from "../replication/Change.js"
import type { Violation } from "./Checkers.js"
import type { WriteRecord } from "./History.js"
import * as Tuple from "../replication/Tuple.js"
import * as Oracle from "./Oracle.js"

/** A completed drain of a node: when it began, and the log position it reported every target had acknowledged. */
export interface DrainedStop {
  readonly nodeId: string
  readonly drainFromMs: number
  readonly drainedAtMs: number
  readonly logEnd: number
}

/** A disk as the judge reads it at the drain's end: whether it knows a change, and when it was created (its last wipe, or 0). */
export interface Disk {
  readonly id: string
  readonly knows: (change: Change.Change) => boolean
  readonly bornAtMs: number
}

/** A disk that knows a change when its log holds it or a change of the same tuple that supersedes it (`Oracle.supersedes`). */
export const diskOf = (id: string, log: ReadonlyArray<Change.Change>, bornAtMs: number): Disk => {
  const ids = new Set(log.map(Oracle.idOf))
  const byTuple = new Map<string, Array<Change.Change>>()
  for (const change of log) {
    const key = Tuple.key(change.tuple)
    const changes = byTuple.get(key)
    if (changes === undefined) byTuple.set(key, [change])
    else changes.push(change)
  }
  const knows = (change: Change.Change): boolean =>
    ids.has(Oracle.idOf(change)) || (byTuple.get(Tuple.key(change.tuple)) ?? []).some((later) => Oracle.supersedes(later, change))
  return { id, knows, bornAtMs }
}

/** The disks the drained node's changes must be on: its siblings', and each target region's. */
export interface Peers {
  /** When the drained node's disk was created (its last wipe, or 0): writes it acknowledged before that went with the older disk. */
  readonly ownBornAtMs: number
  readonly siblings: ReadonlyArray<Disk>
  readonly targets: ReadonlyArray<{ readonly regionId: string; readonly disks: ReadonlyArray<Disk> }>
  /** Under discovery: some other disk is enough. */
  readonly anyOther: boolean
  /** Whether a region may hold a vault (the scenario's residency, `Checkers.allowedBy`). */
  readonly allowed: (vault: string, regionId: string) => boolean
}

const examplesMax = 5

/** Where a change should be and is not: sibling disks, target regions, or "any other disk". */
const missingFrom = (change: Change.Change, write: WriteRecord, peers: Peers): ReadonlyArray<string> => {
  // A disk created after the write began may have lost what it acknowledged: not asked.
  const asked = (disk: Disk) => disk.bornAtMs <= write.startedAtMs
  const regions = peers.targets.filter((target) => peers.allowed(change.tuple.vault, target.regionId) && target.disks.every(asked))
  const siblings = peers.siblings.filter(asked)
  if (peers.anyOther) {
    // A disk created since is not asked for the change, but one that holds it keeps the promise.
    const holders = [...peers.siblings, ...peers.targets.filter((target) => peers.allowed(change.tuple.vault, target.regionId)).flatMap((target) => target.disks)]
    const candidates = [...siblings, ...regions.flatMap((target) => target.disks)]
    return candidates.length === 0 || holders.some((disk) => disk.knows(change)) ? [] : ["any other disk"]
  }
  return [
    ...siblings.filter((disk) => !disk.knows(change)).map((disk) => `sibling ${disk.id}`),
    ...regions.filter((target) => !target.disks.some((disk) => disk.knows(change))).map((target) => `region ${target.regionId}`)
  ]
}

/**
 * The writes the node acknowledged on its current disk before its drain said it was complete: the
 * README's drain holds "every write the node acknowledged", those acknowledged during the drain
 * too. Until December 8, 2026 only those acknowledged before the drain began were asked, and
 * writes that outlived the stop's request grace, acknowledged during the drain after it had
 * fixed the log end it drained to, were lost with the node's volume unjudged.
 */
const coveredWrites = (stop: DrainedStop, writes: ReadonlyArray<WriteRecord>, ownBornAtMs: number): ReadonlyArray<WriteRecord> =>
  writes.filter(
    (write) => write.outcome === "acknowledged" && write.targetNode === stop.nodeId && write.endedAtMs !== undefined && write.endedAtMs <= stop.drainedAtMs && write.startedAtMs >= ownBornAtMs
  )

/** Judges one completed drain. */
export const judge = (stop: DrainedStop, writes: ReadonlyArray<WriteRecord>, peers: Peers): ReadonlyArray<Violation> => {
  const missing = coveredWrites(stop, writes, peers.ownBornAtMs).flatMap((write) =>
    write.changes.flatMap((change) => {
      const where = missingFrom(change, write, peers)
      return where.length === 0 ? [] : [{ write: write.id, change: Oracle.idOf(change), missingFrom: where }]
    })
  )
  if (missing.length === 0) return []
  return [
    {
      checker: "drained",
      message: `${stop.nodeId}'s drain reported at ${stop.drainedAtMs} ms that every target had acknowledged its log up to position ${stop.logEnd}, but ${missing.length} change(s) it acknowledged were not where that puts them`,
      details: { node: stop.nodeId, drainFromMs: stop.drainFromMs, drainedAtMs: stop.drainedAtMs, logEnd: stop.logEnd, missing: missing.length, examples: missing.slice(0, examplesMax) }
    }
  ]
}
