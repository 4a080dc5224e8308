/**
 * The issues' targets as the benches judge them: each bound on its side (at least, at most,
 * strictly under), the lag targets found by the rate offered wherever the phase sits, and a
 * figure measured otherwise than the issue asks (a phase skipped, incomplete, or run with other
 * settings) reported as not measured rather than met.
 */
import { describe, expect, it } from "vitest"
import * as Targets from "../../bench/targets.js"

/** A `bench:repl` result trimmed to what the targets read. */
const repl = (overrides: Record<string, unknown> = {}) => ({
  changesPerWrite: 100,
  throughput: { complete: true, changesPerSecond: 60_000 },
  lag: { complete: true, offeredChangesPerSecond: 5_000, p99Ms: 8 },
  lagAtOtherRates: [{ complete: true, offeredChangesPerSecond: 1_000, p99Ms: 5 }],
  drain: { complete: true, changes: 200_000, changesPerSecond: 100_000 },
  peakRssMb: { "us-west-1": 300, "eu-central-1": 230 },
  ...overrides
})

const metOf = (verdicts: ReadonlyArray<Targets.Verdict>) => verdicts.map((verdict) => [verdict.figure, verdict.met])

describe("bench targets", () => {
  it("bench:repl: every issue 11 bound holds at its edge, and fails one step beyond it", () => {
    expect(metOf(Targets.replVerdicts(repl()))).toEqual([
      ["throughput.changesPerSecond", true],
      ["lag.p99Ms", true],
      ["lagAtOtherRates.0.p99Ms", true],
      ["peakRssMb.us-west-1", true],
      ["peakRssMb.eu-central-1", true],
      ["drain.changesPerSecond", true]
    ])
    const beyond = repl({
      throughput: { complete: true, changesPerSecond: 49_999 },
      lag: { complete: true, offeredChangesPerSecond: 5_000, p99Ms: 11 },
      lagAtOtherRates: [{ complete: true, offeredChangesPerSecond: 1_000, p99Ms: 6 }],
      drain: { complete: true, changes: 200_000, changesPerSecond: 99_999 },
      peakRssMb: { "us-west-1": 301, "eu-central-1": 230 }
    })
    expect(metOf(Targets.replVerdicts(beyond))).toEqual([
      ["throughput.changesPerSecond", false],
      ["lag.p99Ms", false],
      ["lagAtOtherRates.0.p99Ms", false],
      ["peakRssMb.us-west-1", false],
      ["peakRssMb.eu-central-1", true],
      ["drain.changesPerSecond", false]
    ])
    expect(Targets.summary(Targets.replVerdicts(beyond), 1.5)).toMatchObject({ met: "1 of 6", loadAtStart: 1.5 })
  })

  it("bench:repl: lag phases are found by the rate offered, and what was not measured as the issue asks is never met", () => {
    const otherRates = repl({
      lag: { complete: true, offeredChangesPerSecond: 1_000, p99Ms: 4 },
      lagAtOtherRates: [{ complete: true, offeredChangesPerSecond: 2_000, p99Ms: 3 }]
    })
    const verdicts = Targets.replVerdicts(otherRates)
    expect(verdicts.find((verdict) => verdict.target.includes("1,000"))).toMatchObject({ figure: "lag.p99Ms", value: 4, met: true })
    expect(verdicts.find((verdict) => verdict.target.includes("5,000"))).toMatchObject({ figure: "the lag phase at 5000/s", met: undefined })

    const elsewise = Targets.replVerdicts(
      repl({ changesPerWrite: 10, drain: { complete: true, changes: 50_000, changesPerSecond: 500_000 }, lag: { complete: false, offeredChangesPerSecond: 5_000, p99Ms: 1 }, peakRssMb: undefined })
    )
    expect(metOf(elsewise)).toEqual([
      ["throughput.changesPerSecond", undefined],
      ["lag.p99Ms", undefined],
      ["lagAtOtherRates.0.p99Ms", true],
      ["peakRssMb", undefined],
      ["drain.changesPerSecond", undefined]
    ])
    expect(elsewise[0]!.why).toBe("written 10 changes at a time")
    expect(elsewise[1]!.why).toBe("the phase did not complete")
    expect(elsewise[4]!.why).toBe("a backlog of 50000 changes")
    expect(Targets.summary(elsewise, undefined)).toMatchObject({ met: "1 of 5", loadAtStart: null })
  })

  it("bench:sim: issue 10's bounds, the sustained swarm before the short one, and every shipped scenario's run under a second", () => {
    const sim = (overrides: Record<string, unknown> = {}) => ({
      cores: 2,
      timeCompression: 300,
      eventsPerSec: 50_000,
      swarm: [
        { jobs: 1, seedsPerMinute: 9_000 },
        { jobs: 2, seedsPerMinute: 3_000 }
      ],
      startUp: {
        helpWallMs: 499,
        simRuns: [
          { scenario: "a.yaml", wallMs: 400, exit: 0 },
          { scenario: "b.yaml", wallMs: 999, exit: 0 }
        ]
      },
      ...overrides
    })
    expect(metOf(Targets.simVerdicts(sim()))).toEqual([
      ["timeCompression", true],
      ["eventsPerSec", true],
      ["swarm (one job per core).seedsPerMinute", true],
      ["startUp.helpWallMs", true],
      ["startUp.simRuns (b.yaml)", true]
    ])
    const slower = sim({
      timeCompression: 130.4,
      eventsPerSec: 18_188,
      sustainedSwarm: { jobs: 2, seedsPerMinute: 940.9 },
      startUp: {
        helpWallMs: 500,
        simRuns: [
          { scenario: "a.yaml", wallMs: 1_590, exit: 0 },
          { scenario: "b.yaml", wallMs: 1_000, exit: 0 }
        ]
      }
    })
    const verdicts = Targets.simVerdicts(slower)
    expect(metOf(verdicts)).toEqual([
      ["timeCompression", false],
      ["eventsPerSec", false],
      ["sustainedSwarm.seedsPerMinute", false],
      ["startUp.helpWallMs", false],
      ["startUp.simRuns (a.yaml)", false]
    ])
    expect(verdicts[4]!.value).toBe(1_590)
    const failing = Targets.simVerdicts(sim({ startUp: { helpWallMs: 80, simRuns: [{ scenario: "c.yaml", wallMs: 300, exit: 1 }] } }))
    expect(failing[4]).toMatchObject({ figure: "startUp.simRuns (c.yaml)", met: undefined, why: "exited 1" })
    expect(metOf(Targets.simVerdicts({ cores: 2 })).map(([, met]) => met)).toEqual([undefined, undefined, undefined, undefined, undefined])
  })
})
