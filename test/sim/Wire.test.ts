/**
 * How messages travel on the simulated network (`src/sim/Codec.ts`): as frozen objects or as
 * the protobuf bytes production sends, and with bytes, disks that keep the byte-oriented
 * backends' stored text (`StoreFaults.StoredAs`). A run takes the same path either way (the
 * trace names messages by identity, so the hashes agree: the codec and the stored form are
 * faithful over whole runs, crashes included), objects cannot be changed by the side that did
 * not make them, and bytes that are not a message are answered `Refused{Malformed}` without
 * reaching the handler.
 */
import { Effect, Either } from "effect"
import { describe, expect, it } from "vitest"
import type * as Message from "../../src/replication/Message.js"
import type * as Network from "../../src/replication/Network.js"
import * as Random from "../../src/replication/Random.js"
import * as Codec from "../../src/sim/Codec.js"
import { type RunResult, runScenario } from "../../src/sim/Run.js"
import * as SimNetwork from "../../src/sim/SimNetwork.js"
import * as Swarm from "../../src/sim/Swarm.js"
import { World } from "../../src/sim/World.js"
import * as Fixtures from "./fixtures/scenarios.js"

/**
 * A run's result without what differs by design: wall time, bytes counted only when bytes travel
 * or are stored, and Effect operations (a text disk's Store reads its dictionary of origin keys
 * when it opens, `OriginIds`: a read transaction per node start that a decoded disk does not need).
 */
const comparable = ({ wallMs: _wallMs, effectOps: _effectOps, network, stores, ...rest }: RunResult) => ({
  ...rest,
  network: { ...network, bytes: 0 },
  stores: Object.fromEntries(Object.entries(stores).map(([region, store]) => [region, { ...store, bytes: 0 }]))
})

const batch = (): Message.ReplicateBatch => ({
  _tag: "ReplicateBatch",
  batchId: "b1",
  fromRegion: "us",
  fromNode: "us-1",
  changes: [
    {
      id: { origin: "us", seq: 1 },
      op: "insert",
      tuple: { vault: "acme", resource: "document:readme", relation: "viewer", subject: "user:alice" },
      timestamp: { physicalMs: 5, logical: 0 },
      originRegion: "us",
      originNode: "us-1",
      originRevision: 1,
      committedAtMs: 5,
      context: {}
    }
  ]
})

describe("wire modes of the simulated network", () => {
  for (const [file, seed] of [["scenarios/ring-partitions.yaml", 2], ["scenarios/crash-restart.yaml", 1]] as const) {
    it(`${file} seed ${seed} gives the same trace hash and result with messages as objects and as bytes, disks decoded and as text`, () => {
      const scenario = Fixtures.load(file)
      const objects = runScenario({ ...scenario, wire: "objects" }, seed, { wallClock: Fixtures.wallClock })
      const bytes = runScenario({ ...scenario, wire: "bytes" }, seed, { wallClock: Fixtures.wallClock })
      expect(bytes.traceHash).toBe(objects.traceHash)
      expect(comparable(bytes)).toEqual(comparable(objects))
      // Those reads are a few operations per start, not a different run.
      expect(bytes.effectOps - objects.effectOps).toBeGreaterThanOrEqual(0)
      expect(bytes.effectOps - objects.effectOps).toBeLessThan(objects.effectOps / 1_000)
      expect(bytes.network.bytes).toBeGreaterThan(0)
      for (const store of Object.values(bytes.stores)) expect(store.bytes).toBeGreaterThan(0)
      for (const store of Object.values(objects.stores)) expect(store.bytes).toBe(0)
    })
  }

  it("a message sent as an object cannot be changed by its receiver nor by its sender", () => {
    const sent = batch()
    const received = Codec.carrier("objects").unpackRequest(Codec.carrier("objects").packRequest(sent))
    expect(received._tag === "Right" && received.right).toBe(sent)
    expect(() => (sent.changes as Array<unknown>).pop()).toThrow(TypeError)
    expect(() => {
      ;(sent.changes[0]!.context as Record<string, number>)["eu"] = 1
    }).toThrow(TypeError)
  })

  it("bytes that are not a request are answered Refused{Malformed} and never reach the handler", () => {
    const world = new World({ random: Random.make("wire").derive("scheduler") })
    const link: SimNetwork.Link = { latency: { kind: "fixed", ms: 10 }, loss: 0, duplicate: 0 }
    const garbling: Codec.Carrier = { ...Codec.carrier("bytes"), packRequest: () => Uint8Array.of(0xff, 0xff, 0xff) }
    const network = new SimNetwork.SimNetwork(world, Random.make("wire").derive("network"), { remote: link, local: link, links: [] }, {}, garbling)
    const host = (name: string): SimNetwork.Host => ({ name, alive: () => true, whenRunning: (_kind, callback) => callback(), fork: (effect, onExit) => onExit(Effect.runSyncExit(effect)) })
    const sender: Network.Peer = { regionId: "us", nodeId: "us-1", endpoint: "us-1:1" }
    const receiver: Network.Peer = { regionId: "eu", nodeId: "eu-1", endpoint: "eu-1:1" }
    let handled = 0
    const unavailable: Message.Response = { _tag: "Refused", reason: "Unavailable", message: "" }
    network.register(receiver, host("eu-1"), () =>
      Effect.sync(() => {
        handled++
        return unavailable
      })
    )
    const answers: Array<Message.Response | "timeout"> = []
    network.call(sender, host("us-1"), receiver, batch(), 1_000, (response) => answers.push(Either.getOrThrowWith(response, (reason) => new Error(reason))), () => answers.push("timeout"))
    world.run(5_000)
    expect(answers).toHaveLength(1)
    expect(answers[0]).toMatchObject({ _tag: "Refused", reason: "Malformed" })
    expect(handled).toBe(0)
    expect(network.stats.malformed).toBe(1)
  })

  it("a fixed share of swarm seeds sends bytes, the rest objects", () => {
    const wires = Array.from({ length: 200 }, (_, index) => Swarm.swarmScenario(index + 1).wire)
    const bytes = wires.filter((wire) => wire === "bytes").length
    expect(wires.every((wire) => wire === "bytes" || wire === "objects")).toBe(true)
    expect(bytes).toBeGreaterThan(25)
    expect(bytes).toBeLessThan(75)
  })
})
