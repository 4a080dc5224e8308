/**
 * The protobuf reader every decode of ours runs through: protobuf-es's `BinaryReader` with a
 * cheaper `string()`. A replication batch repeats the same few short strings in every change
 * (vault, relation, origin, region and node names, version-vector keys), and protobuf-es builds
 * each short ASCII string from a fresh array of its character codes: about a sixth of what
 * applying a batch allocated. Here a short ASCII string is looked up by a hash of its bytes, compared byte
 * for byte with what the hash found, and the string already made is returned; anything else
 * (longer, non-ASCII, past the end) goes to protobuf-es unchanged. The answer is always the
 * string protobuf-es would return (`test/replication/ProtoReader.test.ts` checks it on arbitrary
 * strings and on strings whose hashes collide).
 *
 * The table is shared by every reader of the process and bounded: it is emptied when full. It
 * only saves work, so it cannot change a result, and the simulator's runs stay the same.
 */
import { BinaryReader } from "@bufbuild/protobuf/wire"

/** Longest string looked up; longer ones are rarely repeated. */
const internLengthMax = 48
/** Strings kept at most before the table is emptied. */
const internedMax = 4096

const interned = new Map<number, string>()

// One array of character codes per length, reused: protobuf-es allocates one per string.
const codesOfLength: ReadonlyArray<Array<number>> = Array.from({ length: internLengthMax + 1 }, (_, length) => new Array<number>(length).fill(0))

// FNV-1a, 32 bits, seeded with the length: the one definition `string()` and `asciiHash` share.
const hashStart = (length: number): number => 0x811c9dc5 ^ length
const hashStep = (hash: number, byte: number): number => Math.imul(hash ^ byte, 0x01000193)

/** The hash a string's ASCII bytes are looked up under. */
export const asciiHash = (bytes: ArrayLike<number>, start: number, end: number): number => {
  let hash = hashStart(end - start)
  for (let index = start; index < end; index++) hash = hashStep(hash, bytes[index]!)
  return hash
}

const sameAscii = (text: string, bytes: Uint8Array, start: number): boolean => {
  for (let index = 0; index < text.length; index++) if (text.charCodeAt(index) !== bytes[start + index]) return false
  return true
}

/** A `BinaryReader` whose short ASCII strings come from the shared table. */
export class ProtoReader extends BinaryReader {
  private readonly source: Uint8Array

  constructor(bytes: Uint8Array) {
    super(bytes)
    this.source = bytes
  }

  override string(): string {
    const at = this.pos
    const length = this.uint32()
    const start = this.pos
    const end = start + length
    if (length > internLengthMax || end > this.len) return this.fallBack(at)
    const bytes = this.source
    const codes = codesOfLength[length]!
    let hash = hashStart(length)
    for (let index = 0; index < length; index++) {
      const byte = bytes[start + index]!
      if (byte > 0x7f) return this.fallBack(at)
      codes[index] = byte
      hash = hashStep(hash, byte)
    }
    this.pos = end
    const known = interned.get(hash)
    if (known !== undefined && known.length === length && sameAscii(known, bytes, start)) return known
    const text = String.fromCharCode.apply(String, codes)
    if (interned.size >= internedMax) interned.clear()
    interned.set(hash, text)
    return text
  }

  /**
   * A `uint64` as a number, as the generated decoders read one (`longToNumber(reader.uint64())`)
   * but without the BigInt and the string in between: a varint of at most 7 bytes (below 2^49)
   * is summed here; anything longer or cut short goes the generated way, errors included.
   */
  uint64Number(): number {
    return this.shortUint64() ?? safeNumber(super.uint64())
  }

  /**
   * The generated decoders' `uint64`, which they pass to `longToNumber` (forceLong=number): that
   * turns protobuf-es's BigInt into a string and the string into a number, about 4% of a
   * bootstrapping node's CPU (five such fields per change of a log page). A value below 2^49 is
   * returned as the number itself, typed as protobuf-es types it: `longToNumber` only calls its
   * `toString`, which reads the same for both. Anything else is protobuf-es's own value.
   */
  override uint64(): bigint | string {
    return (this.shortUint64() as unknown as bigint | undefined) ?? super.uint64()
  }

  /** A varint of at most 7 bytes at the position, read (and the position moved past it); undefined, and nothing moved, otherwise. */
  private shortUint64(): number | undefined {
    const bytes = this.source
    const start = this.pos
    let value = 0
    let scale = 1
    for (let index = start; index < start + 7 && index < this.len; index++) {
      const byte = bytes[index]!
      value += (byte & 0x7f) * scale
      if (byte < 0x80) {
        this.pos = index + 1
        return value
      }
      scale *= 128
    }
    return undefined
  }

  /** protobuf-es's own reading of the string whose length starts at `at`. */
  private fallBack(at: number): string {
    this.pos = at
    return super.string()
  }
}

/** What the generated decoders' `longToNumber` makes of a `uint64` (forceLong=number), errors included. */
const safeNumber = (value: bigint | string): number => {
  const number = Number(value.toString())
  if (number > Number.MAX_SAFE_INTEGER) throw new Error("Value is larger than Number.MAX_SAFE_INTEGER")
  return number
}

/** A reader over `bytes`, for the generated `decode` functions. */
export const over = (bytes: Uint8Array): BinaryReader => new ProtoReader(bytes)
