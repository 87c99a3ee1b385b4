// npm run bench:large [-- --files=10000 --kib=10 --hosts=1 --rtt=0,50 --runs=3]
//
// The large-build case of issue 14: a build of 10,000 files / 100 MB (random bytes: gzip cannot
// hide them) deployed by the built command (`node dist/bin/switchyard.js deploy`, process start to
// exit) against the rsync minimum (bench/rsync-baseline.sh: rsync -a --link-dest to the previous
// release, then start, health check, mv and stop by hand), through the SSH test lab, first with
// every file new (a first deploy) and then with one file changed. Prints medians, the ratio and
// the bytes sent per host; every figure goes to reports/bench-large-<date>.json. Ctrl-C stops
// every child and the lab.
import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { BaseReporter, type Level } from '../lib/output/reporter';
import { setup } from '../lib/servers/setup';
import { validateEnvironment } from '../lib/environment';
import type { ReleaseReport } from '../lib/release/flow';
import { startLab, type Lab, type LabHost } from '../test/support/lab';
import { labEnvInput, REPO } from '../test/support/lab-env';
import { labFsLine } from './lab-fs';
import { reaperLine, underReaper } from './reaper';

const { values: flags } = parseArgs({
  options: {
    files: { type: 'string', default: '10000' },
    kib: { type: 'string', default: '10' },
    hosts: { type: 'string', default: '1' },
    rtt: { type: 'string', default: '0,50' },
    runs: { type: 'string', default: '3' },
    help: { type: 'boolean', default: false },
  },
  strict: true,
});
if (flags.help) {
  process.stdout.write('npm run bench:large -- [--files=10000] [--kib=10] [--hosts=1] [--rtt=0,50] [--runs=3]\n');
  process.exit(0);
}
const whole = (s: string, what: string) => {
  const n = Number(s);
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${what}: not a whole number: ${s}`);
  return n;
};
const FILES = whole(flags.files!, 'files');
const KIB = whole(flags.kib!, 'kib');
const HOSTS = Math.max(1, whole(flags.hosts!, 'hosts'));
const RTTS = flags.rtt!.split(',').map((x) => whole(x, 'rtt'));
const RUNS = Math.max(1, whole(flags.runs!, 'runs'));
const PAUSE = 0.2;

const log = (m: string) => process.stderr.write(`${m}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const mib = (n: number) => `${(n / 1024 / 1024).toFixed(2)} MiB`;

/* ------------------------------------------------------------------ children, by process group */

const running = new Set<ChildProcess>();
function run(cmd: string, args: string[], cwd: string): Promise<{ code: number | null; out: string; err: string; seconds: number }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    running.add(child);
    let out = '';
    let err = '';
    child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
    child.once('error', reject);
    child.once('close', (code) => {
      running.delete(child);
      resolve({ code, out, err, seconds: (performance.now() - t0) / 1000 });
    });
  });
}
function killChildren(): void {
  for (const c of running) {
    try {
      process.kill(-c.pid!, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
}

/* ------------------------------------------------------------------ the build */

function writeBuild(dir: string): void {
  fs.cpSync(path.join(REPO, 'examples', 'hello'), dir, { recursive: true });
  newContent(dir);
}
/** Every one of the FILES files gets new random bytes: nothing of the last release can be reused. */
function newContent(dir: string): void {
  for (let i = 0; i < FILES; i++) {
    const f = path.join(dir, 'static', `d${i % 100}`, `f${i}.bin`);
    fs.mkdirSync(path.dirname(f), { recursive: true });
    fs.writeFileSync(f, crypto.randomBytes(KIB * 1024));
  }
}
function changeOne(dir: string): void {
  fs.writeFileSync(path.join(dir, 'static', 'd7', 'f7.bin'), crypto.randomBytes(KIB * 1024));
}

/* ------------------------------------------------------------------ one run of each side */

interface Side {
  seconds: number;
  bytesPerHost: number;
}

class Silent extends BaseReporter {
  protected write(_l: Level, _s: string): void {}
}

async function switchyardRun(project: string, kind: 'deploy' | 'cold-deploy'): Promise<Side> {
  const report = path.join(project, 'report.json');
  fs.rmSync(report, { force: true });
  const bin = path.join(REPO, 'dist', 'bin', 'switchyard.js');
  const x = await run(process.execPath, [bin, kind, '--env=large', `--report=${report}`], project);
  if (x.code !== 0) throw new Error(`switchyard ${kind} failed (exit ${x.code}):\n${x.err.slice(-2000)}${x.out.slice(-2000)}`);
  const r = JSON.parse(fs.readFileSync(report, 'utf8')) as ReleaseReport;
  return { seconds: x.seconds, bytesPerHost: Math.max(...r.hosts.map((h) => h.stats.bytesUploaded)) };
}

let rsyncSeq = 0;
let rsyncPrev = '-';
async function rsyncRun(lab: Lab, hosts: { h: LabHost; port?: number }[], build: string): Promise<Side> {
  const release = `R${++rsyncSeq}`;
  const args = [
    path.join(REPO, 'bench', 'rsync-baseline.sh'),
    '--ssh-config', lab.sshConfigFile, '--site', lab.site, '--release', release, '--prev', rsyncPrev,
    '--pause', String(PAUSE), '--node', process.execPath, '--build', build,
    ...hosts.map(({ h, port }) => [h.name, port ?? '', h.deployTo, h.socketDir].join(',')),
  ];
  const x = await run('bash', args, REPO);
  if (x.code !== 0) throw new Error(`rsync baseline failed (exit ${x.code}):\n${x.err.slice(-2000)}`);
  rsyncPrev = release;
  const sent = [...x.out.matchAll(/^sent \S+ (\d+)$/gm)].map((m) => Number(m[1]));
  return { seconds: x.seconds, bytesPerHost: Math.max(...sent) };
}

/* ------------------------------------------------------------------ cases */

interface Case {
  rttMs: number;
  change: 'every file' | 'one file';
  switchyard: Side[];
  rsync: Side[];
}

async function measure(c: Case, sy: () => Promise<Side>, rs: () => Promise<Side>, prepare: () => void): Promise<void> {
  for (let i = 0; i < RUNS; i++) {
    prepare();
    // who goes first alternates: load from elsewhere hits both alike
    if (i % 2 === 0) {
      c.switchyard.push(await sy());
      c.rsync.push(await rs());
    } else {
      c.rsync.push(await rs());
      c.switchyard.push(await sy());
    }
    await sleep(500);
  }
  const s = median(c.switchyard.map((r) => r.seconds));
  const b = median(c.rsync.map((r) => r.seconds));
  const sb = median(c.switchyard.map((r) => r.bytesPerHost));
  const rb = median(c.rsync.map((r) => r.bytesPerHost));
  log(
    `RTT ${c.rttMs} ms, ${c.change} changed: switchyard ${s.toFixed(2)} s, rsync minimum ${b.toFixed(2)} s, ratio ${(s / b).toFixed(2)}; ` +
      `sent per host ${mib(sb)} vs ${mib(rb)} (${((100 * sb) / (FILES * KIB * 1024)).toFixed(2)} % of the build)`,
  );
}

async function main(): Promise<void> {
  log(`${await reaperLine()}; ${labFsLine()}`);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sy-bench-large-'));
  let lab: Lab | undefined;
  const stop = async () => {
    killChildren();
    await lab?.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  };
  process.once('SIGINT', () => void stop().then(() => process.exit(130)));
  process.once('SIGTERM', () => void stop().then(() => process.exit(143)));
  try {
    const build = path.join(tmp, 'build');
    writeBuild(build);
    log(`large-build bench: ${FILES} files × ${KIB} KiB (${mib(FILES * KIB * 1024)}), ${HOSTS} host(s), RTT ${RTTS.join(',')} ms, ${RUNS} runs, machine ${os.cpus().length} cpus`);
    lab = await startLab({ hosts: HOSTS * 2 });
    const sy = lab.hosts.slice(0, HOSTS);
    const base = lab.hosts.slice(HOSTS);
    const cases: Case[] = [];
    for (const rtt of RTTS) {
      const port = async (h: LabHost) => (rtt > 0 ? await lab!.addDelayProxy(h, rtt / 2) : undefined);
      const syHosts = await Promise.all(sy.map(async (h) => ({ h, port: await port(h) })));
      const baseHosts = await Promise.all(base.map(async (h) => ({ h, port: await port(h) })));
      const project = path.join(tmp, `project-${rtt}`);
      writeProject(project, lab, syHosts, build);
      const env = validateEnvironment(JSON.parse(fs.readFileSync(path.join(project, 'env', 'large.json'), 'utf8')), { name: 'large', file: 'large.json', root: project });
      await setup({ environment: env, reporter: new Silent() });
      // warm-up: a release live on both sides, so every run below has one to link from
      const fresh = !fs.existsSync(path.join(sy[0]!.deployTo, '.switchyard', 'live'));
      await switchyardRun(project, fresh ? 'cold-deploy' : 'deploy');
      await rsyncRun(lab, baseHosts, build);
      for (const change of ['every file', 'one file'] as const) {
        const c: Case = { rttMs: rtt, change, switchyard: [], rsync: [] };
        await measure(c, () => switchyardRun(project, 'deploy'), () => rsyncRun(lab!, baseHosts, build), () => (change === 'one file' ? changeOne(build) : newContent(build)));
        cases.push(c);
      }
    }
    printSummary(cases);
  } finally {
    await stop();
  }
}

/** A project of the user's: env/large.json pointing at the lab hosts (through their delay proxies). */
function writeProject(dir: string, lab: Lab, hosts: { h: LabHost; port?: number }[], build: string): void {
  fs.mkdirSync(path.join(dir, 'env'), { recursive: true });
  const input = labEnvInput(lab, { over: { build: { dir: build }, keepReleases: 3 } });
  input.hosts = input.hosts.slice(0, hosts.length).map((h, i) => ({ ...h, ...(hosts[i]!.port ? { port: hosts[i]!.port } : {}) }));
  fs.writeFileSync(path.join(dir, 'env', 'large.json'), JSON.stringify(input, null, 2));
}

function printSummary(cases: Case[]): void {
  const rows = cases.map((c) => {
    const s = median(c.switchyard.map((r) => r.seconds));
    const b = median(c.rsync.map((r) => r.seconds));
    const sb = median(c.switchyard.map((r) => r.bytesPerHost));
    const share = sb / (FILES * KIB * 1024);
    const target = c.change === 'one file' ? `${share < 0.01 && s / b <= 1.2 ? 'PASS' : 'MISS'} (< 1 %, ≤ 1.2×)` : '';
    return [`${c.rttMs} ms`, c.change, s.toFixed(2), b.toFixed(2), (s / b).toFixed(2), mib(sb), mib(median(c.rsync.map((r) => r.bytesPerHost))), `${(100 * share).toFixed(2)} %`, target];
  });
  const head = ['RTT', 'changed', 'switchyard s', 'rsync min s', 'ratio', 'sent/host', 'rsync sent/host', 'of build', 'target'];
  const all = [head, ...rows];
  const w = head.map((_, i) => Math.max(...all.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((x, i) => x.padEnd(w[i]!)).join('  ');
  process.stdout.write(`\n${line(head)}\n${w.map((n) => '-'.repeat(n)).join('  ')}\n${rows.map(line).join('\n')}\n`);
  const file = path.join(REPO, 'reports', `bench-large-${new Date().toISOString().replace(/[:.]/g, '')}.json`);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify({ files: FILES, kib: KIB, hosts: HOSTS, runs: RUNS, cases }, null, 2));
  log(`figures: ${path.relative(REPO, file)}`);
}

if (underReaper()) {
  main().catch((e: Error) => {
    log(`bench:large: ${e.message}`);
    process.exit(1);
  });
}
