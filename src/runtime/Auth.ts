/**
 * Authentication of gRPC calls between regions (and of callers of the public API served on
 * the same port): mutual TLS with a configured CA, a shared bearer token, or both.
 *
 * - `insecure`: plaintext, no credentials. Tests and a single-machine setup only.
 * - `token`: plaintext transport, every call carries `authorization: Bearer <token>`. Meant for
 *   local development: the token crosses the network in clear text.
 * - `mtls`: TLS both ways. The server requires a client certificate signed by the CA
 *   (`checkClientCertificate`), so a peer without one never completes the handshake; the
 *   client verifies the server against the same CA. An optional token is checked on top.
 *
 * This module turns options into grpc-js credentials (reading the PEM files once) and decides
 * whether one incoming call is authenticated. Tokens are compared in constant time over their
 * SHA-256 digests, so neither the content nor the length of the expected token leaks through
 * timing. The transport (`GrpcServer`) rejects with UNAUTHENTICATED and counts the refusal.
 */
import * as grpc from "@grpc/grpc-js"
import { Data, Effect } from "effect"
import { createHash, timingSafeEqual } from "node:crypto"
import * as fs from "node:fs"

/** How calls are authenticated; see the module comment. */
export type Options =
  | { readonly mode: "insecure" }
  | { readonly mode: "token"; readonly token: string }
  | {
      readonly mode: "mtls"
      /** PEM file of the CA that signs every region's certificates. */
      readonly caFile: string
      /** PEM file of this node's certificate (used as server and as client certificate). */
      readonly certFile: string
      /** PEM file of this node's private key. */
      readonly keyFile: string
      /** When set, calls must also carry this bearer token. */
      readonly token?: string
      /** Name to verify server certificates against instead of the endpoint's host. */
      readonly serverNameOverride?: string
    }

/** The security configuration is unusable (missing file, empty token). */
export class AuthConfigError extends Data.TaggedError("AuthConfigError")<{ readonly message: string }> {}

/** What the transport needs to know of an incoming call to authenticate it. */
export interface IncomingCall {
  readonly metadata: grpc.Metadata
  readonly getAuthContext: () => { readonly transportSecurityType?: string; readonly sslPeerCertificate?: unknown }
}

/** Loaded credentials for both sides of a connection. */
export interface Credentials {
  readonly mode: Options["mode"]
  readonly server: grpc.ServerCredentials
  readonly channel: grpc.ChannelCredentials
  /** Channel options the credentials need (e.g. a TLS target name override). */
  readonly channelOptions: grpc.ChannelOptions
  /** Metadata to attach to every outgoing call. */
  readonly callMetadata: () => grpc.Metadata
  /** Why an incoming call is not authenticated, or undefined when it is. */
  readonly authenticate: (call: IncomingCall) => string | undefined
}

/** The metadata key that carries a bearer token. */
export const authorizationKey = "authorization"

const digest = (text: string): Buffer => createHash("sha256").update(text, "utf8").digest()

/** Whether two secrets are equal, in time independent of where (and whether) they differ. */
export const secretsEqual = (given: string, expected: string): boolean => timingSafeEqual(digest(given), digest(expected))

/** Why the call's bearer token is not `expected`, or undefined when it matches. */
export const checkBearer = (metadata: grpc.Metadata, expected: string): string | undefined => {
  const values = metadata.get(authorizationKey)
  if (values.length === 0) return "missing bearer token"
  if (values.length > 1) return "more than one authorization header"
  const value = values[0]
  if (typeof value !== "string" || !value.startsWith("Bearer ")) return "authorization is not a bearer token"
  return secretsEqual(value.slice("Bearer ".length), expected) ? undefined : "wrong bearer token"
}

/** Why the call did not come over mutually authenticated TLS, or undefined when it did. */
export const checkPeerCertificate = (call: IncomingCall): string | undefined => {
  const context = call.getAuthContext()
  return context.transportSecurityType === "ssl" && context.sslPeerCertificate !== undefined ? undefined : "no verified client certificate"
}

const bearerMetadata = (token: string | undefined) => (): grpc.Metadata => {
  const metadata = new grpc.Metadata()
  if (token !== undefined) metadata.set(authorizationKey, `Bearer ${token}`)
  return metadata
}

const readPem = (file: string, what: string): Effect.Effect<Buffer, AuthConfigError> =>
  Effect.try({
    try: () => fs.readFileSync(file),
    catch: (error) => new AuthConfigError({ message: `cannot read the ${what} file '${file}': ${error instanceof Error ? error.message : String(error)}` })
  })

const checkToken = (token: string | undefined): Effect.Effect<void, AuthConfigError> =>
  token !== undefined && token.trim() === ""
    ? Effect.fail(new AuthConfigError({ message: "the bearer token is empty" }))
    : Effect.void

/** Loads credentials for the given options, reading the PEM files once. */
export const load = (options: Options): Effect.Effect<Credentials, AuthConfigError> => {
  switch (options.mode) {
    case "insecure":
      return Effect.succeed({
        mode: "insecure",
        server: grpc.ServerCredentials.createInsecure(),
        channel: grpc.credentials.createInsecure(),
        channelOptions: {},
        callMetadata: bearerMetadata(undefined),
        authenticate: () => undefined
      })
    case "token":
      return Effect.as(checkToken(options.token), {
        mode: "token",
        server: grpc.ServerCredentials.createInsecure(),
        channel: grpc.credentials.createInsecure(),
        channelOptions: {},
        callMetadata: bearerMetadata(options.token),
        authenticate: (call: IncomingCall) => checkBearer(call.metadata, options.token)
      })
    case "mtls":
      return loadMutualTls(options)
  }
}

const loadMutualTls = (options: Extract<Options, { readonly mode: "mtls" }>): Effect.Effect<Credentials, AuthConfigError> =>
  Effect.gen(function* () {
    yield* checkToken(options.token)
    const ca = yield* readPem(options.caFile, "CA certificate")
    const cert = yield* readPem(options.certFile, "certificate")
    const key = yield* readPem(options.keyFile, "private key")
    const token = options.token
    return {
      mode: "mtls",
      server: grpc.ServerCredentials.createSsl(ca, [{ private_key: key, cert_chain: cert }], true),
      channel: grpc.credentials.createSsl(ca, key, cert),
      channelOptions: options.serverNameOverride === undefined ? {} : { "grpc.ssl_target_name_override": options.serverNameOverride },
      callMetadata: bearerMetadata(token),
      authenticate: (call: IncomingCall) => checkPeerCertificate(call) ?? (token === undefined ? undefined : checkBearer(call.metadata, token))
    } satisfies Credentials
  })
