/**
 * The final fate of every acknowledged change, read from the judge's verdicts (`Oracle.ts`)
 * and the recorded history: it survived, a causally later change replaced it (not a loss), or
 * it was lost, and why. Unlike the counts in `RunResult.lostWrites` and their five examples,
 * this names every lost change, for reports and for reconciling the RPO with the outcome.
 */
import type * as Change from "../replication/Change.js"
import * as Tuple from "../replication/Tuple.js"
import type { LossCause, LostWrite } from "../report/RunReport.js"
import * as Checkers from "./Checkers.js"
import type { History } from "./History.js"
import * as Oracle from "./Oracle.js"

/** What became of one acknowledged change. */
export type Fate =
  | { readonly kind: "survived" }
  | { readonly kind: "superseded"; readonly by: string }
  | { readonly kind: "lost"; readonly cause: LossCause; readonly lostTo: Change.Change | undefined }

/** What the fates are judged from. */
export interface Judged {
  readonly history: History
  readonly verdicts: ReadonlyMap<string, Oracle.Verdict>
  readonly strategy: Oracle.Strategy
  /** Changes that were on a wiped disk and on no other. */
  readonly lostWithDisk: ReadonlySet<string>
  /** Changes held at the end only by a region removed for good. */
  readonly lostWithRegion?: ReadonlySet<string>
}

/** The fate of one acknowledged change. */
export const fateOf = (change: Change.Change, judged: Judged): Fate => {
  const id = Oracle.idOf(change)
  if (judged.lostWithDisk.has(id)) return { kind: "lost", cause: "wiped-disk", lostTo: undefined }
  if (judged.lostWithRegion?.has(id) === true) return { kind: "lost", cause: "removed-region", lostTo: undefined }
  const verdict = judged.verdicts.get(Tuple.key(change.tuple))
  if (verdict === undefined) return { kind: "lost", cause: "missing", lostTo: undefined }
  const cause = Checkers.causeOf(change, verdict, judged.history, judged.strategy)
  if (cause === undefined) return { kind: "survived" }
  if (cause === "superseded") {
    const by = verdict.maximal.find((member) => Oracle.supersedes(member, change)) ?? verdict.winner
    return { kind: "superseded", by: Oracle.idOf(by) }
  }
  return { kind: "lost", cause, lostTo: cause === "missing" ? undefined : verdict.winner }
}

/** Every acknowledged change that did not survive, in acknowledgement order. Not capped. */
export const lostWrites = (judged: Judged): ReadonlyArray<LostWrite> =>
  judged.history.writes.flatMap((write) => {
    if (write.outcome !== "acknowledged") return []
    return write.changes.flatMap((change): ReadonlyArray<LostWrite> => {
      const fate = fateOf(change, judged)
      if (fate.kind !== "lost") return []
      return [
        {
          change: Oracle.idOf(change),
          write: write.id,
          tuple: Tuple.format(change.tuple),
          op: change.op,
          region: change.originRegion,
          acknowledgedAtMs: write.endedAtMs ?? write.startedAtMs,
          cause: fate.cause,
          lostTo: fate.lostTo === undefined ? undefined : Oracle.idOf(fate.lostTo),
          lostToRegion: fate.lostTo?.originRegion
        }
      ]
    })
  })
