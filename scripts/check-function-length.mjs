#!/usr/bin/env node
/**
 * Function-length ratchet (`npm run lint`): no function under `src/` may grow past
 * `lineCountMax` lines of code (blank and comment-only lines are not counted), the limit
 * TIGER_STYLE keeps. The functions that were already longer when the check came in are listed
 * in `scripts/function-length-ratchet.json` with their length then; each may only get shorter.
 *
 * The counting is ESLint's own `max-lines-per-function` rule over the typescript-eslint parser;
 * this script only names each long function (so the ratchet survives edits that move it) and
 * compares with the list. It fails (exit 1) when
 *   - a function not in the list is longer than the limit (split it: branching in the parent,
 *     pure helpers below it),
 *   - a listed function got longer than its entry,
 *   - a listed function got shorter or is gone (renamed, split, deleted): its entry must be
 *     lowered or removed, so the slack cannot be spent again. `--update` does exactly that and
 *     nothing else (it never raises an entry nor adds one; a renamed long function is added by
 *     hand, in review, under its new name). `--baseline` relists everything as it is, for a
 *     reviewed reset only (see `main`).
 *
 * A function's name is the path of the named things around it in its file: declarations,
 * variables, object keys, class members, and for a function passed as an argument the callee
 * (`make > Effect.gen > loop`). Names that repeat in one file get `#2`, `#3` in source order.
 *
 * Usage: node scripts/check-function-length.mjs [--update | --baseline]
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import * as parser from "@typescript-eslint/parser"
import { Linter } from "eslint"
import { builtinRules } from "eslint/use-at-your-own-risk"

/** The longest a new function may be, in lines of code. */
export const lineCountMax = 70

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")
const ratchetPath = path.join(root, "scripts", "function-length-ratchet.json")
/** Generated code is not ours to shape. */
const skippedDirectories = new Set([path.join(root, "src", "proto")])

const coreRule = builtinRules.get("max-lines-per-function")
if (coreRule === undefined) throw new Error("ESLint has no max-lines-per-function rule")

/** The label a node contributes to a function's name, if it names anything. */
const labelOf = (node, sourceCode) => {
  switch (node.type) {
    case "FunctionDeclaration":
    case "ClassDeclaration":
    case "ClassExpression":
    case "TSModuleDeclaration":
      return node.id?.name
    case "FunctionExpression":
      if (node.id) return node.id.name
      break
    case "VariableDeclarator":
      return node.id.type === "Identifier" ? node.id.name : undefined
    case "Property":
    case "MethodDefinition":
    case "PropertyDefinition":
      return node.computed ? `[${sourceCode.getText(node.key)}]` : (node.key.name ?? String(node.key.value))
    case "AssignmentExpression":
      return sourceCode.getText(node.left)
  }
  const isFunction = node.type === "FunctionExpression" || node.type === "ArrowFunctionExpression"
  if (isFunction && node.parent?.type === "CallExpression" && node.parent.callee !== node) {
    return sourceCode.getText(node.parent.callee).replace(/\s+/g, "")
  }
  return undefined
}

/** The name path of a function: the labels of it and everything around it, outermost first. */
const nameOf = (functionNode, sourceCode) => {
  const labels = []
  for (let node = functionNode; node !== null && node !== undefined; node = node.parent) {
    const label = labelOf(node, sourceCode)
    if (label !== undefined && labels[labels.length - 1] !== label) labels.push(label)
  }
  return labels.length === 0 ? "<anonymous>" : labels.reverse().join(" > ")
}

/** The core rule, with its reports renamed to the function's name path and carrying the count. */
const namingRule = {
  meta: { ...coreRule.meta, messages: { long: "{{name}}\t{{lineCount}}" } },
  create(context) {
    const report = (descriptor) =>
      context.report({
        node: descriptor.node,
        messageId: "long",
        data: { name: nameOf(descriptor.node, context.sourceCode), lineCount: descriptor.data.lineCount }
      })
    return coreRule.create(Object.create(context, { report: { value: report } }))
  }
}

const config = [
  {
    files: ["**/*.ts"],
    languageOptions: { parser },
    plugins: { ratchet: { rules: { "function-length": namingRule } } },
    rules: { "ratchet/function-length": ["error", { max: lineCountMax, skipBlankLines: true, skipComments: true, IIFEs: true }] }
  }
]

const sourceFiles = (directory) =>
  fs
    .readdirSync(directory, { withFileTypes: true })
    .sort((left, right) => (left.name < right.name ? -1 : left.name > right.name ? 1 : 0))
    .flatMap((entry) => {
      const full = path.join(directory, entry.name)
      if (entry.isDirectory()) return skippedDirectories.has(full) ? [] : sourceFiles(full)
      return entry.name.endsWith(".ts") && !entry.name.endsWith(".d.ts") ? [full] : []
    })

/**
 * The functions of one TypeScript source text longer than `lineCountMax`, in source order,
 * each with its name path (numbered when repeated), its length in lines of code and its line.
 * @param {string} source
 * @param {string} filename
 * @returns {Array<{ name: string, lines: number, line: number }>}
 */
export const measureSource = (source, filename) => {
  const linter = new Linter({ configType: "flat" })
  const seen = new Map()
  return linter.verify(source, config, { filename }).map((message) => {
    if (message.ruleId !== "ratchet/function-length") throw new Error(`${filename}:${message.line}: cannot parse: ${message.message}`)
    const [name, count] = message.message.split("\t")
    const occurrence = (seen.get(name) ?? 0) + 1
    seen.set(name, occurrence)
    return { name: occurrence === 1 ? name : `${name} #${occurrence}`, lines: Number(count), line: message.line }
  })
}

/**
 * Compares measured functions (`file: name` to length and line) with the ratchet's entries
 * (`file: name` to allowed length): what fails, and the entries lowered to what was measured.
 * @param {ReadonlyMap<string, { lines: number, line: number }>} lengths
 * @param {Readonly<Record<string, number>>} listed
 * @returns {{ failures: Array<string>, lowered: Record<string, number> }}
 */
export const compare = (lengths, listed) => {
  const failures = []
  const lowered = { ...listed }
  const update = "node scripts/check-function-length.mjs --update"
  for (const [key, { lines, line }] of lengths) {
    const allowed = listed[key]
    const separator = key.indexOf(": ")
    const where = `${key.slice(0, separator)}:${line}: ${key.slice(separator + 2)}`
    if (allowed === undefined) failures.push(`${where} has ${lines} lines of code; the limit is ${lineCountMax}: split it`)
    else if (lines > allowed) failures.push(`${where} grew from ${allowed} to ${lines} lines of code: split it, or at least bring it back to ${allowed}`)
    else if (lines < allowed) {
      lowered[key] = lines
      failures.push(`${where} shrank from ${allowed} to ${lines} lines of code: lower its entry (${update})`)
    }
  }
  for (const key of Object.keys(listed)) {
    if (lengths.has(key)) continue
    delete lowered[key]
    failures.push(`${key} is listed but is gone or within ${lineCountMax} lines: remove its entry (${update})`)
  }
  return { failures, lowered }
}

/** Every function under `src/` over the limit, as `file: name` to its length and line. */
const measureTree = () => {
  const lengths = new Map()
  for (const file of sourceFiles(path.join(root, "src"))) {
    const relative = path.relative(root, file).split(path.sep).join("/")
    for (const { name, lines, line } of measureSource(fs.readFileSync(file, "utf8"), file)) lengths.set(`${relative}: ${name}`, { lines, line })
  }
  return lengths
}

const writeRatchet = (functions) => {
  const sorted = Object.fromEntries(Object.entries(functions).sort(([left], [right]) => (left < right ? -1 : left > right ? 1 : 0)))
  const document = {
    comment: `Functions under src/ longer than ${lineCountMax} lines of code when the check came in, with their length then. Each may only shrink; see scripts/check-function-length.mjs.`,
    lineCountMax,
    functions: sorted
  }
  fs.writeFileSync(ratchetPath, `${JSON.stringify(document, null, 2)}\n`)
}

/**
 * Checks `src/` against the ratchet; with `--update`, first lowers and removes entries as
 * measured. `--baseline` rewrites the list from the code as it is, raises and additions
 * included: only for a reviewed reset (merging branches written before the check came in), the
 * diff of the list showing every raise.
 */
const main = () => {
  const lengths = measureTree()
  if (process.argv.includes("--baseline")) {
    writeRatchet(Object.fromEntries([...lengths].map(([key, { lines }]) => [key, lines])))
    console.log(`function-length ratchet: listed ${lengths.size} functions over ${lineCountMax} lines of code as they are now; review the diff`)
    return 0
  }
  const listed = JSON.parse(fs.readFileSync(ratchetPath, "utf8")).functions
  const { failures: all, lowered } = compare(lengths, listed)
  const update = process.argv.includes("--update")
  if (update) writeRatchet(lowered)
  // After an update the list matches every function that shrank or went; what is left to fix is growth.
  const failures = update ? compare(lengths, lowered).failures : all
  if (failures.length > 0) {
    console.error(`function-length ratchet: ${failures.length} problem(s)\n${failures.map((failure) => `  ${failure}`).join("\n")}`)
    return 1
  }
  console.log(`function-length ratchet: ok (${lengths.size} functions over ${lineCountMax} lines of code, all listed, none grown)`)
  return 0
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = main()
}
