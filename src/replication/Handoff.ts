/**
 * Hand-offs between the fibers of one node, built on `Gate` (a flag and a list of callbacks).
 * The agent hands over a value or two per batch sent, and making and completing a `Deferred`
 * (or waiting on an empty `Queue`, which makes one) costs about four times a latch; with forks,
 * Deferreds were the largest share of the Effect runtime's time per simulated event in profiles
 * of the swarm. A gate wakes its waiters at once, where Effect's `Latch` schedules a task that
 * wakes them: one scheduler task less per hand-off.
 */
import { type Clock as EffectClock, type Context, Duration, Effect, type Scope } from "effect"

/** A value set once; any number of fibers wait for it. */
export class Outcome<A> {
  private value: A | undefined
  private done = false
  private readonly gate = new Gate()

  /** Sets the value and wakes the waiters; later calls are ignored. */
  complete(value: A): Effect.Effect<void> {
    return Effect.sync(() => {
      if (this.done) return
      this.done = true
      this.value = value
      this.gate.unsafeOpen()
    })
  }

  /** The value, once set. */
  readonly await: Effect.Effect<A> = Effect.suspend(() => (this.done ? Effect.succeed(this.value as A) : Effect.zipRight(this.gate.await, Effect.sync(() => this.value as A))))
}

/**
 * Waits for ever, until interrupted, holding nothing of the host. `Effect.never` keeps a host
 * interval timer so that a program awaiting it keeps Node.js alive, and a simulated node that
 * waits like that would hold one until it is interrupted.
 */
export const parked: Effect.Effect<never> = Effect.async<never>(() => {})

/**
 * Runs `step` again and again, for ever, as `Effect.forever` does but without its yield after
 * every round: a fiber that hands work over (the agent's in-order cursor, the lazy cursor's
 * writer) or waits on a timer waits inside `step` when there is nothing to do, so the yield bought
 * nothing and cost a scheduler task and a suspension per round (`Effect.forever`'s `yieldNow`:
 * about a tenth of the simulator's scheduler tasks). A step that never waits still cannot hold
 * its thread: the runtime preempts a fiber after a bounded number of operations (the
 * scheduler's `shouldYield`).
 */
export const repeat = <E, R>(step: Effect.Effect<unknown, E, R>): Effect.Effect<never, E, R> => {
  const loop: Effect.Effect<never, E, R> = Effect.flatMap(step, () => loop)
  return loop
}

/**
 * A flag fibers wait on, like Effect's `Latch`, that can also wake a callback: `awaitWithin`
 * waits on a gate and a timer without a fiber of its own. Opening wakes every waiter at once
 * (each resumed fiber runs as a task of its own scheduler); closing makes later waits wait.
 */
export class Gate {
  private waiters: Array<() => void> = []

  constructor(private opened = false) {}

  get isOpen(): boolean {
    return this.opened
  }

  /** Fibers waiting now. */
  get waiting(): number {
    return this.waiters.length
  }

  /** Opens the gate and wakes every waiter; nothing when it is open already. */
  unsafeOpen(): void {
    if (this.opened) return
    this.opened = true
    const waiters = this.waiters
    this.waiters = []
    for (const wake of waiters) wake()
  }

  readonly open: Effect.Effect<void> = Effect.sync(() => this.unsafeOpen())

  unsafeClose(): void {
    this.opened = false
  }

  /** Waits until the gate is open. */
  readonly await: Effect.Effect<void> = Effect.suspend(() => (this.opened ? Effect.void : waitFor((wake) => this.unsafeSubscribe(wakeVoid(wake)))))

  /**
   * Waits until the gate opens, at most `timeoutMs`; the gate stays as it is. With a clock that
   * calls back (`Timer`) the wait is one suspension with a timer beside it. A race of the wait
   * against a sleep cost two fibers and the race's bookkeeping, and a timer fiber one fork and
   * its end: the heartbeater waits like this twice per round and the agent once per round, and
   * the forked timers were a third of the swarm's scheduler tasks.
   */
  awaitWithin(timeoutMs: number): Effect.Effect<void> {
    return awaitAny([this], timeoutMs)
  }

  /**
   * Calls `wake` once when the gate opens (at once when it is open); returns what unregisters
   * it, which may be called after `wake` ran.
   */
  unsafeSubscribe(wake: () => void): () => void {
    if (this.opened) {
      wake()
      return () => {}
    }
    this.waiters.push(wake)
    return () => this.forget(wake)
  }

  /** Unregisters a waiter that no longer waits. */
  private forget(wake: () => void): void {
    const index = this.waiters.indexOf(wake)
    if (index !== -1) this.waiters.splice(index, 1)
  }
}

/** What `Effect.uninterruptibleMask` gives its body: runs an effect as interruptible as the region's caller was. */
export type Restore = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>

/**
 * A mutex for the store drivers and the topology manager, where Effect's one-permit `Semaphore`
 * was: its `take` suspends the fiber even when the permit is free, and its `withPermits` wraps
 * the effect in `ensuring`. Here a free lock is taken in one step, and `with` releases it
 * from one match on the effect's outcome: about ten Effect operations less per transaction,
 * of which a simulated event runs about one. Not fair: a waiter woken by a release takes the
 * lock only if nobody took it first (every waiter wakes and tries again); an interrupted waiter
 * holds nothing, since only a fiber that found the lock free holds it.
 */
export class Lock {
  private held = false
  private readonly released = new Gate()

  get isHeld(): boolean {
    return this.held
  }

  /**
   * Takes the lock, to be run uninterruptibly (inside `Effect.uninterruptibleMask`): only the
   * wait for a release runs under `restore`, so an interruption comes during the wait, never
   * between finding the lock free and holding it.
   */
  take(restore: Restore): Effect.Effect<void> {
    return Effect.suspend(() => {
      if (!this.held) {
        this.held = true
        return Effect.void
      }
      this.released.unsafeClose()
      return Effect.zipRight(restore(this.released.await), this.take(restore))
    })
  }

  /** `take`, then `effect`, both run uninterruptibly: a free lock costs no Effect operation of its own. */
  takeThen<A, E, R>(restore: Restore, effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> {
    return Effect.suspend(() => {
      if (this.held) return Effect.zipRight(this.take(restore), effect)
      this.held = true
      return effect
    })
  }

  /** Takes the lock, which the caller found free in the same step (`isHeld`). */
  takeNow(): void {
    if (this.held) throw new Error("Lock.takeNow: the lock is held")
    this.held = true
  }

  /** Releases the lock and wakes the waiters. Only the holder calls it. */
  unsafeRelease(): void {
    this.held = false
    this.released.unsafeOpen()
  }

  /** Runs `effect` holding the lock, released however it ends; the wait for the lock is interruptible. */
  with<A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> {
    return Effect.uninterruptibleMask((restore) => this.within(restore, effect))
  }

  /** `with` for a caller already inside `Effect.uninterruptibleMask`, with its `restore`. */
  within<A, E, R>(restore: Restore, effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> {
    return this.takeThen(restore, this.holding(restore(effect)))
  }

  /** Runs `effect`, whose caller took the lock, and releases the lock however it ends. */
  holding<A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> {
    return Effect.matchCauseEffect(effect, {
      onFailure: (cause) => {
        this.unsafeRelease()
        return Effect.failCause(cause)
      },
      onSuccess: (value) => {
        this.unsafeRelease()
        return Effect.succeed(value)
      }
    })
  }
}

/**
 * Waits until any of `gates` opens, at most `timeoutMs` (undefined: no limit). With a clock that
 * calls back (`Timer`) it is one suspension, however many gates: the agent's wait before a retry
 * used to race a sleep, an acknowledgement, a heartbeat and a stream of topologies, four fibers
 * and a subscription per failed send, over a quarter of the Effect operations of a simulated
 * outage. `onEnd` runs once when the wait ends, however it ends (a gate, the timer, an
 * interruption), in the step that ends it: the caller's clean-up without an `Effect.ensuring`,
 * whose uninterruptible region and exit match were 2.4% of a simulated run's Effect operations
 * in the change feed's wait alone (`ChangeFeed.awaitBeyond`, December 2026).
 */
export const awaitAny = (gates: ReadonlyArray<Gate>, timeoutMs: number | undefined, onEnd?: () => void): Effect.Effect<void> =>
  Effect.clockWith((clock) => {
    if (gates.some((gate) => gate.isOpen)) {
      onEnd?.()
      return Effect.void
    }
    const timer = timerOf(clock)
    return timer === undefined ? awaitAnyForked(gates, timeoutMs, onEnd) : awaitAnyTimer(gates, timer, timeoutMs, onEnd)
  })

const awaitAnyTimer = (gates: ReadonlyArray<Gate>, timer: Timer, timeoutMs: number | undefined, onEnd: (() => void) | undefined): Effect.Effect<void> =>
  waitFor((wake) => {
    const cancels: Array<() => void> = []
    let waiting = true
    // Ends the wait once, however it ends; true for the call that ended it.
    const stop = (): boolean => {
      if (!waiting) return false
      waiting = false
      for (const cancel of cancels) cancel()
      onEnd?.()
      return true
    }
    const once = () => {
      if (stop()) wake(Effect.void)
    }
    for (const gate of gates) if (waiting) cancels.push(gate.unsafeSubscribe(once))
    if (waiting && timeoutMs !== undefined) cancels.push(timer.schedule(timeoutMs, once))
    return stop
  })

/**
 * Suspends the fiber until `register`'s `wake` is called, and goes on with the effect given to it;
 * what `register` returns unregisters it when the fiber ends first (an interruption). For waits
 * whose wake-up nobody else would take (a gate opening, a timer, the answer to this fiber's own
 * request): one that comes after an interruption, which the runtime then drops, loses nothing.
 *
 * `Effect.async` with a canceler wraps the wait in `Effect.onInterrupt`: an uninterruptible
 * region and a match on the exit, twelve Effect operations per wait where the wait alone is
 * three, and the gates' and timers' waits were about a sixth of a simulated run's operations
 * (December 2026). Here the clean-up is an observer of the fiber's end instead, which the fiber
 * removes itself once woken (the runtime wants a fiber's observers changed by that fiber alone):
 * five operations. An interrupted fiber unregisters once it has ended, after its finalizers,
 * rather than at the interruption; a wake in between finds nobody waiting.
 */
export const waitFor = <A = void, E = never>(register: (wake: (effect: Effect.Effect<A, E>) => void) => () => void): Effect.Effect<A, E> =>
  Effect.withFiberRuntime<A, E>((fiber) =>
    Effect.async<A, E>((resume) => {
      let waiting = true
      let unregister: (() => void) | undefined
      const ended = () => {
        if (!waiting) return
        waiting = false
        unregister?.()
      }
      const woken = () => fiber.removeObserver(ended)
      unregister = register((effect) => {
        if (!waiting) return
        waiting = false
        // A wake with no value costs one operation less.
        resume((effect as Effect.Effect<unknown, unknown>) === Effect.void ? (Effect.sync(woken) as unknown as Effect.Effect<A, E>) : Effect.suspend(() => (woken(), effect)))
      })
      // Woken already (a gate open when subscribed): nothing to clean up.
      if (waiting) fiber.addObserver(ended)
    })
  )

const wakeVoid = (wake: (effect: Effect.Effect<void>) => void) => () => wake(Effect.void)

// Without a callback timer (a test clock, say): a race of the waits against a sleep; no
// simulated or production node takes this path.
const awaitAnyForked = (gates: ReadonlyArray<Gate>, timeoutMs: number | undefined, onEnd: (() => void) | undefined): Effect.Effect<void> => {
  const raced = Effect.raceAll([...gates.map((gate) => gate.await), ...(timeoutMs === undefined ? [] : [Effect.sleep(Duration.millis(timeoutMs))])])
  return onEnd === undefined ? raced : Effect.ensuring(raced, Effect.sync(onEnd))
}

/**
 * A clock that can also call back after a delay, without a fiber: the simulator's (a world
 * event) and the one `serve` runs on (a host timer, see `runtime/CallbackClock`). `cancel`
 * returns nothing and may be called after the callback ran.
 */
export interface Timer {
  readonly schedule: (delayMs: number, callback: () => void) => () => void
}

const timerOf = (clock: EffectClock.Clock): Timer | undefined => {
  const candidate = clock as EffectClock.Clock & Partial<Timer>
  return typeof candidate.schedule === "function" ? (candidate as Timer) : undefined
}

/**
 * Runs effects each on a fiber of its own, reusing fibers that finished their last effect
 * instead of forking one per effect: a fork costs about ten times handing an effect to an idle
 * fiber, and the agent starts one per batch it sends. Effects run concurrently, as
 * forked fibers would; the pool's fibers live in the scope it was made in, so closing it
 * interrupts whatever runs. An effect that dies takes its fiber with it, as it would a forked one.
 *
 * Effects run with the services the pool was made with (`R`), provided once per fiber: providing
 * the caller's services to every effect cost about fifteen Effect operations per request, more
 * than the hand-off itself.
 */
export class Pool<R = never> {
  /** Fibers waiting for an effect, as the callbacks that hand one over. */
  private readonly idle: Array<(effect: Effect.Effect<void, never, R>) => void> = []

  private constructor(
    private readonly scope: Scope.Scope,
    private readonly context: Context.Context<R>
  ) {}

  /** A pool whose fibers live in the current scope and run with the current services `R`. */
  static make<R = never>(): Effect.Effect<Pool<R>, never, Scope.Scope | R> {
    return Effect.map(Effect.zip(Effect.scope, Effect.context<R>()), ([scope, context]) => new Pool(scope, context))
  }

  /** Starts `effect` on an idle fiber, or on a new one when none is idle. */
  run(effect: Effect.Effect<void, never, R>): Effect.Effect<void> {
    return Effect.suspend(() => {
      const waiting = this.idle.pop()
      if (waiting === undefined) return Effect.asVoid(Effect.forkIn(Effect.provide(this.serve(effect), this.context), this.scope))
      waiting(effect)
      return Effect.void
    })
  }

  // The fiber waits for its next effect once this one is done, and its wake-up runs that effect
  // directly: a queue per fiber and a loop around it cost about four Effect operations more per
  // effect (a batch sent is one).
  private serve(effect: Effect.Effect<void, never, R>): Effect.Effect<never, never, R> {
    return Effect.flatMap(effect, () => this.next)
  }

  /** Waits for the next effect and runs it; a fiber interrupted while it waits leaves the pool. */
  private readonly next: Effect.Effect<never, never, R> = Effect.async<never, never, R>((resume) => {
    const handOver = (effect: Effect.Effect<void, never, R>) => resume(this.serve(effect))
    this.idle.push(handOver)
    return Effect.sync(() => {
      const index = this.idle.indexOf(handOver)
      if (index !== -1) this.idle.splice(index, 1)
    })
  })
}
