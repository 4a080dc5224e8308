/**
 * The chaos harness tells whether its nodes will run the bundle by asking the launcher of the
 * repository it starts them from (`Nodes.runsBuilt`). The cases use a made-up repository: a copy
 * of the launcher, and a build manifest that is missing, current or stale.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import * as Nodes from "../../src/chaos/Nodes.js"

const made: Array<string> = []
afterEach(() => {
  for (const folder of made.splice(0)) fs.rmSync(folder, { recursive: true, force: true })
})

/** A repository holding only the launcher, a source file and, when asked, a build of it. */
const repository = (build: "none" | "current" | "stale"): string => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "inferadb-runs-built-"))
  made.push(root)
  fs.mkdirSync(path.join(root, "bin"))
  fs.copyFileSync(path.join(Nodes.repositoryRoot(), "bin", "launch.mjs"), path.join(root, "bin", "launch.mjs"))
  fs.mkdirSync(path.join(root, "src", "cli"), { recursive: true })
  const source = path.join(root, "src", "cli", "main.ts")
  fs.writeFileSync(source, "export {}\n")
  if (build === "none") return root
  fs.mkdirSync(path.join(root, "dist"))
  fs.writeFileSync(path.join(root, "dist", "cli.cjs"), "module.exports = {}\n")
  const stats = fs.statSync(source)
  const manifest = { entries: { "src/cli/main.ts": "dist/cli.cjs" }, inputs: { "src/cli/main.ts": [stats.mtimeMs, stats.size] } }
  fs.writeFileSync(path.join(root, "dist", "manifest.json"), JSON.stringify(manifest))
  // A source changed after the build: the launcher then runs the sources.
  if (build === "stale") fs.appendFileSync(source, "// changed\n")
  return root
}

describe("Nodes.runsBuilt", () => {
  it("is true only when the repository's build is current", async () => {
    expect(await Nodes.runsBuilt(repository("current"))).toBe(true)
    expect(await Nodes.runsBuilt(repository("none"))).toBe(false)
    expect(await Nodes.runsBuilt(repository("stale"))).toBe(false)
  })
})
