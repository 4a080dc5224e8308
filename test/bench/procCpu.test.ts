/**
 * The bench's /proc readings: a stat line's CPU time whatever its command name holds, a thread's
 * run-queue wait from schedstat, the machine's busy and stolen time from /proc/stat, and, on
 * Linux, this very process read back through them, and a process tree followed to a grandchild.
 */
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import { describe, expect, it } from "vitest"
import * as ProcCpu from "../../bench/procCpu.js"

// A stat line whose command name holds a space and a ")": utime 250 and stime 50 ticks (fields 14 and 15).
const stat = "4242 (node ) serve) S 1 4242 4242 0 -1 4194560 9000 0 0 0 250 50 0 0 20 0 11 0 123 1000000 20000 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0"

describe("procCpu", () => {
  it("reads utime + stime after the last parenthesis of the command name", () => {
    expect(ProcCpu.statCpuSeconds(stat)).toBe(3)
    expect(Number.isNaN(ProcCpu.statCpuSeconds("garbage"))).toBe(true)
  })

  it("counts a stat line's fields as proc(5) does, from after the command name", () => {
    expect(ProcCpu.statField(stat, 4)).toBe(1)
    expect(ProcCpu.statField(stat, 14)).toBe(250)
    expect(ProcCpu.statField(stat, 20)).toBe(11)
    expect(Number.isNaN(ProcCpu.statField(stat, 99))).toBe(true)
  })

  it("reads the run-queue wait, the second of schedstat's three fields, in seconds", () => {
    expect(ProcCpu.schedstatWaitSeconds("734000000 1500000000 812\n")).toBe(1.5)
    expect(ProcCpu.schedstatWaitSeconds("0 0 1")).toBe(0)
    expect(ProcCpu.schedstatWaitSeconds("734000000\n")).toBeUndefined()
    expect(ProcCpu.schedstatWaitSeconds("a b c")).toBeUndefined()
  })

  it("counts everything but idle and iowait as the machine's busy time, steal included", () => {
    // user 100, nice 10, system 40, idle 900, iowait 30, irq 5, softirq 15, steal 20 ticks.
    const procStat = "cpu  100 10 40 900 30 5 15 20 0 0\ncpu0 50 5 20 450 15 2 7 10 0 0\n"
    expect(ProcCpu.procStatMachineCpu(procStat)).toEqual({ busy: 1.9, steal: 0.2 })
    expect(ProcCpu.procStatMachineCpu("intr 1 2 3\n")).toBeUndefined()
    expect(ProcCpu.procStatMachineCpu("cpu 1 2 3\n")).toBeUndefined()
  })

  it.runIf(fs.existsSync("/proc/self/task"))("reads this process: CPU spent, by the main thread and the rest, and the machine's", () => {
    // Burn some CPU on this thread so that its reading cannot be zero ticks.
    const until = performance.now() + 60
    let spins = 0
    while (performance.now() < until) spins++
    expect(spins).toBeGreaterThan(0)
    const threads = ProcCpu.threadCpu(process.pid)
    expect(threads).toBeDefined()
    expect(threads!.main).toBeGreaterThan(0)
    expect(threads!.others).toBeGreaterThanOrEqual(0)
    expect(ProcCpu.cpuSeconds(process.pid)).toBeGreaterThanOrEqual(threads!.main - 0.01)
    if (fs.existsSync(`/proc/${process.pid}/task/${process.pid}/schedstat`)) expect(threads!.mainWaiting).toBeGreaterThanOrEqual(0)
    const machine = ProcCpu.machineCpu()
    expect(machine!.busy).toBeGreaterThan(0)
    expect(machine!.steal).toBeGreaterThanOrEqual(0)
    expect(ProcCpu.threadCpu(undefined)).toBeUndefined()
    expect(ProcCpu.cpuSeconds(2 ** 30)).toBeUndefined()
    expect(ProcCpu.peakRssMb(process.pid)).toBeGreaterThanOrEqual(Math.floor(process.memoryUsage().rss / 2 ** 20))
    expect(ProcCpu.peakRssMb(2 ** 30)).toBeUndefined()
  })

  it.runIf(fs.existsSync("/proc/self/task"))("follows a process tree: a grandchild's main thread counts, read until it exited", async () => {
    // The child starts a grandchild that burns 300 ms of CPU on its main thread, holding 96 MiB,
    // as `sim swarm` runs itself again with its flags, and waits for it.
    const grandchild = "const held = Buffer.alloc(96 * 2 ** 20, 1); const until = 300_000; while (process.cpuUsage().user < until) {} if (held[0] !== 1) process.exit(1)"
    const child = spawn(process.execPath, ["-e", `require("node:child_process").spawnSync(process.execPath, ["-e", ${JSON.stringify(grandchild)}])`], { stdio: "ignore" })
    const threads = new ProcCpu.TreeThreads(child.pid!)
    const sampler = setInterval(() => threads.sample(), 20)
    await new Promise((resolve) => child.on("close", resolve))
    clearInterval(sampler)
    const totals = threads.totals()
    // The last sample came at most 20 ms before the grandchild ended: most of its 0.3 s is in it.
    expect(totals.main).toBeGreaterThanOrEqual(0.2)
    expect(totals.others).toBeGreaterThanOrEqual(0)
    // The grandchild held 96 MiB it had written: its peak resident set is the tree's largest.
    expect(threads.peakRssMb()).toBeGreaterThanOrEqual(96)
  }, 60_000)
})
