/**
 * The narrow ordered key-value driver that every Store backend implements: string keys in
 * lexicographic order, values of one representation `V` (text for the byte-oriented backends),
 * and serializable transactions. `Store.ts` adds the key layout once for all backends and
 * `StoreEncoding.ts` the value representation, so a new backend (embedded, FoundationDB)
 * writes only these few functions.
 *
 * This file also holds the in-memory backend. Its committed data lives in a `MemoryDisk` that
 * outlives the node using it, so a simulated crash (interrupting the node's fibers) keeps
 * every committed transaction and loses exactly the ones that had not committed. It keeps the
 * Store's values as decoded, deeply frozen objects (`StoreEncoding.decoded`): nothing reaches
 * it from bytes, so there is nothing to validate, and a frozen value cannot be changed through
 * a reference the writer kept, which would let uncommitted state survive a simulated crash.
 */
import { Effect, Either, Option } from "effect"
import * as DiskTree from "./DiskTree.js"
import { StoreError } from "./Errors.js"
import * as Handoff from "./Handoff.js"

/** Reads and buffered writes inside one transaction. Writes become visible on commit. */
export interface KvTransaction<V = string> {
  readonly get: (key: string) => Effect.Effect<V | undefined, StoreError>
  /**
   * The same read, done at once, on backends whose reads are synchronous (memory, lmdb). The
   * Store's hot paths read through it when present: a read then costs no Effect of its own.
   */
  readonly getNow?: (key: string) => Either.Either<V | undefined, StoreError>
  /** Entries with `start <= key < end` in key order, at most `limit` of them. */
  readonly range: (
    start: string,
    end: string,
    limit: number
  ) => Effect.Effect<ReadonlyArray<readonly [string, V]>, StoreError>
  readonly set: (key: string, value: V) => void
  readonly remove: (key: string) => void
}

/** A transaction whose reads are done at once: what `KvDriver.transactNow` gives its body. */
export type NowTransaction<V> = KvTransaction<V> & Required<Pick<KvTransaction<V>, "getNow">>

/**
 * What `KvDriver.transactNow` did, to be called inside `Effect.uninterruptibleMask`:
 * - `Done`: the transaction is over (durable, or failed with nothing written).
 * - `Committing`: its body ran and its writes are handed over (or the writer is taken for a
 *   delayed commit): `outcome` settles the commit and frees what it holds, so the caller runs
 *   it at once, uninterruptibly; it lets an interruption in only where `transact` does. Not
 *   run, it would leave every later commit waiting for ever.
 * - `Blocked`: nothing ran (the writer is busy); `outcome` is the whole transaction through
 *   `transact`, which the caller runs under `restore`: its wait for the writer is interruptible.
 */
export type Now<A, E> =
  | { readonly _tag: "Done"; readonly outcome: Either.Either<A, E> }
  | { readonly _tag: "Committing"; readonly outcome: Effect.Effect<A, E> }
  | { readonly _tag: "Blocked"; readonly outcome: Effect.Effect<A, E> }

const done = <A, E>(outcome: Either.Either<A, E>): Now<A, E> => ({ _tag: "Done", outcome })

const handedOver = <A, E>(outcome: Effect.Effect<A, E>): Now<A, E> => ({ _tag: "Committing", outcome })

const blocked = <A, E>(outcome: Effect.Effect<A, E>): Now<A, E> => ({ _tag: "Blocked", outcome })

/** A body of `transactNow` as a body of `transact`, for a transaction that has to wait. */
const nowAsEffect =
  <V, A, E>(body: (tx: NowTransaction<V>) => Either.Either<A, E>) =>
  (tx: KvTransaction<V>): Effect.Effect<A, E> =>
    Effect.suspend(() => {
      const ran = body(tx as NowTransaction<V>)
      return Either.isRight(ran) ? Effect.succeed(ran.right) : Effect.fail(ran.left)
    })

/** An ordered key-value backend. */
export interface KvDriver<V = string> {
  /**
   * Runs `body` as one serializable transaction and commits its writes atomically and
   * durably before succeeding. A failed or interrupted body commits nothing. Backends with
   * optimistic concurrency may run `body` more than once, so it must not have other effects.
   */
  readonly transact: <A, E, R>(
    body: (tx: KvTransaction<V>) => Effect.Effect<A, E, R>
  ) => Effect.Effect<A, E | StoreError, R>
  /**
   * `transact` for a caller that runs uninterruptibly already (inside `Effect.uninterruptibleMask`),
   * with its `restore`, under which the driver runs the body and every wait `transact` would let
   * an interruption end. `Store.transaction` calls it where present: it saves the driver's own
   * uninterruptible region, about six Effect operations per transaction. A driver that wraps
   * another and changes what `transact` does must not pass this on unchanged.
   */
  readonly transactWithin?: <A, E, R>(body: (tx: KvTransaction<V>) => Effect.Effect<A, E, R>, restore: Handoff.Restore) => Effect.Effect<A, E | StoreError, R>
  /**
   * `transact` for a body that runs at once, reading through `getNow`, on backends that can run
   * one in the caller's own step, called inside `Effect.uninterruptibleMask` (see `Now`). When
   * the writer is free and nothing delays the commit, the transaction is over, durable, when
   * this returns (`Done`), at no Effect operation. Store's small writes (a cursor, a relay scope) go through it where present:
   * through `transact` a cursor write cost about 25 Effect operations, and the simulator writes
   * one per acknowledged batch, a tenth of a simulated run's operations (December 2026). A
   * driver that wraps another and changes what `transact` does must not pass this on unchanged.
   */
  readonly transactNow?: <A, E>(body: (tx: NowTransaction<V>) => Either.Either<A, E>) => Now<A, E | StoreError>
  /**
   * Runs a read-only `body` over committed data without waiting for writers, when the backend
   * can (each read sees some committed state). Store uses it for its read-only methods so log
   * tailing and health checks never queue behind a durable commit.
   */
  readonly read?: <A, E, R>(body: (tx: KvTransaction<V>) => Effect.Effect<A, E, R>) => Effect.Effect<A, E | StoreError, R>
  /**
   * A read of one key's committed value done at once, where the backend reads synchronously
   * (memory, lmdb): what `read` would see, without a transaction view. Store reads its single
   * keys through it (the log end, once or twice per round of every agent; a cursor; the clock).
   */
  readonly readNow?: (key: string) => Either.Either<V | undefined, StoreError>
  /** Releases the backend. */
  readonly close: Effect.Effect<void>
  /**
   * What the backend knows of its commits not yet durable and of the transaction body holding its
   * writer, for the report of a stalled store (`StoreWatch`); absent where it keeps nothing to say.
   */
  readonly describeCommits?: () => string
}

/**
 * A transaction view that refuses writes: a read-only body writing is a broken invariant.
 * `getNow`, where the backend reads synchronously, lets the Store's hot paths read without an
 * Effect of their own here too.
 */
export const readOnly = <V>(
  get: KvTransaction<V>["get"],
  range: KvTransaction<V>["range"],
  getNow?: KvTransaction<V>["getNow"]
): KvTransaction<V> => ({
  get,
  range,
  ...(getNow === undefined ? {} : { getNow }),
  set: (key) => {
    throw new Error(`write of '${key}' inside a read-only store access`)
  },
  remove: (key) => {
    throw new Error(`removal of '${key}' inside a read-only store access`)
  }
})

/** Marks a key a memory transaction removed (a value may be any object, even null). */
const removed: unique symbol = Symbol("removed")

/** The committed contents of an in-memory store; survives the crash of the node using it. */
export interface MemoryDisk {
  /** Committed values, as `StoreEncoding.decoded` represents them; each commit publishes a new tree. */
  tree: DiskTree.DiskTree
  /**
   * One writer at a time per disk, not per driver: several nodes of a region may share a
   * disk (the regional database) and must still see serializable transactions.
   */
  readonly lock: Handoff.Lock
  /** Number of committed transactions, for tests and simulator statistics. */
  commits: number
}

/** A fresh, empty disk. */
export const makeMemoryDisk = (): MemoryDisk => ({
  tree: DiskTree.empty(),
  commits: 0,
  lock: new Handoff.Lock()
})

/** How the in-memory backend commits (see `makeMemory`). */
export interface MemoryOptions {
  /**
   * Commit like the embedded backend (`runtime/KvLmdb.ts`), as the simulator's per-node disks
   * do: bodies run one at a time, but a body's writes are handed over when it ends and the next
   * body runs at once, reading them, while they become durable in order. Without it (a regional
   * disk, as FoundationDB commits) each transaction is durable before the next body starts.
   */
  readonly pipelined?: boolean
  /**
   * Asked when a transaction that wrote is about to become durable: undefined commits it at
   * once, an Effect runs first (the simulator's slow or failing disk). A function rather than an
   * Effect so the usual case, no fault, costs no Effect of its own.
   */
  readonly atCommit?: () => Effect.Effect<void, StoreError> | undefined
}

/**
 * An in-memory driver over a disk, serializable: every body sees the state every earlier body
 * left. A disk holds values of one representation `V`: decoded values for `Store.makeMemory` (the
 * default), or text when a test views a disk as the byte-oriented backends' stored form
 * (`Store.make`).
 */
export const makeMemory = <V = unknown>(disk: MemoryDisk, options: MemoryOptions = {}): Effect.Effect<KvDriver<V>> =>
  Effect.sync(() => (options.pipelined === true ? pipelinedMemory<V>(disk, options.atCommit ?? noFault) : serialMemory<V>(disk, options.atCommit ?? noFault)))

const noFault = (): undefined => undefined

type AtCommit = () => Effect.Effect<void, StoreError> | undefined

/** A transaction over `base` (a snapshot, maybe with writes in flight laid over it) that buffers its own writes in `writes`. */
const bufferedOver = <V>(base: (key: string) => unknown, baseRange: (start: string, end: string, limit: number) => Array<readonly [string, unknown]>, writes: Map<string, unknown>): KvTransaction<V> => {
  const read = (key: string): V | undefined => {
    const buffered = writes.get(key)
    if (buffered !== undefined) return buffered === removed ? undefined : (buffered as V)
    const value = base(key)
    return value === removed ? undefined : (value as V | undefined)
  }
  return {
    get: (key) => Effect.sync(() => read(key)),
    getNow: (key) => Either.right(read(key)),
    range: (start, end, limit) => Effect.sync(() => overlayOn(baseRange, writes, start, end, limit) as Array<readonly [string, V]>),
    set: (key, value) => void writes.set(key, value),
    remove: (key) => void writes.set(key, removed)
  }
}

const committedReads = <V>(disk: MemoryDisk) => <A, E, R>(body: (tx: KvTransaction<V>) => Effect.Effect<A, E, R>): Effect.Effect<A, E | StoreError, R> =>
  Effect.suspend(() => {
    const snapshot = disk.tree
    return body(
      readOnly(
        (key) => Effect.sync(() => DiskTree.get(snapshot, key) as V | undefined),
        (start, end, limit) => Effect.sync(() => DiskTree.range(snapshot, start, end, limit) as Array<readonly [string, V]>),
        (key) => Either.right(DiskTree.get(snapshot, key) as V | undefined)
      )
    )
  })

/** Each transaction holds the disk's lock until it is durable: the regional disk's commits. */
const serialMemory = <V>(disk: MemoryDisk, atCommit: AtCommit): KvDriver<V> => {
  // A body's view: the disk as it is now, and its own writes.
  const overSnapshot = (writes: Map<string, unknown>) => {
    const snapshot = disk.tree
    return bufferedOver<V>((key) => DiskTree.get(snapshot, key), (start, end, limit) => DiskTree.range(snapshot, start, end, limit), writes)
  }
  const committing = <A, E, R>(body: (tx: KvTransaction<V>) => Effect.Effect<A, E, R>): Effect.Effect<A, E | StoreError, R> =>
    Effect.suspend(() => {
      const writes = new Map<string, unknown>()
      const tx = overSnapshot(writes)
      const apply = () => commitTo(disk, writes)
      return Effect.flatMap(body(tx), (result) => {
        if (writes.size === 0) return Effect.succeed(result)
        const fault = atCommit()
        if (fault === undefined) return Effect.sync(() => (apply(), result))
        return Effect.as(Effect.zipRight(fault, Effect.sync(apply)), result)
      })
    })
  const transact = <A, E, R>(body: (tx: KvTransaction<V>) => Effect.Effect<A, E, R>) => disk.lock.with(committing(body))
  // `committing` in the caller's step while the lock is free; a delayed commit holds the lock
  // through the delay, interruptibly (nothing is written then), as it does under `transact`.
  const transactNow = <A, E>(body: (tx: NowTransaction<V>) => Either.Either<A, E>): Now<A, E | StoreError> => {
    if (disk.lock.isHeld) return blocked(transact(nowAsEffect(body)))
    const writes = new Map<string, unknown>()
    const ran = body(overSnapshot(writes) as NowTransaction<V>)
    if (Either.isLeft(ran) || writes.size === 0) return done(ran)
    const fault = atCommit()
    if (fault === undefined) {
      commitTo(disk, writes)
      return done(ran)
    }
    disk.lock.takeNow()
    const commit = Effect.zipRight(Effect.interruptible(fault), Effect.sync(() => commitTo(disk, writes)))
    return handedOver(Effect.ensuring(Effect.as(commit, ran.right), Effect.sync(() => disk.lock.unsafeRelease())))
  }
  return {
    transact,
    transactWithin: (body, restore) => disk.lock.within(restore, committing(body)),
    transactNow,
    read: committedReads<V>(disk),
    readNow: (key) => Either.right(DiskTree.get(disk.tree, key) as V | undefined),
    close: Effect.void
  }
}

/**
 * The embedded backend's group commit, in memory: the lock covers a body and the hand-over of its
 * writes; they then become durable in hand-over order, each after its predecessor, while later
 * bodies read them through `inFlight`. Readers outside transactions see durable data only. A
 * commit that fails takes every later one in flight with it (they may have read its writes, so
 * none of them may reach the disk); new transactions are refused until all of those have
 * settled, then the driver goes on from the disk, as `KvLmdb` does. A body that wrote nothing is
 * done only once the commits in flight when it ended are durable, and fails if they fail: it may
 * have decided on their writes. Without that rule the
 * simulator's `store_integrity` check fails seeds with failing store commits (a log gap, a
 * frontier change missing from the log). A crash stops the incarnation's fibers: whatever was
 * in flight never reaches the disk.
 */
const pipelinedMemory = <V>(disk: MemoryDisk, atCommit: AtCommit): KvDriver<V> => {
  const pipeline = new Pipeline(disk, atCommit)
  const transactWithin = <A, E, R>(body: (tx: KvTransaction<V>) => Effect.Effect<A, E, R>, restore: Handoff.Restore): Effect.Effect<A, E | StoreError, R> =>
    Effect.flatMap(
      disk.lock.takeThen(
        restore,
        disk.lock.holding(
          Effect.suspend((): Effect.Effect<HandedOver<A>, E | StoreError, R> => {
            const refused = pipeline.commits.resumable()
            if (refused !== undefined) return Effect.fail(refused)
            const writes = new Map<string, unknown>()
            return Effect.flatMap(restore(body(pipeline.transaction<V>(writes))), (result): Effect.Effect<HandedOver<A>, StoreError> => {
              // A commit failed while this body ran: it may have read that commit's writes.
              const broken = pipeline.commits.brokenBy()
              if (broken !== undefined) return Effect.fail(broken)
              // A body that wrote nothing may still have decided on writes in flight (a batch whose
              // changes it found already there), so it is done once those are durable, and fails with them.
              if (writes.size === 0) return Effect.succeed({ result, durable: pipeline.inFlightDurable() })
              return Effect.succeed({ result, durable: pipeline.handOver(writes) })
            })
          })
        )
      ),
      // Not under `restore`: the wait is what makes the commit durable (`Pipeline.commit`), so an
      // interrupted waiter would leave it unsettled for good, where lmdb's commit goes on whoever
      // waits: later commits waited behind it, and after a failed commit every transaction was
      // refused (`InFlightCommits.resumable`). Swarm seed 77000009 of small-messages.yaml found it
      // on December 7, 2026, the day it was written. Once the writes are handed over they commit,
      // and the caller learns the outcome, as with lmdb.
      ({ result, durable }) => (durable === undefined ? Effect.succeed(result) : Effect.as(durable, result))
    )
  const transact = <A, E, R>(body: (tx: KvTransaction<V>) => Effect.Effect<A, E, R>) => Effect.uninterruptibleMask((restore) => transactWithin(body, restore))
  // `transactWithin` in the caller's step while the lock is free: nothing else runs between the
  // body and the hand-over, so the lock need not be taken. The wait for a commit in flight is
  // uninterruptible, as there: it is what makes the commit durable.
  const transactNow = <A, E>(body: (tx: NowTransaction<V>) => Either.Either<A, E>): Now<A, E | StoreError> => {
    if (disk.lock.isHeld) return blocked(transact(nowAsEffect(body)))
    const refused = pipeline.commits.resumable()
    if (refused !== undefined) return done(Either.left(refused))
    const writes = new Map<string, unknown>()
    const ran = body(pipeline.transaction<V>(writes) as NowTransaction<V>)
    if (Either.isLeft(ran)) return done(ran)
    const durable = writes.size === 0 ? pipeline.inFlightDurable() : pipeline.handOver(writes)
    return durable === undefined ? done(ran) : handedOver(Effect.as(durable, ran.right))
  }
  return {
    transact,
    transactWithin,
    transactNow,
    read: committedReads<V>(disk),
    readNow: (key) => Either.right(DiskTree.get(disk.tree, key) as V | undefined),
    close: Effect.void,
    describeCommits: () => `${pipeline.commits.unsettled} commit(s) handed over and not durable; the writer lock ${disk.lock.isHeld ? "held by a transaction body" : "free"}`
  }
}

/** A body's result and the wait for its writes to become durable. */
interface HandedOver<A> {
  readonly result: A
  /** Undefined when the writes are durable already (or the body wrote nothing and nothing is in flight). */
  readonly durable: Effect.Effect<void, StoreError> | undefined
}

/** The state of `pipelinedMemory`: the writes in flight, their order and what a failure left. */
class Pipeline {
  readonly commits = new InFlightCommits<unknown>()
  /** The outcome of the commit handed over last; the next one waits for it while commits are in flight. */
  private previous: Handoff.Outcome<boolean> | undefined

  constructor(
    private readonly disk: MemoryDisk,
    private readonly atCommit: AtCommit
  ) {}

  /** A body's view: its own writes, then those in flight, then the disk. */
  transaction<V>(writes: Map<string, unknown>): KvTransaction<V> {
    const inFlight = this.commits.writes
    const base = (key: string): unknown => {
      const pending = inFlight.get(key)
      return pending === undefined ? DiskTree.get(this.disk.tree, key) : pending
    }
    const onDisk = (start: string, end: string, limit: number) => DiskTree.range(this.disk.tree, start, end, limit)
    const baseRange = (start: string, end: string, limit: number) =>
      inFlight.isEmpty ? onDisk(start, end, limit) : overlayOn(onDisk, inFlight.merged(), start, end, limit)
    return bufferedOver<V>(base, baseRange, writes)
  }

  /** Succeeds once every commit handed over so far is durable; fails if one of them will never be (they become durable in order). */
  inFlightDurable(): Effect.Effect<void, StoreError> | undefined {
    const last = this.previous
    if (this.commits.unsettled === 0 || last === undefined) return undefined
    return Effect.flatMap(last.await, (durable) => (durable ? Effect.void : Effect.fail(chainBroken)))
  }

  /** Hands a body's writes over: durable at once when nothing is in flight and the disk asks for no delay, else in order behind the rest. */
  handOver(writes: ReadonlyMap<string, unknown>): Effect.Effect<void, StoreError> | undefined {
    const idle = this.commits.unsettled === 0
    const fault = idle ? this.atCommit() : undefined
    if (idle && fault === undefined) {
      commitTo(this.disk, writes)
      return undefined
    }
    const entry = this.commits.begin(writes)
    const outcome = new Handoff.Outcome<boolean>()
    const durable = this.commit(writes, entry, idle ? undefined : this.previous, outcome, fault)
    this.previous = outcome
    return durable
  }

  /** Makes one handed-over commit durable after its predecessor (`fault` when already asked), or fails it. */
  private commit(
    writes: ReadonlyMap<string, unknown>,
    entry: InFlight<unknown>,
    predecessor: Handoff.Outcome<boolean> | undefined,
    outcome: Handoff.Outcome<boolean>,
    fault: Effect.Effect<void, StoreError> | undefined
  ): Effect.Effect<void, StoreError> {
    return Effect.gen(this, function* () {
      const predecessorDurable = predecessor === undefined ? true : yield* predecessor.await
      // A predecessor that did not reach the disk fails this commit too: this body may have read its writes.
      const delay = predecessorDurable ? (fault ?? this.atCommit()) : Effect.fail(chainBroken)
      const failed = delay === undefined ? Option.none() : yield* Effect.flip(delay).pipe(Effect.option)
      if (Option.isSome(failed)) {
        this.commits.failed(failed.value)
        yield* outcome.complete(false)
        return yield* Effect.fail(failed.value)
      }
      commitTo(this.disk, writes)
      this.commits.succeeded(entry)
      yield* outcome.complete(true)
    })
  }
}

const chainBroken = new StoreError({ operation: "commit", message: "an earlier commit did not reach the disk, and this transaction may have read its writes" })


/** One commit's writes, handed over and not yet known durable. */
export interface InFlight<W> {
  readonly writes: ReadonlyMap<string, W>
  durable: boolean
}

/**
 * The writes handed over and not yet durable, one entry per commit, oldest first: what the
 * pipelined drivers (`KvLmdb`, the in-memory one) lay over durable data for the next bodies.
 * Reads look from the newest commit back, so a key's newest pending value wins. A commit leaves
 * only once it and every older one are durable (commits become durable in order). Keeping each
 * body's own write map costs nothing per key written; a read looks through the commits in
 * flight (at most one per concurrent transaction).
 */
export class InFlightWrites<W> {
  private readonly commits: Array<InFlight<W>> = []
  get isEmpty(): boolean {
    return this.commits.length === 0
  }
  add(writes: ReadonlyMap<string, W>): InFlight<W> {
    const commit: InFlight<W> = { writes, durable: false }
    this.commits.push(commit)
    return commit
  }
  settle(commit: InFlight<W>): void {
    commit.durable = true
    while (this.commits[0]?.durable === true) this.commits.shift()
  }
  /** The newest pending value of `key`, undefined when no commit in flight wrote it. */
  get(key: string): W | undefined {
    for (let index = this.commits.length - 1; index >= 0; index--) {
      const value = this.commits[index]!.writes.get(key)
      if (value !== undefined) return value
    }
    return undefined
  }
  /** Forgets every commit: after a failure, once all of them have settled. */
  clear(): void {
    this.commits.length = 0
  }
  /** Every pending write, the newest value of each key. */
  merged(): ReadonlyMap<string, W> {
    const merged = new Map<string, W>()
    for (const commit of this.commits) for (const [key, value] of commit.writes) merged.set(key, value)
    return merged
  }
}

/**
 * What a pipelined driver (`KvLmdb`, the in-memory one) knows of the commits it handed over: the
 * writes in flight, how many have not settled, and the failure that broke the chain. A commit
 * that fails takes every later one in flight with it (their bodies may have read its writes), so
 * after a failure a transaction may start only once every commit handed over before it has
 * settled; the driver then goes on from the disk. Checked under the driver's lock, so no body
 * that may have read the failed writes is still running.
 */
export class InFlightCommits<W> {
  readonly writes = new InFlightWrites<W>()
  private pending = 0
  private broken: StoreError | undefined

  /** Commits handed over and not yet settled. */
  get unsettled(): number {
    return this.pending
  }

  /** Undefined when a transaction may start; else why not. Clears a failure once everything behind it has settled. */
  resumable(): StoreError | undefined {
    if (this.broken === undefined) return undefined
    if (this.pending > 0) return new StoreError({ operation: "transact", message: `an earlier commit failed and commits still in flight behind it are failing: ${this.broken.message}` })
    this.broken = undefined
    this.writes.clear()
    return undefined
  }

  /** Why a body that ends now may not hand its writes over (a commit failed while it ran: it may have read that commit's writes). */
  brokenBy(): StoreError | undefined {
    return this.broken === undefined ? undefined : new StoreError({ operation: "commit", message: `an earlier commit failed while this transaction ran: ${this.broken.message}` })
  }

  /** A body's writes handed over: in flight until they settle. */
  begin(writes: ReadonlyMap<string, W>): InFlight<W> {
    this.pending++
    return this.writes.add(writes)
  }

  /** The commit is durable. */
  succeeded(commit: InFlight<W>): void {
    this.pending--
    this.writes.settle(commit)
  }

  /** The commit will never be durable: the chain is broken until everything in flight has settled. */
  failed(cause: StoreError): void {
    this.pending--
    this.broken ??= cause
  }
}

/** Makes a transaction's writes durable on an in-memory disk. */
const commitTo = (disk: MemoryDisk, writes: ReadonlyMap<string, unknown>): void => {
  disk.tree = DiskTree.withWrites(disk.tree, writes, removed)
  disk.commits++
}

/** A range read over `baseRange` that sees the writes in `pending` (a removal is `removed`). */
const overlayOn = (
  baseRange: (start: string, end: string, limit: number) => Array<readonly [string, unknown]>,
  pending: ReadonlyMap<string, unknown>,
  start: string,
  end: string,
  limit: number
): Array<readonly [string, unknown]> => {
  const touched = [...pending.keys()].filter((key) => key >= start && key < end)
  if (touched.length === 0) return baseRange(start, end, limit)
  const merged = new Map(baseRange(start, end, limit + touched.length))
  for (const key of touched) {
    const value = pending.get(key)
    if (value === removed || value === undefined) merged.delete(key)
    else merged.set(key, value)
  }
  return [...merged.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).slice(0, limit)
}
