/**
 * Canaries: deliberately broken replicators that the checkers must catch within a fixed
 * number of seeds. A checker that never fails proves nothing.
 */
import { describe, expect, it } from "vitest"
import type * as Canary from "../../src/sim/canary/Canary.js"
import { runScenario } from "../../src/sim/Run.js"
import * as Fixtures from "./fixtures/scenarios.js"

const seedsMax = 4

/** The first seed (1..seedsMax) on which the canary is caught, with the checkers that caught it. */
const firstCaught = (canary: Canary.Name): { readonly seed: number; readonly checkers: ReadonlyArray<string> } | undefined => {
  const scenario = Fixtures.load("scenarios/two-region-partition.yaml")
  for (let seed = 1; seed <= seedsMax; seed++) {
    const result = runScenario(scenario, seed, { canary })
    if (result.violations.length > 0) return { seed, checkers: [...new Set(result.violations.map((violation) => violation.checker))] }
  }
  return undefined
}

describe("canaries", () => {
  it(`a resolver that keeps the local change in a conflict is caught by the safety checker within ${seedsMax} seeds`, () => {
    const caught = firstCaught("keep-local")
    expect(caught).toBeDefined()
    expect(caught?.checkers).toContain("safety")
  })

  it("nodes that resolve last-write-wins in reverse agree with each other and are still caught by the safety checker (two-region-partition, seed 1)", () => {
    const result = runScenario(Fixtures.load("scenarios/two-region-partition.yaml"), 1, { canary: "broken-winner" })
    // Every region runs the same broken rule, so the regions converge on the same wrong answers:
    // only a judge with its own rule sees it.
    expect(result.converged).toBe(true)
    expect(result.violations.map((violation) => violation.checker)).toContain("safety")
    expect(result.violations.every((violation) => violation.checker === "safety")).toBe(true)
  })

  it("a node whose clock runs an hour ahead is caught by the timestamps checker (three-region-skew-hlc, seed 1)", () => {
    const result = runScenario(Fixtures.load("scenarios/three-region-skew-hlc.yaml"), 1, { canary: "broken-clock" })
    const caught = result.violations.filter((violation) => violation.checker === "timestamps")
    expect(caught).toHaveLength(1)
    expect(caught[0]?.details["aheadMsMax"]).toBeGreaterThanOrEqual(3_600_000)
  })

  it("the same scenarios and seeds pass without the canaries", () => {
    expect(runScenario(Fixtures.load("scenarios/two-region-partition.yaml"), 1).violations).toEqual([])
    expect(runScenario(Fixtures.load("scenarios/three-region-skew-hlc.yaml"), 1).violations).toEqual([])
  })

  it(`a network that acknowledges batches without applying them is caught within ${seedsMax} seeds`, () => {
    const caught = firstCaught("ack-without-apply")
    expect(caught).toBeDefined()
    expect(caught?.checkers).toContain("liveness")
  })

  it("batch sends that die below the agent are retried, and the run still fails on the defects the nodes logged (two-region-partition, seed 1)", () => {
    const result = runScenario(Fixtures.load("scenarios/two-region-partition.yaml"), 1, { canary: "send-dies" })
    // The agent retries a send that died: the regions still converge with nothing lost.
    expect(result.converged).toBe(true)
    const checkers = [...new Set(result.violations.map((violation) => violation.checker))]
    expect(checkers).toEqual(["defects"])
    expect(result.violations[0]?.message).toMatch(/sending a batch to .* died \(a bug\)/)
  })

  it("a graceful stop's drain that reports itself complete at its first look is caught by the drained check before the wipes take what it left behind (graceful-stop-wipe, seed 1)", () => {
    const scenario = Fixtures.load("scenarios/graceful-stop-wipe.yaml")
    const result = runScenario(scenario, 1, { canary: "drain-early" })
    // The wipes that follow take what only the stopped disks held, which the acknowledged check
    // must excuse (lost with a disk): only the drain's own claim, judged when it was made, is wrong.
    expect([...new Set(result.violations.map((violation) => violation.checker))]).toEqual(["drained"])
    expect(result.violations[0]?.message).toMatch(/drain reported at .* that every target had acknowledged its log/)
    expect(runScenario(scenario, 1).violations).toEqual([])
  })

  it("heartbeat asks that die inside the fibers Network.caller sends them on are caught by the watch on every fiber, though the run converges (two-region-partition, seed 1)", () => {
    const result = runScenario(Fixtures.load("scenarios/two-region-partition.yaml"), 1, { canary: "ask-dies" })
    expect(result.converged).toBe(true)
    const checkers = [...new Set(result.violations.map((violation) => violation.checker))]
    expect(checkers).toEqual(["defects"])
    expect(result.violations[0]?.message).toMatch(/a fiber died of a defect \(a bug\)/)
  })

  it("a node that starts without checking its ranks against its store, after a removed region's rank was dropped from its file, dies applying that region's concurrent changes (rank-dropped, seeds 1-4)", () => {
    const scenario = Fixtures.load("scenarios/rank-dropped.yaml")
    for (let seed = 1; seed <= seedsMax; seed++) {
      const result = runScenario(scenario, seed, { canary: "no-rank-check" })
      expect(result.violations.map((violation) => violation.checker), `seed ${seed}`).toContain("defects")
      expect(result.violations.find((violation) => violation.checker === "defects")?.message).toMatch(/us-west-1-node1: .*handling a ReplicateBatch died with a defect/)
    }
  })

  // us-west-1's commits take 50-200 ms from 1 s; it is cut off at 2 s and crashes at 3 s while
  // clients write to it, so what it acknowledged in its last commits' time reached nobody.
  const slowCommitsThenCrash = Fixtures.parse(`
name: slow-commits-then-crash
budget_ms: 30000
topology:
  strategy: ActiveActive
  regions:
    - { id: us-west-1 }
    - { id: eu-central-1 }
replication:
  conflict_resolution: LastWriteWins
  clock: hlc
network:
  latency: { uniform: [30, 70] }
workload:
  duration_ms: 6000
  rate_per_sec: 20
  tuples: 100
faults:
  - { at_ms: 1000, kind: store, region: us-west-1, slow_ms: [50, 200] }
  - { at_ms: 2000, kind: isolate, region: us-west-1 }
  - { at_ms: 3000, kind: crash, target: us-west-1 }
  - { at_ms: 4000, kind: restart, target: us-west-1 }
  - { at_ms: 4000, kind: store, region: us-west-1 }
  - { at_ms: 5000, kind: heal }
`)

  it(`a store that acknowledges writes before their commit is durable loses them in a crash, and the acknowledged check says so though their ids were used again (seeds 1-${seedsMax})`, () => {
    for (let seed = 1; seed <= seedsMax; seed++) {
      const result = runScenario(slowCommitsThenCrash, seed, { canary: "ack-before-durable" })
      const lost = result.violations.find((violation) => violation.checker === "acknowledged")
      expect(lost?.message, `seed ${seed}`).toMatch(/^\d+ acknowledged change\(s\) are in no region's log \(\d+ of them: their id names another change there\)$/)
      // The fates count the same writes as missing, not as superseded by the changes that took their ids.
      expect(result.lostWrites.missing, `seed ${seed}`).toBe(lost?.details["missing"])
    }
    expect(runScenario(slowCommitsThenCrash, 1).violations).toEqual([])
  })

  it("values that name an origin number whose dictionary key never reached the disk fail store_integrity, read by the judges' own reader", () => {
    const scenario = Fixtures.load("scenarios/numbered-origins-failing-disks.yaml")
    const result = runScenario(scenario, 1, { canary: "origin-keys-unwritten" })
    const integrity = result.violations.find((violation) => violation.checker === "store_integrity")
    const examples = (integrity?.details["examples"] ?? []) as ReadonlyArray<{ readonly problem: string; readonly why: string }>
    expect(examples.length).toBeGreaterThan(0)
    expect(examples[0]!.problem).toBe("a stored value is not the documented layout")
    expect(examples[0]!.why).toMatch(/origin is number \d+, which no k\/ key holds/)
    expect(runScenario(scenario, 1).violations).toEqual([])
  })
})
