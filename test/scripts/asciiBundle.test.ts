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
  it("escapes every character outside ASCII, the astral ones as one escape", () => {
    const escaped = escapeNonAscii("/* 21 \u2192 63 MB, caf\u00e9, \u{1F600} */ x")
    expect(escaped).toBe("/* 21 \\u{2192} 63 MB, caf\\u{e9}, \\u{1f600} */ x")
    expect(isAscii(escaped)).toBe(true)
    expect(isAscii("plain")).toBe(true)
    expect(isAscii("caf\u00e9")).toBe(false)
  })

  it("leaves a script that esbuild wrote behaving the same: only its comments held such characters", () => {
    const source = '"use strict";\n/**\n * 21 \u2192 63 MB\n */\nmodule.exports = ["\\u2192", /\\u00e9/.test("\\u00e9")];\n'
    const run = (text: string) => {
      const module = { exports: undefined as unknown }
      vm.runInNewContext(text, { module })
      return module.exports
    }
    expect(run(escapeNonAscii(source))).toEqual(run(source))
    expect(run(escapeNonAscii(source))).toEqual(["\u2192", true])
  })

  it("every bundle of the build is ASCII (npm test builds first)", () => {
    const manifest = JSON.parse(fs.readFileSync(path.join(repository, "dist", "manifest.json"), "utf8")) as { readonly entries: Record<string, string> }
    const bundles = Object.values(manifest.entries)
    expect(bundles.length).toBeGreaterThan(0)
    for (const bundle of bundles) expect({ bundle, ascii: isAscii(fs.readFileSync(path.join(repository, bundle), "utf8")) }).toEqual({ bundle, ascii: true })
  })
})
