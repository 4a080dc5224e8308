/**
 * CPU readings from Linux's /proc for `bench:repl`: a process's CPU time, split into its main
 * thread and the rest, the time its threads spent ready to run but waiting for a core, and the
 * whole machine's busy and stolen time. Each reader returns undefined where the file cannot be
 * read (not Linux, a process gone); the parsers take the files' text, so they are tested apart.
 */
import * as fs from "node:fs"

/** Clock ticks per second in /proc's stat files (USER_HZ, 100 on Linux). */
export const ticksPerSecond = 100

/**
 * Field `number` (as proc(5) counts them, from 1; 3 or later) of a process's or thread's stat
 * text, as a number; NaN when there is none. The command name, in parentheses, may hold spaces
 * and parentheses, so fields are counted from the last ")", after which field 3 (the state) starts.
 */
export const statField = (stat: string, number: number): number => Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[number - 3])

/** utime + stime (fields 14 and 15) of a process's or thread's stat text, in seconds; NaN when the text is not one. */
export const statCpuSeconds = (stat: string): number => (statField(stat, 14) + statField(stat, 15)) / ticksPerSecond

/** Seconds spent waiting on a run queue, from a thread's schedstat text ("cpu_ns wait_ns timeslices"); undefined when it is not one. */
export const schedstatWaitSeconds = (schedstat: string): number | undefined => {
  const fields = schedstat.trim().split(/\s+/)
  const waitNs = Number(fields[1])
  return fields.length === 3 && Number.isSafeInteger(waitNs) && waitNs >= 0 ? waitNs / 1e9 : undefined
}

/** The whole machine's CPU seconds since boot: busy (all but idle and iowait) and stolen by the hypervisor. */
export interface MachineCpu {
  readonly busy: number
  readonly steal: number
}

/** The first line of /proc/stat ("cpu  user nice system idle iowait irq softirq steal ..." in ticks) as `MachineCpu`; undefined when it is not one. */
export const procStatMachineCpu = (procStat: string): MachineCpu | undefined => {
  const fields = (procStat.split("\n")[0] ?? "").trim().split(/\s+/)
  if (fields[0] !== "cpu" || fields.length < 9) return undefined
  const [user, nice, system, , , irq, softirq, steal] = fields.slice(1, 9).map(Number) as [number, number, number, number, number, number, number, number]
  const busy = user + nice + system + irq + softirq + steal
  return Number.isFinite(busy) ? { busy: busy / ticksPerSecond, steal: steal / ticksPerSecond } : undefined
}

const readOrUndefined = (file: string): string | undefined => {
  try {
    return fs.readFileSync(file, "utf8")
  } catch {
    return undefined
  }
}

/** The thread ids of process `pid` (its `task` directory); undefined where /proc cannot tell (not Linux, a process gone). */
const tasksOf = (pid: number): ReadonlyArray<string> | undefined => {
  try {
    return fs.readdirSync(`/proc/${pid}/task`)
  } catch {
    return undefined
  }
}

/** User plus system CPU seconds a process has used (to 0.01 s); undefined where /proc cannot tell. */
export const cpuSeconds = (pid: number | undefined): number | undefined => {
  const stat = pid === undefined ? undefined : readOrUndefined(`/proc/${pid}/stat`)
  const seconds = stat === undefined ? Number.NaN : statCpuSeconds(stat)
  return Number.isFinite(seconds) ? Number(seconds.toFixed(2)) : undefined
}

/**
 * CPU seconds of a process's main thread and of its other threads together, and the seconds
 * each waited for a core while ready to run (undefined where the kernel keeps no schedstat).
 */
export interface ThreadCpu {
  readonly main: number
  readonly others: number
  readonly mainWaiting: number | undefined
  readonly othersWaiting: number | undefined
}

const plus = (sum: number | undefined, value: number | undefined): number | undefined => (sum === undefined || value === undefined ? undefined : sum + value)

/** A process's `ThreadCpu` now; undefined where /proc cannot tell. A thread that ends while it is read is left out. */
export const threadCpu = (pid: number | undefined): ThreadCpu | undefined => {
  if (pid === undefined) return undefined
  const tasks = tasksOf(pid)
  if (tasks === undefined) return undefined
  let main = 0
  let others = 0
  let mainWaiting: number | undefined = 0
  let othersWaiting: number | undefined = 0
  for (const task of tasks) {
    const stat = readOrUndefined(`/proc/${pid}/task/${task}/stat`)
    if (stat === undefined) continue
    const seconds = statCpuSeconds(stat)
    const schedstat = readOrUndefined(`/proc/${pid}/task/${task}/schedstat`)
    const waiting = schedstat === undefined ? undefined : schedstatWaitSeconds(schedstat)
    if (Number(task) === pid) {
      main += seconds
      mainWaiting = plus(mainWaiting, waiting)
    } else {
      others += seconds
      othersWaiting = plus(othersWaiting, waiting)
    }
  }
  return Number.isFinite(main + others) ? { main, others, mainWaiting, othersWaiting } : undefined
}

/** The machine's `MachineCpu` now; undefined where /proc/stat cannot be read. */
export const machineCpu = (): MachineCpu | undefined => {
  const procStat = readOrUndefined("/proc/stat")
  return procStat === undefined ? undefined : procStatMachineCpu(procStat)
}

/** The processes of the tree under `pid` (itself included), from each thread's `children` file; a process gone meanwhile is left out. */
const processTree = (pid: number): ReadonlyArray<number> => {
  const found = [pid]
  for (let index = 0; index < found.length; index++) {
    for (const task of tasksOf(found[index]!) ?? []) {
      const children = readOrUndefined(`/proc/${found[index]}/task/${task}/children`) ?? ""
      for (const child of children.trim().split(/\s+/)) if (child !== "") found.push(Number(child))
    }
  }
  return found
}

/**
 * The CPU seconds of every thread of the process tree under `pid`, sampled until it exits: a
 * thread's last reading stands for it, so the ones that ended before the tree (a swarm's worker
 * threads, a process that ran its command line again) count, less what they used after their
 * last sample. `main` sums the processes' main threads (where a process runs its JavaScript),
 * `others` every other thread (V8's compiler and garbage-collector helpers, libuv's pool, worker
 * threads).
 */
export class TreeThreads {
  private readonly seconds = new Map<string, { readonly main: boolean; readonly seconds: number }>()
  private peakMb = 0

  constructor(private readonly pid: number) {}

  /** Reads every thread of the tree now, and each process's peak resident set. */
  sample(): void {
    for (const process of processTree(this.pid)) {
      this.peakMb = Math.max(this.peakMb, peakRssMb(process) ?? 0)
      for (const task of tasksOf(process) ?? []) {
        const stat = readOrUndefined(`/proc/${process}/task/${task}/stat`)
        const seconds = stat === undefined ? Number.NaN : statCpuSeconds(stat)
        if (Number.isFinite(seconds)) this.seconds.set(`${process}/${task}`, { main: Number(task) === process, seconds })
      }
    }
  }

  /** Main threads' and other threads' CPU seconds over the samples. */
  totals(): { readonly main: number; readonly others: number } {
    let main = 0
    let others = 0
    for (const thread of this.seconds.values()) {
      if (thread.main) main += thread.seconds
      else others += thread.seconds
    }
    return { main: Number(main.toFixed(2)), others: Number(others.toFixed(2)) }
  }

  /**
   * The largest peak resident set (VmHWM, MiB) of any process of the tree, as last sampled: a
   * swarm's memory that grows with its seeds shows here (a leak of about 1 MB per seed did, until
   * December 7, 2026).
   */
  peakRssMb(): number {
    return this.peakMb
  }
}

/** Peak resident set of a process in MiB (VmHWM, from /proc on Linux); undefined elsewhere or once it has exited. */
export const peakRssMb = (pid: number | undefined): number | undefined => {
  if (pid === undefined) return undefined
  const line = readOrUndefined(`/proc/${pid}/status`)
    ?.split("\n")
    .find((candidate) => candidate.startsWith("VmHWM:"))
  return line === undefined ? undefined : Math.round(Number(line.replace(/\D+/g, "")) / 1024)
}
