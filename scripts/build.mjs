#!/usr/bin/env node
/**
 * `npm run build`: bundles the command line (src/cli/main.ts and everything it imports,
 * dependencies included) and the thread `sim swarm --jobs` runs seeds on (src/cli/SwarmWorker.ts)
 * into dist/ as ES modules for Node 20, so that they start without compiling TypeScript. Each
 * subcommand is its own chunk (main.ts imports them dynamically), so `--help` and `--version`
 * load only commander.
 *
 * Some packages stay external and load from node_modules: lmdb and msgpackr-extract (native
 * addons located relative to their own files), foundationdb (optional, imported only when that
 * store is selected), and @grpc/grpc-js, @grpc/proto-loader, @grpc/reflection and
 * grpc-health-check (they read .proto files relative to their own directories).
 * Bundled CommonJS packages (prom-client, commander, cli-progress) get a `require` made with
 * createRequire, for the Node built-ins they require.
 *
 * The manifest, written last, records what the bundle was built from (see bin/launch.mjs).
 *
 *   node scripts/build.mjs              build
 *   node scripts/build.mjs --if-stale   build only when dist/ is missing or older than its inputs
 *
 * Runs as `prepare` (so `npm install` and `npm ci` build) and before `npm start` and `bench:repl`.
 */
import * as esbuild from "esbuild"
import * as fs from "node:fs"
import * as path from "node:path"
import { isCurrent, manifestFile, readManifest, root } from "../bin/launch.mjs"

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
const extraInputs = ["package.json", "package-lock.json", "scripts/build.mjs"]

const outdir = path.join(root, "dist")

/** CommonJS code bundled into ES modules still calls `require` for Node's built-ins. */
const requireShim = 'import { createRequire as __inferadbCreateRequire } from "node:module";\nconst require = __inferadbCreateRequire(import.meta.url);'

const build = async () => {
  // The manifest goes first and comes back last: a launcher never sees a half-written build as current.
  fs.rmSync(manifestFile, { force: true })
  fs.rmSync(outdir, { recursive: true, force: true })
  const result = await esbuild.build({
    absWorkingDir: root,
    entryPoints: Object.fromEntries(Object.entries(entries).map(([source, name]) => [name, source])),
    outdir,
    entryNames: "[name]",
    chunkNames: "chunks/[name]-[hash]",
    bundle: true,
    splitting: true,
    format: "esm",
    platform: "node",
    target: "node20",
    external,
    banner: { js: requireShim },
    sourcemap: "linked",
    metafile: true,
    logLevel: "warning"
  })
  const inputs = [...Object.keys(result.metafile.inputs).filter((file) => !file.startsWith("node_modules/")), ...extraInputs]
  const manifest = {
    entries: Object.fromEntries(Object.entries(entries).map(([source, name]) => [source, `dist/${name}.js`])),
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

const ifStale = process.argv.includes("--if-stale")
const manifest = readManifest()
if (ifStale && manifest !== undefined && isCurrent(manifest)) process.exit(0)
const startedMs = Date.now()
const inputCount = await build()
process.stderr.write(`built dist/ from ${inputCount} files in ${Date.now() - startedMs} ms\n`)
