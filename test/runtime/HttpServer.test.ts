/**
 * The operational HTTP endpoint over real sockets on 127.0.0.1: the seed's `/healthz`
 * document field by field, degraded health when a target is unreachable, every seed metric
 * name on `/metrics`, and the liveness and readiness probes.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Ref } from "effect"
import { StoreError } from "../../src/replication/Errors.js"
import type * as Health from "../../src/replication/Health.js"
import * as Network from "../../src/replication/Network.js"
import * as HttpServer from "../../src/runtime/HttpServer.js"
import * as PromMetrics from "../../src/runtime/PromMetrics.js"
import * as Cluster from "../replication/fixtures/cluster.js"
import * as PromNode from "./fixtures/promNode.js"
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
      const server = yield* HttpServer.start({
        port: 0,
        version: "0.1.0",
        registry: PromMetrics.make().registry,
        probes: { replication: Effect.succeed(healthyReplication), storage, serving: Ref.get(serving) }
      })
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

  it.scoped("unknown paths are 404, other methods 405, and HEAD has no body", () =>
    Effect.gen(function* () {
      const server = yield* HttpServer.start({
        port: 0,
        version: "0.1.0",
        registry: PromMetrics.make().registry,
        probes: { replication: Effect.succeed(healthyReplication), storage: Effect.void, serving: Effect.succeed(true) }
      })
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
