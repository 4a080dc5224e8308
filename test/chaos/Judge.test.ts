/**
 * The `epochs` check on real processes, through the judge's own adapters (`Judge.history`,
 * `Judge.judge`): a real client knows the epoch each node says it took a write in
 * (`WriteResponse.epoch`) and when it sent the write and got the answer, not when the node
 * committed it. So a write taken in an older epoch is a split brain when it was sent after
 * another region acknowledged one in a newer epoch, and is not judged one when it was sent
 * before (its answer may simply have come back late); an epoch with writes from two regions is
 * one whatever the times.
 */
import { describe, expect, it } from "vitest"
import * as Judge from "../../src/chaos/Judge.js"
import type * as Workload from "../../src/chaos/Workload.js"
import { Either } from "effect"
import { topologyFor } from "../../src/sim/Scenario.js"
import * as Fixtures from "../sim/fixtures/scenarios.js"

const scenario = Fixtures.parse(`
name: chaos-epochs
budget_ms: 20000
topology:
  strategy: PrimaryReplica
  regions: [{ id: a, priority: 1, primary: true }, { id: b, priority: 2 }]
replication: { conflict_resolution: LastWriteWins }
workload: { start_ms: 100, duration_ms: 3000, rate_per_sec: 2, vaults: [acme] }
checks: [epochs]
`)

const tuple = { vault: "acme", resource: "document:d", relation: "viewer", subject: "user:x" }

const op = (id: number, region: string, epoch: number, invokedAtMs: number, endedAtMs: number): Workload.Op => ({
  id,
  atMs: invokedAtMs,
  region,
  node: `${region}-node1`,
  operations: [{ op: "insert", tuple }],
  target: `${region}-node1`,
  status: "acknowledged",
  invokedAtMs,
  sentAtMs: invokedAtMs,
  endedAtMs,
  reason: undefined,
  revision: id,
  position: id,
  epoch,
  generation: 0
})

const judged = (ops: ReadonlyArray<Workload.Op>) =>
  Judge.judge({
    scenario,
    topology: Either.getOrThrow(topologyFor(scenario, "a")),
    rules: { strategy: "LastWriteWins", regionPriorities: [] },
    regions: [],
    stored: [],
    served: new Map(),
    history: Judge.history(ops, (node) => node.replace("-node1", ""), () => [], []),
    converged: true,
    healedAtMs: 3_000,
    epochMs: 0,
    lostWithDisk: new Set(),
    unobserved: []
  }).violations

describe("the epochs check on real processes", () => {
  it("a write sent after another region acknowledged one in a newer epoch, and taken in an older one, is a split brain", () => {
    const violations = judged([op(1, "a", 0, 100, 110), op(2, "b", 1, 1_000, 1_020), op(3, "a", 0, 1_030, 1_040)])
    expect(violations).toEqual([expect.objectContaining({ checker: "epochs", message: expect.stringMatching(/^1 write\(s\) were accepted by a region in an epoch after a newer epoch had begun elsewhere/) })])
  })

  it("one sent before that acknowledgement is not judged, however late its answer came", () => {
    expect(judged([op(1, "a", 0, 100, 110), op(2, "b", 1, 1_000, 1_020), op(3, "a", 0, 990, 1_500)])).toEqual([])
  })

  it("an epoch with writes from two regions is one whatever the times", () => {
    expect(judged([op(1, "a", 1, 100, 110), op(2, "b", 1, 1_000, 1_020)])).toEqual([expect.objectContaining({ checker: "epochs", message: "epoch 1: a and b each accepted writes" })])
  })

  it("epochs is judged on real processes; failover is not", () => {
    expect(Judge.notJudged.epochs).toBeUndefined()
    expect(Judge.notJudged.failover).toMatch(/epoch history/)
  })
})
