/**
 * `npm run bench:compare -- --base <commit>`: runs a benchmark alternately on another commit and
 * on this working tree, and prints one JSON line that compares their headline figures.
 *
 * Why: this machine is shared and its speed drifts. On December 6, 2026, eleven `bench:repl`
 * runs of one build ranged from 27,382 to 50,050 changes/s end to end and from 50,441 to 80,096
 * in the drain, so one run of each side says nothing, and a run made while a source file changed
 * measured the sources through tsx (see `bin/launch.mjs`'s INFERADB_REPL_SOURCES=0, which every
 * run here sets). Runs alternate, and the order flips every pair (base first, then this tree
 * first), so a drift during the comparison and a first-run effect fall on both sides alike.
 * Per figure it prints both sides' runs and medians and in how many pairs this tree was better.
 *
 * The base is checked out in a temporary git worktree that shares this tree's node_modules (so
 * a base with other dependencies is compared with these), built there, and removed at the end.
 * The benchmark's own environment (BENCH_BOOTSTRAP=0 and the like) goes to both sides.
 *
 * Options: --base <commit> (HEAD: the working tree's uncommitted changes against their commit), --bench repl|store|sim (repl), --pairs N (3),
 * --keep DIR (each run's JSON and stderr, as `<side>-<pair>.json`).
 */
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { Command, InvalidArgumentError } from "commander"
import { compareRuns, figures, loadOf } from "./compareFigures.js"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")

const git = (args: ReadonlyArray<string>, cwd = root): string => {
  const result = spawnSync("git", args, { cwd, encoding: "utf8" })
  if (result.status !== 0) throw new Error(`git ${args.join(" ")}: ${result.stderr.trim()}`)
  return result.stdout.trim()
}

/** Runs `command` in `cwd`, its output to our stderr; throws when it fails. */
const run = (cwd: string, command: ReadonlyArray<string>, env: NodeJS.ProcessEnv = process.env): { readonly stdout: string; readonly stderr: string } => {
  const result = spawnSync(command[0]!, command.slice(1), { cwd, encoding: "utf8", env, maxBuffer: 256 * 1024 * 1024 })
  if (result.status !== 0) throw new Error(`${command.join(" ")} in ${cwd} exited with ${result.status ?? result.signal}:\n${result.stderr.slice(-2_000)}`)
  return { stdout: result.stdout, stderr: result.stderr }
}

const progress = (line: string): void => void process.stderr.write(`[compare] ${line}\n`)

/** A checkout of `commit` in a temporary worktree, built, with this tree's node_modules. */
const checkout = (commit: string): string => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `inferadb-compare-${commit.slice(0, 8)}-`))
  git(["worktree", "add", "--detach", "--quiet", dir, commit])
  fs.symlinkSync(path.join(root, "node_modules"), path.join(dir, "node_modules"))
  return dir
}

const removeCheckout = (dir: string): void => {
  try {
    git(["worktree", "remove", "--force", dir])
  } catch (error) {
    progress(`could not remove the worktree ${dir}: ${error instanceof Error ? error.message : String(error)}`)
  }
  fs.rmSync(dir, { recursive: true, force: true })
}

/** One run of `bench` in `tree`, refusing the sources (`bin/launch.mjs`): its JSON, the last line of its output. */
const benchOnce = (tree: string, bench: string, keep: string | undefined, name: string): Record<string, unknown> => {
  const { stdout, stderr } = run(tree, [process.execPath, path.join(root, "node_modules", "tsx", "dist", "cli.mjs"), `bench/${bench}.ts`], { ...process.env, INFERADB_REPL_SOURCES: "0" })
  const line = stdout.trim().split("\n").pop() ?? ""
  if (keep !== undefined) {
    fs.writeFileSync(path.join(keep, `${name}.json`), `${line}\n`)
    fs.writeFileSync(path.join(keep, `${name}.err`), stderr)
  }
  return JSON.parse(line) as Record<string, unknown>
}

const main = () => {
  const options = new Command("bench:compare")
    .option("--base <commit>", "the commit to compare this working tree with", "HEAD")
    .option("--bench <name>", `the benchmark: ${Object.keys(figures).join(", ")}`, "repl")
    .option("--pairs <n>", "pairs of runs", (text) => {
      const value = Number(text)
      if (!Number.isSafeInteger(value) || value < 1) throw new InvalidArgumentError("a whole number of 1 or more")
      return value
    }, 3)
    .option("--keep <dir>", "keep each run's JSON and stderr there")
    .parse(process.argv)
    .opts<{ base: string; bench: string; pairs: number; keep?: string }>()
  const wanted = figures[options.bench]
  if (wanted === undefined) throw new Error(`--bench ${options.bench}: expected one of ${Object.keys(figures).join(", ")}`)
  if (options.keep !== undefined) fs.mkdirSync(options.keep, { recursive: true })
  const baseCommit = git(["rev-parse", "--verify", `${options.base}^{commit}`])
  const current = { commit: git(["rev-parse", "HEAD"]), dirty: git(["status", "--porcelain"]) !== "" }
  progress(`building this tree (${current.commit.slice(0, 8)}${current.dirty ? ", with uncommitted changes" : ""})`)
  run(root, [process.execPath, "scripts/build.mjs", "--if-stale"])
  const baseTree = checkout(baseCommit)
  try {
    progress(`building ${baseCommit.slice(0, 8)} in ${baseTree}`)
    run(baseTree, [process.execPath, "scripts/build.mjs"])
    const results: Record<"base" | "current", Array<Record<string, unknown>>> = { base: [], current: [] }
    const order: Array<string> = []
    for (let pair = 1; pair <= options.pairs; pair++) {
      const sides: ReadonlyArray<"base" | "current"> = pair % 2 === 1 ? ["base", "current"] : ["current", "base"]
      for (const side of sides) {
        progress(`pair ${pair} of ${options.pairs}: ${side}`)
        results[side].push(benchOnce(side === "base" ? baseTree : root, options.bench, options.keep, `${side}-${pair}`))
        order.push(side)
      }
    }
    const figuresCompared = compareRuns(wanted, results.base, results.current)
    const loads = { base: results.base.map(loadOf), current: results.current.map(loadOf) }
    process.stdout.write(`${JSON.stringify({ bench: options.bench, base: baseCommit, current, pairs: options.pairs, order, loadAverageAtStart: loads, figures: figuresCompared })}\n`)
    for (const figure of figuresCompared) {
      progress(`${figure.figure.padEnd(40)} base ${String(figure.baseMedian).padStart(9)}  this ${String(figure.currentMedian).padStart(9)}  ${figure.change === null ? "" : `${(figure.change * 100).toFixed(1)}%`.padStart(7)}  better in ${figure.currentBetterInPairs} of ${figure.pairs} (${figure.better} is better)`)
    }
  } finally {
    removeCheckout(baseTree)
  }
}

main()
