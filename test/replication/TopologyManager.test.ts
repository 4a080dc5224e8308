import { describe, expect, it } from "@effect/vitest"
import { Chunk, Deferred, Effect, Either, Fiber, pipe, Scheduler, Stream, TestClock } from "effect"
import type * as Topology from "../../src/replication/Topology.js"
import * as TopologyBuilder from "../../src/replication/TopologyBuilder.js"
import * as TopologyManager from "../../src/replication/TopologyManager.js"

const buildOk = (builder: TopologyBuilder.TopologyBuilder): Topology.Topology => {
  const result = TopologyBuilder.build(builder)
  if (Either.isLeft(result)) throw new Error(`fixture topology is invalid: ${result.left.message}`)
  return result.right
}

/** Three regions, full mesh; us-west-1 is local and has two nodes. */
const threeRegions = (strategy: Topology.ReplicationStrategy = "ActiveActive") => {
  const builder = pipe(
    TopologyBuilder.make(strategy, "us-west-1"),
    TopologyBuilder.addRegion({ id: "us-west-1", name: "US West", isPrimary: strategy === "PrimaryReplica" }),
    TopologyBuilder.addZone("us-west-1", { id: "us-west-1a" }),
    TopologyBuilder.addNode("us-west-1", "us-west-1a", { id: "w1", endpoint: "w1:50051" }),
    TopologyBuilder.addNode("us-west-1", "us-west-1a", { id: "w2", endpoint: "w2:50051" }),
    TopologyBuilder.addRegion({ id: "eu-central-1", name: "EU Central" }),
    TopologyBuilder.addZone("eu-central-1", { id: "eu-central-1a" }),
    TopologyBuilder.addNode("eu-central-1", "eu-central-1a", { id: "e1", endpoint: "e1:50051" }),
    TopologyBuilder.addRegion({ id: "ap-southeast-1", name: "Asia Pacific" }),
    TopologyBuilder.addZone("ap-southeast-1", { id: "ap-southeast-1a" }),
    TopologyBuilder.addNode("ap-southeast-1", "ap-southeast-1a", { id: "a1", endpoint: "a1:50051" })
  )
  const meshed = Object.entries(TopologyBuilder.fullMesh(["us-west-1", "eu-central-1", "ap-southeast-1"])).reduce(
    (current, [source, targets]) => TopologyBuilder.setReplicationTargets(current, source, targets),
    builder
  )
  if (strategy !== "MultiMaster") return buildOk(meshed)
  return buildOk(
    pipe(
      meshed,
      TopologyBuilder.addVault({ vault: "acme", homeRegion: "eu-central-1", allowedRegions: ["eu-central-1", "ap-southeast-1"] }),
      TopologyBuilder.addVault({ vault: "globex", homeRegion: "us-west-1" })
    )
  )
}

const managerOver = (topology: Topology.Topology, options: Partial<TopologyManager.Options> = {}) =>
  TopologyManager.make(topology, { heartbeatTimeoutMs: 30_000, recoverAfter: 3, ...options })

const statusOf = (topology: Topology.Topology, nodeId: string): Topology.NodeStatus | undefined =>
  topology.regions.flatMap((region) => region.zones.flatMap((zone) => zone.nodes)).find((node) => node.id === nodeId)?.status

/** Takes every event already delivered to a subscription (without waiting for more). */
const drain = (subscription: TopologyManager.Subscription, count: number) =>
  Effect.forEach(Array.from({ length: count }), () => subscription.take)

describe("TopologyManager", () => {
  describe("edits", () => {
    it.effect("the changes stream starts with the current topology and follows every edit", () =>
      Effect.gen(function* () {
        const manager = yield* managerOver(threeRegions())
        const subscribed = yield* Deferred.make<void>()
        const fiber = yield* pipe(
          manager.changes,
          Stream.tap(() => Deferred.succeed(subscribed, undefined)),
          Stream.take(2),
          Stream.runCollect,
          Effect.fork
        )
        yield* Deferred.await(subscribed)
        yield* manager.addNode("eu-central-1", "eu-central-1a", { id: "e2", endpoint: "e2:50051", status: "Healthy" })
        const seen = Chunk.toReadonlyArray(yield* Fiber.join(fiber))
        expect(seen.map((topology) => statusOf(topology, "e2"))).toEqual([undefined, "Healthy"])
        expect(yield* manager.current).toBe(seen[1])
      }))

    it.effect("adding a node under an unknown region or zone fails and leaves the topology unchanged", () =>
      Effect.gen(function* () {
        const manager = yield* managerOver(threeRegions())
        const before = yield* manager.current
        const node: Topology.Node = { id: "x1", endpoint: "x1:50051", status: "Healthy" }
        const unknownRegion = yield* Effect.flip(manager.addNode("mars-1", "mars-1a", node))
        const unknownZone = yield* Effect.flip(manager.addNode("us-west-1", "us-west-1z", node))
        expect(unknownRegion.reason).toBe("UnknownRegion")
        expect(unknownZone.reason).toBe("UnknownZone")
        expect(yield* manager.current).toBe(before)
      }))

    it.effect("a node id already used in any region is rejected as a duplicate", () =>
      Effect.gen(function* () {
        const manager = yield* managerOver(threeRegions())
        const error = yield* Effect.flip(manager.addNode("us-west-1", "us-west-1a", { id: "e1", endpoint: "other:1", status: "Healthy" }))
        expect(error.reason).toBe("DuplicateNode")
      }))

    it.effect("removing or updating a node that does not exist fails with UnknownNode", () =>
      Effect.gen(function* () {
        const manager = yield* managerOver(threeRegions())
        expect((yield* Effect.flip(manager.removeNode("us-west-1", "us-west-1a", "ghost"))).reason).toBe("UnknownNode")
        expect((yield* Effect.flip(manager.updateNodeStatus("us-west-1", "us-west-1a", "ghost", "Degraded"))).reason).toBe("UnknownNode")
        expect((yield* Effect.flip(manager.recordHeartbeat("us-west-1", "us-west-1a", "ghost"))).reason).toBe("UnknownNode")
        expect((yield* Effect.flip(manager.removeZone("us-west-1", "nowhere"))).reason).toBe("UnknownZone")
        expect((yield* Effect.flip(manager.setPrimary("mars-1"))).reason).toBe("UnknownRegion")
      }))

    it.effect("a region arrives with its zones and nodes, reported in that order, and with the requested replication edges", () =>
      Effect.scoped(
        Effect.gen(function* () {
          const manager = yield* managerOver(threeRegions())
          const subscription = yield* manager.subscribe
          const region: Topology.Region = {
            id: "sa-east-1",
            name: "South America",
            isPrimary: false,
            failoverPriority: 4,
            zones: [{ id: "sa-east-1a", name: "A", nodes: [{ id: "s1", endpoint: "s1:50051", status: "Healthy" }] }]
          }
          yield* manager.addRegion(region, { targets: ["us-west-1"], sources: ["us-west-1", "eu-central-1"] })
          expect(yield* drain(subscription, 3)).toEqual([
            TopologyManager.TopologyEvent.RegionAdded({ regionId: "sa-east-1" }),
            TopologyManager.TopologyEvent.ZoneAdded({ regionId: "sa-east-1", zoneId: "sa-east-1a" }),
            TopologyManager.TopologyEvent.NodeAdded({ regionId: "sa-east-1", zoneId: "sa-east-1a", nodeId: "s1" })
          ])
          const topology = yield* manager.current
          expect(topology.replicationTargets["sa-east-1"]).toEqual(["us-west-1"])
          expect(topology.replicationTargets["us-west-1"]).toContain("sa-east-1")
          expect(topology.replicationTargets["eu-central-1"]).toContain("sa-east-1")
          expect(topology.replicationTargets["ap-southeast-1"]).not.toContain("sa-east-1")
        })
      ))

    it.effect("a region with a failover priority already in use is rejected as invalid", () =>
      Effect.gen(function* () {
        const manager = yield* managerOver(threeRegions())
        const error = yield* Effect.flip(manager.addRegion({ id: "sa-east-1", name: "SA", isPrimary: false, failoverPriority: 1, zones: [] }))
        expect(error.reason).toBe("Invalid")
        expect(error.cause?.reason).toBe("DuplicateFailoverPriority")
      }))

    it.effect("removing a region also removes its replication edges and its place in vault residency sets", () =>
      Effect.scoped(
        Effect.gen(function* () {
          const manager = yield* managerOver(threeRegions("MultiMaster"))
          const subscription = yield* manager.subscribe
          yield* manager.removeRegion("ap-southeast-1")
          const topology = yield* manager.current
          expect(topology.regions.map((region) => region.id)).toEqual(["us-west-1", "eu-central-1"])
          expect(topology.replicationTargets).toEqual({ "us-west-1": ["eu-central-1"], "eu-central-1": ["us-west-1"] })
          expect(topology.vaults.find((placement) => placement.vault === "acme")?.allowedRegions).toEqual(["eu-central-1"])
          expect(yield* drain(subscription, 3)).toEqual([
            TopologyManager.TopologyEvent.NodeRemoved({ regionId: "ap-southeast-1", zoneId: "ap-southeast-1a", nodeId: "a1" }),
            TopologyManager.TopologyEvent.ZoneRemoved({ regionId: "ap-southeast-1", zoneId: "ap-southeast-1a" }),
            TopologyManager.TopologyEvent.RegionRemoved({ regionId: "ap-southeast-1" })
          ])
        })
      ))

    it.effect("the local region, a vault's home region and the PrimaryReplica primary cannot be removed", () =>
      Effect.gen(function* () {
        const multiMaster = yield* managerOver(threeRegions("MultiMaster"))
        expect((yield* Effect.flip(multiMaster.removeRegion("us-west-1"))).reason).toBe("LocalRegion")
        expect((yield* Effect.flip(multiMaster.removeRegion("eu-central-1"))).reason).toBe("VaultHomeRegion")
        expect((yield* Effect.flip(multiMaster.removeRegion("mars-1"))).reason).toBe("UnknownRegion")
        const primaryReplica = yield* managerOver({ ...threeRegions("PrimaryReplica"), localRegion: "eu-central-1" })
        expect((yield* Effect.flip(primaryReplica.removeRegion("us-west-1"))).reason).toBe("PrimaryRegion")
      }))

    it.effect("replacing the topology with an invalid one fails with the validation error and keeps the old topology", () =>
      Effect.gen(function* () {
        const manager = yield* managerOver(threeRegions())
        const before = yield* manager.current
        const invalid: Topology.Topology = { ...before, localRegion: "mars-1" }
        const error = yield* Effect.flip(manager.replaceTopology(invalid))
        expect(error.reason).toBe("Invalid")
        expect(error.cause?.reason).toBe("UnknownLocalRegion")
        expect(yield* manager.current).toBe(before)
      }))

    it.effect("replacing the topology with a valid one emits TopologyReplaced carrying it", () =>
      Effect.scoped(
        Effect.gen(function* () {
          const manager = yield* managerOver(threeRegions())
          const subscription = yield* manager.subscribe
          const replacement = threeRegions("PrimaryReplica")
          yield* manager.replaceTopology(replacement)
          expect(yield* manager.current).toBe(replacement)
          expect(yield* subscription.take).toEqual(TopologyManager.TopologyEvent.TopologyReplaced({ topology: replacement }))
        })
      ))

    it.effect("a reloaded configuration takes the declared graph but keeps what was learned at run time: node health and the current primary", () =>
      Effect.scoped(
        Effect.gen(function* () {
          const manager = yield* managerOver(threeRegions("PrimaryReplica"))
          const subscription = yield* manager.subscribe
          yield* manager.updateNodeStatus("eu-central-1", "eu-central-1a", "e1", "Unreachable")
          yield* manager.setPrimary("eu-central-1")
          yield* drain(subscription, 2)
          const ring = { "us-west-1": ["eu-central-1"], "eu-central-1": ["ap-southeast-1"], "ap-southeast-1": ["us-west-1"] }
          const declared: Topology.Topology = { ...threeRegions("PrimaryReplica"), replicationTargets: ring }
          yield* manager.reconfigure(declared)
          const after = yield* manager.current
          expect(after.replicationTargets).toEqual(ring)
          expect(statusOf(after, "e1")).toBe("Unreachable")
          expect(after.regions.filter((region) => region.isPrimary).map((region) => region.id)).toEqual(["eu-central-1"])
          expect((yield* subscription.take)._tag).toBe("TopologyReplaced")
        })
      ))

    it.effect("under DNS discovery (keepNodes) a reload keeps the nodes found, and takes declared ones only in a region with none", () =>
      Effect.gen(function* () {
        const found = threeRegions("PrimaryReplica")
        const nodeIds = (topology: Topology.Topology) => topology.regions.flatMap((region) => region.zones.flatMap((zone) => zone.nodes.map((node) => node.id)))
        const ring = { "us-west-1": ["eu-central-1"], "eu-central-1": ["ap-southeast-1"], "ap-southeast-1": ["us-west-1"] }
        const noNodes: Topology.Topology = {
          ...found,
          replicationTargets: ring,
          regions: found.regions.map((region) => ({ ...region, zones: region.zones.map((zone) => ({ ...zone, nodes: [] })) }))
        }
        const kept = yield* managerOver(found)
        yield* kept.reconfigure(noNodes, { keepNodes: true })
        expect(nodeIds(yield* kept.current)).toEqual(["w1", "w2", "e1", "a1"])
        expect((yield* kept.current).replicationTargets).toEqual(ring)
        // A declared node is the starting point discovery replaces: not taken where it found nodes...
        const declaring = (topology: Topology.Topology): Topology.Topology => ({
          ...topology,
          regions: topology.regions.map((region) => (region.id === "eu-central-1" ? { ...region, zones: [{ ...region.zones[0]!, nodes: [{ id: "e2", endpoint: "e2:50051", status: "Healthy" as const }] }] } : region))
        })
        yield* kept.reconfigure(declaring(noNodes), { keepNodes: true })
        expect(nodeIds(yield* kept.current)).toEqual(["w1", "w2", "e1", "a1"])
        // ... but taken in a region where it found none yet.
        const empty = yield* managerOver(found)
        yield* empty.reconfigure(noNodes)
        yield* empty.reconfigure(declaring(noNodes), { keepNodes: true })
        expect(nodeIds(yield* empty.current)).toEqual(["e2"])
        // Without it the file's (empty) node lists are taken: what serve did under DNS until December 8, 2026.
        const dropped = yield* managerOver(found)
        yield* dropped.reconfigure(noNodes)
        expect(nodeIds(yield* dropped.current)).toEqual([])
      }))

    it.effect("a reload that changes the regions of a PrimaryReplica deployment, or the local region, is refused and changes nothing", () =>
      Effect.gen(function* () {
        const manager = yield* managerOver(threeRegions("PrimaryReplica"))
        const before = yield* manager.current
        const withoutAp: Topology.Topology = {
          ...before,
          regions: before.regions.filter((region) => region.id !== "ap-southeast-1"),
          replicationTargets: { "us-west-1": ["eu-central-1"], "eu-central-1": ["us-west-1"] }
        }
        expect((yield* Effect.flip(manager.reconfigure(withoutAp))).reason).toBe("Invalid")
        expect((yield* Effect.flip(manager.reconfigure({ ...before, localRegion: "eu-central-1" }))).reason).toBe("LocalRegion")
        expect(yield* manager.current).toBe(before)
      }))

    // The chaos harness's relay-tree-change on real nodes: serve refused (at the file) the ring
    // with a region removed that the simulator's nodes had taken.
    it.effect("a reload that a configuration file could not declare (a region without targets, a graph not strongly connected) is refused and changes nothing", () =>
      Effect.gen(function* () {
        const manager = yield* managerOver(threeRegions())
        const before = yield* manager.current
        const ringWithoutAp: Topology.Topology = {
          ...before,
          regions: before.regions.filter((region) => region.id !== "ap-southeast-1"),
          replicationTargets: { "us-west-1": ["eu-central-1"], "eu-central-1": [] }
        }
        const refused = yield* Effect.flip(manager.reconfigure(ringWithoutAp))
        expect([refused.reason, refused.cause?.reason]).toEqual(["Invalid", "NoTargets"])
        const oneWay: Topology.Topology = { ...before, replicationTargets: { "us-west-1": ["eu-central-1"], "eu-central-1": ["ap-southeast-1"], "ap-southeast-1": ["eu-central-1"] } }
        expect((yield* Effect.flip(manager.reconfigure(oneWay))).cause?.reason).toBe("NotStronglyConnected")
        expect(yield* manager.current).toBe(before)
        // Without its removed region and with the ring closed again, the same reload is taken.
        yield* manager.reconfigure({ ...ringWithoutAp, replicationTargets: { "us-west-1": ["eu-central-1"], "eu-central-1": ["us-west-1"] } })
        expect((yield* manager.current).regions.map((region) => region.id)).toEqual(["us-west-1", "eu-central-1"])
      }))

    it.effect("setPrimary moves the primary flag and reports the old and the new primary", () =>
      Effect.scoped(
        Effect.gen(function* () {
          const manager = yield* managerOver(threeRegions("PrimaryReplica"))
          const subscription = yield* manager.subscribe
          yield* manager.setPrimary("eu-central-1")
          yield* manager.setPrimary("eu-central-1")
          const topology = yield* manager.current
          expect(topology.regions.filter((region) => region.isPrimary).map((region) => region.id)).toEqual(["eu-central-1"])
          yield* manager.setPrimary("us-west-1")
          expect(yield* drain(subscription, 2)).toEqual([
            TopologyManager.TopologyEvent.PrimaryChanged({ oldPrimary: "us-west-1", newPrimary: "eu-central-1" }),
            TopologyManager.TopologyEvent.PrimaryChanged({ oldPrimary: "eu-central-1", newPrimary: "us-west-1" })
          ])
        })
      ))

    it.effect("a status update reports the old and the new status, and reports nothing when the status does not change", () =>
      Effect.scoped(
        Effect.gen(function* () {
          const manager = yield* managerOver(threeRegions())
          const subscription = yield* manager.subscribe
          yield* manager.updateNodeStatus("us-west-1", "us-west-1a", "w1", "Healthy")
          yield* manager.updateNodeStatus("us-west-1", "us-west-1a", "w1", "Degraded")
          yield* manager.updateNodeStatus("us-west-1", "us-west-1a", "w1", "Degraded")
          yield* manager.updateNodeStatus("us-west-1", "us-west-1a", "w1", "Healthy")
          expect(yield* drain(subscription, 2)).toEqual([
            TopologyManager.TopologyEvent.NodeStatusChanged({ regionId: "us-west-1", zoneId: "us-west-1a", nodeId: "w1", oldStatus: "Healthy", newStatus: "Degraded" }),
            TopologyManager.TopologyEvent.NodeStatusChanged({ regionId: "us-west-1", zoneId: "us-west-1a", nodeId: "w1", oldStatus: "Degraded", newStatus: "Healthy" })
          ])
          yield* manager.removeNode("us-west-1", "us-west-1a", "w2")
          expect(yield* subscription.take).toEqual(TopologyManager.TopologyEvent.NodeRemoved({ regionId: "us-west-1", zoneId: "us-west-1a", nodeId: "w2" }))
        })
      ))
  })

  describe("heartbeats", () => {
    const heartbeatAll = (manager: TopologyManager.TopologyManager["Type"]) =>
      Effect.all([
        manager.recordHeartbeat("us-west-1", "us-west-1a", "w1"),
        manager.recordHeartbeat("us-west-1", "us-west-1a", "w2"),
        manager.recordHeartbeat("eu-central-1", "eu-central-1a", "e1"),
        manager.recordHeartbeat("ap-southeast-1", "ap-southeast-1a", "a1")
      ])

    it.effect("a node whose last heartbeat is older than the timeout is marked Unreachable, and only then", () =>
      Effect.gen(function* () {
        const manager = yield* managerOver(threeRegions())
        yield* heartbeatAll(manager)
        yield* TestClock.adjust("20 seconds")
        yield* manager.recordHeartbeat("us-west-1", "us-west-1a", "w1")
        yield* TestClock.adjust("10 seconds")
        expect(yield* manager.checkStaleNodes(30_000)).toEqual([])
        yield* TestClock.adjust("1 millis")
        const stale = yield* manager.checkStaleNodes(30_000)
        expect(stale.map((ref) => ref.nodeId)).toEqual(["w2", "e1", "a1"])
        const topology = yield* manager.current
        expect(["w1", "w2", "e1", "a1"].map((id) => statusOf(topology, id))).toEqual(["Healthy", "Unreachable", "Unreachable", "Unreachable"])
      }))

    it.effect("nodes whose region, zone and node ids read the same when joined are tracked apart: a heartbeat from one keeps only that one fresh", () =>
      Effect.gen(function* () {
        // Joined with "/", both read "r/z/a/b"; each node's tracking is keyed by all three ids.
        const topology = buildOk(
          pipe(
            TopologyBuilder.make("ActiveActive", "r"),
            TopologyBuilder.addRegion({ id: "r", name: "R" }),
            TopologyBuilder.addZone("r", { id: "z" }),
            TopologyBuilder.addZone("r", { id: "z/a" }),
            TopologyBuilder.addNode("r", "z", { id: "a/b", endpoint: "ab:50051" }),
            TopologyBuilder.addNode("r", "z/a", { id: "b", endpoint: "b:50051" })
          )
        )
        const manager = yield* managerOver(topology)
        yield* TestClock.adjust("20 seconds")
        yield* manager.recordHeartbeat("r", "z", "a/b")
        yield* TestClock.adjust("10001 millis")
        expect((yield* manager.checkStaleNodes(30_000)).map((ref) => ref.nodeId)).toEqual(["b"])
        expect(statusOf(yield* manager.current, "a/b")).toBe("Healthy")
      }))

    it.effect("regions heard from now (with their last answer) and regions contact was established with: a region never heard is in neither, one heard and then lost only in the second", () =>
      Effect.gen(function* () {
        const manager = yield* managerOver(threeRegions())
        yield* manager.recordHeartbeat("us-west-1", "us-west-1a", "w1")
        yield* manager.recordHeartbeat("eu-central-1", "eu-central-1a", "e1")
        expect([...(yield* manager.heard).lastMs].sort()).toEqual([["eu-central-1", 0], ["us-west-1", 0]])
        expect([...(yield* manager.contactedRegions)].sort()).toEqual(["eu-central-1", "us-west-1"])
        yield* TestClock.adjust("31 seconds")
        yield* manager.recordHeartbeat("us-west-1", "us-west-1a", "w1")
        // e1 (heard once) and a1 (never heard, its grace over) are both Unreachable now.
        expect((yield* manager.checkStaleNodes(30_000)).map((ref) => ref.nodeId).sort()).toEqual(["a1", "e1", "w2"])
        expect([...(yield* manager.heard).lastMs]).toEqual([["us-west-1", 31_000]])
        expect([...(yield* manager.contactedRegions)].sort()).toEqual(["eu-central-1", "us-west-1"])
        // a1's first answer comes after its grace ended (a process that started late): it was never
        // reached, not flapping, so it is available and contacted at once.
        yield* manager.recordHeartbeat("ap-southeast-1", "ap-southeast-1a", "a1")
        expect(statusOf(yield* manager.current, "a1")).toBe("Healthy")
        expect([...(yield* manager.contactedRegions)].sort()).toEqual(["ap-southeast-1", "eu-central-1", "us-west-1"])
        expect([...(yield* manager.heard).lastMs.keys()].sort()).toEqual(["ap-southeast-1", "us-west-1"])
        // e1, heard once and then silent, needs recoverAfter (3) answers to be available again.
        yield* manager.recordHeartbeat("eu-central-1", "eu-central-1a", "e1")
        expect(statusOf(yield* manager.current, "e1")).toBe("Unreachable")
      }))

    it.effect("a region is heard throughout since the answer that ended its latest silence longer than the timeout, whether or not a stale check saw that silence, and not once it is silent that long", () =>
      Effect.gen(function* () {
        const manager = yield* managerOver(threeRegions())
        const since = (nowMs: number) =>
          Effect.map(manager.heard, (heard) => Object.fromEntries(["us-west-1", "eu-central-1"].map((region) => [region, TopologyManager.heardThroughoutSince(heard, region, nowMs)])))
        yield* manager.recordHeartbeat("us-west-1", "us-west-1a", "w1")
        yield* manager.recordHeartbeat("eu-central-1", "eu-central-1a", "e1")
        // Answers 30 s apart (the timeout itself) keep the region heard throughout.
        yield* TestClock.adjust("30 seconds")
        yield* manager.recordHeartbeat("us-west-1", "us-west-1a", "w1")
        yield* manager.recordHeartbeat("eu-central-1", "eu-central-1a", "e1")
        expect(yield* since(30_000)).toEqual({ "eu-central-1": 0, "us-west-1": 0 })
        // e1 is silent for 1 ms longer than the timeout and no stale check runs meanwhile: it is
        // still Healthy, but not heard throughout while silent, and after its next answer only
        // since that answer. w1 answered in the middle, and its region is heard throughout still.
        yield* TestClock.adjust("20 seconds")
        yield* manager.recordHeartbeat("us-west-1", "us-west-1a", "w1")
        expect(yield* since(60_001)).toEqual({ "eu-central-1": undefined, "us-west-1": 0 })
        yield* TestClock.adjust(30_001 - 20_000)
        yield* manager.recordHeartbeat("us-west-1", "us-west-1a", "w1")
        yield* manager.recordHeartbeat("eu-central-1", "eu-central-1a", "e1")
        expect(statusOf(yield* manager.current, "e1")).toBe("Healthy")
        expect(yield* since(60_001)).toEqual({ "eu-central-1": 60_001, "us-west-1": 0 })
        // A region counts from its node heard longest: w2's first answer does not move us-west-1.
        yield* manager.recordHeartbeat("us-west-1", "us-west-1a", "w2")
        expect((yield* since(60_001))["us-west-1"]).toBe(0)
        // A peer heard through slow answers (an allowance of 50 s) may be silent that long: 40 s
        // between two answers is no silence, and it is heard until 50 s after the last one.
        yield* manager.recordHeartbeat("eu-central-1", "eu-central-1a", "e1", 50_000)
        yield* TestClock.adjust("40 seconds")
        yield* manager.recordHeartbeat("eu-central-1", "eu-central-1a", "e1", 50_000)
        expect(yield* since(100_001 + 50_000)).toEqual({ "eu-central-1": 60_001, "us-west-1": undefined })
        expect((yield* since(100_001 + 50_001))["eu-central-1"]).toBeUndefined()
      }))

    it.effect("a declared region with no node known is awaited for the heartbeat timeout from its declaration, and no longer once a node of it is known", () =>
      Effect.gen(function* () {
        const declared = threeRegions("PrimaryReplica")
        // As `serve` starts under DNS discovery: every region declared, the nodes not known yet.
        const unknown: Topology.Topology = {
          ...declared,
          regions: declared.regions.map((region) => (region.id === "eu-central-1" ? region : { ...region, zones: region.zones.map((zone) => ({ ...zone, nodes: [] })) }))
        }
        const manager = yield* managerOver(unknown)
        expect([...(yield* manager.awaited)].sort()).toEqual(["ap-southeast-1", "us-west-1"])
        yield* TestClock.adjust("10 seconds")
        yield* manager.addNode("ap-southeast-1", "ap-southeast-1a", { id: "a1", endpoint: "a1:50051", status: "Healthy" })
        expect([...(yield* manager.awaited)]).toEqual(["us-west-1"])
        yield* TestClock.adjust(29_999 - 10_000)
        expect([...(yield* manager.awaited)]).toEqual(["us-west-1"])
        yield* TestClock.adjust("1 millis")
        expect([...(yield* manager.awaited)]).toEqual([])
        // A region added later gets its own grace from its addition.
        yield* manager.addRegion({ id: "sa-east-1", name: "South America", isPrimary: false, failoverPriority: 9, zones: [{ id: "sa-east-1a", name: "South America A", nodes: [] }] }, { sources: ["eu-central-1"] })
        expect([...(yield* manager.awaited)]).toEqual(["sa-east-1"])
        yield* TestClock.adjust("30 seconds")
        expect([...(yield* manager.awaited)]).toEqual([])
      }))

    it.effect("every node that sent a heartbeat request is listed with its latest request's time, known to the topology or not", () =>
      Effect.gen(function* () {
        const manager = yield* managerOver(threeRegions())
        yield* manager.heardRequestFrom("eu-central-1", "e1")
        yield* TestClock.adjust("2 seconds")
        yield* manager.heardRequestFrom("eu-central-1", "e9")
        yield* manager.heardRequestFrom("ap-southeast-1", "a1")
        expect(manager.requestersSince(0)).toEqual([
          { regionId: "eu-central-1", nodeId: "e1", atMs: 0 },
          { regionId: "eu-central-1", nodeId: "e9", atMs: 2_000 },
          { regionId: "ap-southeast-1", nodeId: "a1", atMs: 2_000 }
        ])
        expect(manager.requestersSince(1_000).map((requester) => requester.nodeId)).toEqual(["e9", "a1"])
        yield* manager.heardRequestFrom("eu-central-1", "e1")
        expect(manager.requestersSince(1_000).map((requester) => requester.nodeId)).toEqual(["e1", "e9", "a1"])
        // Two requesters whose region and node ids read the same joined with "/" are two.
        yield* manager.heardRequestFrom("r", "a/b")
        yield* manager.heardRequestFrom("r/a", "b")
        expect(manager.requestersSince(2_000).map((requester) => `${requester.regionId} ${requester.nodeId}`)).toEqual(["eu-central-1 e1", "eu-central-1 e9", "ap-southeast-1 a1", "r a/b", "r/a b"])
      }))

    // Edits with nothing to publish (a heartbeat from a healthy node) skip the lock. A fiber may
    // be preempted after any operation, so each edit must move the state in one atomic step:
    // one that read the state, yielded, then wrote it back would undo a concurrent edit.
    it.effect("heartbeats that skip the lock and locked structural edits lose nothing to each other, with fibers preempted every dozen operations", () =>
      Effect.gen(function* () {
        const manager = yield* managerOver(threeRegions())
        yield* TestClock.adjust("20 seconds")
        const added = Array.from({ length: 12 }, (_, index) => `x${index}`)
        // Yields after a dozen operations: any fewer and the yield's own operations yield again.
        const yieldOften = Scheduler.make((task) => queueMicrotask(task), (fiber) => (fiber.currentOpCount > 12 ? 0 : false))
        yield* Effect.all(
          [
            Effect.forEach(added, (id) => manager.addNode("eu-central-1", "eu-central-1a", { id, endpoint: `${id}:50051`, status: "Healthy" }), { discard: true }),
            Effect.forEach(added, () => heartbeatAll(manager), { discard: true })
          ],
          { concurrency: "unbounded" }
        ).pipe(Effect.withScheduler(yieldOften))
        // Every added node is in the manager's state (a lost edit fails with UnknownNode here)...
        yield* Effect.forEach(added, (id) => manager.recordHeartbeat("eu-central-1", "eu-central-1a", id), { discard: true })
        // ...and every heartbeat of the original nodes at 20 s counted: none is stale at 35 s.
        yield* TestClock.adjust("15 seconds")
        expect(yield* manager.checkStaleNodes(30_000)).toEqual([])
      }))

    it.effect("a node heard over a slow link with a longer allowance is stale only once the allowance has passed", () =>
      Effect.gen(function* () {
        const manager = yield* managerOver(threeRegions())
        yield* heartbeatAll(manager)
        yield* manager.recordHeartbeat("eu-central-1", "eu-central-1a", "e1", 45_000)
        yield* TestClock.adjust("30001 millis")
        expect((yield* manager.checkStaleNodes(30_000)).map((ref) => ref.nodeId)).toEqual(["w1", "w2", "a1"])
        yield* TestClock.adjust("15 seconds")
        expect((yield* manager.checkStaleNodes(30_000)).map((ref) => ref.nodeId)).toEqual(["e1"])
      }))

    it.effect("a node that never sends a heartbeat is marked Unreachable once the grace period from manager creation has passed", () =>
      Effect.gen(function* () {
        const manager = yield* managerOver(threeRegions())
        yield* TestClock.adjust("30 seconds")
        expect(yield* manager.checkStaleNodes()).toEqual([])
        yield* TestClock.adjust("1 millis")
        expect((yield* manager.checkStaleNodes()).map((ref) => ref.nodeId)).toEqual(["w1", "w2", "e1", "a1"])
      }))

    it.effect("a node added later gets its grace period from when it was added", () =>
      Effect.gen(function* () {
        const manager = yield* managerOver(threeRegions())
        yield* TestClock.adjust("20 seconds")
        yield* manager.addNode("eu-central-1", "eu-central-1a", { id: "e2", endpoint: "e2:50051", status: "Healthy" })
        yield* TestClock.adjust("20 seconds")
        const first = yield* manager.checkStaleNodes()
        expect(first.map((ref) => ref.nodeId)).toEqual(["w1", "w2", "e1", "a1"])
        yield* TestClock.adjust("11 seconds")
        expect((yield* manager.checkStaleNodes()).map((ref) => ref.nodeId)).toEqual(["e2"])
      }))

    it.effect("a stale node needs recoverAfter consecutive heartbeats to become Healthy again; one heartbeat does not revive it", () =>
      Effect.scoped(
        Effect.gen(function* () {
          const manager = yield* managerOver(threeRegions())
          const subscription = yield* manager.subscribe
          // e1 answered once (a node that never answered comes back at its first answer).
          yield* manager.recordHeartbeat("eu-central-1", "eu-central-1a", "e1")
          yield* TestClock.adjust("31 seconds")
          yield* manager.checkStaleNodes()
          yield* drain(subscription, 4)
          for (const expected of ["Unreachable", "Unreachable", "Healthy"] as const) {
            yield* manager.recordHeartbeat("eu-central-1", "eu-central-1a", "e1")
            expect(statusOf(yield* manager.current, "e1")).toBe(expected)
            yield* TestClock.adjust("5 seconds")
          }
          expect(yield* subscription.take).toEqual(
            TopologyManager.TopologyEvent.NodeStatusChanged({ regionId: "eu-central-1", zoneId: "eu-central-1a", nodeId: "e1", oldStatus: "Unreachable", newStatus: "Healthy" })
          )
        })
      ))

    it.effect("heartbeats further apart than the timeout do not count as consecutive", () =>
      Effect.gen(function* () {
        const manager = yield* managerOver(threeRegions(), { recoverAfter: 2 })
        yield* manager.recordHeartbeat("eu-central-1", "eu-central-1a", "e1")
        yield* TestClock.adjust("31 seconds")
        yield* manager.checkStaleNodes()
        yield* manager.recordHeartbeat("eu-central-1", "eu-central-1a", "e1")
        yield* TestClock.adjust("31 seconds")
        yield* manager.recordHeartbeat("eu-central-1", "eu-central-1a", "e1")
        expect(statusOf(yield* manager.current, "e1")).toBe("Unreachable")
        yield* TestClock.adjust("1 seconds")
        yield* manager.recordHeartbeat("eu-central-1", "eu-central-1a", "e1")
        expect(statusOf(yield* manager.current, "e1")).toBe("Healthy")
      }))

    it.effect("the agent's cues: a heartbeat answer or request opens the region's hearing gate; its return to availability opens its returning gate, and nothing else does", () =>
      Effect.gen(function* () {
        const manager = yield* managerOver(threeRegions(), { recoverAfter: 1 })
        const heard = yield* manager.heardFrom("eu-central-1")
        const elsewhere = yield* manager.heardFrom("ap-southeast-1")
        yield* manager.recordHeartbeat("eu-central-1", "eu-central-1a", "e1")
        expect([heard.isOpen, elsewhere.isOpen]).toEqual([true, false])
        // A gate is for the next answer only: one taken now waits for another.
        const again = yield* manager.heardFrom("eu-central-1")
        expect(again.isOpen).toBe(false)
        // A heartbeat the region sends this node opens it too, and changes no status: only an
        // answer shows that this node reaches the peer.
        const statusBefore = (yield* manager.current).regions.map((region) => JSON.stringify(region))
        const node = yield* manager.heardFromNode("eu-central-1", "e1")
        const otherNode = yield* manager.heardFromNode("ap-southeast-1", "a1")
        // Node ids need only be unique within a region: the same id elsewhere is another node.
        const sameIdElsewhere = yield* manager.heardFromNode("ap-southeast-1", "e1")
        yield* manager.heardRequestFrom("eu-central-1", "e1")
        expect([again.isOpen, elsewhere.isOpen, node.isOpen, otherNode.isOpen, sameIdElsewhere.isOpen]).toEqual([true, false, true, false, false])
        expect((yield* manager.current).regions.map((region) => JSON.stringify(region))).toEqual(statusBefore)
        // A node's gate opens with its answers too.
        const answeredNode = yield* manager.heardFromNode("eu-central-1", "e1")
        yield* manager.recordHeartbeat("eu-central-1", "eu-central-1a", "e1")
        expect([answeredNode.isOpen, otherNode.isOpen]).toEqual([true, false])

        // Available, then a change that keeps it available: no return.
        const returning = yield* manager.returning("eu-central-1")
        yield* manager.updateNodeStatus("eu-central-1", "eu-central-1a", "e1", "Degraded")
        expect(returning.isOpen).toBe(false)
        yield* manager.updateNodeStatus("eu-central-1", "eu-central-1a", "e1", "Unreachable")
        expect(returning.isOpen).toBe(false)
        const other = yield* manager.returning("ap-southeast-1")
        yield* manager.updateNodeStatus("eu-central-1", "eu-central-1a", "e1", "Healthy")
        expect([returning.isOpen, other.isOpen]).toEqual([true, false])
      }))

    it.effect("heartbeats do not override a status set explicitly by a health check", () =>
      Effect.gen(function* () {
        const manager = yield* managerOver(threeRegions(), { recoverAfter: 1 })
        yield* manager.updateNodeStatus("eu-central-1", "eu-central-1a", "e1", "Degraded")
        yield* manager.recordHeartbeat("eu-central-1", "eu-central-1a", "e1")
        yield* manager.recordHeartbeat("eu-central-1", "eu-central-1a", "e1")
        expect(statusOf(yield* manager.current, "e1")).toBe("Degraded")
      }))

    it.effect("the stale-check loop demotes silent nodes on its own schedule", () =>
      Effect.gen(function* () {
        const manager = yield* managerOver(threeRegions())
        const loop = yield* Effect.fork(manager.runStaleChecks(5_000))
        yield* heartbeatAll(manager)
        yield* TestClock.adjust("25 seconds")
        yield* manager.recordHeartbeat("us-west-1", "us-west-1a", "w1")
        yield* TestClock.adjust("10 seconds")
        const topology = yield* manager.current
        expect(["w1", "w2", "e1", "a1"].map((id) => statusOf(topology, id))).toEqual(["Healthy", "Unreachable", "Unreachable", "Unreachable"])
        yield* Fiber.interrupt(loop)
      }))
  })

  describe("subscribers", () => {
    it.effect("a subscriber that reads nothing until the end still receives every event, in order", () =>
      Effect.scoped(
        Effect.gen(function* () {
          const manager = yield* managerOver(threeRegions(), { subscriberEventsMax: 1024 })
          const slow = yield* manager.subscribe
          for (let round = 0; round < 100; round++) {
            yield* manager.updateNodeStatus("eu-central-1", "eu-central-1a", "e1", round % 2 === 0 ? "Degraded" : "Healthy")
          }
          const events = yield* drain(slow, 100)
          expect(events.map((event) => (event._tag === "NodeStatusChanged" ? event.newStatus : event._tag))).toEqual(
            Array.from({ length: 100 }, (_, round) => (round % 2 === 0 ? "Degraded" : "Healthy"))
          )
        })
      ))

    it.effect("a subscriber that overflows its buffer is told how many events it missed, then gets a snapshot, then later events", () =>
      Effect.scoped(
        Effect.gen(function* () {
          const manager = yield* managerOver(threeRegions(), { subscriberEventsMax: 4 })
          const slow = yield* manager.subscribe
          const fast = yield* manager.subscribe
          const fastSeen = yield* Effect.fork(drain(fast, 10))
          for (let round = 0; round < 10; round++) {
            yield* manager.updateNodeStatus("eu-central-1", "eu-central-1a", "e1", round % 2 === 0 ? "Degraded" : "Healthy")
            yield* Effect.yieldNow()
          }
          expect((yield* Fiber.join(fastSeen)).every((event) => event._tag === "NodeStatusChanged")).toBe(true)
          const buffered = yield* drain(slow, 4)
          expect(buffered.every((event) => event._tag === "NodeStatusChanged")).toBe(true)
          expect(yield* slow.take).toEqual(TopologyManager.TopologyEvent.Lagged({ missed: 6 }))
          const snapshot = yield* slow.take
          expect(snapshot).toEqual(TopologyManager.TopologyEvent.TopologyReplaced({ topology: yield* manager.current }))
          yield* manager.removeNode("eu-central-1", "eu-central-1a", "e1")
          expect(yield* slow.take).toEqual(TopologyManager.TopologyEvent.NodeRemoved({ regionId: "eu-central-1", zoneId: "eu-central-1a", nodeId: "e1" }))
        })
      ))
  })
})
