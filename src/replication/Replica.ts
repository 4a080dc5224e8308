/**
 * The replica: one engine node's write and apply paths over the region's Store.
 *
 * A local write is checked against the strategy (PrimaryReplica: only the primary, and only
 * while `Primacy` says its epoch is current and its write lease holds; MultiMaster: only the
 * vault's home region; residency everywhere), stamped by the Clock, given the context
 * of everything this region has seen of the tuple, and committed together with its log entry
 * in one transaction before it is acknowledged. A remote batch is validated whole, then each
 * change is merged into its tuple's frontier (`TupleState`); changes already known are no-ops,
 * new ones are logged so the agent can relay them. Conflicts are counted as they are found and
 * reported to Metrics once the batch is durable; refused batches are reported with their reason.
 */
import { Context, Effect, Either } from "effect"
import * as Change from "./Change.js"
import * as ChangeFeed from "./ChangeFeed.js"
import * as Clock from "./Clock.js"
import type * as ConflictResolver from "./ConflictResolver.js"
import { ApplyRejected, StoreError, WriteRejected } from "./Errors.js"
import type * as Message from "./Message.js"
import * as Metrics from "./Metrics.js"
import * as Network from "./Network.js"
import * as WireCodec from "./WireCodec.js"
import * as Primacy from "./Primacy.js"
import * as Random from "./Random.js"
import * as Relay from "./Relay.js"
import * as Store from "./Store.js"
import * as Topology from "./Topology.js"
import * as TopologyManager from "./TopologyManager.js"
import * as Tuple from "./Tuple.js"
import type * as Timestamp from "./Timestamp.js"
import * as TupleState from "./TupleState.js"

/** One operation of a client write. */
export interface Operation {
  readonly op: Change.Operation
  readonly tuple: Tuple.Tuple
}

/** What a successful write returns: it is durable in this region when this is returned. */
export interface WriteAck {
  readonly revision: number
  readonly changes: ReadonlyArray<Change.Change>
  /** Log position of the write's last change. */
  readonly position: number
  /** Under PrimaryReplica, the failover epoch of this node's view when it committed the write. */
  readonly epoch?: number
}

/** Per-call options of a client write. */
export interface WriteOptions {
  /** The client's deadline in monotonic milliseconds (`Clock.monotonicMs`); past it nothing is committed. */
  readonly deadlineMs?: number
}

/** Counters of one node since it started. */
export interface ReplicaStats {
  readonly writes: number
  readonly applied: number
  readonly ignored: number
  readonly conflicts: number
  readonly resolvedLocal: number
  readonly resolvedRemote: number
  readonly rejectedBatches: number
}

const emptyStats: ReplicaStats = {
  writes: 0,
  applied: 0,
  ignored: 0,
  conflicts: 0,
  resolvedLocal: 0,
  resolvedRemote: 0,
  rejectedBatches: 0
}

/** Whether client writes are let in: once the bootstrap allows (`openWrites`), until a drain begins (`sealWrites`). */
interface WriteGate {
  open: boolean
  sealed: boolean
}

/** `stats` with `delta` added. */
const bumped = (stats: ReplicaStats, delta: Partial<ReplicaStats>): ReplicaStats => {
  const next: Record<string, number> = { ...stats }
  for (const [name, value] of Object.entries(delta)) next[name] = (next[name] ?? 0) + (value ?? 0)
  return next as unknown as ReplicaStats
}

/** Who this node is and how it resolves conflicts. */
export interface Options {
  readonly regionId: Topology.RegionId
  readonly nodeId: Topology.NodeId
  readonly resolver: ConflictResolver.ConflictResolver
  /** The largest message this node sends (`Engine.Settings.messageBytesMax`): a CatchUp page is kept within it. */
  readonly messageBytesMax?: number
}

/** The Replica service. */
export class Replica extends Context.Tag("inferadb/Replica")<
  Replica,
  {
    readonly regionId: Topology.RegionId
    readonly nodeId: Topology.NodeId
    /** The origin key this node's store numbers its changes under (see `Change.originKey`). */
    readonly origin: string
    /** Commits a client write (all operations in one vault) durably, or rejects it whole. */
    /**
     * Commits a client write (all operations in one vault) durably, or rejects it whole. With
     * `deadlineMs` (monotonic, `Clock.monotonicMs`), a write whose client gave up before the commit is not
     * committed: a zombie write must not win, with a late timestamp, over writes acknowledged
     * after its client stopped waiting.
     */
    readonly write: (operations: ReadonlyArray<Operation>, options?: WriteOptions) => Effect.Effect<WriteAck, WriteRejected | StoreError>
    /** Applies a batch from another region durably, or rejects it whole. */
    readonly applyBatch: (batch: Message.ReplicateBatch) => Effect.Effect<Message.BatchAck, ApplyRejected | StoreError>
    /** Whether the tuple exists here now. */
    readonly check: (tuple: Tuple.Tuple) => Effect.Effect<boolean, StoreError>
    /** Existing tuples under a vault, optionally narrowed to a resource and relation. */
    readonly list: (prefix: { readonly vault: string; readonly resource?: string; readonly relation?: string }) => Effect.Effect<ReadonlyArray<Tuple.Tuple>, StoreError>
    /**
     * One page of `list`: the existing tuples among the next `page.limit` stored after
     * `page.after`, and `scannedTo`, the last tuple looked at when the page was full (more may
     * follow it; absent when the scan reached the end).
     */
    readonly listPage: (
      prefix: { readonly vault: string; readonly resource?: string; readonly relation?: string },
      page: Store.ScanPage & { readonly limit: number }
    ) => Effect.Effect<{ readonly tuples: ReadonlyArray<Tuple.Tuple>; readonly scannedTo: Tuple.Tuple | undefined }, StoreError>
    /** Lets client writes in (after bootstrap, see `Engine.run`); until then they are refused. */
    readonly openWrites: Effect.Effect<void>
    /** Whether client writes are let in. */
    readonly writesOpen: Effect.Effect<boolean>
    /**
     * Acknowledges no client write from now on (a graceful stop's drain begins, `Drain.run`):
     * new ones are refused (`Stopping`), and one still committing fails once durable, its outcome
     * unknown to its client. So every write this node acknowledges is in its log when the drain
     * reads the log end it drains to.
     */
    readonly sealWrites: Effect.Effect<void>
    /** Answers network requests; never fails, refusals are responses. */
    readonly handle: Network.Handler
    /** Answers a heartbeat at once (`Network.AnswerAtOnce`); every other request goes to `handle`. */
    readonly answerAtOnce: Network.AnswerAtOnce
    readonly stats: Effect.Effect<ReplicaStats>
  }
>() {}

/**
 * Whether an entry is one relay would never send back to the asking region (see
 * `Message.CatchUp`): one of its own changes under an origin it does not know, or one this
 * region received from it. The second kind is a peer's change the asker's old disk had relayed
 * here just before it was wiped (a batch or page still in flight), landing after the new disk's
 * bootstrap had paged this log; nothing else ever sends it back (swarm seed 604822).
 *
 * Neither kind is a change under an origin the asker knows: it wrote those on the disk it has
 * now, before shipping them. Counting the second kind without that exception sent every change a
 * region had received straight from the asker back to it, once, through the orphan tail: in
 * `bench:repl` with 30 s lag phases, about 175,000 changes echoed to the origin 50 s into the
 * run, all applied as ignored.
 */
const isOrphan = (entry: Store.LogEntry, request: Message.CatchUp): boolean =>
  !(request.knownOrigins ?? []).includes(entry.change.id.origin) &&
  (entry.change.originRegion === request.fromRegion || entry.receivedFrom === request.fromRegion)

/** The tuples that exist among `states`: those whose winner under the resolver is an insert. */
const present =
  (resolver: ConflictResolver.ConflictResolver) =>
  (states: ReadonlyArray<TupleState.TupleState>): ReadonlyArray<Tuple.Tuple> =>
    states.flatMap((state) => {
      const winner = TupleState.winner(state, resolver)
      return winner?.op === "insert" ? [winner.tuple] : []
    })

/** A page of `listPage`: the existing tuples, and the last one scanned when the page was full. */
const pageOf = (states: ReadonlyArray<TupleState.TupleState>, limit: number, resolver: ConflictResolver.ConflictResolver) => ({
  tuples: present(resolver)(states),
  scannedTo: states.length === limit ? states[states.length - 1]?.frontier[0]?.tuple : undefined
})

/** Whether a CatchUp page holds an entry: one the asking region may store, and only an orphan when it asks for those. */
const pageKeeps = (topology: Topology.Topology, request: Message.CatchUp) => (entry: Store.LogEntry): boolean =>
  Topology.vaultAllowedIn(topology, entry.change.tuple.vault, request.fromRegion) && (request.ownRegionOrphansOnly !== true || isOrphan(entry, request))

/**
 * Log entries from `from` on, `limit` of them or up to `logEnd`. `Store.readLog` may stop early
 * (the entries this node appended come from memory up to the first one it did not), and a page cut
 * short there looked to the asker like a page its message bound cut short: a bootstrap narrowed its
 * pages to the few entries before each gap (swarm seed 145000478).
 */
const readLogThrough = (store: Store.Store["Type"], from: number, limit: number, logEnd: number) =>
  Effect.gen(function* () {
    const entries = [...(yield* store.readLog(from, limit))]
    while (entries.length > 0 && entries.length < limit && entries[entries.length - 1]!.position < logEnd) {
      const more = yield* store.readLog(entries[entries.length - 1]!.position + 1, limit - entries.length)
      if (more.length === 0) break
      entries.push(...more)
    }
    return entries
  })

/** Most log positions one CatchUp page scans; a larger requested limit is capped to it. */
export const catchUpPageSizeMax = 1_000

/** Checks a write against the strategy's rules for where writes may happen. */
export const checkWritable = (topology: Topology.Topology, regionId: string, vault: string): WriteRejected | undefined => {
  if (topology.strategy === "PrimaryReplica" && Topology.primaryRegion(topology)?.id !== regionId) {
    const primary = Topology.primaryRegion(topology)?.id ?? "none"
    return new WriteRejected({ reason: "NotPrimary", message: `writes go to the primary region '${primary}', not '${regionId}'` })
  }
  if (topology.strategy === "MultiMaster") {
    const placement = Topology.vaultPlacement(topology, vault)
    if (placement === undefined) {
      return new WriteRejected({ reason: "UnknownVault", message: `vault '${vault}' has no home region configured` })
    }
    if (placement.homeRegion !== regionId) {
      return new WriteRejected({ reason: "NotHomeRegion", message: `vault '${vault}' is homed in '${placement.homeRegion}', not '${regionId}'` })
    }
  }
  if (!Topology.vaultAllowedIn(topology, vault, regionId)) {
    return new WriteRejected({ reason: "ResidencyViolation", message: `vault '${vault}' may not be stored in '${regionId}'` })
  }
  return undefined
}

/** Checks a remote batch before any of it is applied. */
export const checkBatch = (
  topology: Topology.Topology,
  regionId: string,
  batch: Message.ReplicateBatch,
  resolver?: ConflictResolver.ConflictResolver
): ApplyRejected | undefined => {
  if (Topology.findRegion(topology, batch.fromRegion) === undefined) {
    return new ApplyRejected({ reason: "UnknownRegion", message: `batch from unknown region '${batch.fromRegion}'` })
  }
  for (const change of batch.changes) {
    // A change may come from a region the topology no longer declares: one removed from the
    // deployment, relayed by a region that is declared (`Relay.undeclaredOrigin`). Refusing it
    // split the survivors for good and refused every bootstrap page that held one.
    if (resolver?.ranks !== undefined && !resolver.ranks(change.originRegion)) {
      return new ApplyRejected({
        reason: "UnknownRegion",
        message: `change ${Change.idString(change)} from region '${change.originRegion}', which region_priorities does not rank (keep a removed region's rank in the list)`
      })
    }
    if (!Change.originInRegion(change.id.origin, change.originRegion)) {
      return new ApplyRejected({ reason: "Malformed", message: `change id origin '${change.id.origin}' is not of its origin region '${change.originRegion}'` })
    }
    if (!Topology.vaultAllowedIn(topology, change.tuple.vault, regionId)) {
      return new ApplyRejected({ reason: "ResidencyViolation", message: `vault '${change.tuple.vault}' may not be stored in '${regionId}'` })
    }
  }
  return undefined
}

/** Builds the replica of one node. */
export const make = (options: Options) =>
  Effect.gen(function* () {
    const store = yield* Store.Store
    const clock = yield* Clock.Clock
    const feed = yield* ChangeFeed.ChangeFeed
    const topologies = yield* TopologyManager.TopologyManager
    const metrics = yield* Metrics.Metrics
    const primacy = yield* Primacy.Primacy
    const random = yield* Random.Random
    // The token mixes a seeded draw with the physical clock, so a node started twice with the
    // same seed on a wiped disk still gets a new origin (in the simulator both are seeded).
    const token = `${random.derive("origin").int(2 ** 31).toString(36)}${Math.floor(yield* clock.physicalMs).toString(36)}`
    const origin = yield* store.origin(Change.originKey(options.regionId, options.nodeId, token))
    // The HLC resumes from its high-water on this disk, so a node restarted with its clock set
    // back never stamps a write below one it stamped before.
    yield* clock.restore(yield* store.clockHighWater)
    // Plain variables, each read or changed in one synchronous step: Refs cost an Effect
    // operation of their own per read or change, several on every write.
    let stats = emptyStats
    const gate: WriteGate = { open: false, sealed: false }
    const bump = (delta: Partial<ReplicaStats>): void => void (stats = bumped(stats, delta))
    // The monotonic clock of the fiber that built the replica: a node's fibers all run on one.
    const monotonicNow = yield* Clock.monotonicReader
    const leaseCheck = (topology: Topology.Topology, vault: string) => primacyCheckNow(primacy, monotonicNow(), topology, vault)

    // The transaction body: the local commit, then the checks just before it (`beforeCommit`).
    const commitChecked = (tx: Store.StoreTransactionNow, committedAtMs: number, operations: ReadonlyArray<Operation>, admitted: Admitted, writeOptions: WriteOptions) =>
      Either.flatMap(commitLocal(tx, clock, { ...options, origin }, operations, committedAtMs), (committed) => {
        const checked = beforeCommit(primacy, monotonicNow(), admitted, writeOptions)
        return checked instanceof WriteRejected ? Either.left(checked) : Either.right([committed, checked.epoch] as const)
      })

    const write = (operations: ReadonlyArray<Operation>, writeOptions: WriteOptions = {}): Effect.Effect<WriteAck, StoreError | WriteRejected> =>
      Effect.suspend(() => {
        const admitted = admit(options, gate, operations, topologies.currentNow, leaseCheck)
        if (admitted instanceof WriteRejected) return Effect.fail(admitted)
        // Published in commit order (see `Store.transaction`), so subscribers see the log in order.
        const committed = withPhysical(clock, (committedAtMs) =>
          store.transactionNow(
            operations.map((operation) => operation.tuple),
            (tx) => commitChecked(tx, committedAtMs, operations, admitted, writeOptions),
            ([entries]) => feed.publish(entries)
          )
        )
        return Effect.flatMap(committed, ([entries, epoch]): Effect.Effect<WriteAck, StoreError> => {
          if (gate.sealed) return sealedBeforeDurable(options.nodeId)
          const outlived = afterCommit(primacy, leaseCheck, admitted, epoch)
          if (outlived !== undefined) return outlived
          bump({ writes: 1 })
          const last = entries[entries.length - 1]!
          return Effect.succeed({ revision: last.change.originRevision, changes: entries.map((entry) => entry.change), position: last.position, ...(epoch === undefined ? {} : { epoch }) })
        })
      })

    // Reported only once the batch is durable, so a failed commit counts no conflicts.
    const acknowledge = (batch: Message.ReplicateBatch, outcome: Applied, appliedAtMs: number): Message.BatchAck => {
      for (let index = 0; index < outcome.conflicts; index++) metrics.conflict(index < outcome.resolvedLocal ? "local" : "remote")
      bump(appliedStats(batch, outcome))
      return batchAck(options, batch, outcome, appliedAtMs)
    }

    const applyBatch = (batch: Message.ReplicateBatch): Effect.Effect<Message.BatchAck, ApplyRejected | StoreError> =>
      Effect.suspend((): Effect.Effect<Message.BatchAck, ApplyRejected | StoreError> => {
        const rejected = checkBatch(topologies.currentNow(), options.regionId, batch, options.resolver)
        if (rejected !== undefined) {
          metrics.requestRefused(rejected.reason)
          bump({ rejectedBatches: 1 })
          return Effect.fail(rejected)
        }
        return withPhysical(clock, (appliedAtMs) => {
          clock.observeAllAt(
            appliedAtMs,
            batch.changes.map((change) => change.timestamp)
          )
          const high = clock.currentNow()
          const applied = store.transactionNow(
            batch.changes.map((change) => change.tuple),
            (tx) => Either.flatMap(applyChanges(tx, options, batch, appliedAtMs), (outcome) => Either.map(raiseClock(tx, clock, high), () => outcome)),
            (outcome) => feed.publish(outcome.entries)
          )
          return Effect.map(applied, (outcome) => acknowledge(batch, outcome, appliedAtMs))
        })
      })

    // One page of the log for a peer that is rebuilding its disk, without the entries of vaults
    // its region may not store: residency holds on every message, catch-up included.
    const catchUp = (request: Message.CatchUp): Effect.Effect<Message.Response> =>
      Effect.gen(function* () {
        const topology = yield* topologies.current
        if (Topology.findRegion(topology, request.fromRegion) === undefined) {
          metrics.requestRefused("UnknownRegion")
          return { _tag: "Refused", reason: "UnknownRegion", message: `catch-up for unknown region '${request.fromRegion}'` } as const
        }
        const limit = request.limit === 0 ? catchUpPageSizeMax : Math.min(request.limit, catchUpPageSizeMax)
        const logEnd = yield* store.logEnd
        const scanned = yield* readLogThrough(store, request.afterPosition + 1, limit, logEnd)
        // A page ends where this node's own message bound would be passed: a page above it was
        // refused by this node's transport, and the asker had to shorten its pages blindly.
        const page = WireCodec.fitting(scanned, pageKeeps(topology, request), WireCodec.logEntryBytesBound, options.messageBytesMax ?? Network.messageBytesMaxDefault)
        return { _tag: "LogPage", entries: page.kept, endPosition: page.coveredTo ?? request.afterPosition, logEnd } as const
      }).pipe(
        Effect.catchAll((error): Effect.Effect<Message.Response> => Effect.succeed({ _tag: "Refused", reason: "Unavailable", message: error.message }))
      )

    const handle: Network.Handler = (request) => {
      if (request._tag === "Heartbeat") return answerHeartbeat(options, request, { clock, topologies, primacy })
      if (request._tag === "CatchUp") return catchUp(request)
      const applied: Effect.Effect<Message.Response, ApplyRejected | StoreError> = applyBatch(request)
      return Effect.catchAll(applied, (error): Effect.Effect<Message.Response> =>
        Effect.succeed({
          _tag: "Refused",
          reason: error._tag === "ApplyRejected" ? error.reason : "Unavailable",
          message: error.message
        })
      )
    }

    return {
      regionId: options.regionId,
      nodeId: options.nodeId,
      origin,
      answerAtOnce: (request) => (request._tag === "Heartbeat" ? answerHeartbeatAtOnce(options, request, { clock, topologies, primacy }) : undefined),
      write,
      applyBatch,
      ...readsOf(store, options.resolver),
      openWrites: Effect.sync(() => void (gate.open = true)),
      writesOpen: Effect.sync(() => gate.open && !gate.sealed),
      sealWrites: Effect.sync(() => void (gate.sealed = true)),
      handle,
      stats: Effect.sync(() => stats)
    } satisfies Replica["Type"]
  })

/** The replica's reads of tuples: what a client's Check and List see. */
const readsOf = (store: Store.Store["Type"], resolver: ConflictResolver.ConflictResolver): Pick<Replica["Type"], "check" | "list" | "listPage"> => ({
  check: (tuple) => Effect.map(store.getTuple(tuple), (state) => TupleState.isPresent(state, resolver)),
  list: (prefix) => Effect.map(store.scanTuples(prefix), present(resolver)),
  listPage: (prefix, page) => Effect.map(store.scanTuples(prefix, page), (states) => pageOf(states, page.limit, resolver))
})

/** A write admitted before its transaction: the topology it was admitted under and its vault. */
interface Admitted {
  readonly topology: Topology.Topology
  readonly vault: string
}

/**
 * What refuses a write before its transaction, read in one step: its operations, whether writes
 * are open, where its vault may be written and (PrimaryReplica) the write lease.
 */
const admit = (
  node: { readonly regionId: string; readonly nodeId: string },
  gate: WriteGate,
  operations: ReadonlyArray<Operation>,
  currentTopology: () => Topology.Topology,
  leaseCheck: (topology: Topology.Topology, vault: string) => { readonly rejected?: WriteRejected }
): WriteRejected | Admitted => {
  const vault = operations[0]?.tuple.vault
  if (vault === undefined) return new WriteRejected({ reason: "Invalid", message: "a write needs at least one operation" })
  if (operations.some((operation) => operation.tuple.vault !== vault)) {
    return new WriteRejected({ reason: "Invalid", message: "all operations of one write must share a vault" })
  }
  if (gate.sealed) return new WriteRejected({ reason: "Stopping", message: `${node.nodeId} is stopping: its drain has begun; write to another node` })
  if (!gate.open) return new WriteRejected({ reason: "Bootstrapping", message: `${node.nodeId} is still paging its peers' logs onto a new disk; retry shortly` })
  const topology = currentTopology()
  return checkWritable(topology, node.regionId, vault) ?? leaseCheck(topology, vault).rejected ?? { topology, vault }
}

/**
 * Checked at the end of the transaction body, at monotonic time `nowMs`, just before the commit:
 * the write lease and the client's deadline must still hold then, not only when the write was
 * admitted (a node that stalls in between must not acknowledge a write after another region
 * took over). The epoch of the view the write is made in, or why it is refused.
 */
const beforeCommit = (primacy: Primacy.Primacy["Type"], nowMs: number, admitted: Admitted, writeOptions: WriteOptions): WriteRejected | { readonly epoch: number | undefined } => {
  if (writeOptions.deadlineMs !== undefined && nowMs > writeOptions.deadlineMs) {
    return new WriteRejected({ reason: "DeadlineExceeded", message: `the client's deadline passed ${Math.round(nowMs - writeOptions.deadlineMs)} ms before the commit; nothing was written` })
  }
  const checked = primacyCheckNow(primacy, nowMs, admitted.topology, admitted.vault)
  return checked.rejected ?? { epoch: checked.epoch }
}

/**
 * The lease check of a write to `vault` at monotonic time `nowMs`, with the epoch of the view it
 * was made in (PrimaryReplica only). Epoch records are the failover protocol's own writes: a
 * region records its promotion before it has a lease, so that every region learns of the new
 * epoch from its log.
 */
const primacyCheckNow = (
  primacy: Primacy.Primacy["Type"],
  nowMs: number,
  topology: Topology.Topology,
  vault: string
): { readonly rejected?: WriteRejected; readonly epoch?: number } => {
  if (topology.strategy !== "PrimaryReplica") return {}
  const state = primacy.now.state()
  const rejected = vault === Primacy.epochVault ? undefined : Primacy.checkWrite(state, nowMs, Primacy.leaseFor(primacy, topology.regions.length), topology.regions.length)
  return rejected === undefined ? { epoch: state.epoch } : { rejected }
}

// A write's lease is checked at admission, just before its commit (`beforeCommit`), and once
// more when the commit is durable: a slow disk (an fsync of hundreds of ms) can end
// a commit after the lease ran out or a newer epoch was adopted, and the other region may
// have taken writes meanwhile. The write is durable here and replicates, but this node may
// not say it was taken in its epoch: the client learns its outcome is unknown, as after a
// timeout (swarm seed 51000581 over two-region-handback-pause.yaml: a write checked at
// 3.30 s committed at 3.98 s on a store slowed to 20-104 ms a commit, in epoch 1, after the
// region handed the role took its first write in epoch 2 at 3.71 s).
// Undefined when the write may be acknowledged; else the failure to answer with, after a warning.
const afterCommit = (
  primacy: Primacy.Primacy["Type"],
  leaseCheck: (topology: Topology.Topology, vault: string) => { readonly rejected?: WriteRejected },
  admitted: Admitted,
  epoch: number | undefined
): Effect.Effect<never, StoreError> | undefined => {
  // Epoch records are the failover protocol's own writes, taken under any view (`primacyCheckNow`).
  if (epoch === undefined || admitted.vault === Primacy.epochVault) return undefined
  const now = primacy.now.state().epoch
  const checked = now === epoch ? leaseCheck(admitted.topology, admitted.vault) : {}
  if (now === epoch && checked.rejected === undefined) return undefined
  const why = checked.rejected?.message ?? `this node had moved to epoch ${now}`
  const error = new StoreError({
    operation: "commit",
    message: `committed in epoch ${epoch}, but by the time the commit was durable ${why}; the write may be superseded by the region that took over: its outcome is unknown, as after a timeout`
  })
  return Effect.zipRight(Effect.logWarning(`a write's commit outlived this node's lease: ${error.message}`), Effect.fail(error))
}

/**
 * A write whose commit became durable only after the drain began (`sealWrites`): it is in the log,
 * maybe after the position the drain waits for, and the node may exit and lose its disk before
 * shipping it, so it is not acknowledged. Until December 8, 2026 writes that outlived a graceful
 * stop's 2 s request grace were acknowledged during the drain, and lost with the node's volume.
 */
const sealedBeforeDurable = (nodeId: string): Effect.Effect<never, StoreError> =>
  Effect.fail(
    new StoreError({
      operation: "commit",
      message: `${nodeId} began its drain before this write's commit was durable; the write may be in its log but may not reach another node before it stops: its outcome is unknown, as after a timeout`
    })
  )

/** Keeps the HLC's high-water on disk with the changes it stamped or saw (nothing in wall-clock mode). */
const raiseClock = (tx: Store.StoreTransactionNow, clock: Clock.Clock["Type"], high: Timestamp.Timestamp): Either.Either<void, StoreError> =>
  clock.mode === "wall" ? Either.void : tx.raiseClock(high)

/** Continues with a reading of the physical clock: at once where the clock reads so (`Clock.physicalNow`). */
const withPhysical = <A, E>(clock: Clock.Clock["Type"], then: (ms: number) => Effect.Effect<A, E>): Effect.Effect<A, E> => {
  const now = clock.physicalNow
  return now === undefined ? Effect.flatMap(clock.physicalMs, then) : Effect.suspend(() => then(now()))
}

/** This node's answer to a heartbeat: its view of the primary (`Primacy.answer`) and its clock. */
/**
 * Answers a heartbeat: notes the request (its sender runs), records a grant when its region is
 * primary in this node's view, and says which lease this node runs on under PrimaryReplica.
 */
const answerHeartbeat = (
  node: { readonly regionId: string; readonly nodeId: string },
  request: Message.Heartbeat,
  services: { readonly clock: Clock.Clock["Type"]; readonly topologies: TopologyManager.TopologyManager["Type"]; readonly primacy: Primacy.Primacy["Type"] }
): Effect.Effect<Message.Response> => {
  const { clock, topologies, primacy } = services
  // Chained, not `Effect.zip`/`zipWith`: in Effect 3 those run through `Effect.all`, a dozen
  // Effect operations more per heartbeat answered (about 6% of the swarm's operations).
  const answered = Effect.flatMap(clock.physicalMs, (atMs) =>
    Effect.flatMap(topologies.current, (topology) =>
      Effect.map(primacy.answer(request.fromRegion, request.leaseMs), (answer) =>
        heartbeatAck(node, atMs, answer, topology.strategy === "PrimaryReplica" ? Primacy.leaseFor(primacy, topology.regions.length) : undefined)
      )
    )
  )
  return Effect.zipRight(topologies.heardRequestFrom(request.fromRegion, request.fromNode, request.leaseMs), answered)
}

/** `answerHeartbeat` at once, outside an Effect; undefined over a clock read only through an Effect. */
const answerHeartbeatAtOnce = (
  node: { readonly regionId: string; readonly nodeId: string },
  request: Message.Heartbeat,
  services: { readonly clock: Clock.Clock["Type"]; readonly topologies: TopologyManager.TopologyManager["Type"]; readonly primacy: Primacy.Primacy["Type"] }
): Message.Response | undefined => {
  const { clock, topologies, primacy } = services
  if (clock.physicalNow === undefined) return undefined
  topologies.heardRequestFromNow(request.fromRegion, request.fromNode, request.leaseMs)
  const atMs = clock.physicalNow()
  const topology = topologies.currentNow()
  const answer = primacy.now.answer(request.fromRegion, request.leaseMs)
  return heartbeatAck(node, atMs, answer, topology.strategy === "PrimaryReplica" ? Primacy.leaseFor(primacy, topology.regions.length) : undefined)
}

const heartbeatAck = (node: { readonly regionId: string; readonly nodeId: string }, atMs: number, answer: Primacy.Answer, leaseMs: number | undefined): Message.Response => ({
  _tag: "HeartbeatAck",
  region: node.regionId,
  node: node.nodeId,
  atMs,
  ...answer,
  ...(leaseMs === undefined ? {} : { leaseMs })
})

/**
 * Commits local operations inside one transaction, at physical time `committedAtMs` (read just
 * before it), and returns their log entries.
 */
const commitLocal = (
  tx: Store.StoreTransactionNow,
  clock: Clock.Clock["Type"],
  options: Options & { readonly origin: string },
  operations: ReadonlyArray<Operation>,
  committedAtMs: number
) =>
  Either.gen(function* () {
    // Revisions never go backwards for a client, even from a node restarted on a wiped disk:
    // the counter starts from the wall clock in microseconds, ahead of any earlier revision
    // unless more than a thousand writes a millisecond were sustained.
    const revision = yield* tx.next("revision", committedAtMs * 1_000)
    const firstSeq = yield* tx.reserve("originSeq", operations.length)
    const timestamps = clock.stampsAt(committedAtMs, operations.length)
    const states = yield* tx.getTuples(operations.map((operation) => operation.tuple))
    const frontiers = new Frontiers(states, operations, (operation) => operation.tuple)
    const logged: Array<Omit<Store.LogEntry, "position">> = []
    const bytesMax = options.messageBytesMax ?? Network.messageBytesMaxDefault
    for (let index = 0; index < operations.length; index++) {
      const operation = operations[index]!
      const change: Change.Change = {
        id: { origin: options.origin, seq: firstSeq + index },
        op: operation.op,
        tuple: operation.tuple,
        timestamp: timestamps[index]!,
        originRegion: options.regionId,
        originNode: options.nodeId,
        originRevision: revision,
        committedAtMs,
        context: TupleState.seen(frontiers.stateAt(index))
      }
      if (!WireCodec.changeTravels(change, bytesMax)) return yield* Either.left(tooLarge(change, bytesMax))
      const merged = TupleState.merge(frontiers.stateAt(index), change)
      if (merged._tag === "Ignored") throw new Error(`fresh local change ${change.id.seq} is already known: origin sequence went backwards`)
      frontiers.set(index, merged.state)
      logged.push({ change, receivedFrom: null, appliedAtMs: committedAtMs })
    }
    tx.putTuples(frontiers.changed)
    const entries = yield* tx.appendLogs(logged)
    yield* raiseClock(tx, clock, clock.currentNow())
    return entries
  })

/**
 * A change no message of this node's bound can carry: every sender would skip it, so it must not
 * be acknowledged. Its context keeps every origin (store) that ever wrote the tuple, so a tuple
 * written from very many stores, or a very small `grpc.max_message_bytes`, gets here.
 */
const tooLarge = (change: Change.Change, bytesMax: number): WriteRejected =>
  new WriteRejected({
    reason: "TooLarge",
    message:
      `the change to ${Tuple.format(change.tuple)} (its context names ${Object.keys(change.context).length} origins) does not fit in a ` +
      `${bytesMax}-byte message (grpc.max_message_bytes); nothing was written`
  })

/**
 * The tuple states a batch works on, read once for the whole batch; an item whose tuple an
 * earlier item of the batch changed sees that change.
 */
class Frontiers<A> {
  private readonly latest = new Map<string, TupleState.TupleState>()
  // Each item's tuple key, built once for both `stateAt` and `set`.
  private readonly keys: Array<string | undefined> = []
  readonly changed: Array<readonly [Tuple.Tuple, TupleState.TupleState]> = []
  constructor(
    private readonly read: ReadonlyArray<TupleState.TupleState>,
    private readonly items: ReadonlyArray<A>,
    private readonly tupleOf: (item: A) => Tuple.Tuple
  ) {}
  private keyAt(index: number): string {
    return (this.keys[index] ??= Tuple.key(this.tupleOf(this.items[index]!)))
  }
  stateAt(index: number): TupleState.TupleState {
    return this.latest.get(this.keyAt(index)) ?? this.read[index]!
  }
  set(index: number, state: TupleState.TupleState): void {
    this.latest.set(this.keyAt(index), state)
    this.changed.push([this.tupleOf(this.items[index]!), state])
  }
}

/** What applying a batch did: its new log entries, and its conflicts. */
interface Applied {
  readonly entries: ReadonlyArray<Store.LogEntry>
  readonly conflicts: number
  readonly resolvedLocal: number
}

/** What an applied batch adds to the replica's stats. */
const appliedStats = (batch: Message.ReplicateBatch, outcome: Applied): Partial<ReplicaStats> => ({
  applied: outcome.entries.length,
  ignored: batch.changes.length - outcome.entries.length,
  conflicts: outcome.conflicts,
  resolvedLocal: outcome.resolvedLocal,
  resolvedRemote: outcome.conflicts - outcome.resolvedLocal
})

const batchAck = (node: { readonly regionId: string; readonly nodeId: string }, batch: Message.ReplicateBatch, outcome: Applied, appliedAtMs: number): Message.BatchAck => ({
  _tag: "BatchAck",
  batchId: batch.batchId,
  region: node.regionId,
  node: node.nodeId,
  applied: outcome.entries.length,
  ignored: batch.changes.length - outcome.entries.length,
  appliedAtMs
})

/** Merges a remote batch inside one transaction; returns new log entries and conflict counts. */
const applyChanges = (tx: Store.StoreTransactionNow, options: Options, batch: Message.ReplicateBatch, appliedAtMs: number): Either.Either<Applied, StoreError> =>
  Either.gen(function* () {
    const states = yield* tx.getTuples(batch.changes.map((change) => change.tuple))
    const frontiers = new Frontiers(states, batch.changes, (change) => change.tuple)
    const receivedFrom = Relay.receivedFrom(options.regionId, batch.fromRegion, batch.fromNode)
    const logged: Array<Omit<Store.LogEntry, "position">> = []
    let conflicts = 0
    let resolvedLocal = 0
    batch.changes.forEach((change, index) => {
      const merged = TupleState.merge(frontiers.stateAt(index), change)
      if (merged._tag === "Ignored") return
      if (merged.concurrentWith.length > 0) {
        conflicts++
        if (TupleState.winner(merged.state, options.resolver) !== change) resolvedLocal++
      }
      frontiers.set(index, merged.state)
      logged.push({ change, receivedFrom, appliedAtMs })
    })
    tx.putTuples(frontiers.changed)
    const entries = yield* tx.appendLogs(logged)
    return { entries, conflicts, resolvedLocal }
  })
