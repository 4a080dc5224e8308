/**
 * What the chaos harness reads in a serve process's output (`Nodes.lineReader`): each line counts
 * for the process that wrote it, whenever it arrives. The judge's end check takes the latest
 * incarnation's last view (`Judge.finalViews`), so a late line of a process already replaced must
 * not pass for the new one's.
 */
import { describe, expect, it } from "vitest"
import * as Judge from "../../src/chaos/Judge.js"
import * as Nodes from "../../src/chaos/Nodes.js"

const at = "2026-12-06T13:00:00.000Z"
const epochLine = (primary: string, fenced: boolean, cause: string) => `${at} INFO  eu-central-1/node1 epoch change: epoch=2 primary=${primary} fenced=${fenced} cause=${cause}`

describe("Nodes.lineReader", () => {
  it("tags each line with the incarnation of the process that wrote it, even when it arrives after the next one started", () => {
    const node = { listened: [] as Array<number>, epochChanges: [] as Array<Nodes.EpochLine>, defects: [] as Array<string>, drains: [] as Array<Nodes.DrainLine> }
    let listening = 0
    const first = Nodes.lineReader(node, 1)
    const second = Nodes.lineReader(node, 2, { onListening: () => void listening++ })
    first(epochLine("us-west-1", false, "initial"))
    // The second process starts and serves; then the first one's last lines come through.
    second(epochLine("us-west-1", false, "initial"))
    second(`${at} INFO  eu-central-1/node1 gRPC: 10.0.0.2:50051 (plaintext)`)
    first(epochLine("eu-central-1", true, "fenced"))
    first(`${at} ERROR eu-central-1/node1 the engine stopped`)
    first("drained: every target acknowledged the log up to position 42")
    expect(node.listened).toEqual([2])
    expect(listening).toBe(1)
    expect(node.epochChanges.map((change) => [change.incarnation, change.cause])).toEqual([
      [1, "initial"],
      [2, "initial"],
      [1, "fenced"]
    ])
    expect(node.defects).toHaveLength(1)
    expect(node.defects[0]).toMatch(/^incarnation 1: /)
    expect(node.drains.map((drain) => [drain.incarnation, drain.logEnd])).toEqual([[1, 42]])
    // The judge's end check sees the second process's view, not the first one's late fencing.
    const log: Judge.EpochLog = {
      nodeId: "eu-central-1/node1",
      regionId: "eu-central-1",
      changes: node.epochChanges.map(({ atWallMs: _, ...change }) => ({ ...change, atMs: 0 })),
      listened: node.listened,
      latest: 2
    }
    expect(Judge.finalViews([log], new Set())).toEqual([{ nodeId: "eu-central-1/node1", state: { primary: "us-west-1", fenced: false, epoch: 2 } }])
  })
})
