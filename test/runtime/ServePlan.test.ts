/**
 * What `serve` says at start-up about its plan (`Serve.describePlan`): the settings it runs
 * with, and notes on combinations that work but an operator should know of.
 */
import { describe, expect, it } from "vitest"
import { Either } from "effect"
import * as Config from "../../src/runtime/config/Config.js"
import * as Serve from "../../src/runtime/Serve.js"

const section = (agent: Record<string, unknown>, grpc: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
  replication: {
    ...extra,
    enabled: true,
    strategy: "ActiveActive",
    local_region: "us-west-1",
    node_id: "node1",
    agent,
    grpc,
    regions: [
      { id: "us-west-1", name: "US West", zones: [{ id: "us-west-1a", nodes: [{ id: "node1", endpoint: "127.0.0.1:50051" }] }] },
      { id: "eu-central-1", name: "EU Central", zones: [{ id: "eu-central-1a", nodes: [{ id: "node2", endpoint: "127.0.0.1:50052" }] }] }
    ]
  }
})

const linesOf = (agent: Record<string, unknown>, grpc: Record<string, unknown>, extra: Record<string, unknown> = {}): ReadonlyArray<string> => {
  const config = Either.getOrThrow(Config.fromObject(section(agent, grpc, extra), {}))
  return Serve.describePlan(Either.getOrThrow(Serve.plan(config, { store: "memory" }, { seed: 1, version: "test" })))
}

describe("serve's start-up lines", () => {
  it("a window of batches wider than the per-endpoint request bound is noted with both keys; the defaults and a window within the bound are not", () => {
    const note = (lines: ReadonlyArray<string>) => lines.filter((line) => line.includes("batches_in_flight_max"))
    expect(note(linesOf({ batches_in_flight_max: 16 }, { max_in_flight_per_target: 2 }))).toEqual([
      "note: agent.batches_in_flight_max is 16 but grpc.max_in_flight_per_target is 2: the agent keeps at most 2 batches in flight per target"
    ])
    expect(note(linesOf({}, {}))).toEqual([])
    expect(note(linesOf({ batches_in_flight_max: 8 }, {}))).toEqual([])
  })

  it("a source-priority rank of a region the topology does not declare is noted by name; ranks of declared regions only are not", () => {
    const note = (lines: ReadonlyArray<string>) => lines.filter((line) => line.includes("region_priorities"))
    const ranked = (regionPriorities: ReadonlyArray<string>) => linesOf({}, {}, { conflict_resolution: "SourcePriority", region_priorities: regionPriorities })
    expect(note(ranked(["us-east-1", "us-west-1", "eu-central-1"]))).toEqual([
      "note: region_priorities also ranks 'us-east-1', which the topology does not declare (kept for changes from a removed region)"
    ])
    expect(note(ranked(["us-west-1", "eu-central-1"]))).toEqual([])
  })
})
