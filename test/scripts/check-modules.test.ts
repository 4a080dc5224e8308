import { describe, expect, it } from "@effect/vitest"
import * as childProcess from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

// `npm run lint:modules` is knip with the repository's knip.json; these run the same command on
// small projects laid out like this one, so the check is shown to catch what it is there for.
const repository = path.resolve(import.meta.dirname, "../..")
const knipBin = path.join(repository, "node_modules", "knip", "bin", "knip.js")

/** The knip arguments of `npm run lint:modules`, read from package.json so the two cannot drift. */
const lintArguments = (): Array<string> => {
  const scripts = JSON.parse(fs.readFileSync(path.join(repository, "package.json"), "utf8")).scripts as Record<string, string>
  const command = scripts["lint:modules"]!.split("&&")[0]!.trim().split(/\s+/)
  expect(command[0]).toBe("knip")
  return command.slice(1)
}

/** Runs the check on a project of the given files (beside the repository's knip.json and tsconfig). */
const checkProject = (files: Record<string, string>): { readonly status: number | null; readonly output: string } => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "check-modules-"))
  try {
    const project = {
      "package.json": JSON.stringify({ name: "check-modules-example", type: "module", private: true }),
      "knip.json": fs.readFileSync(path.join(repository, "knip.json"), "utf8"),
      "tsconfig.json": JSON.stringify({ compilerOptions: { module: "NodeNext", moduleResolution: "NodeNext", strict: true, noEmit: true }, include: ["src", "test"] }),
      ...files
    }
    for (const [relative, contents] of Object.entries(project)) {
      fs.mkdirSync(path.dirname(path.join(dir, relative)), { recursive: true })
      fs.writeFileSync(path.join(dir, relative), contents)
    }
    const result = childProcess.spawnSync(process.execPath, [knipBin, ...lintArguments()], { cwd: dir, encoding: "utf8", env: { ...process.env, NO_COLOR: "1" } })
    return { status: result.status, output: `${result.stdout}${result.stderr}` }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

const tidy = {
  "src/cli/main.ts": `import * as Engine from "../replication/Engine.js"\nconsole.log(Engine.start())\n`,
  "src/replication/Engine.ts": `import * as Clock from "./Clock.js"\n/** Used by main. */\nexport const start = (): number => Clock.now() + offset\n/** Used only in this file. */\nexport const offset = 1\n`,
  "src/replication/Clock.ts": `/** Used by Engine. */\nexport const now = (): number => 0\n/** Used only by a test. */\nexport const frozen = (): number => 0\n`,
  "test/replication/Clock.test.ts": `import * as Clock from "../../src/replication/Clock.js"\nconsole.log(Clock.frozen())\n`
}

describe("check-modules (knip)", () => {
  it("a project whose every export has a user, in its own file or a test, and with no cycle passes", () => {
    const { status, output } = checkProject(tidy)
    expect(output).toBe("")
    expect(status).toBe(0)
  })

  it("an import cycle, an export nobody uses and a file nobody imports are each caught", () => {
    const { status, output } = checkProject({
      ...tidy,
      "src/replication/Clock.ts": `import * as Engine from "./Engine.js"\nexport const now = (): number => 0\nexport const frozen = (): number => 0\nexport const drift = (): number => Engine.offset\n`,
      "src/replication/Orphan.ts": `export const lonely = 1\n`
    })
    expect(status).toBe(1)
    expect(output).toMatch(/Unused files \(1\)\s+src\/replication\/Orphan\.ts/)
    expect(output).toMatch(/Unused exports \(1\)\s+drift\s/)
    // knip starts the cycle at whichever of its files it reached first.
    expect(output).toMatch(/Circular dependencies \(1\)\s+src\/replication\/(Engine\.ts → src\/replication\/Clock|Clock\.ts → src\/replication\/Engine)\.ts/)
  })
})
