/**
 * The in-memory disk's committed state (`DiskTree`), against a model written here: a plain
 * Map whose sorted keys give the order. A commit's new tree holds the model's contents; every
 * tree published before it still reads exactly as it did (a reader's snapshot), even after many
 * commits sharing its nodes; range reads honour their bounds and limit.
 */
import { describe, expect, it } from "@effect/vitest"
import * as fc from "fast-check"
import * as DiskTree from "../../src/replication/DiskTree.js"

const removed = Symbol("removed")

/** Keys from a small alphabet, so commits overwrite and remove keys the tree already holds. */
const key = fc.string({ unit: fc.constantFrom("a", "b", "c", "l/", "t/", "\u0000", "é"), maxLength: 6 })
const commit = fc.array(fc.tuple(key, fc.oneof(fc.integer(), fc.constant<typeof removed>(removed))), { maxLength: 40 })

const modelAfter = (model: ReadonlyMap<string, unknown>, writes: ReadonlyMap<string, unknown>): Map<string, unknown> => {
  const next = new Map(model)
  for (const [k, v] of writes) {
    if (v === removed) next.delete(k)
    else next.set(k, v)
  }
  return next
}

const sortedEntries = (model: ReadonlyMap<string, unknown>): Array<readonly [string, unknown]> =>
  [...model.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))

const contents = (tree: DiskTree.DiskTree): Array<readonly [string, unknown]> => [...DiskTree.from(tree, "")]

describe("DiskTree", () => {
  it("every published tree keeps reading as the model did when it was published", () => {
    fc.assert(
      fc.property(fc.array(commit, { maxLength: 30 }), (commits) => {
        const published: Array<{ tree: DiskTree.DiskTree; model: Map<string, unknown> }> = [{ tree: DiskTree.empty(), model: new Map() }]
        for (const writes of commits) {
          const last = published[published.length - 1]!
          const asMap = new Map(writes)
          published.push({ tree: DiskTree.withWrites(last.tree, asMap, removed), model: modelAfter(last.model, asMap) })
        }
        for (const { tree, model } of published) {
          expect(contents(tree)).toEqual(sortedEntries(model))
          for (const [k, v] of model) expect(DiskTree.get(tree, k)).toBe(v)
        }
      })
    )
  })

  it("a range read returns the keys in [start, end), in order, at most `limit` of them", () => {
    fc.assert(
      fc.property(commit, key, key, fc.integer({ min: 0, max: 50 }), (writes, start, end, limit) => {
        const asMap = new Map(writes)
        const tree = DiskTree.withWrites(DiskTree.empty(), asMap, removed)
        const expected = sortedEntries(modelAfter(new Map(), asMap)).filter(([k]) => k >= start && k < end).slice(0, limit)
        expect(DiskTree.range(tree, start, end, limit)).toEqual(expected)
      })
    )
  })

  it("a published tree refuses to be changed in place", () => {
    const tree = DiskTree.withWrites(DiskTree.empty(), new Map([["a", 1]]), removed)
    expect(() => tree.set("b", 2)).toThrow()
    expect(DiskTree.get(tree, "b")).toBeUndefined()
  })

  it("thousands of keys, enough for several levels of nodes, still match the model", () => {
    let tree = DiskTree.empty()
    let model = new Map<string, unknown>()
    for (let round = 0; round < 200; round++) {
      const writes = new Map<string, unknown>()
      for (let i = 0; i < 50; i++) {
        const k = `l/${String((round * 37 + i * 101) % 4_000).padStart(6, "0")}`
        writes.set(k, i % 7 === 0 ? removed : round * 100 + i)
      }
      tree = DiskTree.withWrites(tree, writes, removed)
      model = modelAfter(model, writes)
    }
    expect(contents(tree)).toEqual(sortedEntries(model))
    expect(DiskTree.range(tree, "l/001000", "l/001100", 10)).toEqual(sortedEntries(model).filter(([k]) => k >= "l/001000" && k < "l/001100").slice(0, 10))
  })
})
