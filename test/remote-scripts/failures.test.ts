// What the scripts do when things go wrong: failed starts and health checks, refused switches, a
// prepare killed by timeout. Real scripts, real example app.
import { execa } from 'execa';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseResultLines } from '../../lib/remote/protocol';
import { all, alive, find, get, runScript, scriptText, useScriptLab, show, waitFor, which } from '../support/scripts';

const lab = useScriptLab();

/** After a failed prepare the host must look as if it never ran. */
function expectCleanFailure(release: string) {
  expect(lab().processes()).toEqual([]);
  expect(fs.existsSync(lab().stageSock(release))).toBe(false);
  expect(fs.existsSync(lab().releaseDir(release))).toBe(false);
  expect(lab().lockHeld()).toBe(false);
}

describe('prepare failures', () => {
  it('health check failing (HELLO_FAIL_HEALTH) → 6: process stopped, socket and dir removed, lock released', async () => {
    const r = await lab().prepare('r1', { env: { HELLO_FAIL_HEALTH: '1' }, args: ['--health-timeout', '1'] });
    expect(r.code, show(r)).toBe(6);
    const err = find(r, 'error');
    expect(err?.fields).toEqual({ code: '6', step: 'health' });
    expect(err?.msg).toContain('answered 500, want 200');
    expect(find(r, 'prepared')).toBeUndefined();
    expect(r.stderr).toContain('listening on'); // the end of app.log, for the person deploying
    expectCleanFailure('r1');
  });

  it('socket never appearing (HELLO_NO_LISTEN) → 5 after --start-timeout', async () => {
    const started = Date.now();
    const r = await lab().prepare('r1', { env: { HELLO_NO_LISTEN: '1' }, args: ['--start-timeout', '0.8'] });
    expect(r.code, show(r)).toBe(5);
    expect(Date.now() - started).toBeGreaterThanOrEqual(800);
    expect(find(r, 'error')?.fields).toEqual({ code: '5', step: 'start' });
    expect(find(r, 'error')?.msg).toContain('did not appear within 0.8s');
    expect(r.stderr).toContain('HELLO_NO_LISTEN: not listening');
    expectCleanFailure('r1');
  });

  it('the app exiting at once → 5 without waiting for the start timeout', async () => {
    const started = Date.now();
    const r = await lab().prepare('r1', { cmd: ['node', '-e', 'console.error("boom: missing config"); process.exit(3)'], args: ['--start-timeout', '20'] });
    expect(r.code, show(r)).toBe(5);
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(find(r, 'error')?.msg).toMatch(/exited/);
    expect(r.stderr).toContain('boom: missing config');
    expectCleanFailure('r1');
  });

  it('a failed --reuse restart keeps the release, its live process and its pid file', async () => {
    const first = await lab().deploy('r1');
    const r = await lab().prepare('r1', { reuse: true, env: { HELLO_FAIL_HEALTH: '1' }, args: ['--health-timeout', '0.5'] });
    expect(r.code, show(r)).toBe(6);
    expect(fs.existsSync(lab().releaseDir('r1'))).toBe(true);
    expect(lab().pidFile('r1')).toEqual(first);
    expect(lab().processes()).toEqual([first.pid]);
    expect(lab().lockHeld()).toBe(false);
    expect((await get(lab().liveSock)).body).toBe('hello from release r1\n');
  });

  it('refuses (3) to prepare a deployed release without --reuse, and does not delete it', async () => {
    const first = await lab().deploy('r1');
    const r = await lab().prepare('r1');
    expect(r.code, show(r)).toBe(3);
    expect(find(r, 'error')?.msg).toContain('--reuse');
    expect(fs.existsSync(path.join(lab().releaseDir('r1'), 'server.js'))).toBe(true);
    expect(alive(first.pid, first.starttime)).toBe(true);
    expect(lab().lockHeld()).toBe(false);
  });

  it('exits 3 when the release dir is missing or the host is not set up', async () => {
    const missing = await runScript('prepare', lab().prepareArgs('nope', { reuse: true }));
    expect(missing.code, show(missing)).toBe(3);
    expect(find(missing, 'error')?.msg).toContain('releases/nope is missing');
    const notSetUp = await runScript('prepare', ['--deploy-to', path.join(lab().root, 'x'), ...lab().prepareArgs('r1').slice(2)]);
    expect(notSetUp.code, show(notSetUp)).toBe(3);
    expect(find(notSetUp, 'error')?.msg).toContain('run setup first');
  });

  it.each([
    [['--shared', '../etc'], '..'],
    [['--shared', '/etc'], 'absolute'],
    [['--shared', '.'], '.'],
    [['--env', 'not a key=1'], '--env'],
    [['--bogus', '1'], 'unknown option'],
    [['--start-timeout', 'soon'], 'seconds'],
  ])('usage error (2) before touching anything: %j', async (extra, text) => {
    const r = await lab().prepare('r1', { args: extra });
    expect(r.code, show(r)).toBe(2);
    expect(find(r, 'error')?.fields.code).toBe('2');
    expect(find(r, 'error')?.msg).toContain(text);
    expect(lab().processes()).toEqual([]);
    expect(lab().lockHeld()).toBe(false);
  });

  it('usage error (2) without -- CMD, and for a release id that is not a plain name', async () => {
    const noCmd = await runScript('prepare', lab().siteArgs('r1'));
    expect(noCmd.code, show(noCmd)).toBe(2);
    const badId = await runScript('switch', lab().siteArgs('../r1'));
    expect(badId.code, show(badId)).toBe(2);
    expect(find(badId, 'error')?.msg).toContain('bad release id');
  });
});

describe('socket permissions', () => {
  it('--socket-mode and --socket-group are applied to the staged socket (and survive the switch)', async () => {
    // A group other than our own primary one, that this user may use (root: any).
    const group = process.getuid?.() === 0 ? 'daemon' : (await execa('id', ['-Gn'])).stdout.split(' ').pop()!;
    const gid = Number((await execa('getent', ['group', group])).stdout.split(':')[2]);
    const setup = await runScript('setup', ['--deploy-to', lab().deployTo, '--socket-dir', lab().socketDir, '--socket-group', group]);
    expect(setup.code, show(setup)).toBe(0);
    const p = await lab().prepare('r1', { args: ['--socket-mode', '0606', '--socket-group', group] });
    expect(p.code, show(p)).toBe(0);
    const st = fs.statSync(lab().stageSock('r1'));
    expect((st.mode & 0o777).toString(8)).toBe('606');
    expect(st.gid).toBe(gid);
    expect((await lab().run('switch', lab().siteArgs('r1'))).code).toBe(0);
    expect(fs.statSync(lab().liveSock).gid).toBe(gid);
    expect((fs.statSync(lab().liveSock).mode & 0o777).toString(8)).toBe('606');
  });
});

describe('switch refusals', () => {
  it('exits 4 when the lock is not held by the release, and 7 when its socket is missing', async () => {
    lab().unpack('r1');
    const noLock = await lab().run('switch', lab().siteArgs('r1'));
    expect(noLock.code, show(noLock)).toBe(4);
    expect(find(noLock, 'error')?.msg).toContain('free');

    fs.rmSync(lab().releaseDir('r1'), { recursive: true });
    expect((await lab().prepare('r1')).code).toBe(0);
    fs.rmSync(lab().stageSock('r1'));
    const noSock = await lab().run('switch', lab().siteArgs('r1'));
    expect(noSock.code, show(noSock)).toBe(7);
    expect(find(noSock, 'error')?.fields).toEqual({ code: '7', step: 'switch' });
    expect(fs.existsSync(lab().liveSock)).toBe(false);
    expect(lab().state('live')).toBeUndefined();
  });

  it('exits 7 when the staged path is not a socket', async () => {
    expect((await lab().prepare('r1')).code).toBe(0);
    fs.rmSync(lab().stageSock('r1'));
    fs.writeFileSync(lab().stageSock('r1'), 'not a socket');
    const r = await lab().run('switch', lab().siteArgs('r1'));
    expect(r.code, show(r)).toBe(7);
  });
});

describe('timeout', () => {
  it('a prepare TERMinated (as the client does at its time limit) stops its app and cleans up', async () => {
    const r = await lab().prepare('r1', { env: { HELLO_FAIL_HEALTH: '1' }, args: ['--health-timeout', '60'] }, { timeout: 2 });
    expect(r.code, show(r)).toBe(124);
    expect(find(r, 'error')?.fields).toEqual({ code: '1', step: 'health' });
    expect(find(r, 'error')?.msg).toContain('SIGTERM');
    expectCleanFailure('r1');
  });

  it('a second TERM during that cleanup (the client signals the script, then its group) does not cut it short', async () => {
    // The app's group keeps a TERM-deaf child for 3 s, so the cleanup is still waiting for it when
    // the second TERM comes.
    const app = ['bash', '-c', '(trap "" TERM; exec sleep 3) & exec node server.js --socket "$1"', 'app', '{socket}'];
    const args = lab().prepareArgs('r1', { env: { HELLO_FAIL_HEALTH: '1' }, args: ['--health-timeout', '60'], cmd: app });
    const child = execa(which('bash'), ['-c', scriptText('prepare'), 'prepare.sh', ...args], {
      inputFile: lab().packageFile,
      reject: false,
    });
    expect(await waitFor(() => fs.existsSync(lab().stageSock('r1')), 10_000)).toBe(true);
    await new Promise((f) => setTimeout(f, 300));
    child.kill('SIGTERM');
    await new Promise((f) => setTimeout(f, 300));
    child.kill('SIGTERM');
    const done = await child;
    const stdout = String(done.stdout);
    const r = { code: done.exitCode ?? -1, stdout, stderr: String(done.stderr), lines: parseResultLines(stdout) };
    expect(r.code, show(r)).toBe(1);
    expect(all(r, 'error').map((e) => e.msg)).toEqual(['terminated by SIGTERM']);
    expectCleanFailure('r1');
  });
});
