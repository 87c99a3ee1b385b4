// Issue 5: proving zero downtime through the SSH lab (2 hosts, each with its own sshd and nginx).
// - five deploys in a row under 100 concurrent connections, keep-alive on and off: 0 failed;
// - siege (Debian) as an independent client during a verify: 100 % availability, every answer 2xx;
// - the verify's HTML report in headless Chromium, no network: the chart, one switch marker per host;
// - a negative control: an app that dies at once on SIGTERM, retire grace 0: verify fails and
//   names the failed requests (time, code, host), all sent before that host's switch.
// The figures are printed (console.log) so CI shows them.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Browser } from 'playwright-core';
import { launchChromium, openOffline } from '../support/browser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Environment } from '../../lib/environment';
import type { LoadResult } from '../../lib/load/engine';
import { MemoryReporter } from '../../lib/output/reporter';
import { deploy } from '../../lib/release/deploy';
import { LoadCheckFailedError } from '../../lib/load/loadtest';
import { setup } from '../../lib/servers/setup';
import { verify, type VerifyOutcome } from '../../lib/load/verify';
import { startLab, type Lab } from '../support/lab';
import { labEnv } from '../support/lab-env';

const CONCURRENCY = 100;
const HOSTS = ['h1', 'h2'];

let lab: Lab;
let env: Environment;
let dir: string; // reports, siege's rc and HOME
let browser: Browser | undefined;
let siegeVerify: VerifyOutcome | undefined;
/** Stopped in afterAll as well: a test that times out never reaches its own finally. */
let siege: ChildProcess | undefined;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sy-zd-'));
  lab = await startLab({ hosts: HOSTS.length });
  env = labEnv(lab);
  const rep = new MemoryReporter();
  await setup({ environment: env, reporter: rep });
  await deploy({ environment: env, reporter: rep }, 'cold-deploy');
}, 60_000);

afterAll(async () => {
  if (siege && siege.exitCode === null && siege.signalCode === null) siege.kill('SIGKILL');
  await browser?.close();
  await lab?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

function figures(what: string, r: LoadResult): string {
  const line = `${what}: ${r.requests} requests, ${r.failed} failed, ${r.rps} req/s, p50 ${r.latencyMs.p50} ms, p99 ${r.latencyMs.p99} ms, max ${r.latencyMs.max} ms (${(r.durationMs / 1000).toFixed(1)} s)`;
  console.log(line);
  return line;
}

const switchMarkers = (r: LoadResult) => r.markers.filter((m) => m.phase === 'switch');

describe.sequential('zero downtime through the SSH lab', () => {
  for (const keepalive of [true, false]) {
    it(`five consecutive deploys under ${CONCURRENCY} concurrent connections, keep-alive ${keepalive ? 'on' : 'off'}: zero failed requests`, async () => {
      const rep = new MemoryReporter();
      const out = await verify({ environment: env, reporter: rep, cycles: 5, concurrency: CONCURRENCY, keepalive, reportDir: dir });
      figures(`5 deploys, keep-alive ${keepalive ? 'on ' : 'off'}`, out.result);
      expect(out.result.failed).toBe(0);
      expect(out.result.failuresByCode).toEqual({});
      expect(out.result).toMatchObject({ concurrency: CONCURRENCY, keepalive, targets: HOSTS.map((h) => ({ label: h, host: lab.site })) });
      expect(out.result.requests).toBeGreaterThan(1000);
      // five releases, each on both hosts, each a different one, the last one serving now
      expect(out.releases.map((r) => [r.kind, r.ok, r.hosts.map((h) => h.phase)])).toEqual(Array(5).fill(['deploy', true, ['finished', 'finished']]));
      expect(new Set(out.releases.map((r) => r.release)).size).toBe(5);
      for (const h of lab.hosts) expect(await lab.fetchSite(h)).toEqual({ status: 200, body: `hello from release ${out.releases[4]!.release}\n` });
      // every host's prepare, switch and retire of every deploy is on the timeline, in order
      for (const h of HOSTS) {
        const mine = out.result.markers.filter((m) => m.host === h);
        expect(mine.map((m) => m.label)).toEqual([1, 2, 3, 4, 5].flatMap((i) => ['prepare', 'switch', 'retire'].map((s) => `deploy ${i}: ${h} ${s}`)));
        expect(mine.map((m) => m.t)).toEqual([...mine.map((m) => m.t)].sort((a, b) => a - b));
      }
      // load was on before the first change and after the last
      const ts = out.result.markers.map((m) => m.t);
      expect(out.result.timeline.slice(0, Math.floor(Math.min(...ts) / 100)).reduce((n, b) => n + b.requests, 0)).toBeGreaterThan(0);
      expect(out.result.timeline.slice(Math.ceil(Math.max(...ts) / 100)).reduce((n, b) => n + b.requests, 0)).toBeGreaterThan(0);
      expect(fs.existsSync(out.report.json) && fs.existsSync(out.report.html)).toBe(true);
      expect(rep.text()).toContain('failed: 0');
    }, 150_000);
  }

  const SIEGE_REPS = 500; // 25,000 requests: 17 s at the 1,500/s seen here, longer on a slower machine
  it('siege as an independent client during a verify: 100 % availability, every answer a success', async () => {
    const rc = path.join(dir, 'siegerc');
    // Our own rc (and HOME): nothing from ~/.siege, no log file, no HTML parsing, JSON stats on stdout.
    fs.writeFileSync(rc, ['json_output = true', 'logging = false', 'parser = false', 'protocol = HTTP/1.1', 'connection = close', 'failures = 1000000', 'timeout = 10', ''].join('\n'));
    const urls = path.join(dir, 'urls.txt');
    fs.writeFileSync(urls, lab.hosts.map((h) => lab.url(h)).join('\n') + '\n');
    for (const u of fs.readFileSync(urls, 'utf8').trim().split('\n')) expect(new URL(u).hostname).toBe('127.0.0.1');

    try {
      // A number of requests per user (-r) that outlasts the verify, not a time (-t) nor a SIGINT:
      // siege 4.0.7 can hang for good in its thread cancellation at the end of those (seen here;
      // JoeDog/siege#4 and #66). It ends by itself and prints its stats.
      siege = spawn('siege', ['-R', rc, '-c', '50', '-r', String(SIEGE_REPS), '-b', '--no-parser', '-H', `Host: ${lab.site}`, '-f', urls], {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, HOME: dir },
      });
      let stdout = '';
      let stderr = '';
      siege.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
      siege.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      const exited = new Promise<number | null>((resolve) => siege!.on('exit', (code) => resolve(code)));
      await new Promise((r) => setTimeout(r, 1000)); // siege is up and running before the change

      const t0 = Date.now();
      siegeVerify = await verify({ environment: env, reporter: new MemoryReporter(), concurrency: CONCURRENCY, reportDir: dir });
      figures('verify while siege runs', siegeVerify.result);
      expect(siegeVerify.result.failed).toBe(0);
      expect(siege.exitCode, `siege ended ${(Date.now() - t0) / 1000}s in: it did not cover the whole verify`).toBeNull();

      expect(await exited).toBe(0);
      // (a first run in a fresh HOME also prints a "New configuration template added" line)
      const stats = JSON.parse(stdout.slice(stdout.indexOf('{'), stdout.lastIndexOf('}') + 1)) as Record<string, number>;
      console.log(`siege during the deploy: ${stats.transactions} transactions, availability ${stats.availability} %, ${stats.failed_transactions} failed, ${stats.transaction_rate} trans/s`);
      expect(stderr).not.toMatch(/error|abort/i);
      expect(stats.transactions).toBe(50 * SIEGE_REPS);
      expect(stats.availability).toBe(100);
      expect(stats.failed_transactions).toBe(0);
      // siege counts a 4xx as available: every transaction must also be a success (< 400)
      expect(stats.successful_transactions).toBe(stats.transactions);
    } finally {
      if (siege && siege.exitCode === null && siege.signalCode === null) siege.kill('SIGKILL');
    }
  }, 90_000);

  it("the verify's HTML report opens in headless Chromium without network: the chart and one switch marker per host", async () => {
    expect(siegeVerify).toBeDefined();
    const { result, report } = siegeVerify!;
    expect(switchMarkers(result).map((m) => m.host).sort()).toEqual(HOSTS);
    browser = await launchChromium();
    const { page, blocked, errors, close } = await openOffline(browser, report.html);
    await page.waitForSelector('html[data-chart="ready"]', { timeout: 15_000 });
    expect(await page.locator('#chart canvas').count()).toBe(1);
    const size = await page.locator('#chart canvas').evaluate((c: HTMLCanvasElement) => [c.width, c.height]);
    expect(size[0]).toBeGreaterThan(300);
    const switches = page.locator('#chart [data-marker][data-phase="switch"]');
    expect((await switches.evaluateAll((els) => els.map((e) => e.getAttribute('data-host')))).sort()).toEqual(HOSTS);
    for (const h of HOSTS) expect(await page.locator(`#chart [data-marker][data-phase="switch"][data-host="${h}"]`).count()).toBe(1);
    expect(await page.locator('#chart [data-marker]').count()).toBe(HOSTS.length * 3);
    expect(await page.locator('.verdict').textContent()).toBe(`0 failed requests of ${result.requests}`);
    expect(blocked).toEqual([]);
    expect(errors).toEqual([]);
    await close();
  }, 60_000);

  it('negative control: an app that dies at once on SIGTERM, retire grace 0: verify fails and names the failed requests', async () => {
    // Every response takes 2.5 s, so requests are in flight on the old process when retire's
    // TERM kills it (grace 0): those are the failures, and nothing else should fail.
    const dying = labEnv(lab, {
      appEnv: { HELLO_DIE_ON_TERM: '1', HELLO_DELAY_MS: '2500' },
      over: { retire: { graceSeconds: 0, drainSeconds: 5 } },
    });
    const live = await deploy({ environment: dying, reporter: new MemoryReporter() }); // the variant is live: it is what gets retired
    expect(live.ok).toBe(true);

    const rep = new MemoryReporter();
    const err = await verify({ environment: dying, reporter: rep, concurrency: CONCURRENCY, reportDir: dir }).then(
      () => new Error('verify passed although the old release died with requests in flight'),
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(LoadCheckFailedError);
    const e = err as LoadCheckFailedError;
    const r = e.result;
    figures('negative control (dies on TERM, grace 0)', r);
    console.log(e.message.split('\n').slice(0, 4).join('\n'));
    expect(r.failed).toBeGreaterThan(0);
    // the message: a head line with the codes, then one line per failed request with time, code and host
    expect(e.message).toMatch(new RegExp(`^${r.failed} of ${r.requests} requests failed \\((\\w+ ×\\d+(, )?)+\\):\\n`));
    const lines = e.message.split('\n').slice(1).filter((l) => l.startsWith('  +'));
    expect(lines.length).toBe(Math.min(r.failed, 20));
    for (const l of lines) expect(l).toMatch(/^  \+\d+\.\d{3} s {2}(\d{3}|E[A-Z]+) {2}h[12]$/);
    expect(lines[0]).toBe(`  +${(r.failures[0]!.t / 1000).toFixed(3)} s  ${r.failures[0]!.code}  ${r.failures[0]!.target}`);
    expect(e.message).toContain(`report: ${e.report.html}`);
    // each failed request was sent to the old process before its host's switch, and failed after it
    const switchAt = new Map(switchMarkers(r).map((m) => [m.host, m.t]));
    expect([...switchAt.keys()].sort()).toEqual(HOSTS);
    for (const f of r.failures) {
      const at = switchAt.get(f.target)!;
      expect(f.t).toBeGreaterThanOrEqual(at - 1);
      expect(f.t - (f.ms ?? 0)).toBeLessThanOrEqual(at + 1);
    }
    // the report has them too
    const json = JSON.parse(fs.readFileSync(e.report.json, 'utf8')) as { result: LoadResult };
    expect(json.result.failed).toBe(r.failed);
    expect(rep.text()).toMatch(new RegExp(`failed: ${r.failed} \\(`));
  }, 120_000);
});
