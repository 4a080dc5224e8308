/**
 * How far this node's wall clock stands from its peers', estimated from heartbeat round trips
 * (Cristian's method: a peer's reading taken somewhere between our send and our receipt), and
 * whether it is off by more than the bound the HLC assumes (`max_offset_ms`, as CockroachDB's
 * max offset). A node off by more than the bound from more than half of the peers it measured
 * recently marks itself degraded: its timestamps are clamped by every receiver and lose
 * last-writer-wins races they should win (or win ones they should lose). With one peer the two
 * cannot tell whose clock is wrong, and both say so.
 */

/** One peer's offset estimate: `offsetMs` is the peer's clock minus ours, within ± `uncertaintyMs`. */
export interface Sample {
  readonly offsetMs: number
  readonly uncertaintyMs: number
  /** When it was taken, on the monotonic clock. */
  readonly atMs: number
}

/** The offset estimate from one round trip: sent and received on our wall clock, `peerMs` on the peer's. */
export const estimate = (sentMs: number, peerMs: number, receivedMs: number, atMs: number): Sample => {
  const roundTripMs = Math.max(0, receivedMs - sentMs)
  return { offsetMs: peerMs - (sentMs + roundTripMs / 2), uncertaintyMs: roundTripMs / 2, atMs }
}

/** What `/healthz` says of the clock. */
export interface Status {
  readonly degraded: boolean
  /** Peers measured within the freshness window, and how many of them are surely beyond the bound. */
  readonly peers: number
  readonly beyond: number
  /** The median offset of the fresh samples (peers minus us), 0 with none. */
  readonly medianOffsetMs: number
  readonly maxOffsetMs: number
}

/** The clock status from the latest sample per peer; samples older than `freshMs` are ignored. */
export const status = (samples: ReadonlyMap<string, Sample>, nowMs: number, maxOffsetMs: number, freshMs: number): Status => {
  const fresh = [...samples.values()].filter((sample) => nowMs - sample.atMs <= freshMs)
  // Surely beyond: even the most favourable reading of the round trip leaves it past the bound.
  const beyond = fresh.filter((sample) => Math.abs(sample.offsetMs) - sample.uncertaintyMs > maxOffsetMs).length
  const sorted = fresh.map((sample) => sample.offsetMs).sort((a, b) => a - b)
  const medianOffsetMs = sorted.length === 0 ? 0 : sorted[Math.floor(sorted.length / 2)]!
  return { degraded: fresh.length > 0 && beyond * 2 > fresh.length, peers: fresh.length, beyond, medianOffsetMs: Math.round(medianOffsetMs), maxOffsetMs }
}
