/**
 * The command line's own contract, through the real entry point in a child process: --version
 * prints package.json's version, usage errors (an unknown command or option, a missing
 * argument) exit 64, an unreadable scenario file still exits 2, and --help lists every
 * subcommand without loading it.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { cli, root } from "../fixtures/cli.js"



const packageVersion = (JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8")) as { readonly version: string }).version

describe("inferadb-repl", () => {
  it("--version and -V print the package version and exit 0", async () => {
    for (const flag of ["--version", "-V"]) {
      const { code, stdout } = await cli([flag])
      expect(code).toBe(0)
      expect(stdout).toMatch(new RegExp(`^inferadb-repl ${packageVersion.replaceAll(".", "\\.")}( \\(commit [0-9a-f]+\\))?\\n$`))
    }
  })

  it("--help lists every subcommand and exits 0", async () => {
    const { code, stdout } = await cli(["--help"])
    expect(code).toBe(0)
    expect(stdout).toMatch(/^\s+sim\s+The deterministic simulator/m)
    expect(stdout).toMatch(/^\s+serve\s+Run one engine node/m)
  })

  it("an unknown subcommand exits 64 and names it", async () => {
    const { code, stderr } = await cli(["replicate-everything"])
    expect(code).toBe(64)
    expect(stderr).toContain("unknown command 'replicate-everything'")
  })

  it("an unknown option, a missing argument or a missing required option exits 64", async () => {
    const runs = await Promise.all([
      cli(["sim", "run", "scenarios/two-region-partition.yaml", "--seed", "1", "--no-such-option"]),
      cli(["sim", "run", "--seed", "1"]),
      cli(["serve"])
    ])
    expect(runs.map((run) => run.code)).toEqual([64, 64, 64])
    expect(runs[0]!.stderr).toContain("unknown option '--no-such-option'")
    expect(runs[1]!.stderr).toContain("missing required argument 'scenario-file'")
    expect(runs[2]!.stderr).toContain("required option '--config <file>' not specified")
  })

  it("a scenario file that cannot be read is a configuration error: exit 2", async () => {
    const { code, stderr } = await cli(["sim", "run", "scenarios/no-such-scenario.yaml", "--seed", "1", "--no-report"])
    expect(code).toBe(2)
    expect(stderr).toContain("cannot read scenarios/no-such-scenario.yaml")
  })
})
