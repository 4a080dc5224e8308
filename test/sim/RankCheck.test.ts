/**
 * The `configure` fault and the start-up check of SourcePriority's ranks (`Ranks`), in the
 * simulator: a node restarted with a removed region's rank dropped from its file refuses to
 * start, as `serve` does (exit 2), at every restart until its file has the rank back; then it
 * starts and the run passes. `Canary.test.ts` shows the simulator finds the bug without the check.
 */
import { describe, expect, it } from "vitest"
import { runScenario } from "../../src/sim/Run.js"
import * as Scenario from "../../src/sim/Scenario.js"
import * as Fixtures from "./fixtures/scenarios.js"

describe("a removed region's rank dropped from a node's file", () => {
  it("the node refuses to start until the rank is back, then serves, and the run passes (rank-dropped, seed 1)", () => {
    const scenario = Fixtures.load("scenarios/rank-dropped.yaml")
    const result = runScenario(scenario, 1)
    expect(result.violations).toEqual([])
    const node = result.nodes["us-west-1-node1"]!
    // Refused at 4 s (its restart), started at 5 s, once its file had the rank back.
    expect(node.exits).toEqual([
      "incarnation 2 failed at 4000 ms: replication.region_priorities: expected a rank for every region whose changes this node's store holds, and 'ap-southeast-1' has none; a region removed from the topology keeps its rank, in the same place on every node"
    ])
    expect(node.incarnations).toBe(3)
  })

  it("a crash fault after a refusal keeps the node down until the schedule restarts it: the start its supervisor had due is off", () => {
    const base = Fixtures.load("scenarios/rank-dropped.yaml")
    // Refused at 4 s; crashed at 4.5 s, before its supervisor's start at 5 s; restarted at 7 s.
    const faults = [...base.faults, { atMs: 4_500, kind: "crash" as const, target: "us-west-1-node1" }, { atMs: 7_000, kind: "restart" as const, target: "us-west-1-node1" }].sort((a, b) => a.atMs - b.atMs)
    const result = runScenario({ ...base, faults }, 1)
    expect(result.violations).toEqual([])
    const node = result.nodes["us-west-1-node1"]!
    expect(node.restarts.map((restart) => restart.atMs)).toEqual([4_000, 7_000])
    expect(node.incarnations).toBe(3)
  })

  it("a configure fault's ranks must be the scenario's in its order, less regions removed before it, under SourcePriority", () => {
    const base = Fixtures.load("scenarios/rank-dropped.yaml")
    const at = (atMs: number, regionPriorities: ReadonlyArray<string>) => ({ ...base, faults: [...base.faults, { atMs, kind: "configure" as const, target: "us-west-1-node2", regionPriorities }] })
    const problems = (scenario: Scenario.Scenario) => Scenario.validate(scenario).filter((problem) => problem.includes("region_priorities"))
    expect(problems(at(3000, ["eu-central-1", "us-west-1"]))).toEqual([])
    expect(problems(at(2000, ["eu-central-1", "us-west-1"]))).toEqual([`faults[7].region_priorities: expected replication.region_priorities in its order, less regions a topology fault removed before 2000 ms`])
    expect(problems(at(3000, ["us-west-1", "eu-central-1"]))).toHaveLength(1)
    expect(problems(at(3000, ["ap-southeast-1", "eu-central-1", "us-west-1", "us-east-1"]))).toHaveLength(1)
    const lww = { ...at(3000, ["eu-central-1", "us-west-1"]), replication: { ...base.replication, conflictResolution: "LastWriteWins" as const } }
    expect(Scenario.validate(lww)).toContain("faults[7]: configure sets region_priorities, which only SourcePriority has")
  })

  it("is written and read back by the file format", () => {
    const scenario = Fixtures.load("scenarios/rank-dropped.yaml")
    const again = Scenario.decode(Scenario.encode(scenario))
    expect(again._tag).toBe("Right")
    if (again._tag === "Right") expect(again.right.faults.filter((fault) => fault.kind === "configure")).toEqual(scenario.faults.filter((fault) => fault.kind === "configure"))
  })
})
