/**
 * `inferadb-repl sim ...`: runs the deterministic simulator.
 *
 *   inferadb-repl sim run <scenario-file> --seed <n> [--json] [--canary <name>]
 *
 * Prints the seed and every value drawn from it, then the result. With `--json`, stdout is
 * exactly one JSON object (the `RunResult`). The exit code is 0 when no checker found a
 * violation, 1 when one did (or the simulator itself failed), 2 when the scenario could not
 * be read. On failure the first line printed (to stderr with `--json`) is one command that
 * replays the run.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { Command, InvalidArgumentError, Option } from "commander"
import { Either } from "effect"
import * as Canary from "../sim/canary/Canary.js"
import { type RunResult, runScenario } from "../sim/Run.js"
import * as Scenario from "../sim/Scenario.js"

const parseSeed = (value: string): string => {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError("a seed is a non-negative integer")
  return value
}

/** The command that replays a run from the current directory. */
export const replayCommand = (file: string, seed: string, canary: string | undefined): string => {
  const bin = path.relative(process.cwd(), path.resolve(process.argv[1] ?? "bin/inferadb-repl.mjs")) || "bin/inferadb-repl.mjs"
  return `node ${bin} sim run ${file} --seed ${seed}${canary === undefined ? "" : ` --canary ${canary}`}`
}

const summary = (result: RunResult): ReadonlyArray<string> => {
  const lines = [
    `scenario ${result.scenario}: ${result.violations.length === 0 ? "PASSED" : `FAILED (${result.violations.length} violation(s))`}`,
    `  trace ${result.traceHash}, ${result.events} events, ${result.tasks} tasks, ${result.simulatedMs} simulated ms in ${result.wallMs} ms`,
    `  converged ${result.converged}${result.convergenceMs === undefined ? "" : ` ${result.convergenceMs} ms after healing at ${result.healedAtMs} ms`} (${result.stopReason})`,
    `  writes ${JSON.stringify(result.writes)}`,
    `  acknowledged changes by fate ${JSON.stringify(result.lostWrites)}`,
    `  replication lag ms p50 ${result.lagMs.p50}, p90 ${result.lagMs.p90}, p99 ${result.lagMs.p99}, max ${result.lagMs.max}`,
    ...result.faults.map((fault) => `  fault at ${fault.atMs} ms: ${fault.detail}`)
  ]
  if (result.failover !== undefined) lines.push(`  failover ${JSON.stringify(result.failover)}`)
  for (const violation of result.violations) lines.push(`  VIOLATION [${violation.checker}] ${violation.message}`, `    ${JSON.stringify(violation.details)}`)
  return lines
}

const run = (file: string, options: { readonly seed: string; readonly json?: boolean; readonly canary?: Canary.Name }): void => {
  let text: string
  try {
    text = fs.readFileSync(file, "utf8")
  } catch (error) {
    process.stderr.write(`cannot read ${file}: ${String(error)}\n`)
    process.exitCode = 2
    return
  }
  const decoded = Scenario.decode(text, file)
  if (Either.isLeft(decoded)) {
    process.stderr.write(`${decoded.left.message}\n`)
    process.exitCode = 2
    return
  }
  const replay = `replay: ${replayCommand(file, options.seed, options.canary)}`
  let result: RunResult
  try {
    result = runScenario(decoded.right, options.seed, {
      wallClock: () => performance.now(),
      ...(options.canary === undefined ? {} : { canary: options.canary })
    })
  } catch (error) {
    process.stderr.write(`${replay}\nthe simulator failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`)
    process.exitCode = 1
    return
  }
  const failed = result.violations.length > 0
  if (options.json === true) {
    if (failed) process.stderr.write(`${replay}\n`)
    process.stdout.write(`${JSON.stringify(result)}\n`)
  } else {
    const chosen = Object.entries(result.chosen.clocks).map(([node, clock]) => `  clock ${node}: offset ${clock.offsetMs} ms, drift ${clock.driftPpm} ppm`)
    process.stdout.write(`${[...(failed ? [replay] : []), `seed ${result.seed}`, ...chosen, ...summary(result)].join("\n")}\n`)
  }
  process.exitCode = failed ? 1 : 0
}

/** The `sim` command and its subcommands. */
export const command = (): Command => {
  const sim = new Command("sim").description("Run the deterministic simulator")
  sim
    .command("run")
    .description("Run one scenario with one seed; exit 0 iff no checker found a violation")
    .argument("<scenario-file>", "a scenario YAML file (see scenarios/README.md)")
    .requiredOption("--seed <n>", "the master seed", parseSeed)
    .option("--json", "print exactly one JSON object (the run result) on stdout")
    .addOption(new Option("--canary <name>", "run a deliberately broken variant that the checkers must catch").choices([...Canary.names]))
    .action((file: string, options: { readonly seed: string; readonly json?: boolean; readonly canary?: Canary.Name }) => run(file, options))
  return sim
}
