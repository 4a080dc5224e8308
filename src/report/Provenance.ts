/**
 * Where a report came from: the project's version (its package.json) and git commit, and a
 * hash of the scenario that ran, so a report read later can be matched with the code and the
 * input that produced it. Read once per process (a swarm writes many reports).
 */
import { execFileSync } from "node:child_process"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

/** The project's identity. */
export interface Project {
  readonly version: string | undefined
  /** `git rev-parse HEAD` of the checkout, with `-dirty` when it has uncommitted changes. */
  readonly commit: string | undefined
}

const packageName = "inferadb-repl"

/** The project's root: the nearest directory above this module with our package.json (sources and bundle alike). */
export const projectRoot = (): string | undefined => {
  let directory = path.dirname(fileURLToPath(import.meta.url))
  for (;;) {
    const file = path.join(directory, "package.json")
    if (fs.existsSync(file)) {
      const manifest = JSON.parse(fs.readFileSync(file, "utf8")) as { readonly name?: string }
      if (manifest.name === packageName) return directory
    }
    const parent = path.dirname(directory)
    if (parent === directory) return undefined
    directory = parent
  }
}

const git = (root: string, args: ReadonlyArray<string>): string | undefined => {
  try {
    return execFileSync("git", args, { cwd: root, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim()
  } catch {
    return undefined
  }
}

let cached: Project | undefined

/** The project's version and commit (undefined parts when not in a git checkout). */
export const project = (): Project => {
  if (cached !== undefined) return cached
  const root = projectRoot()
  if (root === undefined) return (cached = { version: undefined, commit: undefined })
  const manifest = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8")) as { readonly version?: string }
  const head = git(root, ["rev-parse", "HEAD"])
  const dirty = head === undefined ? false : (git(root, ["status", "--porcelain", "--untracked-files=no"]) ?? "") !== ""
  cached = { version: manifest.version, commit: head === undefined ? undefined : `${head}${dirty ? "-dirty" : ""}` }
  return cached
}

/** The hex SHA-256 of a text. */
export const sha256 = (text: string): string => createHash("sha256").update(text).digest("hex")
