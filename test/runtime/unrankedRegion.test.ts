/**
 * Under SourcePriority, a node whose store holds changes of a region that `region_priorities`
 * does not rank refuses to start, naming the key and the region: the resolver could not order
 * such a change against a concurrent one, so reads, writes and applies of its tuple would fail.
 * The natural way to get there: a region is removed for good, and its rank dropped with it.
 */
import { afterAll, describe, expect, it } from "vitest"
import * as fs from "node:fs"
import * as path from "node:path"
import * as ApiClient from "../../src/runtime/ApiClient.js"
import * as Serve from "./fixtures/serveProcess.js"

const REGIONS = ["us-west-1", "eu-central-1", "ap-southeast-1"] as const
const VAULT = "acme"
/** Bound of every wait; generous, since the machine may be loaded by other work. */
const waitMs = 30_000

/** The generated cluster's file under SourcePriority with `ranks`, declaring `declared` alone. */
const sourcePriorityYaml = (ports: ReadonlyArray<Serve.RegionPorts>, local: string, declared: ReadonlyArray<string>, ranks: ReadonlyArray<string>): string =>
  Serve.clusterYaml(
    ports.filter((entry) => declared.includes(entry.region)),
    local,
    { extra: ["region_priorities:", ...ranks.map((region) => `  - ${region}`)].join("\n") }
  ).replace("conflict_resolution: LastWriteWins", "conflict_resolution: SourcePriority")

describe("a store holding changes of a region region_priorities does not rank", () => {
  const dir = Serve.tempDir("unranked")
  const processes: Array<Serve.ServeProcess> = []
  afterAll(async () => {
    await Promise.all(processes.map((process) => Serve.stop(process, 3_000)))
    fs.rmSync(dir, { recursive: true, force: true })
  }, 20_000)

  it("makes serve refuse to start, naming the key and the region; with the rank kept it starts and still holds the change", async () => {
    const ports = await Serve.allocate(REGIONS)
    const port = (region: string) => ports.find((entry) => entry.region === region)!
    const configFile = (region: string) => path.join(dir, `${region}.yaml`)
    const args = (region: string) => ["--config", configFile(region), "--http-port", String(port(region).httpPort), "--data-dir", path.join(dir, "data", region), "--seed", "5"]
    for (const region of REGIONS) fs.writeFileSync(configFile(region), sourcePriorityYaml(ports, region, REGIONS, ["ap-southeast-1", "eu-central-1", "us-west-1"]))
    const running = new Map(REGIONS.map((region) => [region, Serve.spawnServe(args(region))] as const))
    processes.push(...running.values())
    await Promise.all(REGIONS.map((region) => Serve.awaitReady(running.get(region)!, port(region).httpPort)))

    // A change written in ap-southeast-1 reaches us-west-1; then ap-southeast-1 is removed for good.
    const ap = ApiClient.make(`127.0.0.1:${port("ap-southeast-1").grpcPort}`, { token: Serve.token })
    const us = ApiClient.make(`127.0.0.1:${port("us-west-1").grpcPort}`, { token: Serve.token })
    const has = async () => (await us.read(VAULT, "document:removed")).some((tuple) => tuple.subject === "user:from-ap")
    try {
      await ap.insert(VAULT, [{ resource: "document:removed", relation: "viewer", subject: "user:from-ap" }])
      expect(await Serve.eventually(has, waitMs), "replicated to us-west-1").toBe(true)
    } finally {
      ap.close()
      us.close()
    }
    await Promise.all([...running.values()].map((process) => Serve.stop(process, 5_000)))

    // us-west-1 restarted without the region and without its rank: refused.
    fs.writeFileSync(configFile("us-west-1"), sourcePriorityYaml(ports, "us-west-1", ["us-west-1", "eu-central-1"], ["eu-central-1", "us-west-1"]))
    const refused = Serve.spawnServe(args("us-west-1"))
    processes.push(refused)
    // Whichever comes first: its exit, or its readiness (the refusal missing), which fails at once.
    const outcome = await Promise.race([refused.exited, Serve.awaitReady(refused, port("us-west-1").httpPort).then(() => "ready" as const, () => "exited" as const)])
    expect(outcome, "the node started on a store holding an unranked region's change").not.toBe("ready")
    const exit = await refused.exited
    expect(exit.code, refused.stderr()).toBe(2)
    expect(refused.stderr()).toContain("replication.region_priorities: expected a rank for every region whose changes this node's store holds, and 'ap-southeast-1' has none")

    // The rank kept, in its place: it starts, and the removed region's change is still there.
    fs.writeFileSync(configFile("us-west-1"), sourcePriorityYaml(ports, "us-west-1", ["us-west-1", "eu-central-1"], ["ap-southeast-1", "eu-central-1", "us-west-1"]))
    const started = Serve.spawnServe(args("us-west-1"))
    processes.push(started)
    await Serve.awaitReady(started, port("us-west-1").httpPort)
    const client = ApiClient.make(`127.0.0.1:${port("us-west-1").grpcPort}`, { token: Serve.token })
    try {
      expect((await client.read(VAULT, "document:removed")).map((tuple) => tuple.subject)).toEqual(["user:from-ap"])
    } finally {
      client.close()
    }
  }, 120_000)
})
