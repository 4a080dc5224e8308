/**
 * The determinism self-check: runs one scenario and seed twice in the same process and
 * compares the rolling trace hash after every event (`RunOptions.onEvent`). Identical runs
 * fold identical events and scheduling decisions, so the first event whose hash differs is
 * where the runs parted: a machine clock, unseeded randomness, iteration over a structure
 * whose order is not fixed, or state that leaked from the first run into the second (module
 * caches, for instance). Both sides of that event are reported. When every hash matches, the
 * results (without `wallMs`) must match too; any field that differs is reported as well.
 */
import { type RunOptions, type RunResult, runScenario } from "./Run.js"
import type { Scenario } from "./Scenario.js"
import type { TraceEvent } from "./World.js"

/** Where two runs parted: the first event whose hash differs, from each side (absent when that run had ended). */
export interface Divergence {
  readonly index: number
  readonly first: TraceEvent | undefined
  readonly second: TraceEvent | undefined
  /** The last event both runs agree on. */
  readonly lastCommon: TraceEvent | undefined
}

/** What the self-check found. */
export interface Outcome {
  readonly identical: boolean
  readonly events: { readonly first: number; readonly second: number }
  readonly traceHash: { readonly first: string; readonly second: string }
  readonly divergence: Divergence | undefined
  /** Result fields (other than `wallMs`) that differ although every event matched. */
  readonly differingFields: ReadonlyArray<string>
}

/** Options of the self-check. */
export interface Options {
  /** Options of both runs (a canary, say). */
  readonly run?: RunOptions
  /** Test-only: extra options of the second run, to see that a perturbation is reported. */
  readonly secondRun?: RunOptions
}

const differingFields = (first: RunResult, second: RunResult): ReadonlyArray<string> =>
  (Object.keys(first) as Array<keyof RunResult>).filter((key) => key !== "wallMs" && JSON.stringify(first[key]) !== JSON.stringify(second[key]))

/** Runs the scenario twice with the seed and compares the trace after every event. */
export const check = (scenario: Scenario, seed: number | string, options: Options = {}): Outcome => {
  const recorded: Array<TraceEvent> = []
  const first = runScenario(scenario, seed, { ...options.run, onEvent: (event) => recorded.push(event) })
  let divergence: Divergence | undefined
  let seen = 0
  const second = runScenario(scenario, seed, {
    ...options.run,
    ...options.secondRun,
    onEvent: (event) => {
      seen++
      if (divergence !== undefined) return
      const mine = recorded[event.index]
      if (mine === undefined || mine.hash !== event.hash) divergence = { index: event.index, first: mine, second: event, lastCommon: recorded[event.index - 1] }
    }
  })
  if (divergence === undefined && seen < recorded.length) divergence = { index: seen, first: recorded[seen], second: undefined, lastCommon: recorded[seen - 1] }
  const fields = divergence === undefined ? differingFields(first, second) : []
  return {
    identical: divergence === undefined && fields.length === 0,
    events: { first: recorded.length, second: seen },
    traceHash: { first: first.traceHash, second: second.traceHash },
    divergence,
    differingFields: fields
  }
}

/** One event on one line: index, time, kind, node, details, tasks before it and hash. */
export const describeEvent = (event: TraceEvent | undefined): string =>
  event === undefined ? "(the run had ended)" : `#${event.index} at ${event.timeMs} ms: ${event.kind} ${event.node} "${event.detail}" (after ${event.tasks} tasks, hash ${event.hash})`
