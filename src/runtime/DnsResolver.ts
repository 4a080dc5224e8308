/**
 * The production `Discovery.DnsResolver`, over `node:dns`: what `serve` resolves under
 * `discovery.mode: dns`.
 *
 * A name is first asked for SRV records. A Kubernetes headless Service answers one per pod
 * (CoreDNS also answers SRV for the bare service name), whose target is the pod's host name
 * (`<pod>.<service>.<namespace>.svc.<domain>`), so discovery names the node after its pod and
 * dials it by name. A name with no SRV records (a Tailscale MagicDNS name, an `/etc/hosts`
 * entry) is taken as one host: `dns.promises.lookup(name, { all: true })` (getaddrinfo, which
 * reads `/etc/hosts` and applies search domains) gives its addresses, every record carries the
 * name as its host name, and discovery keeps one node for it, since such a host commonly
 * answers with an IPv4 and an IPv6 address.
 *
 * Falling back from SRV to a plain lookup would turn a headless Service into one node named
 * after the Service, so it happens only while the name has never answered SRV: once it has,
 * a later SRV failure fails the round, and discovery keeps its last topology (see
 * `Discovery.runSync`). Every query is bounded (`srvTimeoutMs`, `lookupTimeoutMs`).
 */
import { Effect, Layer, Ref } from "effect"
import * as dns from "node:dns"
import * as net from "node:net"
import * as Discovery from "../replication/Discovery.js"

/** How long one SRV query may take (c-ares timeout per try; two tries). */
export const srvTimeoutMsDefault = 2_000
/** How long a getaddrinfo lookup may take; getaddrinfo itself has no deadline. */
export const lookupTimeoutMsDefault = 5_000

/** Address lookups of one name's SRV targets (its pods) in flight at once. */
export const srvTargetLookupsInFlightMax = 16

/** The `node:dns` calls the resolver makes; tests substitute them. */
export interface DnsApi {
  readonly resolveSrv: (hostname: string) => Promise<ReadonlyArray<{ readonly name: string }>>
  readonly lookup: (hostname: string) => Promise<ReadonlyArray<{ readonly address: string }>>
}

/** SRV errors that mean "this name has no SRV records" or "no DNS server answers at all". */
const noSrvCodes: ReadonlySet<string> = new Set([dns.NODATA, dns.NOTFOUND, dns.CONNREFUSED, dns.TIMEOUT, dns.SERVFAIL, dns.REFUSED])

/** The system's DNS: c-ares for SRV (bounded by `srvTimeoutMs`), getaddrinfo for lookups. */
export const systemApi = (options: { readonly srvTimeoutMs?: number } = {}): DnsApi => {
  const resolver = new dns.promises.Resolver({ timeout: options.srvTimeoutMs ?? srvTimeoutMsDefault, tries: 2 })
  return {
    resolveSrv: (hostname) => resolver.resolveSrv(hostname),
    lookup: (hostname) => dns.promises.lookup(hostname, { all: true })
  }
}

const codeOf = (error: unknown): string => (typeof error === "object" && error !== null && "code" in error ? String(error.code) : "")

const messageOf = (error: unknown): string => (error instanceof Error ? error.message : String(error))

/** Settings of `make`. */
export interface Options {
  readonly api?: DnsApi
  readonly lookupTimeoutMs?: number
  /**
   * Told of every host name a lookup resolved and all its addresses (`DialAddress.Dialler`'s
   * `remember`: a channel to a peer discovery found can then dial the addresses it had during a
   * later DNS outage, even if nothing dialled it while the name resolved).
   */
  readonly onAddresses?: (hostname: string, addresses: ReadonlyArray<{ readonly address: string; readonly family: number }>) => void
}

/** A resolver over `options.api` (the system's DNS by default). */
export const make = (options: Options = {}): Effect.Effect<Discovery.DnsResolver["Type"]> =>
  Effect.gen(function* () {
    const api = options.api ?? systemApi()
    const lookupTimeoutMs = options.lookupTimeoutMs ?? lookupTimeoutMsDefault
    // Names that have answered SRV once: for them a plain lookup would collapse the pods into one node.
    const srvNames = yield* Ref.make<ReadonlySet<string>>(new Set())
    const failure = (hostname: string, what: string, error: unknown) =>
      new Discovery.DiscoveryError({ hostname, message: `${what} of '${hostname}' failed: ${codeOf(error) || messageOf(error)}` })

    const told = (hostname: string, addresses: ReadonlyArray<{ readonly address: string }>) =>
      options.onAddresses?.(hostname.replace(/\.$/, ""), addresses.map((entry) => ({ address: entry.address, family: net.isIP(entry.address) === 6 ? 6 : 4 })))

    const lookup = (hostname: string) =>
      Effect.tryPromise({ try: () => api.lookup(hostname), catch: (error) => failure(hostname, "address lookup", error) }).pipe(
        Effect.timeoutFail({ duration: lookupTimeoutMs, onTimeout: () => failure(hostname, "address lookup", new Error(`no answer within ${lookupTimeoutMs} ms`)) }),
        Effect.filterOrFail(
          (addresses) => addresses.length > 0,
          () => failure(hostname, "address lookup", new Error("no addresses"))
        ),
        Effect.tap((addresses) => Effect.sync(() => told(hostname, addresses)))
      )

    /** One record per SRV target, with the first address of its own lookup. */
    const fromSrv = (hostname: string, targets: ReadonlyArray<{ readonly name: string }>) =>
      Effect.forEach(
        [...new Set(targets.map((target) => target.name.replace(/\.$/, "")))],
        (target) => Effect.map(lookup(target), (addresses): Discovery.DnsRecord => ({ address: addresses[0]!.address, hostname: target })),
        { concurrency: srvTargetLookupsInFlightMax }
      ).pipe(Effect.zipLeft(Ref.update(srvNames, (names) => new Set([...names, hostname]))))

    const fromLookup = (hostname: string) =>
      Effect.map(lookup(hostname), (addresses) => addresses.map((entry): Discovery.DnsRecord => ({ address: entry.address, hostname: hostname.replace(/\.$/, "") })))

    const resolve = (hostname: string): Effect.Effect<ReadonlyArray<Discovery.DnsRecord>, Discovery.DiscoveryError> =>
      Effect.gen(function* () {
        const srv = yield* Effect.either(Effect.tryPromise({ try: () => api.resolveSrv(hostname), catch: (error) => error }))
        if (srv._tag === "Right" && srv.right.length > 0) return yield* fromSrv(hostname, srv.right)
        if ((yield* Ref.get(srvNames)).has(hostname)) {
          return yield* failure(hostname, "SRV query (it answered SRV before, so a plain lookup would merge its nodes)", srv._tag === "Left" ? srv.left : new Error("no records"))
        }
        if (srv._tag === "Left" && !noSrvCodes.has(codeOf(srv.left))) return yield* failure(hostname, "SRV query", srv.left)
        return yield* fromLookup(hostname)
      })
    return { resolve }
  })

/** The system resolver as the `Discovery.DnsResolver` service. */
export const layer = (options: Options = {}): Layer.Layer<Discovery.DnsResolver> => Layer.effect(Discovery.DnsResolver, make(options))
