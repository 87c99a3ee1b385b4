// The standby (retire --standby, an instant rollback through prepare --reuse) and the supervisor
// (supervise.sh), with the real scripts and the real example app on one fake host.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { alive, find, get, procStat, show, useScriptLab, waitFor, type ScriptLab } from '../support/scripts';

const lab = useScriptLab();

async function step(name: string, args: string[]): Promise<void> {
  const r = await lab().run(name, args);
  if (r.code !== 0) throw new Error(`${name} failed: ${show(r)}`);
}

/** r's deploy with the previous release kept as the standby for `standby` seconds. */
async function deployWithStandby(l: ScriptLab, r: string, standby = '60'): Promise<{ pid: number; starttime: string }> {
  const p = await l.prepare(r);
  if (p.code !== 0) throw new Error(show(p));
  await step('switch', l.siteArgs(r));
  await step('retire', [...l.siteArgs(r), '--grace', '0.1', '--drain', '5', '--standby', standby]);
  return l.pidFile(r)!;
}

const SV = (l: ScriptLab, action: string, more: string[] = []) =>
  l.run('supervise', ['--action', action, ...l.siteArgs(), '--grace', '0.1', '--drain', '5', '--interval-ms', '100', '--health-every', '2', ...more]);

function supervisorPid(l: ScriptLab): { pid: number; starttime: string } | undefined {
  try {
    const [pid, starttime] = fs.readFileSync(path.join(l.deployTo, '.switchyard', 'supervisor'), 'utf8').trim().split(' ');
    return { pid: Number(pid), starttime: starttime ?? '' };
  } catch {
    return undefined;
  }
}

function live(l: ScriptLab): { release: string; pid: number } {
  const [release, pid] = (l.state('live') ?? '').split(' ');
  return { release: release ?? '', pid: Number(pid) };
}

/** Kills pid, then: ms until the live socket answers with body again (-1: not within ms). */
async function killAndWait(l: ScriptLab, p: { pid: number; starttime: string }, body: string, ms: number): Promise<number> {
  process.kill(p.pid, 'SIGKILL');
  await waitFor(() => !alive(p.pid, p.starttime), 2000);
  const t0 = Date.now();
  while (Date.now() - t0 < ms) {
    const r = await get(l.liveSock, '/', 1).catch(() => undefined);
    if (r?.status === 200 && r.body === body) return Date.now() - t0;
    await new Promise((res) => setTimeout(res, 25));
  }
  return -1;
}

describe('standby', () => {
  it('keeps the previous release running on .prev; a rollback inside the window starts nothing and marks what it left bad', async () => {
    const r1 = await lab().deploy('r1');
    const r2 = await deployWithStandby(lab(), 'r2');
    expect(alive(r1.pid, r1.starttime)).toBe(true);
    expect(fs.readFileSync(path.join(lab().deployTo, '.switchyard', 'standby'), 'utf8')).toMatch(new RegExp(`^r1 ${r1.pid} ${r1.starttime} \\d+\n$`));
    expect((await get(lab().prevSock)).body).toBe('hello from release r1\n');

    const p = await lab().prepare('r1', { reuse: true });
    expect(p.code, show(p)).toBe(0);
    expect(find(p, 'prepared')?.fields).toMatchObject({ release: 'r1', pid: String(r1.pid), standby: 'yes' });
    await step('switch', lab().siteArgs('r1'));
    const rt = await lab().run('retire', [...lab().siteArgs('r1'), '--grace', '0.1', '--drain', '5', '--mark-bad']);
    expect(rt.code, show(rt)).toBe(0);
    expect(live(lab())).toEqual({ release: 'r1', pid: r1.pid });
    expect((await get(lab().liveSock)).body).toBe('hello from release r1\n');
    expect(alive(r2.pid, r2.starttime)).toBe(false);
    expect(fs.existsSync(path.join(lab().releaseDir('r2'), '.switchyard', 'bad'))).toBe(true);
    expect(fs.existsSync(path.join(lab().deployTo, '.switchyard', 'standby'))).toBe(false);
  });

  it('an instant rollback undone before its switch leaves the standby running; the next deploy retires an old standby', async () => {
    const r1 = await lab().deploy('r1');
    await deployWithStandby(lab(), 'r2');
    expect((await lab().prepare('r1', { reuse: true })).code).toBe(0);
    await step('undo', [...lab().siteArgs('r1'), '--grace', '0.1']);
    expect(alive(r1.pid, r1.starttime)).toBe(true);
    expect((await get(lab().prevSock)).body).toBe('hello from release r1\n');

    await lab().prepare('r3');
    await step('switch', lab().siteArgs('r3'));
    const rt = await lab().run('retire', [...lab().siteArgs('r3'), '--grace', '0.1', '--drain', '5']);
    expect(rt.code, show(rt)).toBe(0);
    expect(rt.stdout).toContain(`::sy retired release=r1 pid=${r1.pid} signal=TERM standby=ended`);
    expect(alive(r1.pid, r1.starttime)).toBe(false);
  });

  it('outside the window (the standby gone) rollback starts the release again', async () => {
    const r1 = await lab().deploy('r1');
    await deployWithStandby(lab(), 'r2');
    process.kill(r1.pid, 'SIGKILL');
    await waitFor(() => !alive(r1.pid, r1.starttime));
    const p = await lab().prepare('r1', { reuse: true });
    expect(p.code, show(p)).toBe(0);
    expect(find(p, 'prepared')?.fields.standby).toBeUndefined();
    expect(Number(find(p, 'prepared')?.fields.pid)).not.toBe(r1.pid);
  });
});

describe('supervise', () => {
  it('respawns a killed release through prepare/switch/retire; stop stops the supervisor and nothing else', async () => {
    const r1 = await lab().deploy('r1', { env: { GREETING_SECRET: 's3cret' } });
    const st = await SV(lab(), 'start');
    expect(st.code, show(st)).toBe(0);
    const sv = supervisorPid(lab())!;
    expect(find(st, 'supervisor')?.fields).toMatchObject({ state: 'running', pid: String(sv.pid) });
    expect(procStat(sv.pid)?.pgrp).toBe(sv.pid); // its own session: no SSH session or test owns it
    expect(fs.statSync(path.join(lab().releaseDir('r1'), '.switchyard', 'env')).mode & 0o777).toBe(0o600);

    const back = await killAndWait(lab(), r1, 'hello from release r1\n', 5000);
    expect(back, 'the site answered again').toBeGreaterThan(0);
    expect(await waitFor(() => !lab().lockHeld(), 2000)).toBe(true); // retire done
    const now = live(lab());
    expect(now.release).toBe('r1');
    expect(now.pid).not.toBe(r1.pid);
    expect(lab().lockHeld()).toBe(false);
    expect(lab().state('audit.log')).toMatch(/supervisor: r1 died \(its process \d+ is gone\): started again/);
    const status = await SV(lab(), 'status');
    expect(find(status, 'supervisor')?.fields).toMatchObject({ state: 'running', boot: 'no' });

    const stop = await SV(lab(), 'stop');
    expect(stop.code, show(stop)).toBe(0);
    expect(alive(sv.pid, sv.starttime)).toBe(false);
    const app = lab().pidFile('r1')!;
    expect(alive(app.pid, app.starttime)).toBe(true);
    lab().track(app.pid, app.starttime);
    expect(find(await SV(lab(), 'status'), 'supervisor')?.fields.state).toBe('stopped');
  });

  it('a process that runs on but fails its health check --unhealthy times in a row is replaced, and drained', async () => {
    const sick = path.join(lab().root, 'sick');
    const r1 = await lab().deploy('r1', { env: { HELLO_SICK_FILE: sick } });
    expect((await SV(lab(), 'start', ['--health-every', '1', '--unhealthy', '2'])).code).toBe(0);
    fs.writeFileSync(sick, '');
    const log = path.join(lab().deployTo, '.switchyard', 'supervisor.log');
    expect(await waitFor(() => fs.existsSync(log) && fs.readFileSync(log, 'utf8').includes('is unhealthy'), 5000)).toBe(true);
    fs.rmSync(sick); // the new start's health check passes
    expect(await waitFor(() => live(lab()).pid !== r1.pid && !lab().lockHeld(), 10_000)).toBe(true);
    expect(alive(r1.pid, r1.starttime)).toBe(false); // retired: drained and stopped, not left running
    expect(lab().state('audit.log')).toMatch(/supervisor: r1 is unhealthy \(GET \/health answered 500, 2 checks in a row\): started again/);
    expect((await get(lab().liveSock)).status).toBe(200);
    await SV(lab(), 'stop');
  });

  it('a release whose starts keep failing ends errored: retries stop, status says why', async () => {
    const flag = path.join(lab().root, 'crash');
    const cmd = ['bash', '-c', 'if [ -e "$CRASH_FLAG" ]; then exit 1; fi; exec node server.js --socket "$1"', 'app', '{socket}'];
    const r1 = await lab().deploy('r1', { env: { CRASH_FLAG: flag }, cmd });
    expect((await SV(lab(), 'start', ['--max-restarts', '3'])).code).toBe(0);
    const sv = supervisorPid(lab())!;
    fs.writeFileSync(flag, '');
    process.kill(r1.pid, 'SIGKILL');
    expect(await waitFor(() => !alive(sv.pid, sv.starttime), 20_000)).toBe(true);
    const status = await SV(lab(), 'status');
    const s = find(status, 'supervisor');
    expect(s?.fields.state).toBe('errored');
    expect(s?.msg).toMatch(/r1 died .*3 unstable restarts in a row: supervisor stopped/);
    expect(lab().state('audit.log')).toMatch(/supervise .*state=errored/);
    expect(lab().lockHeld()).toBe(false);
  });

  it('after a boot emptied socketDir (a tmpfs such as /run): the supervisor makes it again, as setup does, and starts the release', async () => {
    const r1 = await lab().deploy('r1');
    expect((await SV(lab(), 'start')).code).toBe(0);
    fs.rmSync(lab().socketDir, { recursive: true, force: true }); // the boot: /run empty, the app gone
    const back = await killAndWait(lab(), r1, 'hello from release r1\n', 8000);
    expect(back, 'the site answered again').toBeGreaterThan(0);
    expect(fs.statSync(lab().socketDir).mode & 0o7777).toBe(0o755); // setup's mode without a socket group, whatever the umask
    const log = fs.readFileSync(path.join(lab().deployTo, '.switchyard', 'supervisor.log'), 'utf8');
    expect(log).toContain(`socketDir ${lab().socketDir} was missing (emptied at boot?): made it again`);
    await SV(lab(), 'stop');
  });

  it('a socketDir it cannot make: errored after its restarts, and status names socketDir and what to do', async () => {
    const r1 = await lab().deploy('r1');
    expect((await SV(lab(), 'start', ['--max-restarts', '2'])).code).toBe(0);
    const sv = supervisorPid(lab())!;
    fs.rmSync(lab().socketDir, { recursive: true, force: true });
    fs.writeFileSync(lab().socketDir, ''); // a file in its place: no user, root included, can make the directory
    process.kill(r1.pid, 'SIGKILL');
    expect(await waitFor(() => !alive(sv.pid, sv.starttime), 20_000)).toBe(true);
    const s = find(await SV(lab(), 'status'), 'supervisor');
    expect(s?.fields.state).toBe('errored');
    expect(s?.msg).toContain(`socketDir ${lab().socketDir} is missing (or not a directory) and`);
    expect(s?.msg).toMatch(/cannot make it \(under \/run, a tmpfs, it is gone after every boot: have it made at boot, e\.g\. the systemd-tmpfiles line 'd .* 0750 \S+ \S+ -'\)/);
    fs.rmSync(lab().socketDir);
  });

  it('a release that dies while the previous one is the standby: the standby is live again at once and the dead one is bad', async () => {
    await lab().deploy('r1');
    const r1 = lab().pidFile('r1')!;
    const r2 = await deployWithStandby(lab(), 'r2');
    expect((await SV(lab(), 'start')).code).toBe(0);
    const back = await killAndWait(lab(), r2, 'hello from release r1\n', 5000);
    expect(back).toBeGreaterThan(0);
    expect(await waitFor(() => !lab().lockHeld(), 2000)).toBe(true);
    expect(live(lab())).toEqual({ release: 'r1', pid: r1.pid }); // the same process: nothing started
    expect(fs.existsSync(path.join(lab().releaseDir('r2'), '.switchyard', 'bad'))).toBe(true);
    expect(lab().state('audit.log')).toMatch(/supervisor: r2 died .*back to the standby r1/);
    await SV(lab(), 'stop');
  });

  it('retires the standby when its time is up', async () => {
    const r1 = await lab().deploy('r1');
    await deployWithStandby(lab(), 'r2', '1');
    expect((await SV(lab(), 'start')).code).toBe(0);
    expect(await waitFor(() => !alive(r1.pid, r1.starttime), 5000)).toBe(true);
    expect(await waitFor(() => !fs.existsSync(path.join(lab().deployTo, '.switchyard', 'standby')) && !lab().lockHeld(), 2000)).toBe(true);
    expect(live(lab()).release).toBe('r2');
    await SV(lab(), 'stop');
  });

  it('refuses bad options before doing anything', async () => {
    for (const more of [['--interval-ms', '0'], ['--boot', 'maybe'], ['--version', 'a b']]) {
      const r = await SV(lab(), 'start', more);
      expect(r.code, show(r)).toBe(2);
    }
    expect((await SV(lab(), 'restart')).code).toBe(2);
    expect(supervisorPid(lab())).toBeUndefined();
  });
});
