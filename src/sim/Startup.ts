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
import * as Drain from "../replication/Drain.js"
import * as StoreWatch from "../replication/StoreWatch.js"
import { stopTimings } from "./Node.js"
import { type Fault, nodesOf, type Scenario, targetNodes } from "./Scenario.js"

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

/**
 * How long a node's process takes, once restarted, before it serves. A real `serve` process does
 * not listen the moment it is started: Node loads and compiles the bundle, the store opens, the
 * servers bind: 0.3-3.5 s on a quiet machine, up to 5 s under a chaos run's five nodes (chaos runs
 * of December 4, 2026, which now report it: `ChaosResult.restarts`). The
 * simulator started a restarted node at once, so a drain waiting for a sibling still starting, a
 * region whose only node was wiped going silent, or a rolling update stopping the next node while
 * the last one still starts never happened in it.
 *
 * Drawn per restart (every start after a node's first; the first start has its offset) from the
 * `restart/<node>/<incarnation>` stream of the run's seed, uniform in
 * `[startup.restart_ms.min, startup.restart_ms.max]` to the millisecond; 0 when the scenario gives
 * no range. Meanwhile the process exists (a pause or a stop reaches it) but serves nothing.
 */
export const restartDelayMs = (scenario: Pick<Scenario, "startup">, seed: string, nodeId: string, incarnation: number): number => {
  const range = scenario.startup?.restartMs
  if (range === undefined || range.max === 0) return 0
  return range.min + Math.round(Random.make(seed).derive(`restart/${nodeId}/${incarnation}`).next() * (range.max - range.min))
}

/**
 * A schedule as the judges see it when restarts take time (`restartDelayMs`): a restart comes
 * when the process may last serve, `startup.restart_ms.max` later; a wipe stops the nodes it
 * restarts at once (a crash of them) and starts them that much later. Judges (`FaultWindows`, the
 * swarm's expectations) reason from the schedule alone, so they read this one. `soonest` picks
 * the restarts to read at `startup.restart_ms.min` instead, the earliest they may serve: an
 * expectation that a loss lasts long enough must count it as short as it may be.
 */
export const bootedFaults = (
  scenario: Pick<Scenario, "startup" | "store" | "topology" | "replication">,
  faults: ReadonlyArray<Fault>,
  soonest: (fault: Fault) => boolean = () => false
): ReadonlyArray<Fault> => {
  const range = scenario.startup?.restartMs
  const restores = faults.some((fault) => restoresRanks(scenario, fault))
  const failing = new Set<string>()
  const failsCommits = faults.some((fault) => fault.kind === "store" && fault.failRate > 0)
  if ((range === undefined || range.max === 0) && !restores && !failsCommits && !faults.some((fault) => fault.kind === "stall")) return faults
  return faults
    .flatMap((fault): ReadonlyArray<Fault> => {
      const lateMs = range === undefined ? 0 : soonest(fault) ? range.min : range.max
      if (fault.kind === "stall") return stalledDown(scenario, faults, fault, lateMs, soonest(fault))
      // A commit failed while a node of the region started ends that incarnation (its layer does
      // not build): its supervisor starts it a second later, and it serves a restart delay after
      // that. So the store is read as whole only then (swarm seed 200003979: eu-central-1's only
      // node failed a start at 1.25 s and served again at 6.7 s, after the workload).
      if (fault.kind === "store") {
        const cleared = failing.has(fault.region) && fault.failRate === 0
        if (fault.failRate > 0) failing.add(fault.region)
        else failing.delete(fault.region)
        return cleared ? [{ ...fault, atMs: fault.atMs + restartAfterExitMs + lateMs }] : [fault]
      }
      // A node that refused its file may have just refused again when the rank came back: its
      // supervisor starts it a second after that exit, and it serves a restart delay later.
      if (restoresRanks(scenario, fault)) return [{ ...fault, atMs: fault.atMs + lateMs + restartAfterExitMs + lateMs }]
      const early = soonest(fault)
      if (fault.kind === "restart") return startsLate(scenario, faults, fault, lateMs, early, true)
      if (fault.kind !== "wipe") return [fault]
      const target = wipedTarget(scenario, fault.target)
      return [{ atMs: fault.atMs, kind: "crash", target }, ...startsLate(scenario, faults, { ...fault, target }, lateMs, early, true)]
    })
    .sort((a, b) => a.atMs - b.atMs)
}

/**
 * A start (a restart, or a wipe's start on the new disk) read when its process may serve,
 * `lateMs` after it, for the nodes it starts that no crash or wipe stops in between: a process
 * killed while it starts never serves, and its node stays down until the schedule starts it
 * again. Read then for every node, a start that a crash overtook revived its node after the
 * crash, where the simulator and real processes keep it down: swarm seed 84000273 over
 * graceful-stop-wipe.yaml restarted eu-central-1-node2 at 3.96 s (6 s to serve at most) and
 * crashed the whole region at 5.65 s until 30.6 s, and the judge counted the region's writes
 * refused from 9.96 s as outside every fault window (availability 0.665).
 *
 * A stall of a node while its process starts (`stallsStop`, for a start the schedule made, on
 * per-node stores) stops that start the same way: the process serves reads and heartbeats but
 * commits nothing until its watchdog ends it, and the stall's own restart (`stalledDown`) is when
 * it serves writes again. Read when the start would serve, the start ended the stall for the
 * judges: swarm seed 84000022 over store-stall.yaml (and the same seed over
 * relay-tree-change.yaml) restarted eu-central-1 at 4.87 s (3 s to serve at most) and stalled it
 * at 5.19 s; its watchdog ended the stalled processes at about 21 s, and the judge counted the
 * region's writes refused from 7.87 s as outside every fault window (availability 0.745).
 *
 * A pause of a node while its process starts holds the start until the node resumes: read for
 * that node at the resume (at the soonest) or a whole start delay after it, or not at all when a
 * later start or no resume ends the pause. Read before the pause, the start ended it for the
 * judges (`Faults.enderOf`: a started process runs), where the node stayed paused: swarm seed
 * 96000484 over chaos-primary-pause.yaml restarted ap-southeast-1 at 4.88 s (1.95 s to serve at
 * most) and paused it at 5.1 s until the end, and the judge counted it up from 6.83 s and
 * expected a promotion that needed it.
 */
const startsLate = (
  scenario: Pick<Scenario, "topology" | "store">,
  schedule: ReadonlyArray<Fault>,
  start: Fault & { readonly target: string },
  lateMs: number,
  soonest: boolean,
  // Not for a stall's own restart: a second stall of the stalled process changes nothing.
  stallsStop = false
): ReadonlyArray<Fault> => {
  const servesAtMs = start.atMs + lateMs
  const stalls = stallsStop && scenario.store !== "shared"
  const stops = (other: Fault) => other.kind === "crash" || other.kind === "wipe" || (stalls && other.kind === "stall")
  const servesAt = (node: string): number | undefined => {
    const startMs = stalls && !soonest ? startableAt(scenario, schedule, node, start.atMs) : start.atMs
    const between = (other: Fault) => other.atMs > startMs && other.atMs <= startMs + lateMs
    const reaches = (other: Fault) => reachesNode(scenario, other, node)
    if (schedule.some((other) => stops(other) && between(other) && reaches(other))) return undefined
    if (stalls && !soonest && runsStalled(scenario, schedule, node, start.atMs)) return undefined
    const pause = schedule.find((other) => other.kind === "pause" && between(other) && reaches(other))
    if (pause === undefined) return startMs + lateMs
    const enders = schedule.filter((other) => other.atMs >= pause.atMs && other !== pause && ["resume", "restart", "wipe"].includes(other.kind) && reaches(other))
    const ender = enders.reduce<Fault | undefined>((first, other) => (first === undefined || other.atMs < first.atMs ? other : first), undefined)
    if (ender === undefined || ender.kind !== "resume") return undefined
    return Math.max(startMs + lateMs, ender.atMs + (soonest ? 0 : lateMs))
  }
  const nodes = targetNodes(scenario, start.target)
  const times = nodes.map((node) => [node, servesAt(node)] as const)
  if (times.every(([, atMs]) => atMs === servesAtMs)) return [{ ...start, atMs: servesAtMs }]
  return times.flatMap(([node, atMs]) => (atMs === undefined ? [] : [{ ...start, target: node, atMs }]))
}

/**
 * Whether `node` runs a stalled process at `atMs`: a stall found it up (the schedule has it neither
 * down nor stopping then) and no crash or wipe ended that process since. A start asked then does
 * nothing (`Node.start` of a running node), and the node serves again when the stall's own restart
 * says (`stalledDown`); read as a start, it ended the stall for the judges.
 */
const runsStalled = (scenario: Pick<Scenario, "topology" | "store">, schedule: ReadonlyArray<Fault>, node: string, atMs: number): boolean => {
  const reaches = (fault: Fault) => reachesNode(scenario, fault, node)
  return schedule.some(
    (stall) =>
      stall.kind === "stall" &&
      stall.atMs < atMs &&
      reaches(stall) &&
      !downAt(scenario, schedule, stall.atMs).has(node) &&
      !schedule.some((other) => (other.kind === "crash" || other.kind === "wipe") && other.atMs >= stall.atMs && other.atMs < atMs && reaches(other))
  )
}

/** How long a gracefully stopped process may still run: the requests' grace and the drain (`Node.stop`), at most. */
const gracefulExitMs = stopTimings.requestGraceMs + Drain.timeoutMsDefault

/** How long a stalled process runs before its watchdog ends it, at most: a look `checkEveryMs` after `stallMs`, the first transaction to wait coming a look after the stall. */
const stalledRunMs = StoreWatch.settingsDefault.stallMs + 2 * StoreWatch.settingsDefault.checkEveryMs

/**
 * When a start of `node` asked at `atMs` begins: at once, unless the node's last process was
 * stopped gracefully and a stall found it still draining; that process then commits nothing, its
 * drain never ends, and it exits only when its watchdog ends it (or the kill `killAfterMs` after
 * the signal), and a start asked meanwhile begins then (`Node.start` while it stops), as a
 * supervisor starts a pod again only once the old one is gone. Swarm seed 84000022 over
 * relay-tree-change.yaml stopped eu-central-1 gracefully at 0.7 s, stalled it at 2.11 s while
 * it drained and restarted it at 4.49 s: the stalled process exited at 18.5 s, and the judge,
 * which read the stall as nothing on a node it counted down and the restart as serving at 7.49 s,
 * counted the region's writes refused until then as outside every fault window (availability
 * 0.636).
 */
const startableAt = (scenario: Pick<Scenario, "topology" | "store">, schedule: ReadonlyArray<Fault>, node: string, atMs: number): number => {
  const reaches = (fault: Fault) => reachesNode(scenario, fault, node)
  const lifecycle = schedule.filter((fault) => ["crash", "restart", "wipe"].includes(fault.kind) && reaches(fault))
  const stop = lifecycle.filter((fault) => fault.atMs < atMs).reduce<Fault | undefined>((last, fault) => (last === undefined || fault.atMs >= last.atMs ? fault : last), undefined)
  if (stop?.kind !== "crash" || stop.graceful !== true) return atMs
  const signalMs = stop.atMs
  const stall = schedule.find(
    (fault) =>
      fault.kind === "stall" &&
      reaches(fault) &&
      fault.atMs > signalMs &&
      fault.atMs <= signalMs + gracefulExitMs &&
      !lifecycle.some((other) => other.kind !== "restart" && other.atMs > signalMs && other.atMs < fault.atMs)
  )
  return stall === undefined ? atMs : Math.max(atMs, Math.min(stall.atMs + stalledRunMs, signalMs + stopTimings.killAfterMs))
}

/**
 * A `stall` as the judges read it: its nodes down from the stall until `StoreWatch` has ended them
 * (a look at most `checkEveryMs` after `stallMs` of no progress, and the first transaction to
 * wait may come a look after the stall) and their supervisor has started them again, a restart
 * delay later; or until the schedule's own crash or wipe, which ends the stalled process first
 * (`startsLate`); a restart of the running process does nothing (`runsStalled`). A shared store
 * ignores the fault (`Faults.apply`).
 *
 * Read at the soonest (an expectation that a loss lasts long enough), a stall is no loss at all:
 * the stalled process answers heartbeats, and it ends only once a transaction has waited
 * `StoreWatch`'s limit, which the schedule cannot date (with nothing to commit, never). Read as a
 * crash at the stall, a stalled primary crashed and restarted within the heartbeat timeout 10 s
 * later was expected to be replaced, where it held its lease throughout (`sim swarm --scenario
 * scenarios/primary-failover.yaml`, seed 74000018).
 */
const stalledDown = (
  scenario: Pick<Scenario, "topology" | "store">,
  schedule: ReadonlyArray<Fault>,
  stall: Fault & { readonly target: string },
  lateMs: number,
  soonest: boolean
): ReadonlyArray<Fault> => {
  if (scenario.store === "shared" || soonest) return []
  const watch = StoreWatch.settingsDefault
  const outageMs = watch.stallMs + 2 * watch.checkEveryMs + restartAfterExitMs
  // A node the schedule has down then has no store to stall (`Node.stall`): it stays as it is.
  const down = downAt(scenario, schedule, stall.atMs)
  return targetNodes(scenario, stall.target)
    .filter((node) => !down.has(node))
    .flatMap((node): ReadonlyArray<Fault> => [{ atMs: stall.atMs, kind: "crash", target: node }, ...startsLate(scenario, schedule, { atMs: stall.atMs, kind: "restart", target: node }, outageMs + lateMs, soonest)])
}

/** The nodes the schedule has crashed and not started again before `atMs`. */
const downAt = (scenario: Pick<Scenario, "topology" | "store">, schedule: ReadonlyArray<Fault>, atMs: number): ReadonlySet<string> => {
  const down = new Set<string>()
  for (const fault of [...schedule].filter((other) => other.atMs < atMs).sort((a, b) => a.atMs - b.atMs)) {
    if (fault.kind === "crash") for (const node of targetNodes(scenario, fault.target)) down.add(node)
    else if (fault.kind === "restart" || fault.kind === "wipe") for (const node of reachedNodes(scenario, fault)) down.delete(node)
  }
  return down
}

/** Whether `fault` reaches `node` (`reachedNodes`); a fault without a target reaches none. */
const reachesNode = (scenario: Pick<Scenario, "store" | "topology">, fault: Fault, node: string): boolean => "target" in fault && reachedNodes(scenario, fault).includes(node)

/** What a wipe of `target` restarts: with a shared store, every node of its region (`Faults.Targets.wipe`). */
const wipedTarget = (scenario: Pick<Scenario, "store" | "topology">, target: string): string =>
  scenario.store === "shared" ? (regionOfTarget(scenario, target) ?? target) : target

/** The nodes a fault with a target reaches: its target's, and for a wipe what it restarts (`wipedTarget`). */
export const reachedNodes = (scenario: Pick<Scenario, "store" | "topology">, fault: Fault & { readonly target: string }): ReadonlyArray<string> =>
  targetNodes(scenario, fault.kind === "wipe" ? wipedTarget(scenario, fault.target) : fault.target)

/**
 * After a process ends on its own (not by a fault: `serve` refusing its configuration, or dying
 * of a bug), its supervisor starts it again this long later: the simulator (`Run.ts`) and the
 * chaos harness (`chaos/Run.ts`) alike, as Kubernetes restarts a pod's container.
 */
export const restartAfterExitMs = 1_000

/** Whether `fault` puts back the scenario's whole `region_priorities` (after a `configure` that dropped a rank). */
export const restoresRanks = (scenario: Pick<Scenario, "replication">, fault: Fault): boolean =>
  fault.kind === "configure" && fault.regionPriorities.length === scenario.replication.regionPriorities.length

/** `bootedFaults` over a scenario's own schedule. */
export const booted = <S extends Pick<Scenario, "startup" | "store" | "topology" | "replication" | "faults">>(scenario: S): S => {
  const faults = bootedFaults(scenario, scenario.faults)
  return faults === scenario.faults ? scenario : { ...scenario, faults }
}

/** The region a target (a region or a node id) is in. */
export const regionOfTarget = (scenario: Pick<Scenario, "topology">, target: string): string | undefined =>
  scenario.topology.regions.find((region) => region.id === target || region.nodes.includes(target))?.id
