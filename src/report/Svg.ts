/**
 * The few SVG pieces the HTML report draws with: escaped text, a time axis shared by every
 * plot (so a moment sits at the same x in all of them), shaded fault bands, paths and bars.
 * Output is inline SVG markup (no xmlns, no links, no script), so a report stays one file that
 * opens offline.
 */

/** Escapes text for HTML and SVG content and attribute values. */
export const escape = (text: string): string =>
  text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;").replaceAll('"', "&quot;").replaceAll("'", "&#39;")

/** Width of every time plot, in SVG units. */
export const widthPx = 1000
/** Left margin for lane and axis labels. */
export const marginLeftPx = 160
const marginRightPx = 20

/** Rounds a coordinate so the markup stays short. */
export const round = (value: number): number => Math.round(value * 10) / 10

/** Maps run time in ms to x. */
export interface TimeScale {
  readonly durationMs: number
  readonly x: (atMs: number) => number
}

/** The time scale of a run of `durationMs`. */
export const timeScale = (durationMs: number): TimeScale => {
  const span = Math.max(1, durationMs)
  const plotWidth = widthPx - marginLeftPx - marginRightPx
  return { durationMs: span, x: (atMs) => round(marginLeftPx + (Math.min(Math.max(atMs, 0), span) / span) * plotWidth) }
}

/** A "nice" step for about `count` ticks over `span`. */
export const niceStep = (span: number, count: number): number => {
  const raw = Math.max(span, 1e-9) / count
  const power = 10 ** Math.floor(Math.log10(raw))
  const factor = [1, 2, 5, 10].find((candidate) => candidate * power >= raw) ?? 10
  return factor * power
}

/** Text of a time in ms, as seconds when long. */
export const timeText = (atMs: number): string => (atMs >= 1000 ? `${round(atMs / 1000)} s` : `${round(atMs)} ms`)

/** A time axis along `y`, with ticks and labels. */
export const timeAxis = (scale: TimeScale, y: number): string => {
  const step = niceStep(scale.durationMs, 10)
  const ticks: Array<string> = []
  for (let atMs = 0; atMs <= scale.durationMs + 1e-9; atMs += step) {
    const x = scale.x(atMs)
    ticks.push(`<line class="tick" x1="${x}" y1="${y}" x2="${x}" y2="${y + 4}"/><text class="axis" x="${x}" y="${y + 15}" text-anchor="middle">${timeText(atMs)}</text>`)
  }
  return `<line class="axis-line" x1="${marginLeftPx}" y1="${y}" x2="${scale.x(scale.durationMs)}" y2="${y}"/>${ticks.join("")}`
}

/** A time span to shade. */
export interface Band {
  readonly startMs: number
  readonly endMs: number
  readonly label: string
}

/** Shaded fault bands from `top` to `bottom`. */
export const bands = (scale: TimeScale, list: ReadonlyArray<Band>, top: number, bottom: number): string =>
  list
    .map((band) => {
      const x = scale.x(band.startMs)
      const width = Math.max(1, round(scale.x(band.endMs) - x))
      return `<rect class="fault-band" x="${x}" y="${top}" width="${width}" height="${round(bottom - top)}"><title>${escape(band.label)}</title></rect>`
    })
    .join("")

/** A value axis on the left with a few labelled grid lines. */
export const valueAxis = (scale: TimeScale, maxValue: number, top: number, bottom: number, unit: string): string => {
  const step = niceStep(maxValue, 4)
  const lines: Array<string> = []
  for (let value = 0; value <= maxValue + 1e-9; value += step) {
    const y = round(bottom - (value / maxValue) * (bottom - top))
    lines.push(`<line class="grid" x1="${marginLeftPx}" y1="${y}" x2="${scale.x(scale.durationMs)}" y2="${y}"/><text class="axis" x="${marginLeftPx - 6}" y="${y + 4}" text-anchor="end">${round(value)}${unit}</text>`)
  }
  return lines.join("")
}

/** An `<svg>` element of the plot width. */
export const svg = (heightPx: number, label: string, body: string): string =>
  `<svg class="plot" viewBox="0 0 ${widthPx} ${round(heightPx)}" width="${widthPx}" height="${round(heightPx)}" role="img" aria-label="${escape(label)}">${body}</svg>`

/** A polyline through points (already in SVG coordinates), starting afresh where `breaks[i]` is set. */
export const path = (points: ReadonlyArray<readonly [number, number]>, className: string, color: string, breaks: ReadonlyArray<boolean> = []): string =>
  points.length === 0
    ? ""
    : `<path class="${className}" stroke="${color}" d="${points.map(([x, y], index) => `${index === 0 || breaks[index] === true ? "M" : "L"}${round(x)} ${round(y)}`).join("")}"/>`

/** Colors for series, by index. */
export const palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"] as const

/** The color of the series at `index`. */
export const colorAt = (index: number): string => palette[index % palette.length]!
