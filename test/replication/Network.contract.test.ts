/**
 * The Network contract over the in-memory hub (`Network.makeHub`), the transport of the
 * replication tests. A cut here is the hub's partition, which refuses at once (`Unreachable`)
 * rather than going silent; the handler runs on the sender's fiber, so interrupting a send
 * interrupts the handler too. The hub carries typed messages through the codec in-process,
 * so there is no byte stream to put garbage on, and it never delivers a message twice.
 */
import { describe, expect, it } from "vitest"
import { Context, Effect, Layer } from "effect"
import * as Network from "../../src/replication/Network.js"
import { calleePeer, callerPeer, cases, contract, runCase, type Transport } from "./fixtures/networkContract.js"

/**
 * Two peers on a fresh hub. `throughCaller`: the caller sends through `Network.caller`'s fiber
 * over `send`, as production's heartbeats go (the hub has no callback form).
 */
const onHub =
  (throughCaller: boolean): Transport["run"] =>
  (body) =>
    Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const hub = Network.makeHub()
          const caller = Context.get(yield* Layer.build(Network.layerMemory(hub, callerPeer)), Network.Network)
          const callee = Context.get(yield* Layer.build(Network.layerMemory(hub, calleePeer)), Network.Network)
          const send = throughCaller ? Network.sendOver(Network.caller(caller, yield* Effect.runtime<never>())) : caller.send
          return yield* body({
            send: (request, timeoutMs) => send(calleePeer, request, timeoutMs),
            serve: callee.serve,
            cut: Effect.sync(() => Network.partition(hub, callerPeer.regionId, calleePeer.regionId)),
            heal: Effect.sync(() => Network.heal(hub))
          })
        })
      )
    )

const memory: Transport = {
  name: "memory",
  run: onHub(false),
  cutFailsAs: "Unreachable",
  notServingFailsAs: "Unreachable",
  // The hub refuses at the sender, so nothing is left to deliver after heal.
  cutRequestAfterHeal: "lost",
  interruptedCallee: "interrupted",
  notApplicable: {
    rawBytes: "the hub takes typed messages and encodes them itself; no caller can hand it bytes (the codec path is covered by the invalid-message cases)",
    duplicateOnTheWire: "the hub delivers each send at most once; duplicates come only from a resend, covered by the retry case",
    inFlightBound: "the hub keeps no bound of batches in flight per peer"
  }
}

/**
 * The canary: a transport that quietly resends every request and hands back the last answer
 * (at-least-once delivery inside the transport), a bug the contract must catch.
 */
const resendsOnItsOwn: Transport = {
  ...memory,
  name: "memory that resends",
  run: (body, options) =>
    memory.run((link) => body({ ...link, send: (request, timeoutMs) => link.send(request, timeoutMs).pipe(Effect.zipRight(link.send(request, timeoutMs))) }), options)
}

/** The hub without a callback form, sent through `Network.caller` (production's heartbeats). */
const throughCaller: Transport = { ...memory, name: "memory through Network.caller", run: onHub(true) }

describe("Network contract: memory hub", () => {
  contract(memory)
  contract(throughCaller)

  it("canary: a transport that resends on its own fails the answered-once case", async () => {
    await expect(runCase(resendsOnItsOwn, cases.resent)).rejects.toThrow(/to match object/)
  })
})
