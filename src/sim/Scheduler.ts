/**
 * An Effect `Scheduler` for one incarnation of one simulated node. Effect hands every fiber
 * step to its fiber's scheduler (`scheduleTask`), and fibers forked inside a node inherit it,
 * so all of a node's work lands in this queue instead of running on the JavaScript event
 * loop. The world's main loop decides which node's next task runs (see `World.ts`): that
 * choice, drawn from the seeded `scheduler` stream, is how the simulator explores fiber
 * interleavings reproducibly.
 *
 * `shouldYield` makes a running fiber yield after a seeded number of operations, so long
 * synchronous stretches are also cut at varying points. A paused node runs nothing until it
 * resumes. What comes due meanwhile is held, as a stopped process's kernel holds it: timers
 * that expire and messages that arrive (`whenRunning`). At resume the expired timers fire
 * first, as a Node process continued after SIGSTOP fires them (libuv's poll is cut short by the
 * stop, finds its timeout passed, and runs the timers before it polls the sockets again): the
 * simulator used to take in an answer that came before its request's deadline, though both had
 * passed, which the real process never does. The messages held are handed back at resume as
 * the process's backlog (`Node` takes them in over time).
 * A crashed node interrupts every fiber it ever started, runs the interruption to its end,
 * and then drops whatever arrives later.
 */
import type { Fiber, Scheduler } from "effect"
import { FiberId } from "effect"
import type * as Random from "../replication/Random.js"
import * as FiberRoots from "./FiberRoots.js"

/** Bounds of the seeded op count after which a running fiber yields. */
export interface YieldSettings {
  readonly opsMin: number
  readonly opsMax: number
}

/** Defaults: Effect's own scheduler yields after 2048 ops; we cut earlier and at varying points. */
export const defaultYield: YieldSettings = { opsMin: 64, opsMax: 2048 }

/**
 * The work a world's fibers did, shared by the schedulers of all its node incarnations: a
 * figure of the run that does not depend on the machine, unlike its wall or CPU time.
 */
export interface Effort {
  /** Effect operations run: Effect asks the scheduler whether to yield once per operation. */
  ops: number
  /**
   * When present, the operations and events per cause: the kind of timed event (a message
   * delivered, by its type; a timer; a client write) whose running, and the fiber steps it set
   * going, ran them. A step is charged to the event that scheduled it, so a message's whole
   * handling counts under its delivery. Off in ordinary runs (it wraps every task); `bench:sim`
   * turns it on for its `effectOpsByCause`.
   */
  readonly byCause?: Map<string, { events: number; ops: number }>
  /** The cause charged now (see `byCause`). */
  cause?: string | undefined
}

/** A task that runs charged to `cause` (see `Effort.byCause`). */
const chargedTo = (effort: Effort, cause: string, task: Scheduler.Task): Scheduler.Task => () => {
  const before = effort.cause
  effort.cause = cause
  try {
    task()
  } finally {
    effort.cause = before
  }
}

/** Tasks run while draining a crashed node's interruption at most; more is a livelock. */
const crashDrainTasksMax = 1_000_000

/** The scheduler of one node incarnation. */
export class NodeScheduler implements Scheduler.Scheduler {
  private tasks: Array<Scheduler.Task> = []
  private head = 0
  private readonly fibers = new Set<Fiber.RuntimeFiber<unknown, unknown>>()
  private fibersPrunedAt = 64
  private yieldAfterOps: number
  /** Paused: nothing runs; timers and messages are held until `resume`. */
  private stopped = false
  private heldTimers: Array<() => void> = []
  private heldMessages: Array<() => void> = []
  /** Crashed: tasks are dropped. */
  dead = false
  /** Tasks run so far. */
  ran = 0

  constructor(
    /** The node id, for traces. */
    readonly name: string,
    /** Position of the node in the world, folded into the trace for each decision. */
    readonly index: number,
    private readonly random: Random.Stream,
    private readonly yieldSettings: YieldSettings = defaultYield,
    /** Where the operations this scheduler's fibers run are counted. */
    private readonly effort: Effort = { ops: 0 }
  ) {
    this.yieldAfterOps = this.drawYield()
  }

  scheduleTask(task: Scheduler.Task, _priority: number, fiber?: Fiber.RuntimeFiber<unknown, unknown>): void {
    if (this.dead) return
    if (fiber !== undefined) this.track(fiber)
    const cause = this.effort.byCause === undefined ? undefined : this.effort.cause
    this.tasks.push(cause === undefined ? task : chargedTo(this.effort, cause, task))
  }

  shouldYield(fiber: Fiber.RuntimeFiber<unknown, unknown>): number | false {
    this.effort.ops++
    if (this.effort.byCause !== undefined) this.chargeOp(this.effort.byCause)
    if (fiber.currentOpCount <= this.yieldAfterOps) return false
    this.yieldAfterOps = this.drawYield()
    return 0
  }

  private chargeOp(byCause: NonNullable<Effort["byCause"]>): void {
    const cause = this.effort.cause ?? "(no event: start-up, judging)"
    const tally = byCause.get(cause)
    if (tally === undefined) byCause.set(cause, { events: 0, ops: 1 })
    else tally.ops++
  }

  /** Whether the main loop may run one of this node's tasks now. */
  get runnable(): boolean {
    return !this.stopped && !this.dead && this.head < this.tasks.length
  }

  /** Whether the node is paused. */
  get paused(): boolean {
    return this.stopped
  }

  /** Stops the node: nothing of it runs until `resume`. */
  pause(): void {
    if (!this.dead) this.stopped = true
  }

  /**
   * Runs `callback` now, or at resume when the node is paused: a timer of the node that expires
   * (`timer`) or a message that reaches it (`message`). Dropped if the node crashes first.
   */
  whenRunning(kind: "timer" | "message", callback: () => void): void {
    if (this.dead) return
    if (!this.stopped) return callback()
    if (kind === "timer") this.heldTimers.push(callback)
    else this.heldMessages.push(callback)
  }

  /**
   * Lets the node run again: the timers that expired meanwhile fire at once; the messages that
   * arrived are returned, in arrival order, for the caller to take in.
   */
  resume(): ReadonlyArray<() => void> {
    if (!this.stopped) return []
    this.stopped = false
    const timers = this.heldTimers
    const messages = this.heldMessages
    this.heldTimers = []
    this.heldMessages = []
    for (const callback of timers) if (!this.dead) callback()
    return this.dead ? [] : messages
  }

  /** Tasks waiting. */
  get pending(): number {
    return this.tasks.length - this.head
  }

  /** Runs the oldest queued task. */
  runOne(): void {
    const task = this.tasks[this.head]
    if (task === undefined) return
    this.tasks[this.head] = undefined as unknown as Scheduler.Task
    this.head++
    if (this.head > 1024 && this.head * 2 > this.tasks.length) {
      this.tasks = this.tasks.slice(this.head)
      this.head = 0
    }
    this.ran++
    task()
  }

  /**
   * Crashes the incarnation: interrupts every live fiber it started, runs the interruptions
   * (so locks such as the regional disk's are released, as a dying process's are), then drops
   * everything. Returns the number of tasks run while dying.
   *
   * A fiber whose interruption cannot finish (it waits, uninterruptibly, for a fiber of the
   * same dead incarnation) is let go of as at the end of a run (`FiberRoots`): Effect kept it
   * among its root fibers for ever, and with it the whole world it belonged to. A swarm
   * process grew by about a megabyte per seed that way (live heap after a full collection
   * 21 → 63 MB over 60 default seeds), which every later collection had to mark.
   */
  crash(): number {
    this.stopped = false
    this.heldTimers = []
    this.heldMessages = []
    for (const fiber of this.fibers) {
      if (fiber.unsafePoll() === null) fiber.unsafeInterruptAsFork(FiberId.none)
    }
    let drained = 0
    while (this.head < this.tasks.length && drained < crashDrainTasksMax) {
      this.runOne()
      drained++
    }
    this.abandon()
    return drained
  }

  /**
   * Drops the incarnation without interrupting anything (at the end of a run, or once a crash
   * has run what its interruptions could): every task is dropped, nothing runs again, and
   * Effect's root set lets go of every fiber that ran here (`FiberRoots`).
   */
  abandon(): void {
    this.dead = true
    this.heldTimers = []
    this.heldMessages = []
    this.tasks = []
    this.head = 0
    this.fibers.clear()
    FiberRoots.forgetRunningOn(this)
  }

  private track(fiber: Fiber.RuntimeFiber<unknown, unknown>): void {
    this.fibers.add(fiber)
    if (this.fibers.size < this.fibersPrunedAt) return
    for (const known of this.fibers) if (known.unsafePoll() !== null) this.fibers.delete(known)
    this.fibersPrunedAt = Math.max(64, this.fibers.size * 2)
  }

  private drawYield(): number {
    const { opsMin, opsMax } = this.yieldSettings
    return opsMin + this.random.int(Math.max(1, opsMax - opsMin + 1))
  }
}
