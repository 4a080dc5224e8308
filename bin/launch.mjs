/**
 * Runs a TypeScript entry point of this repository from the bundle in dist/ when `npm run
 * build` made one from the current inputs, and from its sources through tsx otherwise.
 *
 * `scripts/build.mjs` writes dist/manifest.json last: for each entry point its bundle, and for
 * every file the bundle was built from (our sources, package.json, package-lock.json, the
 * build script) its modification time and size. The bundle is current when every one of them
 * still matches; checking costs one stat per file, about a millisecond. Set
 * INFERADB_REPL_SOURCES=1 to run the sources even when the bundle is current, and
 * INFERADB_REPL_SOURCES=0 to refuse them: a process that would run the sources exits with a
 * message instead. `bench:repl` sets it for its serve processes and `bench:compare` for every
 * run: an edit to any input while a benchmark runs makes the bundle stale, and a `serve` started
 * after it (the drain restarts one) then ran through tsx, with 80 MB more memory and slower, and
 * nothing said so.
 *
 * A bundle is one CommonJS file, compiled here with V8's code cache (`runBundle`): V8 checks
 * that a cache was made by the same V8 with the same flags from a text of the same length and
 * else rejects it, and the bundle then compiles as without one. The caches are in dist/cache/,
 * one per bundle file (its inode, modification time and size, so never one made from an
 * earlier build) and per set of node's flags (its command-line flags and NODE_OPTIONS) that
 * needed one of its own (`cacheFilesOf`). A process that found none, or one V8 rejected, writes one when it
 * exits or two seconds after it started: what it compiled by then, for the command line its
 * subcommand's code.
 * INFERADB_REPL_CODE_CACHE=train writes one at exit in any case (the build's training run),
 * =off neither reads nor writes one.
 *
 * Plain JavaScript without dependencies, so it runs before anything is built or installed.
 */
import { createHash, randomBytes } from "node:crypto"
import * as fs from "node:fs"
import { createRequire } from "node:module"
import * as path from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import * as vm from "node:vm"

/** The repository root. */
export const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)))

/** Where the build writes its manifest (the last file it writes). */
export const manifestFile = path.join(root, "dist", "manifest.json")

/**
 * Reads the manifest; undefined when there is none or it cannot be parsed.
 * @returns {{ readonly entries: Readonly<Record<string, string>>, readonly inputs: Readonly<Record<string, readonly [number, number]>> } | undefined}
 */
export const readManifest = () => {
  try {
    const manifest = JSON.parse(fs.readFileSync(manifestFile, "utf8"))
    return typeof manifest?.entries === "object" && typeof manifest?.inputs === "object" ? manifest : undefined
  } catch {
    return undefined
  }
}

/**
 * Whether every bundle the manifest lists is there and every input still has the modification
 * time and size it had.
 * @param {{ readonly entries: Readonly<Record<string, string>>, readonly inputs: Readonly<Record<string, readonly [number, number]>> }} manifest
 */
export const isCurrent = (manifest) =>
  Object.values(manifest.entries).every((bundle) => fs.existsSync(path.join(root, bundle))) &&
  Object.entries(manifest.inputs).every(([file, [mtimeMs, size]]) => {
    const stats = fs.statSync(path.join(root, file), { throwIfNoEntry: false })
    return stats !== undefined && stats.mtimeMs === mtimeMs && stats.size === size
  })

/**
 * The bundle of `source` (a path from the repository root) when it is current; undefined otherwise.
 * @param {string} source
 */
export const bundleOf = (source) => {
  if (process.env["INFERADB_REPL_SOURCES"] === "1") return undefined
  const manifest = readManifest()
  const bundle = manifest?.entries[source]
  return typeof bundle === "string" && isCurrent(manifest) ? path.join(root, bundle) : undefined
}

/**
 * Where the code cache of `bundle` is kept: the one for node's default flags, and the one for
 * this process's own (its command-line flags and NODE_OPTIONS), which is the same file when it
 * has none. A `use` (see `launch`) has caches of its own.
 * @param {string} bundle
 * @param {string} [use]
 */
export const cacheFilesOf = (bundle, use) => {
  // V8 tells one text from another only by its length: a cache written at exit by a process
  // that loaded the bundle before a rebuild must never meet the new bundle. Each build writes
  // the file anew (a new inode and modification time).
  const { ino, mtimeMs, size } = fs.statSync(bundle)
  const file = (flags) => {
    const key = createHash("sha256").update(JSON.stringify([process.version, process.arch, ino, mtimeMs, size, ...flags])).digest("hex").slice(0, 16)
    return path.join(path.dirname(bundle), "cache", `${path.basename(bundle, ".cjs")}${use === undefined ? "" : `-${use}`}-${key}.v8cache`)
  }
  const options = process.env["NODE_OPTIONS"] ?? ""
  return { defaults: file([]), own: process.execArgv.length === 0 && options === "" ? file([]) : file([...process.execArgv, options]) }
}

/** @param {string} file */
const readIfThere = (file) => {
  try {
    return fs.readFileSync(file)
  } catch {
    return undefined
  }
}

/**
 * Writes `data` under a name of its own and renames it into place, so that processes writing
 * the same cache at once never leave a torn file. A read-only dist/ only costs the cache.
 * @param {string} file
 * @param {() => Buffer} data
 */
const writeQuietly = (file, data) => {
  const temporary = `${file}.${process.pid}.${randomBytes(4).toString("hex")}`
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true })
    fs.writeFileSync(temporary, data())
    fs.renameSync(temporary, file)
  } catch {
    try {
      fs.rmSync(temporary, { force: true })
    } catch {
      // Nothing was written there either.
    }
  }
}

/** How long after its start a process that runs on writes its code cache (see `saveLater`). */
const saveAfterMs = 2_000

/**
 * Writes `script`'s code cache when the process exits or `saveAfterMs` after now, whichever
 * comes first (only at exit when training). The timer is for processes that end without an
 * exit of their own: a swarm's worker threads are terminated, a node may be killed.
 * @param {string} file
 * @param {vm.Script} script
 * @param {boolean} atExitOnly
 */
const saveLater = (file, script, atExitOnly) => {
  let saved = false
  const save = () => {
    if (saved) return
    saved = true
    writeQuietly(file, () => script.createCachedData())
  }
  process.once("exit", save)
  if (!atExitOnly) setTimeout(save, saveAfterMs).unref()
}

/**
 * Runs a CommonJS bundle the way `require` would, compiled with its code cache (`use`'s, when
 * given), and returns its exports. An `import()` of a name computed at run time, which the build refuses, would still go
 * to node's loader (in the node versions that have the option), with node's warning that the
 * option is experimental.
 * @param {string} bundle
 * @param {string} [use]
 */
export const runBundle = (bundle, use) => {
  const mode = process.env["INFERADB_REPL_CODE_CACHE"]
  const files = cacheFilesOf(bundle, use)
  // Most of node's own flags (`--v8-pool-size`, which every serve gets) leave V8's check alone, so
  // the default flags' cache serves until V8 rejects it; then this process makes one of its own.
  const cachedData = mode === "off" || mode === "train" ? undefined : (readIfThere(files.own) ?? readIfThere(files.defaults))
  // CommonJS's own wrapper, on the bundle's first line so that its line numbers stay as they are.
  const wrapped = `(function (exports, require, module, __filename, __dirname) { ${fs.readFileSync(bundle, "utf8")}\n});`
  const script = new vm.Script(wrapped, {
    filename: bundle,
    cachedData,
    importModuleDynamically: vm.constants?.USE_MAIN_CONTEXT_DEFAULT_LOADER
  })
  if (mode !== "off" && (cachedData === undefined || script.cachedDataRejected === true)) saveLater(files.own, script, mode === "train")
  const module = { exports: {} }
  script.runInThisContext().call(module.exports, module.exports, createRequire(bundle), module, bundle, path.dirname(bundle))
  return module.exports
}

/**
 * Runs `source`'s current bundle, or registers tsx and imports the source itself. A `use` of
 * the bundle that runs much less of it than the others has a code cache of its own: V8 reads a
 * whole cache in, and the command line's (3 MB, every subcommand's start) took 85-90 ms of a
 * `--help` that runs only commander.
 * @param {string} source
 * @param {string} [use]
 */
export const launch = async (source, use) => {
  const bundle = bundleOf(source)
  if (bundle === undefined && process.env["INFERADB_REPL_SOURCES"] === "0") {
    process.stderr.write(`inferadb-repl: INFERADB_REPL_SOURCES=0 refuses the sources, and dist/ holds no bundle of ${source} built from the current inputs: run \`npm run build\`\n`)
    process.exit(2)
  }
  if (bundle === undefined) return launchSources(source)
  const exports = runBundle(bundle, use)
  // The training run also loads what its command does not use (see main.ts's `train`).
  if (process.env["INFERADB_REPL_CODE_CACHE"] === "train" && typeof exports.train === "function") await exports.train()
  return exports
}

/** @param {string} source */
const launchSources = async (source) => {
  const { register } = await import("tsx/esm/api")
  register()
  return import(pathToFileURL(path.join(root, source)).href)
}
