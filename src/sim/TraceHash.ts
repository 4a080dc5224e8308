/**
 * The run's trace hash: 64-bit FNV-1a folded over a canonical description of every event
 * (time, kind, node, details) and every scheduling decision. Two runs of the same scenario
 * and seed must produce the same hash in any process; a different hash means the runs took
 * different paths, and a per-event hook (see `World.onEvent`) finds the first divergence.
 *
 * The 64-bit state is kept as four 16-bit limbs, so no BigInt arithmetic runs per event and
 * every product stays an exact small integer: the multiply by the FNV prime (2^40 + 0x1b3) is
 * four multiplies, two shifts and three carries, where two 32-bit halves needed a float
 * division to carry (hashing was about 2% of a swarm's CPU).
 */

const primeLow = 0x1b3 // FNV-1a 64-bit prime is 2^40 + 0x1b3

/** A running FNV-1a 64 hash. */
export class TraceHash {
  // 0xcbf29ce484222325, least significant limb first.
  private h0 = 0x2325
  private h1 = 0x8422
  private h2 = 0x9ce4
  private h3 = 0xcbf2

  /** Folds one 8-bit value. */
  private byte(value: number): void {
    const h0 = this.h0 ^ (value & 0xff)
    // (h3 h2 h1 h0) * (2^40 + 0x1b3) mod 2^64: 2^40 moves limb 0 to limb 2 and limb 1 to limb 3, 8 bits up.
    const t0 = h0 * primeLow
    const t1 = this.h1 * primeLow + (t0 >>> 16)
    const t2 = this.h2 * primeLow + (h0 << 8) + (t1 >>> 16)
    const t3 = this.h3 * primeLow + (this.h1 << 8) + (t2 >>> 16)
    this.h0 = t0 & 0xffff
    this.h1 = t1 & 0xffff
    this.h2 = t2 & 0xffff
    this.h3 = t3 & 0xffff
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
    return [this.h3, this.h2, this.h1, this.h0].map((limb) => limb.toString(16).padStart(4, "0")).join("")
  }
}
