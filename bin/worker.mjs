// Starts a worker thread on the TypeScript module `workerData.entry` (a path from the
// repository root) the way the command line starts: from the current bundle in dist/, or from
// the sources through tsx (see launch.mjs). Node 20 does not apply `--import tsx` given in a
// worker's execArgv to the worker's own entry point, so the worker registers tsx itself.
import { workerData } from "node:worker_threads"
import { launch } from "./launch.mjs"

await launch(workerData.entry)
