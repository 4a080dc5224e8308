/**
 * When each node's first process starts. A deployment does not start its processes at one
 * instant: a scheduler places pods one after another, an image is pulled on one machine and
 * cached on the next, six processes share two cores. A node that is up dials peers that are not
 * listening yet and waits out their silence, and how long it waits decides whether it believes
 * them down. The simulator started every node at 0, so a primary that fenced itself as the
 * cluster came up on real processes (chaos seeds 9990613, 9990634, 9990636) passed every seed.
 *
 * Each node's offset is drawn from its own `startup/<node>` stream of the run's seed, uniform in
 * `[0, spreadMs]` to the millisecond, so the simulator and the chaos harness (which starts each
 * `serve` process that long after the first) draw the same offsets for one seed. A scenario may
 * also give a node's or a region's offset (`startup.at_ms`), to set up one story by hand.
 */
import * as Random from "../replication/Random.js"
import { nodesOf, type Scenario } from "./Scenario.js"

/** Every node's start offset in milliseconds, in declaration order: the one `startup.at_ms` gives its node or region, else drawn. */
export const offsets = (scenario: Scenario, seed: string): ReadonlyMap<string, number> => {
  const spreadMs = scenario.startup?.spreadMs ?? 0
  const master = Random.make(seed)
  const offsetOf = (regionId: string, nodeId: string): number =>
    givenMs(scenario, regionId, nodeId) ?? (spreadMs === 0 ? 0 : Math.round(master.derive(`startup/${nodeId}`).next() * spreadMs))
  return new Map(nodesOf(scenario).map(({ regionId, nodeId }) => [nodeId, offsetOf(regionId, nodeId)] as const))
}

/** The offset `startup.at_ms` gives a node, or its region; undefined when it is drawn. */
const givenMs = (scenario: Pick<Scenario, "startup">, regionId: string, nodeId: string): number | undefined =>
  scenario.startup?.atMs?.[nodeId] ?? scenario.startup?.atMs?.[regionId]

/** The latest any node's first process may start by the scenario (the spread, or a given offset). */
export const latestStartMs = (scenario: Pick<Scenario, "startup">): number => Math.max(scenario.startup?.spreadMs ?? 0, ...Object.values(scenario.startup?.atMs ?? {}))

/** The latest any node of a region may start by the scenario: its given offset, its region's, else the spread. */
export const latestStartOfMs = (scenario: Pick<Scenario, "startup">, regionId: string, nodeIds: ReadonlyArray<string>): number =>
  Math.max(0, ...nodeIds.map((nodeId) => givenMs(scenario, regionId, nodeId) ?? scenario.startup?.spreadMs ?? 0))

/** When the last node has started. */
export const lastStartMs = (offsetsByNode: ReadonlyMap<string, number>): number => Math.max(0, ...offsetsByNode.values())
