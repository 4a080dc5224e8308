#!/usr/bin/env node
// The inferadb-repl command line. It runs the TypeScript sources directly: tsx is registered
// as an ESM loader first, then the CLI entry point is imported.
import { register } from "tsx/esm/api"

register()
await import("../src/cli/main.ts")
