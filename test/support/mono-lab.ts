// The Mono lab of the e2e tests (test/e2e/mono*.test.ts): examples/mono-shop with
// env/mono-uat.example.ts on a 2-host SSH lab whose nginx serves the generated fastcgi block, and
// the helpers its tests share. useMonoLab() in a test file starts it before its tests and stops it
// after them (every process by pid: lab.stop()).
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect } from 'vitest';
import { loadEnvironment, validateEnvironment, type Environment, type EnvironmentInput } from '../../lib/environment';
import type { LoadResult } from '../../lib/load/engine';
import { MemoryReporter } from '../../lib/output/reporter';
import { startLab, type Lab, type LabHost } from './lab';
import { labEnvInput, REPO } from './lab-env';

export const SECRET_VAR = 'MONO_SHOP_DB'; // what env/mono-uat.example.ts asks for
export const PASSWORD = crypto.randomBytes(12).toString('base64url');
export const SECRET = `Server=db.uat.internal;Database=shop;User Id=shop;Password=${PASSWORD}`;
export const CONCURRENCY = 100;
export const quiet = () => new MemoryReporter();
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export let lab: Lab;
export let example: Environment; // env/mono-uat.example.ts as a user would load it
export let env: Environment;
export let dir: string;
export const timings: string[] = [];

/** The example environment on the lab's hosts: its app, nginx, retire and config, host by host. */
export function monoEnv(over: Partial<EnvironmentInput> = {}): Environment {
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

export const currentRelease = (h: LabHost) => path.join(h.deployTo, fs.readlinkSync(path.join(h.deployTo, 'current')));
export const livePid = (h: LabHost) => Number(fs.readFileSync(path.join(h.deployTo, '.switchyard', 'live'), 'utf8').split(' ')[1]);

/** The page as examples/mono-shop renders it with the example environment's values on host i. */
export function expectedPage(release: string, i: number, pathInfo = ''): string {
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

export interface SlowAnswer {
  host: string;
  t0: number;
  t1: number;
  status: number;
  body: string;
}

/** Requests to Slow.aspx (2 s) on every host, a new one every `everyMs`, until stop(). */
export function slowRequests(everyMs = 400): { stop(): Promise<SlowAnswer[]> } {
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
export function inFlightAtEverySwitch(slow: SlowAnswer[], switches: { host: string; at: number; from: string }[]): void {
  for (const s of switches) {
    const held = slow.filter((a) => a.host === s.host && a.t0 < s.at && a.t1 > s.at + 100 && a.status === 200 && a.body.trim() === `slow from release ${s.from}`);
    const near = slow.filter((a) => a.host === s.host && a.t1 > s.at - 3000 && a.t0 < s.at + 3000).map((a) => `${a.t0 - s.at}..${a.t1 - s.at} ${a.status} ${a.body.trim()}`);
    expect(held.length, `${s.host}: no slow request of ${s.from} in flight at its switch; around it: ${near.join('; ')}`).toBeGreaterThan(0);
  }
}

/** Switch times of a load run's markers, as epoch ms, with the release each host left. */
export function switchesOf(r: LoadResult, releasesInOrder: string[]): { host: string; at: number; from: string }[] {
  const t0 = Date.parse(r.startedAt);
  return r.markers
    .filter((m) => m.phase === 'switch')
    .map((m) => {
      const i = Number(/^deploy (\d+):/.exec(m.label)?.[1] ?? 1);
      return { host: m.host!, at: t0 + m.t, from: releasesInOrder[i - 1]! };
    });
}

/**
 * A failed load run's failures, each placed after the release step that came last before it on
 * any host ("502 on h1 /: 35 ms after h1 retire"): what a failing assertion prints, so the step
 * that lost a request is named without re-running.
 */
export function failuresNearSteps(r: LoadResult, max = 20): string {
  const lines = r.failures.slice(0, max).map((f) => {
    const before = r.markers.filter((m) => m.t <= f.t).at(-1);
    const sent = f.ms === undefined ? '' : `, sent ${Math.round(f.ms)} ms before`;
    return `  ${f.code} on ${f.target} at ${Math.round(f.t)} ms${sent}: ${before ? `${Math.round(f.t - before.t)} ms after ${before.label}` : 'before any step'}`;
  });
  return `${r.failed} of ${r.requests} requests failed:\n${lines.join('\n')}`;
}

/** Each host's audit log (every release step, the supervisor's too), nginx's errors and its 4xx/5xx answers, since `since` (epoch ms). */
export function whatTheServersSaw(since: number): string {
  const iso = new Date(since).toISOString().slice(0, 19);
  return lab.hosts
    .map((h) => {
      const read = (f: string) => (fs.existsSync(f) ? fs.readFileSync(f, 'utf8').split('\n').filter(Boolean) : []);
      const audit = read(path.join(h.deployTo, '.switchyard', 'audit.log')).filter((l) => l.slice(0, 19) >= iso);
      const errors = read(path.join(h.root, 'nginx', 'error.log')).filter((l) => !/\[notice\]/.test(l)).slice(-30);
      // what answered a 4xx/5xx (the allow-list's 421 to the lab's own probe aside): nginx or the app
      const failed = read(path.join(h.root, 'nginx', 'access.log')).filter((l) => /" [45]\d\d /.test(l) && !/" 421 /.test(l)).slice(-20);
      return [`${h.name} audit.log:`, ...audit, `${h.name} nginx error.log:`, ...errors, `${h.name} nginx access.log, 4xx/5xx:`, ...failed].join('\n  ');
    })
    .join('\n');
}

export function figures(what: string, r: LoadResult, seconds?: number): void {
  const line = `${what}: ${r.requests} requests, ${r.failed} failed, ${r.rps} req/s, p50 ${r.latencyMs.p50} ms, p99 ${r.latencyMs.p99} ms${seconds === undefined ? '' : `, ${seconds.toFixed(1)} s`}`;
  timings.push(line);
  console.log(line);
}

/** What the Mono servers logged as exceptions (every release's app.log): shown when a test failed. */
export function monoExceptions(): string[] {
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

/** Starts the lab (and loads the example environment) before the file's tests; stops it after them. */
export function useMonoLab(): void {
  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sy-mono-'));
    example = loadEnvironment({ name: 'mono-uat.example', root: REPO });
    process.env[SECRET_VAR] = SECRET;
    lab = await startLab({ hosts: 2, nginxPass: 'fastcgi' });
    env = monoEnv();
  }, 60_000);
  afterAll(async () => {
    const ex = monoExceptions();
    if (ex.length) console.log(`exceptions in the Mono servers' logs:\n${ex.join('\n')}`);
    await lab?.stop();
    delete process.env[SECRET_VAR];
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
    if (timings.length) console.log(timings.join('\n'));
  });
}
