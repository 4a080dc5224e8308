/**
 * A chaos run as a run report, without real processes: a hand-made finished run (two regions,
 * five writes acknowledged, refused, never connected and unanswered; a partition, a crash with
 * its restart, a clock jump and a store fault the harness could not apply; feeds that saw each
 * change reach the other region after the heal) goes through the judge's own adapters
 * (`Judge.history`, `Judge.regionState`, the reference rule) and `ChaosReport.make`, and is
 * written by `RunFolder.write` into a folder reserved before the run. The report must carry the
 * harness's times, pair each lasting fault with what ended it, leave out what was not applied,
 * name the concurrent loss, measure lag from the feeds, say which plots real processes do not
 * record, and keep the chaos-specific facts in result.json.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import * as ChaosReport from "../../src/chaos/ChaosReport.js"
import * as Judge from "../../src/chaos/Judge.js"
import { type ChaosResult, slowerThanDeclared } from "../../src/chaos/Run.js"
import type * as Workload from "../../src/chaos/Workload.js"
import type * as Change from "../../src/replication/Change.js"
import type * as RunReport from "../../src/report/RunReport.js"
import * as RunFolder from "../../src/report/RunFolder.js"
import * as Checkers from "../../src/sim/Checkers.js"
import * as Fixtures from "../sim/fixtures/scenarios.js"

const root = fs.mkdtempSync(path.join(os.tmpdir(), "inferadb-chaos-report-"))
afterAll(() => fs.rmSync(root, { recursive: true, force: true }))

const scenario = Fixtures.parse(`
name: chaos-synthetic
budget_ms: 20000
topology:
  strategy: ActiveActive
  regions: [{ id: a, nodes: 1 }, { id: b, nodes: 1 }]
replication: { conflict_resolution: LastWriteWins }
workload: { start_ms: 100, duration_ms: 3000, rate_per_sec: 2, vaults: [acme] }
faults:
  - { at_ms: 1000, kind: isolate, region: a }
  - { at_ms: 1200, kind: store, region: b, slow_ms: [5, 40] }
  - { at_ms: 2000, kind: crash, target: b-node1 }
  - { at_ms: 2500, kind: restart, target: b-node1 }
  - { at_ms: 2600, kind: clock_jump, target: a, delta_ms: 200 }
  - { at_ms: 3000, kind: heal }
checks: [safety, acknowledged, convergence]
`)

const tuple = { vault: "acme", resource: "document:d", relation: "viewer", subject: "user:x" }
const change = (region: string, physicalMs: number): Change.Change => ({
  id: { origin: `${region}-node1`, seq: 1 },
  op: "insert",
  tuple,
  timestamp: { physicalMs, logical: 0 },
  originRegion: region,
  originNode: `${region}-node1`,
  originRevision: 1,
  committedAtMs: physicalMs,
  context: {}
})
// Both taken during the partition's run-up, neither seeing the other: last-write-wins keeps b's.
const fromA = change("a", 500)
const fromB = change("b", 1400)

const op = (id: number, region: string, status: Workload.Status, invokedAtMs: number, endedAtMs: number | undefined, reason?: string): Workload.Op => ({
  id,
  atMs: invokedAtMs,
  region,
  node: `${region}-node1`,
  operations: [{ op: "insert", tuple }],
  target: `${region}-node1`,
  status,
  invokedAtMs,
  sentAtMs: invokedAtMs,
  endedAtMs,
  reason,
  revision: status === "acknowledged" ? 1 : undefined,
  position: status === "acknowledged" ? 1 : undefined,
  epoch: status === "acknowledged" ? 0 : undefined,
  generation: status === "acknowledged" ? 1 : undefined
})

const ops = [
  op(1, "a", "acknowledged", 480, 510),
  op(2, "b", "acknowledged", 1390, 1500),
  op(3, "a", "failed", 1600, 1620, "9 FAILED_PRECONDITION: vault acme is read-only"),
  op(4, "b", "failed", 2100, 2101, "14 UNAVAILABLE: No connection established"),
  op(5, "a", "unknown", 2200, 4200, "4 DEADLINE_EXCEEDED: Deadline exceeded")
]
const committed = new Map([
  [1, [fromA]],
  [2, [fromB]]
])
const durable = [
  { change: fromA, regionId: "a", atMs: 505 },
  { change: fromB, regionId: "b", atMs: 1450 },
  { change: fromA, regionId: "b", atMs: 3210 },
  { change: fromB, regionId: "a", atMs: 3300 }
]

const history = Judge.history(ops, (node) => node.replace("-node1", ""), (each) => committed.get(each.id) ?? [], durable)
const log = [fromA, fromB].map((each, index) => ({ position: index + 1, change: each, receivedFrom: null, appliedAtMs: 0 }))
const regions = [Judge.regionState("a", "a-node1", log), Judge.regionState("b", "b-node1", log)]
const ruled = Checkers.reference(regions, { strategy: "LastWriteWins", regionPriorities: [] })
const verdicts = "verdicts" in ruled ? ruled.verdicts : new Map()

const applied = [
  { scheduledAtMs: 1000, startedAtMs: 1002, atMs: 1003, kind: "isolate", detail: "isolate a (nftables)" },
  { scheduledAtMs: 1200, startedAtMs: 1200, atMs: 1201, kind: "store", detail: "store: not applied (store faults need a hook inside the node's store)" },
  { scheduledAtMs: 2000, startedAtMs: 2001, atMs: 2002, kind: "crash", detail: "crash b-node1 (SIGKILL)" },
  { scheduledAtMs: 2500, startedAtMs: 2503, atMs: 2504, kind: "restart", detail: "restart b-node1 (same directory)" },
  { scheduledAtMs: 2600, startedAtMs: 2600, atMs: 2601, kind: "clock_jump", detail: "clock of a-node1 jumps 200 ms (libfaketime)" },
  { scheduledAtMs: 3000, startedAtMs: 3005, atMs: 3006, kind: "heal", detail: "heal network (nftables)" },
  { scheduledAtMs: 3100, startedAtMs: 3108, atMs: 3109, kind: "heal_all", detail: "heal all: heal network" }
]

const result: ChaosResult = {
  mode: "chaos",
  scenario: scenario.name,
  seed: "7",
  canary: null,
  deterministic: false,
  note: "A real run is not deterministic.",
  passed: true,
  converged: true,
  violations: [],
  notApplied: ["store: store faults need a hook inside the node's store"],
  notJudged: [],
  chosen: { clocks: { "a-node1": { offsetMs: 3, driftPpm: 0 }, "b-node1": { offsetMs: -2, driftPpm: 0 } }, clientWrites: "WriteStream" },
  clocksObserved: { "a-node1": { samples: 3, aheadMs: 4.5, withinMs: 2 } },
  epochMs: 1_790_000_000_000,
  writes: { attempted: 5, acknowledged: 2, failed: 2, unknown: 1, notSent: 0 },
  conflicts: { tuples: 1, concurrent: 1 },
  lostWrites: { survived: 1, missing: 0, superseded: 0, concurrent: 1, "clock-skew": 0, tie: 0 },
  lostWithDisk: [],
      lostWithRemovedRegion: [],
  unobservedBeforeWipe: [],
  healedAtMs: 3100,
  convergenceMs: 300,
  lagMs: { samples: 2, p50: 1800, p90: 2700, p99: 2700, max: 2700 },
  faults: applied,
  nodes: {
    "a-node1": { address: "10.0.0.1", incarnations: 1, exits: [], drains: [], epochChanges: [], logEntries: 2 },
    "b-node1": { address: "10.0.0.2", incarnations: 2, exits: ["SIGKILL"], drains: [], epochChanges: [], logEntries: 2 }
  },
  restarts: [{ node: "b-node1", atMs: 2504, listeningAfterMs: 610, readyAfterMs: 1320 }],
  wallMs: 9000,
  notes: [],
  runFolder: "(set below)"
}

const replay = "inferadb-repl chaos run scenarios/chaos-synthetic.yaml --seed 7"

describe("a chaos run as a run report", () => {
  it("a restart slower to be ready than the scenario's startup.restart_ms.max is noted (the simulator never draws it); none without a range", () => {
    // Listening is what counts (a wiped node's bootstrap before it is ready is the simulator's own to run).
    const starts = [
      { node: "b-node1", startMs: 2504.4, listeningMs: 3100, endMs: 9824 },
      { node: "a-node1", startMs: 5000, listeningMs: 9100.2, endMs: 9300 },
      { node: "a-node1", startMs: 12000, endMs: Number.POSITIVE_INFINITY }
    ]
    expect(slowerThanDeclared({ ...scenario, startup: { spreadMs: 0, restartMs: { min: 300, max: 3500 } } }, starts)).toEqual([
      "5000 ms: a-node1's process took 4100 ms to listen after its restart, longer than startup.restart_ms.max (3500 ms), which the simulator draws up to"
    ])
    expect(slowerThanDeclared(scenario, starts)).toEqual([])
  })

  const report = ChaosReport.make({ scenario, replay, result, history, verdicts, durationMs: 4500 })

  it("records every operation with the harness's times and how the client saw it end", () => {
    const answers = report.events.filter((event): event is RunReport.OperationEvent => event.type === "op" && event.phase !== "invoke")
    expect(answers.map((event) => [event.op, event.phase, event.atMs, event.node])).toEqual([
      [1, "ok", 510, "a-node1"],
      [2, "ok", 1500, "b-node1"],
      [3, "rejected", 1620, "a-node1"],
      [4, "failed", 2101, "b-node1"],
      [5, "unknown", 4200, "a-node1"]
    ])
    expect(answers[0]!.changes).toEqual([report.lostWrites[0]!.change])
    expect(report.events.filter((event) => event.type === "op" && event.phase === "invoke").map((event) => event.atMs)).toEqual([480, 1390, 1600, 2100, 2200])
  })

  it("pairs each lasting fault with the applied fault that ended it and leaves out what was not applied", () => {
    const faults = report.events.filter((event): event is RunReport.FaultEvent => event.type === "fault")
    expect(faults.map((event) => [event.kind, event.phase, event.atMs])).toEqual([
      ["isolate", "applied", 1002],
      ["crash", "applied", 2001],
      ["crash", "healed", 2504],
      ["clock_jump", "applied", 2600],
      ["isolate", "healed", 3006]
    ])
    expect(faults.find((event) => event.kind === "crash")!.nodes).toEqual(["b-node1"])
    expect(faults.find((event) => event.kind === "isolate")!.regions).toEqual(["a"])
  })

  it("measures lag from the feeds, names the concurrent loss and the conflict", () => {
    const replicated = report.events.filter((event): event is RunReport.ReplicatedEvent => event.type === "replicated")
    expect(replicated.map((event) => [event.region, event.lagMs])).toEqual([
      ["b", 2700],
      ["a", 1800]
    ])
    expect(report.lostWrites).toHaveLength(1)
    expect(report.lostWrites[0]).toMatchObject({ write: 1, region: "a", cause: "concurrent", acknowledgedAtMs: 510, lostToRegion: "b", tuple: expect.stringContaining("document:d") })
    expect(report.conflicts).toHaveLength(1)
    expect(report.checks.map((check) => [check.name, check.valid])).toEqual([
      ["safety", true],
      ["acknowledged", true],
      ["convergence", true]
    ])
    expect(report.failover).toBeUndefined()
    expect(report.unrecorded?.messages).toBe(ChaosReport.messagesUnrecorded)
  })

  it("writes the simulator's folder: report.html with verdict, lag and the unrecorded plots named, and chaos facts in result.json", () => {
    const now = new Date("2026-11-30T09:00:00.000Z")
    const directory = RunFolder.reserve(root, scenario.name, "7", now)
    expect(path.relative(root, directory)).toBe(path.join("chaos-synthetic", "7-20261130T090000.000Z"))
    fs.mkdirSync(path.join(directory, "nodes"))
    const written = RunFolder.write(root, report, { now: new Date("2026-11-30T09:00:09.000Z"), directory, scenarioText: "name: chaos-synthetic\n" })
    expect(written.directory).toBe(directory)
    expect(fs.readdirSync(directory).sort()).toEqual([...RunFolder.files, "nodes"].sort())
    expect(fs.readlinkSync(written.latest!)).toBe(path.basename(directory))

    const html = fs.readFileSync(path.join(directory, "report.html"), "utf8")
    expect(html).toContain('<span class="verdict valid">valid</span>')
    expect(html).toContain(replay)
    expect(html).toMatch(/<path[^>]*class="lag-path lag-b"[^>]*d="M/)
    expect(html).toContain('class="fault-band"')
    expect(html).toContain("Not recorded on real processes")
    expect(html).toContain(report.lostWrites[0]!.change)
    expect(html).not.toMatch(/<script|https?:\/\/(?!www\.w3\.org)/)

    const json = JSON.parse(fs.readFileSync(path.join(directory, "result.json"), "utf8")) as Record<string, unknown>
    expect(Object.keys(json)[0]).toBe("valid")
    expect(json).toMatchObject({ valid: true, scenario: "chaos-synthetic", seed: "7", replay, run: { mode: "chaos", notApplied: result.notApplied, clocksObserved: result.clocksObserved, nodes: result.nodes } })
    expect((json["lostWrites"] as ReadonlyArray<unknown>).length).toBe(1)

    const markdown = fs.readFileSync(path.join(directory, "report.md"), "utf8")
    expect(markdown).toContain("passed on real processes")
    expect(markdown).toContain("store: store faults need a hook")
    expect(markdown).toMatch(/\| b-node1 \| 10\.0\.0\.2 \| 2 \| SIGKILL \| 2 \|/)
    // How long the restarted process took to be ready, to set against startup.restart_ms.
    expect(markdown).toContain("b-node1 at 2504 ms: listening after 610 ms, ready after 1320 ms")
    expect(html).toContain("b-node1 at 2504 ms: listening after 610 ms, ready after 1320 ms")
    expect(json).toMatchObject({ run: { restarts: result.restarts } })
    const lines = fs.readFileSync(path.join(directory, "history.jsonl"), "utf8").trimEnd().split("\n")
    expect(lines).toHaveLength(report.events.length)
  })
})

/** Region a, the primary, crashes at 1 s and restarts at 5 s; b is promoted and takes writes meanwhile. */
const primaryLost = Fixtures.parse(`
name: chaos-failover-story
budget_ms: 20000
topology:
  strategy: PrimaryReplica
  regions: [{ id: a, priority: 1, primary: true }, { id: b, priority: 2 }]
replication: { conflict_resolution: LastWriteWins }
workload: { start_ms: 100, duration_ms: 3000, rate_per_sec: 2, vaults: [acme] }
faults: [{ at_ms: 1000, kind: crash, target: a-node1 }, { at_ms: 5000, kind: restart, target: a-node1 }]
checks: [epochs, failover]
`)

describe("a PrimaryReplica chaos run's failover story", () => {
  // a's write just before the crash reaches b only after b's promotion; b's own write comes after it.
  const beforeLoss = { ...change("a", 900), tuple: { ...tuple, subject: "user:before" } }
  const elsewhere = { ...change("b", 3000), tuple: { ...tuple, subject: "user:after" } }
  const writes = [{ ...op(1, "a", "acknowledged", 890, 950) }, { ...op(2, "b", "acknowledged", 2900, 3100), epoch: 1 }]
  const storyHistory = Judge.history(writes, (node) => node.replace("-node1", ""), (each) => (each.id === 1 ? [beforeLoss] : [elsewhere]), [
    { change: beforeLoss, regionId: "a", atMs: 940 },
    { change: elsewhere, regionId: "b", atMs: 3050 },
    { change: beforeLoss, regionId: "b", atMs: 5600 },
    { change: elsewhere, regionId: "a", atMs: 5700 }
  ])
  const storyLog = [beforeLoss, elsewhere].map((each, index) => ({ position: index + 1, change: each, receivedFrom: null, appliedAtMs: 0 }))
  const ruledStory = Checkers.reference([Judge.regionState("a", "a-node1", storyLog), Judge.regionState("b", "b-node1", storyLog)], { strategy: "LastWriteWins", regionPriorities: [] })
  const storyVerdicts = "verdicts" in ruledStory ? ruledStory.verdicts : new Map()
  const view = (epoch: number, primary: string, cause: string, atMs: number, incarnation = 1) => ({ incarnation, atMs, epoch, primary, fenced: false, cause })
  const epochLogs: ReadonlyArray<Judge.EpochLog> = [
    { nodeId: "a-node1", regionId: "a", changes: [view(0, "a", "initial", 50), view(1, "b", "initial", 5_400, 2)], listened: [1, 2], latest: 2 },
    { nodeId: "b-node1", regionId: "b", changes: [view(0, "a", "initial", 60), view(1, "b", "promoted", 2_500)], listened: [1], latest: 1 }
  ]
  const storyApplied = [
    { scheduledAtMs: 1000, startedAtMs: 1001, atMs: 1003, kind: "crash", detail: "crash a-node1 (SIGKILL)" },
    { scheduledAtMs: 5000, startedAtMs: 5002, atMs: 5004, kind: "restart", detail: "restart a-node1 (same directory)" },
    { scheduledAtMs: 6000, startedAtMs: 6000, atMs: 6001, kind: "heal_all", detail: "heal all: nothing to heal" }
  ]
  const failover = Judge.failoverOf({ scenario: primaryLost, history: storyHistory, epochLogs, applied: storyApplied })
  const storyResult: ChaosResult = { ...result, scenario: primaryLost.name, faults: storyApplied, lostWrites: { survived: 2, missing: 0, superseded: 0, concurrent: 0, "clock-skew": 0, tie: 0 } }
  const told = ChaosReport.make({ scenario: primaryLost, replay, result: storyResult, history: storyHistory, verdicts: storyVerdicts, durationMs: 7000, failover })

  it("tells it from the logged views and the writes, with the harness's times: loss when the crash began, RTO at b's first answer", () => {
    expect(told.failover).toMatchObject({ originalPrimary: "a", lostAtMs: 1001, detectedAtMs: 2500, promotedAtMs: 2500, promotedRegion: "b", firstWriteElsewhereAtMs: 3100, rtoMs: 2099, handedBackAtMs: undefined, note: Judge.failoverTimesNote })
    // a's last write reached b's feed after the promotion: lacked then, recovered since.
    expect(told.failover?.recoveryPoint).toMatchObject({ lackedWrites: 1, lostWrites: 0, lostWindowMs: 0, writes: [{ write: 1, region: "a", fate: "recovered", why: "reached b at 5600 ms" }] })
    expect(told.unrecorded).toEqual({ messages: ChaosReport.messagesUnrecorded })
    expect(told.events.filter((event) => event.type === "epoch").map((event) => [event.node, event.atMs, event.epoch, event.primary])).toEqual([
      ["a-node1", 50, 0, "a"],
      ["b-node1", 60, 0, "a"],
      ["b-node1", 2500, 1, "b"],
      ["a-node1", 5400, 1, "b"]
    ])
    expect(told.result).toMatchObject({ failover: { promotedRegion: "b", rtoMs: 2099, epochs: [{ epoch: 0, primary: "a" }, { epoch: 1, primary: "b", acceptedWrites: { b: 1 } }] } })
    expect(told.markdown).toContain("## Failover")
    expect(told.markdown).toContain("| 1001 ms | 2500 ms | b at 2500 ms | 3100 ms (RTO 2099 ms) | – | 0 | 0 ms | 1 write(s) over 1550 ms |")
    expect(told.markdown).toMatch(/\| 1 \| insert [^|]*user:before \| a \| 950 ms \| recovered \| reached b at 5600 ms \|/)
  })

  it("has no loss, and so no RTO, without the harness's times for every fault; and none at all without the logs", () => {
    expect(Judge.failoverOf({ scenario: primaryLost, history: storyHistory, epochLogs, applied: [] })?.timings).toMatchObject({ lossAtMs: undefined, rtoMs: undefined, promotedAtMs: 2500 })
    expect(Judge.failoverOf({ scenario: primaryLost, history: storyHistory, applied: storyApplied })).toBeUndefined()
    const untold = ChaosReport.make({ scenario: primaryLost, replay, result: storyResult, history: storyHistory, verdicts: storyVerdicts, durationMs: 7000 })
    expect(untold.failover).toBeUndefined()
    expect(untold.unrecorded?.failover).toMatch(/is not told: the harness read no node's log/)
  })

  it("is on the page: the Failover section with how the times were taken", () => {
    const directory = RunFolder.reserve(root, primaryLost.name, "7", new Date("2026-12-06T05:00:00.000Z"))
    RunFolder.write(root, told, { now: new Date("2026-12-06T05:00:09.000Z"), directory, scenarioText: "name: chaos-failover-story\n" })
    const html = fs.readFileSync(path.join(directory, "report.html"), "utf8")
    expect(html).toContain("<h2>Failover</h2>")
    expect(html).toContain("On real processes the times are the harness&#39;s")
    expect(html).toContain("RTO 2099 ms")
    expect(html).not.toContain("is not told")
  })
})
