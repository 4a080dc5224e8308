/**
 * The HTTP/2 flow-control windows of our gRPC server, as a connecting client sees them: the
 * stream window in the server's SETTINGS and the connection window after its WINDOW_UPDATE.
 * They are set through grpc-js internals (`FlowControl`), so this is where a grpc-js upgrade
 * that moves them shows up, for plain and for mutual-TLS servers. The client side (grpc-js's own
 * option, used by the replication client and the API client) is checked from a bare HTTP/2
 * server's view.
 */
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Scope } from "effect"
import * as fs from "node:fs"
import * as grpc from "@grpc/grpc-js"
import * as http2 from "node:http2"
import * as Metrics from "../../src/replication/Metrics.js"
import * as Auth from "../../src/runtime/Auth.js"
import * as FlowControl from "../../src/runtime/FlowControl.js"
import * as GrpcServer from "../../src/runtime/GrpcServer.js"
import * as Certificates from "./fixtures/certificates.js"

const waitMs = 10_000

/** Binds a server with `auth` in a scope of its own; returns its port and the scope to close. */
const bound = async (auth: Auth.Options): Promise<{ readonly port: number; readonly scope: Scope.CloseableScope }> => {
  const scope = Effect.runSync(Scope.make())
  const listener = await Effect.runPromise(
    Effect.gen(function* () {
      const credentials = yield* Auth.load(auth)
      return yield* GrpcServer.listen({ bind: "127.0.0.1:0", credentials, shutdownGraceMs: 100 })
    }).pipe(Effect.provide(Metrics.layerMemory(Metrics.makeMemory())), Scope.extend(scope))
  )
  return { port: listener.port, scope }
}

/** Resolves once `condition` holds, checking on every `remoteSettings` event and every 10 ms; rejects after `waitMs`. */
const until = (session: http2.ClientHttp2Session, condition: () => boolean): Promise<void> =>
  new Promise((resolve, reject) => {
    const started = Date.now()
    const check = () => {
      if (condition()) return resolve()
      if (Date.now() - started > waitMs) return reject(new Error(`not within ${waitMs} ms: remote settings ${JSON.stringify(session.remoteSettings)}, state ${JSON.stringify(session.state)}`))
      setTimeout(check, 10)
    }
    check()
  })

/** What a client sees of the server's windows once both have arrived. */
const windowsSeen = async (session: http2.ClientHttp2Session) => {
  await until(session, () => session.remoteSettings.initialWindowSize === FlowControl.streamWindowBytes && (session.state.remoteWindowSize ?? 0) >= FlowControl.connectionWindowBytes)
  return { stream: session.remoteSettings.initialWindowSize, connection: session.state.remoteWindowSize }
}

describe("FlowControl", () => {
  const scopes: Array<Scope.CloseableScope> = []
  afterAll(async () => {
    for (const scope of scopes) await Effect.runPromise(Scope.close(scope, Exit.void))
  })

  it("a plain-text server advertises the wide stream and connection windows", async () => {
    const { port, scope } = await bound({ mode: "insecure" })
    scopes.push(scope)
    const session = http2.connect(`http://127.0.0.1:${port}`)
    try {
      expect(await windowsSeen(session)).toEqual({ stream: FlowControl.streamWindowBytes, connection: FlowControl.connectionWindowBytes })
    } finally {
      session.close()
    }
  })

  it("a grpc-js client with the client options advertises the wide windows to the server", async () => {
    const server = http2.createServer()
    const seen = new Promise<{ readonly stream: number | undefined; readonly connection: number | undefined }>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no client connection with wide windows within ${waitMs} ms`)), waitMs)
      server.on("session", (session) => {
        const check = () => {
          if (session.remoteSettings.initialWindowSize !== FlowControl.connectionWindowBytes) return
          if ((session.state.remoteWindowSize ?? 0) < FlowControl.connectionWindowBytes) return
          clearTimeout(timer)
          clearInterval(poll)
          resolve({ stream: session.remoteSettings.initialWindowSize, connection: session.state.remoteWindowSize })
        }
        const poll = setInterval(check, 10)
        session.on("close", () => clearInterval(poll))
      })
    })
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
    const port = (server.address() as { readonly port: number }).port
    const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), FlowControl.clientOptions)
    try {
      client.waitForReady(Date.now() + waitMs, () => undefined)
      expect(await seen).toEqual({ stream: FlowControl.connectionWindowBytes, connection: FlowControl.connectionWindowBytes })
    } finally {
      client.close()
      await new Promise((resolve) => server.close(resolve))
    }
  })

  it.runIf(Certificates.opensslAvailable())("a mutual-TLS server advertises them too", async () => {
    const certificates = Certificates.generate()
    try {
      const { port, scope } = await bound({ mode: "mtls", caFile: certificates.caFile, certFile: certificates.certFile, keyFile: certificates.keyFile })
      scopes.push(scope)
      const session = http2.connect(`https://127.0.0.1:${port}`, {
        ca: fs.readFileSync(certificates.caFile),
        cert: fs.readFileSync(certificates.certFile),
        key: fs.readFileSync(certificates.keyFile)
      })
      session.on("error", () => undefined)
      try {
        expect(await windowsSeen(session)).toEqual({ stream: FlowControl.streamWindowBytes, connection: FlowControl.connectionWindowBytes })
      } finally {
        session.close()
      }
    } finally {
      fs.rmSync(certificates.dir, { recursive: true, force: true })
    }
  })
})
