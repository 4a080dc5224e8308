/**
 * `sim swarm --jobs N` runs seeds on worker threads and reports them as one thread would:
 * through the real command line in a child process (bundle or sources, whichever the launcher
 * picks), the summary, the failures, every seed's trace hash, the printed lines and the report
 * files are the same for two jobs as for one; only the wall-clock figures differ.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { spawn } from "node:child_process"
import { cli, root } from "../fixtures/cli.js"
import * as Serve from "../runtime/fixtures/serveProcess.js"

/** Ids of this machine's processes whose command line contains `text`. */
const runningWith = (text: string): ReadonlyArray<number> =>
  fs.readdirSync("/proc").filter((name) => /^\d+$/.test(name)).flatMap((pid) => {
    try {
      return fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ").includes(text) ? [Number(pid)] : []
    } catch {
      return []
    }
  })



interface SwarmJson {
  readonly summary: Record<string, unknown>
  readonly failures: ReadonlyArray<unknown>
  readonly traceHashes: Readonly<Record<string, string>>
  readonly jobs: number
  readonly helperThreads?: number
  readonly semiSpaceMb?: number
  readonly backgroundOnJobThreads: boolean
  readonly initialOldSpaceMb?: number
}

/** The summary without its wall-clock figures. */
const withoutWall = ({ wallMs: _wall, eventsPerSec: _rate, simulatedSecondsPerWallSecond: _speed, ...rest }: Record<string, unknown>) => rest

/** A report folder's wall-clock time of writing, e.g. `20261130T072801.123Z`. */
const folderTime = /\d{8}T\d{6}\.\d{3}Z(-\d+)?/g

/** Printed lines without wall-clock figures, with the report directory and folder times named alike. */
const comparable = (text: string, reportDir: string): string =>
  text
    .replaceAll(reportDir, "<reports>")
    .replace(folderTime, "<utc>")
    .replace(/ in [\d.]+ wall s of runs: .*$/m, "")
    .replace(/^ {2}\d+ job\(s\)[^:]*: .*\n/m, "")

/** A report file without the wall time of its run, with the report directory named alike. */
const comparableReport = (file: string, reportDir: string): string =>
  fs
    .readFileSync(file, "utf8")
    .replaceAll(reportDir, "<reports>")
    .replace(/"wallMs": \d+/, "")
    .replace(/\| \d+ ms \|\n/, "|\n")

describe("sim swarm --jobs", () => {
  it("twelve seeds on two jobs give the summary, failures and per-seed trace hashes of one job", async () => {
    const args = ["sim", "swarm", "--seeds", "12", "--json", "--no-report"]
    const one = await cli([...args, "--jobs", "1"])
    const two = await cli([...args, "--jobs", "2"])
    expect(two.code).toBe(one.code)
    const [oneJson, twoJson] = [JSON.parse(one.stdout) as SwarmJson, JSON.parse(two.stdout) as SwarmJson]
    expect([oneJson.jobs, twoJson.jobs]).toEqual([1, 2])
    // Two jobs run with one V8 helper thread, one job with a 128 MB semi-space (`SwarmV8Flags`);
    // each keeps V8's default for the other.
    expect([oneJson.helperThreads, twoJson.helperThreads]).toEqual([undefined, 1])
    expect([oneJson.semiSpaceMb, twoJson.semiSpaceMb]).toEqual([128, undefined])
    // Two jobs collect garbage and optimize on their own threads; one job leaves that to V8's helpers.
    expect([oneJson.backgroundOnJobThreads, twoJson.backgroundOnJobThreads]).toEqual([false, true])
    // Two jobs start with a 256 MB old generation, so they are not collected in full every few seeds.
    expect([oneJson.initialOldSpaceMb, twoJson.initialOldSpaceMb]).toEqual([undefined, 256])
    expect(Object.keys(twoJson.traceHashes)).toEqual(Array.from({ length: 12 }, (_, index) => String(index + 1)))
    expect(twoJson.traceHashes).toEqual(oneJson.traceHashes)
    expect(withoutWall(twoJson.summary)).toEqual(withoutWall(oneJson.summary))
    expect(twoJson.failures).toEqual(oneJson.failures)
  })

  it("a helper-thread pool size or semi-space the user gave stands, and a swarm ended by SIGTERM ends the run it started again", async () => {
    const given = await cli(["sim", "swarm", "--seeds", "2", "--jobs", "2", "--json", "--no-report"], { NODE_OPTIONS: "--v8-pool-size=2" })
    expect(given.code).toBe(0)
    expect((JSON.parse(given.stdout) as SwarmJson).helperThreads).toBe(2)
    const oldSpace = await cli(["sim", "swarm", "--seeds", "2", "--jobs", "2", "--json", "--no-report"], {}, ["--initial-old-space-size=64"])
    expect(oldSpace.code).toBe(0)
    expect((JSON.parse(oldSpace.stdout) as SwarmJson).initialOldSpaceMb).toBe(64)
    const semiSpace = await cli(["sim", "swarm", "--seeds", "2", "--jobs", "1", "--json", "--no-report"], { NODE_OPTIONS: "--max-semi-space-size=8" })
    expect(semiSpace.code).toBe(0)
    expect((JSON.parse(semiSpace.stdout) as SwarmJson).semiSpaceMb).toBe(8)
    // Node's command line (V8 refuses these flags in NODE_OPTIONS), either spelling.
    const concurrentGc = await cli(["sim", "swarm", "--seeds", "2", "--jobs", "2", "--json", "--no-report"], {}, ["--no-single_threaded_gc"])
    expect(concurrentGc.code).toBe(0)
    expect((JSON.parse(concurrentGc.stdout) as SwarmJson).backgroundOnJobThreads).toBe(false)
    // A seed range nothing else runs, to find the run started again among this machine's processes.
    const firstSeed = String(900_000_000 + process.pid)
    const child = spawn(process.execPath, [path.join(root, "bin/inferadb-repl.mjs"), "sim", "swarm", "--seeds", "100000", "--first-seed", firstSeed, "--jobs", "2", "--no-report"], {
      cwd: root,
      stdio: "ignore"
    })
    const runsAgain = () => runningWith(`--first-seed ${firstSeed}`).filter((pid) => pid !== child.pid)
    expect(await Serve.eventually(() => runsAgain().length > 0, 30_000)).toBe(true)
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)))
    child.kill("SIGTERM")
    expect(await exited).toBe(128 + 15)
    expect(await Serve.eventually(() => runsAgain().length === 0, 30_000)).toBe(true)
  }, 60_000)

  it("a canary failure on two jobs prints its replay command first and writes the reports one job writes", async () => {
    const directory = fs.mkdtempSync(path.join(os.tmpdir(), "swarm-jobs-"))
    const run = (jobs: number) => {
      const reportDir = path.join(directory, `jobs-${jobs}`)
      return cli(["sim", "swarm", "--seeds", "4", "--first-seed", "8", "--canary", "keep-local", "--jobs", String(jobs), "--report-dir", reportDir]).then((output) => ({ ...output, reportDir }))
    }
    const one = await run(1)
    const two = await run(2)
    expect([one.code, two.code]).toEqual([1, 1])
    const lines = two.stdout.split("\n")
    expect(lines[0]).toBe(`replay: node bin/inferadb-repl.mjs sim run ${path.join(two.reportDir, "swarm-9.yaml")} --seed 9 --canary keep-local`)
    expect(lines[1]).toMatch(/^ {2}seed 9 FAILED: \[safety\]/)
    expect(comparable(two.stdout, two.reportDir)).toBe(comparable(one.stdout, one.reportDir))
    const [summaries, written] = [fs.readdirSync(two.reportDir).filter((name) => name.startsWith("swarm-summary-")), fs.readdirSync(two.reportDir).filter((name) => !name.startsWith("swarm-summary-"))]
    expect(written.sort()).toEqual(["swarm", "swarm-9.yaml"])
    expect(summaries).toHaveLength(1)
    expect(fs.readFileSync(path.join(two.reportDir, summaries[0]!), "utf8")).toContain(`<a href="swarm/9-`)
    expect(fs.readdirSync(path.join(two.reportDir, "swarm", "latest")).sort()).toEqual(["history.jsonl", "report.html", "report.md", "result.json", "scenario.yaml"])
    for (const file of ["swarm-9.yaml", "swarm/latest/report.md", "swarm/latest/history.jsonl", "swarm/latest/scenario.yaml"]) {
      expect(comparableReport(path.join(two.reportDir, file), two.reportDir), file).toBe(comparableReport(path.join(one.reportDir, file), one.reportDir))
    }
    fs.rmSync(directory, { recursive: true, force: true })
  })
})
