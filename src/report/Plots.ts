/**
 * The plots of a run report, each a function of the report alone, returning inline SVG: the
 * timeline (a lane per region and node, faults on the lanes they hit, the primary's epochs,
 * failover marks with RTO and RPO), replication lag over time per target region, write
 * outcomes per second per region, conflicts and lost writes over time, and a space-time
 * diagram of the messages between regions. Every time plot shares one time scale and shades
 * the fault bands, so a moment lines up down the page.
 */
import type * as RunReport from "./RunReport.js"
import * as Svg from "./Svg.js"

/** What every time plot shares. */
export interface Frame {
  readonly scale: Svg.TimeScale
  readonly bands: ReadonlyArray<Svg.Band>
}

const isFault = (event: RunReport.HistoryEvent): event is RunReport.FaultEvent => event.type === "fault"
const isOperation = (event: RunReport.HistoryEvent): event is RunReport.OperationEvent => event.type === "op"

/** A fault from its application to its heal (the run's end if nothing healed it; zero-length if it acts at once). */
export interface FaultSpan {
  readonly fault: RunReport.FaultEvent
  readonly endMs: number
  readonly lasting: boolean
}

/** Pairs each applied fault with its heal. */
export const faultSpans = (report: RunReport.RunReport): ReadonlyArray<FaultSpan> => {
  const faults = report.events.filter(isFault)
  const healed = new Map(faults.filter((event) => event.phase === "healed").map((event) => [event.fault, event.atMs]))
  return faults
    .filter((event) => event.phase === "applied")
    .map((fault) => ({ fault, endMs: healed.get(fault.fault) ?? fault.atMs, lasting: healed.has(fault.fault) }))
}

/** The union of the lasting faults' spans: the bands shaded across every plot. */
export const faultBands = (spans: ReadonlyArray<FaultSpan>): ReadonlyArray<Svg.Band> => {
  const sorted = spans.filter((span) => span.lasting).sort((left, right) => left.fault.atMs - right.fault.atMs)
  const merged: Array<{ startMs: number; endMs: number; labels: Array<string> }> = []
  for (const span of sorted) {
    const last = merged[merged.length - 1]
    if (last !== undefined && span.fault.atMs <= last.endMs) {
      last.endMs = Math.max(last.endMs, span.endMs)
      last.labels.push(span.fault.detail)
    } else merged.push({ startMs: span.fault.atMs, endMs: span.endMs, labels: [span.fault.detail] })
  }
  return merged.map((band) => ({ startMs: band.startMs, endMs: band.endMs, label: `${Svg.timeText(band.startMs)}–${Svg.timeText(band.endMs)}: ${band.labels.join("; ")}` }))
}

// ---------------------------------------------------------------------------------------------
// Timeline

const laneHeightPx = 22

interface Lane {
  readonly label: string
  readonly region: string
  readonly node: string | undefined
}

const lanesOf = (report: RunReport.RunReport): ReadonlyArray<Lane> =>
  report.regions.flatMap((region) => [{ label: region.id, region: region.id, node: undefined }, ...region.nodes.map((node) => ({ label: node, region: region.id, node }))])

/** Who served as primary when: from epoch events of nodes serving their own region, highest epoch first. */
export const primaryPeriods = (report: RunReport.RunReport): ReadonlyArray<{ readonly region: string; readonly epoch: number; readonly startMs: number; readonly endMs: number }> => {
  const starts = report.events.filter((event): event is RunReport.EpochEvent => event.type === "epoch" && event.primary === event.region && !event.fenced)
  const periods: Array<{ region: string; epoch: number; startMs: number; endMs: number }> = []
  for (const start of starts) {
    const current = periods[periods.length - 1]
    if (current !== undefined && start.epoch <= current.epoch) continue
    if (current !== undefined) current.endMs = start.atMs
    periods.push({ region: start.region, epoch: start.epoch, startMs: start.atMs, endMs: report.durationMs })
  }
  return periods
}

/** Whether a fault is drawn on its regions' lanes (it names no node, or it splits regions) rather than its nodes'. */
const onRegionLane = (fault: RunReport.FaultEvent): boolean => fault.nodes.length === 0 || fault.kind === "bridge"

const laneFaults = (frame: Frame, spans: ReadonlyArray<FaultSpan>, lane: Lane, y: number): string =>
  spans
    .filter(({ fault }) => (lane.node === undefined ? onRegionLane(fault) && fault.regions.includes(lane.region) : !onRegionLane(fault) && fault.nodes.includes(lane.node)))
    .map(({ fault, endMs, lasting }) => {
      const x = frame.scale.x(fault.atMs)
      const title = `<title>${Svg.escape(`${Svg.timeText(fault.atMs)}${lasting ? `–${Svg.timeText(endMs)}` : ""}: ${fault.detail}`)}</title>`
      if (!lasting) return `<path class="fault-mark" d="M${x} ${y + 2}l5 9l-5 9l-5 -9z">${title}</path>`
      const width = Math.max(2, Svg.round(frame.scale.x(endMs) - x))
      return `<rect class="fault fault-${Svg.escape(fault.kind)}" x="${x}" y="${y + 3}" width="${width}" height="${laneHeightPx - 6}">${title}</rect><text class="fault-label" x="${x + 3}" y="${y + 15}">${Svg.escape(fault.kind)}</text>`
    })
    .join("")

/** Ticks for operations answered other than ok, on their client region's lane. */
const laneAnswers = (frame: Frame, report: RunReport.RunReport, lane: Lane, y: number): string => {
  if (lane.node !== undefined) return ""
  return report.events
    .filter(isOperation)
    .filter((event) => event.region === lane.region && event.phase !== "invoke" && event.phase !== "ok")
    .map((event) => `<line class="answer answer-${event.phase}" x1="${frame.scale.x(event.atMs)}" y1="${y + laneHeightPx - 5}" x2="${frame.scale.x(event.atMs)}" y2="${y + laneHeightPx}"/>`)
    .join("")
}

/** A failover moment drawn across the timeline. */
interface Mark {
  readonly label: string
  readonly atMs: number | undefined
}

/** The failover's moments, in story order (undefined times are left out when drawn). */
export const failoverMarks = (story: RunReport.FailoverStory | undefined): ReadonlyArray<Mark> =>
  story === undefined
    ? []
    : [
        { label: `primary ${story.originalPrimary ?? ""} lost`, atMs: story.lostAtMs },
        { label: "detected", atMs: story.detectedAtMs },
        { label: `${story.promotedRegion ?? ""} promoted`, atMs: story.promotedAtMs },
        { label: "first write elsewhere", atMs: story.firstWriteElsewhereAtMs },
        { label: "handed back", atMs: story.handedBackAtMs }
      ]

const markLineHeightPx = 12

/** Vertical lines from `bottom` up to each mark's own label line above the lanes. */
const marks = (frame: Frame, list: ReadonlyArray<Mark & { readonly atMs: number }>, bottom: number): string =>
  list
    .map((mark, index) => {
      const x = frame.scale.x(mark.atMs)
      const y = 10 + index * markLineHeightPx
      const anchor = x > Svg.widthPx - 180 ? "end" : "start"
      return `<line class="mark" x1="${x}" y1="${y - 8}" x2="${x}" y2="${bottom}"/><text class="mark-label" x="${anchor === "end" ? x - 3 : x + 3}" y="${y}" text-anchor="${anchor}">${Svg.escape(`${mark.label} ${Svg.timeText(mark.atMs)}`)}</text>`
    })
    .join("")

/** A bracket under the lanes from `startMs` to `endMs`. */
const bracket = (frame: Frame, startMs: number, endMs: number, y: number, label: string, className: string): string => {
  const [left, right] = [frame.scale.x(startMs), frame.scale.x(endMs)]
  return `<path class="bracket ${className}" d="M${left} ${y - 5}V${y}H${right}V${y - 5}"/><text class="bracket-label" x="${left + 2}" y="${y + 12}">${Svg.escape(label)}</text>`
}

const recoveryBrackets = (frame: Frame, story: RunReport.FailoverStory | undefined, y: number): string => {
  if (story === undefined || story.lostAtMs === undefined) return ""
  const parts: Array<string> = []
  if (story.firstWriteElsewhereAtMs !== undefined && story.rtoMs !== undefined) {
    parts.push(bracket(frame, story.lostAtMs, story.firstWriteElsewhereAtMs, y, `RTO ${Svg.timeText(story.rtoMs)}`, "rto"))
  }
  const point = story.recoveryPoint
  if (point !== undefined && story.promotedAtMs !== undefined && point.lackedWindowMs !== undefined) {
    const label = `${point.lackedWrites} write(s) the new primary lacked, acknowledged over ${Svg.timeText(point.lackedWindowMs)} before its promotion`
    parts.push(bracket(frame, story.promotedAtMs - point.lackedWindowMs, story.promotedAtMs, y + 52, label, "lacked"))
  }
  if (point !== undefined && story.promotedAtMs !== undefined) {
    const windowMs = point.lostWindowMs ?? 0
    const label = `RPO ${point.lostWrites} write(s) lost, window ${Svg.timeText(windowMs)} (${point.lackedWrites} lacked at promotion)`
    parts.push(bracket(frame, story.promotedAtMs - windowMs, story.promotedAtMs, y + 26, label, "rpo"))
  }
  return parts.join("")
}

/** The timeline: a lane per region and node. */
export const timeline = (frame: Frame, report: RunReport.RunReport): string => {
  const lanes = lanesOf(report)
  const spans = faultSpans(report)
  const shown = failoverMarks(report.failover).filter((mark): mark is Mark & { readonly atMs: number } => mark.atMs !== undefined)
  const top = 8 + shown.length * markLineHeightPx
  const lanesBottom = top + lanes.length * laneHeightPx
  const periods = primaryPeriods(report)
  const rows = lanes.map((lane, index) => {
    const y = top + index * laneHeightPx
    const primary = lane.node !== undefined ? "" : periods.filter((period) => period.region === lane.region).map((period) => `<rect class="primary" x="${frame.scale.x(period.startMs)}" y="${y + laneHeightPx - 4}" width="${Math.max(1, Svg.round(frame.scale.x(period.endMs) - frame.scale.x(period.startMs)))}" height="3"><title>primary, epoch ${period.epoch}</title></rect>`).join("")
    return `<g class="lane"><rect class="lane-bg${lane.node === undefined ? " region" : ""}" x="${Svg.marginLeftPx}" y="${y}" width="${Svg.widthPx - Svg.marginLeftPx - 20}" height="${laneHeightPx - 1}"/><text class="lane-label${lane.node === undefined ? " region" : ""}" x="${Svg.marginLeftPx - 6}" y="${y + 15}" text-anchor="end">${Svg.escape(lane.label)}</text>${laneFaults(frame, spans, lane, y)}${primary}${laneAnswers(frame, report, lane, y)}</g>`
  })
  const bracketsHeight = report.failover === undefined ? 0 : 86
  const axisY = lanesBottom + bracketsHeight + 8
  // The bands go over the lanes' opaque backgrounds (they are translucent).
  const body = [...rows, Svg.bands(frame.scale, frame.bands, top, lanesBottom), marks(frame, shown, lanesBottom), recoveryBrackets(frame, report.failover, lanesBottom + 20), Svg.timeAxis(frame.scale, axisY)]
  return Svg.svg(axisY + 22, "timeline", body.join(""))
}

// ---------------------------------------------------------------------------------------------
// Lag, outcomes, conflicts

const legend = (entries: ReadonlyArray<readonly [string, string]>, y: number): string =>
  entries.map(([label, color], index) => `<rect x="${Svg.marginLeftPx + index * 150}" y="${y - 9}" width="10" height="10" fill="${color}"/><text class="axis" x="${Svg.marginLeftPx + 14 + index * 150}" y="${y}">${Svg.escape(label)}</text>`).join("")

/** Buckets across the run for plots that would otherwise hold one point per event. */
const bucketCount = 250
/** Empty buckets in a row after which the lag line is broken. */
const lagGapBuckets = 3

/** Replication lag over time, one path per target region (the highest lag in each time bucket). */
export const lag = (frame: Frame, report: RunReport.RunReport): string => {
  const samples = report.events.filter((event): event is RunReport.ReplicatedEvent => event.type === "replicated")
  const top = 24
  const bottom = 190
  const maxLag = Math.max(1, ...samples.map((sample) => sample.lagMs))
  const bucketMs = frame.scale.durationMs / bucketCount
  const paths = report.regions.map((region, index) => {
    const highest = new Map<number, number>()
    for (const sample of samples) {
      if (sample.region !== region.id) continue
      const bucket = Math.floor(sample.atMs / bucketMs)
      highest.set(bucket, Math.max(highest.get(bucket) ?? 0, sample.lagMs))
    }
    const sorted = [...highest].sort(([left], [right]) => left - right)
    const points = sorted.map(([bucket, value]) => [frame.scale.x((bucket + 0.5) * bucketMs), bottom - (value / maxLag) * (bottom - top)] as const)
    // A stretch with no sample (nothing replicated there) is a gap in the line, not a slope.
    const breaks = sorted.map(([bucket], at) => at > 0 && bucket - sorted[at - 1]![0] > lagGapBuckets)
    return Svg.path(points, `lag-path lag-${Svg.escape(region.id)}`, Svg.colorAt(index), breaks) + points.map(([x, y]) => `<circle class="lag-point" cx="${Svg.round(x)}" cy="${Svg.round(y)}" r="1.6" fill="${Svg.colorAt(index)}"/>`).join("")
  })
  const body = [
    Svg.bands(frame.scale, frame.bands, top, bottom),
    Svg.valueAxis(frame.scale, maxLag, top, bottom, " ms"),
    ...paths,
    legend(report.regions.map((region, index) => [`to ${region.id}`, Svg.colorAt(index)] as const), 14),
    Svg.timeAxis(frame.scale, bottom)
  ]
  return Svg.svg(bottom + 22, "replication lag over time per target region", body.join(""))
}

const outcomeColors: ReadonlyArray<readonly [RunReport.OperationPhase, string]> = [
  ["ok", "#2ca02c"],
  ["rejected", "#ff7f0e"],
  ["failed", "#d62728"],
  ["unknown", "#7f7f7f"]
]

/** Stacked bars per second of `count(second, key)` over the keys. */
const stackedSeconds = (frame: Frame, counts: ReadonlyMap<number, ReadonlyMap<string, number>>, keys: ReadonlyArray<readonly [string, string]>, top: number, bottom: number, maxValue: number): string => {
  const seconds = Math.ceil(frame.scale.durationMs / 1000)
  const bars: Array<string> = []
  for (let second = 0; second < seconds; second++) {
    const byKey = counts.get(second)
    if (byKey === undefined) continue
    let y = bottom
    const x = frame.scale.x(second * 1000)
    const width = Math.max(1, Svg.round(frame.scale.x(Math.min(frame.scale.durationMs, (second + 1) * 1000)) - x - 1))
    for (const [key, color] of keys) {
      const count = byKey.get(key) ?? 0
      if (count === 0) continue
      const height = (count / maxValue) * (bottom - top)
      y -= height
      bars.push(`<rect class="bar bar-${key}" x="${x}" y="${Svg.round(y)}" width="${width}" height="${Svg.round(height)}" fill="${color}"><title>${second}–${second + 1} s: ${count} ${key}</title></rect>`)
    }
  }
  return bars.join("")
}

/** Write outcomes per second, one small plot per client region. */
export const outcomes = (frame: Frame, report: RunReport.RunReport): string => {
  const answers = report.events.filter(isOperation).filter((event) => event.phase !== "invoke")
  const perRegion = report.regions.map((region) => {
    const counts = new Map<number, Map<string, number>>()
    for (const event of answers) {
      if (event.region !== region.id) continue
      const second = Math.floor(event.atMs / 1000)
      const byKey = counts.get(second) ?? new Map<string, number>()
      byKey.set(event.phase, (byKey.get(event.phase) ?? 0) + 1)
      counts.set(second, byKey)
    }
    return { region: region.id, counts }
  })
  const maxValue = Math.max(1, ...perRegion.flatMap(({ counts }) => [...counts.values()].map((byKey) => [...byKey.values()].reduce((sum, count) => sum + count, 0))))
  const rowHeight = 80
  const rows = perRegion.map(({ region, counts }, index) => {
    const top = 26 + index * rowHeight
    const bottom = top + rowHeight - 14
    return `<g class="outcomes-row">${Svg.bands(frame.scale, frame.bands, top, bottom)}${Svg.valueAxis(frame.scale, maxValue, top, bottom, "")}<text class="lane-label region" x="8" y="${top + 30}">${Svg.escape(region)}</text>${stackedSeconds(frame, counts, outcomeColors, top, bottom, maxValue)}</g>`
  })
  const axisY = 26 + perRegion.length * rowHeight - 14
  return Svg.svg(axisY + 22, "write outcomes per second per region", [legend(outcomeColors, 14), ...rows, Svg.timeAxis(frame.scale, axisY)].join(""))
}

const causeColors: Readonly<Record<string, string>> = { concurrent: "#d62728", "clock-skew": "#9467bd", tie: "#ff7f0e", "wiped-disk": "#8c564b", "removed-region": "#7f7f7f", missing: "#000000" }

/** Conflicts per second (bars) and every lost write (a dot at its acknowledgement, colored by cause). */
export const conflicts = (frame: Frame, report: RunReport.RunReport): string => {
  const top = 24
  const bottom = 130
  const counts = new Map<number, Map<string, number>>()
  for (const conflict of report.conflicts) {
    const second = Math.floor(conflict.atMs / 1000)
    const byKey = counts.get(second) ?? new Map<string, number>()
    byKey.set("conflict", (byKey.get("conflict") ?? 0) + 1)
    counts.set(second, byKey)
  }
  const maxValue = Math.max(1, ...[...counts.values()].map((byKey) => byKey.get("conflict") ?? 0))
  const dots = report.lostWrites.map(
    (lost, index) =>
      `<circle class="lost-write" cx="${frame.scale.x(lost.acknowledgedAtMs)}" cy="${bottom - 6 - (index % 5) * 7}" r="3.5" fill="${causeColors[lost.cause] ?? "#000"}"><title>${Svg.escape(`${lost.change} ${lost.op} ${lost.tuple} (${lost.region}, ${Svg.timeText(lost.acknowledgedAtMs)}): ${lost.cause}`)}</title></circle>`
  )
  const body = [
    Svg.bands(frame.scale, frame.bands, top, bottom),
    Svg.valueAxis(frame.scale, maxValue, top, bottom, ""),
    stackedSeconds(frame, counts, [["conflict", "#1f77b4"]], top, bottom, maxValue),
    ...dots,
    legend([["conflicts per second", "#1f77b4"], ...Object.entries(causeColors).map(([cause, color]) => [`lost: ${cause}`, color] as const)], 14),
    Svg.timeAxis(frame.scale, bottom)
  ]
  return Svg.svg(bottom + 22, "conflicts and lost writes over time", body.join(""))
}

// ---------------------------------------------------------------------------------------------
// Space-time diagram

/** Messages drawn at most; a longer run shows a window of them. */
export const diagramMessagesMax = 400
/** Messages shown before the first fault, when the window starts there. */
const diagramLeadMessages = 60

/** The messages the diagram shows: all of a short run, else a window opening just before the first fault. */
export const diagramMessages = (report: RunReport.RunReport, bandsList: ReadonlyArray<Svg.Band>): ReadonlyArray<RunReport.MessageEvent> => {
  const messages = report.events.filter((event): event is RunReport.MessageEvent => event.type === "message")
  if (messages.length <= diagramMessagesMax) return messages
  const firstFaultMs = bandsList[0]?.startMs ?? 0
  const atFault = messages.findIndex((message) => message.atMs >= firstFaultMs)
  const start = Math.max(0, Math.min(messages.length - diagramMessagesMax, (atFault < 0 ? 0 : atFault) - diagramLeadMessages))
  return messages.slice(start, start + diagramMessagesMax)
}

/** Messages between regions: a column per region, time going down, drops marked with a cross, fault bands shaded. */
export const spaceTime = (frame: Frame, report: RunReport.RunReport): string | undefined => {
  const messages = diagramMessages(report, frame.bands)
  if (messages.length === 0) return undefined
  const startMs = messages[0]!.atMs
  const endMs = Math.max(...messages.map((message) => message.endedAtMs))
  const top = 40
  const height = Math.min(1600, Math.max(300, messages.length * 4))
  const y = (atMs: number) => Svg.round(top + ((atMs - startMs) / Math.max(1, endMs - startMs)) * height)
  const columnX = new Map(report.regions.map((region, index) => [region.id, Svg.round(Svg.marginLeftPx + (index + 0.5) * ((Svg.widthPx - Svg.marginLeftPx) / report.regions.length))]))
  const columns = report.regions.map((region) => `<line class="column" x1="${columnX.get(region.id)}" y1="${top}" x2="${columnX.get(region.id)}" y2="${top + height}"/><text class="lane-label region" x="${columnX.get(region.id)}" y="${top - 10}" text-anchor="middle">${Svg.escape(region.id)}</text>`)
  const arrows = messages.map((message) => {
    const [x1, y1] = [columnX.get(message.fromRegion) ?? 0, y(message.atMs)]
    const [x2Full, y2] = [columnX.get(message.toRegion) ?? 0, y(message.endedAtMs)]
    const x2 = message.fate === "lost" ? Svg.round(x1 + (x2Full - x1) / 3) : x2Full
    const y2Drawn = message.fate === "lost" ? y1 + 6 : y2
    const title = `<title>${Svg.escape(`${message.label} ${message.from} → ${message.to}, sent ${Svg.timeText(message.atMs)}, ${message.fate} ${Svg.timeText(message.endedAtMs)}`)}</title>`
    const cross = message.fate === "delivered" ? "" : `<path class="drop" d="M${x2 - 4} ${y2Drawn - 4}l8 8m0 -8l-8 8"/>`
    return `<g class="msg msg-${message.fate}"><line x1="${x1}" y1="${y1}" x2="${x2}" y2="${y2Drawn}"/>${cross}${title}</g>`
  })
  const ticks: Array<string> = []
  const step = Svg.niceStep(endMs - startMs, 8)
  for (let atMs = Math.ceil(startMs / step) * step; atMs <= endMs; atMs += step) ticks.push(`<text class="axis" x="${Svg.marginLeftPx - 6}" y="${y(atMs) + 4}" text-anchor="end">${Svg.timeText(atMs)}</text><line class="grid" x1="${Svg.marginLeftPx}" y1="${y(atMs)}" x2="${Svg.widthPx - 20}" y2="${y(atMs)}"/>`)
  const shaded = frame.bands
    .filter((band) => band.endMs >= startMs && band.startMs <= endMs)
    .map((band) => `<rect class="fault-band" x="${Svg.marginLeftPx}" y="${y(Math.max(band.startMs, startMs))}" width="${Svg.widthPx - Svg.marginLeftPx - 20}" height="${Svg.round(y(Math.min(band.endMs, endMs)) - y(Math.max(band.startMs, startMs)))}"><title>${Svg.escape(band.label)}</title></rect>`)
  return Svg.svg(top + height + 20, "space-time diagram of messages between regions", [...shaded, ...ticks, ...columns, ...arrows].join(""))
}
