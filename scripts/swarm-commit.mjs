// A swarm on seeds nobody has run yet: the first seed is derived from the commit (HEAD), so
// every commit explores new ones. `npm run test:swarm [-- --seeds N]`; a failure prints its
// replay command first (the swarm's own output), and the exit code is the swarm's.
import { execFileSync, spawnSync } from "node:child_process"
import * as path from "node:path"

const root = path.resolve(import.meta.dirname, "..")
const commit = (() => {
  try {
    return execFileSync("git", ["rev-parse", "HEAD"], { cwd: root, encoding: "utf8" }).trim()
  } catch {
    return "0000000"
  }
})()
// 1,000,000 and up: the seeds the README and the curated CI list use stay below it.
const firstSeed = 1_000_000 + (Number.parseInt(commit.slice(0, 7), 16) % 1_000_000_000)
const args = process.argv.slice(2)
// 500: about two minutes on two cores, against about eight for `npm test`.
const seeds = args.includes("--seeds") ? [] : ["--seeds", "500"]
process.stdout.write(`swarm from commit ${commit.slice(0, 12)}: first seed ${firstSeed}\n`)
const run = spawnSync(process.execPath, [path.join(root, "bin/inferadb-repl.mjs"), "sim", "swarm", ...seeds, "--first-seed", String(firstSeed), ...args], { cwd: root, stdio: "inherit" })
process.exit(run.status ?? 1)
