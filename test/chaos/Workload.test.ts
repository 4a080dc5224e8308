/**
 * How the chaos harness accounts for wiped disks: a write is charged to the taking node's disk
 * generation when it was sent, so a node wiped between answering and the answer's arrival does
 * not make it look acknowledged by the new, empty disk; and what a wiped disk's feed delivered,
 * late deliveries included, and no node holds at the end went with that disk.
 */
import { describe, expect, it } from "vitest"
import * as fs from "node:fs"
import * as path from "node:path"
import * as Feeds from "../../src/chaos/Feeds.js"
import * as Nodes from "../../src/chaos/Nodes.js"
import * as Workload from "../../src/chaos/Workload.js"
import type * as Store from "../../src/replication/Store.js"
import type * as ApiClient from "../../src/runtime/ApiClient.js"
import * as Oracle from "../../src/sim/Oracle.js"

const planned: Workload.Planned = {
  id: 1,
  atMs: 0,
  region: "us-west-1",
  node: "us-west-1-node1",
  operations: [{ op: "insert", tuple: { vault: "acme", resource: "document:readme", relation: "viewer", subject: "user:alice" } }]
}

/** Clients whose one node answers a write only after `during` ran (the wipe that lands meanwhile). */
const clientsWhere = (generation: { value: number }, during: () => void): Workload.Clients => ({
  client: () =>
    ({
      write: async () => {
        during()
        return { revision: 7, position: 3 }
      }
    }) as unknown as ApiClient.ApiClient,
  nodesIn: () => ["us-west-1-node1"],
  regionOf: () => "us-west-1",
  generationOf: () => generation.value
})

describe("chaos Workload.send", () => {
  it("charges an acknowledged write to the disk generation the request was sent to, even if the node was wiped before the answer arrived", async () => {
    const generation = { value: 2 }
    const op = Workload.record(planned)
    await Workload.send(op, clientsWhere(generation, () => void (generation.value = 3)), () => 0)
    expect(op.status).toBe("acknowledged")
    expect(op.generation).toBe(2)
  })

  it("a write answered without a wipe meanwhile is charged to the generation it reached", async () => {
    const generation = { value: 0 }
    const op = Workload.record(planned)
    await Workload.send(op, clientsWhere(generation, () => undefined), () => 0)
    expect(op).toMatchObject({ status: "acknowledged", generation: 0, revision: 7, position: 3 })
  })
})

describe("chaos Feeds.goneWithWipedDisks", () => {
  const entry = (origin: string, seq: number, position: number): Store.LogEntry => ({
    position,
    receivedFrom: null,
    appliedAtMs: 0,
    change: {
      id: { origin, seq },
      op: "insert",
      tuple: planned.operations[0]!.tuple,
      timestamp: { physicalMs: 0, logical: seq },
      originRegion: "us-west-1",
      originNode: "us-west-1-node1",
      originRevision: seq,
      committedAtMs: 0,
      context: {}
    }
  })
  const feed = (generations: ReadonlyArray<ReadonlyArray<Store.LogEntry>>) => {
    const maps = generations.map((entries) => new Map(entries.map((logged) => [logged.position, logged])))
    return { generations: maps, ids: () => new Set([...maps[maps.length - 1]!.values()].map((logged) => Oracle.idOf(logged.change))) }
  }

  it("counts what a wiped generation delivered, including what arrived after the wipe, unless some node's current log holds it", () => {
    const old = "us-west-1/us-west-1-node1/old"
    // The wiped generation delivered #1, #2 and (late, after the kill) #3; the peer got #1 only.
    const wiped = feed([[entry(old, 1, 1), entry(old, 2, 2), entry(old, 3, 3)], [entry("us-west-1/us-west-1-node1/new", 1, 1)]])
    const peer = feed([[entry(old, 1, 1)]])
    expect([...Feeds.goneWithWipedDisks([wiped, peer])].sort()).toEqual([entry(old, 2, 2), entry(old, 3, 3)].map((logged) => Oracle.idOf(logged.change)))
    // Nothing was wiped: nothing is gone, whatever is missing.
    expect(Feeds.goneWithWipedDisks([feed([[entry(old, 1, 1)]]), peer]).size).toBe(0)
  })
})

describe("chaos Nodes.refusal", () => {
  it("says why serve would refuse a configuration file, and nothing for one it takes", () => {
    const valid = fs.readFileSync(path.join(import.meta.dirname, "../../examples/active-active-us-west-1.yaml"), "utf8")
    expect(Nodes.refusal(valid)).toBeUndefined()
    const withoutTargets = valid.replace(/(\n\s+eu-central-1:)\n\s+- us-west-1/, "$1 []")
    expect(withoutTargets).not.toBe(valid)
    expect(Nodes.refusal(withoutTargets)).toContain("expected at least one target region")
  })
})
