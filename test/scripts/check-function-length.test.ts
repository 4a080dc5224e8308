import { describe, expect, it } from "@effect/vitest"
import * as CheckFunctionLength from "../../scripts/check-function-length.mjs"

/** Statements that each take one line of code. */
const statements = (count: number, indent = "  "): string => Array.from({ length: count }, (_, index) => `${indent}total += ${index}`).join("\n")

/** A function declaration of exactly `lines` lines of code (its first and last line included). */
const functionOf = (name: string, lines: number): string => `function ${name}(): number {\n  let total = 0\n${statements(lines - 3)}\n}\n`

const measure = (source: string) => CheckFunctionLength.measureSource(source, "Example.ts").map(({ name, lines }) => [name, lines])

describe("check-function-length", () => {
  it("a function one line over the limit is caught and one at the limit is not", () => {
    const limit = CheckFunctionLength.lineCountMax
    expect(limit).toBe(70)
    expect(measure(functionOf("atLimit", limit))).toEqual([])
    expect(measure(functionOf("overLimit", limit + 1))).toEqual([["overLimit", limit + 1]])
  })

  it("blank lines and comment-only lines do not count as lines of code", () => {
    const padded = functionOf("padded", 70).replace("  let total = 0\n", `  let total = 0\n${"\n  // why this is done\n".repeat(20)}`)
    expect(padded.split("\n").length).toBeGreaterThan(100)
    expect(measure(padded)).toEqual([])
  })

  it("a function is named by the path of what encloses it, so code added above it does not rename it", () => {
    const source = [
      "export const make = (size: number) =>",
      "  Effect.gen(function* () {",
      "    const loop = () => {",
      "      let total = size",
      statements(80, "      "),
      "    }",
      "    return loop",
      "  })"
    ].join("\n")
    const names = [
      ["make", 87],
      ["make > Effect.gen", 86],
      ["make > Effect.gen > loop", 83]
    ]
    expect(measure(source)).toEqual(names)
    expect(measure(`const unrelated = 1\n\nexport const other = () => unrelated\n${source}`)).toEqual(names)
  })

  it("class members and object keys name their functions, and repeated names are numbered in source order", () => {
    const body = `{\n  let total = 0\n${statements(75)}\n  return total\n}`
    const source = [`class Node {\n  start() ${body}\n}`, `const handlers = { onBatch: () => ${body} }`, `run(() => ${body})`, `run(() => ${body})`].join("\n")
    expect(measure(source).map(([name]) => name)).toEqual(["Node > start", "handlers > onBatch", "run", "run #2"])
  })

  it("a new long function, a grown one and a listed one that shrank or went all fail; shrinking lowers the entry", () => {
    const lengths = new Map([
      ["src/A.ts: kept", { lines: 80, line: 1 }],
      ["src/A.ts: grown", { lines: 95, line: 20 }],
      ["src/A.ts: shrunk", { lines: 75, line: 40 }],
      ["src/B.ts: new", { lines: 71, line: 3 }]
    ])
    const listed = { "src/A.ts: kept": 80, "src/A.ts: grown": 90, "src/A.ts: shrunk": 85, "src/A.ts: gone": 100 }
    const { failures, lowered } = CheckFunctionLength.compare(lengths, listed)
    expect(failures).toEqual([
      "src/A.ts:20: grown grew from 90 to 95 lines of code: split it, or at least bring it back to 90",
      "src/A.ts:40: shrunk shrank from 85 to 75 lines of code: lower its entry (node scripts/check-function-length.mjs --update)",
      "src/B.ts:3: new has 71 lines of code; the limit is 70: split it",
      "src/A.ts: gone is listed but is gone or within 70 lines: remove its entry (node scripts/check-function-length.mjs --update)"
    ])
    // Lowering never raises an entry nor adds one: the grown and the new function still fail after it.
    expect(lowered).toEqual({ "src/A.ts: kept": 80, "src/A.ts: grown": 90, "src/A.ts: shrunk": 75 })
    expect(CheckFunctionLength.compare(lengths, lowered).failures).toHaveLength(2)
  })

  it("functions that match their entries pass", () => {
    const lengths = new Map([["src/A.ts: kept", { lines: 80, line: 1 }]])
    expect(CheckFunctionLength.compare(lengths, { "src/A.ts: kept": 80 })).toEqual({ failures: [], lowered: { "src/A.ts: kept": 80 } })
  })
})
