/**
 * The disk's floor under the lag (`bench/commitFloor.ts`): it times the commits it was asked
 * for, its quantiles are in order, and it leaves no directory behind.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import { describe, expect, it } from "vitest"
import * as CommitFloor from "../../bench/commitFloor.js"

const floorDirs = () => fs.readdirSync(os.tmpdir()).filter((name) => name.startsWith(CommitFloor.dirPrefix))

describe("commitFloor", () => {
  it("times the commits asked for, durable ones taking some time, p50 ≤ p99 ≤ max, and removes its directory", async () => {
    const before = floorDirs()
    const floor = await CommitFloor.measure({ commits: 20, gapMs: 1 })
    expect(floor).toMatchObject({ commits: 20, gapMs: 1 })
    expect(floor.p50Ms).toBeGreaterThan(0)
    expect(floor.p50Ms).toBeLessThanOrEqual(floor.p99Ms)
    expect(floor.p99Ms).toBeLessThanOrEqual(floor.maxMs)
    expect(floorDirs()).toEqual(before)
  })
})
