// Issue 15: a Mono ASP.NET app on FastCGI (examples/mono-shop on Debian's fastcgi-mono-server4),
// deployed end to end through the SSH lab, each host's nginx serving the generated fastcgi block:
// - setup → cold-deploy → deploy: nginx answers through FastCGI with the values of the example
//   environment's Web.config overrides (per host where the host sets its own); the secret is in the
//   rendered file and in no output;
// - deploys under 100 concurrent connections (the built-in load, then siege) with zero failed
//   requests, with requests to the 2 s page in flight at every retire (retire.drain 'connections':
//   the old server, which exits at once on SIGTERM, is stopped once they are answered);
// - the negative control: drain 'signal' with grace 0, the same slow requests fail;
// - a release whose Web.config is broken (500) fails its FastCGI health check, nothing switches;
//   kill -9 of the Mono server is healed by the supervisor.
import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadEnvironment, validateEnvironment, type Environment, type EnvironmentInput } from '../../lib/environment';
import type { XmlFileOverrides } from '../../lib/config/schema';
import type { LoadResult } from '../../lib/load/engine';
import { verify } from '../../lib/load/verify';
import { MemoryReporter } from '../../lib/output/reporter';
import { deploy } from '../../lib/release/deploy';
import { setup } from '../../lib/servers/setup';
import { startLab, type Lab, type LabHost } from '../support/lab';
import { labEnvInput, REPO } from '../support/lab-env';

const SECRET_VAR = 'MONO_SHOP_DB'; // what env/mono-uat.example.ts asks for
const PASSWORD = crypto.randomBytes(12).toString('base64url');
const SECRET = `Server=db.uat.internal;Database=shop;User Id=shop;Password=${PASSWORD}`;
const CONCURRENCY = 100;
const quiet = () => new MemoryReporter();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let lab: Lab;
let example: Environment; // env/mono-uat.example.ts as a user would load it
let env: Environment;
let dir: string;
let siege: ChildProcess | undefined;
const timings: string[] = [];

/** The example environment on the lab's hosts: its app, nginx, retire and config, host by host. */
function monoEnv(over: Partial<EnvironmentInput> = {}): Environment {
  const lab0 = labEnvInput(lab);
  return validateEnvironment(
    {
      ...lab0,
      build: example.build,
      app: example.app, // 30 s for the health check: a new server compiles its pages while the old one serves 100 connections on 2 cores
      hosts: lab0.hosts.map((h, i) => ({ ...h, config: example.hosts[i]!.config })),
      nginx: example.nginx,
      retire: { ...example.retire, drainSeconds: 10 },
      config: example.config,
      ...over,
    },
    { name: 'mono', file: 'env/mono-uat.example.ts (on the lab)', root: REPO },
  );
}

const currentRelease = (h: LabHost) => path.join(h.deployTo, fs.readlinkSync(path.join(h.deployTo, 'current')));
const livePid = (h: LabHost) => Number(fs.readFileSync(path.join(h.deployTo, '.switchyard', 'live'), 'utf8').split(' ')[1]);

/** The page as examples/mono-shop renders it with the example environment's values on host i. */
function expectedPage(release: string, i: number, pathInfo = ''): string {
  const greeting = i === 1 ? 'hello from the second server' : 'hello from UAT';
  return [
    `release=${release}`,
    'environment=uat',
    `greeting=${greeting}`,
    `node=web${i + 1}`,
    'currency=EUR',
    `shop=Server=db.uat.internal;Database=shop;User Id=shop;Password=(${PASSWORD.length} characters)`,
    `path_info=${pathInfo}`,
    '',
  ].join('\n');
}

interface SlowAnswer {
  host: string;
  t0: number;
  t1: number;
  status: number;
  body: string;
}

/** Requests to Slow.aspx (2 s) on every host, a new one every `everyMs`, until stop(). */
function slowRequests(everyMs = 400): { stop(): Promise<SlowAnswer[]> } {
  const all: Promise<SlowAnswer>[] = [];
  const one = () => {
    for (const h of lab.hosts) {
      const t0 = Date.now();
      all.push(
        lab.fetchSite(h, '/Slow.aspx').then(
          (r) => ({ host: h.name, t0, t1: Date.now(), ...r }),
          (e: unknown) => ({ host: h.name, t0, t1: Date.now(), status: 0, body: String(e) }),
        ),
      );
    }
  };
  one();
  const timer = setInterval(one, everyMs);
  return {
    stop: async () => {
      clearInterval(timer);
      return Promise.all(all);
    },
  };
}

/**
 * Every host's switch in every deploy had a slow request of the release before it in flight: one
 * that was sent before that switch and answered (200, by the old release) after it. Those are the
 * requests retire waited for.
 */
function inFlightAtEverySwitch(slow: SlowAnswer[], switches: { host: string; at: number; from: string }[]): void {
  for (const s of switches) {
    const held = slow.filter((a) => a.host === s.host && a.t0 < s.at && a.t1 > s.at + 100 && a.status === 200 && a.body.trim() === `slow from release ${s.from}`);
    const near = slow.filter((a) => a.host === s.host && a.t1 > s.at - 3000 && a.t0 < s.at + 3000).map((a) => `${a.t0 - s.at}..${a.t1 - s.at} ${a.status} ${a.body.trim()}`);
    expect(held.length, `${s.host}: no slow request of ${s.from} in flight at its switch; around it: ${near.join('; ')}`).toBeGreaterThan(0);
  }
}

/** Switch times of a load run's markers, as epoch ms, with the release each host left. */
function switchesOf(r: LoadResult, releasesInOrder: string[]): { host: string; at: number; from: string }[] {
  const t0 = Date.parse(r.startedAt);
  return r.markers
    .filter((m) => m.phase === 'switch')
    .map((m) => {
      const i = Number(/^deploy (\d+):/.exec(m.label)?.[1] ?? 1);
      return { host: m.host!, at: t0 + m.t, from: releasesInOrder[i - 1]! };
    });
}

function figures(what: string, r: LoadResult, seconds?: number): void {
  const line = `${what}: ${r.requests} requests, ${r.failed} failed, ${r.rps} req/s, p50 ${r.latencyMs.p50} ms, p99 ${r.latencyMs.p99} ms${seconds === undefined ? '' : `, ${seconds.toFixed(1)} s`}`;
  timings.push(line);
  console.log(line);
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sy-mono-'));
  example = loadEnvironment({ name: 'mono-uat.example', root: REPO });
  process.env[SECRET_VAR] = SECRET;
  lab = await startLab({ hosts: 2, nginxPass: 'fastcgi' });
  env = monoEnv();
}, 60_000);

/** What the Mono servers logged as exceptions (every release's app.log): shown when a test failed. */
function monoExceptions(): string[] {
  const out: string[] = [];
  for (const h of lab?.hosts ?? []) {
    const releases = path.join(h.deployTo, 'releases');
    for (const r of fs.existsSync(releases) ? fs.readdirSync(releases) : []) {
      const log = path.join(releases, r, '.switchyard', 'app.log');
      if (!fs.existsSync(log)) continue;
      const text = fs.readFileSync(log, 'utf8');
      if (/Exception|mono-shop:/.test(text)) out.push(`${h.name} ${r}:\n${text.split('\n').filter((l) => /Exception|mono-shop:|   at /.test(l)).slice(0, 12).join('\n')}`);
    }
  }
  return out;
}

afterAll(async () => {
  const ex = monoExceptions();
  if (ex.length) console.log(`exceptions in the Mono servers' logs:\n${ex.join('\n')}`);
  if (siege && siege.exitCode === null && siege.signalCode === null) siege.kill('SIGKILL');
  await lab?.stop();
  delete process.env[SECRET_VAR];
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
  if (timings.length) console.log(timings.join('\n'));
});

describe.sequential('a Mono ASP.NET app on FastCGI through the SSH lab', () => {
  let last = '';

  it("setup, cold-deploy, deploy: nginx answers through FastCGI with each host's Web.config values; the secret is in the file and in no output", async () => {
    const rep = new MemoryReporter(true); // every remote command and result line
    const report = path.join(dir, 'report.json');
    await setup({ environment: env, reporter: rep });
    expect(rep.text()).toMatch(/setup\.sh --deploy-to \S+ --socket-dir \S+ --health-protocol fastcgi/); // so it checked cgi-fcgi
    let t = Date.now();
    const cold = await deploy({ environment: env, reporter: rep }, 'cold-deploy');
    timings.push(`cold-deploy: ${((Date.now() - t) / 1000).toFixed(1)} s`);
    expect(cold.ok).toBe(true);
    t = Date.now();
    const r = await deploy({ environment: env, reporter: rep, report });
    timings.push(`deploy: ${((Date.now() - t) / 1000).toFixed(1)} s`);
    expect(r.ok).toBe(true);
    last = r.release;
    for (const [i, h] of lab.hosts.entries()) {
      expect(await lab.fetchSite(h, '/Default.aspx')).toEqual({ status: 200, body: expectedPage(r.release, i) });
      // a path ending in / goes to fastcgi_index (Default.aspx); PATH_INFO is split off the page
      expect(await lab.fetchSite(h, '/')).toEqual({ status: 200, body: expectedPage(r.release, i) });
      expect(await lab.fetchSite(h, '/Default.aspx/more')).toEqual({ status: 200, body: expectedPage(r.release, i, '/more') });
      // SCRIPT_FILENAME names the release the switch made live, not the current symlink
      const web = fs.readFileSync(path.join(currentRelease(h), 'Web.config'), 'utf8');
      expect(web).toContain(`<add name="Shop" connectionString="${SECRET}"`);
      expect(fs.statSync(path.join(currentRelease(h), 'Web.config')).mode & 0o777).toBe(0o640);
      expect(fs.statSync(h.liveSocket).mode & 0o777).toBe(0o660); // Mono made it 0755; prepare set the mode
    }
    for (const text of [rep.text(), fs.readFileSync(report, 'utf8')]) {
      expect(text).not.toContain(PASSWORD);
      expect(text).not.toContain(SECRET);
    }
    expect(rep.text()).toMatch(/prepare\.sh .* --expect-status 200 --health-protocol fastcgi /);
  }, 90_000);

  it(`deploys under ${CONCURRENCY} concurrent connections (built-in load), 2 s requests in flight at every retire: zero failed`, async () => {
    const slow = slowRequests();
    const rep = new MemoryReporter(true);
    const t = Date.now();
    const out = await verify({ environment: env, reporter: rep, cycles: 2, concurrency: CONCURRENCY, reportDir: dir });
    const seconds = (Date.now() - t) / 1000;
    await sleep(2200); // the slow requests sent last are answered
    const answers = await slow.stop();
    figures('2 deploys, built-in load', out.result, seconds);
    expect(out.result.failed).toBe(0);
    expect(out.result.requests).toBeGreaterThan(500);
    expect(answers.filter((a) => a.status !== 200)).toEqual([]);
    const ids = [last, ...out.releases.map((x) => x.release)];
    inFlightAtEverySwitch(answers, switchesOf(out.result, ids));
    // each retire waited for the old server's connections, then stopped it
    expect(rep.text().match(/connections=closed/g)?.length).toBe(2 * lab.hosts.length);
    last = ids[ids.length - 1]!;
    timings.push(`slow requests during those deploys: ${answers.length}, failed ${answers.filter((a) => a.status !== 200).length}; deploy seconds ${out.releases.map((x) => x.seconds.toFixed(1)).join(', ')}`);
  }, 120_000);

  it(`a deploy while siege (${CONCURRENCY} users on the pages, the slow one too) and the slow requests run: 100 % availability, zero failed`, async () => {
    const rc = path.join(dir, 'siegerc');
    fs.writeFileSync(rc, ['json_output = true', 'logging = false', 'parser = false', 'protocol = HTTP/1.1', 'connection = close', 'failures = 1000000', 'timeout = 10', ''].join('\n'));
    const urls = path.join(dir, 'urls.txt');
    // one in six the 2 s page: siege then lasts at least REPS / 6 × 2 s whatever the machine's
    // speed, so it covers the deploy (a count, not a time: siege 4.0.7 can hang at the end of a -t run)
    fs.writeFileSync(urls, lab.hosts.flatMap((h) => ['/Default.aspx', '/', '/Slow.aspx', '/Default.aspx/more', '/', '/Default.aspx'].map((p) => lab.url(h, p))).join('\n') + '\n');
    const USERS = CONCURRENCY;
    const REPS = 18;
    siege = spawn('siege', ['-R', rc, '-c', String(USERS), '-r', String(REPS), '-b', '--no-parser', '-H', `Host: ${lab.site}`, '-f', urls], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, HOME: dir },
    });
    let stdout = '';
    let stderr = '';
    siege.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    siege.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => siege!.on('exit', (code) => resolve(code)));
    const slow = slowRequests();
    await sleep(200);
    const switches: { host: string; at: number; from: string }[] = [];
    const retiredUnderSiege: boolean[] = [];
    const from = last;
    const t = Date.now();
    const r = await deploy({
      environment: env,
      reporter: quiet(),
      onEvent: (e) => {
        if (e.step === 'switch' && e.at === 'end') switches.push({ host: e.host, at: Date.now(), from });
        if (e.step === 'retire' && e.at === 'end') retiredUnderSiege.push(siege!.exitCode === null);
      },
    });
    const seconds = (Date.now() - t) / 1000;
    expect(r.ok).toBe(true);
    // siege ran through every host's switch and retire
    expect(retiredUnderSiege).toEqual(lab.hosts.map(() => true));
    await sleep(2200);
    const answers = await slow.stop();
    expect(await exited).toBe(0);
    const stats = JSON.parse(stdout.slice(stdout.indexOf('{'), stdout.lastIndexOf('}') + 1)) as Record<string, number>;
    const line = `siege during a deploy (${seconds.toFixed(1)} s): ${stats.transactions} transactions, availability ${stats.availability} %, ${stats.failed_transactions} failed, ${stats.transaction_rate} trans/s`;
    timings.push(line);
    console.log(line);
    expect(stderr).not.toMatch(/error|abort/i);
    expect(stats.transactions).toBe(USERS * REPS);
    expect(stats.availability).toBe(100);
    expect(stats.successful_transactions).toBe(stats.transactions);
    expect(answers.filter((a) => a.status !== 200)).toEqual([]);
    inFlightAtEverySwitch(answers, switches);
    last = r.release;
  }, 120_000);

  it("negative control: drain 'signal' with grace 0, the Mono server dies at once on SIGTERM and the slow requests in flight fail", async () => {
    const signal = monoEnv({ retire: { graceSeconds: 0, drain: 'signal', drainSeconds: 5 } });
    const slow = slowRequests();
    await sleep(600); // some are in flight on the live server
    const r = await deploy({ environment: signal, reporter: quiet() });
    expect(r.ok).toBe(true);
    await sleep(2200);
    const answers = await slow.stop();
    const failed = answers.filter((a) => a.status !== 200);
    timings.push(`negative control (drain signal, grace 0): ${failed.length} of ${answers.length} slow requests failed (${[...new Set(failed.map((a) => a.status))].join(', ')})`);
    expect(failed.length).toBeGreaterThan(0);
    // nginx: 502, the upstream closed the connection
    expect(failed.every((a) => a.status === 502)).toBe(true);
    last = r.release;
  }, 60_000);

  it('a release whose Web.config is broken answers 500: it fails its FastCGI health check and nothing switches', async () => {
    const webConfig = example.config!['Web.config'] as XmlFileOverrides;
    const broken = monoEnv({
      app: { ...example.app, health: { ...example.app.health, timeoutSeconds: 4 } }, // a 500 is retried until then
      config: { 'Web.config': { ...webConfig, xpath: { ...webConfig.xpath, '/configuration/system.web/compilation/@debug': 'maybe' } } },
    });
    const before = lab.hosts.map(currentRelease);
    const r = await deploy({ environment: broken, reporter: quiet() }).catch((e: unknown) => e);
    expect(r).toBeInstanceOf(Error);
    expect(String(r)).toMatch(/GET \/Health\.aspx \(Host: app\.test\) answered 500, want 200/);
    expect(lab.hosts.map(currentRelease)).toEqual(before);
    for (const [i, h] of lab.hosts.entries()) expect(await lab.fetchSite(h, '/Default.aspx')).toEqual({ status: 200, body: expectedPage(last, i) });
  }, 60_000);

  it('kill -9 of the Mono server: the supervisor has the site answering through FastCGI again', async () => {
    const h = lab.hosts[0]!;
    const was = livePid(h);
    process.kill(was, 'SIGKILL');
    const t0 = Date.now();
    let ms = -1;
    while (Date.now() - t0 < 15_000) {
      const r = await lab.fetchSite(h, '/Default.aspx').catch(() => undefined);
      if (r?.status === 200 && livePid(h) !== was) {
        ms = Date.now() - t0;
        expect(r.body).toBe(expectedPage(last, 0));
        break;
      }
      await sleep(50);
    }
    timings.push(`kill -9 of fastcgi-mono-server4 healed by the supervisor in ${ms} ms`);
    expect(ms).toBeGreaterThan(0);
  }, 30_000);
});
