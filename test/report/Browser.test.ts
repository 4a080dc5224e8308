/**
 * The report page as a reader sees it: `report.html` of a failover run and of a failing canary
 * run, opened in headless Chromium (Debian's `chromium`, which `.ci/run` installs, driven by
 * playwright-core). The page must raise no console error, every plot must hold data (the lag
 * paths have points, the fault bands are drawn, the timeline has its lanes), the verdict is at
 * the top, and a screenshot of each page is kept under `reports/screenshots/`.
 *
 * Skipped, with the reason, where no Chromium is installed (CI installs it).
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { chromium } from "playwright-core"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as RunFolder from "../../src/report/RunFolder.js"
import { simulate } from "../../src/sim/Run.js"
import type { Scenario } from "../../src/sim/Scenario.js"
import * as SimReport from "../../src/sim/SimReport.js"
import * as Fixtures from "../sim/fixtures/scenarios.js"

const executablePath = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].find((candidate) => fs.existsSync(candidate))
const screenshots = path.resolve("reports/screenshots")
// The flags this closed network needs: no background connections, no sandbox as root.
const flags = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"]

/** Writes a run's report folder under `root` and returns the path of its `report.html`. */
const reportPage = (root: string, scenario: Scenario, seed: number, canary?: "keep-local"): string => {
  const simulation = simulate(scenario, seed, { messagesMax: 2_000, ...(canary === undefined ? {} : { canary }) })
  const report = SimReport.make(simulation, scenario, `npx inferadb-repl sim run ${scenario.name}.yaml --seed ${seed}`)
  const written = RunFolder.write(root, report, { now: new Date(0) })
  return path.join(written.directory, "report.html")
}

describe.skipIf(executablePath === undefined)("report.html in headless Chromium", () => {
  let root = ""
  let browser: Awaited<ReturnType<typeof chromium.launch>> | undefined

  beforeAll(async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), "inferadb-report-"))
    fs.mkdirSync(screenshots, { recursive: true })
    browser = await chromium.launch({ executablePath: executablePath!, headless: true, args: flags })
  }, 60_000)

  afterAll(async () => {
    await browser?.close()
    fs.rmSync(root, { recursive: true, force: true })
  })

  /** Opens a page, collecting console errors and uncaught exceptions. */
  const open = async (file: string) => {
    const page = await browser!.newPage({ viewport: { width: 1280, height: 900 } })
    const errors: Array<string> = []
    page.on("console", (message) => {
      if (message.type() === "error") errors.push(message.text())
    })
    page.on("pageerror", (error) => errors.push(error.message))
    // Any request leaving the file (a script, a font, an image on the network) is a finding.
    const requests: Array<string> = []
    page.on("request", (request) => {
      if (!request.url().startsWith("file://")) requests.push(request.url())
    })
    await page.goto(`file://${file}`, { waitUntil: "load" })
    return { page, errors, requests }
  }

  /** Points in every lag path of the page (`M`/`L` commands of the `d` attribute). */
  const lagPoints = (page: Awaited<ReturnType<typeof open>>["page"]) =>
    page.$$eval("path.lag-path", (paths) => paths.map((element) => (element.getAttribute("d") ?? "").split(/[ML]/).filter((part: string) => part.trim() !== "").length))

  it("a failover run: no console error, lag paths with points, fault bands, failover marks, the verdict at the top", async () => {
    const file = reportPage(root, Fixtures.load("scenarios/primary-failover.yaml"), 1)
    const { page, errors, requests } = await open(file)
    expect(errors).toEqual([])
    expect(requests).toEqual([])
    expect(await page.locator("h1 .verdict").innerText()).toBe("valid")
    const points = await lagPoints(page)
    expect(points.length).toBeGreaterThan(0)
    expect(Math.max(...points)).toBeGreaterThan(10)
    expect(await page.locator("rect.fault-band").count()).toBeGreaterThan(0)
    expect(await page.locator("text.mark-label").allTextContents()).toEqual(expect.arrayContaining([expect.stringContaining("promoted"), expect.stringContaining("handed back")]))
    // Every plot is rendered with a size, none collapsed to nothing.
    const sizes = await page.$$eval("svg.plot", (plots) => plots.map((plot) => plot.getBoundingClientRect().height))
    expect(sizes.length).toBeGreaterThanOrEqual(4)
    for (const height of sizes) expect(height).toBeGreaterThan(20)
    const shot = path.join(screenshots, "failover.png")
    await page.screenshot({ path: shot, fullPage: true })
    expect(fs.statSync(shot).size).toBeGreaterThan(10_000)
    await page.close()
  }, 120_000)

  it("a failing canary run: the verdict names the failed check, and the page still draws its plots", async () => {
    const file = reportPage(root, Fixtures.load("scenarios/crash-restart.yaml"), 1, "keep-local")
    const { page, errors, requests } = await open(file)
    expect(errors).toEqual([])
    expect(requests).toEqual([])
    expect(await page.locator("h1 .verdict").innerText()).toMatch(/^INVALID: .*safety/)
    expect((await lagPoints(page)).some((count) => count > 1)).toBe(true)
    expect(await page.locator("rect.fault-band").count()).toBeGreaterThan(0)
    const shot = path.join(screenshots, "keep-local-canary.png")
    await page.screenshot({ path: shot, fullPage: true })
    expect(fs.statSync(shot).size).toBeGreaterThan(10_000)
    await page.close()
  }, 120_000)
})
