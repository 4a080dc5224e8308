import * as fs from "node:fs"
import { Either } from "effect"
import * as Scenario from "../src/sim/Scenario.js"
import * as Run from "../src/sim/Run.js"
const sc = Either.getOrThrow(Scenario.decode(fs.readFileSync(process.argv[2]!, "utf8")))
const sim = Run.simulate({ ...sc, faults: [] } as any, Number(process.argv[3] ?? 1))
const acked = sim.history.writes.filter((w) => w.outcome === "acknowledged")
console.log("first ack", acked[0]?.endedAtMs, "first attempt", sim.history.writes[0]?.startedAtMs, "refused before first ack", sim.history.writes.filter((w) => w.startedAtMs < (acked[0]?.startedAtMs ?? 0)).length)
