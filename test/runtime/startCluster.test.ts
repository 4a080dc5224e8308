/**
 * `npm start -- --once` end to end: the local two-region cluster comes up from the examples,
 * the demonstration's writes, delete and reverse write arrive, the endpoints are listed, and
 * every child drains and exits before the script exits 0. It uses the examples' fixed gRPC
 * ports (50051, 50052), so it fails with a clear message when another cluster holds them.
 */
import { describe, expect, it } from "@effect/vitest"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import * as Serve from "./fixtures/serveProcess.js"

/** The whole run is bounded; the script's own waits are shorter. */
const runTimeoutMs = 90_000

const runOnce = (dataDir: string) =>
  new Promise<{ readonly code: number | null; readonly output: string }>((resolve) => {
    const child = spawn(process.execPath, ["--import", "tsx", "scripts/start-cluster.ts", "--data-dir", dataDir], {
      cwd: Serve.root,
      env: { ...process.env, INFERADB_START_ONCE: "1", NO_COLOR: "1" },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let output = ""
    child.stdout.on("data", (chunk: Buffer) => void (output += chunk.toString("utf8")))
    child.stderr.on("data", (chunk: Buffer) => void (output += chunk.toString("utf8")))
    const timer = setTimeout(() => child.kill("SIGKILL"), runTimeoutMs)
    child.once("exit", (code) => {
      clearTimeout(timer)
      resolve({ code, output })
    })
  })

describe("npm start", () => {
  it(
    "with --once it starts both regions, shows writes and a delete crossing both ways, lists the endpoints and exits 0 after every region drained",
    async () => {
      const dataDir = Serve.tempDir("start")
      try {
        const { code, output } = await runOnce(dataDir)
        expect(output, output).toContain("both regions answer /readyz")
        expect(output).toMatch(/✓ eu-central-1 has document:readme#viewer@user:alice/)
        expect(output).toMatch(/✓ eu-central-1 no longer has document:readme#editor@user:bob/)
        expect(output).toMatch(/✓ us-west-1 has document:roadmap#owner@user:dana/)
        expect(output).toMatch(/us-west-1 +gRPC 127\.0\.0\.1:50051 +health http:\/\/127\.0\.0\.1:\d+\/healthz +metrics http:\/\/127\.0\.0\.1:\d+\/metrics/)
        expect(output).toContain('"service": "inferadb-engine"')
        expect(output).toMatch(/\[us-west-1\] +\S+Z INFO {2}us-west-1\/node1 strategy: ActiveActive/)
        expect(output).toMatch(/\[eu-central-1\] +\S+Z INFO {2}eu-central-1\/node2 drained: every target acknowledged the log up to position \d+/)
        expect(output).toContain("every region drained and exited")
        expect(code, output).toBe(0)
        expect(fs.existsSync(path.join(dataDir, "us-west-1"))).toBe(true)
      } finally {
        fs.rmSync(dataDir, { recursive: true, force: true })
      }
    },
    runTimeoutMs + 10_000
  )
})
