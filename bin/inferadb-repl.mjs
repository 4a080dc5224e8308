#!/usr/bin/env node
// The inferadb-repl command line. It runs dist/cli.cjs when `npm run build` made it from the
// current sources, else src/cli/main.ts through tsx (see launch.mjs).
import { launch } from "./launch.mjs"

await launch("src/cli/main.ts")
