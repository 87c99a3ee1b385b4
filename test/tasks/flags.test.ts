import { describe, expect, it } from 'vitest';
import { parseFlags } from '../../tasks/plumbing/flags';
import { batchSize } from '../../lib/release/deploy';

describe('command line flags', () => {
  it('reads what gulpfile passes, ignoring gulp’s own flags and the task name', () => {
    expect(parseFlags(['deploy', '--env=uat', '--hosts=a,b', '--roles', 'app', '--dry-run', '--parallel=4', '--batch=25%', '--color'], {})).toEqual({
      env: 'uat',
      hosts: ['a', 'b'],
      roles: ['app'],
      dryRun: true,
      parallel: 4,
      batch: '25%',
    });
    expect(parseFlags(['loadtest', '--concurrency=50', '--keepalive=off', '--duration=10', '--method=post'], {})).toMatchObject({
      concurrency: 50,
      keepalive: false,
      duration: 10,
      method: 'POST',
    });
  });

  it('takes the env dir from SWITCHYARD_ENV_DIR unless given', () => {
    expect(parseFlags([], { SWITCHYARD_ENV_DIR: '/ops/env' }).envDir).toBe('/ops/env');
    expect(parseFlags(['--env-dir=x'], { SWITCHYARD_ENV_DIR: '/ops/env' }).envDir).toBe('x');
  });

  it('rejects bad numbers with the flag named', () => {
    expect(() => parseFlags(['--parallel=zero'], {})).toThrow(/--parallel: "zero" is not a positive whole number/);
    expect(() => parseFlags(['--keepalive=maybe'], {})).toThrow(/--keepalive: "maybe" is not on or off/);
  });

  it('turns --batch into hosts per batch', () => {
    expect(batchSize(undefined, 4)).toBeUndefined();
    expect(batchSize('1', 4)).toBe(1);
    expect(batchSize('50%', 4)).toBe(2);
    expect(batchSize('10%', 4)).toBe(1);
    expect(() => batchSize('x', 4)).toThrow(/--batch/);
  });
});
