/**
 * Property tests: every conflict strategy is deterministic and order-independent, regions
 * converge to the rule's answer, and causally later changes always win. A canary resolver
 * that keeps the local change on ties must be caught by the same properties.
 *
 * Replay a failure with the seed fast-check prints: `FC_SEED=<seed> npx vitest run <file>`.
 * `FC_RUNS` raises or lowers the number of cases (default 1000).
 */
import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import fc from "fast-check"
import * as Change from "../../src/replication/Change.js"
import * as ConflictResolver from "../../src/replication/ConflictResolver.js"
import * as Tuple from "../../src/replication/Tuple.js"
import * as TupleState from "../../src/replication/TupleState.js"
import * as VersionVector from "../../src/replication/VersionVector.js"
import * as History from "./fixtures/history.js"
import * as Reference from "./fixtures/reference.js"

const runs = Number(process.env["FC_RUNS"] ?? 1000)
const seed = process.env["FC_SEED"] === undefined ? {} : { seed: Number(process.env["FC_SEED"]) }
const parameters = { numRuns: runs, ...seed }

/** An example of a user-supplied resolver: deletes win, the lowest id breaks ties. */
const deleteWins: ConflictResolver.CustomResolve = (candidates) => candidates.find((change) => change.op === "delete") ?? candidates[0]!

const resolvers: ReadonlyArray<ConflictResolver.ConflictResolver> = [
  ConflictResolver.lastWriteWins,
  Either.getOrThrow(ConflictResolver.sourcePriority(History.regionNames)),
  ConflictResolver.insertWins,
  ConflictResolver.custom(deleteWins)
]

/** A replica model: how one region folds changes into its per-tuple state and reads it. */
interface ReplicaModel {
  readonly fold: (changes: ReadonlyArray<Change.Change>, region: string) => ReadonlyMap<string, TupleState.TupleState>
  readonly present: (states: ReadonlyMap<string, TupleState.TupleState>, region: string) => ReadonlySet<string>
}

const foldStates = (changes: ReadonlyArray<Change.Change>): Map<string, TupleState.TupleState> => {
  const states = new Map<string, TupleState.TupleState>()
  for (const change of changes) {
    const key = Tuple.key(change.tuple)
    const result = TupleState.merge(states.get(key) ?? TupleState.empty, change)
    if (result._tag === "Applied") states.set(key, result.state)
  }
  return states
}

const modelFor = (resolver: ConflictResolver.ConflictResolver): ReplicaModel => ({
  fold: (changes) => foldStates(changes),
  present: (states) => new Set([...states].filter(([, state]) => TupleState.isPresent(state, resolver)).map(([key]) => key))
})

/**
 * The canary: on a conflict it keeps whatever the local region wrote, like the original's
 * "keep local" tie-break. Each region then decides differently, which the properties catch.
 */
const keepLocalCanary: ReplicaModel = {
  fold: (changes) => foldStates(changes),
  present: (states, region) =>
    new Set(
      [...states]
        .filter(([, state]) => {
          const local = state.frontier.find((change) => change.originRegion === region)
          const chosen = state.frontier.length > 1 && local !== undefined ? local : ConflictResolver.lastWriteWins.resolve(state.frontier)
          return chosen.op === "insert"
        })
        .map(([key]) => key)
    )
}

const sortedKeys = (keys: ReadonlySet<string>) => [...keys].sort()
const stateFingerprint = (states: ReadonlyMap<string, TupleState.TupleState>) =>
  JSON.stringify([...states].sort(([a], [b]) => (a < b ? -1 : 1)).map(([key, state]) => [key, state.frontier.map(Change.idString)]))

const permutationKeys = fc.array(fc.integer({ min: 0, max: 1_000_000 }), { minLength: 80, maxLength: 80 })

/** Convergence: every region, fed the whole history in its own order, reaches the rule's state. */
const convergenceProperty = (model: ReplicaModel, resolver: ConflictResolver.ConflictResolver) =>
  fc.property(History.scenario(), fc.array(permutationKeys, { minLength: 5, maxLength: 5 }), (script, orders) => {
    const history = History.run(script)
    const expected = sortedKeys(Reference.presentKeys(history, resolver))
    const fingerprints = new Set<string>()
    for (let index = 0; index < script.regionCount; index++) {
      const region = History.regionNames[index]!
      const states = model.fold(History.shuffleWithDuplicates(history, orders[index]!), region)
      fingerprints.add(stateFingerprint(states))
      if (JSON.stringify(sortedKeys(model.present(states, region))) !== JSON.stringify(expected)) return false
    }
    return fingerprints.size === 1
  })

describe("conflict resolution properties", () => {
  for (const resolver of resolvers) {
    describe(resolver.strategy, () => {
      it("applying the same changes in any order, with duplicates, gives the same state and winner", () => {
        fc.assert(
          fc.property(History.scenario({ maxTuples: 1 }), permutationKeys, permutationKeys, (script, first, second) => {
            const history = History.run(script)
            const left = foldStates(History.shuffleWithDuplicates(history, first))
            const right = foldStates(History.shuffleWithDuplicates(history, second))
            const key = Tuple.key(History.tuples[0]!)
            const leftState = left.get(key) ?? TupleState.empty
            const rightState = right.get(key) ?? TupleState.empty
            expect(stateFingerprint(left)).toEqual(stateFingerprint(right))
            expect(TupleState.winner(leftState, resolver)).toEqual(TupleState.winner(rightState, resolver))
            // Folding the result again with everything it already has changes nothing (idempotence).
            expect(stateFingerprint(foldStates([...History.shuffleWithDuplicates(history, first), ...history]))).toEqual(
              stateFingerprint(left)
            )
          }),
          parameters
        )
      })

      it("every region converges to the state the strategy's rule computes from the whole history", () => {
        fc.assert(convergenceProperty(modelFor(resolver), resolver), parameters)
      })

      it("a change that causally follows another never loses to it, at any point of delivery", () => {
        fc.assert(
          fc.property(History.scenario(), permutationKeys, (script, order) => {
            const history = History.run(script)
            const delivered: Array<Change.Change> = []
            for (const change of History.shuffleWithDuplicates(history, order)) {
              delivered.push(change)
              const states = foldStates(delivered)
              for (const state of states.values()) {
                const winner = TupleState.winner(state, resolver)!
                const overtaken = delivered.some(
                  (other) => Tuple.key(other.tuple) === Tuple.key(winner.tuple) && Change.supersedes(other, winner)
                )
                expect(overtaken).toBe(false)
              }
            }
          }),
          parameters
        )
      })
    })
  }

  it("a delete that follows an insert from the same origin wins in every region under every strategy", () => {
    const tuple = History.tuples[0]!
    const insert: Change.Change = {
      id: { origin: "r0", seq: 1 },
      op: "insert",
      tuple,
      timestamp: { physicalMs: 50, logical: 0 },
      originRegion: "r0",
      originNode: "node1",
      originRevision: 1,
      committedAtMs: 50,
      context: {}
    }
    // The delete carries an *earlier* timestamp (a clock stepped back): causality still wins.
    const remove: Change.Change = { ...insert, id: { origin: "r0", seq: 2 }, op: "delete", timestamp: { physicalMs: 10, logical: 0 }, context: { r0: 1 } }
    for (const resolver of resolvers) {
      for (const order of [[insert, remove], [remove, insert]]) {
        const state = foldStates(order).get(Tuple.key(tuple))!
        expect(TupleState.isPresent(state, resolver)).toBe(false)
      }
    }
  })

  it("the keep-local canary is caught by the convergence property", () => {
    const result = fc.check(convergenceProperty(keepLocalCanary, ConflictResolver.lastWriteWins), { ...parameters, numRuns: Math.max(runs, 1000) })
    expect(result.failed).toBe(true)
  })
})

describe("TupleState.isKnown", () => {
  // isKnown asks each frontier member instead of merging their seen sets; it must answer what
  // the merged vector answers, for every change of a history against every state along it.
  it("answers whether the merged seen set covers the change's id", () => {
    const answers = { known: 0, unknown: 0 }
    fc.assert(
      fc.property(History.scenario(), fc.array(fc.nat(), { maxLength: 60 }), (script, keys) => {
        const changes = History.run(script)
        const states = new Map<string, TupleState.TupleState>()
        for (const change of History.shuffleWithDuplicates(changes, keys)) {
          const key = Tuple.key(change.tuple)
          const state = states.get(key) ?? TupleState.empty
          for (const other of changes) {
            if (Tuple.key(other.tuple) !== key) continue
            const expected = VersionVector.covers(TupleState.seen(state), other.id)
            expect(TupleState.isKnown(state, other)).toBe(expected)
            answers[expected ? "known" : "unknown"]++
          }
          const result = TupleState.merge(state, change)
          if (result._tag === "Applied") states.set(key, result.state)
        }
      }),
      parameters
    )
    // Both answers must have been asked often, or the comparison says little.
    expect(Math.min(answers.known, answers.unknown)).toBeGreaterThan(1000)
  })
})

describe("the history generator", () => {
  it("produces concurrent conflicts often enough for the properties to mean something", () => {
    const samples = fc.sample(History.scenario(), { numRuns: 300, seed: 7 })
    const withConflict = samples.filter((script) =>
      [...foldStates(History.run(script)).values()].some((state) => state.frontier.length > 1)
    ).length
    expect(withConflict).toBeGreaterThan(30)
  })
})
