// Issue 12: the soak run, short (CI): the same core as `npm run soak` (bench/soak-run.ts) with 5
// cycles (5 deploys, 1 rollback, 1 restart) through the SSH lab (2 hosts) under 100 concurrent
// connections, keep-alive on for the first half and off for the second. Zero failed requests, and
// after every step every bounded-count check ran, saw numbers, and passed. Then the checks are
// shown to catch what grows: in snapshots of a live host with things planted, and in a second
// soak whose host gets a stale staged socket after deploy 2 (it must stop there, naming it).
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkHost, checkTool, FD_MARGIN, formatSoak, halfway, runSoak, snapshotHost, snapshotTool, soakPlan, SoakFailedError, stepName, type HostLimits, type SoakResult } from '../../bench/soak-run';
import { startLab, type Lab } from '../support/lab';

const CYCLES = 5;
const CONCURRENCY = 100;
const SITE = 'app.test';

describe('soakPlan', () => {
  it('50 cycles: 50 deploys, a rollback after every 5th, a restart after every 10th', () => {
    const plan = soakPlan(50);
    expect(plan.length).toBe(65);
    expect(plan.filter((s) => s.kind === 'deploy').length).toBe(50);
    expect(plan.filter((s) => s.kind === 'rollback').map((s) => s.cycle)).toEqual([5, 10, 15, 20, 25, 30, 35, 40, 45, 50]);
    expect(plan.filter((s) => s.kind === 'restart').map((s) => s.cycle)).toEqual([10, 20, 30, 40, 50]);
    expect(plan.slice(9, 13).map(stepName)).toEqual(['deploy 9', 'deploy 10', 'rollback 2', 'restart 1']);
  });

  it('fewer cycles: at least one rollback and one restart, after the last deploy', () => {
    expect(soakPlan(5).map(stepName)).toEqual(['deploy 1', 'deploy 2', 'deploy 3', 'deploy 4', 'deploy 5', 'rollback 1', 'restart 1']);
    expect(soakPlan(1).map(stepName)).toEqual(['deploy 1', 'rollback 1', 'restart 1']);
    expect(() => soakPlan(0)).toThrow(/cycles/);
  });

  it('keep-alive goes off after the middle cycle (its rollback and restart included)', () => {
    expect(stepName(soakPlan(50)[halfway(soakPlan(50))]!)).toBe('rollback 5'); // after deploy 25 and its rollback: 32 of 65 steps
    expect(halfway(soakPlan(50))).toBe(31);
    expect(stepName(soakPlan(5)[halfway(soakPlan(5))]!)).toBe('deploy 3');
    expect(stepName(soakPlan(1)[halfway(soakPlan(1))]!)).toBe('deploy 1');
  });
});

describe.sequential(`soak: ${CYCLES} deploys, 1 rollback, 1 restart through the SSH lab under ${CONCURRENCY} connections`, () => {
  let lab: Lab;
  let result: SoakResult;
  let stray: ChildProcess | undefined;

  beforeAll(async () => {
    lab = await startLab({ hosts: 2, site: SITE });
  }, 60_000);

  afterAll(async () => {
    if (stray && stray.exitCode === null && stray.signalCode === null) stray.kill('SIGKILL');
    await lab?.stop();
  });

  it('zero failed requests, keep-alive on then off, and every bounded-count check passed after every step', async () => {
    const lines: string[] = [];
    result = await runSoak({ cycles: CYCLES, hosts: 2, concurrency: CONCURRENCY, lab, log: (l) => lines.push(l) });
    console.log([...lines, formatSoak(result)].join('\n'));
    expect(result.ok).toBe(true);
    expect(result.failed).toBe(0);
    expect(result.failures).toEqual([]);
    expect(result.failuresByCode).toEqual({});
    expect(result.done).toEqual({ deploys: 5, rollbacks: 1, restarts: 1 });
    // the two halves: keep-alive on (deploys 1-3), then off (deploys 4, 5, the rollback, the restart)
    expect(result.steps.map((s) => [stepName(s), s.keepalive])).toEqual([
      ['deploy 1', true],
      ['deploy 2', true],
      ['deploy 3', true],
      ['deploy 4', false],
      ['deploy 5', false],
      ['rollback 1', false],
      ['restart 1', false],
    ]);
    expect(result.loads.map((l) => [l.keepalive, l.concurrency, l.failed])).toEqual([
      [true, CONCURRENCY, 0],
      [false, CONCURRENCY, 0],
    ]);
    for (const l of result.loads) expect(l.requests).toBeGreaterThan(500);
    expect(result.requests).toBe(result.loads[0]!.requests + result.loads[1]!.requests);

    // the checks ran after every step on every host, and saw real numbers
    expect(result.checks).toMatchObject({ host: 7 * 2, tool: 7 });
    const deploys = result.steps.filter((s) => s.kind === 'deploy').map((s) => s.release);
    expect(new Set(deploys).size).toBe(5);
    for (const step of result.steps) {
      expect(step.hosts.map((h) => h.host)).toEqual(['h1', 'h2']);
      for (const h of step.hosts) {
        expect(checkHost(h, { site: SITE, keepReleases: result.keepReleases, concurrencyShare: CONCURRENCY / 2, expectedRelease: step.release })).toEqual([]);
        expect(h.processes).toHaveLength(1);
        expect(h.processes[0]!.pid).toBe(h.live!.pid);
        expect(h.processes[0]!.cmd).toMatch(/server\.js --socket .*SOCK-app\.test-/);
        expect(h.fds!.total).toBeGreaterThan(0);
        expect(h.fds!.other).toBeGreaterThan(0);
        expect(h.fds!.sockets).toBeGreaterThanOrEqual(1); // the listener at least
        expect(h.sockets).toEqual([`SOCK-${SITE}`, `SOCK-${SITE}.prev`]);
        expect(h.releaseDirs.length).toBeGreaterThanOrEqual(2);
        expect(h.releaseDirs.length).toBeLessThanOrEqual(result.keepReleases);
        expect(h.sshSessions).toBe(0);
      }
      expect(step.tool.sshConnections).toBe(0);
      expect(step.tool.fds.total).toBeGreaterThan(0);
      expect(step.tool.heapMB).toBeGreaterThan(0);
    }
    expect(result.baseline!.toolFdsOther).toBeGreaterThan(0);
    for (const h of ['h1', 'h2']) {
      expect(result.baseline!.appFdsOther[h]).toBeGreaterThan(0);
      expect(result.max[h]).toMatchObject({ processes: 1, sockets: 2, sshSessions: 0 });
      expect(result.max[h]!.fds).toBeGreaterThan(0);
      expect(result.max[h]!.releaseDirs).toBe(result.keepReleases); // pruning was reached, and held
    }
    // the rollback went back to deploy 4's release; the restart started that one again (a new process)
    const [rb, rs] = [result.steps[5]!, result.steps[6]!];
    expect(rb.release).toBe(deploys[3]);
    expect(rs.release).toBe(deploys[3]);
    for (const i of [0, 1]) expect(rs.hosts[i]!.live!.pid).not.toBe(rb.hosts[i]!.live!.pid);
    expect(result.peakRssMB).toBeGreaterThan(0);
  }, 90_000);

  it('the checks catch what grows: a stray process, a staged socket, release dirs over keepReleases, descriptors, an open SSH connection', async () => {
    expect(result?.ok).toBe(true);
    const h = lab.hosts[0]!;
    const limits: HostLimits = { site: SITE, keepReleases: result.keepReleases, concurrencyShare: CONCURRENCY / 2 };
    const clean = snapshotHost(h);
    expect(checkHost(clean, { ...limits, baselineFdsOther: clean.fds!.other })).toEqual([]);

    const live = clean.live!.release;
    const staged = path.join(h.socketDir, `SOCK-${SITE}-20991231T235959.999Z-deadbee`);
    const extra = path.join(h.deployTo, 'releases', '20991231T235959.999Z-deadbee');
    fs.writeFileSync(staged, '');
    fs.mkdirSync(extra);
    stray = spawn('sleep', ['60'], { cwd: path.join(h.deployTo, 'releases', live), stdio: 'ignore' });
    try {
      await new Promise((r) => stray!.once('spawn', r));
      const dirty = snapshotHost(h);
      const problems = checkHost(dirty, { ...limits, baselineFdsOther: clean.fds!.other - FD_MARGIN - 1 });
      expect(problems).toEqual([
        expect.stringMatching(new RegExp(`^release processes: 2 \\(expected only the live one, pid ${clean.live!.pid}\\): .*${stray.pid} sleep 60`)),
        `socketDir holds more than live + .prev: ${path.basename(staged)} (a staged socket left behind)`,
        expect.stringMatching(/^the live app's non-socket descriptors grew: \d+ \(first step: \d+, margin 4\)$/),
        expect.stringMatching(/^release directories: 4 > keepReleases 3 \(/),
      ]);
      // and for this process: an SSH connection left open to a lab host
      const sock = await new Promise<net.Socket>((resolve, reject) => {
        const s = net.connect(h.sshPort, '127.0.0.1', () => resolve(s));
        s.once('error', reject);
      });
      try {
        const tool = snapshotTool(new Set([h.sshPort]));
        expect(checkTool(tool, tool.fds.other)).toEqual(['SSH connections still open from the deploying process: 1']);
      } finally {
        sock.destroy();
      }
    } finally {
      stray.kill('SIGKILL');
      fs.rmSync(staged, { force: true });
      fs.rmSync(extra, { recursive: true, force: true });
    }
  }, 30_000);

  it('a check that fails stops the soak there, naming the step, the cycle, the host and what grew', async () => {
    const lab2 = await startLab({ hosts: 2, site: SITE });
    try {
      const err = await runSoak({
        cycles: 3,
        hosts: 2,
        concurrency: 20,
        lab: lab2,
        settleMs: 1_000,
        beforeCheck: (step, _i, l) => {
          if (stepName(step) === 'deploy 2') fs.writeFileSync(path.join(l.hosts[1]!.socketDir, `SOCK-${SITE}-20991231T235959.999Z-deadbee`), '');
        },
      }).then(
        () => new Error('the soak passed with a staged socket left behind'),
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(SoakFailedError);
      const e = err as SoakFailedError;
      expect(e.message).toMatch(/^soak: check failed after step 2 of 5 \(deploy 2, cycle 2\), still so after \d+ ms:\n {2}h2: socketDir holds more than live \+ \.prev: SOCK-app\.test-20991231T235959\.999Z-deadbee \(a staged socket left behind\)$/);
      expect(e.result.ok).toBe(false);
      expect(e.result.error).toBe(e.message);
      expect(e.result.steps.map(stepName)).toEqual(['deploy 1']); // stopped: nothing after deploy 2
      expect(e.result.done.deploys).toBe(2);
      expect(e.result.loads.length).toBe(1); // the load was stopped and counted
      expect(e.result.failed).toBe(0);
    } finally {
      await lab2.stop();
    }
  }, 60_000);
});
