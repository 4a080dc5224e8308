/**
 * `report.html`: one self-contained page per run (inline CSS and SVG; no script, no font or
 * image from the network), readable offline and attachable to a ticket. From the top: the
 * verdict and the replay command, the provenance and key figures, the checks, then the plots
 * (`Plots.ts`) and the tables of lost writes and of writes the new primary lacked.
 */
import * as Plots from "./Plots.js"
import type * as RunReport from "./RunReport.js"
import * as Svg from "./Svg.js"

/** Where the run came from, for the page header. */
export interface Provenance {
  readonly version: string | undefined
  readonly commit: string | undefined
  readonly scenarioSha256: string | undefined
  readonly createdAt: string
}

const style = `
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px auto; max-width: 1040px; color: #1d1d1f; padding: 0 12px; }
h1 { font-size: 22px; margin: 0 0 8px; } h2 { font-size: 17px; margin: 28px 0 6px; border-bottom: 1px solid #ddd; padding-bottom: 3px; }
.verdict { display: inline-block; padding: 2px 10px; border-radius: 4px; color: #fff; font-weight: 600; }
.verdict.valid { background: #2ca02c; } .verdict.invalid { background: #d62728; }
pre.replay { background: #f4f4f6; padding: 8px 10px; border-radius: 4px; overflow-x: auto; }
table { border-collapse: collapse; margin: 6px 0; font-size: 13px; } td, th { border: 1px solid #ddd; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f4f4f6; } .muted { color: #6e6e73; } .bad { color: #d62728; font-weight: 600; } .good { color: #2ca02c; }
svg.plot { display: block; margin: 4px 0 2px; max-width: 100%; height: auto; }
svg .axis, svg .fault-label, svg .mark-label, svg .bracket-label, svg .lane-label { font-size: 11px; fill: #444; }
svg .lane-label.region { font-weight: 600; fill: #1d1d1f; } svg .lane-bg { fill: #fafafa; } svg .lane-bg.region { fill: #f0f0f3; }
svg .axis-line, svg .tick { stroke: #888; } svg .grid { stroke: #eee; } svg .fault-band { fill: #d62728; fill-opacity: 0.08; }
svg .fault { fill: #d62728; fill-opacity: 0.55; } svg .fault-pause, svg .fault-store { fill: #ff7f0e; } svg .fault-label { fill: #fff; }
svg .fault-mark { fill: #9467bd; } svg .primary { fill: #1f77b4; } svg .answer { stroke-width: 1; } svg .answer-failed { stroke: #d62728; } svg .answer-rejected { stroke: #ff7f0e; } svg .answer-unknown { stroke: #7f7f7f; }
svg .mark { stroke: #333; stroke-dasharray: 3 3; } svg .mark-label { fill: #333; } svg .bracket { fill: none; stroke: #333; stroke-width: 1.5; } svg .bracket.rpo { stroke: #9467bd; } svg .bracket.lacked { stroke: #aaa; stroke-dasharray: 4 2; }
svg .lag-path { fill: none; stroke-width: 1.5; } svg .column { stroke: #888; }
svg .msg line { stroke: #1f77b4; stroke-opacity: 0.6; } svg .msg-lost line, svg .msg-cut line { stroke: #d62728; stroke-opacity: 0.9; } svg .drop { stroke: #d62728; stroke-width: 2; }
.caption { color: #6e6e73; font-size: 12px; margin: 0 0 8px; }
`

const table = (header: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string | number | undefined>>): string =>
  `<table><thead><tr>${header.map((cell) => `<th>${Svg.escape(cell)}</th>`).join("")}</tr></thead><tbody>${rows
    .map((row) => `<tr>${row.map((cell) => `<td>${cell === undefined ? "–" : Svg.escape(String(cell))}</td>`).join("")}</tr>`)
    .join("")}</tbody></table>`

/** A table of labelled values, one per row. */
const facts = (rows: ReadonlyArray<readonly [string, string | undefined]>): string =>
  `<table><tbody>${rows.map(([key, value]) => `<tr><th>${Svg.escape(key)}</th><td>${value === undefined ? "–" : Svg.escape(value)}</td></tr>`).join("")}</tbody></table>`

const ms = (value: number | undefined): string | undefined => (value === undefined ? undefined : `${Svg.round(value)} ms`)

const header = (report: RunReport.RunReport, provenance: Provenance): string => {
  const failed = report.checks.filter((check) => !check.valid).map((check) => check.name)
  return [
    `<h1>${Svg.escape(report.scenario)}, seed ${Svg.escape(report.seed)} <span class="verdict ${report.valid ? "valid" : "invalid"}">${report.valid ? "valid" : `INVALID: ${Svg.escape(failed.join(", "))}`}</span></h1>`,
    `<p class="muted">Replay (from a checkout of the project at the commit below):</p>`,
    `<pre class="replay">${Svg.escape(report.replay)}</pre>`,
    facts([
      ["version", provenance.version],
      ["commit", provenance.commit],
      ["scenario sha256", provenance.scenarioSha256],
      ["report written", provenance.createdAt],
      ...report.facts
    ])
  ].join("\n")
}

const checksSection = (report: RunReport.RunReport): string =>
  `<h2>Checks</h2>${table(
    ["check", "verdict", "violations"],
    report.checks.map((check) => [check.name, check.valid ? "valid" : "INVALID", check.violations.map((violation) => violation.message).join("; ") || undefined])
  )}${report.checks
    .flatMap((check) => check.violations.map((violation) => `<details><summary class="bad">${Svg.escape(check.name)}: ${Svg.escape(violation.message)}</summary><pre>${Svg.escape(JSON.stringify(violation.details, null, 2))}</pre></details>`))
    .join("")}`

const failoverSection = (report: RunReport.RunReport): string => {
  const story = report.failover
  const unrecorded = report.unrecorded?.failover
  if (story === undefined) return unrecorded === undefined ? "" : `<h2>Failover</h2>${notRecorded(unrecorded)}`
  const point = story.recoveryPoint
  const summary = table(
    ["primary lost", "detected", "promoted", "first write elsewhere (RTO)", "handed back", "RPO: writes finally lost", "RPO window", "lacked at promotion"],
    [
      [
        ms(story.lostAtMs),
        ms(story.detectedAtMs),
        story.promotedRegion === undefined ? undefined : `${story.promotedRegion} at ${ms(story.promotedAtMs)}`,
        story.rtoMs === undefined ? undefined : `${ms(story.firstWriteElsewhereAtMs)} (RTO ${ms(story.rtoMs)})`,
        ms(story.handedBackAtMs),
        point?.lostWrites,
        ms(point?.lostWindowMs),
        point === undefined ? undefined : `${point.lackedWrites} write(s) over ${ms(point.lackedWindowMs ?? 0)}`
      ]
    ]
  )
  const lacked =
    point === undefined || point.writes.length === 0
      ? `<p class="muted">The new primary held every acknowledged write when it was promoted.</p>`
      : `<p class="caption">Each acknowledged write the new primary lacked at its promotion, and its final fate:</p>${table(
          ["write", "tuples", "acknowledged by", "at", "fate", "why"],
          point.writes.map((write) => [write.write, write.tuples.join(", "), write.region, ms(write.acknowledgedAtMs), write.fate, write.why])
        )}`
  const note = story.note === undefined ? "" : `<p class="caption">${Svg.escape(story.note)}</p>`
  return `<h2>Failover</h2><p class="caption">RTO: from the loss of the primary to the first write accepted by another region. RPO: acknowledged writes that were finally lost because the new primary lacked them, and the span from the first of them to the promotion; writes it lacked but that came back later are listed as recovered.</p>${note}${summary}${lacked}`
}

const lostSection = (report: RunReport.RunReport): string =>
  `<h2>Acknowledged writes that did not survive (${report.lostWrites.length})</h2>${
    report.lostWrites.length === 0
      ? `<p class="good">None: every acknowledged change survived or was replaced by a causally later change.</p>`
      : table(
          ["change", "write", "tuple", "region", "acknowledged at", "cause", "lost to"],
          report.lostWrites.map((lost) => [lost.change, lost.write, `${lost.op} ${lost.tuple}`, lost.region, ms(lost.acknowledgedAtMs), lost.cause, lost.lostTo === undefined ? undefined : `${lost.lostTo} (${lost.lostToRegion ?? "?"})`])
        )
  }`

/** In place of a plot the run has no data for. */
const notRecorded = (reason: string): string => `<p class="muted not-recorded">Not recorded on real processes: ${Svg.escape(reason)}</p>`

const plotSections = (report: RunReport.RunReport): string => {
  const spans = Plots.faultSpans(report)
  const frame: Plots.Frame = { scale: Svg.timeScale(report.durationMs), bands: Plots.faultBands(spans) }
  const diagram = Plots.spaceTime(frame, report)
  const messages = report.events.filter((event) => event.type === "message").length
  const shown = Plots.diagramMessages(report, frame.bands)
  return [
    `<h2>Timeline</h2><p class="caption">A lane per region (bold) and node: faults as bars on what they hit (diamonds act at once), the primary's epochs as a blue line under its region, refused writes as ticks under the client's region; red bands mark every fault window, on every plot.${report.failover === undefined ? "" : " Dashed lines mark the failover; the brackets are RTO and RPO."}</p>${report.unrecorded?.epochs === undefined ? "" : notRecorded(`epochs: ${report.unrecorded.epochs}`)}${Plots.timeline(frame, report)}`,
    `<h2>Replication lag</h2><p class="caption">Per target region, the highest lag (acknowledgement at the origin to durability at the target) in each time slice.</p>${Plots.lag(frame, report)}`,
    `<h2>Write outcomes per second</h2><p class="caption">Answers to each region's clients, per second.</p>${Plots.outcomes(frame, report)}`,
    `<h2>Conflicts and lost writes</h2><p class="caption">Tuples whose final state holds concurrent changes, by when the last of them was acknowledged; dots are acknowledged writes that did not survive.</p>${Plots.conflicts(frame, report)}`,
    diagram === undefined
      ? report.unrecorded?.messages === undefined
        ? ""
        : `<h2>Messages between regions</h2>${notRecorded(report.unrecorded.messages)}`
      : `<h2>Messages between regions</h2><p class="caption">Space-time diagram of ${shown.length === messages ? `all ${messages}` : `${shown.length} of ${messages}`} recorded messages between regions (${Svg.timeText(shown[0]?.atMs ?? 0)} to ${Svg.timeText(Math.max(0, ...shown.map((message) => message.endedAtMs)))}): time goes down; red lines with a cross were lost on the link or cut by a partition; red bands are fault windows.</p>${diagram}`
  ].join("\n")
}

/** The whole page. */
export const render = (report: RunReport.RunReport, provenance: Provenance): string =>
  `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${Svg.escape(`${report.scenario} seed ${report.seed}: ${report.valid ? "valid" : "INVALID"}`)}</title>
<style>${style}</style></head>
<body>
${header(report, provenance)}
${checksSection(report)}
${plotSections(report)}
${failoverSection(report)}
${lostSection(report)}
</body></html>
`
