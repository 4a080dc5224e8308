/**
 * The Network contract over production gRPC on 127.0.0.1, in real time: the callee is a bound
 * `GrpcServer` (port 0) serving the case's handler, the caller a `GrpcNetwork` client allowed
 * one batch in flight (so a slot an interrupted send kept would show), and between them a
 * cuttable TCP relay (`fixtures/cuttableRelay.ts`): a cut stops moving bytes both ways, as a
 * packet-dropping partition does, without root or namespaces. Raw bytes go through a plain
 * grpc-js client on the same relay. HTTP/2 never delivers one call twice, so duplicates come
 * only from a resend.
 */
import * as grpc from "@grpc/grpc-js"
import { describe } from "vitest"
import { Effect } from "effect"
import { ReplicationService } from "../../src/proto/inferadb/replication/v1/service.js"
import * as Metrics from "../../src/replication/Metrics.js"
import * as Auth from "../../src/runtime/Auth.js"
import * as GrpcNetwork from "../../src/runtime/GrpcNetwork.js"
import * as GrpcServer from "../../src/runtime/GrpcServer.js"
import { calleePeer, contract, type Transport } from "../replication/fixtures/networkContract.js"
import * as Relay from "./fixtures/cuttableRelay.js"

/** One unary Replicate call with raw bytes from a plain grpc-js client. */
const rawReplicate = (address: string, bytes: Uint8Array) =>
  Effect.acquireUseRelease(
    Effect.sync(() => new grpc.Client(address, grpc.credentials.createInsecure())),
    (raw) =>
      Effect.async<Uint8Array, string>((resume) => {
        const path = ReplicationService.replicate.path
        raw.makeUnaryRequest(path, (value: Buffer) => value, (value: Buffer) => value, Buffer.from(bytes), new grpc.Metadata(), { deadline: Date.now() + 5_000 }, (error, value) =>
          resume(error === null && value !== undefined ? Effect.succeed(value) : Effect.fail(`raw call failed: ${error?.message ?? "no value"}`))
        )
      }),
    (raw) => Effect.sync(() => raw.close())
  )

const overGrpc: Transport = {
  name: "gRPC",
  run: (body) =>
    Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const credentials = yield* Auth.load({ mode: "insecure" })
          const listener = yield* GrpcServer.listen({ bind: "127.0.0.1:0", credentials, shutdownGraceMs: 100 }).pipe(Effect.provide(Metrics.layerNoop))
          const relay = yield* Relay.open(listener.port)
          const address = `127.0.0.1:${relay.port}`
          const send = yield* GrpcNetwork.makeClient({ credentials, inFlightPerTargetMax: 1 })
          const target = { ...calleePeer, endpoint: address }
          return yield* body({
            send: (request, timeoutMs) => send(target, request, timeoutMs),
            serve: listener.serveReplication,
            cut: Effect.sync(relay.cut),
            heal: Effect.sync(relay.heal),
            sendBytes: (bytes) => rawReplicate(address, bytes)
          })
        }).pipe(Effect.orDie)
      )
    ),
  cutFailsAs: "Timeout",
  notServingFailsAs: "Unreachable",
  // TCP keeps the bytes for retransmission; after heal the server reads the request (and the
  // cancellation behind it) and runs the handler: the simulator loses such a request instead.
  cutRequestAfterHeal: "delivered late",
  interruptedCallee: "completes",
  notApplicable: {
    duplicateOnTheWire: "HTTP/2 over TCP never delivers one call twice; duplicates come only from a resend, covered by the retry case"
  }
}

describe("Network contract: gRPC", () => contract(overGrpc))
