/**
 * The node's operational HTTP endpoint: `/healthz` (the seed's JSON, field for field, then
 * our additions under `details.replication`: `reason`, per-target `targets` and the node's
 * `role`), `/livez`, `/readyz` and `/metrics` (Prometheus text). It serves probes only; replication
 * traffic goes over the Network service. Built on `node:http` to stay small.
 *
 * What it reads comes in as `Probes`, so the server knows nothing of how a node is wired;
 * `nodeProbes` builds them from a running node's services. It listens on 127.0.0.1 unless told
 * otherwise and accepts port 0 (the bound port is in the `Running` value).
 *
 * Status codes: `/healthz` answers 200 whether healthy or degraded (a degraded node still
 * serves; the body says what is wrong), `/livez` 200 while the process runs, `/readyz` 200
 * once the node serves replication and its store answers, else 503. The store answers when a
 * read succeeds and its last transaction committed (after a failed one, a probe commit must
 * succeed): a full or failing disk marks storage degraded and the node not ready, so a load
 * balancer stops sending it writes that cannot commit, until commits work again.
 */
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import { Context, Data, Effect, FiberSet, type Scope } from "effect"
import type { Registry } from "prom-client"
import type * as Backlog from "../replication/Backlog.js"
import type * as Clock from "../replication/Clock.js"
import * as Engine from "../replication/Engine.js"
import { StoreError } from "../replication/Errors.js"
import type * as Health from "../replication/Health.js"
import type * as Role from "../replication/Role.js"
import * as Store from "../replication/Store.js"

/** What the endpoints read from the node. */
export interface Probes {
  /** The replication block of `/healthz` (`Engine.health`). */
  readonly replication: Effect.Effect<Health.ReplicationHealth>
  /** A cheap store check (a read, and a probe commit after a failed one); failing or hanging marks storage degraded and the node not ready. */
  readonly storage: Effect.Effect<unknown, StoreError>
  /** Whether the node has started answering replication requests. */
  readonly serving: Effect.Effect<boolean>
}

/** Server settings. */
export interface Options {
  /** Interface to bind; default 127.0.0.1. */
  readonly host?: string
  /** Port to bind; 0 picks a free one. */
  readonly port: number
  /** The engine version reported by `/healthz`. */
  readonly version: string
  /** The node's metrics registry (`PromMetrics.make().registry`). */
  readonly registry: Registry
  readonly probes: Probes
  /** How long the storage check may take before it counts as failed; default 2000. */
  readonly storageCheckTimeoutMs?: number
  /** When the service started, for `uptime_seconds`; default the process start. */
  readonly startedAtMs?: number
}

/** A listening server. */
export interface Running {
  readonly host: string
  readonly port: number
  /** `http://host:port`, for clients and logs. */
  readonly url: string
}

/** The running HTTP server of a node. */
export class HttpServer extends Context.Tag("inferadb/HttpServer")<HttpServer, Running>() {}

/** The server could not start (e.g. the port is taken). */
export class HttpServerError extends Data.TaggedError("HttpServerError")<{ readonly message: string }> {}

/** One component's entry under `details`. */
export interface ComponentHealth {
  readonly status: "healthy" | "degraded"
  readonly message: string
}

/** The `/healthz` document, with the seed's field names. */
export interface HealthDocument {
  readonly status: "healthy" | "degraded"
  readonly service: "inferadb-engine"
  readonly version: string
  readonly uptime_seconds: number
  readonly timestamp: number
  readonly details: {
    readonly storage: ComponentHealth
    readonly cache: ComponentHealth
    readonly auth: ComponentHealth
    readonly replication: {
      readonly status: "healthy" | "degraded"
      readonly enabled: boolean
      readonly published: number
      readonly subscribers: number
      readonly dropped: number
      readonly message: string
      /** Why it is degraded; absent when healthy. */
      readonly reason?: string
      /** Per target: what it has not acknowledged yet and its lag now (`Backlog`). */
      readonly targets?: ReadonlyArray<TargetDocument>
      /** Who takes writes as this node sees it (`Role`). */
      readonly role?: RoleDocument
      /** This node's clock against its peers' (`ClockOffset`); absent before any peer answered. */
      readonly clock?: {
        readonly status: "healthy" | "degraded"
        readonly median_peer_offset_ms: number
        readonly peers_measured: number
        readonly peers_beyond_max_offset: number
        readonly max_offset_ms: number
      }
    }
  }
}

/** One target under `details.replication.targets`. */
export interface TargetDocument {
  readonly target: string
  readonly unshipped_changes: number
  readonly oldest_unshipped_age_ms: number
  readonly lag_ms: number
  readonly consecutive_failures: number
  readonly last_error?: string
}

/** `details.replication.role`. */
export interface RoleDocument {
  readonly strategy: string
  readonly epoch: number
  /** Null when no region takes writes in this node's view, or outside PrimaryReplica. */
  readonly primary: string | null
  readonly writable: boolean
  readonly reason?: string
}

const targetDocument = (target: Backlog.TargetBacklog): TargetDocument => ({
  target: target.target,
  unshipped_changes: target.unshippedChanges,
  oldest_unshipped_age_ms: Math.round(target.oldestUnshippedAgeMs),
  lag_ms: Math.round(target.lagMs),
  consecutive_failures: target.consecutiveFailures,
  ...(target.lastError === undefined ? {} : { last_error: target.lastError })
})

const roleDocument = (role: Role.Role): RoleDocument => ({
  strategy: role.strategy,
  epoch: role.epoch,
  primary: role.primary ?? null,
  writable: role.writable,
  ...(role.reason === undefined ? {} : { reason: role.reason })
})

const defaultHost = "127.0.0.1"
/** How long the storage check may take before it counts as failed, unless configured. */
export const storageCheckTimeoutMsDefault = 2_000

// This engine has no separate cache or auth component that can fail on its own; the seed's
// document has both entries, so they are reported with the seed's healthy messages.
const cacheHealth: ComponentHealth = { status: "healthy", message: "Cache operational" }
const authHealth: ComponentHealth = { status: "healthy", message: "Auth ready" }

/** Builds the `/healthz` document; degraded when storage or replication is. */
export const healthDocument = (input: {
  readonly version: string
  readonly uptimeSeconds: number
  readonly timestampSeconds: number
  readonly storage: ComponentHealth
  readonly replication: Health.ReplicationHealth
}): HealthDocument => {
  const { replication } = input
  const healthy = input.storage.status === "healthy" && replication.status === "healthy"
  return {
    status: healthy ? "healthy" : "degraded",
    service: "inferadb-engine",
    version: input.version,
    uptime_seconds: input.uptimeSeconds,
    timestamp: input.timestampSeconds,
    details: {
      storage: input.storage,
      cache: cacheHealth,
      auth: authHealth,
      replication: {
        status: replication.status,
        enabled: replication.enabled,
        published: replication.published,
        subscribers: replication.subscribers,
        dropped: replication.dropped,
        message: replication.message,
        ...(replication.reason === undefined ? {} : { reason: replication.reason }),
        ...(replication.targets === undefined ? {} : { targets: replication.targets.map(targetDocument) }),
        ...(replication.role === undefined ? {} : { role: roleDocument(replication.role) }),
        ...(replication.clock === undefined || replication.clock.peers === 0
          ? {}
          : {
              clock: {
                status: replication.clock.degraded ? "degraded" : "healthy",
                median_peer_offset_ms: replication.clock.medianOffsetMs,
                peers_measured: replication.clock.peers,
                peers_beyond_max_offset: replication.clock.beyond,
                max_offset_ms: replication.clock.maxOffsetMs
              }
            })
      }
    }
  }
}

/** The storage probe: a read, and whether commits work (a full or read-only disk still answers reads). */
export const storeProbe = (store: Store.Store["Type"]): Effect.Effect<void, StoreError> => Effect.zipRight(store.logEnd, store.checkCommits)

/** Probes over a node's services; `serving` says whether its replication handler is registered. */
export const nodeProbes = (
  settings: Engine.Settings,
  serving: Effect.Effect<boolean>
): Effect.Effect<Probes, never, Engine.Services | Store.Store | Clock.Clock> =>
  Effect.gen(function* () {
    const context = yield* Effect.context<Engine.Services | Store.Store | Clock.Clock>()
    return {
      replication: Effect.provide(Engine.health(settings), context),
      storage: storeProbe(Context.get(context, Store.Store)),
      serving
    }
  })

interface Reply {
  readonly status: number
  readonly contentType: string
  readonly body: string
}

const json = (status: number, value: unknown): Reply => ({ status, contentType: "application/json", body: JSON.stringify(value) })

/** Runs the storage probe with a deadline and describes the outcome. */
const checkStorage = (options: Options): Effect.Effect<ComponentHealth> => {
  const timeoutMs = options.storageCheckTimeoutMs ?? storageCheckTimeoutMsDefault
  // Disconnected: a probe commit stuck on the disk must not hold the answer past the deadline.
  return options.probes.storage.pipe(
    Effect.disconnect,
    Effect.timeoutFail({
      duration: timeoutMs,
      onTimeout: () => new StoreError({ operation: "healthCheck", message: `no answer within ${timeoutMs} ms` })
    }),
    Effect.match({
      onFailure: (error): ComponentHealth => ({ status: "degraded", message: `Storage check failed: ${error.message}` }),
      onSuccess: (): ComponentHealth => ({ status: "healthy", message: "Storage operational" })
    })
  )
}

const healthz = (options: Options, startedAtMs: number): Effect.Effect<Reply> =>
  Effect.gen(function* () {
    const [storage, replication] = yield* Effect.all([checkStorage(options), options.probes.replication], { concurrency: 2 })
    const nowMs = Date.now()
    const document = healthDocument({
      version: options.version,
      uptimeSeconds: Math.max(0, Math.floor((nowMs - startedAtMs) / 1000)),
      timestampSeconds: Math.floor(nowMs / 1000),
      storage,
      replication
    })
    return json(200, document)
  })

const readyz = (options: Options): Effect.Effect<Reply> =>
  Effect.gen(function* () {
    if (!(yield* options.probes.serving)) return json(503, { status: "not_ready", reason: "replication is not serving yet" })
    const storage = yield* checkStorage(options)
    if (storage.status !== "healthy") return json(503, { status: "not_ready", reason: storage.message })
    return json(200, { status: "ready" })
  })

const metrics = (registry: Registry): Effect.Effect<Reply> =>
  Effect.map(
    Effect.promise(() => registry.metrics()),
    (body): Reply => ({ status: 200, contentType: registry.contentType, body })
  )

/** Routes one request to its reply. */
const route = (options: Options, startedAtMs: number, method: string, path: string): Effect.Effect<Reply> => {
  if (method !== "GET" && method !== "HEAD") return Effect.succeed(json(405, { error: `method ${method} not allowed` }))
  switch (path) {
    case "/healthz":
      return healthz(options, startedAtMs)
    case "/livez":
      return Effect.succeed(json(200, { status: "alive" }))
    case "/readyz":
      return readyz(options)
    case "/metrics":
      return metrics(options.registry)
    default:
      return Effect.succeed(json(404, { error: `no route for ${path}` }))
  }
}

const handle = (options: Options, startedAtMs: number, request: http.IncomingMessage, response: http.ServerResponse) => {
  const method = request.method ?? "GET"
  const path = new URL(request.url ?? "/", "http://localhost").pathname
  return route(options, startedAtMs, method, path).pipe(
    Effect.catchAllCause((cause) =>
      Effect.as(Effect.logError(`${method} ${path} failed`, cause), json(500, { error: "internal error" }))
    ),
    Effect.flatMap((reply) =>
      Effect.sync(() => {
        const headers: Record<string, string> = { "content-type": reply.contentType, "cache-control": "no-store" }
        if (reply.status === 405) headers["allow"] = "GET, HEAD"
        response.writeHead(reply.status, headers)
        response.end(method === "HEAD" ? undefined : reply.body)
      })
    )
  )
}

const listen = (server: http.Server, host: string, port: number): Effect.Effect<AddressInfo, HttpServerError> =>
  Effect.async<AddressInfo, HttpServerError>((resume) => {
    const onError = (error: Error) => resume(Effect.fail(new HttpServerError({ message: `cannot listen on ${host}:${port}: ${error.message}` })))
    server.once("error", onError)
    server.listen(port, host, () => {
      server.off("error", onError)
      resume(Effect.succeed(server.address() as AddressInfo))
    })
  })

const close = (server: http.Server): Effect.Effect<void> =>
  Effect.async<void>((resume) => {
    server.close(() => resume(Effect.void))
    server.closeAllConnections()
  })

/** Starts the server; it stops when the scope closes. */
export const start = (options: Options): Effect.Effect<Running, HttpServerError, Scope.Scope> =>
  Effect.gen(function* () {
    const host = options.host ?? defaultHost
    const startedAtMs = options.startedAtMs ?? Date.now() - process.uptime() * 1000
    // Request fibers live in a set bound to the scope, so closing it interrupts them.
    const run = yield* FiberSet.makeRuntime<never>()
    const server = http.createServer((request, response) => void run(handle(options, startedAtMs, request, response)))
    const address = yield* Effect.acquireRelease(listen(server, host, options.port), () => close(server))
    const urlHost = address.family === "IPv6" ? `[${address.address}]` : address.address
    return { host: address.address, port: address.port, url: `http://${urlHost}:${address.port}` }
  })
