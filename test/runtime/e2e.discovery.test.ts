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

/** A configuration that names no node: every region is found through DNS at run time. */
const discoveryYaml = (ports: ReadonlyArray<Serve.RegionPorts>, local: Serve.RegionPorts): string =>
  [
    "replication:",
    "  enabled: true",
    "  strategy: ActiveActive",
    `  local_region: ${local.region}`,
    // Discovery names the node after the DNS name (`<region>/localhost`); the bare id is qualified.
    "  node_id: localhost",
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
    ...ports.flatMap((entry) => [`      - region: ${entry.region}`, "        hostname: localhost", `        port: ${entry.grpcPort}`]),
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
})
