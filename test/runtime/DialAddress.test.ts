/**
 * Where new gRPC channels dial: by name while the name resolves, at the addresses it last had
 * (under its name) once it stops, and by name again when it comes back.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as DialAddress from "../../src/runtime/DialAddress.js"

/** A lookup whose answer the test sets; it counts the names asked. */
const scriptedLookup = () => {
  let answer: ReadonlyArray<DialAddress.Resolved> | Error | "hang" = new Error("unset")
  const asked: Array<string> = []
  const lookup: DialAddress.Lookup = (hostname) => {
    asked.push(hostname)
    if (answer === "hang") return new Promise(() => undefined)
    return answer instanceof Error ? Promise.reject(answer) : Promise.resolve(answer)
  }
  return {
    lookup,
    asked,
    set: (next: typeof answer) => void (answer = next)
  }
}

const enotfound = Object.assign(new Error("getaddrinfo ENOTFOUND"), { code: "ENOTFOUND" })

describe("DialAddress", () => {
  it.effect("an IP literal or an address without a port is dialled as it is, without a lookup", () =>
    Effect.gen(function* () {
      const script = scriptedLookup()
      const dialler = DialAddress.make(script.lookup)
      for (const address of ["127.0.0.1:8081", "[::1]:8081", "dns:///peer:8081", "unix:/tmp/socket"]) {
        expect(yield* dialler.dialFor(address)).toEqual({ target: address, options: {} })
      }
      expect(script.asked).toEqual([])
    }))

  it.effect("a name that resolves is dialled by name; once it stops, its last addresses are dialled under its name, and told once each way", () =>
    Effect.gen(function* () {
      const script = scriptedLookup()
      const dialler = DialAddress.make(script.lookup)
      script.set([{ address: "10.0.0.7", family: 4 }, { address: "10.0.0.8", family: 4 }, { address: "fd00::7", family: 6 }])
      expect(yield* dialler.dialFor("engine-0.engine.ns.svc:8081")).toEqual({ target: "engine-0.engine.ns.svc:8081", options: {} })

      script.set(enotfound)
      const first = yield* dialler.dialFor("engine-0.engine.ns.svc:8081")
      expect(first.target).toBe("ipv4:10.0.0.7:8081,10.0.0.8:8081")
      expect(first.options).toEqual({ "grpc.default_authority": "engine-0.engine.ns.svc:8081", "grpc.ssl_target_name_override": "engine-0.engine.ns.svc" })
      expect(first.news).toContain("'engine-0.engine.ns.svc' does not resolve (ENOTFOUND)")
      // The next new channel dials the name's other family, without telling again.
      const second = yield* dialler.dialFor("engine-0.engine.ns.svc:8081")
      expect(second.target).toBe("ipv6:[fd00::7]:8081")
      expect(second.news).toBeUndefined()
      expect(dialler.fallingBack()).toEqual(["engine-0.engine.ns.svc"])

      script.set([{ address: "10.0.0.9", family: 4 }])
      const back = yield* dialler.dialFor("engine-0.engine.ns.svc:8081")
      expect(back.target).toBe("engine-0.engine.ns.svc:8081")
      expect(back.news).toContain("resolves again")
      expect(dialler.fallingBack()).toEqual([])
      expect((yield* dialler.dialFor("engine-0.engine.ns.svc:8081")).news).toBeUndefined()

      // What it resolved to last is what a later outage dials.
      script.set(enotfound)
      expect((yield* dialler.dialFor("engine-0.engine.ns.svc:8081")).target).toBe("ipv4:10.0.0.9:8081")
      expect(script.asked.every((name) => name === "engine-0.engine.ns.svc")).toBe(true)
    }))

  it.effect("a name that never resolved is dialled by name, so grpc-js says why it cannot connect", () =>
    Effect.gen(function* () {
      const script = scriptedLookup()
      script.set(enotfound)
      const dial = yield* DialAddress.make(script.lookup).dialFor("peer.invalid:8081")
      expect(dial).toEqual({ target: "peer.invalid:8081", options: {}, unresolved: true })
    }))

  it.effect("learn remembers the addresses of a name dialled unresolved, so the next outage dials them; it looks up nothing already known", () =>
    Effect.gen(function* () {
      const script = scriptedLookup()
      const dialler = DialAddress.make(script.lookup)
      script.set(enotfound)
      expect((yield* dialler.dialFor("peer:8081")).unresolved).toBe(true)
      // A failed lookup in learn changes nothing: the name is still dialled by name.
      yield* dialler.learn("peer:8081")
      expect((yield* dialler.dialFor("peer:8081")).target).toBe("peer:8081")

      // The name resolves now (the channel dialled by name connected): learn remembers it.
      script.set([{ address: "10.0.0.7", family: 4 }])
      yield* dialler.learn("peer:8081")
      script.set(enotfound)
      const outage = yield* dialler.dialFor("peer:8081")
      expect(outage.target).toBe("ipv4:10.0.0.7:8081")
      expect(outage.unresolved).toBeUndefined()
      expect(outage.news).toContain("does not resolve (ENOTFOUND)")

      // Known names and IP literals are not looked up again.
      const asked = script.asked.length
      script.set([{ address: "10.0.0.99", family: 4 }])
      yield* dialler.learn("peer:8081")
      yield* dialler.learn("127.0.0.1:8081")
      expect(script.asked.length).toBe(asked)
      script.set(enotfound)
      expect((yield* dialler.dialFor("peer:8081")).target).toBe("ipv4:10.0.0.7:8081")
    }))

  it.effect("remember takes the addresses discovery resolved, so a name that stopped resolving before the dialler ever looked it up is dialled at them", () =>
    Effect.gen(function* () {
      const script = scriptedLookup()
      const dialler = DialAddress.make(script.lookup)
      // Discovery found the peer while its name resolved; the name is gone before the first dial.
      dialler.remember("peer", [{ address: "10.0.0.7", family: 4 }])
      script.set(enotfound)
      const outage = yield* dialler.dialFor("peer:8081")
      expect(outage.target).toBe("ipv4:10.0.0.7:8081")
      expect(outage.unresolved).toBeUndefined()
      expect(outage.options).toEqual({ "grpc.default_authority": "peer:8081", "grpc.ssl_target_name_override": "peer" })
      // A later answer replaces what was remembered; an empty one and an IP literal change nothing.
      dialler.remember("peer", [{ address: "10.0.0.8", family: 4 }])
      dialler.remember("peer", [])
      dialler.remember("10.0.0.9", [{ address: "10.0.0.9", family: 4 }])
      expect((yield* dialler.dialFor("peer:8081")).target).toBe("ipv4:10.0.0.8:8081")
      expect((yield* dialler.dialFor("10.0.0.9:8081")).target).toBe("10.0.0.9:8081")
      // Without it, the same dial goes by the dead name.
      expect((yield* DialAddress.make(script.lookup).dialFor("peer:8081")).unresolved).toBe(true)
    }))

  // Live: the lookup's bound runs on the real clock, as in a node.
  it.live("an IPv6 first answer dials the IPv6 addresses first, then the families take turns; an empty answer or a lookup that hangs counts as not resolving", () =>
    Effect.gen(function* () {
      const script = scriptedLookup()
      const dialler = DialAddress.make(script.lookup, 20)
      script.set([{ address: "fd00::7", family: 6 }, { address: "10.0.0.7", family: 4 }])
      yield* dialler.dialFor("host-a:9000")
      script.set([])
      const empty = yield* dialler.dialFor("host-a:9000")
      expect(empty.target).toBe("ipv6:[fd00::7]:9000")
      expect(empty.news).toContain("(no addresses)")
      expect(empty.news).toContain("ipv6:[fd00::7]:9000 and ipv4:10.0.0.7:9000 in turn")
      // Each new channel (a rebuild after a failed one) dials the other family, told once.
      const next = yield* dialler.dialFor("host-a:9000")
      const third = yield* dialler.dialFor("host-a:9000")
      expect([next.target, third.target]).toEqual(["ipv4:10.0.0.7:9000", "ipv6:[fd00::7]:9000"])
      expect([next.news, third.news]).toEqual([undefined, undefined])
      expect(dialler.fallingBack()).toEqual(["host-a"])

      script.set([{ address: "10.0.0.1", family: 4 }])
      yield* dialler.dialFor("host-b:9000")
      script.set("hang")
      const hung = yield* dialler.dialFor("host-b:9000")
      expect(hung.target).toBe("ipv4:10.0.0.1:9000")
      expect(hung.news).toContain("no answer within 20 ms")
    }))
})
