/**
 * The `inferadb-repl` command line: one commander program whose subcommands each live in
 * their own file (`sim.ts` for the simulator; `serve` will join it). This file only wires
 * them together and runs the parser.
 */
import { Command } from "commander"
import * as Serve from "./serve.js"
import * as Sim from "./sim.js"

/** The whole program, for tests and for the entry point below. */
export const program = (): Command =>
  new Command("inferadb-repl")
    .description("Multi-region replication of relationship tuples, and the deterministic simulator that checks it")
    .showHelpAfterError()
    .addCommand(Sim.command())
    .addCommand(Serve.command())

await program().parseAsync(process.argv)
