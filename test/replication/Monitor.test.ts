/**
 * The monitor over in-memory regions: a partitioned target's backlog and lag grow and reach
 * the metrics and health at once; its failure streak and the region's reachability are logged
 * once each way; failover history entries are logged and counted once.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Logger, TestClock } from "effect"
import * as Agent from "../../src/replication/Agent.js"
import * as Backlog from "../../src/replication/Backlog.js"
import * as ChangeFeed from "../../src/replication/ChangeFeed.js"
import * as Clock from "../../src/replication/Clock.js"
import * as Failover from "../../src/replication/Failover.js"
import * as Health from "../../src/replication/Health.js"
import * as Metrics from "../../src/replication/Metrics.js"
import * as Monitor from "../../src/replication/Monitor.js"
import * as Network from "../../src/replication/Network.js"
import * as Primacy from "../../src/replication/Primacy.js"
import * as Replica from "../../src/replication/Replica.js"
import * as Store from "../../src/replication/Store.js"
import * as TopologyManager from "../../src/replication/TopologyManager.js"
import type * as Tuple from "../../src/replication/Tuple.js"
import * as Cluster from "./fixtures/cluster.js"

const tuple = (subject: string): Tuple.Tuple => ({ vault: "acme", resource: "document:readme", relation: "viewer", subject: `user:${subject}` })
const insert = (subject: string) => [{ op: "insert" as const, tuple: tuple(subject) }]

/** Runs `effect` with a node's services, fresh memory metrics and a logger that keeps every line. */
const withNode = (node: Cluster.RunningNode, metrics: Metrics.MemoryMetrics, lines: Array<string>) =>
  <A, E>(effect: Effect.Effect<A, E, Monitor.Requirements>) =>
    effect.pipe(
      Effect.provideService(Agent.Agent, node.agent),
      Effect.provideService(Store.Store, node.store),
      Effect.provideService(TopologyManager.TopologyManager, node.topology),
      Effect.provideService(Replica.Replica, node.replica),
      Effect.provideService(Primacy.Primacy, node.primacy),
      Effect.provideService(ChangeFeed.ChangeFeed, node.feed),
      Effect.provide(Layer.mergeAll(Clock.layer("hlc"), Metrics.layerMemory(metrics))),
      Effect.provide(Logger.replace(Logger.defaultLogger, Logger.make(({ logLevel, message }) => void lines.push(`${logLevel.label} ${String(message)}`))))
    )

const count = (lines: ReadonlyArray<string>, pattern: RegExp) => lines.filter((line) => pattern.test(line)).length

describe("Monitor", () => {
  it.effect("a partitioned target's backlog and lag grow in the metrics and degrade health within lag_ms_max; the streak is logged once each way", () =>
    Effect.gen(function* () {
      const cluster = Cluster.make({ regions: ["us", "eu"] })
      const us = yield* cluster.start("us")
      yield* cluster.start("eu")
      const metrics = Metrics.makeMemory()
      const lines: Array<string> = []
      const run = withNode(us, metrics, lines)
      const settings: Monitor.Settings = { regionId: "us", intervalMs: Monitor.intervalMsDefault }
      let memory = Monitor.initialMemory
      const look = run(Effect.suspend(() => Effect.map(Monitor.look(settings, memory), (next) => void (memory = next))))

      Network.partition(cluster.hub, "us", "eu")
      yield* us.replica.write(insert("alice"))
      yield* us.replica.write(insert("bob"))
      yield* TestClock.adjust(6_000)
      yield* look
      const unshipped = metrics.unshipped.get("eu")!
      expect(unshipped.changes).toBe(2)
      expect(unshipped.oldestAgeMs).toBeGreaterThanOrEqual(6_000)
      const firstLag = metrics.lagMs.get("eu")!
      expect(firstLag).toBeGreaterThanOrEqual(6_000)
      const backlog = yield* run(Backlog.measure("us"))
      const health = Health.compute({ enabled: true, feed: yield* us.feed.stats, agent: yield* us.agent.stats, thresholds: { maxRetries: 1_000, lagMsMax: 5_000 }, backlog })
      expect(health.status).toBe("degraded")
      expect(health.reason).toMatch(/target eu has 2 unshipped changes, the oldest waiting \d+ ms \(over 5000 ms\)/)

      yield* TestClock.adjust(1_000)
      yield* look
      expect(metrics.lagMs.get("eu")!).toBeGreaterThanOrEqual(firstLag + 1_000)
      expect(count(lines, /^WARN replication to eu is failing/)).toBe(1)

      Network.heal(cluster.hub)
      expect(yield* Cluster.settle(Effect.map(us.agent.stats, (stats) => stats.targets[0]!.consecutiveFailures === 0 && stats.targets[0]!.cursor >= 2))).toBe(true)
      yield* look
      yield* look
      expect(metrics.unshipped.get("eu")).toEqual({ changes: 0, oldestAgeMs: 0 })
      expect(metrics.lagMs.get("eu")).toBeLessThan(firstLag)
      expect(count(lines, /^WARN replication to eu is failing/)).toBe(1)
      expect(count(lines, /^INFO replication to eu recovered after \d+ failed attempts over \d+ ms/)).toBe(1)
      expect(metrics.role).toEqual({ strategy: "ActiveActive", epoch: 0, primary: undefined, writable: true })
    }))

  it("a streak that began and ended between two looks is still logged, once", () => {
    const target = (failures: number, consecutiveFailures: number): Agent.TargetStats => ({
      target: "eu",
      changesReplicated: 0,
      batches: 0,
      failures,
      consecutiveFailures,
      lagMs: 0,
      cursor: 0,
      lastError: consecutiveFailures > 0 ? "timeout" : undefined
    })
    const stats = (entry: Agent.TargetStats): Agent.AgentStats => ({ changesReplicated: 0, failures: entry.failures, targets: [entry] })
    const first = Monitor.streakLines(new Map(), new Map(), stats(target(0, 0)), 0)
    expect(first.lines).toEqual([])
    const missed = Monitor.streakLines(first.streaks, first.failuresSeen, stats(target(3, 0)), 1_000)
    expect(missed.lines).toEqual([{ level: "Warning", message: "replication to eu failed 3 time(s) since the last look and has recovered" }])
    const quiet = Monitor.streakLines(missed.streaks, missed.failuresSeen, stats(target(3, 0)), 2_000)
    expect(quiet.lines).toEqual([])
  })

  it("each failover history entry is counted once, the initial view not counted", () => {
    const change = (cause: Failover.Cause, epoch: number, primary: string): Failover.EpochChange => ({ cause, epoch, primary, fenced: cause === "fenced", atMs: epoch })
    const history = [change("initial", 0, "us"), change("promoted", 1, "eu")]
    const first = Monitor.historyEvents(history, 0)
    expect(first.events).toEqual(["promoted"])
    const later = Monitor.historyEvents([...history, change("handed-back", 3, "us")], first.seen)
    expect(later.events).toEqual(["handed-back"])
    expect(Monitor.historyEvents(history, first.seen).events).toEqual([])
  })

  it("the controller's line for a change says it in words, then gives its fields for tools", () => {
    expect(Failover.changeLine({ cause: "promoted", epoch: 1, primary: "eu", fenced: false })).toBe("promoted: this region is primary of epoch 1 (epoch change: epoch=1 primary=eu fenced=false cause=promoted)")
    expect(Failover.changeLine({ cause: "handed-back", epoch: 3, primary: "us", fenced: false })).toBe("handed back: us is primary of epoch 3 (epoch change: epoch=3 primary=us fenced=false cause=handed-back)")
    expect(Failover.changeLine({ cause: "initial", epoch: 0, primary: undefined, fenced: true })).toBe("primary view at start: epoch 0, no region primary (this region fenced) (epoch change: epoch=0 primary= fenced=true cause=initial)")
  })
})
