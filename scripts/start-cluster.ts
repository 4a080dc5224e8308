/**
 * `npm start`: a local two-region cluster of real `inferadb-repl serve` processes on loopback,
 * and a short demonstration of replication through the public gRPC API.
 *
 *   npm start                     # runs until Ctrl-C
 *   npm start -- --once           # exits 0 after the demonstration (also INFERADB_START_ONCE=1)
 *   npm start -- --data-dir <dir> # where the regions keep their lmdb stores (default .data/start)
 *
 * It starts us-west-1 and eu-central-1 from `examples/active-active-*.yaml` (gRPC on the
 * examples' ports 50051/50052, token authentication with the examples' development token),
 * with fresh lmdb stores, waits for both to be ready, writes and deletes relationships in one
 * region and shows them arriving in the other, both ways, then prints where each region's
 * health and metrics are. Ctrl-C (or SIGTERM) stops every child: SIGTERM, then SIGKILL after
 * `childStopMs`. Every wait is bounded.
 *
 * The regions run bin/inferadb-repl.mjs, which uses the bundle in dist/; `npm start` first
 * rebuilds it when the sources changed (the `prestart` script).
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as path from "node:path"
import { Either } from "effect"
import * as Config from "../src/runtime/config/Config.js"
import * as ApiClient from "../src/runtime/ApiClient.js"
import * as ServeFlags from "../src/runtime/ServeFlags.js"

/** How long a region may take to answer /readyz. */
const readyTimeoutMs = 60_000
/** How long a change may take to show up in the other region. */
const arrivalTimeoutMs = 10_000
/** How long a child may take to drain and exit after SIGTERM before it is killed. */
const childStopMs = 10_000
/** Poll interval of every wait. */
const pollMs = 25

const root = path.resolve(import.meta.dirname, "..")
const vault = "acme"

// ---------------------------------------------------------------------------------------------
// Output
// ---------------------------------------------------------------------------------------------

const useColor = process.env["NO_COLOR"] === undefined && (process.stdout.isTTY === true || process.env["FORCE_COLOR"] !== undefined)
const paint = (code: number) => (text: string) => (useColor ? `\u001b[${code}m${text}\u001b[0m` : text)
const bold = paint(1)
const dim = paint(2)
const green = paint(32)
const red = paint(31)

const say = (line = ""): void => void process.stdout.write(`${line}\n`)
const step = (text: string): void => say(`\n${bold("▶")} ${bold(text)}`)

// ---------------------------------------------------------------------------------------------
// Regions
// ---------------------------------------------------------------------------------------------

interface Region {
  readonly id: string
  readonly configFile: string
  readonly color: (text: string) => string
  readonly grpcAddress: string
  readonly token: string | undefined
  readonly httpPort: number
  readonly dataDir: string
  child: ChildProcess | undefined
  exited: Promise<number | null> | undefined
}

const isPortFree = (host: string, port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const server = net.createServer()
    server.once("error", () => resolve(false))
    server.listen(port, host, () => server.close(() => resolve(true)))
  })

/**
 * Whether `port` is free or becomes free within `waitMs`, looked at every 200 ms. A port held a
 * moment longer (a cluster stopped just before, or a passing connection that the system gave the
 * same local port: 50052 lies in Linux's ephemeral range, and a fresh-clone CI run once found it
 * taken while an earlier test's processes wound down) is waited for; one held by a running
 * cluster is still reported.
 */
const portFreeWithin = async (host: string, port: number, waitMs: number): Promise<boolean> => {
  const deadline = Date.now() + waitMs
  for (;;) {
    if (await isPortFree(host, port)) return true
    if (Date.now() >= deadline) return false
    await sleep(200)
  }
}

/** How long a gRPC port that is in use is waited for before the start is refused. */
const portWaitMs = 10_000

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      server.close(() => (typeof address === "object" && address !== null ? resolve(address.port) : reject(new Error("no free port"))))
    })
  })

/** Reads a region's example configuration for its gRPC address and token. */
const loadRegion = async (
  id: string,
  color: (text: string) => string,
  preferredHttpPort: number,
  dataRoot: string
): Promise<Region> => {
  const configFile = path.join(root, "examples", `active-active-${id}.yaml`)
  const config = Config.parseBytes(fs.readFileSync(configFile), process.env)
  if (Either.isLeft(config)) throw new Error(`${configFile}: ${config.left.message}`)
  const grpcAddress = Config.grpcListen(config.right)
  if (grpcAddress === undefined) throw new Error(`${configFile}: no gRPC address for ${id}`)
  const [host, port] = [grpcAddress.slice(0, grpcAddress.lastIndexOf(":")), Number(grpcAddress.slice(grpcAddress.lastIndexOf(":") + 1))]
  if (!(await portFreeWithin(host, port, portWaitMs))) {
    throw new Error(`the gRPC port of ${id}, ${grpcAddress}, is in use (is another cluster running? stop it first)`)
  }
  const httpPort = (await isPortFree("127.0.0.1", preferredHttpPort)) ? preferredHttpPort : await freePort()
  return { id, configFile, color, grpcAddress, token: config.right.security.token, httpPort, dataDir: path.join(dataRoot, id), child: undefined, exited: undefined }
}

/** Prefixes every line of a child stream with its coloured region name. */
const pipeLines = (stream: NodeJS.ReadableStream, region: Region, toStderr: boolean): void => {
  let pending = ""
  stream.on("data", (chunk: Buffer) => {
    pending += chunk.toString("utf8")
    const lines = pending.split("\n")
    pending = lines.pop() ?? ""
    for (const line of lines) (toStderr ? process.stderr : process.stdout).write(`${region.color(`[${region.id}]`.padEnd(15))} ${dim(line)}\n`)
  })
}

const startRegion = (region: Region): void => {
  const args = [...ServeFlags.serveNodeFlags, path.join(root, "bin/inferadb-repl.mjs"), "serve", "--config", region.configFile, "--http-port", String(region.httpPort), "--data-dir", region.dataDir]
  // Its own process group: a Ctrl-C reaches only this script, which then stops the child
  // with one SIGTERM (a second signal would make serve skip its drain).
  const child = spawn(process.execPath, args, { cwd: root, detached: true, stdio: ["ignore", "pipe", "pipe"] })
  region.child = child
  region.exited = new Promise((resolve) => child.once("exit", (code) => resolve(code)))
  pipeLines(child.stdout!, region, false)
  pipeLines(child.stderr!, region, true)
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Polls `check` until it holds; returns the elapsed milliseconds, or undefined after `timeoutMs`. */
const waitFor = async (check: () => Promise<boolean>, timeoutMs: number): Promise<number | undefined> => {
  const started = Date.now()
  while (Date.now() - started < timeoutMs) {
    try {
      if (await check()) return Date.now() - started
    } catch {
      // Not yet.
    }
    await sleep(pollMs)
  }
  return undefined
}

const httpGet = async (port: number, route: string): Promise<{ readonly status: number; readonly body: string }> => {
  const response = await fetch(`http://127.0.0.1:${port}${route}`, { signal: AbortSignal.timeout(2_000) })
  return { status: response.status, body: await response.text() }
}

const awaitReady = async (region: Region): Promise<void> => {
  let exitCode: number | null | "running" = "running"
  void region.exited?.then((code) => (exitCode = code))
  const waited = await waitFor(async () => exitCode !== "running" || (await httpGet(region.httpPort, "/readyz")).status === 200, readyTimeoutMs)
  if (exitCode !== "running") throw new Error(`${region.id} exited with code ${exitCode} before it was ready`)
  if (waited === undefined) throw new Error(`${region.id} was not ready within ${readyTimeoutMs} ms`)
}

/** SIGTERM every child, SIGKILL whoever is still there after `childStopMs`; true when all exited 0. */
const stopAll = async (regions: ReadonlyArray<Region>): Promise<boolean> => {
  const codes = await Promise.all(
    regions.map(async (region) => {
      const child = region.child
      if (child === undefined || region.exited === undefined) return 0
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode
      child.kill("SIGTERM")
      const timer = setTimeout(() => child.kill("SIGKILL"), childStopMs)
      const code = await region.exited
      clearTimeout(timer)
      return code
    })
  )
  return codes.every((code) => code === 0)
}

// ---------------------------------------------------------------------------------------------
// The demonstration
// ---------------------------------------------------------------------------------------------

type Relationship = ApiClient.Relationship

const format = (relationship: Relationship): string => `${relationship.resource}#${relationship.relation}@${relationship.subject}`

const has = async (client: ApiClient.ApiClient, relationship: Relationship): Promise<boolean> =>
  (await client.read(vault, relationship.resource, relationship.relation)).some((tuple) => tuple.subject === relationship.subject)

const expectArrival = async (client: ApiClient.ApiClient, region: Region, relationship: Relationship, present: boolean): Promise<void> => {
  const elapsed = await waitFor(async () => (await has(client, relationship)) === present, arrivalTimeoutMs)
  if (elapsed === undefined) throw new Error(`${format(relationship)} did not ${present ? "arrive in" : "disappear from"} ${region.id} within ${arrivalTimeoutMs} ms`)
  say(`  ${green("✓")} ${region.color(region.id)} ${present ? "has" : "no longer has"} ${format(relationship)} ${dim(`(after ${elapsed} ms)`)}`)
}

const demonstrate = async (west: Region, europe: Region): Promise<void> => {
  const westClient = ApiClient.make(west.grpcAddress, west.token === undefined ? {} : { token: west.token })
  const europeClient = ApiClient.make(europe.grpcAddress, europe.token === undefined ? {} : { token: europe.token })
  try {
    const alice = { resource: "document:readme", relation: "viewer", subject: "user:alice" }
    const bob = { resource: "document:readme", relation: "editor", subject: "user:bob" }
    const carol = { resource: "folder:plans", relation: "viewer", subject: "user:carol" }
    step(`Writing to ${west.id} (${west.grpcAddress}) through the public gRPC API, vault '${vault}'`)
    for (const relationship of [alice, bob, carol]) {
      const written = await westClient.insert(vault, [relationship])
      say(`  + ${format(relationship)} ${dim(`(revision ${written.revision}, log position ${written.position})`)}`)
    }
    const deleted = await westClient.delete(vault, [bob])
    say(`  - ${format(bob)} ${dim(`(deleted, log position ${deleted.position})`)}`)

    step(`Reading them in ${europe.id} (${europe.grpcAddress})`)
    for (const relationship of [alice, carol]) await expectArrival(europeClient, europe, relationship, true)
    await expectArrival(europeClient, europe, bob, false)

    const dana = { resource: "document:roadmap", relation: "owner", subject: "user:dana" }
    step(`Writing to ${europe.id} and reading it back in ${west.id}`)
    const written = await europeClient.insert(vault, [dana])
    say(`  + ${format(dana)} ${dim(`(revision ${written.revision}, log position ${written.position})`)}`)
    await expectArrival(westClient, west, dana, true)
  } finally {
    westClient.close()
    europeClient.close()
  }
}

const showEndpoints = async (regions: ReadonlyArray<Region>): Promise<void> => {
  step("The cluster")
  for (const region of regions) {
    say(
      `  ${region.color(region.id.padEnd(13))} gRPC ${region.grpcAddress}   health http://127.0.0.1:${region.httpPort}/healthz   metrics http://127.0.0.1:${region.httpPort}/metrics`
    )
  }
  say(`  ${dim(`data: ${path.dirname(regions[0]!.dataDir)}`)}`)
  const first = regions[0]!
  step(`GET http://127.0.0.1:${first.httpPort}/healthz`)
  const health = await httpGet(first.httpPort, "/healthz")
  for (const line of JSON.stringify(JSON.parse(health.body), null, 2).split("\n")) say(`  ${line}`)
  const second = regions[1]!
  step(`A few lines of http://127.0.0.1:${second.httpPort}/metrics`)
  const metrics = (await httpGet(second.httpPort, "/metrics")).body
  const interesting = metrics
    .split("\n")
    .filter((line) => /^inferadb_engine_replication_(changes_total|targets_connected|targets_total|lag_milliseconds|conflicts_total) /.test(line) || /^inferadb_engine_replication_(changes_total|lag_milliseconds)\{/.test(line))
  for (const line of interesting) say(`  ${line}`)
}

// ---------------------------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------------------------

const argValue = (name: string): string | undefined => {
  const index = process.argv.indexOf(name)
  return index === -1 ? undefined : process.argv[index + 1]
}

const main = async (): Promise<number> => {
  const once = process.argv.includes("--once") || process.env["INFERADB_START_ONCE"] === "1"
  const dataRoot = path.resolve(root, argValue("--data-dir") ?? ".data/start")
  fs.rmSync(dataRoot, { recursive: true, force: true })
  fs.mkdirSync(dataRoot, { recursive: true })
  const regions = [
    await loadRegion("us-west-1", paint(36), 8081, dataRoot),
    await loadRegion("eu-central-1", paint(35), 8082, dataRoot)
  ]
  // One stop for everyone: a signal, a failure, --once or a region that quit on its own.
  let stopping: Promise<boolean> | undefined
  const stop = (why: string): Promise<boolean> =>
    (stopping ??= (async () => {
      step(`${why}: stopping every region (SIGTERM; SIGKILL after ${childStopMs} ms)`)
      const clean = await stopAll(regions)
      say(clean ? `  ${green("✓")} every region drained and exited` : `  ${red("✗")} a region did not exit cleanly`)
      return clean
    })())
  // `on`, not `once`: tsx relays the terminal's Ctrl-C a second time, and a signal without a
  // listener would end this script before the regions finished draining. Repeats are ignored;
  // the stop is bounded by SIGKILL after childStopMs anyway.
  for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => void stop(signal).then((clean) => process.exit(clean ? 0 : 1)))
  // Whatever happens to this script, no child outlives it.
  process.once("exit", () => {
    for (const region of regions) if (region.child?.exitCode === null && region.child.signalCode === null) region.child.kill("SIGKILL")
  })

  step(`Starting ${regions.map((region) => region.color(region.id)).join(" and ")} from examples/active-active-*.yaml`)
  for (const region of regions) startRegion(region)
  try {
    await Promise.all(regions.map(awaitReady))
    say(`  ${green("✓")} both regions answer /readyz`)
    await demonstrate(regions[0]!, regions[1]!)
    await showEndpoints(regions)
  } catch (error) {
    if (stopping !== undefined) return (await stopping) ? 0 : 1
    say(`\n${red("✗")} ${error instanceof Error ? error.message : String(error)}`)
    await stop("failure")
    return 1
  }
  if (once) return (await stop("--once")) ? 0 : 1
  step("The cluster is running. Press Ctrl-C to stop it.")
  // Runs until a signal stops it (its handler exits), or a region stops on its own.
  const gone = await Promise.race(regions.map((region) => region.exited!.then((code) => ({ region, code }))))
  if (stopping !== undefined) return (await stopping) ? 0 : 1
  say(`\n${red("✗")} ${gone.region.id} exited on its own with code ${gone.code}`)
  await stop("a region stopped")
  return 1
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`)
    process.exit(1)
  }
)
