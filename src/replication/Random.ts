/**
 * Seeded randomness: the only source of chance in shared replication code (backoff jitter,
 * tie-free choices) and in the simulator (network, faults, workload, scheduling).
 *
 * One master seed derives an independent stream per component by name (TigerBeetle's VOPR
 * does the same), so adding a draw in one component never shifts another's sequence. The
 * generator is sfc32, seeded through a 128-bit string hash: fast, small and well distributed.
 */
import { Context, Layer } from "effect"

/** A seeded stream of random numbers. */
export interface Stream {
  /** A float in [0, 1). */
  readonly next: () => number
  /** An integer in [0, bound). */
  readonly int: (bound: number) => number
  /** An independent stream derived from this one's seed and a name. */
  readonly derive: (name: string) => Stream
  /** The seed text this stream was made from, for printing. */
  readonly seed: string
}

/** The Random service: a seeded stream. */
export class Random extends Context.Tag("inferadb/Random")<Random, Stream>() {}

// cyrb128: hashes a string into four 32-bit words to seed sfc32.
const hash128 = (text: string): [number, number, number, number] => {
  let h1 = 1779033703
  let h2 = 3144134277
  let h3 = 1013904242
  let h4 = 2773480762
  for (let index = 0; index < text.length; index++) {
    const code = text.charCodeAt(index)
    h1 = h2 ^ Math.imul(h1 ^ code, 597399067)
    h2 = h3 ^ Math.imul(h2 ^ code, 2869860233)
    h3 = h4 ^ Math.imul(h3 ^ code, 951274213)
    h4 = h1 ^ Math.imul(h4 ^ code, 2716044179)
  }
  h1 = Math.imul(h3 ^ (h1 >>> 18), 597399067)
  h2 = Math.imul(h4 ^ (h2 >>> 22), 2869860233)
  h3 = Math.imul(h1 ^ (h3 >>> 17), 951274213)
  h4 = Math.imul(h2 ^ (h4 >>> 19), 2716044179)
  h1 ^= h2 ^ h3 ^ h4
  h2 ^= h1
  h3 ^= h1
  h4 ^= h1
  return [h1 >>> 0, h2 >>> 0, h3 >>> 0, h4 >>> 0]
}

/** Makes a stream from a seed (any string or integer). */
export const make = (seed: string | number): Stream => {
  const seedText = String(seed)
  let [a, b, c, d] = hash128(seedText)
  const nextWord = (): number => {
    a >>>= 0
    b >>>= 0
    c >>>= 0
    d >>>= 0
    let t = (a + b) | 0
    a = b ^ (b >>> 9)
    b = (c + (c << 3)) | 0
    c = (c << 21) | (c >>> 11)
    d = (d + 1) | 0
    t = (t + d) | 0
    c = (c + t) | 0
    return t >>> 0
  }
  // Discard the first outputs: sfc32 needs a few rounds to mix a fresh state.
  for (let round = 0; round < 12; round++) nextWord()
  const next = (): number => nextWord() / 4294967296
  return {
    seed: seedText,
    next,
    int: (bound) => Math.floor(next() * bound),
    derive: (name) => make(`${seedText}/${name}`)
  }
}

/** A Random service from a seed. */
export const layerSeeded = (seed: string | number): Layer.Layer<Random> => Layer.succeed(Random, make(seed))
