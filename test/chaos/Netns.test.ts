/**
 * The nftables rules a chaos run installs, checked as text (no root needed): a cut drops the
 * peer's packets at both ends, a one-way cut only in its direction, a bridge node is never
 * matched, loss is a random share per peer, and the harness's address is never matched.
 */
import { describe, expect, it } from "vitest"
import * as Netns from "../../src/chaos/Netns.js"

const network: Netns.Network = {
  tag: "abcd",
  bridge: "chbabcd",
  hostAddress: "10.231.1.254",
  nodes: [
    { nodeId: "us-1", regionId: "us", namespace: "ns-1", address: "10.231.1.1" },
    { nodeId: "eu-1", regionId: "eu", namespace: "ns-2", address: "10.231.1.2" },
    { nodeId: "eu-2", regionId: "eu", namespace: "ns-3", address: "10.231.1.3" }
  ]
}
const [us, eu1, eu2] = network.nodes as [Netns.NodeAddress, Netns.NodeAddress, Netns.NodeAddress]
const noLoss = () => 0

describe("chaos network rules", () => {
  it("a two-way cut between regions drops the peer's packets in both namespaces, and never the harness's or a sibling's", () => {
    const state = { blocked: new Set([Netns.linkKey("us", "eu"), Netns.linkKey("eu", "us")]), bridges: new Set<string>(), lossOf: noLoss }
    const rules = Netns.rulesetOf(network, state, us)
    expect(rules).toContain("ip saddr 10.231.1.2 drop")
    expect(rules).toContain("ip daddr 10.231.1.3 drop")
    expect(rules).not.toContain(network.hostAddress)
    expect(Netns.rulesetOf(network, state, eu1)).not.toContain(eu2.address)
  })

  it("a one-way cut drops only the packets that travel its way", () => {
    const state = { blocked: new Set([Netns.linkKey("us", "eu")]), bridges: new Set<string>(), lossOf: noLoss }
    expect(Netns.cut(state, us, eu1)).toBe(true)
    expect(Netns.cut(state, eu1, us)).toBe(false)
    expect(Netns.rulesetOf(network, state, us)).toContain("ip daddr 10.231.1.2 drop")
    expect(Netns.rulesetOf(network, state, us)).not.toContain("ip saddr 10.231.1.2 drop")
  })

  it("a bridge node still reaches and is reached from the other side", () => {
    const state = { blocked: new Set([Netns.linkKey("us", "eu"), Netns.linkKey("eu", "us")]), bridges: new Set(["eu-1"]), lossOf: noLoss }
    expect(Netns.cut(state, us, eu1)).toBe(false)
    expect(Netns.cut(state, eu1, us)).toBe(false)
    expect(Netns.cut(state, us, eu2)).toBe(true)
  })

  it("loss drops a random share of what arrives from each peer, and the table is replaced as a whole", () => {
    const state = { blocked: new Set<string>(), bridges: new Set<string>(), lossOf: (from: string, to: string) => (from === "eu" && to === "us" ? 0.015 : 0) }
    const rules = Netns.rulesetOf(network, state, us)
    expect(rules).toContain("ip saddr 10.231.1.2 numgen random mod 10000 < 150 drop")
    expect(rules.startsWith("table inet inferadb_chaos {}\ndelete table inet inferadb_chaos\n")).toBe(true)
    expect(Netns.rulesetOf(network, state, eu1)).not.toContain("numgen")
  })
})
