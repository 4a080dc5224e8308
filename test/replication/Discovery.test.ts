import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Fiber, Layer, Ref, TestClock } from "effect"
import * as Discovery from "../../src/replication/Discovery.js"
import type * as Topology from "../../src/replication/Topology.js"
import * as TopologyManager from "../../src/replication/TopologyManager.js"

const config: Discovery.TopologyConfig = { localRegion: "us-west-1", strategy: "ActiveActive", defaultZone: "default" }

const seedEndpoints: ReadonlyArray<Discovery.DiscoveredEndpoint> = [
  { endpoint: "http://engine-eu.tailnet:8081", regionId: "eu-central-1", nodeId: "node-eu-0", zoneId: "eu-central-1a", health: "Healthy" },
  { endpoint: "http://engine-1.engine-headless:8081", regionId: "us-west-1", nodeId: "node-1" },
  { endpoint: "http://engine-0.engine-headless:8081", regionId: "us-west-1", nodeId: "node-0" }
]

const buildOk = (endpoints: ReadonlyArray<Discovery.DiscoveredEndpoint>, settings: Discovery.TopologyConfig = config): Topology.Topology => {
  const result = Discovery.buildTopology(settings, endpoints)
  if (Either.isLeft(result)) throw new Error(`expected a topology, got: ${result.left.message}`)
  return result.right
}

/** A resolver answering from a mutable table; a name missing from it fails to resolve. */
const fakeResolver = (answers: Ref.Ref<Readonly<Record<string, ReadonlyArray<Discovery.DnsRecord>>>>): Layer.Layer<Discovery.DnsResolver> =>
  Layer.succeed(Discovery.DnsResolver, {
    resolve: (hostname) =>
      Effect.flatMap(Ref.get(answers), (table) => {
        const records = table[hostname]
        return records === undefined ? Effect.fail(new Discovery.DiscoveryError({ hostname, message: `no such host '${hostname}'` })) : Effect.succeed(records)
      })
  })

const westService = Discovery.kubernetesHeadless({ regionId: "us-west-1", service: "inferadb-engine-headless", namespace: "inferadb", port: 8081 })
const euTailnet = Discovery.tailscaleMagicDns({ regionId: "eu-central-1", serviceName: "inferadb-engine", tailscaleDomain: "eu-central-1.ts.net", port: 8081, zoneId: "eu-central-1a" })

const discoverWith = (answers: Readonly<Record<string, ReadonlyArray<Discovery.DnsRecord>>>, targets: ReadonlyArray<Discovery.DnsTarget>) =>
  Effect.gen(function* () {
    const table = yield* Ref.make(answers)
    const source = yield* Effect.provide(Discovery.EndpointSource, Discovery.layerDns({ targets }).pipe(Layer.provide(fakeResolver(table))))
    return yield* source.discover
  })

const nodeIds = (topology: Topology.Topology) =>
  topology.regions.flatMap((region) => region.zones.flatMap((zone) => zone.nodes.map((node) => `${region.id}/${zone.id}/${node.id}:${node.status}`)))

describe("Discovery", () => {
  describe("endpoint sources", () => {
    it.effect("the static source returns its endpoints sorted by region, zone and node id", () =>
      Effect.gen(function* () {
        const source = yield* Effect.provide(Discovery.EndpointSource, Discovery.layerStatic(seedEndpoints))
        const endpoints = yield* source.discover
        expect(endpoints.map((endpoint) => endpoint.nodeId)).toEqual(["node-eu-0", "node-0", "node-1"])
      }))

    it.effect("a Kubernetes headless service yields one endpoint per pod, named after the pod and qualified by its region", () =>
      Effect.gen(function* () {
        expect(westService.hostname).toBe("inferadb-engine-headless.inferadb.svc")
        const endpoints = yield* discoverWith(
          {
            "inferadb-engine-headless.inferadb.svc": [
              { address: "10.0.0.12", hostname: "inferadb-engine-1.inferadb-engine-headless.inferadb.svc.cluster.local" },
              { address: "10.0.0.11", hostname: "inferadb-engine-0.inferadb-engine-headless.inferadb.svc.cluster.local" },
              { address: "10.0.0.11", hostname: "inferadb-engine-0.inferadb-engine-headless.inferadb.svc.cluster.local" }
            ]
          },
          [westService]
        )
        expect(endpoints).toEqual([
          {
            endpoint: "http://inferadb-engine-0.inferadb-engine-headless.inferadb.svc.cluster.local:8081",
            regionId: "us-west-1",
            nodeId: "us-west-1/inferadb-engine-0"
          },
          {
            endpoint: "http://inferadb-engine-1.inferadb-engine-headless.inferadb.svc.cluster.local:8081",
            regionId: "us-west-1",
            nodeId: "us-west-1/inferadb-engine-1"
          }
        ])
      }))

    it.effect("an answer without a host name gets a node id derived from its address, and IPv6 is bracketed in the URL", () =>
      Effect.gen(function* () {
        const endpoints = yield* discoverWith({ "inferadb-engine-headless.inferadb.svc": [{ address: "10.0.0.7" }, { address: "fd00::7" }] }, [westService])
        expect(endpoints.map((endpoint) => [endpoint.nodeId, endpoint.endpoint])).toEqual([
          ["us-west-1/10-0-0-7", "http://10.0.0.7:8081"],
          ["us-west-1/fd00--7", "http://[fd00::7]:8081"]
        ])
      }))

    it.effect("a Tailscale MagicDNS name resolves into the nodes of its region and zone", () =>
      Effect.gen(function* () {
        expect(euTailnet.hostname).toBe("inferadb-engine.eu-central-1.ts.net")
        const endpoints = yield* discoverWith(
          {
            "inferadb-engine-headless.inferadb.svc": [{ address: "10.0.0.11", hostname: "inferadb-engine-0.x" }],
            "inferadb-engine.eu-central-1.ts.net": [{ address: "100.64.0.5", hostname: "inferadb-engine.eu-central-1.ts.net" }]
          },
          [westService, euTailnet]
        )
        expect(endpoints).toEqual([
          {
            endpoint: "http://inferadb-engine.eu-central-1.ts.net:8081",
            regionId: "eu-central-1",
            nodeId: "eu-central-1/inferadb-engine",
            zoneId: "eu-central-1a"
          },
          { endpoint: "http://inferadb-engine-0.x:8081", regionId: "us-west-1", nodeId: "us-west-1/inferadb-engine-0" }
        ])
      }))

    it.effect("when one DNS name fails to resolve, discovery fails as a whole instead of returning a partial list", () =>
      Effect.gen(function* () {
        const error = yield* Effect.flip(discoverWith({ "inferadb-engine-headless.inferadb.svc": [{ address: "10.0.0.11" }] }, [westService, euTailnet]))
        expect(error.hostname).toBe("inferadb-engine.eu-central-1.ts.net")
      }))
  })

  describe("buildTopology", () => {
    it("groups endpoints into regions and zones, puts unzoned nodes in the default zone and meshes every region", () => {
      const topology = buildOk(seedEndpoints)
      expect(nodeIds(topology)).toEqual(["eu-central-1/eu-central-1a/node-eu-0:Healthy", "us-west-1/default/node-0:Healthy", "us-west-1/default/node-1:Healthy"])
      expect(topology.replicationTargets).toEqual({ "eu-central-1": ["us-west-1"], "us-west-1": ["eu-central-1"] })
      expect(topology.regions.map((region) => [region.id, region.failoverPriority, region.isPrimary])).toEqual([
        ["eu-central-1", 1, false],
        ["us-west-1", 2, false]
      ])
    })

    it("applies reported health, configured priorities and the configured primary", () => {
      const topology = buildOk(
        [{ ...seedEndpoints[0]!, health: "Degraded" }, ...seedEndpoints.slice(1)],
        { ...config, strategy: "PrimaryReplica", primaryRegion: "us-west-1", failoverPriorities: { "us-west-1": 1, "eu-central-1": 2 } }
      )
      expect(nodeIds(topology)[0]).toBe("eu-central-1/eu-central-1a/node-eu-0:Degraded")
      expect(topology.regions.map((region) => [region.id, region.failoverPriority, region.isPrimary])).toEqual([
        ["eu-central-1", 2, false],
        ["us-west-1", 1, true]
      ])
    })

    it("refuses to guess a primary under PrimaryReplica and rejects a node reported twice", () => {
      const noPrimary = Discovery.buildTopology({ ...config, strategy: "PrimaryReplica" }, seedEndpoints)
      expect(Either.isLeft(noPrimary) && noPrimary.left.reason).toBe("PrimaryCount")
      const twice = Discovery.buildTopology(config, [...seedEndpoints, { endpoint: "http://other:8081", regionId: "eu-central-1", nodeId: "node-0" }])
      expect(Either.isLeft(twice) && twice.left.reason).toBe("DuplicateNode")
    })
  })

  describe("sync", () => {
    const westOnly = buildOk(seedEndpoints.filter((endpoint) => endpoint.regionId === "us-west-1"))
    const run = <A, E>(initial: Topology.Topology, body: Effect.Effect<A, E, TopologyManager.TopologyManager>) =>
      Effect.provide(body, TopologyManager.layer(initial))

    it.effect("adds new nodes, creating their region (fully meshed) and zone, and removes vanished ones, in sorted order", () =>
      run(
        westOnly,
        Effect.gen(function* () {
          const manager = yield* TopologyManager.TopologyManager
          const fresh: ReadonlyArray<Discovery.DiscoveredEndpoint> = [
            seedEndpoints[0]!,
            { endpoint: "http://engine-0.engine-headless:8081", regionId: "us-west-1", nodeId: "node-0" },
            { endpoint: "http://engine-2.engine-headless:8081", regionId: "us-west-1", nodeId: "node-2", zoneId: "us-west-1b" }
          ]
          const summary = yield* Discovery.sync(fresh, { defaultZone: "default" })
          expect(summary).toEqual({
            added: [
              { regionId: "eu-central-1", zoneId: "eu-central-1a", nodeId: "node-eu-0" },
              { regionId: "us-west-1", zoneId: "us-west-1b", nodeId: "node-2" }
            ],
            removed: [{ regionId: "us-west-1", zoneId: "default", nodeId: "node-1" }],
            statusChanged: []
          })
          const topology = yield* manager.current
          expect(nodeIds(topology)).toEqual(["us-west-1/default/node-0:Healthy", "us-west-1/us-west-1b/node-2:Healthy", "eu-central-1/eu-central-1a/node-eu-0:Healthy"])
          expect(topology.replicationTargets).toEqual({ "us-west-1": ["eu-central-1"], "eu-central-1": ["us-west-1"] })
          expect(topology.regions.find((region) => region.id === "eu-central-1")?.failoverPriority).toBe(2)
          expect(yield* Discovery.sync(fresh, { defaultZone: "default" })).toEqual({ added: [], removed: [], statusChanged: [] })
        })
      ))

    it.effect("applies reported health only where it differs from the current status", () =>
      run(
        buildOk(seedEndpoints),
        Effect.gen(function* () {
          const manager = yield* TopologyManager.TopologyManager
          const reported = seedEndpoints.map((endpoint) => (endpoint.nodeId === "node-1" ? { ...endpoint, health: "Unreachable" as const } : endpoint))
          const summary = yield* Discovery.sync(reported, { defaultZone: "default" })
          expect(summary.statusChanged).toEqual([{ regionId: "us-west-1", zoneId: "default", nodeId: "node-1" }])
          expect(nodeIds(yield* manager.current)).toContain("us-west-1/default/node-1:Unreachable")
        })
      ))

    it.effect("replaces a node whose endpoint changed, and reuses a vanished node's endpoint for a new node", () =>
      run(
        westOnly,
        Effect.gen(function* () {
          const manager = yield* TopologyManager.TopologyManager
          const summary = yield* Discovery.sync(
            [
              { endpoint: "http://engine-0.new-address:8081", regionId: "us-west-1", nodeId: "node-0" },
              { endpoint: "http://engine-1.engine-headless:8081", regionId: "us-west-1", nodeId: "node-1b" }
            ],
            { defaultZone: "default" }
          )
          expect(summary.added.map((ref) => ref.nodeId)).toEqual(["node-0", "node-1b"])
          expect(summary.removed.map((ref) => ref.nodeId)).toEqual(["node-0", "node-1"])
          const nodes = (yield* manager.current).regions[0]?.zones[0]?.nodes ?? []
          expect(nodes.map((node) => [node.id, node.endpoint])).toEqual([
            ["node-0", "http://engine-0.new-address:8081"],
            ["node-1b", "http://engine-1.engine-headless:8081"]
          ])
        })
      ))

    it.effect("a node reported twice is a discovery error and changes nothing", () =>
      run(
        westOnly,
        Effect.gen(function* () {
          const manager = yield* TopologyManager.TopologyManager
          const before = yield* manager.current
          const error = yield* Effect.flip(Discovery.sync([...seedEndpoints, { ...seedEndpoints[0]!, regionId: "ap-southeast-1" }], { defaultZone: "default" }))
          expect(error._tag).toBe("DiscoveryError")
          expect(yield* manager.current).toBe(before)
        })
      ))

    it.effect("the sync loop survives a failed discovery, counts it, and applies the next good answer", () =>
      withSyncLoop({}, ({ answers, stats, manager, loop }) =>
        Effect.gen(function* () {
          yield* TestClock.adjust("1 millis")
          expect(yield* Ref.get(stats)).toMatchObject({ rounds: 1, failures: 1 })
          expect(nodeIds(yield* manager.current)).toEqual(["us-west-1/default/us-west-1/seed:Healthy"])
          yield* Ref.set(answers, { "inferadb-engine-headless.inferadb.svc": [{ address: "10.0.0.11", hostname: "inferadb-engine-0.svc" }] })
          yield* TestClock.adjust("10 seconds")
          expect(yield* Ref.get(stats)).toMatchObject({ rounds: 2, failures: 1 })
          expect(nodeIds(yield* manager.current)).toEqual(["us-west-1/default/us-west-1/inferadb-engine-0:Healthy"])
          yield* Fiber.interrupt(loop)
        })
      ))

    it.effect("a heartbeat request from a node the topology lacks cues a round a gap after the last one; a known node's does not", () =>
      withSyncLoop({ "inferadb-engine-headless.inferadb.svc": [{ address: "10.0.0.11", hostname: "inferadb-engine-0.svc" }] }, ({ answers, stats, manager, loop }) =>
        Effect.gen(function* () {
          yield* TestClock.adjust("1 millis")
          expect(yield* Ref.get(stats)).toMatchObject({ rounds: 1, failures: 0 })
          // A node that started since asks this one; DNS has it now.
          yield* Ref.set(answers, {
            "inferadb-engine-headless.inferadb.svc": [
              { address: "10.0.0.11", hostname: "inferadb-engine-0.svc" },
              { address: "10.0.0.12", hostname: "inferadb-engine-1.svc" }
            ]
          })
          yield* TestClock.adjust("100 millis")
          // A node the topology holds asks: nothing is cued.
          yield* manager.heardRequestFrom("us-west-1", "us-west-1/inferadb-engine-0")
          yield* TestClock.adjust(`${Discovery.strangerRoundGapMs} millis`)
          expect(yield* Ref.get(stats)).toMatchObject({ rounds: 1 })
          // The newcomer asks: a round follows a gap later, long before the interval.
          yield* manager.heardRequestFrom("us-west-1", "us-west-1/inferadb-engine-1")
          yield* TestClock.adjust(`${Discovery.strangerRoundGapMs - 1} millis`)
          expect(yield* Ref.get(stats)).toMatchObject({ rounds: 1 })
          yield* TestClock.adjust("1 millis")
          expect(yield* Ref.get(stats)).toMatchObject({ rounds: 2 })
          expect(nodeIds(yield* manager.current)).toEqual(["us-west-1/default/us-west-1/inferadb-engine-0:Healthy", "us-west-1/default/us-west-1/inferadb-engine-1:Healthy"])
          // A node of a region the topology does not hold is nobody this node could discover.
          yield* manager.heardRequestFrom("eu-central-1", "eu-central-1/inferadb-engine-0")
          yield* TestClock.adjust(`${2 * Discovery.strangerRoundGapMs} millis`)
          expect(yield* Ref.get(stats)).toMatchObject({ rounds: 2 })
          yield* Fiber.interrupt(loop)
        })
      ))
  })
})

type DnsAnswers = Readonly<Record<string, ReadonlyArray<Discovery.DnsRecord>>>

/**
 * A topology manager that knows one seed node of us-west-1, a DNS fake answering `first` until
 * the test sets other answers, and the sync loop (rounds 10 s apart) forked over them.
 */
const withSyncLoop = <A, E>(
  first: DnsAnswers,
  body: (loop: {
    readonly answers: Ref.Ref<DnsAnswers>
    readonly stats: Ref.Ref<Discovery.SyncStats>
    readonly manager: TopologyManager.TopologyManager["Type"]
    readonly loop: Fiber.RuntimeFiber<never, never>
  }) => Effect.Effect<A, E>
) =>
  Effect.gen(function* () {
    const answers = yield* Ref.make<DnsAnswers>(first)
    const stats = yield* Ref.make(Discovery.emptyStats)
    const initial = buildOk([{ endpoint: "http://seed:8081", regionId: "us-west-1", nodeId: "us-west-1/seed" }])
    const layers = Layer.mergeAll(TopologyManager.layer(initial), Discovery.layerDns({ targets: [westService] }).pipe(Layer.provide(fakeResolver(answers))))
    return yield* Effect.gen(function* () {
      const manager = yield* TopologyManager.TopologyManager
      const loop = yield* Effect.fork(Discovery.runSync(10_000, { defaultZone: "default", stats }))
      return yield* body({ answers, stats, manager, loop })
    }).pipe(Effect.provide(layers))
  })
