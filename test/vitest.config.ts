// Tests inside workerd: real Durable Objects with SQLite storage, the Worker's
// own fetch handler, alarms fired on purpose.
import { cloudflareTest } from '@cloudflare/vitest-plugin';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  plugins: [
    cloudflareTest({
      main: './src/index.ts',
      wrangler: { configPath: './wrangler.toml' },
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
