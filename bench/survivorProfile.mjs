/**
 * Loaded into each `serve` process by `bench:repl` (`node --import`) when BENCH_SURVIVOR_PROFILE_DIR
 * is set: V8's sampling heap profiler over the whole process, keeping only the samples of objects
 * that outlived the young generation's collections (`includeObjectsCollectedByMinorGC: false`),
 * whether a full collection took them later or not. Those are what the scavenger copies and
 * promotes, so this says which code makes the garbage collector work, where an ordinary
 * allocation profile says which code allocates. It found, on December 4, 2026, the flat copies
 * of stored values that were a fifth of what the origin promoted (README, Benchmarks).
 *
 * At exit it writes the profile to the path in BENCH_SURVIVOR_PROFILE (one per process; the bench
 * names it after the region and the phase the process was started for). Chrome DevTools' Memory
 * tab opens it; `node bench/heapProfileTop.mjs FILE` lists it by source line. The sampler costs
 * the process some CPU, so figures from a run with it are not comparable with others.
 */
import * as fs from "node:fs"
import { Session } from "node:inspector"

const file = process.env["BENCH_SURVIVOR_PROFILE"]
if (file !== undefined && file !== "") {
  const session = new Session()
  session.connect()
  session.post("HeapProfiler.enable")
  session.post("HeapProfiler.startSampling", {
    samplingInterval: 8192,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: false
  })
  // A session of the main thread answers synchronously, so this completes inside the exit event.
  process.on("exit", () => {
    session.post("HeapProfiler.stopSampling", (error, result) => {
      if (error === null) fs.writeFileSync(file, JSON.stringify(result.profile))
      else process.stderr.write(`survivor profile not written: ${error.message}\n`)
    })
  })
}
