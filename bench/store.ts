/**
 * `npm run bench:store`: one node's write and apply paths on lmdb, in this process, without gRPC
 * or a second process, so a change to the Replica, the Store or the lmdb driver is measured
 * apart from the network and the machine's other tenants. Prints ONE JSON line:
 *
 * - `write`: WRITERS concurrent client writes of 100 inserts each through `Replica.write` on a
 *   fresh lmdb directory (fsync on every commit, group commit as in `serve`): changes/s and CPU
 *   microseconds per change (this process's user+system time, lmdb's write thread and GC
 *   included), and bytes per change written to the disk (`write_bytes` of /proc/self/io: every
 *   page lmdb's commits wrote) and held in the store's files at the end;
 * - `apply`: the log those writes left, sent as `ReplicateBatch`es of BATCH changes to a second
 *   node on its own fresh lmdb directory, INFLIGHT at once, each decoded from its protobuf bytes
 *   and answered with encoded bytes as the gRPC server does (`WireCodec`, `Replica.handle`);
 * - `loneWrite`: LONE_WRITES writes of 100 inserts one at a time, LONE_GAP_MS apart (5,000
 *   changes/s offered when 20), on a fresh node: p50/p99/max of each write's latency in
 *   `Replica.write` and of its durable commit alone (`KvLmdb`'s commit observation). Nothing
 *   shares these commits, so this is the floor a write's acknowledgement, and so the replication
 *   lag, stands on with this disk.
 * - `codec`: the wire's bulk messages built from the last write run's log, in this process
 *   without I/O: a `ReplicateBatch` of BATCH changes encoded (`WireCodec.encodeRequest`, which
 *   `BatchEncoder` writes) and decoded (`WireCodec.decodeRequest`), and a Watch event of BATCH
 *   changes encoded (`WireCodec.encodeWatchChanges`); each also through the encoders generated
 *   from `messages.proto`, which wrote them until December 4, 2026. Wall time with its GC, the
 *   best of CODEC_ROUNDS rounds of CODEC_MESSAGES messages, in µs per change.
 * - the machine's load average at the start and the end: compare only runs under a similar load.
 *
 * Each path runs RUNS times after one warm-up run and reports every run, so the spread shows.
 * `bench:repl` measures the same paths between two real processes.
 *
 * Environment: CHANGES (200000, a multiple of 100), WRITERS (16), BATCH (1000), INFLIGHT (4),
 * RUNS (3), LONE_WRITES (300), LONE_GAP_MS (20), CODEC_ROUNDS (30), CODEC_MESSAGES (40).
 */
import { Effect, Either, Exit, Layer, Scope } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Clock from "../src/replication/Clock.js"
import * as Engine from "../src/replication/Engine.js"
import type * as Message from "../src/replication/Message.js"
import * as Metrics from "../src/replication/Metrics.js"
import * as Proto from "../src/proto/inferadb/replication/v1/messages.js"
import * as Network from "../src/replication/Network.js"
import * as Random from "../src/replication/Random.js"
import * as Replica from "../src/replication/Replica.js"
import * as Store from "../src/replication/Store.js"
import * as WireCodec from "../src/replication/WireCodec.js"
import * as KvLmdb from "../src/runtime/KvLmdb.js"
import * as Cluster from "../test/replication/fixtures/cluster.js"

const numberFromEnv = (name: string, fallback: number): number => {
  const value = Number(process.env[name])
  return Number.isInteger(value) && value > 0 ? value : fallback
}

const changesPerWrite = 100
const changes = Math.ceil(numberFromEnv("CHANGES", 200_000) / changesPerWrite) * changesPerWrite
const writers = numberFromEnv("WRITERS", 16)
const batchSize = numberFromEnv("BATCH", 1_000)
const inFlight = numberFromEnv("INFLIGHT", 4)
const runs = numberFromEnv("RUNS", 3)
const loneWrites = numberFromEnv("LONE_WRITES", 300)
const loneGapMs = numberFromEnv("LONE_GAP_MS", 20)
const codecRounds = numberFromEnv("CODEC_ROUNDS", 30)
const codecMessages = numberFromEnv("CODEC_MESSAGES", 40)

const loadAverage = (): ReadonlyArray<number> => os.loadavg().map((value) => Number(value.toFixed(2)))
const progress = (line: string): void => void process.stderr.write(`[bench] ${line}\n`)

const cluster = Cluster.make({ regions: ["us", "eu"] })
const hub = Network.makeHub({ random: Random.make(1).derive("network") })

/** A node of `region` on a fresh lmdb directory, and the directory (removed by the caller). */
const startNode = (region: string, onCommit?: (commit: KvLmdb.CommitObservation) => void) =>
  Effect.gen(function* () {
    const directory = fs.mkdtempSync(path.join(os.tmpdir(), `inferadb-bench-store-${region}-`))
    const layer = Engine.layer(cluster.settingsFor(region)).pipe(
      Layer.provideMerge(
        Layer.mergeAll(
          KvLmdb.layerLmdb({ path: directory, ...(onCommit === undefined ? {} : { onCommit }) }),
          Clock.layer("hlc"),
          Network.layerMemory(hub, { regionId: region, nodeId: `${region}-node1`, endpoint: `mem://${region}` }),
          Random.layerSeeded(region),
          Metrics.layerMemory(Metrics.makeMemory())
        )
      )
    )
    const scope = yield* Scope.make()
    const context = yield* Layer.buildWithScope(layer, scope)
    const replica = yield* Effect.provide(Replica.Replica, context)
    yield* replica.openWrites
    const store = yield* Effect.provide(Store.Store, context)
    const stop = Effect.zipRight(Scope.close(scope, Exit.void), Effect.sync(() => fs.rmSync(directory, { recursive: true, force: true })))
    return { replica, store, stop, directory }
  })

/** Bytes this process has caused to be written to storage (`write_bytes` of /proc/self/io); NaN where there is none. */
const writtenBytes = (): number => {
  try {
    return Number(/^write_bytes: (\d+)$/m.exec(fs.readFileSync("/proc/self/io", "utf8"))?.[1] ?? Number.NaN)
  } catch {
    return Number.NaN
  }
}

/** The size of the files in `directory`, in bytes. */
const directoryBytes = (directory: string): number =>
  fs.readdirSync(directory).reduce((sum, name) => sum + fs.statSync(path.join(directory, name)).size, 0)

/**
 * Runs `body` and returns changes/s, CPU µs per change, and bytes per change written to the disk
 * (lmdb's pages, the commits' whole cost in I/O) and held in `directory`'s files at the end, over
 * `count` changes.
 */
const timed = <E>(count: number, directory: string, body: Effect.Effect<void, E>) =>
  Effect.gen(function* () {
    const cpuBefore = process.cpuUsage()
    const writtenBefore = writtenBytes()
    const startedMs = performance.now()
    yield* body
    const seconds = (performance.now() - startedMs) / 1000
    const cpu = process.cpuUsage(cpuBefore)
    return {
      changesPerSecond: Math.round(count / seconds),
      cpuMicrosPerChange: Number(((cpu.user + cpu.system) / count).toFixed(2)),
      diskWrittenBytesPerChange: Math.round((writtenBytes() - writtenBefore) / count),
      storeFileBytesPerChange: Math.round(directoryBytes(directory) / count)
    }
  })

const writeOperations = (write: number): ReadonlyArray<Replica.Operation> =>
  Array.from({ length: changesPerWrite }, (_, index) => ({
    op: "insert" as const,
    tuple: { vault: "bench", resource: `document:w${write}`, relation: "viewer", subject: `user:u${index}` }
  }))

/** One write run on a fresh node; returns its figures and the protobuf bytes of its log as batches. */
const writeRun = Effect.gen(function* () {
  const node = yield* startNode("us")
  let next = 0
  const writer = Effect.gen(function* () {
    while (next < changes / changesPerWrite) yield* node.replica.write(writeOperations(next++))
  })
  const figures = yield* timed(changes, node.directory, Effect.asVoid(Effect.all(Array.from({ length: writers }, () => writer), { concurrency: "unbounded" })))
  const entries = yield* node.store.readLog(1, changes)
  yield* node.stop
  const batches: Array<Uint8Array> = []
  for (let first = 0; first < entries.length; first += batchSize) {
    const batch: Message.ReplicateBatch = {
      _tag: "ReplicateBatch",
      batchId: `bench-${first}`,
      fromRegion: "us",
      fromNode: "us-node1",
      changes: entries.slice(first, first + batchSize).map((entry) => entry.change)
    }
    batches.push(WireCodec.encodeRequest(batch))
  }
  return { figures, batches, entries }
})

/** One apply run of `batches` on a fresh node; fails if the node did not log every change. */
const applyRun = (batches: ReadonlyArray<Uint8Array>, expected: number) =>
  Effect.gen(function* () {
    const node = yield* startNode("eu")
    let next = 0
    const sender = Effect.gen(function* () {
      while (next < batches.length) {
        const request = WireCodec.decodeRequest(batches[next++]!)
        if (Either.isLeft(request)) return yield* Effect.dieMessage(request.left)
        WireCodec.encodeResponse(yield* node.replica.handle(request.right), request.right)
      }
    })
    const figures = yield* timed(expected, node.directory, Effect.asVoid(Effect.all(Array.from({ length: inFlight }, () => sender), { concurrency: "unbounded" })))
    const applied = yield* node.store.logEnd
    yield* node.stop
    if (applied !== expected) return yield* Effect.dieMessage(`the apply run logged ${applied} of ${expected} changes`)
    return figures
  })

/** The best of `codecRounds` rounds of `encode` over `messages`, in µs per change. */
const perChange = <A>(messages: ReadonlyArray<A>, changesEach: number, encode: (message: A) => unknown): number => {
  let bestNs = Number.POSITIVE_INFINITY
  for (let round = 0; round < codecRounds; round++) {
    const started = process.hrtime.bigint()
    for (const message of messages) encode(message)
    bestNs = Math.min(bestNs, Number(process.hrtime.bigint() - started))
  }
  return Number((bestNs / 1000 / (messages.length * changesEach)).toFixed(3))
}

/** The wire's bulk messages from `entries`: ours (`BatchEncoder`, `BatchDecoder`) and the generated code's. */
const codecRun = (entries: ReadonlyArray<Store.LogEntry>) => {
  const pages = Array.from({ length: Math.min(codecMessages, Math.floor(entries.length / batchSize)) }, (_, index) => entries.slice(index * batchSize, (index + 1) * batchSize))
  const batches = pages.map((page, index): Message.ReplicateBatch => ({ _tag: "ReplicateBatch", batchId: `codec-${index}`, fromRegion: "us", fromNode: "us-node1", changes: page.map((entry) => entry.change) }))
  const bytes = batches.map(WireCodec.encodeRequest)
  const generatedBatch = (batch: Message.ReplicateBatch) =>
    Proto.Request.encode({ body: { $case: "replicateBatch", value: { ...batch, changes: batch.changes.map(WireCodec.changeToProto) } } }).finish()
  const generatedWatch = (page: ReadonlyArray<Store.LogEntry>) => Proto.WatchEvent.encode({ event: { $case: "changes", value: { entries: page.map(WireCodec.logEntryToProto) } } }).finish()
  return {
    changesPerMessage: batchSize,
    messages: pages.length,
    microsPerChange: {
      encodeBatch: perChange(batches, batchSize, WireCodec.encodeRequest),
      encodeBatchGenerated: perChange(batches, batchSize, generatedBatch),
      decodeBatch: perChange(bytes, batchSize, WireCodec.decodeRequest),
      encodeWatch: perChange(pages, batchSize, WireCodec.encodeWatchChanges),
      encodeWatchGenerated: perChange(pages, batchSize, generatedWatch)
    }
  }
}

/** p50, p99 and max of `values` in ms, to 0.01 ms. */
const spread = (values: ReadonlyArray<number>) => {
  const sorted = [...values].sort((a, b) => a - b)
  const at = (q: number) => Number((sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? Number.NaN).toFixed(2))
  return { p50Ms: at(0.5), p99Ms: at(0.99), maxMs: at(1) }
}

/** Writes one at a time, `loneGapMs` apart, after ten unmeasured ones. */
const loneWriteRun = Effect.gen(function* () {
  const commitsMs: Array<number> = []
  const node = yield* startNode("us", (commit) => void commitsMs.push(commit.durationMs))
  const writesMs: Array<number> = []
  for (let write = 0; write < loneWrites + 10; write++) {
    yield* Effect.sleep(loneGapMs)
    const startedMs = performance.now()
    yield* node.replica.write(writeOperations(write))
    if (write >= 10) writesMs.push(performance.now() - startedMs)
  }
  yield* node.stop
  return { writes: loneWrites, gapMs: loneGapMs, write: spread(writesMs), commit: spread(commitsMs.slice(10)) }
})

const main = Effect.gen(function* () {
  const loadAtStart = loadAverage()
  const writes = []
  const applies = []
  let logged: ReadonlyArray<Store.LogEntry> = []
  for (let run = 0; run <= runs; run++) {
    const label = run === 0 ? "warm-up" : `run ${run} of ${runs}`
    const written = yield* writeRun
    if (written.entries.length !== changes) return yield* Effect.dieMessage(`the write run logged ${written.entries.length} of ${changes} changes`)
    const applied = yield* applyRun(written.batches, changes)
    progress(`${label}: write ${written.figures.changesPerSecond} changes/s, apply ${applied.changesPerSecond} changes/s`)
    logged = written.entries
    if (run === 0) continue
    writes.push(written.figures)
    applies.push(applied)
  }
  progress(`lone writes: ${loneWrites}, ${loneGapMs} ms apart`)
  const loneWrite = yield* loneWriteRun
  progress(`codec: ${codecRounds} rounds of ${codecMessages} messages of ${batchSize} changes`)
  const codec = codecRun(logged)
  const result = {
    bench: "store",
    store: "lmdb, one node in this process, group commit, fsync on every commit",
    changes,
    write: { writers, changesPerWrite, runs: writes },
    apply: { batchSize, inFlight, runs: applies },
    loneWrite,
    codec,
    machine: { node: process.version, cpus: os.cpus().length, platform: `${os.platform()} ${os.arch()}`, loadAverage: { start: loadAtStart, end: loadAverage() } }
  }
  process.stdout.write(`${JSON.stringify(result)}\n`)
})

Effect.runPromise(main).then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`)
    process.exit(1)
  }
)
