/**
 * What the byte-oriented ordered-KV backends (lmdb, FoundationDB) share beneath the
 * `KvDriver` interface: turning the driver's string keys and values into bytes, and a
 * transaction that buffers its writes over committed reads and overlays them on its own
 * reads. The Store's key layout lives in `Store.ts`, not here; this file only preserves it.
 *
 * Key order is the contract: `KvDriver` promises JavaScript string order (UTF-16 code units),
 * which is what the memory driver and `Store`'s `"\uffff"` prefix-end sentinel rely on. Plain
 * UTF-8 sorts characters above U+FFFF after U+FFFF and cannot hold lone surrogates, so keys
 * are encoded one UTF-16 code unit at a time in UTF-8 form (CESU-8): byte-identical to UTF-8
 * for every key without surrogates (all of ours in practice), lossless for any string, and
 * byte order equals string order. NUL stays the single byte 0x00, so Store's separators sort
 * first as intended.
 */
import { Effect, Either } from "effect"
import type { StoreError } from "../replication/Errors.js"
import type * as KvDriver from "../replication/KvDriver.js"

const surrogate = /[\uD800-\uDFFF]/

/** Encodes a key so that byte order equals JavaScript string order. */
export const encodeKey = (key: string): Buffer => {
  if (!surrogate.test(key)) return Buffer.from(key, "utf8")
  const bytes: Array<number> = []
  for (let index = 0; index < key.length; index++) {
    const unit = key.charCodeAt(index)
    if (unit < 0x80) bytes.push(unit)
    else if (unit < 0x800) bytes.push(0xc0 | (unit >> 6), 0x80 | (unit & 0x3f))
    else bytes.push(0xe0 | (unit >> 12), 0x80 | ((unit >> 6) & 0x3f), 0x80 | (unit & 0x3f))
  }
  return Buffer.from(bytes)
}

/**
 * `encodeKey` written straight into `target` at `start` (lmdb's `keyEncoder.writeKey`): the
 * same bytes, without a Buffer per key. Returns the end position; a key that does not fit
 * throws a RangeError, as lmdb's own Buffer keys do (lmdb reports it as a key too large).
 */
export const writeKey = (key: string, target: Buffer, start: number): number => {
  // Our keys are ASCII in practice: one byte per code unit, copied in one pass. Every read and
  // write of lmdb encodes a key, and the general path below (a regular-expression scan, a byte
  // count, then a native write) took twice as long.
  const end = start + key.length
  if (end <= target.length) {
    let index = 0
    for (; index < key.length; index++) {
      const unit = key.charCodeAt(index)
      if (unit >= 0x80) break
      target[start + index] = unit
    }
    if (index === key.length) return end
  }
  return writeAnyKey(key, target, start)
}

const writeAnyKey = (key: string, target: Buffer, start: number): number => {
  if (surrogate.test(key)) {
    const bytes = encodeKey(key)
    target.set(bytes, start)
    return start + bytes.length
  }
  const length = Buffer.byteLength(key, "utf8")
  // `write` would silently cut a key short at the end of the buffer.
  if (start + length > target.length) throw new RangeError(`a key of ${length} bytes does not fit the ${target.length - start} bytes left`)
  return start + target.write(key, start, "utf8")
}

/** `decodeKey` of `source[start, end)` (lmdb's `keyEncoder.readKey`). */
export const readKey = (source: Uint8Array, start: number, end: number): string => decodeKey(source.subarray(start, end))

// A surrogate code unit encodes as 0xED followed by a byte in 0xA0..0xBF.
const holdsEncodedSurrogate = (bytes: Uint8Array): boolean => {
  for (let index = 0; index + 1 < bytes.length; index++) {
    if (bytes[index] === 0xed && bytes[index + 1]! >= 0xa0) return true
  }
  return false
}

/** Decodes a key written by `encodeKey`. */
export const decodeKey = (bytes: Uint8Array): string => {
  if (!holdsEncodedSurrogate(bytes)) return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("utf8")
  let out = ""
  let index = 0
  while (index < bytes.length) {
    const lead = bytes[index]!
    if (lead < 0x80) {
      out += String.fromCharCode(lead)
      index += 1
    } else if (lead < 0xe0) {
      out += String.fromCharCode(((lead & 0x1f) << 6) | (bytes[index + 1]! & 0x3f))
      index += 2
    } else {
      out += String.fromCharCode(((lead & 0x0f) << 12) | ((bytes[index + 1]! & 0x3f) << 6) | (bytes[index + 2]! & 0x3f))
      index += 3
    }
  }
  return out
}

/**
 * Values are UTF-8. The Store writes JSON (which `JSON.stringify` keeps well-formed) and
 * decimal counters, so UTF-8 round-trips them exactly.
 */
export const encodeValue = (value: string): Buffer => Buffer.from(value, "utf8")

/** Decodes a value written by `encodeValue`. */
export const decodeValue = (bytes: Uint8Array): string => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("utf8")

/**
 * The largest range limit passed down to a backend. Store asks for "everything" with
 * `Number.MAX_SAFE_INTEGER`; FoundationDB takes a 32-bit limit, and adding the overlay's
 * slack to MAX_SAFE_INTEGER would lose precision.
 */
export const rangeLimitMax = 2 ** 31 - 1

/** Clamps a requested range limit to what backends accept. */
export const clampLimit = (limit: number): number => Math.max(0, Math.min(Math.floor(limit), rangeLimitMax))

/** Reads of committed data, as a backend provides them. Ranges are `[start, end)` in key order. */
export interface CommittedReader {
  readonly get: (key: string) => Effect.Effect<string | undefined, StoreError>
  /** The same read done at once, when the backend reads synchronously (see `KvTransaction.getNow`). */
  readonly getNow?: (key: string) => Either.Either<string | undefined, StoreError>
  readonly range: (start: string, end: string, limit: number) => Effect.Effect<ReadonlyArray<readonly [string, string]>, StoreError>
}

/** A transaction in progress: the view the body uses, and the writes it has buffered. */
export interface BufferedTransaction {
  readonly transaction: KvDriver.KvTransaction
  /** Buffered writes in insertion order; `null` removes the key. */
  readonly writes: ReadonlyMap<string, string | null>
}

/** A transaction whose writes are buffered and visible to its own reads, over committed data. */
export const buffered = (committed: CommittedReader): BufferedTransaction => {
  const writes = new Map<string, string | null>()
  const transaction: KvDriver.KvTransaction = {
    get: (key) =>
      Effect.suspend(() => {
        const pending = writes.get(key)
        if (pending !== undefined) return Effect.succeed(pending ?? undefined)
        return committed.get(key)
      }),
    ...(committed.getNow === undefined ? {} : { getNow: withWrites(writes, committed.getNow) }),
    range: (start, end, limit) => overlayRange(committed, writes, start, end, limit),
    set: (key, value) => void writes.set(key, value),
    remove: (key) => void writes.set(key, null)
  }
  return { transaction, writes }
}

/** A synchronous read that sees `writes` (`null`: removed) before `committed`. */
export const withWrites =
  (writes: ReadonlyMap<string, string | null>, committed: (key: string) => Either.Either<string | undefined, StoreError>) =>
  (key: string): Either.Either<string | undefined, StoreError> => {
    const written = writes.get(key)
    return written === undefined ? committed(key) : Either.right(written ?? undefined)
  }

/**
 * A range of committed data with `writes` laid over it (`null` removes a key): what a reader
 * that sees those writes before they are committed gets.
 */
export const overlayRange = (
  committed: CommittedReader,
  writes: ReadonlyMap<string, string | null>,
  start: string,
  end: string,
  limit: number
): Effect.Effect<ReadonlyArray<readonly [string, string]>, StoreError> =>
  Effect.suspend(() => {
    const touched = [...writes.keys()].filter((key) => key >= start && key < end)
    const wanted = clampLimit(limit)
    // Each buffered removal can hide one committed entry, so read that many more.
    const committedLimit = clampLimit(wanted + touched.length)
    return Effect.map(committed.range(start, end, committedLimit), (entries) => overlay(entries, writes, touched, wanted))
  })

const compareKeys = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0)

/** Merges buffered writes into committed entries of a range; `touched` are the written keys in it. */
const overlay = (
  committed: ReadonlyArray<readonly [string, string]>,
  writes: ReadonlyMap<string, string | null>,
  touched: ReadonlyArray<string>,
  limit: number
): ReadonlyArray<readonly [string, string]> => {
  if (touched.length === 0) return committed.slice(0, limit)
  const merged = new Map<string, string>(committed)
  for (const key of touched) {
    const value = writes.get(key)
    if (value === null || value === undefined) merged.delete(key)
    else merged.set(key, value)
  }
  return [...merged.entries()].sort(([a], [b]) => compareKeys(a, b)).slice(0, limit)
}
