/**
 * What a run report is made of, independent of where the run happened: the simulator
 * (`src/sim/SimReport.ts` builds one from a `Simulation`) and a chaos run on real processes
 * fill the same shape, and `RunFolder.write` turns it into a folder of files. Everything here
 * is plain data in virtual (or wall) milliseconds since the start of the run, so a report
 * needs nothing but this value to be rendered.
 *
 * The history (`history.jsonl`) is what happened, one event per line: client operations as
 * they were invoked and answered, faults as they were applied and healed, epoch changes, when
 * each acknowledged change reached each other region, and (for short runs) messages between
 * regions. The findings (lost writes, conflicts, the failover story) are the judge's reading of
 * the final state and go into `result.json`.
 */

/** How a client operation ended as the client saw it (`unknown`: no answer it can trust). */
export type OperationPhase = "invoke" | "ok" | "rejected" | "failed" | "unknown"

/** One client operation event: a write of one or more tuples. */
export interface OperationEvent {
  readonly type: "op"
  readonly phase: OperationPhase
  readonly atMs: number
  /** The operation's number in the run (the same on its invoke and its answer). */
  readonly op: number
  /** The client's region. */
  readonly region: string
  /** The node that took the write, when it got that far. */
  readonly node?: string | undefined
  readonly targetRegion?: string | undefined
  /** `insert vault/type:id#relation@subject` per tuple written. */
  readonly tuples: ReadonlyArray<string>
  /** Why it was rejected or failed, or why the outcome is unknown. */
  readonly reason?: string | undefined
  /** The change ids an acknowledged write committed. */
  readonly changes?: ReadonlyArray<string> | undefined
  readonly epoch?: number | undefined
}

/** A fault applied or healed, with what it hit. */
export interface FaultEvent {
  readonly type: "fault"
  readonly phase: "applied" | "healed"
  readonly atMs: number
  /** Pairs an application with its heal. */
  readonly fault: number
  readonly kind: string
  readonly detail: string
  readonly regions: ReadonlyArray<string>
  readonly nodes: ReadonlyArray<string>
}

/** A node's view of the primary changed. */
export interface EpochEvent {
  readonly type: "epoch"
  readonly atMs: number
  readonly node: string
  readonly region: string
  readonly epoch: number
  readonly primary: string | undefined
  readonly fenced: boolean
  /** `initial`, `promoted`, `adopted`, `handed-back`, `fenced`, `confirmed`. */
  readonly cause: string
}

/** An acknowledged change became durable in another region. */
export interface ReplicatedEvent {
  readonly type: "replicated"
  readonly atMs: number
  readonly change: string
  readonly region: string
  /** From the acknowledgement at the origin. */
  readonly lagMs: number
}

/** A message between regions, from its send to its arrival or its loss. */
export interface MessageEvent {
  readonly type: "message"
  /** When it was sent. */
  readonly atMs: number
  readonly endedAtMs: number
  readonly from: string
  readonly to: string
  readonly fromRegion: string
  readonly toRegion: string
  readonly label: string
  readonly fate: "delivered" | "lost" | "cut"
}

/** One line of `history.jsonl`. */
export type HistoryEvent = OperationEvent | FaultEvent | EpochEvent | ReplicatedEvent | MessageEvent

/** Why an acknowledged change is not in the final state. */
export type LossCause = "concurrent" | "clock-skew" | "tie" | "wiped-disk" | "removed-region" | "missing"

/** An acknowledged change that did not survive (a causally later change replacing it is not a loss). */
export interface LostWrite {
  readonly change: string
  readonly write: number
  readonly tuple: string
  readonly op: string
  /** The region that acknowledged it. */
  readonly region: string
  readonly acknowledgedAtMs: number
  readonly cause: LossCause
  /** The change that won instead, when one did. */
  readonly lostTo?: string | undefined
  readonly lostToRegion?: string | undefined
}

/** A tuple whose final state holds concurrent changes that the conflict rule decided. */
export interface Conflict {
  /** When the last of its concurrent changes was acknowledged. */
  readonly atMs: number
  readonly tuple: string
  readonly changes: ReadonlyArray<string>
  readonly winner: string
}

/** An acknowledged write the new primary lacked at its promotion, with its final fate. */
export interface LackedWrite {
  readonly write: number
  readonly tuples: ReadonlyArray<string>
  readonly region: string
  readonly acknowledgedAtMs: number
  readonly fate: "recovered" | "lost"
  /** How it came back (`reached every region`, `superseded by ...`) or why it is gone. */
  readonly why: string
}

/** The recovery point: what the new primary lacked when promoted, reconciled with the final state. */
export interface RecoveryPoint {
  /** Acknowledged writes the promoted region did not hold at its promotion. */
  readonly lackedWrites: number
  /** Of those, writes finally lost: the RPO in writes. */
  readonly lostWrites: number
  /** From the first lacked write's acknowledgement to the promotion. */
  readonly lackedWindowMs: number | undefined
  /** From the first finally lost write's acknowledgement to the promotion: the RPO as a time window. */
  readonly lostWindowMs: number | undefined
  readonly writes: ReadonlyArray<LackedWrite>
}

/** What happened around the loss of the primary (PrimaryReplica). */
export interface FailoverStory {
  readonly originalPrimary: string | undefined
  readonly lostAtMs: number | undefined
  /** The first node that changed its view of the primary after the loss. */
  readonly detectedAtMs: number | undefined
  readonly promotedAtMs: number | undefined
  readonly promotedRegion: string | undefined
  readonly firstWriteElsewhereAtMs: number | undefined
  readonly handedBackAtMs: number | undefined
  readonly rtoMs: number | undefined
  readonly recoveryPoint: RecoveryPoint | undefined
  /** How the times were taken, where they are not the simulator's exact ones (a run on real processes). */
  readonly note?: string | undefined
}

/** One check and what it found. */
export interface Check {
  readonly name: string
  readonly valid: boolean
  readonly violations: ReadonlyArray<{ readonly message: string; readonly details: Readonly<Record<string, unknown>> }>
}

/** Everything a run report shows. */
export interface RunReport {
  readonly scenario: string
  readonly seed: string
  /** A command that replays the run from a checkout of the project. */
  readonly replay: string
  readonly valid: boolean
  readonly checks: ReadonlyArray<Check>
  readonly regions: ReadonlyArray<{ readonly id: string; readonly nodes: ReadonlyArray<string> }>
  /** The run's length: every plot spans 0 to this. */
  readonly durationMs: number
  /** Key figures shown under the verdict, in order. */
  readonly facts: ReadonlyArray<readonly [string, string]>
  readonly events: ReadonlyArray<HistoryEvent>
  readonly lostWrites: ReadonlyArray<LostWrite>
  readonly conflicts: ReadonlyArray<Conflict>
  readonly failover: FailoverStory | undefined
  /**
   * What the run could not record, by plot, with the reason (a chaos run on real processes sees
   * no messages between regions and no epoch changes): the page says so instead of drawing an
   * empty or made-up plot.
   */
  readonly unrecorded?: Readonly<Partial<Record<"messages" | "epochs" | "failover", string>>> | undefined
  /** `report.md`. */
  readonly markdown: string
  /** The run's own result, merged into `result.json`. */
  readonly result: Readonly<Record<string, unknown>>
}

/** `history.jsonl`: one event per line, in time order. */
export const jsonl = (events: ReadonlyArray<HistoryEvent>): string => events.map((event) => JSON.stringify(event)).join("\n") + (events.length === 0 ? "" : "\n")
