/**
 * The checkers on hand-made states, so each one is seen to fail when it should and to pass
 * when it should: a region missing a change, a region serving an answer against the rule,
 * regions serving different answers, a vault stored outside its residency set, an
 * acknowledged change in no log, two changes under one id, a disk whose log has a gap or whose
 * frontier names a change it never logged, a timestamp from the future, a
 * workload that made no progress, two regions taking writes in one epoch; and lost writes
 * labelled by cause.
 */
import { Either } from "effect"
import { describe, expect, it } from "vitest"
import type * as Change from "../../src/replication/Change.js"
import * as Tuple from "../../src/replication/Tuple.js"
import * as Checkers from "../../src/sim/Checkers.js"
import * as FaultWindows from "../../src/sim/FaultWindows.js"
import { History } from "../../src/sim/History.js"
import * as Fates from "../../src/sim/Fates.js"
import * as Oracle from "../../src/sim/Oracle.js"
import type { RegionState } from "../../src/sim/RegionState.js"
import { runScenario } from "../../src/sim/Run.js"
import * as Scenario from "../../src/sim/Scenario.js"
import * as Swarm from "../../src/sim/Swarm.js"
import * as Startup from "../../src/sim/Startup.js"
import * as Fixtures from "./fixtures/scenarios.js"

const spec = Fixtures.parse(`
name: mm
budget_ms: 1000
topology:
  strategy: MultiMaster
  regions: [{ id: a }, { id: b }]
  vaults:
    - { id: open, home: a }
    - { id: local, home: a, allowed: [a] }
`)
const topology = Either.getOrThrow(Scenario.topologyFor(spec, "a"))

const tuple = (vault = "open", subject = "user:x"): Tuple.Tuple => ({ vault, resource: "document:d", relation: "viewer", subject })

const change = (region: string, seq: number, options: { readonly context?: Record<string, number>; readonly physicalMs?: number; readonly op?: Change.Operation; readonly vault?: string } = {}): Change.Change => ({
  id: { origin: region, seq },
  op: options.op ?? "insert",
  tuple: tuple(options.vault),
  timestamp: { physicalMs: options.physicalMs ?? seq, logical: 0 },
  originRegion: region,
  originNode: `${region}-node1`,
  originRevision: seq,
  committedAtMs: options.physicalMs ?? seq,
  context: options.context ?? {}
})

const region = (regionId: string, log: ReadonlyArray<Change.Change>, frontier: ReadonlyArray<Change.Change>): RegionState => ({
  regionId,
  replica: regionId,
  tuples: new Map(frontier.length === 0 ? [] : [[Tuple.key(frontier[0]!.tuple), { tuple: frontier[0]!.tuple, frontier }]]),
  log: log.map((each, index) => ({ position: index + 1, change: each, receivedFrom: each.originRegion === regionId ? null : "x", appliedAtMs: 0 }))
})

const lww: Oracle.Rules = { strategy: "LastWriteWins", regionPriorities: [] }

/** What a correct node serves: the rule's answer over its stored changes. */
const servedByRule: Checkers.Served = (_region, frontier) => Oracle.present(lww, frontier)

describe("checkers", () => {
  it("safety flags a region whose frontier misses a concurrent change, and passes equal regions", () => {
    const x = change("a", 1)
    const y = change("b", 1, { physicalMs: 5 })
    const regions = [region("a", [x, y], [x, y]), region("b", [y], [y])]
    const verdicts = Oracle.evaluate(Checkers.unionHistory(regions), lww)
    const found = Checkers.safety(regions, verdicts, topology, servedByRule)
    expect(found.map((violation) => violation.details["region"])).toEqual(["b"])
    expect(Checkers.safety([region("a", [x, y], [x, y]), region("b", [y, x], [x, y])], verdicts, topology, servedByRule)).toEqual([])
  })

  it("store integrity flags a log with a gap, a log end the counter does not match and a frontier change the log lacks, and passes a whole disk", () => {
    const x = change("a", 1)
    const y = change("a", 2)
    const whole = { ...region("a", [x, y], [y]), logEnd: 2 }
    expect(Checkers.storeIntegrity([whole])).toEqual([])
    const gap = { ...whole, log: whole.log.map((entry, index) => (index === 1 ? { ...entry, position: 3 } : entry)), logEnd: 3 }
    const shortEnd = { ...whole, logEnd: 3 }
    const unlogged = { ...region("a", [x], [y]), logEnd: 1 }
    for (const broken of [gap, shortEnd, unlogged]) {
      const found = Checkers.storeIntegrity([broken])
      expect(found.map((violation) => violation.checker)).toEqual(["store_integrity"])
    }
    expect(Checkers.storeIntegrity([unlogged])[0]!.details["examples"]).toEqual([{ disk: "a", problem: "a frontier change is not in the log", tuple: Tuple.key(y.tuple), changes: [Oracle.idOf(y)] }])
  })

  it("the reference keeps only changes nobody supersedes and lets the resolver pick among them", () => {
    const first = change("a", 1)
    const later = change("b", 1, { context: { a: 1 }, op: "delete" })
    const concurrent = change("a", 2, { physicalMs: 9 })
    const verdict = Oracle.evaluate([first, later, concurrent, first], lww).get(Tuple.key(tuple()))!
    expect(verdict.maximal.map((each) => `${each.id.origin}#${each.id.seq}`)).toEqual(["a#2", "b#1"])
    expect(verdict.winner).toBe(concurrent)
  })

  it("safety flags regions that agree with each other on an answer the rule does not give, converged or not", () => {
    // a#1 (insert) and b#1 (a later delete) are concurrent: LWW says absent; the broken node keeps the oldest, an insert.
    const x = change("a", 1, { physicalMs: 1 })
    const y = change("b", 1, { physicalMs: 5, op: "delete" })
    const regions = [region("a", [x, y], [x, y]), region("b", [x, y], [x, y])]
    const oldestWins: Checkers.Served = (_region, frontier) => [...frontier].sort((l, r) => l.timestamp.physicalMs - r.timestamp.physicalMs)[0]?.op === "insert"
    const verdicts = Oracle.evaluate(Checkers.unionHistory(regions), lww)
    expect(Checkers.safety(regions, verdicts, topology, oldestWins).map((violation) => violation.details["region"])).toEqual(["a", "b"])
    expect(Checkers.servedAnswers(regions, lww, oldestWins)).toHaveLength(2)
    expect(Checkers.servedAnswers(regions, lww, servedByRule)).toEqual([])
  })

  it("convergence compares the answers regions serve, not the ids they hold", () => {
    const x = change("a", 1, { physicalMs: 1 })
    const y = change("b", 1, { physicalMs: 5, op: "delete" })
    // Different frontiers, same answer (absent): converged in answers.
    expect(Checkers.convergence([region("a", [x, y], [x, y]), region("b", [y], [y])], topology, lww)).toEqual([])
    // The same id, different changes: the answers differ although the ids agree.
    const impostor = { ...y, op: "insert" as const }
    const found = Checkers.convergence([region("a", [x, y], [x, y]), region("b", [x, impostor], [x, impostor])], topology, lww)
    expect(found.map((violation) => violation.checker)).toEqual(["convergence"])
    expect(found[0]?.details["examples"]).toEqual([{ tuple: "open document:d viewer user:x", answers: { a: "absent", b: "present" } }])
  })

  it("convergence and divergence judge each node's own disk: a region's second disk does not hide its first", () => {
    const x = change("a", 1, { physicalMs: 1 })
    const onNode = (regionId: string, replica: string, held: ReadonlyArray<Change.Change>): RegionState => ({ ...region(regionId, held, held), replica })
    // a-node1 still bootstraps after a wipe (holds nothing); its sibling and region b hold x.
    const regions = [onNode("a", "a-node1", []), onNode("a", "a-node2", [x]), onNode("b", "b-node1", [x])]
    const found = Checkers.convergence(regions, topology, lww)
    expect(found.map((violation) => violation.checker)).toEqual(["convergence"])
    expect(found[0]?.details["examples"]).toEqual([{ tuple: "open document:d viewer user:x", answers: { "a-node1": "absent", "a-node2": "present", "b-node1": "present" } }])
    expect(Checkers.divergence(regions, topology).tuples).toBe(1)
    // The safety checker names the disk, not only its region.
    const verdicts = Oracle.evaluate(Checkers.unionHistory(regions), lww)
    const unsafe = Checkers.safety(regions, verdicts, topology, servedByRule)
    expect(unsafe.map((violation) => violation.message)).toEqual(["a (a-node1): 1 tuple(s) differ from the rule applied to the whole history"])
    // Once it caught up, every disk agrees.
    const caughtUp = [onNode("a", "a-node1", [x]), ...regions.slice(1)]
    expect(Checkers.convergence(caughtUp, topology, lww)).toEqual([])
    expect(Checkers.divergence(caughtUp, topology).tuples).toBe(0)
  })

  it("unique_ids flags two different changes under one id and ignores copies of one change", () => {
    const x = change("a", 1, { physicalMs: 1 })
    expect(Checkers.uniqueIds([region("a", [x], [x]), region("b", [{ ...x, context: {} }], [x])])).toEqual([])
    const twin = { ...x, tuple: tuple("open", "user:y") }
    const found = Checkers.uniqueIds([region("a", [x], [x]), region("b", [twin], [twin])])
    expect(found.map((violation) => [violation.checker, violation.details["ids"]])).toEqual([["unique_ids", 1]])
    // The very object in two regions counts once; a different change under its id in a third is still found.
    const shared = Checkers.uniqueIds([region("a", [x], [x]), region("b", [x], [x]), region("c", [twin], [twin])])
    expect(shared.map((violation) => [violation.checker, violation.details["ids"]])).toEqual([["unique_ids", 1]])
  })

  it("timestamps flags a change stamped further ahead of the real time it became durable than the bound", () => {
    const epochMs = 1_000_000
    const history = new History()
    const honest = { ...change("a", 1), timestamp: { physicalMs: epochMs + 1_300, logical: 0 } }
    const future = { ...change("a", 2), timestamp: { physicalMs: epochMs + 1_000 + 3_600_000, logical: 0 } }
    history.end(history.begin("a", [], 1_000), "acknowledged", 1_000, { changes: [honest, future] })
    const found = Checkers.timestamps([honest, future], history, { maxOffsetMs: 500, epochMs })
    expect(found.map((violation) => [violation.checker, violation.details["changes"], violation.details["aheadMsMax"]])).toEqual([["timestamps", 1, 3_600_000]])
    expect(Checkers.timestamps([honest], history, { maxOffsetMs: 500, epochMs })).toEqual([])
    expect(Checkers.timestamps([honest], history, { maxOffsetMs: 200, epochMs })).toHaveLength(1)
  })

  it("progress flags a workload that offered writes and had none acknowledged", () => {
    const history = new History()
    history.end(history.begin("a", [], 10), "failed", 20)
    history.end(history.begin("a", [], 30), "rejected", 40)
    const settings = { windows: [], minAvailability: undefined, graceMs: 0 }
    expect(Checkers.progress(history.writes, settings).map((violation) => violation.checker)).toEqual(["progress"])
    expect(Checkers.progress([], settings)).toEqual([])
    history.end(history.begin("a", [], 50), "acknowledged", 60, { changes: [] })
    expect(Checkers.progress(history.writes, settings)).toEqual([])
  })

  it("progress does not count writes refused by rule because their change could not travel (TooLarge) against availability", () => {
    const history = new History()
    for (let index = 0; index < 9; index++) history.end(history.begin("a", [], 10 * index), "rejected", 10 * index + 5, { reason: "WriteRejected(TooLarge): the change to ... does not fit" })
    history.end(history.begin("a", [], 100), "acknowledged", 110, { changes: [] })
    const settings = { windows: [], minAvailability: 0.9, graceMs: 0 }
    expect(Checkers.progress(history.writes, settings)).toEqual([])
    history.end(history.begin("a", [], 120), "rejected", 130, { reason: "WriteRejected(NotPrimary): write lease lapsed" })
    expect(Checkers.progress(history.writes, settings).map((violation) => violation.message)).toEqual([expect.stringMatching(/availability outside fault windows was 0.500 \(1\/2\)/)])
  })

  it("under PrimaryReplica with three regions, writes refused before the primary's first lease are no progress violation (swarm seed 1809328)", () => {
    const scenario = Fixtures.parse(`
name: leaseless-start
budget_ms: 20000
topology:
  strategy: PrimaryReplica
  regions: [{ id: a, primary: true }, { id: b }, { id: c }]
replication:
  heartbeat: { interval_ms: 600, timeout_ms: 3000 }
faults:
  - { at_ms: 590, kind: crash, target: a }
  - { at_ms: 4000, kind: restart, target: a }
`)
    // The seed's story: a lost request and a lost answer left the primary without a lease until
    // it crashed at 590 ms, before its second round; the two writes before then were refused.
    const history = new History()
    history.end(history.begin("a", [], 410), "rejected", 410)
    history.end(history.begin("c", [], 509), "rejected", 509)
    history.end(history.begin("b", [], 1_000), "failed", 1_000)
    const settings = { windows: FaultWindows.windows(scenario, 10_000), minAvailability: undefined, graceMs: Checkers.availabilityGraceMs }
    expect(Checkers.progress(history.writes, settings)).toEqual([])
    expect(settings.windows[0]).toEqual({ startMs: 0, endMs: 3_000 })
    // A write refused once every window and its grace are over counts again.
    const afterAllMs = Math.max(...settings.windows.map((window) => window.endMs)) + Checkers.availabilityGraceMs + 1
    const later = new History()
    later.end(later.begin("a", [], 410), "rejected", 410)
    later.end(later.begin("a", [], afterAllMs), "rejected", afterAllMs)
    expect(Checkers.progress(later.writes, settings).map((violation) => violation.checker)).toEqual(["progress"])
  })

  it("progress holds availability outside fault windows to the scenario's minimum", () => {
    const history = new History()
    // Two failures inside the window [100, 200) plus grace 50; one failure and three acknowledgements outside.
    history.end(history.begin("a", [], 120), "failed", 130)
    history.end(history.begin("a", [], 240), "failed", 245)
    history.end(history.begin("a", [], 10), "failed", 20)
    for (const atMs of [300, 400, 500]) history.end(history.begin("a", [], atMs), "acknowledged", atMs + 5, { changes: [] })
    const windows: ReadonlyArray<FaultWindows.Window> = [{ startMs: 100, endMs: 200 }]
    expect(Checkers.progress(history.writes, { windows, minAvailability: 0.75, graceMs: 50 })).toEqual([])
    const found = Checkers.progress(history.writes, { windows, minAvailability: 0.8, graceMs: 50 })
    expect(found.map((violation) => [violation.checker, violation.details["availability"]])).toEqual([["progress", 0.75]])
  })

  it("fault windows run from the first fault that can refuse writes until the world is whole again", () => {
    const scenario = Fixtures.parse(`
name: windows
budget_ms: 10000
topology:
  strategy: ActiveActive
  regions: [{ id: a }, { id: b }]
faults:
  - { at_ms: 100, kind: clock_jump, target: a, delta_ms: 50 }
  - { at_ms: 1000, kind: isolate, region: a }
  - { at_ms: 1500, kind: crash, target: b }
  - { at_ms: 2000, kind: heal }
  - { at_ms: 2500, kind: restart, target: b }
  - { at_ms: 4000, kind: pause, target: a }
`)
    // After each, peers marked Unreachable need recover_after (3) answers, one per 500 ms round,
    // plus a round to start: 2 s in which routers may still see a region down.
    expect(FaultWindows.windows(scenario, 6000)).toEqual([
      { startMs: 1000, endMs: 2500 },
      { startMs: 2500, endMs: 4500 },
      { startMs: 4000, endMs: 6000 },
      { startMs: 6000, endMs: 8000 }
    ])
    // On a link slower than the interval, one answer per round trip: 4 × 2 × 400 ms.
    const slow = { ...scenario, network: { ...scenario.network, remote: { ...scenario.network.remote, latency: { kind: "fixed" as const, ms: 400 } } } }
    expect(FaultWindows.windows(slow, 6000)[1]).toEqual({ startMs: 2500, endMs: 5700 })
  })

  it("a node started on a file without a removed region's rank may refuse and be restarted by its supervisor until the rank is back: the window stays open until a restart after that may serve", () => {
    const scenario = (restartMs: string) =>
      Fixtures.parse(`
name: ranks
budget_ms: 30000
topology:
  strategy: ActiveActive
  regions: [{ id: a, nodes: 2 }, { id: b }, { id: c }]
replication:
  conflict_resolution: SourcePriority
  region_priorities: [c, b, a]
  heartbeat: { interval_ms: 500, timeout_ms: 1000, recover_after: 1 }
${restartMs}
faults:
  - { at_ms: 1000, kind: topology, change: remove_region, region: c }
  - { at_ms: 1500, kind: configure, target: a-node1, region_priorities: [b, a] }
  - { at_ms: 2000, kind: crash, target: a-node1 }
  - { at_ms: 2500, kind: restart, target: a-node1 }
  - { at_ms: 4000, kind: configure, target: a-node1, region_priorities: [c, b, a] }
`)
    // Down from the crash; then refusing from the restart until the rank is back at 4 s, its
    // supervisor's restart a second after an exit then, and the start's delay before and after
    // it (none here); then recover_after + 1 answers, one per round.
    expect(FaultWindows.windows(scenario(""), 10_000)).toEqual([
      { startMs: 2_000, endMs: 5_000 },
      { startMs: 5_000, endMs: 6_000 }
    ])
    expect(FaultWindows.windows(scenario("startup: { restart_ms: { min: 100, max: 600 } }"), 10_000)).toEqual([
      { startMs: 2_000, endMs: 6_200 },
      { startMs: 6_200, endMs: 7_200 }
    ])
    // A file edited under a running node, put back before any restart, opens nothing.
    const edited = scenario("")
    expect(FaultWindows.windows({ ...edited, faults: edited.faults.filter((fault) => fault.kind !== "crash" && fault.kind !== "restart") }, 10_000)).toEqual([])
  })

  it("a crash that comes while a restarted node still starts keeps the node down until the schedule starts it again: the start it killed ends no window (swarm seed 84000273)", () => {
    const scenario = Fixtures.parse(`
name: killed-start
budget_ms: 30000
topology:
  strategy: ActiveActive
  regions: [{ id: a, nodes: 2 }, { id: b }]
replication:
  heartbeat: { interval_ms: 500, timeout_ms: 1000, recover_after: 1 }
startup: { restart_ms: { min: 300, max: 6000 } }
faults:
  - { at_ms: 500, kind: crash, target: a-node1 }
  - { at_ms: 1500, kind: restart, target: a-node1 }
  - { at_ms: 1000, kind: crash, target: a-node2 }
  - { at_ms: 2000, kind: restart, target: a-node2 }
  - { at_ms: 4000, kind: crash, target: a }
  - { at_ms: 15000, kind: restart, target: a }
`)
    // The nodes may serve 6 s after their restarts, at 7.5 s and 8 s, but the region's crash at
    // 4 s killed both starts: they are down until the region's restart may serve, at 21 s, then
    // recover_after + 1 answers, one per round. Read at 7.5 s and 8 s, the killed starts ended
    // the window at 8 s, and writes refused from 8 s to 21 s counted against the region.
    expect(FaultWindows.windows(scenario, 30_000)).toEqual([
      { startMs: 500, endMs: 21_000 },
      { startMs: 21_000, endMs: 22_000 }
    ])
    // A crash of another node leaves the start alone: a-node2 counts as back at 8 s.
    const other = { ...scenario, faults: scenario.faults.filter((fault) => fault.atMs !== 500 && fault.atMs !== 1_500).map((fault) => (fault.atMs === 4_000 ? { ...fault, target: "a-node1" } : fault)) }
    expect(Startup.bootedFaults(other, other.faults).map((fault) => [fault.atMs, fault.kind, "target" in fault ? fault.target : ""])).toEqual([
      [1_000, "crash", "a-node2"],
      [4_000, "crash", "a-node1"],
      [8_000, "restart", "a-node2"],
      [21_000, "restart", "a"]
    ])
    // A region's start that a crash of one of its nodes overtook still starts the other node.
    const partly = { ...scenario, faults: [{ atMs: 1_000, kind: "crash" as const, target: "a" }, { atMs: 2_000, kind: "restart" as const, target: "a" }, { atMs: 4_000, kind: "crash" as const, target: "a-node1" }] }
    expect(Startup.bootedFaults(partly, partly.faults).map((fault) => [fault.atMs, fault.kind, "target" in fault ? fault.target : ""])).toEqual([
      [1_000, "crash", "a"],
      [4_000, "crash", "a-node1"],
      [8_000, "restart", "a-node2"]
    ])
    // With a shared store a wipe of one node restarts the whole region: it kills a sibling's start too.
    const shared = { ...scenario, store: "shared" as const, faults: [{ atMs: 500, kind: "crash" as const, target: "a-node1" }, { atMs: 1_500, kind: "restart" as const, target: "a-node1" }, { atMs: 4_000, kind: "wipe" as const, target: "a-node2" }] }
    expect(Startup.bootedFaults(shared, shared.faults).map((fault) => [fault.atMs, fault.kind, "target" in fault ? fault.target : ""])).toEqual([
      [500, "crash", "a-node1"],
      [4_000, "crash", "a"],
      [10_000, "wipe", "a"]
    ])
  })

  it("a pause that comes while a restarted node still starts holds the start until the node resumes, and a start never resumed revives nothing (swarm seed 96000484)", () => {
    const scenario = Fixtures.parse(`
name: paused-start
budget_ms: 30000
topology:
  strategy: ActiveActive
  regions: [{ id: a, nodes: 2 }, { id: b }]
startup: { restart_ms: { min: 300, max: 2000 } }
faults:
  - { at_ms: 500, kind: crash, target: a }
  - { at_ms: 1000, kind: restart, target: a }
  - { at_ms: 1500, kind: pause, target: a-node1 }
  - { at_ms: 6000, kind: resume, target: a-node1 }
  - { at_ms: 1500, kind: pause, target: a-node2 }
`)
    const read = (soonest: boolean) =>
      Startup.bootedFaults(scenario, scenario.faults, () => soonest)
        .filter((fault) => fault.kind === "restart")
        .map((fault) => [fault.atMs, "target" in fault ? fault.target : ""])
    // a-node1 serves no sooner than its resume at 6 s, and up to a whole start delay after it;
    // a-node2 is never resumed, so its start revives nothing (the crash lasts until the heal).
    expect(read(false)).toEqual([[8_000, "a-node1"]])
    // At the soonest the region served from 1.3 s, before the pause: the start stands.
    expect(read(true)).toEqual([[1_300, "a"]])
    // The region paused as a whole and resumed at 6 s serves up to a start delay after that, at
    // 8 s. With the start read at 3 s, before the pause, the window closed at the resume, 2 s early.
    const whole = { ...scenario, faults: [...scenario.faults.slice(0, 2), { atMs: 1_500, kind: "pause" as const, target: "a" }, { atMs: 6_000, kind: "resume" as const, target: "a" }] }
    expect(FaultWindows.windows(whole, 30_000)).toEqual([
      { startMs: 500, endMs: 8_000 },
      { startMs: 8_000, endMs: 10_000 }
    ])
  })

  it("a restarted node of the primary region opens no fencing window while another node of the region runs (it serves once that sibling answers), but does when it is the region's only node", () => {
    const restarts = (nodes: number, target: string) =>
      Fixtures.parse(`
name: restarts
budget_ms: 30000
topology:
  strategy: PrimaryReplica
  regions: [{ id: a, primary: true, nodes: ${nodes} }, { id: b }, { id: c }]
replication:
  heartbeat: { interval_ms: 200, timeout_ms: 800, recover_after: 3 }
  failover: { confirm_after_ms: 6000, check_interval_ms: 250 }
faults:
  - { at_ms: 1000, kind: crash, target: ${target} }
  - { at_ms: 2000, kind: restart, target: ${target} }
`)
    const confirmEnd = 2_000 + 800 + 600 + 6_000 + 250
    const ends = (scenario: Scenario.Scenario) => FaultWindows.windows(scenario, 20_000).map((window) => window.endMs)
    expect(ends(restarts(2, "a-node2"))).not.toContain(confirmEnd)
    expect(ends(restarts(1, "a-node1"))).toContain(confirmEnd)
    // Both nodes of the region down at once: nobody watched, the restarted ones wait to confirm.
    expect(ends(restarts(2, "a"))).toContain(confirmEnd)
  })

  it("a wipe restarts its nodes at once, yet peers may count the region stale a heartbeat timeout after its last answer, then need recover_after answers (swarm seed 56000638)", () => {
    const scenario = Fixtures.parse(`
name: wiped
budget_ms: 20000
topology:
  strategy: MultiMaster
  regions: [{ id: a }, { id: b }]
  vaults: [{ id: v, home: b, allowed: [b] }]
replication:
  heartbeat: { interval_ms: 300, timeout_ms: 900, recover_after: 4 }
network:
  latency: { fixed: 100 }
faults:
  - { at_ms: 3700, kind: wipe, target: b }
`)
    // The timeout, then (4 + 1) answers, one per 300 ms round.
    expect(FaultWindows.windows(scenario, 10_000)).toEqual([
      { startMs: 3_700, endMs: 4_600 },
      { startMs: 4_600, endMs: 6_100 }
    ])
    // After the heal, nothing: a wipe at the heal changes nothing the check judges.
    expect(FaultWindows.windows(scenario, 3_700)).toEqual([])
    expect(runScenario(Swarm.swarmScenario(56000638), 56000638).violations).toEqual([])
  })

  it("on a lossy network, writes may be refused at the start until a handshake lost on the link has been sent again and answered (swarm seed 43001210)", () => {
    const lossy = (loss: number) =>
      Fixtures.parse(`
name: lossy
budget_ms: 10000
topology:
  strategy: MultiMaster
  regions: [{ id: a }, { id: b }]
  vaults: [{ id: v, home: b, allowed: [a, b] }]
replication:
  heartbeat: { interval_ms: 200, timeout_ms: 600 }
network:
  latency: { fixed: 100 }
  loss: ${loss}
`)
    // No loss, no fault: no window. One lost handshake: the 1 s retransmission, the handshake's and
    // the heartbeat's round trips on a 100 ms link, and a 200 ms round.
    expect(FaultWindows.windows(lossy(0), 6000)).toEqual([])
    expect(FaultWindows.windows(lossy(0.01), 6000)).toEqual([{ startMs: 0, endMs: 1_600 }])
    // And the run that found it passes: the three writes refused before 1.2 s fall in it.
    expect(runScenario(Swarm.swarmScenario(43001210), 43001210).violations).toEqual([])
  })

  it("a primary region that starts later than the heartbeat timeout plus detect_after_ms may find another region promoted: writes may be refused until the role is handed back and the leases ran out (seeds 46000056, 46000146, 46000214 over primary-late-start-crash.yaml)", () => {
    const late = (atMs: number, regions = "[{ id: a, primary: true }, { id: b }, { id: c }]") =>
      Fixtures.parse(`
name: late
budget_ms: 30000
topology:
  strategy: PrimaryReplica
  regions: ${regions}
replication:
  heartbeat: { interval_ms: 500, timeout_ms: 3000, recover_after: 3 }
  failover: { detect_after_ms: 2000, promote_back_after_ms: 4000, check_interval_ms: 250 }
startup:
  at_ms: { a: ${atMs} }
`)
    const handBacks = (scenario: Scenario.Scenario) => FaultWindows.windows(scenario, 20_000).filter((window) => window.startMs > 0)
    // Started at 5 s, within the timeout and the detection delay: nobody is promoted, nothing to hand back.
    expect(handBacks(late(5_000))).toEqual([])
    // At 6.4 s: heard within a timeout, handed back after 4 s and a check, then a lease and three rounds: 3 + 4 + 0.25 + 3 + 1.5 s.
    expect(handBacks(late(6_400))).toEqual([{ startMs: 6_400, endMs: 18_150 }])
    // Two regions never fail over on their own.
    expect(handBacks(late(6_400, "[{ id: a, primary: true }, { id: b }]"))).toEqual([])
    for (const seed of [46000056, 46000146, 46000214]) {
      expect(runScenario(Swarm.swarmFrom(Fixtures.load("scenarios/primary-late-start-crash.yaml"), seed), seed).violations).toEqual([])
    }
  })

  it("a two-region PrimaryReplica run may refuse writes while a fresh primary-region disk waits for its bootstrap to page the other region: at the start and after each wipe of a primary node", () => {
    // A PrimaryReplica scenario with these regions, timers and faults.
    const fresh = (regions: string, faults: ReadonlyArray<string> = []) =>
      Fixtures.parse(
        [
          "name: fresh",
          "budget_ms: 10000",
          "topology:",
          "  strategy: PrimaryReplica",
          `  regions: ${regions}`,
          "replication:",
          "  heartbeat: { interval_ms: 500, timeout_ms: 2000 }",
          "  agent: { retry_delay_max_ms: 500, request_timeout_ms: 700 }",
          ...(faults.length === 0 ? [] : ["faults:", ...faults.map((fault) => `  - ${fault}`)])
        ].join("\n") + "\n"
      )
    const scenario = fresh("[{ id: a, primary: true, nodes: 2 }, { id: b }]", ["{ at_ms: 3000, kind: wipe, target: a-node2 }", "{ at_ms: 5000, kind: wipe, target: b-node1 }"])
    // Each lasts the bootstrap's capped retry delay, a request timeout and a heartbeat timeout.
    // Each wipe also opens the peers' silence (a heartbeat timeout) and the hysteresis after it
    // (`recover_after` 3, so four 500 ms rounds): 3000-5000-7000 and 5000-7000-9000.
    expect(FaultWindows.windows(scenario, 6000)).toEqual([
      { startMs: 0, endMs: 3200 },
      { startMs: 3000, endMs: 5000 },
      { startMs: 3000, endMs: 6200 },
      { startMs: 5000, endMs: 7000 },
      { startMs: 5000, endMs: 7000 },
      { startMs: 7000, endMs: 9000 }
    ])
    // No page comes while a fault stands between the regions: the wait runs from its end.
    const cut = fresh("[{ id: a, primary: true }, { id: b }]", [
      "{ at_ms: 1000, kind: isolate, region: b }",
      "{ at_ms: 2500, kind: heal }",
      "{ at_ms: 6000, kind: wipe, target: a-node1 }",
      "{ at_ms: 6500, kind: crash, target: b-node1 }",
      "{ at_ms: 9000, kind: restart, target: b-node1 }"
    ])
    // (The fencing rule below adds its own windows after the cut and the crash, and the
    // hysteresis rule 2 s after each; the wipe opens the peers' silence, 6000-8000, and the
    // hysteresis after it.)
    expect(FaultWindows.windows(cut, 9500)).toEqual([
      { startMs: 0, endMs: 5700 },
      { startMs: 1000, endMs: 2500 },
      { startMs: 1000, endMs: 16250 },
      { startMs: 2500, endMs: 4500 },
      { startMs: 6000, endMs: 8000 },
      { startMs: 6000, endMs: 12200 },
      { startMs: 6500, endMs: 9000 },
      { startMs: 6500, endMs: 22750 },
      { startMs: 8000, endMs: 10000 },
      { startMs: 9000, endMs: 11000 }
    ])
    // Three regions have a lease instead: no bootstrap window, but none is held at the start (below).
    const three = fresh("[{ id: a, primary: true }, { id: b }, { id: c }]")
    expect(FaultWindows.windows(three, 6000)).toEqual([{ startMs: 0, endMs: 2000 }])
    // A wipe restarts a primary-region node without a lease, as at the start (3000-5000);
    // another region's does not. Every wipe opens the peers' silence and the hysteresis after
    // it: 3000-5000-7000 for a's, 4000-6000-8000 for b's.
    const wiped = fresh("[{ id: a, primary: true }, { id: b }, { id: c }]", ["{ at_ms: 3000, kind: wipe, target: a-node1 }", "{ at_ms: 4000, kind: wipe, target: b-node1 }"])
    expect(FaultWindows.windows(wiped, 6000)).toEqual([
      { startMs: 0, endMs: 2000 },
      { startMs: 3000, endMs: 5000 },
      { startMs: 3000, endMs: 5000 },
      { startMs: 4000, endMs: 6000 },
      { startMs: 5000, endMs: 7000 },
      { startMs: 6000, endMs: 8000 }
    ])
  })

  it("under PrimaryReplica a window with a cut or a stopped node goes on while a fenced primary waits to confirm itself", () => {
    const scenario = Fixtures.parse(`
name: fenced
budget_ms: 30000
topology:
  strategy: PrimaryReplica
  regions: [{ id: a, primary: true }, { id: b }, { id: c }]
replication:
  heartbeat: { interval_ms: 200, timeout_ms: 800, recover_after: 3 }
  failover: { confirm_after_ms: 6000, check_interval_ms: 250 }
faults:
  - { at_ms: 1000, kind: isolate, region: a }
  - { at_ms: 3000, kind: heal }
  - { at_ms: 4000, kind: store, region: b, slow_ms: { min: 5, max: 10 }, fail_rate: 0 }
  - { at_ms: 5000, kind: store, region: b, slow_ms: { min: 0, max: 0 }, fail_rate: 0 }
`)
    // The heartbeat timeout, three rounds to recover, confirm_after_ms and a check: 800 + 600 + 6000 + 250.
    // The first window is the lease none is held at the start (the next test).
    // After the cut, four 200 ms rounds for the hysteresis rule (a store fault marks nobody Unreachable).
    expect(FaultWindows.windows(scenario, 20_000)).toEqual([
      { startMs: 0, endMs: 800 },
      { startMs: 1000, endMs: 3000 },
      { startMs: 1000, endMs: 10650 },
      { startMs: 3000, endMs: 3800 },
      { startMs: 4000, endMs: 5000 }
    ])
    // Without a primary to fence there is nothing to wait for but the peers to come back.
    expect(FaultWindows.windows({ ...scenario, topology: { ...scenario.topology, strategy: "ActiveActive" } }, 20_000)).toEqual([
      { startMs: 1000, endMs: 3000 },
      { startMs: 3000, endMs: 3800 },
      { startMs: 4000, endMs: 5000 }
    ])
  })

  it("residency flags a region that logged a vault it may not hold", () => {
    const outside = change("a", 1, { vault: "local" })
    expect(Checkers.residency([region("a", [outside], []), region("b", [outside], [])], topology).map((violation) => violation.details["region"])).toEqual(["b"])
  })

  it("under MultiMaster, residency flags a change written outside its vault's home region, whether a disk logged it or only an acknowledged write holds it", () => {
    const vaults = [{ vault: "acme", homeRegion: "a" }]
    const home = change("a", 1, { vault: "acme" })
    const strayed = change("b", 2, { vault: "acme" })
    // A vault without a placement is not judged here.
    const unplaced = change("b", 3, { vault: "other" })
    expect(Checkers.homeRegions([region("a", [home, unplaced], []), region("b", [home, unplaced], [])], [], vaults)).toEqual([])
    const logged = Checkers.homeRegions([region("a", [home, strayed], []), region("b", [strayed], [])], [], vaults)
    expect(logged.map((violation) => [violation.checker, violation.message])).toEqual([["residency", "1 change(s) were written outside their vault's home region"]])
    expect(logged[0]!.details["examples"]).toEqual([{ change: Oracle.idOf(strayed), vault: "acme", writtenIn: "b", home: "a" }])
    const history = new History()
    history.end(history.begin("b", [], 0), "acknowledged", 1, { changes: [strayed] })
    history.end(history.begin("b", [], 0), "failed", 1)
    expect(Checkers.homeRegions([region("a", [home], [])], history.writes, vaults)).toHaveLength(1)
  })

  it("acknowledged flags an acknowledged change that is in no region's log", () => {
    const history = new History()
    const write = history.begin("a", [], 0)
    history.end(write, "acknowledged", 1, { changes: [change("a", 7)] })
    expect(Checkers.acknowledged(history.writes, [region("a", [change("a", 1)], [])])).toHaveLength(1)
  })

  it("acknowledged flags an acknowledged change whose id a log holds only for another change (a lost commit's id used again), and passes a copy of the change itself", () => {
    const history = new History()
    const write = history.begin("a", [], 0)
    const acknowledgedChange = change("a", 7, { physicalMs: 100 })
    history.end(write, "acknowledged", 1, { changes: [acknowledgedChange] })
    // The node lost the commit and numbered its next change 7 again: another tuple, a later timestamp.
    const reused = { ...change("a", 7, { physicalMs: 900, vault: "other" }) }
    const violations = Checkers.acknowledged(history.writes, [region("a", [reused], []), region("b", [reused], [])])
    expect(violations).toHaveLength(1)
    expect(violations[0]?.message).toBe("1 acknowledged change(s) are in no region's log (1 of them: their id names another change there)")
    expect(violations[0]?.details["idNamesAnother"]).toBe(1)
    // A region that holds the change itself, as a copy decoded from bytes, keeps it.
    const copy = { ...acknowledgedChange, tuple: { ...acknowledgedChange.tuple }, timestamp: { ...acknowledgedChange.timestamp } }
    expect(Checkers.acknowledged(history.writes, [region("a", [reused], []), region("b", [copy], [])])).toEqual([])
    // Another operation or timestamp under the id is another change too.
    expect(Checkers.acknowledged(history.writes, [region("a", [{ ...acknowledgedChange, op: "delete" }], [])])).toHaveLength(1)
    expect(Checkers.acknowledged(history.writes, [region("a", [{ ...acknowledgedChange, timestamp: { physicalMs: 100, logical: 1 } }], [])])).toHaveLength(1)
  })

  it("epochs flags two regions serving one epoch, and a write acknowledged after another region took a write in a newer epoch", () => {
    const history = new History()
    const newer = history.begin("b", [], 350)
    Object.assign(newer, { targetRegion: "b", epoch: 1 })
    history.end(newer, "acknowledged", 360, { changes: [] })
    // Admitted before the newer epoch's first write, acknowledged after it: judged at acknowledgement.
    const stale = history.begin("a", [], 340)
    Object.assign(stale, { targetRegion: "a", epoch: 0 })
    history.end(stale, "acknowledged", 501, { changes: [] })
    // Acknowledged before any write of the newer epoch: the old primary's lease still held.
    const early = history.begin("a", [], 100)
    Object.assign(early, { targetRegion: "a", epoch: 0 })
    history.end(early, "acknowledged", 320, { changes: [] })
    const nodes: ReadonlyArray<Checkers.NodeEpochs> = [
      { nodeId: "a-node1", regionId: "a", history: [{ epoch: 0, primary: "a", fenced: false, atMs: 0, cause: "initial" }, { epoch: 1, primary: "a", fenced: false, atMs: 400, cause: "promoted" }] },
      { nodeId: "b-node1", regionId: "b", history: [{ epoch: 1, primary: "b", fenced: false, atMs: 300, cause: "promoted" }] }
    ]
    const messages = Checkers.epochs(history.writes, nodes).map((violation) => violation.message)
    expect(messages.some((message) => message.startsWith("epoch 1: a and b each served as primary"))).toBe(true)
    expect(messages.find((message) => message.includes("split brain"))).toMatch(/^1 write\(s\) were accepted/)
  })

  // Swarm seed 51000450 over two-region-handback-pause.yaml: both disks of the region the operator
  // had promoted (epoch 1) were wiped while the old primary was down; no disk recorded epoch 1
  // any more, and the old primary served on in epoch 0, as nothing could tell it otherwise.
  it("epochs: an epoch forgotten with wiped disks ends there; older-epoch writes before that are still a split brain, and its number may be used again", () => {
    const history = new History()
    const write = (region: string, epoch: number, atMs: number) => {
      const record = history.begin(region, [], atMs)
      Object.assign(record, { targetRegion: region, epoch })
      history.end(record, "acknowledged", atMs, { changes: [] })
    }
    write("b", 1, 3_200)
    write("a", 0, 7_000)
    const nodes: ReadonlyArray<Checkers.NodeEpochs> = [
      { nodeId: "a-node1", regionId: "a", history: [{ epoch: 0, primary: "a", fenced: false, atMs: 0, cause: "initial" }] },
      { nodeId: "b-node1", regionId: "b", history: [{ epoch: 1, primary: "b", fenced: false, atMs: 3_100, cause: "promoted" }] }
    ]
    const splitBrain = (forgotten: ReadonlyArray<Checkers.ForgottenEpoch>) =>
      Checkers.epochs(history.writes, nodes, "acknowledged", forgotten).filter((violation) => violation.message.includes("split brain"))
    expect(splitBrain([])).toHaveLength(1)
    expect(splitBrain([{ epoch: 1, atMs: 4_540 }])).toEqual([])
    // Forgotten only after the older epoch's write: that write was a split brain all the same.
    expect(splitBrain([{ epoch: 1, atMs: 7_500 }])).toHaveLength(1)
    // Another epoch forgotten changes nothing.
    expect(splitBrain([{ epoch: 2, atMs: 4_540 }])).toHaveLength(1)
    // Epoch 1 begun again by region a after it was forgotten: not two regions in one epoch.
    write("a", 1, 9_000)
    const again = [...nodes, { nodeId: "a-node2", regionId: "a", history: [{ epoch: 1, primary: "a", fenced: false, atMs: 8_800, cause: "promoted" as const }] }]
    const messages = (forgotten: ReadonlyArray<Checkers.ForgottenEpoch>) => Checkers.epochs(history.writes, again, "acknowledged", forgotten).map((violation) => violation.message)
    expect(messages([{ epoch: 1, atMs: 4_540 }])).toEqual([])
    expect(messages([])).toEqual(expect.arrayContaining([expect.stringMatching(/^epoch 1: b and a each served as primary/), expect.stringMatching(/^epoch 1: b and a each accepted writes/)]))
  })

  it("lost writes are labelled missing, superseded, concurrent, clock-skew or tie", () => {
    const history = new History()
    const acknowledge = (each: Change.Change, atMs: number) => history.end(history.begin(each.originRegion, [], atMs), "acknowledged", atMs, { changes: [each] })
    const superseded = change("a", 1, { physicalMs: 10 })
    // b#1 and c#1 carry equal timestamps; the tie goes to the greater node id, c-node1.
    const tied = change("b", 1, { context: { a: 1 }, physicalMs: 50 })
    const winner = change("c", 1, { context: { a: 1 }, physicalMs: 50 })
    // a#2 was acknowledged after the winner but carries an earlier timestamp.
    const skewed = change("a", 2, { context: { a: 1 }, physicalMs: 40 })
    acknowledge(superseded, 10)
    acknowledge(tied, 20)
    acknowledge(winner, 25)
    acknowledge(skewed, 30)
    // Acknowledged and in no log: a#3 of this tuple, and a#4 whose id a log holds for another change.
    const gone = change("a", 3, { context: { a: 2 }, physicalMs: 60 })
    const replaced = change("a", 4, { context: { a: 3 }, physicalMs: 70 })
    acknowledge(gone, 35)
    acknowledge(replaced, 40)
    const reused = change("a", 4, { physicalMs: 80, vault: "other" })
    const verdicts = Oracle.evaluate([superseded, tied, winner, skewed, reused], lww)
    expect(verdicts.get(Tuple.key(tuple()))?.winner).toBe(winner)
    const { losses, examples } = Checkers.classifyLosses(history.writes, verdicts, history, "LastWriteWins")
    expect(losses).toEqual({ survived: 1, missing: 2, superseded: 1, concurrent: 0, "clock-skew": 1, tie: 1 })
    expect(examples.filter((example) => example["cause"] === "missing")).toEqual([
      { change: "a#3", cause: "missing", write: 5 },
      { change: "a#4", cause: "missing", write: 6 }
    ])
    // The report's fate says the same: lost, to nobody.
    const judged = { history, verdicts, strategy: "LastWriteWins" as const, lostWithDisk: new Set<string>() }
    expect(Fates.fateOf(gone, judged)).toEqual({ kind: "lost", cause: "missing", lostTo: undefined })
    expect(Fates.fateOf(replaced, judged)).toEqual({ kind: "lost", cause: "missing", lostTo: undefined })
    expect(Fates.fateOf(superseded, judged)).toEqual({ kind: "superseded", by: "a#2" })
  })

  it("residency on the wire flags a change sent to a region outside its vault's set, even if it was refused and never stored", () => {
    const allowed = Checkers.allowedBy([{ vault: "gdpr", allowedRegions: ["eu"] }, { vault: "open" }])
    expect([allowed("gdpr", "eu"), allowed("gdpr", "us"), allowed("open", "us"), allowed("unplaced", "us")]).toEqual([true, false, true, true])
    expect(Checkers.residencyOnWire([])).toEqual([])
    const leaked = Checkers.residencyOnWire([{ fromNode: "eu-node1", toRegion: "us", change: change("eu", 1, { vault: "gdpr" }) }])
    expect(leaked.map((violation) => violation.checker)).toEqual(["residency"])
    expect(leaked[0]!.message).toMatch(/1 change\(s\) were sent to a region outside/)
  })
  it("handBack flags a hand-back sooner than promote_back_after_ms after a seen outage of the original region, and nothing else", () => {
    const handedBack = (atMs: number): Checkers.NodeEpochs => ({
      nodeId: "eu-node1",
      regionId: "eu",
      history: [
        { epoch: 0, primary: "us", fenced: false, atMs: 0, cause: "initial" },
        { epoch: 1, primary: "eu", fenced: false, atMs: 3_000, cause: "promoted" },
        { epoch: 2, primary: "us", fenced: false, atMs, cause: "handed-back" }
      ]
    })
    const rules = { promoteBackAfterMs: 2_000, visibleAfterMs: 2_440 }
    const outage = [{ startMs: 1_500, endMs: 4_000 }]
    const early = Checkers.handBack([handedBack(4_200)], outage, rules)
    expect(early.map((violation) => violation.checker)).toEqual(["epochs"])
    expect(early[0]!.message).toMatch(/eu-node1 handed the role back to us 200 ms after its outage \(1500-4000 ms\) ended/)
    expect(Checkers.handBack([handedBack(6_000)], outage, rules)).toEqual([])
    // An outage its peers need not have seen (no longer than visibleAfterMs), or one after the hand-back: no rule.
    expect(Checkers.handBack([handedBack(4_200)], [{ startMs: 1_600, endMs: 4_000 }], rules)).toEqual([])
    expect(Checkers.handBack([handedBack(1_000)], outage, rules)).toEqual([])
  })

  it("pausesOfRunningNodes: a pause of a node whose process has not started yet does nothing, and the outage it made goes with it", () => {
    const scenario = Fixtures.parse(`name: t
budget_ms: 10000
topology:
  strategy: PrimaryReplica
  regions:
    - { id: us, primary: true, nodes: 2 }
    - { id: eu }
faults:
  - { at_ms: 1000, kind: pause, target: us }
  - { at_ms: 3000, kind: resume, target: us }
  - { at_ms: 4000, kind: pause, target: us-node2 }
  - { at_ms: 6000, kind: resume, target: us-node2 }
`)
    const run = (starts: Record<string, number>) => FaultWindows.pausesOfRunningNodes(scenario, new Map(Object.entries(starts)))
    const pauses = (starts: Record<string, number>) => run(starts).faults.filter((fault) => fault.kind === "pause").map((fault) => [fault.atMs, "target" in fault ? fault.target : ""])
    // Both running: the schedule as declared, and the region's outage from 1 to 3 s.
    expect(run({ "us-node1": 0, "us-node2": 0 })).toEqual(scenario)
    expect(FaultWindows.regionOutages(run({ "us-node1": 0, "us-node2": 0 }), "us", 8_000)).toEqual([{ startMs: 1_000, endMs: 3_000 }])
    // us-node2 starts at 2 s: the region's pause stops us-node1 alone, and the region was never all down.
    expect(pauses({ "us-node1": 0, "us-node2": 2_000 })).toEqual([
      [1_000, "us-node1"],
      [4_000, "us-node2"]
    ])
    expect(FaultWindows.regionOutages(run({ "us-node1": 0, "us-node2": 2_000 }), "us", 8_000)).toEqual([])
    // Neither started by then: nothing is paused until us-node2's own pause at 4 s.
    expect(pauses({ "us-node1": 1_500, "us-node2": 1_500 })).toEqual([[4_000, "us-node2"]])
  })

  it("seed 882 over chaos-primary-pause.yaml: a pause drawn before the primary's late start does nothing, so the hand-back 2.3 s after that start is on time", () => {
    const scenario = Swarm.swarmFrom(Fixtures.load("scenarios/chaos-primary-pause.yaml"), 882)
    expect(scenario.startup?.atMs).toMatchObject({ "us-west-1": 4_700 })
    expect(scenario.faults.filter((fault) => fault.kind === "pause" || fault.kind === "resume")).toMatchObject([
      { atMs: 2_410, kind: "pause", target: "us-west-1-node1" },
      { atMs: 5_510, kind: "resume", target: "us-west-1-node1" }
    ])
    const result = runScenario(scenario, 882)
    expect(result.violations).toEqual([])
    const handedBack = result.failover?.epochs.find((epoch) => epoch.primary === "us-west-1" && epoch.epoch > 0)
    expect(handedBack?.startedAtMs).toBeGreaterThan(4_700 + scenario.replication.failover.promoteBackAfterMs)
    expect(handedBack?.startedAtMs).toBeLessThan(5_510 + scenario.replication.failover.promoteBackAfterMs)
  })

  it("regionOutages: when every node of a region is stopped, from the declared schedule; undefined where it cannot say", () => {
    const scenario = (faults: string, usNodes = 2) =>
      Fixtures.parse(`name: t
budget_ms: 10000
topology:
  strategy: PrimaryReplica
  regions:
    - { id: us, primary: true, nodes: ${usNodes} }
    - { id: eu }
faults:
${faults}
`)
    const both = scenario(`  - { at_ms: 1000, kind: crash, target: us-node1 }
  - { at_ms: 1500, kind: pause, target: us-node2 }
  - { at_ms: 3000, kind: restart, target: us-node1 }
  - { at_ms: 4000, kind: resume, target: us-node2 }
  - { at_ms: 5000, kind: crash, target: us }`)
    expect(FaultWindows.regionOutages(both, "us", 8_000)).toEqual([
      { startMs: 1_500, endMs: 3_000 },
      { startMs: 5_000, endMs: 8_000 }
    ])
    expect(FaultWindows.regionOutages(both, "eu", 8_000)).toEqual([])
    expect(FaultWindows.regionOutages(scenario("  - { at_ms: 1000, kind: crash, target: us-node1, graceful: true }"), "us", 8_000)).toBeUndefined()
    expect(FaultWindows.regionOutages(scenario("  - { at_ms: 1000, kind: pause, target: us-node1 }\n  - { at_ms: 2000, kind: restart, target: us-node1 }"), "us", 8_000)).toBeUndefined()
    expect(FaultWindows.longestPause(both, ["us-node2", "eu-node1"], 8_000)).toBe(2_500)
    // A stalled node answers heartbeats until its watchdog ends it, which the schedule cannot
    // date: no silence from the stall, only from the crash that ends the stalled process.
    const single = (faults: string) => scenario(faults, 1)
    const stalled = single(`  - { at_ms: 1000, kind: stall, target: us-node1 }
  - { at_ms: 5000, kind: crash, target: us-node1 }
  - { at_ms: 6000, kind: restart, target: us-node1 }`)
    expect(FaultWindows.regionOutages(stalled, "us", 8_000)).toEqual([{ startMs: 5_000, endMs: 6_000 }])
    // A stall of a crashed node leaves it down, and its restart ends the outage.
    const stalledDown = single(`  - { at_ms: 1000, kind: crash, target: us-node1 }
  - { at_ms: 2000, kind: stall, target: us-node1 }
  - { at_ms: 6000, kind: restart, target: us-node1 }`)
    expect(FaultWindows.regionOutages(stalledDown, "us", 8_000)).toEqual([{ startMs: 1_000, endMs: 6_000 }])
  })
})
