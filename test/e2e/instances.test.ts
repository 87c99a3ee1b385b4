// Issue 11, the spawner: `app.instances: 3` runs three processes of the release per host, each on
// its own socket behind one nginx upstream. Through real sshd and nginx: three serve; a deploy and
// a restart under 100 concurrent connections replace all three with zero failed requests; kill -9
// of one instance is healed by the supervisor.
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Environment } from '../../lib/environment';
import { withLoad } from '../../lib/load/under-load';
import { MemoryReporter } from '../../lib/output/reporter';
import { deploy } from '../../lib/release/deploy';
import { restart } from '../../lib/release/reuse';
import { setup } from '../../lib/servers/setup';
import { status } from '../../lib/servers/status';
import { startLab, type Lab, type LabHost } from '../support/lab';
import { labEnv } from '../support/lab-env';

let lab: Lab;
let env: Environment;
const quiet = () => new MemoryReporter();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  lab = await startLab({ hosts: 1, instances: 3 });
  // the app says which instance answered: three of them answer through the one upstream
  env = labEnv(lab, { over: { supervise: { intervalMs: 100 } } });
  env = { ...env, app: { ...env.app, instances: 3 } };
  await setup({ environment: env, reporter: quiet() });
});
afterAll(async () => {
  await lab?.stop();
});

/** `R PID ST PID ST …` of the live file: the release and its processes. */
function live(h: LabHost): { release: string; procs: { pid: number; starttime: string }[] } {
  const [release, ...w] = fs.readFileSync(path.join(h.deployTo, '.switchyard', 'live'), 'utf8').trim().split(' ');
  const procs = [];
  for (let i = 0; i + 1 < w.length; i += 2) procs.push({ pid: Number(w[i]), starttime: w[i + 1]! });
  return { release: release!, procs };
}
function alive(p: { pid: number; starttime: string }): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${p.pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return f[0] !== 'Z' && f[19] === p.starttime;
  } catch {
    return false;
  }
}

/** GET / through the host's nginx (Host: the site): the x-pid of the process that answered. */
function answeringPid(h: LabHost): Promise<number | undefined> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port: h.nginxPort, path: '/', headers: { host: lab.site, connection: 'close' } }, (res) => {
      res.resume();
      resolve(res.statusCode === 200 ? Number(res.headers['x-pid']) : undefined);
    });
    req.on('error', () => resolve(undefined));
  });
}

describe.sequential('app.instances: 3', () => {
  it('cold-deploy: three processes, three live sockets, nginx spreads requests over them', async () => {
    await deploy({ environment: env, reporter: quiet() }, 'cold-deploy');
    const h = lab.hosts[0]!;
    const l = live(h);
    expect(l.procs.length).toBe(3);
    for (const p of l.procs) expect(alive(p)).toBe(true);
    expect(fs.readdirSync(h.socketDir).filter((f) => !f.endsWith('.lock')).sort()).toEqual([`SOCK-${lab.site}`, `SOCK-${lab.site}@2`, `SOCK-${lab.site}@3`]);
    const st = await status({ environment: env, reporter: quiet() });
    expect(st[0]).toMatchObject({ release: l.release, alive: true });
    // each instance answers on its own socket: every one of them is in nginx's rotation
    const seen = new Set<number>();
    for (let i = 0; i < 30 && seen.size < 3; i++) {
      const pid = await answeringPid(h);
      if (pid) seen.add(pid);
    }
    expect([...seen].sort()).toEqual(l.procs.map((p) => p.pid).sort());
  });

  it('a deploy and a restart under 100 concurrent connections replace all three: zero failed', async () => {
    const h = lab.hosts[0]!;
    const before = live(h).procs;
    const out = await withLoad({ environment: env, reporter: quiet(), kind: 'deploy', title: 'instances', concurrency: 100 }, async (l) => {
      const d = await deploy(l.options('deploy '));
      const mid = live(h).procs;
      const r = await restart(l.options('restart '));
      return { d, r, mid };
    });
    expect(out.result.failed).toBe(0);
    console.log(`instances 3, deploy + restart under load: ${out.result.requests} requests, ${out.result.failed} failed`);
    const after = live(h).procs;
    expect(after.length).toBe(3);
    for (const p of [...before, ...out.value.mid]) expect(alive(p)).toBe(false);
    for (const p of after) expect(alive(p)).toBe(true);
  });

  it('kill -9 of one instance: the supervisor has all three up again', async () => {
    const h = lab.hosts[0]!;
    const was = live(h).procs;
    process.kill(was[1]!.pid, 'SIGKILL');
    const t0 = Date.now();
    while (Date.now() - t0 < 10_000) {
      const now = live(h).procs;
      if (now.length === 3 && now.every(alive) && now[1]!.pid !== was[1]!.pid && !fs.existsSync(path.join(h.deployTo, '.switchyard', 'lock'))) break;
      await sleep(50);
    }
    const now = live(h).procs;
    expect(now.every(alive)).toBe(true);
    expect(now[1]!.pid).not.toBe(was[1]!.pid);
    console.log(`one instance killed: all three up again after ${Date.now() - t0} ms`);
    expect((await lab.fetchSite(h)).status).toBe(200);
  });
});
