/**
 * The `discovery:` section of the configuration: static (the nodes in `regions`, the default)
 * or DNS at run time, the targets it resolves, the node id form it implies, and the errors
 * naming the key path of every mistake.
 */
import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import * as Config from "../../../src/runtime/config/Config.js"
import type * as ConfigError from "../../../src/runtime/config/ConfigError.js"
import * as Topology from "../../../src/replication/Topology.js"

const decode = (section: unknown, env: Record<string, string> = {}) => Config.fromObject({ engine: { replication: section } }, env)

const decodeOk = (section: unknown, env: Record<string, string> = {}): Config.ReplicationConfig => {
  const result = decode(section, env)
  if (Either.isLeft(result)) throw new Error(`expected a valid configuration, got: ${result.left.message}`)
  return result.right
}

const decodeError = (section: unknown, env: Record<string, string> = {}): ConfigError.ConfigError => {
  const result = decode(section, env)
  if (Either.isRight(result)) throw new Error("expected the configuration to be rejected")
  expect(result.left.message).toContain(result.left.path)
  return result.left
}

/** Two regions declared without nodes, found through a headless Service and a MagicDNS name. */
const dnsSection = (): Record<string, any> => ({
  enabled: true,
  strategy: "ActiveActive",
  local_region: "us-west-1",
  node_id: "inferadb-engine-us-west-1-0",
  grpc: { listen: "0.0.0.0:8081" },
  discovery: {
    mode: "dns",
    interval_ms: 5000,
    targets: [
      { region: "us-west-1", service: "inferadb-engine-headless", namespace: "us-west-1", port: 8081 },
      { region: "eu-central-1", hostname: "inferadb-engine-eu-central-1-0.eu-central-1.ts.net", port: 8081, zone: "eu-central-1b" }
    ]
  },
  regions: [
    { id: "us-west-1", zones: [{ id: "us-west-1a" }] },
    { id: "eu-central-1", zones: [{ id: "eu-central-1a" }] }
  ]
})

const staticSection = (): Record<string, any> => ({
  enabled: true,
  strategy: "ActiveActive",
  local_region: "us-west-1",
  regions: [
    { id: "us-west-1", zones: [{ id: "us-west-1a", nodes: [{ id: "node1", endpoint: "127.0.0.1:50051" }] }] },
    { id: "eu-central-1", zones: [{ id: "eu-central-1a", nodes: [{ id: "node2", endpoint: "127.0.0.1:50052" }] }] }
  ]
})

describe("Config discovery", () => {
  it("a file without a discovery section is static, as before, and still refuses a peer region without nodes", () => {
    expect(decodeOk(staticSection()).discovery).toEqual({ mode: "static", intervalMs: 10_000, targets: [] })
    const section = staticSection()
    section.regions[1].zones[0].nodes = []
    expect(decodeError(section).path).toBe("engine.replication.regions[1].zones[0].nodes")
  })

  it("under dns, regions may start without nodes and every target becomes a DNS name with its zone", () => {
    const config = decodeOk(dnsSection())
    expect(config.discovery).toEqual({
      mode: "dns",
      intervalMs: 5000,
      targets: [
        { regionId: "us-west-1", hostname: "inferadb-engine-headless.us-west-1.svc.cluster.local", port: 8081, zoneId: "us-west-1a" },
        { regionId: "eu-central-1", hostname: "inferadb-engine-eu-central-1-0.eu-central-1.ts.net", port: 8081, zoneId: "eu-central-1b" }
      ]
    })
    expect(config.topology.regions.map((region) => [region.id, Topology.regionNodes(region).length])).toEqual([
      ["us-west-1", 0],
      ["eu-central-1", 0]
    ])
  })

  it("a service target names its cluster domain, and a region without zones puts its nodes in a zone named after it", () => {
    const section = dnsSection()
    section.discovery.targets[0].cluster_domain = "k8s.example.com"
    section.regions[1] = { id: "eu-central-1" }
    section.discovery.targets[1].zone = undefined
    const targets = decodeOk(section).discovery.targets
    expect(targets[0]!.hostname).toBe("inferadb-engine-headless.us-west-1.svc.k8s.example.com")
    expect(targets[1]!.zoneId).toBe("eu-central-1")
  })

  it("under dns the node id takes the form discovery gives it, <region>/<pod name>, from a bare pod name", () => {
    expect(decodeOk(dnsSection()).nodeId).toBe("us-west-1/inferadb-engine-us-west-1-0")
    const section = dnsSection()
    delete section.node_id
    expect(decodeOk(section, { INFERADB__ENGINE__NODE_ID: "inferadb-engine-us-west-1-2" }).nodeId).toBe("us-west-1/inferadb-engine-us-west-1-2")
    section.node_id = "us-west-1/already-qualified"
    expect(decodeOk(section).nodeId).toBe("us-west-1/already-qualified")
    expect(decodeOk(staticSection(), { INFERADB__ENGINE__NODE_ID: "node1" }).nodeId).toBe("node1")
  })

  it("the mode and the interval can be set from the environment", () => {
    const section = dnsSection()
    delete section.discovery.mode
    const config = decodeOk(section, { INFERADB__ENGINE__REPLICATION__DISCOVERY__MODE: "dns", INFERADB__ENGINE__REPLICATION__DISCOVERY__INTERVAL_MS: "2500" })
    expect(config.discovery.mode).toBe("dns")
    expect(config.discovery.intervalMs).toBe(2500)
  })

  describe("mistakes name the key path", () => {
    const cases: ReadonlyArray<readonly [string, (section: Record<string, any>) => void, string, string]> = [
      ["an unknown mode", (section) => (section.discovery.mode = "consul"), "engine.replication.discovery.mode", "static or dns"],
      ["an interval under 100 ms", (section) => (section.discovery.interval_ms = 10), "engine.replication.discovery.interval_ms", "an integer >= 100"],
      ["an unknown key in a target", (section) => (section.discovery.targets[0].srv = true), "engine.replication.discovery.targets[0].srv", "one of the keys region, hostname"],
      ["a port out of range", (section) => (section.discovery.targets[1].port = 70000), "engine.replication.discovery.targets[1].port", "from 1 to 65535"],
      ["a host name with a space", (section) => (section.discovery.targets[1].hostname = "bad name"), "engine.replication.discovery.targets[1].hostname", "a DNS name"],
      ["an undeclared region", (section) => (section.discovery.targets[1].region = "ap-south-1"), "engine.replication.discovery.targets[1].region", "one of the declared regions"],
      ["a hostname next to a service", (section) => (section.discovery.targets[0].hostname = "x.example.com"), "engine.replication.discovery.targets[0].service", "no Kubernetes service settings next to hostname"],
      ["a service without its namespace", (section) => delete section.discovery.targets[0].namespace, "engine.replication.discovery.targets[0].namespace", "the namespace"],
      ["a target with no name at all", (section) => (section.discovery.targets[1] = { region: "eu-central-1", port: 8081 }), "engine.replication.discovery.targets[1]", "a hostname, or a Kubernetes headless service"],
      ["a region no target resolves", (section) => section.discovery.targets.pop(), "engine.replication.discovery.targets", "missing 'eu-central-1'"],
      ["no node id", (section) => delete section.node_id, "engine.replication.node_id", "INFERADB__ENGINE__NODE_ID"],
      ["a node id qualified with another region", (section) => (section.node_id = "eu-central-1/x"), "engine.replication.node_id", "'us-west-1/<label>'"],
      ["no grpc.listen", (section) => delete section.grpc, "engine.replication.grpc.listen", "an address to bind when discovery.mode is dns"],
      ["targets under static", (section) => (section.discovery.mode = "static"), "engine.replication.discovery.targets", "no targets while discovery.mode is static"]
    ]
    it.each(cases)("%s", (_, change, path, expected) => {
      const section = dnsSection()
      change(section)
      const error = decodeError(section)
      expect(error.path).toBe(path)
      expect(error.expected).toContain(expected)
    })

    it("a bad interval from the environment names the variable", () => {
      const error = decodeError(dnsSection(), { INFERADB__ENGINE__REPLICATION__DISCOVERY__INTERVAL_MS: "soon" })
      expect(error.path).toBe("INFERADB__ENGINE__REPLICATION__DISCOVERY__INTERVAL_MS")
    })
  })
})
