/**
 * The acceptance test of "no acknowledged write is lost", with real processes: three regions
 * (us-west-1 with two nodes), every node on its own lmdb directory, ActiveActive full mesh, and
 * a continuous write load through the public gRPC API on every node while nodes are killed
 * (`kill -9`) and restarted on their data, and drained (SIGTERM) and restarted on a wiped
 * directory; and the drain of a node that is not its region's lowest id, whose peers are all
 * down when it is asked to stop. Afterwards every node of every region must serve every acknowledged write, none
 * of the acknowledged deletes, nothing nobody wrote, and all must agree on the whole set.
 *
 * The judge knows only the history of client operations: what each node acknowledged, and
 * what failed (whose outcome is uncertain: a call cut by a crash may have committed).
 */
import { describe, expect, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as path from "node:path"
import * as ApiClient from "../../src/runtime/ApiClient.js"
import * as Serve from "./fixtures/serveProcess.js"

const NODES_PER_REGION = { "us-west-1": 2, "eu-central-1": 1, "ap-southeast-1": 1 } as const
const VAULT = "acme"
const RELATION = "viewer"
/** Client loops writing to each node, each to a resource of its own. */
const loopsPerNode = 2
/** Every how many inserts a loop deletes, right after it was acknowledged, the tuple it inserted. */
const deleteEvery = 4
/** How long a loop waits after a failed call before its next one (a down node fails fast). */
const failureBackoffMs = 100
/** Acknowledged writes every running loop must add before the next step (the load goes on). */
const progressAcksMin = 10
/** Bounds of the waits on events; generous, since the machine may be loaded. */
const readyTimeoutMs = 60_000
const progressTimeoutMs = 60_000
const stopGraceMs = 30_000
const drainTimeoutMs = 20_000
const convergenceTimeoutMs = 120_000
const convergencePollMs = 500

interface Node {
  readonly ports: Required<Serve.NodePorts>
  readonly id: string
  readonly configFile: string
  readonly dataDir: string
  readonly client: ApiClient.ApiClient
  process: Serve.ServeProcess | undefined
  /** Bumped before the node's disk is wiped: a write is known causal only within one disk's life. */
  disk: number
}

/** What the history says one tuple must be after the load. */
type Expected = "present" | "absent" | "uncertain"

interface TupleRecord {
  readonly resource: string
  readonly subject: string
  readonly expected: Expected
  readonly node: string
  readonly atMs: number
  readonly note: string
}

interface Loop {
  readonly node: Node
  readonly resource: string
  acks: number
  failures: number
  done: Promise<void>
}

/** The client operations' history: per tuple, the last thing its writer learned about it. */
class History {
  readonly startedMs = Date.now()
  readonly tuples = new Map<string, TupleRecord>()
  readonly events: Array<string> = []

  record(entry: Omit<TupleRecord, "atMs">): void {
    this.tuples.set(`${entry.resource} ${entry.subject}`, { ...entry, atMs: this.elapsedMs() })
  }

  event(text: string): void {
    this.events.push(`${this.elapsedMs()} ms: ${text}`)
  }

  elapsedMs(): number {
    return Date.now() - this.startedMs
  }
}

const attempt = async (call: () => Promise<unknown>): Promise<boolean> => {
  try {
    await call()
    return true
  } catch {
    return false
  }
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * One client loop: inserts `user:0`, `user:1`, ... into its resource on its node, and deletes
 * every `deleteEvery`-th right after its insert was acknowledged. A delete counts as definite
 * only when insert and delete were both taken by the same disk (so the delete saw the insert
 * and causally follows it); across a wipe its outcome is uncertain.
 */
const runLoop = async (loop: Loop, history: History, running: () => boolean): Promise<void> => {
  const { node, resource } = loop
  for (let index = 0; running(); index++) {
    const subject = `user:${index}`
    const tuple = { resource, relation: RELATION, subject }
    const disk = node.disk
    const inserted = await attempt(() => node.client.insert(VAULT, [tuple]))
    history.record({ resource, subject, expected: inserted ? "present" : "uncertain", node: node.id, note: `insert #${index} (disk ${disk})` })
    if (inserted) loop.acks++
    else {
      loop.failures++
      await pause(failureBackoffMs)
      continue
    }
    if (index % deleteEvery !== 0 || node.disk !== disk) continue
    const deleted = await attempt(() => node.client.delete(VAULT, [tuple]))
    const expected: Expected = deleted && node.disk === disk ? "absent" : "uncertain"
    history.record({ resource, subject, expected, node: node.id, note: `delete after insert #${index} (disk ${disk}, ${deleted ? "acknowledged" : "failed"})` })
    if (deleted) loop.acks++
    else {
      loop.failures++
      await pause(failureBackoffMs)
    }
  }
}

/** Waits until every loop for which `include` holds acknowledged `progressAcksMin` more writes. */
const awaitProgress = async (loops: ReadonlyArray<Loop>, include: (loop: Loop) => boolean, what: string): Promise<void> => {
  const from = new Map(loops.map((loop) => [loop, loop.acks]))
  const progressed = await Serve.eventually(
    () => loops.filter(include).every((loop) => loop.acks >= from.get(loop)! + progressAcksMin),
    progressTimeoutMs,
    100
  )
  const stuck = loops.filter((loop) => include(loop) && loop.acks < from.get(loop)! + progressAcksMin).map((loop) => loop.resource)
  expect(progressed, `${what}: loops without progress: ${stuck.join(", ")}`).toBe(true)
}

/** What one node serves: per resource, its subjects. */
type Served = ReadonlyMap<string, ReadonlySet<string>>

const served = async (node: Node, resources: ReadonlyArray<string>): Promise<Served> => {
  const result = new Map<string, ReadonlySet<string>>()
  for (const resource of resources) {
    const tuples = await node.client.read(VAULT, resource)
    result.set(resource, new Set(tuples.filter((tuple) => tuple.relation === RELATION).map((tuple) => tuple.subject)))
  }
  return result
}

/** Everything wrong with what one node serves, judged against the history alone. */
const problems = (history: History, node: string, state: Served): ReadonlyArray<string> => {
  const found: Array<string> = []
  const describe = (record: TupleRecord) => `${record.resource} ${record.subject} (${record.note} at ${record.node}, ${record.atMs} ms)`
  for (const record of history.tuples.values()) {
    const present = state.get(record.resource)?.has(record.subject) ?? false
    if (record.expected === "present" && !present) found.push(`${node} misses acknowledged ${describe(record)}`)
    if (record.expected === "absent" && present) found.push(`${node} serves deleted ${describe(record)}`)
  }
  for (const [resource, subjects] of state) {
    for (const subject of subjects) if (!history.tuples.has(`${resource} ${subject}`)) found.push(`${node} serves ${resource} ${subject}, which nobody wrote`)
  }
  return found
}

const fingerprint = (state: Served): string =>
  [...state].map(([resource, subjects]) => `${resource}: ${[...subjects].sort().join(",")}`).sort().join("\n")

/** Nodes of a generated cluster, each on its own lmdb directory under one temporary directory. */
const makeCluster = async (nodesPerRegion: Readonly<Record<string, number>>) => {
  const dir = Serve.tempDir("durability")
  const ports = await Serve.allocateNodes(nodesPerRegion)
  const nodes: Array<Node> = ports.map((entry) => {
    const configFile = path.join(dir, `${entry.node}.yaml`)
    fs.writeFileSync(configFile, Serve.clusterYaml(ports, entry.region, { nodeId: entry.node }))
    return {
      ports: entry,
      id: entry.node,
      configFile,
      dataDir: path.join(dir, "data", entry.node),
      client: ApiClient.make(`127.0.0.1:${entry.grpcPort}`, { token: Serve.token }),
      process: undefined,
      disk: 0
    }
  })
  return {
    nodes,
    node: (id: string): Node => nodes.find((candidate) => candidate.id === id)!,
    /** Spawns the node on its directory and waits until it takes writes. */
    start: async (entry: Node): Promise<void> => {
      const args = ["--config", entry.configFile, "--http-port", String(entry.ports.httpPort), "--data-dir", entry.dataDir]
      entry.process = Serve.spawnServe([...args, "--seed", "11", "--drain-timeout-ms", String(drainTimeoutMs)])
      await Serve.awaitReady(entry.process, entry.ports.httpPort, readyTimeoutMs)
    },
    /** Deletes the node's directory, as a lost disk; only once its process exited. */
    wipe: (entry: Node): void => fs.rmSync(entry.dataDir, { recursive: true, force: true }),
    /** Stops every node that runs and deletes every directory. */
    close: async (): Promise<void> => {
      for (const entry of nodes) entry.client.close()
      await Promise.all(nodes.map((entry) => (entry.process === undefined ? undefined : Serve.stop(entry.process, stopGraceMs))))
      fs.rmSync(dir, { recursive: true, force: true })
    }
  }
}

describe("the durability judge", () => {
  it("reports an acknowledged write a node misses, a deleted one it serves and one nobody wrote, and passes the uncertain ones either way", () => {
    const history = new History()
    const write = (subject: string, expected: Expected) => history.record({ resource: "document:judge", subject, expected, node: "n1", note: "canary" })
    write("user:kept", "present")
    write("user:gone", "absent")
    write("user:maybe", "uncertain")
    write("user:lost", "present")
    const state: Served = new Map([["document:judge", new Set(["user:kept", "user:gone", "user:ghost"])]])
    const found = problems(history, "n1", state)
    expect(found).toHaveLength(3)
    expect(found.join("\n")).toMatch(/misses acknowledged document:judge user:lost/)
    expect(found.join("\n")).toMatch(/serves deleted document:judge user:gone/)
    expect(found.join("\n")).toMatch(/serves document:judge user:ghost, which nobody wrote/)
    expect(problems(history, "n1", new Map([["document:judge", new Set(["user:kept", "user:lost", "user:maybe"])]]))).toEqual([])
  })
})

describe("serve under faults, on per-node lmdb disks", () => {
  it("no acknowledged write is lost through kill -9 and restarts, and a drained node restarted on a wiped disk; every node ends with the same set", async () => {
    const cluster = await makeCluster(NODES_PER_REGION)
    const { nodes, node } = cluster
    const history = new History()
    const start = async (entry: Node): Promise<void> => {
      await cluster.start(entry)
      history.event(`${entry.id} ready`)
    }
    let running = true
    const loops: Array<Loop> = []
    try {
      await Promise.all(nodes.map(start))
      for (const entry of nodes) {
        for (let index = 0; index < loopsPerNode; index++) loops.push({ node: entry, resource: `document:${entry.id}-${index}`, acks: 0, failures: 0, done: Promise.resolve() })
      }
      for (const loop of loops) loop.done = runLoop(loop, history, () => running)
      await awaitProgress(loops, () => true, "before the faults")

      // kill -9 one node of the two-node region, then the single node of a region; each comes
      // back on its own data while the others keep taking writes.
      for (const victim of [node("us-west-1-node2"), node("eu-central-1-node1")]) {
        history.event(`kill -9 ${victim.id}`)
        expect((await Serve.kill(victim.process!)).signal).toBe("SIGKILL")
        await awaitProgress(loops, (loop) => loop.node !== victim, `while ${victim.id} is down`)
        await start(victim)
        expect(victim.process!.output()).toMatch(/bootstrap: not needed|bootstrap \(store held [1-9]\d* log entries\)/)
        await awaitProgress(loops, () => true, `after ${victim.id} restarted`)
      }

      // SIGTERM (drain) the second node of the two-node region, then a single-node region's node,
      // and bring each back on an empty disk: its history returns over CatchUp.
      for (const wiped of [node("us-west-1-node2"), node("ap-southeast-1-node1")]) {
        wiped.disk++
        history.event(`SIGTERM ${wiped.id}`)
        const exit = await Serve.stop(wiped.process!, stopGraceMs)
        history.event(`${wiped.id} exited: ${wiped.process!.output().split("\n").filter((line) => line.includes("drain")).join(" / ")}`)
        expect(exit).toEqual({ code: 0, signal: null })
        expect(wiped.process!.output()).toMatch(/drained: every target acknowledged the log up to position \d+/)
        cluster.wipe(wiped)
        await awaitProgress(loops, (loop) => loop.node !== wiped, `while ${wiped.id} is down`)
        await start(wiped)
        expect(wiped.process!.output()).toMatch(/bootstrap \(store held 0 log entries\): paging every peer's log over CatchUp/)
        await awaitProgress(loops, () => true, `after ${wiped.id} restarted on a wiped disk`)
      }

      running = false
      await Promise.all(loops.map((loop) => loop.done))
      history.event(`load stopped: ${loops.reduce((sum, loop) => sum + loop.acks, 0)} acknowledged, ${loops.reduce((sum, loop) => sum + loop.failures, 0)} failed`)

      const resources = loops.map((loop) => loop.resource)
      const look = async () => Promise.all(nodes.map(async (entry) => ({ id: entry.id, state: await served(entry, resources) })))
      const settled = (states: Awaited<ReturnType<typeof look>>) =>
        states.every(({ id, state }) => problems(history, id, state).length === 0) && new Set(states.map(({ state }) => fingerprint(state))).size === 1
      await Serve.eventually(async () => settled(await look()), convergenceTimeoutMs, convergencePollMs)
      history.event("converged, or the bound passed")
      const states = await look()
      console.log(history.events.join("\n"))
      const found = states.flatMap(({ id, state }) => problems(history, id, state))
      expect(found.slice(0, 50), `${found.length} problems; events:\n${history.events.join("\n")}`).toEqual([])
      const reference = fingerprint(states[0]!.state)
      for (const { id, state } of states) expect(fingerprint(state) === reference, `${id} agrees with ${states[0]!.id}`).toBe(true)
      const count = (expected: Expected) => [...history.tuples.values()].filter((record) => record.expected === expected).length
      expect(count("present")).toBeGreaterThan(loops.length * progressAcksMin)
      expect(count("absent")).toBeGreaterThan(0)
    } finally {
      running = false
      await Promise.all(loops.map((loop) => loop.done))
      await cluster.close()
    }
  }, 300_000)

  it("a drained node that is not its region's lowest id waits until its sibling and every target acknowledged, so wiping it afterwards loses nothing", async () => {
    const cluster = await makeCluster({ "us-west-1": 2, "eu-central-1": 1 })
    const [first, second, europe] = [cluster.node("us-west-1-node1"), cluster.node("us-west-1-node2"), cluster.node("eu-central-1-node1")]
    const tuple = { resource: "document:drained", relation: RELATION, subject: "user:last-word" }
    try {
      await Promise.all(cluster.nodes.map(cluster.start))
      // Every peer of the second node is down: the write it acknowledges exists on its disk only.
      for (const peer of [first, europe]) expect((await Serve.stop(peer.process!, stopGraceMs)).code).toBe(0)
      await second.client.insert(VAULT, [tuple])
      second.process!.child.kill("SIGTERM")
      expect(await Serve.eventually(() => second.process!.output().includes("SIGTERM: refusing new client writes"), readyTimeoutMs)).toBe(true)
      await Promise.all([first, europe].map(cluster.start))
      const stillDraining = second.process!.child.exitCode === null
      expect(await second.process!.exited).toEqual({ code: 0, signal: null })
      expect(second.process!.output()).toMatch(/drained: every target acknowledged the log up to position [1-9]\d*/)
      cluster.wipe(second)
      await cluster.start(second)
      for (const entry of cluster.nodes) {
        const holds = await Serve.eventually(async () => (await served(entry, [tuple.resource])).get(tuple.resource)!.has(tuple.subject), convergenceTimeoutMs / 4, 200)
        expect(holds, `${entry.id} serves the write acknowledged before the drain`).toBe(true)
      }
      expect(stillDraining, "the drain waited for the peers to come back").toBe(true)
    } finally {
      await cluster.close()
    }
  }, 300_000)
})
