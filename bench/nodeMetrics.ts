/**
 * What a `serve` process's /metrics says of the store's commits, of garbage-collection pauses and
 * of the agent's batch round trips, read before and after a bench phase: the difference is that phase's share. Quantiles are
 * estimated from the histogram buckets the way Prometheus' `histogram_quantile` does (linear
 * within the bucket that holds the rank), so they are as coarse as the buckets
 * (`PromMetrics.commitBuckets`; prom-client's GC buckets are 1 ms, 10 ms, 100 ms, 1 s, ...).
 */

/** Cumulative bucket counts by upper bound (ascending, +Inf last), with the sum and count. */
export interface Histogram {
  readonly buckets: ReadonlyArray<readonly [number, number]>
  readonly sum: number
  readonly count: number
}

/** One reading of a process's /metrics. */
export interface Reading {
  readonly commitSeconds: Histogram
  readonly transactionsPerCommit: Histogram
  readonly durableWaitSeconds: Histogram
  /** All kinds of pause (minor, major, incremental, weak callbacks) together. */
  readonly gcSeconds: Histogram
  /** Major (mark-compact) pauses alone. */
  readonly majorGcSeconds: Histogram
  /** Young-generation collections `IdleGc` ran while the loop was idle (`process.idle_gc`), a counter. */
  readonly idleCollections: number
  /** The agent's batch round trips (send to acknowledgement), all targets together. */
  readonly roundTripSeconds: Histogram
}

const empty: Histogram = { buckets: [], sum: 0, count: 0 }

/** Sums every series of `name` (all label sets, or those with the label `only`, such as `kind="major"`) into one histogram. */
export const parseHistogram = (text: string, name: string, only?: string): Histogram => {
  const byBound = new Map<number, number>()
  let sum = 0
  let count = 0
  for (const line of text.split("\n")) {
    if (!line.startsWith(name) || (only !== undefined && !line.includes(only))) continue
    const [series, value] = [line.slice(0, line.lastIndexOf(" ")), Number(line.slice(line.lastIndexOf(" ") + 1))]
    if (series.startsWith(`${name}_bucket{`)) {
      const le = /le="([^"]+)"/.exec(series)?.[1]
      const bound = le === "+Inf" ? Number.POSITIVE_INFINITY : Number(le)
      byBound.set(bound, (byBound.get(bound) ?? 0) + value)
    } else if (series.startsWith(`${name}_sum`)) sum += value
    else if (series.startsWith(`${name}_count`)) count += value
  }
  return { buckets: [...byBound].sort((a, b) => a[0] - b[0]), sum, count }
}

/** The sum of every series of the counter `name`; 0 when the process has none. */
export const parseCounter = (text: string, name: string): number => {
  let total = 0
  for (const line of text.split("\n")) {
    if (line.startsWith(`${name} `) || line.startsWith(`${name}{`)) total += Number(line.slice(line.lastIndexOf(" ") + 1))
  }
  return total
}

/** `after` minus `before`, bucket by bucket (a restarted process has no `before`). */
export const difference = (after: Histogram, before: Histogram = empty): Histogram => {
  const earlier = new Map(before.buckets)
  return {
    buckets: after.buckets.map(([bound, cumulative]) => [bound, cumulative - (earlier.get(bound) ?? 0)] as const),
    sum: after.sum - before.sum,
    count: after.count - before.count
  }
}

/** The value below which a fraction `q` of the observations fall, interpolated within its bucket. */
export const quantile = (histogram: Histogram, q: number): number => {
  if (histogram.count === 0) return Number.NaN
  const rank = q * histogram.count
  let lower = 0
  let below = 0
  for (const [bound, cumulative] of histogram.buckets) {
    if (cumulative >= rank) {
      // Past the last finite bound nothing is known but that bound.
      if (!Number.isFinite(bound)) return lower
      return lower + ((bound - lower) * (rank - below)) / Math.max(1, cumulative - below)
    }
    lower = bound
    below = cumulative
  }
  return lower
}

/** Observations above `bound` (which must be one of the bucket bounds). */
export const countAbove = (histogram: Histogram, bound: number): number =>
  histogram.count - (histogram.buckets.find(([le]) => le === bound)?.[1] ?? histogram.count)

/** Reads the store and GC histograms of the process serving /metrics on `httpPort`. */
export const read = async (httpPort: number): Promise<Reading> => {
  const text = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text()
  return {
    commitSeconds: parseHistogram(text, "inferadb_engine_store_commit_duration_seconds"),
    transactionsPerCommit: parseHistogram(text, "inferadb_engine_store_commit_transactions"),
    durableWaitSeconds: parseHistogram(text, "inferadb_engine_store_durable_wait_seconds"),
    gcSeconds: parseHistogram(text, "nodejs_gc_duration_seconds"),
    majorGcSeconds: parseHistogram(text, "nodejs_gc_duration_seconds", 'kind="major"'),
    idleCollections: parseCounter(text, "inferadb_engine_idle_gc_total"),
    roundTripSeconds: parseHistogram(text, "inferadb_engine_replication_duration_seconds")
  }
}

const ms = (seconds: number): number => Number((seconds * 1000).toFixed(2))

const timing = (histogram: Histogram) => ({
  meanMs: histogram.count === 0 ? Number.NaN : ms(histogram.sum / histogram.count),
  p50Ms: ms(quantile(histogram, 0.5)),
  p99Ms: ms(quantile(histogram, 0.99))
})

/**
 * A phase's store commits and GC pauses in one process: commits, transactions per commit, the
 * commit's duration and each transaction's wait for durability (mean, p50, p99), and GC pauses
 * (how many, their total, how many took over 10 ms, how many were major collections, and how
 * many of the young-generation ones `IdleGc` ran at a quiet moment).
 */
export const phase = (after: Reading, before?: Reading) => {
  const commits = difference(after.commitSeconds, before?.commitSeconds)
  const transactions = difference(after.transactionsPerCommit, before?.transactionsPerCommit)
  const gc = difference(after.gcSeconds, before?.gcSeconds)
  return {
    store: {
      commits: commits.count,
      transactionsPerCommit: commits.count === 0 ? Number.NaN : Number((transactions.sum / transactions.count).toFixed(2)),
      commit: timing(commits),
      durableWait: timing(difference(after.durableWaitSeconds, before?.durableWaitSeconds))
    },
    gcPauses: {
      count: gc.count,
      totalMs: Math.round(gc.sum * 1000),
      over10Ms: countAbove(gc, 0.01),
      major: difference(after.majorGcSeconds, before?.majorGcSeconds).count,
      idleCollections: after.idleCollections - (before?.idleCollections ?? 0)
    }
  }
}
