/**
 * The `node:dns` resolver of `serve`'s discovery: SRV answers become one record per pod host
 * name, a name without SRV records is one host from getaddrinfo, a name that answered SRV is
 * never collapsed into one host later, and real lookups of names in /etc/hosts work.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Fiber, Layer, Option, TestClock } from "effect"
import * as dns from "node:dns"
import * as fs from "node:fs"
import * as Discovery from "../../src/replication/Discovery.js"
import * as DnsResolver from "../../src/runtime/DnsResolver.js"

const dnsError = (code: string): Error => Object.assign(new Error(`query failed: ${code}`), { code })

/** A DNS API answering from tables; `srv` values that are strings are error codes. */
const tableApi = (tables: {
  srv: Record<string, ReadonlyArray<string> | string>
  hosts: Record<string, ReadonlyArray<string>>
}): DnsResolver.DnsApi => ({
  resolveSrv: async (hostname) => {
    const answer = tables.srv[hostname] ?? dns.NOTFOUND
    if (typeof answer === "string") throw dnsError(answer)
    return answer.map((name) => ({ name }))
  },
  lookup: async (hostname) => {
    const addresses = tables.hosts[hostname]
    if (addresses === undefined) throw dnsError("ENOTFOUND")
    return addresses.map((address) => ({ address }))
  }
})

const headless = "inferadb-engine-headless.us-west-1.svc.cluster.local"
const pod = (index: number) => `inferadb-engine-us-west-1-${index}.${headless}`

describe("DnsResolver", () => {
  it.effect("a headless Service's SRV answer gives one record per pod, named and addressed by the pod's own name", () =>
    Effect.gen(function* () {
      const resolver = yield* DnsResolver.make({
        api: tableApi({ srv: { [headless]: [pod(1), `${pod(0)}.`, pod(1)] }, hosts: { [pod(0)]: ["10.0.0.10"], [pod(1)]: ["10.0.0.11"] } })
      })
      expect(yield* resolver.resolve(headless)).toEqual([
        { address: "10.0.0.11", hostname: pod(1) },
        { address: "10.0.0.10", hostname: pod(0) }
      ])
    }))

  it.effect("every host name a lookup resolved is told with all its addresses and their families, an SRV target's without its trailing dot", () =>
    Effect.gen(function* () {
      const told: Array<readonly [string, ReadonlyArray<{ readonly address: string; readonly family: number }>]> = []
      const magicDns = "inferadb-engine-eu-central-1-0.eu-central-1.ts.net"
      const resolver = yield* DnsResolver.make({
        api: tableApi({ srv: { [headless]: [`${pod(0)}.`], [magicDns]: dns.NODATA }, hosts: { [pod(0)]: ["10.0.0.10", "fd00::10"], [magicDns]: ["100.64.0.7"] } }),
        onAddresses: (hostname, addresses) => void told.push([hostname, addresses])
      })
      yield* resolver.resolve(headless)
      yield* resolver.resolve(magicDns)
      expect(yield* Effect.either(resolver.resolve("gone.example"))).toMatchObject({ _tag: "Left" })
      expect(told).toEqual([
        [pod(0), [{ address: "10.0.0.10", family: 4 }, { address: "fd00::10", family: 6 }]],
        [magicDns, [{ address: "100.64.0.7", family: 4 }]]
      ])
    }))

  it.effect("a name without SRV records is one host: every address carries the name, so discovery keeps one node", () =>
    Effect.gen(function* () {
      const magicDns = "inferadb-engine-eu-central-1-0.eu-central-1.ts.net"
      const resolver = yield* DnsResolver.make({ api: tableApi({ srv: { [magicDns]: dns.NODATA }, hosts: { [magicDns]: ["100.64.0.7", "fd7a:115c:a1e0::7"] } }) })
      const records = yield* resolver.resolve(magicDns)
      expect(records).toEqual([
        { address: "100.64.0.7", hostname: magicDns },
        { address: "fd7a:115c:a1e0::7", hostname: magicDns }
      ])
      const endpoints = yield* Effect.flatMap(Discovery.EndpointSource, (source) => source.discover).pipe(
        Effect.provide(Discovery.layerDns({ targets: [{ regionId: "eu-central-1", hostname: magicDns, port: 8081 }] })),
        Effect.provide(Layer.succeed(Discovery.DnsResolver, resolver))
      )
      expect(endpoints).toEqual([{ endpoint: `http://${magicDns}:8081`, regionId: "eu-central-1", nodeId: "eu-central-1/inferadb-engine-eu-central-1-0" }])
    }))

  it.effect("once a name answered SRV, a failed SRV query fails the round instead of merging its pods into one host", () =>
    Effect.gen(function* () {
      const tables = { srv: { [headless]: [pod(0)] } as Record<string, ReadonlyArray<string> | string>, hosts: { [pod(0)]: ["10.0.0.10"], [headless]: ["10.0.0.10"] } }
      const resolver = yield* DnsResolver.make({ api: tableApi(tables) })
      expect(yield* resolver.resolve(headless)).toHaveLength(1)
      tables.srv[headless] = dns.TIMEOUT
      const failed = yield* Effect.either(resolver.resolve(headless))
      expect(Either.isLeft(failed) && failed.left.message).toContain("answered SRV before")
    }))

  it.effect("an SRV failure other than 'no records' or 'no server' fails, and so does a name that does not resolve", () =>
    Effect.gen(function* () {
      const resolver = yield* DnsResolver.make({ api: tableApi({ srv: { "odd.example": dns.BADRESP }, hosts: { "odd.example": ["10.0.0.1"] } }) })
      const odd = yield* Effect.either(resolver.resolve("odd.example"))
      expect(Either.isLeft(odd) && odd.left).toMatchObject({ _tag: "DiscoveryError", hostname: "odd.example" })
      const missing = yield* Effect.either(resolver.resolve("missing.example"))
      expect(Either.isLeft(missing) && missing.left.message).toContain("address lookup of 'missing.example' failed: ENOTFOUND")
    }))

  it.effect("a lookup that never answers fails after lookupTimeoutMs", () =>
    Effect.gen(function* () {
      const api: DnsResolver.DnsApi = { resolveSrv: () => Promise.reject(dnsError(dns.NOTFOUND)), lookup: () => new Promise(() => {}) }
      const resolver = yield* DnsResolver.make({ api, lookupTimeoutMs: 50 })
      const resolving = yield* Effect.fork(Effect.either(resolver.resolve("slow.example")))
      // Time moves in steps until the resolve ends, however late its timer starts.
      while (Option.isNone(yield* Fiber.poll(resolving))) yield* TestClock.adjust(10)
      const result = yield* Fiber.join(resolving)
      expect(Either.isLeft(result) && result.left.message).toContain("no answer within 50 ms")
    }))

  describe("real lookups through the system resolver", () => {
    it.live("localhost, a name of /etc/hosts, resolves to a loopback address and is one node", () =>
      Effect.gen(function* () {
        const resolver = yield* DnsResolver.make()
        const records = yield* resolver.resolve("localhost")
        expect(records.length).toBeGreaterThan(0)
        for (const record of records) {
          expect(record.hostname).toBe("localhost")
          expect(["127.0.0.1", "::1"]).toContain(record.address)
        }
      }), 30_000)

    /** Root may add a name to /etc/hosts for the test; elsewhere the test is skipped. */
    const canEditHosts = (() => {
      try {
        fs.accessSync("/etc/hosts", fs.constants.W_OK)
        return process.getuid?.() === 0
      } catch {
        return false
      }
    })()

    it.live.skipIf(!canEditHosts)(
      "a name added to /etc/hosts at run time resolves from then on and fails again once removed (needs root, skipped otherwise)",
      () => {
        const name = `inferadb-discovery-${process.pid}.invalid`
        const line = `127.0.0.1 ${name}`
        // Only the line this test added is removed again, whatever else changed the file meanwhile.
        const removeLine = Effect.sync(() => {
          const lines = fs.readFileSync("/etc/hosts", "utf8").split("\n")
          fs.writeFileSync("/etc/hosts", lines.filter((candidate) => candidate !== line).join("\n"))
        })
        return Effect.gen(function* () {
          const resolver = yield* DnsResolver.make()
          expect(Either.isLeft(yield* Effect.either(resolver.resolve(name)))).toBe(true)
          yield* Effect.sync(() => {
            const text = fs.readFileSync("/etc/hosts", "utf8")
            fs.writeFileSync("/etc/hosts", `${text}${text.endsWith("\n") ? "" : "\n"}${line}\n`)
          })
          expect(yield* resolver.resolve(name)).toEqual([{ address: "127.0.0.1", hostname: name }])
          yield* removeLine
          expect(Either.isLeft(yield* Effect.either(resolver.resolve(name)))).toBe(true)
        }).pipe(Effect.ensuring(removeLine))
      },
      30_000
    )

    it.live("a name under the reserved .invalid domain fails with a DiscoveryError naming it", () =>
      Effect.gen(function* () {
        const resolver = yield* DnsResolver.make()
        const result = yield* Effect.either(resolver.resolve("inferadb-no-such-node.invalid"))
        expect(Either.isLeft(result) && result.left).toMatchObject({ _tag: "DiscoveryError", hostname: "inferadb-no-such-node.invalid" })
      }), 30_000)
  })
})
