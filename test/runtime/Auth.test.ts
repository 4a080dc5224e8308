/**
 * Authentication of region-to-region calls over real gRPC on 127.0.0.1: a shared bearer token
 * (constant-time comparison) and mutual TLS with throwaway certificates made by `openssl`.
 * Every rejected call is answered UNAUTHENTICATED (or never completes the TLS handshake) and
 * never reaches the replication handler. A channel dialled at a peer's last known address (its
 * name no longer resolves, `DialAddress`) still verifies the peer's certificate against its name.
 */
import * as grpc from "@grpc/grpc-js"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Effect, Either, Exit, Logger, Schedule, Scope } from "effect"
import * as fs from "node:fs"
import type { NetworkError } from "../../src/replication/Errors.js"
import type * as Message from "../../src/replication/Message.js"
import * as Metrics from "../../src/replication/Metrics.js"
import type * as Network from "../../src/replication/Network.js"
import * as Auth from "../../src/runtime/Auth.js"
import * as DialAddress from "../../src/runtime/DialAddress.js"
import * as GrpcNetwork from "../../src/runtime/GrpcNetwork.js"
import * as GrpcServer from "../../src/runtime/GrpcServer.js"
import * as Certificates from "./fixtures/certificates.js"

const heartbeat: Message.Heartbeat = { _tag: "Heartbeat", fromRegion: "r0", fromNode: "n0", sentAtMs: 1 }

/** A server with the given security that answers heartbeats and counts handler calls. */
const serve = (options: Auth.Options, totals: Metrics.MemoryMetrics, handled: { count: number }) =>
  Effect.gen(function* () {
    const credentials = yield* Auth.load(options)
    const listener = yield* GrpcServer.listen({ bind: "127.0.0.1:0", credentials, shutdownGraceMs: 100 }).pipe(Effect.provide(Metrics.layerMemory(totals)))
    yield* listener.serveReplication(() =>
      Effect.sync((): Message.Response => {
        handled.count++
        return { _tag: "HeartbeatAck", region: "r1", node: "n1", atMs: 2, epoch: 0, grantAgesMs: {} }
      })
    )
    return listener
  })

const peerAt = (port: number): Network.Peer => ({ regionId: "r1", nodeId: "n1", endpoint: `127.0.0.1:${port}` })

/** Sends one heartbeat with the given client credentials; succeeds with the response or the error. */
const heartbeatWith = (credentials: Auth.Credentials, port: number) =>
  Effect.flatMap(GrpcNetwork.makeClient({ credentials }), (send) => Effect.either(send(peerAt(port), heartbeat, 2_000)))

const loaded = (options: Auth.Options) => Effect.orDie(Auth.load(options))

describe("Auth", () => {
  it("tokens compare equal only when identical, whatever their lengths", () => {
    expect(Auth.secretsEqual("s3cret-token", "s3cret-token")).toBe(true)
    expect(Auth.secretsEqual("s3cret-token", "s3cret-tokeN")).toBe(false)
    expect(Auth.secretsEqual("s3cret", "s3cret-token")).toBe(false)
    expect(Auth.secretsEqual("", "s3cret-token")).toBe(false)
  })

  it("a bearer header is accepted only with the exact token and the Bearer scheme", () => {
    const metadata = (...values: ReadonlyArray<string>) => {
      const result = new grpc.Metadata()
      for (const value of values) result.add("authorization", value)
      return result
    }
    expect(Auth.checkBearer(metadata("Bearer t0ken"), "t0ken")).toBeUndefined()
    expect(Auth.checkBearer(metadata(), "t0ken")).toBe("missing bearer token")
    expect(Auth.checkBearer(metadata("Bearer nope"), "t0ken")).toBe("wrong bearer token")
    expect(Auth.checkBearer(metadata("Basic t0ken"), "t0ken")).toBe("authorization is not a bearer token")
    expect(Auth.checkBearer(metadata("Bearer t0ken", "Bearer t0ken"), "t0ken")).toBe("more than one authorization header")
  })

  it.effect("an empty token or an unreadable certificate file is a configuration error", () =>
    Effect.gen(function* () {
      const empty = yield* Effect.flip(Auth.load({ mode: "token", token: " " }))
      expect(empty.message).toContain("empty")
      const missing = yield* Effect.flip(Auth.load({ mode: "mtls", caFile: "/nonexistent/ca.pem", certFile: "/nonexistent/c.pem", keyFile: "/nonexistent/k.pem" }))
      expect(missing.message).toContain("/nonexistent/ca.pem")
    })
  )

  it.scopedLive("with token auth, a peer without the token or with a wrong one is rejected and counted, and the right token is accepted", () =>
    Effect.gen(function* () {
      const totals = Metrics.makeMemory()
      const handled = { count: 0 }
      const listener = yield* serve({ mode: "token", token: "region-secret" }, totals, handled)

      const none = yield* heartbeatWith(yield* loaded({ mode: "insecure" }), listener.port)
      expect(none).toMatchObject({ _tag: "Left", left: { reason: "Unauthenticated" } })
      const wrong = yield* heartbeatWith(yield* loaded({ mode: "token", token: "guess" }), listener.port)
      expect(wrong).toMatchObject({ _tag: "Left", left: { reason: "Unauthenticated" } })
      expect(totals.refused).toBe(2)
      expect(handled.count).toBe(0)

      const right = yield* heartbeatWith(yield* loaded({ mode: "token", token: "region-secret" }), listener.port)
      expect(right).toMatchObject({ _tag: "Right", right: { _tag: "HeartbeatAck" } })
      expect(handled.count).toBe(1)
      expect(totals.refused).toBe(2)
    })
  )

  describe.skipIf(!Certificates.opensslAvailable())("mutual TLS", () => {
    const certificates = Certificates.opensslAvailable() ? Certificates.generate() : undefined
    const files = () => certificates!
    afterAll(() => {
      if (certificates !== undefined) fs.rmSync(certificates.dir, { recursive: true, force: true })
    })
    // Certificates name 127.0.0.1 and localhost; verifying against the name (not the IP)
    // is what a deployment does, and avoids Node's warning about IP addresses as TLS names.
    const mtlsOptions = () =>
      ({ mode: "mtls", caFile: files().caFile, certFile: files().certFile, keyFile: files().keyFile, serverNameOverride: "localhost" }) as const

    it.scopedLive("a peer with a certificate from the configured CA is accepted", () =>
      Effect.gen(function* () {
        const handled = { count: 0 }
        const mtls = mtlsOptions()
        const listener = yield* serve(mtls, Metrics.makeMemory(), handled)
        const result = yield* heartbeatWith(yield* loaded(mtls), listener.port)
        expect(result).toMatchObject({ _tag: "Right", right: { _tag: "HeartbeatAck" } })
        expect(handled.count).toBe(1)
      })
    )

    it.scopedLive("a peer without a client certificate, with one from another CA, or in plaintext is rejected before the handler", () =>
      Effect.gen(function* () {
        const handled = { count: 0 }
        const mtls = mtlsOptions()
        const listener = yield* serve(mtls, Metrics.makeMemory(), handled)
        const good = yield* loaded(mtls)
        const ca = fs.readFileSync(files().caFile)
        const noCertificate: Auth.Credentials = { ...good, channel: grpc.credentials.createSsl(ca) }
        const stranger: Auth.Credentials = {
          ...good,
          channel: grpc.credentials.createSsl(ca, fs.readFileSync(files().strangerKeyFile), fs.readFileSync(files().strangerCertFile))
        }
        // The server's "certificate required" TLS alert is reported as an authentication failure;
        // the other two fail the handshake without a reason grpc-js passes on.
        const reasonOf = (result: Either.Either<Message.Response, NetworkError>) => (Either.isLeft(result) ? result.left.reason : "accepted")
        expect(reasonOf(yield* heartbeatWith(noCertificate, listener.port))).toBe("Unauthenticated")
        expect(reasonOf(yield* heartbeatWith(stranger, listener.port))).toMatch(/Unauthenticated|Unreachable/)
        expect(reasonOf(yield* heartbeatWith(yield* loaded({ mode: "insecure" }), listener.port))).toMatch(/Unauthenticated|Unreachable/)
        expect(handled.count).toBe(0)
      })
    )

    it.scopedLive("with mTLS and a token, a peer with a valid certificate but a wrong token is rejected and counted", () =>
      Effect.gen(function* () {
        const totals = Metrics.makeMemory()
        const handled = { count: 0 }
        const mtls = mtlsOptions()
        const listener = yield* serve({ ...mtls, token: "region-secret" }, totals, handled)
        const wrong = yield* heartbeatWith(yield* loaded({ ...mtls, token: "guess" }), listener.port)
        expect(wrong).toMatchObject({ _tag: "Left", left: { reason: "Unauthenticated" } })
        expect(totals.refused).toBe(1)
        const right = yield* heartbeatWith(yield* loaded({ ...mtls, token: "region-secret" }), listener.port)
        expect(right).toMatchObject({ _tag: "Right", right: { _tag: "HeartbeatAck" } })
        expect(handled.count).toBe(1)
      })
    )

    it.scopedLive("a channel rebuilt while the peer's name does not resolve dials its last address and still verifies the certificate against the name", () =>
      Effect.gen(function* () {
        // The peer's certificate names localhost only: verified against its address, it fails.
        const nameOnly = { mode: "mtls", caFile: files().caFile, certFile: files().nameOnlyCertFile, keyFile: files().nameOnlyKeyFile } as const
        const credentials = yield* loaded(nameOnly)
        const handled = { count: 0 }
        const first = yield* Scope.make()
        const listener = yield* Effect.provideService(serve(nameOnly, Metrics.makeMemory(), handled), Scope.Scope, first)
        const byAddress = yield* Effect.flatMap(GrpcNetwork.makeClient({ credentials }), (send) => Effect.either(send(peerAt(listener.port), heartbeat, 2_000)))
        expect(Either.isLeft(byAddress)).toBe(true)

        let resolves = true
        const lookup: DialAddress.Lookup = (hostname) =>
          resolves ? Promise.resolve([{ address: "127.0.0.1", family: 4 }]) : Promise.reject(Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: "ENOTFOUND" }))
        const send = yield* GrpcNetwork.makeClient({ credentials, dialler: DialAddress.make(lookup) })
        const peer: Network.Peer = { regionId: "r1", nodeId: "n1", endpoint: `localhost:${listener.port}` }
        expect(yield* Effect.either(send(peer, heartbeat, 2_000))).toMatchObject({ _tag: "Right" })

        // The peer restarts on the same port while its name no longer resolves: the failed call
        // rebuilds the channel, and the new one must reach it at the address the name last had.
        yield* Scope.close(first, Exit.void)
        resolves = false
        expect(Either.isLeft(yield* Effect.either(send(peer, heartbeat, 2_000)))).toBe(true)
        yield* Effect.gen(function* () {
          const credentialsAgain = yield* Auth.load(nameOnly)
          const again = yield* GrpcServer.listen({ bind: `127.0.0.1:${listener.port}`, credentials: credentialsAgain, shutdownGraceMs: 100 }).pipe(Effect.provide(Metrics.layerMemory(Metrics.makeMemory())))
          yield* again.serveReplication(() => Effect.sync((): Message.Response => ({ _tag: "HeartbeatAck", region: "r1", node: "n1", atMs: 3, epoch: 0, grantAgesMs: {} })))
        })
        const warnings: Array<string> = []
        const collect = Logger.replace(Logger.defaultLogger, Logger.make(({ message }) => void warnings.push(String(message))))
        const answer = yield* send(peer, heartbeat, 2_000).pipe(Effect.retry({ schedule: Schedule.spaced("50 millis"), times: 40 }), Effect.either, Effect.provide(collect))
        expect(answer).toMatchObject({ _tag: "Right", right: { _tag: "HeartbeatAck", atMs: 3 } })
        // localhost resolves for grpc-js itself, so the log is what shows the new channel dialled the address.
        expect(warnings).toEqual([`peer name 'localhost' does not resolve (ENOTFOUND); new channels dial the addresses it last had, ipv4:127.0.0.1:${listener.port}, under its name`])
        expect(handled.count).toBe(1)
      })
    )
  })
})
