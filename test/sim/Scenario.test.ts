/**
 * Scenario files decode into plain data with defaults filled in, and every problem is
 * reported with its key path.
 */
import { Either } from "effect"
import { describe, expect, it } from "vitest"
import * as Scenario from "../../src/sim/Scenario.js"
import * as Fixtures from "./fixtures/scenarios.js"

const minimal = `
name: tiny
budget_ms: 1000
topology:
  strategy: ActiveActive
  regions:
    - { id: a }
    - { id: b, nodes: 2 }
`

const problems = (text: string): ReadonlyArray<string> =>
  Either.match(Scenario.decode(text, "test.yaml"), { onLeft: (error) => error.problems, onRight: () => [] })

describe("Scenario.decode", () => {
  it("a minimal file decodes with defaults: full mesh, one node per region unless counted, no faults", () => {
    const scenario = Fixtures.parse(minimal)
    expect(scenario.topology.regions.map((region) => region.nodes)).toEqual([["a-node1"], ["b-node1", "b-node2"]])
    expect(scenario.topology.targets).toBeUndefined()
    expect(scenario.faults).toEqual([])
    expect(scenario.replication.clock).toBe("hlc")
    expect(scenario.checks).toEqual(["safety", "liveness", "convergence", "acknowledged", "residency", "unique_ids", "timestamps", "progress"])
  })

  it("faults come out sorted by time as plain data", () => {
    const scenario = Fixtures.parse(`${minimal}faults:\n  - { at_ms: 500, kind: heal }\n  - { at_ms: 100, kind: isolate, region: a }\n  - { at_ms: 200, kind: store, region: b, slow_ms: [1, 5], fail_rate: 0.5 }\n`)
    expect(scenario.faults).toEqual([
      { atMs: 100, kind: "isolate", region: "a" },
      { atMs: 200, kind: "store", region: "b", slowMs: { min: 1, max: 5 }, failRate: 0.5 },
      { atMs: 500, kind: "heal" }
    ])
  })

  it("an unknown key is an error naming its path", () => {
    expect(problems(`${minimal}workload:\n  rate: 5\n`).join("\n")).toMatch(/workload\.rate/)
  })

  it("a value of the wrong type is an error naming its path", () => {
    expect(problems(minimal.replace("budget_ms: 1000", "budget_ms: soon")).join("\n")).toMatch(/budget_ms/)
  })

  it("a fault naming an unknown region or node is an error naming the fault", () => {
    const found = problems(`${minimal}faults:\n  - { at_ms: 1, kind: isolate, region: nowhere }\n  - { at_ms: 2, kind: crash, target: ghost }\n`)
    expect(found).toContain("faults[0].region: unknown region 'nowhere'")
    expect(found).toContain("faults[1].target: 'ghost' is neither a region nor a node")
  })

  it("a topology that breaks an invariant is reported under topology", () => {
    expect(problems(minimal.replace("strategy: ActiveActive", "strategy: PrimaryReplica")).join("\n")).toMatch(/^topology: /m)
  })

  it("SourcePriority without a priority for every region is an error, not priority zero", () => {
    expect(problems(`${minimal}replication:\n  conflict_resolution: SourcePriority\n  region_priorities: [a]\n`)).toContain(
      "replication.region_priorities: SourcePriority needs a priority for every region; missing 'b'"
    )
  })

  it("check settings decode and encode back", () => {
    const scenario = Fixtures.parse(`${minimal}check_settings: { min_availability: 0.9, max_clock_offset_ms: 250 }\n`)
    expect(scenario.checkSettings).toEqual({ minAvailability: 0.9, maxClockOffsetMs: 250 })
    expect(Fixtures.parse(Scenario.encode(scenario))).toEqual(scenario)
    expect(problems(`${minimal}check_settings: { min_availability: 2 }\n`).join("\n")).toMatch(/check_settings\.min_availability/)
  })

  it("every shipped scenario decodes", () => {
    for (const file of Fixtures.files()) expect(() => Fixtures.load(file)).not.toThrow()
  })

  it("a scenario written with encode decodes back to the same scenario", () => {
    for (const file of Fixtures.files()) {
      const scenario = Fixtures.load(file)
      expect(Fixtures.parse(Scenario.encode(scenario)), file).toEqual(scenario)
    }
  })
})
