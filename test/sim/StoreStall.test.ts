/**
 * A store whose commits stop completing (`stall`, `scenarios/store-stall.yaml`), as one real
 * node's lmdb did in a CI run of December 6, 2026: the node's StoreWatch ends it, its supervisor
 * starts it again on the same disk, and the run loses nothing it acknowledged and converges.
 * Without the watchdog (the `no-store-watch` canary) the stalled nodes never converge.
 */
import { describe, expect, it } from "vitest"
import { runScenario } from "../../src/sim/Run.js"
import * as Fixtures from "./fixtures/scenarios.js"

const scenario = Fixtures.load("scenarios/store-stall.yaml")

describe("store stall", () => {
  it("each stalled node ends itself 15-22 s after its stall (a look every 2 s; the wiped node's process starts up to 3 s late), is started again a second later, and every disk converges with nothing acknowledged lost (seeds 1-3)", () => {
    for (let seed = 1; seed <= 3; seed++) {
      const result = runScenario(scenario, seed)
      expect(result.violations, `seed ${seed}`).toEqual([])
      expect(result.converged, `seed ${seed}`).toBe(true)
      for (const [node, stalledAtMs] of [["eu-central-1-node2", 3_000], ["us-west-1-node1", 6_100]] as const) {
        const exits = result.nodes[node]!.exits
        expect(exits, `seed ${seed} ${node}`).toHaveLength(1)
        const match = /^incarnation \d+ failed at (\d+) ms: the store has ended no transaction for (\d+) ms with \d+ pending/.exec(exits[0]!)
        expect(match, `seed ${seed} ${node}: ${exits[0]}`).not.toBeNull()
        // The wiped node's process starts serving up to 3 s after the wipe; its stall counts from its first transaction.
        const exitedAtMs = Number(match![1])
        expect(exitedAtMs - stalledAtMs, `seed ${seed} ${node}`).toBeGreaterThanOrEqual(15_000)
        expect(exitedAtMs - stalledAtMs, `seed ${seed} ${node}`).toBeLessThanOrEqual(15_000 + 2 * 2_000 + 3_000)
        expect(result.nodes[node]!.restarts.some((restart) => restart.atMs === exitedAtMs + 1_000), `seed ${seed} ${node}`).toBe(true)
      }
      // The other nodes took writes all along.
      expect(result.writes.acknowledged / result.writes.attempted, `seed ${seed}`).toBeGreaterThan(0.8)
    }
  })

  it("without the watchdog (the no-store-watch canary) the stalled nodes never converge: liveness fails", () => {
    const result = runScenario(scenario, 1, { canary: "no-store-watch" })
    expect(result.violations.map((violation) => violation.checker)).toContain("liveness")
    expect(result.nodes["eu-central-1-node2"]!.exits).toEqual([])
  })
})
