// Issue 2: one atomic release on one host, through a real sshd and a real nginx.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Environment } from '../../lib/environment';
import { validateEnvironment } from '../../lib/environment';
import { startLoad } from '../../lib/load/engine';
import { reportOf } from '../../lib/release/flow';
import { MemoryReporter } from '../../lib/output/reporter';
import { deploy } from '../../lib/release/deploy';
import { setup } from '../../lib/servers/setup';
import { status } from '../../lib/servers/status';
import { restart, rollback } from '../../lib/release/reuse';
import { startLab, type Lab, type LabHost } from '../support/lab';
import { labEnv, labEnvInput, REPO } from '../support/lab-env';

let lab: Lab;
let h: LabHost;
let env: Environment;

beforeAll(async () => {
  lab = await startLab({ hosts: 1 });
  h = lab.hosts[0]!;
  env = labEnv(lab);
});
afterAll(async () => {
  await lab?.stop();
});

const releasesOn = (host: LabHost) => fs.readdirSync(path.join(host.deployTo, 'releases')).sort();
const pidOf = (host: LabHost, release: string) => Number(fs.readFileSync(path.join(host.deployTo, 'releases', release, '.switchyard', 'pid'), 'utf8').split(' ')[0]);
/** Running, and not a zombie (this machine's PID 1 does not reap orphans; a server's init does). */
const alive = (pid: number) => {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
};
/** Everything on the host that a failed or refused task must not change. */
function snapshot(host: LabHost): string {
  const list = (d: string): string[] =>
    fs.existsSync(d) ? fs.readdirSync(d, { recursive: true }).map(String).filter((p) => !p.endsWith('app.log')).sort() : [];
  return JSON.stringify({ app: list(host.deployTo), sockets: list(host.socketDir) });
}

describe.sequential('one host: setup, cold-deploy, deploy', () => {
  let first = '';

  it('setup prepares the layout and cold-deploy makes the first release live', async () => {
    const rep = new MemoryReporter();
    await setup({ environment: env, reporter: rep });
    for (const d of ['releases', 'shared', '.switchyard']) expect(fs.statSync(path.join(h.deployTo, d)).isDirectory()).toBe(true);
    expect(await lab.fetchSite(h)).toMatchObject({ status: 502 }); // nothing live yet

    const r = await deploy({ environment: env, reporter: rep }, 'cold-deploy');
    first = r.release;
    expect(r.ok).toBe(true);
    expect(await lab.fetchSite(h)).toEqual({ status: 200, body: `hello from release ${first}\n` });
    expect(fs.readlinkSync(path.join(h.deployTo, 'current'))).toBe(`releases/${first}`);
    expect(r.hosts[0]).toMatchObject({ phase: 'finished', stats: { connections: 1 } });
    expect(r.hosts[0]!.stats.executions).toBe(3); // the status check, prepare, switch and retire in one exec, then the supervisor's start
  });

  it('cold-deploy refuses when a release is live, and changes nothing', async () => {
    const before = snapshot(h);
    await expect(deploy({ environment: env, reporter: new MemoryReporter() }, 'cold-deploy')).rejects.toThrow(
      new RegExp(`cold-deploy: a release is already live on h1 \\(${first.replace('.', '\\.')}\\); use gulp deploy`),
    );
    expect(snapshot(h)).toBe(before);
  });

  it('deploy switches to the new release: nginx answers it, the old process is gone, the layout is as designed', async () => {
    const oldPid = pidOf(h, first);
    const oldLiveInode = fs.statSync(h.liveSocket).ino;
    expect(alive(oldPid)).toBe(true);

    const r = await deploy({ environment: env, reporter: new MemoryReporter() });
    expect(r.ok).toBe(true);
    expect(r.hosts[0]).toMatchObject({ phase: 'finished', previous: first, stats: { connections: 1, executions: 1 } });
    expect(await lab.fetchSite(h)).toEqual({ status: 200, body: `hello from release ${r.release}\n` });
    expect(alive(oldPid)).toBe(false);
    expect(alive(pidOf(h, r.release))).toBe(true);

    // sockets: the live one is the new process's; .prev is a hard link to the old live inode; the bind name is gone
    const sockets = fs.readdirSync(h.socketDir).sort();
    expect(sockets).toEqual([`SOCK-${lab.site}`, `SOCK-${lab.site}.prev`]);
    expect(fs.statSync(h.liveSocket).isSocket()).toBe(true);
    expect(fs.statSync(h.liveSocket).ino).not.toBe(oldLiveInode);
    expect(fs.statSync(`${h.liveSocket}.prev`).ino).toBe(oldLiveInode);
    // current, releases, state
    expect(fs.readlinkSync(path.join(h.deployTo, 'current'))).toBe(`releases/${r.release}`);
    expect(releasesOn(h)).toEqual([first, r.release].sort());
    expect(fs.readFileSync(path.join(h.deployTo, '.switchyard', 'live'), 'utf8')).toMatch(new RegExp(`^${r.release.replace('.', '\\.')} ${pidOf(h, r.release)} \\d+`));
    expect(fs.existsSync(path.join(h.deployTo, '.switchyard', 'lock'))).toBe(false);
    expect(fs.readFileSync(path.join(h.deployTo, '.switchyard', 'audit.log'), 'utf8')).toContain(r.release);
    // the release carries its scripts and metadata
    const meta = JSON.parse(fs.readFileSync(path.join(h.deployTo, 'releases', r.release, '.switchyard', 'release.json'), 'utf8'));
    expect(meta).toMatchObject({ release: r.release, site: lab.site });

    const st = await status({ environment: env, reporter: new MemoryReporter() });
    expect(st[0]).toMatchObject({ host: 'h1', release: r.release, alive: true, socket: true, health: '200', lock: 'free' });
  });

  // "No root on the servers": CI runs this suite a second time as a non-root user (.ci/run), and
  // there this proves the deploy never needed root: the SSH login, the app and its files are that user's.
  it('the deploy ran as the user running the tests (not root when they are not): SSH login, live app, its files', async () => {
    const { execFileSync } = await import('node:child_process');
    const uid = process.getuid!();
    const sshUid = Number(execFileSync('ssh', ['-F', lab.sshConfigFile, 'h1', 'id -u'], { encoding: 'utf8' }).trim());
    const current = fs.readlinkSync(path.join(h.deployTo, 'current')).replace('releases/', '');
    const livePid = pidOf(h, current);
    // /proc/PID/status "Uid:" is real, effective, saved and filesystem uid
    const uidsOf = (pid: number) => /^Uid:\s+(.*)$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1]!.trim().split(/\s+/).map(Number);
    const procUids = uidsOf(livePid);
    // the lab's servers too: sshd and the nginx master
    const daemonUids = [path.join(h.root, 'sshd.pid'), path.join(h.root, 'nginx', 'nginx.pid')].map((f) => uidsOf(Number(fs.readFileSync(f, 'utf8').trim()))[1]);
    const owners = [h.deployTo, path.join(h.deployTo, 'releases', current), path.join(h.deployTo, '.switchyard', 'live'), h.liveSocket].map(
      (p) => fs.lstatSync(p).uid,
    );
    console.log(`deploy user: tests uid ${uid}, ssh id -u ${sshUid}, live app (pid ${livePid}) uids ${procUids.join(' ')}, sshd and nginx uids ${daemonUids.join(' ')}`);
    expect(sshUid).toBe(uid);
    expect(procUids).toEqual([uid, uid, uid, uid]);
    expect(owners).toEqual(owners.map(() => uid));
    expect(daemonUids).toEqual([uid, uid]);
    if (uid !== 0) {
      expect(sshUid).not.toBe(0);
      expect(procUids).not.toContain(0);
      expect(daemonUids).not.toContain(0);
    }
  });

  it('a deploy under 100 concurrent requests through nginx drops none', async () => {
    const load = startLoad({ targets: [{ url: lab.url(h), host: lab.site }], concurrency: 100, keepalive: false });
    await new Promise((r) => setTimeout(r, 500));
    const r = await deploy({ environment: env, reporter: new MemoryReporter() });
    await new Promise((r) => setTimeout(r, 500));
    const result = await load.stop();
    console.log(`deploy under load (1 host, 100 concurrent, no keep-alive): ${result.requests} requests, ${result.failed} failed, p99 ${result.latencyMs.p99} ms`);
    expect(r.ok).toBe(true);
    expect(result.requests).toBeGreaterThan(500);
    expect(result.failuresByCode).toEqual({});
    expect(result.failed).toBe(0);
    expect(await lab.fetchSite(h)).toMatchObject({ status: 200, body: `hello from release ${r.release}\n` });
  });

  it('a release that fails its health check: clear error, old release serves every request, failed process and files gone', async () => {
    const live = (await lab.fetchSite(h)).body;
    const before = releasesOn(h);
    const sick = labEnv(lab, { appEnv: { HELLO_FAIL_HEALTH: '1' } });
    const load = startLoad({ targets: [{ url: lab.url(h), host: lab.site }], concurrency: 20, keepalive: false });
    const rep = new MemoryReporter();
    const err = await deploy({ environment: sick, reporter: rep }).catch((e: Error) => e);
    const result = await load.stop();
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/no host switched: 1 of 1 failed to prepare\nh1: prepare failed: .*health/);
    const failed = reportOf(err)!;
    expect(failed.hosts[0]!.phase).not.toBe('finished');
    expect(result.failed).toBe(0);
    expect((await lab.fetchSite(h)).body).toBe(live);
    expect(releasesOn(h)).toEqual(before);
    expect(fs.readdirSync(h.socketDir).filter((s) => s.includes(failed.release))).toEqual([]);
    expect(fs.existsSync(path.join(h.deployTo, '.switchyard', 'lock'))).toBe(false);
    // nothing of the failed release is still running
    const { execFileSync } = await import('node:child_process');
    const procs = execFileSync('ps', ['-eo', 'pid,args']).toString();
    expect(procs).not.toContain(failed.release);
  });

  it('when the one exec per host ends early (killed after prepare), switch and retire run as execs of their own', async () => {
    const { execFileSync } = await import('node:child_process');
    const r = await deploy({
      environment: env,
      reporter: new MemoryReporter(),
      hooks: {
        prepared: () => {
          // release.sh on h1, waiting for the word `switch`: gone, as if its session dropped
          const ps = execFileSync('ps', ['-eo', 'pid,args']).toString().split('\n');
          const mine = ps.filter((l) => l.includes('release.sh') && l.includes(h.deployTo) && l.includes('bash -c'));
          expect(mine.length).toBeGreaterThan(0);
          for (const l of mine) process.kill(Number(l.trim().split(/\s+/)[0]), 'SIGKILL');
        },
      },
    });
    expect(r.ok).toBe(true);
    expect(r.hosts[0]).toMatchObject({ phase: 'finished', stats: { connections: 1, executions: 3 } });
    expect(await lab.fetchSite(h)).toEqual({ status: 200, body: `hello from release ${r.release}\n` });
    expect(fs.existsSync(path.join(h.deployTo, '.switchyard', 'lock'))).toBe(false);
  });

  it('a prepare that outlives ssh.commandTimeoutSeconds is TERMed by the client: it cleans up, the deploy fails naming the host', async () => {
    const live = (await lab.fetchSite(h)).body;
    const before = releasesOn(h);
    const base = labEnvInput(lab, { appEnv: { HELLO_FAIL_HEALTH: '1' } });
    const slow = validateEnvironment(
      { ...base, app: { ...base.app, health: { path: '/health', timeoutSeconds: 120 } }, ssh: { ...base.ssh, commandTimeoutSeconds: 2 } },
      { name: 'lab', file: 'env/lab.ts', root: REPO },
    );
    const started = Date.now();
    const err = await deploy({ environment: slow, reporter: new MemoryReporter() }).catch((e: Error) => e);
    expect(Date.now() - started).toBeLessThan(30_000);
    expect((err as Error).message).toMatch(/h1: prepare failed: .*(terminated by SIGTERM|timed out after 2s)/);
    const failed = reportOf(err)!;
    expect((await lab.fetchSite(h)).body).toBe(live);
    expect(releasesOn(h)).toEqual(before);
    expect(fs.readdirSync(h.socketDir).filter((s) => s.includes(failed.release))).toEqual([]);
    expect(fs.existsSync(path.join(h.deployTo, '.switchyard', 'lock'))).toBe(false);
    const { execFileSync } = await import('node:child_process');
    expect(execFileSync('ps', ['-eo', 'pid,args']).toString()).not.toContain(failed.release);
  });
});

describe.sequential('rollback and restart', () => {
  it('rollback goes back to the previous release (started again, switched, the newer one retired); a second one never back to it (bad), --to does', async () => {
    const a = await deploy({ environment: env, reporter: new MemoryReporter() });
    const b = await deploy({ environment: env, reporter: new MemoryReporter() });
    const bPid = pidOf(h, b.release);
    // a dry run reads the real state and says what it would do, changing nothing
    const before = snapshot(h);
    const dry = new MemoryReporter();
    await rollback({ environment: env, reporter: dry, dryRun: true });
    expect(dry.text()).toMatch(new RegExp(`\\[h1\\] would run: prepare\\.sh .*--release ${a.release.replace('.', '\\.')} .*--reuse`));
    expect(snapshot(h)).toBe(before);
    const r = await rollback({ environment: env, reporter: new MemoryReporter() });
    expect(r).toMatchObject({ kind: 'rollback', release: a.release, ok: true });
    expect(await lab.fetchSite(h)).toEqual({ status: 200, body: `hello from release ${a.release}\n` });
    expect(fs.readlinkSync(path.join(h.deployTo, 'current'))).toBe(`releases/${a.release}`);
    expect(alive(bPid)).toBe(false);
    expect(releasesOn(h)).toContain(b.release); // kept: it is the previous one now
    // b was rolled back from: a plain rollback goes further back, to an older good release
    const again = await rollback({ environment: env, reporter: new MemoryReporter() });
    expect(again.release < a.release).toBe(true);
    const back = await rollback({ environment: env, reporter: new MemoryReporter(), to: b.release });
    expect(back.release).toBe(b.release);
    expect(await lab.fetchSite(h)).toMatchObject({ body: `hello from release ${b.release}\n` });
  });

  it('restart replaces the running process of the same release without a failed request', async () => {
    const before = (await lab.fetchSite(h)).body;
    const current = fs.readlinkSync(path.join(h.deployTo, 'current')).replace('releases/', '');
    const oldPid = pidOf(h, current);
    const load = startLoad({ targets: [{ url: lab.url(h), host: lab.site }], concurrency: 100, keepalive: true });
    while (load.progress().requests < 200) await new Promise((r) => setTimeout(r, 50));
    const r = await restart({ environment: env, reporter: new MemoryReporter() });
    await new Promise((r) => setTimeout(r, 300));
    const result = await load.stop();
    console.log(`restart under load (100 concurrent, keep-alive): ${result.requests} requests, ${result.failed} failed`);
    expect(r).toMatchObject({ kind: 'restart', release: current, ok: true });
    expect(result.failed).toBe(0);
    expect(result.requests).toBeGreaterThan(500);
    expect((await lab.fetchSite(h)).body).toBe(before);
    expect(pidOf(h, current)).not.toBe(oldPid);
    expect(alive(oldPid)).toBe(false);
    expect(alive(pidOf(h, current))).toBe(true);
  });

  it('rollback with nothing to go back to changes nothing and says why', async () => {
    const fresh = await startLab({ hosts: 1 });
    try {
      const e = labEnv(fresh);
      await setup({ environment: e, reporter: new MemoryReporter() });
      await deploy({ environment: e, reporter: new MemoryReporter() }, 'cold-deploy');
      await expect(rollback({ environment: e, reporter: new MemoryReporter() })).rejects.toThrow(/rollback: nothing changed\nh1: no good release before \S+ to roll back to$/);
    } finally {
      await fresh.stop();
    }
  });
});

describe('bad input changes nothing on the server', () => {
  const attempt = (e: Environment) => deploy({ environment: e, reporter: new MemoryReporter() });

  it('unreachable host', async () => {
    const before = snapshot(h);
    const input = labEnvInput(lab);
    input.hosts[0]!.port = 1; // nothing listens there
    const e = validateEnvironment(input, { name: 'lab', file: 'env/lab.ts', root: REPO });
    await expect(attempt(e)).rejects.toThrow(/host h1 \(.*@127\.0\.0\.1:1\): cannot connect: ECONNREFUSED/);
    expect(snapshot(h)).toBe(before);
  });

  it('unknown host key, then changed host key', async () => {
    const before = snapshot(h);
    const empty = path.join(lab.dir, 'known_hosts.empty');
    fs.writeFileSync(empty, '');
    const unknown = labEnvInput(lab);
    unknown.ssh = { ...unknown.ssh, knownHostsFile: empty };
    await expect(attempt(validateEnvironment(unknown, { name: 'lab', file: 'env/lab.ts', root: REPO }))).rejects.toThrow(
      new RegExp(`host h1 .*: unknown host key ssh-ed25519 SHA256:\\S+ for \\[127\\.0\\.0\\.1\\]:${h.sshPort} \\(not in ${empty}[;)].*ssh-keyscan -p ${h.sshPort} -t ssh-ed25519 127\\.0\\.0\\.1 >> ${empty}`),
    );
    // a known_hosts line for the same host with a different key of the same type
    const other = fs.readFileSync(lab.knownHostsFile, 'utf8').split('\n').find((l) => l.startsWith(`[127.0.0.1]:${h.sshPort} `))!;
    const fake = other.replace(/ssh-ed25519 \S+/, 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBnYzPGmvrJUF1lhGFJ9xSbpBz1m3dx1ygdDZmJqQG5R');
    const changed = path.join(lab.dir, 'known_hosts.changed');
    fs.writeFileSync(changed, fake + '\n');
    const ch = labEnvInput(lab);
    ch.ssh = { ...ch.ssh, knownHostsFile: changed };
    await expect(attempt(validateEnvironment(ch, { name: 'lab', file: 'env/lab.ts', root: REPO }))).rejects.toThrow(
      /HOST KEY CHANGED: the server offered ssh-ed25519 SHA256:\S+ but .*known_hosts\.changed:1 .* ssh-keygen -R '\[127\.0\.0\.1\]:\d+'/,
    );
    expect(snapshot(h)).toBe(before);
  });

  it('a host alias from ssh_config works, with the key checked', async () => {
    const input = labEnvInput(lab);
    input.hosts = [{ name: 'h1', roles: ['web', 'app'], deployTo: h.deployTo, socketDir: h.socketDir }];
    input.ssh = { configFile: lab.sshConfigFile, agent: false };
    const e = validateEnvironment(input, { name: 'lab', file: 'env/lab.ts', root: REPO });
    const st = await status({ environment: e, reporter: new MemoryReporter() });
    expect(st[0]).toMatchObject({ host: 'h1', alive: true });
  });
});

describe('values with shell metacharacters are passed literally', () => {
  it('in a start-command argument, an app env value and a shared path', async () => {
    const marker = path.join(lab.dir, 'pwned');
    const e = labEnv(lab, {
      appEnv: { NOTE: `$(touch ${marker})` },
      over: {
        shared: [`logs;touch ${marker.slice(1)}`, 'up$(touch x)'],
        app: {
          start: [process.execPath, 'server.js', '--socket', '{socket}', `'; touch ${marker}; '`, `$(touch ${marker})`, '`touch x`'],
          env: { NOTE: `$(touch ${marker})"'` },
          startTimeoutSeconds: 10,
          health: { path: '/health', timeoutSeconds: 5 },
        },
      },
    });
    const r = await deploy({ environment: e, reporter: new MemoryReporter() });
    expect(r.ok).toBe(true);
    expect(fs.existsSync(marker)).toBe(false);
    expect(fs.existsSync(path.join(h.deployTo, 'x'))).toBe(false);
    // the odd names exist literally, where they were asked for
    expect(fs.existsSync(path.join(h.deployTo, 'shared', 'up$(touch x)'))).toBe(true);
    const cmdline = fs.readFileSync(`/proc/${pidOf(h, r.release)}/cmdline`, 'utf8').split('\0');
    expect(cmdline).toContain(`$(touch ${marker})`);
    expect(cmdline).toContain('`touch x`');
  });
});
