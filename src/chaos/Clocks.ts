/**
 * Node clocks of a chaos run, through libfaketime (Debian package `faketime`): each node runs
 * with `LD_PRELOAD` of the library and its own timestamp file, which holds the node's offset
 * from the real wall clock in seconds and its rate (`+0.020 x1.000050` = 20 ms ahead, 50 ppm
 * fast). `FAKETIME_NO_CACHE` makes the library read the file on every clock call, so rewriting
 * it shifts a running node's clock at once: that is how a clock jump is applied. Only the wall
 * clock is faked (`FAKETIME_DONT_FAKE_MONOTONIC`): Node's timers and the node's leases run on
 * the monotonic clock, as on a real machine whose NTP steps the wall clock.
 */
import * as fs from "node:fs"

/** Where Debian installs the library. */
export const libraryPaths = ["/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1", "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1", "/usr/lib/faketime/libfaketime.so.1"]

/** The installed library, or undefined. */
export const library = (): string | undefined => libraryPaths.find((candidate) => fs.existsSync(candidate))

/** One node's clock error. */
export interface NodeClock {
  offsetMs: number
  readonly driftPpm: number
  readonly file: string
}

/** The content of a timestamp file: a signed offset in seconds and a rate. */
export const fileText = (clock: Pick<NodeClock, "offsetMs" | "driftPpm">): string => {
  const seconds = clock.offsetMs / 1000
  const rate = 1 + clock.driftPpm / 1_000_000
  return `${seconds >= 0 ? "+" : "-"}${Math.abs(seconds).toFixed(3)} x${rate.toFixed(6)}\n`
}

/** Writes the clock's file (atomically, so the library never reads half a line). */
export const write = (clock: NodeClock): void => {
  const temporary = `${clock.file}.tmp`
  fs.writeFileSync(temporary, fileText(clock))
  fs.renameSync(temporary, clock.file)
}

/** The environment a node's process needs for its clock. */
export const environment = (libraryPath: string, clock: NodeClock): Readonly<Record<string, string>> => ({
  LD_PRELOAD: libraryPath,
  FAKETIME_TIMESTAMP_FILE: clock.file,
  FAKETIME_NO_CACHE: "1",
  FAKETIME_DONT_FAKE_MONOTONIC: "1"
})
