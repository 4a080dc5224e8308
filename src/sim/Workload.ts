/**
 * The clients: inserts and deletes across vaults, resource types and relations, with a few
 * hot tuples that take a fixed share of the operations so regions write the same tuples
 * concurrently. Each client region issues writes as a Poisson process (interarrival times
 * from the `workload` stream) between `startMs` and `startMs + durationMs`.
 *
 * A write enters at a random live node of the client's region, which routes it with its own
 * Router (PrimaryReplica: the current primary; MultiMaster: the vault's home region;
 * ActiveActive: the local region, or the next available one) and the chosen node commits it
 * with `Replica.write`. Every attempt is recorded with its virtual start and end time and
 * whether it was acknowledged.
 */
import { Cause, Effect, Option } from "effect"
import type * as Random from "../replication/Random.js"
import type * as Replica from "../replication/Replica.js"
import type * as Tuple from "../replication/Tuple.js"
import type { History, WriteRecord } from "./History.js"
import type { Node } from "./Node.js"
import type { WorkloadSpec } from "./Scenario.js"
import type { SimNetwork } from "./SimNetwork.js"
import type { World } from "./World.js"

/** What the clients need from the run. */
export interface Cluster {
  readonly world: World
  readonly network: SimNetwork
  readonly history: History
  readonly nodesIn: (regionId: string) => ReadonlyArray<Node>
  readonly node: (nodeId: string) => Node | undefined
}

/** The tuple with a given index in a vault's key space; hot tuples are the lowest indices. */
export const tupleAt = (spec: WorkloadSpec, vault: string, index: number): Tuple.Tuple => {
  const type = spec.resourceTypes[index % spec.resourceTypes.length]!
  const relation = spec.relations[Math.floor(index / spec.resourceTypes.length) % spec.relations.length]!
  return { vault, resource: `${type}:r${index}`, relation, subject: `user:u${index % 7}` }
}

/** Draws the operations of one write (one vault, distinct tuples). */
export const plan = (spec: WorkloadSpec, random: Random.Stream): ReadonlyArray<Replica.Operation> => {
  const vault = spec.vaults[random.int(spec.vaults.length)]!
  const count = 1 + random.int(spec.opsPerWriteMax)
  const chosen = new Set<number>()
  for (let attempt = 0; attempt < count; attempt++) {
    const hot = spec.hotTuples > 0 && random.next() < spec.hotFraction
    chosen.add(hot ? random.int(spec.hotTuples) : random.int(spec.tuples))
  }
  return [...chosen].map((index) => ({ op: random.next() < spec.deleteFraction ? "delete" : "insert", tuple: tupleAt(spec, vault, index) }))
}

const describe = (cause: Cause.Cause<unknown>): { readonly outcome: "rejected" | "failed" | "interrupted"; readonly reason: string } => {
  if (Cause.isInterruptedOnly(cause)) return { outcome: "interrupted", reason: "the node crashed during the write" }
  const failure = Cause.failureOption(cause)
  if (Option.isNone(failure)) return { outcome: "failed", reason: Cause.pretty(cause) }
  const error = failure.value as { readonly _tag?: string; readonly reason?: string; readonly message?: string }
  const outcome = error._tag === "WriteRejected" || error._tag === "RouteError" ? "rejected" : "failed"
  return { outcome, reason: `${error._tag ?? "Error"}${error.reason === undefined ? "" : `(${error.reason})`}: ${error.message ?? ""}` }
}

/** The clients of a run. */
export class Workload {
  private issued = 0

  constructor(
    private readonly spec: WorkloadSpec,
    /** The `workload` stream. */
    private readonly random: Random.Stream,
    private readonly cluster: Cluster
  ) {}

  /** When the last write may be issued. */
  get endMs(): number {
    return this.spec.startMs + this.spec.durationMs
  }

  /** Schedules the first arrival of every client region. */
  start(): void {
    if (this.spec.ratePerSec <= 0 || this.spec.durationMs <= 0) return
    for (const region of this.spec.regions) this.scheduleNext(region, this.spec.startMs)
  }

  private scheduleNext(region: string, fromMs: number): void {
    const gapMs = (-Math.log(1 - this.random.next()) / this.spec.ratePerSec) * 1000
    const atMs = fromMs + gapMs
    if (atMs > this.endMs) return
    const number = ++this.issued
    this.cluster.world.schedule(atMs, "write", region, `#${number}`, () => {
      this.issue(region)
      this.scheduleNext(region, atMs)
    })
  }

  /** Issues one write from a client of `region`. */
  private issue(region: string): void {
    const { history, world } = this.cluster
    const operations = plan(this.spec, this.random)
    const record = history.begin(region, operations, world.nowMs)
    const entries = this.cluster.nodesIn(region).filter((node) => node.ready !== undefined)
    if (entries.length === 0) return history.end(record, "failed", world.nowMs, { reason: `no node of ${region} is up` })
    const entry = entries[this.random.int(entries.length)]!
    record.entryNode = entry.id
    const vault = operations[0]!.tuple.vault
    const routed = entry.fork(entry.ready!.router.route({ type: "Write", vault }), (exit) => {
      if (exit._tag === "Failure") return history.end(record, describe(exit.cause).outcome, world.nowMs, { reason: describe(exit.cause).reason })
      this.commit(record, region, exit.value.nodeId)
    })
    if (!routed) history.end(record, "failed", world.nowMs, { reason: `${entry.id} is down` })
  }

  /** Sends a routed write to the node that takes it. */
  private commit(record: WriteRecord, clientRegion: string, nodeId: string): void {
    const { history, world, network } = this.cluster
    const target = this.cluster.node(nodeId)
    const handles = target?.ready
    if (target === undefined || handles === undefined) return history.end(record, "failed", world.nowMs, { reason: `${nodeId} is down` })
    if (!network.regionReachable(clientRegion, target.regionId)) {
      return history.end(record, "failed", world.nowMs, { reason: `${target.regionId} is unreachable from ${clientRegion}` })
    }
    record.targetNode = target.id
    record.targetRegion = target.regionId
    const deadlineMs = this.spec.deadlineMs === undefined ? undefined : record.startedAtMs + this.spec.deadlineMs
    // The client stops waiting at its deadline; whatever the server does later is unknown to it.
    if (deadlineMs !== undefined) {
      world.schedule(deadlineMs, "deadline", clientRegion, `#${record.id}`, () => {
        if (record.outcome === "pending") history.end(record, "failed", world.nowMs, { reason: "the client's deadline passed (outcome unknown)" })
      })
    }
    const write = Effect.gen(function* () {
      const state = yield* handles.failover.state
      record.admittedAtMs = world.nowMs
      record.epoch = state.epoch
      return yield* handles.replica.write(record.operations, deadlineMs === undefined ? {} : { deadlineMs })
    })
    target.fork(write, (exit) => {
      if (record.outcome !== "pending") return
      if (exit._tag === "Success") return history.end(record, "acknowledged", world.nowMs, { changes: exit.value.changes })
      const { outcome, reason } = describe(exit.cause)
      history.end(record, outcome, world.nowMs, { reason })
    })
  }
}
