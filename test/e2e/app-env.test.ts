// Issue 12: app.env values (a secret among them) travel on the release's stdin, never on a command
// line. Through the SSH lab: a verbose dry run, a cold deploy with a JSON report and a restart;
// while each is between prepare and switch (the `prepared` hook) every process's command line on
// this machine is read, and every environment but the app's. The values are nowhere: not in a
// reporter line, the report, the server's audit log or state files, any command line; and the app
// really got them (its env.sha256: test/fixtures/apps/envprobe).
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { secret } from '../../lib/config/secrets';
import { validateEnvironment, type Environment } from '../../lib/environment';
import { MemoryReporter } from '../../lib/output/reporter';
import { deploy } from '../../lib/release/deploy';
import type { HookContext } from '../../lib/release/flow';
import { restart } from '../../lib/release/reuse';
import { setup } from '../../lib/servers/setup';
import { startLab, type Lab, type LabHost } from '../support/lab';
import { labEnvInput, REPO } from '../support/lab-env';

const SECRET_VAR = 'SY_E2E_APP_API_KEY';
const TOKEN = crypto.randomBytes(8).toString('hex');
// random (found only if leaked), and every character a shell or a parser could trip over
const SECRET = `${TOKEN}-key'"\`$(touch /tmp/sy-pwned-${TOKEN});\n-second line é✓`;
const PLAIN = `plain ${crypto.randomBytes(8).toString('hex')} value`;
const VALUES = [SECRET, PLAIN, ...SECRET.split('\n'), TOKEN];

let lab: Lab;
let h: LabHost;
let env: Environment;
let tmp: string;

const sha = (v: string) => crypto.createHash('sha256').update(Buffer.from(v, 'utf8')).digest('hex');
const releaseDir = (release: string) => path.join(h.deployTo, 'releases', release);
const pidOf = (release: string) => Number(fs.readFileSync(path.join(releaseDir(release), '.switchyard', 'pid'), 'utf8').split(' ')[0]);

/** The probe's env.sha256 of a release: name → hash of the value it was given. */
function given(release: string): Map<string, string> {
  const text = fs.readFileSync(path.join(releaseDir(release), 'env.sha256'), 'utf8');
  return new Map(text.trim().split('\n').map((l) => l.split(' ') as [string, string]));
}

/** What a process list shows: each process's argv and (but the app's own) its environment. */
interface Seen {
  processes: number;
  leaks: string[];
}

/** Reads every /proc/PID/cmdline, and every /proc/PID/environ outside the apps' process groups. */
function readProcesses(appGroups: number[]): Seen {
  const leaks: string[] = [];
  let processes = 0;
  const needles = VALUES.map((v) => Buffer.from(v, 'utf8'));
  for (const pid of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    const read = (f: string) => {
      try {
        return fs.readFileSync(`/proc/${pid}/${f}`);
      } catch {
        return undefined; // gone meanwhile
      }
    };
    const cmdline = read('cmdline');
    if (!cmdline) continue;
    processes++;
    if (needles.some((n) => cmdline.includes(n))) leaks.push(`cmdline of ${pid}: ${cmdline.toString().slice(0, 80)}`);
    const stat = read('stat')?.toString() ?? '';
    const pgrp = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
    // the apps have them, as they must; this test process was given the secret by the test itself
    if (appGroups.includes(pgrp) || Number(pid) === process.pid) continue;
    const environ = read('environ');
    if (environ && needles.some((n) => environ.includes(n))) leaks.push(`environ of ${pid}: ${cmdline.toString().slice(0, 80)}`);
  }
  return { processes, leaks };
}

/** A `prepared` hook: the staged release runs on its own socket, nothing has switched; the process list then. */
function watchPrepared(seen: Seen[]) {
  return (ctx: HookContext) => {
    const staged = path.join(h.socketDir, `SOCK-${lab.site}-${ctx.release}`);
    expect(fs.statSync(staged).isSocket()).toBe(true);
    // the staged app, and the live one (a restart: the same release's running process)
    const live = Number((fs.existsSync(path.join(h.deployTo, '.switchyard', 'live')) ? fs.readFileSync(path.join(h.deployTo, '.switchyard', 'live'), 'utf8') : '').split(' ')[1] ?? 0);
    seen.push(readProcesses([pidOf(ctx.release), ...(live ? [live] : [])]));
  };
}

/** Every file of the server's own state (deployTo/.switchyard) and of a release's .switchyard. */
function stateTexts(release: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const dir of [path.join(h.deployTo, '.switchyard'), path.join(releaseDir(release), '.switchyard')]) {
    for (const f of fs.readdirSync(dir, { recursive: true }).map(String)) {
      const p = path.join(dir, f);
      // the one file that holds them by design: the supervisor's record to start R again (0600, checked below)
      if (p === path.join(releaseDir(release), '.switchyard', 'env')) continue;
      if (fs.statSync(p).isFile()) out[p] = fs.readFileSync(p, 'utf8');
    }
  }
  return out;
}

function expectNoValue(where: string, text: string): void {
  for (const v of VALUES) expect(text.includes(v), `${where} shows a value`).toBe(false);
}

beforeAll(async () => {
  lab = await startLab({ hosts: 1 });
  h = lab.hosts[0]!;
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sy-appenv-e2e-'));
  const build = path.join(tmp, 'build');
  fs.cpSync(path.join(REPO, 'examples', 'hello'), build, { recursive: true });
  fs.copyFileSync(path.join(REPO, 'test', 'fixtures', 'apps', 'envprobe', 'probe.js'), path.join(build, 'probe.js'));
  const input = labEnvInput(lab);
  input.build = { dir: build };
  input.app = { ...input.app, start: [process.execPath, 'probe.js', '--socket', '{socket}'], env: { API_KEY: secret(SECRET_VAR), PLAIN_NOTE: PLAIN } };
  env = validateEnvironment(input, { name: 'lab', file: 'env/lab.ts', root: REPO });
});
afterAll(async () => {
  delete process.env[SECRET_VAR];
  await lab?.stop();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

describe.sequential('app.env values, a secret among them, on stdin only', () => {
  it('a missing secret stops the deploy before any connection, naming it and its variable', async () => {
    delete process.env[SECRET_VAR];
    const reporter = new MemoryReporter(true);
    await expect(deploy({ environment: env, reporter }, 'cold-deploy')).rejects.toThrow(
      new RegExp(`1 secret is missing for env/lab\\.ts \\(nothing is uploaded until they are set\\):\\n\\s+${SECRET_VAR}: not set in the environment.*; used by app\\.env "API_KEY"`),
    );
    expect(reporter.lines.filter((l) => l.line.startsWith(`[${h.name}]`))).toEqual([]);
    expect(fs.existsSync(path.join(h.deployTo, 'releases'))).toBe(false); // not even set up: nothing was reached
  });

  it('dry run, cold deploy and restart: the app gets the values; no line, report, state file or process shows one', async () => {
    process.env[SECRET_VAR] = SECRET;
    const reporter = new MemoryReporter(true); // verbose: every remote command and result line
    const report = path.join(tmp, 'report.json');
    const restartReport = path.join(tmp, 'restart.json');
    await setup({ environment: env, reporter });

    // the dry run shows the size of the block and the names, never a value
    const dry = new MemoryReporter(true);
    await deploy({ environment: env, reporter: dry, dryRun: true, verbose: true }, 'cold-deploy');
    expect(dry.text()).toMatch(/would run: prepare\.sh .* --env-bytes \d+ .* < env \(API_KEY, PLAIN_NOTE\), then the package/);

    const seen: Seen[] = [];
    const r = await deploy({ environment: env, reporter, verbose: true, report, hooks: { prepared: watchPrepared(seen) } }, 'cold-deploy');
    expect(r.ok).toBe(true);
    expect(await lab.fetchSite(h)).toEqual({ status: 200, body: `hello from release ${r.release}\n` });
    const first = given(r.release);
    expect(first.get('API_KEY')).toBe(sha(SECRET));
    expect(first.get('PLAIN_NOTE')).toBe(sha(PLAIN));
    const firstPid = pidOf(r.release);

    // restart: the same release started again with the same variables (resolved again)
    const r2 = await restart({ environment: env, reporter, verbose: true, report: restartReport, hooks: { prepared: watchPrepared(seen) } });
    expect(r2.ok).toBe(true);
    expect(pidOf(r.release)).not.toBe(firstPid);
    expect(given(r.release).get('API_KEY')).toBe(sha(SECRET));
    expect(given(r.release).get('PLAIN_NOTE')).toBe(sha(PLAIN));

    // the process list, read between prepare and switch, both times
    expect(seen).toHaveLength(2);
    for (const s of seen) {
      expect(s.processes).toBeGreaterThan(5);
      expect(s.leaks).toEqual([]);
    }
    // every reporter line (verbose, the dry run's too), both reports, the server's state and audit log
    expect(reporter.lines.length).toBeGreaterThan(20);
    expect(reporter.text()).toContain('--env-bytes');
    expectNoValue('the log', reporter.text());
    expectNoValue('the dry run', dry.text());
    for (const f of [report, restartReport]) {
      const text = fs.readFileSync(f, 'utf8');
      expect(JSON.parse(text)).toMatchObject({ ok: true, release: r.release });
      expectNoValue(f, text);
    }
    const state = stateTexts(r.release);
    const audit = state[path.join(h.deployTo, '.switchyard', 'audit.log')]!;
    expect(audit).toMatch(/ deploy user=\S+ release=.* msg=cold-deploy by /);
    expect(audit).toMatch(/ deploy user=\S+ release=.* msg=restart by /);
    for (const [f, text] of Object.entries(state)) expectNoValue(f, text);
    const record = fs.statSync(path.join(releaseDir(r.release), '.switchyard', 'env'));
    expect(record.mode & 0o777).toBe(0o600); // the deploy user's alone, whatever the umask
    expect(fs.existsSync(`/tmp/sy-pwned-${TOKEN}`)).toBe(false);
  }, 120_000);
});
