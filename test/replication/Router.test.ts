import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Layer, pipe } from "effect"
import * as Router from "../../src/replication/Router.js"
import type * as Topology from "../../src/replication/Topology.js"
import * as TopologyBuilder from "../../src/replication/TopologyBuilder.js"
import * as TopologyManager from "../../src/replication/TopologyManager.js"

/**
 * us-west-1 (local, priority 1) has w1, w2 in zone a and w3 in zone b; eu-central-1 is
 * declared second but has priority 3; ap-southeast-1 is declared third with priority 2, so
 * failover order differs from declaration order.
 */
const threeRegions = (strategy: Topology.ReplicationStrategy): Topology.Topology => {
  const builder = pipe(
    TopologyBuilder.make(strategy, "us-west-1"),
    TopologyBuilder.addRegion({ id: "us-west-1", name: "US West", failoverPriority: 1, isPrimary: strategy === "PrimaryReplica" }),
    TopologyBuilder.addZone("us-west-1", { id: "us-west-1a" }),
    TopologyBuilder.addNode("us-west-1", "us-west-1a", { id: "w1", endpoint: "w1:50051" }),
    TopologyBuilder.addNode("us-west-1", "us-west-1a", { id: "w2", endpoint: "w2:50051" }),
    TopologyBuilder.addZone("us-west-1", { id: "us-west-1b" }),
    TopologyBuilder.addNode("us-west-1", "us-west-1b", { id: "w3", endpoint: "w3:50051" }),
    TopologyBuilder.addRegion({ id: "eu-central-1", name: "EU Central", failoverPriority: 3 }),
    TopologyBuilder.addZone("eu-central-1", { id: "eu-central-1a" }),
    TopologyBuilder.addNode("eu-central-1", "eu-central-1a", { id: "e1", endpoint: "e1:50051" }),
    TopologyBuilder.addRegion({ id: "ap-southeast-1", name: "Asia Pacific", failoverPriority: 2 }),
    TopologyBuilder.addZone("ap-southeast-1", { id: "ap-southeast-1a" }),
    TopologyBuilder.addNode("ap-southeast-1", "ap-southeast-1a", { id: "a1", endpoint: "a1:50051" }),
    (current) => (strategy === "MultiMaster" ? TopologyBuilder.addVault(current, { vault: "acme", homeRegion: "eu-central-1", allowedRegions: ["eu-central-1", "us-west-1"] }) : current),
    (current) => (strategy === "MultiMaster" ? TopologyBuilder.addVault(current, { vault: "globex", homeRegion: "ap-southeast-1", allowedRegions: ["ap-southeast-1"] }) : current)
  )
  const result = TopologyBuilder.build(builder)
  if (Either.isLeft(result)) throw new Error(`fixture topology is invalid: ${result.left.message}`)
  return result.right
}

const zoneOf: Record<string, readonly [string, string]> = {
  w1: ["us-west-1", "us-west-1a"],
  w2: ["us-west-1", "us-west-1a"],
  w3: ["us-west-1", "us-west-1b"],
  e1: ["eu-central-1", "eu-central-1a"],
  a1: ["ap-southeast-1", "ap-southeast-1a"]
}

/** Runs a test body with a manager over `topology` and a router over the manager. */
const withRouter = <A, E>(
  topology: Topology.Topology,
  body: (router: Router.Router["Type"], manager: TopologyManager.TopologyManager["Type"]) => Effect.Effect<A, E>,
  options: Router.Options = {}
) =>
  Effect.gen(function* () {
    const router = yield* Router.Router
    const manager = yield* TopologyManager.TopologyManager
    return yield* body(router, manager)
  }).pipe(Effect.provide(Router.layer(options).pipe(Layer.provideMerge(TopologyManager.layer(topology)))))

const setStatus = (manager: TopologyManager.TopologyManager["Type"], nodeId: string, status: Topology.NodeStatus) => {
  const [regionId, zoneId] = zoneOf[nodeId] ?? ["?", "?"]
  return manager.updateNodeStatus(regionId, zoneId, nodeId, status)
}

const regionDown = (manager: TopologyManager.TopologyManager["Type"], regionId: string) =>
  Effect.forEach(
    Object.entries(zoneOf).filter(([, [region]]) => region === regionId),
    ([nodeId]) => setStatus(manager, nodeId, "Unreachable")
  )

const regionOf = (decision: Router.RouteDecision) => [decision.regionId, decision.failover] as const

describe("Router", () => {
  describe("routing table", () => {
    it.effect("under ActiveActive reads and writes both go to the local region", () =>
      withRouter(threeRegions("ActiveActive"), (router) =>
        Effect.gen(function* () {
          expect(regionOf(yield* router.route({ type: "Read" }))).toEqual(["us-west-1", false])
          expect(regionOf(yield* router.route({ type: "Write" }))).toEqual(["us-west-1", false])
        })
      ))

    it.effect("under PrimaryReplica reads go to the local region and writes to the primary", () =>
      withRouter({ ...threeRegions("PrimaryReplica"), localRegion: "eu-central-1" }, (router) =>
        Effect.gen(function* () {
          expect(regionOf(yield* router.route({ type: "Read" }))).toEqual(["eu-central-1", false])
          expect(regionOf(yield* router.route({ type: "Write" }))).toEqual(["us-west-1", false])
        })
      ))

    it.effect("under MultiMaster a write goes to its vault's home region and a read stays local", () =>
      withRouter(threeRegions("MultiMaster"), (router) =>
        Effect.gen(function* () {
          expect(regionOf(yield* router.route({ type: "Write", vault: "acme" }))).toEqual(["eu-central-1", false])
          expect(regionOf(yield* router.route({ type: "Read", vault: "acme" }))).toEqual(["us-west-1", false])
          expect(regionOf(yield* router.route({ type: "Read" }))).toEqual(["us-west-1", false])
        })
      ))

    it.effect("under MultiMaster a read of a vault whose data may not live in the local region goes to its home region", () =>
      withRouter(threeRegions("MultiMaster"), (router) =>
        Effect.gen(function* () {
          expect(regionOf(yield* router.route({ type: "Read", vault: "globex" }))).toEqual(["ap-southeast-1", false])
        })
      ))

    it.effect("a MultiMaster write without a vault, or for a vault without placement, fails instead of guessing a region", () =>
      withRouter(threeRegions("MultiMaster"), (router) =>
        Effect.gen(function* () {
          expect((yield* Effect.flip(router.route({ type: "Write" }))).reason).toBe("UnknownVault")
          expect((yield* Effect.flip(router.route({ type: "Write", vault: "initech" }))).reason).toBe("UnknownVault")
        })
      ))

    it.effect("routing follows run-time changes: after the primary moves, writes follow it", () =>
      withRouter(threeRegions("PrimaryReplica"), (router, manager) =>
        Effect.gen(function* () {
          yield* manager.setPrimary("ap-southeast-1")
          expect(regionOf(yield* router.route({ type: "Write" }))).toEqual(["ap-southeast-1", false])
        })
      ))
  })

  describe("failover", () => {
    it.effect("a read fails over to the available region with the lowest failover priority number, not the first declared", () =>
      withRouter(threeRegions("ActiveActive"), (router, manager) =>
        Effect.gen(function* () {
          yield* regionDown(manager, "us-west-1")
          expect(regionOf(yield* router.route({ type: "Read" }))).toEqual(["ap-southeast-1", true])
          yield* regionDown(manager, "ap-southeast-1")
          expect(regionOf(yield* router.route({ type: "Read" }))).toEqual(["eu-central-1", true])
          yield* regionDown(manager, "eu-central-1")
          expect((yield* Effect.flip(router.route({ type: "Read" }))).reason).toBe("NoHealthyRegion")
        })
      ))

    it.effect("a region with only Degraded nodes is still available and is not failed over", () =>
      withRouter(threeRegions("ActiveActive"), (router, manager) =>
        Effect.gen(function* () {
          yield* Effect.forEach(["w1", "w2", "w3"], (nodeId) => setStatus(manager, nodeId, "Degraded"))
          expect(regionOf(yield* router.route({ type: "Read" }))).toEqual(["us-west-1", false])
        })
      ))

    it.effect("an ActiveActive write fails over in the same order as a read", () =>
      withRouter(threeRegions("ActiveActive"), (router, manager) =>
        Effect.gen(function* () {
          yield* regionDown(manager, "us-west-1")
          expect(regionOf(yield* router.route({ type: "Write" }))).toEqual(["ap-southeast-1", true])
        })
      ))

    it.effect("a PrimaryReplica write is refused with PrimaryUnavailable when the primary is down, never sent to a replica", () =>
      withRouter({ ...threeRegions("PrimaryReplica"), localRegion: "eu-central-1" }, (router, manager) =>
        Effect.gen(function* () {
          yield* regionDown(manager, "us-west-1")
          const error = yield* Effect.flip(router.route({ type: "Write" }))
          expect(error.reason).toBe("PrimaryUnavailable")
          expect(error.regionId).toBe("us-west-1")
          expect(regionOf(yield* router.route({ type: "Read" }))).toEqual(["eu-central-1", false])
        })
      ))

    it.effect("a MultiMaster write goes only to its vault's home region and never fails over", () =>
      withRouter(threeRegions("MultiMaster"), (router, manager) =>
        Effect.gen(function* () {
          yield* regionDown(manager, "eu-central-1")
          const error = yield* Effect.flip(router.route({ type: "Write", vault: "acme" }))
          expect(error.reason).toBe("NoHealthyRegion")
          expect(error.vault).toBe("acme")
          expect(error.regionId).toBe("eu-central-1")
        })
      ))

    it.effect("a MultiMaster read fails over only within its vault's residency set", () =>
      withRouter(threeRegions("MultiMaster"), (router, manager) =>
        Effect.gen(function* () {
          yield* regionDown(manager, "eu-central-1")
          yield* regionDown(manager, "us-west-1")
          const error = yield* Effect.flip(router.route({ type: "Read", vault: "acme" }))
          expect(error.reason).toBe("ResidencyViolation")
          expect(error.vault).toBe("acme")
        })
      ))

    it("failoverOrder sorts available regions by priority number, then id, and skips excluded and unavailable ones", () => {
      const base = threeRegions("ActiveActive")
      const tied: Topology.Topology = {
        ...base,
        regions: base.regions.map((region) => ({ ...region, failoverPriority: region.id === "us-west-1" ? 1 : 5 }))
      }
      expect(Router.failoverOrder(tied)).toEqual(["us-west-1", "ap-southeast-1", "eu-central-1"])
      expect(Router.failoverOrder(base, ["ap-southeast-1"])).toEqual(["us-west-1", "eu-central-1"])
      const westDown: Topology.Topology = {
        ...base,
        regions: base.regions.map((region) =>
          region.id !== "us-west-1"
            ? region
            : { ...region, zones: region.zones.map((zone) => ({ ...zone, nodes: zone.nodes.map((node) => ({ ...node, status: "Unreachable" as const })) })) }
        )
      }
      expect(Router.failoverOrder(westDown)).toEqual(["ap-southeast-1", "eu-central-1"])
    })

    it("electPrimary picks the available region with the lowest failover priority number", () => {
      const base = threeRegions("PrimaryReplica")
      expect(Router.electPrimary(base)).toBe("us-west-1")
      const westDown: Topology.Topology = {
        ...base,
        regions: base.regions.map((region) => (region.id === "us-west-1" ? { ...region, zones: [] } : region))
      }
      expect(Router.electPrimary(westDown)).toBe("ap-southeast-1")
      expect(Router.electPrimary({ ...base, regions: base.regions.map((region) => ({ ...region, zones: [] })) })).toBeUndefined()
    })
  })

  describe("node choice", () => {
    it.effect("RoundRobin cycles through the healthy nodes of a region in declaration order", () =>
      withRouter(threeRegions("ActiveActive"), (router) =>
        Effect.gen(function* () {
          const picks = yield* Effect.forEach(Array.from({ length: 7 }), () => router.route({ type: "Read" }))
          expect(picks.map((decision) => decision.nodeId)).toEqual(["w1", "w2", "w3", "w1", "w2", "w3", "w1"])
          expect(picks[2]).toEqual({ regionId: "us-west-1", zoneId: "us-west-1b", nodeId: "w3", endpoint: "w3:50051", failover: false })
        })
      ))

    it.effect("Healthy nodes are preferred over Degraded ones, and an Unreachable node is never chosen", () =>
      withRouter(threeRegions("ActiveActive"), (router, manager) =>
        Effect.gen(function* () {
          yield* setStatus(manager, "w1", "Unreachable")
          yield* setStatus(manager, "w2", "Degraded")
          const healthyOnly = yield* Effect.forEach(Array.from({ length: 3 }), () => router.pickNode("us-west-1"))
          expect(healthyOnly.map((choice) => choice.nodeId)).toEqual(["w3", "w3", "w3"])
          yield* setStatus(manager, "w3", "Unreachable")
          const degradedOnly = yield* Effect.forEach(Array.from({ length: 2 }), () => router.pickNode("us-west-1"))
          expect(degradedOnly.map((choice) => choice.nodeId)).toEqual(["w2", "w2"])
          yield* setStatus(manager, "w2", "Unreachable")
          expect((yield* Effect.flip(router.pickNode("us-west-1"))).reason).toBe("NoHealthyRegion")
          expect(yield* router.isRegionAvailable("us-west-1")).toBe(false)
        })
      ))

    it.effect("FirstAvailable always picks the first usable node in declaration order", () =>
      withRouter(
        threeRegions("ActiveActive"),
        (router, manager) =>
          Effect.gen(function* () {
            const picks = yield* Effect.forEach(Array.from({ length: 3 }), () => router.route({ type: "Write" }))
            expect(picks.map((decision) => decision.nodeId)).toEqual(["w1", "w1", "w1"])
            yield* setStatus(manager, "w1", "Degraded")
            expect((yield* router.route({ type: "Write" })).nodeId).toBe("w2")
          }),
        { loadBalancing: "FirstAvailable" }
      ))

    it.effect("picking a node of a region that does not exist fails with UnknownRegion", () =>
      withRouter(threeRegions("ActiveActive"), (router) =>
        Effect.gen(function* () {
          expect((yield* Effect.flip(router.pickNode("mars-1"))).reason).toBe("UnknownRegion")
          expect(yield* router.isRegionAvailable("mars-1")).toBe(false)
        })
      ))
  })
})
