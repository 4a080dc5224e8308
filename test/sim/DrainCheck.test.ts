/**
 * The `drained` check's rule on hand-made disks (`DrainCheck`): what a completed drain promises,
 * and what it does not.
 */
import { describe, expect, it } from "vitest"
import type * as Change from "../../src/replication/Change.js"
import * as DrainCheck from "../../src/sim/DrainCheck.js"
import { History, type WriteRecord } from "../../src/sim/History.js"

const change = (seq: number, options: { readonly context?: Record<string, number>; readonly vault?: string; readonly origin?: string } = {}): Change.Change => ({
  id: { origin: options.origin ?? "a-node1", seq },
  op: "insert",
  tuple: { vault: options.vault ?? "open", resource: "document:d", relation: "viewer", subject: "user:x" },
  timestamp: { physicalMs: seq, logical: 0 },
  originRegion: "a",
  originNode: "a-node1",
  originRevision: seq,
  committedAtMs: seq,
  context: options.context ?? {}
})

/** One write of `changes` taken by a-node1, from `startedAtMs` to 100 ms later. */
const written = (changes: ReadonlyArray<Change.Change>, startedAtMs = 1_000, targetNode = "a-node1"): WriteRecord => {
  const history = new History()
  const write = history.begin("a", [], startedAtMs)
  write.targetNode = targetNode
  history.end(write, "acknowledged", startedAtMs + 100, { changes })
  return write
}

const stop: DrainCheck.DrainedStop = { nodeId: "a-node1", drainFromMs: 5_000, drainedAtMs: 5_200, logEnd: 10 }

const peers = (disks: { readonly sibling: ReadonlyArray<Change.Change>; readonly b: ReadonlyArray<Change.Change>; readonly bBornAtMs?: number }, options: Partial<DrainCheck.Peers> = {}): DrainCheck.Peers => ({
  ownBornAtMs: 0,
  siblings: [DrainCheck.diskOf("a-node2", disks.sibling, 0)],
  targets: [{ regionId: "b", disks: [DrainCheck.diskOf("b-node1", disks.b, disks.bBornAtMs ?? 0)] }],
  anyOther: false,
  allowed: (vault, region) => vault !== "local" || region === "a",
  ...options
})

const missing = (violations: ReturnType<typeof DrainCheck.judge>) => violations.flatMap((violation) => (violation.details["examples"] as ReadonlyArray<{ readonly missingFrom: ReadonlyArray<string> }>).map((example) => example.missingFrom))

describe("the drained check", () => {
  it("passes when every sibling and every target region holds what the node acknowledged, and names each place that lacks it", () => {
    const x = change(1)
    expect(DrainCheck.judge(stop, [written([x])], peers({ sibling: [x], b: [x] }))).toEqual([])
    expect(missing(DrainCheck.judge(stop, [written([x])], peers({ sibling: [], b: [x] })))).toEqual([["sibling a-node2"]])
    expect(missing(DrainCheck.judge(stop, [written([x])], peers({ sibling: [x], b: [] })))).toEqual([["region b"]])
  })

  it("counts a change as held where a change that supersedes it is (a node ignores what it already knows the effect of)", () => {
    const x = change(1)
    const later = change(1, { origin: "b-node1", context: { "a-node1": 1 } })
    expect(DrainCheck.judge(stop, [written([x])], peers({ sibling: [later], b: [later] }))).toEqual([])
    const concurrent = change(1, { origin: "b-node1" })
    expect(missing(DrainCheck.judge(stop, [written([x])], peers({ sibling: [x], b: [concurrent] })))).toEqual([["region b"]])
  })

  it("does not ask for writes acknowledged after the drain completed, by another node, or before the node's disk was wiped, nor a region outside the vault's residency", () => {
    const x = change(1)
    expect(DrainCheck.judge(stop, [written([x], 5_150)], peers({ sibling: [], b: [] }))).toEqual([])
    // One acknowledged during the drain (at 5,050) is asked: the drain holds every write the node acknowledged.
    expect(missing(DrainCheck.judge(stop, [written([x], 4_950)], peers({ sibling: [x], b: [] })))).toEqual([["region b"]])
    expect(DrainCheck.judge(stop, [written([x], 1_000, "a-node2")], peers({ sibling: [], b: [] }))).toEqual([])
    expect(DrainCheck.judge(stop, [written([x])], peers({ sibling: [], b: [] }, { ownBornAtMs: 2_000 }))).toEqual([])
    const local = change(2, { vault: "local" })
    expect(DrainCheck.judge(stop, [written([local])], peers({ sibling: [local], b: [] }))).toEqual([])
  })

  it("does not ask a disk created after the write began, which may have held it and lost it since", () => {
    const x = change(1)
    expect(DrainCheck.judge(stop, [written([x])], peers({ sibling: [x], b: [], bBornAtMs: 3_000 }))).toEqual([])
    expect(missing(DrainCheck.judge(stop, [written([x])], peers({ sibling: [x], b: [], bBornAtMs: 500 })))).toEqual([["region b"]])
  })

  it("under discovery asks only that some other disk holds it", () => {
    const x = change(1)
    expect(DrainCheck.judge(stop, [written([x])], peers({ sibling: [], b: [x] }, { anyOther: true }))).toEqual([])
    expect(missing(DrainCheck.judge(stop, [written([x])], peers({ sibling: [], b: [] }, { anyOther: true })))).toEqual([["any other disk"]])
  })

  it("under discovery counts a disk created after the write began that holds it, though it does not ask one for it", () => {
    const x = change(1)
    // Swarm seed 140017660: the one target region was wiped while the node drained and took the changes on its new disk.
    expect(DrainCheck.judge(stop, [written([x])], peers({ sibling: [], b: [x], bBornAtMs: 3_000 }, { anyOther: true }))).toEqual([])
    expect(missing(DrainCheck.judge(stop, [written([x])], peers({ sibling: [], b: [], bBornAtMs: 3_000 }, { anyOther: true })))).toEqual([["any other disk"]])
  })
})
