/**
 * The Store contract over the runtime backends: lmdb always; the FoundationDB driver over an
 * in-memory fake of the binding always (its own logic: layout, prefixes, retries, the
 * commit_unknown_result guard); and over a real cluster only when `FDB_CLUSTER_FILE` names a
 * readable file and the binding loads, otherwise a skipped test names the reason. Plus the
 * error for a missing binding, and acknowledged lmdb commits surviving `kill -9`.
 */
import { describe, expect, it } from "@effect/vitest"
import { spawn } from "node:child_process"
import { randomUUID } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { Cause, Context, Effect, Either, Exit, Layer, Logger } from "effect"
import { open } from "lmdb"
import type * as Change from "../../src/replication/Change.js"
import type { StoreError } from "../../src/replication/Errors.js"
import * as Store from "../../src/replication/Store.js"
import * as StoredForm from "../../src/replication/StoredForm.js"
import * as StoredState from "../../src/chaos/StoredState.js"
import * as Tuple from "../../src/replication/Tuple.js"
import * as KvFoundationDb from "../../src/runtime/KvFoundationDb.js"
import * as KvEncoding from "../../src/runtime/KvEncoding.js"
import * as KvLmdb from "../../src/runtime/KvLmdb.js"
import * as MapRoom from "../../src/runtime/MapRoom.js"
import { afterAll } from "vitest"
import { contract } from "../replication/fixtures/storeContract.js"
import { tupleFor } from "./fixtures/crashWriter.js"
import * as SmallDisk from "./fixtures/smallDisk.js"
import * as FakeFdb from "./fixtures/fakeFoundationDb.js"

const directories: Array<string> = []
const temporaryDirectory = () => {
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), "inferadb-lmdb-"))
  directories.push(directory)
  return directory
}
afterAll(() => {
  for (const directory of directories) fs.rmSync(directory, { recursive: true, force: true })
})

const withStore = <A, E>(layer: Layer.Layer<Store.Store, StoreError>, body: (store: Store.Store["Type"]) => Effect.Effect<A, E>) =>
  Effect.scoped(Effect.flatMap(Layer.build(layer), (context) => body(Context.get(context, Store.Store))))

const change = (subject: string): Change.Change => ({
  id: { origin: "us", seq: 1 },
  op: "insert",
  tuple: { ...tupleFor(1), subject },
  timestamp: { physicalMs: 1, logical: 0 },
  originRegion: "us",
  originNode: "us-node1",
  originRevision: 1,
  committedAtMs: 1,
  context: {}
})

const appendOne = (store: Store.Store["Type"]) =>
  store.transaction((tx) =>
    Effect.gen(function* () {
      const seq = yield* tx.next("originSeq")
      yield* tx.putTuple(tupleFor(seq), { frontier: [] })
      return seq
    })
  )

describe("Store over lmdb", () => {
  contract(() => {
    const directory = temporaryDirectory()
    return { layer: KvLmdb.layerLmdb({ path: directory }), reopen: () => KvLmdb.layerLmdb({ path: directory }) }
  })

  it.effect("keys outside the basic plane scan in the same order as the memory store", () =>
    Effect.gen(function* () {
      // Plain UTF-8 would sort the emoji after the "\uffff" prefix-end and drop it from the scan.
      const subjects = ["user:\u{1F600}", "user:\uFFFD", "user:\uE000", "user:z", "user:\uD800"]
      const scan = (layer: Layer.Layer<Store.Store, StoreError>) =>
        withStore(layer, (store) =>
          Effect.gen(function* () {
            yield* store.transaction((tx) =>
              Effect.forEach(subjects, (subject) => tx.putTuple({ ...tupleFor(1), subject }, { frontier: [change(subject)] }))
            )
            return (yield* store.scanTuples({ vault: "acme" })).map((state) => state.frontier[0]!.tuple.subject)
          })
        )
      const lmdb = yield* scan(KvLmdb.layerLmdb({ path: temporaryDirectory() }))
      expect(lmdb).toEqual(yield* scan(Store.layerMemory()))
      expect(lmdb.length).toBe(subjects.length)
    }))
})

describe("lmdb values on disk", () => {
  // Values were written as Buffer.from(text, "utf8") under lmdb's binary encoding; they are now
  // written and read under its string encoding. The bytes must be the same both ways, or a data
  // directory written by one version would not read in the other.
  const subject = "user:\u00fc\u{1F600}\u4e2d"
  const tuple = { ...tupleFor(1), subject }
  const tupleKey = KvEncoding.encodeKey(`t/${Tuple.key(tuple)}`)

  it.effect("a value written by the store is its text's UTF-8 bytes, and such bytes written raw read back as the same state", () =>
    Effect.gen(function* () {
      const directory = temporaryDirectory()
      // The tuple is in the key, not in a frontier member: the subject's characters go in the context too.
      const member: Change.Change = { ...change(subject), context: { [subject]: 1 } }
      yield* withStore(KvLmdb.layerLmdb({ path: directory }), (store) => store.transaction((tx) => tx.putTuple(tuple, { frontier: [member] })))
      const raw = open<Buffer, Buffer>({ path: directory, keyEncoding: "binary", encoding: "binary" })
      const bytes = raw.get(tupleKey)
      yield* Effect.promise(() => raw.close())
      expect(bytes).toBeDefined()
      // lmdb's store numbers origin keys: the member's is the first it numbered.
      const numbered = StoredForm.encodeTupleState({ frontier: [member] }, () => 1)
      expect(numbered).toContain(subject)
      expect(Buffer.from(bytes!).equals(Buffer.from(numbered, "utf8"))).toBe(true)
      const text = StoredForm.encodeTupleState({ frontier: [member] })

      // The other way: the same bytes put raw, as the earlier version did, into a fresh directory.
      const earlier = temporaryDirectory()
      const writer = open<Buffer, Buffer>({ path: earlier, keyEncoding: "binary", encoding: "binary" })
      yield* Effect.promise(() => writer.put(tupleKey, Buffer.from(text, "utf8")))
      yield* Effect.promise(() => writer.close())
      const state = yield* withStore(KvLmdb.layerLmdb({ path: earlier }), (store) => store.getTuple(tuple))
      expect(state).toEqual({ frontier: [member] })
    }))
  it.live("every value of concurrent groups, and of a group larger than the reused value buffer, is its text's UTF-8 bytes", () =>
    // The driver writes each group's values into one reused buffer and gives lmdb their place in
    // it (`LmdbValues`): a value written over before lmdb copied it, or a region lmdb misread,
    // would show here as another value's bytes.
    Effect.gen(function* () {
      const directory = temporaryDirectory()
      const text = (group: number, index: number) => `${group}/${index}:${"\u00e9\u4e2d\u{1F600}".repeat(index % 5)}${"v".repeat((group * 31 + index * 7) % 400)}`
      const expected = new Map<string, string>()
      yield* Effect.scoped(
        Effect.gen(function* () {
          const driver = yield* KvLmdb.makeScoped({ path: directory })
          const group = (id: number, size: number) =>
            driver.transact((tx) =>
              Effect.sync(() => {
                for (let index = 0; index < size; index++) {
                  const key = `c/${String(id).padStart(4, "0")}/${String(index).padStart(5, "0")}`
                  tx.set(key, text(id, index))
                  expected.set(key, text(id, index))
                }
              })
            )
          yield* Effect.forEach(Array.from({ length: 64 }, (_, id) => id), (id) => group(id, 1 + (id % 40)), { concurrency: "unbounded" })
          // About 4 MB in one body: beyond the first buffer, so the group moves to a larger one.
          yield* group(1000, 6000)
          yield* Effect.forEach(Array.from({ length: 16 }, (_, id) => 2000 + id), (id) => group(id, 50), { concurrency: "unbounded" })
        })
      )
      const raw = open<Buffer, Buffer>({ path: directory, keyEncoding: "binary", encoding: "binary" })
      let compared = 0
      for (const [key, value] of expected) {
        const bytes = raw.get(KvEncoding.encodeKey(key))
        expect(bytes === undefined ? undefined : Buffer.from(bytes).toString("utf8"), key).toBe(value)
        compared++
      }
      yield* Effect.promise(() => raw.close())
      expect(compared).toBe(expected.size)
      expect(compared).toBeGreaterThan(6000 + 16 * 50)
    }))

  // Linux only: the maps are read from /proc.
  it.live.skipIf(process.platform !== "linux")("the data file is mapped once as the database grows, and the map does not grow the file", () =>
    // lmdb-js maps the file again, larger, each time the database outgrows its map and keeps the
    // earlier maps; pages read through several maps counted in the resident set once per map
    // (`KvLmdb`'s map size).
    Effect.gen(function* () {
      const directory = temporaryDirectory()
      const dataFile = path.join(directory, "data.mdb")
      const mappingsOfDataFile = () => fs.readFileSync("/proc/self/maps", "utf8").split("\n").filter((line) => line.endsWith(` ${dataFile}`)).length
      const value = "v".repeat(1_000)
      const keys = Array.from({ length: 40 }, (_, group) => Array.from({ length: 1_000 }, (_, index) => `m/${String(group).padStart(3, "0")}/${String(index).padStart(5, "0")}`))
      const mappings = yield* Effect.scoped(
        Effect.gen(function* () {
          const driver = yield* KvLmdb.makeScoped({ path: directory })
          // About 40 MB, in groups: lmdb-js's own first map is a few MB.
          for (const group of keys) yield* driver.transact((tx) => Effect.sync(() => group.forEach((key) => tx.set(key, value))))
          const read = yield* driver.transact((tx) => Effect.forEach(keys.flat(), (key) => tx.get(key)))
          expect(read.every((stored) => stored === value)).toBe(true)
          return mappingsOfDataFile()
        })
      )
      expect(mappings).toBe(1)
      expect(fs.statSync(dataFile).size).toBeLessThan(200 * 2 ** 20)
    }))

  it.effect("a directory whose name has a dot in it is a directory, new or existing (lmdb-js took such a path for a file)", () =>
    Effect.gen(function* () {
      const parent = temporaryDirectory()
      for (const directory of [path.join(parent, "inferadb.data"), fs.mkdtempSync(path.join(parent, "tmp."))]) {
        yield* withStore(KvLmdb.layerLmdb({ path: directory }), (store) => store.transaction((tx) => tx.putTuple(tuple, { frontier: [change(subject)] })))
        expect(fs.statSync(directory).isDirectory()).toBe(true)
        expect(fs.existsSync(path.join(directory, "data.mdb"))).toBe(true)
        const state = yield* withStore(KvLmdb.layerLmdb({ path: directory }), (store) => store.getTuple(tuple))
        expect(state.frontier.map((member) => member.tuple.subject)).toEqual([subject])
      }
      // A store an earlier version created as a file under such a name still opens, as a file.
      const file = path.join(parent, "earlier.data")
      const writer = open<Buffer, Buffer>({ path: file, noSubdir: true, keyEncoding: "binary", encoding: "binary" })
      yield* Effect.promise(() => writer.put(tupleKey, Buffer.from(StoredForm.encodeTupleState({ frontier: [change(subject)] }), "utf8")))
      yield* Effect.promise(() => writer.close())
      expect(fs.statSync(file).isFile()).toBe(true)
      const earlier = yield* withStore(KvLmdb.layerLmdb({ path: file }), (store) => store.getTuple(tuple))
      expect(earlier.frontier.map((member) => member.tuple.subject)).toEqual([subject])
    }))
  it.effect("a key one byte longer than lmdb takes is refused before anything reaches lmdb, and one that just fits is stored", () =>
    Effect.gen(function* () {
      // A subject of three-byte characters and ASCII that makes the tuple's key exactly `bytes` long.
      const sized = (bytes: number): Change.Change => {
        const rest = bytes - Store.tupleKeyBytes({ ...tupleFor(1), subject: "" })
        const wide = Math.floor(rest / 3)
        return change("€".repeat(wide) + "a".repeat(rest - 3 * wide))
      }
      const fits = sized(Store.keyBytesMax)
      const over = sized(Store.keyBytesMax + 1)
      expect([Store.tupleKeyBytes(fits.tuple), Store.tupleKeyBytes(over.tuple)]).toEqual([Store.keyBytesMax, Store.keyBytesMax + 1])
      yield* withStore(KvLmdb.layerLmdb({ path: temporaryDirectory() }), (store) =>
        Effect.gen(function* () {
          const refused = yield* Effect.either(store.transaction((tx) => tx.putTuples([[fits.tuple, { frontier: [fits] }], [over.tuple, { frontier: [over] }]])))
          expect(Either.isLeft(refused) && refused.left.message).toBe(`key of ${Store.keyBytesMax + 1} bytes is outside lmdb's 1..${Store.keyBytesMax} bytes`)
          // The refused transaction wrote nothing, not even its key that fits.
          expect((yield* store.getTuple(fits.tuple)).frontier).toEqual([])
          yield* store.transaction((tx) => tx.putTuple(fits.tuple, { frontier: [fits] }))
          expect((yield* store.getTuple(fits.tuple)).frontier.map((member) => member.tuple.subject)).toEqual([fits.tuple.subject])
        })
      )
    }))
})

describe("lmdb's log database", () => {
  const entry = (seq: number): Omit<Store.LogEntry, "position"> => ({ change: { ...change(`user:u${seq}`), id: { origin: "us", seq } }, receivedFrom: null, appliedAtMs: seq })
  const logKey = (position: number) => `${Store.logPrefix}${String(position).padStart(15, "0")}`
  // Keys and values as the store writes them (`KvLmdb`): the key encoder's bytes, UTF-8 text.
  const asStored = { keyEncoder: { writeKey: KvEncoding.writeKey, readKey: KvEncoding.readKey }, encoding: "string" } as const
  /** The root database alone, as a directory written before the log had its own. */
  const rawRoot = (directory: string) => open<string, string>({ path: directory, ...asStored } as Parameters<typeof open>[0])
  const rawOpen = (directory: string) => {
    const root = rawRoot(directory)
    return { root, log: root.openDB<string, string>("log", asStored as Parameters<typeof open>[0]) }
  }

  it.effect("holds the log in full pages, apart from the root database, which keeps no log key", () =>
    Effect.gen(function* () {
      const directory = temporaryDirectory()
      const count = 4_000
      yield* withStore(KvLmdb.layerLmdb({ path: directory }), (store) =>
        Effect.forEach(Array.from({ length: count / 100 }, (_, write) => write), (write) =>
          store.transaction((tx) => tx.appendLogs(Array.from({ length: 100 }, (_, index) => entry(write * 100 + index + 1))))
        )
      )
      const { root, log } = rawOpen(directory)
      try {
        expect(Array.from(root.getKeys({ start: "l/", end: "l0" }))).toEqual([])
        expect(log.getCount({ start: "l/", end: "l0" })).toBe(count)
        // At the end of its own database, the log fills its pages; in the root one, before the counters, LMDB split them in halves.
        const bytes = Array.from(log.getRange({ start: "l/", end: "l0" })).reduce((sum, { key, value }) => sum + key.length + Buffer.byteLength(value) + 8, 0)
        const pages = (log.getStats() as { treeLeafPageCount: number }).treeLeafPageCount
        expect(pages * 4096).toBeLessThan(1.2 * bytes)
      } finally {
        yield* Effect.promise(() => root.close())
      }
    }))

  it.effect("moves the log a directory keeps in the root database, and appends after it", () =>
    Effect.gen(function* () {
      const directory = temporaryDirectory()
      // The older layout: every key in the root database.
      const older = rawRoot(directory)
      const count = 25_000
      yield* Effect.promise(() =>
        older.batch(() => {
          for (let position = 1; position <= count; position++) void older.put(logKey(position), StoredForm.encodeLogEntry({ ...entry(position), position }))
          void older.put("m/logEnd", String(count))
        })
      )
      yield* Effect.promise(() => older.close())
      const said: Array<string> = []
      const read = yield* withStore(KvLmdb.layerLmdb({ path: directory }), (store) =>
        Effect.gen(function* () {
          const appended = yield* store.transaction((tx) => tx.appendLogs([entry(count + 1)]))
          return { appended, log: yield* store.readLog(1, count + 10), end: yield* store.logEnd }
        })
      ).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, Logger.make(({ message }) => void said.push(String(message))))))
      expect(said).toEqual([
        `lmdb at ${directory}: moving the log an earlier version kept in the root database into its own`,
        `lmdb at ${directory}: moved ${count} log entries`
      ])
      // Opened again, there is nothing to move and nothing is said.
      said.length = 0
      yield* withStore(KvLmdb.layerLmdb({ path: directory }), (store) => store.logEnd).pipe(
        Effect.provide(Logger.replace(Logger.defaultLogger, Logger.make(({ message }) => void said.push(String(message)))))
      )
      expect(said).toEqual([])
      expect(read.appended.map((written) => written.position)).toEqual([count + 1])
      expect(read.end).toBe(count + 1)
      expect(read.log.map((written) => written.position)).toEqual(Array.from({ length: count + 1 }, (_, index) => index + 1))
      expect(read.log[0]!.change.id.seq).toBe(1)
      const { root, log } = rawOpen(directory)
      try {
        expect(Array.from(root.getKeys({ start: "l/", end: "l0" }))).toEqual([])
        expect(log.getCount({ start: "l/", end: "l0" })).toBe(count + 1)
      } finally {
        yield* Effect.promise(() => root.close())
      }
    }))

  it.effect("a move a crash cut short goes on at the next open, and the judge reads the log in order meanwhile", () =>
    Effect.gen(function* () {
      const directory = temporaryDirectory()
      const encoded = (position: number) => StoredForm.encodeLogEntry({ ...entry(position), position })
      // As a crash between two of the move's transactions leaves it: the lowest entries moved, the rest still in the root database.
      const { root, log } = rawOpen(directory)
      yield* Effect.promise(() =>
        root.batch(() => {
          for (let position = 1; position <= 3; position++) void log.put(logKey(position), encoded(position))
          for (let position = 4; position <= 6; position++) void root.put(logKey(position), encoded(position))
          void root.put("m/logEnd", "6")
        })
      )
      yield* Effect.promise(() => root.close())
      expect(StoredState.read("us", "us-node1", directory).log.map((written) => written.position)).toEqual([1, 2, 3, 4, 5, 6])
      const positions = yield* withStore(KvLmdb.layerLmdb({ path: directory }), (store) => Effect.map(store.readLog(1, 100), (entries) => entries.map((written) => written.position)))
      expect(positions).toEqual([1, 2, 3, 4, 5, 6])
      const after = rawOpen(directory)
      try {
        expect(Array.from(after.root.getKeys({ start: "l/", end: "l0" }))).toEqual([])
        expect(after.log.getCount({ start: "l/", end: "l0" })).toBe(6)
      } finally {
        yield* Effect.promise(() => after.root.close())
      }
    }))

  it.scoped("a range over both databases returns their keys in order, without the log database's own record", () =>
    Effect.gen(function* () {
      const driver = yield* KvLmdb.makeScoped({ path: temporaryDirectory() })
      const keys = ["a", "k/1", logKey(1), logKey(2), "m/x", "t/y"]
      yield* driver.transact((tx) => Effect.sync(() => keys.forEach((key) => tx.set(key, key.toUpperCase()))))
      const read = driver.read!
      const range = (start: string, end: string, limit: number) => read((tx) => tx.range(start, end, limit))
      expect((yield* range("", "\uffff", 100)).map(([key]) => key)).toEqual(keys)
      expect(yield* range("", "\uffff", 3)).toEqual([["a", "A"], ["k/1", "K/1"], [logKey(1), logKey(1).toUpperCase()]])
      expect((yield* range("l", "m", 100)).map(([key]) => key)).toEqual([logKey(1), logKey(2)])
      expect((yield* range(logKey(2), "z", 2)).map(([key]) => key)).toEqual([logKey(2), "m/x"])
      expect(yield* read((tx) => tx.get(logKey(2)))).toBe(logKey(2).toUpperCase())
    }))
})

describe("Store over the FoundationDB driver with a fake binding", () => {
  const layerOn = (cluster: FakeFdb.FakeCluster, prefix = "inferadb/us") =>
    KvFoundationDb.layerFoundationDb({ prefix, importBinding: async () => FakeFdb.binding(cluster) })

  contract(() => {
    const cluster = FakeFdb.makeCluster()
    return { layer: layerOn(cluster), reopen: () => layerOn(cluster) }
  })

  it.effect("a transaction that conflicts is run again and committed once", () =>
    Effect.gen(function* () {
      const cluster = FakeFdb.makeCluster()
      cluster.faults.push("conflict")
      yield* withStore(layerOn(cluster), (store) =>
        Effect.gen(function* () {
          expect(yield* appendOne(store)).toBe(1)
          expect(yield* store.transaction((tx) => tx.next("originSeq"))).toBe(2)
        })
      )
      expect(cluster.attempts).toBeGreaterThanOrEqual(3)
    }))

  it.effect("a commit reported as unknown that did commit is not applied a second time", () =>
    Effect.gen(function* () {
      const cluster = FakeFdb.makeCluster()
      cluster.faults.push("commitThenUnknown")
      yield* withStore(layerOn(cluster), (store) =>
        Effect.gen(function* () {
          const error = yield* Effect.flip(appendOne(store))
          expect(error.message).toContain("commit_unknown_result")
          expect(yield* store.transaction((tx) => tx.next("originSeq"))).toBe(2)
        })
      )
    }))

  it.effect("a failed body commits nothing even though the binding would commit a returned body", () =>
    Effect.gen(function* () {
      const cluster = FakeFdb.makeCluster()
      yield* withStore(layerOn(cluster), (store) =>
        Effect.flip(store.transaction((tx) => Effect.zipRight(tx.next("originSeq"), Effect.fail("boom" as const))))
      )
      // Closing clears the driver's marker; nothing else was ever written.
      expect(cluster.data.size).toBe(0)
    }))

  // Its reads are Effects, so a body run at once reads what it declared, first; a tuple it did not
  // declare would be read as absent if the store guessed, and merged over as if new.
  it.effect("a body run at once that reads a tuple it did not declare fails and commits nothing", () =>
    Effect.gen(function* () {
      const cluster = FakeFdb.makeCluster()
      const declared = tupleFor(1)
      const undeclared = tupleFor(2)
      const error = yield* withStore(layerOn(cluster), (store) =>
        Effect.flip(
          store.transactionNow([declared], (tx) => {
            tx.putTuples([[declared, { frontier: [change("user:a")] }]])
            return tx.getTuples([declared, undeclared])
          })
        )
      )
      expect(String(error.message)).toContain("which it did not declare")
      expect(cluster.data.size).toBe(0)
    }))

  it.effect("regions with prefixes that share a beginning do not see each other's keys", () =>
    Effect.gen(function* () {
      const cluster = FakeFdb.makeCluster()
      yield* withStore(layerOn(cluster, "inferadb/us"), appendOne)
      const seen = yield* withStore(layerOn(cluster, "inferadb/us-east"), (store) =>
        Effect.all([store.scanTuples({}), store.transaction((tx) => tx.next("originSeq"))])
      )
      expect(seen).toEqual([[], 1])
    }))

  it.effect("an empty prefix or one with NUL is refused", () =>
    Effect.gen(function* () {
      const cluster = FakeFdb.makeCluster()
      for (const prefix of ["", "a\u0000b"]) {
        const error = yield* Effect.flip(withStore(layerOn(cluster, prefix), appendOne))
        expect(error.message).toContain("prefix")
      }
    }))
})

/** Why the real-cluster contract cannot run here, or undefined when it can. */
const realFoundationDbUnavailable = async (): Promise<string | undefined> => {
  const clusterFile = process.env["FDB_CLUSTER_FILE"]
  if (clusterFile === undefined) return "FDB_CLUSTER_FILE is not set"
  try {
    fs.accessSync(clusterFile, fs.constants.R_OK)
  } catch {
    return `FDB_CLUSTER_FILE '${clusterFile}' is not a readable file`
  }
  const loaded = await Effect.runPromise(Effect.either(KvFoundationDb.loadBinding()))
  return Either.isLeft(loaded) ? loaded.left.message : undefined
}

const skipReason = await realFoundationDbUnavailable()

describe("Store over a real FoundationDB cluster", () => {
  if (skipReason !== undefined) {
    console.log(`FoundationDB contract skipped: ${skipReason}`)
    it.skip(`FoundationDB contract skipped: ${skipReason.slice(0, 160)}`, () => {})
    return
  }
  contract(() => {
    // A fresh prefix per test keeps runs independent; the keys are left behind.
    const prefix = `inferadb-test/${randomUUID()}`
    return { layer: KvFoundationDb.layerFoundationDb({ prefix }), reopen: () => KvFoundationDb.layerFoundationDb({ prefix }) }
  })
})

describe("Selecting FoundationDB without its binding", () => {
  const expectInstallHint = (message: string) => {
    expect(message).toContain("libfdb_c")
    expect(message).toContain("npm install foundationdb")
    expect(message).toContain("FDB_CLUSTER_FILE")
    expect(message).toContain("layerLmdb")
  }

  it.effect("fails with a StoreError that says what to install and how to choose another store", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(
        withStore(
          KvFoundationDb.layerFoundationDb({ prefix: "inferadb/us", importBinding: () => Promise.reject(new Error("Cannot find package 'foundationdb'")) }),
          appendOne
        )
      )
      expect(error._tag).toBe("StoreError")
      expect(error.message).toContain("Cannot find package 'foundationdb'")
      expectInstallHint(error.message)
    }))

  it.effect("the real import gives the same error where the binding is not installed", () =>
    Effect.gen(function* () {
      const loaded = yield* Effect.either(KvFoundationDb.loadBinding())
      if (Either.isRight(loaded)) return
      const error = yield* Effect.flip(withStore(KvFoundationDb.layerFoundationDb({ prefix: "inferadb/us" }), appendOne))
      expectInstallHint(error.message)
    }))
})

describe("lmdb durability", () => {
  const writer = fileURLToPath(new URL("./fixtures/crashWriter.ts", import.meta.url))
  const acknowledgementsBeforeKill = 40

  /** Runs the writer, kills it with SIGKILL after some acknowledgements, returns them. */
  const writeUntilKilled = (directory: string) =>
    Effect.async<{ readonly acknowledged: ReadonlyArray<number>; readonly signal: NodeJS.Signals | null; readonly stderr: string }>((resume) => {
      const child = spawn(process.execPath, ["--import", "tsx", writer, directory, "1000000"], { stdio: ["ignore", "pipe", "pipe"] })
      const acknowledged: Array<number> = []
      let pending = ""
      let stderr = ""
      child.stderr.on("data", (chunk: Buffer) => void (stderr += chunk.toString()))
      child.stdout.on("data", (chunk: Buffer) => {
        pending += chunk.toString()
        const lines = pending.split("\n")
        pending = lines.pop() ?? ""
        for (const line of lines) acknowledged.push(Number(line))
        if (acknowledged.length >= acknowledgementsBeforeKill && child.exitCode === null) child.kill("SIGKILL")
      })
      child.on("exit", (_code, signal) => resume(Effect.succeed({ acknowledged, signal, stderr })))
      return Effect.sync(() => void child.kill("SIGKILL"))
    })

  it.live("every position acknowledged before a kill -9 is present, whole, after reopening", () =>
    Effect.gen(function* () {
      const directory = temporaryDirectory()
      const run = yield* writeUntilKilled(directory)
      expect(run.stderr).toBe("")
      expect(run.signal).toBe("SIGKILL")
      expect(run.acknowledged.length).toBeGreaterThanOrEqual(acknowledgementsBeforeKill)
      yield* withStore(KvLmdb.layerLmdb({ path: directory }), (store) =>
        Effect.gen(function* () {
          const end = yield* store.logEnd
          expect(end).toBeGreaterThanOrEqual(Math.max(...run.acknowledged))
          const entries = yield* store.readLog(1, end + 1)
          // Gap-free, and every logged change has its tuple: no commit was torn.
          expect(entries.map((entry) => entry.position)).toEqual(Array.from({ length: end }, (_, index) => index + 1))
          for (const entry of entries) {
            expect(entry.change.id.seq).toBe(entry.position)
            expect((yield* store.getTuple(tupleFor(entry.position))).frontier.length).toBe(1)
          }
          const present = new Set(entries.map((entry) => entry.position))
          expect(run.acknowledged.filter((position) => !present.has(position))).toEqual([])
        })
      )
    }), 120_000)
})

/** Runs a child process to its end: its exit code or signal, and what it printed. */
const runChild = (command: string, args: ReadonlyArray<string>) =>
  Effect.async<{ readonly code: number | null; readonly signal: NodeJS.Signals | null; readonly stdout: string; readonly stderr: string }>((resume) => {
    const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (chunk: Buffer) => void (stdout += chunk.toString()))
    child.stderr.on("data", (chunk: Buffer) => void (stderr += chunk.toString()))
    child.on("exit", (code, signal) => resume(Effect.succeed({ code, signal, stdout, stderr })))
    return Effect.sync(() => void child.kill("SIGKILL"))
  })

describe("lmdb under an address-space limit (ulimit -v)", () => {
  it("the map is the default without a limit, and a quarter of what is left under one", () => {
    const limits = (soft: string) => `Limit                     Soft Limit           Hard Limit           Units     \nMax stack size            8388608              unlimited            bytes     \nMax address space         ${soft}            unlimited            bytes     \n`
    expect(KvLmdb.addressSpaceLimitBytes(limits("unlimited"))).toBeUndefined()
    expect(KvLmdb.addressSpaceLimitBytes(limits("8192000000"))).toBe(8_192_000_000)
    expect(KvLmdb.addressSpaceLimitBytes(undefined)).toBeUndefined()
    expect(KvLmdb.addressSpaceUsedBytes("Name:\tnode\nVmPeak:\t 1091136 kB\nVmSize:\t 1047136 kB\n")).toBe(1_047_136 * 1024)
    expect(KvLmdb.addressSpaceUsedBytes(undefined)).toBe(0)
    const gib = 2 ** 30
    expect(KvLmdb.mapSizeFor(undefined, gib)).toBe(16 * gib)
    expect(KvLmdb.mapSizeFor(5 * gib, gib)).toBe(gib)
    expect(KvLmdb.mapSizeFor(1000 * gib, gib)).toBe(16 * gib)
    expect(KvLmdb.mapSizeFor(gib, 2 * gib)).toBe(2 ** 20)
    expect(KvLmdb.mapSizeFor(5 * gib + 12_345, gib) % 2 ** 20).toBe(0)
  })

  it("a data file that does not fit in half of the address space left is not opened, with a reason; without a limit any file opens", () => {
    const gib = 2 ** 30
    expect(KvLmdb.unmappable(undefined, gib, 100 * gib)).toBeUndefined()
    expect(KvLmdb.unmappable(8 * gib, 2 * gib, gib)).toBeUndefined()
    expect(KvLmdb.unmappable(8 * gib, 2 * gib, 3 * gib - MapRoom.headroomBytes)).toBeUndefined()
    // A file near or past the quarter gets room beyond it, within half of what is left, never less than the file.
    const mib = 2 ** 20
    expect(KvLmdb.mapSizeForFile(8 * gib, 2 * gib, 0)).toBe(KvLmdb.mapSizeFor(8 * gib, 2 * gib))
    expect(KvLmdb.mapSizeForFile(8 * gib, 2 * gib, 2 * gib + 1)).toBe(2 * gib + mib + 2 * MapRoom.headroomBytes)
    expect(KvLmdb.mapSizeForFile(8 * gib, 2 * gib, 3 * gib - MapRoom.headroomBytes)).toBe(3 * gib)
    expect(KvLmdb.unmappable(8 * gib, 2 * gib, 3 * gib)).toBe(
      "the data file (3072 MiB) does not fit in the address space this process may map (ulimit -v 8192 MiB, 2048 MiB of it taken): lmdb would crash mapping it; raise the limit"
    )
  })

  // A 16 GiB map under a smaller limit killed the process at open with a segmentation fault
  // (SIGSEGV, nothing on stderr): lmdb-js does not report the failed mapping. Node and tsx take a
  // few GB of address space of their own before the store opens, more under vitest's environment.
  // The writer runs through tsx, whose WebAssembly lexer reserves guard pages that no such limit
  // allows unless the trap handler is off; the store does not use WebAssembly.
  it.live("a node under a 20 GB limit opens its store, and every acknowledged write is there after reopening", () =>
    Effect.gen(function* () {
      const writer = fileURLToPath(new URL("./fixtures/crashWriter.ts", import.meta.url))
      const directory = temporaryDirectory()
      const run = yield* runChild("sh", ["-c", 'ulimit -v 20000000 && exec "$0" "$@"', process.execPath, "--disable-wasm-trap-handler", "--import", "tsx", writer, directory, "50"])
      expect({ code: run.code, signal: run.signal, stderr: run.stderr }).toEqual({ code: 0, signal: null, stderr: "" })
      const lines = run.stdout.trim().split("\n")
      // The node says why its map is smaller than the default, in a log line before the positions.
      expect(lines.filter((line) => line.includes("the address space is limited to 19531 MiB (ulimit -v), so the data file is mapped in")).length).toBe(1)
      expect(lines.filter((line) => /^\d+$/.test(line)).map(Number)).toEqual(Array.from({ length: 50 }, (_, index) => index + 1))
      expect(yield* withStore(KvLmdb.layerLmdb({ path: directory }), (store) => store.logEnd)).toBe(50)
    }), 60_000)
})

describe("lmdb's map under an address-space limit (MapRoom)", () => {
  it("a data file within the headroom of its map is refused under a limit, never without one", () => {
    const file = path.join(temporaryDirectory(), "data.mdb")
    const mib = 2 ** 20
    fs.writeFileSync(file, "")
    fs.truncateSync(file, 100 * mib)
    expect(MapRoom.make(file, 100 * mib + MapRoom.headroomBytes + 1, 8 * 2 ** 30)()).toBeUndefined()
    const refused = MapRoom.make(file, 100 * mib + MapRoom.headroomBytes, 8 * 2 ** 30)()
    expect(refused?.message).toBe(
      "the store's data file (100 MiB) has come within 64 MiB of its 164 MiB map, and under this process's address-space limit (ulimit -v, 8192 MiB) lmdb crashes when it cannot map more: writes are refused; raise the limit and restart the node"
    )
    expect(MapRoom.make(file, 100 * mib, undefined)()).toBeUndefined()
    // A file that cannot be asked is left to lmdb's own commit.
    expect(MapRoom.make(path.join(path.dirname(file), "missing.mdb"), mib, 8 * 2 ** 30)()).toBeUndefined()
  })

  /** Runs the map filler (1 MiB values, the driver's own map); with `marginMiB` the child first lowers its own limit to what it has taken plus that. */
  const fill = (directory: string, count: number, marginMiB?: number) =>
    Effect.map(
      runChild(process.execPath, ["--import", "tsx", fileURLToPath(new URL("./fixtures/mapFiller.ts", import.meta.url)), directory, "0", String(count), ...(marginMiB === undefined ? [] : [String(marginMiB)])]),
      (run) => ({ ...run, acknowledged: run.stdout.trim().split("\n").filter((line) => /^\d+$/.test(line)).length })
    )

  // Without the check, lmdb-js maps a full map's file again beside the old map, and past the limit
  // the child died of a segmentation fault (SIGSEGV after 256 of these values with the check
  // switched off). The child sets its own limit once node and tsx are loaded, so the store has
  // about 400 MiB of address space left, whatever node and tsx took.
  it.live("under a limit, writes stop with a room error before the map is full and every acknowledged one is there after reopening; without one the map grows", () =>
    Effect.gen(function* () {
      const limited = temporaryDirectory()
      const run = yield* fill(limited, 400, 400)
      expect({ code: run.code, signal: run.signal }).toEqual({ code: 3, signal: null })
      expect(run.stderr).toMatch(/^lmdb: the store's data file \(\d+ MiB\) has come within 64 MiB of its \d+ MiB map, and under this process's address-space limit \(ulimit -v, \d+ MiB\) lmdb crashes when it cannot map more: writes are refused; raise the limit and restart the node\n$/)
      expect(run.acknowledged).toBeGreaterThan(10)
      expect(run.acknowledged).toBeLessThan(100)
      const kept = yield* Effect.scoped(
        Effect.gen(function* () {
          const driver = yield* KvLmdb.makeScoped({ path: limited })
          return yield* driver.transact((tx) => Effect.forEach(Array.from({ length: run.acknowledged }, (_, index) => `m/${String(index + 1).padStart(6, "0")}`), (key) => tx.get(key)))
        })
      )
      expect(kept.every((value) => value?.length === 2 ** 20)).toBe(true)
      const free = yield* fill(temporaryDirectory(), 100)
      expect({ code: free.code, signal: free.signal, acknowledged: free.acknowledged, stderr: free.stderr }).toEqual({ code: 0, signal: null, acknowledged: 100, stderr: "" })
    }), 120_000)
})

describe("a store larger than the address space left (prlimit)", () => {
  /** Runs `fixtures/limitedOpen.ts`: the child lowers its own limit to what it has taken plus `marginMiB`, then opens the store and writes. */
  const openLimited = (directory: string, marginMiB: number) =>
    runChild(process.execPath, ["--import", "tsx", fileURLToPath(new URL("./fixtures/limitedOpen.ts", import.meta.url)), directory, String(marginMiB)])

  // lmdb maps at least the whole data file; a store grown without a limit and opened under one
  // that leaves less than the file killed the node with a segmentation fault (SIGSEGV at 941fbfe).
  it.live("is not opened, with a StoreError that says why, where it once died of SIGSEGV; with room it opens and takes a write", () =>
    Effect.gen(function* () {
      const directory = temporaryDirectory()
      // About 100 MiB of data, written without a limit.
      yield* Effect.scoped(
        Effect.gen(function* () {
          const driver = yield* KvLmdb.makeScoped({ path: directory })
          const value = "v".repeat(2 ** 20)
          for (let group = 0; group < 10; group++) yield* driver.transact((tx) => Effect.sync(() => Array.from({ length: 10 }, (_, index) => tx.set(`m/${group}/${index}`, value))))
        })
      )
      expect(fs.statSync(path.join(directory, "data.mdb")).size).toBeGreaterThan(100 * 2 ** 20)
      const short = yield* openLimited(directory, 64)
      expect({ code: short.code, signal: short.signal }).toEqual({ code: 3, signal: null })
      expect(short.stderr).toMatch(/^lmdb at .*: the data file \(10\d MiB\) does not fit in the address space this process may map \(ulimit -v \d+ MiB, \d+ MiB of it taken\): lmdb would crash mapping it; raise the limit\n$/)
      const roomy = yield* openLimited(directory, 1024)
      expect({ code: roomy.code, signal: roomy.signal, stdout: roomy.stdout.split("\n").at(-2) }).toEqual({ code: 0, signal: null, stdout: "opened" })
    }), 60_000)
})

describe("lmdb commit observations", () => {
  it.live("each durable commit is reported once: its transactions, its duration and each one's wait, which holds the commit", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const commits: Array<KvLmdb.CommitObservation> = []
        const driver = yield* KvLmdb.makeScoped({ path: temporaryDirectory(), onCommit: (commit) => void commits.push(commit) })
        // Eight bodies at once: the first goes to lmdb alone, the others end while it is on its way
        // to disk (its completion needs an event-loop turn, their bodies do not) and share the next.
        yield* Effect.all(
          Array.from({ length: 8 }, (_, index) => driver.transact((tx) => Effect.sync(() => tx.set(`k/${index}`, "v")))),
          { concurrency: "unbounded" }
        )
        expect(commits.map((commit) => commit.transactions)).toEqual([1, 7])
        for (const commit of commits) {
          expect(commit.durationMs).toBeGreaterThan(0)
          expect(commit.durableWaitsMs.length).toBe(commit.transactions)
          for (const waitMs of commit.durableWaitsMs) expect(waitMs).toBeGreaterThanOrEqual(commit.durationMs)
        }
        // The seven waited for the first commit as well as their own.
        expect(Math.min(...commits[1]!.durableWaitsMs)).toBeGreaterThanOrEqual(commits[1]!.durationMs)
        // A body that writes nothing commits nothing.
        yield* driver.transact(() => Effect.void)
        expect(commits.length).toBe(2)
      })
    ))

  it.live("an observer that throws costs the observation, never the commit or the ones after it", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const driver = yield* KvLmdb.makeScoped({
          path: temporaryDirectory(),
          onCommit: () => {
            throw new Error("a broken metrics sink")
          }
        })
        yield* Effect.all(
          Array.from({ length: 4 }, (_, index) => driver.transact((tx) => Effect.sync(() => tx.set(`k/${index}`, "v")))),
          { concurrency: "unbounded" }
        )
        yield* driver.transact((tx) => Effect.sync(() => tx.set("k/after", "v")))
        const read = driver.read ?? driver.transact
        expect(yield* read((tx) => Effect.all(["k/0", "k/3", "k/after"].map((key) => tx.get(key))))).toEqual(["v", "v", "v"])
      })
    ))
})

describe("lmdb commit failures", () => {
  // A real full disk (`fixtures/smallDisk`), on which lmdb fails a commit that needs more pages
  // while a later, small one still fits in pages freed earlier.
  const disk = SmallDisk.mount("3m", "inferadb-lmdb-full-")

  it.live.skipIf(disk === undefined)(
    "after a commit fails, a transaction that read its writes is not acknowledged and leaves nothing on disk, and later writes go on from the disk (needs root to mount a tmpfs)",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          const driver = yield* KvLmdb.makeScoped({ path: disk!, minFreeBytes: 0 })
          // Free pages that a small commit can reuse without growing the file.
          yield* driver.transact((tx) => Effect.sync(() => Array.from({ length: 2000 }, (_, index) => tx.set(`f/${index}`, "x".repeat(400)))))
          yield* driver.transact((tx) => Effect.sync(() => Array.from({ length: 2000 }, (_, index) => tx.remove(`f/${index}`))))
          // A commit larger than the disk, and later transactions whose bodies read its writes; they
          // end at different times, so some hand their writes over while lmdb is writing the large
          // commit (alone, they would fit in a transaction of their own) and some are still running
          // when it fails.
          const large = driver.transact((tx) =>
            Effect.sync(() => {
              tx.set("a/marker", "written by the large commit")
              for (let index = 0; index < 20_000; index++) tx.set(`a/${index}`, "y".repeat(400))
            })
          )
          const dependent = (key: string, runsMs: number) =>
            driver.transact((tx) =>
              Effect.gen(function* () {
                const seen = yield* tx.get("a/marker")
                yield* Effect.sleep(runsMs)
                tx.set(key, `saw: ${seen}`)
                return seen
              })
            )
          // Bodies that read its writes and write nothing (a batch found already applied, acknowledged
          // as ignored) must not answer before it is durable either: swarm seed 7300635.
          const readOnly = (runsMs: number) =>
            driver.transact((tx) => Effect.gen(function* () {
              const seen = yield* tx.get("a/marker")
              yield* Effect.sleep(runsMs)
              return seen
            }))
          const runsMs = [1, 10, 30, 100]
          const [largeExit, ...dependentExits] = yield* Effect.all(
            [large, ...runsMs.flatMap((ms) => [readOnly(ms), dependent(`b/${ms}`, ms)])].map(Effect.exit),
            { concurrency: "unbounded" }
          )
          expect(Exit.isFailure(largeExit!)).toBe(true)
          // A dependent succeeds only if it started once the failure was dealt with, so it read nothing of it.
          for (const exit of dependentExits) if (Exit.isSuccess(exit)) expect(exit.value).toBeUndefined()
          const onDisk = yield* (driver.read ?? driver.transact)((tx) => Effect.all(["a/marker", ...runsMs.map((ms) => `b/${ms}`)].map((key) => tx.get(key))))
          expect(onDisk[0]).toBeUndefined()
          expect(onDisk.filter((value) => value?.includes("written by the large commit") === true)).toEqual([])
          // Once everything in flight has settled, the driver goes on from what is durable: a
          // small write is refused only by the full disk itself, never for the earlier failure.
          const later = yield* Effect.exit(driver.transact((tx) => Effect.sync(() => tx.set("c/later", "1"))))
          if (Exit.isFailure(later)) expect(String(later.cause)).not.toContain("an earlier commit failed")
          else expect(yield* (driver.read ?? driver.transact)((tx) => tx.get("c/later"))).toBe("1")
        })
      ),
    60_000
  )
})

describe("lmdb on a nearly full disk", () => {
  // lmdb-js aborted the process (heap corruption) after a few commits failed with ENOSPC in the
  // chaos harness's full-disk scenario, so the driver refuses commits before the disk is full.
  const disk = SmallDisk.mount("16m", "inferadb-lmdb-room-")

  it.live.skipIf(disk === undefined)(
    "commits are refused, before lmdb writes, while the disk has less than the minimum free, and go on once it has room (needs root to mount a tmpfs)",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          const driver = yield* KvLmdb.makeScoped({ path: path.join(disk!, "store"), minFreeBytes: 6 * 2 ** 20 })
          const write = (key: string) => Effect.exit(driver.transact((tx) => Effect.sync(() => tx.set(key, "x".repeat(100)))))
          expect(Exit.isSuccess(yield* write("a/before"))).toBe(true)
          // About 2 MB left: far from full, but under the minimum.
          const filler = path.join(disk!, "filler")
          fs.writeFileSync(filler, Buffer.alloc(Math.max(0, fs.statfsSync(disk!).bavail * fs.statfsSync(disk!).bsize - 2 * 2 ** 20), 1))
          const refused = yield* write("a/refused")
          expect(Exit.isFailure(refused)).toBe(true)
          expect(String(refused)).toContain("under store.min_free_mb (6.0 MB)")
          expect(String(refused)).not.toContain("No space left")
          // Told apart from other store failures: the API answers it with RESOURCE_EXHAUSTED (nothing written).
          expect(Exit.isFailure(refused) && Cause.failureOption(refused.cause)).toMatchObject({ value: { _tag: "StoreError", operation: "room" } })
          const read = driver.read ?? driver.transact
          expect(yield* read((tx) => tx.get("a/refused"))).toBeUndefined()
          fs.rmSync(filler)
          // The refusal settles like any failed commit; then writes go on.
          const after = yield* Effect.eventually(Effect.flatMap(write("a/after"), (exit) => (Exit.isSuccess(exit) ? Effect.void : Effect.fail(exit))))
          expect(after).toBeUndefined()
          expect(yield* read((tx) => Effect.all([tx.get("a/before"), tx.get("a/after")]))).toEqual(["x".repeat(100), "x".repeat(100)])
        })
      ),
    60_000
  )
})
