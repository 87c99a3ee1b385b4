import { existsSync, readFileSync, readdirSync } from 'node:fs';
import fs from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDelayProxy } from './delay-proxy';
import { startLab, type Lab, type LabHost } from './lab';

/* ----------------------------------------------------------- helpers (independent of lab.ts) */

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function ssh(lab: Lab, args: string[], extra: { timeout?: number } = {}) {
  return execa('ssh', ['-F', lab.sshConfigFile, '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=yes', ...args], {
    reject: false,
    timeout: extra.timeout ?? 30_000,
    stdin: 'ignore',
  });
}

/** pid → { ppid, start, cmd } for every live (non-zombie) process. */
function ps(): Map<number, { ppid: number; start: string; cmd: string }> {
  const out = new Map<number, { ppid: number; start: string; cmd: string }>();
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (f[0] === 'Z' || f[0] === 'X') continue;
      const cmd = readFileSync(`/proc/${e}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
      out.set(Number(e), { ppid: Number(f[1]), start: f[19]!, cmd });
    } catch {
      /* gone */
    }
  }
  return out;
}

function treeOf(pids: number[], table = ps()): number[] {
  const out = new Set(pids.filter((p) => table.has(p)));
  let grew = true;
  while (grew) {
    grew = false;
    for (const [pid, p] of table) {
      if (out.has(p.ppid) && !out.has(pid)) {
        out.add(pid);
        grew = true;
      }
    }
  }
  return [...out];
}

async function waitFor<T>(what: string, fn: () => T | undefined | false | Promise<T | undefined | false>, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

function get(port: number, host: string, urlPath = '/'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: urlPath, headers: { Host: host }, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Time until the first byte the server sends (the SSH banner) arrives. */
function timeToBanner(port: number): Promise<{ ms: number; banner: string }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('data', (d) => {
      const ms = performance.now() - t0;
      s.destroy();
      resolve({ ms, banner: d.toString('latin1') });
    });
    s.once('error', reject);
  });
}

/* ----------------------------------------------------------- the lab */

describe('lab: two real hosts', () => {
  let lab: Lab;
  let h1: LabHost;
  let h2: LabHost;

  beforeAll(async () => {
    lab = await startLab({ hosts: 2 });
    [h1, h2] = lab.hosts as [LabHost, LabHost];
  });
  afterAll(async () => {
    await lab?.stop();
  });

  it('describes each host with its own ports and short, separate paths', () => {
    expect(lab.site).toBe('app.test');
    expect(lab.dir).toMatch(/^\/.*\/syl-[A-Za-z0-9]{6}$/);
    expect(lab.hosts.map((h) => h.name)).toEqual(['h1', 'h2']);
    for (const h of lab.hosts) {
      expect(h.address).toBe('127.0.0.1');
      expect(h.root).toBe(path.join(lab.dir, h.name));
      expect(h.deployTo).toBe(path.join(lab.dir, h.name, 'app'));
      expect(h.socketDir).toBe(path.join(lab.dir, h.name, 's'));
      expect(h.liveSocket).toBe(path.join(h.socketDir, 'SOCK-app.test'));
      expect(existsSync(h.deployTo) && existsSync(h.socketDir)).toBe(true);
      expect(Buffer.byteLength(path.join(h.socketDir, 'SOCK-app.test-20261123T154219.123Z-abcdef1'))).toBeLessThan(108);
    }
    const ports = lab.hosts.flatMap((h) => [h.sshPort, h.nginxPort]);
    expect(new Set(ports).size).toBe(4);
    expect(lab.url(h1, '/health')).toBe(`http://127.0.0.1:${h1.nginxPort}/health`);
  });

  it('writes known_hosts with the keys the servers really present', async () => {
    const lines = (await fs.readFile(lab.knownHostsFile, 'utf8')).trim().split('\n');
    expect(lines).toHaveLength(2);
    for (const h of lab.hosts) {
      const scan = await execa('ssh-keyscan', ['-t', 'ed25519', '-p', String(h.sshPort), '127.0.0.1'], { timeout: 15_000 });
      const served = scan.stdout.trim().split(/\s+/).slice(1).join(' '); // "ssh-ed25519 AAAA…"
      expect(served).toMatch(/^ssh-ed25519 AAAA[A-Za-z0-9+/=]+$/);
      expect(lines).toContain(`[127.0.0.1]:${h.sshPort} ${served}`);
    }
  });

  it('accepts the lab key on every Host alias, with strict host key checking', { timeout: 180_000 }, async () => {
    for (const h of lab.hosts) {
      const r = await ssh(lab, [h.name, 'true']);
      expect(r.exitCode, r.stderr).toBe(0);
      const who = await ssh(lab, [h.name, `id -un; test -d ${h.deployTo} && test -d ${h.socketDir} && echo dirs-ok`]);
      expect(who.stdout.split('\n')).toEqual([lab.user, 'dirs-ok']);
    }
  });

  it('refuses a wrong or empty known_hosts, and a key it does not know', async () => {
    const wrong = path.join(lab.dir, 'known_hosts.wrong');
    const keys = (await fs.readFile(lab.knownHostsFile, 'utf8')).trim().split('\n').map((l) => l.split(' ').slice(1).join(' '));
    // h2's key filed under h1's port
    await fs.writeFile(wrong, `[127.0.0.1]:${h1.sshPort} ${keys[1]}\n`);
    const r = await ssh(lab, ['-o', `UserKnownHostsFile=${wrong}`, h1.name, 'true']);
    expect(r.exitCode).toBe(255);
    expect(r.stderr).toMatch(/REMOTE HOST IDENTIFICATION HAS CHANGED|Host key verification failed/);

    await fs.writeFile(wrong, '');
    const empty = await ssh(lab, ['-o', `UserKnownHostsFile=${wrong}`, '-o', 'GlobalKnownHostsFile=/dev/null', h1.name, 'true']);
    expect(empty.exitCode).toBe(255);
    expect(empty.stderr).toMatch(/Host key verification failed/);

    const otherKey = path.join(lab.dir, 'other_key');
    await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', otherKey]);
    // a key the hosts do not know (no -F: the lab config would offer the lab key too)
    const bare = await execa(
      'ssh',
      ['-F', '/dev/null', '-o', 'BatchMode=yes', '-o', `UserKnownHostsFile=${lab.knownHostsFile}`, '-o', 'StrictHostKeyChecking=yes',
        '-o', 'IdentitiesOnly=yes', '-i', otherKey, '-p', String(h2.sshPort), `${lab.user}@127.0.0.1`, 'true'],
      { reject: false, timeout: 30_000, stdin: 'ignore' },
    );
    expect(bare.exitCode).toBe(255);
    expect(bare.stderr).toMatch(/Permission denied \(publickey\)/);
  });

  it('routes the site through nginx to the live socket: 502 without one, 421 for other hosts', async () => {
    for (const h of lab.hosts) {
      expect((await lab.fetchSite(h)).status).toBe(502);
      expect((await get(h.nginxPort, 'other.test')).status).toBe(421);
      expect((await get(h.nginxPort, `app.test-20261123T154219.123Z-abcdef1`)).status).toBe(421);
    }

    // an app on h1's live socket answers through h1's nginx only
    const app = http.createServer((req, res) => {
      res.end(JSON.stringify({ host: req.headers.host, xff: req.headers['x-forwarded-for'], url: req.url }));
    });
    await new Promise<void>((resolve) => app.listen(h1.liveSocket, resolve));
    try {
      const r = await lab.fetchSite(h1, '/x?y=1');
      expect(r.status).toBe(200);
      expect(JSON.parse(r.body)).toEqual({ host: 'app.test', xff: '127.0.0.1', url: '/x?y=1' });
      // routed on $host: a port and capitals in the Host header do not matter
      const withPort = await get(h1.nginxPort, `APP.test:${h1.nginxPort}`, '/p');
      expect(withPort.status).toBe(200);
      expect(JSON.parse(withPort.body).host).toBe('app.test');
      expect((await get(h1.nginxPort, 'other.test')).status).toBe(421);
      expect((await lab.fetchSite(h2)).status).toBe(502);
    } finally {
      await new Promise<void>((resolve) => app.close(() => resolve()));
    }
    expect((await lab.fetchSite(h1)).status).toBe(502);
  });
});

describe('lab: stop()', () => {
  it('leaves no process behind: daemons, open sessions, detached apps; and may be called twice', { timeout: 180_000 }, async () => {
    const lab = await startLab({ hosts: 1 });
    let client: ReturnType<typeof ssh> | undefined;
    try {
      const h = lab.hosts[0]!;
      const sshdPid = Number(readFileSync(path.join(h.root, 'sshd.pid'), 'utf8'));
      const nginxPid = Number(readFileSync(path.join(h.root, 'nginx', 'nginx.pid'), 'utf8'));

      // an open session, and an app detached the way a deploy starts one
      client = ssh(lab, [h.name, 'sleep 300'], { timeout: 120_000 });
      const detached = await ssh(lab, [h.name, `mkdir -p ${h.deployTo}/releases/r1 && cd ${h.deployTo}/releases/r1 && { nohup setsid sleep 301 >/dev/null 2>&1 </dev/null & echo $!; }`]);
      expect(detached.exitCode, detached.stderr).toBe(0);
      const appPid = Number(detached.stdout.trim());

      const table = await waitFor('the ssh session', () => {
        const t = ps();
        const tree = treeOf([sshdPid], t);
        return tree.some((p) => t.get(p)?.cmd === 'sleep 300') ? t : undefined;
      });
      const mentioning = [...table].filter(([, p]) => p.cmd.includes(lab.dir)).map(([pid]) => pid);
      const all = treeOf([...mentioning, appPid], table);
      const before = all.map((pid) => ({ pid, start: table.get(pid)!.start, cmd: table.get(pid)!.cmd }));
      expect(all).toContain(sshdPid);
      expect(all).toContain(nginxPid);
      expect(all).toContain(appPid);
      expect(before.some((p) => p.cmd.startsWith('nginx: worker process'))).toBe(true);
      expect(before.some((p) => p.cmd === 'sleep 300')).toBe(true);

      await lab.stop();

      const after = ps();
      const survivors = before.filter((p) => after.get(p.pid)?.start === p.start);
      expect(survivors).toEqual([]);
      expect([...after.values()].filter((p) => p.cmd.includes(lab.dir))).toEqual([]);
      expect(existsSync(lab.dir)).toBe(false);
      const ended = await client;
      expect(ended.exitCode).not.toBe(0);
      await expect(lab.stop()).resolves.toBeUndefined();
    } finally {
      client?.kill('SIGKILL');
      await lab.stop();
    }
  });
});

it('lab: a test process that dies without stop() takes sshd and nginx with it', async () => {
  // A separate node process starts a lab and is then SIGKILLed, like a vitest worker on timeout.
  const here = path.dirname(fileURLToPath(import.meta.url));
  const scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'sylc-'));
  const script = path.join(scratch, 'lab-child.mjs');
  await build({
    stdin: {
      contents: `import { startLab } from './lab';\nconst lab = await startLab({ hosts: 1 });\nconsole.log(JSON.stringify({ dir: lab.dir, root: lab.hosts[0].root }));\nsetInterval(() => {}, 1000);\n`,
      resolveDir: here,
      loader: 'ts',
    },
    bundle: true,
    platform: 'node',
    format: 'esm',
    outfile: script,
    logLevel: 'silent',
  });
  const child = execa('node', [script], { reject: false, stdin: 'ignore', buffer: false });
  let tracked: { pid: number; start: string }[] = [];
  let dir: string | undefined;
  try {
    const line = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('\n')) resolve(out.split('\n')[0]!);
      });
      child.once('exit', () => reject(new Error(`lab child exited early: ${out}`)));
    });
    const info = JSON.parse(line) as { dir: string; root: string };
    dir = info.dir;
    const sshdPid = Number(readFileSync(path.join(info.root, 'sshd.pid'), 'utf8'));
    const nginxPid = Number(readFileSync(path.join(info.root, 'nginx', 'nginx.pid'), 'utf8'));
    const table = ps();
    tracked = treeOf([sshdPid, nginxPid], table).map((pid) => ({ pid, start: table.get(pid)!.start }));
    expect(tracked.length).toBeGreaterThanOrEqual(3); // sshd, nginx master, nginx worker

    child.kill('SIGKILL');
    await child;
    await waitFor('the orphaned daemons to exit', () => {
      const now = ps();
      return tracked.every((t) => now.get(t.pid)?.start !== t.start);
    }, 10_000);
  } finally {
    child.kill('SIGKILL');
    const now = ps();
    for (const t of tracked) if (now.get(t.pid)?.start === t.start) process.kill(t.pid, 'SIGKILL');
    if (dir) await fs.rm(dir, { recursive: true, force: true });
    await fs.rm(scratch, { recursive: true, force: true });
  }
});

/* ----------------------------------------------------------- the delay proxy */

describe('delay proxy', () => {
  it('delays each direction, keeps the order and counts the bytes', async () => {
    const echo = net.createServer((s) => s.pipe(s));
    await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
    const proxy = await startDelayProxy({ targetPort: (echo.address() as net.AddressInfo).port, oneWayDelayMs: 40 });
    try {
      const sock = net.connect({ host: '127.0.0.1', port: proxy.port, noDelay: true });
      await new Promise((resolve) => sock.once('connect', resolve));
      let received = '';
      sock.on('data', (d) => (received += d.toString()));

      // one round trip takes at least 2 x 40 ms
      const t0 = performance.now();
      sock.write('ping\n');
      await waitFor('the echo', () => received === 'ping\n', 5_000);
      const rtt = performance.now() - t0;
      expect(rtt).toBeGreaterThanOrEqual(80);
      expect(rtt).toBeLessThan(2_000);

      // many small chunks, written over time, come back in order
      let sent = 'ping\n';
      for (let i = 0; i < 200; i++) {
        const line = `line ${i} ${'x'.repeat(i % 50)}\n`;
        sent += line;
        sock.write(line);
        if (i % 20 === 0) await sleep(3);
      }
      await waitFor('all echoes', () => received.length === sent.length, 10_000);
      expect(received).toBe(sent);
      expect(proxy.bytes).toEqual({ up: sent.length, down: sent.length });

      // a clean end travels through too
      const closed = new Promise((resolve) => sock.once('close', resolve));
      sock.end();
      await closed;
    } finally {
      await proxy.stop();
      await new Promise((resolve) => echo.close(resolve));
    }
  });

  it('makes ssh through it slower than direct by about the added round trips', { timeout: 180_000 }, async () => {
    const lab = await startLab({ hosts: 1, nginx: false });
    try {
      const h = lab.hosts[0]!;
      const oneWay = 150;
      const rtt = 2 * oneWay;
      const port = await lab.addDelayProxy(h, oneWay);

      // the banner comes from the server: exactly one one-way trip through the proxy
      const direct = await timeToBanner(h.sshPort);
      const slow = await timeToBanner(port);
      expect(slow.banner).toBe(direct.banner);
      expect(slow.ms).toBeGreaterThanOrEqual(oneWay);
      expect(slow.ms - direct.ms).toBeLessThan(oneWay + 1_000);

      // a whole `ssh true`: key exchange, auth, channel, exec are several round trips each way
      const time = async (p: number) => {
        const t0 = performance.now();
        const r = await ssh(lab, ['-p', String(p), h.name, 'true']);
        expect(r.exitCode, r.stderr).toBe(0);
        return performance.now() - t0;
      };
      const directTimes: number[] = [];
      const slowTimes: number[] = [];
      for (let i = 0; i < 3; i++) {
        directTimes.push(await time(h.sshPort));
        slowTimes.push(await time(port));
      }
      const extra = Math.min(...slowTimes) - Math.min(...directTimes);
      const roundTrips = extra / rtt;
      console.log(`ssh true: direct ${directTimes.map(Math.round)} ms, via ${rtt} ms RTT ${slowTimes.map(Math.round)} ms: +${Math.round(extra)} ms = ${roundTrips.toFixed(1)} round trips`);
      // physical floor: at least 5 sequential round trips (kex, service, 2x auth, channel, exec)
      expect(Math.min(...slowTimes)).toBeGreaterThanOrEqual(5 * rtt);
      expect(roundTrips).toBeGreaterThanOrEqual(3);
      expect(roundTrips).toBeLessThan(15);
    } finally {
      await lab.stop();
    }
  });
});
