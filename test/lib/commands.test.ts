import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import {
  newReleaseId,
  prepareCommand,
  q,
  RELEASE_ID,
  retireCommand,
  setupCommand,
  switchCommand,
  undoCommand,
  unlockCommand,
  words,
} from '../../lib/commands';
import { makeEnv } from '../support/env';

/** What bash makes of a command line: the argv it would run (printed NUL-separated). */
function argvOf(commandLine: string): string[] {
  const out = execFileSync('bash', ['-c', `set -- ${commandLine}; printf '%s\\0' "$@"`]).toString();
  return out.split('\0').slice(0, -1);
}

describe('q (shell quoting)', () => {
  it('leaves safe words alone and single-quotes the rest', () => {
    expect(q('/srv/app')).toBe('/srv/app');
    expect(q('--deploy-to')).toBe('--deploy-to');
    expect(q('a b')).toBe(`'a b'`);
    expect(q(`it's`)).toBe(`'it'\\''s'`);
    expect(q('')).toBe(`''`);
    expect(q('~/x')).toBe(`'~/x'`);
  });

  it('round-trips hostile values through a real bash word for word', () => {
    const nasty = ['$(touch /tmp/x)', '`id`', "a'b\"c", '; rm -rf /', 'x\ny', '*', '$HOME', '\\', '!', '{a,b}', '--', ' lead', 'trail '];
    expect(argvOf(words(nasty))).toEqual(nasty);
  });
});

describe('release ids', () => {
  it('are a sortable UTC stamp plus the short git sha', () => {
    const id = newReleaseId(new Date('2026-11-23T15:42:19.123Z'), 'abc1234');
    expect(id).toBe('20261123T154219.123Z-abc1234');
    expect(RELEASE_ID.test(id)).toBe(true);
    expect(newReleaseId(new Date('2026-11-23T15:42:19.123Z'))).toBe('20261123T154219.123Z');
    expect(newReleaseId(new Date('2026-11-23T15:42:19.123Z'), 'not hex;')).toBe('20261123T154219.123Z-e');
  });
});

describe('remote commands', () => {
  const env = makeEnv({ shared: ['logs'], app: { start: ['node', 'server.js', '--socket', '{socket}'], env: { NODE_ENV: 'production' } } });
  const R = '20261123T154219.123Z-abc1234';

  it('setup names the directories', () => {
    expect(setupCommand(env).display).toBe('setup.sh --deploy-to /srv/app --socket-dir /run/sy');
  });

  it('prepare unpacks stdin into a new release dir, then runs the packaged prepare.sh with every value as its own word', () => {
    const c = prepareCommand(env, { release: R, lockOwner: 'me@box pid=1' });
    expect(c.stdinPackage).toBe(true);
    expect(c.display).toBe(
      `(unpack package into /srv/app/releases/${R}) && prepare.sh --deploy-to /srv/app --site app.test --socket-dir /run/sy --release ${R} ` +
        `--shared logs --env NODE_ENV=production --socket-mode 0660 --start-timeout 30 --health-path /health --health-timeout 30 ` +
        `--expect-status 200 --lock-owner 'me@box pid=1' -- node server.js --socket '{socket}'`,
    );
    const argv = argvOf(c.command);
    expect(argv.slice(0, 5)).toEqual(['timeout', '-k', '10', '600', 'bash']);
    expect(argv[5]).toBe('-c');
    expect(argv.slice(7, 10)).toEqual(['switchyard-unpack', '/srv/app', R]);
    expect(argv.slice(-5)).toEqual(['--', 'node', 'server.js', '--socket', '{socket}']);
  });

  it('prepare --reuse runs the client script inline and takes no package', () => {
    const c = prepareCommand(env, { release: R, lockOwner: 'me', reuse: true });
    expect(c.stdinPackage).toBeUndefined();
    expect(c.display).toMatch(/^prepare\.sh .* --reuse -- node server\.js --socket '\{socket\}'$/);
    const argv = argvOf(c.command);
    expect(argv[6]).toContain('set -euo pipefail');
    expect(argv[7]).toBe('prepare.sh');
  });

  it('switch, undo, retire, unlock', () => {
    expect(switchCommand(env, R).display).toBe(`switch.sh --deploy-to /srv/app --site app.test --socket-dir /run/sy --release ${R}`);
    expect(undoCommand(env, R).display).toBe(`undo.sh --deploy-to /srv/app --site app.test --socket-dir /run/sy --release ${R} --grace 2`);
    expect(retireCommand(env, R, 'deploy by me').display).toBe(
      `retire.sh --deploy-to /srv/app --site app.test --socket-dir /run/sy --release ${R} --grace 2 --drain 30 --keep 5 --audit 'deploy by me'`,
    );
    expect(argvOf(retireCommand(env, R, 'x').command).slice(0, 4)).toEqual(['timeout', '-k', '10', '152']);
    expect(unlockCommand(env).display).toBe('unlock.sh --deploy-to /srv/app');
  });

  it('a hostile start argument and env value stay single words in the command', () => {
    const evil = makeEnv({ app: { start: ['node', 'a;touch /tmp/pwned', '$(id)'], env: { X: "'; touch /tmp/pwned; '" } } });
    const argv = argvOf(prepareCommand(evil, { release: R, lockOwner: 'me' }).command);
    expect(argv.slice(-3)).toEqual(['node', 'a;touch /tmp/pwned', '$(id)']);
    expect(argv).toContain("X='; touch /tmp/pwned; '");
  });
});
