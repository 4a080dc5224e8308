/**
 * Where a new gRPC channel to a peer dials.
 *
 * A peer named by a host name is dialled by that name, so grpc-js resolves it and reaches every
 * address it has, and the addresses the name resolved to are remembered. When the name stops
 * resolving (a DNS outage, an `/etc/hosts` entry removed, a record withdrawn while the pod still
 * runs), a channel rebuilt then (after a peer restart, a stall or a broken connection) dials the
 * addresses the name last had, still under its name: the `:authority` and the TLS server name
 * stay the host name, so a certificate issued for it still verifies. Discovery keeps its last
 * topology through a DNS outage (`Discovery.runSync`); without this, replication to that
 * topology stopped at the first rebuilt channel and stayed stopped until DNS answered again.
 *
 * A name that had addresses of both families (IPv6 and IPv4) is dialled at one family per new
 * channel, in turn, beginning with the lookup's first: a channel is rebuilt after it failed, so
 * a family whose path is dead costs one rebuild, not the peer.
 *
 * A name that never resolved is dialled by name, and grpc-js reports why it cannot connect. Such
 * a channel may still connect later, once the name resolves for grpc-js's own lookup (the
 * dialler's lookup ran just before it resolved, or outlived its bound on a busy machine): the
 * first answer on it has the name looked up again (`learn`), so the channels after it have
 * addresses to fall back on. Without that, a peer first reached that way became unreachable at
 * the first rebuilt channel of the next DNS outage (`e2e.discovery` failed so, once in CI).
 *
 * Discovery's own lookups feed it too (`remember`, from `DnsResolver`'s `onAddresses`): a peer
 * that discovery found while its name resolved, but that no dial of this node had resolved
 * before the name stopped resolving (the dialler's lookup ran late or timed out, the first
 * channel got no answer, or nothing had been sent yet), had no address known, and every channel
 * to it was dialled by the dead name until DNS answered again. `e2e.discovery` failed so in
 * fresh-clone CI at `99f9e46` and `b90e1b7` (December 2026), where the bootstrap's heartbeat cue
 * let the peer's fresh disk page the write the test waited for before this node's agent sent it.
 */
import type * as grpc from "@grpc/grpc-js"
import { Effect } from "effect"
import * as dns from "node:dns"
import * as net from "node:net"

/** How long the lookup before a new channel may take before the remembered addresses are used. */
export const lookupTimeoutMsDefault = 1_000

/** One address of a name, as `dns.lookup` gives it. */
export interface Resolved {
  readonly address: string
  readonly family: number
}

/** The address lookup the dialler makes; tests substitute it. */
export type Lookup = (hostname: string) => Promise<ReadonlyArray<Resolved>>

const systemLookup: Lookup = (hostname) => dns.promises.lookup(hostname, { all: true })

/** What a new channel dials: a grpc-js target and the channel options that go with it. */
export interface Dial {
  readonly target: string
  readonly options: grpc.ChannelOptions
  /** Dialled by name because the name did not resolve and no address of it is known. */
  readonly unresolved?: true
  /**
   * What operators should hear, once per change of course: the name stopped resolving and its
   * remembered addresses are dialled, or it resolves again and is dialled by name.
   */
  readonly news?: string
}

/** `host` and `port` of a `host:port` address, when `host` is a name (not an IP literal). */
const namedHost = (address: string): { readonly host: string; readonly port: string } | undefined => {
  const match = /^([^:[\]/]+):(\d+)$/.exec(address)
  if (match === null || net.isIP(match[1]!) !== 0) return undefined
  return { host: match[1]!, port: match[2]! }
}

/**
 * The grpc-js targets for the remembered addresses, one per address family in the lookup's
 * order: a target's `ipv4:` or `ipv6:` scheme lists several addresses of one family only.
 */
const addressTargets = (addresses: ReadonlyArray<Resolved>, port: string): ReadonlyArray<string> => {
  const families = [...new Set(addresses.map((entry) => entry.family))]
  return families.map((family) => {
    const same = addresses.filter((entry) => entry.family === family)
    return family === 6 ? `ipv6:${same.map((entry) => `[${entry.address}]:${port}`).join(",")}` : `ipv4:${same.map((entry) => `${entry.address}:${port}`).join(",")}`
  })
}

const reasonOf = (error: unknown): string =>
  typeof error === "object" && error !== null && "code" in error ? String(error.code) : error instanceof Error ? error.message : String(error)

/** The dialler of one node's client side. */
export interface Dialler {
  /** Where a new channel to `address` (`host:port`) dials. Never fails. */
  readonly dialFor: (address: string) => Effect.Effect<Dial>
  /**
   * Looks `address`'s name up and remembers its addresses, when none are known yet: after a
   * channel dialled `unresolved` answered. Never fails; a failed lookup changes nothing.
   */
  readonly learn: (address: string) => Effect.Effect<void>
  /**
   * Remembers the addresses `host` resolved to elsewhere (discovery's lookups: `DnsResolver`'s
   * `onAddresses`), as a lookup of the dialler's own would. An empty list changes nothing.
   */
  readonly remember: (host: string, addresses: ReadonlyArray<Resolved>) => void
  /** The peer names that do not resolve now and are dialled at the addresses they last had. */
  readonly fallingBack: () => ReadonlyArray<string>
}

/** A dialler over `lookup` (the system's getaddrinfo by default), each lookup bounded by `timeoutMs`. */
export const make = (lookup: Lookup = systemLookup, timeoutMs: number = lookupTimeoutMsDefault): Dialler => {
  const known = new Map<string, ReadonlyArray<Resolved>>()
  // Names whose remembered addresses are dialled, each with the channels dialled so, so a change
  // is told once, not per channel, and the families take turns.
  const fallingBack = new Map<string, number>()
  const byName = (address: string): Dial => ({ target: address, options: {} })
  const addressesOf = (host: string) =>
    Effect.tryPromise({ try: () => lookup(host), catch: reasonOf }).pipe(
      Effect.filterOrFail((addresses) => addresses.length > 0, () => "no addresses"),
      Effect.timeoutFail({ duration: timeoutMs, onTimeout: () => `no answer within ${timeoutMs} ms` })
    )
  return {
    fallingBack: () => [...fallingBack.keys()].sort(),
    remember: (host, addresses) => {
      if (addresses.length > 0 && net.isIP(host) === 0) known.set(host, addresses)
    },
    learn: (address) => {
      const named = namedHost(address)
      if (named === undefined || known.has(named.host)) return Effect.void
      return Effect.ignore(Effect.map(addressesOf(named.host), (addresses) => void (known.has(named.host) ? undefined : known.set(named.host, addresses))))
    },
    dialFor: (address) => {
      const named = namedHost(address)
      if (named === undefined) return Effect.succeed(byName(address))
      return addressesOf(named.host).pipe(
        Effect.match({
          onSuccess: (addresses): Dial => {
            known.set(named.host, addresses)
            if (!fallingBack.delete(named.host)) return byName(address)
            return { ...byName(address), news: `peer name '${named.host}' resolves again; new channels dial it by name` }
          },
          onFailure: (reason): Dial => {
            const last = known.get(named.host)
            if (last === undefined) return { ...byName(address), unresolved: true }
            const targets = addressTargets(last, named.port)
            const dialled = fallingBack.get(named.host)
            fallingBack.set(named.host, (dialled ?? 0) + 1)
            const target = targets[(dialled ?? 0) % targets.length]!
            const options = { "grpc.default_authority": address, "grpc.ssl_target_name_override": named.host }
            if (dialled !== undefined) return { target, options }
            const where = targets.length === 1 ? target : `${targets.join(" and ")} in turn`
            return { target, options, news: `peer name '${named.host}' does not resolve (${reason}); new channels dial the addresses it last had, ${where}, under its name` }
          }
        })
      )
    }
  }
}
