// Tests inside workerd: real Durable Objects with SQLite storage, the Worker's
// own fetch handler, alarms fired on purpose.
import { cloudflareTest } from '@cloudflare/vitest-plugin';
import { defineConfig } from 'vitest/config';
import { hermeticWranglerConfig, makeThisProcessHermetic } from './support/hermetic.ts';

// Hermetic: the plugin reads a copy of wrangler.toml with nothing beside it,
// so a developer's .dev.vars, .env or shell settings never reach the Worker
// (test/support/hermetic.ts; test/unit/hermetic-env.test.ts checks it).
makeThisProcessHermetic();

export default defineConfig({
  plugins: [
    cloudflareTest({
      main: './src/index.ts',
      wrangler: { configPath: hermeticWranglerConfig() },
      miniflare: {
        // Short heartbeats so keepalive behaviour is observable in a test.
        bindings: { HEARTBEAT_MS: '300', RETRY_MS: '1500' },
      },
    }),
  ],
  test: {
    include: ['test/unit/**/*.test.ts'],
    testTimeout: 30_000,
  },
});
