import * as fs from "node:fs"
import { Either } from "effect"
import * as Scenario from "../src/sim/Scenario.js"
import * as Run from "../src/sim/Run.js"
const sc = Either.getOrThrow(Scenario.decode(fs.readFileSync(process.argv[2]!, "utf8")))
const sim = Run.simulate(sc, Number(process.argv[3] ?? 1))
const pat = new RegExp(process.argv[4]!)
for (const r of sim.regions) {
  const hits = r.log.filter((e) => pat.test(`${e.change.id.origin}#${e.change.id.seq}`))
  console.log(r.replica, r.log.length, hits.map((e) => `${e.position}:${e.change.id.origin.split("/")[1]}#${e.change.id.seq}<-${e.receivedFrom}@${e.appliedAtMs - 1.7e12}`).join(" "))
}
