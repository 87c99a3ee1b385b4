// Issue 12 (fault injection), client-side faults, through the SSH lab (2 hosts, real sshd + nginx):
// the deploy process killed with SIGKILL in each phase, and the deploying machine's clock a year
// back (faketime). The server-side faults are in server.test.ts.
//
// The deploy runs as a child process (node -r esbuild-register on a small script written into the
// lab dir: deploy() with hooks that say where it is and, for the kill cases, hold it there), under
// 100 concurrent requests through both hosts' nginx (keep-alive off) for the whole case, recovery
// included. Each case asserts production keeps serving (zero failed requests), both hosts end on
// one release (`.switchyard/live`, `current`, what nginx answers), nothing is left (stray process,
// staged socket, lock, staged release dir), the refusal names the stale lock and unlock, and the
// next deploy succeeds. One line per case is printed for the table.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateEnvironment, type Environment, type EnvironmentInput } from '../../lib/environment';
import type { LoadResult, LoadRun } from '../../lib/load/engine';
import { MemoryReporter } from '../../lib/output/reporter';
import { deploy } from '../../lib/release/deploy';
import { rollback } from '../../lib/release/reuse';
import { setup } from '../../lib/servers/setup';
import { unlock } from '../../lib/servers/unlock';
import { startLab, type Lab, type LabHost } from '../support/lab';
import { labEnvInput, REPO } from '../support/lab-env';
import { deployed, expectClean as expectHostsClean, figures as caseLine, flag, hostState as stateOf, loadThrough, sleep, warmedUp, type HostState } from './support';

const CONCURRENCY = 100;

let lab: Lab;
let hosts: LabHost[];
let live = '';
let script = '';
const everLive = new Set<string>();

/** The app starts 2 s late on a host with flags/slow in its shared dir (the kill while preparing). */
function input(over: Partial<EnvironmentInput> = {}): EnvironmentInput {
  const base = labEnvInput(lab);
  return {
    ...base,
    shared: ['flags'],
    app: {
      ...base.app,
      start: ['/bin/sh', '-c', '[ -e flags/slow ] && sleep 2; exec "$0" server.js --socket "$1"', process.execPath, '{socket}'],
    },
    ...over,
  };
}
const envOf = (i: EnvironmentInput = input()): Environment => validateEnvironment(i, { name: 'lab', file: 'env/lab.ts', root: REPO });

function slow(on: boolean): void {
  for (const h of hosts) flag(h, 'slow', on);
}

/* ------------------------------------------------------------------ the deploy as a child process */

// argv: env input (JSON file), where to hold (none | prepared | switched). Prints `started R`,
// `prepared`, `switched` as it gets there, then `OK R` (exit 0) or `FAILED <message>` (exit 1).
const CHILD = `
import fs from 'node:fs';
import { deploy } from ${JSON.stringify(path.join(REPO, 'lib', 'release', 'deploy'))};
import { validateEnvironment } from ${JSON.stringify(path.join(REPO, 'lib', 'environment'))};
import { MemoryReporter } from ${JSON.stringify(path.join(REPO, 'lib', 'output', 'reporter'))};
const [file, hold] = process.argv.slice(2);
const environment = validateEnvironment(JSON.parse(fs.readFileSync(file!, 'utf8')), { name: 'lab', file: 'env/lab.ts', root: ${JSON.stringify(REPO)} });
const at = async (where: string) => {
  process.stdout.write(where + '\\n');
  if (hold === where) await new Promise((r) => setTimeout(r, 60_000));
};
deploy({ environment, reporter: new MemoryReporter(), hooks: {
  started: (ctx) => void process.stdout.write('started ' + ctx.release + '\\n'),
  prepared: () => at('prepared'),
  switched: () => at('switched'),
} }).then(
  (r) => { process.stdout.write('OK ' + r.release + '\\n'); process.exit(0); },
  (e) => { process.stdout.write('FAILED ' + String(e?.message ?? e) + '\\n'); process.exit(1); },
);
`;

interface ChildRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  out: string;
  release: string;
}

/** Runs the deploy script; with `killWhen`, SIGKILLs it as soon as that holds (checked on output and every 20 ms). */
function runChild(o: { input?: EnvironmentInput; hold?: string; killWhen?: (out: string) => boolean; prefix?: string[]; env?: NodeJS.ProcessEnv } = {}): Promise<ChildRun> {
  const file = path.join(lab.dir, `env-${Date.now()}.json`);
  fs.writeFileSync(file, JSON.stringify(o.input ?? input()));
  const argv = [process.execPath, '-r', 'esbuild-register', script, file, o.hold ?? 'none'];
  const [cmd, ...args] = [...(o.prefix ?? []), ...argv];
  return new Promise((resolve) => {
    const child = spawn(cmd!, args, { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...o.env } });
    let out = '';
    let killed = false;
    const check = () => {
      if (!killed && o.killWhen?.(out)) {
        killed = true;
        child.kill('SIGKILL');
      }
    };
    const poll = setInterval(check, 20);
    child.stdout.on('data', (b: Buffer) => ((out += b.toString()), check()));
    child.stderr.on('data', (b: Buffer) => (out += b.toString()));
    child.on('close', (code, signal) => {
      clearInterval(poll);
      resolve({ code, signal, out, release: /^started (\S+)$/m.exec(out)?.[1] ?? '' });
    });
  });
}

/* ------------------------------------------------------------------ end state */

const stateFile = (h: LabHost, name: 'live' | 'previous') => {
  try {
    return fs.readFileSync(path.join(h.deployTo, '.switchyard', name), 'utf8').trim().split(/\s+/);
  } catch {
    return [];
  }
};

async function hostState(h: LabHost): Promise<HostState<string>> {
  const s = await stateOf(lab, h, everLive, { live: (h) => stateFile(h, 'live') });
  return {
    ...s,
    // a stray process is named by the release directory it runs in
    stray: s.stray.map((p) => {
      try {
        return `${p} ${path.basename(fs.readlinkSync(`/proc/${p}/cwd`))}`;
      } catch {
        return String(p);
      }
    }),
  };
}

const expectClean = (release: string) => expectHostsClean(hosts, hostState, release);

async function underLoad(): Promise<LoadRun> {
  const load = loadThrough(lab, hosts, { concurrency: CONCURRENCY });
  await warmedUp(load, 100);
  return load;
}

const figures = (what: string, r: LoadResult, end: string): void => caseLine(what, r, end, hosts);

async function good(env: Environment = envOf()): Promise<string> {
  live = await deployed(env, everLive);
  return live;
}

beforeAll(async () => {
  lab = await startLab({ hosts: 2 });
  hosts = lab.hosts;
  script = path.join(lab.dir, 'deploy-child.ts');
  fs.writeFileSync(script, CHILD);
  await setup({ environment: envOf(), reporter: new MemoryReporter() });
  const r = await deploy({ environment: envOf(), reporter: new MemoryReporter() }, 'cold-deploy');
  everLive.add(r.release);
  live = r.release;
});

afterAll(async () => {
  await lab?.stop();
});

/** The refusal a deploy after a SIGKILL gets: the stale lock, who held it, how to recover. */
async function expectRefusedStale(held: string): Promise<void> {
  const err = (await deploy({ environment: envOf(), reporter: new MemoryReporter() }).then(
    () => new Error('the deploy was not refused'),
    (e: Error) => e,
  )) as Error;
  expect(err.message).toMatch(/^no host switched: 2 of 2 failed to prepare\n/);
  console.log(`  refused: ${err.message.replace(/\n/g, ' | ')}`);
  for (const h of hosts) {
    expect(err.message).toMatch(new RegExp(`^${h.name}: prepare failed: deploy lock is held: release=${held.replace('.', '\\.')} .* STALE: process \\d+ on this machine is gone; .*unlock`, 'm'));
  }
}

describe.sequential('the deploy process killed with SIGKILL (SSH lab, 2 hosts, 100 concurrent requests)', () => {
  const phases = [
    {
      name: 'while preparing (both hosts locked and unpacked, the apps starting)',
      hold: 'none',
      when: (_: string) => hosts.every((h) => fs.existsSync(path.join(h.deployTo, '.switchyard', 'lock', 'fresh'))),
      wentLive: false,
    },
    { name: 'between prepare and switch', hold: 'prepared', when: (out: string) => /^prepared$/m.test(out), wentLive: false },
    { name: 'after the switch, before the retire', hold: 'switched', when: (out: string) => /^switched$/m.test(out), wentLive: true },
  ];
  for (const p of phases) {
    it(`SIGKILL ${p.name}: production serves, the next deploy names the STALE lock, unlock cleans up, then a deploy succeeds`, async () => {
      const before = live;
      const load = await underLoad();
      if (p.hold === 'none') slow(true);
      let killed: ChildRun;
      try {
        killed = await runChild({ hold: p.hold, killWhen: p.when });
      } finally {
        slow(false);
      }
      expect(killed.signal).toBe('SIGKILL');
      expect(killed.release).not.toBe('');
      const R = killed.release;
      // production serves: the old release, or R where it had switched; every host still locked by R
      const serving = p.wentLive ? R : before;
      await sleep(300); // release.sh sees its stdin end (exit 9) and leaves the host as it is
      for (const h of hosts) expect((await hostState(h)).served).toBe(serving);
      await expectRefusedStale(R);
      const results = await unlock({ environment: envOf(), reporter: new MemoryReporter() });
      // never live: undone (staged process stopped, releases/R removed); live: left serving, and its
      // retire finished (the previous release's process stopped; before the fix in
      // lib/servers/unlock.ts it ran on, unrecorded, once the next switch replaced .switchyard/previous)
      expect(results.map((r) => [r.host, r.undone, r.retired])).toEqual(hosts.map((h) => [h.name, p.wentLive ? undefined : R, p.wentLive ? R : undefined]));
      if (p.wentLive) everLive.add(R);
      await expectClean(serving);
      for (const h of hosts) expect(fs.existsSync(path.join(h.deployTo, 'releases', R))).toBe(p.wentLive);
      const next = await good();
      const r = await load.stop();
      figures(`SIGKILL ${p.name}; then refused (stale lock), unlock, deploy`, r, next);
      expect(r.failed).toBe(0);
      await expectClean(next);
    });
  }
});

describe.sequential("the deploying machine's clock a year back (faketime)", () => {
  it('B deployed a year in the past sorts before A yet goes live; rollback goes to A; prune keeps live and previous; then C works', async () => {
    const load = await underLoad();
    const A = await good();
    // FAKETIME_DONT_FAKE_MONOTONIC: the jump is the wall clock's; node's timers run on the monotonic one
    // keepReleases 2 (the least) from here on: B is never among the newest 2 by NAME, so only the live/previous guard keeps it
    const keep2 = input({ keepReleases: 2 });
    const B = await runChild({ input: keep2, prefix: ['faketime', '-f', '-365d'], env: { FAKETIME_DONT_FAKE_MONOTONIC: '1' } });
    expect(B.out).toMatch(/^OK /m);
    expect(B.code).toBe(0);
    expect(B.release.slice(0, 4)).toBe(String(Number(A.slice(0, 4)) - 1));
    expect([A, B.release].sort()).toEqual([B.release, A]); // B sorts BEFORE A
    everLive.add(B.release);
    live = B.release;
    await expectClean(B.release);
    for (const h of hosts) {
      expect(stateFile(h, 'previous')[0]).toBe(A);
      expect(fs.existsSync(path.join(h.deployTo, 'releases', A))).toBe(true);
    }
    // rollback follows the state (previous = A), not the names
    const rb = await rollback({ environment: envOf(keep2), reporter: new MemoryReporter() });
    expect(rb.hosts.map((h) => h.release)).toEqual(hosts.map(() => A));
    live = A;
    await expectClean(A);
    for (const h of hosts) {
      expect(stateFile(h, 'previous')[0]).toBe(B.release);
      // retire's prune (keepReleases 2) never deletes the live or the previous release
      for (const r of [A, B.release]) expect(fs.existsSync(path.join(h.deployTo, 'releases', r))).toBe(true);
    }
    // more deploys: B is the oldest name, but stays while it is previous
    const C = await good(envOf(keep2));
    await expectClean(C);
    for (const h of hosts) {
      expect(stateFile(h, 'previous')[0]).toBe(A);
      expect(fs.existsSync(path.join(h.deployTo, 'releases', A))).toBe(true);
      // B, now neither live nor previous, is what keepReleases 2 prunes
      expect(fs.readdirSync(path.join(h.deployTo, 'releases')).sort()).toEqual([A, C]);
    }
    const r = await load.stop();
    figures(`clock a year back: A, B (${B.release.slice(0, 8)}, sorts first) live, rollback to A, then C`, r, C);
    expect(r.failed).toBe(0);
  });
});
