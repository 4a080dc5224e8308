/**
 * A small promise-based client of a node's public Relationships API (Write, Delete, Read,
 * Check, Watch), for the programs around the server rather than inside it: the local-cluster
 * demo (`npm start`), the end-to-end tests and the benchmark. It wraps the grpc-js client
 * generated from `service.proto`, attaches the bearer token of token mode to every call and
 * gives every unary call a deadline. Replication traffic does not go through here; it uses
 * `GrpcNetwork`.
 */
import * as grpc from "@grpc/grpc-js"
import * as Proto from "../proto/inferadb/replication/v1/messages.js"
import { RelationshipsClient } from "../proto/inferadb/replication/v1/service.js"
import type * as Store from "../replication/Store.js"
import type * as Tuple from "../replication/Tuple.js"
import * as WireCodec from "../replication/WireCodec.js"
import * as Auth from "./Auth.js"
import * as FlowControl from "./FlowControl.js"
import * as WriteStream from "./WriteStream.js"

/** Deadline of one unary call unless the caller gives one. */
export const callTimeoutMsDefault = 5_000

/** How to reach the node. */
export interface Options {
  /** Bearer token for token mode (and mtls with a token). */
  readonly token?: string
  /** Channel credentials; insecure unless given (mtls callers pass `Auth.load(...).channel`). */
  readonly credentials?: grpc.ChannelCredentials
  readonly callTimeoutMs?: number
  /** grpc-js channel options, e.g. a short reconnect backoff for a client that outlives node restarts. */
  readonly channelOptions?: grpc.ChannelOptions
  /**
   * Sends writes as frames on one WriteStream (the default) rather than a Write call each
   * (false): the same answers and statuses, a fraction of the CPU per write on both sides (see
   * service.proto). Deletes go on the stream too, as writes of delete operations. A node that
   * answers the stream UNIMPLEMENTED (an older version) gets Write calls from then on. False
   * suits a proxy that balances per request.
   */
  readonly writeStream?: boolean
}

/** One relationship inside the vault a call names. */
export interface Relationship {
  readonly resource: string
  readonly relation: string
  readonly subject: string
}

/** One operation of a write. */
export interface Operation extends Relationship {
  readonly op: "insert" | "delete"
}

/** Where a write landed in the serving region. */
export type Written = WriteStream.Written

/** A running Watch; `cancel` ends it. */
export interface Watching {
  readonly cancel: () => void
  /** Settles when the stream ends: resolves on cancel or a clean end, rejects on an error. */
  readonly done: Promise<void>
}

/** The client of one node. */
export interface ApiClient {
  readonly write: (vault: string, operations: ReadonlyArray<Operation>) => Promise<Written>
  readonly insert: (vault: string, relationships: ReadonlyArray<Relationship>) => Promise<Written>
  readonly delete: (vault: string, relationships: ReadonlyArray<Relationship>) => Promise<Written>
  /** The existing tuples of one resource (optionally one relation), in key order. */
  readonly read: (vault: string, resource: string, relation?: string) => Promise<ReadonlyArray<Tuple.Tuple>>
  readonly check: (tuple: Tuple.Tuple) => Promise<boolean>
  /** Streams committed log entries from `fromPosition` (0 = the next change) to `onEntry`. */
  readonly watch: (fromPosition: number, onEntry: (entry: Store.LogEntry) => void) => Watching
  readonly close: () => void
}

const operationToProto = (op: Operation["op"]): Proto.Operation =>
  op === "insert" ? Proto.Operation.OPERATION_INSERT : Proto.Operation.OPERATION_DELETE

const relationshipToProto = (relationship: Relationship): Proto.Relationship => ({
  resource: relationship.resource,
  relation: relationship.relation,
  subject: relationship.subject
})

/** Changes per Watch event this client asks for: fewer, larger messages (the server caps it). */
const watchChangesPerEvent = 256

/** Every page of a Read, one after another (`ReadPages`): a resource may hold more than one message carries. */
const everyPage = async (page: (pageToken: string) => Promise<Proto.ReadResponse>): Promise<ReadonlyArray<Tuple.Tuple>> => {
  const tuples: Array<Tuple.Tuple> = []
  let pageToken = ""
  do {
    const response = await page(pageToken)
    tuples.push(...response.tuples)
    pageToken = response.nextPageToken
  } while (pageToken !== "")
  return tuples
}

/** Connects to `address` (`host:port`); the channel opens on the first call. */
export const make = (address: string, options: Options = {}): ApiClient => {
  // Watch events of a few hundred changes outgrow HTTP/2's default 64 KiB windows (`FlowControl`).
  const client = new RelationshipsClient(address, options.credentials ?? grpc.credentials.createInsecure(), { ...FlowControl.clientOptions, ...options.channelOptions })
  const timeoutMs = options.callTimeoutMs ?? callTimeoutMsDefault
  const metadata = (): grpc.Metadata => {
    const value = new grpc.Metadata()
    if (options.token !== undefined) value.set(Auth.authorizationKey, `Bearer ${options.token}`)
    return value
  }
  const callOptions = (): grpc.CallOptions => ({ deadline: new Date(Date.now() + timeoutMs) })
  const unary = <A>(invoke: (callback: (error: grpc.ServiceError | null, value?: A) => void) => unknown): Promise<A> =>
    new Promise<A>((resolve, reject) => {
      invoke((error, value) => (error === null && value !== undefined ? resolve(value) : reject(error ?? new Error("empty response"))))
    })

  const writeRequest = (vault: string, operations: ReadonlyArray<Operation>): Proto.WriteRequest => ({
    vault,
    operations: operations.map((operation) => ({ op: operationToProto(operation.op), relationship: relationshipToProto(operation) }))
  })
  const writeCall = (request: Proto.WriteRequest): Promise<Written> =>
    unary<Proto.WriteResponse>((callback) => client.write(request, metadata(), callOptions(), callback))
  const streamed = options.writeStream === false ? undefined : WriteStream.make(client, metadata, timeoutMs, writeCall)
  const write = (vault: string, operations: ReadonlyArray<Operation>): Promise<Written> =>
    (streamed?.write ?? writeCall)(writeRequest(vault, operations))

  const watch = (fromPosition: number, onEntry: (entry: Store.LogEntry) => void): Watching => {
    const stream = client.watch({ fromPosition, changesPerEventMax: watchChangesPerEvent }, metadata())
    let cancelled = false
    const deliver = (entry: Proto.LogEntry) => {
      const decoded = WireCodec.logEntryFromProto(entry)
      if (decoded._tag === "Right") onEntry(decoded.right)
    }
    const done = new Promise<void>((resolve, reject) => {
      stream.on("data", (event: Proto.WatchEvent) => {
        if (event.event?.$case === "change") deliver(event.event.value)
        if (event.event?.$case === "changes") for (const entry of event.event.value.entries) deliver(entry)
      })
      stream.on("end", () => resolve())
      stream.on("error", (error: grpc.ServiceError) => (cancelled && error.code === grpc.status.CANCELLED ? resolve() : reject(error)))
    })
    // A rejection nobody awaits must not crash the caller's process.
    done.catch(() => undefined)
    return {
      cancel: () => {
        cancelled = true
        stream.cancel()
      },
      done
    }
  }

  return {
    write,
    insert: (vault, relationships) => write(vault, relationships.map((relationship) => ({ op: "insert", ...relationship }))),
    // On the stream a delete is a write of delete operations, which the node handles exactly as a Delete call.
    delete: (vault, relationships) =>
      streamed === undefined
        ? unary<Proto.DeleteResponse>((callback) => client.delete({ vault, relationships: relationships.map(relationshipToProto) }, metadata(), callOptions(), callback))
        : write(vault, relationships.map((relationship) => ({ op: "delete", ...relationship }))),
    read: (vault, resource, relation) =>
      everyPage((pageToken) =>
        unary<Proto.ReadResponse>((callback) =>
          client.read({ vault, resource, ...(relation === undefined ? {} : { relation }), pageSize: 0, pageToken }, metadata(), callOptions(), callback)
        )
      ),
    check: (tuple) =>
      unary<Proto.CheckResponse>((callback) => client.check({ tuple }, metadata(), callOptions(), callback)).then((response) => response.allowed),
    watch,
    close: () => {
      streamed?.close()
      client.close()
    }
  }
}
