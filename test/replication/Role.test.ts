/**
 * A node's role answers what the write path would: writable only where a client write would be
 * taken, with the reason otherwise.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Primacy from "../../src/replication/Primacy.js"
import * as Replica from "../../src/replication/Replica.js"
import * as Role from "../../src/replication/Role.js"
import * as TopologyManager from "../../src/replication/TopologyManager.js"
import * as Cluster from "./fixtures/cluster.js"

const roleOf = (node: Cluster.RunningNode) =>
  Role.current(node.region).pipe(
    Effect.provideService(Replica.Replica, node.replica),
    Effect.provideService(Primacy.Primacy, node.primacy),
    Effect.provideService(TopologyManager.TopologyManager, node.topology)
  )

const writes = (node: Cluster.RunningNode) =>
  Effect.map(Effect.either(node.replica.write([{ op: "insert", tuple: { vault: "acme", resource: "document:readme", relation: "viewer", subject: "user:alice" } }])), (written) => written._tag === "Right")

describe("Role", () => {
  it.effect("under PrimaryReplica the primary is writable and the replica is not, as their writes show", () =>
    Effect.gen(function* () {
      const cluster = Cluster.make({ regions: ["us", "eu"], strategy: "PrimaryReplica", primary: "us" })
      const us = yield* cluster.start("us")
      const eu = yield* cluster.start("eu")
      // Before every node of the other region has answered it, a two-region primary is not writable
      // yet: a node down may hold a newer epoch (`Primacy.State.awaitingPeers`).
      expect(yield* roleOf(us)).toMatchObject({ writable: false, reason: expect.stringContaining("has not heard every node of the other region") })
      expect(yield* Cluster.leased(us)).toBe(true)
      const primary = yield* roleOf(us)
      const replica = yield* roleOf(eu)
      expect(primary).toEqual({ strategy: "PrimaryReplica", epoch: 0, primary: "us", writable: true })
      expect(replica).toMatchObject({ strategy: "PrimaryReplica", epoch: 0, primary: "us", writable: false, reason: expect.stringContaining("primary region 'us'") })
      expect(yield* writes(us)).toBe(primary.writable)
      expect(yield* writes(eu)).toBe(replica.writable)
    }))

  it.effect("under ActiveActive every node whose disk opened writes is writable, with no epoch or primary", () =>
    Effect.gen(function* () {
      const cluster = Cluster.make({ regions: ["us", "eu"] })
      const eu = yield* cluster.start("eu")
      expect(yield* roleOf(eu)).toEqual({ strategy: "ActiveActive", epoch: 0, primary: undefined, writable: true })
      expect(yield* writes(eu)).toBe(true)
    }))
})
