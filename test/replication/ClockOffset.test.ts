/**
 * A node's clock against its peers': offset estimates from heartbeat round trips, the
 * degraded status past `max_offset_ms`, and the `/healthz` reason it gives.
 */
import { describe, expect, it } from "@effect/vitest"
import * as ClockOffset from "../../src/replication/ClockOffset.js"
import * as Health from "../../src/replication/Health.js"

const sample = (offsetMs: number, uncertaintyMs = 10, atMs = 1_000): ClockOffset.Sample => ({ offsetMs, uncertaintyMs, atMs })

describe("ClockOffset", () => {
  it("estimates a peer's offset from the middle of the round trip, within half the round trip", () => {
    // Sent at 1,000 and answered at 1,100 on our clock; the peer read 1,650: it is ~600 ms ahead.
    expect(ClockOffset.estimate(1_000, 1_650, 1_100, 7)).toEqual({ offsetMs: 600, uncertaintyMs: 50, atMs: 7 })
  })

  it("is degraded only when more than half of the fresh peers are surely beyond the bound", () => {
    const status = (samples: ReadonlyArray<ClockOffset.Sample>) => ClockOffset.status(new Map(samples.map((s, i) => [`p${i}`, s])), 2_000, 500, 3_000)
    expect(status([sample(-900), sample(-950), sample(20)])).toMatchObject({ degraded: true, peers: 3, beyond: 2, medianOffsetMs: -900 })
    expect(status([sample(-900), sample(10), sample(20)])).toMatchObject({ degraded: false, beyond: 1 })
    // 505 ± 10 may be within 500: not surely beyond.
    expect(status([sample(505), sample(505)]).degraded).toBe(false)
    // With one peer, neither side can tell whose clock is wrong: both say so.
    expect(status([sample(2_000)]).degraded).toBe(true)
    expect(status([]).degraded).toBe(false)
  })

  it("ignores estimates older than the freshness window", () => {
    const samples = new Map([["p0", sample(5_000, 10, 0)], ["p1", sample(5_000, 10, 9_000)]])
    expect(ClockOffset.status(samples, 10_000, 500, 3_000)).toMatchObject({ peers: 1, degraded: true })
    expect(ClockOffset.status(samples, 20_000, 500, 3_000)).toMatchObject({ peers: 0, degraded: false })
  })

  it("a clock off by more than the bound makes /healthz degraded, with the reason", () => {
    const feed = { published: 1, subscribers: 1, dropped: 0 }
    const agent = { targets: [] } as never
    const clock = ClockOffset.status(new Map([["p0", sample(-3_600_000)], ["p1", sample(-3_600_010)]]), 1_000, 500, 3_000)
    const health = Health.compute({ enabled: true, feed, agent, thresholds: { maxRetries: 3, lagMsMax: 5_000 }, clock })
    expect(health.status).toBe("degraded")
    expect(health.reason).toContain("clock off by more than max_offset_ms 500 ms from 2 of 2 peers")
    expect(Health.compute({ enabled: true, feed, agent, thresholds: { maxRetries: 3, lagMsMax: 5_000 } }).status).toBe("healthy")
  })
})
