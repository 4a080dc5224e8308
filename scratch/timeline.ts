import * as fs from "node:fs"
import { Either } from "effect"
import * as Scenario from "../src/sim/Scenario.js"
import * as Run from "../src/sim/Run.js"
const sc = Either.getOrThrow(Scenario.decode(fs.readFileSync(process.argv[2]!, "utf8")))
const sim = Run.simulate(sc, Number(process.argv[3] ?? 1))
const from = Number(process.argv[4] ?? 0), to = Number(process.argv[5] ?? 1e9)
for (const w of sim.history.writes) if (w.startedAtMs >= from && w.startedAtMs <= to) console.log(w.startedAtMs.toFixed(0), w.clientRegion, w.outcome, (w.reason ?? "").slice(0, 150))
