/**
 * How long this machine takes to wake an idle process: the round trip of 100 bytes over a
 * loopback TCP connection inside this process, sent right after the previous answer (`busyMs`)
 * and after 100 ms of idleness (`idleMs`), p50 of 30 each.
 *
 * Why the bench reports it. A replicated write at a low rate crosses several sleeping threads in
 * turn (client, origin, lmdb's writer, target, its writer, the Watch stream), and each wakes as
 * slowly as the machine lets it. On the 2-core Firecracker VMs this project is measured on (guest
 * halt polling off: `haltpoll.guest_halt_poll_ns=0`), the idle round trip was about 1 ms at p50
 * against 0.03 ms busy (December 2026), so the lag at 1,000 changes/s has a floor that no code of
 * ours sets. A reader comparing lag figures across machines needs this number beside them.
 */
import * as net from "node:net"

export interface WakeUp {
  readonly busyMs: number
  readonly idleMs: number
}

const samples = 30
const idleGapMs = 100

const p50 = (values: ReadonlyArray<number>, digits: number): number => {
  const sorted = [...values].sort((a, b) => a - b)
  return Number(sorted[Math.floor(sorted.length / 2)]!.toFixed(digits))
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/**
 * p50 of `roundTrip` (which resolves with its own duration in ms), 30 times back to back and 30
 * times after 100 ms idle each, after `warmUp` untimed ones; rounded to `digits`.
 */
export const busyAndIdle = async (roundTrip: () => Promise<number>, warmUp = 0, digits = 3): Promise<WakeUp> => {
  for (let index = 0; index < warmUp; index++) await roundTrip()
  const busy: Array<number> = []
  for (let index = 0; index < samples; index++) busy.push(await roundTrip())
  const idle: Array<number> = []
  for (let index = 0; index < samples; index++) {
    await sleep(idleGapMs)
    idle.push(await roundTrip())
  }
  return { busyMs: p50(busy, digits), idleMs: p50(idle, digits) }
}

export const measure = async (): Promise<WakeUp> => {
  const server = net.createServer((socket) => {
    socket.setNoDelay(true)
    socket.on("data", (data) => socket.write(data))
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const { port } = server.address() as net.AddressInfo
  const client = net.connect(port, "127.0.0.1")
  client.setNoDelay(true)
  await new Promise<void>((resolve, reject) => client.once("connect", resolve).once("error", reject))
  let answered: (() => void) | undefined
  client.on("data", () => answered?.())
  const payload = Buffer.alloc(100)
  const roundTrip = async (): Promise<number> => {
    const startedMs = performance.now()
    await new Promise<void>((resolve) => {
      answered = resolve
      client.write(payload)
    })
    return performance.now() - startedMs
  }
  try {
    return await busyAndIdle(roundTrip)
  } finally {
    client.destroy()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }
}
