// Node-side tests: end to end against `wrangler dev`, the client library, agents' upstream fakes.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/e2e/**/*.test.ts', 'test/client/**/*.test.ts', 'test/agents/**/*.test.ts', 'test/human/**/*.test.ts'],
    environment: 'node',
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // wrangler dev instances are heavy on 2 cores; run files one after another.
    fileParallelism: false,
  },
});
