// The browser bundles' budget: client + widget at most 20 KiB gzip, as
// scripts/build-client.mjs builds and measures them (static/client.js, static/widget.js).
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../support/dev-server';

const BUDGET_KIB = 20;

describe('browser bundles', () => {
  it(`client + widget stay within ${BUDGET_KIB} KiB gzip`, () => {
    const out = execFileSync(process.execPath, ['scripts/build-client.mjs'], { cwd: ROOT, encoding: 'utf8' });
    const total = /client \+ widget: ([\d.]+) KiB gzip/.exec(out)?.[1];
    expect(total, out).toBeDefined();
    expect(Number(total)).toBeLessThanOrEqual(BUDGET_KIB);
  });
});
