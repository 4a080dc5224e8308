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
import { cli } from "../fixtures/cli.js"


interface SwarmJson {
  readonly summary: Record<string, unknown>
  readonly failures: ReadonlyArray<unknown>
  readonly traceHashes: Readonly<Record<string, string>>
  readonly jobs: number
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
    .replace(/^ {2}\d+ job\(s\): .*\n/m, "")

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
    expect(Object.keys(twoJson.traceHashes)).toEqual(Array.from({ length: 12 }, (_, index) => String(index + 1)))
    expect(twoJson.traceHashes).toEqual(oneJson.traceHashes)
    expect(withoutWall(twoJson.summary)).toEqual(withoutWall(oneJson.summary))
    expect(twoJson.failures).toEqual(oneJson.failures)
  })

  it("a canary failure on two jobs prints its replay command first and writes the reports one job writes", async () => {
    const directory = fs.mkdtempSync(path.join(os.tmpdir(), "swarm-jobs-"))
    const run = (jobs: number) => {
      const reportDir = path.join(directory, `jobs-${jobs}`)
      return cli(["sim", "swarm", "--seeds", "4", "--first-seed", "4", "--canary", "keep-local", "--jobs", String(jobs), "--report-dir", reportDir]).then((output) => ({ ...output, reportDir }))
    }
    const one = await run(1)
    const two = await run(2)
    expect([one.code, two.code]).toEqual([1, 1])
    const lines = two.stdout.split("\n")
    expect(lines[0]).toBe(`replay: node bin/inferadb-repl.mjs sim run ${path.join(two.reportDir, "swarm-5.yaml")} --seed 5 --canary keep-local`)
    expect(lines[1]).toMatch(/^ {2}seed 5 FAILED: \[safety\]/)
    expect(comparable(two.stdout, two.reportDir)).toBe(comparable(one.stdout, one.reportDir))
    const [summaries, written] = [fs.readdirSync(two.reportDir).filter((name) => name.startsWith("swarm-summary-")), fs.readdirSync(two.reportDir).filter((name) => !name.startsWith("swarm-summary-"))]
    expect(written.sort()).toEqual(["swarm", "swarm-5.yaml", "swarm-7.yaml"])
    expect(summaries).toHaveLength(1)
    expect(fs.readFileSync(path.join(two.reportDir, summaries[0]!), "utf8")).toContain(`<a href="swarm/5-`)
    expect(fs.readdirSync(path.join(two.reportDir, "swarm", "latest")).sort()).toEqual(["history.jsonl", "report.html", "report.md", "result.json", "scenario.yaml"])
    for (const file of ["swarm-5.yaml", "swarm/latest/report.md", "swarm/latest/history.jsonl", "swarm/latest/scenario.yaml"]) {
      expect(comparableReport(path.join(two.reportDir, file), two.reportDir), file).toBe(comparableReport(path.join(one.reportDir, file), one.reportDir))
    }
    fs.rmSync(directory, { recursive: true, force: true })
  })
})
