#!/usr/bin/env node
/**
 * `npm run build`: bundles the command line (src/cli/main.ts and everything it imports,
 * dependencies included), the thread `sim swarm --jobs` runs seeds on (src/cli/SwarmWorker.ts)
 * and the simulator's `runScenario` (src/sim/Run.ts) into dist/, one CommonJS file each for
 * Node 20, so that they start without compiling TypeScript.
 *
 * CommonJS and not ES modules, because Node 20 can keep V8's compiled code only for a script:
 * `bin/launch.mjs` compiles a bundle with the code cache in dist/cache/ and makes that cache when
 * it has none. Compiling the 3.9 MB of the command line's bundle was a fifth of a `sim run`'s
 * wall time. A subcommand's modules are wrapped by esbuild and run only when it is invoked, so
 * `--help` still runs commander alone. After the manifest, the build runs one `sim run` of a
 * shipped scenario to make the cache for node's default flags (`trainingRun`), and one
 * `--help` for the small cache of its own, so the first command after a build starts as fast
 * as the later ones.
 *
 * Some packages stay external and load from node_modules: lmdb and msgpackr-extract (native
 * addons located relative to their own files), foundationdb (optional, imported only when that
 * store is selected), and @grpc/grpc-js, @grpc/proto-loader, @grpc/reflection and
 * grpc-health-check (they read .proto files relative to their own directories).
 *
 * The manifest, written after the bundles, records what they were built from (see bin/launch.mjs).
 *
 *   node scripts/build.mjs              build
 *   node scripts/build.mjs --if-stale   build only when dist/ is missing or older than its inputs
 *
 * Runs as `prepare` (so `npm install` and `npm ci` build) and before `npm start` and `bench:repl`.
 */
import * as esbuild from "esbuild"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { isCurrent, manifestFile, readManifest, root } from "../bin/launch.mjs"
import { escapeNonAscii } from "./asciiBundle.mjs"

/**
 * Source entry points (from the repository root) and the names of their bundles in dist/: the
 * command line, the worker thread `sim swarm --jobs` starts through bin/worker.mjs, and the
 * simulator's `runScenario`, which `npm run bench:sim` measures in its own process as the
 * command line runs it (the bundle ran 40 swarm seeds about 9% faster than the sources through tsx).
 */
const entries = { "src/cli/main.ts": "cli", "src/cli/SwarmWorker.ts": "swarm-worker", "src/sim/Run.ts": "sim-run" }

/** Packages loaded from node_modules at run time instead of bundled. */
const external = ["lmdb", "msgpackr-extract", "foundationdb", "@grpc/grpc-js", "@grpc/proto-loader", "@grpc/reflection", "grpc-health-check"]

/** Files outside the bundle's own inputs whose change makes it stale. */
const extraInputs = ["package.json", "package-lock.json", "scripts/build.mjs", "scripts/asciiBundle.mjs"]

const outdir = path.join(root, "dist")

/**
 * What `import.meta` gave the ES modules, from the CommonJS module's own file name. It comes
 * after a "use strict" of its own: esbuild's comes after the banner, where it is no directive,
 * and the bundle would run in sloppy mode (writes to frozen values silently ignored, say).
 */
const importMetaShim = '"use strict";\nconst __importMetaUrl = require("node:url").pathToFileURL(__filename).href;'

const build = async () => {
  // The manifest goes first and comes back last: a launcher never sees a half-written build as current.
  fs.rmSync(manifestFile, { force: true })
  fs.rmSync(outdir, { recursive: true, force: true })
  const result = await esbuild.build({
    absWorkingDir: root,
    entryPoints: Object.fromEntries(Object.entries(entries).map(([source, name]) => [name, source])),
    outdir,
    entryNames: "[name]",
    outExtension: { ".js": ".cjs" },
    bundle: true,
    format: "cjs",
    platform: "node",
    target: "node20",
    external,
    define: { "import.meta.url": "__importMetaUrl", "import.meta.dirname": "__dirname" },
    banner: { js: importMetaShim },
    sourcemap: "linked",
    metafile: true,
    logLevel: "warning"
  })
  for (const name of Object.values(entries)) {
    const file = path.join(outdir, `${name}.cjs`)
    const text = escapeNonAscii(fs.readFileSync(file, "utf8"))
    fs.writeFileSync(file, text)
    if (!text.startsWith('"use strict";\n')) throw new Error(`${file} does not begin with "use strict": it would run in sloppy mode`)
    // esbuild turns import() of a named module into require; one of a name computed at run time
    // stays, and in a script Node 20 runs it only through a loader it warns is experimental.
    const computed = text.match(/(?<![\w$.])import\((?!["'`])[^)]{0,60}/)
    if (computed !== null) throw new Error(`${file} has an import() of a name computed at run time (${computed[0]}): use createRequire, or a literal name`)
  }
  const inputs = [...Object.keys(result.metafile.inputs).filter((file) => !file.startsWith("node_modules/")), ...extraInputs]
  const manifest = {
    entries: Object.fromEntries(Object.entries(entries).map(([source, name]) => [source, `dist/${name}.cjs`])),
    inputs: Object.fromEntries(
      inputs.sort().map((file) => {
        const stats = fs.statSync(path.join(root, file))
        return [file, [stats.mtimeMs, stats.size]]
      })
    )
  }
  fs.writeFileSync(manifestFile, `${JSON.stringify(manifest, null, 2)}\n`)
  return Object.keys(manifest.inputs).length
}

/**
 * Makes the command line's code cache for node's default flags: one `sim run` of a shipped
 * scenario, whose launcher writes the cache of everything it compiled when it exits. A failure
 * costs only speed (the first command compiles and makes the cache itself), so it is reported
 * and the build still succeeds.
 */
const trainingRun = () => {
  const scenario = "scenarios/three-region-skew-hlc.yaml"
  // A container's build stage copies no scenarios, and its image runs the bundle without the launcher.
  if (!fs.existsSync(path.join(root, scenario))) return
  const run = spawnSync(process.execPath, ["bin/inferadb-repl.mjs", "sim", "run", "--seed", "1", "--no-report", scenario], {
    cwd: root,
    env: { ...process.env, INFERADB_REPL_CODE_CACHE: "train", NODE_OPTIONS: "" },
    stdio: ["ignore", "ignore", "pipe"],
    timeout: 60_000
  })
  if (run.status !== 0) process.stderr.write(`the code cache's training run failed (status ${run.status}); commands make it themselves: ${String(run.stderr).slice(0, 2000)}\n`)
  // `--help` has a cache of its own (bin/inferadb-repl.mjs), which its first run writes.
  spawnSync(process.execPath, ["bin/inferadb-repl.mjs", "--help"], { cwd: root, env: { ...process.env, NODE_OPTIONS: "" }, stdio: "ignore", timeout: 60_000 })
}

const ifStale = process.argv.includes("--if-stale")
const manifest = readManifest()
if (ifStale && manifest !== undefined && isCurrent(manifest)) process.exit(0)
const startedMs = Date.now()
const inputCount = await build()
trainingRun()
process.stderr.write(`built dist/ from ${inputCount} files in ${Date.now() - startedMs} ms\n`)
