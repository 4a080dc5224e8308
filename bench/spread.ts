/** p50, p99 and max of latencies in ms, to 0.01 ms: how `bench:store` and `bench:repl`'s disk floor report a spread. */
export interface Spread {
  readonly p50Ms: number
  readonly p99Ms: number
  readonly maxMs: number
}

/** The spread of `values` (ms); NaN for none. */
export const spread = (values: ReadonlyArray<number>): Spread => {
  const sorted = [...values].sort((a, b) => a - b)
  const at = (q: number) => Number((sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? Number.NaN).toFixed(2))
  return { p50Ms: at(0.5), p99Ms: at(0.99), maxMs: at(1) }
}
