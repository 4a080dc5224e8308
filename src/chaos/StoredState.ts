/**
 * A real node's disk as the `store_integrity` check reads it: every tuple state, the whole log
 * and the log's recorded end (and the values the layout does not allow, which it reports), read straight from the node's lmdb directory (an LMDB read
 * transaction, so a consistent snapshot even while the node runs) and decoded by the judge's own
 * reader of the documented layout (`sim/StoredLayout.ts`), not through the Store or its codecs:
 * the judge does not share the code it judges. The API shows a node's log, never its tuple states
 * or counters, so this is the only way to see whether a crash left them disagreeing.
 *
 * Layout (Store.ts): `t/<tuple>` holds a tuple state, `l/<15-digit position>` a log entry,
 * `m/logEnd` the log's end as JSON text, `k/<origin key>` the number that key's origin fields may
 * hold instead. The log's entries are in the environment's database
 * named `log` (KvLmdb), the rest in its root database, where an older directory keeps its log
 * too.
 */
import { open } from "lmdb"
import type * as Change from "../replication/Change.js"
import type * as Store from "../replication/Store.js"
import * as Tuple from "../replication/Tuple.js"
import type { RegionState } from "../sim/RegionState.js"
import * as StoredLayout from "../sim/StoredLayout.js"

const ascii = (key: string): Buffer => Buffer.from(key, "latin1")

/** Reads the disk of node `nodeId` (region `regionId`) at `directory`, the path its lmdb store was opened with. */
export const read = (regionId: string, nodeId: string, directory: string): RegionState => {
  const db = open<Uint8Array, Buffer>({ path: directory, readOnly: true, keyEncoding: "binary", encoding: "binary" })
  try {
    const tuples = new Map<string, { readonly tuple: Tuple.Tuple; readonly frontier: ReadonlyArray<Change.Change> }>()
    // Opened before the read transaction below: lmdb opens a database in a read transaction of its own.
    const logDb = db.openDB<Buffer, Buffer>("log", { keyEncoding: "binary", encoding: "binary" })
    // One read transaction for everything, so the tuples, the log and the end are one snapshot.
    const transaction = db.useReadTransaction()
    try {
      // '0' is the character after '/': these ranges are exactly the keys under "k/", "t/" and "l/".
      // A value the layout does not allow is noted and left out, for store_integrity to report.
      const refused: Array<StoredLayout.UnreadableValue> = []
      const names = new Map<number, string>()
      for (const { key, value } of db.getRange({ start: ascii("k/"), end: ascii("k0"), transaction })) {
        StoredLayout.readable(key.toString("latin1"), refused, () => {
          const text = StoredLayout.keyText(key, `${nodeId} k/...`)
          StoredLayout.addOriginName(names, text, value, `${nodeId} ${text}`)
        })
      }
      for (const { key, value } of db.getRange({ start: ascii("t/"), end: ascii("t0"), transaction })) {
        const state = StoredLayout.readable(key.toString("latin1"), refused, () => {
          const text = StoredLayout.keyText(key, `${nodeId} t/...`)
          const where = `${nodeId} ${text.replaceAll("\u0000", "\\0")}`
          const tuple = StoredLayout.tupleOfKey(text, where)
          return { tuple, frontier: StoredLayout.frontier(value, where, tuple, names) }
        })
        if (state !== undefined && state.frontier.length > 0) tuples.set(Tuple.key(state.tuple), state)
      }
      const log: Array<Store.LogEntry> = []
      // An older directory keeps its log in the root database until a store opens it and moves the
      // entries over, lowest first, so one read between the chunks finds the log in both, in key order.
      for (const source of logDb === undefined ? [db] : [logDb, db]) {
        for (const { key, value } of source.getRange({ start: ascii("l/"), end: ascii("l0"), transaction })) {
          const where = `${nodeId} ${key.toString("latin1")}`
          const entry = StoredLayout.readable(key.toString("latin1"), refused, () => StoredLayout.logEntry(value, where, names))
          if (entry !== undefined) log.push(entry)
        }
      }
      const end = db.get(ascii("m/logEnd"), { transaction })
      const logEnd = end === undefined ? 0 : (StoredLayout.readable("m/logEnd", refused, () => StoredLayout.counter(end, `${nodeId} m/logEnd`)) ?? 0)
      return { regionId, replica: nodeId, tuples, log, logEnd, ...(refused.length === 0 ? {} : { unreadable: refused }) }
    } finally {
      transaction.done()
    }
  } finally {
    void db.close()
  }
}
