import { defineConfig } from "vitest/config"

// `npm test` uses both cores where it safely can:
// - first, two projects side by side, one worker each: "processes" (test/runtime and the unit
//   tests of test/chaos: gRPC servers, stores on disk, `serve` end to end; and the files below
//   that start processes) in a child process, and
//   "sim" (the simulator, the replication logic over simulated layers, everything else) in a
//   worker thread. Vitest runs projects of different pools at the same time and projects of one
//   pool one after another, hence forks for one and threads for the other.
// - then "chaos" (test/chaos/chaos.e2e.test.ts) alone: its scenarios put faults at fixed real
//   times on five real nodes, their proxies and network namespaces, and beside the simulator's
//   CPU their processes started seconds late (a kill -9 scenario over its 45 s bound, a node
//   SIGKILLed by the wipe that follows its drain: CI run of December 4, 2026).
// Inside a worker the files run one after another with no per-file isolation: importing effect
// costs ~0.5 s per process, so tests share modules and must not rely on module-level mutable
// state.
const chaos = ["test/chaos/chaos.e2e.test.ts"]
// Also every other file whose tests start the command line, a browser or a script in child
// processes: in "sim" they made it the longer project by two minutes (299 s against 169 s of
// files, CI run of December 4, 2026), and the first group lasts as long as its longer project.
const processes = [
  "test/chaos/**/*.test.ts",
  "test/runtime/**/*.test.ts",
  "test/cli/**/*.test.ts",
  "test/bin/**/*.test.ts",
  "test/scripts/**/*.test.ts",
  "test/report/Browser.test.ts",
  "test/sim/SwarmJobs.test.ts",
  "test/sim/Determinism.test.ts",
  "test/sim/Report.test.ts"
]

export default defineConfig({
  test: {
    reporters: ["default", "./test/summaryReporter.ts"],
    isolate: false,
    poolOptions: {
      threads: { singleThread: true, isolate: false },
      forks: { singleFork: true, isolate: false }
    },
    testTimeout: 60_000,
    hookTimeout: 60_000,
    projects: [
      { extends: true, test: { name: "processes", include: processes, exclude: chaos, pool: "forks", sequence: { groupOrder: 0 } } },
      { extends: true, test: { name: "sim", include: ["test/**/*.test.ts"], exclude: processes, pool: "threads", sequence: { groupOrder: 0 } } },
      { extends: true, test: { name: "chaos", include: chaos, pool: "forks", sequence: { groupOrder: 1 } } }
    ]
  }
})
