/**
 * Liveness over the in-memory cluster: a node that stops answering heartbeats is marked
 * Unreachable after the timeout, and needs several good heartbeats to be Healthy again.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, TestClock } from "effect"
import * as Topology from "../../src/replication/Topology.js"
import * as Cluster from "./fixtures/cluster.js"

const statusOf = (node: Cluster.RunningNode, region: string) =>
  Effect.map(node.topology.current, (topology) => Topology.regionNodes(Topology.findRegion(topology, region)!)[0]!.status)

describe("Heartbeater", () => {
  it.effect("a stopped node is marked Unreachable after the heartbeat timeout and recovers only after three good heartbeats", () =>
    Effect.gen(function* () {
      const cluster = Cluster.make({ regions: ["us", "eu"] })
      const us = yield* cluster.start("us")
      let eu = yield* cluster.start("eu")
      yield* TestClock.adjust(5_000)
      expect(yield* statusOf(us, "eu")).toBe("Healthy")
      yield* eu.stop
      for (let second = 0; second < 32; second++) yield* TestClock.adjust(1_000)
      expect(yield* statusOf(us, "eu")).toBe("Unreachable")
      eu = yield* cluster.start("eu")
      yield* TestClock.adjust(1_000)
      expect(yield* statusOf(us, "eu")).toBe("Unreachable")
      for (let second = 0; second < 3; second++) yield* TestClock.adjust(1_000)
      expect(yield* statusOf(us, "eu")).toBe("Healthy")
    }))

  it.effect("a node that never answered a heartbeat is marked Unreachable after the grace period", () =>
    Effect.gen(function* () {
      const cluster = Cluster.make({ regions: ["us", "eu"] })
      const us = yield* cluster.start("us")
      for (let second = 0; second < 29; second++) yield* TestClock.adjust(1_000)
      expect(yield* statusOf(us, "eu")).toBe("Healthy")
      for (let second = 0; second < 3; second++) yield* TestClock.adjust(1_000)
      expect(yield* statusOf(us, "eu")).toBe("Unreachable")
    }))
})
