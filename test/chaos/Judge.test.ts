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
import * as Nodes from "../../src/chaos/Nodes.js"
import * as Failover from "../../src/replication/Failover.js"
import type * as Workload from "../../src/chaos/Workload.js"
import { Either } from "effect"
import * as Tuple from "../../src/replication/Tuple.js"
import * as Oracle from "../../src/sim/Oracle.js"
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

/** The `seq`th insert node1 of `region` wrote, of `changed` (by default a tuple of its own). */
const changeOf = (region: string, seq: number, changed: typeof tuple = { ...tuple, subject: `user:${region}${seq}` }) => ({
  id: { origin: `${region}/${region}-node1/x`, seq },
  op: "insert" as const,
  tuple: changed,
  timestamp: { physicalMs: 1_000 + seq, logical: 0 },
  originRegion: region,
  originNode: `${region}-node1`,
  originRevision: seq,
  committedAtMs: 1_000 + seq,
  context: {}
})

/** What the judge is given after a run of `judgedScenario` with the acknowledged `ops`: nothing else observed unless `more` says so. */
const observedOf = (judgedScenario: typeof scenario, ops: ReadonlyArray<Workload.Op>, more: Partial<Judge.Observed> = {}): Judge.Observed => ({
  scenario: judgedScenario,
  topology: Either.getOrThrow(topologyFor(judgedScenario, "a")),
  rules: { strategy: "LastWriteWins", regionPriorities: [] },
  regions: [],
  stored: [],
  served: new Map(),
  history: Judge.history(ops, (node) => node.replace("-node1", ""), () => [], []),
  converged: true,
  healedAtMs: 3_000,
  epochMs: 0,
  lostWithDisk: new Set(),
  unobserved: [],
  ...more
})

const judged = (ops: ReadonlyArray<Workload.Op>, judgedScenario = scenario) => Judge.judge(observedOf(judgedScenario, ops)).violations

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

  it("epochs and failover are judged on real processes, in part", () => {
    expect(Judge.notJudged.epochs).toBeUndefined()
    expect(Judge.notJudged.failover).toBeUndefined()
    expect(Judge.failoverPartly).toMatch(/^judged from the writes/)
    expect(Judge.failoverPartly).toMatch(/every node serves under the original primary, unfenced/)
  })
})

/** A node's logged view: `incarnation` 1 unless said. */
const view = (epoch: number, primary: string | undefined, cause: string, atMs: number, fenced = false, incarnation = 1) => ({ incarnation, atMs, epoch, primary, fenced, cause })

const epochLog = (nodeId: string, changes: Judge.EpochLog["changes"], listened: ReadonlyArray<number> = [1], latest = Math.max(...listened)): Judge.EpochLog => ({
  nodeId,
  regionId: nodeId.replace("-node1", ""),
  changes,
  listened,
  latest
})

const judgedWithLogs = (logs: ReadonlyArray<Judge.EpochLog>, judgedScenario = scenario) => Judge.judge(observedOf(judgedScenario, [], { epochLogs: logs })).violations

describe("the epochs check on real processes, from the views serve logged", () => {
  it("reads serve's line, in either log format, and nothing else", () => {
    const promoted = Failover.changeLine({ epoch: 3, primary: "b", fenced: false, cause: "promoted" })
    expect(Nodes.epochChangeIn(`2026-12-06T01:00:00.000Z WARN  b/b-node1 ${promoted} component=failover`)).toEqual({ epoch: 3, primary: "b", fenced: false, cause: "promoted" })
    const initial = Failover.changeLine({ epoch: 0, primary: undefined, fenced: true, cause: "initial" })
    expect(Nodes.epochChangeIn(JSON.stringify({ level: "INFO", message: initial }))).toEqual({ epoch: 0, primary: undefined, fenced: true, cause: "initial" })
    expect(Nodes.epochChangeIn("2026-12-06T01:00:00.000Z INFO  b/b-node1 gRPC: 10.0.0.2:50051")).toBeUndefined()
  })

  it("a failover and a hand-back, each region serving its own epochs, pass", () => {
    const logs = [
      epochLog("a-node1", [view(0, "a", "initial", 50), view(1, "b", "adopted", 2_000, false), view(2, "a", "adopted", 6_000)]),
      epochLog("b-node1", [view(0, "a", "initial", 60), view(1, "b", "promoted", 1_900), view(2, "a", "handed-back", 5_900)])
    ]
    expect(judgedWithLogs(logs)).toEqual([])
  })

  it("two regions serving as primary of one epoch is a split brain, though no write shows it", () => {
    const logs = [
      epochLog("a-node1", [view(0, "a", "initial", 50), view(1, "a", "reclaimed", 2_100)]),
      epochLog("b-node1", [view(0, "a", "initial", 60), view(1, "b", "promoted", 1_900)])
    ]
    expect(judgedWithLogs(logs)).toEqual([expect.objectContaining({ checker: "epochs", message: "epoch 1: a and b each served as primary" })])
  })

  it("a fenced view is not serving: a restarted primary that fenced itself in an old epoch is not a second primary", () => {
    const logs = [
      epochLog("a-node1", [view(0, "a", "initial", 50), view(0, "a", "initial", 3_000, true, 2)], [1, 2]),
      epochLog("b-node1", [view(0, "a", "initial", 60)])
    ]
    expect(judgedWithLogs(logs)).toEqual([])
  })

  it("an incarnation that served without logging its starting view, or a cause the README does not name, is a violation: the check is never blind", () => {
    const silent = judgedWithLogs([epochLog("a-node1", [view(0, "a", "initial", 50)], [1, 2]), epochLog("b-node1", [view(0, "a", "initial", 60)])])
    expect(silent).toEqual([expect.objectContaining({ checker: "epochs", message: "a-node1 logged no starting view of the primary in incarnation(s) 2: its epoch history cannot be judged" })])
    const unknown = judgedWithLogs([epochLog("a-node1", [view(0, "a", "initial", 50), view(1, "a", "seized", 90)]), epochLog("b-node1", [view(0, "a", "initial", 60)])])
    expect(unknown).toEqual([expect.objectContaining({ checker: "epochs", message: "a-node1 logged epoch changes of a cause the README does not name: seized" })])
  })

  describe("in a run that wipes a disk (an epoch forgotten with its records may be begun again)", () => {
    const wiping = { ...scenario, faults: [{ atMs: 1_000, kind: "wipe" as const, target: { node: "a-node1" } }] } as unknown as typeof scenario
    // The wipe begun at 1 s and done at 1.3 s, then heal-all.
    const applied = [{ startedAtMs: 1_000, atMs: 1_300 }, { startedAtMs: 3_000, atMs: 3_000 }]
    const judgedWiping = (logs: ReadonlyArray<Judge.EpochLog>, ran: Judge.Observed["applied"] = applied) =>
      Judge.judge(observedOf(wiping, [], { epochLogs: logs, ...(ran === undefined ? {} : { applied: ran }) })).violations

    it("two regions serving one epoch between the same two wipes is still a split brain", () => {
      const logs = [
        epochLog("a-node1", [view(0, "a", "initial", 50), view(0, "a", "initial", 1_400, false, 2), view(1, "a", "reclaimed", 2_100, false, 2)], [1, 2]),
        epochLog("b-node1", [view(0, "a", "initial", 60), view(1, "b", "promoted", 1_900)])
      ]
      expect(judgedWiping(logs)).toEqual([expect.objectContaining({ checker: "epochs", message: "epoch 1 (life 3, after it was forgotten): a and b each served as primary" })])
    })

    it("one begun before a wipe and again after it, by another region, is not judged: the wipe may have taken every record of it", () => {
      const logs = [
        epochLog("a-node1", [view(0, "a", "initial", 50), view(1, "a", "reclaimed", 900), view(0, "a", "initial", 1_400, false, 2)], [1, 2]),
        epochLog("b-node1", [view(0, "a", "initial", 60), view(1, "b", "promoted", 2_000)])
      ]
      expect(judgedWiping(logs)).toEqual([])
      // Read while the harness was still wiping: on neither side for sure, so not compared either.
      const during = [epochLog("a-node1", [view(0, "a", "initial", 50), view(1, "a", "reclaimed", 1_100)]), epochLog("b-node1", [view(0, "a", "initial", 60), view(1, "b", "promoted", 2_000)])]
      expect(judgedWiping(during)).toEqual([])
    })

    it("the views are not judged without the harness's times for every fault, but the writes and an unreadable log still are", () => {
      const logs = [epochLog("a-node1", [view(0, "a", "initial", 50), view(1, "a", "reclaimed", 2_100)]), epochLog("b-node1", [view(0, "a", "initial", 60), view(1, "b", "promoted", 1_900)])]
      expect(judgedWiping(logs, [])).toEqual([])
      const silent = [epochLog("a-node1", [view(0, "a", "initial", 50)], [1, 2]), epochLog("b-node1", [view(0, "a", "initial", 60)])]
      expect(judgedWiping(silent, [])).toEqual([expect.objectContaining({ message: expect.stringMatching(/^a-node1 logged no starting view/) })])
      expect(Judge.judge(observedOf(wiping, [op(1, "b", 1, 100, 200), op(2, "a", 0, 300, 400)])).violations).toEqual([
        expect.objectContaining({ checker: "epochs", message: expect.stringMatching(/split brain/) })
      ])
      expect(Judge.epochsPartly).toMatch(/in runs that wipe a disk, two serving primaries of one epoch only between the same two wipes/)
    })
  })
})

/** Region a, the primary, down from 1 s to 15 s: long enough for b to see it (about 9.5 s with these links and heartbeats). */
const longOutage = Fixtures.parse(`
name: chaos-hand-back
budget_ms: 60000
topology:
  strategy: PrimaryReplica
  regions: [{ id: a, priority: 1, primary: true }, { id: b, priority: 2 }]
replication:
  conflict_resolution: LastWriteWins
  failover: { promote_back_after_ms: 4000 }
workload: { start_ms: 100, duration_ms: 3000, rate_per_sec: 2, vaults: [acme] }
faults:
  - { at_ms: 1000, kind: crash, target: a-node1 }
  - { at_ms: 15000, kind: restart, target: a-node1 }
checks: [epochs]
`)

describe("the hand-back's timing on real processes, from the views serve logged", () => {
  const logsHandingBackAt = (atMs: number) => [
    epochLog("a-node1", [view(0, "a", "initial", 50), view(0, "a", "initial", 15_300, true, 2), view(2, "a", "adopted", atMs + 20, false, 2)], [1, 2]),
    epochLog("b-node1", [view(0, "a", "initial", 60), view(1, "b", "promoted", 5_000), view(2, "a", "handed-back", atMs)])
  ]
  // The crash, the restart and heal-all, each begun and done at once where the schedule put it.
  const onTime = [{ startedAtMs: 1_000, atMs: 1_000 }, { startedAtMs: 15_000, atMs: 15_000 }, { startedAtMs: 30_000, atMs: 30_000 }]
  const judgedAt = (atMs: number, applied: Judge.Observed["applied"] = onTime) =>
    Judge.judge(observedOf(longOutage, [], { epochLogs: logsHandingBackAt(atMs), healedAtMs: 30_000, ...(applied === undefined ? {} : { applied }) })).violations

  it("a hand-back sooner than promote_back_after_ms after the original region came back fails", () => {
    expect(judgedAt(16_000)).toEqual([expect.objectContaining({ checker: "epochs", message: expect.stringMatching(/^b-node1 handed the role back to a 1000 ms after its outage \(1000-15000 ms\) ended, before promote_back_after_ms \(4000 ms\)/) })])
  })

  it("is not judged without the harness's times for every fault: the outage could look longer than it was", () => {
    expect(judgedAt(16_000, [])).toEqual([])
  })

  it("one that waited passes, and the outage is taken as short as the harness's times allow", () => {
    expect(judgedAt(19_100)).toEqual([])
    // The restart scheduled at 15 s was begun at 15.2 s and done at 15.4 s: judged from 15.2 s.
    const applied = [{ startedAtMs: 1_000, atMs: 1_050 }, { startedAtMs: 15_200, atMs: 15_400 }, { startedAtMs: 30_000, atMs: 30_100 }]
    expect(judgedAt(19_100, applied)).toEqual([expect.objectContaining({ message: expect.stringMatching(/^b-node1 handed the role back to a 3900 ms after its outage \(1050-15200 ms\) ended/) })])
    expect(judgedAt(19_300, applied)).toEqual([])
  })
})

/** Region a, the primary, crashes at 1 s: region b must be promoted and take writes. */
const primaryLost = Fixtures.parse(`
name: chaos-failover
budget_ms: 20000
topology:
  strategy: PrimaryReplica
  regions: [{ id: a, priority: 1, primary: true }, { id: b, priority: 2 }, { id: c, priority: 3 }]
replication: { conflict_resolution: LastWriteWins }
workload: { start_ms: 100, duration_ms: 3000, rate_per_sec: 2, vaults: [acme] }
faults: [{ at_ms: 1000, kind: crash, target: a }, { at_ms: 2500, kind: restart, target: a }]
checks: [failover]
`)

describe("the failover check on real processes", () => {
  it("passes when another region acknowledged a write sent after the loss, in a newer epoch", () => {
    expect(judged([op(1, "a", 0, 100, 110), op(2, "b", 3, 1_900, 1_950)], primaryLost)).toEqual([])
  })

  it("fails when no other region acknowledged a write after the loss (the crash noticed too late, say)", () => {
    expect(judged([op(1, "a", 0, 100, 110), op(2, "a", 0, 900, 950), op(3, "a", 0, 2_600, 2_650)], primaryLost)).toEqual([
      expect.objectContaining({ checker: "failover", message: "no write was accepted by another region after the primary was lost" })
    ])
  })

  it("fails when every write another region took after the loss is in an epoch no newer than before it", () => {
    expect(judged([op(1, "b", 2, 100, 110), op(2, "c", 2, 1_900, 1_950)], primaryLost)).toEqual([
      expect.objectContaining({ checker: "failover", message: expect.stringMatching(/^no region was promoted after the primary was lost/) })
    ])
  })

  it("judges nothing when no fault hits the original primary's region", () => {
    expect(judged([op(1, "a", 0, 100, 110)], { ...primaryLost, faults: [] })).toEqual([])
  })

  describe("who serves at the end, from each node's latest logged view (the simulator's rule)", () => {
    const failedOver = [op(1, "a", 0, 100, 110), op(2, "b", 3, 1_900, 1_950)]
    const storyLogs = (b: Judge.EpochLog["changes"], aLatest = 2): ReadonlyArray<Judge.EpochLog> => [
      epochLog("a-node1", [view(0, "a", "initial", 50), view(3, "b", "initial", 2_600, false, 2), view(4, "a", "reclaimed", 7_000, false, 2)], [1, 2], aLatest),
      epochLog("b-node1", b),
      epochLog("c-node1", [view(0, "a", "initial", 60), view(3, "b", "adopted", 1_900), view(4, "a", "adopted", 7_010)])
    ]
    const judgedAtEnd = (logs: ReadonlyArray<Judge.EpochLog>) => Judge.judge(observedOf(primaryLost, failedOver, { epochLogs: logs })).violations

    it("passes when every node's latest serve process last logged the original primary, unfenced", () => {
      expect(judgedAtEnd(storyLogs([view(0, "a", "initial", 55), view(3, "b", "promoted", 1_800), view(4, "a", "handed-back", 6_900)]))).toEqual([])
    })

    it("fails when a node still serves under the promoted region, or fenced, at the end", () => {
      expect(judgedAtEnd(storyLogs([view(0, "a", "initial", 55), view(3, "b", "promoted", 1_800)]))).toEqual([
        expect.objectContaining({
          checker: "failover",
          message: "at the end, 1 node(s) do not serve under the original primary 'a'",
          details: { nodes: [{ nodeId: "b-node1", primary: "b", fenced: false, epoch: 3 }] }
        })
      ])
      expect(judgedAtEnd(storyLogs([view(0, "a", "initial", 55), view(3, "b", "promoted", 1_800), view(4, "a", "fenced", 6_900, true)]))).toEqual([
        expect.objectContaining({ checker: "failover", message: "at the end, 1 node(s) do not serve under the original primary 'a'" })
      ])
    })

    it("counts a node whose latest serve process logged no view, not the view an earlier one logged", () => {
      const views = Judge.finalViews(storyLogs([view(0, "a", "initial", 55), view(4, "a", "handed-back", 6_900)], 3), new Set())
      expect(views.map(({ nodeId, state }) => [nodeId, state?.primary])).toEqual([
        ["a-node1", undefined],
        ["b-node1", "a"],
        ["c-node1", "a"]
      ])
      // A region removed for good is out of the deployment.
      expect(Judge.finalViews(storyLogs([]), new Set(["b"])).map(({ nodeId }) => nodeId)).toEqual(["a-node1", "c-node1"])
    })
  })
})

describe("fault windows on real processes", () => {
  // chaos swarm seed 52001's store faults: eu's disks full at 2,820 ms, room again at 3,540 ms.
  const late = Fixtures.parse(`
name: late-faults
budget_ms: 20000
topology:
  strategy: ActiveActive
  regions: [{ id: us }, { id: eu }]
replication: { conflict_resolution: LastWriteWins }
workload: { start_ms: 100, duration_ms: 5000, rate_per_sec: 2, vaults: [acme] }
faults:
  - { at_ms: 2820, kind: store, region: eu, fail_rate: 0.04 }
  - { at_ms: 3540, kind: store, region: eu, fail_rate: 0 }
checks: [progress]
`)
  const inWindow = (windows: ReadonlyArray<{ readonly startMs: number; readonly endMs: number }>, atMs: number) => windows.some((window) => window.startMs <= atMs && atMs <= window.endMs)

  it("are where the harness applied the faults, from when it began each to when it was done, not where the schedule put them", () => {
    // As that run applied them: filling the disks took from 2,830 to 9,131 ms, heal-all came at 12,631.
    const applied = [
      { startedAtMs: 2830, atMs: 9131 },
      { startedAtMs: 9131, atMs: 9631 },
      { startedAtMs: 12620, atMs: 12631 }
    ]
    const asRun = Judge.windowsAsRun(late, applied, 12631)
    for (const atMs of [2900, 6000, 9132, 9500, 9631]) expect(inWindow(asRun, atMs)).toBe(true)
    expect(inWindow(asRun, 11000)).toBe(false)
    // The schedule's windows leave the full disks of 6,000-9,631 ms out.
    const scheduled = Judge.windowsAsRun(late, undefined, 5100)
    expect(inWindow(scheduled, 3000)).toBe(true)
    expect(inWindow(scheduled, 9500)).toBe(false)
  })
})

/**
 * Safety's served answers: a node's Check answers after the run, read by the harness. One that
 * went unanswered (the node is already reported as unreadable, a liveness violation) must not be
 * read as "absent": its frontier is still judged, its answer is not (chaos seed 58036).
 */
describe("the safety check's Check answers on real processes", () => {
  const safetyScenario = Fixtures.parse(`
name: chaos-safety
budget_ms: 20000
topology:
  strategy: ActiveActive
  regions: [{ id: a }, { id: b }]
replication: { conflict_resolution: LastWriteWins }
workload: { start_ms: 100, duration_ms: 3000, rate_per_sec: 2, vaults: [acme] }
checks: [safety]
`)
  const change = changeOf("a", 1, tuple)
  const region = (frontier: ReadonlyArray<typeof change>) => ({
    regionId: "a",
    replica: "a-node1",
    tuples: new Map([[Tuple.key(tuple), { tuple, frontier }]]),
    log: [{ position: 1, change, receivedFrom: null, appliedAtMs: 1_000 }]
  })
  const safety = (frontier: ReadonlyArray<typeof change>, answers: ReadonlyMap<string, boolean>) =>
    Judge.judge(observedOf(safetyScenario, [], { regions: [region(frontier)], served: new Map([["a-node1", answers]]) })).violations.filter(
      (violation) => violation.checker === "safety"
    )

  it("a tuple answered as the rule says passes, one answered against it fails", () => {
    expect(safety([change], new Map([[Tuple.key(tuple), true]]))).toEqual([])
    expect(safety([change], new Map([[Tuple.key(tuple), false]]))).toHaveLength(1)
  })

  it("an unanswered tuple is not judged absent, but a frontier that differs from the rule's still fails", () => {
    expect(safety([change], new Map())).toEqual([])
    // A frontier holding a change the logs do not have: the rule's frontier is the logged one.
    const other = { ...change, id: { origin: "b/b-node1/y", seq: 1 }, originRegion: "b", originNode: "b-node1" }
    expect(safety([other], new Map())).toHaveLength(1)
  })
})

describe("a region removed for good on real processes", () => {
  const decommission = Fixtures.parse(`
name: chaos-decommission
budget_ms: 20000
topology:
  strategy: ActiveActive
  regions: [{ id: a }, { id: b }, { id: c }]
replication: { conflict_resolution: LastWriteWins }
workload: { start_ms: 100, duration_ms: 3000, rate_per_sec: 2, vaults: [acme] }
checks: [convergence, acknowledged, safety, liveness]
faults:
  - { at_ms: 2000, kind: topology, change: remove_region, region: b }
`)
  const nodeOf = (regionId: string, changes: ReadonlyArray<ReturnType<typeof changeOf>>) => ({
    regionId,
    replica: `${regionId}-node1`,
    tuples: new Map(changes.map((change) => [Tuple.key(change.tuple), { tuple: change.tuple, frontier: [change] }])),
    log: changes.map((change, index) => ({ position: index + 1, change, receivedFrom: null, appliedAtMs: 1_000 }))
  })
  const shared = changeOf("a", 1)
  const stayed = changeOf("b", 1)
  const lost = changeOf("b", 2)
  const writeOf = (id: number, region: string, change: ReturnType<typeof changeOf>): Workload.Op => ({ ...op(id, region, 0, 100 * id, 100 * id + 10), operations: [{ op: "insert", tuple: change.tuple }] })
  const observed = (aHolds: ReadonlyArray<ReturnType<typeof changeOf>>) =>
    observedOf(decommission, [], {
      regions: [nodeOf("a", aHolds), nodeOf("b", [shared, stayed, lost]), nodeOf("c", [shared, stayed])],
      history: Judge.history([writeOf(1, "a", shared), writeOf(2, "b", stayed), writeOf(3, "b", lost)], (node) => node.replace("-node1", ""), (written) => [[shared, stayed, lost][written.id - 1]!], [])
    })

  it("is judged over the regions left: what only the removed region holds went with it, and a split among the regions left still fails", () => {
    const passed = Judge.judge(observed([shared, stayed]))
    expect(passed.violations).toEqual([])
    expect([...passed.lostWithRegion]).toEqual([Oracle.idOf(lost)])
    // a lacks the removed region's change that c has: the regions left disagree.
    const split = Judge.judge(observed([shared])).violations.map((violation) => violation.checker)
    expect(split).toContain("convergence")
    // The harness waits for the regions left only: with b counted, the run would never converge.
    const converged = (aHolds: ReadonlyArray<ReturnType<typeof changeOf>>, removed: ReadonlySet<string>) => {
      const { regions, topology, rules } = observed(aHolds)
      return Judge.converged(regions, topology, rules, removed)
    }
    expect([converged([shared, stayed], new Set(["b"])), converged([shared], new Set(["b"])), converged([shared, stayed], new Set())]).toEqual([true, false, false])
  })
})
