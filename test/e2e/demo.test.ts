// Issue 5: `npx gulp demo` works on a fresh clone, as the README's quick start says
// (`sudo scripts/install-deps.sh && npm ci && npx gulp demo`): the repository's HEAD is cloned
// into a temp dir, node_modules linked in instead of `npm ci` (no network), and the demo run as a
// child process. It uses a free port (SWITCHYARD_LOCAL_LISTEN, so a demo you left running on
// 8080 after the quick start does not get in the way) and .switchyard/local/ inside the clone; afterwards the
// private nginx and the apps it started are stopped by their pid files, and the clone removed.
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTasks } from '../../index';
import { REPO } from '../support/lab-env';

let PORT = 0; // picked free in beforeAll
let dir: string; // the temp dir
let clone: string;

/** "PID STARTTIME" identity, null when gone; a zombie is dead (this machine's PID 1 does not reap orphans). */
function procStart(pid: number): string | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return f[0] === 'Z' || f[0] === 'X' ? null : (f[19] ?? null);
  } catch {
    return null;
  }
}

/** TERM, up to 5 s, then KILL: each pid only while it is still the process we mean (same start time). */
async function stopAll(pids: { pid: number; start: string | null }[]): Promise<void> {
  const mine = pids.filter((p) => p.start !== null && procStart(p.pid) === p.start);
  const signal = (s: NodeJS.Signals) => {
    for (const p of mine) {
      try {
        if (procStart(p.pid) === p.start) process.kill(p.pid, s);
      } catch {
        /* gone */
      }
    }
  };
  signal('SIGTERM');
  for (let i = 0; i < 50 && mine.some((p) => procStart(p.pid) === p.start); i++) await new Promise((r) => setTimeout(r, 100));
  signal('SIGKILL');
}

/** The processes the demo left running: nginx (its pid file), the apps (each release's pid file), anything whose cwd is in the clone. */
function leftRunning(): { pid: number; start: string | null; what: string }[] {
  const out: { pid: number; start: string | null; what: string }[] = [];
  const app = path.join(clone, '.switchyard', 'local', 'app');
  const nginxPid = path.join(app, 'nginx', 'nginx.pid');
  if (fs.existsSync(nginxPid)) {
    const pid = Number(fs.readFileSync(nginxPid, 'utf8').trim());
    if (pid > 0) out.push({ pid, start: procStart(pid), what: 'nginx' });
  }
  const releases = path.join(app, 'releases');
  for (const r of fs.existsSync(releases) ? fs.readdirSync(releases) : []) {
    const f = path.join(releases, r, '.switchyard', 'pid');
    if (!fs.existsSync(f)) continue;
    const [pid, start] = fs.readFileSync(f, 'utf8').trim().split(' ');
    if (Number(pid) > 0 && procStart(Number(pid)) === start) out.push({ pid: Number(pid), start: start ?? null, what: `app ${r}` });
  }
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e) || out.some((p) => p.pid === Number(e))) continue;
    try {
      if (fs.readlinkSync(`/proc/${e}/cwd`).startsWith(clone + path.sep)) out.push({ pid: Number(e), start: procStart(Number(e)), what: 'in the clone' });
    } catch {
      /* gone, or not ours to read */
    }
  }
  return out;
}

function run(cmd: string, args: string[], timeoutMs: number): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const env = { ...process.env };
    delete env.SWITCHYARD_ENV_DIR; // the clone's own env/ dir, as on a fresh machine
    env.SWITCHYARD_LOCAL_LISTEN = `127.0.0.1:${PORT}`;
    execFile(cmd, args, { cwd: clone, env, timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code as number) : null) : 0;
      resolve({ code, out: `${stdout}${stderr}` });
    });
  });
}

/** GET / with a Host header (fetch() cannot set one). */
const get = (port: number, host: string) =>
  new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', headers: { host }, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.setTimeout(5000, () => req.destroy(new Error('no answer in 5 s')));
  });

const portTaken = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });

beforeAll(async () => {
  PORT = await new Promise<number>((resolve) => {
    const srv = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'syd-'));
  clone = path.join(dir, 'c');
  execFileSync('git', ['clone', '--quiet', REPO, clone], { stdio: ['ignore', 'ignore', 'pipe'] });
  fs.symlinkSync(path.join(REPO, 'node_modules'), path.join(clone, 'node_modules'));
});

afterAll(async () => {
  if (clone) await stopAll(leftRunning());
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe.sequential('a fresh clone, as the README says', () => {
  it('npx gulp --tasks lists every task with its description', async () => {
    const { code, out } = await run('npx', ['gulp', '--tasks'], 60_000);
    expect(code, out).toBe(0);
    const tasks = Object.entries(createTasks({}));
    expect(tasks.map(([n]) => n)).toEqual(expect.arrayContaining(['setup', 'cold-deploy', 'deploy', 'status', 'loadtest', 'verify', 'demo']));
    for (const [name, fn] of tasks) {
      expect(fn.description.length).toBeGreaterThan(10);
      expect(out, name).toMatch(new RegExp(`── ${name} +${fn.description.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\n`));
    }
    expect(out).toMatch(/── verify +.*\n(│ +--.*\n)*│ +--cycles/);
  }, 90_000);

  it('npx gulp demo: setup, cold-deploy, two deploys under load with 0 failed; summary and report printed', async () => {
    expect(await portTaken(PORT), `127.0.0.1:${PORT} is already in use (another gulp demo still running?): the demo needs it`).toBe(false);
    const t0 = Date.now();
    const { code, out } = await run('npx', ['gulp', 'demo'], 170_000);
    console.log(`gulp demo on a fresh clone: exit ${code} after ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    console.log(out.split('\n').filter((l) => /requests: |failed: |latency ms: |report: /.test(l)).join('\n'));
    expect(code, out).toBe(0);
    expect(out).toContain('demo 2/3: nothing is live yet: cold-deploy');
    expect(out.match(/verify: deploy \d of 2 under load/g)).toEqual(['verify: deploy 1 of 2 under load', 'verify: deploy 2 of 2 under load']);
    // the summary: requests, failed 0, latency
    const m = /requests: (\d+) in [\d.]+ s, [\d.]+ req\/s \(concurrency 100, keep-alive on, 1 target\)\n(?:\[[\d:]+\] )?failed: 0\n(?:\[[\d:]+\] )?latency ms: p50 /.exec(out);
    expect(m, out).not.toBeNull();
    expect(Number(m![1])).toBeGreaterThan(500);
    const report = /report: (reports\/verify-local-\S+\.html) \(JSON: (reports\/verify-local-\S+\.json)\)/.exec(out);
    expect(report, out).not.toBeNull();
    expect(fs.existsSync(path.join(clone, report![1]!)) && fs.existsSync(path.join(clone, report![2]!))).toBe(true);
    // still serving after the demo, from the clone's own .switchyard/local/
    const live = fs.readFileSync(path.join(clone, '.switchyard', 'local', 'app', '.switchyard', 'live'), 'utf8').split(' ')[0];
    expect(await get(PORT, 'localhost')).toEqual({ status: 200, body: `hello from release ${live}\n` });
    // what is left running is exactly the private nginx and the live app, and it stops by pid
    const running = leftRunning();
    expect(running.filter((p) => p.what === 'nginx')).toHaveLength(1);
    expect(running.filter((p) => p.what.startsWith('app ')).map((p) => p.what)).toEqual([`app ${live}`]);
    await stopAll(running);
    expect(leftRunning().filter((p) => procStart(p.pid) !== null)).toEqual([]);
    expect(await portTaken(PORT)).toBe(false);
  }, 180_000);
});
