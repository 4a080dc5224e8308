/**
 * Relay scopes: for which (origin, residency set) pairs a region is a target's parent in the
 * relay trees, so that a topology change shows which changes a region newly has to send.
 */
import { describe, expect, it } from "vitest"
import type * as Change from "../../src/replication/Change.js"
import * as Relay from "../../src/replication/Relay.js"
import * as Cluster from "./fixtures/cluster.js"

const regions = ["us", "eu", "ap"]
const ring = { us: ["eu"], eu: ["ap"], ap: ["us"] }
const withChord = { us: ["eu", "ap"], eu: ["ap"], ap: ["us"] }

const change = (originRegion: string, vault = "acme"): Change.Change => ({
  id: { origin: `${originRegion}/n1/t`, seq: 1 },
  op: "insert",
  tuple: { vault, resource: "document:readme", relation: "viewer", subject: "user:alice" },
  timestamp: { physicalMs: 1, logical: 0 },
  originRegion,
  originNode: "n1",
  originRevision: 1,
  committedAtMs: 1,
  context: {}
})

describe("Relay.scopeOf", () => {
  it("in a ring a region is its successor's parent for every origin but the successor's own", () => {
    const topology = Cluster.topologyFor({ regions, targets: ring }, "us")
    // And on every edge of its own, the changes of regions the topology does not declare (flooded).
    expect(Relay.scopeOf(topology, "eu", "ap")).toEqual(["eu|*", "us|*", "(undeclared)|*", "(declared ap,eu,us)"])
    expect(Relay.scopeOf(topology, "us", "ap")).toEqual(["(declared ap,eu,us)"])
  })

  it("a chord moves the origin's key from the relaying region to the origin, and its removal moves it back", () => {
    const chorded = Cluster.topologyFor({ regions, targets: withChord }, "us")
    expect(Relay.scopeOf(chorded, "us", "ap")).toEqual(["us|*", "(undeclared)|*", "(declared ap,eu,us)"])
    expect(Relay.scopeOf(chorded, "eu", "ap")).toEqual(["eu|*", "(undeclared)|*", "(declared ap,eu,us)"])
    const gained = Relay.scopeOf(Cluster.topologyFor({ regions, targets: ring }, "us"), "eu", "ap").filter((key) => !Relay.scopeOf(chorded, "eu", "ap").includes(key))
    expect(gained).toEqual(["us|*"])
  })

  it("a change's scope key is its origin and its vault's residency set, and agrees with shouldSend", () => {
    const topology = Cluster.topologyFor({ regions, strategy: "MultiMaster", targets: ring, vaults: [{ vault: "eu-bank", homeRegion: "eu", allowedRegions: ["eu", "ap"] }, { vault: "acme", homeRegion: "us" }] }, "us")
    expect(Relay.scopeKey(topology, change("eu", "eu-bank"))).toBe("eu|ap,eu")
    expect(Relay.scopeKey(topology, change("us", "acme"))).toBe("us|*")
    // (A tree from an origin outside a residency set is still computed: such changes cannot exist, the key is harmless.)
    expect(Relay.scopeKey(topology, change("gone", "eu-bank"))).toBe("(undeclared)|ap,eu")
    expect(Relay.scopeOf(topology, "eu", "ap")).toEqual(["eu|*", "eu|ap,eu", "us|*", "us|ap,eu", "(undeclared)|*", "(undeclared)|ap,eu", "(declared ap,eu,us)"])
    // us is outside the residency set: its edge carries no eu-bank change of a removed region.
    expect(Relay.scopeOf(topology, "ap", "us")).toEqual(["ap|*", "eu|*", "(undeclared)|*", "(declared ap,eu,us)"])
    for (const [holder, target] of [["eu", "ap"], ["ap", "us"], ["us", "eu"]] as const) {
      for (const sent of [change("us"), change("eu"), change("ap"), change("eu", "eu-bank"), change("gone"), change("gone", "eu-bank")]) {
        const inScope = Relay.scopeOf(topology, holder, target).includes(Relay.scopeKey(topology, sent))
        expect(Relay.shouldSend(topology, holder, target, sent, null), `${holder} -> ${target} ${sent.originRegion} ${sent.tuple.vault}`).toBe(inScope)
      }
    }
  })

  it("a region removed from the deployment: its changes are flooded over every edge but the one they came by, and a scope recorded before says it was removed since", () => {
    const before = Cluster.topologyFor({ regions, targets: { us: ["eu", "ap"], eu: ["us", "ap"], ap: ["us", "eu"] } }, "us")
    const after = Cluster.topologyFor({ regions: ["us", "eu"], targets: { us: ["eu"], eu: ["us"] } }, "us")
    const removed = change("ap")
    // Declared, ap sends its own changes to every region (a full mesh): no other region does.
    expect(Relay.shouldSend(before, "us", "eu", removed, "ap")).toBe(false)
    // Removed, every holder sends them on to each of its targets, except back where they came from.
    expect(Relay.shouldSend(after, "us", "eu", removed, "ap")).toBe(true)
    expect(Relay.shouldSend(after, "eu", "us", removed, "us")).toBe(false)
    expect(Relay.scopeKey(after, removed)).toBe("(undeclared)|*")
    // The recorded scope says which regions were declared: the agent looks back for the changes of
    // those removed since, and only those (a region removed long ago is not sent again).
    const recorded = Relay.scopeOf(before, "us", "eu")
    expect(recorded).toEqual(["us|*", "(undeclared)|*", "(declared ap,eu,us)"])
    expect([...Relay.removedSince(recorded, after)]).toEqual(["ap"])
    expect([...Relay.removedSince(Relay.scopeOf(after, "us", "eu"), after)]).toEqual([])
    expect([...Relay.removedSince(["us|*"], after)]).toEqual([])
  })
})
