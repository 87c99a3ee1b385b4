// Issue 3: many hosts, one transaction, through real sshd and nginx hosts.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Environment, EnvironmentInput } from '../../lib/environment';
import { validateEnvironment } from '../../lib/environment';
import { startLoad } from '../../lib/load/engine';
import { reportOf, type ReleaseReport } from '../../lib/release/flow';
import { MemoryReporter } from '../../lib/output/reporter';
import { deploy } from '../../lib/release/deploy';
import { setup } from '../../lib/servers/setup';
import { unlock } from '../../lib/servers/unlock';
import { startLab, type Lab, type LabHost } from '../support/lab';
import { labEnvInput, REPO } from '../support/lab-env';

let lab: Lab;
let appHosts: LabHost[];
let db: LabHost;
let envDir: string;

// h1 web+app (primary), h2 web+app, h3 app, h4 db (primary): the app runs on h1-h3; h4 gets each
// release's files only (no process), its `current` moving with the others.
const ROLES = [['web', 'app'], ['web', 'app'], ['app'], ['db']];

/** The app starts slowly or fails its health check on a host when a flag file is in its shared dir. */
function input(over: Partial<EnvironmentInput> = {}, appEnv: Record<string, string> = {}): EnvironmentInput {
  const base = labEnvInput(lab, { roles: (i) => ROLES[i]!, primary: (i) => (i === 0 || i === 3 ? true : undefined), appEnv });
  return {
    ...base,
    shared: ['flags'],
    app: {
      ...base.app,
      start: [
        '/bin/sh',
        '-c',
        '[ -e flags/slow ] && sleep 2; [ -e flags/fail ] && export HELLO_FAIL_HEALTH=1; exec "$0" server.js --socket "$1"',
        process.execPath,
        '{socket}',
      ],
      env: appEnv,
    },
    ...over,
  };
}
const envOf = (i: EnvironmentInput): Environment => validateEnvironment(i, { name: 'lab', file: 'env/lab.ts', root: REPO });

function flag(h: LabHost, name: 'slow' | 'fail', on: boolean): void {
  const dir = path.join(h.deployTo, 'shared', 'flags');
  fs.mkdirSync(dir, { recursive: true });
  if (on) fs.writeFileSync(path.join(dir, name), '');
  else fs.rmSync(path.join(dir, name), { force: true });
}

/** Each app host: the release nginx serves; the db host's `current`; whether anything of an unfinished deploy is left. */
async function state(): Promise<{ served: string[]; files: string; locked: string[]; staged: string[] }> {
  const served: string[] = [];
  const locked: string[] = [];
  const staged: string[] = [];
  for (const h of appHosts) {
    const r = await lab.fetchSite(h);
    served.push(r.status === 200 ? r.body.replace(/^hello from release /, '').trim() : `HTTP ${r.status}`);
  }
  for (const h of lab.hosts) {
    if (fs.existsSync(path.join(h.deployTo, '.switchyard', 'lock'))) locked.push(h.name);
    for (const s of fs.readdirSync(h.socketDir)) if (!s.endsWith(lab.site) && !s.endsWith('.prev')) staged.push(`${h.name}:${s}`);
    for (const r of fs.readdirSync(path.join(h.deployTo, 'releases'))) {
      if (fs.existsSync(path.join(h.deployTo, 'releases', r, '.switchyard', 'fresh'))) staged.push(`${h.name}:${r}`);
      // unpacked and never switched to: what an undo removes
      if (!fs.existsSync(path.join(h.deployTo, 'releases', r, '.switchyard', 'live-at'))) staged.push(`${h.name}:${r} never live`);
    }
  }
  const files = path.basename(fs.readlinkSync(path.join(db.deployTo, 'current')));
  return { served, files, locked, staged };
}

async function expectConsistentOn(release: string): Promise<void> {
  expect(await state()).toEqual({ served: appHosts.map(() => release), files: release, locked: [], staged: [] });
}

const quiet = () => new MemoryReporter();
let live = '';

beforeAll(async () => {
  lab = await startLab({ hosts: 4 });
  appHosts = lab.hosts.slice(0, 3);
  db = lab.hosts[3]!;
  envDir = fs.mkdtempSync(path.join(lab.dir, 'env-'));
  const env = envOf(input());
  await setup({ environment: env, reporter: quiet() });
  live = (await deploy({ environment: env, reporter: quiet() }, 'cold-deploy')).release;
});
afterAll(async () => {
  await lab?.stop();
});

describe.sequential('many hosts, one transaction', () => {
  it('deploys to every host with one release id (the db host gets its files only); a hook runs once on the db primary only', async () => {
    const marker = path.join(lab.dir, 'migrations.log');
    const hooks: string[] = [];
    const r = await deploy({
      environment: envOf(input()),
      reporter: quiet(),
      hooks: {
        started: () => void hooks.push('started'),
        // argv, quoted word by word; $SSH_CONNECTION names the sshd port it ran through
        prepared: async (ctx) => {
          hooks.push('prepared');
          await ctx.session.run({ role: 'db', primary: true }, ['/bin/sh', '-c', 'echo "migrate $1 via $SSH_CONNECTION" >> "$2"', '_', ctx.release, marker]);
        },
        switched: () => void hooks.push('switched'),
        finished: () => void hooks.push('finished'),
        failed: () => void hooks.push('failed'),
        rolledBack: () => void hooks.push('rolledBack'),
      },
    });
    expect(r.ok).toBe(true);
    expect(hooks).toEqual(['started', 'prepared', 'switched', 'finished']);
    expect(r.hosts.map((h) => [h.host, h.phase, h.release, h.filesOnly])).toEqual([...appHosts.map((h) => [h.name, 'finished', r.release, undefined]), ['h4', 'finished', r.release, true]]);
    await expectConsistentOn(r.release);
    const lines = fs.readFileSync(marker, 'utf8').trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(new RegExp(`^migrate ${r.release.replace('.', '\\.')} via 127\\.0\\.0\\.1 \\d+ 127\\.0\\.0\\.1 ${lab.hosts[3]!.sshPort}$`));
    // economy: one connection per host, and one execution (release.sh: prepare, then switch and
    // retire at the client's word); the issue allows three. The db host: and the hook's command.
    for (const h of r.hosts) expect(h.stats, h.host).toMatchObject({ connections: 1, executions: h.host === 'h4' ? 2 : 1 });
    live = r.release;
  });

  it('a health check failing on one host: no host switches, staged releases and processes are gone, the host is named', async () => {
    flag(appHosts[1]!, 'fail', true);
    try {
      const hooks: string[] = [];
      const record = (name: string) => () => void hooks.push(name);
      const err = (await deploy({
        environment: envOf(input()),
        reporter: quiet(),
        hooks: { started: record('started'), prepared: record('prepared'), switched: record('switched'), rolledBack: record('rolledBack'), failed: record('failed') },
      }).catch((e: Error) => e)) as Error;
      expect(hooks).toEqual(['started', 'rolledBack', 'failed']);
      expect(err.message).toMatch(/^no host switched: 1 of 4 failed to prepare\nh2: prepare failed: .*health/);
      expect(reportOf(err)!.hosts.map((h) => h.phase)).toEqual(['rolled-back', 'failed', 'rolled-back', 'rolled-back']);
      expect(reportOf(err)!.switchOrder).toEqual([]);
      await expectConsistentOn(live);
    } finally {
      flag(appHosts[1]!, 'fail', false);
    }
  });

  it('a switch failing on one host puts the switched ones back at once: zero failed requests under 100 concurrent', async () => {
    const load = startLoad({
      targets: appHosts.slice(0, 2).map((h) => ({ url: lab.url(h), host: lab.site, label: h.name })),
      concurrency: 100,
      keepalive: false,
    });
    while (load.progress().requests < 200) await new Promise((r) => setTimeout(r, 50));
    const err = (await deploy({
      environment: envOf(input()),
      reporter: quiet(),
      // inject: h3's staged socket disappears between prepare and switch, so its switch is refused (exit 7)
      hooks: { prepared: (ctx) => fs.rmSync(path.join(appHosts[2]!.socketDir, `SOCK-${lab.site}-${ctx.release}`)) },
    }).catch((e: Error) => e)) as Error;
    await new Promise((r) => setTimeout(r, 300));
    const result = await load.stop();
    console.log(`switch failure on h3 under load (h1+h2, 100 concurrent): ${result.requests} requests, ${result.failed} failed`);
    expect(err.message).toMatch(/^switch failed on h3: every host goes back\nh3: switch failed: .*staged socket/);
    const report = reportOf(err)!;
    expect(report.hosts.map((h) => h.phase)).toEqual(['rolled-back', 'rolled-back', 'failed', 'rolled-back']);
    expect(result.requests).toBeGreaterThan(1000);
    expect(result.failuresByCode).toEqual({});
    await expectConsistentOn(live);
  });

  it('--batch=1 switches one host at a time, in order', async () => {
    const r = await deploy({ environment: envOf(input()), reporter: quiet(), batch: '1' });
    expect(r.switchOrder).toEqual(['h1', 'h2', 'h3', 'h4']);
    expect(r.hosts.map((h) => h.batch)).toEqual([1, 2, 3, 4]);
    await expectConsistentOn(r.release);
    live = r.release;
  });

  it('--parallel=1 works on one host at a time', async () => {
    const spans = new Map<string, { start: number; end: number }>();
    const r = await deploy({
      environment: envOf(input()),
      reporter: quiet(),
      parallel: 1,
      onEvent: (e) => {
        if (e.step !== 'prepare') return;
        const s = spans.get(e.host) ?? { start: 0, end: 0 };
        s[e.at === 'start' ? 'start' : 'end'] = e.time;
        spans.set(e.host, s);
      },
    });
    const sorted = [...spans.values()].sort((a, b) => a.start - b.start);
    expect(sorted).toHaveLength(4);
    for (let i = 1; i < sorted.length; i++) expect(sorted[i]!.start).toBeGreaterThanOrEqual(sorted[i - 1]!.end);
    live = r.release;
    await expectConsistentOn(live);
  });

  it('--roles and --hosts select exactly what they say', async () => {
    const web = await deploy({ environment: envOf(input()), reporter: quiet(), roles: ['web'] });
    expect(web.hosts.map((h) => h.host)).toEqual(['h1', 'h2']);
    expect((await state()).served).toEqual([web.release, web.release, live]);
    const one = await deploy({ environment: envOf(input()), reporter: quiet(), hosts: ['h3'] });
    expect(one.hosts.map((h) => h.host)).toEqual(['h3']);
    expect((await state()).served).toEqual([web.release, web.release, one.release]);
    await expect(deploy({ environment: envOf(input()), reporter: quiet(), roles: ['cache'] })).rejects.toThrow(/--roles: unknown role "cache"/);
    await expect(deploy({ environment: envOf(input()), reporter: quiet(), hosts: ['h9'] })).rejects.toThrow(/--hosts: unknown host "h9"/);
    const all = await deploy({ environment: envOf(input()), reporter: quiet() });
    live = all.release;
    await expectConsistentOn(live);
  });

  it('--dry-run prints every remote command per host and changes nothing anywhere', async () => {
    const snap = () =>
      JSON.stringify(lab.hosts.map((h) => [fs.readdirSync(h.deployTo, { recursive: true }).map(String).filter((p) => !p.endsWith('.log')).sort(), fs.readdirSync(h.socketDir).sort()]));
    const before = snap();
    const rep = new MemoryReporter();
    const r = await deploy({ environment: envOf(input()), reporter: rep, dryRun: true });
    expect(r.ok).toBe(true);
    for (const h of appHosts) {
      for (const step of ['prepare.sh', 'switch.sh', 'retire.sh']) {
        expect(rep.lines.some((l) => l.line.startsWith(`[${h.name}] would run: `) && l.line.includes(step))).toBe(true);
      }
    }
    expect(rep.lines.filter((l) => l.line.includes('would run:'))).toHaveLength(12);
    expect(snap()).toBe(before);
    for (const h of r.hosts) expect(h.stats).toMatchObject({ connections: 0, executions: 0 });
  });

  it('a second deploy while one runs is refused, names the first, and leaves it alone', async () => {
    for (const h of appHosts) flag(h, 'slow', true);
    try {
      let firstRelease = '';
      const first = deploy({ environment: envOf(input()), reporter: quiet(), onReport: (r) => (firstRelease = r.release) });
      await new Promise((r) => setTimeout(r, 700)); // the first holds the locks, its apps are starting
      const err = (await deploy({ environment: envOf(input()), reporter: quiet() }).catch((e: Error) => e)) as Error;
      const done = await first;
      expect(err.message).toMatch(/deploy lock is held: release=\S+ .*@.* pid=\d+/);
      expect(err.message).toContain(`release=${done.release}`);
      expect(done.ok).toBe(true);
      expect(firstRelease).toBe(done.release);
      live = done.release;
      await expectConsistentOn(live);
    } finally {
      for (const h of appHosts) flag(h, 'slow', false);
    }
  });

  it('the JSON report has every host, its phase, seconds and counts', async () => {
    const file = path.join(lab.dir, 'report.json');
    const r = await deploy({ environment: envOf(input()), reporter: quiet(), report: file });
    const json = JSON.parse(fs.readFileSync(file, 'utf8')) as ReleaseReport;
    expect(json).toMatchObject({ kind: 'deploy', release: r.release, ok: true, site: lab.site });
    expect(json.hosts.map((h) => [h.host, h.phase, h.stats.connections, h.stats.executions])).toEqual([
      ['h1', 'finished', 1, 1],
      ['h2', 'finished', 1, 1],
      ['h3', 'finished', 1, 1],
      ['h4', 'finished', 1, 1],
    ]);
    // bytes: the header, the links, the package of what changed (the rest is linked from the live release)
    expect(json.hosts.every((h) => h.seconds > 0 && h.stats.bytesUploaded > 100)).toBe(true);
    live = r.release;
  });
});

describe.sequential('interrupting the deploy process (gulp, as a user runs it)', () => {
  const gulp = path.join(REPO, 'node_modules', '.bin', 'gulp');

  function writeEnv(i: EnvironmentInput): void {
    fs.writeFileSync(path.join(envDir, 'lab.json'), JSON.stringify(i));
  }

  /** Runs `gulp <task> --env=lab`, sends `signal` once `when` holds (a line pattern or a check); resolves with exit code and output. */
  function run(
    task: string,
    extra: string[] = [],
    when?: RegExp | (() => boolean),
    signal: NodeJS.Signals = 'SIGINT',
  ): Promise<{ code: number | null; out: string; signalled: boolean }> {
    return new Promise((resolve) => {
      const child = spawn(gulp, [task, '--env=lab', `--env-dir=${envDir}`, '--verbose', ...extra], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let signalled = false;
      const check = () => {
        if (!when || signalled) return;
        if (typeof when === 'function' ? when() : when.test(out)) {
          signalled = true;
          child.kill(signal);
        }
      };
      const poll = setInterval(check, 50);
      const onData = (b: Buffer) => {
        out += b.toString();
        check();
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', onData);
      child.on('close', (code) => {
        clearInterval(poll);
        resolve({ code, out, signalled });
      });
    });
  }

  it('SIGINT while preparing: every host rolled back and unlocked, exit non-zero', async () => {
    for (const h of appHosts) flag(h, 'slow', true);
    writeEnv(input());
    try {
      const r = await run('deploy', [], /\] prepare: /);
      expect(r.signalled).toBe(true);
      expect(r.code).not.toBe(0);
      expect(r.out).toMatch(/SIGINT: stopping at the next safe point/);
      expect(r.out).toMatch(/deploy interrupted: every host is put back/);
      await expectConsistentOn(live);
    } finally {
      for (const h of appHosts) flag(h, 'slow', false);
    }
  });

  it('SIGINT between switch batches: the hosts already switched go back, exit non-zero', async () => {
    writeEnv(input({}, { HELLO_DELAY_MS: '800' })); // slow answers keep each batch's check open
    const r = await run('deploy', ['--batch=1'], /\[h1\] switched: /);
    expect(r.signalled).toBe(true);
    expect(r.code).not.toBe(0);
    expect(r.out).toMatch(/\[h1\] rolled back/);
    await expectConsistentOn(live);
  });

  it('SIGINT while retiring: past the point of no return, the deploy finishes everywhere, exit 0', async () => {
    writeEnv(input());
    const r = await run('deploy', [], /\] retire: retire\.sh/);
    expect(r.signalled).toBe(true);
    expect(r.code).toBe(0);
    const release = /deploy (\S+) to lab \(app\.test\): OK/.exec(r.out)?.[1];
    expect(release).toBeTruthy();
    live = release!;
    await expectConsistentOn(live);
  });

  it('SIGKILL while preparing: the next deploy names the stale lock; after gulp unlock it succeeds', async () => {
    for (const h of appHosts) flag(h, 'slow', true);
    writeEnv(input());
    try {
      // killed once every host holds the lock and its new app is starting (lock/fresh: unpacked)
      const lockedEverywhere = () => lab.hosts.every((h) => fs.existsSync(path.join(h.deployTo, '.switchyard', 'lock', 'fresh')));
      const killed = await run('deploy', [], lockedEverywhere, 'SIGKILL');
      expect(killed.signalled).toBe(true);
      await new Promise((r) => setTimeout(r, 300));
      const refused = await run('deploy');
      expect(refused.code).not.toBe(0);
      expect(refused.out).toMatch(/deploy lock is held: release=\S+ .* STALE: process \d+ on this machine is gone; .*gulp unlock/);
      expect((await state()).served).toEqual(appHosts.map(() => live)); // still serving, untouched
      const results = await unlock({ environment: envOf(input()), reporter: quiet() });
      expect(results.filter((r) => r.undone).map((r) => r.host)).toEqual(['h1', 'h2', 'h3', 'h4']);
    } finally {
      for (const h of appHosts) flag(h, 'slow', false);
    }
    await expectConsistentOn(live);
    const ok = await run('deploy');
    expect(ok.code).toBe(0);
    live = /deploy (\S+) to lab \(app\.test\): OK/.exec(ok.out)![1]!;
    await expectConsistentOn(live);
  });
});
