/**
 * HTTP/2 flow-control windows of our gRPC servers and clients.
 *
 * HTTP/2 lets a sender have at most a window of unacknowledged bytes on a stream and on the
 * connection; the receiver opens it again (WINDOW_UPDATE) as it reads. Node reads, and so
 * acknowledges, only when its event loop gets to the socket, and a node applying a batch keeps it
 * busy for milliseconds at a time. With HTTP/2's default windows of 64 KiB, a catch-up batch of
 * 1,000 changes (about 250 KB) crossed loopback in several window-sized pieces, each waiting for
 * the receiver to finish what it was doing: a drain of a 200,000-change backlog spent 31 ms
 * (p50) between the origin sending a batch and the target having it, while the target sat idle
 * with its queue empty. With these windows a batch is in the receiver's socket buffer as soon as
 * it is sent: that wait fell to 18 ms, most of it the batches queued ahead at a target now busy
 * 80-93% of the drain instead of about 70%.
 *
 * The windows bound what a peer may send that this process has not read yet; the connection
 * window equals the largest message we accept (`GrpcServer.messageBytesMaxDefault`), which a
 * receiver buffers whole before decoding anyway.
 *
 * grpc-js (pinned in package.json) offers a window option for clients only
 * (`grpc-node.flow_control_window`). A server's windows are set on the grpc-js server's own
 * HTTP/2 options before it binds and on each HTTP/2 session as it opens; `test/runtime/
 * FlowControl.test.ts` checks what a connecting client sees, so an upgrade that moves these
 * internals fails there rather than silently going back to 64 KiB.
 */
import type * as grpc from "@grpc/grpc-js"
import type * as http2 from "node:http2"

/** Bytes a peer may send on one stream before this side reads them. */
export const streamWindowBytes = 4 * 1024 * 1024

/** Bytes a peer may send on one connection, over all its streams, before this side reads them. */
export const connectionWindowBytes = 16 * 1024 * 1024

/** The grpc-js client option that sets both windows of a client's connections (for responses). */
export const clientOptions: grpc.ChannelOptions = { "grpc-node.flow_control_window": connectionWindowBytes }

/** The grpc-js server internals these windows are set through. */
interface ServerInternals {
  readonly commonServerOptions?: http2.ServerOptions
  readonly http2Servers?: ReadonlyMap<http2.Http2Server | http2.Http2SecureServer, unknown>
}

/** Sets the stream window a server advertises to every connecting client. Call before binding. */
export const widenServerStreams = (server: grpc.Server): void => {
  const options = (server as unknown as ServerInternals).commonServerOptions
  if (options === undefined) throw new Error("grpc-js changed: the server has no HTTP/2 options to set flow-control windows on")
  ;(options as { settings?: http2.Settings }).settings = { ...options.settings, initialWindowSize: streamWindowBytes }
}

/** Opens each new connection's window of a bound server. Call after binding. */
export const widenServerConnections = (server: grpc.Server): void => {
  const servers = (server as unknown as ServerInternals).http2Servers
  if (servers === undefined) throw new Error("grpc-js changed: the server has no HTTP/2 servers to set flow-control windows on")
  for (const http2Server of servers.keys()) {
    http2Server.on("session", (session: http2.ServerHttp2Session) => {
      try {
        session.setLocalWindowSize(connectionWindowBytes)
      } catch {
        // The session closed before it was set up: its window no longer matters, and a throw
        // here would be an uncaught exception in an event listener.
      }
    })
  }
}
