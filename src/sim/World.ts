/**
 * The simulated world: virtual time, the one timed-event queue, the nodes' schedulers and the
 * main loop that interleaves them. Nothing here reads the machine's clock or uses host
 * timers or promises: virtual time jumps from one event to the next, and every choice is
 * drawn from the seeded `scheduler` stream, so one seed gives one run in any process.
 *
 * Main loop: while some node that is not paused has ready tasks, pick one such node with
 * the scheduler stream and run its oldest task; when no task is ready, pop the earliest timed
 * event, advance virtual time to it and run it; stop at the time budget, when nothing is left
 * to do, or when asked to. Every event and every pick is folded into the trace hash.
 */
import type * as Random from "../replication/Random.js"
import { type Event, EventQueue } from "./EventQueue.js"
import type { Effort, NodeScheduler } from "./Scheduler.js"
import { TraceHash } from "./TraceHash.js"

/** What the per-event hook sees: one fired timed event or one noted fact. */
export interface TraceEvent {
  /** 0-based position in the run's event sequence. */
  readonly index: number
  readonly timeMs: number
  readonly kind: string
  readonly node: string
  readonly detail: string
  /** Scheduler tasks run before this event (fiber steps between events are folded into the hash too). */
  readonly tasks: number
  /** Trace hash after folding this event. */
  readonly hash: string
}

/** Why the main loop returned. */
export type StopReason = "budget" | "idle" | "stopped" | "livelock"

/** World settings. */
export interface Options {
  /** The `scheduler` stream: picks which node runs next. */
  readonly random: Random.Stream
  /** Tasks allowed at one virtual instant before the run is declared a livelock. */
  readonly tasksPerInstantMax?: number
  /** Called after every fired event and noted fact, in order (determinism checks, tracing). */
  readonly onEvent?: (event: TraceEvent) => void
  /** Count Effect operations by cause (`Effort.byCause`). */
  readonly effortByCause?: boolean
}

const defaultTasksPerInstantMax = 2_000_000

/** Rounds virtual times to microseconds so their canonical text stays short and stable. */
const toMicros = (ms: number): number => Math.round(ms * 1000) / 1000

/** Virtual time, the event queue and the schedulers of every node. */
export class World {
  /** Virtual now in milliseconds since the start of the run. */
  nowMs = 0
  /** Timed events fired and facts noted. */
  events = 0
  /** Scheduler tasks run. */
  tasks = 0
  /** The Effect operations every node incarnation's fibers ran (each incarnation's scheduler counts here). */
  readonly effort: Effort
  private sequence = 0
  private readonly queue = new EventQueue()
  private readonly schedulers: Array<NodeScheduler | undefined> = []
  private readonly trace = new TraceHash()
  private stopRequested = false
  private readonly tasksPerInstantMax: number

  constructor(private readonly options: Options) {
    this.tasksPerInstantMax = options.tasksPerInstantMax ?? defaultTasksPerInstantMax
    this.effort = options.effortByCause === true ? { ops: 0, byCause: new Map() } : { ops: 0 }
  }

  /** The trace hash so far. */
  get traceHash(): string {
    return this.trace.hex()
  }

  /** Live timed events still queued. */
  get queued(): number {
    return this.queue.size
  }

  /** Schedules `run` at virtual time `atMs` (not before now); `cause` names it in `Effort.byCause` (its kind when absent). */
  schedule(atMs: number, kind: string, node: string, detail: string, run: () => void, cause?: string): Event {
    const event: Event = { timeMs: Math.max(this.nowMs, toMicros(atMs)), sequence: this.sequence++, kind, node, detail, run, cancelled: false, ...(cause === undefined ? {} : { cause }) }
    this.queue.push(event)
    return event
  }

  /** Runs an event with its Effect operations, and those of the fiber steps it schedules, charged to its cause. */
  private runCharged(event: Event, byCause: NonNullable<Effort["byCause"]>): void {
    const cause = event.cause ?? event.kind
    const tally = byCause.get(cause)
    if (tally === undefined) byCause.set(cause, { events: 1, ops: 0 })
    else tally.events++
    this.effort.cause = cause
    try {
      event.run()
    } finally {
      this.effort.cause = undefined
    }
  }

  /** Removes a scheduled event; it will not run. */
  cancel(event: Event): void {
    this.queue.cancel(event)
  }

  /** Installs the scheduler of a node incarnation in the node's slot (replacing an old one). */
  attach(scheduler: NodeScheduler): void {
    this.schedulers[scheduler.index] = scheduler
  }

  /** Folds a fact that is not a timed event (a fault applied, a write recorded) into the trace. */
  note(kind: string, node: string, detail: string): void {
    this.fold(this.nowMs, kind, node, detail)
  }

  /** Asks the main loop to return after the current step. */
  stop(): void {
    this.stopRequested = true
  }

  /** Runs until virtual time would pass `untilMs`, nothing is left, or `stop` is called. */
  run(untilMs: number): StopReason {
    this.stopRequested = false
    let tasksThisInstant = 0
    while (!this.stopRequested) {
      const scheduler = this.pickRunnable()
      if (scheduler !== undefined) {
        if (++tasksThisInstant > this.tasksPerInstantMax) return "livelock"
        this.trace.integer(scheduler.index)
        this.tasks++
        scheduler.runOne()
        continue
      }
      const next = this.queue.peek()
      if (next === undefined) return "idle"
      if (next.timeMs > untilMs) {
        this.nowMs = untilMs
        return "budget"
      }
      this.queue.pop()
      if (next.timeMs > this.nowMs) tasksThisInstant = 0
      this.nowMs = next.timeMs
      this.fold(next.timeMs, next.kind, next.node, next.detail)
      if (this.effort.byCause === undefined) next.run()
      else this.runCharged(next, this.effort.byCause)
    }
    return "stopped"
  }

  private fold(timeMs: number, kind: string, node: string, detail: string): void {
    this.trace.string(String(timeMs)).string(kind).string(node).string(detail)
    const index = this.events++
    this.options.onEvent?.({ index, timeMs, kind, node, detail, tasks: this.tasks, hash: this.trace.hex() })
  }

  /** One runnable scheduler chosen with the scheduler stream, or undefined. */
  private pickRunnable(): NodeScheduler | undefined {
    let count = 0
    for (const scheduler of this.schedulers) if (scheduler !== undefined && scheduler.runnable) count++
    if (count === 0) return undefined
    let pick = count === 1 ? 0 : this.options.random.int(count)
    for (const scheduler of this.schedulers) {
      if (scheduler === undefined || !scheduler.runnable) continue
      if (pick-- === 0) return scheduler
    }
    return undefined
  }
}
