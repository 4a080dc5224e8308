#!/usr/bin/env node
/**
 * Determinism lint (`npm run lint`): shared replication code must not read the machine's clock,
 * draw unseeded randomness or schedule with host timers, because the simulator replays a run
 * from one seed only if every source of time and chance goes through its services.
 *
 * Scans every `.ts` file under `src/replication/` (or the directory given as the first argument)
 * and fails (exit 1) listing file:line and the replacement for each banned API. Comments and
 * the contents of string literals are ignored (template-literal `${...}` expressions are still
 * code). No dependencies, so it runs before anything is built.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const clockReplacement = "use the Clock service (Clock.physicalMs / Clock.now) or Effect's Clock.currentTimeMillis"
const randomReplacement = "use the seeded Random service"
const timerReplacement = "use Effect.sleep / Schedule, which the simulator's clock controls"

/**
 * The banned APIs, each with the pattern that finds it in code and what to use instead.
 * @type {ReadonlyArray<{ readonly api: string, readonly pattern: RegExp, readonly replacement: string }>}
 */
export const banned = [
  { api: "Date.now", pattern: /\bDate\s*\.\s*now\b/, replacement: clockReplacement },
  { api: "new Date(", pattern: /\bnew\s+Date\s*\(/, replacement: clockReplacement },
  { api: "performance.now", pattern: /\bperformance\s*\.\s*now\b/, replacement: clockReplacement },
  { api: "process.hrtime", pattern: /\bprocess\s*\.\s*hrtime\b/, replacement: clockReplacement },
  { api: "Math.random", pattern: /\bMath\s*\.\s*random\b/, replacement: randomReplacement },
  { api: "randomUUID", pattern: /\brandomUUID\b/, replacement: `${randomReplacement} (derive ids from it)` },
  { api: "setTimeout", pattern: /\bsetTimeout\b/, replacement: timerReplacement },
  { api: "setInterval", pattern: /\bsetInterval\b/, replacement: timerReplacement },
  { api: "setImmediate", pattern: /\bsetImmediate\b/, replacement: timerReplacement }
]

/** Characters after which a `/` starts a regular expression literal rather than a division. */
const regexPreceders = new Set(["", "(", ",", "=", ":", "[", "!", "&", "|", "?", "{", "}", ";", "+", "-", "*", "%", "<", ">", "~", "^"])

/**
 * Replaces comments and the contents of string, template and regex literals with spaces,
 * keeping line breaks, so line numbers still match and only code is left to search.
 * @param {string} source
 * @returns {string}
 */
export const stripNonCode = (source) => {
  let out = ""
  let i = 0
  /** Open `${` expressions inside template literals; each entry counts nested braces. */
  const templateDepths = []
  const blank = (text) => text.replace(/[^\n]/g, " ")
  const lastCodeChar = () => out.trimEnd().slice(-1)
  while (i < source.length) {
    const c = source[i]
    const next = source[i + 1]
    if (c === "/" && next === "/") {
      const end = source.indexOf("\n", i)
      const stop = end === -1 ? source.length : end
      out += blank(source.slice(i, stop))
      i = stop
    } else if (c === "/" && next === "*") {
      const end = source.indexOf("*/", i + 2)
      const stop = end === -1 ? source.length : end + 2
      out += blank(source.slice(i, stop))
      i = stop
    } else if (c === '"' || c === "'") {
      const stop = skipQuoted(source, i, c)
      out += c + blank(source.slice(i + 1, stop - 1)) + c
      i = stop
    } else if (c === "`" || (c === "}" && templateDepths.length > 0 && templateDepths[templateDepths.length - 1] === 0)) {
      if (c === "}") templateDepths.pop()
      const { stop, opensExpression } = skipTemplateChunk(source, i + 1)
      out += c + blank(source.slice(i + 1, opensExpression ? stop - 2 : stop - 1)) + (opensExpression ? "${" : "`")
      if (opensExpression) templateDepths.push(0)
      i = stop
    } else if (c === "/" && regexPreceders.has(lastCodeChar())) {
      const stop = skipRegex(source, i)
      out += "/" + blank(source.slice(i + 1, stop - 1)) + "/"
      i = stop
    } else {
      if (templateDepths.length > 0 && c === "{") templateDepths[templateDepths.length - 1]++
      if (templateDepths.length > 0 && c === "}") templateDepths[templateDepths.length - 1]--
      out += c
      i++
    }
  }
  return out
}

/** Index just past the closing quote of a '...' or "..." literal starting at `start`. */
const skipQuoted = (source, start, quote) => {
  let i = start + 1
  while (i < source.length && source[i] !== quote && source[i] !== "\n") i += source[i] === "\\" ? 2 : 1
  return Math.min(i + 1, source.length)
}

/** Scans template text from `start` to the closing backtick or to an opening `${`. */
const skipTemplateChunk = (source, start) => {
  let i = start
  while (i < source.length) {
    if (source[i] === "\\") i += 2
    else if (source[i] === "`") return { stop: i + 1, opensExpression: false }
    else if (source[i] === "$" && source[i + 1] === "{") return { stop: i + 2, opensExpression: true }
    else i++
  }
  return { stop: source.length, opensExpression: false }
}

/** Index just past the closing `/` of a regex literal (flags stay in the code). */
const skipRegex = (source, start) => {
  let i = start + 1
  let inClass = false
  while (i < source.length && source[i] !== "\n") {
    const c = source[i]
    if (c === "\\") i += 2
    else {
      if (c === "[") inClass = true
      else if (c === "]") inClass = false
      else if (c === "/" && !inClass) return i + 1
      i++
    }
  }
  return i
}

/**
 * Finds banned APIs in the code (not comments or strings) of one source text.
 * @param {string} source
 * @returns {Array<{ line: number, api: string, replacement: string, text: string }>}
 */
export const scanSource = (source) => {
  const lines = source.split("\n")
  return stripNonCode(source)
    .split("\n")
    .flatMap((code, index) =>
      banned
        .filter(({ pattern }) => pattern.test(code))
        .map(({ api, replacement }) => ({ line: index + 1, api, replacement, text: (lines[index] ?? "").trim() }))
    )
}

/** Every `.ts` file under `dir`, recursively, in sorted order. */
const typeScriptFiles = (dir) =>
  fs
    .readdirSync(dir, { withFileTypes: true })
    .sort((left, right) => left.name.localeCompare(right.name))
    .flatMap((entry) => {
      const full = path.join(dir, entry.name)
      if (entry.isDirectory()) return typeScriptFiles(full)
      return entry.isFile() && entry.name.endsWith(".ts") ? [full] : []
    })

/**
 * Scans every `.ts` file under `dir` for banned APIs.
 * @param {string} dir
 * @returns {{ files: number, violations: Array<{ file: string, line: number, api: string, replacement: string, text: string }> }}
 */
export const scan = (dir) => {
  const files = typeScriptFiles(dir)
  const violations = files.flatMap((file) => scanSource(fs.readFileSync(file, "utf8")).map((violation) => ({ file, ...violation })))
  return { files: files.length, violations }
}

/** Scans `src/replication` (or the directory given as the first argument) and reports. */
const main = () => {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")
  const dir = path.resolve(root, process.argv[2] ?? path.join("src", "replication"))
  const shown = path.relative(root, dir) || "."
  const { files, violations } = scan(dir)
  if (violations.length === 0) {
    console.log(`check-determinism: ${files} files under ${shown} use no banned time, randomness or timer API`)
    return 0
  }
  console.error(`check-determinism: ${violations.length} banned API use(s) under ${shown}:`)
  for (const violation of violations) {
    console.error(`  ${path.relative(root, violation.file)}:${violation.line}: ${violation.api} -> ${violation.replacement}`)
    console.error(`      ${violation.text}`)
  }
  return 1
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = main()
}
