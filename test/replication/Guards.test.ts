/**
 * The fast guards must say exactly what the Schemas say: a guard that accepted a value its
 * Schema refuses would let a malformed batch or tuple past validation. Valid values come from
 * the Schemas' own arbitraries; damaged ones set one field anywhere in them to a value chosen
 * to sit on each rule's edge (empty, NUL, no `type:` prefix, -0, fractions, unsafe integers,
 * wrong types), delete it, or add symbol keys, inherited fields and sparse arrays.
 */
import { describe, expect, it } from "@effect/vitest"
import { Arbitrary, FastCheck as fc, Schema } from "effect"
import * as Change from "../../src/replication/Change.js"
import * as Guards from "../../src/replication/Guards.js"
import * as Message from "../../src/replication/Message.js"
import * as Store from "../../src/replication/Store.js"
import * as Tuple from "../../src/replication/Tuple.js"

const edgeValues: ReadonlyArray<unknown> = [
  "", "a", "a\u0000b", ":x", "x:", "x:y", "insert", "delete", "ReplicateBatch", "LogPage", 0, -0, 1, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY,
  2 ** 53, 2 ** 53 - 1, null, undefined, true, [], {}, [1], { a: 1 }, { a: 0 }, 1n
]

const edge = fc.oneof(fc.constantFrom(...edgeValues), fc.anything())

/** Every path to a field inside a value: object keys and array indexes. */
const paths = (value: unknown, prefix: ReadonlyArray<string | number> = []): Array<ReadonlyArray<string | number>> => {
  if (typeof value !== "object" || value === null) return []
  const keys: Array<string | number> = Array.isArray(value) ? value.map((_, index) => index) : Object.keys(value)
  return keys.flatMap((key) => [[...prefix, key], ...paths((value as Record<string | number, unknown>)[key], [...prefix, key])])
}

const clone = (value: unknown): unknown =>
  Array.isArray(value) ? value.map(clone) : typeof value === "object" && value !== null ? Object.fromEntries(Object.entries(value).map(([k, v]) => [k, clone(v)])) : value

type Damage = "set" | "delete" | "inherit" | "symbol" | "hole"

/** The value with one thing done to the field at `path` (or to the value itself when no path). */
const damage = (value: unknown, path: ReadonlyArray<string | number> | undefined, how: Damage, replacement: unknown): unknown => {
  const copy = clone(value)
  if (path === undefined || path.length === 0) return how === "set" ? replacement : copy
  let parent = copy as Record<string | number, unknown>
  for (const key of path.slice(0, -1)) parent = parent[key] as Record<string | number, unknown>
  const last = path[path.length - 1]!
  if (how === "set") parent[last] = replacement
  if (how === "delete" || how === "hole") delete parent[last]
  if (how === "inherit") {
    const inherited = parent[last]
    delete parent[last]
    Object.setPrototypeOf(parent, { [last]: inherited })
  }
  if (how === "symbol") (parent as Record<symbol, unknown>)[Symbol("extra")] = replacement
  return copy
}

const agreesWithSchema = <A, I>(name: string, schema: Schema.Schema<A, I>, guard: (value: unknown) => boolean) =>
  it(`${name}: the guard accepts exactly what the Schema accepts, valid or damaged`, () => {
    const schemaSays = Schema.is(schema)
    const valid = Arbitrary.make(schema)
    const damaged = valid.chain((value) => {
      const all = paths(value)
      return fc.record({
        value: fc.constant(value),
        path: all.length === 0 ? fc.constant(undefined) : fc.option(fc.constantFrom(...all), { nil: undefined, freq: 8 }),
        how: fc.constantFrom<Damage>("set", "set", "set", "delete", "inherit", "symbol", "hole"),
        replacement: edge
      })
    })
    let accepted = 0
    fc.assert(
      fc.property(damaged, ({ value, path, how, replacement }) => {
        const candidate = damage(value, path, how, replacement)
        expect(guard(candidate)).toBe(schemaSays(candidate))
        if (guard(candidate)) accepted++
      }),
      { numRuns: 3_000 }
    )
    fc.assert(
      fc.property(valid, (value) => {
        expect(guard(value)).toBe(true)
      }),
      { numRuns: 500 }
    )
    // Both outcomes must occur, or the property says nothing about one of them.
    expect(accepted).toBeGreaterThan(0)
    expect(accepted).toBeLessThan(3_000)
  })

describe("Guards", () => {
  agreesWithSchema("Tuple", Tuple.Tuple, Guards.isTuple)
  agreesWithSchema("Change", Change.Change, Guards.isChange)
  agreesWithSchema("ReplicateBatch", Message.ReplicateBatch, Guards.isReplicateBatch)
  agreesWithSchema("LogPage", Message.LogPage, Guards.isLogPage)
  agreesWithSchema("LogEntry", Store.LogEntry, Guards.isLogEntry)
})
