// The Worker sees exactly the configuration the test config declares:
// wrangler.toml's [vars] and bindings, with the test's overrides, and
// nothing from a developer's .dev.vars, .env or shell (test/vitest.config.ts).
import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';

/** wrangler.toml's [vars], with test/vitest.config.ts's bindings over them. */
const DECLARED_VARS = { HEARTBEAT_MS: '300', RETRY_MS: '1500', MAX_RUN_SECONDS: '3600', RUN_TTL_SECONDS: '86400' };
/** wrangler.toml's bindings. */
const DECLARED_BINDINGS = ['ASSETS', 'AUTH_LIMITER', 'RUNS', 'START_LIMITER', 'USAGE'];
/** What the vitest plugin adds for itself. */
const isPluginBinding = (name: string) => name.startsWith('__VITEST_POOL_WORKERS_');

describe('the test environment', () => {
  it('holds exactly the declared variables and bindings, whatever .dev.vars, .env or the shell hold', () => {
    const names = Object.keys(env).filter((name) => !isPluginBinding(name));
    expect(names.sort()).toEqual([...DECLARED_BINDINGS, ...Object.keys(DECLARED_VARS)].sort());
    const vars = Object.fromEntries(Object.entries(env).filter(([name]) => name in DECLARED_VARS));
    expect(vars).toEqual(DECLARED_VARS);
  });
});
