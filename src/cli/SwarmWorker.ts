/**
 * A worker thread of `sim swarm --jobs N` (see SwarmJobs.ts): started with the base scenario and
 * the canary, it runs each seed number it receives, one world after another, and answers each
 * with that seed's outcome. It prints nothing and writes no files; the main thread does both.
 */
import { parentPort, workerData } from "node:worker_threads"
import { runSeed, type WorkerSettings } from "./SwarmJobs.js"

const port = parentPort
if (port === null) throw new Error("SwarmWorker.ts runs only as a worker thread (see SwarmJobs.ts)")
const { settings } = workerData as { readonly settings: WorkerSettings }
port.on("message", (seed: number) => port.postMessage(runSeed(seed, settings)))
