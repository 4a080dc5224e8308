/**
 * Bootstrap of a node whose store is empty, or whose last bootstrap did not finish, while
 * other regions exist: it pages each reachable peer region's durable log with the CatchUp
 * method and applies every page through `Replica.applyBatch`, so a region whose data directory
 * was lost (or that joins late, after its peers' agents moved their cursors past changes it
 * never stored) gets the history back.
 *
 * Applying is the ordinary merge: idempotent, commutative, causality respected per tuple, so
 * it is safe while the peers' agents replicate to this node at the same time and safe to
 * repeat. It must finish before the node takes client writes, though: the region's own
 * changes come back too, and the origin sequence counter is moved past the highest one found
 * (before the page that holds it is applied, so a crash in between leaves only a harmless gap),
 * or a new local write would reuse an id the other regions already hold and they would ignore
 * it as a duplicate.
 *
 * Completion is recorded in the store (a marker kept as a pseudo cursor) only once every peer
 * region was paged to its log end; until then every start bootstraps again, so a node that was
 * killed halfway, or whose peers were down when it started empty, still gets the whole history.
 *
 * Bounded: one attempt per node, pages of `pageSize` log positions, everything within
 * `timeoutMs`; an unreachable region is skipped (and the bootstrap stays incomplete). Changes
 * of a lost store that never left it are gone: only that store had acknowledged them.
 */
import * as grpc from "@grpc/grpc-js"
import { Clock as EffectClock, Effect, Either } from "effect"
import * as Proto from "../proto/inferadb/replication/v1/messages.js"
import { ReplicationClient } from "../proto/inferadb/replication/v1/service.js"
import type * as Change from "../replication/Change.js"
import type { StoreError } from "../replication/Errors.js"
import * as Replica from "../replication/Replica.js"
import * as Store from "../replication/Store.js"
import * as Topology from "../replication/Topology.js"
import * as TopologyManager from "../replication/TopologyManager.js"
import * as WireCodec from "../replication/WireCodec.js"
import type * as Auth from "./Auth.js"
import * as GrpcNetwork from "./GrpcNetwork.js"

/** Log positions asked for per CatchUp page (the server caps it at `GrpcServer.catchUpPageSizeMax`). */
export const pageSizeDefault = 1_000
/** The whole bootstrap gives up after this long and the node starts with what it has. */
export const timeoutMsDefault = 30_000
/** Deadline of one CatchUp call. */
export const callTimeoutMsDefault = 2_000

/**
 * The pseudo cursor that records a completed bootstrap. Cursors are keyed by target region;
 * this name starts with NUL, which no real region id contains.
 */
export const completionMarker = "\u0000bootstrap-complete"

/** Who bootstraps and how it reaches its peers. */
export interface Options {
  readonly regionId: Topology.RegionId
  readonly nodeId: Topology.NodeId
  readonly credentials: Auth.Credentials
  readonly messageBytesMax: number
  readonly pageSize?: number
  readonly timeoutMs?: number
  readonly callTimeoutMs?: number
}

/** What one peer region gave. */
export interface SourceOutcome {
  readonly region: Topology.RegionId
  /** The node that answered, when one did. */
  readonly node: Topology.NodeId | undefined
  readonly entries: number
  /** Changes that were new here. */
  readonly applied: number
  /** Why the region was skipped or stopped early. */
  readonly error: string | undefined
  /** The region's log was paged to its end. */
  readonly complete: boolean
}

/** What the bootstrap did. */
export interface Outcome {
  /** False when an earlier bootstrap completed or there are no peers: nothing was asked. */
  readonly ran: boolean
  /** Why nothing was asked. */
  readonly skipped: "completed-before" | "no-peers" | undefined
  /** Every peer region was paged to its log end (recorded, so later starts skip the bootstrap). */
  readonly complete: boolean
  readonly sources: ReadonlyArray<SourceOutcome>
  /** The highest origin sequence of this region found in peers' logs (0 when none). */
  readonly ownSeqMax: number
}

interface Cursor {
  after: number
  entries: number
  applied: number
}

/** Calls CatchUp once. */
const catchUpPage = (client: ReplicationClient, request: Proto.CatchUpRequest, credentials: Auth.Credentials, timeoutMs: number) =>
  Effect.async<Proto.CatchUpResponse, string>((resume) => {
    const call = client.catchUp(request, credentials.callMetadata(), { deadline: new Date(Date.now() + timeoutMs) }, (error, response) => {
      if (error !== null) resume(Effect.fail(`${grpc.status[error.code] ?? error.code}: ${error.details}`))
      else resume(Effect.succeed(response))
    })
    return Effect.sync(() => call.cancel())
  })

/** The pseudo cursor that remembers how far a peer node's log was paged, so a cut-short bootstrap resumes. */
export const progressKey = (region: string, node: string): string => `\u0000bootstrap/${region}/${node}`

/** A page's changes and the highest origin sequence of `regionId` among them. */
const decodePage = (page: Proto.CatchUpResponse, regionId: string): Either.Either<{ readonly changes: ReadonlyArray<Change.Change>; readonly ownSeqMax: number }, string> => {
  const changes: Array<Change.Change> = []
  let ownSeqMax = 0
  for (const entry of page.entries) {
    const decoded = WireCodec.logEntryFromProto(entry)
    if (Either.isLeft(decoded)) return Either.left(`malformed log entry: ${decoded.left}`)
    changes.push(decoded.right.change)
    if (decoded.right.change.originRegion === regionId) ownSeqMax = Math.max(ownSeqMax, decoded.right.change.id.seq)
  }
  return Either.right({ changes, ownSeqMax })
}

/** Pages one node's log to its end from the remembered position, applying each page. */
const pageNode = (
  options: Options,
  client: ReplicationClient,
  source: { readonly region: string; readonly node: string },
  cursor: Cursor,
  ownSeq: { max: number },
  deadlineMs: number
) =>
  Effect.gen(function* () {
    const replica = yield* Replica.Replica
    const store = yield* Store.Store
    const progress = progressKey(source.region, source.node)
    cursor.after = yield* Effect.mapError(store.getCursor(progress), (error) => error.message)
    while (true) {
      if ((yield* EffectClock.currentTimeMillis) >= deadlineMs) return yield* Effect.fail("bootstrap time is up")
      const request = { fromRegion: options.regionId, afterPosition: cursor.after, limit: options.pageSize ?? pageSizeDefault }
      const page = yield* catchUpPage(client, request, options.credentials, options.callTimeoutMs ?? callTimeoutMsDefault)
      // A peer whose log is shorter than what we paged before lost its store: start it over.
      if (page.logEnd < cursor.after) {
        cursor.after = 0
        continue
      }
      const { changes, ownSeqMax } = yield* decodePage(page, options.regionId)
      if (ownSeqMax > ownSeq.max) {
        yield* Effect.mapError(advanceOriginSeq(ownSeqMax), (error) => `moving the origin sequence failed: ${error.message}`)
        ownSeq.max = ownSeqMax
      }
      if (changes.length > 0) {
        const batch = { _tag: "ReplicateBatch", batchId: `bootstrap:${source.region}:${cursor.after + 1}-${page.endPosition}`, fromRegion: source.region, fromNode: source.node, changes } as const
        const ack = yield* Effect.mapError(replica.applyBatch(batch), (error) => `applying a page failed: ${error.message}`)
        cursor.applied += ack.applied
        cursor.entries += changes.length
      }
      if (page.endPosition > cursor.after) yield* Effect.mapError(store.advanceCursor(progress, page.endPosition), (error) => error.message)
      if (page.endPosition <= cursor.after || page.endPosition >= page.logEnd) return
      cursor.after = page.endPosition
    }
  })

/** Pages one region through the first of its nodes that answers. */
const pageRegion = (options: Options, region: Topology.Region, ownSeq: { max: number }, deadlineMs: number) =>
  Effect.gen(function* () {
    const errors: Array<string> = []
    for (const node of Topology.regionNodes(region)) {
      const cursor: Cursor = { after: 0, entries: 0, applied: 0 }
      const client = new ReplicationClient(GrpcNetwork.grpcAddress(node.endpoint), options.credentials.channel, {
        ...options.credentials.channelOptions,
        "grpc.max_receive_message_length": options.messageBytesMax
      })
      const outcome = yield* Effect.either(pageNode(options, client, { region: region.id, node: node.id }, cursor, ownSeq, deadlineMs)).pipe(
        Effect.ensuring(Effect.sync(() => client.close()))
      )
      if (Either.isRight(outcome) || cursor.entries > 0) {
        const error = Either.isLeft(outcome) ? outcome.left : undefined
        return { region: region.id, node: node.id, entries: cursor.entries, applied: cursor.applied, error, complete: error === undefined } satisfies SourceOutcome
      }
      errors.push(`${node.id}: ${outcome.left}`)
    }
    return { region: region.id, node: undefined, entries: 0, applied: 0, error: errors.join("; "), complete: false } satisfies SourceOutcome
  })

/**
 * Moves the origin sequence counter to at least `seqMin`, so the next local change gets a
 * fresh id. `Store` only offers increments; they run in one transaction, which commits once.
 */
const advanceOriginSeq = (seqMin: number): Effect.Effect<void, StoreError, Store.Store> =>
  Effect.flatMap(Store.Store, (store) =>
    store.transaction((tx) =>
      Effect.gen(function* () {
        let current = yield* tx.next("originSeq")
        while (current < seqMin) current = yield* tx.next("originSeq")
      })
    )
  )

/** Runs the bootstrap unless an earlier one completed; only a store failure fails it (peer problems are in the outcome). */
export const run = (options: Options): Effect.Effect<Outcome, StoreError, Replica.Replica | Store.Store | TopologyManager.TopologyManager> =>
  Effect.gen(function* () {
    const store = yield* Store.Store
    const topology = yield* (yield* TopologyManager.TopologyManager).current
    const peers = topology.regions.filter((region) => region.id !== options.regionId && Topology.regionNodes(region).length > 0)
    if (peers.length === 0) return { ran: false, skipped: "no-peers", complete: true, sources: [], ownSeqMax: 0 } satisfies Outcome
    if ((yield* store.getCursor(completionMarker)) > 0) {
      return { ran: false, skipped: "completed-before", complete: true, sources: [], ownSeqMax: 0 } satisfies Outcome
    }
    const deadlineMs = (yield* EffectClock.currentTimeMillis) + (options.timeoutMs ?? timeoutMsDefault)
    const ownSeq = { max: 0 }
    const sources = yield* Effect.forEach(peers, (region) => pageRegion(options, region, ownSeq, deadlineMs))
    const complete = sources.every((source) => source.complete)
    if (complete) yield* store.advanceCursor(completionMarker, 1)
    return { ran: true, skipped: undefined, complete, sources, ownSeqMax: ownSeq.max } satisfies Outcome
  })
