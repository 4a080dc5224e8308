import { defineConfig } from "vitest/config"

// One worker process, no per-file isolation: importing effect costs ~0.5 s per process,
// so tests share modules. Tests therefore must not rely on module-level mutable state.
export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    reporters: ["default", "./test/summaryReporter.ts"],
    isolate: false,
    pool: "threads",
    poolOptions: { threads: { singleThread: true } },
    testTimeout: 60_000,
    hookTimeout: 60_000
  }
})
