import * as fs from "node:fs"
import { Either } from "effect"
import * as Scenario from "../src/sim/Scenario.js"
import * as Run from "../src/sim/Run.js"
const story = Either.getOrThrow(Scenario.decode(fs.readFileSync("scenarios/primary-failover.yaml", "utf8")))
const bridged = { ...story, faults: [ { atMs: 4000, kind: "bridge", node: "ap-southeast-1-node1", groups: [["us-west-1"], ["eu-central-1"]] }, { atMs: 12000, kind: "heal" } ] } as any
for (const seed of [1,2,3,4,5]) { const r = Run.runScenario(bridged, seed); console.log(seed, r.failover?.promotedRegion, r.failover?.promotedAtMs, r.violations.map(v => v.checker + ": " + v.message.slice(0, 100))) }
