/**
 * Per-tuple version vectors: how causality between changes is tracked.
 *
 * Every change carries a dot (origin region, origin sequence) and a context: for its tuple,
 * the highest origin sequence per region that its origin had seen when it wrote. A change A
 * causally precedes B (B supersedes A) exactly when B's context covers A's dot. Each region
 * writes its own changes in sequence order and sees its own earlier writes, so the seen set
 * per origin is always a prefix and a plain max per region describes it.
 */
import { Schema } from "effect"

/** Region id -> highest origin sequence seen for one tuple. */
export const VersionVector = Schema.Record({ key: Schema.String, value: Schema.Number.pipe(Schema.int(), Schema.positive()) })
export type VersionVector = typeof VersionVector.Type

/** A change's identity: the region that wrote it and that region's sequence number. */
export const Dot = Schema.Struct({
  region: Schema.NonEmptyString,
  seq: Schema.Number.pipe(Schema.int(), Schema.positive())
})
export type Dot = typeof Dot.Type

/** The empty vector: nothing seen. */
export const empty: VersionVector = {}

/** Whether the vector has seen the dot. */
export const covers = (vector: VersionVector, dot: Dot): boolean => (vector[dot.region] ?? 0) >= dot.seq

/** Pointwise maximum of two vectors. */
export const merge = (left: VersionVector, right: VersionVector): VersionVector => {
  const out: Record<string, number> = { ...left }
  for (const [region, seq] of Object.entries(right)) {
    if ((out[region] ?? 0) < seq) out[region] = seq
  }
  return out
}

/** The vector extended with one dot. */
export const add = (vector: VersionVector, dot: Dot): VersionVector =>
  (vector[dot.region] ?? 0) >= dot.seq ? vector : { ...vector, [dot.region]: dot.seq }

/** Stable string form of a dot, used as a change id. */
export const formatDot = (dot: Dot): string => `${dot.region}#${dot.seq}`
