/**
 * What `bench:compare` compares: each benchmark's headline figures, found in its JSON by path,
 * and how one figure's runs on two sides compare (medians, pairs won). Apart from the command
 * (`compare.ts`) so that tests can hold it.
 */

/** A figure compared: a path into the bench's JSON (`*` matches any key), and which way is better. */
export interface Figure {
  readonly path: string
  readonly better: "higher" | "lower"
}

/** The headline figures of each benchmark. */
export const figures: Readonly<Record<string, ReadonlyArray<Figure>>> = {
  repl: [
    { path: "throughput.changesPerSecond", better: "higher" },
    { path: "drain.changesPerSecond", better: "higher" },
    { path: "lag.p50Ms", better: "lower" },
    { path: "lag.p99Ms", better: "lower" },
    { path: "lagAtOtherRates.*.p99Ms", better: "lower" },
    { path: "peakRssMb.*", better: "lower" },
    { path: "changesPerCpuSecond.*", better: "higher" },
    { path: "bootstrap.changesPerSecond", better: "higher" }
  ],
  store: [
    { path: "write.runs.*.changesPerSecond", better: "higher" },
    { path: "write.runs.*.cpuMicrosPerChange", better: "lower" },
    { path: "apply.runs.*.changesPerSecond", better: "higher" },
    { path: "apply.runs.*.cpuMicrosPerChange", better: "lower" },
    { path: "loneWrite.write.p50Ms", better: "lower" },
    { path: "codec.microsPerChange.*", better: "lower" }
  ],
  sim: [
    { path: "timeCompression", better: "higher" },
    { path: "eventsPerSec", better: "higher" },
    { path: "eventsPerCpuSec", better: "higher" },
    { path: "seedsPerMinute", better: "higher" },
    { path: "sustainedSwarm.seedsPerMinute", better: "higher" }
  ]
}

/** Every number at `pattern` in `value`, by its concrete path. */
export const numbersAt = (value: unknown, pattern: ReadonlyArray<string>, prefix = ""): Array<readonly [string, number]> => {
  if (pattern.length === 0) return typeof value === "number" && Number.isFinite(value) ? [[prefix, value]] : []
  if (value === null || typeof value !== "object") return []
  const [head, ...rest] = pattern
  const keys = head === "*" ? Object.keys(value) : [head!]
  return keys.flatMap((key) => numbersAt((value as Record<string, unknown>)[key], rest, prefix === "" ? key : `${prefix}.${key}`))
}

export const median = (values: ReadonlyArray<number>): number => {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2
}

/** The comparison of one concrete figure over the pairs. */
export const compared = (name: string, better: Figure["better"], base: ReadonlyArray<number>, current: ReadonlyArray<number>) => {
  const wins = base.filter((value, index) => (better === "higher" ? current[index]! > value : current[index]! < value)).length
  const baseMedian = median(base)
  const currentMedian = median(current)
  return { figure: name, better, base, current, baseMedian, currentMedian, change: baseMedian === 0 ? null : Number((currentMedian / baseMedian - 1).toFixed(4)), currentBetterInPairs: wins, pairs: base.length }
}

/** The load average (1 minute) a bench's JSON says it started at, wherever that bench keeps it. */
export const loadOf = (result: Record<string, unknown>): number | undefined =>
  numbersAt(result, ["machine", "loadAverage", "start", "0"])[0]?.[1] ?? numbersAt(result, ["loadAverage", "before", "0"])[0]?.[1]

/**
 * Every concrete figure that `wanted` names in the runs, compared pair by pair (`base[i]` with
 * `current[i]`). A figure some run lacks (a phase skipped or failed) is left out rather than
 * compared on fewer pairs.
 */
export const compareRuns = (wanted: ReadonlyArray<Figure>, base: ReadonlyArray<Record<string, unknown>>, current: ReadonlyArray<Record<string, unknown>>) =>
  wanted.flatMap(({ path: pattern, better }) => {
    const names = new Set([...base, ...current].flatMap((result) => numbersAt(result, pattern.split(".")).map(([name]) => name)))
    return [...names].flatMap((name) => {
      const valuesOf = (runs: ReadonlyArray<Record<string, unknown>>) => runs.map((result) => numbersAt(result, name.split("."))[0]?.[1])
      const ofBase = valuesOf(base)
      const ofCurrent = valuesOf(current)
      if (ofBase.some((value) => value === undefined) || ofCurrent.some((value) => value === undefined)) return []
      return [compared(name, better, ofBase as Array<number>, ofCurrent as Array<number>)]
    })
  })
