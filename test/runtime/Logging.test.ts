/**
 * Log lines of `serve`: time, level, region and node on every line, in both formats, with the
 * other annotations after them; lines below the chosen level are dropped.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Logging from "../../src/runtime/Logging.js"

/** Runs `effect` under the logging layer and returns the lines it wrote. */
const linesOf = (format: Logging.Format, level: Logging.Level, effect: Effect.Effect<void>) => {
  const lines: Array<string> = []
  Effect.runSync(effect.pipe(Effect.annotateLogs({ region: "us-west-1", node: "node-1" }), Effect.provide(Logging.layer({ format, level, write: (line) => lines.push(line) }))))
  return lines
}

const sample = Effect.logWarning("replication to eu-central-1 is failing").pipe(Effect.annotateLogs({ target: "eu-central-1", component: "monitor" }))

describe("Logging", () => {
  it("json: one object per line with time, level, region, node and message first, then the other annotations", () => {
    const [line] = linesOf("json", "info", sample)
    const parsed = JSON.parse(line!) as Record<string, unknown>
    expect(Object.keys(parsed).slice(0, 5)).toEqual(["time", "level", "region", "node", "message"])
    expect(Object.keys(parsed).slice(5).sort()).toEqual(["component", "target"])
    expect(parsed).toMatchObject({ level: "warn", region: "us-west-1", node: "node-1", message: "replication to eu-central-1 is failing", target: "eu-central-1" })
    expect(new Date(parsed["time"] as string).toISOString()).toBe(parsed["time"])
  })

  it("pretty: time, padded level, region/node, message, then key=value annotations", () => {
    const [line] = linesOf("pretty", "info", sample)
    expect(line).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z WARN {2}us-west-1\/node-1 replication to eu-central-1 is failing( target=eu-central-1| component=monitor){2}$/)
  })

  it("lines below the level are dropped, and a failure's cause is kept", () => {
    const failed = Effect.catchAllCause(Effect.fail("disk full"), (cause) => Effect.logError("store failed", cause))
    const lines = linesOf("json", "warning", Effect.all([Effect.logInfo("quiet"), failed, Effect.logWarning("with", new Error("boom"))], { discard: true }))
    expect(lines).toHaveLength(2)
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: "error", message: "store failed", cause: expect.stringContaining("disk full") })
    expect(JSON.parse(lines[1]!)).toMatchObject({ level: "warn", message: "with Error: boom" })
    expect(linesOf("pretty", "none", sample)).toEqual([])
  })
})
