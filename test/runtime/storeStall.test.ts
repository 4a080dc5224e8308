/**
 * The store watchdog on a real `serve` process (`StoreWatch`): a node whose lmdb commit never
 * completes (the `stall-store` canary holds its group commit after 40 commits, as the commit that
 * never settled in a CI run of December 6, 2026) times out the writes sent to it, ends itself
 * with exit 3 and an ERROR line saying what its store knew, and started again on the same disk
 * without the canary it holds every write it acknowledged.
 */
import { afterAll, describe, expect, it } from "vitest"
import * as fs from "node:fs"
import * as path from "node:path"
import * as ApiClient from "../../src/runtime/ApiClient.js"
import * as Serve from "./fixtures/serveProcess.js"

const VAULT = "acme"
/** Bound of every wait; generous, since the machine may be loaded by other work. */
const waitMs = 60_000

describe("a node whose store stalls", () => {
  const dir = Serve.tempDir("store-stall")
  const processes: Array<Serve.ServeProcess> = []
  afterAll(async () => {
    await Promise.all(processes.map((process) => Serve.kill(process)))
    fs.rmSync(dir, { recursive: true, force: true })
  }, 20_000)

  it("ends itself with exit 3 about 15 s after its commits stop, and restarted on its disk holds every write it acknowledged", async () => {
    const [port] = await Serve.allocate(["us-west-1"])
    const configFile = path.join(dir, "node.yaml")
    fs.writeFileSync(configFile, Serve.clusterYaml([port!], "us-west-1"))
    const args = ["--config", configFile, "--http-port", String(port!.httpPort), "--data-dir", path.join(dir, "data"), "--seed", "7"]
    const stalling = Serve.spawnServe([...args, "--canary", "stall-store"])
    processes.push(stalling)
    await Serve.awaitReady(stalling, port!.httpPort)
    expect(stalling.output()).toContain("canary: stall-store")

    // Writes one after another until one is not answered: the store's commits stopped.
    const client = ApiClient.make(`127.0.0.1:${port!.grpcPort}`, { token: Serve.token, callTimeoutMs: 2_000 })
    const acknowledged: Array<string> = []
    let unanswered: unknown
    try {
      for (let index = 0; index < 200 && unanswered === undefined; index++) {
        const subject = `user:u${index}`
        await client.insert(VAULT, [{ resource: "document:stall", relation: "viewer", subject }]).then(
          () => void acknowledged.push(subject),
          (error: unknown) => void (unanswered = error)
        )
      }
    } finally {
      client.close()
    }
    expect(unanswered, "a write went unanswered").toBeDefined()
    expect(acknowledged.length).toBeGreaterThan(0)
    const stalledAtMs = Date.now()

    const exit = await Promise.race([stalling.exited, new Promise<"running">((resolve) => setTimeout(() => resolve("running"), waitMs))])
    expect(exit, stalling.stderr()).toEqual({ code: 3, signal: null })
    // About 15 s without a transaction ending, looked at every 2 s (and the last write's 2 s).
    expect(Date.now() - stalledAtMs).toBeGreaterThan(10_000)
    expect(stalling.stderr()).toMatch(/serve failed: the store has ended no transaction for \d+ ms with \d+ pending .*\[an lmdb commit of \d+ transaction\(s\) handed over \d+ ms ago has not settled \(lmdb's committed data lacks its last write: lmdb's writer never committed it\), \d+ waiting behind it; the writer lock (free|held by a transaction body)\]: ending this node/)
    expect(stalling.output()).toMatch(/ERROR .*the store has ended no transaction/)

    // Its supervisor's restart, on the same disk, without the canary: every acknowledged write is there.
    const restarted = Serve.spawnServe(args)
    processes.push(restarted)
    await Serve.awaitReady(restarted, port!.httpPort)
    const reader = ApiClient.make(`127.0.0.1:${port!.grpcPort}`, { token: Serve.token })
    try {
      const held = new Set((await reader.read(VAULT, "document:stall")).map((tuple) => tuple.subject))
      expect(acknowledged.filter((subject) => !held.has(subject))).toEqual([])
    } finally {
      reader.close()
    }
  }, 150_000)
})
