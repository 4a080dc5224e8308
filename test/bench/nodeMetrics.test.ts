/**
 * The bench's reading of /metrics histograms: series summed over labels, a phase as the
 * difference of two readings, and quantiles interpolated within buckets as Prometheus'
 * `histogram_quantile` does.
 */
import { describe, expect, it } from "vitest"
import * as NodeMetrics from "../../bench/nodeMetrics.js"

const exposition = [
  "# HELP nodejs_gc_duration_seconds Garbage collection duration by kind.",
  "# TYPE nodejs_gc_duration_seconds histogram",
  'nodejs_gc_duration_seconds_bucket{le="0.001",kind="minor"} 2',
  'nodejs_gc_duration_seconds_bucket{le="0.01",kind="minor"} 9',
  'nodejs_gc_duration_seconds_bucket{le="0.1",kind="minor"} 10',
  'nodejs_gc_duration_seconds_bucket{le="+Inf",kind="minor"} 10',
  'nodejs_gc_duration_seconds_sum{kind="minor"} 0.05',
  'nodejs_gc_duration_seconds_count{kind="minor"} 10',
  'nodejs_gc_duration_seconds_bucket{le="0.001",kind="major"} 0',
  'nodejs_gc_duration_seconds_bucket{le="0.01",kind="major"} 0',
  'nodejs_gc_duration_seconds_bucket{le="0.1",kind="major"} 2',
  'nodejs_gc_duration_seconds_bucket{le="+Inf",kind="major"} 2',
  'nodejs_gc_duration_seconds_sum{kind="major"} 0.03',
  'nodejs_gc_duration_seconds_count{kind="major"} 2',
  'inferadb_engine_store_commit_duration_seconds_bucket{le="0.001"} 0',
  'inferadb_engine_store_commit_duration_seconds_bucket{le="0.002"} 50',
  'inferadb_engine_store_commit_duration_seconds_bucket{le="0.005"} 99',
  'inferadb_engine_store_commit_duration_seconds_bucket{le="+Inf"} 100',
  "inferadb_engine_store_commit_duration_seconds_sum 0.2",
  "inferadb_engine_store_commit_duration_seconds_count 100",
  "# TYPE inferadb_engine_idle_gc_total counter",
  "inferadb_engine_idle_gc_total 7"
].join("\n")

describe("bench nodeMetrics", () => {
  it("sums a histogram's series over their labels", () => {
    const gc = NodeMetrics.parseHistogram(exposition, "nodejs_gc_duration_seconds")
    expect(gc).toEqual({ buckets: [[0.001, 2], [0.01, 9], [0.1, 12], [Number.POSITIVE_INFINITY, 12]], sum: 0.08, count: 12 })
    expect(NodeMetrics.countAbove(gc, 0.01)).toBe(3)
  })

  it("interpolates a quantile within the bucket that holds its rank, and stops at the last finite bound", () => {
    const commits = NodeMetrics.parseHistogram(exposition, "inferadb_engine_store_commit_duration_seconds")
    // Rank 50 is the whole of the (0.001, 0.002] bucket: its upper bound.
    expect(NodeMetrics.quantile(commits, 0.5)).toBeCloseTo(0.002, 9)
    // Rank 25 is halfway through it.
    expect(NodeMetrics.quantile(commits, 0.25)).toBeCloseTo(0.0015, 9)
    // Rank 99 is the last of the 49 in (0.002, 0.005].
    expect(NodeMetrics.quantile(commits, 0.99)).toBeCloseTo(0.005, 9)
    // Rank 100 is past every finite bound: only that bound is known.
    expect(NodeMetrics.quantile(commits, 1)).toBe(0.005)
    expect(NodeMetrics.quantile({ buckets: [], sum: 0, count: 0 }, 0.5)).toBeNaN()
  })

  it("a phase is the difference of two readings; a restarted process counts from nothing", () => {
    const before = NodeMetrics.parseHistogram(exposition, "inferadb_engine_store_commit_duration_seconds")
    const after: NodeMetrics.Histogram = { buckets: before.buckets.map(([bound, count]) => [bound, count + 10] as const), sum: before.sum + 0.05, count: before.count + 10 }
    const phase = NodeMetrics.difference(after, before)
    expect(phase.count).toBe(10)
    expect(phase.sum).toBeCloseTo(0.05, 9)
    // Ten more in the first bucket (and so in every cumulative one).
    expect(phase.buckets.map(([, count]) => count)).toEqual([10, 10, 10, 10])
    expect(NodeMetrics.difference(before)).toEqual(before)
  })

  it("summarises a phase's store commits and GC pauses", () => {
    const reading = {
      commitSeconds: NodeMetrics.parseHistogram(exposition, "inferadb_engine_store_commit_duration_seconds"),
      transactionsPerCommit: { buckets: [[1, 60], [2, 100], [Number.POSITIVE_INFINITY, 100]] as const, sum: 140, count: 100 },
      durableWaitSeconds: NodeMetrics.parseHistogram(exposition, "inferadb_engine_store_commit_duration_seconds"),
      gcSeconds: NodeMetrics.parseHistogram(exposition, "nodejs_gc_duration_seconds"),
      majorGcSeconds: NodeMetrics.parseHistogram(exposition, "nodejs_gc_duration_seconds", 'kind="major"'),
      idleCollections: NodeMetrics.parseCounter(exposition, "inferadb_engine_idle_gc_total"),
      roundTripSeconds: { buckets: [], sum: 0, count: 0 }
    }
    expect(reading.majorGcSeconds).toEqual({ buckets: [[0.001, 0], [0.01, 0], [0.1, 2], [Number.POSITIVE_INFINITY, 2]], sum: 0.03, count: 2 })
    expect(NodeMetrics.parseCounter(exposition, "inferadb_engine_no_such_total")).toBe(0)
    const summary = NodeMetrics.phase(reading)
    expect(summary.store.commits).toBe(100)
    expect(summary.store.transactionsPerCommit).toBe(1.4)
    expect(summary.store.commit).toEqual({ meanMs: 2, p50Ms: 2, p99Ms: 5 })
    expect(summary.gcPauses).toEqual({ count: 12, totalMs: 80, over10Ms: 3, major: 2, idleCollections: 7 })
    const later = { ...reading, idleCollections: 10 }
    expect(NodeMetrics.phase(later, reading).gcPauses).toMatchObject({ count: 0, major: 0, idleCollections: 3 })
  })
})
