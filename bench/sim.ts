/**
 * Simulator throughput (`npm run bench:sim`): runs scenarios/three-region-skew-hlc.yaml and
 * scenarios/three-region-skew-wall.yaml on a fixed set of seeds (alternating them seed by seed,
 * after two warm-up runs each, so JIT warm-up favours neither) and prints ONE JSON line:
 * simulated events per second, time compression (simulated seconds per wall second) and seeds
 * per minute, per scenario and overall, and `notes` on where the time goes (garbage collection
 * measured here; the rest from a `node --cpu-prof` profile).
 *
 *   npm run bench:sim              12 seeds per scenario
 *   SEEDS=20 npm run bench:sim     at most 20
 *
 * Wall time is read here, never inside the simulator (it takes the clock as an option).
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { PerformanceObserver } from "node:perf_hooks"
import { Either } from "effect"
import { runScenario } from "../src/sim/Run.js"
import * as Scenario from "../src/sim/Scenario.js"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")
const files = ["scenarios/three-region-skew-hlc.yaml", "scenarios/three-region-skew-wall.yaml"]
const seedsMax = 20
const seeds = Math.min(seedsMax, Math.max(1, Number(process.env["SEEDS"] ?? 12)))
const warmUpRuns = 2

/** From a profile of 12 seeds of each scenario (`node --cpu-prof` on the compiled sources); see the issue 4 report. */
const profileNotes =
  "profile: Effect fiber runtime ~36%, Effect Schema decoding ~24% (Store tuple/log decoding ~21%, WireCodec validate ~2%), " +
  "src/replication self ~12%, src/sim self ~7% (region state reads, network, trace hash, world loop), module loading ~6%, protobuf ~4%; " +
  "interrupting every fiber at the end of a run ~3% (kept: Effect.never holds a host timer until interrupted)"

let gcMs = 0
const gc = new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) gcMs += entry.duration
})

const round = (value: number, digits = 1): number => Math.round(value * 10 ** digits) / 10 ** digits

const median = (values: ReadonlyArray<number>): number => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)] ?? 0
}

interface Tally {
  readonly wallMs: Array<number>
  events: number
  tasks: number
  simulatedMs: number
}

/** Runs every scenario on every seed, alternating scenarios seed by seed so that JIT warm-up does not favour the later one. */
const measure = (scenarios: ReadonlyArray<Scenario.Scenario>): ReadonlyArray<Tally> => {
  for (let run = 0; run < warmUpRuns; run++) for (const scenario of scenarios) runScenario(scenario, 1_000 + run)
  const tallies: Array<Tally> = scenarios.map(() => ({ wallMs: [], events: 0, tasks: 0, simulatedMs: 0 }))
  for (let seed = 1; seed <= seeds; seed++) {
    scenarios.forEach((scenario, index) => {
      const tally = tallies[index]!
      const startedMs = performance.now()
      const result = runScenario(scenario, seed)
      tally.wallMs.push(performance.now() - startedMs)
      tally.events += result.events
      tally.tasks += result.tasks
      tally.simulatedMs += result.simulatedMs
    })
  }
  return tallies
}

const summarize = (scenario: Scenario.Scenario, tally: Tally) => {
  const totalWallMs = tally.wallMs.reduce((sum, ms) => sum + ms, 0)
  return {
    scenario: scenario.name,
    seeds,
    eventsPerSec: Math.round((tally.events / totalWallMs) * 1000),
    tasksPerSec: Math.round((tally.tasks / totalWallMs) * 1000),
    timeCompression: round(tally.simulatedMs / totalWallMs),
    seedsPerMinute: round((seeds / totalWallMs) * 60_000),
    wallMsPerSeed: { median: Math.round(median(tally.wallMs)), min: Math.round(Math.min(...tally.wallMs)) },
    totals: { events: tally.events, tasks: tally.tasks, simulatedMs: tally.simulatedMs, wallMs: Math.round(totalWallMs) }
  }
}

const load = (file: string): Scenario.Scenario =>
  Either.getOrThrowWith(Scenario.decode(fs.readFileSync(path.join(root, file), "utf8"), file), (error) => new Error(error.message))

gc.observe({ entryTypes: ["gc"] })
const startedMs = performance.now()
const cpuBefore = process.cpuUsage()
const scenarios = files.map(load)
const tallies = measure(scenarios)
const cpu = process.cpuUsage(cpuBefore)
const elapsedMs = performance.now() - startedMs
// GC entries are delivered on a later turn of the event loop.
await new Promise((resolve) => setTimeout(resolve, 10))
gc.disconnect()
const results = scenarios.map((scenario, index) => summarize(scenario, tallies[index]!))
const totals = results.reduce((sum, each) => ({ events: sum.events + each.totals.events, simulatedMs: sum.simulatedMs + each.totals.simulatedMs, wallMs: sum.wallMs + each.totals.wallMs }), { events: 0, simulatedMs: 0, wallMs: 0 })
process.stdout.write(
  `${JSON.stringify({
    bench: "sim",
    node: process.version,
    eventsPerSec: Math.round((totals.events / totals.wallMs) * 1000),
    timeCompression: round(totals.simulatedMs / totals.wallMs),
    seedsPerMinute: round(((seeds * files.length) / totals.wallMs) * 60_000),
    scenarios: results,
    cpuMs: Math.round((cpu.user + cpu.system) / 1000),
    notes: `gc ${Math.round((gcMs / elapsedMs) * 100)}% of wall time (measured); ${profileNotes}`
  })}\n`
)
