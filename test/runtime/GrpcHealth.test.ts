/**
 * The standard gRPC health service as a node's server carries it: NOT_SERVING until the node
 * says otherwise, then whatever readiness says, to Check and to Watch alike, for the whole
 * server and for each of our services.
 */
import * as grpc from "@grpc/grpc-js"
import * as protoLoader from "@grpc/proto-loader"
import { Effect, Fiber, Ref, TestClock } from "effect"
import { createRequire } from "node:module"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import * as GrpcHealth from "../../src/runtime/GrpcHealth.js"

const require = createRequire(import.meta.url)
const definition = protoLoader.loadSync(path.join(path.dirname(require.resolve("grpc-health-check")), "../../proto/health/v1/health.proto"), { keepCase: true, enums: String })
const HealthClient = (grpc.loadPackageDefinition(definition) as unknown as { grpc: { health: { v1: { Health: typeof grpc.Client } } } }).grpc.health.v1.Health
type Client = grpc.Client & {
  check: (request: { service: string }, callback: (error: grpc.ServiceError | null, response?: { status: string }) => void) => void
  watch: (request: { service: string }) => grpc.ClientReadableStream<{ status: string }>
}

describe("GrpcHealth", () => {
  const server = new grpc.Server()
  const health = GrpcHealth.addTo(server)
  let client: Client

  beforeAll(async () => {
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (error, bound) => (error === null ? resolve(bound) : reject(error)))
    )
    client = new HealthClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as Client
  })

  afterAll(() => {
    client.close()
    server.forceShutdown()
  })

  const check = (service: string) =>
    new Promise<string>((resolve, reject) => client.check({ service }, (error, response) => (error === null ? resolve(response!.status) : reject(error))))

  it("starts NOT_SERVING, follows set() for the server and every service, and Watch hears each change", async () => {
    expect(await check("")).toBe("NOT_SERVING")
    const statuses: Array<string> = []
    const stream = client.watch({ service: "inferadb.replication.v1.Relationships" })
    // Cancelling the stream at the end ends it with CANCELLED, which is expected.
    stream.on("error", (error: grpc.ServiceError) => expect(error.code).toBe(grpc.status.CANCELLED))
    const heard = (count: number) =>
      new Promise<void>((resolve) => {
        const listener = (response: { status: string }) => {
          statuses.push(response.status)
          if (statuses.length >= count) {
            stream.off("data", listener)
            resolve()
          }
        }
        stream.on("data", listener)
      })
    await heard(1)
    const serving = heard(2)
    health.set(true)
    await serving
    for (const service of ["", ...GrpcHealth.serviceNames]) expect(await check(service)).toBe("SERVING")
    const stopped = heard(3)
    health.set(false)
    await stopped
    expect(await check("")).toBe("NOT_SERVING")
    expect(statuses).toEqual(["NOT_SERVING", "SERVING", "NOT_SERVING"])
    stream.cancel()
  })

  it.effect("follow() sets the status from readiness at every look", () =>
    Effect.gen(function* () {
      const seen: Array<boolean> = []
      const ready = yield* Ref.make(false)
      const fiber = yield* Effect.fork(GrpcHealth.follow({ set: (serving) => void seen.push(serving) }, Ref.get(ready)))
      yield* TestClock.adjust(GrpcHealth.followIntervalMs)
      yield* Ref.set(ready, true)
      yield* TestClock.adjust(GrpcHealth.followIntervalMs)
      yield* Fiber.interrupt(fiber)
      expect(seen).toEqual([false, false, true])
    }))
})
