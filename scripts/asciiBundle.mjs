/**
 * A bundle written as ASCII only, so that V8 keeps its source as a one-byte string.
 *
 * V8 holds a script's source for as long as the script lives (lazy compilation and
 * `Function.prototype.toString` read it again), as one byte per character when every character
 * fits in Latin-1 and as two otherwise. esbuild escapes every character outside ASCII in the code
 * it writes (its default `charset: "ascii"`), but not in the comments it keeps: one "→" in a kept
 * comment made the 4 MB command-line bundle an 8 MB string in every `serve` process and every
 * swarm worker (a heap snapshot of an idle `serve`: 7.6 MB, its largest object).
 *
 * So what remains outside ASCII, which is only ever comment text, is written as `\uXXXX` escapes,
 * one per UTF-16 code unit: the one form that means the same character in a comment, a string, a
 * template and a regular expression with or without the `u` flag, should esbuild ever leave one
 * in code. A column after such a character on the same line moves, which only a source map
 * position on the rest of that line would notice.
 */

/** `text` with every UTF-16 code unit outside ASCII written as a `\uXXXX` escape. */
export const escapeNonAscii = (text) => text.replace(/[^\x00-\x7f]/g, (unit) => `\\u${unit.charCodeAt(0).toString(16).padStart(4, "0")}`)

/** Whether every character of `text` is ASCII. */
export const isAscii = (text) => !/[^\x00-\x7f]/u.test(text)
