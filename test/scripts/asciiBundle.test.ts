/**
 * The build writes its bundles as ASCII (`scripts/asciiBundle.mjs`), so that V8 keeps each
 * bundle's source as a one-byte string: esbuild escapes what it writes as code, and the escape
 * here covers what it keeps as comment text.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import * as vm from "node:vm"
import { describe, expect, it } from "vitest"
import { escapeNonAscii, isAscii } from "../../scripts/asciiBundle.mjs"

const repository = path.resolve(import.meta.dirname, "../..")

describe("asciiBundle", () => {
  it("escapes every UTF-16 code unit outside ASCII, an astral character as its two surrogates", () => {
    const escaped = escapeNonAscii("/* 21 \u2192 63 MB, caf\u00e9, \u{1F600} */ x")
    expect(escaped).toBe("/* 21 \\u2192 63 MB, caf\\u00e9, \\ud83d\\ude00 */ x")
    expect(isAscii(escaped)).toBe(true)
    expect(isAscii("plain")).toBe(true)
    expect(isAscii("caf\u00e9")).toBe(false)
  })

  it("leaves a script behaving the same, in comments and, should esbuild leave one there, in code", () => {
    const run = (text: string) => {
      const module = { exports: undefined as unknown }
      vm.runInNewContext(text, { module })
      return module.exports
    }
    // As esbuild writes: only the comment holds characters outside ASCII.
    const written = '"use strict";\n/**\n * 21 \u2192 63 MB\n */\nmodule.exports = ["\\u2192", /\\u00e9/.test("\\u00e9")];\n'
    expect(run(escapeNonAscii(written))).toEqual(run(written))
    expect(run(escapeNonAscii(written))).toEqual(["\u2192", true])
    // Raw characters in a string, a template and regular expressions with and without `u`.
    const raw = 'module.exports = ["\u2192\u{1F600}", `caf\u00e9`, /^caf\u00e9$/.test("caf\u00e9"), /^\u{1F600}$/u.test("\u{1F600}"), /^.$/u.test("\u{1F600}")];'
    expect(isAscii(raw)).toBe(false)
    expect(run(escapeNonAscii(raw))).toEqual(run(raw))
    expect(run(escapeNonAscii(raw))).toEqual(["\u2192\u{1F600}", "caf\u00e9", true, true, true])
  })

  it("every bundle of the build is ASCII (npm test builds first)", () => {
    const manifest = JSON.parse(fs.readFileSync(path.join(repository, "dist", "manifest.json"), "utf8")) as { readonly entries: Record<string, string> }
    const bundles = Object.values(manifest.entries)
    expect(bundles.length).toBeGreaterThan(0)
    for (const bundle of bundles) expect({ bundle, ascii: isAscii(fs.readFileSync(path.join(repository, bundle), "utf8")) }).toEqual({ bundle, ascii: true })
  })
})
