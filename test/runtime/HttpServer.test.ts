/**
 * The operational HTTP endpoint over real sockets on 127.0.0.1: the seed's `/healthz`
 * document field by field, degraded health when a target is unreachable, every seed metric
 * name on `/metrics`, and the liveness and readiness probes, also over a real lmdb store on a
 * real full disk (`fixtures/smallDisk`, needs root), where reads keep working: a read-only
 * storage check called such a node healthy and ready while every write failed.
 */
import { describe, expect, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as path from "node:path"
import { Context, Effect, Exit, Layer, Ref } from "effect"
import type * as Change from "../../src/replication/Change.js"
import { StoreError } from "../../src/replication/Errors.js"
import type * as Health from "../../src/replication/Health.js"
import * as Network from "../../src/replication/Network.js"
import * as Store from "../../src/replication/Store.js"
import * as HttpServer from "../../src/runtime/HttpServer.js"
import * as KvLmdb from "../../src/runtime/KvLmdb.js"
import * as PromMetrics from "../../src/runtime/PromMetrics.js"
import * as Cluster from "../replication/fixtures/cluster.js"
import * as PromNode from "./fixtures/promNode.js"
import * as SmallDisk from "./fixtures/smallDisk.js"
import { declaredTypes, seedMetrics } from "./fixtures/seedMetrics.js"

const tuple = { vault: "acme", resource: "document:readme", relation: "viewer", subject: "user:alice" }

interface Fetched {
  readonly status: number
  readonly contentType: string | null
  readonly text: string
}

const get = (server: HttpServer.Running, path: string, init: RequestInit = {}) =>
  Effect.promise(async (): Promise<Fetched> => {
    const response = await fetch(`${server.url}${path}`, init)
    return { status: response.status, contentType: response.headers.get("content-type"), text: await response.text() }
  })

const getJson = (server: HttpServer.Running, path: string) =>
  Effect.map(get(server, path), (fetched) => ({ status: fetched.status, body: JSON.parse(fetched.text) as Record<string, unknown> }))

/** Serves a started node's probes and metrics on an ephemeral port. */
const serveNode = (node: PromNode.PromNode) =>
  Effect.gen(function* () {
    const probes = yield* Effect.provide(HttpServer.nodeProbes(node.settings, node.serving), node.context)
    return yield* HttpServer.start({ port: 0, version: "0.1.0", registry: node.metrics.registry, probes })
  })

const healthyReplication: Health.ReplicationHealth = {
  status: "healthy",
  enabled: true,
  published: 0,
  subscribers: 0,
  dropped: 0,
  message: "Published: 0, Subscribers: 0, Dropped: 0"
}

/** A server over probes that answer healthy and serving unless `probes` says otherwise. */
const serveProbes = (probes: Partial<HttpServer.Probes>, options: Partial<HttpServer.Options> = {}) =>
  HttpServer.start({
    port: 0,
    version: "0.1.0",
    registry: PromMetrics.make().registry,
    ...options,
    probes: { replication: Effect.succeed(healthyReplication), storage: Effect.void, serving: Effect.succeed(true), ...probes }
  })

const expectSeedShape = (body: Record<string, unknown>) => {
  expect(Object.keys(body).sort()).toEqual(["details", "service", "status", "timestamp", "uptime_seconds", "version"])
  expect(body["service"]).toBe("inferadb-engine")
  expect(typeof body["version"]).toBe("string")
  expect(Number.isInteger(body["uptime_seconds"])).toBe(true)
  expect(Number.isInteger(body["timestamp"])).toBe(true)
  const details = body["details"] as Record<string, Record<string, unknown>>
  expect(Object.keys(details).sort()).toEqual(["auth", "cache", "replication", "storage"])
  for (const component of ["storage", "cache", "auth"]) {
    expect(Object.keys(details[component]!).sort()).toEqual(["message", "status"])
    expect(typeof details[component]!["message"]).toBe("string")
  }
  const replication = details["replication"]!
  // The seed's six fields first, in its order; then only our documented additions.
  expect(Object.keys(replication).slice(0, 6)).toEqual(["status", "enabled", "published", "subscribers", "dropped", "message"])
  for (const extra of Object.keys(replication).slice(6)) expect(["reason", "targets", "role"]).toContain(extra)
  expect(typeof replication["enabled"]).toBe("boolean")
  for (const counter of ["published", "subscribers", "dropped"]) expect(Number.isInteger(replication[counter])).toBe(true)
  expect(typeof replication["message"]).toBe("string")
}

describe("HttpServer", () => {
  it.scoped("/healthz of a healthy node has every seed field with the seed's types", () =>
    Effect.gen(function* () {
      const cluster = Cluster.make({ regions: ["us", "eu"] })
      const us = yield* PromNode.start(cluster, "us")
      yield* PromNode.start(cluster, "eu")
      yield* us.replica.write([{ op: "insert", tuple }])
      const server = yield* serveNode(us)
      expect(server.host).toBe("127.0.0.1")
      expect(server.port).toBeGreaterThan(0)
      const { status, body } = yield* getJson(server, "/healthz")
      expect(status).toBe(200)
      expectSeedShape(body)
      expect(body).toMatchObject({
        status: "healthy",
        version: "0.1.0",
        details: {
          storage: { status: "healthy", message: "Storage operational" },
          cache: { status: "healthy", message: "Cache operational" },
          auth: { status: "healthy", message: "Auth ready" },
          replication: { status: "healthy", enabled: true, published: 1, dropped: 0, message: expect.stringMatching(/^Published: 1, Subscribers: \d+, Dropped: 0$/) }
        }
      })
      expect(Math.abs((body["timestamp"] as number) - Date.now() / 1000)).toBeLessThan(5)
    }))

  it.scoped("/healthz turns degraded, and /metrics shows the failures, when the only target is unreachable", () =>
    Effect.gen(function* () {
      const cluster = Cluster.make({ regions: ["us", "eu"] })
      Network.partition(cluster.hub, "us", "eu")
      const us = yield* PromNode.start(cluster, "us")
      yield* PromNode.start(cluster, "eu")
      yield* us.replica.write([{ op: "insert", tuple }])
      const failing = Effect.map(us.agent.stats, (stats) => (stats.targets[0]?.consecutiveFailures ?? 0) >= us.settings.health.maxRetries)
      expect(yield* Cluster.settle(failing)).toBe(true)
      const server = yield* serveNode(us)
      const { status, body } = yield* getJson(server, "/healthz")
      expect(status).toBe(200)
      expectSeedShape(body)
      const replication = (body["details"] as Record<string, Record<string, unknown>>)["replication"]!
      expect(body["status"]).toBe("degraded")
      expect(replication["status"]).toBe("degraded")
      expect(replication["message"]).toContain("target eu failing")
      const metrics = yield* get(server, "/metrics")
      expect(metrics.text).toMatch(/inferadb_engine_replication_failures_total\{target="eu"\} [1-9]/)
      expect(metrics.text).toContain("\ninferadb_engine_replication_targets_connected 0\n")
      expect(metrics.text).toContain("\ninferadb_engine_replication_targets_total 1\n")
    }))

  it.scoped("/metrics serves every seed metric name, exactly, as Prometheus text", () =>
    Effect.gen(function* () {
      const cluster = Cluster.make({ regions: ["us", "eu"] })
      const us = yield* PromNode.start(cluster, "us")
      yield* PromNode.start(cluster, "eu")
      const server = yield* serveNode(us)
      const fetched = yield* get(server, "/metrics")
      expect(fetched.status).toBe(200)
      expect(fetched.contentType).toBe("text/plain; version=0.0.4; charset=utf-8")
      const declared = declaredTypes(fetched.text)
      for (const [name, type] of seedMetrics) expect([name, declared.get(name)]).toEqual([name, type])
    }))

  it.scoped("/livez answers while the process runs; /readyz waits until replication is served and the store answers", () =>
    Effect.gen(function* () {
      const serving = yield* Ref.make(false)
      const storageUp = yield* Ref.make(true)
      const storage = Effect.flatMap(Ref.get(storageUp), (up) =>
        up ? Effect.void : Effect.fail(new StoreError({ operation: "logEnd", message: "disk unplugged" }))
      )
      const server = yield* serveProbes({ storage, serving: Ref.get(serving) })
      expect((yield* get(server, "/livez")).status).toBe(200)
      expect(yield* getJson(server, "/readyz")).toMatchObject({ status: 503, body: { status: "not_ready" } })
      yield* Ref.set(serving, true)
      expect(yield* getJson(server, "/readyz")).toMatchObject({ status: 200, body: { status: "ready" } })
      yield* Ref.set(storageUp, false)
      expect(yield* getJson(server, "/readyz")).toMatchObject({ status: 503, body: { reason: "Storage check failed: disk unplugged" } })
      const health = yield* getJson(server, "/healthz")
      expect(health.body).toMatchObject({ status: "degraded", details: { storage: { status: "degraded" }, replication: { status: "healthy" } } })
      expect((yield* get(server, "/livez")).status).toBe(200)
    }))

  it.scopedLive("a storage check stuck where it cannot be interrupted (a probe commit on a hung disk) answers at its deadline", () =>
    Effect.gen(function* () {
      const server = yield* serveProbes({ storage: Effect.uninterruptible(Effect.never) }, { storageCheckTimeoutMs: 200 })
      expect(yield* getJson(server, "/readyz")).toMatchObject({ status: 503, body: { reason: "Storage check failed: no answer within 200 ms" } })
      expect((yield* getJson(server, "/healthz")).body).toMatchObject({ status: "degraded", details: { storage: { status: "degraded" } } })
    }))

  it.scoped("unknown paths are 404, other methods 405, and HEAD has no body", () =>
    Effect.gen(function* () {
      const server = yield* serveProbes({})
      expect((yield* get(server, "/nope")).status).toBe(404)
      expect((yield* get(server, "/healthz", { method: "POST" })).status).toBe(405)
      const head = yield* get(server, "/livez", { method: "HEAD" })
      expect([head.status, head.text]).toEqual([200, ""])
    }))

  it.scoped("a taken port is a typed startup error", () =>
    Effect.gen(function* () {
      const options = {
        port: 0,
        version: "0.1.0",
        registry: PromMetrics.make().registry,
        probes: { replication: Effect.succeed(healthyReplication), storage: Effect.void, serving: Effect.succeed(true) }
      }
      const first = yield* HttpServer.start(options)
      const error = yield* Effect.flip(HttpServer.start({ ...options, port: first.port }))
      expect(error._tag).toBe("HttpServerError")
      expect(error.message).toContain(`127.0.0.1:${first.port}`)
    }))
})

const entries = (batch: number): ReadonlyArray<Omit<Store.LogEntry, "position">> =>
  Array.from({ length: 200 }, (_, index) => {
    const change: Change.Change = {
      id: { origin: "us", seq: batch * 1000 + index + 1 },
      op: "insert",
      tuple: { vault: "acme", resource: `document:d${batch}`, relation: "viewer", subject: `user:${"u".repeat(500)}${index}` },
      timestamp: { physicalMs: 1, logical: 0 },
      originRegion: "us",
      originNode: "n1",
      originRevision: batch,
      committedAtMs: 1,
      context: {}
    }
    return { change, receivedFrom: null, appliedAtMs: 1 }
  })

const exposition = (server: HttpServer.Running) => Effect.promise(async () => (await fetch(`${server.url}/metrics`)).text())

/** The value of an unlabelled sample in Prometheus text. */
const sampleOf = (text: string, name: string): number => {
  const line = text.split("\n").find((candidate) => candidate.startsWith(`${name} `))
  return line === undefined ? Number.NaN : Number(line.slice(name.length + 1))
}

const disk = SmallDisk.mount("4m", "inferadb-health-full-")

describe("storage health on a full disk", () => {
  it.live.skipIf(disk === undefined)(
    "a full disk makes storage degraded and the node not ready, with lmdb's reason, until space is freed (needs root to mount a tmpfs)",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          const store = Context.get(yield* Layer.build(KvLmdb.layerLmdb({ path: path.join(disk!, "store"), minFreeBytes: 0 })), Store.Store)
          const metrics = PromMetrics.make()
          PromMetrics.registerStore(metrics, () => Effect.runSync(store.failedTransactions))
          const server = yield* serveProbes({ storage: HttpServer.storeProbe(store) }, { registry: metrics.registry })
          yield* store.advanceCursor("eu", 1)
          expect(yield* getJson(server, "/readyz")).toEqual({ status: 200, body: { status: "ready" } })

          const filler = path.join(disk!, "filler")
          SmallDisk.fill(filler)
          let failed: Exit.Exit<unknown, unknown> | undefined
          for (let batch = 0; batch < 50 && failed === undefined; batch++) {
            const exit = yield* Effect.exit(store.transaction((tx) => tx.appendLogs(entries(batch))))
            if (Exit.isFailure(exit)) failed = exit
          }
          expect(failed).toBeDefined()
          // Reads still answer: the storage check must not rest on them alone.
          expect(yield* store.getCursor("eu")).toBe(1)

          const health = yield* getJson(server, "/healthz")
          expect(health.body).toMatchObject({ status: "degraded", details: { storage: { status: "degraded" } } })
          const message = (health.body["details"] as Record<string, { message: string }>)["storage"]!.message
          expect(message).toMatch(/^Storage check failed: \d+ transactions? in a row did not commit, the last: /)
          expect(message).toMatch(/space|MDB_|ENOSPC/i)
          const ready = yield* getJson(server, "/readyz")
          // Each check commits a probe, which fails too and counts.
          expect(ready).toMatchObject({ status: 503, body: { status: "not_ready" } })
          expect(ready.body["reason"]).toMatch(/^Storage check failed: \d+ transactions in a row did not commit, the last: lmdb: No space left/)

          const whileFull = yield* exposition(server)
          expect(sampleOf(whileFull, "inferadb_engine_store_failed_transactions_in_a_row")).toBeGreaterThan(0)
          const failedWhileFull = sampleOf(whileFull, "inferadb_engine_store_failed_transactions_total")
          expect(failedWhileFull).toBeGreaterThan(0)

          fs.rmSync(filler)
          expect(yield* getJson(server, "/readyz")).toEqual({ status: 200, body: { status: "ready" } })
          expect((yield* getJson(server, "/healthz")).body).toMatchObject({ status: "healthy", details: { storage: { status: "healthy", message: "Storage operational" } } })
          const recovered = yield* exposition(server)
          expect(sampleOf(recovered, "inferadb_engine_store_failed_transactions_in_a_row")).toBe(0)
          expect(sampleOf(recovered, "inferadb_engine_store_failed_transactions_total")).toBeGreaterThanOrEqual(failedWhileFull)
          // The probe committed; writes go on.
          expect(Exit.isSuccess(yield* Effect.exit(store.transaction((tx) => tx.appendLogs(entries(99)))))).toBe(true)
        })
      ),
    60_000
  )
})
