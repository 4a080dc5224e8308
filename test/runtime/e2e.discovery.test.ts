/**
 * End to end with real processes and real DNS: two `serve` nodes whose configurations declare
 * their regions without any node and `discovery.mode: dns`, each region resolved through
 * `localhost` (a name of /etc/hosts on every machine) on its own port. Neither node knows the
 * other but through discovery; a write taken by one must reach the other.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as path from "node:path"
import * as ApiClient from "../../src/runtime/ApiClient.js"
import * as Serve from "./fixtures/serveProcess.js"

const REGIONS = ["us-west-1", "eu-central-1"] as const
const VAULT = "acme"
/** Bound of every wait for replication; generous, since the machine may be loaded by other work. */
const convergenceTimeoutMs = 30_000

interface Node {
  readonly ports: Serve.RegionPorts
  readonly process: Serve.ServeProcess
  readonly client: ApiClient.ApiClient
}

/**
 * A configuration that names no node: every region is found through DNS at run time, each
 * through `hostOf(region)` (`localhost` unless told otherwise) on its own gRPC port.
 */
const discoveryYaml = (ports: ReadonlyArray<Serve.RegionPorts>, local: Serve.RegionPorts, hostOf: (region: string) => string = () => "localhost"): string =>
  [
    "replication:",
    "  enabled: true",
    "  strategy: ActiveActive",
    `  local_region: ${local.region}`,
    // Discovery names the node after its DNS name's first label (`<region>/localhost`); the bare id is qualified.
    `  node_id: ${hostOf(local.region).split(".")[0]}`,
    "  agent:",
    "    retry_delay_ms: 20",
    "    retry_delay_max_ms: 300",
    "    request_timeout_secs: 2",
    "  heartbeat:",
    "    interval_ms: 200",
    "    timeout_ms: 3000",
    "    recover_after: 2",
    "  security:",
    "    mode: token",
    `    token: ${Serve.token}`,
    "  grpc:",
    `    listen: 127.0.0.1:${local.grpcPort}`,
    "  discovery:",
    "    mode: dns",
    "    interval_ms: 200",
    "    targets:",
    ...ports.flatMap((entry) => [`      - region: ${entry.region}`, `        hostname: ${hostOf(entry.region)}`, `        port: ${entry.grpcPort}`]),
    "  regions:",
    ...ports.flatMap((entry) => [`    - id: ${entry.region}`, "      zones:", `        - id: ${entry.region}a`])
  ].join("\n") + "\n"

describe("serve with DNS discovery, two regions on loopback", () => {
  let dir = ""
  const nodes = new Map<string, Node>()
  const node = (region: string): Node => nodes.get(region)!

  beforeAll(async () => {
    dir = Serve.tempDir("e2e-discovery")
    const ports = await Serve.allocate(REGIONS)
    for (const entry of ports) {
      const configFile = path.join(dir, `${entry.region}.yaml`)
      fs.writeFileSync(configFile, discoveryYaml(ports, entry))
      const process = Serve.spawnServe([
        "--config", configFile, "--http-port", String(entry.httpPort), "--data-dir", path.join(dir, "data", entry.region), "--seed", "11"
      ])
      nodes.set(entry.region, { ports: entry, process, client: ApiClient.make(`127.0.0.1:${entry.grpcPort}`, { token: Serve.token }) })
    }
    await Promise.all([...nodes.values()].map((entry) => Serve.awaitReady(entry.process, entry.ports.httpPort, 40_000)))
  }, 60_000)

  afterAll(async () => {
    for (const entry of nodes.values()) entry.client.close()
    await Promise.all([...nodes.values()].map((entry) => Serve.stop(entry.process, 3_000)))
    if (dir !== "") fs.rmSync(dir, { recursive: true, force: true })
  }, 20_000)

  it("each node logs where its nodes come from and the nodes DNS gave it, itself included, once", () => {
    const west = node("us-west-1")
    const output = west.process.output()
    expect(output).toContain("node id: us-west-1/localhost")
    expect(output).toContain(`discovery: dns every 200 ms, us-west-1 <- localhost:${west.ports.grpcPort}, eu-central-1 <- localhost:${node("eu-central-1").ports.grpcPort}`)
    const added = output.split("\n").filter((line) => line.includes("discovery: added"))
    expect(added, output).toHaveLength(1)
    expect(added[0]).toContain("eu-central-1/localhost (zone eu-central-1a), us-west-1/localhost (zone us-west-1a)")
  })

  it("a write taken by one region reaches the other, which it knows only through discovery", async () => {
    await node("us-west-1").client.write(VAULT, [{ op: "insert", resource: "doc:discovered", relation: "viewer", subject: "user:ada" }])
    const arrived = await Serve.eventually(
      async () => (await node("eu-central-1").client.read(VAULT, "doc:discovered")).some((tuple) => tuple.subject === "user:ada"),
      convergenceTimeoutMs,
      100
    )
    expect(arrived, node("eu-central-1").process.output()).toBe(true)
    const health = JSON.parse((await Serve.httpGet(node("eu-central-1").ports.httpPort, "/healthz")).body) as { readonly status: string }
    expect(health.status).not.toBe("unhealthy")
  }, convergenceTimeoutMs + 5_000)

  it("SIGTERM: the node runs a discovery round, drains to the peers it then knows and exits 0", async () => {
    const west = node("us-west-1")
    await west.client.write(VAULT, [{ op: "insert", resource: "doc:before-stop", relation: "viewer", subject: "user:bo" }])
    const rounds = (text: string) => text.split("\n").filter((line) => line.includes("discovery round before the drain failed")).length
    const exit = await Serve.stop(west.process, 10_000)
    expect(exit, west.process.output()).toEqual({ code: 0, signal: null })
    expect(west.process.output()).toMatch(/drained: every target acknowledged the log up to position \d+/)
    // The round worked (DNS answers here): no warning that it failed.
    expect(rounds(west.process.output())).toBe(0)
  }, 20_000)
})

/** Root may add names to /etc/hosts for the test; elsewhere the run-time scenario is skipped. */
const canEditHosts = (() => {
  try {
    fs.accessSync("/etc/hosts", fs.constants.W_OK)
    return process.getuid?.() === 0
  } catch {
    return false
  }
})()

describe.skipIf(!canEditHosts)("serve with DNS discovery, a peer whose name appears in /etc/hosts at run time (needs root, skipped otherwise)", () => {
  const peerName = `inferadb-e2e-discovery-${process.pid}.invalid`
  const hostsLine = `127.0.0.1 ${peerName}`
  const hostOf = (region: string) => (region === "eu-central-1" ? peerName : "localhost")
  let dir = ""
  const nodes = new Map<string, Node>()
  const node = (region: string): Node => nodes.get(region)!

  // Only the line this test added is removed, whatever else changed the file meanwhile.
  const removeHostsLine = () => {
    const lines = fs.readFileSync("/etc/hosts", "utf8").split("\n")
    fs.writeFileSync("/etc/hosts", lines.filter((line) => line !== hostsLine).join("\n"))
  }

  beforeAll(async () => {
    dir = Serve.tempDir("e2e-discovery-hosts")
    const ports = await Serve.allocate(REGIONS)
    for (const entry of ports) {
      const configFile = path.join(dir, `${entry.region}.yaml`)
      fs.writeFileSync(configFile, discoveryYaml(ports, entry, hostOf))
      const process = Serve.spawnServe([
        "--config", configFile, "--http-port", String(entry.httpPort), "--data-dir", path.join(dir, "data", entry.region), "--seed", "12"
      ])
      nodes.set(entry.region, { ports: entry, process, client: ApiClient.make(`127.0.0.1:${entry.grpcPort}`, { token: Serve.token }) })
    }
    await Promise.all([...nodes.values()].map((entry) => Serve.awaitReady(entry.process, entry.ports.httpPort, 40_000)))
  }, 60_000)

  afterAll(async () => {
    removeHostsLine()
    if (nodes.has("eu-central-1")) node("eu-central-1").process.child.kill("SIGCONT")
    for (const entry of nodes.values()) entry.client.close()
    await Promise.all([...nodes.values()].map((entry) => Serve.stop(entry.process, 3_000)))
    if (dir !== "") fs.rmSync(dir, { recursive: true, force: true })
  }, 20_000)

  it("a write waits for a peer DNS does not know yet, is shipped once the name resolves, and replication goes on when DNS fails again", async () => {
    const west = node("us-west-1")
    const east = node("eu-central-1")
    // While the peer's name does not resolve, every round fails and changes nothing.
    expect(await Serve.eventually(() => west.process.output().includes("discovery sync failed; keeping the current topology"), convergenceTimeoutMs)).toBe(true)
    await west.client.write(VAULT, [{ op: "insert", resource: "doc:early", relation: "viewer", subject: "user:ada" }])

    fs.appendFileSync("/etc/hosts", `${fs.readFileSync("/etc/hosts", "utf8").endsWith("\n") ? "" : "\n"}${hostsLine}\n`)
    const readable = async (resource: string, subject: string) => (await east.client.read(VAULT, resource)).some((tuple) => tuple.subject === subject)
    expect(await Serve.eventually(() => readable("doc:early", "user:ada"), convergenceTimeoutMs, 100), west.process.output()).toBe(true)
    // The log lines may reach this process after the write reached the peer (a busy machine
    // read the node's output later than the peer answered): wait for them too.
    const logged = (line: string) => Serve.eventually(() => west.process.output().includes(line), convergenceTimeoutMs)
    expect(await logged("discovery recovered: a sync round works again"), west.process.output()).toBe(true)
    expect(await logged(`added eu-central-1/${peerName.split(".")[0]} (zone eu-central-1a), us-west-1/localhost (zone us-west-1a)`), west.process.output()).toBe(true)

    // The name vanishes again: the rounds fail, the last topology stays, and writes still arrive.
    removeHostsLine()
    const warnings = () => west.process.output().split("\n").filter((line) => line.includes("discovery sync failed")).length
    expect(await Serve.eventually(() => warnings() === 2, convergenceTimeoutMs)).toBe(true)
    await west.client.write(VAULT, [{ op: "insert", resource: "doc:late", relation: "viewer", subject: "user:grace" }])
    expect(await Serve.eventually(() => readable("doc:late", "user:grace"), convergenceTimeoutMs, 100), west.process.output()).toBe(true)

    // The peer stalls past the heartbeat timeout while the name still does not resolve: the
    // channel to it is rebuilt (a missed deadline on a silent channel), and the new one must dial
    // the address the name last had. Before `DialAddress` the new channel could not resolve the
    // name, and replication stayed down until DNS answered again (a CI run hit it by chance).
    const unreachable = () => west.process.output().split("\n").filter((line) => line.includes("region eu-central-1 is unreachable")).length
    const unreachableBefore = unreachable()
    east.process.child.kill("SIGSTOP")
    try {
      expect(await Serve.eventually(() => unreachable() > unreachableBefore, convergenceTimeoutMs), west.process.output()).toBe(true)
    } finally {
      east.process.child.kill("SIGCONT")
    }
    await west.client.write(VAULT, [{ op: "insert", resource: "doc:after-stall", relation: "viewer", subject: "user:alan" }])
    expect(await Serve.eventually(() => readable("doc:after-stall", "user:alan"), convergenceTimeoutMs, 100), west.process.output()).toBe(true)
    expect(west.process.output()).toContain(`peer name '${peerName}' does not resolve (ENOTFOUND); new channels dial the addresses it last had, ipv4:127.0.0.1:`)
    const metrics = (await Serve.httpGet(west.ports.httpPort, "/metrics")).body
    expect(metrics).toContain(`inferadb_engine_replication_peer_dialled_at_last_address{host="${peerName}"} 1`)
    expect(west.process.output()).not.toContain("discovery: removed")
  }, 4 * convergenceTimeoutMs)

  it("SIGTERM while no discovery round works: the drain is not complete, says the siblings are unknown, and the node exits 0 once it timed out", async () => {
    // The name still does not resolve (the test above removed it). A node whose rounds all fail
    // cannot know which siblings it must drain to; before December 6, 2026 one that knew none
    // reported its drain complete at once (swarm seed 62000390).
    const west = node("us-west-1")
    const exit = await Serve.stop(west.process, 20_000)
    expect(exit, west.process.output()).toEqual({ code: 0, signal: null })
    const output = west.process.output()
    expect(output).toContain("discovery round before the drain failed; the drain is not complete until one works")
    expect(output).toMatch(/drain timed out after \d+ ms: no discovery round worked, so the siblings to drain to are unknown/)
    expect(output).not.toMatch(/drained: every target acknowledged/)
  }, 30_000)
})
