/**
 * The clients of a chaos run: the scenario's workload drawn from the seed's `workload` stream
 * (Poisson arrivals per client region, operations by the simulator's own `Workload.plan`), then
 * sent in real time through the public gRPC API to a node of the client's region. Every write is
 * recorded as invoked, then acknowledged (with the revision and log position the node returned),
 * failed (the node refused it: nothing was written) or unknown (no answer: a deadline, a dropped
 * connection; it may or may not have been committed), with the harness's times.
 */
import * as grpc from "@grpc/grpc-js"
import * as Random from "../replication/Random.js"
import type * as Replica from "../replication/Replica.js"
import type * as ApiClient from "../runtime/ApiClient.js"
import type { Scenario } from "../sim/Scenario.js"
import * as SimWorkload from "../sim/Workload.js"

/** One planned write. */
export interface Planned {
  readonly id: number
  readonly atMs: number
  readonly region: string
  readonly node: string
  readonly operations: ReadonlyArray<Replica.Operation>
}

/** What became of a write, as the client saw it. */
export type Status = "invoked" | "acknowledged" | "failed" | "unknown"

/** One write with its outcome. */
export interface Op extends Planned {
  /** The node that took (or last refused) the write: `node`, or where a refusal redirected it. */
  target: string
  status: Status
  invokedAtMs: number | undefined
  /** When the last attempt was sent (after a redirect, the second one). */
  sentAtMs: number | undefined
  endedAtMs: number | undefined
  reason: string | undefined
  revision: number | undefined
  position: number | undefined
  /** The failover epoch the node said it took the write in (`WriteResponse.epoch`). */
  epoch: number | undefined
  /**
   * The disk generation of the taking node when the write was sent to it (its last attempt), set
   * once it is acknowledged. Taken at the send, not at the acknowledgement: a node wiped just
   * after it answered (SIGKILL, its directory moved aside) has a new generation by the time the
   * answer reaches the client, and a write recorded under that one looked acknowledged by the new
   * disk, so its changes, gone with the old one, were judged lost (chaos swarm seed 9940002).
   * Only the process the request reached can answer it, and a restart takes far longer than a
   * write: the old generation answered.
   */
  generation: number | undefined
}

/** The writes of a run, drawn from the seed: the same seed gives the same list. */
export const draw = (scenario: Scenario, seed: string): ReadonlyArray<Planned> => {
  const spec = scenario.workload
  if (spec.ratePerSec <= 0 || spec.durationMs <= 0) return []
  const random = Random.make(seed).derive("workload")
  const endMs = spec.startMs + spec.durationMs
  const writes: Array<Omit<Planned, "id">> = []
  for (const region of spec.regions) {
    const nodes = scenario.topology.regions.find((candidate) => candidate.id === region)?.nodes ?? []
    let atMs = spec.startMs
    for (;;) {
      atMs += (-Math.log(1 - random.next()) / spec.ratePerSec) * 1000
      if (atMs > endMs) break
      writes.push({ atMs, region, node: nodes[random.int(nodes.length)]!, operations: SimWorkload.plan(spec, random) })
    }
  }
  return writes.sort((a, b) => a.atMs - b.atMs).map((write, index) => ({ ...write, id: index + 1 }))
}

/** Status codes that mean the node refused the write before committing anything. */
const refusals = new Set([grpc.status.FAILED_PRECONDITION, grpc.status.INVALID_ARGUMENT, grpc.status.NOT_FOUND, grpc.status.PERMISSION_DENIED, grpc.status.UNAUTHENTICATED, grpc.status.RESOURCE_EXHAUSTED])

/** Whether a failed call certainly wrote nothing: a refusal, or a connection that was never made. */
export const certainlyNotWritten = (error: unknown): boolean => {
  const code = (error as { readonly code?: number }).code
  if (code !== undefined && refusals.has(code)) return true
  const details = String((error as { readonly details?: string }).details ?? "")
  // "No connection established": the call never left the client. "Connection dropped" is not
  // here: the node may have committed the write before its connection died.
  return code === grpc.status.UNAVAILABLE && /ECONNREFUSED|No connection established/.test(details)
}

/**
 * The region a refusal sends the client to, when it names one: the primary (PrimaryReplica) or
 * the vault's home (MultiMaster). The simulator's clients go there through the router; a real
 * client follows the refusal once, as it would follow a redirect.
 */
export const redirectOf = (error: unknown): string | undefined => {
  if ((error as { readonly code?: number }).code !== grpc.status.FAILED_PRECONDITION) return undefined
  const details = String((error as { readonly details?: string }).details ?? "")
  return /writes go to the primary region '([^']+)'/.exec(details)?.[1] ?? /is homed in '([^']+)'/.exec(details)?.[1]
}

/** How the clients reach the nodes. */
export interface Clients {
  readonly client: (nodeId: string) => ApiClient.ApiClient
  /** The nodes of a region, in declaration order. */
  readonly nodesIn: (regionId: string) => ReadonlyArray<string>
  readonly regionOf: (nodeId: string) => string
  /** The node's disk generation now (0 until its first wipe). */
  readonly generationOf: (nodeId: string) => number
}

/** Sends one write (following one redirect) and records its outcome; `nowMs` is the run's clock. */
export const send = async (op: Op, clients: Clients, nowMs: () => number): Promise<void> => {
  op.status = "invoked"
  op.invokedAtMs = nowMs()
  const vault = op.operations[0]!.tuple.vault
  const operations = op.operations.map((operation) => ({ op: operation.op, resource: operation.tuple.resource, relation: operation.tuple.relation, subject: operation.tuple.subject }))
  for (let attempt = 0; ; attempt++) {
    try {
      op.sentAtMs = nowMs()
      const generation = clients.generationOf(op.target)
      const written = await clients.client(op.target).write(vault, operations)
      op.generation = generation
      op.status = "acknowledged"
      op.revision = written.revision
      op.position = written.position
      op.epoch = written.epoch
    } catch (error) {
      const region = redirectOf(error)
      const nodes = region === undefined || region === clients.regionOf(op.target) ? [] : clients.nodesIn(region)
      if (attempt === 0 && nodes.length > 0) {
        op.target = nodes[op.id % nodes.length]!
        continue
      }
      op.status = certainlyNotWritten(error) ? "failed" : "unknown"
      op.reason = error instanceof Error ? error.message : String(error)
    }
    op.endedAtMs = nowMs()
    return
  }
}

/** A fresh record of a planned write. */
export const record = (planned: Planned): Op => ({ ...planned, target: planned.node, status: "invoked", invokedAtMs: undefined, sentAtMs: undefined, endedAtMs: undefined, reason: undefined, revision: undefined, position: undefined, epoch: undefined, generation: undefined })
