/**
 * Run reports: the Markdown summary opens with the seed and the replay command, lists the
 * faults with their times, convergence, lag percentiles, conflicts and lost writes by cause
 * and, for a failover, the time to detect, RTO, the reconciled RPO and the epochs; it is a
 * function of the run (only the wall time varies); `sim run` writes a report folder unless
 * told not to.
 */
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import * as Report from "../../src/sim/Report.js"
import { runScenario } from "../../src/sim/Run.js"
import * as Fixtures from "./fixtures/scenarios.js"

const replay = "node bin/inferadb-repl.mjs sim run scenarios/primary-failover.yaml --seed 1"

/** Runs the CLI in a child process; resolves with its exit code and stdout. */
const cli = (args: ReadonlyArray<string>): Promise<{ readonly code: number | null; readonly stdout: string }> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(Fixtures.root, "bin/inferadb-repl.mjs"), ...args], { cwd: Fixtures.root, stdio: ["ignore", "pipe", "inherit"] })
    let stdout = ""
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()))
    child.on("error", reject)
    child.on("close", (code) => resolve({ code, stdout }))
  })

describe("reports", () => {
  it("the failover report has the seed and replay command first, then faults, convergence, lag, losses, RTO, RPO and epochs", () => {
    const result = runScenario(Fixtures.load("scenarios/primary-failover.yaml"), 1)
    const markdown = Report.markdown(result, replay)
    const lines = markdown.split("\n")
    expect(lines[0]).toBe("# primary-failover, seed 1: passed")
    expect(lines.slice(1, 7).join("\n")).toContain(replay)
    expect(markdown).toMatch(/\| 4000 ms \| crash \| crash us-west-1-node1 \|/)
    expect(markdown).toMatch(/every region held the same state \d+ ms later/)
    expect(markdown).toContain(`| ${result.lagMs.samples} | ${result.lagMs.p50} ms | ${result.lagMs.p90} ms | ${result.lagMs.p99} ms | ${result.lagMs.max} ms |`)
    expect(markdown).toContain("| survived | superseded | concurrent | clock-skew | tie |")
    const point = result.failover!.recoveryPoint!
    expect(markdown).toContain(`| ${result.failover!.detectMs} ms | ${result.failover!.rtoMs} ms | ${point.lostWrites} | ${point.lostWindowMs} ms | ${result.failover!.rpo} |`)
    expect(markdown).toMatch(/\| 1 \| eu-central-1 \| [\d.]+ ms \| eu-central-1: \d+ \|/)
    // Each node's restarts and the time its process took to serve (none drawn in this file: at once).
    expect(markdown).toContain("| restarts (and the time to serve) |")
    expect(markdown).toMatch(/\| us-west-1-node1 \|[^\n]*\| 2 \| \d+ ms \(\+0 ms\) \|/)
    expect(markdown).toMatch(/\| eu-central-1-node1 \|[^\n]*\| 1 \| – \|/)
  })

  it("a failed run's report lists its violations", () => {
    const result = runScenario(Fixtures.load("scenarios/two-region-partition.yaml"), 1, { canary: "keep-local" })
    expect(result.violations.length).toBeGreaterThan(0)
    const markdown = Report.markdown(result, "replay-command")
    expect(markdown.split("\n")[0]).toMatch(/FAILED/)
    expect(markdown).toContain("## Violations")
    expect(markdown).toContain(`**${result.violations[0]!.checker}**`)
  })

  it("reports are a function of the run: two runs of one seed give the same reports but for the wall time", () => {
    const scenario = Fixtures.load("scenarios/two-region-partition.yaml")
    const [first, second] = [runScenario(scenario, 4, { wallClock: Fixtures.wallClock }), runScenario(scenario, 4, { wallClock: Fixtures.wallClock })]
    const withoutWall = (text: string) => text.replace(/\| \d+ ms \|\n\nChecks/, "| - |\n\nChecks").replace(/"wallMs": \d+/, "")
    expect(withoutWall(Report.markdown(second!, replay))).toBe(withoutWall(Report.markdown(first!, replay)))
    expect(JSON.stringify({ ...second!, wallMs: 0 })).toBe(JSON.stringify({ ...first!, wallMs: 0 }))
  })

  it("sim run writes <scenario>/<seed>-<utc>/ with its four files and a latest link into --report-dir; a second run keeps the first", async () => {
    const directory = fs.mkdtempSync(path.join(os.tmpdir(), "inferadb-reports-"))
    const args = ["sim", "run", "scenarios/two-region-partition.yaml", "--seed", "2", "--report-dir", directory]
    const first = await cli(args)
    expect(first.code).toBe(0)
    const second = await cli(args)
    const scenarioDir = path.join(directory, "two-region-partition")
    const folders = fs.readdirSync(scenarioDir).filter((name) => name !== "latest").sort()
    expect(folders).toHaveLength(2)
    for (const folder of folders) expect(folder).toMatch(/^2-\d{8}T\d{6}\.\d{3}Z(-\d+)?$/)
    expect(fs.readlinkSync(path.join(scenarioDir, "latest"))).toBe(folders[1])
    const latest = path.join(scenarioDir, "latest")
    expect(fs.readdirSync(latest).sort()).toEqual(["history.jsonl", "report.html", "report.md", "result.json"])
    const result = JSON.parse(fs.readFileSync(path.join(latest, "result.json"), "utf8")) as { readonly valid: boolean; readonly replay: string }
    expect(result.valid).toBe(true)
    expect(result.replay).toBe("node bin/inferadb-repl.mjs sim run scenarios/two-region-partition.yaml --seed 2")
    expect(fs.readFileSync(path.join(latest, "report.md"), "utf8")).toContain("sim run scenarios/two-region-partition.yaml --seed 2")
    expect(second.stdout).toContain(`report ${path.join(scenarioDir, folders[1]!)} (${latest})`)
    fs.rmSync(directory, { recursive: true, force: true })
  })
})
