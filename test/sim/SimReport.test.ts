/**
 * A simulation as a run report: rendered from real small runs, the report names every lost
 * write by tuple, reconciles the RPO with the final outcome, records the history (operations,
 * faults, epochs) and draws a self-contained page whose every plot is well-formed SVG with data
 * in it. Recording a report's extras does not change the run.
 */
import { describe, expect, it } from "vitest"
import * as Html from "../../src/report/Html.js"
import type * as RunReport from "../../src/report/RunReport.js"
import * as Oracle from "../../src/sim/Oracle.js"
import { type Simulation, simulate } from "../../src/sim/Run.js"
import type { Scenario } from "../../src/sim/Scenario.js"
import * as SimReport from "../../src/sim/SimReport.js"
import * as Page from "../report/fixtures/html.js"
import * as Fixtures from "./fixtures/scenarios.js"

const provenance: Html.Provenance = { version: "0.0.0-test", commit: undefined, scenarioSha256: undefined, createdAt: "2026-01-01T00:00:00.000Z" }

/**
 * The failover scenario with one hot tuple and a workload that ends soon after the promotion:
 * writes the old primary took just before it crashed race the new primary's on that tuple,
 * and no later write supersedes them, so some are finally lost.
 */
const racingFailover = (): Scenario => {
  const base = Fixtures.load("scenarios/primary-failover.yaml")
  return { ...base, workload: { ...base.workload, hotTuples: 1, hotFraction: 1, deleteFraction: 0.5, durationMs: 11_500, ratePerSec: 6 } }
}

const reportOf = (scenario: Scenario, seed: number, options: { readonly canary?: "keep-local" } = {}): { readonly simulation: Simulation; readonly report: RunReport.RunReport; readonly html: string } => {
  const simulation = simulate(scenario, seed, { messagesMax: 2_000, ...options })
  const report = SimReport.make(simulation, scenario, `node bin/inferadb-repl.mjs sim run x.yaml --seed ${seed}`)
  return { simulation, report, html: Html.render(report, provenance) }
}

const ops = (report: RunReport.RunReport) => report.events.filter((event): event is RunReport.OperationEvent => event.type === "op")

describe("run reports of simulations", () => {
  it("the RPO counts the writes the new primary lacked that were finally lost, names every lacked write with its fate, and says so on the page", () => {
    // Seed 9: most seeds lose none of the writes the new primary lacked, or lack none (seed 8 did
    // until the agent stopped holding lone changes for the flush delay; seed 13 did until December 5,
    // 2026, when new disks began to wait for their bootstraps before vouching for a lease and the
    // run's timing moved: it now loses none; seed 9 lacks 4 and loses 1).
    const { simulation, report, html } = reportOf(racingFailover(), 9)
    const timings = simulation.result.failover!
    const point = timings.recoveryPoint!
    // Lacked at promotion is the figure the timings always reported; the RPO is what of it was lost.
    expect(point.lackedWrites).toBe(timings.rpo)
    expect(point.writes).toHaveLength(point.lackedWrites)
    const lost = point.writes.filter((write) => write.fate === "lost")
    expect(point.lostWrites).toBe(lost.length)
    expect(point.lostWrites, "this seed loses some but not all lacked writes").toBeGreaterThan(0)
    expect(point.lostWrites).toBeLessThan(point.lackedWrites)
    // Consistent with the final outcome: lost lacked writes are lost writes, recovered ones are not.
    const lostWriteIds = new Set(report.lostWrites.map((write) => write.write))
    for (const write of point.writes) expect(lostWriteIds.has(write.write), `write ${write.write} (${write.fate}: ${write.why})`).toBe(write.fate === "lost")
    expect(point.lostWindowMs).toBeCloseTo(timings.promotedAtMs! - Math.min(...lost.map((write) => write.acknowledgedAtMs)), 0)
    // Every lacked write is on the page by write, tuple and fate; the RPO bracket states the reconciled figure.
    for (const write of point.writes) {
      expect(html).toContain(`<tr><td>${write.write}</td><td>${write.tuples.join(", ")}</td><td>${write.region}</td><td>${write.acknowledgedAtMs} ms</td><td>${write.fate}</td>`)
    }
    expect(html).toContain(`RPO ${point.lostWrites} write(s) lost`)
    expect(report.markdown).toContain(`| ${point.lostWrites} | ${point.lostWindowMs} ms | ${point.lackedWrites} |`)
    expect(report.failover?.promotedRegion).toBe("eu-central-1")
    expect(Page.elements(Page.plot(html, "timeline").markup, "rpo")).toHaveLength(1)
    expect(Page.elements(Page.plot(html, "timeline").markup, "rto")).toHaveLength(1)
  })

  it("every acknowledged write that did not survive is named by tuple, region, time and cause, more than five of them", () => {
    const { simulation, report, html } = reportOf(Fixtures.load("scenarios/two-region-partition.yaml"), 1, { canary: "keep-local" })
    const counts = simulation.result.lostWrites
    expect(report.lostWrites).toHaveLength(counts.concurrent + counts["clock-skew"] + counts.tie + simulation.result.lostWithDisk.length)
    expect(report.lostWrites.length, "the canary loses more writes than the old five examples").toBeGreaterThan(5)
    const acknowledged = new Map(simulation.history.writes.flatMap((write) => write.changes.map((change) => [Oracle.idOf(change), { write, change }] as const)))
    for (const lost of report.lostWrites) {
      const { write, change } = acknowledged.get(lost.change)!
      expect(lost.write).toBe(write.id)
      expect(lost.region).toBe(change.originRegion)
      expect(lost.acknowledgedAtMs).toBe(write.endedAtMs)
      expect(["concurrent", "clock-skew", "tie"]).toContain(lost.cause)
      expect(html).toContain(`<td>${lost.change}</td><td>${lost.write}</td><td>${lost.op} ${lost.tuple}</td><td>${lost.region}</td>`)
      expect(report.markdown).toContain(`| ${lost.change} | ${lost.write} | ${lost.op} ${lost.tuple} | ${lost.region} |`)
    }
    expect(Page.elements(Page.plot(html, "conflicts and lost writes over time").markup, "lost-write")).toHaveLength(report.lostWrites.length)
    expect(html).toMatch(/<span class="verdict invalid">INVALID: safety<\/span>/)
  })

  it("the history has every operation invoked and answered, every fault applied and healed, and every epoch change", () => {
    const { simulation, report } = reportOf(Fixtures.load("scenarios/primary-failover.yaml"), 3)
    const { writes } = simulation.result
    const phases = (phase: RunReport.OperationPhase) => ops(report).filter((event) => event.phase === phase).length
    expect(phases("invoke")).toBe(writes.attempted)
    expect(phases("ok")).toBe(writes.acknowledged)
    expect(phases("rejected")).toBe(writes.rejected)
    expect(phases("ok") + phases("rejected") + phases("failed") + phases("unknown")).toBe(writes.attempted)
    for (const event of ops(report)) expect(event.tuples.length, `op ${event.op}`).toBeGreaterThan(0)
    expect(ops(report).filter((event) => event.phase === "rejected").every((event) => event.reason !== undefined && event.reason.length > 0)).toBe(true)
    const faults = report.events.filter((event): event is RunReport.FaultEvent => event.type === "fault")
    expect(faults.map(({ phase, atMs, kind, nodes }) => ({ phase, atMs, kind, nodes }))).toEqual([
      { phase: "applied", atMs: 4000, kind: "crash", nodes: ["us-west-1-node1"] },
      { phase: "healed", atMs: 12000, kind: "crash", nodes: ["us-west-1-node1"] }
    ])
    const epochs = report.events.filter((event): event is RunReport.EpochEvent => event.type === "epoch")
    expect(epochs).toHaveLength(simulation.epochs.reduce((sum, node) => sum + node.history.length, 0))
    expect(epochs.some((event) => event.cause === "promoted" && event.region === "eu-central-1")).toBe(true)
    const times = report.events.map((event) => event.atMs)
    expect(times).toEqual([...times].sort((left, right) => left - right))
  })

  it("the page is self-contained, and every plot is well-formed SVG holding data with the fault bands shaded", () => {
    const { report, html } = reportOf(Fixtures.load("scenarios/two-region-partition.yaml"), 1, { canary: "keep-local" })
    expect(html).not.toMatch(/<script/i)
    expect(html).not.toMatch(/https?:\/\//i)
    expect(html).not.toMatch(/\burl\(|@import|<link|<img|<iframe|\bsrc=/i)
    const labels = Page.plots(html).map((plot) => plot.label)
    expect(labels).toEqual(["timeline", "replication lag over time per target region", "write outcomes per second per region", "conflicts and lost writes over time", "space-time diagram of messages between regions"])
    for (const plot of Page.plots(html)) {
      expect(Page.problems(plot.markup), plot.label).toEqual([])
      expect(Page.elements(plot.markup, "fault-band").length, `${plot.label} shades the fault window`).toBeGreaterThan(0)
    }
    const timeline = Page.plot(html, "timeline").markup
    expect(Page.elements(timeline, "lane-label")).toHaveLength(report.regions.reduce((sum, region) => sum + 1 + region.nodes.length, 0))
    expect(Page.elements(timeline, "fault").length).toBeGreaterThan(0)
    const lagPaths = Page.elements(Page.plot(html, "replication lag over time per target region").markup, "lag-path")
    expect(lagPaths).toHaveLength(2)
    for (const lagPath of lagPaths) expect(lagPath.match(/[ML][\d.]+ [\d.]+/g)!.length).toBeGreaterThan(2)
    expect(Page.elements(Page.plot(html, "write outcomes per second per region").markup, "bar-ok").length).toBeGreaterThan(0)
    expect(Page.elements(Page.plot(html, "conflicts and lost writes over time").markup, "bar-conflict").length).toBeGreaterThan(0)
    const diagram = Page.plot(html, "space-time diagram of messages between regions").markup
    expect(Page.elements(diagram, "msg-delivered").length).toBeGreaterThan(0)
    expect(Page.elements(diagram, "msg-cut").length, "the partition cuts messages").toBeGreaterThan(0)
    expect(Page.elements(diagram, "drop").length).toBe(Page.elements(diagram, "msg-cut").length + Page.elements(diagram, "msg-lost").length)
    // The verdict and the replay command come before any plot.
    expect(html.indexOf(report.replay)).toBeLessThan(html.indexOf("<svg"))
  })

  it("recording a report's messages does not change the run", () => {
    const scenario = Fixtures.load("scenarios/two-region-partition.yaml")
    const [plain, recorded] = [simulate(scenario, 2), simulate(scenario, 2, { messagesMax: 2_000 })]
    expect(recorded.result.traceHash).toBe(plain.result.traceHash)
    expect(recorded.result).toEqual(plain.result)
    expect(plain.messages).toEqual([])
    expect(recorded.messages.length).toBeGreaterThan(0)
    expect(recorded.messages.every((message) => message.from.regionId !== message.to.regionId)).toBe(true)
  })
})
