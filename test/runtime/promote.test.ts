/**
 * The operator's `inferadb-repl promote` on real processes: a two-region PrimaryReplica
 * deployment never fails over on its own, so with its primary down, writes stay refused in the
 * other region until the operator promotes it; then that region takes them.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import * as ApiClient from "../../src/runtime/ApiClient.js"
import * as Serve from "./fixtures/serveProcess.js"
import { cli } from "../fixtures/cli.js"

const REGIONS = ["us-west-1", "eu-central-1"]
const VAULT = "acme"


const writes = async (client: ApiClient.ApiClient, subject: string): Promise<boolean> =>
  client.insert(VAULT, [{ resource: "document:promoted", relation: "viewer", subject }]).then(
    () => true,
    () => false
  )

describe("inferadb-repl promote", () => {
  const dir = Serve.tempDir("promote")
  const processes: Array<Serve.ServeProcess> = []
  const clients: Array<ApiClient.ApiClient> = []

  afterAll(async () => {
    for (const client of clients) client.close()
    await Promise.all(processes.map((process) => Serve.stop(process, 3_000)))
    fs.rmSync(dir, { recursive: true, force: true })
  }, 20_000)

  it("moves the primary of a two-region deployment whose primary is down, and only then does the other region take writes", async () => {
    const ports = await Serve.allocate(REGIONS)
    for (const entry of ports) {
      const configFile = path.join(dir, `${entry.region}.yaml`)
      fs.writeFileSync(configFile, Serve.clusterYaml(ports, entry.region, { strategy: "PrimaryReplica" }))
      processes.push(Serve.spawnServe(["--config", configFile, "--http-port", String(entry.httpPort), "--data-dir", path.join(dir, entry.region)]))
      clients.push(ApiClient.make(`127.0.0.1:${entry.grpcPort}`, { token: Serve.token }))
    }
    await Promise.all(processes.map((process, index) => Serve.awaitReady(process, ports[index]!.httpPort)))
    const [west, europe] = clients as [ApiClient.ApiClient, ApiClient.ApiClient]
    expect(await Serve.eventually(() => writes(west, "user:before"), 10_000)).toBe(true)
    expect((await west.insert(VAULT, [{ resource: "document:promoted", relation: "viewer", subject: "user:epoch-0" }])).epoch).toBe(0)
    expect(await writes(europe, "user:not-primary")).toBe(false)

    // The primary goes away for good; the other region must not promote itself.
    processes[0]!.child.kill("SIGKILL")
    await processes[0]!.exited
    const waitedMs = 3_000 + 10_000 + 2_000 // heartbeat timeout + the default detection delay + slack
    expect(await Serve.eventually(() => writes(europe, "user:too-early"), waitedMs, 500)).toBe(false)

    const europeAddress = `127.0.0.1:${ports[1]!.grpcPort}`
    const denied = await cli(["promote", "--address", europeAddress, "--token", "wrong-token"])
    expect(denied.code).toBe(1)
    const promoted = await cli(["promote", "--address", europeAddress, "--token", Serve.token, "--json"])
    expect(promoted.code, promoted.stderr).toBe(0)
    expect(JSON.parse(promoted.stdout)).toMatchObject({ primary: "eu-central-1", changed: true })
    expect(await Serve.eventually(() => writes(europe, "user:after-promote"), 10_000)).toBe(true)
    expect(processes[1]!.output()).toMatch(/operator promotion: eu-central-1 becomes primary of epoch \d+/)
    // The controller logs the change of view once, as it happens; the monitor's next look (up to
    // a second later) counts it and sets the role gauges in the same step; /healthz follows.
    const httpPort = ports[1]!.httpPort
    expect(await Serve.eventually(() => /promoted: this region is primary of epoch \d+/.test(processes[1]!.output()), 5_000)).toBe(true)
    expect(processes[1]!.output().match(/promoted: this region is primary of epoch/g)).toHaveLength(1)
    const counted = 'inferadb_engine_replication_failover_events_total{event="promoted"} 1\n'
    expect(await Serve.eventually(async () => (await Serve.httpGet(httpPort, "/metrics")).body.includes(counted), 5_000)).toBe(true)
    const exposition = (await Serve.httpGet(httpPort, "/metrics")).body
    expect(exposition).toContain(counted)
    expect(exposition).toContain('inferadb_engine_replication_primary{region="eu-central-1"} 1\n')
    const role = (JSON.parse((await Serve.httpGet(httpPort, "/healthz")).body) as { details: { replication: { role: unknown } } }).details.replication.role
    expect(role).toMatchObject({ strategy: "PrimaryReplica", primary: "eu-central-1", epoch: JSON.parse(promoted.stdout).epoch, writable: true })
    // Each write's answer names the epoch the node took it in, which the chaos judge reads.
    const after = await europe.insert(VAULT, [{ resource: "document:promoted", relation: "viewer", subject: "user:epoch" }])
    expect(after.epoch).toBe(JSON.parse(promoted.stdout).epoch)
    expect(after.epoch).toBeGreaterThan(0)
    const again = await cli(["promote", "--address", europeAddress, "--token", Serve.token])
    expect(again.stdout).toMatch(/already was primary/)
  }, 90_000)
})
