#!/usr/bin/env node
// `npm test`: build the static client, then every suite, then one closing line
// "N passed, N failed" (CI reads it). Suites:
//   unit     inside workerd (Worker + Durable Objects + SQLite)
//   node     end to end against `wrangler dev`, client library, agents
//   browser  Debian Chromium via playwright-core (skipped, loudly, without Chromium)
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const outDir = join('test-results');
rmSync(outDir, { recursive: true, force: true });
mkdirSync(outDir, { recursive: true });

const suites = [
  { name: 'unit', config: 'test/vitest.config.ts' },
  { name: 'node', config: 'test/node.vitest.config.ts' },
  { name: 'browser', config: 'test/browser.vitest.config.ts', needs: CHROMIUM },
];

function run(cmd, args) {
  const res = spawnSync(cmd, args, { stdio: 'inherit', env: process.env });
  return res.status ?? 1;
}

let passed = 0;
let failed = 0;
let skipped = 0;
const notes = [];

if (run(process.execPath, ['scripts/build-client.mjs']) !== 0) {
  console.error('client build failed');
  failed++;
}

for (const suite of suites) {
  if (suite.needs && !existsSync(suite.needs)) {
    notes.push(`${suite.name} tests NOT RUN: no Chromium at ${suite.needs} (apt-get install -y chromium, then npm run test:browser)`);
    continue;
  }
  const report = join(outDir, `${suite.name}.json`);
  console.log(`\n=== ${suite.name} tests (${suite.config}) ===`);
  const code = run('vitest', [
    'run',
    '--config',
    suite.config,
    '--reporter=default',
    '--reporter=json',
    `--outputFile.json=${report}`,
    '--passWithNoTests',
  ]);
  if (!existsSync(report)) {
    notes.push(`${suite.name}: vitest exited ${code} without a report`);
    failed++;
    continue;
  }
  const json = JSON.parse(readFileSync(report, 'utf8'));
  passed += json.numPassedTests;
  failed += json.numFailedTests;
  skipped += json.numPendingTests + json.numTodoTests;
  // A suite that crashed outside any test (e.g. a file failed to load) still fails the run.
  if (code !== 0 && json.numFailedTests === 0) {
    notes.push(`${suite.name}: vitest exited ${code} (failed test files: ${json.numFailedTestSuites})`);
    failed++;
  }
}

console.log('');
for (const note of notes) console.log(`note: ${note}`);
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(failed > 0 ? 1 : 0);
