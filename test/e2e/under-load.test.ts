// Issue 5, the other ways in: `gulp loadtest` (figures, failures by code, report), `gulp deploy
// --under-load`, `gulp verify --rollback`, and verify refusing to change anything when the site
// already fails before the change. Through the SSH lab, one host, by the task functions gulp runs.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Environment } from '../../lib/environment';
import type { LoadReportJson } from '../../lib/output/report';
import { MemoryReporter } from '../../lib/output/reporter';
import { deploy } from '../../lib/release/deploy';
import { deployTask } from '../../tasks/deploy';
import { loadtestTask } from '../../tasks/loadtest';
import { loadtest, LoadCheckFailedError } from '../../lib/load/loadtest';
import { setup } from '../../lib/servers/setup';
import { verify } from '../../lib/load/verify';
import { startLab, type Lab } from '../support/lab';
import { labEnv } from '../support/lab-env';

let lab: Lab;
let env: Environment;
let dir: string;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sy-ul-'));
  lab = await startLab({ hosts: 1 });
  env = labEnv(lab);
  await setup({ environment: env, reporter: new MemoryReporter() });
  await deploy({ environment: env, reporter: new MemoryReporter() }, 'cold-deploy');
}, 60_000);

afterAll(async () => {
  await lab?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

const liveRelease = () => fs.readFileSync(path.join(lab.hosts[0]!.deployTo, '.switchyard', 'live'), 'utf8').split(' ')[0]!;
const readReport = (file: string) => JSON.parse(fs.readFileSync(file, 'utf8')) as LoadReportJson;

describe.sequential('load tasks against the lab', () => {
  it('loadtest: --requests, --path, --keepalive=off; prints the figures and writes the report', async () => {
    const rep = new MemoryReporter();
    const out = await loadtest({ environment: env, reporter: rep, requests: 2000, concurrency: 20, keepalive: false, path: '/health', reportDir: dir });
    expect(out.result).toMatchObject({ requests: 2000, failed: 0, keepalive: false, concurrency: 20, path: '/health', method: 'GET' });
    expect(out.result.targets).toEqual([{ url: lab.url(lab.hosts[0]!), host: lab.site, label: 'h1' }]);
    const text = rep.text();
    expect(text).toContain(`load: GET /health on h1 ${lab.url(lab.hosts[0]!)} (Host: ${lab.site}), concurrency 20, keep-alive off, for 2000 requests`);
    expect(text).toMatch(/requests: 2000 in [\d.]+ s, [\d.]+ req\/s \(concurrency 20, keep-alive off, 1 target\)\nfailed: 0\nlatency ms: p50 [\d.]+ {2}p90 [\d.]+ {2}p99 [\d.]+ {2}max [\d.]+\n/);
    expect(path.basename(out.report.html)).toMatch(/^loadtest-lab-\d{4}-\d\d-\d\dT[\d-]+Z\.html$/);
    expect(text).toContain(`report: ${out.report.html} (JSON: ${out.report.json})`);
    expect(readReport(out.report.json).result.requests).toBe(2000);
  });

  it('loadtest: failed requests by status code, --duration, --method; it measures, it does not fail', async () => {
    const rep = new MemoryReporter();
    const out = await loadtest({ environment: env, reporter: rep, duration: 1, concurrency: 10, path: '/nope', method: 'head', reportDir: dir });
    expect(out.result.requests).toBeGreaterThan(0);
    expect(out.result.failed).toBe(out.result.requests);
    expect(out.result.failuresByCode).toEqual({ '404': out.result.requests });
    expect(out.result.durationMs).toBeGreaterThanOrEqual(1000);
    expect(out.result.method).toBe('HEAD');
    expect(rep.text()).toMatch(new RegExp(`failed: ${out.result.requests} \\(100\\.00%\\): 404 ×${out.result.requests}`));
  });

  it('gulp loadtest exits non-zero when a request failed, unless --max-failures accepts that many', async () => {
    const rep = new MemoryReporter();
    const fails = loadtestTask({ environment: env, reporter: rep, requests: 20, concurrency: 5, path: '/nope', reportDir: dir });
    await expect(fails()).rejects.toThrow(/^20 of 20 requests failed \(404 ×20\):\n/);
    const accepted = loadtestTask({ environment: env, reporter: rep, requests: 20, concurrency: 5, path: '/nope', reportDir: dir, maxFailures: 20 });
    await expect(accepted()).resolves.toBeUndefined();
    const tooMany = loadtestTask({ environment: env, reporter: rep, requests: 20, concurrency: 5, path: '/nope', reportDir: dir, maxFailures: 19 });
    await expect(tooMany()).rejects.toThrow(/^20 of 20 requests failed \(404 ×20\) \(more than the 19 accepted by --max-failures\):\n[\s\S]*report: /);
  });

  it('gulp deploy --under-load: the deploy task runs under load, marks each step, fails on none', async () => {
    const before = liveRelease();
    const rep = new MemoryReporter();
    await deployTask({ environment: env, reporter: rep, underLoad: true, concurrency: 50, reportDir: dir })();
    const after = liveRelease();
    expect(after).not.toBe(before);
    const text = rep.text();
    expect(text).toContain('failed: 0');
    const file = /report: (\S+\.html) \(JSON: (\S+\.json)\)/.exec(text);
    expect(path.basename(file![2]!)).toMatch(/^deploy-lab-/);
    const json = readReport(file![2]!);
    expect(json.title).toBe(`deploy of ${lab.site} (lab) under load`);
    expect(json.result.concurrency).toBe(50);
    expect(json.result.failed).toBe(0);
    expect(json.result.markers.map((m) => [m.label, m.host, m.phase])).toEqual([
      ['h1 prepare', 'h1', 'prepare'],
      ['h1 switch', 'h1', 'switch'],
      ['h1 retire', 'h1', 'retire'],
    ]);
  }, 60_000);

  it('gulp verify --rollback: a deploy then a rollback under the same load, both marked, none failed', async () => {
    const before = liveRelease();
    const out = await verify({ environment: env, reporter: new MemoryReporter(), rollback: true, concurrency: 50, reportDir: dir });
    expect(out.releases.map((r) => [r.kind, r.ok])).toEqual([
      ['deploy', true],
      ['rollback', true],
    ]);
    expect(out.releases[1]!.release).toBe(before);
    expect(liveRelease()).toBe(before);
    expect(out.result.failed).toBe(0);
    expect(out.result.markers.filter((m) => m.phase === 'switch').map((m) => m.label)).toEqual(['deploy 1: h1 switch', 'rollback 1: h1 switch']);
    expect(readReport(out.report.json).notes).toEqual([expect.stringMatching(/^deploy 1: \S+ on h1: OK in/), `rollback 1: ${before} on h1: OK in ${out.releases[1]!.seconds.toFixed(1)} s`]);
  }, 90_000);

  it('verify changes nothing when requests already fail before the change (here: a site nginx does not serve)', async () => {
    const releases = () => fs.readdirSync(path.join(lab.hosts[0]!.deployTo, 'releases')).sort();
    const had = releases();
    const wrong = labEnv(lab, { over: { site: 'not-served.test' } });
    const err = await verify({ environment: wrong, reporter: new MemoryReporter(), concurrency: 10, reportDir: dir }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LoadCheckFailedError);
    expect((err as Error).message).toMatch(/^before any change, (\d+) of \1 requests already failed: the site is not healthy \(gulp status\); nothing changed\n {2}\+\d+\.\d{3} s {2}421 {2}h1\n/);
    expect(releases()).toEqual(had);
    expect((err as LoadCheckFailedError).result.markers).toEqual([]);
  }, 30_000);
});
