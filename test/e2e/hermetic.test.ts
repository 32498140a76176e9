// Tests never read a developer's .dev.vars or .env. Here a scratch project
// (wrangler.toml, with src/, static/ and scripts/ linked) holds hostile ones:
// wrangler itself would take them, the unit tests' config copy does not see
// them, and `wrangler dev` as the e2e tests start it ignores them.
import { copyFileSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { unstable_getMiniflareWorkerOptions } from 'wrangler';
import { afterAll, describe, expect, it } from 'vitest';
import { startDevServer } from '../support/dev-server';
import { ROOT, hermeticWranglerConfig } from '../support/hermetic';

/** A README-style local setup: a key that locks starts, profiles, an OpenAI account. */
const HOSTILE = {
  API_KEYS: 'developers-own-key',
  PROFILES: JSON.stringify({ docs: { agent: 'openai', model: 'llama3.2' } }),
  OPENAI_API_KEY: 'sk-developers-own',
  OPENAI_BASE_URL: 'http://127.0.0.1:11434/v1',
  TOKEN_SECRET: 'a-developers-token-secret-of-32-chars',
};
/** The built-in profiles that can run with wrangler.toml alone (the model agents need a key or binding). */
const RUNNABLE_BUILT_INS = ['demo'];
const dotenv = (vars: Record<string, string>) =>
  `${Object.entries(vars)
    .map(([k, v]) => `${k}='${v}'`)
    .join('\n')}\n`;

const scratchDirs: string[] = [];
/** A project directory like the repository's, with `file` (`.dev.vars` or `.env`) holding HOSTILE. */
function scratchProject(file: '.dev.vars' | '.env'): string {
  const dir = mkdtempSync(join(tmpdir(), 'edgestream-hostile-'));
  scratchDirs.push(dir);
  copyFileSync(join(ROOT, 'wrangler.toml'), join(dir, 'wrangler.toml'));
  for (const sub of ['src', 'static', 'scripts']) symlinkSync(join(ROOT, sub), join(dir, sub), 'junction');
  writeFileSync(join(dir, file), dotenv(HOSTILE));
  return join(dir, 'wrangler.toml');
}

/** The string bindings wrangler gives a Worker of this config (what the vitest plugin asks it for). */
function varsFor(configPath: string): Record<string, unknown> {
  const bindings = unstable_getMiniflareWorkerOptions(configPath).workerOptions.bindings ?? {};
  return Object.fromEntries(Object.entries(bindings).filter(([, value]) => typeof value === 'string'));
}

afterAll(() => {
  for (const dir of scratchDirs) rmSync(dir, { recursive: true, force: true });
});

describe.each(['.dev.vars', '.env'] as const)('a hostile %s beside wrangler.toml', (file) => {
  const config = scratchProject(file);

  it('is what wrangler alone would give the Worker (so the cases below could fail)', () => {
    expect(varsFor(config)).toMatchObject(HOSTILE);
  });

  it('does not reach the unit tests, which read a copy of wrangler.toml with nothing beside it', () => {
    const vars = varsFor(hermeticWranglerConfig(join(config, '..')));
    expect(Object.keys(vars).sort()).toEqual(['HEARTBEAT_MS', 'MAX_RUN_SECONDS', 'RETRY_MS', 'RUN_TTL_SECONDS']);
  });

  it('does not reach wrangler dev as the e2e tests start it: built-in profiles, anonymous starts', async () => {
    const server = await startDevServer({ config });
    try {
      const agents = (await (await fetch(`${server.url}/v1/agents`)).json()) as { agents: { name: string }[] };
      expect(agents.agents.map((a) => a.name).sort()).toEqual(RUNNABLE_BUILT_INS);
      const res = await fetch(`${server.url}/v1/runs`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ query: 'hermetic?' }),
      });
      expect(res.status).toBe(201);
      await res.body?.cancel();
    } finally {
      await server.stop();
    }
  });
});
