/**
 * `inferadb-repl write|delete|read|check|watch`: the public Relationships API of one node from
 * the command line, through `ApiClient` (the same calls a service makes), with the credentials
 * `serve` asks for: `--token`/`--token-file` for token mode, `--ca-file`, `--cert-file`,
 * `--key-file` for mtls (a token may be added). Relationships are written as
 * `type:id#relation@type:id` (the subject may carry `#relation`), inside the vault `--vault`.
 *
 *   inferadb-repl write  --address 127.0.0.1:50051 --token t --vault acme document:readme#viewer@user:alice ...
 *   inferadb-repl delete --address ... --vault acme document:readme#viewer@user:alice ...
 *   inferadb-repl read   --address ... --vault acme document:readme [--relation viewer]
 *   inferadb-repl check  --address ... --vault acme document:readme#viewer@user:alice
 *   inferadb-repl watch  --address ... [--from <log position>]
 *
 * `--json` prints one JSON document (one per line for watch). Exit codes: 0 done (for check:
 * allowed), 1 the node refused or failed (for check: not allowed), 64 a usage error (a
 * malformed relationship or address).
 */
import type * as grpc from "@grpc/grpc-js"
import { Command, InvalidArgumentError, Option as CommandOption } from "commander"
import { Effect, Either } from "effect"
import * as fs from "node:fs"
import type * as Store from "../replication/Store.js"
import type * as Tuple from "../replication/Tuple.js"
import * as ApiClient from "../runtime/ApiClient.js"
import * as Auth from "../runtime/Auth.js"

/** The commands this file builds, by name. */
export const names = ["write", "delete", "read", "check", "watch"] as const
export type Name = (typeof names)[number]

interface Connection {
  readonly address: string
  readonly token?: string
  readonly tokenFile?: string
  readonly caFile?: string
  readonly certFile?: string
  readonly keyFile?: string
  readonly json?: boolean
}

const relationshipPattern = /^([^\s#@]+:[^\s#@]+)#([^\s#@]+)@([^\s@]+:[^\s@]+)$/

/** Parses `type:id#relation@type:id[#relation]`. */
export const parseRelationship = (value: string): ApiClient.Relationship => {
  const match = relationshipPattern.exec(value)
  if (match === null) throw new InvalidArgumentError(`'${value}' is not a relationship: expected type:id#relation@type:id, e.g. document:readme#viewer@user:alice`)
  return { resource: match[1]!, relation: match[2]!, subject: match[3]! }
}

const parseResource = (value: string): string => {
  if (!/^[^\s#@]+:[^\s#@]+$/.test(value)) throw new InvalidArgumentError(`'${value}' is not a resource: expected type:id, e.g. document:readme`)
  return value
}

const parseAddress = (value: string): string => {
  if (!/^[^\s:]+:\d+$/.test(value) && !/^\[[^\]]+\]:\d+$/.test(value)) throw new InvalidArgumentError("expected host:port")
  return value
}

const parsePosition = (value: string): number => {
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value))) throw new InvalidArgumentError("a log position is a non-negative integer")
  return Number(value)
}

/** Channel credentials and the token from the connection options; mtls when the three files are given. */
export const clientOptions = (options: Connection): ApiClient.Options => {
  const token = options.token ?? (options.tokenFile === undefined ? undefined : fs.readFileSync(options.tokenFile, "utf8").trim())
  const files = [options.caFile, options.certFile, options.keyFile]
  if (files.every((file) => file === undefined)) return token === undefined ? {} : { token }
  if (files.some((file) => file === undefined)) throw new Error("mtls needs all of --ca-file, --cert-file and --key-file")
  const loaded = Effect.runSync(
    Effect.either(Auth.load({ mode: "mtls", caFile: options.caFile!, certFile: options.certFile!, keyFile: options.keyFile!, ...(token === undefined ? {} : { token }) }))
  )
  if (Either.isLeft(loaded)) throw new Error(loaded.left.message)
  return { credentials: loaded.right.channel, ...(token === undefined ? {} : { token }) }
}

const print = (line: string) => void process.stdout.write(`${line}\n`)

const formatRelationship = (relationship: ApiClient.Relationship): string => `${relationship.resource}#${relationship.relation}@${relationship.subject}`

/** Runs `body` against a client of `--address`; a failure prints the node's answer and sets exit code 1. */
const withClient = async (options: Connection, body: (client: ApiClient.ApiClient) => Promise<void>): Promise<void> => {
  let client: ApiClient.ApiClient | undefined
  try {
    client = ApiClient.make(options.address, clientOptions(options))
    await body(client)
  } catch (error) {
    const details = (error as grpc.ServiceError).details ?? (error instanceof Error ? error.message : String(error))
    process.stderr.write(`failed: ${details}\n`)
    process.exitCode = 1
  } finally {
    client?.close()
  }
}

const connectionOptions = (command: Command): Command =>
  command
    .requiredOption("--address <host:port>", "gRPC address of the node (its public API port)", parseAddress)
    .option("--token <token>", "bearer token (security mode token, or mtls with a token)")
    .option("--token-file <file>", "file holding the bearer token")
    .option("--ca-file <file>", "mtls: CA certificate (PEM)")
    .option("--cert-file <file>", "mtls: client certificate (PEM)")
    .option("--key-file <file>", "mtls: client private key (PEM)")
    .option("--json", "print JSON")

const collect = (value: string, previous: ReadonlyArray<ApiClient.Relationship> = []): ReadonlyArray<ApiClient.Relationship> => [...previous, parseRelationship(value)]

const writeCommand = (name: "write" | "delete"): Command =>
  connectionOptions(new Command(name))
    .requiredOption("--vault <vault>", "tenant (vault) the relationships belong to")
    .argument("<relationship...>", "type:id#relation@type:id", (value: string, previous?: ReadonlyArray<ApiClient.Relationship>) => collect(value, previous))
    .action((relationships: ReadonlyArray<ApiClient.Relationship>, options: Connection & { readonly vault: string }) =>
      withClient(options, async (client) => {
        const written = name === "write" ? await client.insert(options.vault, relationships) : await client.delete(options.vault, relationships)
        const verb = name === "write" ? "wrote" : "deleted"
        print(
          options.json === true
            ? JSON.stringify({ [verb]: relationships.length, revision: written.revision, position: written.position })
            : `${verb} ${relationships.length} relationship(s) in ${options.vault} (revision ${written.revision}, log position ${written.position})`
        )
      })
    )

const readCommand = (): Command =>
  connectionOptions(new Command("read"))
    .requiredOption("--vault <vault>", "tenant (vault)")
    .option("--relation <relation>", "only this relation")
    .argument("<resource>", "type:id", parseResource)
    .action((resource: string, options: Connection & { readonly vault: string; readonly relation?: string }) =>
      withClient(options, async (client) => {
        const tuples: ReadonlyArray<Tuple.Tuple> = await client.read(options.vault, resource, options.relation)
        if (options.json === true) return print(JSON.stringify({ vault: options.vault, relationships: tuples.map(formatRelationship) }))
        for (const tuple of tuples) print(formatRelationship(tuple))
      })
    )

const checkCommand = (): Command =>
  connectionOptions(new Command("check"))
    .requiredOption("--vault <vault>", "tenant (vault)")
    .argument("<relationship>", "type:id#relation@type:id", parseRelationship)
    .action((relationship: ApiClient.Relationship, options: Connection & { readonly vault: string }) =>
      withClient(options, async (client) => {
        const allowed = await client.check({ vault: options.vault, ...relationship })
        print(options.json === true ? JSON.stringify({ relationship: formatRelationship(relationship), allowed }) : allowed ? "allowed" : "not allowed")
        if (!allowed) process.exitCode = 1
      })
    )

const entryJson = (entry: Store.LogEntry) => ({
  position: entry.position,
  op: entry.change.op,
  vault: entry.change.tuple.vault,
  relationship: formatRelationship(entry.change.tuple),
  origin: entry.change.id.origin,
  received_from: entry.receivedFrom
})

const watchCommand = (): Command =>
  connectionOptions(new Command("watch"))
    .addOption(new CommandOption("--from <position>", "first log position to stream (0: only changes from now on)").argParser(parsePosition).default(0))
    .action((options: Connection & { readonly from: number }) =>
      withClient(options, async (client) => {
        const watching = client.watch(options.from, (entry) => {
          const line = entryJson(entry)
          print(options.json === true ? JSON.stringify(line) : `${line.position} ${line.op} ${line.vault}/${line.relationship} (origin ${line.origin})`)
        })
        const stop = () => watching.cancel()
        process.once("SIGINT", stop)
        process.once("SIGTERM", stop)
        await watching.done
      })
    )

/** The command called `name`. */
export const command = (name: Name): Command => {
  switch (name) {
    case "write":
    case "delete":
      return writeCommand(name)
    case "read":
      return readCommand()
    case "check":
      return checkCommand()
    case "watch":
      return watchCommand()
  }
}
