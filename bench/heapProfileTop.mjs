/**
 * `node bench/heapProfileTop.mjs FILE [TOP]`: the functions a V8 sampling heap profile (a
 * `.heapprofile`, such as `bench/survivorProfile.mjs` writes) puts the most bytes under, each
 * with its share of the profile's total. A function is named by where it starts in our sources
 * (the bundle's source maps are followed, so `dist/` code reads as `src/...:line`), and what V8
 * inlined into it counts as its own: an lmdb-js `put` inlined into the store's writer shows as the
 * writer. TOP (default 30) rows, largest first.
 */
import * as fs from "node:fs"
import { SourceMap } from "node:module"

const [file, topText = "30"] = process.argv.slice(2)
if (file === undefined) {
  process.stderr.write("usage: node bench/heapProfileTop.mjs FILE [TOP]\n")
  process.exit(2)
}
const profile = JSON.parse(fs.readFileSync(file, "utf8"))

/** The source map of a bundle file, read once; null where there is none. */
const maps = new Map()
const mapOf = (url) => {
  if (!maps.has(url)) {
    let map = null
    try {
      if (url.startsWith("file://")) map = new SourceMap(JSON.parse(fs.readFileSync(`${new URL(url).pathname}.map`, "utf8")))
    } catch {
      // No map: the location stays the bundle's.
    }
    maps.set(url, map)
  }
  return maps.get(url)
}

const placeOf = ({ functionName, url, lineNumber, columnNumber }) => {
  const entry = mapOf(url)?.findEntry(lineNumber, columnNumber)
  const source = entry?.originalSource ?? url
  const line = (entry?.originalSource === undefined ? lineNumber : entry.originalLine) + 1
  const shortSource = source.replace(/^.*node_modules\//, "node_modules/").replace(/^.*\/src\//, "src/")
  return `${functionName || "(anonymous)"} ${shortSource}:${line}`
}

const bytes = new Map()
let total = 0
const visit = (node) => {
  total += node.selfSize
  if (node.selfSize > 0) {
    const place = placeOf(node.callFrame)
    bytes.set(place, (bytes.get(place) ?? 0) + node.selfSize)
  }
  for (const child of node.children) visit(child)
}
visit(profile.head)

process.stdout.write(`${(total / 2 ** 20).toFixed(0)} MiB sampled\n`)
for (const [place, size] of [...bytes].sort((a, b) => b[1] - a[1]).slice(0, Number(topText))) {
  process.stdout.write(`${((100 * size) / total).toFixed(2).padStart(6)}%  ${place}\n`)
}
