/**
 * A run's report folder: `<root>/<scenario>/<seed>-<utc time>/` holding `result.json`,
 * `history.jsonl`, `report.md` and `report.html`, plus `<root>/<scenario>/latest` pointing at
 * the newest folder. Every writer of reports (`sim run`, each failing `sim swarm` seed, `sim
 * shrink`, `chaos run`) calls `write` with a `RunReport`. The time in the folder name is the
 * wall clock when the report is written, outside the run, so runs stay deterministic and a
 * second run of a seed no longer overwrites the first.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import * as Html from "./Html.js"
import * as Provenance from "./Provenance.js"
import * as RunReport from "./RunReport.js"

/** The files of a folder, by name. */
export const files = ["result.json", "history.jsonl", "report.md", "report.html"] as const

/** What was written. */
export interface Written {
  readonly directory: string
  /** `<root>/<scenario>/latest`, or undefined when the file system refused the link. */
  readonly latest: string | undefined
  readonly files: ReadonlyArray<string>
}

/** Options of `write`. */
export interface WriteOptions {
  /** The wall-clock time of writing, for the folder name. */
  readonly now: Date
  /** The scenario as it ran (file text or generated YAML), hashed into `result.json`. */
  readonly scenarioText?: string | undefined
  /** Where the scenario came from, as given to the command. */
  readonly scenarioFile?: string | undefined
  /** Other files to write into the folder (name to text), e.g. a generated scenario. */
  readonly extra?: Readonly<Record<string, string>>
  /**
   * A folder made by `reserve` to write into instead of a fresh one: a chaos run needs its
   * folder from the start (its nodes' data, configs and logs live there).
   */
  readonly directory?: string | undefined
}

/** A folder or file name part: letters, digits, `.`, `_` and `-` only. */
const safe = (text: string): string => text.replace(/[^\w.-]+/g, "_") || "_"

/** `20261130T072801.123Z`: sortable, and legal in file names everywhere. */
export const stamp = (now: Date): string => now.toISOString().replaceAll("-", "").replaceAll(":", "")

/** `result.json`: the verdict first, then provenance, checks, findings and the run's own result. */
export const resultJson = (report: RunReport.RunReport, options: WriteOptions): string => {
  const project = Provenance.project()
  return `${JSON.stringify(
    {
      valid: report.valid,
      scenario: report.scenario,
      seed: report.seed,
      replay: report.replay,
      version: project.version,
      commit: project.commit,
      scenarioFile: options.scenarioFile,
      scenarioSha256: options.scenarioText === undefined ? undefined : Provenance.sha256(options.scenarioText),
      createdAt: options.now.toISOString(),
      checks: report.checks,
      lostWrites: report.lostWrites,
      conflicts: report.conflicts.length,
      failover: report.failover,
      run: report.result
    },
    null,
    2
  )}\n`
}

/** A fresh folder for the run (a suffix if one of that name exists). */
const freshDirectory = (parent: string, name: string): string => {
  fs.mkdirSync(parent, { recursive: true })
  for (let attempt = 1; ; attempt++) {
    const candidate = path.join(parent, attempt === 1 ? name : `${name}-${attempt}`)
    try {
      fs.mkdirSync(candidate)
      return candidate
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error
    }
  }
}

/** Points `<parent>/latest` at `name`, replacing an older link in one rename. */
const linkLatest = (parent: string, name: string): string | undefined => {
  const latest = path.join(parent, "latest")
  const temporary = path.join(parent, `.latest-${process.pid}`)
  try {
    fs.rmSync(temporary, { force: true })
    fs.symlinkSync(name, temporary, "dir")
    fs.renameSync(temporary, latest)
    return latest
  } catch {
    fs.rmSync(temporary, { force: true })
    return undefined
  }
}

/** Makes a run's folder before the run, named as `write` names it (`now`: when the run starts); pass it to `write` as `directory`. */
export const reserve = (root: string, scenario: string, seed: string, now: Date): string => freshDirectory(path.join(root, safe(scenario)), `${safe(seed)}-${stamp(now)}`)

/** Writes a run's folder under `root` (or into `options.directory`); returns where. */
export const write = (root: string, report: RunReport.RunReport, options: WriteOptions): Written => {
  const parent = options.directory === undefined ? path.join(root, safe(report.scenario)) : path.dirname(options.directory)
  const directory = options.directory ?? freshDirectory(parent, `${safe(report.seed)}-${stamp(options.now)}`)
  const project = Provenance.project()
  const contents: Record<string, string> = {
    "result.json": resultJson(report, options),
    "history.jsonl": RunReport.jsonl(report.events),
    "report.md": report.markdown,
    "report.html": Html.render(report, {
      version: project.version,
      commit: project.commit,
      scenarioSha256: options.scenarioText === undefined ? undefined : Provenance.sha256(options.scenarioText),
      createdAt: options.now.toISOString()
    }),
    ...options.extra
  }
  const written = Object.entries(contents).map(([file, text]) => {
    const target = path.join(directory, safe(file))
    fs.writeFileSync(target, text)
    return target
  })
  return { directory, latest: linkLatest(parent, path.basename(directory)), files: written }
}
