/**
 * The failover controller's decisions (`Failover.decide`, a pure function) and, end to end
 * in the simulator, the epoch checker catching the split brain the controller cannot
 * prevent (the two regions of a two-region deployment cut apart for longer than
 * `detect_after_ms` both take writes), and the write lease preventing the one it can: a
 * primary paused past the failover must not take writes in its old epoch when it resumes.
 *
 * (The decision tests exercise shared code in `src/replication/Failover.ts`; they live here
 * because the simulator engineer wrote that module. They belong in test/replication.)
 */
import { Either } from "effect"
import { describe, expect, it } from "vitest"
import * as Failover from "../../src/replication/Failover.js"
import type * as Topology from "../../src/replication/Topology.js"
import { runScenario, simulate } from "../../src/sim/Run.js"
import * as Scenario from "../../src/sim/Scenario.js"
import * as Swarm from "../../src/sim/Swarm.js"
import * as Fixtures from "./fixtures/scenarios.js"

const spec = Fixtures.parse(`
name: three
budget_ms: 1000
topology:
  strategy: PrimaryReplica
  regions:
    - { id: a, priority: 1, primary: true }
    - { id: b, priority: 2 }
    - { id: c, priority: 3 }
`)

/** The topology as region `local` sees it, with some regions' nodes Unreachable. */
const view = (local: string, down: ReadonlyArray<string> = [], primary = "a"): Topology.Topology => {
  const topology = Either.getOrThrow(Scenario.topologyFor(spec, local))
  return {
    ...topology,
    regions: topology.regions.map((region) => ({
      ...region,
      isPrimary: region.id === primary,
      zones: region.zones.map((zone) => ({ ...zone, nodes: zone.nodes.map((node) => ({ ...node, status: down.includes(region.id) ? ("Unreachable" as const) : ("Healthy" as const) })) }))
    }))
  }
}

const settings = (regionId: string): Failover.Settings => ({ regionId, nodeId: `${regionId}-node1`, detectAfterMs: 1_000, promoteBackAfterMs: 2_000, fenceAfterMs: 0, confirmAfterMs: 5_000, checkIntervalMs: 100 })

const tracking = (epoch: number, primary: string, fenced = false): Failover.Tracking => ({
  epoch,
  primary,
  fenced,
  unrecorded: false,
  history: [],
  primaryDownSinceMs: undefined,
  minoritySinceMs: undefined,
  majoritySinceMs: undefined,
  originalUpSinceMs: undefined
})

/** What a node sees when nothing but its topology view matters. */
const observation = (topology: Topology.Topology, nowMs: number): Failover.Observation => ({
  topology,
  nowMs,
  newest: undefined,
  observed: undefined,
  grantHeldUntilMs: undefined,
  originalCaughtUp: true
})

/** Runs `decide` at each time in turn, carrying the tracking over; returns the last action. */
const decideOver = (regionId: string, start: Failover.Tracking, topology: Topology.Topology, times: ReadonlyArray<number>, extra: Partial<Failover.Observation> = {}) => {
  let current = start
  let action: Failover.Action = { _tag: "None" }
  for (const nowMs of times) {
    const decided = Failover.decide(settings(regionId), current, { ...observation(topology, nowMs), ...extra })
    current = decided.tracking
    action = decided.action
  }
  return action
}

describe("Failover.decide", () => {
  it("the highest-priority available region promotes itself once the primary has been down for detect_after_ms", () => {
    expect(decideOver("b", tracking(0, "a"), view("b", ["a"]), [0, 500])._tag).toBe("None")
    expect(decideOver("b", tracking(0, "a"), view("b", ["a"]), [0, 1_000])).toEqual({ _tag: "Promote", epoch: 1 })
    expect(decideOver("c", tracking(0, "a"), view("c", ["a"]), [0, 1_000])._tag).toBe("None")
  })

  it("a primary region no node of which is known yet is not counted down while it is awaited, only from when its grace ends", () => {
    // Under DNS discovery a node that started while DNS failed knows no node of a; a's absence
    // from the topology is no sign that it is down (swarm seed 85000125).
    const unknown = (local: string): Topology.Topology => {
      const topology = view(local)
      return { ...topology, regions: topology.regions.map((region) => (region.id === "a" ? { ...region, zones: region.zones.map((zone) => ({ ...zone, nodes: [] })) } : region)) }
    }
    const awaited = new Set(["a"])
    expect(decideOver("b", tracking(0, "a"), unknown("b"), [0, 5_000], { awaited })._tag).toBe("None")
    // Without the grace the same view promotes b after detect_after_ms; so does the grace's end.
    expect(decideOver("b", tracking(0, "a"), unknown("b"), [0, 1_000])).toEqual({ _tag: "Promote", epoch: 1 })
    let current = tracking(0, "a")
    for (const [nowMs, stillAwaited] of [[0, true], [4_000, true], [4_100, false], [5_000, false], [5_100, false]] as const) {
      const decided = Failover.decide(settings("b"), current, { ...observation(unknown("b"), nowMs), awaited: stillAwaited ? awaited : new Set() })
      current = decided.tracking
      expect([nowMs, decided.action._tag]).toEqual([nowMs, nowMs >= 5_100 ? "Promote" : "None"])
    }
  })

  it("a region cut off on its own does not promote itself", () => {
    expect(decideOver("c", tracking(0, "a"), view("c", ["a", "b"]), [0, 5_000])._tag).toBe("None")
  })

  it("a primary that sees at most half of the regions fences itself", () => {
    expect(decideOver("a", tracking(0, "a"), view("a", ["b", "c"]), [0])).toEqual({ _tag: "Fence", successor: "b" })
  })

  it("a primary fences only for regions it has lost contact with, not for ones it has never heard (not started yet, say)", () => {
    // b and c are Unreachable: never heard since a started, they are not evidence of a partition.
    expect(decideOver("a", tracking(0, "a"), view("a", ["b", "c"]), [0, 5_000], { contacted: new Set() })._tag).toBe("None")
    expect(decideOver("a", tracking(0, "a"), view("a", ["b", "c"]), [0, 5_000], { contacted: new Set(["b"]) })._tag).toBe("None")
    // Heard once and lost since: a partition, or the regions went down.
    expect(decideOver("a", tracking(0, "a"), view("a", ["b", "c"]), [0], { contacted: new Set(["b", "c"]) })).toEqual({ _tag: "Fence", successor: "b" })
    // A region heard and now available is not lost; one heard and now Unreachable is.
    expect(decideOver("a", tracking(0, "a"), view("a", ["c"]), [0], { contacted: new Set(["b", "c"]) })._tag).toBe("None")
  })

  it("a fenced primary serves again only after seeing a majority for confirm_after_ms", () => {
    expect(decideOver("a", tracking(0, "a", true), view("a"), [0, 4_000])._tag).toBe("None")
    expect(decideOver("a", tracking(0, "a", true), view("a"), [0, 5_000])._tag).toBe("Unfence")
  })

  it("confirming a fenced primary and promoting need regions actually heard from, not ones still in their grace period", () => {
    // b and c look available (never heard, their grace period not over) but have not answered:
    // a restarted primary confirmed itself on that guess and took writes in its old epoch while
    // another region had been promoted (swarm seed 502216).
    expect(decideOver("a", tracking(0, "a", true), view("a"), [0, 5_000], { heard: new Map() })._tag).toBe("None")
    expect(decideOver("a", tracking(0, "a", true), view("a"), [0, 5_000], { heard: new Map([["b", 0]]) })._tag).toBe("Unfence")
    expect(decideOver("b", tracking(0, "a"), view("b", ["a"]), [0, 1_000], { heard: new Map() })._tag).toBe("None")
    expect(decideOver("b", tracking(0, "a"), view("b", ["a"]), [0, 1_000], { heard: new Map([["c", 0]]) })).toEqual({ _tag: "Promote", epoch: 1 })
  })

  it("promoting needs a majority that answered since the primary was seen down, not a view that still holds a silent peer up", () => {
    // b sees a down at 0; c last answered before that (b itself was cut off from both at once,
    // and c's deadline had not passed yet): b alone is no majority.
    expect(decideOver("b", tracking(0, "a"), view("b", ["a"]), [0, 1_000, 2_000], { heard: new Map([["c", -100]]) })._tag).toBe("None")
    // c answered after a was seen down: a majority that is there now.
    expect(decideOver("b", tracking(0, "a"), view("b", ["a"]), [0, 1_000], { heard: new Map([["c", 0]]) })).toEqual({ _tag: "Promote", epoch: 1 })
    expect(decideOver("b", tracking(0, "a"), view("b", ["a"]), [0, 1_000], { heard: new Map([["c", 700]]) })).toEqual({ _tag: "Promote", epoch: 1 })
    // Only answers count: a fenced primary confirms on regions heard at any time since it started.
    expect(decideOver("a", tracking(0, "a", true), view("a"), [0, 5_000], { heard: new Map([["b", -100]]) })._tag).toBe("Unfence")
  })

  it("a fenced primary serves again at once when another node of its region serves in the same epoch (a node started after its sibling on a shared store)", () => {
    expect(decideOver("a", tracking(2, "a", true), view("a"), [0], { regionServesIn: 2 })._tag).toBe("Unfence")
    // A sibling in another epoch is no evidence for this one; without it, confirm_after_ms as before.
    expect(decideOver("a", tracking(2, "a", true), view("a"), [0, 4_000], { regionServesIn: 1 })._tag).toBe("None")
    expect(decideOver("a", tracking(2, "a", true), view("a"), [0, 4_000])._tag).toBe("None")
  })

  it("a newer epoch record is adopted, also by a fenced primary", () => {
    const record = { epoch: 1, primary: "b" }
    expect(Failover.decide(settings("a"), tracking(0, "a", true), { ...observation(view("a"), 0), newest: record }).action).toEqual({ _tag: "Adopt", record })
  })

  it("a newer epoch a peer answered a heartbeat with is adopted before its record arrives, unless it names the local region", () => {
    const primaryA = tracking(0, "a")
    expect(Failover.decide(settings("a"), primaryA, { ...observation(view("a"), 0), observed: { epoch: 1, primary: "b" } }).action).toEqual({
      _tag: "Adopt",
      record: { epoch: 1, primary: "b" }
    })
    // A fenced peer answers without a primary: nothing to adopt (the write path still refuses).
    expect(Failover.decide(settings("a"), primaryA, { ...observation(view("a"), 0), observed: { epoch: 1, primary: undefined } }).action._tag).toBe("None")
    // The role is taken only from the record, after everything logged before it (unless no
    // record comes for detect_after_ms: see the reclaim case below).
    expect(Failover.decide(settings("a"), tracking(1, "b"), { ...observation(view("a", [], "b"), 0), observed: { epoch: 2, primary: "a" } }).action._tag).toBe("None")
    // A stored record newer than the observation wins.
    expect(
      Failover.decide(settings("c"), tracking(0, "a"), { ...observation(view("c"), 0), newest: { epoch: 2, primary: "a" }, observed: { epoch: 1, primary: "b" } }).action
    ).toEqual({ _tag: "Adopt", record: { epoch: 2, primary: "a" } })
  })

  it("a region that peers name primary of an epoch whose record it lacks takes the epoch back after detect_after_ms, once bootstrapped", () => {
    // The promoted region's disk was wiped before its record replicated (swarm seed 608946):
    // the peers had adopted the epoch from its heartbeat answers and waited for the record.
    const named = { observed: { epoch: 1, primary: "b" }, bootstrapped: true }
    expect(decideOver("b", tracking(0, "a"), view("b", [], "a"), [0, 999], named)._tag).toBe("None")
    expect(decideOver("b", tracking(0, "a"), view("b", [], "a"), [0, 1_000], named)).toEqual({ _tag: "Reclaim", epoch: 1 })
    // Not while the disk is still paging the peers' logs, which may hold the record.
    expect(decideOver("b", tracking(0, "a"), view("b", [], "a"), [0, 5_000], { ...named, bootstrapped: false })._tag).toBe("None")
    // A check that no longer sees the epoch named (its record came, or the peers moved on) restarts the wait.
    const times = [0, 600, 1_000]
    let current = tracking(0, "a")
    let action: Failover.Action = { _tag: "None" }
    for (const nowMs of times) {
      const decided = Failover.decide(settings("b"), current, { ...observation(view("b"), nowMs), ...(nowMs === 600 ? {} : named) })
      current = decided.tracking
      action = decided.action
    }
    expect(action._tag).toBe("None")
  })

  it("a region does not promote itself while a write lease it granted to the primary may still be held", () => {
    expect(decideOver("b", tracking(0, "a"), view("b", ["a"]), [0, 1_000], { grantHeldUntilMs: 1_500 })._tag).toBe("None")
    expect(decideOver("b", tracking(0, "a"), view("b", ["a"]), [0, 1_000, 1_500], { grantHeldUntilMs: 1_500 })).toEqual({ _tag: "Promote", epoch: 1 })
  })

  it("the acting primary hands the role back once the original is available and caught up", () => {
    const acting = tracking(1, "b")
    expect(decideOver("b", acting, view("b", [], "b"), [0, 2_000], { originalCaughtUp: false })._tag).toBe("None")
    expect(decideOver("b", acting, view("b", [], "b"), [0, 2_000])).toEqual({ _tag: "HandBack", record: { epoch: 3, primary: "a" } })
  })

  it("the acting primary hands back only once the original has been heard throughout promote_back_after_ms, though no check saw it unavailable", () => {
    const acting = tracking(1, "b")
    // Available at every check since 0, but silent until 1,500 (an outage that ended between
    // two stale checks): the 2,000 ms count from 1,500.
    const silent = { heardThroughSince: new Map([["a", 1_500]]) }
    expect(decideOver("b", acting, view("b", [], "b"), [0, 2_000, 3_000], silent)._tag).toBe("None")
    expect(decideOver("b", acting, view("b", [], "b"), [0, 2_000, 3_500], silent)).toEqual({ _tag: "HandBack", record: { epoch: 3, primary: "a" } })
    // Heard throughout from before the first check: the checks' own count decides, as before.
    expect(decideOver("b", acting, view("b", [], "b"), [0, 2_000], { heardThroughSince: new Map([["a", -500]]) })._tag).toBe("HandBack")
    // Not heard at all: no hand-back.
    expect(decideOver("b", acting, view("b", [], "b"), [0, 5_000], { heardThroughSince: new Map() })._tag).toBe("None")
  })

  it("epochs are dealt round-robin in failover order, so two regions promoting at once never start the same epoch", () => {
    const topology = view("c")
    expect([Failover.nextEpoch(topology, 0, "a"), Failover.nextEpoch(topology, 0, "b"), Failover.nextEpoch(topology, 0, "c")]).toEqual([3, 1, 2])
    for (let after = 0; after < 20; after++) {
      const picks = ["a", "b", "c"].map((region) => Failover.nextEpoch(topology, after, region))
      expect(new Set(picks).size).toBe(3)
      for (const epoch of picks) expect(epoch).toBeGreaterThan(after)
    }
  })

  it("on equal epochs the record of the region with the lower priority number is newer", () => {
    const topology = view("c")
    expect(Failover.isNewer(topology, { epoch: 1, primary: "b" }, 1, "c")).toBe(true)
    expect(Failover.isNewer(topology, { epoch: 1, primary: "c" }, 1, "b")).toBe(false)
    expect(Failover.newest(topology, [{ epoch: 1, primary: "c" }, { epoch: 2, primary: "a" }, { epoch: 1, primary: "b" }])).toEqual({ epoch: 2, primary: "a" })
  })

  it("epoch records round-trip through their tuple", () => {
    expect(Failover.parseRecord(Failover.recordTuple({ epoch: 42, primary: "eu-central-1" }))).toEqual({ epoch: 42, primary: "eu-central-1" })
  })
})

describe("a two-region PrimaryReplica deployment", () => {
  const twoRegions = Fixtures.twoRegionPrimaryReplica
  const cutApart = Fixtures.twoRegionCutApart

  it("cut apart for longer than detect_after_ms does not fail over on its own, so it never has two writing regions", () => {
    const result = runScenario(cutApart(""), 1)
    expect(result.violations).toEqual([])
    expect(result.failover?.promotedAtMs).toBeUndefined()
  })

  it("the epoch checker catches an operator who promotes the other region while the old primary still takes writes", () => {
    const result = runScenario(cutApart("\n  - { at_ms: 4000, kind: promote, region: eu-central-1 }"), 1)
    expect(result.violations.map((violation) => violation.checker)).toContain("epochs")
    expect(result.violations.find((violation) => violation.checker === "epochs")?.message).toMatch(/split brain|each accepted writes/)
  })

  it("an operator promotion while the primary is down moves writes to the other region, and the role comes back after", () => {
    const result = runScenario(
      twoRegions(
        ["  - { at_ms: 2000, kind: crash, target: us-west-1 }", "  - { at_ms: 3000, kind: promote, region: eu-central-1 }", "  - { at_ms: 7000, kind: restart, target: us-west-1 }"].join("\n")
      ),
      1
    )
    expect(result.violations).toEqual([])
    expect(result.faults.map((fault) => fault.detail)).toContain("operator promotes eu-central-1 (on eu-central-1-node1)")
    expect(result.failover?.promotedAtMs).toBeGreaterThanOrEqual(3000)
  })
})

describe("the write lease under PrimaryReplica", () => {
  const story = Fixtures.load("scenarios/primary-failover.yaml")
  const pausedPrimary = (atMs: number, forMs: number): Scenario.Scenario => ({
    ...story,
    faults: [
      { atMs, kind: "pause", target: "us-west-1" },
      { atMs: atMs + forMs, kind: "resume", target: "us-west-1" }
    ]
  })
  const checkers = (result: ReturnType<typeof runScenario>) => result.violations.map((violation) => `${violation.checker}: ${violation.message}`)

  it("a primary paused past the failover takes none of the writes queued during its pause when it resumes, and gets the role back later", () => {
    const result = runScenario(pausedPrimary(4_000, 8_000), 1)
    expect(checkers(result)).toEqual([])
    expect(result.failover?.promotedRegion).toBe("eu-central-1")
    expect(result.failover?.promotedBackAtMs).toBeGreaterThan(12_000)
  })

  it("a primary that a third region still reaches keeps its role when another region loses sight of it (a non-transitive partition)", () => {
    const bridged: Scenario.Scenario = {
      ...story,
      faults: [
        { atMs: 4_000, kind: "bridge", node: "ap-southeast-1-node1", groups: [["us-west-1"], ["eu-central-1"]] },
        { atMs: 12_000, kind: "heal" }
      ]
    }
    // Grant reports are up to one heartbeat round old (see Failover.ts), so now and then a
    // promotion still comes through; it must never be a split brain.
    const results = [1, 2, 3, 4, 5].map((seed) => runScenario(bridged, seed))
    for (const result of results) expect(checkers(result).filter((line) => !line.startsWith("failover"))).toEqual([])
    expect(results.filter((result) => result.failover?.promotedRegion === undefined).length).toBeGreaterThanOrEqual(4)
  })

  it("no pause of the primary, ending before or after the promotion, lets two regions take writes in different epochs at once", () => {
    // 3 s for 4 s: the primary resumes just before eu-central-1 would have promoted itself.
    // The third field says whether a promotion must happen; 5 s + 6 s resumes right at the
    // edge of detection, where either outcome is correct as long as no epoch is split.
    const pauses: ReadonlyArray<readonly [number, number, boolean | undefined]> = [
      [3_000, 4_000, undefined],
      [3_000, 6_000, true],
      [4_000, 6_000, true],
      [5_000, 6_000, undefined],
      [3_000, 10_000, true],
      [5_000, 10_000, true]
    ]
    for (const [atMs, forMs, promoted] of pauses) {
      const result = runScenario(pausedPrimary(atMs, forMs), 1)
      expect(checkers(result).filter((line) => line.startsWith("epochs")), `pause at ${atMs} ms for ${forMs} ms`).toEqual([])
      if (promoted === true) expect(result.failover?.promotedRegion, `pause at ${atMs} ms for ${forMs} ms`).toBe("eu-central-1")
    }
  })
})

describe("the write lease with multi-node regions", () => {
  it("one node down in each of two two-node regions leaves the primary writable (nodes weigh 1/n of their region)", () => {
    // Before nodes were weighed, a region agreed only when more than half of its nodes did:
    // this run acknowledged 40 of 149 writes and refused 88 with NotPrimary.
    const { result, history } = simulate(Fixtures.load("scenarios/primary-node-down-per-region.yaml"), 1)
    expect(result.violations).toEqual([])
    // Since December 7, 2026 a node on a new disk counts its start as a grant to every region (it
    // cannot know what a disk it replaced granted), and a region not every node of which has
    // vouched is waited for: the two node2s crash at 2 s before they had, so the first writes wait
    // a lease (3 s) from the start. After it, the weights keep the primary writable.
    const after = history.writes.filter((write) => write.startedAtMs > 3_100)
    expect(after.filter((write) => write.outcome === "rejected").length).toBeLessThanOrEqual(5)
    expect(after.filter((write) => write.outcome === "acknowledged").length / after.length).toBeGreaterThan(0.8)
  })
})

describe("a wiped disk's bootstrap under PrimaryReplica", () => {
  it("pages every region at once, so a wiped acting primary takes its epoch back from a region that crashes soon after, and the old primary never writes in its old epoch", () => {
    // Swarm seed 72000107 over chaos-primary-pause.yaml: eu-central-1 was promoted at 5.3 s and
    // its disk wiped at 5.99 s; ap-southeast-1, which held the promotion record, crashed at 6.8 s.
    // Paging one region after another, the wiped node asked the cut-off us-west-1 first and
    // reached ap-southeast-1 only after its crash; us-west-1, which never heard of epoch 1, took
    // writes in epoch 0 from 10.1 s with the wiped node's vote (42 writes, the epoch checker).
    const seed = 72000107
    const simulation = simulate(Swarm.swarmFrom(Fixtures.load("scenarios/chaos-primary-pause.yaml"), seed), seed)
    expect(simulation.result.violations).toEqual([])
    const history = simulation.epochs.find((node) => node.nodeId === "eu-central-1-node1")!.history
    const retaken = history.find((entry) => entry.epoch === 1 && entry.atMs > 5_990)
    expect(retaken?.atMs).toBeLessThan(6_800)
  })
})

describe("Failover.decide: advancing a primary held back by recovering nodes", () => {
  const primaryB = tracking(1, "b")
  const at = (nowMs: number, extra: Partial<Failover.Observation>) => Failover.decide(settings("b"), primaryB, { ...observation(view("b", ["a"], "b"), nowMs), ...extra }).action

  it("advances once the lease has been held back for the detection delay, on a disk that has paged its peers", () => {
    expect(at(10_000, { heldByRecoveringSinceMs: 9_000, bootstrapped: true })).toEqual({ _tag: "Advance", epoch: Failover.nextEpoch(view("b", ["a"], "b"), 1, "b") })
    expect(at(10_000, { heldByRecoveringSinceMs: 9_001, bootstrapped: true })._tag).toBe("None")
    expect(at(10_000, { bootstrapped: true })._tag).toBe("None")
    // A disk that has not paged its peers is recovering itself: its own promotions are floored already.
    expect(at(10_000, { heldByRecoveringSinceMs: 9_000, bootstrapped: false })._tag).toBe("None")
  })

  it("never advances a view whose primary is another region, or a fenced one", () => {
    expect(Failover.decide(settings("c"), tracking(1, "b"), { ...observation(view("c", ["a"], "b"), 10_000), heldByRecoveringSinceMs: 0, bootstrapped: true }).action._tag).toBe("None")
    expect(Failover.decide(settings("b"), tracking(1, "b", true), { ...observation(view("b", ["a"], "b"), 10_000), heldByRecoveringSinceMs: 0, bootstrapped: true }).action._tag).not.toBe("Advance")
  })
})
