/**
 * Strict UTF-8 decoding of a configuration file's bytes: invalid UTF-8 is a `ConfigError`
 * naming its byte offset and line, not replacement characters that would end up in an id or
 * endpoint.
 */
import { Either } from "effect"
import * as ConfigError from "./ConfigError.js"

/** The text of the bytes, or an error at the first byte that is not well-formed UTF-8. */
export const decodeUtf8 = (bytes: Uint8Array): Either.Either<string, ConfigError.ConfigError> =>
  Either.try({
    try: () => new TextDecoder("utf-8", { fatal: true }).decode(bytes),
    catch: () => invalidUtf8Error(bytes, invalidUtf8Offset(bytes) ?? 0)
  })

const invalidUtf8Error = (bytes: Uint8Array, offset: number): ConfigError.ConfigError => {
  const lineStart = bytes.lastIndexOf(0x0a, offset - 1) + 1
  let line = 1
  for (let index = 0; index < lineStart; index++) if (bytes[index] === 0x0a) line++
  const column = offset - lineStart + 1
  const shown = Array.from(bytes.subarray(offset, offset + 4), (byte) => `0x${byte.toString(16).padStart(2, "0")}`).join(" ")
  return ConfigError.make(`yaml:${line}:${column}`, `bytes ${shown}`, "UTF-8 text", `invalid UTF-8 at byte offset ${offset}, line ${line}`)
}

/**
 * The offset of the first byte that does not begin a well-formed UTF-8 sequence (the Unicode
 * standard's table of well-formed byte sequences: no overlong forms, surrogates or code points
 * above U+10FFFF), or undefined when every sequence is well formed.
 */
const invalidUtf8Offset = (bytes: Uint8Array): number | undefined => {
  let index = 0
  while (index < bytes.length) {
    const length = utf8SequenceLength(bytes, index)
    if (length === 0) return index
    index += length
  }
  return undefined
}

/** Lengths and allowed second bytes of a sequence, by lead byte; a lead not listed is invalid. */
const utf8Leads: ReadonlyArray<readonly [leadLow: number, leadHigh: number, length: number, secondLow: number, secondHigh: number]> = [
  [0x00, 0x7f, 1, 0, 0],
  [0xc2, 0xdf, 2, 0x80, 0xbf],
  [0xe0, 0xe0, 3, 0xa0, 0xbf],
  [0xe1, 0xec, 3, 0x80, 0xbf],
  [0xed, 0xed, 3, 0x80, 0x9f],
  [0xee, 0xef, 3, 0x80, 0xbf],
  [0xf0, 0xf0, 4, 0x90, 0xbf],
  [0xf1, 0xf3, 4, 0x80, 0xbf],
  [0xf4, 0xf4, 4, 0x80, 0x8f]
]

/** The length of the well-formed sequence starting at `index`, or 0 when it is not well formed. */
const utf8SequenceLength = (bytes: Uint8Array, index: number): number => {
  const lead = bytes[index] ?? 0
  const row = utf8Leads.find(([low, high]) => lead >= low && lead <= high)
  if (row === undefined) return 0
  const [, , length, secondLow, secondHigh] = row
  if (length === 1) return 1
  const second = bytes[index + 1]
  if (second === undefined || second < secondLow || second > secondHigh) return 0
  for (let offset = 2; offset < length; offset++) {
    const next = bytes[index + offset]
    if (next === undefined || next < 0x80 || next > 0xbf) return 0
  }
  return length
}
