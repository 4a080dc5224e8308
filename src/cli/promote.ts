/**
 * `inferadb-repl promote --address <host:port> [--token <t> | --token-file <f>]`: the
 * operator's promotion under PrimaryReplica. It asks the node at `--address` (gRPC, the same
 * port and credentials as the public API) to make its region primary of a new epoch now.
 *
 * A two-region deployment never fails over on its own: nothing tells a lost region from a cut
 * link there, so promoting is the operator's call, made once the old primary is known to be
 * down or cut off from its clients. With three or more regions the node refuses when it sees
 * only a minority of them. Exit codes: 0 promoted (or already primary), 1 refused or failed,
 * 64 usage error.
 */
import * as grpc from "@grpc/grpc-js"
import { Command, InvalidArgumentError } from "commander"
import * as fs from "node:fs"
import type * as Proto from "../proto/inferadb/replication/v1/messages.js"
import { OperatorClient } from "../proto/inferadb/replication/v1/service.js"
import * as Auth from "../runtime/Auth.js"

/** Deadline of the promote call. */
const callTimeoutMs = 10_000

const parseAddress = (value: string): string => {
  if (!/^[^\s:]+:\d+$/.test(value) && !/^\[[^\]]+\]:\d+$/.test(value)) throw new InvalidArgumentError("expected host:port")
  return value
}

interface Options {
  readonly address: string
  readonly token?: string
  readonly tokenFile?: string
  readonly json?: boolean
}

const promote = (options: Options): Promise<Proto.PromoteResponse> =>
  new Promise((resolve, reject) => {
    const client = new OperatorClient(options.address, grpc.credentials.createInsecure())
    const token = options.token ?? (options.tokenFile === undefined ? undefined : fs.readFileSync(options.tokenFile, "utf8").trim())
    const metadata = new grpc.Metadata()
    if (token !== undefined) metadata.set(Auth.authorizationKey, `Bearer ${token}`)
    client.promote({}, metadata, { deadline: new Date(Date.now() + callTimeoutMs) }, (error, response) => {
      client.close()
      if (error === null && response !== undefined) resolve(response)
      else reject(error ?? new Error("empty response"))
    })
  })

/** The `promote` command. */
export const command = (): Command =>
  new Command("promote")
    .requiredOption("--address <host:port>", "gRPC address of a node of the region to promote", parseAddress)
    .option("--token <token>", "bearer token (security mode token)")
    .option("--token-file <file>", "file holding the bearer token")
    .option("--json", "print the result as JSON")
    .action(async (options: Options) => {
      try {
        const done = await promote(options)
        const text = options.json === true
          ? JSON.stringify({ epoch: done.epoch, primary: done.primary, changed: done.changed })
          : done.changed
            ? `${done.primary} is primary of epoch ${done.epoch}`
            : `${done.primary} already was primary of epoch ${done.epoch}; nothing changed`
        process.stdout.write(`${text}\n`)
      } catch (error) {
        const details = (error as grpc.ServiceError).details ?? String(error)
        process.stderr.write(`promote failed: ${details}\n`)
        process.exitCode = 1
      }
    })
