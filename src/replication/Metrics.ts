/**
 * Replication metrics as a service, so shared code records observations without knowing
 * where they go: the runtime binds them to prom-client under the seed's metric names, the
 * simulator and tests keep them in memory per node. (Effect's global metric registry would
 * mix the many nodes one simulator process runs.)
 */
import { Context, Layer } from "effect"

/** Observations the replication code reports. All are synchronous and cheap. */
export interface Recorder {
  /** A batch was acknowledged by a target: its size and how long the round trip took. */
  readonly batchReplicated: (target: string, size: number, durationMs: number) => void
  /** A send to a target failed. */
  readonly replicationFailed: (target: string) => void
  /** Current lag towards a target in milliseconds (0 when caught up). */
  readonly lag: (target: string, lagMs: number) => void
  /** Whether the last exchange with a target succeeded. */
  readonly targetConnected: (target: string, connected: boolean) => void
  /** Number of configured targets. */
  readonly targetsTotal: (count: number) => void
  /** A conflict was found on apply and resolved for the local or the remote change. */
  readonly conflict: (resolvedFor: "local" | "remote") => void
  /** A request was refused (unauthenticated, oversized, malformed, invalid, unknown region, residency). */
  readonly requestRefused: (reason: string) => void
  /** A change the target refused for good (residency, malformed) was dropped from its batch, not retried forever. */
  readonly changeSkipped: (target: string, reason: string) => void
  /** Changes a target has not acknowledged yet, and how long the oldest of them has waited here (0 when none). */
  readonly backlog: (target: string, unshippedChanges: number, oldestUnshippedAgeMs: number) => void
  /** Who takes writes as this node sees it (PrimaryReplica epochs; epoch 0 and no primary otherwise). */
  readonly role: (role: Role) => void
  /** This node's view of the primary changed (see `Failover.Cause`). */
  readonly failoverEvent: (event: FailoverEvent) => void
}

/** The role gauges: the epoch, its primary region, and whether this node takes client writes now. */
export interface Role {
  readonly epoch: number
  readonly primary: string | undefined
  readonly writable: boolean
}

/** Changes of the primary view that are counted: every `Failover.Cause` but the initial one. */
export type FailoverEvent = "promoted" | "adopted" | "reclaimed" | "handed-back" | "fenced" | "confirmed" | "advanced"

/** The Metrics service. */
export class Metrics extends Context.Tag("inferadb/Metrics")<Metrics, Recorder>() {}

/** Discards every observation. */
export const noop: Recorder = {
  batchReplicated: () => {},
  replicationFailed: () => {},
  lag: () => {},
  targetConnected: () => {},
  targetsTotal: () => {},
  conflict: () => {},
  requestRefused: () => {},
  changeSkipped: () => {},
  backlog: () => {},
  role: () => {},
  failoverEvent: () => {}
}

/** A layer that discards every observation. */
export const layerNoop: Layer.Layer<Metrics> = Layer.succeed(Metrics, noop)

/** In-memory totals, for tests and simulation reports. */
export interface MemoryMetrics {
  changesReplicated: number
  batches: number
  failures: number
  conflicts: number
  resolvedLocal: number
  resolvedRemote: number
  refused: number
  skipped: number
  readonly batchSizes: Array<number>
  readonly lagMs: Map<string, number>
  readonly lagSamples: Array<number>
  readonly connected: Map<string, boolean>
  targetsTotal: number
  readonly unshipped: Map<string, { readonly changes: number; readonly oldestAgeMs: number }>
  role: Role | undefined
  readonly failoverEvents: Map<FailoverEvent, number>
}

/** Fresh in-memory totals. */
export const makeMemory = (): MemoryMetrics => ({
  changesReplicated: 0,
  batches: 0,
  failures: 0,
  conflicts: 0,
  resolvedLocal: 0,
  resolvedRemote: 0,
  refused: 0,
  skipped: 0,
  batchSizes: [],
  lagMs: new Map(),
  lagSamples: [],
  connected: new Map(),
  targetsTotal: 0,
  unshipped: new Map(),
  role: undefined,
  failoverEvents: new Map()
})

/** A recorder that adds up into `totals`. */
export const recorderMemory = (totals: MemoryMetrics): Recorder => ({
  batchReplicated: (_target, size) => {
    totals.batches++
    totals.changesReplicated += size
    totals.batchSizes.push(size)
  },
  replicationFailed: () => void totals.failures++,
  lag: (target, lagMs) => {
    totals.lagMs.set(target, lagMs)
    if (lagMs > 0) totals.lagSamples.push(lagMs)
  },
  targetConnected: (target, connected) => void totals.connected.set(target, connected),
  targetsTotal: (count) => void (totals.targetsTotal = count),
  conflict: (resolvedFor) => {
    totals.conflicts++
    if (resolvedFor === "local") totals.resolvedLocal++
    else totals.resolvedRemote++
  },
  requestRefused: () => void totals.refused++,
  changeSkipped: () => void totals.skipped++,
  backlog: (target, changes, oldestAgeMs) => void totals.unshipped.set(target, { changes, oldestAgeMs }),
  role: (role) => void (totals.role = role),
  failoverEvent: (event) => void totals.failoverEvents.set(event, (totals.failoverEvents.get(event) ?? 0) + 1)
})

/** A layer that adds up into `totals`. */
export const layerMemory = (totals: MemoryMetrics): Layer.Layer<Metrics> => Layer.succeed(Metrics, recorderMemory(totals))
