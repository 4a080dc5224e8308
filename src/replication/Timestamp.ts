/**
 * Change timestamps: a hybrid logical clock value (physical milliseconds plus a logical
 * counter). In wall-clock mode the logical part is always 0, which is what lets a report
 * compare the two modes under clock skew with the same conflict rule.
 */
import { Order, Schema } from "effect"

/** A hybrid logical clock reading. */
export const Timestamp = Schema.Struct({
  physicalMs: Schema.Number.pipe(Schema.int(), Schema.nonNegative()),
  logical: Schema.Number.pipe(Schema.int(), Schema.nonNegative())
})
export type Timestamp = typeof Timestamp.Type

/** Which timestamp a node stamps its writes with. */
export const ClockMode = Schema.Literal("hlc", "wall")
export type ClockMode = typeof ClockMode.Type

/** Orders by physical time, then by the logical counter. */
export const order: Order.Order<Timestamp> = Order.combine(
  Order.mapInput(Order.number, (ts: Timestamp) => ts.physicalMs),
  Order.mapInput(Order.number, (ts: Timestamp) => ts.logical)
)

/** The zero timestamp, before every real reading. */
export const zero: Timestamp = { physicalMs: 0, logical: 0 }

/**
 * Advances an HLC for a local event at physical time `physicalMs` (Kulkarni et al., 2014):
 * the result is greater than `last` and never behind the physical clock.
 */
export const tick = (last: Timestamp, physicalMs: number): Timestamp =>
  physicalMs > last.physicalMs ? { physicalMs, logical: 0 } : { physicalMs: last.physicalMs, logical: last.logical + 1 }

/**
 * Merges a remote reading into an HLC on receipt, so that every later local timestamp is
 * greater than everything this node has seen.
 */
export const receive = (last: Timestamp, remote: Timestamp, physicalMs: number): Timestamp => {
  const top = Math.max(last.physicalMs, remote.physicalMs, physicalMs)
  if (top === last.physicalMs && top === remote.physicalMs) {
    return { physicalMs: top, logical: Math.max(last.logical, remote.logical) + 1 }
  }
  if (top === last.physicalMs) return { physicalMs: top, logical: last.logical + 1 }
  if (top === remote.physicalMs) return { physicalMs: top, logical: remote.logical + 1 }
  return { physicalMs: top, logical: 0 }
}

/** `12345.2` style rendering for logs. */
export const format = (ts: Timestamp): string => `${ts.physicalMs}.${ts.logical}`
