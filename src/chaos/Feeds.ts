/**
 * The harness's view of every node's durable log, through the public Watch API: one stream per
 * node from log position 1, resumed after the last position it delivered whenever the node
 * crashes or restarts, and started again from 1 on a wiped disk (a new disk generation). It
 * gives the run three things without reading any disk directly: the changes an acknowledged
 * write committed (its entries on the node that took it, found by origin node and revision),
 * when each change became durable in each region (the time its entry arrived here: an upper
 * bound, for lag), and each node's log to probe convergence with.
 */
import type * as Store from "../replication/Store.js"
import * as ApiClient from "../runtime/ApiClient.js"
import * as Oracle from "../sim/Oracle.js"

/** Pause before opening a stream again after it failed (the node is down or restarting). */
const reconnectDelayMs = 200

/** One node's feed. */
export class Feed {
  /** Logs by disk generation, by position. */
  readonly generations: Array<Map<number, Store.LogEntry>> = [new Map()]
  private watching: ApiClient.Watching | undefined
  private stopped = false
  /** The disk was wiped and its node has not been seen up since (see `wiped`). */
  private wipePending = false
  private timer: ReturnType<typeof setTimeout> | undefined

  constructor(
    readonly nodeId: string,
    readonly regionId: string,
    private readonly client: ApiClient.ApiClient,
    /** Called for every entry with the harness's time, e.g. to record durability. */
    private readonly onEntry: (entry: Store.LogEntry) => void
  ) {}

  /** The current disk's log, in position order. */
  get log(): ReadonlyArray<Store.LogEntry> {
    return [...this.current.values()].sort((a, b) => a.position - b.position)
  }

  private get current(): Map<number, Store.LogEntry> {
    return this.generations[this.generations.length - 1]!
  }

  /** The highest position delivered without a gap from 1. */
  private contiguousEnd(): number {
    let position = 0
    while (this.current.has(position + 1)) position++
    return position
  }

  start(): void {
    this.stopped = false
    this.open()
  }

  private open(): void {
    if (this.stopped || this.wipePending) return
    const watching = this.client.watch(this.contiguousEnd() + 1, (entry) => {
      if (this.current.has(entry.position)) return
      this.current.set(entry.position, entry)
      this.onEntry(entry)
    })
    this.watching = watching
    const again = () => {
      if (this.watching !== watching || this.stopped) return
      this.watching = undefined
      this.timer = setTimeout(() => this.open(), reconnectDelayMs)
    }
    watching.done.then(again, again)
  }

  /** A wiped disk: keep the old log as a past generation and read the new one from position 1. */
  private newGeneration(): void {
    this.wipePending = false
    this.generations.push(new Map())
    this.restart()
  }

  /**
   * The node's disk was just wiped: stop reading until the node is up again, then start a new
   * generation (`resume`), whichever start brings it up. A wipe's own restart can fail (a crash
   * fault kills the process before it is ready); the generation used to start only when that
   * restart succeeded, so a later restart resumed the old generation and appended the new
   * disk's entries to the old disk's log, a log no other node ever held (chaos seed 9990803:
   * liveness failed although every disk agreed).
   */
  wiped(): void {
    this.wipePending = true
    const watching = this.watching
    this.watching = undefined
    watching?.cancel()
    if (this.timer !== undefined) clearTimeout(this.timer)
  }

  /** The node is up again: a new generation after a wipe, else the stream resumed where it was. */
  resume(): void {
    if (this.wipePending) this.newGeneration()
    else this.restart()
  }

  /** Drops the stream and opens a new one (after a restart the old one may hang on a dead connection). */
  restart(): void {
    const watching = this.watching
    this.watching = undefined
    watching?.cancel()
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.open()
  }

  stop(): void {
    this.stopped = true
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.watching?.cancel()
    this.watching = undefined
  }

  /** The entries of a write this node took: origin node is this node and the write's revision, in any generation. */
  entriesOf(revision: number): ReadonlyArray<Store.LogEntry> {
    for (const generation of this.generations) {
      const found = [...generation.values()].filter((entry) => entry.receivedFrom === null && entry.change.originNode === this.nodeId && entry.change.originRevision === revision)
      if (found.length > 0) return found.sort((a, b) => a.position - b.position)
    }
    return []
  }

  /** Ids of the changes on the current disk. */
  ids(): ReadonlySet<string> {
    return new Set([...this.current.values()].map((entry) => Oracle.idOf(entry.change)))
  }
}

/**
 * The changes that went with wiped disks: delivered by a wiped generation of some feed and held
 * by no node's current log at the end of the run.
 */
export const goneWithWipedDisks = (feeds: ReadonlyArray<Pick<Feed, "generations" | "ids">>): ReadonlySet<string> => {
  const held = new Set(feeds.flatMap((feed) => [...feed.ids()]))
  const gone = new Set<string>()
  for (const feed of feeds) {
    for (const wiped of feed.generations.slice(0, -1)) {
      for (const entry of wiped.values()) if (!held.has(Oracle.idOf(entry.change))) gone.add(Oracle.idOf(entry.change))
    }
  }
  return gone
}

/**
 * Reads a node's whole log once, from position 1, until no entry arrived for `quietMs` (the
 * stream has no end: it turns into a live feed after the last stored entry) once it holds at
 * least `atLeast` entries (what the node's feed already delivered: a stream that is slow to
 * start on a busy machine, a channel still connecting to a node started again just before,
 * delivered nothing within `quietMs` and the log read as empty). Used for the final state, after
 * the run is over and nothing writes any more. Fails when positions have a gap.
 */
export const readLog = (client: ApiClient.ApiClient, quietMs: number, timeoutMs: number, atLeast = 0): Promise<ReadonlyArray<Store.LogEntry>> =>
  new Promise((resolve, reject) => {
    const entries: Array<Store.LogEntry> = []
    let timer: ReturnType<typeof setTimeout> | undefined
    const deadline = setTimeout(() => finish(new Error(`the log did not finish streaming within ${timeoutMs} ms`)), timeoutMs)
    const finish = (error?: Error) => {
      clearTimeout(deadline)
      if (timer !== undefined) clearTimeout(timer)
      watching.cancel()
      if (error !== undefined) return reject(error)
      const gap = entries.findIndex((entry, index) => entry.position !== index + 1)
      if (gap >= 0) return reject(new Error(`the log skips from position ${gap} to ${entries[gap]!.position}`))
      resolve(entries)
    }
    const quiet = () => {
      if (timer !== undefined) clearTimeout(timer)
      if (entries.length >= atLeast) timer = setTimeout(() => finish(), quietMs)
    }
    const watching = client.watch(1, (entry) => {
      entries.push(entry)
      quiet()
    })
    watching.done.then(
      () => undefined,
      (error: Error) => finish(error)
    )
    quiet()
  })
