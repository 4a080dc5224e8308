/**
 * `InFlightWrites`, what the pipelined drivers lay over durable data for the next transaction
 * bodies, judged against the rule written out plainly: a read sees the newest commit still in
 * flight that wrote the key; commits settle in any order but leave only from the front, once
 * they and every older one are durable; a failure clears them all. (A version that kept one map
 * of every key's newest value, for one lookup per read, was measured slower in `bench:repl`:
 * each key written then costs a set, a lookup and a delete, which outweighed the reads saved.)
 */
import { describe, expect, it } from "@effect/vitest"
import * as fc from "fast-check"
import { type InFlight, InFlightWrites } from "../../src/replication/KvDriver.js"

type Step =
  | { readonly kind: "add"; readonly writes: ReadonlyArray<readonly [string, number]> }
  | { readonly kind: "settle"; readonly pick: number }
  | { readonly kind: "clear" }

const key = fc.constantFrom("a", "b", "c", "d", "e")
const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 4, arbitrary: fc.array(fc.tuple(key, fc.integer({ min: 0, max: 99 })), { maxLength: 4 }).map((writes) => ({ kind: "add" as const, writes })) },
  { weight: 3, arbitrary: fc.nat(20).map((pick) => ({ kind: "settle" as const, pick })) },
  { weight: 1, arbitrary: fc.constant({ kind: "clear" as const }) }
)

/** The rule: commits in order, each durable or not; the in-flight ones are those from the first not durable on. */
interface ModelCommit {
  readonly writes: ReadonlyMap<string, number>
  durable: boolean
}

const modelGet = (commits: ReadonlyArray<ModelCommit>, wanted: string): number | undefined => {
  const firstPending = commits.findIndex((commit) => !commit.durable)
  if (firstPending === -1) return undefined
  for (let index = commits.length - 1; index >= firstPending; index--) {
    const value = commits[index]!.writes.get(wanted)
    if (value !== undefined) return value
  }
  return undefined
}

describe("InFlightWrites", () => {
  it("reads each key's newest value among the commits still in flight, as the rule says", () => {
    fc.assert(
      fc.property(fc.array(step, { maxLength: 60 }), (steps) => {
        const writes = new InFlightWrites<number>()
        let model: Array<ModelCommit> = []
        let handles: Array<InFlight<number>> = []
        for (const current of steps) {
          if (current.kind === "add") {
            const map = new Map(current.writes)
            model.push({ writes: map, durable: false })
            handles.push(writes.add(map))
          } else if (current.kind === "settle") {
            const open = handles.flatMap((handle, index) => (handle.durable ? [] : [index]))
            if (open.length === 0) continue
            const index = open[current.pick % open.length]!
            model[index]!.durable = true
            writes.settle(handles[index]!)
          } else {
            writes.clear()
            model = []
            handles = []
          }
          // A model commit leaves once it and all before it are durable; it is then never read.
          const inFlight = model.some((commit) => !commit.durable)
          expect(writes.isEmpty).toBe(!inFlight)
          for (const wanted of ["a", "b", "c", "d", "e"]) expect(writes.get(wanted)).toBe(modelGet(model, wanted))
          const merged = writes.merged()
          for (const wanted of ["a", "b", "c", "d", "e"]) expect(merged.get(wanted)).toBe(modelGet(model, wanted))
        }
      }),
      { numRuns: 500 }
    )
  })

  it("gives a copy from merged(), which later commits do not change", () => {
    const writes = new InFlightWrites<number>()
    const first = writes.add(new Map([["a", 1]]))
    const seen = writes.merged()
    writes.add(new Map([["a", 2], ["b", 3]]))
    writes.settle(first)
    expect([...seen]).toEqual([["a", 1]])
    expect([...writes.merged()].sort()).toEqual([["a", 2], ["b", 3]])
  })
})
