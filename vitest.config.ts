import { defineConfig } from "vitest/config"

// Two projects run side by side, one worker each, so `npm test` uses both cores:
// - "processes" (test/chaos, test/runtime): tests that start real `serve` nodes, gRPC servers,
//   stores on disk and network namespaces. They mostly wait on real time and other processes.
// - "sim": the simulator, the replication logic over simulated layers, and everything else.
//   Mostly CPU in the worker itself.
// Vitest runs projects of different pools at the same time and projects of one pool one after
// another, so the two use different pools (forks and threads), each with a single worker.
// Inside a worker the files run one after another with no per-file isolation: importing effect
// costs ~0.5 s per process, so tests share modules and must not rely on module-level mutable
// state. Real-process tests wait on events with generous bounds, so the simulator's load beside
// them is the busy machine they must pass on anyway.
const processes = ["test/chaos/**/*.test.ts", "test/runtime/**/*.test.ts"]

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
      { extends: true, test: { name: "processes", include: processes, pool: "forks" } },
      { extends: true, test: { name: "sim", include: ["test/**/*.test.ts"], exclude: processes, pool: "threads" } }
    ]
  }
})
