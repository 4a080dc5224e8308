/**
 * The run's trace hash: 64-bit FNV-1a folded over a canonical description of every event
 * (time, kind, node, details) and every scheduling decision. Two runs of the same scenario
 * and seed must produce the same hash in any process; a different hash means the runs took
 * different paths, and a per-event hook (see `World.onEvent`) finds the first divergence.
 *
 * The 64-bit state is kept as two 32-bit halves so no BigInt arithmetic runs per event.
 */

const primeLow = 0x1b3 // FNV-1a 64-bit prime is 2^40 + 0x1b3
const offsetHigh = 0xcbf29ce4
const offsetLow = 0x84222325

/** A running FNV-1a 64 hash. */
export class TraceHash {
  private high = offsetHigh
  private low = offsetLow

  /** Folds one 8-bit value. */
  private byte(value: number): void {
    const low = (this.low ^ (value & 0xff)) >>> 0
    // (high * 2^32 + low) * (2^40 + 0x1b3) mod 2^64
    const lowProduct = low * primeLow
    const carry = Math.floor(lowProduct / 0x1_0000_0000)
    this.high = (Math.imul(this.high, primeLow) + carry + (low << 8)) >>> 0
    this.low = lowProduct >>> 0
  }

  /** Folds a string, two bytes per UTF-16 code unit. */
  string(text: string): this {
    for (let index = 0; index < text.length; index++) {
      const code = text.charCodeAt(index)
      this.byte(code)
      if (code > 0xff) this.byte(code >>> 8)
    }
    this.byte(0x1f) // unit separator, so ("ab","c") and ("a","bc") differ
    return this
  }

  /** Folds bytes. */
  bytes(data: Uint8Array): this {
    for (let index = 0; index < data.length; index++) this.byte(data[index]!)
    this.byte(0x1f)
    return this
  }

  /** Folds a small non-negative integer (a scheduling decision). */
  integer(value: number): this {
    this.byte(value)
    this.byte(value >>> 8)
    this.byte(value >>> 16)
    this.byte(value >>> 24)
    return this
  }

  /** The hash as 16 hex digits. */
  hex(): string {
    return this.high.toString(16).padStart(8, "0") + this.low.toString(16).padStart(8, "0")
  }
}
