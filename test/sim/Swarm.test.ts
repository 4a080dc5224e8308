/**
 * Swarm testing: a seed stands for one whole scenario (drawn the same way every time, valid,
 * and writable as a file that decodes back to it); a short swarm over fixed seeds is green; and
 * the keep-local canary is caught by the swarm within a fixed number of seeds.
 *
 * The fixed seeds below mix every strategy, two to five regions and every graph shape, and
 * pin seeds that once failed. Seeds left out are not hidden failures: every swarm seed is
 * expected to pass (`sim swarm --seeds 120` from seed 1 does), and one that fails is a bug.
 */
import { Either } from "effect"
import { describe, expect, it } from "vitest"
import { replayCommand } from "../../src/cli/sim.js"
import { runScenario, simulate } from "../../src/sim/Run.js"
import * as FaultWindows from "../../src/sim/FaultWindows.js"
import * as Scenario from "../../src/sim/Scenario.js"
import * as Swarm from "../../src/sim/Swarm.js"
import * as Fixtures from "./fixtures/scenarios.js"

/** Green on every strategy: MultiMaster (4, 20, 21), PrimaryReplica (8, 15, 24, 25, 30), ActiveActive (7, 10, 19, 28). */
// Curated seeds, plus seeds that once failed: 5015 (a region wiped node by node: the acknowledged
// check must count what left with the only disk per change, not per write) and 7062 (a slow
// link under a short heartbeat timeout: the agent must still probe a target that looks down),
// 20053 (one batch in flight could not drain a slow ring link) and 20187 (heartbeat deadlines
// under the round trip left a region Unreachable for good, so the role was never handed back)
// and 40064 (a paused peer committed a wiped region's last batch after its bootstrap: the
// orphan tail must bring it back).
// 71317 (a primary region restarted on a disk whose log was still empty started unfenced and
// took writes after the operator had promoted the other region).
// 70238 (a primary disk wiped while the operator had promoted the other region of two took
// writes in the old epoch until its bootstrap brought the newer record).
// 53 (a chord added then removed and a region removed and added back: the region that became
// the parent again had moved its cursor past changes it must now send; one tuple never converged).
// 400800 (a primary disk wiped right after its first writes bootstrapped from a peer they had not
// reached yet: finding no history, it ran no orphan tail, and they never came back).
// 7300635 (store faults on a region of per-node disks: a batch whose changes a node found in a
// commit still in flight was acknowledged as ignored at once; that commit failed, the sibling
// relay had moved on, and one node never got a change).
// 24000192 (a region behind a slow link, marked Unreachable before its first answer, stayed down
// for recover_after round trips after a quiet start), 24000877 (the primary fenced itself for
// regions that had not started yet), 24001466 (writes refused while a healed region recovered,
// a window the judge lacked), 26000758 (a primary-region disk of two regions restarted with its
// bootstrap unfinished counted the other region as paged from before its crash, and took a write
// in its old epoch after the operator had promoted the other region).
// 134000153 (520 ms round trips against a 600 ms heartbeat timeout with no loss: writes refused
// before the first answers, a start-up window the judge opened only for lossy links), 134001289
// (a wiped node paging five entries a page under a 2 KiB bound over lossy links: every lost page
// ended a pass over its source, which then waited for the round's slowest source; not converged
// 30 s after the heal), 140001040 (under DNS discovery a node stopped gracefully 0.7 s into the
// run did not know its sibling yet, drained to nobody and exited with changes only its disk held;
// a stopping node now runs a discovery round before it drains), 141001357 (a region added back
// to the graph while a node drained: the simulator gave no reload to a stopping node, which
// `serve` takes on SIGHUP while it drains, so it drained to the graph of its stop's start),
// 160000252 (a bootstrap's CatchUp pages took the one in-flight slot per peer: its region's
// agent got no batch through for 30 s after the heal; CatchUp no longer takes a slot),
// 154341448 (a node paused while its peer region was removed and added back, and stopped
// meanwhile, took the stop in first when it resumed and drained at once to the old topology,
// before the reload: a stop now applies the reloads sent before it, in `serve` too),
// 140017660 (under DNS discovery a node's one target region was wiped while the node drained and
// took its changes on the new disk; the judge did not count a disk created after a write began
// even where it held the write's changes, and called the drain's promise broken).
const ciSeeds = [
  4, 7, 8, 10, 15, 19, 20, 21, 24, 25, 28, 30, 53, 5015, 7062, 20053, 20187, 40064, 70238, 71317, 300443, 300700, 301614, 302121, 400800, 400847, 401434, 502216,
  602129, 604822, 608946, 701171, 706580, 904189, 1000300, 7300635, 24000192, 24000877, 24001466, 26000758, 134000153, 134001289, 140001040, 141001357,
  143001247, 100, 160000252, 154341448, 140017660
]

/**
 * Runs a seed of a swarm over a failover scenario file that is held to the failover story and
 * expects it told: no violation, eu-central-1 promoted and taking writes. Returns the timings.
 */
const toldStory = (file: string, seed: number) => {
  // The schedules these seeds drew when they were found: with a graceful stop drawn since, the
  // primary of 36000496 drains for 5 s towards a region cut off and is lost too late for the story.
  const scenario = Swarm.swarmFrom(Fixtures.load(file), seed, { gracefulStops: false })
  expect(scenario.checks).toContain("failover")
  const result = runScenario(scenario, seed)
  expect(result.violations).toEqual([])
  expect(result.failover?.promotedRegion).toBe("eu-central-1")
  expect(result.failover?.epochs.find((epoch) => epoch.primary === "eu-central-1")?.acceptedWrites["eu-central-1"]).toBeGreaterThan(0)
  return result.failover
}

/**
 * Runs a seed of a swarm over a failover scenario file whose drawn schedule rules the failover
 * story out: not held to it, and no violation. Returns the scenario and the run.
 */
const untoldStory = (file: string, seed: number) => {
  const scenario = Swarm.swarmFrom(Fixtures.load(file), seed)
  expect(scenario.checks).not.toContain("failover")
  const result = runScenario(scenario, seed)
  expect(result.violations).toEqual([])
  return { scenario, result }
}

describe("swarm", () => {
  it("a seed always draws the same scenario, and different seeds draw different ones", () => {
    for (let seed = 1; seed <= 40; seed++) expect(Swarm.swarmScenario(seed)).toEqual(Swarm.swarmScenario(seed))
    const drawn = Array.from({ length: 40 }, (_, index) => JSON.stringify(Swarm.swarmScenario(index + 1)))
    expect(new Set(drawn).size).toBe(drawn.length)
  })

  it("drawn scenarios are valid and survive the file format", () => {
    for (let seed = 1; seed <= 200; seed++) {
      const scenario = Swarm.swarmScenario(seed)
      expect(Scenario.validate(scenario), `seed ${seed}`).toEqual([])
      expect(Either.getOrThrow(Scenario.decode(Scenario.encode(scenario))), `seed ${seed}`).toEqual(scenario)
    }
  })

  it("under SourcePriority, a schedule that removes a region may drop its rank on one node and put it back: the node refuses while its store holds the region's changes, its supervisor starts it again each second, and the run passes (seed 30001337)", () => {
    const { scenario, result } = Swarm.runSeed(30001337, undefined)
    const configures = scenario.faults.flatMap((fault) => (fault.kind === "configure" ? [fault] : []))
    expect(configures.map((fault) => [fault.target, fault.regionPriorities])).toEqual([
      ["us-west-1-node1", ["us-west-1"]],
      ["us-west-1-node1", ["eu-central-1", "us-west-1"]]
    ])
    expect(Scenario.validate(scenario)).toEqual([])
    expect(result.violations).toEqual([])
    const refusals = result.nodes["us-west-1-node1"]!.exits.filter((exit) => exit.includes("expected a rank for every region whose changes this node's store holds, and 'eu-central-1' has none"))
    expect(refusals.length).toBeGreaterThanOrEqual(1)
    // Refused only before the rank came back.
    for (const exit of refusals) expect(Number(/at (\d+) ms/.exec(exit)![1])).toBeLessThan(configures[1]!.atMs)
  })

  it("a drawn window of one batch of 5 changes over a 260 ms link drains its backlog slower than clients wrote it: the budget allows that drain, and the run converges within it (seed 81000863)", () => {
    const { scenario, result } = Swarm.runSeed(81000863, undefined)
    expect(scenario.replication.agent).toMatchObject({ batchSize: 5, batchesInFlightMax: 1, catchUpBatchSize: 5 })
    // The documented rule by hand: 1.25 x 17 writes/s x 2 regions x 7.9 s x 4 operations = 1,343
    // changes, 5 a batch, one batch at a time: 269 rounds, and one more for the second region's
    // hop, of (2 x 260 + 50 + 2 x 0.01 x (1,500 + 900)) ms each.
    expect(Swarm.drainAllowanceMs(scenario)).toBe(Math.ceil(270 * (2 * 260 + 50 + 2 * 0.01 * (1_500 + 900))))
    expect(result.violations).toEqual([])
    // It needed more than the 30 s every seed gets: that budget failed it before December 5, 2026.
    expect(result.convergenceMs).toBeGreaterThan(30_000)
  })

  it("seed 212748917: a 600 ms lease over round trips of 300-450 ms with every peer slow is renewed by answers every round, so the primary refuses no write outside the fault windows", () => {
    const scenario = Swarm.scenarioFor(212748917, undefined)
    expect(scenario.replication.heartbeat).toMatchObject({ intervalMs: 200, timeoutMs: 600 })
    const firstFaultMs = Math.min(...scenario.faults.map((fault) => fault.atMs))
    expect(firstFaultMs).toBe(4_990)
    const { result, history } = simulate(scenario, 212748917)
    // With one side request per slow peer at a time, the lease lapsed now and then with no fault:
    // writes 123, 147, 151, 152, 157 and 159 were refused, and availability outside fault windows
    // came out at 0.6 (`progress`).
    // Bring-up (the start-up spread, DNS discovery) is a fault window of its own, ending at 2.73 s.
    const windows = FaultWindows.windows(scenario, result.healedAtMs)
    const lapsed = history.writes.filter(
      (write) => (write.reason ?? "").includes("write lease lapsed") && !FaultWindows.overlaps(windows, write.startedAtMs, write.endedAtMs ?? write.startedAtMs, 0)
    )
    expect(lapsed.map((write) => write.id)).toEqual([])
    expect(result.violations).toEqual([])
    expect(result.writes.acknowledged).toBeGreaterThan(90)
  })

  it("seed 62000390: a node that knew no sibling (DNS out since before its sibling started) is stopped during the outage; its drain waits for a discovery round that works instead of reporting at once that every target has its log", () => {
    const scenario = Swarm.scenarioFor(62000390, undefined)
    expect(scenario.faults.filter((fault) => fault.kind === "dns_outage").map((fault) => fault.atMs)).toEqual([940, 4_480])
    const { result } = simulate(scenario, 62000390)
    // The old drain: complete at 4,690 ms, the moment it began, with 37 acknowledged changes on no other disk.
    expect(result.violations).toEqual([])
    const drain = result.drains.find((each) => each.node === "eu-central-1-node2")!
    expect(drain).toMatchObject({ askedAtMs: 4_690, complete: true, logEnd: 46, targetsUnknown: false })
    // DNS answers again at 6,050 ms (the heal): the drain completes only after that.
    expect(drain.drainedAtMs).toBeGreaterThan(6_050)
  })

  it("the draws cover every strategy, region count, graph shape, clock mode and fault kind", () => {
    const scenarios = Array.from({ length: 200 }, (_, index) => Swarm.swarmScenario(index + 1))
    const seen = (values: ReadonlyArray<unknown>) => new Set(values.map((value) => JSON.stringify(value)))
    expect(seen(scenarios.map((scenario) => scenario.topology.strategy)).size).toBe(3)
    expect(seen(scenarios.map((scenario) => scenario.topology.regions.length))).toEqual(seen([2, 3, 4, 5]))
    expect(seen(scenarios.map((scenario) => scenario.replication.conflictResolution)).size).toBe(3)
    expect(seen(scenarios.map((scenario) => scenario.replication.clock)).size).toBe(2)
    expect(scenarios.some((scenario) => scenario.topology.targets === undefined)).toBe(true)
    expect(scenarios.some((scenario) => scenario.topology.targets !== undefined)).toBe(true)
    expect(scenarios.some((scenario) => scenario.topology.vaults.some((vault) => vault.allowedRegions !== undefined))).toBe(true)
    const kinds = new Set(scenarios.flatMap((scenario) => scenario.faults.map((fault) => fault.kind)))
    expect([...kinds].sort()).toEqual(["bridge", "clock_jump", "configure", "crash", "dns_outage", "heal", "isolate", "one_way", "pause", "promote", "restart", "resume", "split", "stall", "store", "topology", "wipe"])
    // A quarter of seeds find their nodes through DNS, and some of those draw topology changes too (reloads under discovery).
    const discovering = scenarios.filter((scenario) => scenario.discovery !== undefined)
    expect(discovering.length).toBeGreaterThan(30)
    expect(discovering.length).toBeLessThan(70)
    expect(discovering.some((scenario) => scenario.faults.some((fault) => fault.kind === "topology"))).toBe(true)
    expect(scenarios.filter((scenario) => scenario.discovery === undefined).every((scenario) => scenario.faults.every((fault) => fault.kind !== "dns_outage"))).toBe(true)
    expect(seen(scenarios.map((scenario) => scenario.store))).toEqual(seen(["per_node", "shared"]))
    expect(scenarios.some((scenario) => scenario.workload.deadlineMs !== undefined)).toBe(true)
    // Nodes start at one instant on some seeds, spread over up to 3 s on the others, and on some
    // the spread is longer than the heartbeat timeout (a node gives up on a peer not started yet).
    const spreads = scenarios.map((scenario) => scenario.startup?.spreadMs ?? 0)
    expect(spreads.some((spread) => spread === 0)).toBe(true)
    expect(Math.max(...spreads)).toBeGreaterThan(2_000)
    expect(scenarios.some((scenario) => (scenario.startup?.spreadMs ?? 0) > scenario.replication.heartbeat.timeoutMs)).toBe(true)
    // Restarted processes take up to 0.3-6 s to serve on about three seeds in five, at once on the rest.
    const restarts = scenarios.map((scenario) => scenario.startup?.restartMs)
    const delayed = restarts.filter((range) => range !== undefined)
    expect(delayed.length).toBeGreaterThan(90)
    expect(delayed.length).toBeLessThan(150)
    expect(delayed.every((range) => range.min >= 0 && range.min <= range.max && range.max >= 300 && range.max <= 6_000)).toBe(true)
    // On some, longer than the heartbeat timeout: peers count a restarted node down before it serves.
    expect(scenarios.some((scenario) => (scenario.startup?.restartMs?.max ?? 0) > scenario.replication.heartbeat.timeoutMs)).toBe(true)
    // Not drawn when a test pins a seed's older schedule; a base file's own range stands.
    const file = Fixtures.load("scenarios/primary-failover.yaml")
    expect(Array.from({ length: 10 }, (_, index) => Swarm.swarmFrom(file, index + 1, { restartDelays: false }).startup?.restartMs)).toEqual(Array(10).fill(undefined))
    const given = { ...file, startup: { spreadMs: 0, restartMs: { min: 10, max: 20 } } }
    expect(Array.from({ length: 10 }, (_, index) => Swarm.swarmFrom(given, index + 1).startup?.restartMs)).toEqual(Array(10).fill({ min: 10, max: 20 }))
  })

  it("over a scenario file, only clocks, faults and the start-up spread are drawn, and the file's failover story and availability floor only where they apply", () => {
    const base = Fixtures.load("scenarios/primary-failover.yaml")
    const drawn = Swarm.swarmFrom(base, 3)
    const keep = ({ name: _name, description: _description, clocks: _clocks, faults: _faults, budgetMs: _budget, checks: _checks, checkSettings: _settings, startup: _startup, ...rest }: Scenario.Scenario) => rest
    expect(keep(drawn)).toEqual(keep(base))
    expect(drawn.checks.filter((check) => check !== "failover")).toEqual(base.checks.filter((check) => check !== "failover"))
    // The file's floor (0.8 for its own schedule) gives way to the swarm's, for drawn ones.
    expect(drawn.checkSettings?.minAvailability).toBe(0.8)
    expect(Swarm.swarmScenario(3).checkSettings?.minAvailability).toBe(0.8)
    // Some drawn schedules take the primary down for long enough, some never do.
    const drawnChecks = Array.from({ length: 30 }, (_, index) => Swarm.swarmFrom(base, index + 1).checks.includes("failover"))
    expect(new Set(drawnChecks)).toEqual(new Set([true, false]))
    expect(drawn.name).toBe("primary-failover-swarm")
    expect(drawn.faults).not.toEqual(base.faults)
    expect(Swarm.swarmFrom(base, 3)).toEqual(drawn)
  })

  it(`a short swarm over seeds ${ciSeeds.join(", ")} is green`, () => {
    const tally = new Swarm.Tally()
    for (const seed of ciSeeds) {
      const outcome = Swarm.runSeed(seed, undefined, { wallClock: Fixtures.wallClock })
      tally.add(outcome)
      const replay = `replay: ${replayCommand(`reports/swarm-${seed}.yaml`, String(seed), undefined)} (write it with: sim swarm --replay ${seed})`
      expect(outcome.result.violations, replay).toEqual([])
    }
    const summary = tally.summary()
    expect(summary).toMatchObject({ seeds: ciSeeds.length, passed: ciSeeds.length, failed: 0, failuresByChecker: {} })
    expect(summary.events).toBeGreaterThan(0)
  })

  it("seed 61400011 over primary-failover.yaml: the new cluster's primary crashes before ap-southeast-1's disk has paged it; the promoted eu-central-1, held back by that recovering disk, advances to an epoch counted from the wall clock and takes writes", () => {
    const scenario = Swarm.swarmFrom(Fixtures.load("scenarios/primary-failover.yaml"), 61400011)
    expect(scenario.faults.slice(0, 3).map((fault) => [fault.atMs, fault.kind])).toEqual([
      [2_680, "crash"],
      [3_240, "store"],
      [3_800, "promote"]
    ])
    const { result, epochs } = simulate(scenario, 61400011)
    // Before, eu-central-1 stayed in epoch 1, which ap-southeast-1 never vouched for while
    // us-west-1 was down, and no region took a write until us-west-1 was back at 21.5 s.
    expect(result.violations).toEqual([])
    const advanced = epochs.flatMap((node) => node.history.filter((change) => change.cause === "advanced").map((change) => ({ ...change, regionId: node.regionId })))
    expect(advanced.map((change) => change.regionId)).toEqual(["eu-central-1"])
    expect(advanced[0]!.epoch).toBeGreaterThan(1_700_000_000)
    // The detection delay (2 s) after the heal of the split that cut ap-southeast-1 off at most.
    expect(advanced[0]!.atMs).toBeLessThan(5_580 + 2_000 + 500)
    const accepted = result.failover?.epochs.find((epoch) => epoch.epoch === advanced[0]!.epoch)?.acceptedWrites["eu-central-1"] ?? 0
    expect(accepted).toBeGreaterThan(10)
  })

  it("seed 147100067 over two-region-handback-pause.yaml: us-west-1's wiped disk and eu-central-1's wiped node page each other while the one disk holding epoch 1 is down; us-west-1 waits for that node instead of writing in epoch 0", () => {
    const scenario = Swarm.swarmFrom(Fixtures.load("scenarios/two-region-handback-pause.yaml"), 147100067)
    expect(scenario.faults.filter((fault) => fault.kind === "wipe" || fault.kind === "promote").map((fault) => [fault.atMs, fault.kind])).toEqual([
      [4_030, "wipe"],
      [6_390, "promote"],
      [10_180, "wipe"],
      [10_220, "wipe"]
    ])
    const { result, epochs, history } = simulate(scenario, 147100067)
    // Before, us-west-1 took 27 writes in epoch 0 from 10.36 s, after eu-central-1's epoch 1.
    expect(result.violations).toEqual([])
    const inEpochZero = history.writes.filter((write) => write.outcome === "acknowledged" && write.targetRegion === "us-west-1" && write.epoch === 0)
    expect(inEpochZero.length).toBeGreaterThan(0)
    expect(Math.max(...inEpochZero.map((write) => write.endedAtMs ?? Infinity))).toBeLessThan(6_390)
    // It learned of epoch 1 once eu-central-1-node2 was back (11.21 s), and took the role back after it.
    const us = epochs.find((node) => node.nodeId === "us-west-1-node1")!.history
    expect(us.some((change) => change.epoch === 1 && change.cause === "adopted" && change.atMs > 11_210)).toBe(true)
    expect(us.some((change) => change.epoch === 2 && change.primary === "us-west-1")).toBe(true)
  })

  it("over primary-failover.yaml, seed 20 fails over and writes elsewhere, and seed 91 (a loss too late in the workload) is not held to the story", () => {
    const base = Fixtures.load("scenarios/primary-failover.yaml")
    // Seed 20: a fresh primary was fenced because a healed peer stayed Unreachable while its
    // long side heartbeat (sent into the partition) waited out a 10 s deadline.
    const twenty = Swarm.swarmFrom(base, 20)
    expect(twenty.checks).toContain("failover")
    expect(runScenario(twenty, 20).violations).toEqual([])
    const ninetyOne = Swarm.swarmFrom(base, 91)
    expect(ninetyOne.checks).not.toContain("failover")
    expect(runScenario(ninetyOne, 91).violations).toEqual([])
  })

  it("over chaos-primary-pause.yaml, seed 36000496: a region cut off just before the primary crashed waits for a majority's answers after the heal, is promoted then and takes writes", () => {
    // eu-central-1 was cut off at 7.18 s, the primary crashed at 7.87 s, the cut healed at
    // 10.49 s. On a view that still held ap-southeast-1 up, eu-central-1 promoted itself at
    // 9.08 s, fenced itself at 9.88 s and took no write before the workload ended at 12.3 s.
    const failover = toldStory("scenarios/chaos-primary-pause.yaml", 36000496)
    expect(failover?.promotedAtMs).toBeGreaterThan(10_490)
  })

  it("over primary-failover.yaml, seed 47000085: a region paused across the primary's crash does not count the primary's queued answer as heard when it resumes, and is promoted a lease later", () => {
    // eu-central-1 was paused at 5.64 s, the primary crashed at 7.19 s, eu-central-1 resumed at
    // 8.78 s and crashed again at 14.6 s. It took in the primary's answer (sent before the crash)
    // as fresh at 8.78 s, with the pause as its round trip, so the primary went stale only at
    // 15.3 s: promoted at 21.54 s, after the primary had restarted, and no write taken elsewhere.
    const failover = toldStory("scenarios/primary-failover.yaml", 47000085)
    expect(failover?.promotedAtMs).toBeLessThan(14_600)
  })

  it("seed 44001111: the second node of a primary region on a shared store, started 1 s after the first, takes writes with it instead of refusing them for confirm_after_ms", () => {
    const scenario = Swarm.swarmScenario(44001111)
    expect(scenario.store).toBe("shared")
    const result = runScenario(scenario, 44001111)
    expect(result.violations).toEqual([])
  })

  it("seed 51000450 over two-region-handback-pause.yaml: the promoted region's disks are all wiped while the old primary is down; epoch 1 is forgotten with them, and the old primary serving on in epoch 0 is no split brain", () => {
    const scenario = Swarm.swarmFrom(Fixtures.load("scenarios/two-region-handback-pause.yaml"), 51000450)
    const simulation = simulate(scenario, 51000450)
    expect(simulation.result.violations).toEqual([])
    expect(simulation.result.forgottenEpochs).toEqual([{ epoch: 1, atMs: 4_540 }])
    expect(simulation.history.writes.filter((write) => write.outcome === "acknowledged" && write.epoch === 0 && (write.endedAtMs ?? 0) > 4_540).length).toBeGreaterThan(10)
  })

  it("seed 198000000 over graceful-stop-late-ack.yaml: a rebuilt disk whose source answers just after the CatchUp deadline (300 ms links, a new connection each try) pages it with a growing deadline and converges", () => {
    const scenario = Swarm.swarmFrom(Fixtures.load("scenarios/graceful-stop-late-ack.yaml"), 198000000)
    const simulation = simulate(scenario, 198000000)
    // Before December 8, 2026 every CatchUp timed out at 1 s, by 0.04-200 ms, to the end of the budget.
    expect(simulation.result.violations).toEqual([])
    expect(simulation.result.converged).toBe(true)
  })

  // Found on seed 51000581 (write 69); the bootstrap's heartbeat cue (December 3, 2026) moved
  // that seed's timing so its write became durable in time, and seed 51000939 has the case now.
  it("seed 51000939 over two-region-handback-pause.yaml: a write whose commit on a slow store ends after its node adopted the newer epoch is not acknowledged in the old one", () => {
    // The schedule the seed drew when it was found, before restart delays were drawn.
    const scenario = Swarm.swarmFrom(Fixtures.load("scenarios/two-region-handback-pause.yaml"), 51000939, { restartDelays: false })
    const simulation = simulate(scenario, 51000939)
    expect(simulation.result.violations).toEqual([])
    // Checked at 4.13 s in epoch 1, durable at 4.35 s, after the hand-back's epoch 2 began at 4.19 s.
    const late = simulation.history.writes.find((write) => write.id === 88)!
    expect(late.targetNode).toBe("eu-central-1-node1")
    expect(late.outcome).toBe("failed")
    expect(late.reason).toMatch(/committed in epoch 1, but by the time the commit was durable this node had moved to epoch 2.*outcome is unknown/)
    expect(simulation.result.failover?.epochs.find((epoch) => epoch.epoch === 2)?.startedAtMs).toBeLessThan(late.endedAtMs!)
  })

  it("seed 52000337 over chaos-primary-pause.yaml: a one-way cut between the two other regions holds the promotion back until it heals, so a primary paused past it only 0.76 s is not held to the failover story", () => {
    const { scenario, result } = untoldStory("scenarios/chaos-primary-pause.yaml", 52000337)
    expect(scenario.faults.find((fault) => fault.kind === "one_way")).toMatchObject({ atMs: 5_520, from: "ap-southeast-1", to: "eu-central-1" })
    // Nobody was promoted: eu-central-1 and ap-southeast-1 could not hear each other until 8.59 s.
    expect(result.failover?.promotedAtMs).toBeUndefined()
  })

  it("seed 1500005 over chaos-primary-pause.yaml: a primary whose only node is wiped may serve again after restart_ms.min, before anyone could be promoted, so the story is not expected", () => {
    const { scenario, result } = untoldStory("scenarios/chaos-primary-pause.yaml", 1500005)
    expect(scenario.startup?.restartMs).toEqual({ min: 2_250, max: 4_900 })
    expect(scenario.faults.find((fault) => fault.kind === "wipe")).toMatchObject({ atMs: 5_800, target: "us-west-1-node1" })
    // It served 2.86 s after the wipe, under the heartbeat timeout and the detection delay (3.5 s).
    expect(result.nodes["us-west-1-node1"]?.restarts).toEqual([{ incarnation: 2, atMs: 5_800, startingMs: 2_863 }])
    expect(result.failover?.promotedAtMs).toBeUndefined()
  })

  it("seed 910056 over primary-failover.yaml: the region next in line crashes about when its detection delay ends, so the story is not expected", () => {
    const { scenario, result } = untoldStory("scenarios/primary-failover.yaml", 910056)
    expect(scenario.faults.find((fault) => fault.kind === "crash")).toMatchObject({ atMs: 8_860, target: "eu-central-1-node1" })
    // Until December 5, 2026 eu-central-1 was promoted at 8.65 s, just before its crash, and
    // restarted fenced, waiting confirm_after_ms past the workload's end. Since, the primary's
    // silence is seen later (the nodes' disks were new at start, so the first lease waited for
    // their bootstraps: `Primacy.State.recovering`; since December 7 new disks also count their
    // start as a grant to every region) and eu-central-1 is promoted after its restart. Which one
    // rides on a few hundred ms of the start's timing; either way the story is not expected, and
    // eu-central-1 is never promoted while it is down.
    const promoted = result.failover?.epochs.find((epoch) => epoch.primary === "eu-central-1")
    expect(promoted!.startedAtMs < 8_860 || promoted!.startedAtMs > 11_600).toBe(true)
  })

  it("seed 58000083 over primary-failover.yaml: a primary region that started after another was promoted, and paused before it could have the role back, is not held to the failover story", () => {
    const { scenario, result } = untoldStory("scenarios/primary-failover.yaml", 58000083)
    expect(scenario.startup?.atMs).toEqual({ "us-west-1": 8_450 })
    // eu-central-1 was promoted before us-west-1 ever ran, and kept the role through its pause. Its
    // disk had not paged us-west-1 then, so its epoch counts from the wall clock (since December 5, 2026).
    const promoted = result.failover?.epochs.find((epoch) => epoch.primary === "eu-central-1")
    expect(promoted?.startedAtMs).toBeLessThan(8_450)
    expect(promoted?.epoch).toBeGreaterThan(1_700_000_000)
  })

  it("seed 61000269 over primary-late-start-crash.yaml: a primary unheard since an earlier crash and a cut of its answers may be replaced before another region's isolation is noticed, so the story is not expected", () => {
    const { scenario, result } = untoldStory("scenarios/primary-late-start-crash.yaml", 61000269)
    expect(scenario.faults.find((fault) => fault.kind === "one_way")).toMatchObject({ atMs: 4_610, from: "us-west-1", to: "eu-central-1" })
    // Promoted 3.16 s after the second crash, less than the heartbeat timeout and detect_after_ms.
    expect(result.failover?.promotedAtMs).toBeLessThan(7_960 + 3_000 + 2_000)
  })

  it("seed 65000291 over chaos-primary-pause.yaml: a wipe of the region next in line just before its promotion holds the promotion back as a crash and restart would, so the story is not expected", () => {
    const { scenario, result } = untoldStory("scenarios/chaos-primary-pause.yaml", 65000291)
    expect(scenario.faults.filter((fault) => fault.kind === "crash" || fault.kind === "wipe")).toMatchObject([
      { atMs: 7_460, kind: "crash", target: "us-west-1-node1" },
      { atMs: 10_920, kind: "wipe", target: "eu-central-1" }
    ])
    // Nobody was promoted: the wiped eu-central-1 saw the primary gone only a heartbeat timeout after its restart.
    expect(result.failover?.epochs.map((epoch) => epoch.epoch)).toEqual([0])
  })

  it("seed 92000145 over chaos-primary-pause.yaml: the region next in line stopped gracefully while the primary is down counts as down from its stop, not from its latest exit, so the story is not expected", () => {
    const { scenario, result } = untoldStory("scenarios/chaos-primary-pause.yaml", 92000145)
    expect(scenario.faults.filter((fault) => fault.kind === "crash" || fault.kind === "restart").slice(0, 4)).toMatchObject([
      { atMs: 1_210, kind: "crash", target: "us-west-1" },
      { atMs: 1_890, kind: "crash", target: "eu-central-1", graceful: true },
      { atMs: 4_090, kind: "restart", target: "eu-central-1" },
      { atMs: 6_050, kind: "restart", target: "us-west-1" }
    ])
    // eu-central-1 had nothing to drain and exited at once; its restart served at 7.67 s, and the
    // primary served again at 10.5 s, before anyone could be promoted.
    expect(result.drains).toContainEqual(expect.objectContaining({ node: "eu-central-1-node1", askedAtMs: 1_890, drainedAtMs: 1_890 }))
    expect(result.failover?.epochs.map((epoch) => epoch.epoch)).toEqual([0])
  })

  it("seeds 93001148 and 93001319 over chaos-primary-pause.yaml: a fault naming the primary's region ends one naming its node, and the other way round, so short losses are not held to the story", () => {
    // The region paused at 3.7 s, its node again at 5 s, and the region resumed at 5.84 s: both pauses ended then.
    const paused = untoldStory("scenarios/chaos-primary-pause.yaml", 93001148)
    expect(paused.scenario.faults.filter((fault) => fault.kind === "pause" || fault.kind === "resume")).toMatchObject([
      { atMs: 3_700, kind: "pause", target: "us-west-1" },
      { atMs: 5_000, kind: "pause", target: "us-west-1-node1" },
      { atMs: 5_840, kind: "resume", target: "us-west-1" },
      { atMs: 9_490, kind: "resume", target: "us-west-1-node1" }
    ])
    expect(paused.result.failover?.epochs.map((epoch) => epoch.epoch)).toEqual([0])
    // The node crashed at 3.75 s and the region was wiped at 4.24 s, which started it again.
    const wiped = untoldStory("scenarios/chaos-primary-pause.yaml", 93001319)
    expect(wiped.scenario.faults.filter((fault) => fault.kind === "crash" || fault.kind === "wipe").slice(0, 2)).toMatchObject([
      { atMs: 3_750, kind: "crash", target: "us-west-1-node1" },
      { atMs: 4_240, kind: "wipe", target: "us-west-1" }
    ])
    expect(wiped.result.failover?.epochs.map((epoch) => epoch.epoch)).toEqual([0])
  })

  it("two nodes of the region next in line, each crashed by a fault of its own, take it down together: the story is not expected while neither is back", () => {
    const base = Fixtures.load("scenarios/chaos-primary-pause.yaml")
    const scenario: Scenario.Scenario = {
      ...base,
      topology: { ...base.topology, regions: base.topology.regions.map((region) => (region.id === "eu-central-1" ? { ...region, nodes: ["eu-central-1-node1", "eu-central-1-node2"] } : region)) }
    }
    // The file's own schedule: us-west-1 paused from 2 to 10 s, the story expected.
    expect(Swarm.checksFor(scenario, scenario.faults, 12_300)).toContain("failover")
    // eu-central-1's nodes down from 3 s and 2.5 s until 7 and 7.5 s: nobody can be promoted before 10 s.
    const crashes: ReadonlyArray<Scenario.Fault> = [
      { atMs: 2_000, kind: "pause", target: "us-west-1" },
      { atMs: 2_500, kind: "crash", target: "eu-central-1-node1" },
      { atMs: 3_000, kind: "crash", target: "eu-central-1-node2" },
      { atMs: 7_000, kind: "restart", target: "eu-central-1-node1" },
      { atMs: 7_500, kind: "restart", target: "eu-central-1-node2" },
      { atMs: 10_000, kind: "resume", target: "us-west-1" }
    ]
    expect(Swarm.checksFor(scenario, crashes, 12_300)).not.toContain("failover")
  })

  it("seed 94001309 over chaos-primary-pause.yaml: a primary paused shortly before it is cut off answered the queued heartbeats late, and the others count it up for two longer deadlines, so the story is not expected", () => {
    const { scenario, result } = untoldStory("scenarios/chaos-primary-pause.yaml", 94001309)
    expect(scenario.faults.filter((fault) => fault.kind === "pause" || fault.kind === "resume" || fault.kind === "isolate")).toMatchObject([
      { atMs: 1_000, kind: "pause", target: "us-west-1-node1" },
      { atMs: 4_130, kind: "resume", target: "us-west-1-node1" },
      { atMs: 4_460, kind: "isolate", region: "us-west-1" }
    ])
    expect(result.failover?.epochs.map((epoch) => epoch.epoch)).toEqual([0])
    // The rule on the file's own settings: an isolation from 4.46 to 9.25 s is long enough for the
    // story on its own, and not 330 ms after a pause.
    const base = Fixtures.load("scenarios/chaos-primary-pause.yaml")
    const isolated: ReadonlyArray<Scenario.Fault> = [
      { atMs: 4_460, kind: "isolate", region: "us-west-1" },
      { atMs: 9_250, kind: "heal" }
    ]
    expect(Swarm.checksFor(base, isolated, 12_300)).toContain("failover")
    const pausedFirst: ReadonlyArray<Scenario.Fault> = [{ atMs: 3_000, kind: "pause", target: "us-west-1" }, { atMs: 4_130, kind: "resume", target: "us-west-1" }, ...isolated]
    expect(Swarm.checksFor(base, pausedFirst, 12_300)).not.toContain("failover")
  })

  it("seeds 99000042 over three-region-wipe-primary-down.yaml and 20 over chaos-primary-pause.yaml: a region whose disk could not page the primary before it was lost vouches for no epoch dealt before it started, so the promoted region advances first and the story is not expected", () => {
    const wallClockEpoch = 1_000_000_000
    const waiting = untoldStory("scenarios/three-region-wipe-primary-down.yaml", 99000042)
    expect(waiting.scenario.startup?.atMs).toMatchObject({ "us-west-1": 3_850 })
    expect(waiting.scenario.faults.filter((fault) => fault.kind === "one_way" || (fault.kind === "store" && fault.failRate > 0) || (fault.kind === "crash" && fault.target === "us-west-1"))).toMatchObject([
      { atMs: 2_640, kind: "one_way", from: "us-west-1", to: "ap-southeast-1" },
      { atMs: 6_010, kind: "store", region: "ap-southeast-1" },
      { atMs: 7_750, kind: "crash", target: "us-west-1" }
    ])
    // eu-central-1 was promoted, then moved to an epoch counted from the wall clock, which took
    // no write before the workload ended at 16.5 s.
    const advanced = waiting.result.failover?.epochs.find((epoch) => epoch.primary === "eu-central-1" && epoch.epoch > wallClockEpoch)
    expect(advanced?.startedAtMs).toBeGreaterThan(15_000)
    expect(advanced?.acceptedWrites).toEqual({})
    // The same schedule without the cut of the primary's answers and ap-southeast-1's failing
    // store: ap-southeast-1 pages us-west-1 after its late start, and eu-central-1 takes writes
    // in the epoch it was promoted to, as the judge then expects.
    const paged = { ...waiting.scenario, checks: [...waiting.scenario.checks, "failover" as const], faults: waiting.scenario.faults.filter((fault) => fault.kind !== "one_way" && fault.kind !== "store") }
    expect(Swarm.checksFor(paged, paged.faults, 18_180)).toContain("failover")
    const told = runScenario(paged, 99000042)
    expect(told.violations).toEqual([])
    expect(told.failover?.epochs.find((epoch) => epoch.primary === "eu-central-1")).toMatchObject({ epoch: 1, acceptedWrites: { "eu-central-1": 19 } })
    // ap-southeast-1 isolated from 2.88 to 7.07 s, 80 ms after the primary's late start at 2.8 s.
    const isolated = untoldStory("scenarios/chaos-primary-pause.yaml", 20)
    expect(isolated.scenario.faults.find((fault) => fault.kind === "isolate")).toMatchObject({ atMs: 2_880, region: "ap-southeast-1" })
    expect(isolated.result.failover?.epochs.find((epoch) => epoch.primary === "eu-central-1" && epoch.epoch > wallClockEpoch)?.acceptedWrites).toEqual({})
  })

  it("seed 96000484 over chaos-primary-pause.yaml: a region paused while its restarted process still starts stays down until it resumes, so the story that needed it is not expected", () => {
    const { scenario, result } = untoldStory("scenarios/chaos-primary-pause.yaml", 96000484)
    expect(scenario.faults.filter((fault) => "target" in fault && fault.target.startsWith("ap-southeast-1")).slice(0, 3)).toMatchObject([
      { atMs: 1_060, kind: "crash" },
      { atMs: 4_880, kind: "restart" },
      { atMs: 5_100, kind: "pause" }
    ])
    expect(result.failover?.epochs.map((epoch) => epoch.epoch)).toEqual([0])
  })

  it("seed 84000030 over chaos-primary-pause.yaml with discovery: a DNS outage before every node could meet the others holds the promotion back, so a primary paused until 7.03 s is not held to the failover story", () => {
    const base = { ...Fixtures.load("scenarios/chaos-primary-pause.yaml"), discovery: { intervalMs: 1_000, firstRoundWaitMs: 15_000 } }
    const scenario = Swarm.swarmFrom(base, 84000030)
    expect(scenario.startup?.spreadMs).toBe(1_200)
    expect(scenario.faults.filter((fault) => fault.kind !== "clock_jump")).toMatchObject([
      { atMs: 1_910, kind: "dns_outage" },
      { atMs: 2_260, kind: "pause", target: "us-west-1" },
      { atMs: 3_710, kind: "heal" },
      { atMs: 7_030, kind: "resume", target: "us-west-1" }
    ])
    expect(scenario.checks).not.toContain("failover")
    const told = (from: Scenario.Scenario) => runScenario({ ...from, checks: [...from.checks, "failover"] }, 84000030)
    // The nodes met only after the heal, and the pause ended before anyone was promoted...
    expect(told(scenario).failover?.promotedAtMs).toBeUndefined()
    expect(runScenario(scenario, 84000030).violations).toEqual([])
    // ...where the same schedule without the outage has eu-central-1 promoted at 6.14 s (with the
    // nodes declared, as without discovery, at the same moment since December 5, 2026: 5.84 s before).
    const { discovery: _discovery, ...declared } = scenario
    expect(told({ ...scenario, faults: scenario.faults.filter((fault) => fault.kind !== "dns_outage") }).failover?.promotedAtMs).toBeCloseTo(6_139.1, 0)
    expect(told({ ...declared, faults: scenario.faults.filter((fault) => fault.kind !== "dns_outage") }).failover?.promotedAtMs).toBeCloseTo(6_139.1, 0)
  })

  it("seed 85000190 over primary-late-start-crash.yaml with discovery: a primary that starts during a DNS outage meets the others after it, so the hand-back's wait for leases is a window, not lost availability", () => {
    const base = { ...Fixtures.load("scenarios/primary-late-start-crash.yaml"), discovery: { intervalMs: 1_000, firstRoundWaitMs: 15_000 } }
    const scenario = Swarm.swarmFrom(base, 85000190)
    expect(scenario.faults.slice(0, 2)).toMatchObject([{ atMs: 3_100, kind: "dns_outage" }, { atMs: 5_050, kind: "heal" }])
    const result = runScenario(scenario, 85000190)
    expect(result.violations).toEqual([])
    // The role came back to us-west-1 at 10.9 s, and it waited out the leases of the acting primary until about 13.9 s.
    expect(result.failover?.epochs.at(-1)).toMatchObject({ primary: "us-west-1" })
    expect(result.failover?.epochs.at(-1)?.startedAtMs).toBeCloseTo(10_899.9, 0)
    const windows = FaultWindows.windows(scenario, 26_660)
    expect(FaultWindows.overlaps(windows, 11_249, 11_249, 0) && FaultWindows.overlaps(windows, 13_800, 13_800, 0)).toBe(true)
  })

  it("seed 85000125 over chaos-primary-pause.yaml with discovery: a region paused through a DNS outage at bring-up does not count the primary region, no node of which it knew yet, as down, and is promoted only after the primary is lost", () => {
    const base = { ...Fixtures.load("scenarios/chaos-primary-pause.yaml"), discovery: { intervalMs: 1_000, firstRoundWaitMs: 15_000 } }
    const scenario = Swarm.swarmFrom(base, 85000125)
    expect(scenario.checks).toContain("failover")
    expect(scenario.checks).toContain("epochs")
    const result = runScenario(scenario, 85000125)
    expect(result.violations).toEqual([])
    // eu-central-1 was paused from 1.16 to 5.14 s, through a DNS outage from 0.75 to 3.54 s, and
    // knew no node of us-west-1 when it resumed. It counted us-west-1 down from its first check
    // and took the role at 5.14 s, before the primary was paused at 6.56 s; a region whose nodes
    // are not known yet is now awaited for a heartbeat timeout (`TopologyManager.awaited`).
    expect(result.failover?.lossAtMs).toBe(6_560)
    // Since December 6, 2026 us-west-1 advances at bring-up (1.45 s): ap-southeast-1's new disk could
    // not page the paused eu-central-1, so it vouched for no epoch below its floor, and us-west-1
    // took writes in an epoch counted from the wall clock rather than none until eu-central-1 resumed.
    // (Epochs counted from the wall clock are in milliseconds since December 7, 2026.)
    expect(result.failover?.epochs[1]).toMatchObject({ epoch: 1_700_000_002_245, primary: "us-west-1" })
    expect(result.failover?.epochs[1]?.startedAtMs).toBeLessThan(2_000)
    const promoted = result.failover?.epochs.find((epoch) => epoch.primary === "eu-central-1")
    // At 10.14 s (10.44 s before new disks counted their start as grants on December 7, 10.04 s
    // before the advance, 10.34 s before the rule for new disks of December 5).
    expect(promoted?.startedAtMs).toBeCloseTo(10_140.7, 0)
    expect(promoted?.startedAtMs).toBeGreaterThan(6_560)
  })

  it("seed 93100038 over two-region-handback-pause.yaml with discovery: a hand-back's takeover waits for a node of the other region that asked for heartbeats though the taker's topology lacked it (a replaced pod back before the taker's next round)", () => {
    const base = { ...Fixtures.load("scenarios/two-region-handback-pause.yaml"), discovery: { intervalMs: 1_000, firstRoundWaitMs: 15_000 } }
    const scenario = Swarm.swarmFrom(base, 93100038, { restartDelays: false })
    // eu-central-1-node1's pod was replaced at 4.09 s (its record gone until it started again at
    // 8.93 s); us-west-1 came back at 5.3 s and never learnt of it before the hand-back at 9.1 s.
    expect(scenario.faults.filter((fault) => fault.kind === "crash" && fault.replaced === true).map((fault) => [fault.atMs, "target" in fault ? fault.target : ""])).toEqual([
      [600, "us-west-1-node1"],
      [4_090, "eu-central-1-node1"]
    ])
    const simulation = simulate(scenario, 93100038)
    expect(simulation.result.violations).toEqual([])
    // eu-central-1-node1 took write 184 at 9.24 s in epoch 1700000004519 (its promotion's, counted
    // from the wall clock in milliseconds), before it heard of the hand-back; us-west-1 took its
    // first write in epoch 1700000004520 only after (at 9.24 s before).
    const old = simulation.history.writes.find((write) => write.id === 184)!
    expect([old.targetNode, old.epoch, old.outcome]).toEqual(["eu-central-1-node1", 1_700_000_004_519, "acknowledged"])
    const firstNew = Math.min(...simulation.history.writes.filter((write) => write.outcome === "acknowledged" && write.epoch === 1_700_000_004_520).map((write) => write.startedAtMs))
    expect(firstNew).toBeGreaterThan(old.endedAtMs!)
  })

  it("seed 87100056 over two-region-discovery-wipe.yaml: a wiped acting primary promoted again while the original is down takes an epoch above the one it handed back, not a reused one", () => {
    const scenario = Swarm.swarmFrom(Fixtures.load("scenarios/two-region-discovery-wipe.yaml"), 87100056, { restartDelays: false })
    expect(scenario.faults.filter((fault) => fault.kind === "wipe" || fault.kind === "promote").map((fault) => [fault.atMs, fault.kind])).toEqual([
      [4_070, "promote"],
      [5_270, "wipe"],
      [6_940, "promote"],
      [10_270, "wipe"]
    ])
    const simulation = simulate(scenario, 87100056)
    expect(simulation.result.violations).toEqual([])
    // eu-central-1 handed epoch 2 back at 4.95 s and lost its disk at 5.27 s; us-west-1, which
    // holds epoch 2, was down from 5.32 to 8.55 s. The second promotion took epoch 1 before.
    const eu = simulation.epochs.find((node) => node.nodeId === "eu-central-1-node1")!
    const promotions = eu.history.filter((change) => change.cause === "promoted")
    expect(promotions.map((change) => change.epoch)).toEqual([1, 1_700_000_007_691])
  })

  it("seed 99301893: two wiped single-node regions of three vouch for no view below their floor, so the wiped old primary takes no write in epoch 0 while the third region holds the operator's newer epoch", () => {
    const scenario = Swarm.scenarioFor(99301893, undefined)
    expect(scenario.faults.filter((fault) => ["promote", "wipe"].includes(fault.kind)).map((fault) => [fault.atMs, fault.kind, "target" in fault ? fault.target : "region" in fault ? fault.region : ""])).toEqual([
      [3_880, "promote", "ap-southeast-1"],
      [5_260, "wipe", "ap-southeast-1"],
      [5_550, "wipe", "us-west-1-node1"]
    ])
    const simulation = simulate(scenario, 99301893)
    // Before, both wiped disks came back on the configured view (epoch 0, us-west-1 primary) and
    // made a majority of three for it while eu-central-1 held the operator's epoch: us-west-1 took
    // write 51 in epoch 0 at 5.87 s.
    expect(simulation.result.violations).toEqual([])
    const late = simulation.history.writes.filter((write) => write.targetRegion === "us-west-1" && write.outcome === "acknowledged" && write.startedAtMs > 5_549)
    expect(late.filter((write) => (write.epoch ?? 0) === 0)).toEqual([])
    const us = simulation.epochs.find((node) => node.nodeId === "us-west-1-node1")!
    expect(us.history.filter((change) => change.cause === "adopted").map((change) => change.epoch)).toContain(1_700_000_003_882)
  })

  it("seed 99400001 over primary-failover.yaml: a region wiped while the primary is paused promotes itself to a wall-clock epoch, which recovering disks vouch for, and takes writes", () => {
    const scenario = Swarm.swarmFrom(Fixtures.load("scenarios/primary-failover.yaml"), 99400001)
    expect(scenario.faults.filter((fault) => ["pause", "wipe", "resume"].includes(fault.kind)).map((fault) => [fault.atMs, fault.kind])).toEqual([
      [5_600, "pause"],
      [7_290, "wipe"]
    ])
    const simulation = simulate(scenario, 99400001)
    // Before the floor, the wiped eu-central-1-node1 could not page the paused primary, so its
    // own vote for its promotion (epoch 1) did not count and no region took writes: the failover
    // story failed.
    expect(simulation.result.violations).toEqual([])
    const eu = simulation.epochs.find((node) => node.nodeId === "eu-central-1-node1")!
    const promoted = eu.history.filter((change) => change.cause === "promoted").map((change) => change.epoch)
    expect(promoted.length).toBe(1)
    expect(promoted[0]).toBeGreaterThan(1_700_000_000)
    expect(simulation.history.writes.filter((write) => write.targetRegion === "eu-central-1" && write.outcome === "acknowledged" && write.epoch === promoted[0]).length).toBeGreaterThan(10)
  })

  it("seed 88000030 over two-region-handback-pause.yaml with discovery: a primary disk wiped during a DNS outage knows no peer, and its bootstrap waits for one instead of completing with no source", () => {
    const base = { ...Fixtures.load("scenarios/two-region-handback-pause.yaml"), discovery: { intervalMs: 1_000, firstRoundWaitMs: 15_000 } }
    const scenario = Swarm.swarmFrom(base, 88000030)
    expect(scenario.faults.filter((fault) => ["dns_outage", "promote", "wipe"].includes(fault.kind)).map((fault) => [fault.atMs, fault.kind])).toEqual([
      [7_260, "dns_outage"],
      [8_690, "promote"],
      [8_980, "wipe"]
    ])
    const simulation = simulate(scenario, 88000030)
    // Before, the wiped us-west-1 completed its bootstrap with no source, opened its writes and
    // took one in epoch 0 at 11.25 s, after eu-central-1's epoch 1 began at 8.69 s.
    expect(simulation.result.violations).toEqual([])
    const late = simulation.history.writes.filter((write) => write.targetRegion === "us-west-1" && write.outcome === "acknowledged" && write.startedAtMs > 8_690)
    expect(late.every((write) => (write.epoch ?? 0) > 0)).toBe(true)
  })

  it("seed 74000018 over primary-failover.yaml: a stalled primary answers heartbeats and holds its lease, so a stall followed 10 s later by a crash shorter than the heartbeat timeout is no loss that must end in a promotion", () => {
    const { scenario, result } = untoldStory("scenarios/primary-failover.yaml", 74000018)
    expect(scenario.faults.filter((fault) => fault.kind === "stall" || (fault.kind === "crash" && fault.target === "us-west-1-node1")).map((fault) => [fault.atMs, fault.kind])).toEqual([
      [10_520, "stall"],
      [20_700, "crash"]
    ])
    expect(result.failover?.epochs.map((epoch) => epoch.epoch)).toEqual([0])
  })

  it("seed 74000030 over primary-failover.yaml: a hand-back 1 s after a stalled primary's restart is not early when its crash was shorter than the heartbeat timeout (the stall before it left no silence)", () => {
    const scenario = Swarm.swarmFrom(Fixtures.load("scenarios/primary-failover.yaml"), 74000030)
    expect(scenario.faults.find((fault) => fault.kind === "stall")).toMatchObject({ atMs: 2_580, target: "us-west-1-node1" })
    const result = runScenario(scenario, 74000030)
    expect(result.violations).toEqual([])
    expect(result.failover?.promotedBackAtMs).toBeDefined()
  })

  it("seed 77000009 over small-messages.yaml: a transaction interrupted while its commit was on its way to eu-central-1's slow, failing disk left the commit unsettled, and that store refused every transaction after it (the regions never converged)", () => {
    const scenario = Swarm.swarmFrom(Fixtures.load("scenarios/small-messages.yaml"), 77000009)
    expect(scenario.faults.find((fault) => fault.kind === "store")).toMatchObject({ atMs: 4_010 })
    const result = runScenario(scenario, 77000009)
    expect(result.violations).toEqual([])
    expect(result.converged).toBe(true)
  })

  it("seed 84000022 over store-stall.yaml and relay-tree-change.yaml: a stall of eu-central-1 while a restarted process started, or while a gracefully stopped one drained, kept it down until its watchdog ended the process, and the judges count that as a fault window", () => {
    for (const file of ["scenarios/store-stall.yaml", "scenarios/relay-tree-change.yaml"]) {
      const scenario = Swarm.swarmFrom(Fixtures.load(file), 84000022)
      expect(scenario.faults.find((fault) => fault.kind === "stall")).toMatchObject({ target: "eu-central-1" })
      const result = runScenario(scenario, 84000022)
      expect(result.violations).toEqual([])
      // The region stayed down well past the restart the schedule asked for: the window holds it.
      const windows = FaultWindows.windows(scenario, result.healedAtMs)
      expect(windows.some((window) => window.startMs <= 1_080 && window.endMs >= 21_000)).toBe(true)
    }
  })

  it("seed 76000073 over chaos-primary-pause.yaml: a split bridged by a node of another region keeps the primary reachable through it, so nobody is promoted and the story is not expected", () => {
    const { scenario, result } = untoldStory("scenarios/chaos-primary-pause.yaml", 76000073)
    expect(scenario.faults[0]).toMatchObject({ atMs: 790, kind: "bridge", node: "ap-southeast-1-node1", groups: [["us-west-1"], ["ap-southeast-1", "eu-central-1"]] })
    // us-west-1 kept the role (the documented non-transitive partition) and took every write.
    expect(result.failover?.epochs.map((epoch) => epoch.epoch)).toEqual([0])
    expect(result.writes.acknowledged).toBeGreaterThan(200)
  })

  it("a drawn operator promotion comes only while every node of the primary region is down, or, with three regions or more, while it is cut off or paused (seed 602129 drew one after a wipe had restarted it)", () => {
    let whileDown = 0
    let whileCut = 0
    for (const seed of [...Array.from({ length: 400 }, (_, index) => index + 1), 602129]) {
      const scenario = Swarm.swarmScenario(seed)
      const primary = scenario.topology.regions.find((region) => region.primary) ?? scenario.topology.regions[0]!
      const down = new Set<string>()
      const silenced = new Set<string>()
      for (const fault of scenario.faults) {
        if (fault.kind === "crash") for (const node of Scenario.targetNodes(scenario, fault.target)) down.add(node)
        if (fault.kind === "restart" || fault.kind === "wipe") for (const node of Scenario.targetNodes(scenario, fault.target)) down.delete(node)
        if (fault.kind === "isolate" && fault.region === primary.id) silenced.add(primary.id)
        if (fault.kind === "pause" && primary.nodes.every((node) => Scenario.targetNodes(scenario, fault.target).includes(node))) silenced.add(fault.target)
        if (fault.kind === "heal") silenced.delete(primary.id)
        if (fault.kind === "resume") silenced.delete(fault.target)
        if (fault.kind !== "promote") continue
        const isDown = primary.nodes.every((node) => down.has(node))
        const isCut = scenario.topology.regions.length >= 3 && silenced.size > 0
        if (isDown) whileDown++
        else whileCut++
        expect(isDown || isCut, `seed ${seed}: promote at ${fault.atMs} ms`).toBe(true)
      }
    }
    expect(whileDown).toBeGreaterThan(0)
    expect(whileCut).toBeGreaterThan(0)
    expect(runScenario(Swarm.swarmScenario(602129), 602129).violations).toEqual([])
  })

  it("the keep-local canary is caught by the safety checker within those seeds", () => {
    const tally = new Swarm.Tally()
    for (const seed of ciSeeds) {
      tally.add(Swarm.runSeed(seed, undefined, { canary: "keep-local" }))
      if (tally.summary().failed > 0) break
    }
    expect(tally.summary().failuresByChecker["safety"]).toBeGreaterThan(0)
  })
})
