import { BaseSequencer, type TestSpecification } from 'vitest/node';
import { defineConfig } from 'vitest/config';

// The two heaviest load suites each keep both cores busy for a minute or more (100 connections
// through nginx to the app, deploys on top); run side by side, each took twice as long. The Mono
// one goes first, and the other one a few files later, once the other worker has had about as
// long. The rest keep vitest's own order (slowest known first, else largest).
const FIRST = 'test/e2e/mono.test.ts';
const LATER = 'test/e2e/zero-downtime.test.ts';
const LATER_AT = 4;

class HeavyApart extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const pick = (name: string) => sorted.find((f) => f.moduleId.endsWith(`/${name}`));
    const [first, later] = [pick(FIRST), pick(LATER)];
    const rest = sorted.filter((f) => f !== first && f !== later);
    if (later) rest.splice(Math.min(LATER_AT, rest.length), 0, later);
    return first ? [first, ...rest] : rest;
  }
}

// The e2e tests start real sshd and nginx processes; they are slow-ish and must not
// fight over the two cores, so files run with limited parallelism.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    maxWorkers: 2,
    reporters: ['default'],
    sequence: { sequencer: HeavyApart },
  },
});
