/**
 * The protobuf writer of the bulk messages (`BatchEncoder`): one growing byte array, written
 * once. protobuf-es's `BinaryWriter`, which the generated encoders use, keeps every field as a
 * chunk of its own and copies them all into place when a nested message is joined, once per
 * level of nesting; and it encodes every string through a fresh array. A replication batch is
 * thousands of short strings and three levels deep, and encoding one that way cost the origin
 * about 6 % of its CPU and the Watch stream about as much of the serving node's (profiles of
 * `npm run bench:repl`, December 4, 2026).
 *
 * Here a nested message reserves the bytes its length will take (`fork`), guessed by the caller
 * from what the message usually weighs, and `join` writes the length there, moving the message
 * by the difference when the guess was wrong. ASCII strings are copied byte by byte; any other
 * goes through `TextEncoder.encodeInto`, which replaces lone surrogates as protobuf-es does.
 *
 * Numbers are written as varints for what the protocol carries: non-negative safe integers.
 * Anything else (negative, fractional, above 2^53) throws `Unwritable`, and the caller encodes
 * the message the generated way, which says what it makes of such a value.
 */

/** A value this writer does not encode; the generated encoder is the judge of it. */
export class Unwritable extends Error {}

const utf8 = new TextEncoder()

/** Bytes a varint of `value` (a non-negative safe integer) takes. */
const varintBytes = (value: number): number => {
  let bytes = 1
  while (value >= 128) {
    value = Math.floor(value / 128)
    bytes++
  }
  return bytes
}

/**
 * The bytes every writer writes into, kept from one message to the next: a message is written
 * whole in one synchronous call, so writers never overlap. A fresh array per message cost more
 * (zeroing a guess of its size) than the one copy `finish` makes, and the copy is the message's
 * exact size, where a batch in flight waits for its acknowledgement.
 */
let scratch = new Uint8Array(64 * 1024)
/** Above this, the scratch array grown for one large message is not kept for the next. */
const scratchKeptMax = 4 * 1024 * 1024

export class ProtoWriter {
  private bytes = scratch
  private at = 0

  /** A copy of the bytes written. */
  finish(): Uint8Array {
    const written = this.bytes.slice(0, this.at)
    if (this.bytes.length <= scratchKeptMax) scratch = this.bytes
    return written
  }

  private room(needed: number): void {
    if (this.at + needed <= this.bytes.length) return
    const grown = new Uint8Array(Math.max(this.bytes.length * 2, this.at + needed))
    grown.set(this.bytes.subarray(0, this.at))
    this.bytes = grown
  }

  /** A varint; the caller has made room for it. Above 2^31 in two 32-bit halves, with integer arithmetic. */
  private varintAt(value: number, at: number): number {
    const bytes = this.bytes
    if (value < 0x80000000) {
      while (value >= 128) {
        bytes[at++] = (value & 127) | 128
        value >>>= 7
      }
      bytes[at++] = value
      return at
    }
    let low = value >>> 0
    let high = (value - low) / 0x100000000
    while (high > 0 || low >= 128) {
      bytes[at++] = (low & 127) | 128
      low = ((low >>> 7) | (high << 25)) >>> 0
      high >>>= 7
    }
    bytes[at++] = low
    return at
  }

  /** A field's tag. */
  tag(field: number, wireType: number): this {
    this.room(5)
    this.at = this.varintAt((field << 3) | wireType, this.at)
    return this
  }

  /** A varint field's value: uint64, uint32, a positive int64 or enum. */
  varint(value: number): this {
    if (!(Number.isSafeInteger(value) && value >= 0)) throw new Unwritable(`${value} is not a non-negative safe integer`)
    this.room(8)
    this.at = this.varintAt(value, this.at)
    return this
  }

  /** A string field's value: its UTF-8 length, then its bytes. */
  string(value: string): this {
    const length = value.length
    // Three bytes per UTF-16 unit at most, and the length's varint.
    this.room(length * 3 + 5)
    const start = this.at
    let at = this.varintAt(length, start)
    const bytes = this.bytes
    for (let index = 0; index < length; index++) {
      const code = value.charCodeAt(index)
      if (code >= 128) return this.wide(value, start)
      bytes[at++] = code
    }
    this.at = at
    return this
  }

  /** A string with a character beyond ASCII, written again from `start`. */
  private wide(value: string, start: number): this {
    const byteLength = utf8.encode(value).length
    const body = this.varintAt(byteLength, start)
    const { written } = utf8.encodeInto(value, this.bytes.subarray(body))
    this.at = body + written
    return this
  }

  /** Starts a nested message whose length is guessed to take `lengthBytes`; returns where it starts, for `join`. */
  fork(lengthBytes: number): number {
    this.room(lengthBytes)
    const start = this.at
    this.at += lengthBytes
    return start
  }

  /** Ends the nested message `fork` started at `start` with a guess of `lengthBytes`. */
  join(start: number, lengthBytes: number): this {
    const body = start + lengthBytes
    const length = this.at - body
    const needed = varintBytes(length)
    if (needed !== lengthBytes) {
      this.room(needed - lengthBytes)
      this.bytes.copyWithin(start + needed, body, this.at)
      this.at += needed - lengthBytes
    }
    this.varintAt(length, start)
    return this
  }
}
