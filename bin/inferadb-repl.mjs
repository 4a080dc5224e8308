#!/usr/bin/env node
// The inferadb-repl command line. It runs dist/cli.cjs when `npm run build` made it from the
// current sources, else src/cli/main.ts through tsx (see launch.mjs).
import { launch } from "./launch.mjs"

/** Arguments that load no subcommand (main.ts): the program's help or version. */
const onlyHelp = (args) => args.every((arg) => ["-h", "--help", "-V", "--version", "help"].includes(arg))

await launch("src/cli/main.ts", onlyHelp(process.argv.slice(2)) ? "help" : undefined)
