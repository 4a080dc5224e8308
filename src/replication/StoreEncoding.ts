/**
 * How the Store keeps its typed values in a `KvDriver`: the representation `V` a backend holds
 * and the conversions to and from it. The Store's key layout does not depend on it.
 *
 * - `json`: text, for the backends that keep bytes on a disk (lmdb, FoundationDB). Values are
 *   encoded through their Schema on write and validated through it on read, since bytes on a
 *   disk may come from another version, another process or a damaged file.
 * - `decoded`: the decoded values themselves, for the in-memory backend. Nothing there ever
 *   was bytes, so validating it again on every read would only cost time (most of the
 *   simulator's store time went to JSON and Schema). Values are deeply frozen when written, so
 *   a writer that kept a reference cannot change a committed value afterwards: a crash must
 *   lose exactly what had not committed, and a shared mutable object would hide that.
 */
import { Either, Schema } from "effect"
import * as Frozen from "./Frozen.js"

/** One kind of stored value: how it is written and read back. */
export interface Cell<A, V> {
  readonly encode: (value: A) => V
  /** The value, or why the stored one is not a valid `A`. */
  readonly decode: (stored: V) => Either.Either<A, string>
}

/** A value representation for a Store backend. */
export interface StoreEncoding<V> {
  /** The cell of values described by `schema` (tuple states, log entries). */
  readonly schema: <A, I>(schema: Schema.Schema<A, I>) => Cell<A, V>
  /** Counters and positions. */
  readonly integer: Cell<number, V>
  /** Plain strings (the store's origin key). */
  readonly text: Cell<string, V>
}

// Compiling a Schema's encoder and decoder costs far more than running them, and a Store is
// built per node incarnation, so each schema's JSON cell is built once per process.
const jsonCells = new WeakMap<object, Cell<any, string>>()

const jsonCell = <A, I>(schema: Schema.Schema<A, I>): Cell<A, string> => {
  const known = jsonCells.get(schema)
  if (known !== undefined) return known as Cell<A, string>
  const json = Schema.parseJson(schema)
  const encode = Schema.encodeSync(json)
  const decode = Schema.decodeUnknownEither(json)
  const cell: Cell<A, string> = {
    encode,
    decode: (text) => Either.mapLeft(decode(text), (error) => error.message)
  }
  jsonCells.set(schema, cell)
  return cell
}

/** Text validated through each value's Schema: for stores whose values come from a disk. */
export const json: StoreEncoding<string> = {
  schema: jsonCell,
  integer: {
    encode: (value) => String(value),
    decode: (text) => {
      const value = Number(text)
      return Number.isSafeInteger(value) ? Either.right(value) : Either.left(`'${text}' is not an integer`)
    }
  },
  text: { encode: (value) => value, decode: Either.right }
}

const decodedCell: Cell<any, unknown> = { encode: Frozen.deep, decode: Either.right }

/** The decoded values themselves, deeply frozen: for the in-memory store. */
export const decoded: StoreEncoding<unknown> = {
  schema: <A, I>(_schema: Schema.Schema<A, I>) => decodedCell as Cell<A, unknown>,
  integer: {
    encode: (value) => value,
    decode: (stored) => (typeof stored === "number" ? Either.right(stored) : Either.left(`${String(stored)} is not an integer`))
  },
  text: {
    encode: (value) => value,
    decode: (stored) => (typeof stored === "string" ? Either.right(stored) : Either.left(`${String(stored)} is not a string`))
  }
}
