/**
 * The stretches of simulated time during which a scenario's faults may legitimately refuse
 * writes, for the availability check: from a fault that cuts links, stops nodes or fails
 * commits until the world is whole again (every cut healed, every node restarted and resumed,
 * every store fault cleared, every node restarted on a file without a removed region's rank
 * started again once the rank is back), or until the run heals everything. Clock jumps do not
 * forbid writes, nor do topology changes (every region keeps taking its writes; only where they
 * are shipped changes), nor does a file edited under a running node. Computed from the
 * scenario's schedule alone, outside the code under test.
 */
import { type Fault, nodesOf, primaryOf, type Scenario, slowestHeartbeat, targetNodes } from "./Scenario.js"
import { endOf } from "./Faults.js"
import * as SimNetwork from "./SimNetwork.js"
import * as Startup from "./Startup.js"

/** A half-open stretch of simulated time `[startMs, endMs)`. */
export interface Window {
  readonly startMs: number
  readonly endMs: number
}

/** What is broken at one moment of the schedule. */
interface Broken {
  cut: boolean
  /** DNS fails (`dns_outage`): a node that starts meanwhile knows no node, so it routes no write until DNS answers and its next discovery round. */
  dns: boolean
  readonly down: Set<string>
  /**
   * Down nodes whose store stalled (`stall`) rather than crashed: they cannot commit, but their
   * process runs and answers heartbeats until its watchdog ends it, so their peers hear no silence.
   */
  readonly stalled: Set<string>
  readonly paused: Set<string>
  readonly stores: Set<string>
  /** Nodes whose file lacks a removed region's rank (`configure`): a start on it may refuse. */
  readonly misconfigured: Set<string>
  /** Misconfigured nodes started since: each may be refusing and restarting until its rank is back. */
  readonly refusing: Set<string>
}

const whole = (broken: Broken): boolean =>
  !broken.cut && !broken.dns && broken.down.size === 0 && broken.paused.size === 0 && broken.stores.size === 0 && broken.refusing.size === 0

/** Folds one fault into what is broken. */
const applyFault = (scenario: Scenario, broken: Broken, fault: Fault): void => {
  switch (fault.kind) {
    case "isolate":
    case "split":
    case "one_way":
    case "bridge":
      broken.cut = true
      return
    case "dns_outage":
      broken.dns = true
      return
    case "heal":
      broken.cut = false
      broken.dns = false
      return
    // A stall reaches the judges as a crash and a later restart (`Startup.bootedFaults`). A node
    // the schedule has down then stays as it is (`Node.stall`).
    case "stall":
      for (const node of targetNodes(scenario, fault.target).filter((candidate) => !broken.down.has(candidate))) {
        broken.down.add(node)
        broken.stalled.add(node)
        broken.refusing.delete(node)
      }
      return
    case "crash":
      for (const node of targetNodes(scenario, fault.target)) {
        broken.down.add(node)
        broken.stalled.delete(node)
        broken.refusing.delete(node)
      }
      return
    case "restart":
    case "wipe":
      // A wipe starts the nodes on the disk again, a crashed one too (`Node.start`).
      for (const node of targetNodes(scenario, fault.target)) {
        broken.down.delete(node)
        broken.stalled.delete(node)
        if (broken.misconfigured.has(node)) broken.refusing.add(node)
      }
      return
    case "pause":
      for (const node of targetNodes(scenario, fault.target)) broken.paused.add(node)
      return
    case "resume":
      for (const node of targetNodes(scenario, fault.target)) broken.paused.delete(node)
      return
    case "store":
      if (fault.failRate > 0 || fault.slowMs.max > 0) broken.stores.add(fault.region)
      else broken.stores.delete(fault.region)
      return
    case "configure":
      // The rank put back ends a refusal when its supervisor's next start serves (`Startup.bootedFaults`).
      for (const node of targetNodes(scenario, fault.target)) {
        if (Startup.restoresRanks(scenario, fault)) {
          broken.misconfigured.delete(node)
          broken.refusing.delete(node)
        } else broken.misconfigured.add(node)
      }
      return
    case "clock_jump":
    case "promote":
    case "topology":
      return
  }
}

/**
 * Windows the README's rules open without a fault: in a two-region PrimaryReplica deployment a
 * fresh disk of the primary region takes no client write until its bootstrap has paged the other
 * region's log (it cannot know whether the other region was promoted meanwhile, and two regions
 * have no lease to tell it). Every disk is fresh when a run starts, and a wipe of a
 * primary-region node makes its disk fresh again. The page cannot come while a fault stands
 * between them (any fault window), and after one it comes within the bootstrap's capped retry
 * delay plus a request timeout; a heartbeat timeout on top is the controller's margin, and covers
 * the round in which a node of the other region whose own bootstrap completed (by the same bound:
 * it pages the primary region and its siblings) answers the fresh disk, without which it renews
 * no lease (since December 7, 2026).
 */
const freshPrimaryDisks = (scenario: Scenario, faults: ReadonlyArray<Window>): ReadonlyArray<Window> => {
  const { regions, strategy } = scenario.topology
  if (strategy !== "PrimaryReplica" || regions.length !== 2) return []
  const primary = primaryOf(scenario)
  if (primary === undefined) return []
  const { agent } = scenario.replication
  const heartbeat = slowestHeartbeat(scenario.replication)
  const holdMs = agent.retryDelayMaxMs + agent.requestTimeoutMs + heartbeat.timeoutMs
  const wipes = scenario.faults.filter((fault) => fault.kind === "wipe" && targetNodes(scenario, fault.target).some((node) => primary.nodes.includes(node)))
  // The first bootstrap may wait for the other region's first process.
  const first = { startMs: 0, endMs: pagedBy(faults, Startup.latestStartMs(scenario), holdMs) }
  return [first, ...wipes.map((wipe) => ({ startMs: wipe.atMs, endMs: pagedBy(faults, wipe.atMs, holdMs) }))]
}

/** When a bootstrap started at `startMs` has paged its peer: `holdMs` after the last fault window it runs into. */
const pagedBy = (faults: ReadonlyArray<Window>, startMs: number, holdMs: number): number => {
  let endMs = startMs + holdMs
  for (const window of faults) {
    if (window.startMs < endMs && window.endMs > startMs) endMs = Math.max(endMs, window.endMs + holdMs)
  }
  return endMs
}

/**
 * Windows the README's fencing rule opens under PrimaryReplica: a primary cut off from a
 * majority of the regions fences itself, and a node of the primary region restarted on a disk
 * that ran before starts fenced; either takes writes again only once it has seen a majority for
 * `confirm_after_ms`. So a fault window with a cut, a crash, a restart or a pause in it may go on
 * refusing writes after it ends for as long as the peers take to be heard again (the heartbeat
 * timeout and `recover_after` rounds) plus `confirm_after_ms` and a controller check.
 */
const fencedPrimaries = (scenario: Scenario, faults: ReadonlyArray<Window>): ReadonlyArray<Window> => {
  if (scenario.topology.strategy !== "PrimaryReplica") return []
  const { failover } = scenario.replication
  const heartbeat = slowestHeartbeat(scenario.replication)
  const confirmMs = heartbeat.timeoutMs + heartbeat.recoverAfter * heartbeat.intervalMs + failover.confirmAfterMs + failover.checkIntervalMs
  const fencing = scenario.faults.filter((fault) => fencingKinds.has(fault.kind))
  return faults.flatMap((window) => {
    const within = fencing.filter((fault) => fault.atMs >= window.startMs && fault.atMs <= window.endMs)
    return within.length === 0 || siblingServes(scenario, within) ? [] : [{ startMs: window.startMs, endMs: window.endMs + confirmMs }]
  })
}

/**
 * Whether every fencing fault of a window stops or restarts nodes of the primary region only,
 * and one of its nodes runs throughout: then no region is lost, and a restarted node of it that
 * starts fenced serves again as soon as that sibling answers as primary of the same epoch (the
 * README's rule since December 2, 2026; before, it waited `confirm_after_ms`).
 */
const siblingServes = (scenario: Scenario, faults: ReadonlyArray<Fault>): boolean => {
  const primary = primaryOf(scenario)
  if (primary === undefined) return false
  const hit = new Set<string>()
  for (const fault of faults) {
    if (!("target" in fault) || !["crash", "restart", "pause"].includes(fault.kind)) return false
    const nodes = targetNodes(scenario, fault.target)
    if (!nodes.every((node) => primary.nodes.includes(node))) return false
    for (const node of nodes) hit.add(node)
  }
  return primary.nodes.some((node) => !hit.has(node))
}

/**
 * Windows the README's hysteresis rule opens after a cut or a stopped node, under every
 * strategy: a node marked Unreachable is available again only after `recover_after` consecutive
 * heartbeat answers, and routers refuse writes for a region they see down (a vault's home under
 * MultiMaster, the primary under PrimaryReplica) until then. One answer per round, or per round
 * trip on a link slower than the interval, plus a round to start.
 */
const recovering = (scenario: Scenario, faults: ReadonlyArray<Window>): ReadonlyArray<Window> => {
  const heartbeat = slowestHeartbeat(scenario.replication)
  const answerEveryMs = Math.max(heartbeat.intervalMs, 2 * SimNetwork.slowestOneWayMs(scenario.network))
  const recoverMs = (heartbeat.recoverAfter + 1) * answerEveryMs
  const stopping = scenario.faults.filter((fault) => fencingKinds.has(fault.kind) || fault.kind === "wipe")
  return faults
    .filter((window) => stopping.some((fault) => fault.atMs >= window.startMs && fault.atMs <= window.endMs))
    .map((window) => ({ startMs: window.endMs, endMs: window.endMs + recoverMs }))
}


/** Faults after which a primary may be fenced: cuts and stopped or restarted nodes. */
const fencingKinds: ReadonlySet<Fault["kind"]> = new Set(["isolate", "split", "one_way", "bridge", "crash", "restart", "pause"])

/**
 * The window the README's lease rule opens at the start under PrimaryReplica with three or more
 * regions: the primary takes a write only while nodes weighing more than half of the regions
 * agree with it, and it has heard nobody yet when the run starts. Its first lease comes a round
 * trip after its first heartbeat round, or a round later for each answer the links lose, so
 * writes may be refused until then; bounded by the heartbeat timeout, after which a peer still
 * silent counts as down. (Swarm seed 1809328: one request and one answer of the first round were
 * lost, the primary crashed before its second round, and the only writes offered outside fault
 * windows came in between.) The same holds after a wipe restarts a primary-region node.
 */
const leaselessStart = (scenario: Scenario): ReadonlyArray<Window> => {
  if (scenario.topology.strategy !== "PrimaryReplica" || scenario.topology.regions.length < 3) return []
  const { timeoutMs } = slowestHeartbeat(scenario.replication)
  // A wipe restarts the nodes on the disk: a primary-region node among them starts with no
  // lease again (no fault window of its own, since the nodes come straight back up).
  const primary = primaryOf(scenario)
  const wipes = scenario.faults.filter((fault) => fault.kind === "wipe" && targetNodes(scenario, fault.target).some((node) => primary?.nodes.includes(node) === true))
  return [{ startMs: 0, endMs: Startup.latestStartMs(scenario) + timeoutMs }, ...wipes.map((wipe) => ({ startMs: wipe.atMs, endMs: wipe.atMs + timeoutMs }))]
}


/**
 * The window a lossy network opens at the start under every strategy. A node's first request to
 * a peer waits for the handshake of its connection, and a handshake lost on the link is sent
 * again only after TCP's first retransmission (`SimNetwork.synRetransmitMs`, 1 s), which may be
 * later than the grace a peer never heard from gets (the heartbeat timeout). From then until the
 * peer's first answer it is Unreachable, and routers refuse writes for a region they see down (a
 * vault's home under MultiMaster, the primary under PrimaryReplica). Bounded by one lost
 * handshake: the retransmission, then the handshake's and the heartbeat's round trips on the
 * slowest link, and a round to send it. (Swarm seed 43001210: us-west-1's handshake answer from
 * eu-central-1 was lost at 0.2 s, its grace ended at 0.6 s, and three writes for a vault homed in
 * eu-central-1 were refused at us-west-1 before the retransmission got through after 1 s.)
 */
const lossyStart = (scenario: Scenario): ReadonlyArray<Window> => {
  const { remote, local, links } = scenario.network
  const lossy = remote.loss > 0 || local.loss > 0 || links.some((entry) => entry.link.loss > 0)
  const heartbeat = slowestHeartbeat(scenario.replication)
  const handshakeAndAnswerMs = 4 * SimNetwork.slowestOneWayMs(scenario.network) + heartbeat.intervalMs
  // Without loss, a link whose handshake and first heartbeat take longer than the heartbeat
  // timeout opens the same window (swarm seed 134000153: 520 ms round trips against a 600 ms
  // timeout under MultiMaster; the first answers came at 1.02 s, writes for a vault homed across
  // that link were refused at 1.0 and 1.42 s).
  if (!lossy && handshakeAndAnswerMs <= heartbeat.timeoutMs) return []
  return [{ startMs: 0, endMs: Startup.latestStartMs(scenario) + (lossy ? SimNetwork.synRetransmitMs : 0) + handshakeAndAnswerMs }]
}

/**
 * The window the README's failover rules open when the primary region's processes start late
 * under PrimaryReplica with three or more regions: a peer never heard from is Unreachable once
 * the heartbeat timeout has passed, so when the primary starts later than that plus
 * `detect_after_ms`, another region may be promoted before it runs. Once it runs, it is heard
 * (its first answer makes it available at once), the role is handed back after
 * `promote_back_after_ms` and a check, and the hand-back's takeover waits out the leases granted
 * to the acting primary (a lease is the heartbeat timeout); `recover_after` rounds are the
 * margin for the acting primary's log to reach it. Writes may be refused until then. (Swarm
 * seeds 46000056 and 46000146 over primary-late-start-crash.yaml: the primary started at 6.4
 * and 6.5 s, eu-central-1 was promoted at 6 and 5.3 s, and the hand-back at 11.4 and 12.6 s
 * refused writes while leases ran out.)
 */
export const lateStartHandBack = (scenario: Scenario): ReadonlyArray<Window> => {
  const { regions, strategy } = scenario.topology
  const primary = primaryOf(scenario)
  if (strategy !== "PrimaryReplica" || regions.length < 3 || primary === undefined) return []
  const { failover } = scenario.replication
  const heartbeat = slowestHeartbeat(scenario.replication)
  const startedByMs = Startup.latestStartOfMs(scenario, primary.id, primary.nodes)
  if (startedByMs <= heartbeat.timeoutMs + failover.detectAfterMs) return []
  const handedBackByMs = heartbeat.timeoutMs + failover.promoteBackAfterMs + failover.checkIntervalMs + heartbeat.timeoutMs + heartbeat.recoverAfter * heartbeat.intervalMs
  return [{ startMs: startedByMs, endMs: startedByMs + handedBackByMs }]
}

/**
 * While the nodes come up (`startup.spread_ms`) some may not be running yet: as a crash, until
 * the last one may have started. Nothing more: a node that starts on a fresh disk does not
 * start fenced, and a primary does not fence itself for peers it has never heard.
 */
const startingUp = (scenario: Scenario): ReadonlyArray<Window> => (Startup.latestStartMs(scenario) > 0 ? [{ startMs: 0, endMs: Startup.latestStartMs(scenario) }] : [])

/**
 * Under `discovery`, whether the DNS outage `faults[index]` leaves nodes that do not know each
 * other until it ends: it began before every node could have had a round after the last start,
 * or a node started again during it (each start knows no node). They meet at their first round
 * after the heal, as if they had started then.
 */
export const strangersDuring = (scenario: Scenario, faults: ReadonlyArray<Fault>, index: number, healedAtMs: number): boolean => {
  const fault = faults[index]!
  const roundMs = scenario.discovery?.intervalMs
  if (roundMs === undefined || fault.kind !== "dns_outage") return false
  if (fault.atMs < Startup.latestStartMs(scenario) + roundMs) return true
  const endMs = endOf(scenario, faults, index, healedAtMs)
  return faults.some((other) => (other.kind === "restart" || other.kind === "wipe") && other.atMs >= fault.atMs && other.atMs <= endMs)
}

/**
 * The windows DNS outages open under `discovery` when nodes that do not know each other meet only
 * after the heal (`strangersDuring`): their first round then, `recover_after` answers, and what a
 * late start allows after it (under PrimaryReplica another region's promotion, the hand-back and
 * its wait for the leases granted meanwhile). (Swarm seed 85000190 over
 * primary-late-start-crash.yaml with discovery: the primary started at 4.4 s during an outage
 * from 3.1 to 5.05 s, was handed the role back at 10.9 s, and waited out leases until 13.9 s.)
 */
const strangersMeeting = (scenario: Scenario, healedAtMs: number): ReadonlyArray<Window> => {
  if (scenario.discovery === undefined) return []
  const { failover } = scenario.replication
  const heartbeat = slowestHeartbeat(scenario.replication)
  const faults = [...scenario.faults].sort((a, b) => a.atMs - b.atMs)
  const metMs = scenario.discovery.intervalMs + (heartbeat.recoverAfter + 1) * Math.max(heartbeat.intervalMs, 2 * SimNetwork.slowestOneWayMs(scenario.network))
  const primaryMs =
    scenario.topology.strategy === "PrimaryReplica"
      ? heartbeat.timeoutMs + failover.detectAfterMs + failover.checkIntervalMs + heartbeat.timeoutMs + failover.promoteBackAfterMs + failover.checkIntervalMs + heartbeat.timeoutMs
      : 0
  return faults.flatMap((fault, index) =>
    strangersDuring(scenario, faults, index, healedAtMs) ? [{ startMs: fault.atMs, endMs: endOf(scenario, faults, index, healedAtMs) + metMs + primaryMs }] : []
  )
}

/**
 * The windows in which writes may be refused, in time order (by start). A restart counts from
 * when its process may last have started, and a wipe stops its nodes until then
 * (`Startup.booted`, under `startup.restart_ms`).
 */
export const windows = (declared: Scenario, healedAtMs: number): ReadonlyArray<Window> => {
  const scenario = Startup.booted(declared)
  const faults = [...startingUp(scenario), ...faultWindows(scenario, healedAtMs)]
  // A wipe's window is the peers' silence, not a fault between the regions: the fresh-disk and
  // fencing rules have their own windows for it.
  const restarts = wiped(scenario, healedAtMs)
  return [
    ...faults,
    ...restarts,
    ...freshPrimaryDisks(scenario, faults),
    ...fencedPrimaries(scenario, faults),
    ...recovering(scenario, [...faults, ...restarts]),
    ...leaselessStart(scenario),
    ...lossyStart(scenario),
    ...lateStartHandBack(scenario),
    ...strangersMeeting(scenario, healedAtMs)
  ].sort(
    (a, b) => a.startMs - b.startMs || a.endMs - b.endMs
  )
}

const faultWindows = (scenario: Scenario, healedAtMs: number): ReadonlyArray<Window> => stretches(scenario, healedAtMs, (broken) => !whole(broken)) ?? []

const emptyBroken = (): Broken => ({ cut: false, dns: false, down: new Set(), stalled: new Set(), paused: new Set(), stores: new Set(), misconfigured: new Set(), refusing: new Set() })

/**
 * The stretches of the schedule, up to the heal, in which `open` holds of what is broken: each
 * from the fault that made it hold to the one that made it fail (or the heal). Undefined when
 * `exact` refuses a fault: what it leaves broken is not what `applyFault` reads.
 */
const stretches = (
  scenario: Scenario,
  healedAtMs: number,
  open: (broken: Broken) => boolean,
  exact: (broken: Broken, fault: Fault) => boolean = () => true
): ReadonlyArray<Window> | undefined => {
  const broken = emptyBroken()
  const found: Array<Window> = []
  let openedAtMs: number | undefined
  for (const fault of [...scenario.faults].sort((a, b) => a.atMs - b.atMs)) {
    if (fault.atMs >= healedAtMs) break
    if (!exact(broken, fault)) return undefined
    applyFault(scenario, broken, fault)
    if (openedAtMs === undefined && open(broken)) openedAtMs = fault.atMs
    if (openedAtMs !== undefined && !open(broken)) {
      found.push({ startMs: openedAtMs, endMs: fault.atMs })
      openedAtMs = undefined
    }
  }
  if (openedAtMs !== undefined) found.push({ startMs: openedAtMs, endMs: healedAtMs })
  return found
}

/**
 * The windows wipes open. A wipe restarts the nodes on the disk at once, but their peers hear the
 * new incarnation only over a new connection, and count the old one stale a heartbeat timeout
 * after its last answer; the hysteresis (`recovering`) follows. (Swarm seed 56000638: us-east-1,
 * home of the only vault, wiped at 3.7 s on a 35-180 ms, 4.8% lossy network; routers in other
 * regions refused its writes as "home region unavailable" at 5.63-5.68 s, outside every window.)
 */
const wiped = (scenario: Scenario, healedAtMs: number): ReadonlyArray<Window> =>
  scenario.faults
    .filter((fault) => fault.kind === "wipe" && fault.atMs < healedAtMs)
    .map((fault) => ({ startMs: fault.atMs, endMs: fault.atMs + slowestHeartbeat(scenario.replication).timeoutMs }))

/** Whether `[startMs, endMs]` overlaps a window extended by `graceMs` (time to recover after it ends). */
export const overlaps = (found: ReadonlyArray<Window>, startMs: number, endMs: number, graceMs: number): boolean =>
  found.some((window) => startMs < window.endMs + graceMs && endMs >= window.startMs)

/**
 * The stretches during which every node of `regionId` was stopped (crashed or paused), from the
 * declared schedule: a restart counts from its fault, the earliest its process can serve, so a
 * stretch never ends later than the region's real outage did; one still open when the run heals
 * ends at the heal. A stalled node is not stopped here: it answers heartbeats, and its watchdog
 * ends it only once a transaction has waited `StoreWatch`'s limit, which the schedule cannot
 * date (with nothing to commit, never), so the shortest silence a stall may cause is none. Read
 * as stopped from the stall, a stall and a later crash made one long outage that the acting
 * primary's peers could not have heard, and a hand-back 1 s after the restart was judged early
 * (`sim swarm --scenario scenarios/primary-failover.yaml`, seed 74000030: stalled at 2.58 s,
 * crashed at 13.09 s, back at 14.92 s, the silence shorter than the heartbeat timeout). Undefined when the schedule cannot say so exactly: a graceful stop of one of
 * its nodes (it answers while it drains), a restart or wipe of a paused node, a pause of a
 * stopped one, or a topology change. The hand-back check (`Checkers.handBack`) reads these.
 */
export const regionOutages = (scenario: Scenario, regionId: string, healedAtMs: number): ReadonlyArray<Window> | undefined => {
  const nodes = scenario.topology.regions.find((region) => region.id === regionId)?.nodes ?? []
  return stretches(
    scenario,
    healedAtMs,
    (broken) => nodes.length > 0 && nodes.every((node) => (broken.down.has(node) && !broken.stalled.has(node)) || broken.paused.has(node)),
    (broken, fault) => exactForOutages(scenario, broken, fault, nodes)
  )
}

/** Whether `fault` leaves the stopped nodes among `nodes` exactly as `applyFault` reads them (see `regionOutages`). */
const exactForOutages = (scenario: Scenario, broken: Broken, fault: Fault, nodes: ReadonlyArray<string>): boolean => {
  if (fault.kind === "topology") return false
  const hit = fault.kind === "crash" || fault.kind === "restart" || fault.kind === "wipe" || fault.kind === "pause" ? targetNodes(scenario, fault.target).filter((node) => nodes.includes(node)) : []
  if (fault.kind === "crash" && fault.graceful === true) return hit.length === 0
  if (fault.kind === "restart" || fault.kind === "wipe") return hit.every((node) => !broken.paused.has(node))
  if (fault.kind === "pause") return hit.every((node) => !broken.down.has(node))
  return true
}

/** The longest any of `nodes` stays paused: from its pause to its resume, or to the heal (a restart or wipe is not read as ending it). */
export const longestPause = (scenario: Scenario, nodes: ReadonlyArray<string>, healedAtMs: number): number => {
  const pausedAt = new Map<string, number>()
  let longestMs = 0
  for (const fault of [...scenario.faults].sort((a, b) => a.atMs - b.atMs)) {
    if (fault.atMs >= healedAtMs) break
    if (fault.kind !== "pause" && fault.kind !== "resume") continue
    for (const node of targetNodes(scenario, fault.target).filter((candidate) => nodes.includes(candidate))) {
      const sinceMs = pausedAt.get(node)
      if (fault.kind === "pause" && sinceMs === undefined) pausedAt.set(node, fault.atMs)
      if (fault.kind === "resume" && sinceMs !== undefined) {
        longestMs = Math.max(longestMs, fault.atMs - sinceMs)
        pausedAt.delete(node)
      }
    }
  }
  for (const sinceMs of pausedAt.values()) longestMs = Math.max(longestMs, healedAtMs - sinceMs)
  return longestMs
}

/**
 * The schedule as a run's processes met it: a pause of a node whose first process has not
 * started yet (`startsMs`, the run's start offsets) does nothing, in the simulator as with SIGSTOP
 * on a process that does not exist, so it is left out; a pause of a region keeps only the nodes
 * already running. Read as a pause, it made an outage of the original primary that never was, and
 * a hand-back `promote_back_after_ms` after its late start was judged early (swarm seed 882 over
 * chaos-primary-pause.yaml, December 7: us-west-1 started at 4.7 s, a pause of it at 2.41 s and a
 * resume at 5.51 s, the role handed back at 7 s).
 */
export const pausesOfRunningNodes = (scenario: Scenario, startsMs: ReadonlyMap<string, number>): Scenario => ({
  ...scenario,
  faults: scenario.faults.flatMap((fault) => {
    if (fault.kind !== "pause") return [fault]
    const nodes = targetNodes(scenario, fault.target)
    const running = nodes.filter((node) => (startsMs.get(node) ?? 0) < fault.atMs)
    return running.length === nodes.length ? [fault] : running.map((node) => ({ ...fault, target: node }))
  })
})

/**
 * What the hand-back check judges a run by: the original region's outages from the schedule
 * (`regionOutages`; none when it cannot say), and how long one must last for the
 * acting primary to have seen it, from the README's rules. An answer counts only within its
 * request's deadline, which the README caps at the larger of `request_timeout` and the heartbeat
 * timeout, so one sent before the outage is heard at most that cap later, or a pause of the
 * hearing node later still (it takes the answer in when it resumes); and a peer heard through
 * slow answers may stay silent for two of its deadlines plus a round (its "staleness allowance").
 * Where the links neither lose nor duplicate, nothing cuts them and their bounded latency keeps
 * round trips far below the first deadline (a sixth of the shortest heartbeat interval), no
 * deadline grows, and the slowest link's bound replaces both.
 */
export const handBackJudged = (
  scenario: Scenario,
  original: string,
  healedAtMs: number
): { readonly outages: ReadonlyArray<Window>; readonly rules: { readonly promoteBackAfterMs: number; readonly visibleAfterMs: number } } | undefined => {
  const { network, replication } = scenario
  const outages = regionOutages(scenario, original, healedAtMs)
  if (outages === undefined) return undefined
  const heartbeat = slowestHeartbeat(replication)
  const pausedMs = longestPause(scenario, nodesOf(scenario).filter(({ regionId }) => regionId !== original).map(({ nodeId }) => nodeId), healedAtMs)
  const links = [network.remote, network.local, ...network.links.map((entry) => entry.link)]
  const boundMs = (link: SimNetwork.Link) => (link.latency.kind === "fixed" ? link.latency.ms : link.latency.kind === "uniform" ? link.latency.maxMs : Infinity)
  const slowestMs = Math.max(...links.map((link) => (link.loss > 0 || link.duplicate > 0 ? Infinity : boundMs(link))))
  const cut = scenario.faults.some((fault) => ["isolate", "split", "one_way", "bridge", "dns_outage"].includes(fault.kind))
  const shortestIntervalMs = Math.min(replication.heartbeat.intervalMs, ...Object.values(replication.heartbeatOverrides ?? {}).map((override) => override.intervalMs ?? Infinity))
  const capMs = Math.max(replication.agent.requestTimeoutMs, heartbeat.timeoutMs)
  const silenceMs = !cut && 12 * slowestMs <= shortestIntervalMs ? heartbeat.timeoutMs + slowestMs : Math.max(heartbeat.timeoutMs, 2 * capMs + heartbeat.intervalMs) + capMs
  return { outages, rules: { promoteBackAfterMs: replication.failover.promoteBackAfterMs, visibleAfterMs: silenceMs * 1.001 + pausedMs } }
}
