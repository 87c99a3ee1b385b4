import { defineConfig } from 'vitest/config';

// The suites that need the machine to themselves, run by `npm test` after all the others, one
// file at a time (`npm run test:alone` runs just them). Their files end in .alone.ts; the rest as
// in vitest.config.mts. The Mono deploys under load are here: fastcgi-mono-server4 itself loses
// about one request in 80,000–340,000 when other suites starve it of CPU, with no deploy and no
// supervisor running at all (README, "Tests and benchmark"), so a zero-failure test of switchyard's
// releases must not share the cores with the rest of the suite.
export default defineConfig({
  test: {
    include: ['test/**/*.alone.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    maxWorkers: 1,
    reporters: ['default'],
  },
});
