import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { FlagError, parseFlags } from '../../tasks/plumbing/flags';
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
    expect(() => parseFlags(['--keepalive=maybe'], {})).toThrow(/--keepalive: "maybe" is not true or false/);
  });

  it('--lock-wait takes a duration (30, 30s, 2m, 1h) as seconds; anything else is refused, naming the flag', () => {
    expect(parseFlags(['deploy', '--lock-wait=30']).lockWait).toBe(30);
    expect(parseFlags(['deploy', '--lock-wait=30s']).lockWait).toBe(30);
    expect(parseFlags(['deploy', '--lock-wait=2m']).lockWait).toBe(120);
    expect(parseFlags(['rollback', '--lock-wait=1h']).lockWait).toBe(3600);
    for (const bad of ['0', '30x', '-5', '1.5m', '25h', '']) {
      expect(() => parseFlags(['deploy', `--lock-wait=${bad}`]), bad).toThrow(/--lock-wait: "[^"]*" is not a duration of 1 s to 24 h/);
    }
    expect(() => parseFlags(['status', '--lock-wait=30s'])).toThrow(/--lock-wait/);
  });

  it('turns --batch into hosts per batch', () => {
    expect(batchSize(undefined, 4)).toBeUndefined();
    expect(batchSize('1', 4)).toBe(1);
    expect(batchSize('50%', 4)).toBe(2);
    expect(batchSize('10%', 4)).toBe(1);
    expect(() => batchSize('x', 4)).toThrow(/--batch/);
  });
});

describe('strict flags', () => {
  const refuse = (argv: string[]) => {
    try {
      parseFlags(argv, {});
    } catch (e) {
      return (e as Error).message;
    }
    throw new Error(`accepted ${argv.join(' ')}`);
  };

  it('refuses an unknown or misspelled flag, suggesting the nearest one', () => {
    expect(refuse(['deploy', '--env=uat', '--dryrun'])).toBe('--dryrun: unknown flag; did you mean --dry-run?');
    expect(refuse(['deploy', '--evn=uat'])).toBe('--evn: unknown flag; did you mean --env?');
    expect(refuse(['deploy', '--host=web1'])).toBe('--host: unknown flag; did you mean --hosts?');
    expect(refuse(['status', '--frobnicate'])).toBe('--frobnicate: unknown flag');
  });

  it('refuses a flag of another task, naming who takes it', () => {
    expect(refuse(['status', '--batch=2'])).toBe('--batch: not a flag of this task (cold-deploy, deploy take it)');
    expect(refuse(['setup', '--dry-run'])).toMatch(/^--dry-run: not a flag of this task \(.*deploy/);
    // several tasks at once: a flag must suit every one of them
    expect(refuse(['setup', 'deploy', '--batch=1'])).toMatch(/^--batch: not a flag of this task/);
  });

  it('refuses values a flag cannot take, and lists every problem at once', () => {
    expect(refuse(['deploy', '--hosts='])).toBe('--hosts: needs a comma-separated list, e.g. --hosts=a,b');
    expect(refuse(['deploy', '--hosts=a,,b'])).toBe('--hosts: needs a comma-separated list, e.g. --hosts=a,b');
    expect(refuse(['deploy', '--env='])).toBe('--env: needs a value, e.g. --env=local');
    expect(refuse(['deploy', '--dry-run=maybe'])).toBe('--dry-run: "maybe" is not true or false (--dry-run, --no-dry-run, --dry-run=true|false)');
    expect(refuse(['deploy', '--parallel=1.5'])).toBe('--parallel: "1.5" is not a positive whole number');
    expect(refuse(['deploy', '--parallel'])).toBe('--parallel: needs a value, e.g. --parallel=2');
    expect(refuse(['deploy', '--batch=0'])).toBe('--batch: "0" is not a number of hosts or a percentage (e.g. 2 or 25%)');
    expect(refuse(['deploy', '--batch=half'])).toBe('--batch: "half" is not a number of hosts or a percentage (e.g. 2 or 25%)');
    expect(refuse(['deploy', '--batch=150%'])).toBe('--batch: "150%": a percentage goes up to 100% (every host; e.g. 25%)');
    expect(parseFlags(['deploy', '--batch=100%'])).toMatchObject({ batch: '100%' });
    expect(refuse(['deploy', '--report='])).toBe('--report: needs a value, e.g. --report=x');
    // --env takes a name: a path is a usage error, with the name it would be (every extension off)
    expect(refuse(['deploy', '--env=env/uat.mjs'])).toBe('--env: "env/uat.mjs" is not an environment\'s name (--env=<name> loads env/<name>.ts, .js, .mjs, …); did you mean --env=uat?');
    expect(refuse(['deploy', '--env=./uat.ts.ts'])).toMatch(/; did you mean --env=uat\?$/);
    expect(refuse(['deploy', '--env=..'])).toBe('--env: ".." is not an environment\'s name (--env=<name> loads env/<name>.ts, .js, .mjs, …)');
    // a name like a file's may be one (env/uat.ts.mjs): the loader says which is meant when it is not
    expect(parseFlags(['status', '--env=uat.mjs'])).toMatchObject({ env: 'uat.mjs' });
    expect(parseFlags(['status', '--env=uat.eu-1'])).toMatchObject({ env: 'uat.eu-1' });
    expect(refuse(['deploy', '--dryrun', '--hosts='])).toBe('--dryrun: unknown flag; did you mean --dry-run?\n--hosts: needs a comma-separated list, e.g. --hosts=a,b');
  });

  it('--report: a path it could not write is a usage error before the release, not a warning after it', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sy-flags-report-'));
    try {
      fs.writeFileSync(path.join(dir, 'plain'), '');
      expect(refuse(['deploy', `--report=${dir}`])).toBe(`--report: cannot write ${dir}: ${dir} is a directory`);
      expect(refuse(['rollback', `--report=${dir}/plain/r.json`])).toBe(`--report: cannot write ${dir}/plain/r.json: ${dir}/plain is not a directory`);
      expect(parseFlags(['deploy', `--report=${dir}/new/r.json`], {})).toMatchObject({ report: `${dir}/new/r.json` });
      expect(fs.existsSync(path.join(dir, 'new'))).toBe(false); // nothing made before the run
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('supervise: --action takes start, stop or status; --boot only with start (a usage error, before anything is loaded)', () => {
    expect(parseFlags(['supervise', '--action=start', '--boot'])).toMatchObject({ action: 'start', boot: true });
    expect(() => parseFlags(['supervise', '--action=strat'])).toThrow(/--action: "strat" is not one of start, stop, status/);
    for (const argv of [['supervise', '--boot'], ['supervise', '--boot', '--action=stop']]) {
      expect(() => parseFlags(argv)).toThrow(FlagError);
      expect(() => parseFlags(argv)).toThrow(/--boot: goes with --action=start/);
    }
  });

  it('reads booleans as --x, --no-x, --x=true|false', () => {
    expect(parseFlags(['deploy', '--dry-run'], {}).dryRun).toBe(true);
    expect(parseFlags(['deploy', '--dry-run=false'], {}).dryRun).toBe(false);
    expect(parseFlags(['deploy', '--no-dry-run'], {}).dryRun).toBe(false);
    expect(parseFlags(['loadtest', '--no-keepalive'], {}).keepalive).toBe(false);
    expect(parseFlags(['loadtest', '--keepalive=true'], {}).keepalive).toBe(true);
  });

  it("lets gulp's own flags and their values through, and a task of your own takes any of switchyard's flags", () => {
    expect(parseFlags(['--gulpfile', 'x/gulpfile.js', '--cwd', 'x', 'deploy', '--tasks', '-T', '--color', '--silent', '-LLL'], {})).toEqual({});
    expect(parseFlags(['release', '--batch=1', '--dry-run'], {})).toEqual({ batch: '1', dryRun: true });
    expect(refuse(['release', '--dryrun'])).toBe('--dryrun: unknown flag; did you mean --dry-run?');
    expect(parseFlags(['release', '--prod', '--dry-run'], {}, { allow: { '--prod': 'boolean' } })).toEqual({ dryRun: true });
  });

  it('is an error without a stack when gulp shows it', () => {
    let err: Error | undefined;
    try {
      parseFlags(['deploy', '--dryrun'], {});
    } catch (e) {
      err = e as Error;
    }
    expect(err?.stack).toBe('switchyard: --dryrun: unknown flag; did you mean --dry-run?');
  });
});
