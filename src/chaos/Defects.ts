/**
 * Bugs a real node showed in its own output, judged whatever the scenario checks, as the
 * simulator judges its nodes (`defects` in `sim/Run.ts`): a run in which a node logged a bug
 * fails even when it converged. The engine logs at error level only for bugs (a gRPC or HTTP
 * handler that died, a batch send that died below the agent and is retried); an expected
 * failure (a peer down, a full disk, a refused reload) is a warning. A node that died of a
 * defect says so in two ways the level does not cover: `serve` ends with "the engine stopped
 * unexpectedly" when one of the engine's loops ended, and node prints its version line after
 * an uncaught exception's stack.
 *
 * Until December 3, 2026 the chaos judge read no node's output: a bug such as the one that
 * stopped replication to a target for good on real processes (a send that died inside grpc-js,
 * `scenarios/chaos-window-restart.yaml`) was caught only when it also cost convergence, and the
 * same run with the agent's retry of a dying send passed without a word of the bug underneath.
 */

/** A line of `serve`'s pretty log at error level or above: `<ISO time> ERROR <region>/<node> ...`. */
const prettyError = /^\d{4}-\d\d-\d\dT[\d:.]+Z (ERROR|FATAL)\s/

/** The line node prints after the stack of an uncaught exception or unhandled rejection, before it exits. */
const crashed = /^Node\.js v\d+\./

/** What `serve` prints when its engine ended while it should have run on (`Serve.run`). */
const engineStopped = "serve failed: the engine stopped unexpectedly"

/** A JSON log line's level, when the line is one. */
const jsonLevel = (line: string): unknown => {
  if (!line.startsWith("{")) return undefined
  try {
    return (JSON.parse(line) as { readonly level?: unknown }).level
  } catch {
    return undefined
  }
}

/** The bug a line of a node's output shows, said in a few words with the line itself; undefined for an ordinary line. */
export const defectIn = (line: string): string | undefined => {
  if (prettyError.test(line)) return `logged at error level: ${line}`
  const level = jsonLevel(line)
  if (level === "error" || level === "fatal") return `logged at error level: ${line}`
  if (line.startsWith(engineStopped)) return line
  if (crashed.test(line)) return "an uncaught exception ended the process (its stack is in serve.log)"
  return undefined
}

/** Bugs listed one by one per node; the rest are counted (a bug in a hot path logs hundreds of lines). */
export const listedPerNode = 3

/** One violation per bug a node showed, in the order it showed them, the first `listedPerNode` of each node, then how many more. */
export const violations = (nodes: ReadonlyArray<{ readonly nodeId: string; readonly defects: ReadonlyArray<string>; readonly log: string }>) =>
  nodes.flatMap((node) => {
    const details = { node: node.nodeId, log: node.log }
    const listed = node.defects.slice(0, listedPerNode).map((defect) => ({ checker: "defects", message: `${node.nodeId}: ${defect}`, details }))
    const more = node.defects.length - listed.length
    return more === 0 ? listed : [...listed, { checker: "defects", message: `${node.nodeId}: ${more} more like these (see ${node.log})`, details: { ...details, more } }]
  })
