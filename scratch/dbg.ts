import * as fs from "node:fs"
import { Either } from "effect"
import * as Scenario from "../src/sim/Scenario.js"
import * as Run from "../src/sim/Run.js"
const sc = Either.getOrThrow(Scenario.decode(fs.readFileSync(process.argv[2]!, "utf8")))
const sim = Run.simulate(sc, Number(process.argv[3] ?? 1), { onEvent: (e) => { if (String((e as any).detail ?? "").includes("bootstrap")) console.log(JSON.stringify(e)) } })
for (const w of sim.history.writes.filter(w => w.outcome !== "acknowledged").slice(0, 10)) console.log(w.startedAtMs, w.outcome, w.reason?.slice(0, 100))
