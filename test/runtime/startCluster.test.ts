/**
 * `npm start -- --once` end to end: the local two-region cluster comes up from the examples,
 * the demonstration's writes, delete and reverse write arrive, the endpoints are listed, and
 * every child drains and exits before the script exits 0. It uses the examples' fixed gRPC
 * ports (50051, 50052). Both lie in Linux's ephemeral range, so any socket another test opens
 * may be given one of them for as long as it lives; a fresh-clone CI run failed twice that way,
 * the second time with the port held past the script's 10 s wait. Where the test may (root, with
 * `ip`), the script therefore runs in a network namespace of its own, whose loopback nothing else
 * uses; elsewhere it runs on the host's and fails with the script's message when a port is held.
 */
import { describe, expect, it } from "@effect/vitest"
import { execFileSync, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import * as Serve from "./fixtures/serveProcess.js"

/** The whole run is bounded; the script's own waits are shorter. */
const runTimeoutMs = 90_000

/** A namespace with only a loopback, or undefined where this process may not create one. */
const privateLoopback = (): string | undefined => {
  if (process.platform !== "linux" || process.getuid?.() !== 0) return undefined
  const namespace = `inferadb-start-${process.pid}`
  try {
    execFileSync("ip", ["netns", "add", namespace], { stdio: "ignore" })
    execFileSync("ip", ["-n", namespace, "link", "set", "lo", "up"], { stdio: "ignore" })
    return namespace
  } catch {
    removeNamespace(namespace)
    return undefined
  }
}

const removeNamespace = (namespace: string): void => {
  try {
    execFileSync("ip", ["netns", "del", namespace], { stdio: "ignore" })
  } catch {
    // Not created, or already gone.
  }
}

const runOnce = (dataDir: string, namespace: string | undefined) =>
  new Promise<{ readonly code: number | null; readonly output: string }>((resolve) => {
    const script = [process.execPath, "--import", "tsx", "scripts/start-cluster.ts", "--data-dir", dataDir]
    // `ip netns exec` execs the script in place, so the timeout's SIGKILL still reaches it.
    const [command, ...args] = namespace === undefined ? script : ["ip", "netns", "exec", namespace, ...script]
    const child = spawn(command!, args, {
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
      const namespace = privateLoopback()
      try {
        const { code, output } = await runOnce(dataDir, namespace)
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
        if (namespace !== undefined) removeNamespace(namespace)
        fs.rmSync(dataDir, { recursive: true, force: true })
      }
    },
    runTimeoutMs + 10_000
  )
})
