import { defineConfig } from 'vitest/config';

// The e2e tests start real sshd and nginx processes; they are slow-ish and must not
// fight over the two cores, so files run with limited parallelism.
export default defineConfig({
  test: {
    setupFiles: ['test/support/require-ts.ts'],
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    maxWorkers: 2,
    reporters: ['default'],
  },
});
