/**
 * The delay stage of chaos runs on loopback (no root needed): a known peer's bytes are held for
 * the link's latency each way and arrive in order; an unknown peer (the harness) passes at once.
 */
import * as net from "node:net"
import { afterEach, describe, expect, it } from "vitest"
import * as DelayProxy from "../../src/chaos/DelayProxy.js"

const listen = (server: net.Server): Promise<number> =>
  new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve((server.address() as net.AddressInfo).port)))

const closers: Array<() => void> = []
afterEach(() => {
  for (const close of closers.splice(0)) close()
})

/** An echo server behind a proxy whose peers are `peers`; returns the proxy's port. */
const proxied = async (peers: DelayProxy.Settings["peers"]): Promise<number> => {
  const echo = net.createServer((socket) => socket.pipe(socket))
  const targetPort = await listen(echo)
  const probe = net.createServer()
  const listenPort = await listen(probe)
  await new Promise((resolve) => probe.close(resolve))
  const proxy = await DelayProxy.start({ seed: "1", listenHost: "127.0.0.1", listenPort, targetHost: "127.0.0.1", targetPort, peers })
  closers.push(
    () => proxy.close(),
    () => echo.close()
  )
  return listenPort
}

/** Sends `chunks` one by one and resolves with the echoed text and the time to the last byte. */
const roundTrip = (port: number, chunks: ReadonlyArray<string>): Promise<{ readonly text: string; readonly elapsedMs: number }> =>
  new Promise((resolve, reject) => {
    const expected = chunks.join("")
    const socket = net.connect(port, "127.0.0.1")
    closers.push(() => socket.destroy())
    let text = ""
    const startedAtMs = performance.now()
    socket.on("error", reject)
    socket.on("data", (chunk: Buffer) => {
      text += chunk.toString("utf8")
      if (text.length >= expected.length) resolve({ text, elapsedMs: performance.now() - startedAtMs })
    })
    socket.on("connect", () => chunks.forEach((chunk) => socket.write(chunk)))
  })

describe("delay proxy", () => {
  it("holds a known peer's bytes for the link's latency each way, in order", async () => {
    const port = await proxied({ "127.0.0.1": { inbound: { kind: "fixed", ms: 80 }, outbound: { kind: "uniform", minMs: 40, maxMs: 60 } } })
    const chunks = Array.from({ length: 20 }, (_, index) => `chunk-${index};`)
    const { text, elapsedMs } = await roundTrip(port, chunks)
    expect(text).toBe(chunks.join(""))
    expect(elapsedMs).toBeGreaterThanOrEqual(115)
  })

  it("keeps a jittered stream in order while its event loop is busy (timers fire late and together)", async () => {
    // Each chunk waits its own draw (0-30 ms, not below the one before it). While the loop is
    // blocked, the cached time that timers start from falls behind the real clock, so timers
    // set with equal or later release times could fire out of order: reordered TCP bytes broke
    // HTTP/2 framing in chaos runs on a busy machine (RST_STREAM protocol errors, one link
    // stuck for a whole run).
    const port = await proxied({ "127.0.0.1": { inbound: { kind: "uniform", minMs: 0, maxMs: 30 }, outbound: { kind: "fixed", ms: 0 } } })
    const chunks = Array.from({ length: 400 }, (_, index) => `<${index}>`)
    const expected = chunks.join("")
    const text = await new Promise<string>((resolve, reject) => {
      const socket = net.connect(port, "127.0.0.1")
      closers.push(() => socket.destroy())
      let received = ""
      socket.setNoDelay(true)
      socket.on("error", reject)
      socket.on("data", (chunk: Buffer) => {
        received += chunk.toString("utf8")
        if (received.length >= expected.length) resolve(received)
      })
      socket.on("connect", () => {
        let next = 0
        const send = () => {
          if (next >= chunks.length) return
          socket.write(chunks[next++]!)
          // Every tenth chunk, hold the loop for a few milliseconds (as a busy node would).
          if (next % 10 === 0) {
            const until = performance.now() + 4
            while (performance.now() < until) {
              // busy
            }
          }
          setImmediate(send)
        }
        send()
      })
    })
    expect(text).toBe(expected)
  })

  it("passes bytes from an address it does not know without delay", async () => {
    const port = await proxied({ "10.0.0.9": { inbound: { kind: "fixed", ms: 5_000 }, outbound: { kind: "fixed", ms: 5_000 } } })
    const { text, elapsedMs } = await roundTrip(port, ["hello"])
    expect(text).toBe("hello")
    expect(elapsedMs).toBeLessThan(5_000)
  })

  it("draws latencies from the scenario's distributions", () => {
    const draws = Array.from({ length: 200 }, (_, index) => DelayProxy.sample({ kind: "normal", meanMs: 50, stddevMs: 10, minMs: 30 }, () => ((index * 37) % 100) / 100 + 0.005))
    expect(Math.min(...draws)).toBeGreaterThanOrEqual(30)
    expect(DelayProxy.sample({ kind: "uniform", minMs: 10, maxMs: 20 }, () => 0.5)).toBe(15)
    expect(DelayProxy.sample({ kind: "fixed", ms: 7 }, () => 0.9)).toBe(7)
  })
})
