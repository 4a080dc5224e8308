/**
 * Shrinking fault schedules: a schedule and its episodes are two forms of one thing; fast-check
 * can shrink a schedule it did not generate; shrinking removes, shortens and moves faults; and
 * a canary's failing schedule shrinks to a smaller one that still fails and replays from its
 * written file.
 */
import { Either } from "effect"
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { runScenario } from "../../src/sim/Run.js"
import * as Scenario from "../../src/sim/Scenario.js"
import * as Shrink from "../../src/sim/Shrink.js"
import * as Fixtures from "./fixtures/scenarios.js"

/** A schedule in a canonical order: by time, then by its text (faults at one instant commute here). */
const canonical = (faults: ReadonlyArray<Scenario.Fault>): ReadonlyArray<string> =>
  faults
    .map((fault) => ({ ...fault, ...("groups" in fault ? { groups: fault.groups.map((group) => [...group].sort()) } : {}) }))
    .map((fault) => JSON.stringify(fault))
    .sort((a, b) => (JSON.parse(a) as Scenario.Fault).atMs - (JSON.parse(b) as Scenario.Fault).atMs || (a < b ? -1 : 1))

const base = Fixtures.parse(`
name: shrink-base
budget_ms: 30000
topology:
  strategy: ActiveActive
  regions: [{ id: a }, { id: b, nodes: 2 }, { id: c }]
workload: { start_ms: 500, duration_ms: 4000, rate_per_sec: 4 }
`)

describe("Shrink", () => {
  it("every shipped scenario's schedule has an episode form that maps back to the same faults", () => {
    for (const file of Fixtures.files()) {
      const scenario = Fixtures.load(file)
      const space = Shrink.spaceOf(scenario)
      expect(canonical(Shrink.toFaults(Shrink.toEpisodes(scenario.faults, space), space)), file).toEqual(canonical(scenario.faults))
      expect(Shrink.scheduleArbitrary(scenario).canShrinkWithoutContext(scenario.faults), file).toBe(true)
    }
  })

  it("generated schedules name only declared regions and nodes, and survive the file format", () => {
    const arbitrary = Shrink.scheduleArbitrary(base)
    fc.assert(
      fc.property(arbitrary, (faults) => {
        const scenario = { ...base, faults }
        expect(Scenario.validate(scenario)).toEqual([])
        expect(Either.getOrThrow(Scenario.decode(Scenario.encode(scenario))).faults).toEqual([...faults].sort((x, y) => x.atMs - y.atMs))
      }),
      { seed: 42, numRuns: 100 }
    )
  })

  it("a schedule shrinks to the one episode that matters, as short and as early as still fails", () => {
    // Fails whenever region b is crashed for at least 700 ms at some point: a stand-in for a
    // simulation, so the shrinker itself is seen at work without running one.
    const fails = (faults: ReadonlyArray<Scenario.Fault>) =>
      faults.some((crash) => crash.kind === "crash" && crash.target === "b" && faults.some((end) => end.kind === "restart" && end.target === "b" && end.atMs - crash.atMs >= 700 && end.atMs > crash.atMs))
    const faults: ReadonlyArray<Scenario.Fault> = [
      { atMs: 800, kind: "isolate", region: "a" },
      { atMs: 1_200, kind: "clock_jump", target: "c", deltaMs: -900 },
      { atMs: 1_500, kind: "heal" },
      { atMs: 2_000, kind: "crash", target: "b" },
      { atMs: 2_200, kind: "store", region: "c", slowMs: { min: 5, max: 50 }, failRate: 0.1 },
      { atMs: 3_000, kind: "pause", target: "a" },
      { atMs: 3_500, kind: "resume", target: "a" },
      { atMs: 4_400, kind: "restart", target: "b" },
      { atMs: 4_600, kind: "store", region: "c", slowMs: { min: 0, max: 0 }, failRate: 0 }
    ]
    const found = Shrink.minimize({ ...base, faults }, fails, { seed: 1, runsMax: 1_000 })
    expect(found?.faults).toEqual([
      { atMs: 0, kind: "crash", target: "b" },
      { atMs: 700, kind: "restart", target: "b" }
    ])
  })

  it("with search, a failing schedule is drawn from the seed and then shrunk", () => {
    const fails = (faults: ReadonlyArray<Scenario.Fault>) => faults.some((fault) => fault.kind === "isolate" && fault.region === "c")
    const found = Shrink.minimize(base, fails, { seed: 7, search: 200, runsMax: 1_000 })
    expect(found?.faults[0]).toEqual({ atMs: 0, kind: "isolate", region: "c" })
    expect(found?.faults.length).toBeLessThanOrEqual(2)
    expect(Shrink.minimize(base, fails, { seed: 7, search: 200, runsMax: 1_000 })).toEqual(found)
  })

  it("a canary's failing schedule shrinks to a smaller one that fails the same checker and replays from its file", () => {
    const story = Fixtures.load("scenarios/ring-partitions.yaml")
    const scenario: Scenario.Scenario = { ...story, workload: { ...story.workload, durationMs: 4_000 } }
    const shrunk = Shrink.shrink(scenario, 2, { run: { canary: "keep-local" }, runsMax: 12 })
    expect(shrunk).toBeDefined()
    const { minimal, checkers, episodes } = shrunk!
    expect(checkers).toContain("safety")
    expect(episodes.to).toBeLessThan(episodes.from)
    expect(minimal.result.violations.map((violation) => violation.checker)).toContain("safety")
    const replayed = runScenario(Either.getOrThrow(Scenario.decode(Scenario.encode(minimal.scenario))), 2, { canary: "keep-local" })
    expect(replayed.traceHash).toBe(minimal.result.traceHash)
    expect(replayed.violations).toEqual(minimal.result.violations)
  })

  it("restart delays are left out of the shrunk scenario when it fails the same way without them, and said to be needed otherwise", () => {
    const story = Fixtures.load("scenarios/ring-partitions.yaml")
    const scenario: Scenario.Scenario = { ...story, workload: { ...story.workload, durationMs: 4_000 }, startup: { spreadMs: 0, restartMs: { min: 300, max: 3_500 } } }
    // The keep-local canary breaks safety whatever the processes' start-up takes.
    const shrunk = Shrink.shrink(scenario, 2, { run: { canary: "keep-local" }, runsMax: 6 })
    expect(shrunk?.restartDelays).toBe("dropped")
    expect(shrunk?.minimal.scenario.startup).toEqual({ spreadMs: 0 })
    expect(shrunk?.minimal.result.violations.map((violation) => violation.checker)).toContain("safety")
    // Without delays there is nothing to say.
    expect(Shrink.shrink({ ...scenario, startup: { spreadMs: 0 } }, 2, { run: { canary: "keep-local" }, runsMax: 6 })?.restartDelays).toBeUndefined()
    // A failure that takes a slow start keeps the delays.
    const needed = Shrink.withoutRestartDelays(scenario, (candidate) => candidate.startup?.restartMs !== undefined)
    expect(needed?.restartDelays).toBe("needed")
    expect(needed?.scenario.startup?.restartMs).toEqual({ min: 300, max: 3_500 })
  })

  it("a run that passes has nothing to shrink", () => {
    const story = Fixtures.load("scenarios/two-region-partition.yaml")
    expect(Shrink.shrink({ ...story, workload: { ...story.workload, durationMs: 2_000 } }, 1, { runsMax: 3 })).toBeUndefined()
  })
})
