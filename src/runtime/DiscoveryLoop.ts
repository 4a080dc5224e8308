/**
 * Discovery as `serve` runs it under `discovery.mode: dns`: the configured DNS targets
 * (`Config.DiscoverySettings`) resolved every `discovery.interval_ms`, each answer synced into
 * the node's `TopologyManager` (`Discovery.runSync`), so nodes that appear or vanish reach
 * replication, heartbeats and routing at run time. The resolver is a service: `serve` gives it
 * the system's DNS (`DnsResolver.layer`), tests give it a table.
 */
import { Effect, type Ref, type Scope } from "effect"
import type * as Config from "./config/Config.js"
import * as Discovery from "../replication/Discovery.js"
import type * as TopologyManager from "../replication/TopologyManager.js"

/** How long start-up waits for the first round, so a bootstrap already sees the discovered peers. */
export const firstRoundWaitMsDefault = Discovery.firstRoundWaitMsDefault

/**
 * Forks the sync loop over the configured targets into the scope and waits until its first
 * round finished (worked or failed) or `firstRoundWaitMs` passed; returns the loop's counters.
 */
export const start = (
  settings: Config.DiscoverySettings,
  options: { readonly firstRoundWaitMs?: number } = {}
): Effect.Effect<Ref.Ref<Discovery.SyncStats>, never, Scope.Scope | TopologyManager.TopologyManager | Discovery.DnsResolver> =>
  // Every configured target names its zone, so the default zone is never used.
  Discovery.start(settings.intervalMs, { defaultZone: "default", firstRoundWaitMs: options.firstRoundWaitMs ?? firstRoundWaitMsDefault }).pipe(
    Effect.provide(Discovery.layerDns({ targets: settings.targets }))
  )

/** One round over the configured targets now (`Discovery.roundNow`), as a stopping node runs before its drain. */
export const roundNow = (settings: Config.DiscoverySettings): Effect.Effect<boolean, never, TopologyManager.TopologyManager | Discovery.DnsResolver> =>
  Discovery.roundNow({ defaultZone: "default" }).pipe(Effect.provide(Discovery.layerDns({ targets: settings.targets })))

/** One line saying where the nodes come from, for the startup log. */
export const describe = (settings: Config.DiscoverySettings): string =>
  settings.mode === "static"
    ? "discovery: static (the nodes declared in regions)"
    : `discovery: dns every ${settings.intervalMs} ms, ${settings.targets.map((target) => `${target.regionId} <- ${target.hostname}:${target.port}`).join(", ")}`
