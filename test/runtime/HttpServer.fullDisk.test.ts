/**
 * `/healthz`, `/readyz` and the store's metrics over a real lmdb store on a real full disk: a tmpfs of a few MB that
 * the test mounts and removes (mounting needs root, which CI has; elsewhere the test is skipped
 * and says why). Reads keep working on a full disk, so a read-only storage check called such a
 * node healthy and ready while every write failed.
 */
import { describe, expect, it } from "@effect/vitest"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Context, Effect, Exit, Layer } from "effect"
import { afterAll } from "vitest"
import type * as Change from "../../src/replication/Change.js"
import type * as Health from "../../src/replication/Health.js"
import * as Store from "../../src/replication/Store.js"
import * as HttpServer from "../../src/runtime/HttpServer.js"
import * as KvLmdb from "../../src/runtime/KvLmdb.js"
import * as PromMetrics from "../../src/runtime/PromMetrics.js"

const mountSmallDisk = (): string | undefined => {
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), "inferadb-health-full-"))
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=4m", "tmpfs", directory], { stdio: "ignore" })
    return directory
  } catch {
    fs.rmSync(directory, { recursive: true, force: true })
    return undefined
  }
}

const disk = process.getuid?.() === 0 ? mountSmallDisk() : undefined
afterAll(() => {
  if (disk === undefined) return
  execFileSync("umount", ["-l", disk], { stdio: "ignore" })
  fs.rmSync(disk, { recursive: true, force: true })
})

/** Fills what is left of the disk with one file, until the disk refuses more. */
const fill = (file: string): void => {
  const chunk = Buffer.alloc(64 * 1024, 1)
  const fd = fs.openSync(file, "w")
  try {
    for (;;) fs.writeSync(fd, chunk)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOSPC") throw error
  } finally {
    fs.closeSync(fd)
  }
}

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

const healthyReplication: Health.ReplicationHealth = {
  status: "healthy",
  enabled: true,
  published: 0,
  subscribers: 0,
  dropped: 0,
  message: "Published: 0, Subscribers: 0, Dropped: 0"
}

const getJson = (server: HttpServer.Running, route: string) =>
  Effect.promise(async () => {
    const response = await fetch(`${server.url}${route}`)
    return { status: response.status, body: (await response.json()) as Record<string, unknown> }
  })

const exposition = (server: HttpServer.Running) => Effect.promise(async () => (await fetch(`${server.url}/metrics`)).text())

/** The value of an unlabelled sample in Prometheus text. */
const sampleOf = (text: string, name: string): number => {
  const line = text.split("\n").find((candidate) => candidate.startsWith(`${name} `))
  return line === undefined ? Number.NaN : Number(line.slice(name.length + 1))
}

describe("storage health on a full disk", () => {
  it.live.skipIf(disk === undefined)(
    "a full disk makes storage degraded and the node not ready, with lmdb's reason, until space is freed (needs root to mount a tmpfs)",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          const store = Context.get(yield* Layer.build(KvLmdb.layerLmdb({ path: path.join(disk!, "store") })), Store.Store)
          const metrics = PromMetrics.make()
          PromMetrics.registerStore(metrics, () => Effect.runSync(store.failedTransactions))
          const server = yield* HttpServer.start({
            port: 0,
            version: "0.1.0",
            registry: metrics.registry,
            probes: { replication: Effect.succeed(healthyReplication), storage: HttpServer.storeProbe(store), serving: Effect.succeed(true) }
          })
          yield* store.advanceCursor("eu", 1)
          expect(yield* getJson(server, "/readyz")).toEqual({ status: 200, body: { status: "ready" } })

          const filler = path.join(disk!, "filler")
          fill(filler)
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
