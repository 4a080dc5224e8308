/**
 * The delay stage of a chaos run: a TCP proxy in front of one node, inside that node's network
 * namespace, that holds every chunk for a latency drawn from the scenario's link settings
 * before passing it on. The kernel these runs use has no netem (no `tc qdisc ... delay`), so
 * latency and jitter are ours: the peer's address says which node (so which region) a
 * connection comes from, the request direction takes the `peer -> this node` link's latency and
 * the answers the `this node -> peer` link's. Chunks of one direction leave in order (a chunk
 * never overtakes the one before it), as on a TCP stream; jitter therefore shows as bursts, not
 * reordering. Connections from addresses it does not know (the harness) pass undelayed.
 *
 * It runs as `inferadb-repl chaos proxy` (a hidden subcommand) so the run can start it with
 * `ip netns exec`.
 */
import * as net from "node:net"
import * as Random from "../replication/Random.js"
import type * as SimNetwork from "../sim/SimNetwork.js"

/** Latencies by peer address: `inbound` for what the peer sends, `outbound` for what it receives. */
export interface PeerLinks {
  readonly inbound: SimNetwork.Latency
  readonly outbound: SimNetwork.Latency
}

/** What one proxy does. */
export interface Settings {
  /** Seeds the latency draws (the harness derives it from the run's seed and the node). */
  readonly seed: string
  readonly listenHost: string
  readonly listenPort: number
  readonly targetHost: string
  readonly targetPort: number
  readonly peers: Readonly<Record<string, PeerLinks>>
}

/** One latency drawn from a link's distribution, in ms. */
export const sample = (latency: SimNetwork.Latency, random: () => number): number => {
  switch (latency.kind) {
    case "fixed":
      return latency.ms
    case "uniform":
      return latency.minMs + random() * (latency.maxMs - latency.minMs)
    case "normal": {
      // Box-Muller; `1 - random()` keeps the logarithm finite.
      const gaussian = Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random())
      return Math.max(latency.minMs, latency.meanMs + gaussian * latency.stddevMs)
    }
  }
}

/**
 * Pipes `from` into `to`, holding each chunk for `delayMs()` without letting one overtake the one
 * before it. The chunks wait in one queue with one timer for the head: a timer per chunk let
 * chunks overtake each other, because Node starts a timer from the event loop's cached time,
 * which falls behind the real clock while the loop is busy, so a later chunk's shorter timer
 * could expire first (reordered bytes broke HTTP/2 framing in chaos runs: RST_STREAM protocol
 * errors, and one link stuck for a whole run).
 */
const pipeDelayed = (from: net.Socket, to: net.Socket, delayMs: () => number): void => {
  const queue: Array<{ readonly chunk: Buffer; readonly releaseMs: number }> = []
  let ended = false
  let timer: NodeJS.Timeout | undefined
  const release = (): void => {
    timer = undefined
    const nowMs = Date.now()
    while (queue.length > 0 && queue[0]!.releaseMs <= nowMs) {
      const { chunk } = queue.shift()!
      if (!to.destroyed) to.write(chunk)
    }
    if (queue.length > 0) timer = setTimeout(release, queue[0]!.releaseMs - nowMs)
    else if (ended && !to.destroyed) to.end()
  }
  from.on("data", (chunk: Buffer) => {
    const lastMs = queue.length > 0 ? queue[queue.length - 1]!.releaseMs : 0
    queue.push({ chunk, releaseMs: Math.max(Date.now() + delayMs(), lastMs) })
    if (timer === undefined) timer = setTimeout(release, queue[0]!.releaseMs - Date.now())
  })
  from.on("end", () => {
    ended = true
    if (timer === undefined) release()
  })
  to.on("close", () => {
    if (timer !== undefined) clearTimeout(timer)
    queue.length = 0
  })
}

/** Starts the proxy; resolves once it listens. */
export const start = (settings: Settings, random: () => number = Random.make(settings.seed).next): Promise<net.Server> =>
  new Promise((resolve, reject) => {
    const server = net.createServer((client) => {
      const peer = settings.peers[(client.remoteAddress ?? "").replace(/^::ffff:/, "")]
      const upstream = net.connect(settings.targetPort, settings.targetHost)
      const close = () => {
        client.destroy()
        upstream.destroy()
      }
      client.on("error", close)
      upstream.on("error", close)
      client.on("close", close)
      upstream.on("close", close)
      if (peer === undefined) {
        client.pipe(upstream)
        upstream.pipe(client)
        return
      }
      pipeDelayed(client, upstream, () => sample(peer.inbound, random))
      pipeDelayed(upstream, client, () => sample(peer.outbound, random))
    })
    server.once("error", reject)
    server.listen(settings.listenPort, settings.listenHost, () => resolve(server))
  })
