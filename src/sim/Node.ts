/**
 * One simulated engine node and its lifecycle. The node runs the production code unchanged:
 * `Engine.layer(settings)` and `Engine.run(settings)` (the `Failover` controller with them), over
 * simulated services (the region's disk with injectable faults, a skewed wall clock, the
 * simulated network, a seeded Random, in-memory metrics).
 *
 * Every fiber of an incarnation runs on the incarnation's own `NodeScheduler` with the
 * world's clock. Crash interrupts all of them and drops the in-memory state (transactions
 * that had not committed are lost; the regional disk keeps what committed); restart builds
 * the node again on the same disk. Pause stops running the node's tasks; its expired timers
 * and the messages that reach it are held (`NodeScheduler.whenRunning`). Resume fires the timers
 * and takes the messages in as a backlog, one after another, each after a drawn processing time
 * (`backlogCostMs`), with messages that arrive meanwhile queued behind. A configuration reload (`reconfigure`, a
 * topology fault) reaches the running incarnation through its `TopologyManager`, as a reload
 * would in production, and every later incarnation starts from the reloaded topology.
 */
import { Cause, Clock as EffectClock, Context, DefaultServices, Effect, Fiber, FiberRef, HashSet, Layer, Logger, LogLevel, Runtime } from "effect"
import type * as Topology from "../replication/Topology.js"
import { Exit } from "effect"
import * as Clock from "../replication/Clock.js"
import type * as ConflictResolver from "../replication/ConflictResolver.js"
import * as DeadFibers from "../replication/DeadFibers.js"
import * as Discovery from "../replication/Discovery.js"
import * as Drain from "../replication/Drain.js"
import * as Engine from "../replication/Engine.js"
import type { StoreError } from "../replication/Errors.js"
import * as Failover from "../replication/Failover.js"
import type * as KvDriver from "../replication/KvDriver.js"
import * as Metrics from "../replication/Metrics.js"
import * as Network from "../replication/Network.js"
import * as Random from "../replication/Random.js"
import * as Ranks from "../replication/Ranks.js"
import * as Replica from "../replication/Replica.js"
import * as Router from "../replication/Router.js"
import * as Store from "../replication/Store.js"
import * as StoreWatch from "../replication/StoreWatch.js"
import * as TopologyManager from "../replication/TopologyManager.js"
import * as FiberRoots from "./FiberRoots.js"
import { NodeScheduler, type YieldSettings } from "./Scheduler.js"
import * as SimClock from "./SimClock.js"
import * as SimDns from "./SimDns.js"
import * as SimNetwork from "./SimNetwork.js"
import * as StoreFaults from "./StoreFaults.js"
import type { World } from "./World.js"

/** What a node needs from the run that builds it. */
export interface Options {
  readonly world: World
  readonly network: SimNetwork.SimNetwork
  readonly peer: Network.Peer
  /** Position of the node in the world (its scheduler slot). */
  readonly index: number
  readonly settings: Engine.Settings
  /** The topology an incarnation starts with now (it changes with topology faults); `settings.topology` when absent. */
  readonly topology?: () => Topology.Topology
  readonly clockMode: Clock.Clock["Type"]["mode"]
  readonly physical: SimClock.PhysicalClock
  /** The disk the next incarnation starts on (a wipe replaces it between incarnations). */
  readonly disk: () => KvDriver.MemoryDisk
  readonly storeFaults: StoreFaults.StoreFaults
  /** How the disk keeps its values (text when messages travel as bytes). */
  readonly storedAs: StoreFaults.StoredAs
  /** Seed text; each incarnation's Random is derived from it. */
  readonly seed: string
  /** The `scheduler` stream of this node (yield points). */
  readonly schedulerRandom: Random.Stream
  /**
   * How long incarnation `incarnation` (2 and later: restarts) takes before it serves
   * (`Startup.restartDelayMs`); at once when absent.
   */
  readonly restartDelayMs?: (incarnation: number) => number
  readonly yieldSettings: YieldSettings
  /** Wraps the node's Network layer (canaries use it); identity by default. */
  readonly decorateNetwork?: (layer: Layer.Layer<Network.Network>) => Layer.Layer<Network.Network>
  /** Wraps the drain of a graceful stop (canaries use it); identity by default. */
  readonly decorateDrain?: (drain: (timeoutMs: number) => Effect.Effect<Drain.Drained>) => (timeoutMs: number) => Effect.Effect<Drain.Drained>
  /** Wraps the node's Clock layer (canaries use it); identity by default. */
  readonly decorateClock?: (layer: Layer.Layer<Clock.Clock>) => Layer.Layer<Clock.Clock>
  /**
   * Under a scenario's `discovery`: the node starts with no node declared and learns them from
   * `dns` (`SimDns`), its record published from its first start on.
   */
  readonly dns?: SimDns.SimDns
  /** Called when an incarnation ends on its own (not by a crash), e.g. its layer failed to build. */
  readonly onExit?: (node: Node, cause: string) => void
  /** Called when a graceful stop's drain ends (complete or timed out), before the node exits. */
  readonly onDrained?: (node: Node, stop: Stop) => void
  /** Skip the start-up check of the ranks against the store (`Ranks`): the `no-rank-check` canary. */
  readonly skipRankCheck?: boolean
  /** Run without the store watchdog (`StoreWatch`): the `no-store-watch` canary. */
  readonly skipStoreWatch?: boolean
  /** Wraps the driver under the node's Store: the `ack-before-durable` canary. */
  readonly decorateStore?: StoreFaults.DecorateDriver
}

/** A graceful stop's drain, as the node saw it. */
export interface Stop {
  readonly incarnation: number
  /** When the stop was asked for, and when the drain began (the writes in flight had finished). */
  readonly askedAtMs: number
  readonly drainFromMs: number
  readonly drainedAtMs: number
  readonly drained: Drain.Drained
}

/** The services of a running incarnation that the simulator drives. */
export interface Handles {
  readonly replica: Replica.Replica["Type"]
  readonly router: Router.Router["Type"]
  readonly topology: TopologyManager.TopologyManager["Type"]
  readonly failover: Failover.Failover["Type"]
  /** The drain of a graceful stop, over the incarnation's own services. */
  readonly drain: (timeoutMs: number) => Effect.Effect<Drain.Drained>
}

/**
 * Bounds of the time a resumed process takes to read and dispatch one message of its backlog.
 * A real one needs CPU for each (gRPC parsing, a fiber to start), while the work its expired
 * timers started goes on. Taking the whole backlog in at the resume instant hid a two-region
 * split brain that real processes showed: the node's first heartbeat round after the pause
 * renewed its lease before it had heard anyone, while client writes of its backlog were still
 * being read (chaos e2e, "paused across a hand-back").
 */
export const backlogCostMs = { min: 0.05, max: 0.5 }

/**
 * A graceful stop: how long requests in flight may take to finish before the drain begins (as
 * `serve`'s gRPC server waits for writes past its slot), how often the node looks, and when the
 * process is killed if it has not exited (Kubernetes' `terminationGracePeriodSeconds`).
 */
export const stopTimings = { requestGraceMs: 2_000, requestPollMs: 10, killAfterMs: 30_000 }

/** Log lines kept per node for diagnostics (not part of the trace). */
const logLinesMax = 20

/** The first line of a text (a cause's message without its stack). */
const firstLine = (text: string): string => text.split("\n")[0] ?? text

/** Fails with `serve`'s refusal when the store holds changes of a region `resolver` does not rank (`Ranks`). */
const refuseUnranked = (resolver: ConflictResolver.ConflictResolver, context: Context.Context<Store.Store>): Effect.Effect<void, string | StoreError> =>
  Effect.flatMap(Effect.provide(Ranks.refusal(resolver), context), (refused) => (refused === undefined ? Effect.void : Effect.fail(refused)))

/** One node of the topology, across its incarnations. */
export class Node {
  incarnation = 0
  /** A crash fault came before the node's first start (see `startFirst`). */
  private crashedBeforeStart = false
  /** Crashes asked of the node, down or not: a supervisor's restart due after an exit is off if one came since (`Run.ts`). */
  crashes = 0
  /** Totals across incarnations. */
  readonly metrics: Metrics.MemoryMetrics = Metrics.makeMemory()
  /** The failover state each finished incarnation ended with. */
  readonly failoverStates: Array<Failover.State> = []
  /** Warnings and errors logged, and the last few lines. */
  warnings = 0
  readonly logLines: Array<string> = []
  /** Why incarnations ended on their own. */
  readonly exits: Array<string> = []
  /** Each restart (incarnation 2 on): when it was started and how long its process took before it served (`Startup.restartDelayMs`). */
  readonly restarts: Array<{ readonly incarnation: number; readonly atMs: number; readonly startingMs: number }> = []
  /**
   * Bugs seen: an incarnation that died of a defect, and every line logged at Error or above
   * (the engine logs only bugs there, such as a send that died). Each fails the run.
   */
  readonly defects: Array<string> = []
  private scheduler: NodeScheduler | undefined
  private runtime: Runtime.Runtime<never> | undefined
  private handles: Handles | undefined
  private crashing = false
  /** A graceful stop is under way: the API is withdrawn, the node drains and exits. */
  private stoppingNow = false
  /** A start was asked for while the node was stopping: it starts again once it has exited. */
  private startAfterStop = false
  /** Requests from outside (clients, operators) forked and not finished. */
  private requestsInFlight = 0
  /** The incarnation's main fiber (its layers and engine), which a graceful stop interrupts. */
  private main: Fiber.RuntimeFiber<unknown, unknown> | undefined
  /** Every graceful stop's drain, in order. */
  readonly stops: Array<Stop> = []
  /** Reloads so far; an incarnation built before the last one applies it once it is up. */
  private reloads = 0
  /** Reloads the running incarnation was sent and has not applied yet (a paused one takes them in when it resumes). */
  private reloadsPending = 0
  /** When the last message of the running incarnation's backlog is taken in. */
  private backlogUntilMs = 0
  /** The resolver later incarnations start with, when a `configure` fault gave the node other ranks. */
  private resolver: ConflictResolver.ConflictResolver | undefined
  /** The incarnation whose store stalled (`stall`): its commits never complete; 0 when none. */
  private stalledIncarnation = 0

  constructor(private readonly options: Options) {}

  /** The incarnation's Store on the region's disk, watched as `serve` watches its own from the moment it is open (`StoreWatch`). */
  private openStore(scheduler: NodeScheduler, runtime: Runtime.Runtime<never>, incarnation: number): Effect.Effect<Store.Store["Type"], StoreError> {
    const { options } = this
    const stalled = () => this.stalledIncarnation === incarnation
    return Effect.tap(StoreFaults.make(options.disk(), options.storeFaults, options.settings.storeShape, options.storedAs, options.decorateStore, stalled), (store) =>
      this.watchStore(scheduler, runtime, store)
    )
  }

  /**
   * Runs the store watchdog of an incarnation beside its main fiber: a stall ends the incarnation
   * as a failure of its main fiber would (its supervisor starts it again), at once, as `serve`
   * exits at once: the stalled transactions cannot be interrupted.
   */
  private watchStore(scheduler: NodeScheduler, runtime: Runtime.Runtime<never>, store: Store.Store["Type"]): void {
    if (this.options.skipStoreWatch === true) return
    const watch = Effect.provideService(StoreWatch.run(this.options.settings.storeWatch ?? StoreWatch.settingsDefault), Store.Store, store)
    this.forkOn(scheduler, runtime, watch, (exit) => {
      if (Exit.isFailure(exit) && !Exit.isInterrupted(exit)) this.mainEnded(scheduler, exit)
    })
  }

  /** Stalls the running incarnation's store (the `stall` fault); false when no incarnation runs. */
  stall(): boolean {
    if (!this.up) return false
    this.stalledIncarnation = this.incarnation
    return true
  }

  get id(): string {
    return this.options.peer.nodeId
  }

  get regionId(): string {
    return this.options.peer.regionId
  }

  /** Whether an incarnation is running (possibly paused). */
  get up(): boolean {
    return this.scheduler !== undefined && !this.scheduler.dead
  }

  get paused(): boolean {
    return this.scheduler?.paused ?? false
  }

  /** A graceful stop is under way (the node still runs its drain). */
  get stopping(): boolean {
    return this.up && this.stoppingNow
  }

  /** The running incarnation's services, once it has been built; none once it is stopping (its API is withdrawn). */
  get ready(): Handles | undefined {
    return this.up && !this.stoppingNow ? this.handles : undefined
  }

  /**
   * Configures the node's next incarnations, as an operator edits `serve`'s file before a
   * restart (the `configure` fault): the conflict resolver they run. The running one keeps its own.
   */
  configure(resolver: ConflictResolver.ConflictResolver): void {
    this.resolver = resolver
  }

  /** Starts a new incarnation on the region's disk (once it has exited, when it is stopping). */
  start(): void {
    if (this.up) {
      if (this.stoppingNow) this.startAfterStop = true
      return
    }
    const { options } = this
    const self = this
    const incarnation = ++this.incarnation
    this.crashing = false
    this.stoppingNow = false
    this.startAfterStop = false
    this.requestsInFlight = 0
    this.reloadsPending = 0
    const scheduler = new NodeScheduler(this.id, options.index, options.schedulerRandom, options.yieldSettings, options.world.effort)
    options.world.attach(scheduler)
    this.scheduler = scheduler
    const alive = () => !scheduler.dead
    this.backlogUntilMs = 0
    const whenRunning = (kind: "timer" | "message", callback: () => void) => (kind === "timer" ? scheduler.whenRunning(kind, callback) : this.takeIn(scheduler, callback))
    const clock = SimClock.make(options.world, { name: this.id, alive, whenRunning }, options.physical)
    const runtime = this.runtimeOf(scheduler, clock)
    this.runtime = runtime
    const host: SimNetwork.Host = { name: this.id, alive, whenRunning, fork: (effect, onExit) => this.forkOn(scheduler, runtime, effect, onExit) }
    const dns = options.dns
    // A pod created again serves at the address it got (`SimDns.addressOf`).
    dns?.publish(this.id)
    const peer = dns === undefined ? options.peer : { ...options.peer, endpoint: dns.addressOf(this.id) }
    // Built one after another, without layers where nothing decorates them: `Layer.mergeAll`
    // builds its layers on fibers of their own, and a layer's memo map and scope cost more
    // Effect operations than the service itself; a simulated node starts often (every restart
    // and wipe), and its start was about a tenth of the swarm's operations.
    const plain = Context.make(Random.Random, Random.make(`${options.seed}/node/${this.id}/${this.incarnation}`)).pipe(Context.add(Metrics.Metrics, Metrics.recorderMemory(this.metrics)))
    const clockOptions = { mode: options.clockMode, physicalMs: () => options.physical.at(options.world.nowMs) }
    const services = Effect.gen(function* () {
      const store = yield* self.openStore(scheduler, runtime, incarnation)
      const clock = options.decorateClock === undefined ? Context.make(Clock.Clock, yield* Clock.make(clockOptions)) : yield* Layer.build(options.decorateClock(Clock.layerFrom(clockOptions)))
      const network = options.decorateNetwork === undefined ? Context.make(Network.Network, SimNetwork.service(options.network, peer, host)) : yield* Layer.build(options.decorateNetwork(SimNetwork.layer(options.network, peer, host)))
      return Context.merge(Context.merge(Context.add(plain, Store.Store, store), clock), network)
    })
    const declared = options.topology?.() ?? options.settings.topology
    const settings: Engine.Settings = { ...options.settings, topology: dns === undefined ? declared : SimDns.withoutNodes(declared), resolver: this.resolver ?? options.settings.resolver }
    const reloadsAtStart = this.reloads
    const node = Effect.flatMap(services, (context) => Effect.map(Effect.provide(Engine.build(settings), context), (engine) => Context.merge(context, engine)))
    // A restarted process serves nothing until it has started (`Startup.restartDelayMs`): no
    // store, no server, no API; a pause holds its start back, a stop kills it.
    const startingMs = this.incarnation > 1 ? (options.restartDelayMs?.(this.incarnation) ?? 0) : 0
    if (this.incarnation > 1) this.restarts.push({ incarnation: this.incarnation, atMs: options.world.nowMs, startingMs })
    // Every fiber of the incarnation, its layers' included, is watched for dying of a defect (`DeadFibers`).
    const program = DeadFibers.supervised(Effect.scoped(
      Effect.gen(function* () {
        if (startingMs > 0) yield* Effect.sleep(startingMs)
        const context = yield* node
        // As `serve` does: a store holding changes of a region the ranks leave out refuses the start.
        // Asked only where there are ranks (`Ranks.refusal` answers at once otherwise), so runs
        // under the other strategies do the Effect operations, and have the traces, they had.
        if (options.skipRankCheck !== true && settings.resolver.ranks !== undefined) yield* refuseUnranked(settings.resolver, context)
        const failover = Context.get(context, Failover.Failover)
        self.handles = {
          replica: Context.get(context, Replica.Replica),
          router: Context.get(context, Router.Router),
          topology: Context.get(context, TopologyManager.TopologyManager),
          failover,
          drain: (options.decorateDrain ?? ((drain) => drain))((timeoutMs) => {
            // As `serve` does: the reloads sent before the stop applied first, so the targets are
            // the ones configured now; under DNS discovery a round, so the siblings known are the
            // ones DNS has now.
            const discovery = dns === undefined ? Effect.succeed(true) : Effect.provideService(Discovery.roundNow({ defaultZone: "default" }), Discovery.EndpointSource, dns.source)
            const refresh = { once: self.reloadsApplied(), discover: discovery }
            return Effect.provide(Drain.run({ regionId: settings.regionId, nodeId: settings.nodeId, storeShape: settings.storeShape, enabled: true, timeoutMs }, refresh), context)
          })
        }
        if (self.reloads !== reloadsAtStart && options.topology !== undefined) yield* self.reload(self.handles.topology, options.topology())
        // As `serve` does under DNS discovery: the first round before the engine, then every interval.
        if (dns !== undefined) {
          yield* Discovery.start(dns.settings.intervalMs, { defaultZone: "default", firstRoundWaitMs: dns.settings.firstRoundWaitMs }).pipe(
            Effect.provide(context),
            Effect.provideService(Discovery.EndpointSource, dns.source)
          )
        }
        return yield* Effect.provide(Engine.run(settings), context)
      })
    ))
    this.main = this.forkOn(scheduler, runtime, program, (exit) => this.mainEnded(scheduler, exit))
  }

  /**
   * The incarnation's main fiber ended: after a graceful stop, the node is down; else it ended on
   * its own (its layer failed to build, say), which is cleaned up like a crash, from a world event
   * rather than from inside its own last task.
   */
  private mainEnded(scheduler: NodeScheduler, exit: Exit.Exit<unknown, unknown>): void {
    const { world } = this.options
    if (this.crashing || scheduler.dead) return
    const died = exit._tag === "Failure" && Cause.isDie(exit.cause)
    if (this.stoppingNow) {
      // A finalizer that died while the node stopped is a bug like any other.
      if (died) this.defects.push(`incarnation ${this.incarnation} died stopping at ${world.nowMs} ms: ${firstLine(Cause.pretty(exit.cause))}`)
      world.schedule(world.nowMs, "stopped", this.id, "", () => this.exited(scheduler))
      return
    }
    const cause = exit._tag === "Failure" ? (died ? "died" : "failed") : "returned"
    const failure = exit._tag === "Failure" ? Cause.failureOption(exit.cause) : undefined
    const why = failure?._tag === "Some" ? reasonOf(failure.value) : ""
    this.exits.push(`incarnation ${this.incarnation} ${cause} at ${world.nowMs} ms${why}`)
    if (died) this.defects.push(`incarnation ${this.incarnation} died at ${world.nowMs} ms: ${firstLine(Cause.pretty(exit.cause))}`)
    world.schedule(world.nowMs, "exit", this.id, cause, () => {
      if (this.scheduler === scheduler) this.crash()
      this.options.onExit?.(this, cause)
    })
  }

  /**
   * The node's first start, at its start-up offset (`Startup.ts`): skipped when a fault already
   * started it (a restart or a wipe) or crashed it first (it then stays down until a restart).
   */
  startFirst(): void {
    if (this.incarnation > 0 || this.crashedBeforeStart) return
    this.start()
  }

  /**
   * Stops the running incarnation as SIGTERM stops `serve`: the API is withdrawn at once (no new
   * client write or operator request reaches it), the requests in flight may finish, the drain
   * runs (`Drain`, the production code), then the incarnation's main fiber is interrupted, so its
   * finalizers run as they do when `serve` exits, and the node is down; its disk keeps what it
   * holds. A node that is not built yet has nothing to drain and is killed. Killed anyway if it
   * has not exited `stopTimings.killAfterMs` later.
   */
  stop(): void {
    const { scheduler, runtime, handles } = this
    if (scheduler === undefined || runtime === undefined || scheduler.dead || handles === undefined) return this.crash()
    if (this.stoppingNow) return
    const { world, onDrained } = this.options
    this.stoppingNow = true
    const self = this
    const askedAtMs = world.nowMs
    const incarnation = this.incarnation
    const stop = Effect.gen(function* () {
      while (self.requestsInFlight > 0 && world.nowMs - askedAtMs < stopTimings.requestGraceMs) yield* Effect.sleep(stopTimings.requestPollMs)
      const drainFromMs = world.nowMs
      const drained = yield* handles.drain(Drain.timeoutMsDefault)
      const record: Stop = { incarnation, askedAtMs, drainFromMs, drainedAtMs: world.nowMs, drained }
      self.stops.push(record)
      onDrained?.(self, record)
      yield* Effect.logInfo(Drain.describe(drained, Drain.timeoutMsDefault))
      if (self.main !== undefined) yield* Fiber.interrupt(self.main)
    })
    // A paused process handles the signal when it resumes.
    this.takeIn(scheduler, () => this.forkOn(scheduler, runtime, stop, () => {}))
    world.schedule(askedAtMs + stopTimings.killAfterMs, "kill", this.id, "", () => {
      if (this.scheduler !== scheduler || scheduler.dead) return
      this.exits.push(`incarnation ${incarnation} did not exit within ${stopTimings.killAfterMs} ms of a graceful stop: killed`)
      this.exited(scheduler)
    })
  }

  /** A stopping incarnation has exited (or was killed): it is down, and starts again if a start was asked for meanwhile. */
  private exited(scheduler: NodeScheduler): void {
    if (this.scheduler !== scheduler || scheduler.dead) return
    const startAgain = this.startAfterStop
    this.crash()
    if (startAgain) this.start()
  }

  /** Crashes the running incarnation: every fiber interrupted, in-memory state gone. */
  crash(): void {
    this.crashes++
    const scheduler = this.scheduler
    if (scheduler === undefined && this.incarnation === 0) this.crashedBeforeStart = true
    if (scheduler === undefined || scheduler.dead) return
    if (this.handles !== undefined) this.failoverStates.push(Effect.runSync(this.handles.failover.state))
    this.crashing = true
    scheduler.crash()
    this.handles = undefined
  }

  /**
   * Drops the running incarnation at the end of a run: nothing of it runs again and no finalizer
   * runs (see `FiberRoots`); the disk keeps what it holds. Crashes it where Effect's root set is
   * out of reach.
   */
  abandon(): void {
    const scheduler = this.scheduler
    if (scheduler === undefined || scheduler.dead) return
    if (!FiberRoots.available()) return this.crash()
    scheduler.abandon()
    this.handles = undefined
  }

  pause(): void {
    this.scheduler?.pause()
  }

  resume(): void {
    const scheduler = this.scheduler
    if (scheduler === undefined) return
    for (const message of scheduler.resume()) this.queueBehind(scheduler, message)
  }

  /** A message reaches the incarnation: held while it is paused, behind its backlog while it has one, else taken in now. */
  private takeIn(scheduler: NodeScheduler, callback: () => void): void {
    if (scheduler.paused || this.options.world.nowMs >= this.backlogUntilMs) return scheduler.whenRunning("message", callback)
    this.queueBehind(scheduler, callback)
  }

  private queueBehind(scheduler: NodeScheduler, callback: () => void): void {
    const { world, schedulerRandom } = this.options
    const costMs = backlogCostMs.min + schedulerRandom.next() * (backlogCostMs.max - backlogCostMs.min)
    const atMs = Math.round((Math.max(world.nowMs, this.backlogUntilMs) + costMs) * 1000) / 1000
    this.backlogUntilMs = atMs
    world.schedule(atMs, "take-in", this.id, "", () => scheduler.whenRunning("message", callback))
  }

  /**
   * Reloads the node's configuration with `topology`, as an operator's config reload does: a
   * running incarnation applies it as one of its own fibers (a paused one when it resumes),
   * one still starting applies it once built, a later one starts from it.
   */
  reconfigure(topology: Topology.Topology): void {
    this.reloads++
    // A stopping node still takes a reload, as `serve` handles SIGHUP while it drains.
    const handles = this.up ? this.handles : undefined
    if (handles === undefined) return
    const scheduler = this.scheduler
    this.reloadsPending++
    const forked = this.fork(this.reload(handles.topology, topology), () => {
      if (this.scheduler === scheduler) this.reloadsPending--
    })
    if (!forked) this.reloadsPending--
  }

  /**
   * Waits until the reloads sent so far are applied, as `serve`'s drain applies the reloads it
   * received before it looks at its targets: a node paused while a region was removed and added
   * again, and stopped meanwhile, took the stop in first when it resumed and reported its drain
   * complete at once with the old topology (no targets), before it took the reload in; the
   * changes only its disk held never reached the region added back (swarm seed 154341448).
   * Bounded by the stop's request grace, as a reload is a request from outside.
   */
  private reloadsApplied(): Effect.Effect<void> {
    const { world } = this.options
    const self = this
    return Effect.gen(function* () {
      const fromMs = world.nowMs
      while (self.reloadsPending > 0 && world.nowMs - fromMs < stopTimings.requestGraceMs) yield* Effect.sleep(stopTimings.requestPollMs)
    })
  }

  private reload(manager: TopologyManager.TopologyManager["Type"], topology: Topology.Topology): Effect.Effect<void> {
    // Under DNS discovery the reloaded file declares no node, as `serve`'s do, and the nodes the
    // rounds found are kept (`keepNodes`), as `serve` keeps them.
    const dns = this.options.dns !== undefined
    return manager.reconfigure(dns ? SimDns.withoutNodes(topology) : topology, { keepNodes: dns }).pipe(Effect.catchAll((error) => Effect.logWarning(`configuration reload refused: ${error.message}`)))
  }

  /** The failover state of the running incarnation, if any. */
  failoverState(): Failover.State | undefined {
    return this.handles === undefined || !this.up ? undefined : Effect.runSync(this.handles.failover.state)
  }

  /**
   * Runs an effect as a fiber of the running incarnation, as a request from outside (a client's,
   * an operator's): a paused node takes it in when it resumes. False when the node is down.
   */
  fork<A, E>(effect: Effect.Effect<A, E>, onExit: (exit: Exit.Exit<A, E>) => void): boolean {
    const scheduler = this.scheduler
    const runtime = this.runtime
    if (scheduler === undefined || runtime === undefined || scheduler.dead) return false
    // Counted until it ends, so a graceful stop lets it finish first; a crash drops the count with the incarnation.
    this.requestsInFlight++
    this.takeIn(scheduler, () =>
      this.forkOn(scheduler, runtime, effect, (exit) => {
        if (this.scheduler === scheduler) this.requestsInFlight--
        onExit(exit)
      })
    )
    return true
  }

  /**
   * The runtime every fiber of an incarnation starts from: the world's clock, the node's
   * scheduler and loggers already in its fiber refs, so a fork does not wrap its effect in
   * three `locally` scopes.
   */
  private runtimeOf(scheduler: NodeScheduler, clock: EffectClock.Clock): Runtime.Runtime<never> {
    const services = Context.add(DefaultServices.liveServices, EffectClock.Clock, clock)
    return Runtime.defaultRuntime.pipe(
      Runtime.setFiberRef(DefaultServices.currentServices, services),
      Runtime.setFiberRef(FiberRef.currentScheduler, scheduler),
      Runtime.setFiberRef(FiberRef.currentLoggers, this.loggers)
    )
  }

  private forkOn<A, E>(scheduler: NodeScheduler, runtime: Runtime.Runtime<never>, effect: Effect.Effect<A, E>, onExit: (exit: Exit.Exit<A, E>) => void): Fiber.RuntimeFiber<A, E> {
    const fiber = Runtime.runFork(runtime)(effect, { scheduler, immediate: false })
    fiber.addObserver(onExit)
    return fiber
  }

  /** Counts warnings and keeps the last few lines; log dates are virtual milliseconds. */
  private readonly loggers = HashSet.make(
    Logger.make(({ logLevel, message, date }) => {
      if (LogLevel.greaterThanEqual(logLevel, LogLevel.Warning)) this.warnings++
      const text = Array.isArray(message) ? message.map(String).join(" ") : String(message)
      if (LogLevel.greaterThanEqual(logLevel, LogLevel.Error)) this.defects.push(`${date.getTime()} ms: ${text}`)
      this.logLines.push(`${date.getTime()} ms ${logLevel.label} ${text}`)
      if (this.logLines.length > logLinesMax) this.logLines.shift()
    })
  )
}

/** What a failure that ended an incarnation says: a reason given as text, or a typed error's message (`StoreWatch.StoreStalled`). */
const reasonOf = (failure: unknown): string => {
  if (typeof failure === "string") return `: ${failure}`
  if (typeof failure === "object" && failure !== null && "message" in failure && typeof failure.message === "string") return `: ${failure.message}`
  return ""
}
