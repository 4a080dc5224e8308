import * as fs from "node:fs"
import { Either } from "effect"
import * as Scenario from "../src/sim/Scenario.js"
import * as Run from "../src/sim/Run.js"
const sc = Either.getOrThrow(Scenario.decode(fs.readFileSync(process.argv[2]!, "utf8")))
const sim = Run.simulate(sc, Number(process.argv[3] ?? 1))
const ids = (r: any) => new Set(r.log.map((e: any) => `${e.change.id.origin}#${e.change.id.seq}`))
const [a, b] = sim.regions
const A = ids(a), B = ids(b)
console.log(a.replica, A.size, b.replica, B.size)
const onlyA = [...A].filter((x) => !B.has(x)), onlyB = [...B].filter((x) => !A.has(x))
console.log("only in", a.replica, onlyA.slice(0, 20))
console.log("only in", b.replica, onlyB.slice(0, 20))
