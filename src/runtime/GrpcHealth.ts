/**
 * The standard gRPC services a node answers besides its own: health checking
 * (`grpc.health.v1.Health`, Check and Watch, from grpc-node's `grpc-health-check`) and server
 * reflection (`grpc.reflection.v1` and `v1alpha`, from `@grpc/reflection`), so that kubelet's
 * gRPC probes, grpc_health_probe, grpcurl and load balancers work without our proto files.
 *
 * Health follows `/readyz`: SERVING exactly when the node would answer it 200 (it serves the
 * public API and its store answers), NOT_SERVING otherwise, for the whole server (service "")
 * and for each of our services by full name. Neither service asks for credentials: a probe
 * carries none, and both only describe the node (what it serves, whether it is ready).
 */
import type * as grpc from "@grpc/grpc-js"
import * as protoLoader from "@grpc/proto-loader"
import { ReflectionService } from "@grpc/reflection"
import { HealthImplementation, type ServingStatus } from "grpc-health-check"
import { Duration, Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

/** Our services by full name: each also answers health checks under its own name. */
export const serviceNames: ReadonlyArray<string> = [
  "inferadb.replication.v1.Replication",
  "inferadb.replication.v1.Relationships",
  "inferadb.replication.v1.Operator"
]

/** How often the health status is brought in line with readiness. */
export const followIntervalMs = 500

/** The proto files reflection describes, relative to the proto root. */
const protoFiles = ["inferadb/replication/v1/service.proto", "inferadb/replication/v1/messages.proto"]

/**
 * The repository's `proto/` directory: two levels above this file in the sources
 * (`src/runtime/`), one above the bundle in `dist/`.
 */
export const protoRoot = (): string | undefined => {
  const here = path.dirname(fileURLToPath(import.meta.url))
  return ["../../proto", "../proto"].map((relative) => path.resolve(here, relative)).find((candidate) => fs.existsSync(path.join(candidate, protoFiles[0]!)))
}

/** The health status of a server; starts NOT_SERVING. */
export interface Health {
  /** Sets every service's status (service "" included); watchers hear only changes. */
  readonly set: (serving: boolean) => void
}

/** Adds health checking (NOT_SERVING until told otherwise) and, when the proto files are found, reflection to `server`. */
export const addTo = (server: grpc.Server): Health => {
  const names = ["", ...serviceNames]
  const status = (serving: boolean): ServingStatus => (serving ? "SERVING" : "NOT_SERVING")
  const implementation = new HealthImplementation(Object.fromEntries(names.map((name) => [name, status(false)])))
  implementation.addToServer(server)
  const root = protoRoot()
  if (root !== undefined) new ReflectionService(protoLoader.loadSync(protoFiles, { includeDirs: [root] })).addToServer(server)
  let current = false
  return {
    set: (serving) => {
      if (serving === current) return
      current = serving
      for (const name of names) implementation.setStatus(name, status(serving))
    }
  }
}

/** Keeps `health` in line with `ready` until interrupted, looking every `followIntervalMs`. */
export const follow = (health: Health, ready: Effect.Effect<boolean>): Effect.Effect<never> =>
  Effect.forever(
    Effect.zipRight(
      Effect.flatMap(ready, (serving) => Effect.sync(() => health.set(serving))),
      Effect.sleep(Duration.millis(followIntervalMs))
    )
  )
