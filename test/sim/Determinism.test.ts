/**
 * The simulator is deterministic: one scenario and seed give one trace hash, twice in one
 * process and in separate processes through the CLI, and different seeds give different
 * hashes. The simulator's own sources use no machine clock, host timer or unseeded randomness.
 */
import { Effect, Fiber } from "effect"
import { spawn } from "node:child_process"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { scan } from "../../scripts/check-determinism.mjs"
import * as Random from "../../src/replication/Random.js"
import * as FiberRoots from "../../src/sim/FiberRoots.js"
import { NodeScheduler } from "../../src/sim/Scheduler.js"
import { type RunResult, runScenario } from "../../src/sim/Run.js"
import * as Swarm from "../../src/sim/Swarm.js"
import * as Fixtures from "./fixtures/scenarios.js"

const file = "scenarios/two-region-partition.yaml"

/** Runs the CLI with `--json` in a child process and returns its parsed stdout and exit code. */
const cli = (seed: number): Promise<{ readonly code: number | null; readonly result: RunResult }> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(Fixtures.root, "bin/inferadb-repl.mjs"), "sim", "run", file, "--seed", String(seed), "--json", "--no-report"], {
      cwd: Fixtures.root,
      stdio: ["ignore", "pipe", "pipe"]
    })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()))
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()))
    child.on("error", reject)
    child.on("close", (code) => {
      try {
        resolve({ code, result: JSON.parse(stdout) as RunResult })
      } catch (error) {
        reject(new Error(`stdout is not one JSON object (${String(error)}); stderr: ${stderr}`))
      }
    })
  })

const withoutWallTime = ({ wallMs: _wallMs, ...rest }: RunResult) => rest

describe("determinism", () => {
  it("the same seed gives the same trace hash and the same result twice in one process", () => {
    const scenario = Fixtures.load(file)
    const first = runScenario(scenario, 11, { wallClock: Fixtures.wallClock })
    const second = runScenario(scenario, 11, { wallClock: Fixtures.wallClock })
    expect(second.traceHash).toBe(first.traceHash)
    expect(withoutWallTime(second)).toEqual(withoutWallTime(first))
  })

  it("the same seed gives the same trace hash in two separate processes through the CLI", async () => {
    const [first, second] = await Promise.all([cli(5), cli(5)])
    const inProcess = runScenario(Fixtures.load(file), 5)
    expect(first.code).toBe(0)
    expect(second.code).toBe(0)
    expect(second.result.traceHash).toBe(first.result.traceHash)
    expect(first.result.traceHash).toBe(inProcess.traceHash)
    expect(withoutWallTime(second.result)).toEqual(withoutWallTime(first.result))
    for (const key of ["seed", "scenario", "traceHash", "converged", "violations", "simulatedMs", "wallMs", "events", "effectOps"]) expect(first.result).toHaveProperty(key)
    // The Effect operations counted are the same work in both processes, and there is work: every node runs fibers.
    expect(second.result.effectOps).toBe(first.result.effectOps)
    expect(first.result.effectOps).toBeGreaterThan(first.result.events)
  })

  it("counting Effect operations by cause changes nothing of the run, and charges every operation to one cause", () => {
    const scenario = Fixtures.load(file)
    const plain = runScenario(scenario, 5)
    const counted = runScenario(scenario, 5, { effortByCause: true })
    const { effectOpsByCause, ...rest } = counted
    expect(withoutWallTime(rest)).toEqual(withoutWallTime(plain))
    expect(plain.effectOpsByCause).toBeUndefined()
    const causes = new Map((effectOpsByCause ?? []).map((entry) => [entry.cause, entry]))
    expect((effectOpsByCause ?? []).reduce((sum, entry) => sum + entry.ops, 0)).toBe(plain.effectOps)
    // A batch's handling is charged to its delivery, and its acknowledgement's to that delivery.
    for (const cause of ["deliver ReplicateBatch", "deliver BatchAck", "write", "timer"]) {
      expect(causes.get(cause)?.events, cause).toBeGreaterThan(0)
      expect(causes.get(cause)!.ops / causes.get(cause)!.events, cause).toBeGreaterThan(5)
    }
    expect((effectOpsByCause ?? []).map((entry) => entry.ops)).toEqual([...(effectOpsByCause ?? [])].map((entry) => entry.ops).sort((a, b) => b - a))
  })

  it("different seeds give different trace hashes", () => {
    const scenario = Fixtures.load(file)
    const hashes = [21, 22, 23].map((seed) => runScenario(scenario, seed).traceHash)
    expect(new Set(hashes).size).toBe(hashes.length)
  })

  it("every event is seen by the per-event hook, in order, ending at the run's trace hash", () => {
    const events: Array<{ readonly index: number; readonly hash: string }> = []
    const result = runScenario(Fixtures.load(file), 3, { onEvent: (event) => events.push(event) })
    expect(events.length).toBe(result.events)
    expect(events.every((event, index) => event.index === index)).toBe(true)
    expect(events[events.length - 1]?.hash).toBe(result.traceHash)
  })

  // A swarm worker runs seed after seed: whatever a run leaves behind accumulates. Effect keeps
  // every fiber started with `runFork` in a global set of roots until it ends (dropping the nodes
  // of a finished run instead of interrupting them ran a worker out of memory after about a
  // thousand seeds), and a fiber waiting on `Effect.never` holds a host interval timer.
  it("a finished run leaves no fiber and no host timer behind, whatever its nodes were waiting on", () => {
    const timers = () => process.getActiveResourcesInfo().filter((resource) => resource === "Timeout").length
    const timersBefore = timers()
    const rootsBefore = Fiber.unsafeRoots().length
    for (const scenario of ["scenarios/crash-restart.yaml", "scenarios/primary-failover.yaml"]) {
      expect(runScenario(Fixtures.load(scenario), 1).converged).toBe(true)
    }
    // Default swarm seeds whose crashes left fibers among Effect's roots (`Scheduler.crash`).
    for (const seed of [7004, 7005]) expect(Swarm.runSeed(seed, undefined).result.violations).toEqual([])
    expect(Fiber.unsafeRoots().length).toBe(rootsBefore)
    expect(timers()).toBe(timersBefore)
  })

  // A finished run's fibers are let go of, not interrupted: this holds `FiberRoots` to the set
  // Effect itself reads, so a newer Effect that keeps its roots elsewhere fails here, not in a
  // worker that runs out of memory.
  it("FiberRoots reaches the set of root fibers Effect keeps", () => {
    expect(FiberRoots.available()).toBe(true)
    const scheduler = new NodeScheduler("n1", 0, Random.make(1).derive("yield"))
    const other = new NodeScheduler("n2", 1, Random.make(1).derive("yield"))
    const fiber = Effect.runFork(Effect.async<void>(() => {}), { scheduler })
    const elsewhere = Effect.runFork(Effect.async<void>(() => {}), { scheduler: other })
    expect(Fiber.unsafeRoots()).toEqual(expect.arrayContaining([fiber, elsewhere]))
    FiberRoots.forgetRunningOn(scheduler)
    expect(Fiber.unsafeRoots()).not.toContain(fiber)
    expect(Fiber.unsafeRoots()).toContain(elsewhere)
    FiberRoots.forgetRunningOn(other)
  })

  it("the simulator's sources use no banned time, timer or randomness API", () => {
    expect(scan(path.join(Fixtures.root, "src/sim")).violations).toEqual([])
  })
})
