/**
 * The floor one network hop between two processes puts under the replication lag on this
 * machine: a 100-byte echo between this process and a child, over a raw TCP socket, over a Node
 * HTTP/2 stream and over a grpc-js unary call (the stack a replication batch and a client write
 * travel on), each sent right after the previous answer (`busyMs`) and after 100 ms of idleness
 * (`idleMs`), p50 of 30 each.
 *
 * Why the bench reports it. At 1,000 changes/s a batch leaves an idle origin for an idle target,
 * and its hop costs what the idle echo costs. Measured here in December 2026: raw TCP about
 * 0.4 ms idle, HTTP/2 about 1.9 ms, grpc-js about 3 ms (1 ms busy), so most of a lag phase's
 * few milliseconds at low rates is the HTTP/2 and gRPC layers waking up, not our code or the
 * disk; a lag target below the grpc-js figure plus two commits is out of reach on this stack.
 */
import { spawn } from "node:child_process"
import * as http2 from "node:http2"
import * as net from "node:net"
import * as grpc from "@grpc/grpc-js"
import * as WakeUp from "./wakeUp.js"

/** p50 round trips in ms, busy and after 100 ms idle. */
export type Echo = WakeUp.WakeUp

export interface EchoFloor {
  readonly tcp: Echo
  readonly http2: Echo
  readonly grpc: Echo
}

const payload = Buffer.alloc(100)

/** The child: one echo server of each kind on loopback; prints their ports as JSON. */
const serverScript = `
import * as net from "node:net"
import * as http2 from "node:http2"
import * as grpc from "@grpc/grpc-js"
const tcp = net.createServer((socket) => { socket.setNoDelay(true); socket.on("data", (data) => socket.write(data)) })
await new Promise((resolve) => tcp.listen(0, "127.0.0.1", resolve))
const h2 = http2.createServer()
h2.on("stream", (stream) => { const chunks = []; stream.on("data", (chunk) => chunks.push(chunk)); stream.on("end", () => { stream.respond({ ":status": 200 }); stream.end(Buffer.concat(chunks)) }) })
await new Promise((resolve) => h2.listen(0, "127.0.0.1", resolve))
const server = new grpc.Server()
const same = (value) => value
server.addService({ echo: { path: "/bench.Echo/Echo", requestStream: false, responseStream: false, requestSerialize: same, requestDeserialize: same, responseSerialize: same, responseDeserialize: same } }, { echo: (call, callback) => callback(null, call.request) })
const grpcPort = await new Promise((resolve, reject) => server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (error, port) => (error ? reject(error) : resolve(port))))
console.log(JSON.stringify({ tcp: tcp.address().port, http2: h2.address().port, grpc: grpcPort }))
`

/** Busy and idle p50 of `roundTrip`, after 50 untimed ones (`WakeUp.busyAndIdle`). */
const measureOne = (roundTrip: () => Promise<void>): Promise<Echo> =>
  WakeUp.busyAndIdle(
    async () => {
      const startedMs = performance.now()
      await roundTrip()
      return performance.now() - startedMs
    },
    50,
    2
  )

const tcpEcho = async (port: number) => {
  const socket = net.connect(port, "127.0.0.1")
  socket.setNoDelay(true)
  await new Promise<void>((resolve, reject) => socket.once("connect", resolve).once("error", reject))
  let answered: (() => void) | undefined
  socket.on("data", () => answered?.())
  try {
    return await measureOne(() => new Promise<void>((resolve) => ((answered = resolve), socket.write(payload))))
  } finally {
    socket.destroy()
  }
}

const http2Echo = async (port: number) => {
  const session = http2.connect(`http://127.0.0.1:${port}`)
  try {
    return await measureOne(
      () =>
        new Promise<void>((resolve, reject) => {
          const request = session.request({ ":method": "POST", ":path": "/echo" })
          request.on("data", () => {})
          request.on("end", resolve)
          request.on("error", reject)
          request.end(payload)
        })
    )
  } finally {
    session.close()
  }
}

const grpcEcho = async (port: number) => {
  const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure())
  const same = (value: Buffer) => value
  try {
    return await measureOne(
      () => new Promise<void>((resolve, reject) => void client.makeUnaryRequest("/bench.Echo/Echo", same, same, payload, (error) => (error ? reject(error) : resolve())))
    )
  } finally {
    client.close()
  }
}

/** Spawns the echo servers, measures each kind in turn, and stops the child. */
export const measure = async (): Promise<EchoFloor> => {
  const child = spawn(process.execPath, ["--input-type=module", "-e", serverScript], { stdio: ["ignore", "pipe", "inherit"] })
  try {
    const ports = await new Promise<{ readonly tcp: number; readonly http2: number; readonly grpc: number }>((resolve, reject) => {
      child.stdout!.once("data", (data: Buffer) => resolve(JSON.parse(String(data))))
      child.once("exit", (code) => reject(new Error(`the echo servers exited with ${code}`)))
    })
    return { tcp: await tcpEcho(ports.tcp), http2: await http2Echo(ports.http2), grpc: await grpcEcho(ports.grpc) }
  } finally {
    child.kill()
  }
}
