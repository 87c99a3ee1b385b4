// Issue 12 (fault injection), server-side faults, through the SSH lab (2 hosts, real sshd + nginx):
// the health check failing on one host, an app that never creates its socket, a disk that refuses
// writes during the unpack, an old release that ignores SIGTERM, 2-second requests in flight at the
// switch, and nginx reloaded during a deploy. The client-side faults (the deploy process killed,
// the deploying machine's clock a year back) are in server-client.test.ts.
//
// Every case runs under 100 concurrent requests through both hosts' nginx (keep-alive off: a new
// connection each) for the whole case, the recovery deploy included, and asserts: (1) zero failed
// requests; (2) both hosts on one release: `.switchyard/live`, `current` and what nginx answers;
// (3) no stray process, staged socket, lock or staged release dir; (4) the error names what
// happened and the host; (5) the next deploy succeeds. One line per case is printed for the table.
//
// Faults are injected per host through flag files in the shared dir `flags/` that the app's start
// command reads (as test/e2e/transaction.test.ts does): flags/fail → /health answers 500,
// flags/hang → the app never listens, flags/deaf → test/fixtures/apps/deaf/deaf.js is preloaded
// (SIGTERM ignored).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateEnvironment, type Environment, type EnvironmentInput } from '../../lib/environment';
import type { LoadResult, LoadRun } from '../../lib/load/engine';
import { MemoryReporter } from '../../lib/output/reporter';
import { parseResultLine } from '../../lib/remote/protocol';
import { deploy } from '../../lib/release/deploy';
import { reportOf } from '../../lib/release/flow';
import { setup } from '../../lib/servers/setup';
import { startLab, type Lab, type LabHost } from '../support/lab';
import { labEnvInput, REPO } from '../support/lab-env';
import { alive, deployed, expectClean as expectHostsClean, figures as caseLine, flag, hostState, loadThrough, sleep, warmedUp } from './support';

const CONCURRENCY = 100;
const DEAF = path.join(REPO, 'test', 'fixtures', 'apps', 'deaf', 'deaf.js');

let lab: Lab;
let hosts: LabHost[];
let live = '';
/** Every release that went live: the only ones that may have a directory under releases/. */
const everLive = new Set<string>();

function input(over: Partial<EnvironmentInput> = {}, appEnv: Record<string, string> = {}): EnvironmentInput {
  const base = labEnvInput(lab, { appEnv });
  return {
    ...base,
    shared: ['flags'],
    app: {
      ...base.app,
      start: [
        '/bin/sh',
        '-c',
        'n=$0 s=$1 d=$2; set --; [ -e flags/fail ] && export HELLO_FAIL_HEALTH=1; [ -e flags/hang ] && export HELLO_NO_LISTEN=1; ' +
          '[ -e flags/deaf ] && set -- --require "$d"; exec "$n" "$@" server.js --socket "$s"',
        process.execPath,
        '{socket}',
        DEAF,
      ],
      env: appEnv,
    },
    ...over,
  };
}
const envOf = (i: EnvironmentInput = input()): Environment => validateEnvironment(i, { name: 'lab', file: 'env/lab.ts', root: REPO });

/* ------------------------------------------------------------------ end state */

const expectClean = (release: string) => expectHostsClean(hosts, (h) => hostState(lab, h, everLive), release);

/* ------------------------------------------------------------------ load and figures */

async function underLoad(o: { path?: string; timeoutMs?: number } = {}): Promise<LoadRun> {
  const load = loadThrough(lab, hosts, { concurrency: CONCURRENCY, ...o });
  await warmedUp(load, 100);
  return load;
}

const figures = (what: string, r: LoadResult, end: string): void => caseLine(what, r, end, hosts);

async function good(env: Environment = envOf(), rep = new MemoryReporter()): Promise<string> {
  live = await deployed(env, everLive, rep);
  return live;
}

/** A deploy that must fail: its error and the id of the release it tried. */
async function bad(env: Environment = envOf()): Promise<{ message: string; release: string; phases: string[] }> {
  const err = (await deploy({ environment: env, reporter: new MemoryReporter() }).then(
    () => new Error('the deploy succeeded'),
    (e: Error) => e,
  )) as Error;
  const report = reportOf(err);
  expect(report, err.message).toBeDefined();
  console.log(`  error: ${err.message.replace(/\n/g, ' | ')}`);
  return { message: err.message, release: report!.release, phases: report!.hosts.map((h) => h.phase) };
}

/** `::sy retired` lines with an old process, from the reporter's debug lines. */
function retired(rep: MemoryReporter): Record<string, string>[] {
  return rep.lines.flatMap(({ line }) => {
    const m = /^\[([^\]]+)\] (::sy retired .*)$/.exec(line);
    const f = m ? parseResultLine(m[2]!)?.fields : undefined;
    return f && f.release !== 'none' && f.pid ? [{ host: m![1]!, ...f }] : [];
  });
}

beforeAll(async () => {
  lab = await startLab({ hosts: 2 });
  hosts = lab.hosts;
  const env = envOf();
  await setup({ environment: env, reporter: new MemoryReporter() });
  const r = await deploy({ environment: env, reporter: new MemoryReporter() }, 'cold-deploy');
  everLive.add(r.release);
  live = r.release;
  await expectClean(live);
});

afterAll(async () => {
  await lab?.stop();
});

describe.sequential('server-side faults under 100 concurrent requests (SSH lab, 2 hosts)', () => {
  it('the health check fails on h2: both hosts stay on the live release, h2 and "health" named, the next deploy succeeds', async () => {
    const load = await underLoad();
    const before = live;
    flag(hosts[1]!, 'fail', true);
    let failed;
    try {
      failed = await bad();
    } finally {
      flag(hosts[1]!, 'fail', false);
    }
    expect(failed.message).toMatch(/^no host switched: 1 of 2 failed to prepare\nh2: prepare failed: .*health/);
    expect(failed.phases).toEqual(['rolled-back', 'failed']);
    await expectClean(before);
    const next = await good();
    const r = await load.stop();
    figures('health check fails on h2', r, next);
    expect(r.failed).toBe(0);
    expect(r.failuresByCode).toEqual({});
    await expectClean(next);
  });

  it('the app never creates its socket on h1 (start hangs): the 2 s start timeout ends it, nothing switches', async () => {
    const load = await underLoad();
    const before = live;
    flag(hosts[0]!, 'hang', true);
    let failed;
    const t0 = Date.now();
    try {
      failed = await bad(envOf(input({ app: { ...input().app, startTimeoutSeconds: 2 } })));
    } finally {
      flag(hosts[0]!, 'hang', false);
    }
    expect(Date.now() - t0).toBeLessThan(15_000);
    expect(failed.message).toMatch(/^no host switched: 1 of 2 failed to prepare\nh1: prepare failed: .*(socket|start)/);
    expect(failed.phases).toEqual(['failed', 'rolled-back']);
    await expectClean(before);
    const next = await good();
    const r = await load.stop();
    figures('start hangs on h1 (startTimeoutSeconds 2)', r, next);
    expect(r.failed).toBe(0);
    await expectClean(next);
  });

  it("h2's disk refuses writes during the unpack (file-size limit): the unpack fails, nothing switches, no half-unpacked release", async () => {
    // The fault: RLIMIT_FSIZE on h2's sshd listener (prlimit, by its pid; no root needed for one's
    // own processes; the soft limit). Every session sshd forks for the deploy inherits it, so on h2 (and only
    // there) no process of the deploy can write a file past 256 KiB: the kernel stops tar with
    // SIGXFSZ ("File size limit exceeded", write(2) would give EFBIG) part-way into a 4 MiB file of
    // the build, exactly as a full disk stops it part-way (ENOSPC). The package itself (lock/
    // package.tar, a .tar.gz at this size: the zeros compress to a few KiB), the state files and the logs stay small.
    // A limit set in a login hook does not work here: the lab's `SetEnv SHLVL=1` makes bash skip
    // ~/.bashrc, and the login user's files are shared by every lab host anyway.
    const build = fs.mkdtempSync(path.join(lab.dir, 'bigbuild-'));
    fs.cpSync(path.join(REPO, 'examples', 'hello'), build, { recursive: true });
    fs.writeFileSync(path.join(build, 'big.bin'), Buffer.alloc(4 << 20));
    const bigEnv = envOf(input({ build: { dir: build } }));
    const sshdPid = fs.readFileSync(path.join(hosts[1]!.root, 'sshd.pid'), 'utf8').trim();
    const load = await underLoad();
    const before = live;
    // the soft limit only (`N:`): lowering the hard one could not be undone without CAP_SYS_RESOURCE
    execFileSync('prlimit', ['--pid', sshdPid, `--fsize=${256 << 10}:`]);
    let failed;
    try {
      failed = await bad(bigEnv);
    } finally {
      execFileSync('prlimit', ['--pid', sshdPid, '--fsize=unlimited:']);
    }
    expect(failed.message).toMatch(/^no host switched: 1 of 2 failed to prepare\nh2: prepare failed: .*did not unpack/);
    expect(failed.phases).toEqual(['rolled-back', 'failed']);
    for (const h of hosts) expect(fs.existsSync(path.join(h.deployTo, 'releases', failed.release))).toBe(false);
    await expectClean(before);
    const next = await good(bigEnv); // the same build, the limit gone
    const r = await load.stop();
    figures('disk refuses writes on h2 during unpack (RLIMIT_FSIZE 256 KiB)', r, next);
    expect(r.failed).toBe(0);
    await expectClean(next);
  });

  it('the old release ignores SIGTERM: retire escalates to SIGKILL after drainSeconds 1, zero failed, the old process is gone', async () => {
    const env = envOf(input({ retire: { graceSeconds: 2, drainSeconds: 1 } }));
    for (const h of hosts) flag(h, 'deaf', true);
    let deafRelease;
    try {
      deafRelease = await good(env);
    } finally {
      for (const h of hosts) flag(h, 'deaf', false);
    }
    const deafPids = hosts.map((h) => Number(fs.readFileSync(path.join(h.deployTo, '.switchyard', 'live'), 'utf8').split(/\s+/)[1]));
    const load = await underLoad();
    const rep = new MemoryReporter();
    const t0 = Date.now();
    const next = await good(env, rep);
    const seconds = (Date.now() - t0) / 1000;
    const r = await load.stop();
    figures(`old release ignores SIGTERM (drainSeconds 1; deploy ${seconds.toFixed(1)} s)`, r, next);
    const ret = retired(rep);
    expect(ret.map((x) => [x.host, x.release, x.signal]).sort()).toEqual(hosts.map((h) => [h.name, deafRelease, 'KILL']));
    for (const x of ret) expect(Number(x.stop_ms)).toBeGreaterThanOrEqual(900);
    expect(deafPids.filter(alive)).toEqual([]);
    expect(r.failed).toBe(0);
    await expectClean(next);
  });

  it('2-second requests in flight at the switch: every one of them completes with 200', async () => {
    const slow = envOf(input({}, { HELLO_DELAY_MS: '2000' }));
    await good(slow); // the live release answers in 2 s: it is the one retired with requests in flight
    const load = await underLoad({ timeoutMs: 15_000 });
    const switchedAt: number[] = [];
    const t0 = Date.now();
    const r1 = await deploy({ environment: slow, reporter: new MemoryReporter(), onEvent: (e) => void (e.step === 'switch' && e.at === 'end' && switchedAt.push(Date.now())) });
    everLive.add(r1.release);
    live = r1.release;
    await sleep(2500); // the requests sent just before the switch finish
    const r = await load.stop();
    figures(`2 s requests in flight at the switch (${CONCURRENCY} in flight; deploy ${((switchedAt[0] ?? t0) - t0) / 1000} s to switch)`, r, live);
    expect(switchedAt).toHaveLength(2);
    expect(r.requests).toBeGreaterThanOrEqual(CONCURRENCY * 2);
    expect(r.latencyMs.p50).toBeGreaterThanOrEqual(1900);
    expect(r.failed).toBe(0);
    await expectClean(live);
    await good(); // back to the fast app
    await expectClean(live);
  });

  it('nginx is reloaded (SIGHUP to the master, by pid) on both hosts during a deploy: zero failed, the deploy succeeds', async () => {
    const load = await underLoad();
    const pids = hosts.map((h) => Number(fs.readFileSync(path.join(h.root, 'nginx', 'nginx.pid'), 'utf8').trim()));
    let hups = 0;
    const next = await deploy({
      environment: envOf(),
      reporter: new MemoryReporter(),
      onEvent: (e) => {
        // while preparing, and again right at the switch
        if ((e.step === 'prepare' && e.at === 'start') || (e.step === 'switch' && e.at === 'start')) {
          process.kill(pids[hosts.findIndex((h) => h.name === e.host)]!, 'SIGHUP');
          hups++;
        }
      },
    });
    expect(next.ok).toBe(true);
    everLive.add(next.release);
    live = next.release;
    await sleep(500);
    const r = await load.stop();
    figures(`nginx reloaded ${hups}× during a deploy`, r, live);
    expect(hups).toBe(4);
    expect(r.failed).toBe(0);
    await expectClean(live);
    expect((await good())).toBe(live); // and the next one
    await expectClean(live);
  });
});
