/**
 * Operating a node, on real `serve` processes: a stopped peer shows in the backlog metrics, the
 * growing lag and `/healthz` within `health.lag_ms_max`, and its recovery clears them; the
 * failure streak is logged once when it starts and once when it ends; logs carry time, level,
 * region and node (pretty and JSON); gRPC health checking follows readiness and reflection
 * lists our services; the command line writes, reads and checks through the public API.
 */
import * as grpc from "@grpc/grpc-js"
import * as protoLoader from "@grpc/proto-loader"
import * as fs from "node:fs"
import { createRequire } from "node:module"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as ApiClient from "../../src/runtime/ApiClient.js"
import * as GrpcHealth from "../../src/runtime/GrpcHealth.js"
import { cli } from "../fixtures/cli.js"
import * as Serve from "./fixtures/serveProcess.js"
import { seedMetrics } from "./fixtures/seedMetrics.js"

const REGIONS = ["us-west-1", "eu-central-1"]
const VAULT = "acme"
const LAG_MS_MAX = 1_500

/** The value of one sample of `name` with `labels` in an exposition, or undefined. */
const sample = (exposition: string, name: string, labels = ""): number | undefined => {
  const line = exposition.split("\n").find((candidate) => candidate.startsWith(`${name}${labels === "" ? " " : `{${labels}} `}`))
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(" ") + 1))
}

interface HealthBody {
  readonly status: string
  readonly details: {
    readonly replication: {
      readonly status: string
      readonly reason?: string
      readonly targets: ReadonlyArray<{ readonly target: string; readonly unshipped_changes: number; readonly oldest_unshipped_age_ms: number; readonly lag_ms: number }>
      readonly role: { readonly strategy: string; readonly epoch: number; readonly primary: string | null; readonly writable: boolean }
    }
  }
}

const health = async (port: number): Promise<HealthBody> => JSON.parse((await Serve.httpGet(port, "/healthz")).body) as HealthBody
const metrics = async (port: number): Promise<string> => (await Serve.httpGet(port, "/metrics")).body

const require = createRequire(import.meta.url)
const healthDefinition = protoLoader.loadSync(path.join(path.dirname(require.resolve("grpc-health-check")), "../../proto/health/v1/health.proto"), { keepCase: true, enums: String })
const HealthClient = (grpc.loadPackageDefinition(healthDefinition) as unknown as { grpc: { health: { v1: { Health: typeof grpc.Client } } } }).grpc.health.v1.Health

const check = (address: string, service: string): Promise<string> =>
  new Promise((resolve, reject) => {
    const client = new HealthClient(address, grpc.credentials.createInsecure()) as grpc.Client & {
      check: (request: { service: string }, options: grpc.CallOptions, callback: (error: grpc.ServiceError | null, response?: { status: string }) => void) => void
    }
    client.check({ service }, { deadline: new Date(Date.now() + 5_000) }, (error, response) => {
      client.close()
      return error === null ? resolve(response!.status) : reject(error)
    })
  })

describe("operating a node", () => {
  const dir = Serve.tempDir("operations")
  const processes: Array<Serve.ServeProcess> = []
  let ports: ReadonlyArray<Serve.RegionPorts> = []
  let west: ApiClient.ApiClient

  beforeAll(async () => {
    ports = await Serve.allocate(REGIONS)
    for (const entry of ports) {
      const configFile = path.join(dir, `${entry.region}.yaml`)
      fs.writeFileSync(configFile, Serve.clusterYaml(ports, entry.region, { extra: `health:\n  lag_ms_max: ${LAG_MS_MAX}` }))
      const format = entry.region === "eu-central-1" ? ["--log-format", "json"] : []
      processes.push(Serve.spawnServe(["--config", configFile, "--http-port", String(entry.httpPort), "--data-dir", path.join(dir, entry.region), ...format]))
    }
    await Promise.all(processes.map((process, index) => Serve.awaitReady(process, ports[index]!.httpPort)))
    west = ApiClient.make(`127.0.0.1:${ports[0]!.grpcPort}`, { token: Serve.token })
  }, 60_000)

  afterAll(async () => {
    west?.close()
    for (const process of processes) if (process.child.signalCode === null && process.child.exitCode === null) process.child.kill("SIGCONT")
    await Promise.all(processes.map((process) => Serve.stop(process, 3_000)))
    fs.rmSync(dir, { recursive: true, force: true })
  }, 20_000)

  it("a stopped peer shows as unshipped changes, a growing lag and a degraded /healthz within lag_ms_max; its return clears them", async () => {
    const [westPorts] = ports as [Serve.RegionPorts, Serve.RegionPorts]
    const target = 'target="eu-central-1"'
    await west.insert(VAULT, [{ resource: "document:before", relation: "viewer", subject: "user:alice" }])
    expect(await Serve.eventually(async () => sample(await metrics(westPorts.httpPort), "inferadb_engine_replication_unshipped_changes", target) === 0, 10_000)).toBe(true)
    expect((await health(westPorts.httpPort)).status).toBe("healthy")

    processes[1]!.child.kill("SIGSTOP")
    const stoppedAtMs = Date.now()
    await west.insert(VAULT, [{ resource: "document:during", relation: "viewer", subject: "user:bob" }])
    let degradedAfterMs = 0
    expect(
      await Serve.eventually(async () => {
        const body = await health(westPorts.httpPort)
        degradedAfterMs = Date.now() - stoppedAtMs
        return body.status === "degraded" && (body.details.replication.reason ?? "").includes("unshipped")
      }, LAG_MS_MAX + 5_000)
    ).toBe(true)
    // Degraded from the age of the unshipped change (the reason says so), well before five
    // failed sends (2 s each) would count; the slack absorbs a busy machine.
    expect(degradedAfterMs).toBeLessThan(LAG_MS_MAX + 2_000)
    const degraded = await health(westPorts.httpPort)
    const backlog = degraded.details.replication.targets.find((entry) => entry.target === "eu-central-1")!
    expect(backlog.unshipped_changes).toBeGreaterThanOrEqual(1)
    expect(backlog.oldest_unshipped_age_ms).toBeGreaterThan(LAG_MS_MAX)

    // The lag gauge grows while nothing is acknowledged (the monitor refreshes it every second).
    const firstLag = sample(await metrics(westPorts.httpPort), "inferadb_engine_replication_lag_milliseconds", target) ?? 0
    expect(
      await Serve.eventually(async () => (sample(await metrics(westPorts.httpPort), "inferadb_engine_replication_lag_milliseconds", target) ?? 0) > firstLag + 500, 5_000)
    ).toBe(true)
    const during = await metrics(westPorts.httpPort)
    expect(sample(during, "inferadb_engine_replication_unshipped_changes", target)).toBeGreaterThanOrEqual(1)
    expect(sample(during, "inferadb_engine_replication_oldest_unshipped_age_milliseconds", target)).toBeGreaterThan(LAG_MS_MAX)
    // At least one send failed, so the streak is logged before the peer returns.
    expect(await Serve.eventually(() => processes[0]!.output().includes("replication to eu-central-1 is failing"), 10_000)).toBe(true)
    expect(sample(await metrics(westPorts.httpPort), "inferadb_engine_replication_failures_total", target)).toBeGreaterThanOrEqual(1)

    processes[1]!.child.kill("SIGCONT")
    expect(
      await Serve.eventually(async () => {
        const body = await health(westPorts.httpPort)
        return body.status === "healthy" && body.details.replication.targets.every((entry) => entry.unshipped_changes === 0)
      }, 20_000)
    ).toBe(true)
    expect(await Serve.eventually(async () => sample(await metrics(westPorts.httpPort), "inferadb_engine_replication_unshipped_changes", target) === 0, 5_000)).toBe(true)
    expect(await Serve.eventually(() => /replication to eu-central-1 recovered after \d+ failed attempts/.test(processes[0]!.output()), 5_000), processes[0]!.output()).toBe(true)
    expect(processes[0]!.output().match(/replication to eu-central-1 is failing/g)).toHaveLength(1)
  }, 60_000)

  it("metrics keep the seed's ten names and add the role, the store's failed transactions and commits, process metrics and build_info", async () => {
    const exposition = await metrics(ports[0]!.httpPort)
    for (const [name] of seedMetrics) expect(exposition).toContain(`# TYPE ${name} `)
    expect(exposition).toContain("# TYPE inferadb_engine_store_failed_transactions_total counter")
    expect(sample(exposition, "inferadb_engine_store_failed_transactions_total")).toBe(0)
    expect(sample(exposition, "inferadb_engine_store_failed_transactions_in_a_row")).toBe(0)
    // The node's start committed (its origin, its bootstrap markers): the group commit reports it.
    expect(exposition).toContain("# TYPE inferadb_engine_store_commit_duration_seconds histogram")
    expect(sample(exposition, "inferadb_engine_store_commit_duration_seconds_count")).toBeGreaterThan(0)
    expect(sample(exposition, "inferadb_engine_store_commit_transactions_count")).toBe(sample(exposition, "inferadb_engine_store_commit_duration_seconds_count"))
    expect(sample(exposition, "inferadb_engine_store_durable_wait_seconds_count")).toBeGreaterThanOrEqual(sample(exposition, "inferadb_engine_store_commit_duration_seconds_count")!)
    // process.idle_gc is on by default: the node says so and counts its idle collections.
    expect(processes[0]!.output()).toContain("idle GC: the young generation is collected when the event loop is idle")
    expect(exposition).toContain("# TYPE inferadb_engine_idle_gc_total counter")
    expect(sample(exposition, "inferadb_engine_idle_gc_total")).toBeGreaterThanOrEqual(0)
    expect(sample(exposition, "inferadb_engine_replication_epoch")).toBe(0)
    expect(sample(exposition, "inferadb_engine_replication_writable")).toBe(1)
    expect(exposition).toMatch(/^inferadb_engine_build_info\{version="[^"]+",node_version="v\d+[^"]*",region="us-west-1",node="us-west-1-node1"\} 1$/m)
    expect(exposition).toContain("# TYPE process_cpu_user_seconds_total counter")
    expect(exposition).toContain("# TYPE nodejs_eventloop_lag_seconds gauge")
    const role = (await health(ports[0]!.httpPort)).details.replication.role
    expect(role).toEqual({ strategy: "ActiveActive", epoch: 0, primary: null, writable: true })
  })

  it("logs carry time, level, region and node, as text or one JSON object per line", () => {
    expect(processes[0]!.output()).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z INFO {2}us-west-1\/us-west-1-node1 ready: /m)
    const lines = processes[1]!.output().trim().split("\n").map((line) => JSON.parse(line) as Record<string, unknown>)
    expect(lines.length).toBeGreaterThan(5)
    for (const line of lines) expect(line).toMatchObject({ time: expect.stringMatching(/Z$/), level: expect.any(String), region: "eu-central-1", node: "eu-central-1-node1", message: expect.any(String) })
  })

  it("gRPC health checking answers SERVING for the server and each service, without credentials; reflection lists the services", async () => {
    const address = `127.0.0.1:${ports[0]!.grpcPort}`
    expect(await Serve.eventually(async () => (await check(address, "")) === "SERVING", 5_000)).toBe(true)
    for (const service of GrpcHealth.serviceNames) expect(await check(address, service)).toBe("SERVING")
    await expect(check(address, "no.such.Service")).rejects.toMatchObject({ code: grpc.status.NOT_FOUND })
    const reflectionDefinition = protoLoader.loadSync(path.join(path.dirname(require.resolve("@grpc/reflection")), "../proto/grpc/reflection/v1/reflection.proto"), { keepCase: true })
    const Reflection = (grpc.loadPackageDefinition(reflectionDefinition) as unknown as { grpc: { reflection: { v1: { ServerReflection: typeof grpc.Client } } } }).grpc.reflection.v1.ServerReflection
    const client = new Reflection(address, grpc.credentials.createInsecure()) as grpc.Client & { serverReflectionInfo: () => grpc.ClientDuplexStream<unknown, { list_services_response?: { service: ReadonlyArray<{ name: string }> } }> }
    const stream = client.serverReflectionInfo()
    const listed = await new Promise<ReadonlyArray<string>>((resolve, reject) => {
      stream.on("data", (response) => resolve(response.list_services_response?.service.map((entry: { name: string }) => entry.name) ?? []))
      stream.on("error", reject)
      stream.write({ list_services: "" })
    })
    stream.end()
    client.close()
    expect(listed).toEqual(expect.arrayContaining([...GrpcHealth.serviceNames]))
  })

  it("the command line writes, reads, checks and deletes through the public API", async () => {
    const connection = ["--address", `127.0.0.1:${ports[0]!.grpcPort}`, "--token", Serve.token, "--vault", VAULT]
    const written = await cli(["write", ...connection, "--json", "folder:cli#viewer@user:carol", "folder:cli#editor@group:eng#member"])
    expect(written.code, written.stderr).toBe(0)
    expect(JSON.parse(written.stdout)).toMatchObject({ wrote: 2, position: expect.any(Number), revision: expect.any(Number) })
    const read = await cli(["read", ...connection, "--json", "folder:cli"])
    expect(JSON.parse(read.stdout)).toEqual({ vault: VAULT, relationships: ["folder:cli#editor@group:eng#member", "folder:cli#viewer@user:carol"] })
    expect((await cli(["check", ...connection, "folder:cli#viewer@user:carol"])).code).toBe(0)
    expect((await cli(["delete", ...connection, "folder:cli#viewer@user:carol"])).code).toBe(0)
    const denied = await cli(["check", ...connection, "--json", "folder:cli#viewer@user:carol"])
    expect(denied.code).toBe(1)
    expect(JSON.parse(denied.stdout)).toEqual({ relationship: "folder:cli#viewer@user:carol", allowed: false })
    // The other region received the write through replication.
    const europe = ["--address", `127.0.0.1:${ports[1]!.grpcPort}`, "--token", Serve.token, "--vault", VAULT]
    expect(await Serve.eventually(async () => (await cli(["read", ...europe, "folder:cli"])).stdout.includes("folder:cli#editor@group:eng#member"), 10_000, 200)).toBe(true)
    expect((await cli(["check", ...connection, "not-a-relationship"])).code).toBe(64)
    expect((await cli(["read", ...connection.slice(0, 2), "--token", "wrong", "--vault", VAULT, "folder:cli"])).code).toBe(1)
  }, 30_000)
})
