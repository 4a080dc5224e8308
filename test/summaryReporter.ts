/**
 * Prints the plain closing line `N passed, N failed, N skipped` after a vitest run, so tools
 * that read only the last line of a test run (our CI among them) see the counts.
 */
import type { File, Task } from "@vitest/runner"
import type { Reporter } from "vitest/reporters"

const leaves = (tasks: ReadonlyArray<Task>): Array<Task> =>
  tasks.flatMap((task) => ("tasks" in task && Array.isArray(task.tasks) ? leaves(task.tasks) : [task]))

export default class SummaryReporter implements Reporter {
  onFinished(files: ReadonlyArray<File> = []): void {
    const tests = leaves(files)
    const passed = tests.filter((task) => task.result?.state === "pass").length
    const failed = tests.filter((task) => task.result?.state === "fail").length + files.filter((file) => file.result?.state === "fail" && file.tasks.length === 0).length
    const skipped = tests.filter((task) => task.mode === "skip" || task.mode === "todo").length
    process.stdout.write(`\n${passed} passed, ${failed} failed, ${skipped} skipped\n`)
  }
}
