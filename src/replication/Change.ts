/**
 * A change: one committed insert or delete of one tuple, as it travels between regions.
 *
 * A change is immutable from the moment its origin commits it. Its `id` (origin and origin
 * sequence) makes applying it twice a no-op; its `context` says which earlier changes
 * to the same tuple it supersedes (see `VersionVector.ts`).
 */
import { Schema } from "effect"
import * as Timestamp from "./Timestamp.js"
import * as Tuple from "./Tuple.js"
import * as VersionVector from "./VersionVector.js"

/** Insert or delete. */
export const Operation = Schema.Literal("insert", "delete")
export type Operation = typeof Operation.Type

/** A committed change to one tuple. */
export const Change = Schema.Struct({
  id: VersionVector.Dot,
  op: Operation,
  tuple: Tuple.Tuple,
  timestamp: Timestamp.Timestamp,
  originRegion: Schema.NonEmptyString,
  originNode: Schema.NonEmptyString,
  /** The origin region's commit revision; all changes of one write share it. */
  originRevision: Schema.Number.pipe(Schema.int(), Schema.positive()),
  /** The origin's physical clock at commit, used to measure replication lag. */
  committedAtMs: Schema.Number.pipe(Schema.int(), Schema.nonNegative()),
  /** What the origin had seen of this tuple when it wrote: the changes this one supersedes. */
  context: VersionVector.VersionVector
})
export type Change = typeof Change.Type

/** Whether `later` causally follows `earlier` (so `later` wins under every strategy). */
export const supersedes = (later: Change, earlier: Change): boolean => VersionVector.covers(later.context, earlier.id)

/** Stable string id, e.g. `us-west-1/node-a/k3x9#42`. */
export const idString = (change: Change): string => VersionVector.formatDot(change.id)

/** Everything a holder of this change has seen of its tuple: its context plus itself. */
export const seen = (change: Change): VersionVector.VersionVector => VersionVector.add(change.context, change.id)

/** Whether a holder of `change` has seen `dot`: `VersionVector.covers(seen(change), dot)`, without building the vector. */
export const hasSeen = (change: Change, dot: VersionVector.Dot): boolean =>
  (change.id.origin === dot.origin && change.id.seq >= dot.seq) || VersionVector.covers(change.context, dot)

/** Canonical order by id, so functions of a set of changes never depend on arrival order. */
export const compareIds = (left: Change, right: Change): number =>
  left.id.origin < right.id.origin ? -1 : left.id.origin > right.id.origin ? 1 : left.id.seq - right.id.seq

/**
 * The origin key of a store: `<region>/<node>/<token>`. The token is drawn when the store is
 * first opened, so a node restarted on an empty disk (or a new node) numbers its changes
 * afresh under a new origin instead of reusing ids its peers already hold.
 */
export const originKey = (region: string, node: string, token: string): string => `${region}/${node}/${token}`

/** Whether an origin key belongs to `region` (a change's id must name its origin region); a bare region id is accepted too. */
export const originInRegion = (origin: string, region: string): boolean => origin === region || origin.startsWith(`${region}/`)
