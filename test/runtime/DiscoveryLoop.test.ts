/**
 * `serve`'s discovery loop driven by an injected resolver: a `discovery.mode: dns`
 * configuration whose regions start empty, DNS answers that change at run time, and the
 * node's TopologyManager following them, keeping its last topology while DNS fails.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Layer, Logger, Ref, TestClock } from "effect"
import * as Config from "../../src/runtime/config/Config.js"
import * as Discovery from "../../src/replication/Discovery.js"
import * as Topology from "../../src/replication/Topology.js"
import * as TopologyManager from "../../src/replication/TopologyManager.js"
import * as DiscoveryLoop from "../../src/runtime/DiscoveryLoop.js"

const intervalMs = 1_000
const headless = "inferadb-engine-headless.us-west-1.svc.cluster.local"
const euName = "inferadb-engine-eu-central-1-0.eu-central-1.ts.net"

const yaml = `
engine:
  replication:
    enabled: true
    strategy: ActiveActive
    local_region: us-west-1
    node_id: inferadb-engine-us-west-1-0
    grpc:
      listen: 0.0.0.0:8081
    discovery:
      mode: dns
      interval_ms: ${intervalMs}
      targets:
        - region: us-west-1
          service: inferadb-engine-headless
          namespace: us-west-1
          port: 8081
        - region: eu-central-1
          hostname: ${euName}
          port: 8081
    regions:
      - id: us-west-1
        zones:
          - id: us-west-1a
      - id: eu-central-1
`

const config = (): Config.ReplicationConfig => {
  const decoded = Config.parse(yaml)
  if (Either.isLeft(decoded)) throw new Error(decoded.left.message)
  return decoded.right
}

type Answers = Readonly<Record<string, ReadonlyArray<Discovery.DnsRecord>>>

const pod = (index: number): Discovery.DnsRecord => ({ address: `10.0.0.${10 + index}`, hostname: `inferadb-engine-us-west-1-${index}.${headless}` })
const eu: Discovery.DnsRecord = { address: "100.64.0.7", hostname: euName }

/** A resolver answering from a table the test changes; a name missing from it fails. */
const tableResolver = (answers: Ref.Ref<Answers>): Layer.Layer<Discovery.DnsResolver> =>
  Layer.succeed(Discovery.DnsResolver, {
    resolve: (hostname) =>
      Effect.flatMap(Ref.get(answers), (table) =>
        table[hostname] === undefined ? Effect.fail(new Discovery.DiscoveryError({ hostname, message: `no answer for '${hostname}'` })) : Effect.succeed(table[hostname]!)
      )
  })

/** `region/zone/node -> endpoint` of every node. */
const nodes = (topology: Topology.Topology) =>
  topology.regions.flatMap((region) => region.zones.flatMap((zone) => zone.nodes.map((node) => `${region.id}/${zone.id}/${node.id} -> ${node.endpoint}`)))

/** Lets the loop run until it finished `rounds` rounds in all, moving the test clock by the interval. */
const awaitRounds = (stats: Ref.Ref<Discovery.SyncStats>, rounds: number) =>
  Effect.gen(function* () {
    for (let step = 0; step < 1_000 && (yield* Ref.get(stats)).rounds < rounds; step++) yield* TestClock.adjust(intervalMs / 10)
    expect((yield* Ref.get(stats)).rounds).toBeGreaterThanOrEqual(rounds)
  })

describe("DiscoveryLoop", () => {
  it.effect("nodes that appear and vanish in DNS reach the TopologyManager, and a failed lookup keeps the last topology", () =>
    Effect.gen(function* () {
      const settings = config()
      const answers = yield* Ref.make<Answers>({ [headless]: [pod(0), pod(1)], [euName]: [eu] })
      const logged: Array<string> = []
      const logger = Logger.replace(Logger.defaultLogger, Logger.make(({ logLevel, message }) => void logged.push(`${logLevel.label} ${[message].flat().join(" ")}`)))
      const layer = Layer.mergeAll(TopologyManager.layer(settings.topology), tableResolver(answers), logger)
      yield* Effect.scoped(
        Effect.gen(function* () {
          const manager = yield* TopologyManager.TopologyManager
          const stats = yield* DiscoveryLoop.start(settings.discovery)
          // The first round finished before start returned: a bootstrap would see these peers.
          expect((yield* Ref.get(stats)).rounds).toBe(1)
          const first = yield* manager.current
          expect(nodes(first)).toEqual([
            `us-west-1/us-west-1a/us-west-1/inferadb-engine-us-west-1-0 -> http://${pod(0).hostname}:8081`,
            `us-west-1/us-west-1a/us-west-1/inferadb-engine-us-west-1-1 -> http://${pod(1).hostname}:8081`,
            `eu-central-1/eu-central-1/eu-central-1/inferadb-engine-eu-central-1-0 -> http://${euName}:8081`
          ])
          // The node's own id (the pod name qualified by its region) is one of the discovered nodes.
          expect(Topology.regionNodes(Topology.findRegion(first, "us-west-1")!).map((node) => node.id)).toContain(settings.nodeId)

          // A pod is added and another removed (a scale-up and a rescheduled pod).
          yield* Ref.set(answers, { [headless]: [pod(0), pod(2)], [euName]: [eu] })
          yield* awaitRounds(stats, 2)
          expect(nodes(yield* manager.current).filter((line) => line.startsWith("us-west-1/"))).toEqual([
            `us-west-1/us-west-1a/us-west-1/inferadb-engine-us-west-1-0 -> http://${pod(0).hostname}:8081`,
            `us-west-1/us-west-1a/us-west-1/inferadb-engine-us-west-1-2 -> http://${pod(2).hostname}:8081`
          ])

          // DNS fails for the peer's name: nothing is removed, the failure is counted.
          const before = yield* manager.current
          yield* Ref.set(answers, { [headless]: [pod(0)] })
          yield* awaitRounds(stats, 4)
          expect(yield* manager.current).toEqual(before)
          expect(yield* Ref.get(stats)).toMatchObject({ failures: 2, lastError: `no answer for '${euName}'` })

          // DNS answers again: the next round applies it.
          yield* Ref.set(answers, { [headless]: [pod(0)], [euName]: [eu] })
          yield* awaitRounds(stats, 5)
          expect(nodes(yield* manager.current)).toEqual([
            `us-west-1/us-west-1a/us-west-1/inferadb-engine-us-west-1-0 -> http://${pod(0).hostname}:8081`,
            `eu-central-1/eu-central-1/eu-central-1/inferadb-engine-eu-central-1-0 -> http://${euName}:8081`
          ])

          // Each change is logged once; the two failed rounds make one warning, then one recovery.
          expect(logged).toEqual([
            "INFO discovery: added eu-central-1/inferadb-engine-eu-central-1-0 (zone eu-central-1), us-west-1/inferadb-engine-us-west-1-0 (zone us-west-1a), us-west-1/inferadb-engine-us-west-1-1 (zone us-west-1a)",
            "INFO discovery: added us-west-1/inferadb-engine-us-west-1-2 (zone us-west-1a); removed us-west-1/inferadb-engine-us-west-1-1 (zone us-west-1a)",
            `WARN discovery sync failed; keeping the current topology until a round works: no answer for '${euName}'`,
            "INFO discovery recovered: a sync round works again",
            "INFO discovery: removed us-west-1/inferadb-engine-us-west-1-2 (zone us-west-1a)"
          ])
        }).pipe(Effect.provide(layer))
      )
    }))

  it("the startup log line says where the nodes come from", () => {
    expect(DiscoveryLoop.describe(config().discovery)).toBe(
      `discovery: dns every ${intervalMs} ms, us-west-1 <- ${headless}:8081, eu-central-1 <- ${euName}:8081`
    )
    expect(DiscoveryLoop.describe(Config.defaults.discovery)).toBe("discovery: static (the nodes declared in regions)")
  })
})
