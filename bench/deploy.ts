// npm run bench [-- --quick] [-- --runs=N --hosts=1,4,16 --rtt=0,50 --grace=2 --drain=5]
//
// Deploys examples/hello through the SSH test lab (real sshd + nginx per host on loopback) with
// switchyard and with a plain bash + system ssh baseline (bench/baseline.sh) doing the same work by
// hand, directly and through a delay proxy (RTT 50 ms: 25 ms each way), and prints per case the
// medians, the switchyard/baseline ratio, the per-host SSH economy and the deploy's peak memory.
// Figures go to reports/bench-<date>.json. See docs/BENCHMARK.md for what is measured and how.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { EnvironmentInput } from '../lib/environment';
import { BaseReporter, type Level } from '../lib/output/reporter';
import { setup } from '../lib/servers/setup';
import { startLab, type Lab, type LabHost } from '../test/support/lab';
import { labEnv, labEnvInput, REPO } from '../test/support/lab-env';
import type { OneDeployResult } from './one-deploy';

/* ------------------------------------------------------------------ options */

const { values: flags } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    runs: { type: 'string' },
    hosts: { type: 'string', default: '1,4,16' },
    rtt: { type: 'string', default: '0,50' },
    grace: { type: 'string', default: '2' },
    drain: { type: 'string', default: '5' },
    help: { type: 'boolean', default: false },
  },
  strict: true,
});
if (flags.help) {
  process.stdout.write(
    'npm run bench -- [--quick] [--runs=N] [--hosts=1,4,16] [--rtt=0,50] [--grace=2] [--drain=5]\n' +
      '  --quick   2 timed runs per case instead of 4\n  --rtt     round trips in ms (0: direct; >0: through a delay proxy, half each way)\n' +
      '  --grace   retire.graceSeconds, the same on both sides\n',
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
const GRACE = numbers(flags.grace!, 'grace')[0]!;
const DRAIN = numbers(flags.drain!, 'drain')[0]!;
const MAX_HOSTS = Math.max(...HOST_COUNTS);
if (MAX_HOSTS * 2 > 64) throw new Error('--hosts: at most 32 (the lab holds 64 hosts: half for switchyard, half for the baseline)');

/* ------------------------------------------------------------------ small helpers */

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]): number => {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const fmt = (x: number, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : '-');
const load = () => os.loadavg().map((x) => x.toFixed(2)).join(' ');
const log = (msg: string) => process.stderr.write(`${msg}\n`);

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(rows[0]!), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)].join('\n');
}

/**
 * CPU seconds spent by everything a lab host's sshd ran for its SSH sessions (sshd's session
 * processes, bash, the scripts' tools), from the listener's cutime + cstime: each level waits for
 * its children, so their time adds up there once they are reaped. Apps started with nohup setsid
 * leave the tree and are not counted (the same app on both sides).
 */
function sshdCpuSeconds(h: LabHost): number {
  const pid = Number(fs.readFileSync(path.join(h.root, 'sshd.pid'), 'utf8').trim());
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // f[0] = field 3
  return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / CLK_TCK; // utime stime cutime cstime
}
const CLK_TCK = 100; // sysconf(_SC_CLK_TCK) on Linux x86-64

/** Runs fn and returns its result with the remote CPU per host it cost (waits for sshd to reap). */
async function withRemoteCpu<T extends object>(hosts: LabHost[], fn: () => Promise<T>): Promise<T & { remoteCpuPerHost: number }> {
  const before = hosts.reduce((a, h) => a + sshdCpuSeconds(h), 0);
  const r = await fn();
  await sleep(SETTLE_MS);
  const after = hosts.reduce((a, h) => a + sshdCpuSeconds(h), 0);
  return { ...r, remoteCpuPerHost: (after - before) / hosts.length };
}
/** Pause after every run: sessions end and are reaped, and both sides get the same quiet gap. */
const SETTLE_MS = 500;

class SilentReporter extends BaseReporter {
  protected write(_level: Level, _line: string): void {}
}

/* ------------------------------------------------------------------ child processes */

// Everything the bench spawns, by pid (each in its own process group), so Ctrl-C stops it all.
const running = new Set<ChildProcess>();

interface Exited {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Parent-side wall time from spawn to exit, ms. */
  wallMs: number;
}

function run(command: string, args: string[]): Promise<Exited> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(command, args, { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    running.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    child.once('error', (e) => {
      running.delete(child);
      reject(e);
    });
    child.once('close', (code, signal) => {
      running.delete(child);
      resolve({ code, signal, stdout, stderr, wallMs: performance.now() - started });
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

/* ------------------------------------------------------------------ one switchyard run, one baseline run */

interface SyRun {
  ok: boolean;
  error?: string;
  /** deploy() call, in the child: what `gulp deploy` spends after loading. */
  seconds: number;
  /** spawn → exit in the parent: node + esbuild-register start, the deploy, exit. */
  processSeconds: number;
  maxRssMiB: number;
  /** CPU of the deploy process during the call, s. */
  localCpu: number;
  /** Remote CPU per host (sshd sessions and everything under them), s. */
  remoteCpuPerHost?: number;
  connections: number;
  executions: number;
  bytesUploaded: number;
  /** Seconds from the deploy() call: package built, all connected (first prepare), all prepared, switched, retired, returned. */
  phases: Record<string, number>;
  /** Per-host step durations, s: prepare/switch/retire → [min, median, max]. */
  steps: Record<string, [number, number, number]>;
  release?: string;
}

interface BaseRun {
  ok: boolean;
  error?: string;
  seconds: number;
  bytes: number;
  /** bash, tar, gzip and the ssh clients, s. */
  localCpu: number;
  remoteCpuPerHost?: number;
  /** Seconds from the script's start: packaged, and max over hosts of unpacked, healthy, switched, retired, ssh-end. */
  phases: Record<string, number>;
}

const tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sy-bench-'));

async function switchyardRun(envInput: EnvironmentInput, kind: 'deploy' | 'cold-deploy', tag: string): Promise<SyRun> {
  const job = path.join(tmpDir, `${tag}.json`);
  fs.writeFileSync(job, JSON.stringify({ env: envInput, kind, root: REPO }));
  const x = await run(process.execPath, ['-r', 'esbuild-register', path.join(REPO, 'bench', 'one-deploy.ts'), job]);
  const line = x.stdout.trim().split('\n').pop() ?? '';
  let r: OneDeployResult;
  try {
    r = JSON.parse(line) as OneDeployResult;
  } catch {
    throw new Error(`one-deploy (${tag}) printed no result (exit ${x.code ?? x.signal}):\n${x.stderr.slice(-2000)}`);
  }
  const hosts = r.report?.hosts ?? [];
  const rel = (t: number | undefined) => (t === undefined ? NaN : (t - r.marks.called) / 1000);
  const ev = (step: string, at: 'start' | 'end') => r.events.filter((e) => e.step === step && e.at === at).map((e) => e.time);
  const max = (xs: number[]) => (xs.length ? Math.max(...xs) : undefined);
  const min = (xs: number[]) => (xs.length ? Math.min(...xs) : undefined);
  const steps: SyRun['steps'] = {};
  for (const step of ['prepare', 'switch', 'retire']) {
    const d = r.events
      .filter((e) => e.step === step && e.at === 'end')
      .map((e) => {
        const s = r.events.find((b) => b.step === step && b.at === 'start' && b.host === e.host);
        return s ? (e.time - s.time) / 1000 : NaN;
      });
    if (d.length) steps[step] = [Math.min(...d), median(d), Math.max(...d)];
  }
  return {
    ok: r.ok,
    ...(r.error ? { error: [r.error, ...r.lines.slice(-5)].join('\n') } : {}),
    seconds: (r.marks.returned - r.marks.called) / 1000,
    processSeconds: x.wallMs / 1000,
    maxRssMiB: r.maxRssKiB / 1024,
    localCpu: r.cpuSeconds,
    connections: Math.max(0, ...hosts.map((h) => h.stats.connections)),
    executions: Math.max(0, ...hosts.map((h) => h.stats.executions)),
    bytesUploaded: Math.max(0, ...hosts.map((h) => h.stats.bytesUploaded)),
    phases: {
      start: (r.marks.called - r.processStartMs) / 1000, // node start, before the call (negative offset, shown apart)
      packaged: rel(r.marks.packaged),
      connected: rel(min(ev('prepare', 'start'))),
      prepared: rel(max(ev('prepare', 'end'))),
      switched: rel(max(ev('switch', 'end'))),
      retired: rel(max(ev('retire', 'end'))),
      returned: rel(r.marks.returned),
    },
    steps,
    ...(r.report ? { release: r.report.release } : {}),
  };
}

interface BaseHost {
  alias: string;
  port?: number;
  deployTo: string;
  socketDir: string;
}

let baseSeq = 0;
async function baselineRun(lab: Lab, hosts: BaseHost[]): Promise<BaseRun> {
  const release = `${new Date().toISOString().replace(/[-:]/g, '')}-base${++baseSeq}`;
  const args = [
    path.join(REPO, 'bench', 'baseline.sh'),
    '--ssh-config', lab.sshConfigFile,
    '--site', lab.site,
    '--release', release,
    '--grace', String(GRACE),
    '--drain', String(DRAIN),
    '--node', process.execPath,
    '--build', path.join(REPO, 'examples', 'hello'),
    '--scripts', path.join(REPO, 'remote-scripts'),
    ...hosts.map((h) => [h.alias, h.port ?? '', h.deployTo, h.socketDir].join(',')),
  ];
  const x = await run('bash', args);
  const marks = new Map<string, number[]>();
  let bytes = 0;
  let localCpu = 0;
  for (const l of x.stdout.split('\n')) {
    const c = /^(\d+)m([\d.]+)s (\d+)m([\d.]+)s$/.exec(l); // `times`: self, then children
    if (c) localCpu += Number(c[1]) * 60 + Number(c[2]) + Number(c[3]) * 60 + Number(c[4]);
    const m = /^mark (\S+) (\S+) (\d+)$/.exec(l);
    if (m) marks.set(m[2]!, [...(marks.get(m[2]!) ?? []), Number(m[3])]);
    const b = /^bytes (\d+)$/.exec(l);
    if (b) bytes = Number(b[1]);
  }
  const t0 = marks.get('start')?.[0] ?? NaN;
  const at = (name: string) => {
    const xs = marks.get(name) ?? [];
    return xs.length ? (Math.max(...xs) - t0) / 1000 : NaN;
  };
  return {
    ok: x.code === 0,
    ...(x.code === 0 ? {} : { error: `baseline exit ${x.code ?? x.signal}: ${x.stderr.slice(-1500)}` }),
    seconds: x.wallMs / 1000,
    bytes,
    localCpu,
    phases: { packaged: at('packaged'), unpacked: at('unpacked'), healthy: at('healthy'), switched: at('switched'), retired: at('retired'), 'ssh-end': at('ssh-end') },
  };
}

/* ------------------------------------------------------------------ cases */

interface CaseResult {
  hosts: number;
  rttMs: number;
  loadavg: { before: number[]; after: number[] };
  switchyard: { medianSeconds: number; medianProcessSeconds: number; runs: SyRun[]; warmup: SyRun };
  baseline: { medianSeconds: number; runs: BaseRun[]; warmup: BaseRun };
  ratio: number;
  ratioProcess: number;
  perHost: { connections: number; executions: number; bytesUploaded: number; baselineBytes: number };
  peakRssMiB: number;
  /** Medians, CPU seconds: per host on the (shared) lab CPUs, and in the local process(es). */
  cpu: { switchyardRemotePerHost: number; baselineRemotePerHost: number; switchyardLocal: number; baselineLocal: number };
  targets: { name: string; value: number; limit: number; pass: boolean }[];
}

class Interrupted extends Error {}
let interrupted = false;

function must<T extends { ok: boolean; error?: string }>(what: string, r: T): T {
  if (interrupted) throw new Interrupted('interrupted');
  if (!r.ok) throw new Error(`${what} failed: ${r.error ?? '(no message)'}`);
  return r;
}

async function main(): Promise<void> {
  const started = Date.now();
  const loadavgStart = os.loadavg();
  const date = new Date().toISOString().replace(/:/g, '').replace(/\.\d+Z$/, 'Z');
  log(`switchyard bench: hosts ${HOST_COUNTS.join(',')}, RTT ${RTTS.join(',')} ms, ${RUNS} timed runs per case (+1 warm-up), grace ${GRACE} s on both sides`);
  log(`machine: ${os.cpus().length} cpus, node ${process.version}, load average ${load()}`);

  let lab: Lab | undefined;
  let labStarting: Promise<Lab> | undefined;
  let stopping: Promise<void> | undefined;
  const shutdown = (why: string): Promise<void> => {
    stopping ??= (async () => {
      log(`bench: ${why}: stopping every child process and the lab…`);
      await stopChildren();
      // A lab still starting is waited for, then stopped (startLab cleans up after itself on failure).
      const l = lab ?? (await labStarting?.catch(() => undefined));
      await l?.stop().catch((e) => log(`lab.stop: ${(e as Error).message}`));
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
    labStarting = startLab({ hosts: MAX_HOSTS * 2 });
    lab = await labStarting;
    const syHosts = lab.hosts.slice(0, MAX_HOSTS);
    const baseHosts = lab.hosts.slice(MAX_HOSTS);
    log(`lab: ${lab.hosts.length} hosts (sshd + nginx each; ${syHosts[0]!.name}…${syHosts.at(-1)!.name} switchyard, ${baseHosts[0]!.name}…${baseHosts.at(-1)!.name} baseline) in ${((Date.now() - t) / 1000).toFixed(1)} s`);
    const allSy = labEnv(lab, { over: { hosts: labEnvInput(lab).hosts.slice(0, MAX_HOSTS) } });
    await setup({ environment: allSy, reporter: new SilentReporter() });

    const proxies = new Map<string, number>();
    const portFor = async (h: LabHost, rtt: number): Promise<number | undefined> => {
      if (rtt === 0) return undefined;
      const key = `${h.name}@${rtt}`;
      let p = proxies.get(key);
      if (p === undefined) {
        p = await lab!.addDelayProxy(h, rtt / 2);
        proxies.set(key, p);
      }
      return p;
    };
    const deployed = new Set<string>();
    const cases: CaseResult[] = [];

    for (const rtt of RTTS) {
      for (const n of HOST_COUNTS) {
        if (interrupted) return;
        const sy = syHosts.slice(0, n);
        const base = baseHosts.slice(0, n);
        const input = labEnvInput(lab, { over: { retire: { graceSeconds: GRACE, drainSeconds: DRAIN } } });
        const hostsIn = [];
        for (const [i, h] of input.hosts.slice(0, n).entries()) {
          const port = await portFor(sy[i]!, rtt);
          hostsIn.push(port === undefined ? h : { ...h, port });
        }
        const envInput: EnvironmentInput = { ...input, hosts: hostsIn };
        const baseSpec: BaseHost[] = [];
        for (const h of base) {
          const port = await portFor(h, rtt);
          baseSpec.push({ alias: h.name, ...(port === undefined ? {} : { port }), deployTo: h.deployTo, socketDir: h.socketDir });
        }
        const before = os.loadavg();
        log(`\ncase: ${n} host(s), RTT ${rtt} ms (load average ${load()})`);
        const fresh = sy.every((h) => !deployed.has(h.name));
        const syWarm = must('switchyard warm-up', await withRemoteCpu(sy, () => switchyardRun(envInput, fresh ? 'cold-deploy' : 'deploy', `w-${n}-${rtt}`)));
        for (const h of sy) deployed.add(h.name);
        const baseWarm = must('baseline warm-up', await withRemoteCpu(base, () => baselineRun(lab!, baseSpec)));
        log(`  warm-up (not timed): switchyard ${fresh ? 'cold-deploy' : 'deploy'} ${fmt(syWarm.seconds)} s, baseline ${fmt(baseWarm.seconds)} s`);
        const syRuns: SyRun[] = [];
        const baseRuns: BaseRun[] = [];
        for (let i = 0; i < RUNS; i++) {
          if (interrupted) return;
          // Alternate who goes first, so a burst of load from elsewhere hits both sides alike.
          const order = i % 2 === 0 ? (['sy', 'base'] as const) : (['base', 'sy'] as const);
          for (const who of order) {
            if (who === 'sy') syRuns.push(must(`switchyard run ${i + 1}`, await withRemoteCpu(sy, () => switchyardRun(envInput, 'deploy', `r-${n}-${rtt}-${i}`))));
            else baseRuns.push(must(`baseline run ${i + 1}`, await withRemoteCpu(base, () => baselineRun(lab!, baseSpec))));
          }
          log(`  run ${i + 1}/${RUNS}: switchyard ${fmt(syRuns.at(-1)!.seconds)} s (process ${fmt(syRuns.at(-1)!.processSeconds)} s), baseline ${fmt(baseRuns.at(-1)!.seconds)} s, load ${load()}`);
        }
        const syMed = median(syRuns.map((r) => r.seconds));
        const syProcMed = median(syRuns.map((r) => r.processSeconds));
        const baseMed = median(baseRuns.map((r) => r.seconds));
        const perHost = {
          connections: Math.max(...syRuns.map((r) => r.connections)),
          executions: Math.max(...syRuns.map((r) => r.executions)),
          bytesUploaded: Math.max(...syRuns.map((r) => r.bytesUploaded)),
          baselineBytes: Math.max(...baseRuns.map((r) => r.bytes)),
        };
        const targets: CaseResult['targets'] = [
          { name: 'connections per host', value: perHost.connections, limit: 1, pass: perHost.connections <= 1 },
          { name: 'executions per host', value: perHost.executions, limit: 3, pass: perHost.executions <= 3 },
        ];
        if (n === 16 && rtt === 50) targets.unshift({ name: 'ratio at 16 hosts, 50 ms', value: syMed / baseMed, limit: 1.2, pass: syMed / baseMed <= 1.2 });
        const c: CaseResult = {
          hosts: n,
          rttMs: rtt,
          loadavg: { before, after: os.loadavg() },
          switchyard: { medianSeconds: syMed, medianProcessSeconds: syProcMed, runs: syRuns, warmup: syWarm },
          baseline: { medianSeconds: baseMed, runs: baseRuns, warmup: baseWarm },
          ratio: syMed / baseMed,
          ratioProcess: syProcMed / baseMed,
          perHost,
          peakRssMiB: Math.max(...syRuns.map((r) => r.maxRssMiB)),
          cpu: {
            switchyardRemotePerHost: median(syRuns.map((r) => r.remoteCpuPerHost ?? NaN)),
            baselineRemotePerHost: median(baseRuns.map((r) => r.remoteCpuPerHost ?? NaN)),
            switchyardLocal: median(syRuns.map((r) => r.localCpu)),
            baselineLocal: median(baseRuns.map((r) => r.localCpu)),
          },
          targets,
        };
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
          machine: { cpus: os.cpus().length, cpu: os.cpus()[0]?.model, node: process.version, loadavgStart, loadavgEnd: os.loadavg() },
          options: { runs: RUNS, hosts: HOST_COUNTS, rttMs: RTTS, graceSeconds: GRACE, drainSeconds: DRAIN },
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

/* ------------------------------------------------------------------ output */

const mark = (pass: boolean) => (pass ? 'PASS' : 'MISS');

function caseTable(c: CaseResult): string {
  const sy = c.switchyard.runs;
  const base = c.baseline.runs;
  const mp = (k: string) => fmt(median(sy.map((r) => r.phases[k] ?? NaN)));
  const bp = (k: string) => fmt(median(base.map((r) => r.phases[k] ?? NaN)));
  const step = (k: string) => {
    const xs = sy.map((r) => r.steps[k]).filter((x): x is [number, number, number] => !!x);
    return xs.length ? `${fmt(median(xs.map((x) => x[0])))}/${fmt(median(xs.map((x) => x[1])))}/${fmt(median(xs.map((x) => x[2])))}` : '-';
  };
  const lines = [
    `== ${c.hosts} host(s), RTT ${c.rttMs} ms: ${sy.length} timed runs each, medians; load average ${c.loadavg.before.map((x) => x.toFixed(2)).join(' ')} → ${c.loadavg.after.map((x) => x.toFixed(2)).join(' ')}`,
    table([
      ['hosts', 'RTT ms', 'switchyard s', 'baseline s', 'ratio', 'conn/host', 'exec/host', 'bytes/host', 'peak RSS MiB', '(sy process s)', '(ratio process)'],
      [...figureCells(c), fmt(c.switchyard.medianProcessSeconds), fmt(c.ratioProcess)],
    ]),
    `  runs, s: switchyard ${sy.map((r) => fmt(r.seconds)).join(' ')} | baseline ${base.map((r) => fmt(r.seconds)).join(' ')}`,
    `  switchyard, s after deploy() call (medians): packaged ${mp('packaged')}, connected ${mp('connected')}, all prepared ${mp('prepared')}, all switched ${mp('switched')}, all retired ${mp('retired')}, returned ${mp('returned')}  (node start before the call ${mp('start')})`,
    `  switchyard per-host step s (min/median/max): prepare ${step('prepare')}, switch ${step('switch')}, retire ${step('retire')}`,
    `  CPU s (medians): remote per host switchyard ${fmt(c.cpu.switchyardRemotePerHost)} / baseline ${fmt(c.cpu.baselineRemotePerHost)} (×${c.hosts} hosts on ${os.cpus().length} shared cores); local switchyard ${fmt(c.cpu.switchyardLocal)} / baseline ${fmt(c.cpu.baselineLocal)}`,
    `  baseline, s after start (medians, slowest host): packaged ${bp('packaged')}, unpacked ${bp('unpacked')}, healthy ${bp('healthy')}, switched ${bp('switched')}, retired ${bp('retired')}, ssh ended ${bp('ssh-end')}; 1 conn, 1 exec, ${c.perHost.baselineBytes} bytes per host`,
    ...c.targets.map((t) => `  target ${t.name}: ${fmt(t.value, t.name.startsWith('ratio') ? 2 : 0)} ≤ ${t.limit}  ${mark(t.pass)}`),
  ];
  return lines.join('\n');
}

/** The columns every table of a case starts with: hosts … peak RSS. */
function figureCells(c: CaseResult): string[] {
  return [
    String(c.hosts),
    String(c.rttMs),
    fmt(c.switchyard.medianSeconds),
    fmt(c.baseline.medianSeconds),
    fmt(c.ratio),
    String(c.perHost.connections),
    String(c.perHost.executions),
    String(c.perHost.bytesUploaded),
    fmt(c.peakRssMiB, 1),
  ];
}

function summaryTable(cases: CaseResult[]): string {
  const rows = [['hosts', 'RTT ms', 'switchyard s', 'baseline s', 'ratio', 'conn/host', 'exec/host', 'bytes/host', 'peak RSS MiB', 'remote CPU s/host sy/base', 'targets']];
  for (const c of cases) {
    rows.push([
      ...figureCells(c),
      `${fmt(c.cpu.switchyardRemotePerHost)}/${fmt(c.cpu.baselineRemotePerHost)}`,
      c.targets.map((t) => `${t.name.startsWith('ratio') ? 'ratio' : t.name.split(' ')[0]} ${mark(t.pass)}`).join(', '),
    ]);
  }
  return `== summary (medians; switchyard s = the deploy() call; grace ${GRACE} s both sides)\n${table(rows)}`;
}

main().catch((e) => {
  if (e instanceof Interrupted || interrupted) return; // the signal handler exits
  log(`bench: ${(e as Error).stack ?? String(e)}`);
  process.exitCode = 1;
});
