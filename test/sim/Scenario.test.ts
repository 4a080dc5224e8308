/**
 * Scenario files decode into plain data with defaults filled in, and every problem is
 * reported with its key path.
 */
import { Either } from "effect"
import { describe, expect, it } from "vitest"
import * as Scenario from "../../src/sim/Scenario.js"
import * as TopologyFaults from "../../src/sim/TopologyFaults.js"
import * as Nodes from "../../src/chaos/Nodes.js"
import * as YAML from "yaml"
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
    expect(scenario.checks).toEqual(["safety", "liveness", "convergence", "acknowledged", "drained", "residency", "unique_ids", "store_integrity", "timestamps", "progress"])
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

  it("heartbeat settings of some regions or nodes override the others', a node's over its region's, and name their key when the target is unknown", () => {
    const scenario = Fixtures.parse(`${minimal}replication:\n  heartbeat: { interval_ms: 250, timeout_ms: 2500 }\n  heartbeat_overrides:\n    a: { timeout_ms: 8000 }\n    b-node1: { interval_ms: 500 }\n`)
    expect(Scenario.heartbeatOf(scenario.replication, "a", "a-node1")).toMatchObject({ intervalMs: 250, timeoutMs: 8_000 })
    expect(Scenario.heartbeatOf(scenario.replication, "b", "b-node1")).toMatchObject({ intervalMs: 500, timeoutMs: 2_500 })
    expect(Scenario.slowestHeartbeat(scenario.replication)).toMatchObject({ intervalMs: 500, timeoutMs: 8_000 })
    expect(Fixtures.parse(Scenario.encode(scenario))).toEqual(scenario)
    const found = problems(`${minimal}replication:\n  heartbeat_overrides:\n    ghost: { timeout_ms: 8000 }\n`)
    expect(found).toContain("replication.heartbeat_overrides.ghost: 'ghost' is neither a region nor a node")
  })

  it("the agent's window and catch-up batch size and the per-endpoint request bound are read, written back, and given to real nodes as serve's keys", () => {
    const scenario = Fixtures.parse(`${minimal}replication:\n  agent: { batch_size: 10, batches_in_flight_max: 16, catch_up_batch_size: 200 }\nnetwork:\n  in_flight_per_target_max: 2\n`)
    expect(scenario.replication.agent).toMatchObject({ batchSize: 10, batchesInFlightMax: 16, catchUpBatchSize: 200 })
    expect(scenario.network.inFlightPerTargetMax).toBe(2)
    expect(Fixtures.parse(Scenario.encode(scenario))).toEqual(scenario)
    // Left out, they stay unset: the engine's defaults apply, as in serve.
    const defaults = Fixtures.parse(minimal)
    expect([defaults.replication.agent.batchesInFlightMax, defaults.replication.agent.catchUpBatchSize, defaults.network.inFlightPerTargetMax]).toEqual([undefined, undefined, undefined])
    const node = { nodeId: "a-node1", regionId: "a", namespace: "ns", address: "10.0.0.2" }
    const network = { tag: "t", bridge: "br", hostAddress: "10.0.0.1", nodes: [node, { ...node, nodeId: "b-node1", regionId: "b", address: "10.0.0.3" }, { ...node, nodeId: "b-node2", regionId: "b", address: "10.0.0.4" }] }
    const config = YAML.parse(Nodes.configYaml(scenario, network, node, false))
    expect(config.replication.agent).toMatchObject({ batch_size: 10, batches_in_flight_max: 16, catch_up_batch_size: 200 })
    expect(config.replication.grpc.max_in_flight_per_target).toBe(2)
  })

  it("the message bound is read, written back, refused below serve's minimum, and given to real nodes as grpc.max_message_bytes", () => {
    const scenario = Fixtures.parse(`${minimal}network:\n  message_bytes_max: 2048\n`)
    expect(scenario.network.messageBytesMax).toBe(2_048)
    expect(Fixtures.parse(Scenario.encode(scenario))).toEqual(scenario)
    expect(Fixtures.parse(minimal).network.messageBytesMax).toBeUndefined()
    expect(problems(`${minimal}network:\n  message_bytes_max: 512\n`).join("\n")).toMatch(/message_bytes_max/)
    const node = { nodeId: "a-node1", regionId: "a", namespace: "ns", address: "10.0.0.2" }
    const network = { tag: "t", bridge: "br", hostAddress: "10.0.0.1", nodes: [node, { ...node, nodeId: "b-node1", regionId: "b", address: "10.0.0.3" }, { ...node, nodeId: "b-node2", regionId: "b", address: "10.0.0.4" }] }
    expect(YAML.parse(Nodes.configYaml(scenario, network, node, false)).replication.grpc.max_message_bytes).toBe(2_048)
    expect(YAML.parse(Nodes.configYaml(Fixtures.parse(minimal), network, node, false)).replication.grpc.max_message_bytes).toBeUndefined()
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

  it("network.down_refuses decodes, encodes back, defaults to unset (the network's default share) and must be a probability", () => {
    const scenario = Fixtures.parse(`${minimal}network:\n  down_refuses: 0.25\n`)
    expect(scenario.network.downRefuses).toBe(0.25)
    expect(Fixtures.parse(Scenario.encode(scenario))).toEqual(scenario)
    expect(Fixtures.parse(minimal).network.downRefuses).toBeUndefined()
    expect(problems(`${minimal}network:\n  down_refuses: 1.5\n`).join("\n")).toMatch(/network\.down_refuses/)
  })

  it("a topology fault decodes into a graph change and encodes back", () => {
    const scenario = Fixtures.parse(
      `${minimal}faults:\n  - { at_ms: 100, kind: topology, change: remove_target, from: a, to: b }\n  - { at_ms: 200, kind: topology, change: add_target, from: a, to: b }\n  - { at_ms: 300, kind: topology, change: remove_region, region: b }\n  - { at_ms: 400, kind: topology, change: add_region, region: b }\n`
    )
    expect(scenario.faults).toEqual([
      { atMs: 100, kind: "topology", change: { op: "remove_target", from: "a", to: "b" } },
      { atMs: 200, kind: "topology", change: { op: "add_target", from: "a", to: "b" } },
      { atMs: 300, kind: "topology", change: { op: "remove_region", region: "b" } },
      { atMs: 400, kind: "topology", change: { op: "add_region", region: "b" } }
    ])
    expect(Fixtures.parse(Scenario.encode(scenario))).toEqual(scenario)
  })

  it("a topology fault with the wrong keys, an unknown change or an unknown region is one clear error naming the fault", () => {
    const fault = (text: string) => problems(`${minimal}faults:\n  - ${text}\n`)
    expect(fault("{ at_ms: 1, kind: topology, change: add_target, from: a }")).toEqual(["faults[0]: add_target takes the keys from and to (regions), not region"])
    expect(fault("{ at_ms: 1, kind: topology, change: remove_region, from: a, to: b }")).toEqual(["faults[0]: remove_region takes the key region, not from or to"])
    expect(fault("{ at_ms: 1, kind: topology, change: swap, from: a, to: b }")).toEqual([
      'faults[0].change: expected "add_target" | "remove_target" | "add_region" | "remove_region", got "swap"'
    ])
    expect(fault("{ at_ms: 1, kind: topology, change: remove_target, from: a, to: nowhere }")).toEqual(["faults[0].to: unknown region 'nowhere'"])
    expect(fault("{ at_ms: 1, kind: topology, change: add_target, from: a, to: a }")).toEqual(["faults[0].to: a region cannot replicate to itself"])
  })

  it("a topology change that does not fit the graph at its time is an error naming the fault and the time", () => {
    const found = problems(
      `${minimal}faults:\n  - { at_ms: 5, kind: topology, change: add_target, from: a, to: b }\n  - { at_ms: 9, kind: topology, change: add_region, region: a }\n`
    )
    expect(found).toEqual(["faults[0]: at 5 ms 'a' already replicates to 'b'", "faults[1]: at 9 ms region 'a' is not removed, so it cannot be added"])
  })

  it("a schedule may end with a region removed (a decommission), but not with a graph that is not strongly connected: convergence could not be expected", () => {
    const three = minimal.replace("    - { id: b, nodes: 2 }\n", "    - { id: b, nodes: 2 }\n    - { id: c }\n")
    const decommission = `${three}faults:\n  - { at_ms: 1, kind: topology, change: remove_region, region: b }\n`
    expect(problems(decommission)).toEqual([])
    const scenario = Fixtures.parse(decommission)
    expect(TopologyFaults.removedAtEnd(scenario.topology, scenario.faults)).toEqual(new Set(["b"]))
    // A ring that loses a region leaves its predecessor without a way on.
    const ring = `${three}  targets: { a: [b], b: [c], c: [a] }\n`
    expect(problems(`${ring}faults:\n  - { at_ms: 1, kind: topology, change: remove_region, region: b }\n`)).toEqual([
      "faults: after the last topology change region 'a' replicates to no region, so its writes would never leave it"
    ])
    expect(problems(`${minimal}faults:\n  - { at_ms: 1, kind: topology, change: remove_target, from: a, to: b }\n`)).toEqual([
      "faults: after the last topology change region 'a' replicates to no region, so its writes would never leave it"
    ])
  })

  it("a region the strategy cannot lose is refused: any region under PrimaryReplica, a vault's home under MultiMaster", () => {
    const primary = minimal.replace("strategy: ActiveActive", "strategy: PrimaryReplica").replace("{ id: a }", "{ id: a, primary: true }")
    expect(problems(`${primary}faults:\n  - { at_ms: 1, kind: topology, change: remove_region, region: b }\n  - { at_ms: 2, kind: topology, change: add_region, region: b }\n`)).toContain(
      "faults[0].change: a PrimaryReplica scenario cannot remove a region (its write lease counts the regions it started with)"
    )
    const homed = minimal.replace("strategy: ActiveActive", "strategy: MultiMaster").concat("  vaults:\n    - { id: acme, home: b }\n")
    expect(problems(`${homed}faults:\n  - { at_ms: 1, kind: topology, change: remove_region, region: b }\n  - { at_ms: 2, kind: topology, change: add_region, region: b }\n`)).toContain(
      "faults[0].region: 'b' is the home region of vault 'acme' and cannot be removed"
    )
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
