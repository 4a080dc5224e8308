/**
 * What `chaos swarm` prints of one seed (`seedLines`): the verdict line, and under a failed
 * seed the run's notes, so a failure that ran outside the judged assumptions says so at once.
 */
import { describe, expect, it } from "vitest"
import { seedLines } from "../../src/cli/chaos.js"

const sources = "the nodes ran from the sources through tsx (dist/ is missing or older than the sources; `npm run build`): each start took seconds longer than a built one"
const writes = { attempted: 361, acknowledged: 73, failed: 288, unknown: 0, notSent: 0 }

describe("chaos swarm's line per seed", () => {
  it("a failed seed names its checkers and prints the run's notes under its line", () => {
    const lines = seedLines(98000313, { passed: false, violations: [{ checker: "failover", message: "no write was accepted by another region after the primary was lost", details: {} }], writes, faults: [], notes: [sources] }, "chaos-primary-pause")
    expect(lines).toEqual([`seed 98000313: FAILED (failover), 73/361 acknowledged, 0 faults; chaos-primary-pause`, `  note: ${sources}`])
  })

  it("a passed seed is one line, notes or not", () => {
    expect(seedLines(7, { passed: true, violations: [], writes, faults: [], notes: [sources] }, "drawn")).toEqual(["seed 7: passed, 73/361 acknowledged, 0 faults; drawn"])
  })
})
