/**
 * Drift check for the committed generated protobuf code: regenerating from `proto/` with the
 * pinned buf and ts-proto must reproduce `src/proto` byte for byte, so a proto edit without
 * `npm run codegen` (or a hand edit of generated code) fails here. Skipped, with the reason
 * printed, only when buf cannot run on this machine.
 */
import { describe, expect, it } from "@effect/vitest"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..")
const buf = path.join(root, "node_modules", ".bin", "buf")
const committed = path.join(root, "src", "proto")

/** Why buf cannot run here, or undefined when it can. */
const bufUnavailable = (): string | undefined => {
  try {
    execFileSync(buf, ["--version"], { cwd: root, stdio: "pipe" })
    return undefined
  } catch (error) {
    return error instanceof Error ? error.message : String(error)
  }
}

/** Every file under `dir`, as paths relative to it, sorted. */
const filesUnder = (dir: string): Array<string> =>
  fs
    .readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => path.relative(dir, path.join(entry.parentPath, entry.name)))
    .sort()

const unavailable = bufUnavailable()
if (unavailable !== undefined) console.warn(`codegen drift check skipped: buf cannot run (${unavailable})`)

describe("codegen", () => {
  it.skipIf(unavailable !== undefined)("regenerating from proto/ reproduces the committed src/proto exactly", () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), "inferadb-codegen-"))
    try {
      execFileSync(buf, ["generate", "proto", "--template", "proto/buf.gen.yaml", "-o", out], { cwd: root, stdio: "pipe" })
      const generated = path.join(out, "src", "proto")
      expect(filesUnder(generated)).toStrictEqual(filesUnder(committed))
      for (const file of filesUnder(generated)) {
        const fresh = fs.readFileSync(path.join(generated, file), "utf8")
        expect(fresh, `src/proto/${file} differs from what proto/ generates; run npm run codegen`).toBe(fs.readFileSync(path.join(committed, file), "utf8"))
      }
    } finally {
      fs.rmSync(out, { recursive: true, force: true })
    }
  })
})
