/**
 * The version of this program: package.json's `version`, and the git commit of the checkout
 * it runs from when there is one. It is read at run time from the package root, the nearest
 * directory above this module with a package.json (two levels up from `src/cli/` when the
 * sources run, one or two from the bundle in `dist/`), so the bundle never carries a stale
 * version.
 */
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

/** How many directories above this module the package root is looked for. */
const rootSearchDepthMax = 4

/** How long `git rev-parse` may take before the commit is left out. */
const gitTimeoutMs = 2_000

/** The package root: the nearest directory above this module that holds a package.json. */
export const packageRoot = (): string | undefined => {
  let directory = path.dirname(fileURLToPath(import.meta.url))
  for (let depth = 0; depth < rootSearchDepthMax; depth++) {
    if (fs.existsSync(path.join(directory, "package.json"))) return directory
    directory = path.dirname(directory)
  }
  return undefined
}

/** package.json's `version`, or "unknown" when it cannot be read. */
export const version = (): string => {
  const root = packageRoot()
  if (root === undefined) return "unknown"
  try {
    const manifest = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8")) as { readonly version?: unknown }
    return typeof manifest.version === "string" ? manifest.version : "unknown"
  } catch {
    return "unknown"
  }
}

/**
 * The short commit hash of the checkout, when the package root is a git checkout (its own, not
 * one that merely contains it) and git answers quickly; undefined otherwise.
 */
export const commit = (): string | undefined => {
  const root = packageRoot()
  if (root === undefined || !fs.existsSync(path.join(root, ".git"))) return undefined
  try {
    const hash = execFileSync("git", ["-C", root, "rev-parse", "--short", "HEAD"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"], timeout: gitTimeoutMs }).trim()
    return /^[0-9a-f]+$/.test(hash) ? hash : undefined
  } catch {
    return undefined
  }
}

/** What `--version` prints: `inferadb-repl 0.1.0 (commit 1a2b3c4)`, without the commit outside a checkout. */
export const text = (): string => {
  const hash = commit()
  return `inferadb-repl ${version()}${hash === undefined ? "" : ` (commit ${hash})`}`
}
