/**
 * The `inferadb-repl` command line: one commander program whose subcommands each live in
 * their own file (`sim.ts` for the simulator, `serve.ts` for an engine node, `promote.ts`,
 * and `api.ts` for write, delete, read, check and watch against a node's public API). This file only
 * wires them together, runs the parser and turns usage errors into exit code 64.
 *
 * A subcommand's module (and everything it imports: effect, gRPC, lmdb, the simulator) is
 * imported only when that subcommand is the one invoked; the others appear in the program as
 * placeholders carrying their name and description, which is all `--help` lists. So `--help`
 * and `--version` load commander and nothing else.
 */
import { Command, type CommanderError } from "commander"
import * as Version from "./Version.js"

/** Exit code of a usage error: an unknown command or option, a missing or malformed argument (sysexits' EX_USAGE). */
export const exitUsage = 64

interface Subcommand {
  readonly description: string
  /** Imports the subcommand's module and builds its command. */
  readonly load: () => Promise<Command>
}

const subcommands: Readonly<Record<string, Subcommand>> = {
  sim: {
    description: "The deterministic simulator: run scenarios, swarm-test, shrink failures, check determinism",
    load: async () => (await import("./sim.js")).command()
  },
  serve: {
    description: "Run one engine node: replication, the public Relationships API over gRPC, and /healthz, /readyz, /metrics over HTTP",
    load: async () => (await import("./serve.js")).command()
  },
  chaos: {
    description: "Scenarios on real serve processes: network namespaces, nftables cuts, kill -9, SIGSTOP, libfaketime clocks, judged by the simulator's checkers",
    load: async () => (await import("./chaos.js")).command()
  },
  promote: {
    description: "PrimaryReplica: make the region of the node at --address primary of a new epoch (two-region deployments never fail over on their own)",
    load: async () => (await import("./promote.js")).command()
  },
  write: {
    description: "Insert relationships through a node's public API (type:id#relation@type:id ...)",
    load: async () => (await import("./api.js")).command("write")
  },
  delete: {
    description: "Delete relationships through a node's public API",
    load: async () => (await import("./api.js")).command("delete")
  },
  read: {
    description: "List the relationships of one resource (optionally one relation) on a node",
    load: async () => (await import("./api.js")).command("read")
  },
  check: {
    description: "Whether a relationship exists on a node (exit 0 when it does, 1 when not)",
    load: async () => (await import("./api.js")).command("check")
  },
  watch: {
    description: "Stream the changes a node commits or applies, from a log position, until interrupted",
    load: async () => (await import("./api.js")).command("watch")
  }
}

/** The subcommand `args` (the arguments after the program name) invoke, directly or through `help <name>`. */
export const invokedName = (args: ReadonlyArray<string>): string | undefined => {
  const words = args.filter((arg) => !arg.startsWith("-"))
  return words[0] === "help" ? words[1] : words[0]
}

/** Commander's own exits: 0 for --help and --version, 64 for every complaint about the command line. */
const exitOnUsageError = (error: CommanderError): never => process.exit(error.exitCode === 0 ? 0 : exitUsage)

/** Applies `exitOnUsageError` to a command and all its subcommands (`addCommand` does not pass it on). */
const withUsageExits = (command: Command): Command => {
  command.exitOverride(exitOnUsageError)
  for (const subcommand of command.commands) withUsageExits(subcommand)
  return command
}

/** Prints the version (and commit) and exits; the commit is only looked up when asked for. */
const printVersion = (): never => {
  process.stdout.write(`${Version.text()}\n`)
  return process.exit(0)
}

/** The whole program for `args`: the invoked subcommand in full, every other one as a placeholder. */
export const program = async (args: ReadonlyArray<string>): Promise<Command> => {
  const invoked = invokedName(args)
  const root = new Command("inferadb-repl")
    .description("Multi-region replication of relationship tuples, and the deterministic simulator that checks it")
    .option("-V, --version", "print the version (and the git commit of a checkout)")
    .on("option:version", printVersion)
    .showHelpAfterError()
  for (const [name, subcommand] of Object.entries(subcommands)) {
    const command = name === invoked ? await subcommand.load() : new Command(name)
    root.addCommand(command.description(subcommand.description))
  }
  return withUsageExits(root)
}

/**
 * Loads every subcommand's module and builds its command. The build's training run calls it
 * (`bin/launch.mjs`), so that the code cache it writes holds every subcommand's start-up code.
 */
export const train = (): Promise<unknown> => Promise.all(Object.values(subcommands).map((subcommand) => subcommand.load()))

// No top-level await: the bundle is CommonJS (see scripts/build.mjs). An error that escapes a
// subcommand still ends the process with its stack and exit code 1, as an unhandled rejection.
const args = process.argv.slice(2)
void program(args).then((root) => root.parseAsync(args, { from: "user" }))
