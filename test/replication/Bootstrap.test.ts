/**
 * The orphan tail of a bootstrapped disk: it pages each source slowly (small pages, a pause
 * between them), so that reading a large log for orphans is a trickle at the source rather
 * than a burst, and it still reads the source to its end.
 */
import { describe, expect, it } from "@effect/vitest"
import { Clock, Effect } from "effect"
import * as Bootstrap from "../../src/replication/Bootstrap.js"
import type * as Message from "../../src/replication/Message.js"
import type * as Network from "../../src/replication/Network.js"
import * as Cluster from "./fixtures/cluster.js"

const tuple = (subject: string) => ({ vault: "acme", resource: "document:readme", relation: "viewer", subject })

describe("Bootstrap", () => {
  it.effect("the orphan tail pages a source in pages of at most orphanPageSize, orphanPageGapMs apart, to its log end", () =>
    Effect.gen(function* () {
      const cluster = Cluster.make({ regions: ["us", "eu"], bootstrap: true })
      const eu = yield* cluster.start("eu")
      const us = yield* cluster.start("us")
      expect(yield* Cluster.settle(Effect.map(us.store.getCursor(Bootstrap.completionMarker), (done) => done > 0))).toBe(true)
      // The source's log: 1,200 changes of its own, none of them an orphan for us.
      for (let write = 0; write < 12; write++) {
        yield* eu.replica.write(Array.from({ length: 100 }, (_, index) => ({ op: "insert" as const, tuple: tuple(`user:${write}-${index}`) })))
      }
      const logEnd = yield* eu.store.logEnd
      expect(logEnd).toBe(1_200)
      // Every orphan page eu is asked for, with the (virtual) time it was asked.
      const asked: Array<{ readonly atMs: number; readonly afterPosition: number; readonly limit: number }> = []
      const serve = cluster.hub.handlers.get("eu-node1")!
      const recording: Network.Handler = (request: Message.Request) =>
        request._tag === "CatchUp" && request.ownRegionOrphansOnly === true
          ? Effect.flatMap(Clock.currentTimeMillis, (atMs) => {
              asked.push({ atMs, afterPosition: request.afterPosition, limit: request.limit })
              return serve(request)
            })
          : serve(request)
      cluster.hub.handlers.set("eu-node1", recording)
      const pagedToEnd = Effect.sync(() => asked.some((page) => page.afterPosition + page.limit >= logEnd))
      expect(yield* Cluster.settle(pagedToEnd, { stepMs: 1 })).toBe(true)
      const round = asked.slice(asked.findIndex((page) => page.afterPosition === 0))
      expect(round.length).toBe(Math.ceil(logEnd / Bootstrap.orphanPageSize))
      for (const page of round) expect(page.limit).toBeLessThanOrEqual(Bootstrap.orphanPageSize)
      round.forEach((page, index) => {
        if (index === 0) return
        expect(page.afterPosition).toBe(round[index - 1]!.afterPosition + Bootstrap.orphanPageSize)
        expect(page.atMs - round[index - 1]!.atMs).toBeGreaterThanOrEqual(Bootstrap.orphanPageGapMs)
      })
    }))
})
