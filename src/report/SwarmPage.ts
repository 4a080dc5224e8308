/**
 * The summary page of a swarm (`swarm-summary-<utc>.html` beside the failures' folders): seeds
 * by outcome, failures by checker, and each failing seed with what was drawn for it, its
 * replay command and a link to its report folder. Self-contained like `report.html`.
 */
import * as Svg from "./Svg.js"

/** One failing seed. */
export interface Failure {
  readonly seed: number
  readonly replay: string
  readonly checkers: ReadonlyArray<string>
  readonly messages: ReadonlyArray<string>
  /** What the swarm drew for this seed (regions, strategy, faults, ...). */
  readonly dimensions: Readonly<Record<string, string>>
  /** The seed's `report.html`, relative to the page. */
  readonly link: string | undefined
}

/** What the page shows. */
export interface SwarmPage {
  readonly seeds: ReadonlyArray<number>
  readonly failures: ReadonlyArray<Failure>
  readonly failuresByChecker: Readonly<Record<string, number>>
  readonly traceHash: string
  readonly createdAt: string
}

/** `1-4, 6, 8-9`: seeds as ranges. */
export const ranges = (seeds: ReadonlyArray<number>): string => {
  const sorted = [...seeds].sort((left, right) => left - right)
  const parts: Array<string> = []
  let start = sorted[0]
  for (let index = 1; index <= sorted.length; index++) {
    const [previous, current] = [sorted[index - 1]!, sorted[index]]
    if (current === previous + 1) continue
    parts.push(start === previous ? String(start) : `${start}-${previous}`)
    start = current
  }
  return parts.join(", ")
}

const style = `body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px auto; max-width: 1200px; padding: 0 12px; color: #1d1d1f; }
h1 { font-size: 22px; } h2 { font-size: 17px; border-bottom: 1px solid #ddd; } table { border-collapse: collapse; font-size: 13px; } td, th { border: 1px solid #ddd; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f4f4f6; } code { font-size: 12px; } .bad { color: #d62728; font-weight: 600; } .good { color: #2ca02c; font-weight: 600; }`

const failureRow = (failure: Failure): string =>
  `<tr><td>${failure.link === undefined ? failure.seed : `<a href="${Svg.escape(failure.link)}">${failure.seed}</a>`}</td><td class="bad">${Svg.escape(failure.checkers.join(", "))}</td><td>${Object.entries(failure.dimensions)
    .map(([key, value]) => `${Svg.escape(key)}: ${Svg.escape(value)}`)
    .join("<br>")}</td><td>${failure.messages.map(Svg.escape).join("<br>")}</td><td><code>${Svg.escape(failure.replay)}</code></td></tr>`

/** The page. */
export const render = (page: SwarmPage): string => {
  const failed = new Set(page.failures.map((failure) => failure.seed))
  const passed = page.seeds.filter((seed) => !failed.has(seed))
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>swarm: ${page.seeds.length} seeds, ${page.failures.length} failed</title><style>${style}</style></head><body>
<h1>Swarm: ${page.seeds.length} seeds, <span class="good">${passed.length} passed</span>, <span class="${page.failures.length === 0 ? "good" : "bad"}">${page.failures.length} failed</span></h1>
<p>Trace hash of every seed in order: <code>${Svg.escape(page.traceHash)}</code>. Written ${Svg.escape(page.createdAt)}.</p>
<h2>Seeds by outcome</h2>
<table><tr><th>passed</th><td>${Svg.escape(ranges(passed)) || "none"}</td></tr><tr><th>failed</th><td>${Svg.escape(ranges([...failed])) || "none"}</td></tr>
${Object.entries(page.failuresByChecker).map(([checker, count]) => `<tr><th>failed ${Svg.escape(checker)}</th><td>${count}</td></tr>`).join("")}</table>
${page.failures.length === 0 ? "" : `<h2>Failures</h2><table><thead><tr><th>seed (report)</th><th>checkers</th><th>drawn</th><th>violations</th><th>replay</th></tr></thead><tbody>${page.failures.map(failureRow).join("")}</tbody></table>`}
</body></html>
`
}
