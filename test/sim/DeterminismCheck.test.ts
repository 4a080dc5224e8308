/**
 * The determinism self-check: two runs of one seed are compared after every event. Identical
 * runs are reported identical; a run perturbed by one extra event (a test-only option of the
 * runner) is reported at exactly that event, with both sides' details. The command line exits
 * 0 when the runs are identical.
 */
import { describe, expect, it } from "vitest"
import * as DeterminismCheck from "../../src/sim/DeterminismCheck.js"
import * as Fixtures from "./fixtures/scenarios.js"
import { cli } from "../fixtures/cli.js"

const file = "scenarios/two-region-partition.yaml"


describe("determinism self-check", () => {
  it("two runs of one seed are identical at every event", () => {
    const outcome = DeterminismCheck.check(Fixtures.load(file), 3)
    expect(outcome.identical).toBe(true)
    expect(outcome.divergence).toBeUndefined()
    expect(outcome.events.first).toBe(outcome.events.second)
    expect(outcome.events.first).toBeGreaterThan(100)
    expect(outcome.traceHash.second).toBe(outcome.traceHash.first)
  })

  it("a second run perturbed by one extra event is reported at that event, with both sides' details", () => {
    const outcome = DeterminismCheck.check(Fixtures.load(file), 3, { secondRun: { extraEvent: { atMs: 2_500, detail: "perturbation" } } })
    expect(outcome.identical).toBe(false)
    const divergence = outcome.divergence!
    expect(divergence.second).toMatchObject({ index: divergence.index, timeMs: 2_500, kind: "extra", node: "world", detail: "perturbation" })
    expect(divergence.first?.index).toBe(divergence.index)
    expect(divergence.first?.kind).not.toBe("extra")
    expect(divergence.first?.timeMs).toBeGreaterThanOrEqual(2_500)
    expect(divergence.lastCommon?.index).toBe(divergence.index - 1)
    expect(divergence.lastCommon?.timeMs).toBeLessThanOrEqual(2_500)
    expect(DeterminismCheck.describeEvent(divergence.second)).toContain(`#${divergence.index} at 2500 ms: extra world "perturbation"`)
  })

  it("the command exits 0 and says so when the runs are identical", async () => {
    const { code, stdout } = await cli(["sim", "check-determinism", file, "--seed", "3"])
    expect(code).toBe(0)
    expect(stdout).toMatch(/both runs identical: \d+ events/)
  })
})
