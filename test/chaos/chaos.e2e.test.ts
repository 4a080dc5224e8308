/**
 * Chaos on real processes, end to end: the shipped `chaos-partition-crash` scenario (a kill -9
 * and restart, a libfaketime clock jump, an nftables partition, latency through the delay proxy
 * and 1 % loss) on real `serve` nodes in network namespaces, judged by the simulator's checkers.
 * A correct build must pass; the same run with every node started as the keep-local canary
 * (conflicts resolved by keeping the local change) must be caught by the safety checker, which
 * compares each node's Check answers with the rule over the whole history, and nodes whose batch
 * sends die below the agent must be caught by what they log (`defects`). The runs must leave
 * no namespace or bridge behind, and neither may a run interrupted with Ctrl-C (SIGINT) from the command line.
 *
 * Needs root, `ip netns` and nftables (skipped otherwise, with the reason); `.ci/run` installs
 * nftables, iproute2 and faketime.
 */
import { execFileSync, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, afterEach, describe, expect, it } from "vitest"
import * as Clocks from "../../src/chaos/Clocks.js"
import * as Netns from "../../src/chaos/Netns.js"
import * as ChaosRun from "../../src/chaos/Run.js"
import type * as Scenario from "../../src/sim/Scenario.js"
import * as Fixtures from "../sim/fixtures/scenarios.js"

const root = path.resolve(import.meta.dirname, "../..")
const scenarioFile = path.join(root, "scenarios/chaos-partition-crash.yaml")
const unavailable = Netns.unavailable()
if (unavailable !== undefined) console.warn(`skipping chaos on real processes: ${unavailable}`)

/** Bound of one run: node startup under load, a 6 s schedule and convergence. */
const runTimeoutMs = 45_000
/** Bound of the graceful stops' run: node startup under load, a 29 s schedule and convergence. */
const gracefulTimeoutMs = 90_000
/** How long before its wipe a node must have drained to be held to exiting on its own (it closes its servers and store in 0.3-0.5 s). */
const closeRoomMs = 1_500
/** Bound of the interrupted run: nodes up, then Ctrl-C. */
const interruptTimeoutMs = 30_000

const scenario = Fixtures.load("scenarios/chaos-partition-crash.yaml")

const chaosNamespaces = (): ReadonlyArray<string> =>
  execFileSync("ip", ["netns", "list"], { encoding: "utf8" })
    .split("\n")
    .map((line) => line.split(" ")[0] ?? "")
    .filter((name) => name.startsWith("inferadb-chaos-"))

/** The bridges chaos runs create; a run's must go with it, or its route lingers (see Netns.octetFor). */
const chaosBridges = (): ReadonlyArray<string> =>
  execFileSync("ip", ["-o", "link", "show", "type", "bridge"], { encoding: "utf8" })
    .split("\n")
    .map((line) => /^\d+: ([^:@]+)/.exec(line)?.[1] ?? "")
    .filter((name) => /^chb[0-9a-f]{4}$/.test(name))

const diskFull = Fixtures.load("scenarios/chaos-disk-full.yaml")

/** Mounted file systems whose mount point is under `directory`. */
const mountsUnder = (directory: string): ReadonlyArray<string> =>
  fs.readFileSync("/proc/mounts", "utf8").split("\n").map((line) => line.split(" ")[1] ?? "").filter((point) => point.startsWith(directory))

const relayTree = Fixtures.load("scenarios/relay-tree-change.yaml")

const primaryPause = Fixtures.load("scenarios/chaos-primary-pause.yaml")

const staggeredStart = Fixtures.load("scenarios/primary-staggered-start.yaml")

const handBackPause = Fixtures.load("scenarios/two-region-handback-pause.yaml")

const windowRestart = Fixtures.load("scenarios/chaos-window-restart.yaml")

const smallMessages = Fixtures.load("scenarios/small-messages.yaml")

const gracefulStops = Fixtures.load("scenarios/graceful-stop-wipe.yaml")
const wipePrimaryDown = Fixtures.load("scenarios/three-region-wipe-primary-down.yaml")

/**
 * A split brain made by hand: two-region PrimaryReplica cut apart at 2 s, and the operator
 * promotes eu-central-1 at 4 s while us-west-1, the primary, still runs and its clients still
 * reach it (the README's warning: nothing tells a lost region from a cut link). Both regions take
 * writes until the heal at 8 s; the judge must say so.
 */
const operatorSplitBrain = Fixtures.twoRegionCutApart("\n  - { at_ms: 4000, kind: promote, region: eu-central-1 }")

/**
 * `scenarios/rank-dropped.yaml` with the rank given back at 7 s instead of 5 s and the run healed
 * at 13 s instead of 7.5 s: on real processes a start takes a second or two on this 2-core machine
 * beside three other nodes (1.1-2.5 s to listen on December 6, 2026), so the restart at 4 s could
 * read the file after the rank came back, and the start after the refusal be ready only as the
 * heal began.
 */
const rankDropped = ((shipped: Scenario.Scenario): Scenario.Scenario => ({
  ...shipped,
  workload: { ...shipped.workload, durationMs: 12_500 },
  faults: shipped.faults.map((fault) => (fault.kind === "configure" && fault.atMs === 5_000 ? { ...fault, atMs: 7_000 } : fault.kind === "heal" ? { ...fault, atMs: 8_000 } : fault))
}))(Fixtures.load("scenarios/rank-dropped.yaml"))

/** A run's history.jsonl, one event per line. */
const historyOf = (result: ChaosRun.ChaosResult) =>
  fs
    .readFileSync(path.join(result.runFolder, "history.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((line) => JSON.parse(line) as { readonly type: string; readonly phase?: string; readonly atMs: number; readonly reason?: string })

/**
 * The reports folders the current test made (each run's report and its nodes' data
 * directories): removed once the test passes, kept under the temporary directory when it fails.
 */
const reportRoots: Array<string> = []
const makeReportsRoot = (): string => {
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), "inferadb-chaos-"))
  reportRoots.push(directory)
  return directory
}
afterEach((context) => {
  const made = reportRoots.splice(0)
  if (context.task.result?.state === "fail") return
  for (const directory of made) fs.rmSync(directory, { recursive: true, force: true })
})

/**
 * Runs still going: a test that timed out leaves its run behind, and ending the file then would
 * end this worker before the run's own cleanup, leaving its nodes running and its namespaces in
 * place (seen on December 4, 2026). The file waits for them instead.
 */
const running = new Set<Promise<unknown>>()
afterAll(() => Promise.allSettled([...running]), 240_000)

const runOnce = async (canary: ChaosRun.Canary | undefined, which: Scenario.Scenario = scenario): Promise<ChaosRun.ChaosResult> => {
  const reportsRoot = makeReportsRoot()
  const before = new Set(chaosNamespaces())
  const bridgesBefore = new Set(chaosBridges())
  const pending = ChaosRun.run(which, { seed: "1", reportsRoot, log: () => undefined, ...(canary === undefined ? {} : { canary }) })
  running.add(pending)
  const result = await pending.finally(() => running.delete(pending))
  expect(chaosNamespaces().filter((name) => !before.has(name))).toEqual([])
  expect(chaosBridges().filter((name) => !bridgesBefore.has(name))).toEqual([])
  // The simulator's run folder (report/RunFolder.ts): its name, its files, the latest link.
  expect(path.relative(reportsRoot, result.runFolder)).toMatch(new RegExp(`^${which.name}/1-\\d{8}T\\d{6}\\.\\d{3}Z$`))
  expect(fs.readdirSync(result.runFolder)).toEqual(expect.arrayContaining(["result.json", "history.jsonl", "report.md", "report.html", "scenario.yaml", "nodes"]))
  expect(fs.existsSync(path.join(result.runFolder, "progress.jsonl"))).toBe(false)
  expect(fs.realpathSync(path.join(reportsRoot, which.name, "latest"))).toBe(fs.realpathSync(result.runFolder))
  expect(JSON.parse(fs.readFileSync(path.join(result.runFolder, "result.json"), "utf8"))).toMatchObject({ valid: result.passed, seed: "1", run: { mode: "chaos", passed: result.passed, nodes: result.nodes } })
  const events = historyOf(result)
  expect(events.filter((event) => event.type === "op" && event.phase === "invoke").length).toBe(result.writes.attempted)
  // The page a person opens: the verdict, replication lag drawn from the feeds, fault bands, and
  // the plots real processes cannot record said so rather than drawn empty.
  const html = fs.readFileSync(path.join(result.runFolder, "report.html"), "utf8")
  expect(html).toContain(result.passed ? '<span class="verdict valid">valid</span>' : '<span class="verdict invalid">INVALID')
  expect(html).toMatch(/<path[^>]*class="lag-path[^"]*"[^>]*d="M/)
  // (A run without faults has no band to draw.)
  if (which.faults.length > 0) expect(html).toContain('class="fault-band"')
  else expect(html).not.toContain('class="fault-band"')
  expect(html).toContain("Not recorded on real processes")
  expect(fs.readFileSync(path.join(result.runFolder, "report.md"), "utf8")).toContain(result.passed ? "passed on real processes" : "FAILED")
  return result
}

describe.skipIf(unavailable !== undefined)("chaos on real processes", () => {
  it(
    "a partition, a clock jump and a kill -9 on real nodes end in one state equal to the rule, with every acknowledged write kept",
    async () => {
      const result = await runOnce(undefined)
      expect(result.violations).toEqual([])
      expect(result.passed).toBe(true)
      expect(result.converged).toBe(true)
      expect(result.writes.acknowledged).toBeGreaterThan(20)
      expect(result.faults.map((fault) => fault.kind)).toEqual(["crash", "restart", "clock_jump", "isolate", "heal", "heal_all"])
      expect(result.nodes["eu-central-1-node2"]!.exits).toContain("SIGKILL")
      expect(result.nodes["eu-central-1-node2"]!.incarnations).toBe(2)
      // libfaketime moved us-west-1's wall clock 300 ms ahead while it ran (plus its drawn
      // offset of at most 30 ms); eu-central-1-node1 kept its drawn offset. Each estimate holds
      // within half the round trips it was measured over (`withinMs`), plus drift and rounding.
      if (Clocks.library() === undefined) {
        expect(result.notApplied.join("\n")).toContain("libfaketime is not installed")
        return
      }
      const us = result.clocksObserved["us-west-1-node1"]!
      const eu = result.clocksObserved["eu-central-1-node1"]!
      expect(Math.abs(us.aheadMs - (300 + result.chosen.clocks["us-west-1-node1"]!.offsetMs))).toBeLessThanOrEqual(us.withinMs + 2)
      expect(Math.abs(eu.aheadMs - result.chosen.clocks["eu-central-1-node1"]!.offsetMs)).toBeLessThanOrEqual(eu.withinMs + 2)
    },
    runTimeoutMs
  )

  it(
    "16 batches in flight per target but 2 requests per node, across a kill -9 and restart of the target: replication resumes and both regions converge",
    async () => {
      // Before the fix in GrpcNetwork (a request took its channel when built, so one that waited
      // for a slot ran on a channel closed meanwhile), every seed tried stopped replication for good here.
      const result = await runOnce(undefined, windowRestart)
      expect(result.violations).toEqual([])
      expect(result.passed).toBe(true)
      expect(result.converged).toBe(true)
      expect(result.faults.map((fault) => fault.kind)).toEqual(["crash", "restart", "heal_all"])
      const config = fs.readFileSync(path.join(result.runFolder, "nodes", "us-west-1-node1", "config.yaml"), "utf8")
      expect(config).toMatch(/batches_in_flight_max: 16/)
      expect(config).toMatch(/max_in_flight_per_target: 2/)
    },
    runTimeoutMs
  )

  it(
    "every node bounds messages at 2 KiB, far below its batches and CatchUp pages, across a kill -9 and a wiped disk: batches are split, pages shortened, Watch events kept within the bound, and every node converges",
    async () => {
      // Before the fixes of December 3, 2026, batches and pages above the bound were sent again as
      // they were forever, and the harness could not even read the nodes' logs back (Watch events
      // above the bound ended the stream).
      const result = await runOnce(undefined, smallMessages)
      expect(result.violations).toEqual([])
      expect(result.passed).toBe(true)
      expect(result.converged).toBe(true)
      expect(result.faults.map((fault) => fault.kind)).toEqual(["crash", "restart", "wipe", "heal_all"])
      const config = fs.readFileSync(path.join(result.runFolder, "nodes", "us-west-1-node1", "config.yaml"), "utf8")
      expect(config).toMatch(/max_message_bytes: 2048/)
    },
    runTimeoutMs
  )

  it(
    "nodes stopped with SIGTERM drain to every target and sibling and exit 0, then come back on empty disks with nothing they acknowledged lost; a drain towards a cut-off region times out",
    async () => {
      const result = await runOnce(undefined, gracefulStops)
      expect(result.violations).toEqual([])
      expect(result.converged).toBe(true)
      // The drained check ran, judged from the feeds (see Judge.drainedPartly).
      expect(result.notJudged.some((line) => line.startsWith("drained in part"))).toBe(true)
      const drains = Object.fromEntries(
        Object.entries(result.nodes).map(([node, { drains }]) => [node, drains.map((line) => line.replace(/position \d+/, "position N").replace(/ at \d+ ms$/, ""))])
      )
      expect(drains["us-west-1-node1"]).toEqual(["incarnation 1: drain timed out"])
      expect(drains["ap-southeast-1-node1"]).toEqual([])
      // Each of the others drains in well under a second, unless a sibling it drains to is still
      // coming back from its own wipe (restarts are drawn up to 6 s). On a machine busy enough
      // that a drain outlasts the 3 s before its wipe, the wipe kills it first (no line, exit by
      // SIGKILL).
      const drained = ["us-west-1-node2", "eu-central-1-node1", "eu-central-1-node2"].filter((node) => drains[node]?.[0] === "incarnation 1: drained to position N")
      expect(drained.length).toBeGreaterThanOrEqual(1)
      // A node drained well before its wipe exited on its own: a node that hung after its drain
      // would have been killed by the wipe instead. One that drained just before its wipe may be
      // killed while it closes its servers and store (0.3-0.5 s; CI run of December 5, 2026: a
      // drain 2.7 s after the signal, 0.3 s before the wipe).
      const drainedAtMs = (node: string) => Number(/ at (\d+) ms$/.exec(result.nodes[node]!.drains[0]!)![1])
      const wipedAtMs = (node: string) => result.faults.find((fault) => fault.kind === "wipe" && fault.detail.includes(node))!.startedAtMs
      const withRoom = drained.filter((node) => wipedAtMs(node) - drainedAtMs(node) >= closeRoomMs)
      expect(withRoom.length).toBeGreaterThanOrEqual(1)
      for (const node of withRoom) expect(result.nodes[node]?.exits[0], node).toBe("exit 0")
      expect(result.faults.filter((fault) => fault.kind === "crash").every((fault) => fault.detail.startsWith("crash (graceful)"))).toBe(true)
    },
    gracefulTimeoutMs
  )

  it(
    "PrimaryReplica: the primary paused with SIGSTOP for 8 s; another region is promoted and takes writes meanwhile, and nothing acknowledged is lost",
    async () => {
      const result = await runOnce(undefined, primaryPause)
      expect(result.violations).toEqual([])
      expect(result.passed).toBe(true)
      expect(result.faults.map((fault) => fault.kind)).toEqual(["pause", "resume", "heal_all"])
      // The primary is stopped from 2 s to 10 s: writes acknowledged well inside that stretch
      // were taken by a promoted region (a stopped process acknowledges nothing).
      const events = historyOf(result)
      expect(events.filter((event) => event.type === "op" && event.phase === "ok" && event.atMs > 6_000 && event.atMs < 10_000).length).toBeGreaterThan(0)
    },
    runTimeoutMs
  )

  // Chaos seeds 9990613, 9990634, 9990636: a primary fenced itself for peers that had not
  // answered yet and refused writes for confirm_after_ms. With that rule this run acknowledged
  // 59 of 161 writes (fenced for 9 s); with the fix, 160 of 161.
  it(
    "PrimaryReplica: the other regions' processes start 1.5 s after the primary's; the primary does not fence itself and serves once they answer",
    async () => {
      const result = await runOnce(undefined, staggeredStart)
      const primaryLog = fs.readFileSync(path.join(result.runFolder, "nodes", "us-east-1-node1", "serve.log"), "utf8")
      expect(primaryLog).toContain("primary view at start: epoch 0, us-east-1 primary")
      expect(primaryLog).not.toContain("fenced: this region stops taking writes")
      expect(result.violations.filter((violation) => violation.checker !== "progress")).toEqual([])
      expect(result.writes.acknowledged / result.writes.attempted).toBeGreaterThan(0.6)
    },
    runTimeoutMs
  )

  // Swarm seed 25001788 on real processes: a node paused (SIGSTOP) across a hand-back. The judge
  // reads each write's epoch from the node's answer; with the two-region lease removed, seed 2 of
  // this scenario failed it with 12 writes sent to the paused node after the new epoch's first
  // write and taken in the old epoch when it resumed.
  it(
    "PrimaryReplica over two regions: a node paused across a hand-back takes no write in its old epoch after the new primary took one, as the epochs check judges from the nodes' answers",
    async () => {
      const result = await runOnce(undefined, handBackPause)
      expect(result.violations).toEqual([])
      expect(result.passed).toBe(true)
      expect(result.notJudged.join("\n")).toMatch(/^epochs in part: /m)
      expect(result.notJudged.join("\n")).not.toMatch(/^epochs: /m)
      const epochs = new Set(historyOf(result).flatMap((event) => (event.type === "op" && event.phase === "ok" ? [(event as { readonly epoch?: number }).epoch] : [])))
      expect([...epochs].sort()).toEqual([0, 1, 2])
    },
    60_000
  )

  it(
    "eu-central-1's disks full for 2 s: its writes are refused (RESOURCE_EXHAUSTED), no node crashes, and afterwards every node holds the rule's state with nothing acknowledged lost",
    async () => {
      const result = await runOnce(undefined, diskFull)
      expect(result.violations).toEqual([])
      expect(result.passed).toBe(true)
      expect(result.faults.map((fault) => fault.kind)).toEqual(["store", "store", "heal_all"])
      expect(result.faults[0]!.detail).toContain("disks of eu-central-1-node1,eu-central-1-node2 full")
      // Refused, not lost in doubt: the store says no before lmdb writes anything (DiskRoom).
      const events = historyOf(result)
      const refused = events.filter((event) => event.type === "op" && event.phase === "rejected" && event.reason?.includes("under store.min_free_mb") === true)
      expect(refused.length).toBeGreaterThan(0)
      // lmdb-js aborted on a full disk before the check (SIGABRT); now every node runs until the end.
      for (const node of Object.values(result.nodes)) expect(node.exits).toEqual(["SIGKILL"])
      // The tmpfs disks are gone, and what they held is in each node's folder for the report.
      expect(mountsUnder(path.dirname(path.dirname(result.runFolder)))).toEqual([])
      expect(fs.existsSync(path.join(result.runFolder, "nodes", "eu-central-1-node1", "data", "data.mdb"))).toBe(true)
    },
    runTimeoutMs
  )

  it(
    "relay-tree-change on real nodes: topology faults rewrite each node's file and SIGHUP it; a reload no file may declare is refused there as in the simulator, and the ring converges",
    async () => {
      const result = await runOnce(undefined, relayTree)
      expect(result.violations).toEqual([])
      expect(result.passed).toBe(true)
      expect(result.faults.map((fault) => fault.kind)).toEqual(["topology", "one_way", "topology", "heal", "topology", "topology", "heal_all"])
      const log = (nodeId: string) => fs.readFileSync(path.join(result.runFolder, "nodes", nodeId, "serve.log"), "utf8")
      // The chord us-west-1 -> ap-southeast-1 was added by a reload, and removed by another.
      expect(log("us-west-1-node1")).toContain("reloaded the topology: 3 regions, replication targets eu-central-1, ap-southeast-1")
      expect(log("us-west-1-node1")).toContain("reloaded the topology: 3 regions, replication targets eu-central-1 (other")
      // Removing ap-southeast-1 from the ring leaves eu-central-1 without a target: serve refuses
      // that file, as TopologyManager.reconfigure now refuses it in the simulator.
      for (const nodeId of ["us-west-1-node1", "eu-central-1-node1"]) {
        expect(log(nodeId)).toMatch(/SIGHUP: invalid configuration in .*nothing reloaded: replication\.replication_targets\.eu-central-1: expected at least one target region/)
      }
    },
    runTimeoutMs
  )

  it(
    "Ctrl-C during a run stops every node and removes every namespace and bridge it created",
    async () => {
      const reportsRoot = makeReportsRoot()
      const before = new Set(chaosNamespaces())
      const bridgesBefore = new Set(chaosBridges())
      const child = spawn(process.execPath, [path.join(root, "bin/inferadb-repl.mjs"), "chaos", "run", scenarioFile, "--seed", "1", "--reports", reportsRoot], { stdio: ["ignore", "pipe", "pipe"] })
      let output = ""
      const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)))
      const up = new Promise<void>((resolve) =>
        child.stdout.on("data", (chunk: Buffer) => {
          output += chunk.toString("utf8")
          if (output.includes("nodes up:")) resolve()
        })
      )
      await Promise.race([up, exited])
      expect(output).toContain("nodes up:")
      expect(chaosNamespaces().filter((name) => !before.has(name)).length).toBe(3)
      child.kill("SIGINT")
      expect(await exited).toBe(130)
      expect(chaosNamespaces().filter((name) => !before.has(name))).toEqual([])
      expect(chaosBridges().filter((name) => !bridgesBefore.has(name))).toEqual([])
      const folder = path.join(reportsRoot, "chaos-partition-crash")
      const running = execFileSync("ps", ["-eo", "args"], { encoding: "utf8" }).split("\n").filter((line) => line.includes(folder))
      expect(running).toEqual([])
      // An interrupted run writes no report; its folder keeps what it did so far.
      const [interrupted] = fs.readdirSync(folder).filter((name) => name !== "latest")
      expect(fs.readdirSync(path.join(folder, interrupted!))).toEqual(expect.arrayContaining(["progress.jsonl", "scenario.yaml", "nodes"]))
      expect(fs.existsSync(path.join(folder, interrupted!, "report.html"))).toBe(false)
    },
    interruptTimeoutMs
  )

  it(
    "a node restarted on a file without a rank its store needs refuses to start (exit 2) and is started again a second later, as its supervisor would, until the rank is back",
    async () => {
      // Until December 5, 2026 the harness left such a node down until the heal, where the
      // simulator's node came back a second after each exit.
      const result = await runOnce(undefined, rankDropped)
      expect(result.violations).toEqual([])
      expect(result.passed).toBe(true)
      const node = result.nodes["us-west-1-node1"]!
      expect(node.exits.slice(0, 2)).toEqual(["SIGKILL", "exit 2"])
      const heal = result.faults.find((fault) => fault.kind === "heal_all")!
      const configured = result.faults.filter((fault) => fault.kind === "configure").map((fault) => fault.atMs)
      // Every start after the refusal is a supervisor's, and the one that served did so on the
      // restored file: ready only once the rank was back (a start begun a little before that reads
      // the file a second or two later on this machine: CI on December 6, 2026), and before the
      // heal, which would otherwise have been the first to start it.
      const starts = result.restarts.filter((start) => start.node === "us-west-1-node1" && start.atMs > configured[0]!)
      expect(starts.length).toBeGreaterThanOrEqual(2)
      const served = starts.find((start) => start.readyAfterMs !== undefined)!
      expect(served.atMs + served.readyAfterMs!).toBeGreaterThanOrEqual(configured[1]!)
      expect(served.atMs + served.readyAfterMs!).toBeLessThan(heal.atMs)
      expect(result.notes).toContainEqual(expect.stringMatching(/^\d+ ms: us-west-1-node1: exited on its own \(exit 2\); started again 1000 ms later/))
    },
    runTimeoutMs
  )

  it(
    "a crash fault after a refusal keeps the node down until the schedule restarts it: the start its supervisor had due is off, as in the simulator",
    async () => {
      const faults = [...rankDropped.faults, { atMs: 4_500, kind: "crash" as const, target: "us-west-1-node1" }, { atMs: 7_000, kind: "restart" as const, target: "us-west-1-node1" }].sort(
        (a, b) => a.atMs - b.atMs
      )
      const result = await runOnce(undefined, { ...rankDropped, faults })
      expect(result.violations).toEqual([])
      expect(result.passed).toBe(true)
      const crashedAtMs = result.faults.find((fault) => fault.kind === "crash" && fault.scheduledAtMs === 4_500)!.atMs
      const starts = result.restarts.filter((start) => start.node === "us-west-1-node1" && start.atMs > crashedAtMs).map((start) => start.atMs)
      // The one start is the schedule's restart, not the supervisor's (due about 1 s after the
      // exit, near 5.3 s). Compared with when the harness began that restart, not with 7,000:
      // Node's timers run on a monotonic clock and may fire a millisecond before `Date.now`
      // says 7,000 ms have passed (CI on December 5, 2026 saw 6,999).
      const restartedAtMs = result.faults.find((fault) => fault.kind === "restart" && fault.scheduledAtMs === 7_000)!.startedAtMs
      expect(starts).toHaveLength(1)
      expect(starts[0]).toBeGreaterThanOrEqual(restartedAtMs)
      expect(starts[0]).toBeGreaterThan(6_500)
    },
    runTimeoutMs
  )

  it(
    "PrimaryReplica: the primary crashed for good and a wiped region that cannot page it; the promoted region advances to an epoch the wiped node vouches for and takes writes",
    async () => {
      // Until December 6, 2026 this run failed `failover` on real processes as in the simulator:
      // the wiped node never vouched for epoch 1, and no region took a write after the crash.
      const result = await runOnce(undefined, wipePrimaryDown)
      expect(result.violations).toEqual([])
      expect(result.passed).toBe(true)
      const log = fs.readFileSync(path.join(result.runFolder, "nodes", "eu-central-1-node1", "serve.log"), "utf8")
      expect(log).toMatch(/cause=promoted/)
      const advanced = /epoch change: epoch=(\d+) primary=eu-central-1 fenced=false cause=advanced/.exec(log)
      expect(advanced).not.toBeNull()
      // Counted from the wall clock in seconds.
      expect(Number(advanced![1])).toBeGreaterThan(1_700_000_000)
    },
    runTimeoutMs
  )

  it(
    "an operator promotion while the primary is cut off is a split brain on real processes: the judge fails the run, and the report tells the failover with its RPO",
    async () => {
      // The simulator fails the same scenario (test/sim/Failover.test.ts, "the epoch checker catches an operator ..."): real processes must too.
      const result = await runOnce(undefined, operatorSplitBrain)
      expect(result.passed).toBe(false)
      expect(result.violations.filter((violation) => violation.checker === "epochs").map((violation) => violation.message)).toContainEqual(expect.stringMatching(/split brain/))
      const json = JSON.parse(fs.readFileSync(path.join(result.runFolder, "result.json"), "utf8")) as { readonly failover?: { readonly promotedRegion?: string; readonly lostAtMs?: number; readonly rtoMs?: number; readonly recoveryPoint?: { readonly lackedWrites: number } } }
      expect(json.failover).toMatchObject({ promotedRegion: "eu-central-1", rtoMs: expect.any(Number) })
      expect(json.failover!.lostAtMs).toBeGreaterThanOrEqual(2_000)
      expect(json.failover!.recoveryPoint!.lackedWrites).toBeGreaterThan(0)
      const html = fs.readFileSync(path.join(result.runFolder, "report.html"), "utf8")
      expect(html).toContain("<h2>Failover</h2>")
      expect(html).toContain("On real processes the times are the harness")
    },
    runTimeoutMs
  )

  it(
    "nodes built with the keep-local resolver are caught: their Check answers differ from the rule over the whole history",
    async () => {
      const result = await runOnce("keep-local")
      expect(result.passed).toBe(false)
      expect(result.violations.map((violation) => violation.checker)).toContain("safety")
    },
    runTimeoutMs
  )

  it(
    "nodes whose batch sends die below the agent are caught by what they log (defects), though the agent's retries make the run converge",
    async () => {
      const result = await runOnce("send-dies", windowRestart)
      expect(result.converged).toBe(true)
      expect(result.passed).toBe(false)
      expect(new Set(result.violations.map((violation) => violation.checker))).toEqual(new Set(["defects"]))
      const [first, ...rest] = result.violations
      expect(first!.message).toMatch(/^[a-z0-9-]+: incarnation \d+: logged at error level: .* ERROR .*sending a batch to [a-z0-9-]+ died \(a bug\)/)
      for (const violation of rest) expect(violation.message).toMatch(/: incarnation \d+: logged at error level: .* ERROR .*sending a batch to .* died \(a bug\)|: \d+ more like these \(see .*serve\.log\)$/)
    },
    runTimeoutMs
  )
})
