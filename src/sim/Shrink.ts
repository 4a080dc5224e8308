/**
 * Shrinking fault schedules with fast-check. A schedule is seen as a list of *episodes*: a
 * fault together with the fault that ends it (an isolation and its heal, a crash and its
 * restart, a pause and its resume, a store fault and its clearing), or an instant fault (a
 * clock jump). `scheduleArbitrary` generates episode lists for a scenario's topology and time
 * span and maps them to the plain `Fault` arrays a `Scenario` holds. Its inverse (`toEpisodes`)
 * lets fast-check shrink a schedule it did not generate (a scenario file's, or a swarm draw's):
 * drop episodes, shorten them, move them earlier, make them milder (fewer regions cut, smaller
 * clock jumps, lower failure rates).
 *
 * `minimize` runs `fc.check` with the property "the schedule does not fail": with the given
 * schedule as its one example it shrinks that schedule; with `search` it first tries schedules
 * drawn from the arbitrary, seeded from the run's seed, and shrinks the first that fails. A
 * named bound (`runsMax`) caps how many simulations one shrink may take; once spent, every
 * further candidate counts as passing, so fast-check stops at the smallest failure found so far.
 * Everything is seeded, so one scenario and seed always shrink to the same schedule.
 */
import fc from "fast-check"
import { type RunOptions, type RunResult, runScenario } from "./Run.js"
import { type Fault, type Range, type Scenario, nodesOf, validate } from "./Scenario.js"
import type { TopologyChange } from "./TopologyFaults.js"

// ---------------------------------------------------------------------------------------------
// Episodes
// ---------------------------------------------------------------------------------------------

/** A fault and how long until the fault that ends it (`open`: nothing ends it but the final heal). */
interface Lasting {
  readonly atMs: number
  readonly durationMs: number
  readonly open: boolean
}

/** One element of a schedule as fast-check sees it. `sides[i]` is the group of region i (0: in no group). */
export type Episode =
  | (Lasting & { readonly kind: "isolate"; readonly region: string })
  | (Lasting & { readonly kind: "split"; readonly sides: ReadonlyArray<number> })
  | (Lasting & { readonly kind: "one_way"; readonly from: string; readonly to: string })
  | (Lasting & { readonly kind: "bridge"; readonly node: string; readonly sides: ReadonlyArray<number> })
  // `replaced` (crashes under discovery): a pod deleted and created again; `graceful`: stopped as
  // SIGTERM stops it (see `Scenario.Fault`).
  | (Lasting & { readonly kind: "crash" | "pause"; readonly target: string; readonly replaced?: boolean; readonly graceful?: boolean })
  | (Lasting & { readonly kind: "store"; readonly region: string; readonly slowMinMs: number; readonly slowSpanMs: number; readonly failPermille: number })
  | (Lasting & { readonly kind: "dns_outage" })
  | { readonly kind: "clock_jump"; readonly atMs: number; readonly target: string; readonly deltaMs: number }
  | { readonly kind: "wipe" | "stall"; readonly atMs: number; readonly target: string }
  | { readonly kind: "promote"; readonly atMs: number; readonly region: string }
  // Topology changes are drawn only from the scenario's own: dropping or moving one may leave a
  // schedule the file format refuses, which then does not count as a failure (see `shrink`).
  | { readonly kind: "topology"; readonly atMs: number; readonly change: TopologyChange }
  // A configuration edit is kept as the scenario has it (its ranks are valid only after the removal
  // it follows), only moved or dropped: a schedule the file format then refuses does not count.
  | { readonly kind: "configure"; readonly atMs: number; readonly target: string; readonly regionPriorities: ReadonlyArray<string> }
  // Ends with no start before them in a given schedule, kept so that any schedule has a form.
  | { readonly kind: "heal"; readonly atMs: number }
  | { readonly kind: "restart" | "resume"; readonly atMs: number; readonly target: string }
  | { readonly kind: "store_clear"; readonly atMs: number; readonly region: string }

/** A crash's flags, only those set (absent is false, as in a scenario file). */
const crashFlags = (crash: { readonly replaced?: boolean; readonly graceful?: boolean }): { readonly replaced?: true; readonly graceful?: true } => ({
  ...(crash.replaced === true ? { replaced: true as const } : {}),
  ...(crash.graceful === true ? { graceful: true as const } : {})
})

/** The space episodes are drawn from: the scenario's regions, nodes and time span. */
interface Space {
  readonly regionIds: ReadonlyArray<string>
  readonly nodeIds: ReadonlyArray<string>
  readonly horizonMs: number
  readonly groupsMax: number
  readonly deltaMaxMs: number
  readonly slowMaxMs: number
  /** When the run heals everything, for episodes nothing ends. */
  readonly healedAtMs: number
  /** The scenario's own topology changes (the only ones generated). */
  readonly topologyChanges: ReadonlyArray<TopologyChange>
  /** The targets and ranks of the scenario's own `configure` faults (the only ones generated). */
  readonly configures: { readonly targets: ReadonlyArray<string>; readonly rankings: ReadonlyArray<ReadonlyArray<string>> }
  /** The scenario has `discovery`: DNS outages are part of its space. */
  readonly discovery: boolean
}

const groupsOf = (sides: ReadonlyArray<number>, regionIds: ReadonlyArray<string>): ReadonlyArray<ReadonlyArray<string>> => {
  const groups: Array<Array<string>> = []
  sides.forEach((side, index) => {
    if (side > 0) (groups[side - 1] ??= []).push(regionIds[index]!)
  })
  return groups.filter((group) => group !== undefined && group.length > 0)
}

const sidesOf = (groups: ReadonlyArray<ReadonlyArray<string>>, regionIds: ReadonlyArray<string>): ReadonlyArray<number> =>
  regionIds.map((region) => groups.findIndex((group) => group.includes(region)) + 1)

/** The faults of one episode: its start and, unless open, its end. */
const faultsOf = (episode: Episode, space: Space): ReadonlyArray<Fault> => {
  const { atMs } = episode
  const ending = (end: Fault): ReadonlyArray<Fault> => ("open" in episode && episode.open ? [] : [end])
  const endMs = "durationMs" in episode ? atMs + episode.durationMs : atMs
  switch (episode.kind) {
    case "isolate":
      return [{ atMs, kind: "isolate", region: episode.region }, ...ending({ atMs: endMs, kind: "heal" })]
    case "split":
      return [{ atMs, kind: "split", groups: groupsOf(episode.sides, space.regionIds) }, ...ending({ atMs: endMs, kind: "heal" })]
    case "one_way":
      return [{ atMs, kind: "one_way", from: episode.from, to: episode.to }, ...ending({ atMs: endMs, kind: "heal" })]
    case "bridge":
      return [{ atMs, kind: "bridge", node: episode.node, groups: groupsOf(episode.sides, space.regionIds) }, ...ending({ atMs: endMs, kind: "heal" })]
    case "dns_outage":
      return [{ atMs, kind: "dns_outage" }, ...ending({ atMs: endMs, kind: "heal" })]
    case "crash":
    case "pause":
      return [
        episode.kind === "crash" ? { atMs, kind: "crash", target: episode.target, ...crashFlags(episode) } : { atMs, kind: episode.kind, target: episode.target },
        ...ending({ atMs: endMs, kind: episode.kind === "crash" ? "restart" : "resume", target: episode.target })
      ]
    case "store": {
      const slowMs: Range = { min: episode.slowMinMs, max: episode.slowMinMs + episode.slowSpanMs }
      const cleared: Fault = { atMs: endMs, kind: "store", region: episode.region, slowMs: { min: 0, max: 0 }, failRate: 0 }
      return [{ atMs, kind: "store", region: episode.region, slowMs, failRate: episode.failPermille / 1000 }, ...ending(cleared)]
    }
    case "clock_jump":
      return [{ atMs, kind: "clock_jump", target: episode.target, deltaMs: episode.deltaMs }]
    case "wipe":
    case "stall":
      return [{ atMs, kind: episode.kind, target: episode.target }]
    case "promote":
      return [{ atMs, kind: "promote", region: episode.region }]
    case "topology":
      return [{ atMs, kind: "topology", change: episode.change }]
    case "configure":
      return [{ atMs, kind: "configure", target: episode.target, regionPriorities: episode.regionPriorities }]
    case "heal":
      return [{ atMs, kind: "heal" }]
    case "restart":
    case "resume":
      return [{ atMs, kind: episode.kind, target: episode.target }]
    case "store_clear":
      return [{ atMs, kind: "store", region: episode.region, slowMs: { min: 0, max: 0 }, failRate: 0 }]
  }
}

/** A schedule from episodes, sorted by time (ties keep episode order); one heal heals every link, so repeats at one instant are dropped. */
export const toFaults = (episodes: ReadonlyArray<Episode>, space: Space): ReadonlyArray<Fault> =>
  episodes
    .flatMap((episode) => faultsOf(episode, space))
    .sort((a, b) => a.atMs - b.atMs)
    .filter((fault, index, all) => !(fault.kind === "heal" && all.slice(0, index).some((earlier) => earlier.kind === "heal" && earlier.atMs === fault.atMs)))

type Mutable<T> = { -readonly [K in keyof T]: T[K] }
type Started = Mutable<Extract<Episode, Lasting>>

const whole = (value: number): number => Math.round(value)

/** The episode a starting fault opens, open until its end is found. */
const started = (fault: Exclude<Fault, { kind: "heal" | "restart" | "resume" | "clock_jump" | "wipe" | "stall" | "promote" | "topology" | "configure" }>, space: Space): Started => {
  const base = { atMs: whole(fault.atMs), durationMs: 1, open: true }
  switch (fault.kind) {
    case "isolate":
      return { ...base, kind: "isolate", region: fault.region }
    case "split":
      return { ...base, kind: "split", sides: sidesOf(fault.groups, space.regionIds) }
    case "one_way":
      return { ...base, kind: "one_way", from: fault.from, to: fault.to }
    case "bridge":
      return { ...base, kind: "bridge", node: fault.node, sides: sidesOf(fault.groups, space.regionIds) }
    case "dns_outage":
      return { ...base, kind: "dns_outage" }
    case "crash":
      return { ...base, kind: "crash", target: fault.target, ...crashFlags(fault) }
    case "pause":
      return { ...base, kind: fault.kind, target: fault.target }
    case "store":
      return { ...base, kind: "store", region: fault.region, slowMinMs: whole(fault.slowMs.min), slowSpanMs: whole(fault.slowMs.max - fault.slowMs.min), failPermille: whole(fault.failRate * 1000) }
    default:
      throw new Error(`${fault.kind} ends an episode; it does not start one`)
  }
}

const close = (episode: Started, atMs: number): void => {
  episode.open = false
  episode.durationMs = Math.max(1, whole(atMs) - episode.atMs)
}

/** The episodes of a schedule: every end is paired with the start it ends (the inverse of `toFaults`). */
export const toEpisodes = (faults: ReadonlyArray<Fault>, space: Space): ReadonlyArray<Episode> => {
  if (!Array.isArray(faults)) throw new Error("not a fault schedule")
  const episodes: Array<Episode> = []
  const network: Array<Started> = []
  const lasting = new Map<string, Started>()
  for (const fault of faults) {
    const atMs = whole(fault.atMs)
    switch (fault.kind) {
      case "heal":
        if (network.length === 0) episodes.push({ kind: "heal", atMs })
        for (const episode of network.splice(0)) close(episode, atMs)
        break
      case "restart":
      case "resume": {
        const key = `${fault.kind === "restart" ? "crash" : "pause"}/${fault.target}`
        const episode = lasting.get(key)
        lasting.delete(key)
        if (episode === undefined) episodes.push({ kind: fault.kind, atMs, target: fault.target })
        else close(episode, atMs)
        break
      }
      case "clock_jump":
        episodes.push({ kind: "clock_jump", atMs, target: fault.target, deltaMs: whole(fault.deltaMs) })
        break
      case "wipe":
      case "stall":
        episodes.push({ kind: fault.kind, atMs, target: fault.target })
        break
      case "promote":
        episodes.push({ kind: "promote", atMs, region: fault.region })
        break
      case "topology":
        episodes.push({ kind: "topology", atMs, change: fault.change })
        break
      case "configure":
        episodes.push({ kind: "configure", atMs, target: fault.target, regionPriorities: fault.regionPriorities })
        break
      default: {
        const key = fault.kind === "store" ? `store/${fault.region}` : fault.kind === "crash" || fault.kind === "pause" ? `${fault.kind}/${fault.target}` : undefined
        const previous = key === undefined ? undefined : lasting.get(key)
        if (previous !== undefined) close(previous, atMs)
        if (fault.kind === "store" && fault.slowMs.max <= 0 && fault.failRate <= 0) {
          if (previous === undefined) episodes.push({ kind: "store_clear", atMs, region: fault.region })
          lasting.delete(key!)
          break
        }
        const episode = started(fault, space)
        episodes.push(episode)
        if (key === undefined) network.push(episode)
        else lasting.set(key, episode)
      }
    }
  }
  for (const episode of episodes) if ("open" in episode && episode.open) (episode as Started).durationMs = Math.max(1, whole(space.healedAtMs) - episode.atMs)
  return episodes
}

// ---------------------------------------------------------------------------------------------
// Arbitraries
// ---------------------------------------------------------------------------------------------

/** Episodes in a generated schedule at most (a given schedule may have more). */
const episodesMaxDefault = 8
/** Shortest and longest generated episode. */
const durationMinMs = 1
const generatedDurationMaxMs = 6_000

/** The space of a scenario's schedules, wide enough to hold every value of its own schedule. */
export const spaceOf = (scenario: Scenario): Space => {
  const { startMs, durationMs } = scenario.workload
  const workloadEndMs = durationMs > 0 ? startMs + durationMs : 0
  const lastFaultMs = scenario.faults.reduce((latest, fault) => Math.max(latest, fault.atMs), 0)
  const groupCounts = scenario.faults.map((fault) => (fault.kind === "split" || fault.kind === "bridge" ? fault.groups.length : 0))
  const deltas = scenario.faults.map((fault) => (fault.kind === "clock_jump" ? Math.abs(fault.deltaMs) : 0))
  const slows = scenario.faults.map((fault) => (fault.kind === "store" ? fault.slowMs.max : 0))
  return {
    regionIds: scenario.topology.regions.map((region) => region.id),
    nodeIds: nodesOf(scenario).map((node) => node.nodeId),
    horizonMs: Math.ceil(Math.max(workloadEndMs + 2_000, lastFaultMs)),
    groupsMax: Math.max(3, ...groupCounts),
    deltaMaxMs: Math.ceil(Math.max(2_000, ...deltas)),
    slowMaxMs: Math.ceil(Math.max(200, ...slows)),
    healedAtMs: Math.max(workloadEndMs, lastFaultMs),
    topologyChanges: scenario.faults.flatMap((fault) => (fault.kind === "topology" ? [fault.change] : [])),
    configures: {
      targets: scenario.faults.flatMap((fault) => (fault.kind === "configure" ? [fault.target] : [])),
      rankings: scenario.faults.flatMap((fault) => (fault.kind === "configure" ? [fault.regionPriorities] : []))
    },
    discovery: scenario.discovery !== undefined
  }
}

const record = <T>(model: { [K in keyof T]: fc.Arbitrary<T[K]> }): fc.Arbitrary<T> => fc.record(model, { noNullPrototype: true }) as fc.Arbitrary<T>

/** One episode of the space. Every field shrinks on its own, towards smaller and earlier faults. */
const episodeArbitrary = (space: Space): fc.Arbitrary<Episode> => {
  const atMs = fc.integer({ min: 0, max: space.horizonMs })
  // Generated episodes last at most generatedDurationMaxMs; given ones may last up to the horizon.
  const durationMs = fc.integer({ min: durationMinMs, max: Math.max(generatedDurationMaxMs, space.horizonMs) })
  // Open (nothing ends it but the final heal) one time in ten; shrinks to closed.
  const open = fc.integer({ min: 0, max: 9 }).map((value) => value === 9, (value) => (value === true ? 9 : 0))
  const region = fc.constantFrom(...space.regionIds)
  const node = fc.constantFrom(...space.nodeIds)
  const target = fc.constantFrom(...space.regionIds, ...space.nodeIds)
  const sides = fc.tuple(...space.regionIds.map(() => fc.integer({ min: 0, max: space.groupsMax })))
  const lasting = { atMs, durationMs, open }
  return fc.oneof(
    { weight: 3, arbitrary: record({ ...lasting, kind: fc.constant("isolate" as const), region }) },
    { weight: 2, arbitrary: record({ ...lasting, kind: fc.constant("split" as const), sides }) },
    { weight: 2, arbitrary: record({ ...lasting, kind: fc.constant("one_way" as const), from: region, to: region }) },
    { weight: 1, arbitrary: record({ ...lasting, kind: fc.constant("bridge" as const), node, sides }) },
    {
      weight: 3,
      // Under discovery a crash may be a replaced pod, and any crash may be graceful; `false` is where each shrinks to.
      arbitrary: record({ ...lasting, kind: fc.constant("crash" as const), target, replaced: space.discovery ? fc.boolean() : fc.constant(false), graceful: fc.boolean() }).map(
        ({ replaced, graceful, ...crash }) => ({ ...crash, ...crashFlags({ replaced, graceful }) }),
        // The inverse, so a given schedule (a shipped file's) can be shrunk: absent is false.
        (value) => {
          if (typeof value !== "object" || value === null) throw new Error("not a crash episode")
          const crash = value as Lasting & { readonly kind: "crash"; readonly target: string; readonly replaced?: boolean; readonly graceful?: boolean }
          return { ...crash, replaced: crash.replaced === true, graceful: crash.graceful === true }
        }
      )
    },
    { weight: 2, arbitrary: record({ ...lasting, kind: fc.constant("pause" as const), target }) },
    {
      weight: 2,
      arbitrary: record({
        ...lasting,
        kind: fc.constant("store" as const),
        region,
        slowMinMs: fc.integer({ min: 0, max: space.slowMaxMs }),
        slowSpanMs: fc.integer({ min: 0, max: space.slowMaxMs }),
        failPermille: fc.integer({ min: 0, max: 1000 })
      })
    },
    { weight: 2, arbitrary: record({ kind: fc.constant("clock_jump" as const), atMs, target, deltaMs: fc.integer({ min: -space.deltaMaxMs, max: space.deltaMaxMs }) }) },
    { weight: 1, arbitrary: record({ kind: fc.constant("wipe" as const), atMs, target }) },
    { weight: 1, arbitrary: record({ kind: fc.constant("stall" as const), atMs, target }) },
    { weight: 1, arbitrary: record({ kind: fc.constant("promote" as const), atMs, region }) },
    { weight: 1, arbitrary: record({ kind: fc.constant("heal" as const), atMs }) },
    { weight: 1, arbitrary: record({ kind: fc.constantFrom("restart" as const, "resume" as const), atMs, target }) },
    { weight: 1, arbitrary: record({ kind: fc.constant("store_clear" as const), atMs, region }) },
    ...(space.topologyChanges.length === 0 ? [] : [{ weight: 1, arbitrary: record({ kind: fc.constant("topology" as const), atMs, change: fc.constantFrom(...space.topologyChanges) }) }]),
    ...(space.configures.targets.length === 0
      ? []
      : [{ weight: 1, arbitrary: record({ kind: fc.constant("configure" as const), atMs, target: fc.constantFrom(...space.configures.targets), regionPriorities: fc.constantFrom(...space.configures.rankings) }) }]),
    // DNS outages only where the nodes discover each other: the file format refuses them elsewhere.
    ...(space.discovery ? [{ weight: 2, arbitrary: record({ ...lasting, kind: fc.constant("dns_outage" as const) }) }] : [])
  )
}

/**
 * Fault schedules for a scenario's topology and time span (the scenario's own schedule is one
 * of them, so fast-check can shrink it without having generated it).
 */
export const scheduleArbitrary = (scenario: Scenario, options: { readonly episodesMax?: number } = {}): fc.Arbitrary<ReadonlyArray<Fault>> => {
  const space = spaceOf(scenario)
  const maxLength = Math.max(options.episodesMax ?? episodesMaxDefault, toEpisodes(scenario.faults, space).length)
  return fc
    .array(episodeArbitrary(space), { maxLength })
    .map((episodes) => toFaults(episodes, space), (value) => [...toEpisodes(value as ReadonlyArray<Fault>, space)])
}

// ---------------------------------------------------------------------------------------------
// Shrinking
// ---------------------------------------------------------------------------------------------

/** Simulations one shrink may run at most. */
export const runsMaxDefault = 100

/** A seed for fast-check (a 31-bit integer) from a run seed. */
export const fastCheckSeed = (seed: number | string): number => {
  const text = String(seed)
  if (/^\d+$/.test(text)) return Number(BigInt(text) % 2147483647n)
  let hash = 0
  for (let index = 0; index < text.length; index++) hash = (Math.imul(hash, 31) + text.charCodeAt(index)) | 0
  return hash & 0x7fffffff
}

/** How to minimize. */
export interface MinimizeOptions {
  readonly seed: number | string
  readonly runsMax?: number
  /** Try this many generated schedules (instead of the scenario's own) and shrink the first that fails. */
  readonly search?: number
}

/**
 * The smallest schedule fast-check finds that still fails, starting from the scenario's own
 * schedule (or, with `search`, from the first failing generated one); undefined when none fails.
 */
export const minimize = (
  scenario: Scenario,
  fails: (faults: ReadonlyArray<Fault>) => boolean,
  options: MinimizeOptions
): { readonly faults: ReadonlyArray<Fault>; readonly runs: number } | undefined => {
  const runsMax = options.runsMax ?? runsMaxDefault
  let runs = 0
  const property = fc.property(scheduleArbitrary(scenario), (faults) => {
    if (runs >= runsMax) return true
    runs++
    return !fails(faults)
  })
  const search = options.search ?? 0
  const details = fc.check(property, {
    seed: fastCheckSeed(options.seed),
    numRuns: Math.max(1, search),
    ...(search > 0 ? {} : { examples: [[scenario.faults]] })
  })
  const counterexample = details.counterexample?.[0]
  return details.failed && counterexample !== undefined ? { faults: counterexample, runs } : undefined
}

/** What shrinking a scenario's failure found. */
export interface Shrunk {
  /** The schedule that was shrunk (the scenario's own, or the searched one) and its run. */
  readonly original: { readonly faults: ReadonlyArray<Fault>; readonly result: RunResult }
  /** The smallest failing schedule as a scenario named `shrunk-<name>`, and its run. */
  readonly minimal: { readonly scenario: Scenario; readonly result: RunResult }
  /** The checkers that flagged the original; a candidate fails the same way when all of them flag it. */
  readonly checkers: ReadonlyArray<string>
  /** Simulations run while shrinking. */
  readonly runs: number
  /** Episodes (a fault and its end) before and after: the size the shrinker reduces. */
  readonly episodes: { readonly from: number; readonly to: number }
  /**
   * Under `startup.restart_ms`, whether the shrunk schedule still fails the same way with
   * restarted processes serving at once: `dropped` (the minimal scenario leaves the delays out),
   * or `needed` (it keeps them: the failure takes a process that is slow to start).
   */
  readonly restartDelays?: "dropped" | "needed"
}

const checkersOf = (result: RunResult): ReadonlySet<string> => new Set(result.violations.map((violation) => violation.checker))

/**
 * One more simplification after the schedule: a scenario with restart delays
 * (`startup.restart_ms`) without them, kept when it still fails the same way. Undefined without
 * delays.
 */
export const withoutRestartDelays = (scenario: Scenario, fails: (candidate: Scenario) => boolean): { readonly scenario: Scenario; readonly restartDelays: "dropped" | "needed" } | undefined => {
  if (scenario.startup?.restartMs === undefined) return undefined
  const { restartMs: _dropped, ...startup } = scenario.startup
  const candidate: Scenario = { ...scenario, startup }
  return fails(candidate) ? { scenario: candidate, restartDelays: "dropped" } : { scenario, restartDelays: "needed" }
}

/**
 * Shrinks a failing run's fault schedule, keeping the seed: a candidate counts as failing when
 * every checker that flagged the original flags it too (so a split brain does not shrink into
 * a mere liveness failure). Undefined when the run does not fail (and, with `search`, no
 * generated schedule fails either).
 */
export const shrink = (scenario: Scenario, seed: number | string, options: Omit<MinimizeOptions, "seed"> & { readonly run?: RunOptions } = {}): Shrunk | undefined => {
  const runOptions = options.run ?? {}
  const results = new Map<ReadonlyArray<Fault>, RunResult>()
  const run = (faults: ReadonlyArray<Fault>): RunResult => {
    const result = results.get(faults) ?? runScenario({ ...scenario, faults }, seed, runOptions)
    results.set(faults, result)
    return result
  }
  let checkers: ReadonlySet<string> | undefined
  if ((options.search ?? 0) === 0) {
    checkers = checkersOf(run(scenario.faults))
    if (checkers.size === 0) return undefined
  }
  let original: ReadonlyArray<Fault> | undefined = checkers === undefined ? undefined : scenario.faults
  const fails = (faults: ReadonlyArray<Fault>): boolean => {
    // A schedule whose topology changes no longer fit together (one added back before it was removed) proves nothing.
    if (faults.some((fault) => fault.kind === "topology") && validate({ ...scenario, faults }).length > 0) return false
    const found = checkersOf(run(faults))
    // While searching, the first failure found fixes which checkers count.
    if (checkers === undefined && found.size > 0) [checkers, original] = [found, faults]
    return checkers !== undefined && [...checkers].every((checker) => found.has(checker))
  }
  const found = minimize(scenario, fails, { ...options, seed })
  if (found === undefined || original === undefined || checkers === undefined) return undefined
  const shrunk: Scenario = { ...scenario, name: `shrunk-${scenario.name}`, faults: found.faults, description: `${scenario.name} with its fault schedule shrunk by \`sim shrink\` (seed ${seed}).` }
  // The run of the scenario without delays, when it is kept, is the minimal one's: run it once.
  const scenarioRuns = new Map<Scenario, RunResult>()
  const runOf = (candidate: Scenario): RunResult => {
    const result = scenarioRuns.get(candidate) ?? runScenario(candidate, seed, runOptions)
    scenarioRuns.set(candidate, result)
    return result
  }
  const failing = checkers
  const delays = withoutRestartDelays(shrunk, (candidate) => [...failing].every((checker) => checkersOf(runOf(candidate)).has(checker)))
  const minimal = delays?.scenario ?? shrunk
  // Run once more as written, which is also what its replay command does.
  const space = spaceOf(scenario)
  return {
    ...(delays === undefined ? {} : { restartDelays: delays.restartDelays }),
    original: { faults: original, result: run(original) },
    minimal: { scenario: minimal, result: runOf(minimal) },
    checkers: [...checkers],
    runs: found.runs,
    episodes: { from: toEpisodes(original, space).length, to: toEpisodes(found.faults, space).length }
  }
}
