/**
 * An honest RPO. At its promotion the new primary lacked some acknowledged writes (they had
 * not reached it yet); that count is what the failover timings call `rpo`. Many of them are
 * not lost: they arrive later, by replication or catch-up, and survive, or a later change
 * replaces them. This reconciles each lacked write with its final fate (`Fates.ts`), so the
 * RPO a report shows is the writes finally lost, in number and as a time window, with every
 * lacked write named.
 */
import * as Tuple from "../replication/Tuple.js"
import type { LackedWrite, RecoveryPoint } from "../report/RunReport.js"

export type { RecoveryPoint }
import * as Fates from "./Fates.js"
import type { WriteRecord } from "./History.js"
import * as Oracle from "./Oracle.js"

const tenths = (ms: number): number => Math.round(ms * 10) / 10

/** Acknowledged writes, finished by `atMs`, with a change `region` did not hold at `atMs`. */
const lacked = (judged: Fates.Judged, region: string, atMs: number): ReadonlyArray<WriteRecord> =>
  judged.history.writes.filter(
    (write) =>
      write.outcome === "acknowledged" &&
      (write.endedAtMs ?? Infinity) <= atMs &&
      write.changes.some((change) => {
        const heldAtMs = judged.history.durableAt.get(Oracle.idOf(change))?.get(region)
        return heldAtMs === undefined || heldAtMs > atMs
      })
  )

/** Why a lacked write is not lost, or why it is. */
const fateOfWrite = (write: WriteRecord, judged: Fates.Judged, region: string): Pick<LackedWrite, "fate" | "why"> => {
  const fates = write.changes.map((change) => ({ change, fate: Fates.fateOf(change, judged) }))
  const lost = fates.filter(({ fate }) => fate.kind === "lost")
  if (lost.length > 0) {
    return {
      fate: "lost",
      why: lost
        .map(({ change, fate }) => (fate.kind !== "lost" ? "" : `${Oracle.idOf(change)} ${fate.cause}${fate.lostTo === undefined ? "" : ` (lost to ${Oracle.idOf(fate.lostTo)} from ${fate.lostTo.originRegion})`}`))
        .join("; ")
    }
  }
  const superseded = fates.flatMap(({ change, fate }) => (fate.kind === "superseded" ? [`${Oracle.idOf(change)} superseded by ${fate.by}`] : []))
  const reachedAtMs = Math.max(...write.changes.map((change) => judged.history.durableAt.get(Oracle.idOf(change))?.get(region) ?? Number.NaN))
  const reached = Number.isNaN(reachedAtMs) ? "survived" : `reached ${region} at ${tenths(reachedAtMs)} ms`
  return { fate: "recovered", why: [reached, ...superseded].join("; ") }
}

/** The recovery point of a promotion of `region` at `atMs`. */
export const reconcile = (judged: Fates.Judged, region: string, atMs: number): RecoveryPoint => {
  const writes: ReadonlyArray<LackedWrite> = lacked(judged, region, atMs).map((write) => ({
    write: write.id,
    tuples: write.changes.map((change) => `${change.op} ${Tuple.format(change.tuple)}`),
    region: write.targetRegion ?? write.clientRegion,
    acknowledgedAtMs: tenths(write.endedAtMs ?? write.startedAtMs),
    ...fateOfWrite(write, judged, region)
  }))
  const windowOf = (list: ReadonlyArray<LackedWrite>): number | undefined => (list.length === 0 ? undefined : tenths(atMs - Math.min(...list.map((write) => write.acknowledgedAtMs))))
  const lost = writes.filter((write) => write.fate === "lost")
  return { lackedWrites: writes.length, lostWrites: lost.length, lackedWindowMs: windowOf(writes), lostWindowMs: windowOf(lost) ?? 0, writes }
}
