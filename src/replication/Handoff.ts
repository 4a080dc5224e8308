/**
 * Hand-offs between the fibers of one node, built on Effect's `Latch` (a flag and a list of
 * callbacks). The agent hands over a value or two per batch sent, and making and completing a
 * `Deferred` (or waiting on an empty `Queue`, which makes one) costs about four times a latch;
 * with forks, Deferreds were the largest share of the Effect runtime's time per simulated
 * event in profiles of the swarm.
 */
import { type Context, Duration, Effect, type Scope } from "effect"

/** A value set once; any number of fibers wait for it. */
export class Outcome<A> {
  private value: A | undefined
  private done = false
  private readonly latch = Effect.unsafeMakeLatch(false)

  /** Sets the value and wakes the waiters; later calls are ignored. */
  complete(value: A): Effect.Effect<void> {
    return Effect.suspend(() => {
      if (this.done) return Effect.void
      this.done = true
      this.value = value
      return this.latch.open
    })
  }

  /** The value, once set. */
  readonly await: Effect.Effect<A> = Effect.zipRight(
    Effect.suspend(() => this.latch.await),
    Effect.sync(() => this.value as A)
  )
}

/** A first-in first-out queue with one consumer, which waits while it is empty. */
export class Fifo<A> {
  private readonly items: Array<A> = []
  private readonly arrived = Effect.unsafeMakeLatch(false)

  /** Appends an item and wakes the consumer. */
  offer(item: A): Effect.Effect<void> {
    return Effect.suspend(() => {
      this.items.push(item)
      return this.arrived.open
    })
  }

  /**
   * The oldest item, waiting for one while there is none. The emptiness check and the closing
   * of the latch happen in one step, so an offer between that step and the wait finds the
   * latch closed, opens it, and the wait returns at once.
   */
  readonly take: Effect.Effect<A> = Effect.suspend(() => {
    if (this.items.length > 0) return Effect.succeed(this.items.shift() as A)
    this.arrived.unsafeClose()
    return Effect.zipRight(this.arrived.await, this.take)
  })
}

/**
 * Waits for ever, until interrupted, holding nothing of the host. `Effect.never` keeps a host
 * interval timer so that a program awaiting it keeps Node.js alive; a simulated node that waits
 * like that had to be interrupted at the end of every run to release the timer, which cost about
 * a twentieth of the swarm's CPU. A fiber parked here is collected with its node.
 */
export const parked: Effect.Effect<never> = Effect.async<never>(() => {})

/**
 * Waits until `latch` opens, at most `timeoutMs`: one timer fiber opens the same latch. A race
 * of the wait against a sleep cost two fibers and the race's own bookkeeping each time; the
 * agent waits like this once or twice per round and the heartbeater once per round. The timer
 * is forked inside the (uninterruptible) acquire, whose flags it would inherit, so it is made
 * interruptible itself: else stopping it would not cancel its sleep. A timeout therefore leaves
 * the latch open.
 */
export const awaitWithin = (latch: Effect.Latch, timeoutMs: number): Effect.Effect<void> =>
  Effect.acquireUseRelease(
    Effect.forkDaemon(Effect.interruptible(Effect.delay(latch.open, Duration.millis(timeoutMs)))),
    () => latch.await,
    // Signalled, not awaited and not forked: waiting for the timer's end (or a fiber to wait
    // for it, as `Fiber.interruptFork` does) would cost as much as the race this replaces.
    (timer) => Effect.fiberIdWith((self) => Effect.sync(() => timer.unsafeInterruptAsFork(self)))
  )

/**
 * Runs effects each on a fiber of its own, reusing fibers that finished their last effect
 * instead of forking one per effect: a fork costs about ten times handing an effect to an idle
 * fiber, and the heartbeater and the agent start one per request. Effects run concurrently, as
 * forked fibers would; the pool's fibers live in the scope it was made with, so closing it
 * interrupts whatever runs. An effect that dies takes its fiber with it, as it would a forked one.
 */
export class Pool {
  private readonly idle: Array<Fifo<Effect.Effect<void>>> = []

  /** A pool whose fibers live in `scope`. */
  constructor(private readonly scope: Scope.Scope) {}

  /**
   * Starts `effect` on an idle fiber, or on a new one when none is idle. It runs with the
   * caller's services, whichever fiber made the one it runs on.
   */
  run<R>(effect: Effect.Effect<void, never, R>): Effect.Effect<void, never, R> {
    return Effect.contextWithEffect((context: Context.Context<R>) => this.start(Effect.provide(effect, context)))
  }

  private start(effect: Effect.Effect<void>): Effect.Effect<void> {
    return Effect.suspend(() => {
      const ready = this.idle.pop()
      if (ready !== undefined) return ready.offer(effect)
      const inbox = new Fifo<Effect.Effect<void>>()
      const worker = Effect.forever(Effect.flatMap(inbox.take, (next) => Effect.zipRight(next, Effect.sync(() => void this.idle.push(inbox)))))
      return Effect.zipRight(Effect.forkIn(worker, this.scope), inbox.offer(effect))
    })
  }
}
