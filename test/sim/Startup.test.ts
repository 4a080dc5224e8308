/**
 * Staggered starts (`Startup.ts`): each node's first process starts at its offset, drawn from the
 * seed within `startup.spread_ms` or given by `startup.at_ms`; a node sends nothing before it.
 */
import { Either } from "effect"
import { describe, expect, it } from "vitest"
import * as FaultWindows from "../../src/sim/FaultWindows.js"
import { simulate } from "../../src/sim/Run.js"
import * as Scenario from "../../src/sim/Scenario.js"
import * as Startup from "../../src/sim/Startup.js"
import * as Fixtures from "./fixtures/scenarios.js"

const three = (startup: string) =>
  Fixtures.parse(`
name: staggered
budget_ms: 8000
topology:
  strategy: ActiveActive
  regions:
    - { id: a, nodes: [a1, a2] }
    - { id: b }
    - { id: c }
workload: { start_ms: 100, duration_ms: 3000, rate_per_sec: 4 }
${startup}
`)

describe("staggered starts", () => {
  it("offsets are drawn per node within the spread, the same for one seed, and given ones win (a node's over its region's)", () => {
    const spread = three("startup: { spread_ms: 2000 }")
    const first = Startup.offsets(spread, "7")
    expect([...first.keys()]).toEqual(["a1", "a2", "b-node1", "c-node1"])
    for (const offset of first.values()) expect(offset >= 0 && offset <= 2000 && Number.isInteger(offset)).toBe(true)
    expect(new Set(first.values()).size).toBeGreaterThan(1)
    expect(Startup.offsets(spread, "7")).toEqual(first)
    expect(Startup.offsets(spread, "8")).not.toEqual(first)
    expect([...Startup.offsets(three(""), "7").values()]).toEqual([0, 0, 0, 0])
    const given = three("startup: { spread_ms: 2000, at_ms: { a: 500, a2: 900, c: 0 } }")
    const offsets = Startup.offsets(given, "7")
    expect([offsets.get("a1"), offsets.get("a2"), offsets.get("b-node1"), offsets.get("c-node1")]).toEqual([500, 900, first.get("b-node1"), 0])
  })

  it("a node sends nothing before its start, and the run reports the offsets it used", () => {
    const scenario = three("startup: { at_ms: { b: 1500 } }")
    const firstSend = new Map<string, number>()
    const simulation = simulate(scenario, 1, {
      onEvent: (event) => {
        if (event.kind === "deliver" && !firstSend.has(event.detail.split(">")[0]!)) firstSend.set(event.detail.split(">")[0]!, event.timeMs)
      }
    })
    expect(simulation.result.chosen.startup).toEqual({ a1: 0, a2: 0, "b-node1": 1500, "c-node1": 0 })
    expect(firstSend.get("b-node1")).toBeGreaterThanOrEqual(1500)
    expect(firstSend.get("a1")).toBeLessThan(1500)
    expect(simulation.result.violations).toEqual([])
    expect(simulation.result.converged).toBe(true)
  })

  it("a crash before a node's start keeps it down until a restart", () => {
    const scenario = Fixtures.parse(`
name: crashed-early
budget_ms: 8000
topology:
  strategy: ActiveActive
  regions: [ { id: a }, { id: b } ]
workload: { start_ms: 100, duration_ms: 3000, rate_per_sec: 4 }
startup: { at_ms: { b: 1000 } }
faults:
  - { at_ms: 500, kind: crash, target: b }
  - { at_ms: 2500, kind: restart, target: b }
`)
    const sent: Array<number> = []
    simulate(scenario, 1, { onEvent: (event) => (event.kind === "deliver" && event.detail.startsWith("b-node1>") ? sent.push(event.timeMs) : undefined) })
    expect(sent.length).toBeGreaterThan(0)
    expect(Math.min(...sent)).toBeGreaterThanOrEqual(2500)
  })

  // A two-region run whose node b-node1 crashes at 1 s and is restarted at 2.5 s.
  const restarted = (startup: string) =>
    Fixtures.parse(`
name: restarted
budget_ms: 12000
topology:
  strategy: ActiveActive
  regions: [ { id: a }, { id: b } ]
workload: { start_ms: 100, duration_ms: 6000, rate_per_sec: 20 }
${startup}
faults:
  - { at_ms: 1000, kind: crash, target: b-node1 }
  - { at_ms: 2500, kind: restart, target: b-node1 }
`)
  /** When b-node1 first sent after its restart, and the first write it took after it. */
  const backAt = (scenario: Scenario.Scenario) => {
    let sentMs: number | undefined
    const simulation = simulate(scenario, 1, {
      onEvent: (event) => {
        if (sentMs === undefined && event.kind === "deliver" && event.detail.startsWith("b-node1>") && event.timeMs >= 2500) sentMs = event.timeMs
      }
    })
    const admitted = simulation.history.writes.filter((write) => write.targetNode === "b-node1" && (write.admittedAtMs ?? 0) >= 2500).map((write) => write.admittedAtMs!)
    return { sentMs, writeMs: Math.min(...admitted), simulation }
  }

  it("a restarted process serves only once it has started (startup.restart_ms), and the judges allow for it", () => {
    const atOnce = backAt(restarted(""))
    expect(atOnce.sentMs).toBeLessThan(2700)
    expect(atOnce.writeMs).toBeLessThan(3000)
    const slow = backAt(restarted("startup: { restart_ms: { min: 2000, max: 2000 } }"))
    expect(slow.sentMs).toBeGreaterThanOrEqual(4500)
    expect(slow.sentMs).toBeLessThan(4700)
    expect(slow.writeMs).toBeGreaterThanOrEqual(4500)
    // The run reports each restart's delay (`sim run` prints it).
    expect(slow.simulation.result.nodes["b-node1"]?.restarts).toEqual([{ incarnation: 2, atMs: 2500, startingMs: 2000 }])
    expect(atOnce.simulation.result.nodes["b-node1"]?.restarts).toEqual([{ incarnation: 2, atMs: 2500, startingMs: 0 }])
    // Its region's clients found no node serving meanwhile (the availability check's windows allow for it).
    const meanwhile = slow.simulation.history.writes.filter((write) => write.clientRegion === "b" && write.startedAtMs > 2500 && write.startedAtMs < 4500)
    expect(meanwhile.length).toBeGreaterThan(10)
    expect(meanwhile.filter((write) => write.outcome === "acknowledged")).toEqual([])
    expect(slow.simulation.result.violations).toEqual([])
    expect(slow.simulation.result.converged).toBe(true)
    // The crash's window lasts until the restarted process may last have started.
    const crashWindow = (startup: string) => FaultWindows.windows(restarted(startup), 6100).find((window) => window.startMs === 1000)
    expect(crashWindow("")?.endMs).toBe(2500)
    expect(crashWindow("startup: { restart_ms: { min: 2000, max: 2000 } }")?.endMs).toBe(4500)
  })

  it("restart delays are drawn per node and incarnation within the range, the same for one seed, and 0 without a range", () => {
    const scenario = restarted("startup: { restart_ms: { min: 300, max: 3500 } }")
    const delays = [2, 3, 4, 5, 6, 7].map((incarnation) => Startup.restartDelayMs(scenario, "9", "b-node1", incarnation))
    for (const delay of delays) expect(delay >= 300 && delay <= 3500 && Number.isInteger(delay)).toBe(true)
    expect(new Set(delays).size).toBeGreaterThan(1)
    expect([2, 3, 4, 5, 6, 7].map((incarnation) => Startup.restartDelayMs(scenario, "9", "b-node1", incarnation))).toEqual(delays)
    expect(Startup.restartDelayMs(scenario, "10", "b-node1", 2)).not.toBe(Startup.restartDelayMs(scenario, "9", "b-node1", 2))
    expect(Startup.restartDelayMs(restarted(""), "9", "b-node1", 2)).toBe(0)
  })

  it("judges see a restart when it may last serve and a wipe as a stop until then (every node of the region with a shared store)", () => {
    const scenario = Fixtures.parse(`
name: booted
budget_ms: 12000
store: shared
topology:
  strategy: ActiveActive
  regions: [ { id: a, nodes: [a1, a2] }, { id: b } ]
startup: { restart_ms: { min: 500, max: 1500 } }
faults:
  - { at_ms: 1000, kind: crash, target: b-node1 }
  - { at_ms: 2000, kind: restart, target: b-node1 }
  - { at_ms: 3000, kind: wipe, target: a2 }
`)
    expect(Startup.booted(scenario).faults).toEqual([
      { atMs: 1000, kind: "crash", target: "b-node1" },
      { atMs: 3000, kind: "crash", target: "a" },
      { atMs: 3500, kind: "restart", target: "b-node1" },
      { atMs: 4500, kind: "wipe", target: "a" }
    ])
    expect(Startup.booted({ ...scenario, startup: { spreadMs: 0 } }).faults).toEqual(scenario.faults)
  })

  it("judges see a store that failed commits whole again only once a node whose start it failed may serve again (swarm seed 200003979)", () => {
    const scenario = Fixtures.parse(`
name: failing-start
budget_ms: 12000
topology:
  strategy: ActiveActive
  regions: [ { id: a }, { id: b } ]
startup: { restart_ms: { min: 500, max: 1500 } }
faults:
  - { at_ms: 1000, kind: store, region: a, fail_rate: 0.1 }
  - { at_ms: 2000, kind: store, region: a }
  - { at_ms: 3000, kind: store, region: b, slow_ms: [5, 10] }
  - { at_ms: 4000, kind: store, region: b }
`)
    // Cleared a supervisor's second and a restart delay later; a slow store ends no start.
    expect(Startup.booted(scenario).faults.map((fault) => [fault.atMs, fault.kind, "region" in fault ? fault.region : ""])).toEqual([
      [1000, "store", "a"],
      [3000, "store", "b"],
      [4000, "store", "b"],
      [4500, "store", "a"]
    ])
    expect(FaultWindows.windows(scenario, 12_000).some((window) => window.startMs <= 1000 && window.endMs >= 4500)).toBe(true)
  })

  it("judges see a start that a stall reaches before it serves, whose stopping process a stall held, or of a process running stalled, as no start: the node serves again only after the stalled process ended", () => {
    const scenario = Fixtures.parse(`
name: stalled-starts
budget_ms: 60000
store: per_node
topology:
  strategy: ActiveActive
  regions: [ { id: a }, { id: b }, { id: c }, { id: d } ]
startup: { restart_ms: { min: 300, max: 3000 } }
faults:
  - { at_ms: 1000, kind: crash, target: a-node1 }
  - { at_ms: 4000, kind: restart, target: a-node1 }
  - { at_ms: 5000, kind: stall, target: a-node1 }
  - { at_ms: 700, kind: crash, target: b-node1, graceful: true }
  - { at_ms: 2100, kind: stall, target: b-node1 }
  - { at_ms: 4500, kind: restart, target: b-node1 }
  - { at_ms: 1000, kind: crash, target: c-node1, graceful: true }
  - { at_ms: 9000, kind: stall, target: c-node1 }
  - { at_ms: 12000, kind: restart, target: c-node1 }
  - { at_ms: 2000, kind: stall, target: d-node1 }
  - { at_ms: 5000, kind: restart, target: d-node1 }
`)
    const faults = Startup.booted(scenario).faults
    const ofNode = (node: string) => faults.filter((fault) => "target" in fault && fault.target === node)
    // a-node1 started at 4 s and stalled at 5 s, before it could serve (7 s at the latest): down
    // until its watchdog ended it and its supervisor started it again (5 s + 15 s + 2 looks of
    // 2 s + 1 s + 3 s), not from 7 s.
    expect(ofNode("a-node1")).toEqual([
      { atMs: 1000, kind: "crash", target: "a-node1" },
      { atMs: 5000, kind: "crash", target: "a-node1" },
      { atMs: 28_000, kind: "restart", target: "a-node1" }
    ])
    // b-node1, stopped gracefully at 0.7 s, stalled at 2.1 s while it could still drain (until
    // 7.7 s): the restart asked at 4.5 s begins when the watchdog ends the stalled process (2.1 s +
    // 19 s) and serves a start delay later.
    expect(ofNode("b-node1")).toEqual([
      { atMs: 700, kind: "crash", target: "b-node1", graceful: true },
      { atMs: 24_100, kind: "restart", target: "b-node1" }
    ])
    // c-node1's stall came after its drain could have ended (8 s): nothing was left to stall.
    expect(ofNode("c-node1")).toEqual([
      { atMs: 1000, kind: "crash", target: "c-node1", graceful: true },
      { atMs: 15_000, kind: "restart", target: "c-node1" }
    ])
    // d-node1 ran stalled when the schedule restarted it: a restart of a running process does
    // nothing (`Node.start`), so it serves again only after its watchdog and supervisor.
    expect(ofNode("d-node1")).toEqual([
      { atMs: 2000, kind: "crash", target: "d-node1" },
      { atMs: 25_000, kind: "restart", target: "d-node1" }
    ])
    // Read at the soonest, a stall is no loss: every start serves a least start delay after it.
    expect(Startup.bootedFaults(scenario, scenario.faults, () => true).filter((fault) => fault.kind === "restart").map((fault) => fault.atMs)).toEqual([4300, 4800, 5300, 12_300])
  })

  it("a start offset at or past the budget, or for an unknown node, is refused with its key path", () => {
    const problems = (startup: string) => {
      const decoded = Scenario.decode(`name: bad\nbudget_ms: 8000\ntopology: { strategy: ActiveActive, regions: [ { id: a }, { id: b } ] }\n${startup}\n`, "bad.yaml")
      return Either.isLeft(decoded) ? decoded.left.message : "decoded"
    }
    expect(problems("startup: { spread_ms: 8000 }")).toContain("startup.spread_ms: must be below budget_ms (8000), or some node might never start")
    const both = problems("startup: { at_ms: { ghost: 10, b: 9000 } }")
    expect(both).toContain("startup.at_ms.ghost: 'ghost' is neither a region nor a node")
    expect(both).toContain("startup.at_ms.b: must be below budget_ms (8000), or it would never start")
    expect(problems("startup: { spread_ms: -5 }")).toContain("spread_ms")
    expect(problems("startup: { spread_ms: 500, at_ms: { a: 100 } }")).toBe("decoded")
    expect(problems("startup: { restart_ms: { min: 900, max: 400 } }")).toContain("startup.restart_ms: min (900) must not exceed max (400)")
    expect(problems("startup: { restart_ms: { min: 0, max: 8000 } }")).toContain("startup.restart_ms.max: must be below budget_ms (8000)")
    expect(problems("startup: { restart_ms: { min: 300 } }")).toContain("max")
    expect(problems("startup: { restart_ms: { min: 300, max: 3500 } }")).toBe("decoded")
  })
})
