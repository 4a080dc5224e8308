/**
 * The production `Metrics.Recorder`: prom-client metrics under the seed's exact names, in a
 * registry of their own (never prom-client's global one), so several nodes in one process,
 * as in tests, each expose only their own numbers. `HttpServer` serves the registry at
 * `/metrics` in Prometheus text format 0.0.4, which prints names exactly as given here (the
 * OpenMetrics format would append `_total` to counters, turning the seed's
 * `..._conflicts_resolved_local` into another name).
 *
 * Labels: `target` (the target region) on changes, failures, lag, batch size and duration;
 * `reason` on refused requests (`GrpcServer.RefusalReason`, and the replication handler's
 * `Refused` reasons). Conflict counters and target counts are per node.
 *
 * Beyond the seed's ten names (kept exactly): the backlog per target (`Backlog`), the role
 * (epoch, primary, writable: `Role`), failover events by kind, the store's failed transactions
 * (`registerStore`), prom-client's default process metrics (CPU, memory, event loop lag, file
 * descriptors, GC) and `inferadb_engine_build_info`.
 */
import { Layer } from "effect"
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client"
import * as Metrics from "../replication/Metrics.js"
import type * as KvLmdb from "./KvLmdb.js"

/** The seed's metric names, plus the refused-requests counter. */
export const names = {
  changesTotal: "inferadb_engine_replication_changes_total",
  failuresTotal: "inferadb_engine_replication_failures_total",
  conflictsTotal: "inferadb_engine_replication_conflicts_total",
  conflictsResolvedLocal: "inferadb_engine_replication_conflicts_resolved_local",
  conflictsResolvedRemote: "inferadb_engine_replication_conflicts_resolved_remote",
  lagMilliseconds: "inferadb_engine_replication_lag_milliseconds",
  targetsConnected: "inferadb_engine_replication_targets_connected",
  targetsTotal: "inferadb_engine_replication_targets_total",
  batchSize: "inferadb_engine_replication_batch_size",
  durationSeconds: "inferadb_engine_replication_duration_seconds",
  requestsRefusedTotal: "inferadb_engine_replication_requests_refused_total",
  changesSkippedTotal: "inferadb_engine_replication_changes_skipped_total",
  unshippedChanges: "inferadb_engine_replication_unshipped_changes",
  oldestUnshippedAgeMilliseconds: "inferadb_engine_replication_oldest_unshipped_age_milliseconds",
  epoch: "inferadb_engine_replication_epoch",
  primary: "inferadb_engine_replication_primary",
  writable: "inferadb_engine_replication_writable",
  failoverEventsTotal: "inferadb_engine_replication_failover_events_total",
  storeFailedTransactionsTotal: "inferadb_engine_store_failed_transactions_total",
  storeFailedTransactionsInARow: "inferadb_engine_store_failed_transactions_in_a_row",
  storeCommitDurationSeconds: "inferadb_engine_store_commit_duration_seconds",
  storeCommitTransactions: "inferadb_engine_store_commit_transactions",
  storeDurableWaitSeconds: "inferadb_engine_store_durable_wait_seconds",
  idleGcTotal: "inferadb_engine_idle_gc_total",
  peerDialledAtLastAddress: "inferadb_engine_replication_peer_dialled_at_last_address",
  buildInfo: "inferadb_engine_build_info"
} as const

/** Batch-size buckets in changes, up to well past the default `batch_size` of 100. */
export const batchSizeBuckets: ReadonlyArray<number> = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000]

/** Round-trip buckets in seconds, from a same-zone hop to a slow cross-continent retry. */
export const durationBuckets: ReadonlyArray<number> = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

/**
 * Commit buckets in seconds: this VM's fsync'd LMDB commit of a 100-change write takes 1-2 ms
 * alone and 3-5 ms at its 99th percentile; a group of thousands of changes on a busy node, tens.
 */
export const commitBuckets: ReadonlyArray<number> = [0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.1, 0.25, 1]

/** Transaction bodies per durable commit: 1 when writes come one at a time, more as they overlap. */
export const commitTransactionBuckets: ReadonlyArray<number> = [1, 2, 4, 8, 16, 32, 64, 128]

/** A node's metrics: the registry to serve and the recorder replication code reports to. */
export interface PromMetrics {
  readonly registry: Registry
  readonly recorder: Metrics.Recorder
}

/** What `inferadb_engine_build_info` says (its value is always 1). */
export interface BuildInfo {
  readonly version: string
  readonly region?: string
  readonly node?: string
}

/** The backlog, role and failover-event metrics, registered in `registry`. */
const operations = (registers: Array<Registry>) => {
  const unshipped = new Gauge({ name: names.unshippedChanges, help: "Changes a target has not acknowledged yet", labelNames: ["target"], registers })
  const oldest = new Gauge({
    name: names.oldestUnshippedAgeMilliseconds,
    help: "How long the oldest change a target has not acknowledged has been durable here (0 when none)",
    labelNames: ["target"],
    registers
  })
  const epoch = new Gauge({ name: names.epoch, help: "PrimaryReplica epoch this node is in (0 under other strategies)", registers })
  const primary = new Gauge({ name: names.primary, help: "1 for the region this node sees as primary of the current epoch", labelNames: ["region"], registers })
  const writable = new Gauge({ name: names.writable, help: "1 when this node takes client writes now", registers })
  const events = new Counter({
    name: names.failoverEventsTotal,
    help: "Changes of this node's primary view: promoted, adopted, reclaimed, handed-back, fenced, confirmed, advanced",
    labelNames: ["event"],
    registers
  })
  const recorder: Pick<Metrics.Recorder, "backlog" | "role" | "failoverEvent"> = {
    backlog: (target, changes, oldestAgeMs) => {
      unshipped.set({ target }, changes)
      oldest.set({ target }, Math.round(oldestAgeMs))
    },
    role: (role) => {
      epoch.set(role.epoch)
      primary.reset()
      if (role.primary !== undefined) primary.set({ region: role.primary }, 1)
      writable.set(role.writable ? 1 : 0)
    },
    failoverEvent: (event) => events.inc({ event })
  }
  return recorder
}

/** Creates the metrics of one node in a fresh registry, with the process's default metrics and `build_info`. */
export const make = (build: BuildInfo = { version: "unknown" }): PromMetrics => {
  const registry = new Registry()
  const registers = [registry]
  collectDefaultMetrics({ register: registry })
  const info = new Gauge({ name: names.buildInfo, help: "Build and node identity (always 1)", labelNames: ["version", "node_version", "region", "node"], registers })
  info.set({ version: build.version, node_version: process.version, region: build.region ?? "", node: build.node ?? "" }, 1)
  const changes = new Counter({ name: names.changesTotal, help: "Total changes replicated", labelNames: ["target"], registers })
  const failures = new Counter({ name: names.failuresTotal, help: "Total replication failures", labelNames: ["target"], registers })
  const conflicts = new Counter({ name: names.conflictsTotal, help: "Total conflicts detected", registers })
  const resolvedLocal = new Counter({ name: names.conflictsResolvedLocal, help: "Conflicts resolved by keeping local change", registers })
  const resolvedRemote = new Counter({ name: names.conflictsResolvedRemote, help: "Conflicts resolved by keeping remote change", registers })
  const lag = new Gauge({ name: names.lagMilliseconds, help: "Current replication lag", labelNames: ["target"], registers })
  const connected = new Gauge({ name: names.targetsConnected, help: "Number of connected targets", registers })
  const total = new Gauge({ name: names.targetsTotal, help: "Total configured targets", registers })
  const batchSize = new Histogram({
    name: names.batchSize,
    help: "Distribution of batch sizes",
    labelNames: ["target"],
    buckets: [...batchSizeBuckets],
    registers
  })
  const duration = new Histogram({
    name: names.durationSeconds,
    help: "Duration of replication operations",
    labelNames: ["target"],
    buckets: [...durationBuckets],
    registers
  })
  const skipped = new Counter({
    name: names.changesSkippedTotal,
    help: "Changes a target refused for good (residency, malformed), dropped from their batch instead of retried forever",
    labelNames: ["target", "reason"],
    registers
  })
  const refused = new Counter({
    name: names.requestsRefusedTotal,
    help: "Requests refused (unauthenticated, oversized headers or message, malformed, invalid, unknown region, residency)",
    labelNames: ["reason"],
    registers
  })

  // A target counts as connected when its last exchange succeeded.
  const lastExchange = new Map<string, boolean>()
  const recorder: Metrics.Recorder = {
    batchReplicated: (target, size, durationMs) => {
      changes.inc({ target }, size)
      batchSize.observe({ target }, size)
      duration.observe({ target }, durationMs / 1000)
    },
    replicationFailed: (target) => failures.inc({ target }),
    lag: (target, lagMs) => lag.set({ target }, lagMs),
    targetConnected: (target, isConnected) => {
      lastExchange.set(target, isConnected)
      connected.set([...lastExchange.values()].filter(Boolean).length)
    },
    targetsTotal: (count) => total.set(count),
    conflict: (resolvedFor) => {
      conflicts.inc()
      if (resolvedFor === "local") resolvedLocal.inc()
      else resolvedRemote.inc()
    },
    requestRefused: (reason) => refused.inc({ reason }),
    changeSkipped: (target, reason) => skipped.inc({ target, reason }),
    ...operations(registers)
  }
  return { registry, recorder }
}

/**
 * The store's failed transactions (`Store.failedTransactions`), read at each scrape: in all, and
 * since the last that committed (non-zero exactly while `/readyz` says the store does not commit).
 */
export const registerStore = (metrics: PromMetrics, read: () => { readonly inARow: number; readonly total: number }): void => {
  const registers = [metrics.registry]
  new Counter({
    name: names.storeFailedTransactionsTotal,
    help: "Store transactions that failed with a store error (a full or failing disk)",
    registers,
    collect() {
      this.reset()
      this.inc(read().total)
    }
  })
  new Gauge({
    name: names.storeFailedTransactionsInARow,
    help: "Store transactions that failed since the last one that committed",
    registers,
    collect() {
      this.set(read().inARow)
    }
  })
}

/**
 * Peer names that no longer resolve, whose new connections dial the addresses they last had
 * (`DialAddress`), read at each scrape: 1 per such name, none otherwise. A DNS outage shows
 * here before it costs anything; once a peer moves, those addresses lead nowhere.
 */
export const registerDialler = (metrics: PromMetrics, fallingBack: () => ReadonlyArray<string>): void => {
  new Gauge({
    name: names.peerDialledAtLastAddress,
    help: "1 for each peer host name that does not resolve now, whose new connections dial the addresses it last resolved to",
    labelNames: ["host"],
    registers: [metrics.registry],
    collect() {
      this.reset()
      for (const host of fallingBack()) this.set({ host }, 1)
    }
  })
}

/**
 * The group commit of the embedded store (`KvLmdb`'s `onCommit`): how long each durable commit
 * took, how many transactions it held, and how long each transaction waited from the end of its
 * body until it was durable. A write's acknowledgement and a batch's replication both wait for
 * that, so it is the store's share of the replication lag.
 */
export const storeCommitObserver = (metrics: PromMetrics): ((commit: KvLmdb.CommitObservation) => void) => {
  const registers = [metrics.registry]
  const duration = new Histogram({
    name: names.storeCommitDurationSeconds,
    help: "Durable commits of the store: from handing a group of transactions to lmdb until they are written and synced",
    buckets: [...commitBuckets],
    registers
  })
  const transactions = new Histogram({
    name: names.storeCommitTransactions,
    help: "Transactions (client writes, applied batches, cursor moves) that shared one durable commit",
    buckets: [...commitTransactionBuckets],
    registers
  })
  const durableWait = new Histogram({
    name: names.storeDurableWaitSeconds,
    help: "Transactions: from the end of the body until the commit holding its writes was durable (the commit ahead of it, then its own)",
    buckets: [...commitBuckets],
    registers
  })
  return (commit) => {
    duration.observe(commit.durationMs / 1000)
    transactions.observe(commit.transactions)
    for (const waitMs of commit.durableWaitsMs) durableWait.observe(waitMs / 1000)
  }
}

/** The Metrics service reporting into `metrics`. */
export const layer = (metrics: PromMetrics): Layer.Layer<Metrics.Metrics> => Layer.succeed(Metrics.Metrics, metrics.recorder)

/** Counts the young-generation collections `IdleGc` runs while the event loop is idle (`process.idle_gc`). */
export const idleGcCounter = (metrics: PromMetrics): (() => void) => {
  const collections = new Counter({
    name: names.idleGcTotal,
    help: "Young-generation garbage collections run while the event loop was idle, between requests (process.idle_gc)",
    registers: [metrics.registry]
  })
  return () => collections.inc()
}
