// Issue 11, standby and supervision, through real sshd hosts and nginx: a rollback inside the
// standby window starts nothing; after it, the relaunch path; both under 100 concurrent
// connections with zero failed requests. The supervisor (started by cold-deploy) outlives the SSH
// session, heals `kill -9` within 3 s, ends errored after a crash loop (shown by `status`), and
// `supervise --action=stop` stops it and nothing else; `--boot` writes exactly one crontab line.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Environment } from '../../lib/environment';
import { withLoad } from '../../lib/load/under-load';
import { MemoryReporter } from '../../lib/output/reporter';
import { deploy } from '../../lib/release/deploy';
import { rollback } from '../../lib/release/reuse';
import { releases } from '../../lib/servers/releases';
import { setup } from '../../lib/servers/setup';
import { status } from '../../lib/servers/status';
import { supervise } from '../../lib/servers/supervise';
import { startLab, type Lab, type LabHost } from '../support/lab';
import { labEnv } from '../support/lab-env';

let lab: Lab;
let env: Environment;
const quiet = () => new MemoryReporter();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  lab = await startLab({ hosts: 2 });
  env = labEnv(lab, { over: { retire: { graceSeconds: 2, drainSeconds: 5, standbySeconds: 60 }, supervise: { intervalMs: 100 } } });
  await setup({ environment: env, reporter: quiet() });
});
afterAll(async () => {
  await lab?.stop();
});

function pidOf(file: string): { pid: number; starttime: string } | undefined {
  try {
    const [pid, starttime] = fs.readFileSync(file, 'utf8').trim().split(' ');
    return { pid: Number(pid), starttime: starttime ?? '' };
  } catch {
    return undefined;
  }
}
function alive(p: { pid: number; starttime: string } | undefined): boolean {
  if (!p) return false;
  try {
    const stat = fs.readFileSync(`/proc/${p.pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return f[0] !== 'Z' && f[19] === p.starttime;
  } catch {
    return false;
  }
}
/** `R PID ST …` state files (live, standby): the process. */
function stateProc(file: string): { pid: number; starttime: string } {
  const [, pid, starttime] = fs.readFileSync(file, 'utf8').trim().split(' ');
  return { pid: Number(pid), starttime: starttime ?? '' };
}
const livePid = (h: LabHost) => stateProc(path.join(h.deployTo, '.switchyard', 'live'));
const supervisorOf = (h: LabHost) => pidOf(path.join(h.deployTo, '.switchyard', 'supervisor'));
const served = async () => Promise.all(lab.hosts.map(async (h) => (await lab.fetchSite(h)).body.trim().replace('hello from release ', '')));

/** Until the host's nginx answers 200 again with a new live pid: ms, or -1 after 10 s. */
async function healed(h: LabHost, was: { pid: number }): Promise<number> {
  const t0 = Date.now();
  while (Date.now() - t0 < 10_000) {
    const r = await lab.fetchSite(h).catch(() => undefined);
    if (r?.status === 200 && livePid(h).pid !== was.pid) return Date.now() - t0;
    await sleep(20);
  }
  return -1;
}

describe.sequential('standby and supervision', () => {
  const ids: string[] = [];

  it('cold-deploy starts a supervisor per host that outlives the SSH session; a deploy keeps the previous release as the standby', async () => {
    ids.push((await deploy({ environment: env, reporter: quiet() }, 'cold-deploy')).release);
    const sv = lab.hosts.map(supervisorOf);
    for (const s of sv) expect(alive(s)).toBe(true); // the deploy's connections are closed by now
    ids.push((await deploy({ environment: env, reporter: quiet() })).release);
    expect(lab.hosts.map(supervisorOf)).toEqual(sv); // kept, not started again
    const all = await releases({ environment: env, reporter: quiet() });
    expect(all[0]!.releases.map((r) => r.state)).toEqual(['current', 'standby']);
  });

  it('rollback inside the standby window, under 100 connections: nothing started, zero failed; r2 marked bad', async () => {
    const [r1, r2] = ids as [string, string];
    const standbyPids = lab.hosts.map((h) => pidOf(path.join(h.deployTo, 'releases', r1, '.switchyard', 'pid')));
    const t0 = Date.now();
    const out = await withLoad({ environment: env, reporter: quiet(), kind: 'rollback', title: 'instant rollback', concurrency: 100 }, (l) => rollback(l.options()));
    const seconds = (Date.now() - t0) / 1000;
    expect(out.result.failed).toBe(0);
    expect(out.value.hosts.every((h) => h.standby === true)).toBe(true);
    // one exec per host: the host named its standby itself (release.sh --release @standby)
    for (const h of out.value.hosts) expect(h.stats.executions).toBe(1);
    expect(out.value.hosts.map((h) => h.release)).toEqual([r1, r1]);
    expect(out.value.release).toBe(r1);
    expect(lab.hosts.map(livePid)).toEqual(standbyPids); // the same processes serve again
    expect(await served()).toEqual([r1, r1]);
    const all = await releases({ environment: env, reporter: quiet() });
    expect(Object.fromEntries(all[0]!.releases.map((r) => [r.id, r.state]))).toEqual({ [r1]: 'current', [r2]: 'bad' });
    console.log(`instant rollback: ${out.result.requests} requests, ${out.result.failed} failed, ${seconds.toFixed(2)} s (with load ramp)`);
  });

  it('after the window (no standby running), rollback starts the release again: zero failed under load', async () => {
    ids.push((await deploy({ environment: env, reporter: quiet() })).release);
    const [r1, , r3] = ids as [string, string, string];
    // the standby (r1) gone, as after its window
    for (const h of lab.hosts) {
      const sb = stateProc(path.join(h.deployTo, '.switchyard', 'standby'));
      process.kill(sb.pid, 'SIGKILL');
    }
    await sleep(300);
    const out = await withLoad({ environment: env, reporter: quiet(), kind: 'rollback', title: 'relaunch rollback', concurrency: 100 }, (l) => rollback(l.options()));
    expect(out.result.failed).toBe(0);
    expect(out.value.hosts.some((h) => h.standby)).toBe(false);
    // @standby refused (nothing changed), releases.sh for the targets, then the release's own exec
    for (const h of out.value.hosts) expect(h.stats.executions).toBe(3);
    expect(out.value.hosts.map((h) => h.release)).toEqual([r1, r1]);
    expect(await served()).toEqual([r1, r1]);
    console.log(`relaunch rollback: ${out.result.requests} requests, ${out.result.failed} failed`);
    void r3;
  });

  it('kill -9 of the app: the supervisor has the site answering again within 3 s (10 kills)', async () => {
    const h = lab.hosts[0]!;
    const times: number[] = [];
    for (let i = 0; i < 10; i++) {
      const was = livePid(h);
      process.kill(was.pid, 'SIGKILL');
      times.push(await healed(h, was));
      await sleep(1200); // up over a second: a crash, not a crash loop (that one backs off)
    }
    const sorted = [...times].sort((a, b) => a - b);
    console.log(`respawn after kill -9: median ${sorted[5]} ms, max ${sorted[9]} ms (${times.join(', ')})`);
    expect(sorted[0]).toBeGreaterThan(0);
    expect(sorted[9]).toBeLessThan(3000);
  });

  it('supervise --action=start --boot writes exactly one crontab line; stop removes it and stops only the supervisor', async () => {
    const before = crontab();
    try {
      await supervise({ environment: env, reporter: quiet(), action: 'start', boot: true });
      await supervise({ environment: env, reporter: quiet(), action: 'start', boot: true });
      const lines = crontab().split('\n').filter((l) => l.includes('switchyard-supervise'));
      expect(lines.length).toBe(lab.hosts.length); // one per host's site (both lab hosts are this user's)
      for (const h of lab.hosts) expect(lines.filter((l) => l.endsWith(`# switchyard-supervise ${h.deployTo} ${lab.site}`)).length).toBe(1);
      const st = await supervise({ environment: env, reporter: quiet(), action: 'status' });
      expect(st.map((s) => [s.state, s.boot])).toEqual([['running', true], ['running', true]]);

      const sv = lab.hosts.map(supervisorOf);
      const apps = lab.hosts.map(livePid);
      await supervise({ environment: env, reporter: quiet(), action: 'stop' });
      for (const s of sv) expect(alive(s)).toBe(false);
      for (const a of apps) expect(alive(a)).toBe(true);
      expect(crontab()).not.toContain('switchyard-supervise');
      expect((await status({ environment: env, reporter: quiet() })).map((s) => s.supervisor)).toEqual(['stopped', 'stopped']);
    } finally {
      restoreCrontab(before);
    }
  });

  it('a crash loop ends errored, shown by status; the next deploy starts the supervisor again', async () => {
    const flag = path.join(lab.dir, 'crash');
    const crashy = labEnv(lab, {
      appEnv: { CRASH_FLAG: flag },
      over: {
        app: { start: ['bash', '-c', 'if [ -e "$CRASH_FLAG" ]; then exit 1; fi; exec "$0" server.js --socket "$1"', process.execPath, '{socket}'], env: { CRASH_FLAG: flag }, startTimeoutSeconds: 10, health: { path: '/health', timeoutSeconds: 5 } },
        supervise: { intervalMs: 100, maxRestarts: 2 },
      },
    });
    await deploy({ environment: crashy, reporter: quiet() });
    const h = lab.hosts[0]!;
    const sv = supervisorOf(h);
    expect(alive(sv)).toBe(true);
    fs.writeFileSync(flag, '');
    process.kill(livePid(h).pid, 'SIGKILL');
    const t0 = Date.now();
    while (alive(sv) && Date.now() - t0 < 15_000) await sleep(100);
    expect(alive(sv)).toBe(false);
    const st = await status({ environment: crashy, reporter: quiet() });
    expect(st[0]!.supervisor).toMatch(/^ERRORED: .* died .*2 unstable restarts in a row: supervisor stopped$/);
    fs.rmSync(flag);
    await deploy({ environment: crashy, reporter: quiet() });
    expect(alive(supervisorOf(h))).toBe(true);
    expect((await status({ environment: crashy, reporter: quiet() }))[0]!.supervisor).toBe('running');
  });
});

function crontab(): string {
  try {
    return execFileSync('crontab', ['-l'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return '';
  }
}
function restoreCrontab(text: string): void {
  if (text) execFileSync('crontab', ['-'], { input: text });
  else if (crontab()) execFileSync('crontab', ['-r'], { stdio: 'ignore' });
}
