/**
 * Reading a scenario file for a command (`sim run`, `sim shrink`, `chaos run`): the file's
 * problem is printed on stderr and the exit code set to 2, so every command reports a missing
 * or malformed scenario the same way.
 */
import * as fs from "node:fs"
import { Either } from "effect"
import * as Scenario from "../sim/Scenario.js"

/** Reads and decodes a scenario file; prints the problem and sets exit code 2 when it cannot. */
export const read = (file: string): Scenario.Scenario | undefined => {
  let text: string
  try {
    text = fs.readFileSync(file, "utf8")
  } catch (error) {
    process.stderr.write(`cannot read ${file}: ${String(error)}\n`)
    process.exitCode = 2
    return undefined
  }
  const decoded = Scenario.decode(text, file)
  if (Either.isRight(decoded)) return decoded.right
  process.stderr.write(`${decoded.left.message}\n`)
  process.exitCode = 2
  return undefined
}
