/**
 * The judge's rule pinned to the README's strategy table with hand-computed cases: who wins
 * among concurrent inserts and deletes, how equal timestamps, logical counters and priority
 * lists break ties, that a causally later change wins under every strategy, and a three-way
 * conflict. Every expected winner is written by hand; nothing here calls the resolver.
 */
import { describe, expect, it } from "vitest"
import type * as Change from "../../src/replication/Change.js"
import * as Tuple from "../../src/replication/Tuple.js"
import * as Oracle from "../../src/sim/Oracle.js"

const tuple: Tuple.Tuple = { vault: "acme", resource: "document:d", relation: "viewer", subject: "user:x" }

interface Spec {
  readonly region: string
  readonly seq: number
  readonly op?: Change.Operation
  readonly physicalMs: number
  readonly logical?: number
  readonly node?: string
  readonly context?: Record<string, number>
}

const change = (spec: Spec): Change.Change => ({
  id: { origin: spec.region, seq: spec.seq },
  op: spec.op ?? "insert",
  tuple,
  timestamp: { physicalMs: spec.physicalMs, logical: spec.logical ?? 0 },
  originRegion: spec.region,
  originNode: spec.node ?? `${spec.region}-node1`,
  originRevision: spec.seq,
  committedAtMs: spec.physicalMs,
  context: spec.context ?? {}
})

const rules = (strategy: Oracle.Strategy, regionPriorities: ReadonlyArray<string> = []): Oracle.Rules => ({ strategy, regionPriorities })

/** The id of the change the rule picks for the tuple after the whole history. */
const winnerOf = (strategy: Oracle.Rules, history: ReadonlyArray<Change.Change>): string => Oracle.idOf(Oracle.evaluate(history, strategy).get(Tuple.key(tuple))!.winner)

const strategies: ReadonlyArray<Oracle.Rules> = [rules("LastWriteWins"), rules("SourcePriority", ["b", "a"]), rules("InsertWins")]

describe("Oracle: causality", () => {
  it("a change supersedes another exactly when its context has seen the other's dot", () => {
    const first = change({ region: "a", seq: 3, physicalMs: 10 })
    expect(Oracle.supersedes(change({ region: "b", seq: 1, physicalMs: 5, context: { a: 3 } }), first)).toBe(true)
    expect(Oracle.supersedes(change({ region: "b", seq: 1, physicalMs: 5, context: { a: 4 } }), first)).toBe(true)
    expect(Oracle.supersedes(change({ region: "b", seq: 1, physicalMs: 50, context: { a: 2 } }), first)).toBe(false)
    expect(Oracle.supersedes(change({ region: "b", seq: 1, physicalMs: 50, context: { b: 9 } }), first)).toBe(false)
  })

  it("only changes nobody supersedes stay in the maximal set, each id once", () => {
    const insert = change({ region: "a", seq: 1, physicalMs: 10 })
    const remove = change({ region: "b", seq: 1, op: "delete", physicalMs: 20, context: { a: 1 } })
    const concurrent = change({ region: "c", seq: 1, physicalMs: 15 })
    expect(Oracle.maximal([concurrent, insert, remove, insert]).map(Oracle.idOf)).toEqual(["b#1", "c#1"])
  })

  for (const strategy of [...strategies, { ...rules("Custom"), custom: (candidates: ReadonlyArray<Change.Change>) => candidates[0]! }]) {
    it(`${strategy.strategy}: a delete that causally follows an insert wins even with a smaller timestamp`, () => {
      const insert = change({ region: "a", seq: 1, physicalMs: 1_000, node: "z-node" })
      const remove = change({ region: "b", seq: 1, op: "delete", physicalMs: 10, context: { a: 1 } })
      const verdict = Oracle.evaluate([remove, insert], strategy).get(Tuple.key(tuple))!
      expect(Oracle.idOf(verdict.winner)).toBe("b#1")
      expect(verdict.maximal).toHaveLength(1)
      expect(Oracle.present(strategy, [insert, remove])).toBe(false)
    })
  }
})

describe("Oracle: LastWriteWins", () => {
  it("the greatest physical timestamp wins among concurrent changes, delete or insert", () => {
    expect(winnerOf(rules("LastWriteWins"), [change({ region: "a", seq: 1, physicalMs: 10 }), change({ region: "b", seq: 1, op: "delete", physicalMs: 11 })])).toBe("b#1")
    expect(winnerOf(rules("LastWriteWins"), [change({ region: "a", seq: 1, physicalMs: 12 }), change({ region: "b", seq: 1, op: "delete", physicalMs: 11 })])).toBe("a#1")
  })

  it("equal physical time is decided by the logical counter", () => {
    expect(winnerOf(rules("LastWriteWins"), [change({ region: "a", seq: 1, physicalMs: 10, logical: 2 }), change({ region: "b", seq: 1, physicalMs: 10, logical: 1 })])).toBe("a#1")
  })

  it("equal timestamps are decided by the origin node id, then the origin region, then the sequence", () => {
    // Node ids decide first: "b-node1" sorts after "a-node9", so b's change wins.
    expect(winnerOf(rules("LastWriteWins"), [change({ region: "a", seq: 1, physicalMs: 10, node: "a-node9" }), change({ region: "b", seq: 1, physicalMs: 10, node: "b-node1" })])).toBe("b#1")
    // The same node name in two regions: the greater region wins.
    expect(winnerOf(rules("LastWriteWins"), [change({ region: "b", seq: 1, physicalMs: 10, node: "n" }), change({ region: "a", seq: 1, physicalMs: 10, node: "n" })])).toBe("b#1")
    // Same node and region (a#4 and a#5 never saw each other; b#1 is superseded): the higher sequence wins.
    expect(winnerOf(rules("LastWriteWins"), [change({ region: "a", seq: 5, physicalMs: 10 }), change({ region: "a", seq: 4, physicalMs: 10, context: { b: 1 } }), change({ region: "b", seq: 1, physicalMs: 1 })])).toBe("a#5")
  })
})

describe("Oracle: SourcePriority", () => {
  it("the region listed last wins whatever the timestamps", () => {
    const history = [change({ region: "a", seq: 1, physicalMs: 100 }), change({ region: "b", seq: 1, op: "delete", physicalMs: 1 })]
    expect(winnerOf(rules("SourcePriority", ["a", "b"]), history)).toBe("b#1")
    expect(winnerOf(rules("SourcePriority", ["b", "a"]), history)).toBe("a#1")
  })

  it("changes from one region fall back to last-write-wins", () => {
    const history = [change({ region: "a", seq: 1, physicalMs: 30, node: "a-node1" }), change({ region: "a", seq: 2, physicalMs: 20, node: "a-node2", context: { b: 1 } }), change({ region: "b", seq: 1, physicalMs: 90 })]
    // a#1 and a#2 are concurrent with each other (neither saw the other); b#1 is superseded by a#2.
    expect(winnerOf(rules("SourcePriority", ["b", "a"]), history)).toBe("a#1")
  })

  it("a region with no priority is a broken invariant, not priority zero", () => {
    expect(() => Oracle.evaluate([change({ region: "a", seq: 1, physicalMs: 1 }), change({ region: "c", seq: 1, physicalMs: 2 })], rules("SourcePriority", ["a", "b"]))).toThrow(/no SourcePriority rank/)
  })
})

describe("Oracle: InsertWins", () => {
  it("any concurrent insert beats a later delete", () => {
    expect(winnerOf(rules("InsertWins"), [change({ region: "a", seq: 1, physicalMs: 10 }), change({ region: "b", seq: 1, op: "delete", physicalMs: 99 })])).toBe("a#1")
  })

  it("among inserts last write wins, and among deletes only too", () => {
    expect(winnerOf(rules("InsertWins"), [change({ region: "a", seq: 1, physicalMs: 10 }), change({ region: "b", seq: 1, physicalMs: 11 }), change({ region: "c", seq: 1, op: "delete", physicalMs: 50 })])).toBe("b#1")
    expect(winnerOf(rules("InsertWins"), [change({ region: "a", seq: 1, op: "delete", physicalMs: 10 }), change({ region: "b", seq: 1, op: "delete", physicalMs: 11 })])).toBe("b#1")
  })
})

describe("Oracle: Custom", () => {
  it("the user's function decides, given the candidates sorted by id", () => {
    const seen: Array<string> = []
    const custom = (candidates: ReadonlyArray<Change.Change>) => {
      seen.push(candidates.map(Oracle.idOf).join(","))
      return candidates[candidates.length - 1]!
    }
    expect(winnerOf({ ...rules("Custom"), custom }, [change({ region: "c", seq: 1, physicalMs: 1 }), change({ region: "a", seq: 2, physicalMs: 9 }), change({ region: "b", seq: 1, physicalMs: 5 })])).toBe("c#1")
    expect(seen).toEqual(["a#2,b#1,c#1"])
  })
})

describe("Oracle: a three-way conflict", () => {
  // a#1 inserted first; b#1 (delete) and c#1 (insert) both saw it and not each other; a#2 (delete)
  // is concurrent with both of them too. Maximal: a#2, b#1, c#1.
  const history = [
    change({ region: "a", seq: 1, physicalMs: 5 }),
    change({ region: "b", seq: 1, op: "delete", physicalMs: 30, context: { a: 1 } }),
    change({ region: "c", seq: 1, physicalMs: 20, context: { a: 1 } }),
    change({ region: "a", seq: 2, op: "delete", physicalMs: 25 })
  ]

  it("keeps the three concurrent changes and lets each strategy pick its own winner", () => {
    expect(Oracle.evaluate(history, rules("LastWriteWins")).get(Tuple.key(tuple))!.maximal.map(Oracle.idOf)).toEqual(["a#2", "b#1", "c#1"])
    expect(winnerOf(rules("LastWriteWins"), history)).toBe("b#1")
    expect(winnerOf(rules("InsertWins"), history)).toBe("c#1")
    expect(winnerOf(rules("SourcePriority", ["b", "c", "a"]), history)).toBe("a#2")
    expect(winnerOf(rules("SourcePriority", ["a", "b", "c"]), history)).toBe("c#1")
  })
})
