/**
 * Young-generation garbage collections at quiet moments (`process.idle_gc`, on by default).
 *
 * V8 collects the young generation (a scavenge: 2-7 ms on a busy 2-core machine) when it is
 * full, which is while the process allocates: in the middle of a client write or a replication
 * batch, whose latency then carries the pause. At 5,000 changes/s each `serve` process of
 * `bench:repl` scavenged about four times a second, and the batches that met a scavenge made
 * the replication lag's tail. Every `everyMs` this looks at the event loop: if it was busy for
 * at most `busyMax` of the last interval and the young generation is at least `fill` full, it
 * collects the young generation there and then, between requests, so that the collection V8
 * would have forced later, in the middle of one, is not needed. A busy process is left to V8.
 *
 * A scavenge costs about what it copies (the young objects still alive), not what it frees, and
 * between requests little is alive, so collecting a little early costs about the same CPU
 * overall: more, smaller collections.
 *
 * V8's `gc` is exposed at run time (`--expose-gc` through `v8.setFlagsFromString`, the
 * function taken from a fresh context, so the process's own global object gets no `gc`, and the
 * flag turned off again). Where
 * that is refused the node runs without idle collections and says so.
 */
import { Effect, type Scope } from "effect"
import { performance } from "node:perf_hooks"
import * as v8 from "node:v8"
import * as vm from "node:vm"

/**
 * When to collect: every `everyMs`, if the loop was busy at most `busyMax` (0..1) of it and the
 * young generation is `fill` (0..1) full. After `quietChecks` checks in a row that found the
 * loop all but idle (busy under 1%), it checks every `idleEveryMs` instead, until a check finds
 * it busier: an idle node need not wake 200 times a second.
 */
export interface Settings {
  readonly everyMs: number
  readonly idleEveryMs: number
  readonly quietChecks: number
  readonly busyMax: number
  readonly fill: number
}

/** Measured on `bench:repl` (see the README): a batch every 20 ms at 5,000 changes/s leaves quiet gaps of 10-15 ms. */
export const defaults: Settings = { everyMs: 5, idleEveryMs: 100, quietChecks: 10, busyMax: 0.2, fill: 0.5 }

/** Below this share of an interval busy, the loop counts as all but idle. */
const quietBusyMax = 0.01

/** What the collector looks at and does; the process's own is `processProbe`, tests pass their own. */
export interface Probe {
  /** The event loop's utilization (0..1) since the previous call. */
  readonly busySinceLast: () => number
  /** How full the young generation is (0..1). */
  readonly youngFill: () => number
  /** Collects the young generation now. */
  readonly collectYoung: () => void
}

/** Whether to collect now. */
export const shouldCollect = (settings: Settings, busy: number, fill: number): boolean => busy <= settings.busyMax && fill >= settings.fill

// Called with an options object V8 collects the young generation only; without one it collects everything.
type Gc = (options: { readonly type: "minor" }) => void

/** V8's `gc`, or why it is not available. */
const exposeGc = (): Gc | string => {
  try {
    v8.setFlagsFromString("--expose-gc")
    const gc: unknown = vm.runInNewContext("typeof gc === 'function' ? gc : undefined")
    // The function stays usable. V8 stamps a code cache with its flags, so with the flag left on
    // the cache this process writes at exit (bin/launch.mjs) would be refused at the next start.
    v8.setFlagsFromString("--no-expose-gc")
    return typeof gc === "function" ? (gc as Gc) : "V8 did not expose gc"
  } catch (error) {
    return error instanceof Error ? error.message : String(error)
  }
}

const youngFillNow = (): number => {
  for (const space of v8.getHeapSpaceStatistics()) {
    if (space.space_name !== "new_space") continue
    const capacity = space.space_used_size + space.space_available_size
    return capacity === 0 ? 0 : space.space_used_size / capacity
  }
  return 0
}

/** This process's probe, or why there is none. */
export const processProbe = (): Probe | string => {
  const gc = exposeGc()
  if (typeof gc === "string") return gc
  let last = performance.eventLoopUtilization()
  return {
    busySinceLast: () => {
      const now = performance.eventLoopUtilization()
      const busy = performance.eventLoopUtilization(now, last).utilization
      last = now
      return busy
    },
    youngFill: youngFillNow,
    collectYoung: () => gc({ type: "minor" })
  }
}

/** Checks every `settings.everyMs` (or `idleEveryMs`) until the returned function is called; `onCollect` after each collection. */
export const start = (settings: Settings, probe: Probe, onCollect: () => void): (() => void) => {
  let quiet = 0
  let timer: NodeJS.Timeout
  const check = () => {
    // The fill is read only when the loop was quiet: reading the heap's spaces costs more.
    const busy = probe.busySinceLast()
    quiet = busy < quietBusyMax ? quiet + 1 : 0
    if (shouldCollect(settings, busy, busy > settings.busyMax ? 0 : probe.youngFill())) {
      probe.collectYoung()
      onCollect()
    }
    schedule()
  }
  const schedule = () => {
    timer = setTimeout(check, quiet >= settings.quietChecks ? settings.idleEveryMs : settings.everyMs)
    // Never what keeps the process alive.
    timer.unref()
  }
  schedule()
  return () => clearTimeout(timer)
}

/** What `scoped` did: collecting, or why not. */
export type Outcome = { readonly _tag: "Running" } | { readonly _tag: "Off" } | { readonly _tag: "Unavailable"; readonly reason: string }

interface Started {
  readonly outcome: Outcome
  readonly stop: () => void
}

const startInProcess = (settings: Settings, onCollect: () => void): Started => {
  const probe = processProbe()
  if (typeof probe === "string") return { outcome: { _tag: "Unavailable", reason: probe }, stop: () => undefined }
  return { outcome: { _tag: "Running" }, stop: start(settings, probe, onCollect) }
}

/** Idle collections of this process while the scope is open, when `enabled`. */
export const scoped = (enabled: boolean, onCollect: () => void, settings: Settings = defaults): Effect.Effect<Outcome, never, Scope.Scope> =>
  enabled
    ? Effect.map(
        Effect.acquireRelease(Effect.sync(() => startInProcess(settings, onCollect)), (started) => Effect.sync(() => started.stop())),
        (started) => started.outcome
      )
    : Effect.succeed({ _tag: "Off" })
