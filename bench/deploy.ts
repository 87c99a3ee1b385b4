// npm run bench [-- --quick] [-- --runs=N --hosts=1,4,16,64 --rtt=0,50 --base-pause=0.2 --grace=S --drain=5]
//
// What a user waits for: the built command (`node dist/bin/switchyard.js deploy --env=bench`, from
// a project directory of its own, process start to exit) deploying examples/hello through the SSH
// test lab (real sshd + nginx per host on loopback), against the bash + system ssh minimum
// (bench/baseline.sh: one ssh per host that unpacks, starts, health-checks, switches, pauses
// --base-pause s and stops the old process), directly and through delay proxies (RTT 50 ms: 25 ms
// each way). Both run under GNU time (peak memory, local CPU). Prints per case the medians, the
// ratio, connections, execs and bytes per host, the time from each host's switch to its old
// process gone, peak memory, remote CPU per host and PASS/MISS per target; every figure goes to
// reports/bench-<date>.json. See docs/BENCHMARK.md for the method.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { EnvironmentInput } from '../lib/environment';
import type { ReleaseReport } from '../lib/release/flow';
import { startDelayProxy, type DelayProxy } from '../test/support/delay-proxy';
import { startLab, type Lab, type LabHost } from '../test/support/lab';
import { labEnvInput, REPO } from '../test/support/lab-env';
import { linkPackage } from './lab-project';
import { labFsLine } from './lab-fs';
import { reaperLine, underReaper } from './reaper';

/* ------------------------------------------------------------------ options */

const { values: flags } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    runs: { type: 'string' },
    hosts: { type: 'string', default: '1,4,16,64' },
    rtt: { type: 'string', default: '0,50' },
    'base-pause': { type: 'string', default: '0.2' },
    'base-kex': { type: 'string', default: 'curve25519-sha256' },
    grace: { type: 'string' },
    drain: { type: 'string', default: '5' },
    bin: { type: 'string', default: path.join(REPO, 'dist', 'bin', 'switchyard.js') },
    help: { type: 'boolean', default: false },
  },
  strict: true,
});
if (flags.help) {
  process.stdout.write(
    'npm run bench -- [--quick] [--runs=N] [--hosts=1,4,16,64] [--rtt=0,50] [--base-pause=0.2] [--base-kex=curve25519-sha256] [--grace=S] [--drain=5] [--bin=FILE]\n' +
      '  --quick       2 timed runs per case instead of 4\n' +
      '  --hosts       host counts, at most 64 (two labs of that many: switchyard\'s and the baseline\'s)\n' +
      '  --rtt         round trips in ms (0: direct; >0: through a delay proxy per host, half each way)\n' +
      '  --base-pause  the baseline\'s fixed pause between its switch and its kill, s\n' +
      '  --base-kex    the baseline ssh\'s KexAlgorithms (default: what switchyard\'s ssh2 negotiates; "default": OpenSSH\'s own)\n' +
      '  --grace       switchyard\'s retire.graceSeconds (default: the schema\'s, an upper bound)\n' +
      '  --drain       SIGTERM → SIGKILL upper bound, s, both sides\n' +
      '  --bin         the switchyard command to time (default: dist/bin/switchyard.js; npm run build)\n',
  );
  process.exit(0);
}
const numbers = (s: string, what: string) =>
  s.split(',').map((x) => {
    const n = Number(x);
    if (!Number.isFinite(n) || n < 0 || x.trim() === '') throw new Error(`--${what}: not a list of numbers: ${s}`);
    return n;
  });
const RUNS = flags.runs ? Math.max(1, Math.floor(numbers(flags.runs, 'runs')[0]!)) : flags.quick ? 2 : 4;
const HOST_COUNTS = numbers(flags.hosts!, 'hosts').map((n) => Math.max(1, Math.floor(n)));
const RTTS = numbers(flags.rtt!, 'rtt');
const BASE_PAUSE = numbers(flags['base-pause']!, 'base-pause')[0]!;
const BASE_KEX = flags['base-kex'] === 'default' ? '' : flags['base-kex']!;
const GRACE = flags.grace === undefined ? undefined : numbers(flags.grace, 'grace')[0]!;
const DRAIN = Math.max(1, Math.round(numbers(flags.drain!, 'drain')[0]!)); // baseline.sh counts it in tenths
const BIN = path.resolve(flags.bin!);
const MAX_HOSTS = Math.max(...HOST_COUNTS);
// startLab holds at most 64 hosts: one lab per side, each as large as the largest case.
const LAB_LIMIT = 64;
if (MAX_HOSTS > LAB_LIMIT) throw new Error(`--hosts: at most ${LAB_LIMIT} (one lab of up to ${LAB_LIMIT} hosts per side)`);
const TIME = '/usr/bin/time'; // GNU time: apt-get install time

/** Targets (issue 14): whole process, the bash + ssh minimum pausing 0.2 s before its kill. */
const TARGET_RATIO = 1.15;
const TARGET_RATIO_64 = 1.1;
const TARGET_SWITCH_TO_GONE_S = 0.3;

/* ------------------------------------------------------------------ small helpers */

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]): number => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!s.length) return NaN;
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const maxOf = (xs: number[]) => {
  const s = xs.filter((x) => Number.isFinite(x));
  return s.length ? Math.max(...s) : NaN;
};
const minOf = (xs: number[]) => -maxOf(xs.map((x) => -x));
const fmt = (x: number, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : '-');
const load = () => os.loadavg().map((x) => x.toFixed(2)).join(' ');
const log = (msg: string) => process.stderr.write(`${msg}\n`);

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(rows[0]!), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)].join('\n');
}

const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
  } catch {
    return 100;
  }
})();

/** Fields 3… of /proc/PID/stat (f[0] = state), or undefined when the process is gone. */
function procStat(pid: number): string[] | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/**
 * CPU seconds spent by everything a lab host's sshd ran for its SSH sessions (sshd's session
 * processes, bash, the scripts' tools), from the listener's utime + stime + cutime + cstime: each
 * level waits for its children, so their time adds up there once they are reaped. Apps started
 * with nohup setsid leave the tree and are not counted (the same app on both sides).
 */
function sshdCpuSeconds(h: LabHost): number {
  const pid = Number(fs.readFileSync(path.join(h.root, 'sshd.pid'), 'utf8').trim());
  const f = procStat(pid);
  if (!f) throw new Error(`bench: sshd of ${h.name} (pid ${pid}) is gone`);
  return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / CLK_TCK;
}

/** Pause after every run: sessions end and are reaped, and both sides get the same quiet gap. */
const SETTLE_MS = 500;

/** Runs fn and adds the remote CPU per host it cost (after a pause, so sshd has reaped everything). */
async function withRemoteCpu<T extends object>(hosts: LabHost[], fn: () => Promise<T>): Promise<T & { remoteCpuPerHost: number }> {
  const before = hosts.reduce((a, h) => a + sshdCpuSeconds(h), 0);
  const r = await fn();
  await sleep(SETTLE_MS);
  const after = hosts.reduce((a, h) => a + sshdCpuSeconds(h), 0);
  return { ...r, remoteCpuPerHost: (after - before) / hosts.length };
}

/* ------------------------------------------------------------------ switch → old process gone */

/** A process by pid and start time (field 22), so a reused pid is not mistaken for it. */
interface Proc {
  pid: number;
  start: string;
}
const alive = (p: Proc) => {
  const f = procStat(p.pid);
  return !!f && f[0] !== 'Z' && f[0] !== 'X' && f[19] === p.start;
};

/** The app serving a host now: what the next deploy must stop. */
type OldOf = (h: LabHost) => Proc | undefined;
/** switchyard: .switchyard/live holds "RELEASE PID STARTTIME" (switch.sh). */
const switchyardLive: OldOf = (h) => {
  try {
    const [, pid, start] = fs.readFileSync(path.join(h.deployTo, '.switchyard', 'live'), 'utf8').trim().split(/\s+/);
    const p = { pid: Number(pid), start: start ?? '' };
    return p.pid > 0 && alive(p) ? p : undefined;
  } catch {
    return undefined;
  }
};
/** baseline: <deployTo>/baseline.pid (baseline.sh); its start time read now. */
const baselineLive: OldOf = (h) => {
  try {
    const pid = Number(fs.readFileSync(path.join(h.deployTo, 'baseline.pid'), 'utf8').trim());
    const start = procStat(pid)?.[19];
    return pid > 0 && start ? { pid, start } : undefined;
  } catch {
    return undefined;
  }
};

interface HostSeen {
  host: string;
  /** ms after spawn: the live socket renamed (inotify on socketDir), the old app gone (/proc, every 10 ms). */
  switchedAt?: number;
  goneAt?: number;
  hadOld: boolean;
}

/**
 * Watches every host, from the outside and the same way for both sides (the lab is local): the
 * moment its live socket SOCK-<site> is renamed over (fs.watch: inotify IN_MOVED_TO), and from
 * then on, every 10 ms, whether the app that served it before the run is gone.
 */
function watchHosts(hosts: LabHost[], site: string, oldOf: OldOf): { t0: (at: number) => void; stop: () => HostSeen[] } {
  const live = `SOCK-${site}`;
  let t0 = performance.now();
  const seen = hosts.map((h) => ({ h, old: oldOf(h), s: { host: h.name, hadOld: false } as HostSeen }));
  for (const x of seen) x.s.hadOld = !!x.old;
  let timer: NodeJS.Timeout | undefined;
  const poll = () => {
    const now = performance.now() - t0;
    let waiting = false;
    for (const x of seen) {
      if (x.s.switchedAt === undefined || x.s.goneAt !== undefined || !x.old) continue;
      if (alive(x.old)) waiting = true;
      else x.s.goneAt = now;
    }
    if (!waiting && timer) {
      clearInterval(timer);
      timer = undefined;
    }
  };
  const watchers = seen.map((x) =>
    fs.watch(x.h.socketDir, (event, name) => {
      if (event !== 'rename' || name !== live || x.s.switchedAt !== undefined) return;
      x.s.switchedAt = performance.now() - t0;
      if (x.old && !timer) timer = setInterval(poll, 10);
    }),
  );
  return {
    t0: (at) => (t0 = at),
    stop: () => {
      poll(); // the last look (the run has ended: a process seen gone now went in the last 10 ms)
      if (timer) clearInterval(timer);
      for (const w of watchers) w.close();
      return seen.map((x) => x.s);
    },
  };
}
const watching = new Set<{ stop: () => HostSeen[] }>();

/* ------------------------------------------------------------------ child processes */

// Everything the bench spawns, by pid (each in its own process group), so Ctrl-C stops it all.
const running = new Set<ChildProcess>();

interface Timed {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Parent-side wall time from spawn to exit, s. */
  seconds: number;
  /** GNU time: the largest resident set of the process or any child it waited for, KiB. */
  maxRssKiB: number;
  /** GNU time: user + system CPU of the process and the children it waited for, s. */
  cpuSeconds: number;
}

let timedSeq = 0;
/** cmd under GNU time, in a process group of its own; `onSpawn` gets the moment of spawn() (performance.now()). */
function timed(cmd: string, args: string[], cwd: string, onSpawn: (at: number) => void): Promise<Timed> {
  const out = path.join(tmpDir, `time-${++timedSeq}.txt`);
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(TIME, ['-f', '%M %U %S', '-o', out, cmd, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    onSpawn(started);
    running.add(child);
    let stdout = '';
    let stderr = '';
    let exitedAt = NaN;
    child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    child.once('exit', () => (exitedAt = performance.now()));
    child.once('error', (e) => {
      running.delete(child);
      reject(e);
    });
    child.once('close', (code, signal) => {
      running.delete(child);
      let rss = NaN;
      let cpu = NaN;
      try {
        // the last line: GNU time writes "Command exited with non-zero status N" above it
        const m = /(\d+) ([\d.]+) ([\d.]+)\s*$/.exec(fs.readFileSync(out, 'utf8'));
        if (m) [rss, cpu] = [Number(m[1]), Number(m[2]) + Number(m[3])];
      } catch {
        /* no figures: NaN */
      }
      const end = Number.isFinite(exitedAt) ? exitedAt : performance.now();
      resolve({ code, signal, stdout, stderr, seconds: (end - started) / 1000, maxRssKiB: rss, cpuSeconds: cpu });
    });
  });
}

async function stopChildren(): Promise<void> {
  const groups = [...running].map((c) => c.pid).filter((p): p is number => p !== undefined);
  const kill = (sig: NodeJS.Signals) => {
    for (const pgid of groups) {
      try {
        process.kill(-pgid, sig);
      } catch {
        /* gone */
      }
    }
  };
  kill('SIGTERM'); // a switchyard deploy rolls back on SIGTERM; give it a moment
  const deadline = Date.now() + 8_000;
  while (running.size && Date.now() < deadline) await sleep(50);
  kill('SIGKILL');
}

/* ------------------------------------------------------------------ one run of each side */

interface Run {
  ok: boolean;
  error?: string;
  /** spawn → exit, s: what the user waits for. */
  seconds: number;
  maxRssMiB: number;
  /** Local CPU, s: the process and every child it waited for. */
  localCpu: number;
  remoteCpuPerHost?: number;
  /** Per host: switch → old process gone, s (hosts that had an old process). */
  switchToGone: number[];
  /** s after spawn: first host switched, last host switched, last old process gone. */
  phases: { firstSwitch: number; lastSwitch: number; lastGone: number };
  /** Bytes up to each host's sshd through its delay proxy (RTT > 0 only): SSH framing included. */
  wireUpPerHost?: number;
  hostsSeen: HostSeen[];
}

interface SyRun extends Run {
  connections: number;
  executions: number;
  bytesUploaded: number;
  /** report.seconds: the release flow (connect → retire), s; the rest of `seconds` is start-up, package, exit. */
  flowSeconds: number;
  release?: string;
}

interface BaseRun extends Run {
  bytes: number;
  /** From baseline.sh's own marks (remote clock = this machine's), per host: switched → retired, s. */
  marksSwitchToRetired: number[];
}

function seenFigures(seen: HostSeen[]): Pick<Run, 'switchToGone' | 'phases' | 'hostsSeen'> {
  const sw = seen.map((s) => s.switchedAt ?? NaN);
  return {
    switchToGone: seen.filter((s) => s.hadOld && s.switchedAt !== undefined && s.goneAt !== undefined).map((s) => (s.goneAt! - s.switchedAt!) / 1000),
    phases: { firstSwitch: minOf(sw) / 1000, lastSwitch: maxOf(sw) / 1000, lastGone: maxOf(seen.map((s) => s.goneAt ?? NaN)) / 1000 },
    hostsSeen: seen,
  };
}

/** Delay proxies of a case (RTT > 0): their bytes up, summed over a run. */
function wireUp(proxies: (DelayProxy | undefined)[]): () => number | undefined {
  const sum = () => proxies.reduce((a, p) => a + (p?.bytes.up ?? 0), 0);
  const before = sum();
  return () => (proxies.some((p) => p) ? (sum() - before) / proxies.length : undefined);
}

let project = '';
let tmpDir = '';

async function switchyardRun(hosts: LabHost[], site: string, proxies: (DelayProxy | undefined)[], kind: 'deploy' | 'cold-deploy', tag: string): Promise<SyRun> {
  const reportFile = path.join(tmpDir, `${tag}.report.json`);
  const w = watchHosts(hosts, site, switchyardLive);
  watching.add(w);
  const wire = wireUp(proxies);
  let x: Timed;
  try {
    x = await timed(process.execPath, [BIN, kind, '--env=bench', `--report=${reportFile}`], project, w.t0);
  } finally {
    watching.delete(w);
  }
  const seen = w.stop();
  let r: ReleaseReport | undefined;
  try {
    r = JSON.parse(fs.readFileSync(reportFile, 'utf8')) as ReleaseReport;
  } catch {
    /* said below */
  }
  const ok = x.code === 0 && r?.ok === true;
  const stats = r?.hosts.map((h) => h.stats) ?? [];
  const wireUpPerHost = wire();
  return {
    ok,
    ...(ok ? {} : { error: `switchyard ${kind} exit ${x.code ?? x.signal}${r?.error ? `: ${r.error}` : ''}\n${x.stderr.slice(-1500)}${x.stdout.slice(-1500)}` }),
    seconds: x.seconds,
    maxRssMiB: x.maxRssKiB / 1024,
    localCpu: x.cpuSeconds,
    ...seenFigures(seen),
    ...(wireUpPerHost === undefined ? {} : { wireUpPerHost }),
    connections: Math.max(0, ...stats.map((s) => s.connections)),
    executions: Math.max(0, ...stats.map((s) => s.executions)),
    bytesUploaded: Math.max(0, ...stats.map((s) => s.bytesUploaded)),
    flowSeconds: r?.seconds ?? NaN,
    ...(r ? { release: r.release } : {}),
  };
}

interface BaseHost {
  h: LabHost;
  port?: number;
}

let baseSeq = 0;
async function baselineRun(lab: Lab, hosts: BaseHost[], proxies: (DelayProxy | undefined)[], scripts: string): Promise<BaseRun> {
  const release = `${new Date().toISOString().replace(/[-:]/g, '')}-base${++baseSeq}`;
  const args = [
    path.join(REPO, 'bench', 'baseline.sh'),
    '--ssh-config', lab.sshConfigFile,
    '--site', lab.site,
    '--release', release,
    '--pause', String(BASE_PAUSE),
    '--drain', String(DRAIN),
    '--node', process.execPath,
    '--build', path.join(project, 'app'),
    '--scripts', scripts,
    ...(BASE_KEX ? ['--kex', BASE_KEX] : []),
    ...hosts.map(({ h, port }) => [h.name, port ?? '', h.deployTo, h.socketDir].join(',')),
  ];
  const w = watchHosts(
    hosts.map((b) => b.h),
    lab.site,
    baselineLive,
  );
  watching.add(w);
  const wire = wireUp(proxies);
  let x: Timed;
  try {
    x = await timed('bash', args, REPO, w.t0);
  } finally {
    watching.delete(w);
  }
  const seen = w.stop();
  const marks = new Map<string, Map<string, number>>();
  let bytes = 0;
  for (const l of x.stdout.split('\n')) {
    const m = /^mark (\S+) (\S+) (\d+)$/.exec(l);
    if (m) marks.set(m[1]!, (marks.get(m[1]!) ?? new Map<string, number>()).set(m[2]!, Number(m[3])));
    const b = /^bytes (\d+)$/.exec(l);
    if (b) bytes = Number(b[1]);
  }
  const marksSwitchToRetired = [...marks.values()]
    .filter((m) => m.has('termed') && m.has('switched') && m.has('retired'))
    .map((m) => (m.get('retired')! - m.get('switched')!) / 1000);
  const wireUpPerHost = wire();
  return {
    ok: x.code === 0,
    ...(x.code === 0 ? {} : { error: `baseline exit ${x.code ?? x.signal}: ${x.stderr.slice(-1500)}` }),
    seconds: x.seconds,
    maxRssMiB: x.maxRssKiB / 1024,
    localCpu: x.cpuSeconds,
    ...seenFigures(seen),
    ...(wireUpPerHost === undefined ? {} : { wireUpPerHost }),
    bytes,
    marksSwitchToRetired,
  };
}

/* ------------------------------------------------------------------ the project a user would have */

/** <tmp>/project: app/ (a copy of examples/hello), node_modules/gulp-switchyard (linkPackage) and env/bench.ts, written per case. */
function makeProject(dir: string): void {
  fs.mkdirSync(path.join(dir, 'env'), { recursive: true });
  fs.cpSync(path.join(REPO, 'examples', 'hello'), path.join(dir, 'app'), { recursive: true, filter: (src) => path.basename(src) !== '.switchyard' });
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'deploy-bench', private: true }, null, 2) + '\n');
  linkPackage(dir);
}

/** env/bench.ts as a user writes one (bundled by the command's loader at every run). */
function writeEnv(input: EnvironmentInput): void {
  const body = JSON.stringify({ ...input, build: { dir: 'app' } }, null, 2);
  fs.writeFileSync(
    path.join(project, 'env', 'bench.ts'),
    `// written by bench/deploy.ts: the SSH lab's hosts\nimport { defineEnvironment } from 'gulp-switchyard';\n\nexport default defineEnvironment(${body});\n`,
  );
}

/** The lab environment for these hosts (switchyard's lab), at these ssh ports. */
function envFor(lab: Lab, hosts: { h: LabHost; port?: number }[]): EnvironmentInput {
  const retire = { drainSeconds: DRAIN, ...(GRACE === undefined ? {} : { graceSeconds: GRACE }) };
  const input = labEnvInput(lab, { over: { retire } });
  const byName = new Map(input.hosts.map((h) => [h.name, h]));
  return { ...input, hosts: hosts.map(({ h, port }) => ({ ...byName.get(h.name)!, ...(port === undefined ? {} : { port }) })) };
}

/* ------------------------------------------------------------------ cases */

interface Target {
  name: string;
  value: number;
  limit: number;
  pass: boolean;
}

interface CaseResult {
  hosts: number;
  rttMs: number;
  loadavg: { before: number[]; after: number[] };
  switchyard: { medianSeconds: number; runs: SyRun[]; warmup: SyRun };
  baseline: { medianSeconds: number; runs: BaseRun[]; warmup: BaseRun };
  ratio: number;
  /** The highest host: connections and executions of the highest run, bytes the median over the runs. */
  perHost: { connections: number; executions: number; bytesUploaded: number; baselineBytes: number; firstDeployBytes: number; wireUp?: number; baselineWireUp?: number };
  /** s, over every host of every timed run. */
  switchToGone: { switchyardMedian: number; switchyardMax: number; baselineMedian: number; baselineMax: number; baselineMarksMedian: number };
  peakRssMiB: { switchyard: number; baseline: number };
  /** Medians, CPU seconds: per host on the (shared) lab CPUs, and local (the process and its children). */
  cpu: { switchyardRemotePerHost: number; baselineRemotePerHost: number; switchyardLocal: number; baselineLocal: number };
  flowSeconds: number;
  targets: Target[];
}

class Interrupted extends Error {}
let interrupted = false;

function must<T extends { ok: boolean; error?: string }>(what: string, r: T): T {
  if (interrupted) throw new Interrupted('interrupted');
  if (!r.ok) throw new Error(`${what} failed: ${r.error ?? '(no message)'}`);
  return r;
}

async function main(): Promise<void> {
  if (!fs.existsSync(BIN)) throw new Error(`${BIN} is missing: npm run build first (npm run bench does)`);
  if (!fs.existsSync(TIME)) throw new Error(`${TIME} is missing: apt-get install time`);
  const scripts = path.join(path.dirname(BIN), '..', 'remote-scripts'); // the scripts the built package ships
  if (!fs.existsSync(path.join(scripts, 'release.sh'))) throw new Error(`no remote scripts at ${scripts}`);
  tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sy-bench-'));
  project = path.join(tmpDir, 'project');
  makeProject(project);

  const started = Date.now();
  const loadavgStart = os.loadavg();
  const date = new Date().toISOString().replace(/:/g, '').replace(/\.\d+Z$/, 'Z');
  log(
    `switchyard bench: hosts ${HOST_COUNTS.join(',')}, RTT ${RTTS.join(',')} ms, ${RUNS} timed runs per case (+1 warm-up); ` +
      `${BIN} against bash + ssh (kex ${BASE_KEX || 'OpenSSH default'}) pausing ${BASE_PAUSE} s before its kill`,
  );
  const labFs = labFsLine();
  log(`machine: ${os.cpus().length} cpus, node ${process.version}, load average ${load()}; ${await reaperLine()}; ${labFs}`);

  const labs: Lab[] = [];
  let labsStarting: Promise<PromiseSettledResult<Lab>[]> | undefined;
  const proxies: DelayProxy[] = [];
  let stopping: Promise<void> | undefined;
  const shutdown = (why: string): Promise<void> => {
    stopping ??= (async () => {
      if (why !== 'done') log(`bench: ${why}: stopping every child process and the labs…`);
      for (const w of watching) w.stop();
      await stopChildren();
      await Promise.all(proxies.map((p) => p.stop()));
      // labs still starting are waited for, then stopped (startLab cleans up after itself on failure)
      const all = labs.length ? labs : ((await labsStarting?.catch(() => [])) ?? []).flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
      await Promise.all(all.map((l) => l.stop().catch((e) => log(`lab.stop: ${(e as Error).message}`))));
      fs.rmSync(tmpDir, { recursive: true, force: true });
    })();
    return stopping;
  };
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      if (interrupted) return; // already on it
      interrupted = true;
      log('');
      void shutdown(sig).finally(() => process.exit(130));
    });
  }

  try {
    const t = Date.now();
    labsStarting = Promise.allSettled([startLab({ hosts: MAX_HOSTS }), startLab({ hosts: MAX_HOSTS })]);
    const settled = await labsStarting;
    for (const r of settled) if (r.status === 'fulfilled') labs.push(r.value);
    const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    const [syLab, baseLab] = labs as [Lab, Lab];
    log(`labs: ${MAX_HOSTS} hosts for switchyard, ${MAX_HOSTS} for the baseline (sshd + nginx each) in ${((Date.now() - t) / 1000).toFixed(1)} s`);

    // setup (not timed) with the built command, as a user would
    writeEnv(envFor(syLab, syLab.hosts.map((h) => ({ h }))));
    const su = await timed(process.execPath, [BIN, 'setup', '--env=bench'], project, () => {});
    if (su.code !== 0) throw new Error(`switchyard setup failed (exit ${su.code}):\n${su.stderr.slice(-2000)}${su.stdout.slice(-2000)}`);

    /** One delay proxy per host and RTT, kept for the whole bench; known_hosts learns its port. */
    const proxyFor = new Map<string, DelayProxy>();
    const viaProxy = async (lab: Lab, h: LabHost, rtt: number): Promise<DelayProxy | undefined> => {
      if (rtt === 0) return undefined;
      const key = `${lab.dir}/${h.name}@${rtt}`;
      let p = proxyFor.get(key);
      if (!p) {
        p = await startDelayProxy({ targetPort: h.sshPort, oneWayDelayMs: rtt / 2 });
        proxies.push(p);
        proxyFor.set(key, p);
        const line = fs
          .readFileSync(lab.knownHostsFile, 'utf8')
          .split('\n')
          .find((l) => l.startsWith(`[127.0.0.1]:${h.sshPort} `));
        if (!line) throw new Error(`bench: no known_hosts line for ${h.name}`);
        fs.appendFileSync(lab.knownHostsFile, `${line.replace(`:${h.sshPort} `, `:${p.port} `)}\n`);
      }
      return p;
    };

    const deployed = new Set<string>();
    const cases: CaseResult[] = [];
    for (const rtt of RTTS) {
      for (const n of HOST_COUNTS) {
        if (interrupted) return;
        const sy = syLab.hosts.slice(0, n);
        const base = baseLab.hosts.slice(0, n);
        const syProxies = await Promise.all(sy.map((h) => viaProxy(syLab, h, rtt)));
        const baseProxies = await Promise.all(base.map((h) => viaProxy(baseLab, h, rtt)));
        writeEnv(envFor(syLab, sy.map((h, i) => ({ h, ...(syProxies[i] ? { port: syProxies[i].port } : {}) }))));
        const baseSpec: BaseHost[] = base.map((h, i) => ({ h, ...(baseProxies[i] ? { port: baseProxies[i].port } : {}) }));
        const syRun = (kind: 'deploy' | 'cold-deploy', tag: string) => withRemoteCpu(sy, () => switchyardRun(sy, syLab.site, syProxies, kind, tag));
        const baseRun = () => withRemoteCpu(base, () => baselineRun(baseLab, baseSpec, baseProxies, scripts));

        const before = os.loadavg();
        log(`\ncase: ${n} host(s), RTT ${rtt} ms (load average ${load()})`);
        const fresh = sy.every((h) => !deployed.has(h.name));
        const syWarm = must('switchyard warm-up', await syRun(fresh ? 'cold-deploy' : 'deploy', `w-${n}-${rtt}`));
        for (const h of sy) deployed.add(h.name);
        const baseWarm = must('baseline warm-up', await baseRun());
        log(`  warm-up (not timed): switchyard ${fresh ? 'cold-deploy' : 'deploy'} ${fmt(syWarm.seconds)} s, baseline ${fmt(baseWarm.seconds)} s`);
        const syRuns: SyRun[] = [];
        const baseRuns: BaseRun[] = [];
        for (let i = 0; i < RUNS; i++) {
          if (interrupted) return;
          // Alternate who goes first, so a burst of load from elsewhere hits both sides alike.
          const order = i % 2 === 0 ? (['sy', 'base'] as const) : (['base', 'sy'] as const);
          for (const who of order) {
            if (who === 'sy') syRuns.push(must(`switchyard run ${i + 1}`, await syRun('deploy', `r-${n}-${rtt}-${i}`)));
            else baseRuns.push(must(`baseline run ${i + 1}`, await baseRun()));
          }
          const s = syRuns.at(-1)!;
          const b = baseRuns.at(-1)!;
          log(
            `  run ${i + 1}/${RUNS}: switchyard ${fmt(s.seconds)} s (switch → old gone ${fmt(median(s.switchToGone))} s), ` +
              `baseline ${fmt(b.seconds)} s (${fmt(median(b.switchToGone))} s), load ${load()}`,
          );
        }
        const c = summarize(n, rtt, before, syWarm, syRuns, baseWarm, baseRuns);
        cases.push(c);
        process.stdout.write(`\n${caseTable(c)}\n`);
      }
    }

    process.stdout.write(`\n${summaryTable(cases)}\n`);
    const file = path.join(REPO, 'reports', `bench-${date}.json`);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(
      file,
      JSON.stringify(
        {
          date: new Date(started).toISOString(),
          seconds: (Date.now() - started) / 1000,
          machine: { cpus: os.cpus().length, cpu: os.cpus()[0]?.model, node: process.version, loadavgStart, loadavgEnd: os.loadavg(), labFs },
          options: { runs: RUNS, hosts: HOST_COUNTS, rttMs: RTTS, basePauseSeconds: BASE_PAUSE, baseKex: BASE_KEX || 'OpenSSH default', graceSeconds: GRACE ?? 'schema default', drainSeconds: DRAIN, bin: BIN },
          targets: { ratio: TARGET_RATIO, ratioAt64Hosts: TARGET_RATIO_64, switchToGoneSeconds: TARGET_SWITCH_TO_GONE_S },
          cases,
        },
        null,
        2,
      ) + '\n',
    );
    process.stdout.write(`\nfigures: ${path.relative(process.cwd(), file)}  (whole run ${((Date.now() - started) / 1000).toFixed(0)} s)\n`);
  } finally {
    await shutdown('done');
  }
}

function summarize(n: number, rtt: number, before: number[], syWarm: SyRun, syRuns: SyRun[], baseWarm: BaseRun, baseRuns: BaseRun[]): CaseResult {
  const syMed = median(syRuns.map((r) => r.seconds));
  const baseMed = median(baseRuns.map((r) => r.seconds));
  const ratio = syMed / baseMed;
  const syGone = syRuns.flatMap((r) => r.switchToGone);
  const baseGone = baseRuns.flatMap((r) => r.switchToGone);
  const wire = median(syRuns.map((r) => r.wireUpPerHost ?? NaN));
  const baseWire = median(baseRuns.map((r) => r.wireUpPerHost ?? NaN));
  const targets: Target[] = [
    { name: `ratio ≤ ${TARGET_RATIO}`, value: ratio, limit: TARGET_RATIO, pass: ratio <= TARGET_RATIO },
    ...(n === 64 ? [{ name: `ratio at 64 hosts ≤ ${TARGET_RATIO_64}`, value: ratio, limit: TARGET_RATIO_64, pass: ratio <= TARGET_RATIO_64 }] : []),
    { name: `switch → old gone ≤ ${TARGET_SWITCH_TO_GONE_S} s (no load: the app's drain ≈ 0)`, value: median(syGone), limit: TARGET_SWITCH_TO_GONE_S, pass: median(syGone) <= TARGET_SWITCH_TO_GONE_S },
  ];
  return {
    hosts: n,
    rttMs: rtt,
    loadavg: { before, after: os.loadavg() },
    switchyard: { medianSeconds: syMed, runs: syRuns, warmup: syWarm },
    baseline: { medianSeconds: baseMed, runs: baseRuns, warmup: baseWarm },
    ratio,
    perHost: {
      connections: maxOf(syRuns.map((r) => r.connections)),
      executions: maxOf(syRuns.map((r) => r.executions)),
      bytesUploaded: median(syRuns.map((r) => r.bytesUploaded)),
      baselineBytes: median(baseRuns.map((r) => r.bytes)),
      firstDeployBytes: syWarm.bytesUploaded,
      ...(Number.isFinite(wire) ? { wireUp: wire } : {}),
      ...(Number.isFinite(baseWire) ? { baselineWireUp: baseWire } : {}),
    },
    switchToGone: {
      switchyardMedian: median(syGone),
      switchyardMax: maxOf(syGone),
      baselineMedian: median(baseGone),
      baselineMax: maxOf(baseGone),
      baselineMarksMedian: median(baseRuns.flatMap((r) => r.marksSwitchToRetired)),
    },
    peakRssMiB: { switchyard: maxOf(syRuns.map((r) => r.maxRssMiB)), baseline: maxOf(baseRuns.map((r) => r.maxRssMiB)) },
    cpu: {
      switchyardRemotePerHost: median(syRuns.map((r) => r.remoteCpuPerHost ?? NaN)),
      baselineRemotePerHost: median(baseRuns.map((r) => r.remoteCpuPerHost ?? NaN)),
      switchyardLocal: median(syRuns.map((r) => r.localCpu)),
      baselineLocal: median(baseRuns.map((r) => r.localCpu)),
    },
    flowSeconds: median(syRuns.map((r) => r.flowSeconds)),
    targets,
  };
}

/* ------------------------------------------------------------------ output */

const mark = (pass: boolean) => (pass ? 'PASS' : 'MISS');

const HEADER = ['hosts', 'RTT ms', 'switchyard s', 'baseline s', 'ratio', 'conn/host', 'exec/host', 'bytes/host sy', 'bytes/host base', 'switch→gone s sy/base', 'peak RSS MiB', 'remote CPU s/host sy/base'];

function figureCells(c: CaseResult): string[] {
  return [
    String(c.hosts),
    String(c.rttMs),
    fmt(c.switchyard.medianSeconds),
    fmt(c.baseline.medianSeconds),
    fmt(c.ratio),
    fmt(c.perHost.connections, 0),
    fmt(c.perHost.executions, 0),
    fmt(c.perHost.bytesUploaded, 0),
    fmt(c.perHost.baselineBytes, 0),
    `${fmt(c.switchToGone.switchyardMedian)}/${fmt(c.switchToGone.baselineMedian)}`,
    fmt(c.peakRssMiB.switchyard, 1),
    `${fmt(c.cpu.switchyardRemotePerHost)}/${fmt(c.cpu.baselineRemotePerHost)}`,
  ];
}

function caseTable(c: CaseResult): string {
  const sy = c.switchyard.runs;
  const base = c.baseline.runs;
  const ph = (runs: Run[], k: keyof Run['phases']) => fmt(median(runs.map((r) => r.phases[k])));
  const wire = c.perHost.wireUp === undefined ? '' : `; on the wire (SSH, through the delay proxy) up per host: switchyard ${fmt(c.perHost.wireUp, 0)}, baseline ${fmt(c.perHost.baselineWireUp ?? NaN, 0)} bytes`;
  const lines = [
    `== ${c.hosts} host(s), RTT ${c.rttMs} ms: ${sy.length} timed runs each, medians; whole process, spawn → exit; load average ${c.loadavg.before.map((x) => x.toFixed(2)).join(' ')} → ${c.loadavg.after.map((x) => x.toFixed(2)).join(' ')}`,
    table([HEADER, figureCells(c)]),
    `  runs, s: switchyard ${sy.map((r) => fmt(r.seconds)).join(' ')} | baseline ${base.map((r) => fmt(r.seconds)).join(' ')}`,
    `  s after spawn (medians): switchyard first switch ${ph(sy, 'firstSwitch')}, last switch ${ph(sy, 'lastSwitch')}, last old gone ${ph(sy, 'lastGone')}, exit ${fmt(c.switchyard.medianSeconds)} ` +
      `(release flow, report.seconds: ${fmt(c.flowSeconds)}) | baseline first switch ${ph(base, 'firstSwitch')}, last switch ${ph(base, 'lastSwitch')}, last old gone ${ph(base, 'lastGone')}, exit ${fmt(c.baseline.medianSeconds)}`,
    `  switch → old process gone, s, per host (median / max over hosts and runs): switchyard ${fmt(c.switchToGone.switchyardMedian)} / ${fmt(c.switchToGone.switchyardMax)}, ` +
      `baseline ${fmt(c.switchToGone.baselineMedian)} / ${fmt(c.switchToGone.baselineMax)} (its own marks, switched → retired: ${fmt(c.switchToGone.baselineMarksMedian)})`,
    `  bytes sent per host: switchyard ${fmt(c.perHost.bytesUploaded, 0)} (first deploy to a host: ${fmt(c.perHost.firstDeployBytes, 0)}), baseline ${fmt(c.perHost.baselineBytes, 0)}${wire}`,
    `  CPU s (medians): remote per host switchyard ${fmt(c.cpu.switchyardRemotePerHost)} / baseline ${fmt(c.cpu.baselineRemotePerHost)} (×${c.hosts} hosts on ${os.cpus().length} shared cores); ` +
      `local switchyard ${fmt(c.cpu.switchyardLocal)} / baseline ${fmt(c.cpu.baselineLocal)}; peak RSS switchyard ${fmt(c.peakRssMiB.switchyard, 1)} MiB, baseline ${fmt(c.peakRssMiB.baseline, 1)} MiB (largest process)`,
    ...c.targets.map((t) => `  target ${t.name}: ${fmt(t.value)}  ${mark(t.pass)}`),
  ];
  return lines.join('\n');
}

function summaryTable(cases: CaseResult[]): string {
  const rows = [[...HEADER, 'targets']];
  for (const c of cases) {
    rows.push([...figureCells(c), c.targets.map((t) => `${t.name.startsWith('ratio at 64') ? 'ratio64' : t.name.split(' ')[0]} ${mark(t.pass)}`).join(', ')]);
  }
  const grace = GRACE === undefined ? 'retire.graceSeconds default (an upper bound)' : `retire.graceSeconds ${GRACE}`;
  return `== summary (medians; whole process spawn → exit; switchyard ${grace}; baseline pauses ${BASE_PAUSE} s before its kill, kex ${BASE_KEX || 'OpenSSH default'})\n${table(rows)}`;
}

if (underReaper()) {
  main().catch((e) => {
    if (e instanceof Interrupted || interrupted) return; // the signal handler exits
    log(`bench: ${(e as Error).stack ?? String(e)}`);
    process.exitCode = 1;
  });
}
