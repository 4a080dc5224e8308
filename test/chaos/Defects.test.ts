/**
 * What the chaos judge takes for a bug in a node's output (`Defects.defectIn`), on lines made by
 * serve's own logger in both formats, so a change to the log's shape cannot silently blind it.
 */
import { Cause, Effect } from "effect"
import { describe, expect, it } from "vitest"
import * as Defects from "../../src/chaos/Defects.js"
import * as Logging from "../../src/runtime/Logging.js"

/** The lines serve's logger writes for `effect`, in `format`, annotated as a node. */
const linesOf = (format: Logging.Format, effect: Effect.Effect<void>): ReadonlyArray<string> => {
  const lines: Array<string> = []
  Effect.runSync(
    effect.pipe(
      Effect.annotateLogs({ region: "us-west-1", node: "us-west-1-node1" }),
      Effect.provide(Logging.layer({ format, level: "info", write: (line) => void lines.push(line) }))
    )
  )
  return lines
}

const levels = Effect.gen(function* () {
  yield* Effect.logInfo("replication to eu-central-1 caught up")
  yield* Effect.logWarning("replication to eu-central-1 failed: Unreachable: connect ECONNREFUSED")
  yield* Effect.logError("sending a batch to eu-central-1 died (a bug); retrying it as a transient failure", Cause.die(new Error("Channel has been shut down")))
  yield* Effect.logFatal("the store is corrupt")
})

describe("Defects", () => {
  for (const format of Logging.formats) {
    it(`takes ${format} lines at error level and above for bugs, and nothing below`, () => {
      const [info, warning, error, fatal] = linesOf(format, levels)
      expect(Defects.defectIn(info!)).toBeUndefined()
      expect(Defects.defectIn(warning!)).toBeUndefined()
      expect(Defects.defectIn(error!)).toBe(`logged at error level: ${error}`)
      expect(Defects.defectIn(error!)).toContain("sending a batch to eu-central-1 died")
      expect(Defects.defectIn(fatal!)).toBe(`logged at error level: ${fatal}`)
    })
  }

  it("takes the engine stopping and an uncaught exception for bugs, and other output for none", () => {
    expect(Defects.defectIn("serve failed: the engine stopped unexpectedly: Error: boom")).toBe("serve failed: the engine stopped unexpectedly: Error: boom")
    expect(Defects.defectIn("Node.js v20.20.2")).toBe("an uncaught exception ended the process (its stack is in serve.log)")
    for (const ordinary of [
      "serve failed: the store did not open (open): ENOSPC: no space left on device",
      "SIGHUP: invalid configuration in /tmp/config.yaml, nothing reloaded: topology.regions: expected an array",
      "canary: send-dies (a deliberately broken node: a tenth of its batch sends die below the agent)",
      "    at InternalChannel.createCall (node_modules/@grpc/grpc-js/build/src/internal-channel.js:1:1)",
      "an ERROR in a message that is not at error level",
      '{"level":"warning","message":"ERROR"}',
      "{not json"
    ]) {
      expect(Defects.defectIn(ordinary)).toBeUndefined()
    }
  })

  it("names each bug's node and log, in the order the nodes showed them", () => {
    const found = Defects.violations([
      { nodeId: "a", defects: ["incarnation 1: one", "incarnation 2: two"], log: "/runs/a/serve.log" },
      { nodeId: "b", defects: [], log: "/runs/b/serve.log" }
    ])
    expect(found).toEqual([
      { checker: "defects", message: "a: incarnation 1: one", details: { node: "a", log: "/runs/a/serve.log" } },
      { checker: "defects", message: "a: incarnation 2: two", details: { node: "a", log: "/runs/a/serve.log" } }
    ])
  })

  it("lists a node's first bugs and counts the rest", () => {
    const defects = Array.from({ length: Defects.listedPerNode + 4 }, (_, index) => `bug ${index}`)
    const found = Defects.violations([{ nodeId: "a", defects, log: "/runs/a/serve.log" }])
    expect(found.map((violation) => violation.message)).toEqual([
      ...defects.slice(0, Defects.listedPerNode).map((defect) => `a: ${defect}`),
      "a: 4 more like these (see /runs/a/serve.log)"
    ])
    expect(found.every((violation) => violation.checker === "defects")).toBe(true)
  })
})
