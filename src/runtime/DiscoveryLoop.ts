/**
 * Discovery as `serve` runs it under `discovery.mode: dns`: the configured DNS targets
 * (`Config.DiscoverySettings`) resolved every `discovery.interval_ms`, each answer synced into
 * the node's `TopologyManager` (`Discovery.runSync`), so nodes that appear or vanish reach
 * replication, heartbeats and routing at run time. The resolver is a service: `serve` gives it
 * the system's DNS (`DnsResolver.layer`), tests give it a table.
 */
import { Duration, Effect, type Ref, type Scope, Stream, SubscriptionRef } from "effect"
import type * as Config from "./config/Config.js"
import * as Discovery from "../replication/Discovery.js"
import type * as TopologyManager from "../replication/TopologyManager.js"

/** How long start-up waits for the first round, so a bootstrap already sees the discovered peers. */
export const firstRoundWaitMsDefault = 15_000

/** The sync loop over the configured targets, forever; fork it. */
export const run = (
  settings: Config.DiscoverySettings,
  stats: Ref.Ref<Discovery.SyncStats>
): Effect.Effect<never, never, TopologyManager.TopologyManager | Discovery.DnsResolver> =>
  // Every configured target names its zone, so the default zone is never used.
  Discovery.runSync(settings.intervalMs, { defaultZone: "default", stats }).pipe(Effect.provide(Discovery.layerDns({ targets: settings.targets })))

/**
 * Forks `run` into the scope and waits until its first round finished (worked or failed) or
 * `firstRoundWaitMs` passed; returns the loop's counters.
 */
export const start = (
  settings: Config.DiscoverySettings,
  options: { readonly firstRoundWaitMs?: number } = {}
): Effect.Effect<Ref.Ref<Discovery.SyncStats>, never, Scope.Scope | TopologyManager.TopologyManager | Discovery.DnsResolver> =>
  Effect.gen(function* () {
    const stats = yield* SubscriptionRef.make(Discovery.emptyStats)
    const firstRound = stats.changes.pipe(
      Stream.filter((current) => current.rounds > 0),
      Stream.take(1),
      Stream.runDrain
    )
    yield* Effect.forkScoped(run(settings, stats))
    // `changes` starts with the current value, so a round that finished already is seen too.
    yield* firstRound.pipe(Effect.timeout(Duration.millis(options.firstRoundWaitMs ?? firstRoundWaitMsDefault)), Effect.ignore)
    return stats
  })

/** One line saying where the nodes come from, for the startup log. */
export const describe = (settings: Config.DiscoverySettings): string =>
  settings.mode === "static"
    ? "discovery: static (the nodes declared in regions)"
    : `discovery: dns every ${settings.intervalMs} ms, ${settings.targets.map((target) => `${target.regionId} <- ${target.hostname}:${target.port}`).join(", ")}`
