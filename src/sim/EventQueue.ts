/**
 * The simulator's one timed-event queue: a binary min-heap ordered by (time, sequence), so
 * events due at the same virtual instant fire in the order they were scheduled. Cancelling
 * is O(1): the event is marked and skipped when it reaches the top; the heap is compacted when
 * cancelled events make up more than half of it, so long runs with many cancelled timeouts do
 * not grow it without bound.
 */

/** One timed event. `run` is called when virtual time reaches `timeMs`. */
export interface Event {
  readonly timeMs: number
  readonly sequence: number
  /** Short category for the trace, e.g. `timer`, `deliver`, `fault`. */
  readonly kind: string
  /** The node (or `world`) the event belongs to. */
  readonly node: string
  /** Canonical details folded into the trace hash. */
  readonly detail: string
  readonly run: () => void
  cancelled: boolean
  /** What its Effect operations are charged to when they are counted by cause (`Effort.byCause`); the kind when absent. Not in the trace. */
  readonly cause?: string
}

const before = (left: Event, right: Event): boolean =>
  left.timeMs < right.timeMs || (left.timeMs === right.timeMs && left.sequence < right.sequence)

/** A min-heap of events by (timeMs, sequence). */
export class EventQueue {
  private heap: Array<Event> = []
  private cancelledCount = 0

  /** Live (not cancelled) events queued. */
  get size(): number {
    return this.heap.length - this.cancelledCount
  }

  push(event: Event): void {
    const heap = this.heap
    heap.push(event)
    // Sifted up by moving parents down into the hole, the event written once at its place: a
    // destructuring swap allocated an array per step (about 2% of a swarm's allocations).
    let index = heap.length - 1
    while (index > 0) {
      const parent = (index - 1) >> 1
      const above = heap[parent]!
      if (!before(event, above)) break
      heap[index] = above
      index = parent
    }
    heap[index] = event
  }

  /** Marks an event cancelled; it will never be returned by `pop`. */
  cancel(event: Event): void {
    if (event.cancelled) return
    event.cancelled = true
    this.cancelledCount++
    if (this.cancelledCount > 1024 && this.cancelledCount * 2 > this.heap.length) this.compact()
  }

  /** The earliest live event without removing it. */
  peek(): Event | undefined {
    this.dropCancelledTop()
    return this.heap[0]
  }

  /** Removes and returns the earliest live event. */
  pop(): Event | undefined {
    this.dropCancelledTop()
    return this.removeTop()
  }

  private dropCancelledTop(): void {
    while (this.heap.length > 0 && this.heap[0]!.cancelled) {
      this.removeTop()
      this.cancelledCount--
    }
  }

  private removeTop(): Event | undefined {
    const heap = this.heap
    const top = heap[0]
    const last = heap.pop()
    if (top === undefined || last === undefined || heap.length === 0) return top
    // Sifted down the same way: children move up into the hole, `last` is written once.
    let index = 0
    const length = heap.length
    while (true) {
      const left = 2 * index + 1
      const right = left + 1
      let smallest = left < length && before(heap[left]!, last) ? left : -1
      if (right < length && before(heap[right]!, smallest === -1 ? last : heap[left]!)) smallest = right
      if (smallest === -1) break
      heap[index] = heap[smallest]!
      index = smallest
    }
    heap[index] = last
    return top
  }

  /** Rebuilds the heap without cancelled events (O(n)). */
  private compact(): void {
    const live = this.heap.filter((event) => !event.cancelled)
    this.heap = []
    this.cancelledCount = 0
    live.sort((left, right) => (before(left, right) ? -1 : 1))
    // A sorted array is a valid min-heap.
    this.heap = live
  }
}
