/**
 * The Network contract over the simulated network, in virtual time: each case runs as a fiber
 * of a caller node on its own scheduler, the callee's handler as a fiber of the callee node,
 * and the world's loop drives both, as in a simulation run. Links have a fixed 5 ms latency
 * and no loss; a cut is `SimNetwork.cut` both ways (a message that arrives across it is
 * dropped, so the sender times out on its own clock), and the duplication case sets the
 * links' duplication probability to 1. The simulated network carries messages the sender
 * handed it, so there is no outside byte stream to put garbage on. It runs once per carrier:
 * `bytes` (the protobuf codec, as production) takes the whole contract; `objects` (frozen
 * message objects, most swarm runs) has no codec, so the malformed cases do not apply to it.
 * Like the gRPC run, it allows one batch in flight per endpoint.
 */
import { describe, expect, it } from "vitest"
import { Cause, Duration, Effect, type Exit } from "effect"
import * as fc from "fast-check"
import type * as Message from "../../src/replication/Message.js"
import * as Network from "../../src/replication/Network.js"
import * as Random from "../../src/replication/Random.js"
import * as WireCodec from "../../src/replication/WireCodec.js"
import * as Codec from "../../src/sim/Codec.js"
import { NodeScheduler } from "../../src/sim/Scheduler.js"
import * as SimClock from "../../src/sim/SimClock.js"
import * as SimNetwork from "../../src/sim/SimNetwork.js"
import { World } from "../../src/sim/World.js"
import { calleePeer, callerPeer, contract, type Transport } from "../replication/fixtures/networkContract.js"

/** Virtual time a case may take; every case needs far less. */
const budgetMs = 120_000

/** A simulated machine: a scheduler, a virtual clock, and a way to run fibers on them. */
const host = (world: World, random: Random.Stream, name: string, index: number) => {
  const scheduler = new NodeScheduler(name, index, random.derive(`yield/${name}`))
  world.attach(scheduler)
  const alive = () => !scheduler.dead
  const clock = SimClock.make(world, { name, alive })
  const start = <A, E>(effect: Effect.Effect<A, E>) =>
    Effect.runFork(effect.pipe(Effect.withClock(clock), Effect.withScheduler(scheduler)), { scheduler, immediate: false })
  const simHost: SimNetwork.Host = { name, alive, whenRunning: (_kind, callback) => callback(), fork: (effect, onExit) => void start(effect).addObserver(onExit) }
  return { simHost, start }
}

/**
 * `refusing`: the callee's host refuses connections while nothing serves there (else it swallows
 * them). `throughCall`: the caller sends through the network's callback form (`call`, the
 * heartbeater's path) rather than `send`.
 */
const simulated = (wire: Codec.Wire, refusing = false, throughCall = false): Transport => ({
  name: `simulated (${wire}${refusing ? ", a down node's host refuses" : ""}${throughCall ? ", through call" : ""})`,
  run: (body, options = {}) => {
    const random = Random.make("network-contract")
    const world = new World({ random: random.derive("scheduler") })
    const link: SimNetwork.Link = { latency: { kind: "fixed", ms: 5 }, loss: 0, duplicate: options.duplicateOnTheWire === true ? 1 : 0 }
    // A bound of one batch in flight, as the gRPC run has: a slot an interrupted send kept would show.
    const network = new SimNetwork.SimNetwork(world, random.derive("network"), { downRefuses: refusing ? 1 : 0, remote: link, local: link, links: [], inFlightPerTargetMax: 1 }, {}, Codec.carrier(wire))
    const caller = host(world, random, callerPeer.nodeId, 0)
    const callee = host(world, random, calleePeer.nodeId, 1)
    const callerNetwork = SimNetwork.layer(network, callerPeer, caller.simHost)
    const calleeNetwork = SimNetwork.layer(network, calleePeer, callee.simHost)
    const program = Effect.scoped(
      Effect.gen(function* () {
        const callerService = yield* Effect.provide(Network.Network, callerNetwork)
        const { serve } = yield* Effect.provide(Network.Network, calleeNetwork)
        const send = throughCall ? (request: Message.Request, timeoutMs: number) => Network.sendOver(callerService.call!)(calleePeer, request, timeoutMs) : (request: Message.Request, timeoutMs: number) => callerService.send(calleePeer, request, timeoutMs)
        return yield* body({
          send,
          serve,
          cut: Effect.sync(() => network.cut(callerPeer.regionId, calleePeer.regionId, false)),
          heal: Effect.sync(() => network.heal())
        })
      })
    )
    const fiber = caller.start(program)
    const stop = world.run(budgetMs)
    const exit: Exit.Exit<unknown, unknown> | null = fiber.unsafePoll()
    if (exit === null) return Promise.reject(new Error(`the case did not finish within ${budgetMs} virtual ms (world stopped: ${stop})`))
    return exit._tag === "Success" ? Promise.resolve(exit.value as never) : Promise.reject(Cause.squash(exit.cause))
  },
  cutFailsAs: "Timeout",
  notServingFailsAs: refusing ? "Unreachable" : "Timeout",
  // A cut is checked when a message arrives and drops it; TCP would hold it (see the gRPC run).
  cutRequestAfterHeal: "lost",
  interruptedCallee: "completes",
  notApplicable: {
    rawBytes: "the simulated network carries the typed messages it is given; no node can hand it bytes (the codec path is covered by the invalid-message cases)",
    ...(wire === "objects" ? { encoding: "the objects carrier passes frozen message objects, with no codec between the peers; scenarios with wire: bytes cover the codec" } : {})
  }
})

describe("Network contract: simulated network", () => {
  for (const wire of Codec.wires) contract(simulated(wire))
  contract(simulated("objects", true))
  contract(simulated("bytes", true, true))
})

describe("SimNetwork: a node that is not serving", () => {
  it("refuses or swallows every request of one outage alike, drawn afresh for each outage, both kinds at the configured share", () => {
    const world = new World({ random: Random.make("down").derive("scheduler") })
    const link: SimNetwork.Link = { latency: { kind: "fixed", ms: 5 }, loss: 0, duplicate: 0 }
    const network = new SimNetwork.SimNetwork(world, Random.make("down").derive("network"), { downRefuses: 0.5, remote: link, local: link, links: [] })
    const callerHost: SimNetwork.Host = { name: callerPeer.nodeId, alive: () => true, whenRunning: (_kind, callback) => callback(), fork: () => undefined }
    const request = { _tag: "Heartbeat", fromRegion: callerPeer.regionId, fromNode: callerPeer.nodeId, sentAtMs: 0 } as const
    const outcomes: Array<string> = []
    const outages: Array<ReadonlyArray<string>> = []
    for (let outage = 0; outage < 40; outage++) {
      const fates: Array<string> = []
      for (let attempt = 0; attempt < 3; attempt++) {
        const startedMs = world.nowMs
        network.call(callerPeer, callerHost, calleePeer, request, 1_000, () => fates.push("answered"), () => fates.push(`timeout after ${world.nowMs - startedMs}`), () => fates.push(`refused after ${world.nowMs - startedMs}`))
        world.run(world.nowMs + 2_000)
      }
      outages.push(fates)
      outcomes.push(fates[0]!)
      // The node serves for a moment, which ends the outage; the next one draws again.
      const incarnation: SimNetwork.Host = { name: calleePeer.nodeId, alive: () => true, whenRunning: (_kind, callback) => callback(), fork: () => undefined }
      network.register(calleePeer, incarnation, () => Effect.die("not called"))
      network.unregister(calleePeer, incarnation)
    }
    // Refused one round trip (two 5 ms trips) after the send; swallowed at the 1 s deadline.
    for (const fates of outages) expect(new Set(fates).size).toBe(1)
    expect(new Set(outcomes)).toEqual(new Set(["refused after 10", "timeout after 1000"]))
    const refusedShare = outcomes.filter((outcome) => outcome.startsWith("refused")).length / outcomes.length
    expect(refusedShare).toBeGreaterThan(0.2)
    expect(refusedShare).toBeLessThan(0.8)
    expect(network.stats.refused).toBe(3 * outcomes.filter((outcome) => outcome.startsWith("refused")).length)
  })
})

describe("SimNetwork: connections", () => {
  it("a node's first request to a peer, and its first after the peer restarted, waits one round trip for the handshake; later ones do not", () => {
    const world = new World({ random: Random.make("connections").derive("scheduler") })
    const link: SimNetwork.Link = { latency: { kind: "fixed", ms: 5 }, loss: 0, duplicate: 0 }
    const network = new SimNetwork.SimNetwork(world, Random.make("connections").derive("network"), { remote: link, local: link, links: [] })
    const caller = host(world, Random.make("connections"), callerPeer.nodeId, 0)
    const request = { _tag: "Heartbeat", fromRegion: callerPeer.regionId, fromNode: callerPeer.nodeId, sentAtMs: 0 } as const
    const answer = { _tag: "HeartbeatAck", fromRegion: calleePeer.regionId, fromNode: calleePeer.nodeId, atMs: 0 } as const
    const incarnation = () => {
      const callee = host(world, Random.make("connections"), calleePeer.nodeId, 1)
      network.register(calleePeer, callee.simHost, () => Effect.succeed(answer as never))
      return callee.simHost
    }
    const roundTrip = (): string => {
      const startedMs = world.nowMs
      let fate = "none"
      network.call(callerPeer, caller.simHost, calleePeer, request, 1_000, () => (fate = `answered after ${world.nowMs - startedMs}`), () => (fate = "timeout"), () => (fate = "refused"))
      world.run(world.nowMs + 2_000)
      return fate
    }
    const first = incarnation()
    expect([roundTrip(), roundTrip(), roundTrip()]).toEqual(["answered after 20", "answered after 10", "answered after 10"])
    expect(network.stats.connections).toBe(1)
    network.unregister(calleePeer, first)
    incarnation()
    expect([roundTrip(), roundTrip()]).toEqual(["answered after 20", "answered after 10"])
    expect(network.stats.connections).toBe(2)
  })

  /** A caller and a callee on 5 ms links; `serving: false` leaves the callee down (its host swallows handshakes). */
  const pair = (name: string, serving = true) => {
    const world = new World({ random: Random.make(name).derive("scheduler") })
    const link: SimNetwork.Link = { latency: { kind: "fixed", ms: 5 }, loss: 0, duplicate: 0 }
    const network = new SimNetwork.SimNetwork(world, Random.make(name).derive("network"), { downRefuses: 0, remote: link, local: link, links: [] })
    const caller = host(world, Random.make(name), callerPeer.nodeId, 0)
    const answer = { _tag: "HeartbeatAck", fromRegion: calleePeer.regionId, fromNode: calleePeer.nodeId, atMs: 0 } as const
    const serve = () => network.register(calleePeer, host(world, Random.make(name), calleePeer.nodeId, 1).simHost, () => Effect.succeed(answer as never))
    if (serving) serve()
    const fates: Array<string> = []
    const send = (timeoutMs: number) => {
      const startedMs = world.nowMs
      const request = { _tag: "Heartbeat", fromRegion: callerPeer.regionId, fromNode: callerPeer.nodeId, sentAtMs: startedMs } as const
      network.call(callerPeer, caller.simHost, calleePeer, request, timeoutMs, () => fates.push(`answered after ${world.nowMs - startedMs}`), () => fates.push(`timeout after ${world.nowMs - startedMs}`), () => fates.push("refused"))
    }
    return { world, network, serve, send, fates }
  }

  it("requests sent while the handshake is under way wait for it and share it", () => {
    const { world, network, send, fates } = pair("shared-handshake")
    send(1_000)
    world.run(3)
    send(1_000)
    world.run(2_000)
    expect(fates).toEqual(["answered after 20", "answered after 17"])
    expect(network.stats.connections).toBe(1)
  })

  it("a handshake lost on the way is sent again a second later, as TCP does, and the requests waiting for it then go", () => {
    const { world, network, send, fates } = pair("lost-handshake")
    network.cut(callerPeer.regionId, calleePeer.regionId, false)
    send(3_000)
    world.run(500)
    network.heal()
    world.run(5_000)
    // The retransmission leaves at 1,000 ms, the connection is up at 1,010 and the answer back at 1,020.
    expect(fates).toEqual(["answered after 1020"])
    expect(network.stats.connections).toBe(1)
  })

  it("a handshake a down node swallowed is sent again at 1, 3, 7 s..., and reaches the node once it serves", () => {
    const { world, network, serve, send, fates } = pair("swallowed-handshake", false)
    send(5_000)
    world.run(1_500)
    serve()
    world.run(10_000)
    expect(fates).toEqual(["answered after 3020"])
    expect(network.stats.connections).toBe(1)
  })

  it("a request that times out on a channel silent for a second throws the channel away: those waiting for its handshake fail at once, the next request dials afresh", () => {
    const { world, network, send, fates } = pair("silent-channel")
    network.cut(callerPeer.regionId, calleePeer.regionId, false)
    send(1_200)
    world.run(100)
    send(5_000)
    world.run(1_500)
    network.heal()
    // Without the drop, the next request would wait for the retransmission at 3 s.
    send(1_000)
    world.run(5_000)
    expect(fates).toEqual(["timeout after 1200", "refused", "answered after 20"])
    expect(network.stats.connections).toBe(2)
    // A short deadline on a young channel is a latency budget, not a verdict: the channel stays.
    const young = pair("young-channel")
    young.network.cut(callerPeer.regionId, calleePeer.regionId, false)
    young.send(300)
    young.world.run(400)
    young.network.heal()
    young.send(2_000)
    young.world.run(5_000)
    expect(young.fates).toEqual(["timeout after 300", "answered after 620"])
    expect(young.network.stats.connections).toBe(1)
  })
})

describe("SimNetwork: a handler that dies", () => {
  it("is answered INTERNAL one trip later, reported as Rejected at once, and the caller dials afresh, as production's network rebuilds its channel", () => {
    const world = new World({ random: Random.make("handler-dies").derive("scheduler") })
    const link: SimNetwork.Link = { latency: { kind: "fixed", ms: 5 }, loss: 0, duplicate: 0 }
    const network = new SimNetwork.SimNetwork(world, Random.make("handler-dies").derive("network"), { remote: link, local: link, links: [] })
    const caller = host(world, Random.make("handler-dies"), callerPeer.nodeId, 0)
    const callee = host(world, Random.make("handler-dies"), calleePeer.nodeId, 1)
    const answer = { _tag: "HeartbeatAck", region: calleePeer.regionId, node: calleePeer.nodeId, atMs: 0, epoch: 0, grantAgesMs: {} } as const
    network.register(calleePeer, callee.simHost, (request) => (request._tag === "Heartbeat" && request.sentAtMs === 1 ? Effect.die(new Error("a bug")) : Effect.succeed(answer)))
    const fates: Array<string> = []
    const send = (sentAtMs: number) => {
      const startedMs = world.nowMs
      const request = { _tag: "Heartbeat", fromRegion: callerPeer.regionId, fromNode: callerPeer.nodeId, sentAtMs } as const
      network.call(
        callerPeer,
        caller.simHost,
        calleePeer,
        request,
        1_000,
        () => fates.push(`answered after ${world.nowMs - startedMs}`),
        () => fates.push("timeout"),
        () => fates.push("refused"),
        (status) => fates.push(`${status.reason} (${status.message}) after ${world.nowMs - startedMs}`)
      )
      world.run(world.nowMs + 2_000)
    }
    // The first request dials (20 ms); the second is answered on the open channel (10 ms); the
    // third dies and is answered INTERNAL (10 ms); the fourth dials again (20 ms).
    for (const sentAtMs of [0, 0, 1, 0]) send(sentAtMs)
    expect(fates).toEqual(["answered after 20", "answered after 10", "Rejected (INTERNAL: internal error) after 10", "answered after 20"])
    expect(network.stats.connections).toBe(2)
  })
})

describe("SimNetwork: requests in flight per endpoint", () => {
  /** A caller and a callee on 5 ms links, at most `bound` requests in flight; the callee takes `handleMs` per request other than a heartbeat. */
  const bounded = (name: string, bound: number, handleMs: number) => {
    const world = new World({ random: Random.make(name).derive("scheduler") })
    const link: SimNetwork.Link = { latency: { kind: "fixed", ms: 5 }, loss: 0, duplicate: 0 }
    const network = new SimNetwork.SimNetwork(world, Random.make(name).derive("network"), { remote: link, local: link, links: [], inFlightPerTargetMax: bound })
    const machine = host(world, Random.make(name), callerPeer.nodeId, 0)
    // The caller's process can be marked dead, as a crash does.
    const life = { alive: true }
    const caller = { simHost: { ...machine.simHost, alive: () => life.alive && machine.simHost.alive() } }
    const handling = { now: 0, most: 0, seen: [] as Array<string> }
    const callee = host(world, Random.make(name), calleePeer.nodeId, 1)
    network.register(calleePeer, callee.simHost, (request) => {
      const heartbeatAck: Message.Response = { _tag: "HeartbeatAck", region: calleePeer.regionId, node: calleePeer.nodeId, atMs: 0, epoch: 0, grantAgesMs: {} }
      if (request._tag === "Heartbeat") return Effect.succeed(heartbeatAck)
      const batchId = request._tag === "ReplicateBatch" ? request.batchId : request._tag
      return Effect.gen(function* () {
        handling.seen.push(batchId)
        handling.now++
        handling.most = Math.max(handling.most, handling.now)
        yield* Effect.sleep(handleMs)
        handling.now--
        const ack: Message.Response = { _tag: "BatchAck", batchId, region: calleePeer.regionId, node: calleePeer.nodeId, applied: 0, ignored: 0, appliedAtMs: 0 }
        return ack
      })
    })
    const fates: Array<string> = []
    const batch = (batchId: string): Message.Request => ({ _tag: "ReplicateBatch", batchId, fromRegion: callerPeer.regionId, fromNode: callerPeer.nodeId, changes: [] })
    const send = (request: Message.Request, label: string, timeoutMs: number) => {
      const startedMs = world.nowMs
      return network.call(callerPeer, caller.simHost, calleePeer, request, timeoutMs, () => fates.push(`${label} answered after ${world.nowMs - startedMs}`), () => fates.push(`${label} timeout after ${world.nowMs - startedMs}`), () => fates.push(`${label} refused`))
    }
    const heartbeat: Message.Request = { _tag: "Heartbeat", fromRegion: callerPeer.regionId, fromNode: callerPeer.nodeId, sentAtMs: 0 }
    return { world, network, handling, fates, batch, send, heartbeat, life }
  }

  it("batches beyond the bound wait their turn, in order, and all are answered; a heartbeat skips the bound", () => {
    const { world, handling, fates, batch, send, heartbeat } = bounded("bounded", 2, 100)
    for (let index = 0; index < 5; index++) send(batch(`b${index}`), `b${index}`, 5_000)
    send(heartbeat, "heartbeat", 5_000)
    world.run(5_000)
    expect(handling.most).toBe(2)
    expect(handling.seen).toEqual(["b0", "b1", "b2", "b3", "b4"])
    // The handshake takes 10 ms, each batch 5 + 100 + 5 ms; two at a time.
    expect(fates).toEqual(["heartbeat answered after 20", "b0 answered after 120", "b1 answered after 120", "b2 answered after 230", "b3 answered after 230", "b4 answered after 340"])
  })

  it("a batch that waits for a slot past its deadline times out unsent, an abandoned one is never sent, and one that timed out gives its slot back", () => {
    const { world, network, handling, fates, batch, send } = bounded("deadline", 1, 1_000)
    send(batch("long"), "long", 300)
    send(batch("impatient"), "impatient", 200)
    send(batch("patient"), "patient", 5_000)
    const abandon = send(batch("abandoned"), "abandoned", 5_000)
    world.run(100)
    abandon()
    world.run(2_000)
    send(batch("next"), "next", 5_000)
    world.run(10_000)
    // "long" holds the slot until its deadline (its handler goes on): "patient" goes then, 300 ms in.
    expect(fates).toEqual(["impatient timeout after 200", "long timeout after 300", "patient answered after 1310", "next answered after 1010"])
    expect(handling.seen).toEqual(["long", "patient", "next"])
    expect(network.stats.requests).toBe(3)
  })

  it("a batch that waited for a slot goes out with its whole deadline, not what the wait left of it", () => {
    const { world, fates, batch, send } = bounded("whole-deadline", 1, 600)
    send(batch("first"), "first", 1_000)
    send(batch("second"), "second", 1_000)
    world.run(5_000)
    // "second" waits 620 ms for the slot, then takes 610 ms: past 1,000 ms from its call, within its deadline from its send.
    expect(fates).toEqual(["first answered after 620", "second answered after 1230"])
  })

  it("a crashed process's calls waiting for a slot are never sent when its interrupted calls give their slots back", () => {
    const { world, network, handling, fates, batch, send, life } = bounded("crash", 1, 1_000)
    const abandonHeld = send(batch("held"), "held", 5_000)
    send(batch("queued"), "queued", 5_000)
    world.run(100)
    life.alive = false
    abandonHeld()
    world.run(10_000)
    expect(handling.seen).toEqual(["held"])
    expect(network.stats.requests).toBe(1)
    expect(fates).toEqual([])
  })
})

describe("SimNetwork: the message bound", () => {
  const tuple = { vault: "acme", resource: "document:readme", relation: "viewer", subject: "user:alice" }
  const change = (seq: number) => ({
    id: { origin: "us-west-1", seq },
    op: "insert" as const,
    tuple,
    timestamp: { physicalMs: 1_000 + seq, logical: 0 },
    originRegion: "us-west-1",
    originNode: "us-west-1-node1",
    originRevision: seq,
    committedAtMs: 1_000 + seq,
    context: {}
  })
  const batch = (count: number): Message.Request => ({ _tag: "ReplicateBatch", batchId: `b${count}`, fromRegion: callerPeer.regionId, fromNode: callerPeer.nodeId, changes: Array.from({ length: count }, (_, index) => change(index + 1)) })
  const catchUp = (limit: number): Message.Request => ({ _tag: "CatchUp", fromRegion: callerPeer.regionId, fromNode: callerPeer.nodeId, afterPosition: 0, limit })

  /** What each request came to, under a 4 KiB bound, over the carrier `wire`; the callee answers a CatchUp with `limit` entries. */
  const outcomes = (wire: Codec.Wire, requests: ReadonlyArray<Message.Request>) => {
    const random = Random.make(`bound-${wire}`)
    const world = new World({ random: random.derive("scheduler") })
    const link: SimNetwork.Link = { latency: { kind: "fixed", ms: 5 }, loss: 0, duplicate: 0 }
    const network = new SimNetwork.SimNetwork(world, random.derive("network"), { remote: link, local: link, links: [], messageBytesMax: 4_096 }, {}, Codec.carrier(wire))
    const caller = host(world, random, callerPeer.nodeId, 0)
    const callee = host(world, random, calleePeer.nodeId, 1)
    network.register(calleePeer, callee.simHost, (request) =>
      Effect.succeed<Message.Response>(
        request._tag === "CatchUp"
          ? { _tag: "LogPage", entries: Array.from({ length: request.limit }, (_, index) => ({ position: index + 1, change: change(index + 1), receivedFrom: null, appliedAtMs: 2 })), endPosition: request.limit, logEnd: 100 }
          : { _tag: "BatchAck", batchId: "ack", region: calleePeer.regionId, node: calleePeer.nodeId, applied: 0, ignored: 0, appliedAtMs: 0 }
      )
    )
    const send = Effect.provide(
      Effect.flatMap(Network.Network, (net) =>
        Effect.forEach(requests, (request) =>
          Effect.map(Effect.either(Effect.timed(net.send(calleePeer, request, 5_000))), (result) =>
            result._tag === "Right" ? `${result.right[1]._tag} after ${Math.round(Duration.toMillis(result.right[0]))} ms` : `${result.left.reason} (${result.left.message})`
          )
        )
      ),
      SimNetwork.layer(network, callerPeer, caller.simHost)
    )
    const fiber = caller.start(send)
    world.run(budgetMs)
    const exit = fiber.unsafePoll()
    if (exit === null || exit._tag !== "Success") throw new Error(`the calls did not end: ${String(exit)}`)
    return { results: exit.value, tooLarge: network.stats.tooLarge }
  }

  for (const wire of Codec.wires) {
    it(`over ${wire}: a batch above the bound fails TooLarge at once, an answer above it fails TooLarge one trip later, and what fits is answered`, () => {
      const { results, tooLarge } = outcomes(wire, [batch(60), batch(10), catchUp(60), catchUp(10)])
      expect(results).toEqual([
        expect.stringMatching(/^TooLarge \(RESOURCE_EXHAUSTED: Sent message larger than max \(\d+ vs\. 4096\)\)$/),
        "BatchAck after 20 ms",
        expect.stringMatching(/^TooLarge \(RESOURCE_EXHAUSTED: Sent message larger than max \(\d+ vs\. 4096\)\)$/),
        "LogPage after 10 ms"
      ])
      expect(tooLarge).toBe(2)
    })
  }

  it("the cheap upper bound of a batch's and a page's size is never below the codec's bytes, for any strings", () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ text: fc.string({ unit: "binary", maxLength: 40 }), seq: fc.nat(), origins: fc.array(fc.string({ unit: "binary", maxLength: 12 }), { maxLength: 4 }) }), { minLength: 1, maxLength: 20 }),
        (items) => {
          const changes = items.map(({ text, seq, origins }) => ({
            ...change(seq),
            id: { origin: text, seq },
            tuple: { vault: text, resource: `${text}:r`, relation: text, subject: `user:${text}` },
            originNode: text,
            context: Object.fromEntries(origins.map((origin, index) => [origin, index + seq]))
          }))
          const request: Message.Request = { _tag: "ReplicateBatch", batchId: items[0]!.text, fromRegion: "r0", fromNode: "n0", changes }
          const page: Message.Response = { _tag: "LogPage", entries: changes.map((c, index) => ({ position: index + 1, change: c, receivedFrom: index % 2 === 0 ? null : items[0]!.text, appliedAtMs: c.committedAtMs })), endPosition: changes.length, logEnd: changes.length }
          // Over objects, the verdict must be the codec's: a bound one byte below the message's
          // size finds it above (a cheap upper bound below the bytes would let it through), a
          // bound at its size finds it within.
          for (const [message, bytes] of [
            [request, WireCodec.encodeRequest(request).length],
            [page, WireCodec.encodeResponse(page).length]
          ] as const) {
            const objects = Codec.carrier("objects")
            expect(Codec.bytesAbove(objects, message, message, undefined, bytes - 1)).toBe(bytes)
            expect(Codec.bytesAbove(objects, message, message, undefined, bytes)).toBeUndefined()
          }
        }
      ),
      { numRuns: 300 }
    )
  })
})
