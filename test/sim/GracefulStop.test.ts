/**
 * Graceful stops in the simulator (a `crash` fault with `graceful: true`), as SIGTERM stops
 * `serve`: the API is withdrawn at once, requests in flight finish, the production drain
 * (`Drain`) runs, the node exits; and the `drained` check holds a completed drain to its promise.
 */
import { Either } from "effect"
import { describe, expect, it } from "vitest"
import * as Drain from "../../src/replication/Drain.js"
import * as Faults from "../../src/sim/Faults.js"
import * as Oracle from "../../src/sim/Oracle.js"
import { runScenario, simulate } from "../../src/sim/Run.js"
import * as Scenario from "../../src/sim/Scenario.js"
import * as Fixtures from "./fixtures/scenarios.js"

const file = "scenarios/graceful-stop-wipe.yaml"

describe("graceful stops", () => {
  it("nodes stopped gracefully and wiped lose nothing they acknowledged; a drain towards a cut-off region times out (graceful-stop-wipe, seeds 1-3)", () => {
    const scenario = Fixtures.load(file)
    for (let seed = 1; seed <= 3; seed++) {
      const sim = simulate(scenario, seed, { wallClock: Fixtures.wallClock })
      const { result } = sim
      expect(result.violations, `seed ${seed}`).toEqual([])
      expect(result.drains.map((drain) => [drain.node, drain.askedAtMs, drain.complete]), `seed ${seed}`).toEqual([
        ["us-west-1-node2", 1_000, true],
        ["eu-central-1-node1", 7_000, true],
        ["eu-central-1-node2", 15_000, true],
        ["us-west-1-node1", 21_500, false]
      ])
      // The one towards ap-southeast-1 (cut off from 21 s) waited its whole timeout, and names the target behind.
      const timedOut = result.drains[3]!
      expect(timedOut.drainedAtMs - timedOut.askedAtMs, `seed ${seed}`).toBeGreaterThanOrEqual(5_000)
      expect(timedOut.behind.map((behind) => behind.target), `seed ${seed}`).toEqual(["ap-southeast-1"])
      // What the three drained nodes acknowledged was on other disks before their wipes: none of it went with them.
      const drainedNodes = new Set(result.drains.filter((drain) => drain.complete).map((drain) => drain.node))
      const lost = new Set(result.lostWithDisk)
      const theirs = sim.history.writes.filter((write) => write.outcome === "acknowledged" && drainedNodes.has(write.targetNode ?? ""))
      expect(theirs.length, `seed ${seed}`).toBeGreaterThan(50)
      expect(theirs.flatMap((write) => write.changes).filter((change) => lost.has(Oracle.idOf(change))), `seed ${seed}`).toEqual([])
    }
  })

  it("a stopping node takes no new write from the moment it is asked to stop, and lets the writes in flight finish", () => {
    const sim = simulate(Fixtures.load(file), 1, { wallClock: Fixtures.wallClock })
    for (const drain of sim.result.drains) {
      const admitted = sim.history.writes.filter((write) => write.targetNode === drain.node && write.admittedAtMs !== undefined && write.admittedAtMs > drain.askedAtMs && write.admittedAtMs <= drain.drainedAtMs)
      expect(admitted, drain.node).toEqual([])
    }
    // A kill interrupts the writes in flight; a graceful stop does not.
    expect(sim.result.writes.interrupted).toBe(0)
    expect(sim.result.writes.acknowledged).toBeGreaterThan(500)
  })

  it("a restart asked for while the node still drains starts it once it has exited", () => {
    const base = Fixtures.load(file)
    const scenario: Scenario.Scenario = {
      ...base,
      faults: [
        { atMs: 2_000, kind: "isolate", region: "ap-southeast-1" },
        { atMs: 3_000, kind: "crash", target: "us-west-1-node1", graceful: true },
        { atMs: 4_000, kind: "restart", target: "us-west-1-node1" },
        { atMs: 12_000, kind: "heal" }
      ]
    }
    const result = runScenario(scenario, 1, { wallClock: Fixtures.wallClock })
    expect(result.violations).toEqual([])
    expect(result.drains.map((drain) => [drain.node, drain.complete, drain.drainedAtMs - drain.askedAtMs >= 5_000])).toEqual([["us-west-1-node1", false, true]])
    expect(result.nodes["us-west-1-node1"]?.incarnations).toBe(2)
  })

  it("the final heal resumes a node stopped gracefully while paused before it asks it to start again (swarm seed 100)", () => {
    // Paused, the node never ran its drain: asked only to start once it exited, it exited when
    // it was killed 30 s after the signal, past the seed's budget.
    const calls: Array<string> = []
    const node = {
      id: "us-west-1-node1",
      up: true,
      paused: true,
      stopping: true,
      resume: () => void calls.push("resume"),
      start: () => void calls.push("start")
    }
    const targets = {
      network: { partitioned: false, heal: () => undefined },
      nodes: new Map([[node.id, node]]),
      stores: new Map()
    } as unknown as Faults.Targets
    expect(Faults.healAll(targets)).toBe("heal all: us-west-1-node1 resumed, us-west-1-node1 restarted")
    expect(calls).toEqual(["resume", "start"])
    // The seed itself is in `Swarm.test.ts`'s list.
  })

  /**
   * eu-central-1-node2 starts first and its first discovery round finds only itself; DNS fails
   * before its sibling starts, so it takes writes knowing no sibling (acme may live in
   * eu-central-1 only, so there is no target region either). It is stopped gracefully during the
   * outage. Before December 6, 2026 its drain reported at once that every target had its log
   * (swarm seed 62000390): 30-odd acknowledged writes on its disk alone.
   */
  const dnsOutageDrain = (healAtMs: number) =>
    Fixtures.parse(`
name: drain-during-dns-outage
budget_ms: 20000
topology:
  strategy: MultiMaster
  regions:
    - { id: us-west-1, priority: 1, nodes: [ us-west-1-node1 ] }
    - { id: eu-central-1, priority: 2, nodes: [ eu-central-1-node1, eu-central-1-node2 ] }
  vaults:
    - { id: acme, home: eu-central-1, allowed: [ eu-central-1 ] }
store: per_node
replication:
  conflict_resolution: LastWriteWins
  heartbeat: { interval_ms: 250, timeout_ms: 1000 }
network:
  latency: { normal: { mean: 60, stddev: 10, min: 5 } }
  local: { latency: { uniform: [ 0.2, 1 ] } }
workload: { start_ms: 800, duration_ms: 1800, rate_per_sec: 20, regions: [ eu-central-1 ], vaults: [ acme ] }
startup: { at_ms: { eu-central-1-node2: 0, eu-central-1-node1: 500, us-west-1-node1: 0 } }
discovery: { interval_ms: 3000, first_round_wait_ms: 100 }
faults:
  - { at_ms: 300, kind: dns_outage }
  - { at_ms: 3000, kind: crash, target: eu-central-1-node2, graceful: true }
  - { at_ms: ${healAtMs}, kind: heal }
checks: [ safety, convergence, acknowledged, drained, residency ]
`)

  it("a node that knows no sibling because every discovery round failed does not report its drain complete: it drains once DNS answers again", () => {
    const sim = simulate(dnsOutageDrain(5_000), 1, { wallClock: Fixtures.wallClock })
    const { result } = sim
    expect(result.violations).toEqual([])
    const stopped = sim.history.writes.filter((write) => write.outcome === "acknowledged" && write.targetNode === "eu-central-1-node2")
    expect(stopped.length).toBeGreaterThan(10)
    // Complete only after the heal at 5 s, once a round found eu-central-1-node1 and it acknowledged the log.
    expect(result.drains.map((drain) => [drain.node, drain.complete, drain.targetsUnknown])).toEqual([["eu-central-1-node2", true, false]])
    expect(result.drains[0]!.drainedAtMs).toBeGreaterThan(5_000)
  })

  it("a drain whose discovery rounds all fail times out, and says the siblings are unknown", () => {
    const sim = simulate(dnsOutageDrain(12_000), 1, { wallClock: Fixtures.wallClock })
    const { result } = sim
    expect(result.violations).toEqual([])
    expect(result.drains.map((drain) => [drain.node, drain.complete, drain.targetsUnknown, drain.drainedAtMs - drain.askedAtMs >= 5_000])).toEqual([["eu-central-1-node2", false, true, true]])
    expect(Drain.describe({ complete: false, logEnd: 40, behind: [], targetsUnknown: true }, 5_000)).toBe(
      "drain timed out after 5000 ms: no discovery round worked, so the siblings to drain to are unknown"
    )
  })

  it("a graceful crash round-trips through its file", () => {
    const scenario = Fixtures.load(file)
    const encoded = Scenario.encode(scenario)
    expect(encoded).toContain("graceful: true")
    expect(Scenario.decode(encoded, "encoded")).toEqual(Either.right(scenario))
  })
})
