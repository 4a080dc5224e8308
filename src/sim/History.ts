/**
 * What the clients and the network saw during a run, recorded by the simulator outside the
 * code under test: every write attempt with its virtual start and end time, outcome and the
 * changes it committed, and the virtual time each change became durable in each region (its
 * origin when the write was acknowledged, a target when it acknowledged a batch holding it).
 * The checkers and the report are computed from this and from the regions' disks. Changes
 * are keyed by the judge's id text (`Oracle.idOf`), so the record and the judge agree on ids.
 */
import type * as Change from "../replication/Change.js"
import type * as Replica from "../replication/Replica.js"
import * as Oracle from "./Oracle.js"

/** How a write attempt ended. */
export type Outcome = "pending" | "acknowledged" | "rejected" | "failed" | "interrupted"

/** One client write. */
export interface WriteRecord {
  readonly id: number
  readonly clientRegion: string
  readonly operations: ReadonlyArray<Replica.Operation>
  readonly startedAtMs: number
  entryNode: string | undefined
  targetNode: string | undefined
  targetRegion: string | undefined
  endedAtMs: number | undefined
  outcome: Outcome
  reason: string | undefined
  /** The committed changes, for an acknowledged write. */
  changes: ReadonlyArray<Change.Change>
  /** When the node that takes the write began it, and its failover epoch then (PrimaryReplica). */
  admittedAtMs: number | undefined
  epoch: number | undefined
}

/** The run's records. */
export class History {
  readonly writes: Array<WriteRecord> = []
  /** Change id -> region -> first virtual time the change was known durable there. */
  readonly durableAt = new Map<string, Map<string, number>>()
  /** Change id -> virtual time its write was acknowledged at its origin. */
  readonly acknowledgedAt = new Map<string, number>()

  /** Starts recording a write attempt. */
  begin(clientRegion: string, operations: ReadonlyArray<Replica.Operation>, nowMs: number): WriteRecord {
    const record: WriteRecord = {
      id: this.writes.length + 1,
      clientRegion,
      operations,
      startedAtMs: nowMs,
      entryNode: undefined,
      targetNode: undefined,
      targetRegion: undefined,
      endedAtMs: undefined,
      outcome: "pending",
      reason: undefined,
      changes: [],
      admittedAtMs: undefined,
      epoch: undefined
    }
    this.writes.push(record)
    return record
  }

  /** Ends a write attempt. */
  end(record: WriteRecord, outcome: Outcome, nowMs: number, details: { readonly reason?: string; readonly changes?: ReadonlyArray<Change.Change> } = {}): void {
    record.outcome = outcome
    record.endedAtMs = nowMs
    record.reason = details.reason
    record.changes = details.changes ?? []
    if (outcome !== "acknowledged") return
    for (const change of record.changes) {
      this.acknowledgedAt.set(Oracle.idOf(change), nowMs)
      this.durable(change, change.originRegion, nowMs)
    }
  }

  /** Notes that a change is durable in a region (the first time counts). */
  durable(change: Change.Change, region: string, nowMs: number): void {
    const id = Oracle.idOf(change)
    let regions = this.durableAt.get(id)
    if (regions === undefined) {
      regions = new Map()
      this.durableAt.set(id, regions)
    }
    if (!regions.has(region)) regions.set(region, nowMs)
  }
}
