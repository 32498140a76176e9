// The Worker sees exactly the configuration the test config declares:
// wrangler.toml's [vars], with the test's overrides, and
// nothing from a developer's .dev.vars, .env or shell (test/vitest.config.ts).
import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';

/** wrangler.toml's [vars], with test/vitest.config.ts's bindings over them. */
const DECLARED_VARS = { HEARTBEAT_MS: '300', RETRY_MS: '1500', MAX_RUN_SECONDS: '3600', RUN_TTL_SECONDS: '86400' };
/** What the vitest plugin adds for itself. */
const isPluginBinding = (name: string) => name.startsWith('__VITEST_POOL_WORKERS_');

describe('the test environment', () => {
  it('holds exactly the declared variables, whatever .dev.vars, .env or the shell hold', () => {
    // Every value from those files or the shell is a string; bindings (objects, namespaces) are not.
    const strings = Object.fromEntries(Object.entries(env).filter(([name, value]) => typeof value === 'string' && !isPluginBinding(name)));
    expect(strings).toEqual(DECLARED_VARS);
  });
});
