/**
 * The simulated network between engine nodes. Every message travels as a world event after a
 * latency drawn from its link's distribution, as a frozen object or as the protobuf bytes
 * production sends (the scenario's `wire`, see `Codec.ts`); the trace names each message by
 * its identity, the same in both modes.
 *
 * Links between regions (and between nodes of one region) have a latency distribution,
 * a loss probability and a duplication probability, each overridable per directed region
 * pair. Random latencies reorder messages; a duplicated request is delivered twice and
 * answered twice (the sender takes the first answer). Faults cut links: isolate a region,
 * split regions into groups, cut one direction, or bridge (split, but one node still sees
 * both sides); heal restores every link. A cut is checked when a message arrives, so
 * messages in flight when a partition starts are lost too.
 *
 * A node's first request to a peer (and its first after either end restarted) opens a
 * connection first, one round trip on the link (`dial`), shared by every request to that peer
 * as gRPC's channel is; a handshake that gets no answer is sent again as TCP does, and a
 * request that times out on a silent channel throws the channel away as production's network
 * does (`Channel`). At most `inFlightPerTargetMaxDefault` batches (`Network.takesInFlightSlot`) are
 * in flight from one node incarnation to one endpoint, as production's network bounds them
 * (`Permits`); the rest wait for a slot at most their timeout, then go out with their whole
 * deadline, as production's do. A request above the message bound (`Settings.messageBytesMax`,
 * `serve`'s `grpc.max_message_bytes`) fails `TooLarge` at once, and an answer above it fails the
 * call `TooLarge` one trip later, as gRPC refuses both. A request to a crashed node, or
 * across a cut, gets no answer: the sender times out on its own (virtual) clock. An answer that does not decode fails the call as `Malformed` when
 * it arrives, as gRPC's does. The receiving handler runs as a fiber of the receiving node, on
 * its scheduler, so a paused node answers only after it resumes.
 */
import { Cause, Effect, Either, type Exit, Layer } from "effect"
import { networkError } from "../replication/Errors.js"
import type * as Message from "../replication/Message.js"
import * as Network from "../replication/Network.js"
import type * as Random from "../replication/Random.js"
import * as Codec from "./Codec.js"
import type { Event } from "./EventQueue.js"
import type { World } from "./World.js"

/** A latency distribution in milliseconds. */
export type Latency =
  | { readonly kind: "fixed"; readonly ms: number }
  | { readonly kind: "uniform"; readonly minMs: number; readonly maxMs: number }
  /** Normal-ish (Box-Muller), never below `minMs`. */
  | { readonly kind: "normal"; readonly meanMs: number; readonly stddevMs: number; readonly minMs: number }

/** An upper bound of one-way latency (the mean plus four deviations for a normal one). */
export const latencyBoundMs = (latency: Latency): number =>
  latency.kind === "fixed" ? latency.ms : latency.kind === "uniform" ? latency.maxMs : latency.meanMs + 4 * latency.stddevMs

/** The slowest one-way latency any link of `settings` draws (`latencyBoundMs`). */
export const slowestOneWayMs = (settings: Pick<Settings, "remote" | "links">): number =>
  Math.max(latencyBoundMs(settings.remote.latency), ...settings.links.map((entry) => latencyBoundMs(entry.link.latency)))

/** One direction of a link. */
export interface Link {
  readonly latency: Latency
  /** Probability that a message is lost. */
  readonly loss: number
  /** Probability that a message is delivered twice. */
  readonly duplicate: number
}

/** Network settings: defaults for links between regions and inside a region, plus overrides. */
export interface Settings {
  /**
   * Probability that a node which is not serving (crashed, restarting, not listening yet)
   * refuses connections, as a live host with no process on the port does (the sender fails
   * `Unreachable` one round trip later), rather than swallowing them, as a machine that is down
   * does (the sender fails `Timeout` at its deadline). Drawn once per outage of a node; both
   * happen in production, and senders react to them differently. Default `downRefusesDefault`.
   */
  readonly downRefuses?: number
  readonly remote: Link
  readonly local: Link
  /** Directed overrides between regions. */
  readonly links: ReadonlyArray<{ readonly from: string; readonly to: string; readonly link: Link }>
  /** Requests other than heartbeats in flight from one node incarnation to one endpoint at most; default `inFlightPerTargetMaxDefault`. */
  readonly inFlightPerTargetMax?: number
  /**
   * The largest request or answer a node sends or takes, in bytes (`grpc.max_message_bytes` of
   * every node); default `Network.messageBytesMaxDefault`. A larger request fails `TooLarge` at
   * once at its sender, as grpc-js refuses to send it; a larger answer fails the call `TooLarge`
   * one trip later, as the server's gRPC answers with that status instead.
   */
  readonly messageBytesMax?: number
}

/** A node incarnation as the network sees it. */
export interface Host {
  readonly name: string
  readonly alive: () => boolean
  /** Runs `callback` now, or when the node resumes if it is paused (`NodeScheduler.whenRunning`). */
  readonly whenRunning: (kind: "timer" | "message", callback: () => void) => void
  /** Runs an effect as a fiber of this node; `onExit` is called when it ends. */
  readonly fork: <A, E>(effect: Effect.Effect<A, E>, onExit: (exit: Exit.Exit<A, E>) => void) => void
}

/** Observers of successful exchanges (the simulator's history uses them). */
export interface Hooks {
  /** A node acknowledged a batch: every change in it is durable at `receiver`'s region. */
  readonly onBatchAcknowledged?: (receiver: Network.Peer, batch: Message.ReplicateBatch) => void
  /** A message was put on the wire (whether or not it arrives): residency is judged on these. */
  readonly onSent?: (from: Network.Peer, to: Network.Peer, message: Message.Request | Message.Response) => void
  /** A message's trip ended: it arrived, or was lost or cut on the way (reports draw these). */
  readonly onTransmission?: (transmission: Transmission) => void
}

/** One message's trip across the network, for a report's space-time diagram. */
export interface Transmission {
  readonly from: Network.Peer
  readonly to: Network.Peer
  /** The message's tag, e.g. `ReplicateBatch` or `BatchAck`. */
  readonly label: string
  readonly sentAtMs: number
  /** Arrival, or the moment it was found cut; the send time for a message lost on the link. */
  readonly endedAtMs: number
  readonly fate: "delivered" | "lost" | "cut"
}

/** Counters of one run. */
export interface Stats {
  requests: number
  responses: number
  delivered: number
  duplicated: number
  droppedLoss: number
  droppedPartition: number
  droppedDown: number
  /** Requests to a node that was not serving whose host refused them (the rest of `droppedDown` were swallowed). */
  refused: number
  /** Connections opened: a node's first request to a peer, and its first after either side restarted. */
  connections: number
  malformed: number
  /** Requests and answers above the message bound (`Settings.messageBytesMax`), refused as production's gRPC refuses them. */
  tooLarge: number
  /** Requests delivered to an address that another node than the one the sender meant holds now (a replaced pod's old address). */
  misdirected: number
  /** Bytes on the wire (0 when messages travel as objects). */
  bytes: number
}

interface Endpoint {
  /** The node serving at the address now (not always the one a sender had in mind: see `SimDns`). */
  readonly peer: Network.Peer
  readonly regionId: string
  readonly host: Host
  readonly handler: Network.Handler
  readonly atOnce: Network.AnswerAtOnce | undefined
}

interface Call {
  settled: boolean
  /** The decoded answer, or why its bytes did not decode. */
  readonly onResponse: (response: Either.Either<Message.Response, string>) => void
  /** The callee's host refused the connection: nothing is serving there. */
  readonly onRefused: () => void
  /** The callee's gRPC answered with a status instead of an answer (see `Status`). */
  readonly onStatus: (status: Status) => void
}

/**
 * A status the callee's gRPC answers with instead of a message, as production's network reports
 * it (`GrpcNetwork.reasonFor`): an answer above the message bound (RESOURCE_EXHAUSTED, `TooLarge`),
 * or a handler that died (INTERNAL, `Rejected`), after which production's caller rebuilds its
 * channel (`resetsChannel`).
 */
export interface Status {
  readonly reason: "TooLarge" | "Rejected"
  readonly message: string
  readonly resetsChannel: boolean
}

/** What `serve`'s gRPC server answers for a handler that died (`GrpcServer.statusOf`), as its caller reports it. */
const handlerDied: Status = { reason: "Rejected", message: "INTERNAL: internal error", resetsChannel: true }

/** How a caller learns its call's end (see `SimNetwork.call`). */
interface CallerCallbacks {
  readonly onResponse: (response: Either.Either<Message.Response, string>) => void
  readonly onTimeout: () => void
  readonly onRefused: () => void
  readonly onStatus: (status: Status) => void
}

const linkKey = (from: string, to: string): string => `${from}\u0000${to}`

/**
 * One node incarnation's channel to one peer node, as production's network keeps one gRPC
 * channel (one HTTP/2 connection) per peer. Every request waits for the same handshake, which
 * TCP sends again after `synRetransmitMs`, doubling, while gRPC still waits for the connection
 * (`connectTimeoutMs`). A request that gets no answer by its deadline while nothing came back
 * on the channel since it was sent, nor for `channelSilenceMs`, throws the channel away, and
 * the next request dials afresh (`GrpcNetwork`'s rule, same constant). Until December 2, 2026
 * each request dialled on its own and a lost handshake was never sent again: a node cut off
 * by one lost packet reached its peer at its very next request, where a real one waits for the
 * retransmission (a chaos run's cold start was slower than every simulated one).
 */
interface Channel {
  /** Its `from>to` key in `SimNetwork.channels`: current while the map holds it there. */
  readonly key: string
  readonly from: Host
  /** When the channel was made, or last brought an answer. */
  aliveAtMs: number
  /** The callee incarnation the handshake reached; undefined until it completes. */
  connectedTo: Host | undefined
  /** The handshake under way, with the requests waiting for it. */
  dialing: Dialing | undefined
}

interface Dialing {
  readonly startedAtMs: number
  readonly waiting: Array<{ readonly call: Call; readonly send: () => void }>
  attempts: number
  retransmit: Event | undefined
}

/** TCP's first retransmission of an unanswered handshake (Linux's initial RTO), doubling after. */
export const synRetransmitMs = 1_000
/** How long gRPC waits for a connection before it fails the attempt (its minimum connect timeout). */
export const connectTimeoutMs = 20_000
/** A channel silent this long, whose request timed out, is thrown away (`GrpcNetwork.channelSilenceMs`). */
export const channelSilenceMs = 1_000

/**
 * Production's default bound on requests in flight per endpoint (`grpc.max_in_flight_per_target`,
 * `GrpcNetwork.inFlightPerTargetMaxDefault`): batches, CatchUp pages and every other request but
 * heartbeats, which skip it so liveness is still measured while batches queue.
 */
export const inFlightPerTargetMaxDefault = 8

/**
 * One node incarnation's slots for requests to one endpoint, kept across its channels (a
 * rebuilt channel does not free them), as production keeps a semaphore per target: a request
 * takes a slot before it goes on a channel and gives it back when it is answered, refused,
 * timed out or abandoned. One that waits for a slot longer than its timeout times out unsent;
 * one that gets a slot has its whole timeout from then on.
 */
class Permits {
  private inUse = 0
  private readonly waiting: Array<{ readonly call: Call; readonly start: () => void }> = []

  constructor(private readonly max: number) {}

  /** Starts the call now if a slot is free, else when one is. */
  acquire(call: Call, start: () => void): void {
    if (this.inUse < this.max) {
      this.inUse++
      start()
    } else this.waiting.push({ call, start })
  }

  /** Gives a slot back and starts the next waiting call that has not settled meanwhile. */
  release(): void {
    this.inUse--
    while (this.inUse < this.max && this.waiting.length > 0) {
      const next = this.waiting.shift()!
      if (next.call.settled) continue
      this.inUse++
      next.start()
    }
  }
}

/** The share of outages in which a down node refuses connections, unless a scenario says otherwise. */
export const downRefusesDefault = 0.5

/** The network of one world. */
export class SimNetwork {
  private readonly blocked = new Set<string>()
  private readonly bridges = new Set<string>()
  private readonly endpoints = new Map<string, Endpoint>()
  /** Per address nothing serves at, whether its host refuses connections in this outage (drawn at the first arrival). */
  private readonly refusing = new Map<string, boolean>()
  private readonly overrides: ReadonlyMap<string, Link>
  /** Channels by sending node and address (`from>to`; see `Channel`). */
  private readonly channels = new Map<string, Channel>()
  /** Each sending incarnation's slots per endpoint (see `Permits`). */
  private readonly permits = new WeakMap<Host, Map<string, Permits>>()
  private callSequence = 0
  readonly stats: Stats = {
    requests: 0,
    responses: 0,
    delivered: 0,
    duplicated: 0,
    droppedLoss: 0,
    droppedPartition: 0,
    droppedDown: 0,
    refused: 0,
    connections: 0,
    malformed: 0,
    tooLarge: 0,
    misdirected: 0,
    bytes: 0
  }

  constructor(
    private readonly world: World,
    /** The `network` stream. */
    private readonly random: Random.Stream,
    private readonly settings: Settings,
    private readonly hooks: Hooks = {},
    /** How messages travel: frozen objects, or encoded and decoded bytes. */
    private readonly carrier: Codec.Carrier = Codec.carrier("objects")
  ) {
    this.overrides = new Map(settings.links.map(({ from, to, link }) => [linkKey(from, to), link]))
  }

  // ---- faults ------------------------------------------------------------------------------

  /** Cuts `region` off from every other region in `regions`, both ways. */
  isolate(region: string, regions: ReadonlyArray<string>): void {
    for (const other of regions) if (other !== region) this.cut(region, other, false)
  }

  /** Cuts every link between regions of different groups, both ways. */
  split(groups: ReadonlyArray<ReadonlyArray<string>>): void {
    groups.forEach((group, index) => {
      for (const other of groups.slice(index + 1)) for (const left of group) for (const right of other) this.cut(left, right, false)
    })
  }

  /** Cuts one direction (or both). */
  cut(from: string, to: string, oneWay: boolean): void {
    this.blocked.add(linkKey(from, to))
    if (!oneWay) this.blocked.add(linkKey(to, from))
  }

  /** Splits into groups, but `node` keeps talking to both sides. */
  bridge(node: string, groups: ReadonlyArray<ReadonlyArray<string>>): void {
    this.split(groups)
    this.bridges.add(node)
  }

  /** Restores every link. */
  heal(): void {
    this.blocked.clear()
    this.bridges.clear()
  }

  /** Whether any link is cut. */
  get partitioned(): boolean {
    return this.blocked.size > 0
  }

  /** Whether a message from one node can reach another now. */
  reachable(from: Network.Peer, to: Network.Peer): boolean {
    if (from.regionId === to.regionId || this.blocked.size === 0) return true
    if (this.bridges.has(from.nodeId) || this.bridges.has(to.nodeId)) return true
    return !this.blocked.has(linkKey(from.regionId, to.regionId))
  }

  /** Whether region `from` can reach region `to` now (ignoring bridges). */
  regionReachable(from: string, to: string): boolean {
    return from === to || !this.blocked.has(linkKey(from, to))
  }

  // ---- endpoints ---------------------------------------------------------------------------

  register(peer: Network.Peer, host: Host, handler: Network.Handler, atOnce?: Network.AnswerAtOnce): void {
    this.endpoints.set(peer.endpoint, { peer, regionId: peer.regionId, host, handler, atOnce })
    this.refusing.delete(peer.endpoint)
  }

  unregister(peer: Network.Peer, host: Host): void {
    if (this.endpoints.get(peer.endpoint)?.host === host) this.endpoints.delete(peer.endpoint)
  }

  // ---- messages ----------------------------------------------------------------------------

  /**
   * Sends a request; exactly one of `onResponse` (an answer arrived, decoded or not) and `onTimeout` (none
   * within `timeoutMs` of the sender's simulated time) is called, on the sender's side, unless
   * the call is abandoned first with the function returned (the sender was interrupted). The
   * timeout is a timer of the sending node, so a request costs no fiber beyond the sender's.
   */
  call(
    self: Network.Peer,
    selfHost: Host,
    target: Network.Peer,
    request: Message.Request,
    timeoutMs: number,
    onResponse: (response: Either.Either<Message.Response, string>) => void,
    onTimeout: () => void,
    onRefused: () => void = onTimeout,
    onStatus: (status: Status) => void = onTimeout
  ): () => void {
    const wire = this.carrier.packRequest(request)
    const refusal = this.aboveBound(wire, request, undefined)
    if (refusal === undefined) return this.dispatch(self, selfHost, target, request, wire, timeoutMs, { onResponse, onTimeout, onRefused, onStatus })
    onStatus({ reason: "TooLarge", message: refusal, resetsChannel: false })
    return () => {}
  }

  /** Sends a request within the bound (see `call`). */
  private dispatch(
    self: Network.Peer,
    selfHost: Host,
    target: Network.Peer,
    request: Message.Request,
    wire: Codec.Parcel,
    timeoutMs: number,
    callbacks: CallerCallbacks
  ): () => void {
    const { onResponse, onTimeout, onRefused, onStatus } = callbacks
    const id = ++this.callSequence
    const detail = `${self.nodeId}>${target.nodeId} #${id} ${Codec.digestRequest(request)}`
    const permits = Network.takesInFlightSlot(request) ? this.permitsOf(selfHost, target) : undefined
    // Set once the request goes on a channel (at once, or when a slot frees up).
    let sent: { readonly channel: Channel; readonly atMs: number } | undefined
    let holdsSlot = false
    const release = () => {
      if (!holdsSlot) return
      holdsSlot = false
      permits!.release()
    }
    const deadline = () =>
      this.world.schedule(this.world.nowMs + Math.max(0, timeoutMs), "timeout", self.nodeId, `#${id}`, () =>
        selfHost.whenRunning("timer", () => {
          if (call.settled || !selfHost.alive()) return
          call.settled = true
          release()
          onTimeout()
          if (sent !== undefined) this.dropIfSilent(sent.channel, sent.atMs)
        })
      )
    const createdAtMs = this.world.nowMs
    let timer = deadline()
    const end = (then: () => void) => {
      this.world.cancel(timer)
      release()
      then()
    }
    const call: Call = {
      settled: false,
      onResponse: (response) => {
        if (sent !== undefined) sent.channel.aliveAtMs = this.world.nowMs
        end(() => onResponse(response))
      },
      onRefused: () => end(onRefused),
      onStatus: (status) => end(() => this.endWithStatus(status, sent?.channel, onStatus))
    }
    const start = () => {
      // A slot a crashing node's interrupted call gives back must not send its next one: a dead process sends nothing.
      if (!selfHost.alive()) return
      holdsSlot = permits !== undefined
      // A call that waited for its slot gets its whole deadline from now, as production's does
      // (`GrpcNetwork`): one sent with what the wait left of it timed out on the wire, and
      // behind a window of batches much wider than the bound every call did (swarm seed
      // 123000087: 32 batches in flight over one slot never converged).
      if (this.world.nowMs > createdAtMs) {
        this.world.cancel(timer)
        timer = deadline()
      }
      this.hooks.onSent?.(self, target, request)
      this.stats.requests++
      const channel = this.channelOf(self, selfHost, target)
      sent = { channel, atMs: this.world.nowMs }
      const send = () => this.sendCopies(self, selfHost, target, wire, call, detail, request._tag)
      if (this.isConnected(channel, target)) send()
      else this.dial(self, target, channel, detail).waiting.push({ call, send })
    }
    if (permits === undefined) start()
    else permits.acquire(call, start)
    return () => {
      call.settled = true
      this.world.cancel(timer)
      release()
    }
  }

  /** `selfHost`'s slots for requests to `target`'s endpoint. */
  private permitsOf(selfHost: Host, target: Network.Peer): Permits {
    let byEndpoint = this.permits.get(selfHost)
    if (byEndpoint === undefined) {
      byEndpoint = new Map()
      this.permits.set(selfHost, byEndpoint)
    }
    let permits = byEndpoint.get(target.endpoint)
    if (permits === undefined) {
      permits = new Permits(this.settings.inFlightPerTargetMax ?? inFlightPerTargetMaxDefault)
      byEndpoint.set(target.endpoint, permits)
    }
    return permits
  }

  /** `from`'s incarnation's channel to `to`: the current one, or a new one (the first, or after a restart of `from`). */
  private channelOf(from: Network.Peer, fromHost: Host, to: Network.Peer): Channel {
    const key = linkKey(from.nodeId, to.endpoint)
    const existing = this.channels.get(key)
    if (existing !== undefined && existing.from === fromHost) return existing
    const created: Channel = { key, from: fromHost, aliveAtMs: this.world.nowMs, connectedTo: undefined, dialing: undefined }
    this.channels.set(key, created)
    return created
  }

  /** Whether the channel's connection reaches `to`'s running incarnation (a restarted callee needs a new one). */
  private isConnected(channel: Channel, to: Network.Peer): boolean {
    const endpoint = this.endpoints.get(to.endpoint)
    return channel.connectedTo !== undefined && endpoint !== undefined && endpoint.host === channel.connectedTo && channel.connectedTo.alive()
  }

  /**
   * Throws the channel away after a timeout when nothing came back on it since `sentAtMs`, nor
   * for `channelSilenceMs`. Requests already sent on it may still be answered; those still
   * waiting for its handshake fail at once, as grpc-js fails the calls queued on a channel it
   * closes (UNAVAILABLE, which production's network reports as Unreachable).
   */
  private dropIfSilent(channel: Channel, sentAtMs: number): void {
    if (this.channels.get(channel.key) !== channel) return
    if (channel.aliveAtMs > sentAtMs || this.world.nowMs - channel.aliveAtMs < channelSilenceMs) return
    this.close(channel)
  }

  /** Ends a call with a status: first throws the channel it went on away when the status says so, as production's network rebuilds its channel then. */
  private endWithStatus(status: Status, channel: Channel | undefined, onStatus: (status: Status) => void): void {
    if (status.resetsChannel && channel !== undefined && this.channels.get(channel.key) === channel) this.close(channel)
    onStatus(status)
  }

  /** Throws the channel away: its handshake stops, and the requests waiting for it fail (Unreachable). */
  private close(channel: Channel): void {
    this.channels.delete(channel.key)
    const dialing = channel.dialing
    if (dialing === undefined) return
    if (dialing.retransmit !== undefined) this.world.cancel(dialing.retransmit)
    for (const { call } of dialing.waiting) {
      if (call.settled) continue
      call.settled = true
      call.onRefused()
    }
  }

  /**
   * Opens a connection before a request, as gRPC does over TCP: a node's first request to a peer,
   * and its first after either side restarted, waits one round trip on the link (the handshake)
   * before it goes out, and so does every request to the peer that comes while it is under way.
   * On real processes that first round trip (plus an HTTP/2 session through the chaos harness's
   * proxy) made first heartbeats miss their deadline as a cluster started, where the simulator
   * answered them in one trip. A node that is not serving refuses the handshake (every waiting
   * request fails at once) or swallows it; a handshake lost on the link or swallowed is sent
   * again after `synRetransmitMs`, doubling, while the channel lasts (`dropIfSilent`) and gRPC
   * waits (`connectTimeoutMs`). The connection stays open across partitions, as TCP's does,
   * until either end restarts or a request times out on it while it is silent.
   */
  private dial(from: Network.Peer, to: Network.Peer, channel: Channel, detail: string): Dialing {
    if (channel.dialing !== undefined) return channel.dialing
    this.stats.connections++
    const dialing: Dialing = { startedAtMs: this.world.nowMs, waiting: [], attempts: 0, retransmit: undefined }
    channel.connectedTo = undefined
    channel.dialing = dialing
    this.handshake(from, to, channel, dialing, detail)
    return dialing
  }

  /** Whether `dialing` is still the handshake of a current channel whose incarnation runs. */
  private stillDialing(channel: Channel, dialing: Dialing): boolean {
    return this.channels.get(channel.key) === channel && channel.dialing === dialing && channel.from.alive()
  }

  /** Sends the handshake once more (the first time too) and arms its retransmission. */
  private handshake(from: Network.Peer, to: Network.Peer, channel: Channel, dialing: Dialing, detail: string): void {
    dialing.attempts++
    const againAtMs = this.world.nowMs + synRetransmitMs * 2 ** (dialing.attempts - 1)
    dialing.retransmit =
      againAtMs - dialing.startedAtMs < connectTimeoutMs
        ? this.world.schedule(againAtMs, "retransmit", from.nodeId, `${detail} connect ${dialing.attempts + 1}`, () => {
            if (this.stillDialing(channel, dialing)) this.handshake(from, to, channel, dialing, detail)
          })
        : undefined
    this.transmit(from, to, `${detail} connect`, "Connect", () => {
      const endpoint = this.endpoints.get(to.endpoint)
      if (endpoint === undefined || !endpoint.host.alive()) {
        this.stats.droppedDown++
        if (this.refuses(to.endpoint)) this.refuseDial(to, from, channel, dialing, detail)
        return
      }
      const toHost = endpoint.host
      // The kernels complete a handshake, paused process or not; the requests waiting on it go
      // out when the caller runs.
      this.transmit(to, from, `${detail} accept`, "Accept", () => {
        // The handshake completes whether or not its requests are still wanted.
        if (!this.stillDialing(channel, dialing)) return
        if (dialing.retransmit !== undefined) this.world.cancel(dialing.retransmit)
        channel.dialing = undefined
        channel.connectedTo = toHost
        channel.from.whenRunning("message", () => {
          for (const { call, send } of dialing.waiting) if (!call.settled) send()
        })
      })
    })
  }

  /** The callee's host answers the handshake with a reset: every request waiting on it learns, one trip later, that nothing serves there. */
  private refuseDial(from: Network.Peer, to: Network.Peer, channel: Channel, dialing: Dialing, detail: string): void {
    this.stats.refused++
    // Production fails the requests UNAVAILABLE and builds a new channel for the next one.
    this.transmit(from, to, `${detail} refused`, "Refused", () => {
      if (this.stillDialing(channel, dialing)) this.close(channel)
    })
  }

  /** Puts one message on the wire: lost, or delivered as a world event after its latency. */
  private transmit(from: Network.Peer, to: Network.Peer, detail: string, label: string, deliver: () => void): void {
    const link = this.link(from.regionId, to.regionId)
    const sentAtMs = this.world.nowMs
    const observe = this.hooks.onTransmission
    if (link.loss > 0 && this.random.next() < link.loss) {
      this.stats.droppedLoss++
      observe?.({ from, to, label, sentAtMs, endedAtMs: sentAtMs, fate: "lost" })
      return
    }
    // Named only when operations are counted by cause (`Effort.byCause`): ordinary runs build no string for it.
    const cause = this.world.effort.byCause === undefined ? undefined : `deliver ${label}${from.regionId === to.regionId ? " to a sibling" : ""}`
    this.world.schedule(
      this.world.nowMs + this.latency(link.latency),
      "deliver",
      to.nodeId,
      detail,
      () => {
        if (!this.reachable(from, to)) {
          this.stats.droppedPartition++
          observe?.({ from, to, label, sentAtMs, endedAtMs: this.world.nowMs, fate: "cut" })
          return
        }
        observe?.({ from, to, label, sentAtMs, endedAtMs: this.world.nowMs, fate: "delivered" })
        deliver()
      },
      cause
    )
  }

  /** A request arrives at its target: decode, run the handler there, send the answer back. */
  private arrive(self: Network.Peer, selfHost: Host, target: Network.Peer, wire: Codec.Parcel, call: Call, detail: string): void {
    const endpoint = this.endpoints.get(target.endpoint)
    if (endpoint === undefined || !endpoint.host.alive()) {
      this.stats.droppedDown++
      if (this.refuses(target.endpoint)) this.refuse(target, self, selfHost, call, detail)
      return
    }
    this.stats.delivered++
    if (endpoint.peer.nodeId !== target.nodeId) this.stats.misdirected++
    this.stats.bytes += this.carrier.size(wire)
    endpoint.host.whenRunning("message", () => this.handle(self, selfHost, target, endpoint, wire, call, detail))
  }

  /** The target's process takes a request in: decode, run the handler, send the answer back. */
  private handle(self: Network.Peer, selfHost: Host, target: Network.Peer, endpoint: Endpoint, wire: Codec.Parcel, call: Call, detail: string): void {
    const decoded = this.carrier.unpackRequest(wire)
    if (Either.isLeft(decoded)) {
      this.stats.malformed++
      this.answer(target, self, selfHost, { _tag: "Refused", reason: "Malformed", message: decoded.left }, undefined, call, detail)
      return
    }
    const request = decoded.right
    const atOnce = answerAtOnce(endpoint, request)
    if (atOnce._tag === "Right") return this.answer(target, self, selfHost, atOnce.right, request, call, detail)
    // As `serve`'s gRPC server does (`GrpcServer.statusOf`), a handler that dies is a bug, logged at
    // Error (so the run's `defects` check fails), and answered INTERNAL, which the caller gets one
    // trip later and fails on at once, rebuilding its channel. (Until December 5, 2026 the death
    // went unseen here and the caller waited for its deadline, where production's does not.)
    // A handler interrupted because its process died answers nothing: a dead process sends nothing.
    const handled = Effect.tapDefect(atOnce.left ?? endpoint.handler(request), (cause) => Effect.logError(`handling a ${request._tag} died with a defect (a bug)`, cause))
    endpoint.host.fork(handled, (exit) => {
      if (exit._tag !== "Success") {
        if (!Cause.isInterruptedOnly(exit.cause)) this.answerStatus(target, self, selfHost, call, detail, handlerDied)
        return
      }
      const response = exit.value
      if (response._tag === "BatchAck" && request._tag === "ReplicateBatch") this.hooks.onBatchAcknowledged?.(endpoint.peer, request)
      this.answer(target, self, selfHost, response, request, call, detail)
    })
  }

  /** Puts a request on the wire, twice when the link duplicates it. */
  private sendCopies(self: Network.Peer, selfHost: Host, target: Network.Peer, wire: Codec.Parcel, call: Call, detail: string, label: string): void {
    const copies = this.random.next() < this.link(self.regionId, target.regionId).duplicate ? 2 : 1
    if (copies === 2) this.stats.duplicated++
    for (let copy = 0; copy < copies; copy++) this.transmit(self, target, detail, label, () => this.arrive(self, selfHost, target, wire, call, detail))
  }

  /** Whether the host at an address nothing serves at refuses connections, drawn once per outage. */
  private refuses(address: string): boolean {
    let refusing = this.refusing.get(address)
    if (refusing === undefined) {
      refusing = this.random.next() < (this.settings.downRefuses ?? downRefusesDefault)
      this.refusing.set(address, refusing)
    }
    return refusing
  }

  /** The callee's host answers the connection with a reset: the caller learns one trip later that nothing serves there. */
  private refuse(from: Network.Peer, to: Network.Peer, toHost: Host, call: Call, detail: string): void {
    this.stats.refused++
    this.transmit(from, to, `${detail} refused`, "Refused", () =>
      toHost.whenRunning("message", () => {
        if (call.settled || !toHost.alive()) return
        call.settled = true
        call.onRefused()
      })
    )
  }

  /** Sends an answer back to the caller. */
  private answer(
    from: Network.Peer,
    to: Network.Peer,
    toHost: Host,
    response: Message.Response,
    request: Message.Request | undefined,
    call: Call,
    detail: string
  ): void {
    const wire = this.carrier.packResponse(response, request)
    const refusal = this.aboveBound(wire, response, request)
    if (refusal !== undefined) return this.answerStatus(from, to, toHost, call, detail, { reason: "TooLarge", message: refusal, resetsChannel: false })
    this.hooks.onSent?.(from, to, response)
    this.stats.responses++
    this.stats.bytes += this.carrier.size(wire)
    this.transmit(from, to, `${detail} ${Codec.digestResponse(response)}`, response._tag, () =>
      toHost.whenRunning("message", () => {
        if (call.settled || !toHost.alive()) return
        const decoded = this.carrier.unpackResponse(wire)
        // An undecodable answer still ends the call, at once, as production's does (not by the
        // sender's timeout): the network contract suite found the two diverging here.
        if (Either.isLeft(decoded)) this.stats.malformed++
        call.settled = true
        call.onResponse(decoded)
      })
    )
  }

  /** Why a message is above the bound, in grpc-js's words (production's network maps them to `TooLarge`); undefined when it fits. */
  private aboveBound(wire: Codec.Parcel, message: Message.Request | Message.Response, answering: Message.Request | undefined): string | undefined {
    const bytesMax = this.settings.messageBytesMax ?? Network.messageBytesMaxDefault
    const bytes = Codec.bytesAbove(this.carrier, wire, message, answering, bytesMax)
    if (bytes === undefined) return undefined
    this.stats.tooLarge++
    return `RESOURCE_EXHAUSTED: Sent message larger than max (${bytes} vs. ${bytesMax})`
  }

  /** The callee's gRPC answers the call with a status instead of a message (see `Status`), one trip back. */
  private answerStatus(from: Network.Peer, to: Network.Peer, toHost: Host, call: Call, detail: string, status: Status): void {
    const tooLarge = status.reason === "TooLarge"
    this.transmit(from, to, `${detail} ${tooLarge ? "too large" : "internal"}`, tooLarge ? "TooLarge" : "Internal", () =>
      toHost.whenRunning("message", () => {
        if (call.settled || !toHost.alive()) return
        call.settled = true
        call.onStatus(status)
      })
    )
  }

  private link(from: string, to: string): Link {
    if (from === to) return this.settings.local
    return this.overrides.get(linkKey(from, to)) ?? this.settings.remote
  }

  private latency(latency: Latency): number {
    switch (latency.kind) {
      case "fixed":
        return latency.ms
      case "uniform":
        return latency.minMs + this.random.next() * (latency.maxMs - latency.minMs)
      case "normal": {
        // Box-Muller; 1 - u keeps the logarithm finite.
        const u = 1 - this.random.next()
        const v = this.random.next()
        const gaussian = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v)
        return Math.max(latency.minMs, latency.meanMs + gaussian * latency.stddevMs)
      }
    }
  }
}

/**
 * The endpoint's answer at once (`Network.AnswerAtOnce`), as a Right; a Left when the request
 * goes to the handler, holding the defect when answering at once threw (a bug, which then takes
 * the handler's path to the caller: logged, and answered INTERNAL).
 */
const answerAtOnce = (endpoint: Endpoint, request: Message.Request): Either.Either<Message.Response, Effect.Effect<never> | undefined> => {
  if (endpoint.atOnce === undefined) return Either.left(undefined)
  try {
    const response = endpoint.atOnce(request)
    return response === undefined ? Either.left(undefined) : Either.right(response)
  } catch (defect) {
    return Either.left(Effect.die(defect))
  }
}

/** The Network service of one node incarnation on the simulated network. */
export const layer = (network: SimNetwork, self: Network.Peer, host: Host): Layer.Layer<Network.Network> => Layer.succeed(Network.Network, service(network, self, host))

/** The Network service `layer` provides, made without a layer: a simulated node's start builds it directly. */
export const service = (network: SimNetwork, self: Network.Peer, host: Host): Network.Network["Type"] => {
  const call: Network.Call = (target, request, timeoutMs, done) =>
    network.call(
      self,
      host,
      target,
      request,
      timeoutMs,
      (answer) => done(Either.isRight(answer) ? Either.right(answer.right) : Either.left(networkError(target, "Malformed", answer.left))),
      () => done(Either.left(networkError(target, "Timeout", `no answer within ${timeoutMs} ms`))),
      () => done(Either.left(networkError(target, "Unreachable", "connection refused: nothing is serving on that node"))),
      (status) => done(Either.left(networkError(target, status.reason, status.message)))
    )
  return {
    send: Network.sendOver(call),
    serve: (handler, atOnce) =>
      Effect.acquireRelease(
        Effect.sync(() => network.register(self, host, handler, atOnce)),
        () => Effect.sync(() => network.unregister(self, host))
      ),
    call
  }
}
