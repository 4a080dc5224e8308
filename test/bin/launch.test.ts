/**
 * The launcher runs the bundle only while it is current: every bundle the manifest names
 * exists and every input it lists still has the recorded modification time and size. The
 * cases use files of this repository (read only) and manifests made up here.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import * as Launch from "../../bin/launch.mjs"

const stamp = (file: string): readonly [number, number] => {
  const stats = fs.statSync(path.join(Launch.root, file))
  return [stats.mtimeMs, stats.size]
}

const bundle = "package.json"
const input = "src/cli/main.ts"

describe("launch", () => {
  it("a manifest whose inputs are unchanged is current", () => {
    expect(Launch.isCurrent({ entries: { [input]: bundle }, inputs: { [input]: stamp(input) } })).toBe(true)
  })

  it("an input modified, resized or deleted since the build makes the bundle stale", () => {
    const [mtimeMs, size] = stamp(input)
    for (const inputs of [{ [input]: [mtimeMs - 1, size] as const }, { [input]: [mtimeMs, size + 1] as const }, { "src/cli/Deleted.ts": [mtimeMs, size] as const }]) {
      expect(Launch.isCurrent({ entries: { [input]: bundle }, inputs })).toBe(false)
    }
  })

  it("a missing bundle is never current", () => {
    expect(Launch.isCurrent({ entries: { [input]: "dist/no-such-bundle.js" }, inputs: { [input]: stamp(input) } })).toBe(false)
  })
})
