/**
 * Nodes that find each other through DNS at run time (`discovery:`), as the Kubernetes
 * deployment's do: each node starts knowing no node and learns them from its discovery rounds
 * (the shared `Discovery.start`, as `serve` runs it), and a `dns_outage` makes every round fail
 * until a heal.
 */
import { Effect, Either } from "effect"
import { describe, expect, it } from "vitest"
import * as Scenario from "../../src/sim/Scenario.js"
import * as SimDns from "../../src/sim/SimDns.js"
import { runScenario, simulate } from "../../src/sim/Run.js"
import * as Fixtures from "./fixtures/scenarios.js"

const file = "scenarios/two-region-discovery-wipe.yaml"

/**
 * A rolling update of a three-pod region under DNS discovery, rounds 8 s apart: each pod deleted
 * and created again gets a new address, the next one the address the one before freed.
 */
const readdressed = `
name: readdressed
budget_ms: 60000
store: per_node
topology:
  strategy: ActiveActive
  regions:
    - { id: us-west-1, nodes: 3 }
    - { id: eu-central-1 }
replication: { conflict_resolution: LastWriteWins, clock: hlc }
network: { latency: { uniform: [5, 20] } }
workload: { duration_ms: 20000, rate_per_sec: 30, tuples: 200 }
discovery: { interval_ms: 8000, first_round_wait_ms: 2000 }
faults:
  - { at_ms: 3000, kind: crash, target: us-west-1-node1, replaced: true }
  - { at_ms: 3300, kind: restart, target: us-west-1-node1 }
  - { at_ms: 4000, kind: crash, target: us-west-1-node2, replaced: true }
  - { at_ms: 4300, kind: restart, target: us-west-1-node2 }
  - { at_ms: 5000, kind: crash, target: us-west-1-node3, replaced: true }
  - { at_ms: 5300, kind: restart, target: us-west-1-node3 }
  - { at_ms: 9000, kind: crash, target: us-west-1-node1, replaced: true }
  - { at_ms: 9300, kind: wipe, target: us-west-1-node1 }
  - { at_ms: 14000, kind: heal }
`

/** The client writes of `region` that started within `[fromMs, toMs)`. */
const writesOf = (sim: ReturnType<typeof simulate>, region: string, fromMs: number, toMs: number) =>
  sim.history.writes.filter((write) => write.clientRegion === region && write.startedAtMs >= fromMs && write.startedAtMs < toMs)

describe("discovery in the simulator", () => {
  it("a node wiped during a DNS outage knows no node until DNS answers: its clients' writes are refused, none is taken in the old epoch, and it serves again after", () => {
    const scenario = Fixtures.load(file)
    for (let seed = 1; seed <= 4; seed++) {
      const sim = simulate(scenario, seed, { wallClock: Fixtures.wallClock })
      expect(sim.result.violations, `seed ${seed}`).toEqual([])
      // us-west-1 restarts on a wiped disk at 6 s; DNS answers again at 9 s.
      const during = writesOf(sim, "us-west-1", 6_100, 9_000)
      expect(during.length, `seed ${seed}`).toBeGreaterThan(0)
      for (const write of during) {
        expect(write.outcome, `seed ${seed}, write at ${write.startedAtMs} ms`).toBe("rejected")
        expect(write.reason, `seed ${seed}`).toMatch(/^RouteError\(PrimaryUnavailable\)/)
      }
      const after = writesOf(sim, "us-west-1", 11_000, 12_000)
      expect(after.some((write) => write.outcome === "acknowledged"), `seed ${seed}`).toBe(true)
      // Every write us-west-1 took after its wipe is in an epoch newer than the promotion's.
      const taken = sim.history.writes.filter((write) => write.targetRegion === "us-west-1" && write.outcome === "acknowledged" && write.startedAtMs > 6_000)
      expect(taken.length, `seed ${seed}`).toBeGreaterThan(0)
      for (const write of taken) expect(write.epoch, `seed ${seed}`).toBeGreaterThanOrEqual(2)
    }
  })

  it("without discovery the same wipe knows its peer from its configuration: its clients' writes reach the acting primary meanwhile", () => {
    const { discovery: _discovery, ...declared } = Fixtures.load(file)
    const scenario: Scenario.Scenario = { ...declared, faults: declared.faults.filter((fault) => fault.kind !== "dns_outage") }
    const sim = simulate(scenario, 1, { wallClock: Fixtures.wallClock })
    expect(sim.result.violations).toEqual([])
    expect(writesOf(sim, "us-west-1", 6_100, 9_000).some((write) => write.outcome === "acknowledged" && write.targetRegion === "eu-central-1")).toBe(true)
  })

  it("a replaced pod's record is gone while it is down: its peers drop it from their topology and add it back once it runs again, where a crashed process stays known", () => {
    const base = Fixtures.load(file)
    const schedule = (replaced: boolean): Scenario.Scenario => ({
      ...base,
      faults: [
        { atMs: 2_000, kind: "crash", target: "us-west-1", ...(replaced ? { replaced: true } : {}) },
        { atMs: 4_000, kind: "promote", region: "eu-central-1" },
        { atMs: 7_000, kind: "restart", target: "us-west-1" },
        { atMs: 9_000, kind: "heal" }
      ]
    })
    // What eu-central-1 sends us-west-1 (heartbeats, batches) in a span of time.
    const sent = (sim: ReturnType<typeof simulate>, fromMs: number, toMs: number) =>
      sim.messages.filter((message) => message.from.nodeId === "eu-central-1-node1" && message.to.nodeId === "us-west-1-node1" && message.sentAtMs >= fromMs && message.sentAtMs < toMs)
    for (let seed = 1; seed <= 3; seed++) {
      const replaced = simulate(schedule(true), seed, { wallClock: Fixtures.wallClock, messagesMax: 100_000 })
      expect(replaced.result.violations, `seed ${seed}`).toEqual([])
      // eu-central-1's first round after the crash (every second) removes the node; after the
      // restart, its first round adds it back and the heartbeats resume.
      expect(sent(replaced, 3_100, 7_000), `seed ${seed}`).toEqual([])
      expect(sent(replaced, 8_100, 10_000).length, `seed ${seed}`).toBeGreaterThan(0)
      const crashed = simulate(schedule(false), seed, { wallClock: Fixtures.wallClock, messagesMax: 100_000 })
      expect(crashed.result.violations, `seed ${seed}`).toEqual([])
      expect(sent(crashed, 3_100, 7_000).length, `seed ${seed}`).toBeGreaterThan(0)
    }
    const encoded = Scenario.encode(schedule(true))
    expect(encoded).toContain("replaced: true")
    expect(Scenario.decode(encoded, "encoded")).toEqual(Either.right(schedule(true)))
  })

  it("a pod created again gets a new address, the next one created in its region the address it freed; DNS names the address each has now", () => {
    const endpoint = (nodeId: string) => ({ endpoint: `sim://${nodeId}`, regionId: nodeId.slice(0, nodeId.lastIndexOf("-")), nodeId })
    const dns = new SimDns.SimDns({ intervalMs: 1_000, firstRoundWaitMs: 0 }, ["r-node1", "r-node2", "s-node1"].map(endpoint))
    for (const id of ["r-node1", "r-node2", "s-node1"]) dns.publish(id)
    dns.publish("r-node1")
    expect(dns.addressOf("r-node1")).toBe("sim://r-node1")
    dns.withdraw("r-node1")
    expect(dns.addressOf("r-node1")).toBe("sim://r-node1")
    dns.publish("r-node1")
    const first = dns.addressOf("r-node1")
    expect(first).not.toBe("sim://r-node1")
    dns.withdraw("r-node2")
    dns.publish("r-node2")
    expect(dns.addressOf("r-node2")).toBe("sim://r-node1")
    // Another region's pods never take this region's addresses.
    dns.withdraw("s-node1")
    dns.publish("s-node1")
    expect(dns.addressOf("s-node1")).not.toMatch(/^sim:\/\/r-node/)
    const records = Either.getOrThrow(Effect.runSync(Effect.either(dns.source.discover)))
    expect(Object.fromEntries(records.map((record) => [record.nodeId, record.endpoint]))).toEqual({
      "r-node1": first,
      "r-node2": "sim://r-node1",
      "s-node1": dns.addressOf("s-node1")
    })
  })

  it("a sibling that has not looked DNS up since a rolling update reaches the pod that holds the address now; nothing is lost and every disk converges", () => {
    const scenario = Fixtures.parse(readdressed)
    for (let seed = 1; seed <= 3; seed++) {
      const sim = simulate(scenario, seed, { wallClock: Fixtures.wallClock })
      expect(sim.result.violations, `seed ${seed}`).toEqual([])
      expect(sim.result.network.misdirected, `seed ${seed}`).toBeGreaterThan(0)
    }
  })

  it("a discovery scenario runs the same twice and round-trips through its file", () => {
    const scenario = Fixtures.load(file)
    expect(runScenario(scenario, 5).traceHash).toBe(runScenario(scenario, 5).traceHash)
    expect(Scenario.decode(Scenario.encode(scenario), "encoded")).toEqual(Either.right(scenario))
    expect(scenario.discovery).toEqual({ intervalMs: 1_000, firstRoundWaitMs: 2_000 })
  })

  it("refuses a dns_outage or a replaced pod without discovery, naming the key, and takes discovery with topology faults", () => {
    const base = Fixtures.load("scenarios/two-region-partition.yaml")
    const outage = Scenario.validate({ ...base, faults: [{ atMs: 100, kind: "dns_outage" }] })
    expect(outage).toContain("faults[0]: dns_outage needs discovery (nodes that find each other through DNS)")
    const replaced = Scenario.validate({ ...base, faults: [{ atMs: 100, kind: "crash", target: "us-west-1", replaced: true }] })
    expect(replaced).toContain("faults[0].replaced: a replaced pod's DNS record comes and goes only with discovery (nodes that find each other through DNS)")
    const withTopology = Scenario.validate({
      ...base,
      discovery: { intervalMs: 1_000, firstRoundWaitMs: 0 },
      faults: [
        { atMs: 100, kind: "topology", change: { op: "remove_target", from: "us-west-1", to: "eu-central-1" } },
        { atMs: 200, kind: "topology", change: { op: "add_target", from: "us-west-1", to: "eu-central-1" } }
      ]
    })
    expect(withTopology).toEqual([])
  })
})
