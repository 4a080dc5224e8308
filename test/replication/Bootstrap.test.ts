/**
 * Paging a source's log. A bootstrap keeps several pages in flight, each as wide as the last page
 * the message bound cut short, and asks a lost page again. The orphan tail of a bootstrapped disk
 * pages each source slowly (small pages, a pause between them), so that reading a large log for
 * orphans is a trickle at the source rather than a burst, and it still reads the source to its end.
 */
import { describe, expect, it } from "@effect/vitest"
import { Clock, Duration, Effect } from "effect"
import * as Bootstrap from "../../src/replication/Bootstrap.js"
import { networkError, StoreError } from "../../src/replication/Errors.js"
import type * as Message from "../../src/replication/Message.js"
import type * as Network from "../../src/replication/Network.js"
import type * as Store from "../../src/replication/Store.js"
import * as Cluster from "./fixtures/cluster.js"

const tuple = (subject: string) => ({ vault: "acme", resource: "document:readme", relation: "viewer", subject })

describe("Bootstrap", () => {
  it.effect("a bootstrap keeps pagesInFlightMax pages in flight to a source whose pages the bound cuts short, asks a lost page again and pages the log to its end", () =>
    Effect.gen(function* () {
      // us's requests to eu: each page is answered 100 ms late and covers at most 3 positions, as a
      // small message bound would; the fifth page asked is lost (never answered).
      const asked: Array<number> = []
      const answered: Array<{ readonly afterPosition: number; readonly endPosition: number }> = []
      let inFlight = 0
      let inFlightMax = 0
      const slow = (network: Network.Network["Type"]): Network.Network["Type"] => ({
        ...network,
        send: (target, request, timeoutMs) => {
          if (request._tag !== "CatchUp" || request.ownRegionOrphansOnly === true) return network.send(target, request, timeoutMs)
          asked.push(request.afterPosition)
          if (asked.length === 5) return Effect.zipRight(Effect.sleep(Duration.millis(timeoutMs)), Effect.fail(networkError(target, "Timeout", "lost")))
          return Effect.gen(function* () {
            inFlight++
            inFlightMax = Math.max(inFlightMax, inFlight)
            yield* Effect.sleep(Duration.millis(100))
            const response = yield* Effect.ensuring(network.send(target, { ...request, limit: Math.min(request.limit, 3) }, timeoutMs), Effect.sync(() => inFlight--))
            if (response._tag === "LogPage") answered.push({ afterPosition: request.afterPosition, endPosition: response.endPosition })
            return response
          })
        }
      })
      const cluster = Cluster.make({ regions: ["us", "eu"], bootstrap: true, network: (region, network) => (region === "us" ? slow(network) : network) })
      const eu = yield* cluster.start("eu")
      yield* eu.replica.openWrites
      yield* eu.replica.write(Array.from({ length: 60 }, (_, index) => ({ op: "insert" as const, tuple: tuple(`user:${index}`) })))
      const logEnd = yield* eu.store.logEnd
      expect(logEnd).toBe(60)
      const us = yield* cluster.start("us")
      const paged = Effect.map(us.store.getCursor(Bootstrap.progressKey("eu", "eu-node1")), (position) => position === logEnd)
      expect(yield* Cluster.settle(paged, { stepMs: 10 })).toBe(true)
      expect(inFlightMax).toBe(Bootstrap.pagesInFlightMax)
      expect(inFlightMax).toBeGreaterThan(1)
      // The lost page was asked again, and the pages answered chain from the start to the log end.
      expect(asked.filter((position) => position === asked[4]).length).toBeGreaterThan(1)
      let reached = 0
      for (const page of [...answered].sort((a, b) => a.afterPosition - b.afterPosition)) if (page.afterPosition === reached) reached = page.endPosition
      expect(reached).toBe(logEnd)
      // One page to learn the bound, then four at a time: far fewer round trips than 20 pages.
      expect(answered.length).toBeLessThan(30)
    }))

  it.effect("a pass that fails while the next window is in flight abandons that window's requests, and the next pass pages the log to its end", () =>
    Effect.gen(function* () {
      // us's requests to eu: pages of at most 3 positions, answered 100 ms late, except the window
      // asked while the first page is applied (requests 2 to 5), which would be answered only after
      // a minute. Applying that first page fails: its progress is not written.
      let asked = 0
      let interrupted = 0
      let answeredLate = 0
      let progressFailures = 0
      const network = (net: Network.Network["Type"]): Network.Network["Type"] => ({
        ...net,
        send: (target, request, timeoutMs) => {
          if (request._tag !== "CatchUp" || request.ownRegionOrphansOnly === true) return net.send(target, request, timeoutMs)
          asked++
          const delay = asked >= 2 && asked <= 5 ? Duration.minutes(1) : Duration.millis(100)
          const late = asked >= 2 && asked <= 5
          return Effect.zipRight(Effect.sleep(delay), net.send(target, { ...request, limit: Math.min(request.limit, 3) }, timeoutMs)).pipe(
            Effect.tap(() => Effect.sync(() => void (late && answeredLate++))),
            Effect.onInterrupt(() => Effect.sync(() => void interrupted++))
          )
        }
      })
      const store = (region: string, inner: Store.Store["Type"]): Store.Store["Type"] => ({
        ...inner,
        advanceCursor: (key, position) =>
          region === "us" && key === Bootstrap.progressKey("eu", "eu-node1") && progressFailures === 0
            ? Effect.suspend(() => {
                progressFailures++
                return Effect.fail(new StoreError({ operation: "commit", message: "the disk went away" }))
              })
            : inner.advanceCursor(key, position)
      })
      const cluster = Cluster.make({ regions: ["us", "eu"], bootstrap: true, network: (region, net) => (region === "us" ? network(net) : net), store })
      const eu = yield* cluster.start("eu")
      yield* eu.replica.openWrites
      yield* eu.replica.write(Array.from({ length: 30 }, (_, index) => ({ op: "insert" as const, tuple: tuple(`user:${index}`) })))
      const logEnd = yield* eu.store.logEnd
      const us = yield* cluster.start("us")
      // The failed pass gave up its four requests in flight at once, long before their answers.
      expect(yield* Cluster.settle(Effect.sync(() => progressFailures === 1 && interrupted === Bootstrap.pagesInFlightMax), { stepMs: 10, budgetMs: 5_000 })).toBe(true)
      expect(answeredLate).toBe(0)
      const paged = Effect.map(us.store.getCursor(Bootstrap.progressKey("eu", "eu-node1")), (position) => position === logEnd)
      expect(yield* Cluster.settle(paged, { stepMs: 10, budgetMs: 30_000 })).toBe(true)
      expect(answeredLate).toBe(0)
    }))

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
