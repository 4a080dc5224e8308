import { describe, expect, it } from "@effect/vitest"
import { Either, pipe } from "effect"
import * as Topology from "../../src/replication/Topology.js"
import * as TopologyBuilder from "../../src/replication/TopologyBuilder.js"

const twoRegions = (strategy: Topology.ReplicationStrategy = "ActiveActive") =>
  pipe(
    TopologyBuilder.make(strategy, "us-west-1"),
    TopologyBuilder.addRegion({ id: "us-west-1", name: "US West" }),
    TopologyBuilder.addZone("us-west-1", { id: "us-west-1a", name: "Zone A" }),
    TopologyBuilder.addNode("us-west-1", "us-west-1a", { id: "node1", endpoint: "127.0.0.1:50051" }),
    TopologyBuilder.addRegion({ id: "eu-central-1", name: "EU Central" }),
    TopologyBuilder.addZone("eu-central-1", { id: "eu-central-1a" }),
    TopologyBuilder.addNode("eu-central-1", "eu-central-1a", { id: "node2", endpoint: "127.0.0.1:50052" }),
    TopologyBuilder.setReplicationTargets("us-west-1", ["eu-central-1"]),
    TopologyBuilder.setReplicationTargets("eu-central-1", ["us-west-1"])
  )

const buildError = (builder: TopologyBuilder.TopologyBuilder): TopologyBuilder.TopologyError => {
  const result = TopologyBuilder.build(builder)
  if (Either.isRight(result)) throw new Error("expected the topology to be rejected")
  return result.left
}

const buildOk = (builder: TopologyBuilder.TopologyBuilder): Topology.Topology => {
  const result = TopologyBuilder.build(builder)
  if (Either.isLeft(result)) throw new Error(`expected a valid topology, got: ${result.left.message}`)
  return result.right
}

describe("TopologyBuilder", () => {
  it("builds the seed's two-region active-active topology with defaults filled in", () => {
    const topology = buildOk(twoRegions())
    expect(topology.strategy).toBe("ActiveActive")
    expect(topology.localRegion).toBe("us-west-1")
    expect(topology.regions.map((region) => [region.id, region.isPrimary, region.failoverPriority])).toEqual([
      ["us-west-1", false, 1],
      ["eu-central-1", false, 2]
    ])
    expect(topology.regions[1]?.zones[0]?.name).toBe("eu-central-1a")
    expect(Topology.regionNodes(topology.regions[0]!)).toEqual([{ id: "node1", endpoint: "127.0.0.1:50051", status: "Healthy" }])
    expect(Topology.targetsOf(topology, "us-west-1")).toEqual(["eu-central-1"])
    expect(topology.vaults).toEqual([])
  })

  it("builders are immutable: adding to a builder leaves the original unchanged", () => {
    const base = twoRegions()
    const extended = TopologyBuilder.addNode(base, "us-west-1", "us-west-1a", { id: "node3", endpoint: "127.0.0.1:50053" })
    expect(Topology.regionNodes(buildOk(base).regions[0]!).map((node) => node.id)).toEqual(["node1"])
    expect(Topology.regionNodes(buildOk(extended).regions[0]!).map((node) => node.id)).toEqual(["node1", "node3"])
  })

  it("an explicit failover priority overrides the declaration-order default", () => {
    const topology = buildOk(
      pipe(
        TopologyBuilder.make("PrimaryReplica", "eu-central-1"),
        TopologyBuilder.addRegion({ id: "us-west-1", name: "US West", isPrimary: true, failoverPriority: 10 }),
        TopologyBuilder.addRegion({ id: "eu-central-1", name: "EU Central", failoverPriority: 5 })
      )
    )
    expect(topology.regions.map((region) => region.failoverPriority)).toEqual([10, 5])
  })

  it("a topology without regions is an error", () => {
    expect(buildError(TopologyBuilder.make("ActiveActive", "us-west-1")).reason).toBe("NoRegions")
  })

  it("a local region that is not declared is an error that names it", () => {
    const error = buildError({ ...twoRegions(), localRegion: "ap-southeast-1" })
    expect(error.reason).toBe("UnknownLocalRegion")
    expect(error.region).toBe("ap-southeast-1")
    expect(error.message).toContain("ap-southeast-1")
  })

  it("PrimaryReplica without a primary region is an error", () => {
    const error = buildError(twoRegions("PrimaryReplica"))
    expect(error.reason).toBe("PrimaryCount")
    expect(error.message).toContain("none")
  })

  it("PrimaryReplica with two primary regions is an error that names both", () => {
    const error = buildError(
      pipe(
        TopologyBuilder.make("PrimaryReplica", "us-west-1"),
        TopologyBuilder.addRegion({ id: "us-west-1", name: "US West", isPrimary: true }),
        TopologyBuilder.addRegion({ id: "eu-central-1", name: "EU Central", isPrimary: true })
      )
    )
    expect(error.reason).toBe("PrimaryCount")
    expect(error.message).toContain("'us-west-1'")
    expect(error.message).toContain("'eu-central-1'")
  })

  it("a zone added under an unknown region is an error that names the region, not a silent no-op", () => {
    const error = buildError(TopologyBuilder.addZone(twoRegions(), "us-east-1", { id: "us-east-1a" }))
    expect(error.reason).toBe("UnknownRegion")
    expect(error.region).toBe("us-east-1")
    expect(error.message).toContain("us-east-1a")
  })

  it("a node added under an unknown zone is an error that names the zone", () => {
    const error = buildError(TopologyBuilder.addNode(twoRegions(), "us-west-1", "us-west-1z", { id: "node9", endpoint: "127.0.0.1:59999" }))
    expect(error.reason).toBe("UnknownZone")
    expect(error.zone).toBe("us-west-1z")
    expect(error.node).toBe("node9")
    expect(error.message).toContain("us-west-1z")
  })

  it("a node added under an unknown region is an error that names the region", () => {
    const error = buildError(TopologyBuilder.addNode(twoRegions(), "us-east-1", "us-east-1a", { id: "node9", endpoint: "127.0.0.1:59999" }))
    expect(error.reason).toBe("UnknownRegion")
    expect(error.region).toBe("us-east-1")
  })

  it("a zone added before its region is declared is an error even if the region follows", () => {
    const error = buildError(
      pipe(
        TopologyBuilder.make("ActiveActive", "us-west-1"),
        TopologyBuilder.addZone("us-west-1", { id: "us-west-1a" }),
        TopologyBuilder.addRegion({ id: "us-west-1", name: "US West" })
      )
    )
    expect(error.reason).toBe("UnknownRegion")
  })

  it("a region declared twice is an error that names it", () => {
    const error = buildError(TopologyBuilder.addRegion(twoRegions(), { id: "eu-central-1", name: "again", failoverPriority: 9 }))
    expect(error.reason).toBe("DuplicateRegion")
    expect(error.region).toBe("eu-central-1")
  })

  it("a zone declared twice in one region is an error, but two regions may share a zone id", () => {
    const error = buildError(TopologyBuilder.addZone(twoRegions(), "us-west-1", { id: "us-west-1a" }))
    expect(error.reason).toBe("DuplicateZone")
    expect(error.zone).toBe("us-west-1a")
    const shared = pipe(twoRegions(), TopologyBuilder.addZone("us-west-1", { id: "default" }), TopologyBuilder.addZone("eu-central-1", { id: "default" }))
    expect(Either.isRight(TopologyBuilder.build(shared))).toBe(true)
  })

  it("a node id used in two regions is an error that names the node", () => {
    const error = buildError(TopologyBuilder.addNode(twoRegions(), "eu-central-1", "eu-central-1a", { id: "node1", endpoint: "127.0.0.1:50099" }))
    expect(error.reason).toBe("DuplicateNode")
    expect(error.node).toBe("node1")
  })

  it("an endpoint used by two nodes is an error that names the endpoint and both nodes", () => {
    const error = buildError(TopologyBuilder.addNode(twoRegions(), "eu-central-1", "eu-central-1a", { id: "node3", endpoint: "127.0.0.1:50051" }))
    expect(error.reason).toBe("DuplicateEndpoint")
    expect(error.endpoint).toBe("127.0.0.1:50051")
    expect(error.node).toBe("node3")
    expect(error.message).toContain("'node1'")
  })

  it("a blank node id is an error", () => {
    const error = buildError(TopologyBuilder.addNode(twoRegions(), "us-west-1", "us-west-1a", { id: " ", endpoint: "127.0.0.1:50060" }))
    expect(error.reason).toBe("BlankId")
  })

  it("two regions with the same failover priority are an error, because failover must pick one", () => {
    const error = buildError(
      pipe(
        TopologyBuilder.make("ActiveActive", "us-west-1"),
        TopologyBuilder.addRegion({ id: "us-west-1", name: "US West" }),
        TopologyBuilder.addRegion({ id: "eu-central-1", name: "EU Central", failoverPriority: 1 })
      )
    )
    expect(error.reason).toBe("DuplicateFailoverPriority")
    expect(error.region).toBe("eu-central-1")
  })

  it("a negative or fractional failover priority is an error", () => {
    const error = buildError(TopologyBuilder.addRegion(twoRegions(), { id: "ap-southeast-1", name: "AP", failoverPriority: 1.5 }))
    expect(error.reason).toBe("InvalidFailoverPriority")
  })

  it("replication targets of an undeclared source region are an error that names it", () => {
    const error = buildError(TopologyBuilder.setReplicationTargets(twoRegions(), "us-east-1", ["us-west-1"]))
    expect(error.reason).toBe("UnknownSourceRegion")
    expect(error.region).toBe("us-east-1")
  })

  it("an undeclared replication target is an error that names source and target", () => {
    const error = buildError(TopologyBuilder.setReplicationTargets(twoRegions(), "us-west-1", ["eu-central-1", "ap-southeast-1"]))
    expect(error.reason).toBe("UnknownTargetRegion")
    expect(error.region).toBe("us-west-1")
    expect(error.target).toBe("ap-southeast-1")
  })

  it("a region that lists itself as a replication target is an error", () => {
    const error = buildError(TopologyBuilder.setReplicationTargets(twoRegions(), "us-west-1", ["us-west-1"]))
    expect(error.reason).toBe("SelfLoop")
    expect(error.region).toBe("us-west-1")
  })

  it("a target listed twice is an error", () => {
    const error = buildError(TopologyBuilder.setReplicationTargets(twoRegions(), "us-west-1", ["eu-central-1", "eu-central-1"]))
    expect(error.reason).toBe("DuplicateTarget")
  })

  it("fullMesh connects every region to every other region and never to itself", () => {
    expect(TopologyBuilder.fullMesh(["a", "b", "c"])).toEqual({ a: ["b", "c"], b: ["a", "c"], c: ["a", "b"] })
  })

  describe("vault placements", () => {
    const multiMaster = () => twoRegions("MultiMaster")

    it("MultiMaster accepts vaults with a home region and a residency set that includes it", () => {
      const topology = buildOk(
        pipe(
          multiMaster(),
          TopologyBuilder.addVault({ vault: "acme", homeRegion: "us-west-1" }),
          TopologyBuilder.addVault({ vault: "eu-bank", homeRegion: "eu-central-1", allowedRegions: ["eu-central-1"] })
        )
      )
      expect(Topology.vaultAllowedIn(topology, "eu-bank", "us-west-1")).toBe(false)
      expect(Topology.vaultAllowedIn(topology, "acme", "eu-central-1")).toBe(true)
    })

    it("a vault placement under a strategy other than MultiMaster is an error", () => {
      const error = buildError(TopologyBuilder.addVault(twoRegions("ActiveActive"), { vault: "acme", homeRegion: "us-west-1" }))
      expect(error.reason).toBe("VaultsRequireMultiMaster")
      expect(error.vault).toBe("acme")
    })

    it("a vault whose home region is not declared is an error that names the region", () => {
      const error = buildError(TopologyBuilder.addVault(multiMaster(), { vault: "acme", homeRegion: "us-east-1" }))
      expect(error.reason).toBe("UnknownVaultRegion")
      expect(error.target).toBe("us-east-1")
    })

    it("a vault allowed in an undeclared region is an error that names the region", () => {
      const error = buildError(
        TopologyBuilder.addVault(multiMaster(), { vault: "acme", homeRegion: "us-west-1", allowedRegions: ["us-west-1", "mars-1"] })
      )
      expect(error.reason).toBe("UnknownVaultRegion")
      expect(error.target).toBe("mars-1")
    })

    it("a vault whose allowed regions exclude its home region is an error", () => {
      const error = buildError(
        TopologyBuilder.addVault(multiMaster(), { vault: "eu-bank", homeRegion: "us-west-1", allowedRegions: ["eu-central-1"] })
      )
      expect(error.reason).toBe("HomeRegionNotAllowed")
      expect(error.vault).toBe("eu-bank")
    })

    it("a vault placed twice is an error", () => {
      const error = buildError(
        pipe(
          multiMaster(),
          TopologyBuilder.addVault({ vault: "acme", homeRegion: "us-west-1" }),
          TopologyBuilder.addVault({ vault: "acme", homeRegion: "eu-central-1" })
        )
      )
      expect(error.reason).toBe("DuplicateVault")
    })
  })

  describe("validate", () => {
    it("accepts a built topology unchanged", () => {
      const topology = buildOk(twoRegions())
      expect(TopologyBuilder.validate(topology)).toEqual(Either.right(topology))
    })

    it("rejects an assembled topology that breaks an invariant, e.g. a replaced topology with a self-loop", () => {
      const topology = buildOk(twoRegions())
      const replaced: Topology.Topology = { ...topology, replicationTargets: { "us-west-1": ["us-west-1"] } }
      const result = TopologyBuilder.validate(replaced)
      expect(Either.isLeft(result) && result.left.reason).toBe("SelfLoop")
    })

    it("fromTopology lets a valid topology be extended and rebuilt", () => {
      const topology = buildOk(twoRegions())
      const rebuilt = buildOk(
        TopologyBuilder.addNode(TopologyBuilder.fromTopology(topology), "eu-central-1", "eu-central-1a", {
          id: "node3",
          endpoint: "127.0.0.1:50053",
          status: "Degraded"
        })
      )
      expect(Topology.regionNodes(rebuilt.regions[1]!).map((node) => [node.id, node.status])).toEqual([
        ["node2", "Healthy"],
        ["node3", "Degraded"]
      ])
    })
  })

  describe("validateDeployment", () => {
    const deploymentReason = (builder: TopologyBuilder.TopologyBuilder) => {
      const result = Either.flatMap(TopologyBuilder.build(builder), TopologyBuilder.validateDeployment)
      return Either.isLeft(result) ? result.left.reason : "ok"
    }

    it("a one-way graph passes validate (run-time edits pass through such states) but not validateDeployment", () => {
      const oneWay = TopologyBuilder.setReplicationTargets(twoRegions(), "eu-central-1", [])
      expect(Either.isRight(TopologyBuilder.build(oneWay))).toBe(true)
      expect(deploymentReason(oneWay)).toBe("NoTargets")
      expect(deploymentReason(twoRegions())).toBe("ok")
    })

    it("a peer region without nodes is refused, naming the region", () => {
      const empty = TopologyBuilder.addRegion(twoRegions(), { id: "ap-southeast-1", name: "AP" })
      const result = Either.flatMap(TopologyBuilder.build(empty), TopologyBuilder.validateDeployment)
      expect(Either.isLeft(result) && [result.left.reason, result.left.region]).toEqual(["RegionWithoutNodes", "ap-southeast-1"])
    })

    it("a region the others cannot reach, and a residency set split by a region outside it, are refused", () => {
      const asia = pipe(
        twoRegions("MultiMaster"),
        TopologyBuilder.addRegion({ id: "ap-southeast-1", name: "AP" }),
        TopologyBuilder.addZone("ap-southeast-1", { id: "ap-southeast-1a" }),
        TopologyBuilder.addNode("ap-southeast-1", "ap-southeast-1a", { id: "node3", endpoint: "127.0.0.1:50053" })
      )
      expect(deploymentReason(TopologyBuilder.setReplicationTargets(asia, "ap-southeast-1", ["us-west-1"]))).toBe("NotStronglyConnected")
      const star = pipe(
        asia,
        TopologyBuilder.setReplicationTargets("us-west-1", ["eu-central-1", "ap-southeast-1"]),
        TopologyBuilder.setReplicationTargets("ap-southeast-1", ["us-west-1"])
      )
      expect(deploymentReason(star)).toBe("ok")
      const split = TopologyBuilder.addVault(star, { vault: "acme", homeRegion: "eu-central-1", allowedRegions: ["eu-central-1", "ap-southeast-1"] })
      expect(deploymentReason(split)).toBe("ResidencyDisconnected")
    })
  })
})
