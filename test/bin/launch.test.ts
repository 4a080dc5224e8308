/**
 * The launcher runs the bundle only while it is current: every bundle the manifest names
 * exists and every input it lists still has the recorded modification time and size. The
 * cases use files of this repository (read only) and manifests made up here.
 */
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { pathToFileURL } from "node:url"
import { afterAll, describe, expect, it } from "vitest"
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

  it("INFERADB_REPL_SOURCES=0 refuses to run sources that have no current bundle, and says why", () => {
    // No bundle names this entry, so the launcher would run it through tsx (and fail on the missing file).
    const script = `import(${JSON.stringify(pathToFileURL(path.join(Launch.root, "bin", "launch.mjs")).href)}).then((launcher) => launcher.launch("src/cli/NoSuchEntry.ts"))`
    const refused = spawnSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8", env: { ...process.env, INFERADB_REPL_SOURCES: "0" } })
    expect(refused.status).toBe(2)
    expect(refused.stderr).toContain("INFERADB_REPL_SOURCES=0 refuses the sources")
    expect(refused.stderr).toContain("src/cli/NoSuchEntry.ts")
    const tried = spawnSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8", env: { ...process.env, INFERADB_REPL_SOURCES: "" } })
    expect(tried.status).not.toBe(2)
    expect(tried.stderr).not.toContain("refuses the sources")
  })
})

/**
 * The code cache (`runBundle`), in child processes of a made-up dist/: node's flags, and so
 * V8's check of a cache, are a process's own. Each run prints the bundle's export and says
 * through `process.exitCode` nothing else, so a cache that broke the bundle shows.
 */
describe("runBundle's code cache", () => {
  const made: Array<string> = []
  afterAll(() => {
    for (const folder of made.splice(0)) fs.rmSync(folder, { recursive: true, force: true })
  })

  /** A dist/ with a bundle of many small functions, and a script that runs it through the launcher. */
  const distWithBundle = (): { readonly bundle: string; readonly runner: string; readonly cacheDir: string } => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "inferadb-code-cache-"))
    made.push(dir)
    const functions = Array.from({ length: 2_000 }, (_, index) => `function f${index}(x) { return x + ${index} }`).join("\n")
    const calls = Array.from({ length: 2_000 }, (_, index) => `f${index}(0)`).join(" + ")
    const bundle = path.join(dir, "dist", "made.cjs")
    fs.mkdirSync(path.dirname(bundle))
    fs.writeFileSync(bundle, `${functions}\nmodule.exports = { answer: ${calls} }\n`)
    const runner = path.join(dir, "run.mjs")
    fs.writeFileSync(runner, `import { runBundle } from ${JSON.stringify(path.join(Launch.root, "bin", "launch.mjs"))}\nprocess.stdout.write(String(runBundle(${JSON.stringify(bundle)}).answer))\n`)
    return { bundle, runner, cacheDir: path.join(dir, "dist", "cache") }
  }

  const expected = String((2_000 * 1_999) / 2)

  const run = (runner: string, flags: ReadonlyArray<string> = [], env: Record<string, string> = {}): void => {
    const result = spawnSync(process.execPath, [...flags, runner], { encoding: "utf8", env: { ...process.env, NODE_OPTIONS: "", INFERADB_REPL_CODE_CACHE: "", ...env } })
    expect(result.stderr).toBe("")
    expect(result.stdout).toBe(expected)
    expect(result.status).toBe(0)
  }

  const files = (cacheDir: string): Record<string, number> =>
    Object.fromEntries((fs.existsSync(cacheDir) ? fs.readdirSync(cacheDir) : []).map((name) => [name, fs.statSync(path.join(cacheDir, name)).mtimeMs]))

  it("the first run writes the cache, later runs take it without writing it again", () => {
    const { runner, cacheDir } = distWithBundle()
    run(runner)
    const first = files(cacheDir)
    expect(Object.keys(first)).toHaveLength(1)
    expect(Object.keys(first)[0]).toMatch(/^made-[0-9a-f]{16}\.v8cache$/)
    // A cache V8 refused would be written again at exit: an unchanged file means it was taken.
    run(runner)
    run(runner)
    expect(files(cacheDir)).toEqual(first)
  })

  it("a bundle rebuilt to a text of the same length never runs the earlier build's code", () => {
    const { bundle, runner } = distWithBundle()
    run(runner)
    // V8 would take the first build's cache for this text (it compares lengths), and run its code.
    const rebuilt = fs.readFileSync(bundle, "utf8").replace("return x + 1 }", "return x - 1 }")
    expect(rebuilt.length).toBe(fs.statSync(bundle).size)
    fs.writeFileSync(bundle, rebuilt)
    const result = spawnSync(process.execPath, [runner], { encoding: "utf8", env: { ...process.env, NODE_OPTIONS: "", INFERADB_REPL_CODE_CACHE: "" } })
    expect(result.stdout).toBe(String(Number(expected) - 2))
  })

  it("a use of its own (the command line's --help) keeps its own cache, apart from the bundle's", () => {
    const { bundle, runner, cacheDir } = distWithBundle()
    run(runner)
    const general = files(cacheDir)
    fs.writeFileSync(runner, fs.readFileSync(runner, "utf8").replace(`runBundle(${JSON.stringify(bundle)})`, `runBundle(${JSON.stringify(bundle)}, "help")`))
    run(runner)
    const both = files(cacheDir)
    expect(Object.keys(both)).toHaveLength(2)
    const own = Object.keys(both).find((name) => !(name in general))!
    expect(own).toMatch(/^made-help-[0-9a-f]{16}\.v8cache$/)
    run(runner)
    expect(files(cacheDir)).toEqual(both)
  })

  it("a damaged cache is refused, the bundle runs as without one, and the cache is written anew", () => {
    const { runner, cacheDir } = distWithBundle()
    run(runner)
    const [name] = Object.keys(files(cacheDir))
    const file = path.join(cacheDir, name!)
    const good = fs.readFileSync(file)
    const damaged = Buffer.from(good)
    for (let index = 0; index < damaged.length; index += 7) damaged[index] = damaged[index]! ^ 0xff
    fs.writeFileSync(file, damaged)
    run(runner)
    expect(fs.readFileSync(file).equals(damaged)).toBe(false)
    expect(fs.readFileSync(file).length).toBeGreaterThan(0)
  })

  it("flags V8 checks give a cache of their own and leave the default one alone; node's own flags use the default", () => {
    const { runner, cacheDir } = distWithBundle()
    run(runner)
    const defaults = files(cacheDir)
    run(runner, ["--max-semi-space-size=8"])
    const withOwn = files(cacheDir)
    expect(Object.keys(withOwn)).toHaveLength(2)
    for (const [name, mtimeMs] of Object.entries(defaults)) expect(withOwn[name]).toBe(mtimeMs)
    // V8 takes the default flags' cache under --v8-pool-size (every serve's): nothing new is written.
    run(runner, ["--v8-pool-size=1"])
    expect(files(cacheDir)).toEqual(withOwn)
  })

  // The build refuses bundles with such an import() (Node 20 warns that the loader behind it is
  // experimental); one that slipped through still runs.
  it("a bundle's import() of a computed specifier goes to node's loader", () => {
    const { bundle, runner } = distWithBundle()
    const module = path.join(path.dirname(bundle), "imported.mjs")
    fs.writeFileSync(module, "export const answer = 42\n")
    fs.appendFileSync(bundle, `module.exports.imported = () => import(${JSON.stringify(pathToFileURL(module).href)}).then((loaded) => loaded.answer)\n`)
    fs.appendFileSync(runner, `process.stdout.write(" " + String(await runBundle(${JSON.stringify(bundle)}).imported()))\n`)
    const result = spawnSync(process.execPath, [runner], { encoding: "utf8", env: { ...process.env, NODE_OPTIONS: "" } })
    expect(result.stdout).toBe(`${expected} 42`)
    expect(result.status).toBe(0)
  })

  it("INFERADB_REPL_CODE_CACHE=off neither reads nor writes, and a cache that cannot be written costs nothing else", () => {
    const { runner, cacheDir } = distWithBundle()
    run(runner, [], { INFERADB_REPL_CODE_CACHE: "off" })
    expect(files(cacheDir)).toEqual({})
    // A file where the cache directory should be: no cache can be written, and the run still succeeds.
    fs.writeFileSync(cacheDir, "not a directory")
    run(runner)
    expect(fs.statSync(cacheDir).isFile()).toBe(true)
  })
})
