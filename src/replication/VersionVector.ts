/**
 * Per-tuple version vectors: how causality between changes is tracked.
 *
 * Every change carries a dot (origin, origin sequence) and a context: for its tuple, the
 * highest origin sequence per origin that the writer had seen when it wrote. An origin is
 * one store's identity (`Change.originKey`: region, node and a token drawn when the store was
 * created), so a per-node store, a shared regional store and a store rebuilt on an empty disk
 * each number their own changes and never reuse an id. A change A causally precedes B (B
 * supersedes A) exactly when B's context covers A's dot. Each origin writes its changes in
 * sequence order and sees its own earlier writes, and every sender ships its log in order,
 * so the seen set per origin is always a prefix and a plain max per origin describes it.
 */
import { Schema } from "effect"

/** Origin key -> highest origin sequence seen for one tuple. */
export const VersionVector = Schema.Record({ key: Schema.String, value: Schema.Number.pipe(Schema.int(), Schema.positive()) })
export type VersionVector = typeof VersionVector.Type

/** A change's identity: the origin (store) that wrote it and that origin's sequence number. */
export const Dot = Schema.Struct({
  origin: Schema.NonEmptyString,
  seq: Schema.Number.pipe(Schema.int(), Schema.positive())
})
export type Dot = typeof Dot.Type

/** The empty vector: nothing seen. */
export const empty: VersionVector = {}

/** Whether the vector has seen the dot. */
export const covers = (vector: VersionVector, dot: Dot): boolean => (vector[dot.origin] ?? 0) >= dot.seq

/** Pointwise maximum of two vectors. */
export const merge = (left: VersionVector, right: VersionVector): VersionVector => {
  const out: Record<string, number> = { ...left }
  for (const [origin, seq] of Object.entries(right)) {
    if ((out[origin] ?? 0) < seq) out[origin] = seq
  }
  return out
}

/** The vector extended with one dot. */
export const add = (vector: VersionVector, dot: Dot): VersionVector =>
  (vector[dot.origin] ?? 0) >= dot.seq ? vector : { ...vector, [dot.origin]: dot.seq }

/** Stable string form of a dot, used as a change id. */
export const formatDot = (dot: Dot): string => `${dot.origin}#${dot.seq}`
