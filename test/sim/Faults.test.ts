/**
 * When a lasting fault ends (`Faults.enderOf`, `Faults.endOf`): the failover expectations
 * (`Swarm.checksFor`) and the reports read a crash or a pause as lasting until a fault that starts
 * or resumes one of its nodes again, whether either names a region or a node.
 */
import { describe, expect, it } from "vitest"
import * as Faults from "../../src/sim/Faults.js"
import type { Fault } from "../../src/sim/Scenario.js"
import * as Fixtures from "./fixtures/scenarios.js"

const scenario = Fixtures.parse(`
name: ends
budget_ms: 20000
topology:
  strategy: ActiveActive
  regions:
    - { id: a, nodes: [a1, a2] }
    - { id: b }
    - { id: c }
`)

const healedAtMs = 20_000
const endsOf = (faults: ReadonlyArray<Fault>, over = scenario) => faults.map((_, index) => Faults.endOf(over, faults, index, healedAtMs))

describe("Faults.endOf", () => {
  it("a resume of the region ends a pause of its node, and a resume of the node ends a pause of its one-node region (seed 93001148 over chaos-primary-pause.yaml)", () => {
    const faults: ReadonlyArray<Fault> = [
      { atMs: 1_000, kind: "pause", target: "b" },
      { atMs: 2_000, kind: "pause", target: "b-node1" },
      { atMs: 3_000, kind: "resume", target: "b" },
      { atMs: 9_000, kind: "resume", target: "b-node1" }
    ]
    expect(endsOf(faults).slice(0, 2)).toEqual([3_000, 3_000])
    const reversed: ReadonlyArray<Fault> = [
      { atMs: 1_000, kind: "pause", target: "b" },
      { atMs: 3_000, kind: "resume", target: "b-node1" }
    ]
    expect(endsOf(reversed)[0]).toBe(3_000)
  })

  it("a wipe of the region starts its crashed node again (seed 93001319 over chaos-primary-pause.yaml), and a restart of one node ends the crash of its whole region", () => {
    const faults: ReadonlyArray<Fault> = [
      { atMs: 1_000, kind: "crash", target: "b-node1" },
      { atMs: 2_000, kind: "wipe", target: "b" },
      { atMs: 8_000, kind: "restart", target: "b-node1" }
    ]
    expect(endsOf(faults)[0]).toBe(2_000)
    expect(Faults.enderOf(scenario, faults, 0)).toBe(1)
    const region: ReadonlyArray<Fault> = [
      { atMs: 1_000, kind: "crash", target: "a" },
      { atMs: 4_000, kind: "restart", target: "a2" }
    ]
    expect(endsOf(region)[0]).toBe(4_000)
  })

  it("a start of another node ends nothing, except a wipe under a shared store, which restarts the whole region", () => {
    const faults: ReadonlyArray<Fault> = [
      { atMs: 1_000, kind: "crash", target: "a1" },
      { atMs: 2_000, kind: "restart", target: "a2" },
      { atMs: 3_000, kind: "wipe", target: "a2" },
      { atMs: 3_000, kind: "resume", target: "a1" }
    ]
    expect(endsOf(faults)[0]).toBe(healedAtMs)
    expect(Faults.enderOf(scenario, faults, 0)).toBe(-1)
    expect(endsOf(faults, { ...scenario, store: "shared" })[0]).toBe(3_000)
  })

  it("a partition or DNS outage lasts until the next heal, and a fault that does not last ends where it happens", () => {
    const faults: ReadonlyArray<Fault> = [
      { atMs: 1_000, kind: "isolate", region: "b" },
      { atMs: 1_500, kind: "dns_outage" },
      { atMs: 2_000, kind: "clock_jump", target: "c", deltaMs: 50 },
      { atMs: 5_000, kind: "heal" },
      { atMs: 6_000, kind: "one_way", from: "a", to: "c" }
    ]
    expect(endsOf(faults)).toEqual([5_000, 5_000, 2_000, 5_000, healedAtMs])
  })
})
