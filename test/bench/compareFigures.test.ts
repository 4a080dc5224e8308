/**
 * What `bench:compare` reads from two sides' runs: figures found by path (a `*` for any key),
 * medians, which side a pair favours by the figure's direction, the load each run started at,
 * and figures some run lacks left out.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import * as CompareFigures from "../../bench/compareFigures.js"

// Two runs' JSON in bench:repl's shape, trimmed to what is compared here.
const run = (endToEnd: number, p99: number, rss: Record<string, number>, load: number, drain?: number) => ({
  throughput: { changesPerSecond: endToEnd },
  ...(drain === undefined ? {} : { drain: { changesPerSecond: drain } }),
  lag: { p99Ms: p99 },
  lagAtOtherRates: [{ p99Ms: p99 + 1 }],
  peakRssMb: rss,
  machine: { loadAverage: { start: [load, 2, 3] } }
})

describe("compareFigures", () => {
  it("finds numbers by path, a * standing for every key of an object or array", () => {
    const result = run(40_000, 9, { origin: 300, target: 220 }, 1.2)
    expect(CompareFigures.numbersAt(result, ["throughput", "changesPerSecond"])).toEqual([["throughput.changesPerSecond", 40_000]])
    expect(CompareFigures.numbersAt(result, ["peakRssMb", "*"])).toEqual([
      ["peakRssMb.origin", 300],
      ["peakRssMb.target", 220]
    ])
    expect(CompareFigures.numbersAt(result, ["lagAtOtherRates", "*", "p99Ms"])).toEqual([["lagAtOtherRates.0.p99Ms", 10]])
    expect(CompareFigures.numbersAt(result, ["drain", "changesPerSecond"])).toEqual([])
    expect(CompareFigures.numbersAt({ a: "7" }, ["a"])).toEqual([])
  })

  it("medians of odd and even counts", () => {
    expect(CompareFigures.median([5, 1, 3])).toBe(3)
    expect(CompareFigures.median([4, 1, 3, 2])).toBe(2.5)
  })

  it("counts the pairs this tree won by each figure's direction, and leaves out a figure a run lacks", () => {
    const base = [run(40_000, 10, { origin: 300 }, 1.0, 70_000), run(42_000, 8, { origin: 310 }, 1.5, 72_000), run(38_000, 12, { origin: 305 }, 0.9)]
    const current = [run(45_000, 11, { origin: 290 }, 1.1, 80_000), run(41_000, 7, { origin: 312 }, 1.4, 81_000), run(44_000, 9, { origin: 295 }, 0.8, 79_000)]
    const wanted: ReadonlyArray<CompareFigures.Figure> = [
      { path: "throughput.changesPerSecond", better: "higher" },
      { path: "drain.changesPerSecond", better: "higher" },
      { path: "lag.p99Ms", better: "lower" },
      { path: "peakRssMb.*", better: "lower" }
    ]
    const compared = CompareFigures.compareRuns(wanted, base, current)
    expect(compared.map((figure) => figure.figure)).toEqual(["throughput.changesPerSecond", "lag.p99Ms", "peakRssMb.origin"])
    const [endToEnd, p99, rss] = compared
    expect(endToEnd).toMatchObject({ baseMedian: 40_000, currentMedian: 44_000, change: 0.1, currentBetterInPairs: 2, pairs: 3 })
    expect(p99).toMatchObject({ base: [10, 8, 12], current: [11, 7, 9], currentBetterInPairs: 2 })
    expect(rss).toMatchObject({ baseMedian: 305, currentMedian: 295, currentBetterInPairs: 2 })
    expect(base.map(CompareFigures.loadOf)).toEqual([1.0, 1.5, 0.9])
    expect(CompareFigures.loadOf({ loadAverage: { before: [0.7, 1, 1] } })).toBe(0.7)
  })

  it("names for each benchmark only fields its source writes", () => {
    expect(Object.keys(CompareFigures.figures).sort()).toEqual(["repl", "sim", "store"])
    for (const [bench, wanted] of Object.entries(CompareFigures.figures)) {
      const source = fs.readFileSync(path.join(import.meta.dirname, "..", "..", "bench", `${bench}.ts`), "utf8")
      for (const { path: figure } of wanted) {
        // Every named part of the path (not the wildcards, not array indices) is a field name the bench writes.
        for (const part of figure.split(".").filter((name) => name !== "*" && !/^\d+$/.test(name))) expect(source, `${bench}: ${figure}`).toMatch(new RegExp(`\\b${part}\\b`))
      }
    }
  })
})
