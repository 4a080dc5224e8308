/**
 * The report folder of a run: `<root>/<scenario>/<seed>-<utc>/` with result.json (verdict
 * first, provenance, checks, replay), history.jsonl (one event per line), report.md and
 * report.html, and a `latest` link that follows the newest folder; a second report of the same
 * seed gets its own folder.
 */
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import * as RunFolder from "../../src/report/RunFolder.js"
import { simulate } from "../../src/sim/Run.js"
import * as SimReport from "../../src/sim/SimReport.js"
import * as Fixtures from "../sim/fixtures/scenarios.js"

const root = fs.mkdtempSync(path.join(os.tmpdir(), "inferadb-run-folder-"))
afterAll(() => fs.rmSync(root, { recursive: true, force: true }))

const file = "scenarios/two-region-partition.yaml"
const replay = `node bin/inferadb-repl.mjs sim run ${file} --seed 2`

describe("run folders", () => {
  it("a report folder holds result.json, history.jsonl, report.md and report.html, and latest follows the newest", () => {
    const scenario = Fixtures.load(file)
    const report = SimReport.make(simulate(scenario, 2, { messagesMax: 2_000 }), scenario, replay)
    const text = fs.readFileSync(path.join(Fixtures.root, file), "utf8")
    const first = RunFolder.write(root, report, { now: new Date("2026-11-30T07:00:00.000Z"), scenarioText: text, scenarioFile: file })
    expect(path.relative(root, first.directory)).toBe(path.join("two-region-partition", "2-20261130T070000.000Z"))
    expect(fs.readdirSync(first.directory).sort()).toEqual([...RunFolder.files].sort())

    const result = JSON.parse(fs.readFileSync(path.join(first.directory, "result.json"), "utf8")) as Record<string, unknown>
    expect(Object.keys(result)[0]).toBe("valid")
    expect(result["valid"]).toBe(true)
    expect(result).toMatchObject({ scenario: "two-region-partition", seed: "2", replay, scenarioFile: file })
    expect(result["scenarioSha256"]).toBe(createHash("sha256").update(text).digest("hex"))
    const manifest = JSON.parse(fs.readFileSync(path.join(Fixtures.root, "package.json"), "utf8")) as { readonly version: string }
    expect(result["version"]).toBe(manifest.version)
    if (result["commit"] !== undefined) expect(result["commit"]).toMatch(/^[0-9a-f]{40}(-dirty)?$/)
    expect((result["checks"] as ReadonlyArray<{ readonly name: string; readonly valid: boolean }>).map((check) => check.name)).toEqual([...scenario.checks])
    expect((result["run"] as { readonly traceHash: string }).traceHash).toBe(report.result["traceHash"])
    expect(String(result["replay"])).not.toMatch(/_npx|node_modules|^\//)

    const lines = fs.readFileSync(path.join(first.directory, "history.jsonl"), "utf8").trimEnd().split("\n")
    expect(lines).toHaveLength(report.events.length)
    expect(lines.map((line) => JSON.parse(line) as unknown)).toEqual(JSON.parse(JSON.stringify(report.events)))
    expect(fs.readFileSync(path.join(first.directory, "report.md"), "utf8")).toBe(report.markdown)
    expect(fs.readFileSync(path.join(first.directory, "report.html"), "utf8")).toMatch(/^<!doctype html>/)

    expect(first.latest).toBe(path.join(root, "two-region-partition", "latest"))
    expect(fs.readlinkSync(first.latest!)).toBe(path.basename(first.directory))
    // The same seed again, even in the same millisecond: a folder of its own, and latest moves to it.
    const again = RunFolder.write(root, report, { now: new Date("2026-11-30T07:00:00.000Z") })
    expect(again.directory).not.toBe(first.directory)
    expect(fs.existsSync(path.join(first.directory, "result.json"))).toBe(true)
    expect(fs.realpathSync(again.latest!)).toBe(fs.realpathSync(again.directory))
  })
})
