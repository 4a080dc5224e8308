/**
 * The checkers on hand-made states, so each one is seen to fail when it should: a region
 * missing a change, a vault stored outside its residency set, an acknowledged change in no
 * log, two regions taking writes in one epoch; and lost writes labelled by cause.
 */
import { Either } from "effect"
import { describe, expect, it } from "vitest"
import type * as Change from "../../src/replication/Change.js"
import * as ConflictResolver from "../../src/replication/ConflictResolver.js"
import * as Tuple from "../../src/replication/Tuple.js"
import * as Checkers from "../../src/sim/Checkers.js"
import { History } from "../../src/sim/History.js"
import * as Reference from "../../src/sim/Reference.js"
import type { RegionState } from "../../src/sim/RegionState.js"
import * as Scenario from "../../src/sim/Scenario.js"
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

const lww = ConflictResolver.lastWriteWins

describe("checkers", () => {
  it("safety flags a region whose frontier misses a concurrent change, and passes equal regions", () => {
    const x = change("a", 1)
    const y = change("b", 1, { physicalMs: 5 })
    const regions = [region("a", [x, y], [x, y]), region("b", [y], [y])]
    const verdicts = Reference.evaluate(Checkers.unionHistory(regions), lww)
    const found = Checkers.safety(regions, verdicts, topology, () => lww)
    expect(found.map((violation) => violation.details["region"])).toEqual(["b"])
    expect(Checkers.safety([region("a", [x, y], [x, y]), region("b", [y, x], [x, y])], verdicts, topology, () => lww)).toEqual([])
  })

  it("the reference keeps only changes nobody supersedes and lets the resolver pick among them", () => {
    const first = change("a", 1)
    const later = change("b", 1, { context: { a: 1 }, op: "delete" })
    const concurrent = change("a", 2, { physicalMs: 9 })
    const verdict = Reference.evaluate([first, later, concurrent, first], lww).get(Tuple.key(tuple()))!
    expect(verdict.maximal.map((each) => `${each.id.origin}#${each.id.seq}`)).toEqual(["a#2", "b#1"])
    expect(verdict.winner).toBe(concurrent)
  })

  it("residency flags a region that logged a vault it may not hold", () => {
    const outside = change("a", 1, { vault: "local" })
    expect(Checkers.residency([region("a", [outside], []), region("b", [outside], [])], topology).map((violation) => violation.details["region"])).toEqual(["b"])
  })

  it("acknowledged flags an acknowledged change that is in no region's log", () => {
    const history = new History()
    const write = history.begin("a", [], 0)
    history.end(write, "acknowledged", 1, { changes: [change("a", 7)] })
    expect(Checkers.acknowledged(history.writes, [region("a", [change("a", 1)], [])])).toHaveLength(1)
  })

  it("epochs flags two regions serving one epoch, and a write taken in an epoch already superseded elsewhere", () => {
    const history = new History()
    const stale = history.begin("a", [], 500)
    Object.assign(stale, { targetRegion: "a", epoch: 0 })
    history.end(stale, "acknowledged", 501, { changes: [] })
    const nodes: ReadonlyArray<Checkers.NodeEpochs> = [
      { nodeId: "a-node1", regionId: "a", history: [{ epoch: 0, primary: "a", fenced: false, atMs: 0, cause: "initial" }, { epoch: 1, primary: "a", fenced: false, atMs: 400, cause: "promoted" }] },
      { nodeId: "b-node1", regionId: "b", history: [{ epoch: 1, primary: "b", fenced: false, atMs: 300, cause: "promoted" }] }
    ]
    const messages = Checkers.epochs(history.writes, nodes).map((violation) => violation.message)
    expect(messages.some((message) => message.startsWith("epoch 1: a and b each served as primary"))).toBe(true)
    expect(messages.some((message) => message.includes("split brain"))).toBe(true)
  })

  it("lost writes are labelled superseded, concurrent, clock-skew or tie", () => {
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
    const verdicts = Reference.evaluate([superseded, tied, winner, skewed], lww)
    expect(verdicts.get(Tuple.key(tuple()))?.winner).toBe(winner)
    const { losses } = Checkers.classifyLosses(history.writes, verdicts, history, "LastWriteWins")
    expect(losses).toEqual({ survived: 1, superseded: 1, concurrent: 0, "clock-skew": 1, tie: 1 })
  })
})
