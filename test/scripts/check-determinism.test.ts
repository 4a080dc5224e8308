import { describe, expect, it } from "@effect/vitest"
import * as childProcess from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as CheckDeterminism from "../../scripts/check-determinism.mjs"

const scriptPath = path.resolve(import.meta.dirname, "../../scripts/check-determinism.mjs")

/** A temp directory holding the given files (relative path -> contents). */
const withTree = <A>(files: Record<string, string>, use: (dir: string) => A): A => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "check-determinism-"))
  try {
    for (const [relative, contents] of Object.entries(files)) {
      fs.mkdirSync(path.dirname(path.join(dir, relative)), { recursive: true })
      fs.writeFileSync(path.join(dir, relative), contents)
    }
    return use(dir)
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

const apis = (source: string) => CheckDeterminism.scanSource(source).map((violation) => [violation.line, violation.api])

describe("check-determinism", () => {
  it("a file that reads the wall clock is caught with its line and the replacement to use", () => {
    withTree({ "Agent.ts": "const a = 1\nconst started = Date.now()\n", "nested/Deep.ts": "export const id = crypto.randomUUID()\n" }, (dir) => {
      const { files, violations } = CheckDeterminism.scan(dir)
      expect(files).toBe(2)
      expect(violations.map((violation) => [path.relative(dir, violation.file), violation.line, violation.api])).toEqual([
        ["Agent.ts", 2, "Date.now"],
        [path.join("nested", "Deep.ts"), 1, "randomUUID"]
      ])
      expect(violations[0]?.replacement).toContain("Clock service")
      expect(violations[1]?.replacement).toContain("seeded Random service")
    })
  })

  it("every banned API is caught and names a replacement", () => {
    const source = [
      "Date.now()",
      "new Date()",
      "Math.random()",
      "setTimeout(f, 1)",
      "setInterval(f, 1)",
      "setImmediate(f)",
      "performance.now()",
      "process.hrtime.bigint()",
      "crypto.randomUUID()"
    ].join("\n")
    expect(apis(source)).toEqual([
      [1, "Date.now"],
      [2, "new Date("],
      [3, "Math.random"],
      [4, "setTimeout"],
      [5, "setInterval"],
      [6, "setImmediate"],
      [7, "performance.now"],
      [8, "process.hrtime"],
      [9, "randomUUID"]
    ])
    expect(CheckDeterminism.banned.find((entry) => entry.api === "setTimeout")?.replacement).toContain("Effect.sleep")
  })

  it("mentions in line comments, block comments, JSDoc and string literals are not violations", () => {
    const source = [
      "// never call Date.now here",
      "/* Math.random would break replay",
      "   setTimeout too */",
      "/**",
      " * Unlike `new Date()`, the Clock service is virtual.",
      " */",
      "const message = \"do not use setInterval\"",
      "const other = 'performance.now is banned'",
      "const template = `Date.now is banned`",
      "const url = \"http://example.com\" // Math.random",
      "const ok = 1"
    ].join("\n")
    expect(apis(source)).toEqual([])
  })

  it("code after a comment or inside a template expression is still checked", () => {
    const source = [
      "/* a comment */ const t = Date.now()",
      "const s = `at ${Math.random()} ms`",
      "const r = /\\/\\//.test(x); setTimeout(f)",
      "const nested = `a ${`b ${Date.now()}`} c`"
    ].join("\n")
    expect(apis(source)).toEqual([
      [1, "Date.now"],
      [2, "Math.random"],
      [3, "setTimeout"],
      [4, "Date.now"]
    ])
  })

  it("identifiers that merely contain a banned name are not violations", () => {
    expect(apis("const setTimeoutMs = 5\nconst myDate = newDate(1)\nclearTimeout(handle)")).toEqual([])
  })

  it("the command exits 1 and lists file:line with the replacement when a file is in violation", () => {
    withTree({ "Bad.ts": "export const now = () => Date.now()\n" }, (dir) => {
      const result = childProcess.spawnSync(process.execPath, [scriptPath, dir], { encoding: "utf8" })
      expect(result.status).toBe(1)
      expect(result.stderr).toContain("Bad.ts:1: Date.now -> use the Clock service")
    })
  })

  it("the command exits 0 with a one-line summary for a clean tree", () => {
    withTree({ "Good.ts": "// Date.now is banned\nexport const one = 1\n" }, (dir) => {
      const result = childProcess.spawnSync(process.execPath, [scriptPath, dir], { encoding: "utf8" })
      expect(result.status).toBe(0)
      expect(result.stdout.trim().split("\n")).toHaveLength(1)
      expect(result.stdout).toContain("1 files")
    })
  })
})
