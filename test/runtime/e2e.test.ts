/**
 * End to end with real processes: `inferadb-repl serve` nodes on loopback (lmdb stores in
 * temporary directories, token authentication), driven through the public gRPC API and their
 * HTTP endpoints. Covers convergence across three regions, `kill -9` and restart on the same
 * data, bootstrap of a wiped node over CatchUp, refused credentials, malformed replication
 * bytes, graceful shutdown, configuration errors, the shipped example configuration and
 * mutual TLS.
 */
import * as grpc from "@grpc/grpc-js"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Either } from "effect"
import * as fs from "node:fs"
import * as net from "node:net"
import * as path from "node:path"
import { ReplicationService } from "../../src/proto/inferadb/replication/v1/service.js"
import * as WireCodec from "../../src/replication/WireCodec.js"
import * as ApiClient from "../../src/runtime/ApiClient.js"
import * as Auth from "../../src/runtime/Auth.js"
import * as Certificates from "./fixtures/certificates.js"
import * as Serve from "./fixtures/serveProcess.js"
import { seedMetrics } from "./fixtures/seedMetrics.js"

const REGIONS = ["us-west-1", "eu-central-1", "ap-southeast-1"] as const
const VAULT = "acme"
/** Bound of every wait for replication; generous, since the machine may be loaded by other work. */
const convergenceTimeoutMs = 30_000
/** Writes each side acknowledges before the kill -9, and us-west-1 acknowledges while the victim is down. */
const writesBeforeKillMin = 10

interface Node {
  readonly ports: Serve.RegionPorts
  readonly configFile: string
  readonly dataDir: string
  process: Serve.ServeProcess
  readonly client: ApiClient.ApiClient
}

const subjects = async (client: ApiClient.ApiClient, resource: string): Promise<ReadonlySet<string>> =>
  new Set((await client.read(VAULT, resource)).map((tuple) => `${tuple.relation}@${tuple.subject}`))

const containsAll = async (client: ApiClient.ApiClient, resource: string, expected: Iterable<string>): Promise<boolean> => {
  const present = await subjects(client, resource)
  for (const entry of expected) if (!present.has(entry)) return false
  return true
}

const metricValue = (text: string, name: string, labels: string): number => {
  const line = text.split("\n").find((candidate) => candidate.startsWith(`${name}{`) && candidate.includes(labels))
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(" ") + 1))
}

const identity = (bytes: Buffer): Buffer => bytes

/** One raw unary call with bytes the caller chose. */
const rawCall = (address: string, method: string, bytes: Uint8Array, metadata: grpc.Metadata) =>
  new Promise<{ readonly error: grpc.ServiceError | null; readonly response: Buffer | undefined }>((resolve) => {
    const client = new grpc.Client(address, grpc.credentials.createInsecure())
    client.makeUnaryRequest(method, identity, identity, Buffer.from(bytes), metadata, { deadline: new Date(Date.now() + 3_000) }, (error, response) => {
      client.close()
      resolve({ error, response })
    })
  })

const bearer = (value: string | undefined): grpc.Metadata => {
  const metadata = new grpc.Metadata()
  if (value !== undefined) metadata.set("authorization", `Bearer ${value}`)
  return metadata
}

describe("serve end to end, three regions on loopback", () => {
  let dir = ""
  const nodes = new Map<string, Node>()
  const node = (region: string): Node => nodes.get(region)!

  const start = (entry: Node): void => {
    entry.process = Serve.spawnServe(["--config", entry.configFile, "--http-port", String(entry.ports.httpPort), "--data-dir", entry.dataDir, "--seed", "7"])
  }

  beforeAll(async () => {
    dir = Serve.tempDir("e2e")
    const ports = await Serve.allocate(REGIONS)
    for (const entry of ports) {
      const configFile = path.join(dir, `${entry.region}.yaml`)
      fs.writeFileSync(configFile, Serve.clusterYaml(ports, entry.region))
      const created: Node = {
        ports: entry,
        configFile,
        dataDir: path.join(dir, "data", entry.region),
        process: undefined as unknown as Serve.ServeProcess,
        client: ApiClient.make(`127.0.0.1:${entry.grpcPort}`, { token: Serve.token })
      }
      start(created)
      nodes.set(entry.region, created)
    }
    await Promise.all([...nodes.values()].map((entry) => Serve.awaitReady(entry.process, entry.ports.httpPort)))
  }, 40_000)

  afterAll(async () => {
    for (const entry of nodes.values()) entry.client.close()
    await Promise.all([...nodes.values()].map((entry) => Serve.stop(entry.process, 3_000)))
    if (dir !== "") fs.rmSync(dir, { recursive: true, force: true })
  }, 20_000)

  it("the startup log shows the strategy, region, node, conflict resolution, clock, addresses and store", () => {
    const output = node("us-west-1").process.output()
    for (const line of [
      "strategy: ActiveActive",
      "local region: us-west-1",
      "node id: us-west-1-node1",
      "conflict resolution: LastWriteWins",
      "clock: hlc",
      `gRPC: 127.0.0.1:${node("us-west-1").ports.grpcPort}`,
      `HTTP: http://127.0.0.1:${node("us-west-1").ports.httpPort}`,
      `store: lmdb at ${node("us-west-1").dataDir}`,
      "seed: 7"
    ]) {
      expect(output).toContain(line)
    }
    expect(output.split("\n")[0]).toMatch(/^\S+Z INFO {2}us-west-1\/us-west-1-node1 seed: 7 /)
  })

  it("writes accepted in every region converge, and every region reads all of them", async () => {
    const expected: Array<string> = []
    for (const region of REGIONS) {
      for (let index = 0; index < 5; index++) {
        await node(region).client.insert(VAULT, [{ resource: "document:converge", relation: "viewer", subject: `user:${region}-${index}` }])
        expected.push(`viewer@user:${region}-${index}`)
      }
    }
    await node("eu-central-1").client.delete(VAULT, [{ resource: "document:converge", relation: "viewer", subject: "user:us-west-1-0" }])
    const wanted = expected.filter((entry) => entry !== "viewer@user:us-west-1-0")
    for (const region of REGIONS) {
      const converged = await Serve.eventually(
        async () => {
          const present = await subjects(node(region).client, "document:converge")
          return wanted.every((entry) => present.has(entry)) && !present.has("viewer@user:us-west-1-0")
        },
        convergenceTimeoutMs
      )
      expect(converged, `${region} converged`).toBe(true)
    }
  })

  it("after kill -9 while changes stream into a region, a restart on the same data loses nothing acknowledged and catches up", async () => {
    const victim = node("eu-central-1")
    const ackedWest: Array<string> = []
    const ackedVictim: Array<string> = []
    let writing = true
    let victimDown = false
    const writeLoop = async (client: ApiClient.ApiClient, prefix: string, acked: Array<string>) => {
      for (let index = 0; writing; index++) {
        const subject = `user:${prefix}-${index}`
        try {
          await client.insert(VAULT, [{ resource: "document:crash", relation: "viewer", subject }])
          acked.push(`viewer@${subject}`)
        } catch {
          // The victim refuses once it is killed; its loop ends there.
          if (prefix === "victim" && victimDown) return
        }
      }
    }
    const west = writeLoop(node("us-west-1").client, "west", ackedWest)
    const local = writeLoop(victim.client, "victim", ackedVictim)
    // The kill comes once changes stream both ways, and the load goes on while the victim is down.
    const streaming = await Serve.eventually(() => ackedWest.length > writesBeforeKillMin && ackedVictim.length > writesBeforeKillMin, convergenceTimeoutMs)
    victimDown = true
    await Serve.kill(victim.process)
    const westAtKill = ackedWest.length
    const westGoesOn = await Serve.eventually(() => ackedWest.length > westAtKill + writesBeforeKillMin, convergenceTimeoutMs)
    writing = false
    await Promise.all([west, local])
    expect(streaming, "both regions took writes before the kill").toBe(true)
    expect(westGoesOn, "us-west-1 took writes while eu-central-1 was down").toBe(true)

    start(victim)
    await Serve.awaitReady(victim.process, victim.ports.httpPort)
    expect(victim.process.output()).toMatch(/bootstrap: not needed \(an earlier bootstrap completed\)|bootstrap \(store held [1-9]\d* log entries\)/)
    expect(await Serve.eventually(() => containsAll(victim.client, "document:crash", [...ackedWest, ...ackedVictim]), convergenceTimeoutMs)).toBe(true)
    for (const region of ["us-west-1", "ap-southeast-1"]) {
      expect(await Serve.eventually(() => containsAll(node(region).client, "document:crash", ackedVictim), convergenceTimeoutMs), region).toBe(true)
    }
  }, 180_000)

  it("a peer without the token, or with a wrong one, is refused, applies nothing, and is counted in /metrics", async () => {
    const target = node("us-west-1")
    const address = `127.0.0.1:${target.ports.grpcPort}`
    const batch = WireCodec.encodeRequest({
      _tag: "ReplicateBatch",
      batchId: "intruder-1",
      fromRegion: "eu-central-1",
      fromNode: "eu-central-1-node1",
      changes: [
        {
          id: { origin: "eu-central-1", seq: 1_000_000 },
          op: "insert",
          tuple: { vault: VAULT, resource: "document:intrusion", relation: "owner", subject: "user:mallory" },
          timestamp: { physicalMs: Date.now(), logical: 0 },
          originRegion: "eu-central-1",
          originNode: "eu-central-1-node1",
          originRevision: 1,
          committedAtMs: Date.now(),
          context: {}
        }
      ]
    })
    const before = metricValue((await Serve.httpGet(target.ports.httpPort, "/metrics")).body, "inferadb_engine_replication_requests_refused_total", 'reason="Unauthenticated"')
    const missing = await rawCall(address, ReplicationService.replicate.path, batch, bearer(undefined))
    const wrong = await rawCall(address, ReplicationService.replicate.path, batch, bearer("not-the-token"))
    const heartbeat = await rawCall(
      address,
      ReplicationService.heartbeat.path,
      WireCodec.encodeRequest({ _tag: "Heartbeat", fromRegion: "eu-central-1", fromNode: "eu-central-1-node1", sentAtMs: 0 }),
      bearer("not-the-token")
    )
    for (const outcome of [missing, wrong, heartbeat]) expect(outcome.error?.code).toBe(grpc.status.UNAUTHENTICATED)
    await expect(ApiClient.make(address, { token: "not-the-token" }).read(VAULT, "document:intrusion")).rejects.toMatchObject({
      code: grpc.status.UNAUTHENTICATED
    })
    expect(await subjects(target.client, "document:intrusion")).toEqual(new Set())
    const after = metricValue((await Serve.httpGet(target.ports.httpPort, "/metrics")).body, "inferadb_engine_replication_requests_refused_total", 'reason="Unauthenticated"')
    expect(after - before).toBeGreaterThanOrEqual(4)
  })

  it("garbage bytes sent to Replicate are refused as malformed and the node keeps serving and replicating", async () => {
    const target = node("ap-southeast-1")
    const address = `127.0.0.1:${target.ports.grpcPort}`
    const garbage = [
      Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f, 0x0a, 0x03]),
      Buffer.from("this is not protobuf at all"),
      Buffer.alloc(4096, 0xaa),
      Buffer.from([0x0a, 0x80, 0x80, 0x80, 0x80, 0x01])
    ]
    for (const bytes of garbage) {
      const outcome = await rawCall(address, ReplicationService.replicate.path, bytes, bearer(Serve.token))
      if (outcome.error !== null) expect(outcome.error.code).toBe(grpc.status.INVALID_ARGUMENT)
      else {
        const response = WireCodec.decodeResponse(outcome.response!)
        expect(Either.isRight(response) && response.right._tag === "Refused" && response.right.reason).toBe("Malformed")
      }
    }
    expect((await Serve.httpGet(target.ports.httpPort, "/healthz")).status).toBe(200)
    const metrics = (await Serve.httpGet(target.ports.httpPort, "/metrics")).body
    expect(metricValue(metrics, "inferadb_engine_replication_requests_refused_total", 'reason="Malformed"')).toBeGreaterThanOrEqual(garbage.length)
    await target.client.insert(VAULT, [{ resource: "document:after-garbage", relation: "viewer", subject: "user:zoe" }])
    await node("us-west-1").client.insert(VAULT, [{ resource: "document:after-garbage", relation: "viewer", subject: "user:yan" }])
    for (const region of REGIONS) {
      expect(await Serve.eventually(() => containsAll(node(region).client, "document:after-garbage", ["viewer@user:zoe", "viewer@user:yan"]), convergenceTimeoutMs), region).toBe(
        true
      )
    }
  })

  it("a node whose data directory was wiped bootstraps its history over CatchUp, and its next writes reach every region", async () => {
    const victim = node("ap-southeast-1")
    const result = await Serve.stop(victim.process)
    expect(result.code).toBe(0)
    fs.rmSync(victim.dataDir, { recursive: true, force: true })
    start(victim)
    await Serve.awaitReady(victim.process, victim.ports.httpPort)
    expect(victim.process.output()).toMatch(/bootstrap \(store held 0 log entries\): paging every peer's log over CatchUp/)
    // The history comes back over CatchUp, its own earlier writes included (they come back from
    // the peers); new writes go out under a new origin, so no peer ignores them as duplicates.
    expect(await Serve.eventually(() => containsAll(victim.client, "document:converge", ["viewer@user:ap-southeast-1-4", "viewer@user:eu-central-1-2"]), convergenceTimeoutMs)).toBe(true)
    expect(await Serve.eventually(() => containsAll(victim.client, "document:after-garbage", ["viewer@user:zoe"]), convergenceTimeoutMs)).toBe(true)
    await victim.client.insert(VAULT, [{ resource: "document:reborn", relation: "viewer", subject: "user:phoenix" }])
    for (const region of REGIONS) {
      expect(await Serve.eventually(() => containsAll(node(region).client, "document:reborn", ["viewer@user:phoenix"]), convergenceTimeoutMs), region).toBe(true)
    }
  })

  it("SIGTERM stops taking writes, drains every target and exits 0", async () => {
    const victim = node("eu-central-1")
    await victim.client.insert(VAULT, [{ resource: "document:last", relation: "viewer", subject: "user:final" }])
    const result = await Serve.stop(victim.process)
    expect(result).toEqual({ code: 0, signal: null })
    expect(victim.process.output()).toContain("SIGTERM: refusing new client writes")
    expect(victim.process.output()).toMatch(/drained: every target acknowledged the log up to position \d+/)
    for (const region of ["us-west-1", "ap-southeast-1"]) {
      expect(await containsAll(node(region).client, "document:last", ["viewer@user:final"]), region).toBe(true)
    }
  })
})

describe("serve with a single node", () => {
  it("a bad configuration exits 2 naming the key path, the value and what was expected; a taken port exits 1", async () => {
    const dir = Serve.tempDir("bad-config")
    const ports = await Serve.allocate(["us-west-1", "eu-central-1"])
    const badValue = path.join(dir, "bad-value.yaml")
    fs.writeFileSync(badValue, Serve.clusterYaml(ports, "us-west-1").replace("retry_delay_ms: 20", "retry_delay_ms: -5"))
    const good = path.join(dir, "good.yaml")
    fs.writeFileSync(good, Serve.clusterYaml(ports, "us-west-1"))
    const taken = net.createServer()
    await new Promise<void>((resolve) => taken.listen(ports[0]!.grpcPort, "127.0.0.1", resolve))
    try {
      const runs = [
        Serve.spawnServe(["--config", badValue]),
        Serve.spawnServe(["--config", good], { INFERADB__ENGINE__REPLICATION__STORE__KIND: "rocksdb" }),
        Serve.spawnServe(["--config", good, "--http-port", String(ports[0]!.httpPort), "--data-dir", path.join(dir, "data")])
      ]
      const exits = await Promise.all(runs.map((run) => run.exited))
      expect(exits.map((exit) => exit.code)).toEqual([2, 2, 1])
      expect(runs[0]!.stderr()).toContain(`invalid configuration in ${badValue}: replication.agent.retry_delay_ms: expected an integer >= 0 and <= 2147483647`)
      expect(runs[1]!.stderr()).toContain('INFERADB__ENGINE__REPLICATION__STORE__KIND: expected one of lmdb, foundationdb, memory, got "rocksdb"')
      for (const run of runs.slice(0, 2)) expect(run.output()).toBe("")
      expect(runs[2]!.stderr()).toContain(`serve failed:`)
      expect(runs[2]!.stderr()).toContain(`127.0.0.1:${ports[0]!.grpcPort}`)
    } finally {
      taken.close()
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })

  it("the shipped example answers /healthz with the seed's fields and /metrics with the seed's names, and turns degraded when its peer is down", async () => {
    const dir = Serve.tempDir("example")
    const httpPort = await Serve.freePort()
    const grpcPort = await Serve.freePort()
    const example = path.join(Serve.root, "examples/active-active-us-west-1.yaml")
    const serve = Serve.spawnServe([
      "--config",
      example,
      "--http-port",
      String(httpPort),
      "--grpc-port",
      String(grpcPort),
      "--data-dir",
      path.join(dir, "data"),
      "--drain-timeout-ms",
      "300"
    ])
    try {
      await Serve.awaitReady(serve, httpPort)
      const health = JSON.parse((await Serve.httpGet(httpPort, "/healthz")).body)
      expect(Object.keys(health)).toEqual(["status", "service", "version", "uptime_seconds", "timestamp", "details"])
      expect(health).toMatchObject({ status: "healthy", service: "inferadb-engine", version: "0.1.0" })
      expect(Object.keys(health.details)).toEqual(["storage", "cache", "auth", "replication"])
      expect(Object.keys(health.details.replication)).toEqual(["status", "enabled", "published", "subscribers", "dropped", "message", "targets", "role"])
      expect(health.details.replication).toMatchObject({ enabled: true, published: 0, dropped: 0 })
      const metrics = (await Serve.httpGet(httpPort, "/metrics")).body
      for (const [name, type] of seedMetrics) expect(metrics).toContain(`# TYPE ${name} ${type}`)
      expect((await Serve.httpGet(httpPort, "/livez")).status).toBe(200)

      // eu-central-1 never started: a write cannot be shipped, the node says so and keeps serving.
      const client = ApiClient.make(`127.0.0.1:${grpcPort}`, { token: "dev-token-change-me" })
      await client.insert(VAULT, [{ resource: "document:lonely", relation: "viewer", subject: "user:solo" }])
      const degraded = await Serve.eventually(async () => JSON.parse((await Serve.httpGet(httpPort, "/healthz")).body).status === "degraded", 10_000, 200)
      expect(degraded).toBe(true)
      const after = JSON.parse((await Serve.httpGet(httpPort, "/healthz")).body)
      expect(after.details.replication.message).toContain("target eu-central-1 failing")
      expect(await containsAll(client, "document:lonely", ["viewer@user:solo"])).toBe(true)
      client.close()
    } finally {
      const result = await Serve.stop(serve)
      expect(result.code).toBe(0)
      expect(serve.output()).toMatch(/drain timed out after 300 ms: eu-central-1 acknowledged 0 of 1/)
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe.skipIf(!Certificates.opensslAvailable())("serve over mutual TLS", () => {
  it("two regions configured with security.mode mtls replicate, and a client with a certificate from another CA is refused", async () => {
    const certificates = Certificates.generate()
    const dir = Serve.tempDir("mtls")
    const ports = await Serve.allocate(["us-west-1", "eu-central-1"])
    const security = [
      "mode: mtls",
      `ca_file: ${certificates.caFile}`,
      `cert_file: ${certificates.certFile}`,
      `key_file: ${certificates.keyFile}`
    ].join("\n")
    const processes = ports.map((entry) => {
      const configFile = path.join(dir, `${entry.region}.yaml`)
      fs.writeFileSync(configFile, Serve.clusterYaml(ports, entry.region, { security }))
      return Serve.spawnServe(["--config", configFile, "--http-port", String(entry.httpPort), "--data-dir", path.join(dir, entry.region)])
    })
    const credentials = Effect.runSync(Auth.load({ mode: "mtls", caFile: certificates.caFile, certFile: certificates.certFile, keyFile: certificates.keyFile }))
    const stranger = Effect.runSync(
      Auth.load({ mode: "mtls", caFile: certificates.caFile, certFile: certificates.strangerCertFile, keyFile: certificates.strangerKeyFile })
    )
    const west = ApiClient.make(`127.0.0.1:${ports[0]!.grpcPort}`, { credentials: credentials.channel })
    const europe = ApiClient.make(`127.0.0.1:${ports[1]!.grpcPort}`, { credentials: credentials.channel })
    const intruder = ApiClient.make(`127.0.0.1:${ports[1]!.grpcPort}`, { credentials: stranger.channel, callTimeoutMs: 2_000 })
    try {
      await Promise.all(processes.map((serve, index) => Serve.awaitReady(serve, ports[index]!.httpPort)))
      expect(processes[0]!.output()).toContain("security: mtls")
      await west.insert(VAULT, [{ resource: "document:tls", relation: "viewer", subject: "user:trent" }])
      expect(await Serve.eventually(() => containsAll(europe, "document:tls", ["viewer@user:trent"]), convergenceTimeoutMs)).toBe(true)
      await expect(intruder.read(VAULT, "document:tls")).rejects.toBeDefined()
    } finally {
      for (const client of [west, europe, intruder]) client.close()
      const exits = await Promise.all(processes.map((serve) => Serve.stop(serve, 5_000)))
      expect(exits.map((exit) => exit.code)).toEqual([0, 0])
      fs.rmSync(dir, { recursive: true, force: true })
      fs.rmSync(certificates.dir, { recursive: true, force: true })
    }
  })
})
