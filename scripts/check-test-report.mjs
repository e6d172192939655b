// Fails when a vitest JSON report holds a skipped or todo test, or no test at all: CI must run everything. Names the
// tests that passed only on their second try, so a timing accident stays visible.
import { readFileSync } from 'node:fs';

let failed = false;
for (const file of process.argv.slice(2)) {
  const report = JSON.parse(readFileSync(file, 'utf8'));
  const skipped = [];
  const retried = [];
  for (const suite of report.testResults ?? []) {
    for (const test of suite.assertionResults ?? []) {
      if (test.status === 'skipped' || test.status === 'pending' || test.status === 'todo')
        skipped.push(`${suite.name}: ${test.fullName}`);
      if (test.status === 'passed' && (test.failureMessages ?? []).length > 0) retried.push(`${test.fullName}`);
    }
  }
  console.log(`${file}: ${report.numPassedTests} passed, ${report.numFailedTests} failed, ${skipped.length} skipped`);
  if (retried.length > 0) console.log(`${file}: passed on a second try:\n  ${retried.join('\n  ')}`);
  if (report.numTotalTests === 0) {
    console.error(`${file}: no test ran`);
    failed = true;
  }
  if (skipped.length > 0) {
    console.error(`${file}: skipped tests are not allowed in CI:\n  ${skipped.join('\n  ')}`);
    failed = true;
  }
}
process.exit(failed ? 1 : 0);
