/**
 * A configuration reload on real processes: SIGHUP re-reads `serve`'s file and applies its
 * topology through the node's TopologyManager, so a new replication target is shipped to at
 * once, without a restart; a file that no longer decodes is reported and changes nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as fs from "node:fs"
import * as path from "node:path"
import * as ApiClient from "../../src/runtime/ApiClient.js"
import * as Serve from "./fixtures/serveProcess.js"

const REGIONS = ["us-west-1", "eu-central-1", "ap-southeast-1"] as const
const VAULT = "acme"
/** Bound of every wait; generous, since the machine may be loaded by other work. */
const waitMs = 30_000

const targetsYaml = (targets: Readonly<Record<string, ReadonlyArray<string>>>): string =>
  ["replication_targets:", ...Object.entries(targets).flatMap(([region, list]) => [`  ${region}:`, ...list.map((target) => `    - ${target}`)])].join("\n")

const ring = { "us-west-1": ["eu-central-1"], "eu-central-1": ["ap-southeast-1"], "ap-southeast-1": ["us-west-1"] }
const chorded = { ...ring, "us-west-1": ["eu-central-1", "ap-southeast-1"] }

interface Node {
  readonly ports: Serve.RegionPorts
  readonly configFile: string
  readonly process: Serve.ServeProcess
  readonly client: ApiClient.ApiClient
}

describe("serve reloads its topology on SIGHUP", () => {
  let dir = ""
  let ports: ReadonlyArray<Serve.RegionPorts> = []
  const nodes = new Map<string, Node>()
  const node = (region: string): Node => nodes.get(region)!
  const writeConfig = (region: string, text: string) => fs.writeFileSync(path.join(dir, `${region}.yaml`), text)

  beforeAll(async () => {
    dir = Serve.tempDir("reload")
    ports = await Serve.allocate(REGIONS)
    for (const entry of ports) {
      writeConfig(entry.region, Serve.clusterYaml(ports, entry.region, { extra: targetsYaml(ring) }))
      const configFile = path.join(dir, `${entry.region}.yaml`)
      const process = Serve.spawnServe(["--config", configFile, "--http-port", String(entry.httpPort), "--data-dir", path.join(dir, "data", entry.region), "--seed", "7"])
      nodes.set(entry.region, { ports: entry, configFile, process, client: ApiClient.make(`127.0.0.1:${entry.grpcPort}`, { token: Serve.token }) })
    }
    await Promise.all([...nodes.values()].map((entry) => Serve.awaitReady(entry.process, entry.ports.httpPort)))
  }, 60_000)

  afterAll(async () => {
    for (const entry of nodes.values()) entry.client.close()
    await Promise.all([...nodes.values()].map((entry) => Serve.stop(entry.process, 3_000)))
    if (dir !== "") fs.rmSync(dir, { recursive: true, force: true })
  }, 20_000)

  const has = (region: string, subject: string) => async () =>
    (await node(region).client.read(VAULT, "document:reload")).some((tuple) => tuple.subject === subject)

  it("a target added to the file reaches the agent on SIGHUP: us-west-1 ships to ap-southeast-1 while eu-central-1, the ring's relay, is down", async () => {
    await node("us-west-1").client.insert(VAULT, [{ resource: "document:reload", relation: "viewer", subject: "user:around-the-ring" }])
    expect(await Serve.eventually(has("ap-southeast-1", "user:around-the-ring"), waitMs), "relayed by eu-central-1").toBe(true)
    await Serve.stop(node("eu-central-1").process, 5_000)
    await node("us-west-1").client.insert(VAULT, [{ resource: "document:reload", relation: "viewer", subject: "user:over-the-chord" }])
    writeConfig("us-west-1", "replication: [not, a, mapping\n")
    node("us-west-1").process.child.kill("SIGHUP")
    expect(await Serve.eventually(() => node("us-west-1").process.stderr().includes("SIGHUP: invalid configuration"), waitMs)).toBe(true)
    for (const region of ["us-west-1", "ap-southeast-1"]) {
      writeConfig(region, Serve.clusterYaml(ports, region, { extra: targetsYaml(chorded) }))
      node(region).process.child.kill("SIGHUP")
    }
    expect(await Serve.eventually(() => node("us-west-1").process.output().includes("replication targets eu-central-1, ap-southeast-1"), waitMs)).toBe(true)
    expect(await Serve.eventually(has("ap-southeast-1", "user:over-the-chord"), waitMs), "shipped over the new edge").toBe(true)
    expect(node("us-west-1").process.child.exitCode).toBeNull()
  }, 90_000)
})
