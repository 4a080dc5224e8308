import * as fs from "node:fs"
import { Either } from "effect"
import * as Scenario from "../src/sim/Scenario.js"
import * as Run from "../src/sim/Run.js"
const sc = Either.getOrThrow(Scenario.decode(fs.readFileSync(process.argv[2]!, "utf8")))
const sim = Run.simulate(sc, Number(process.argv[3] ?? 1))
const counts = new Map<string, number>()
for (const w of sim.history.writes) { const k = `${w.outcome} ${(w.reason ?? "").slice(0, 90)}`; counts.set(k, (counts.get(k) ?? 0) + 1) }
for (const [k, v] of counts) console.log(v, k)
for (const w of sim.history.writes.slice(0, 200)) if (w.startedAtMs > 3640 && w.startedAtMs < 4350) console.log(w.startedAtMs.toFixed(0), w.clientRegion, w.outcome, w.reason?.slice(0,80))
