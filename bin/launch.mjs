/**
 * Runs a TypeScript entry point of this repository from the bundle in dist/ when `npm run
 * build` made one from the current inputs, and from its sources through tsx otherwise.
 *
 * `scripts/build.mjs` writes dist/manifest.json last: for each entry point its bundle, and for
 * every file the bundle was built from (our sources, package.json, package-lock.json, the
 * build script) its modification time and size. The bundle is current when every one of them
 * still matches; checking costs one stat per file, about a millisecond. Set
 * INFERADB_REPL_SOURCES=1 to run the sources even when the bundle is current.
 *
 * Plain JavaScript without dependencies, so it runs before anything is built or installed.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"

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
 * Imports `source`'s current bundle, or registers tsx and imports the source itself.
 * @param {string} source
 */
export const launch = async (source) => {
  const bundle = bundleOf(source)
  if (bundle !== undefined) return import(pathToFileURL(bundle).href)
  const { register } = await import("tsx/esm/api")
  register()
  return import(pathToFileURL(path.join(root, source)).href)
}
