import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    // the native addon and its thread pools are kept out of vitest's worker threads
    pool: 'forks',
    testTimeout: 120_000,
    hookTimeout: 300_000,
  },
});
