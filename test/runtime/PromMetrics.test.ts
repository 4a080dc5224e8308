/**
 * The prom-client recorder: exactly the seed's metric names and types, per-node registries,
 * the connected-targets count, and a running node reporting conflicts, refusals and batches.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as ConflictResolver from "../../src/replication/ConflictResolver.js"
import * as Network from "../../src/replication/Network.js"
import * as PromMetrics from "../../src/runtime/PromMetrics.js"
import * as Cluster from "../replication/fixtures/cluster.js"
import * as PromNode from "./fixtures/promNode.js"
import { declaredTypes, seedMetrics } from "./fixtures/seedMetrics.js"

const tuple = { vault: "acme", resource: "document:readme", relation: "viewer", subject: "user:alice" }

describe("PromMetrics", () => {
  it.effect("the exposition declares exactly the seed's ten metrics, our own replication metrics and build_info, with their types", () =>
    Effect.gen(function* () {
      const metrics = PromMetrics.make()
      metrics.recorder.batchReplicated("eu", 4, 12)
      metrics.recorder.replicationFailed("eu")
      metrics.recorder.lag("eu", 30)
      metrics.recorder.targetConnected("eu", true)
      metrics.recorder.targetsTotal(1)
      metrics.recorder.conflict("local")
      metrics.recorder.conflict("remote")
      metrics.recorder.requestRefused("UnknownRegion")
      metrics.recorder.changeSkipped("eu", "ResidencyViolation")
      const text = yield* Effect.promise(() => metrics.registry.metrics())
      const expected = new Map<string, string>([
        ...seedMetrics,
        ["inferadb_engine_replication_requests_refused_total", "counter"],
        ["inferadb_engine_replication_changes_skipped_total", "counter"],
        ["inferadb_engine_replication_unshipped_changes", "gauge"],
        ["inferadb_engine_replication_oldest_unshipped_age_milliseconds", "gauge"],
        ["inferadb_engine_replication_epoch", "gauge"],
        ["inferadb_engine_replication_primary", "gauge"],
        ["inferadb_engine_replication_writable", "gauge"],
        ["inferadb_engine_replication_failover_events_total", "counter"],
        ["inferadb_engine_build_info", "gauge"]
      ])
      // Everything else is prom-client's default process metrics.
      expect(new Map([...declaredTypes(text)].filter(([name]) => name.startsWith("inferadb_")))).toEqual(expected)
      // prom-client keeps names as given: no `_total` is appended to the resolved counters.
      expect(text).toContain("\ninferadb_engine_replication_conflicts_resolved_local 1\n")
      expect(text).toContain("\ninferadb_engine_replication_conflicts_resolved_remote 1\n")
      expect(text).toContain('inferadb_engine_replication_changes_total{target="eu"} 4')
      expect(text).toContain('inferadb_engine_replication_batch_size_count{target="eu"} 1')
      expect(text).toContain('inferadb_engine_replication_duration_seconds_sum{target="eu"} 0.012')
      expect(text).toContain('inferadb_engine_replication_requests_refused_total{reason="UnknownRegion"} 1')
      expect(metrics.registry.contentType).toContain("text/plain; version=0.0.4")
    }))

  it.effect("backlog, role and failover events reach their gauges and counter; the process metrics and build_info are there", () =>
    Effect.gen(function* () {
      const metrics = PromMetrics.make({ version: "1.2.3", region: "eu", node: "eu-1" })
      metrics.recorder.backlog("us", 7, 1_234.4)
      metrics.recorder.role({ epoch: 3, primary: "us", writable: false })
      metrics.recorder.role({ epoch: 4, primary: "eu", writable: true })
      metrics.recorder.failoverEvent("promoted")
      metrics.recorder.failoverEvent("promoted")
      metrics.recorder.failoverEvent("fenced")
      const text = yield* Effect.promise(() => metrics.registry.metrics())
      expect(text).toContain('inferadb_engine_replication_unshipped_changes{target="us"} 7\n')
      expect(text).toContain('inferadb_engine_replication_oldest_unshipped_age_milliseconds{target="us"} 1234\n')
      expect(text).toContain("\ninferadb_engine_replication_epoch 4\n")
      // Only the current primary is 1: the previous one's series is gone.
      expect(text).toContain('inferadb_engine_replication_primary{region="eu"} 1\n')
      expect(text).not.toContain('inferadb_engine_replication_primary{region="us"}')
      expect(text).toContain("\ninferadb_engine_replication_writable 1\n")
      expect(text).toContain('inferadb_engine_replication_failover_events_total{event="promoted"} 2\n')
      expect(text).toContain('inferadb_engine_replication_failover_events_total{event="fenced"} 1\n')
      expect(text).toMatch(/^inferadb_engine_build_info\{version="1\.2\.3",node_version="v[^"]+",region="eu",node="eu-1"\} 1$/m)
      expect(declaredTypes(text).get("process_resident_memory_bytes")).toBe("gauge")
      expect(declaredTypes(text).get("nodejs_eventloop_lag_seconds")).toBe("gauge")
    }))

  it.effect("the store's commit observer fills three histograms: commit duration, transactions per commit, each transaction's wait", () =>
    Effect.gen(function* () {
      const metrics = PromMetrics.make()
      const observe = PromMetrics.storeCommitObserver(metrics)
      observe({ durationMs: 2.5, transactions: 3, durableWaitsMs: [2.5, 4, 6] })
      observe({ durationMs: 12, transactions: 1, durableWaitsMs: [12] })
      const text = yield* Effect.promise(() => metrics.registry.metrics())
      const types = declaredTypes(text)
      expect(types.get("inferadb_engine_store_commit_duration_seconds")).toBe("histogram")
      expect(types.get("inferadb_engine_store_commit_transactions")).toBe("histogram")
      expect(types.get("inferadb_engine_store_durable_wait_seconds")).toBe("histogram")
      expect(text).toContain("\ninferadb_engine_store_commit_duration_seconds_count 2\n")
      expect(text).toContain("\ninferadb_engine_store_commit_duration_seconds_sum 0.0145\n")
      expect(text).toContain('\ninferadb_engine_store_commit_duration_seconds_bucket{le="0.003"} 1\n')
      expect(text).toContain('\ninferadb_engine_store_commit_duration_seconds_bucket{le="0.015"} 2\n')
      expect(text).toContain("\ninferadb_engine_store_commit_transactions_sum 4\n")
      expect(text).toContain('\ninferadb_engine_store_commit_transactions_bucket{le="2"} 1\n')
      expect(text).toContain("\ninferadb_engine_store_durable_wait_seconds_count 4\n")
      expect(text).toContain('\ninferadb_engine_store_durable_wait_seconds_bucket{le="0.005"} 2\n')
    }))

  it.effect("the dialled-at-last-address gauge is 1 per peer name the dialler falls back for, read at each scrape", () =>
    Effect.gen(function* () {
      const metrics = PromMetrics.make()
      let names: ReadonlyArray<string> = ["engine-0.engine.ns.svc", "engine-1.engine.ns.svc"]
      PromMetrics.registerDialler(metrics, () => names)
      const first = yield* Effect.promise(() => metrics.registry.metrics())
      expect(declaredTypes(first).get("inferadb_engine_replication_peer_dialled_at_last_address")).toBe("gauge")
      expect(first).toContain('inferadb_engine_replication_peer_dialled_at_last_address{host="engine-0.engine.ns.svc"} 1\n')
      expect(first).toContain('inferadb_engine_replication_peer_dialled_at_last_address{host="engine-1.engine.ns.svc"} 1\n')
      // A name that resolves again leaves the gauge.
      names = ["engine-1.engine.ns.svc"]
      const second = yield* Effect.promise(() => metrics.registry.metrics())
      expect(second).not.toContain('host="engine-0.engine.ns.svc"')
      expect(second).toContain('inferadb_engine_replication_peer_dialled_at_last_address{host="engine-1.engine.ns.svc"} 1\n')
    }))

  it.effect("the idle-GC counter counts each collection IdleGc reports", () =>
    Effect.gen(function* () {
      const metrics = PromMetrics.make()
      const collected = PromMetrics.idleGcCounter(metrics)
      collected()
      collected()
      const text = yield* Effect.promise(() => metrics.registry.metrics())
      expect(declaredTypes(text).get("inferadb_engine_idle_gc_total")).toBe("counter")
      expect(text).toContain("\ninferadb_engine_idle_gc_total 2\n")
    }))

  it.effect("targets_connected counts the targets whose last exchange succeeded", () =>
    Effect.gen(function* () {
      const metrics = PromMetrics.make()
      metrics.recorder.targetConnected("eu", true)
      metrics.recorder.targetConnected("ap", true)
      metrics.recorder.targetConnected("eu", false)
      const connected = yield* Effect.promise(() => metrics.registry.getSingleMetric(PromMetrics.names.targetsConnected)!.get())
      expect(connected.values[0]!.value).toBe(1)
    }))

  it.effect("two nodes in one process keep separate registries", () =>
    Effect.gen(function* () {
      const first = PromMetrics.make()
      const second = PromMetrics.make()
      first.recorder.conflict("local")
      const firstText = yield* Effect.promise(() => first.registry.metrics())
      const secondText = yield* Effect.promise(() => second.registry.metrics())
      expect(firstText).toContain("\ninferadb_engine_replication_conflicts_total 1\n")
      expect(secondText).toContain("\ninferadb_engine_replication_conflicts_total 0\n")
    }))

  it.scoped("a running node reports replicated batches, resolved conflicts and refused batches under the seed's names", () =>
    Effect.gen(function* () {
      const cluster = Cluster.make({ regions: ["us", "eu"], resolver: ConflictResolver.insertWins })
      Network.partition(cluster.hub, "us", "eu")
      const us = yield* PromNode.start(cluster, "us")
      const eu = yield* PromNode.start(cluster, "eu")
      yield* us.replica.write([{ op: "insert", tuple }])
      yield* eu.replica.write([{ op: "delete", tuple }])
      yield* Cluster.settle(Effect.map(PromNode.value(us, PromMetrics.names.failuresTotal, { target: "eu" }), (failures) => failures >= 2))
      Network.heal(cluster.hub)
      const bothResolved = Effect.map(
        Effect.all([PromNode.value(us, PromMetrics.names.conflictsTotal), PromNode.value(eu, PromMetrics.names.conflictsTotal)]),
        ([usConflicts, euConflicts]) => usConflicts === 1 && euConflicts === 1
      )
      expect(yield* Cluster.settle(bothResolved)).toBe(true)
      // InsertWins: us kept its local insert, eu took the remote one.
      expect(yield* PromNode.value(us, PromMetrics.names.conflictsResolvedLocal)).toBe(1)
      expect(yield* PromNode.value(eu, PromMetrics.names.conflictsResolvedRemote)).toBe(1)
      expect(yield* PromNode.value(us, PromMetrics.names.changesTotal, { target: "eu" })).toBeGreaterThanOrEqual(1)
      expect(yield* PromNode.value(us, PromMetrics.names.targetsTotal)).toBe(1)
      expect(yield* PromNode.value(us, PromMetrics.names.targetsConnected)).toBe(1)

      const forged = {
        _tag: "ReplicateBatch" as const,
        batchId: "forged",
        fromRegion: "mars",
        fromNode: "mars-node1",
        changes: []
      }
      const response = yield* us.replica.handle(forged)
      expect(response).toMatchObject({ _tag: "Refused", reason: "UnknownRegion" })
      expect(yield* PromNode.value(us, PromMetrics.names.requestsRefusedTotal, { reason: "UnknownRegion" })).toBe(1)
    }))
})
