// The soak run's core (issue 12), shared by `npm run soak` (bench/soak.ts) and its CI version
// (test/soak/soak.test.ts): many deploys, rollbacks and restarts in a row through the SSH lab under
// continuous load, and after EVERY step a check on every app host that nothing accumulates:
//
// - processes: exactly one process of the site (cwd under the host's deployTo, or
//   SWITCHYARD_SOCKET under its socketDir), the one .switchyard/live names, serving the release
//   the step reported; no sshd session process left (descendants of the host's sshd listener);
// - sockets in socketDir: the live SOCK-<site>, at most SOCK-<site>.prev, nothing else (no staged
//   SOCK-<site>-<R>);
// - file descriptors of the live app (/proc/PID/fd): the non-socket ones at most the first step's
//   + FD_MARGIN; the sockets (the listener + nginx's connections in flight, one per request: no
//   upstream keep-alive) at most 1 + the host's share of the concurrency + SOCKET_MARGIN;
// - release directories ≤ keepReleases;
// - this process: no SSH connection left open (ESTABLISHED TCP to an sshd port), non-socket fds at
//   most the first step's + FD_MARGIN.
//
// A step's transient leftovers (an sshd session still exiting) get SETTLE_MS (10 s) to go; what is
// still there after that fails the soak with a SoakFailedError naming the step, the host and what grew.
// Load: one startLoad per half (keep-alive on, then off); the second starts before the first stops
// (between two steps), so there is no moment without load.
import fs from 'node:fs';
import path from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import { performance } from 'node:perf_hooks';
import type { Environment } from '../lib/environment';
import { startLoad, type LoadFailure, type LoadResult, type LoadRun } from '../lib/load/engine';
import { loadTargets } from '../lib/load/targets';
import { markerFor } from '../lib/load/under-load';
import { MemoryReporter } from '../lib/output/reporter';
import { deploy } from '../lib/release/deploy';
import type { ReleaseReport } from '../lib/release/flow';
import { restart, rollback } from '../lib/release/reuse';
import { setup } from '../lib/servers/setup';
import { startLab, type Lab, type LabHost } from '../test/support/lab';
import { labEnv } from '../test/support/lab-env';

export type StepKind = 'deploy' | 'rollback' | 'restart';

export interface Step {
  kind: StepKind;
  /** The deploy this step belongs to (1-based): a rollback or restart follows its cycle's deploy. */
  cycle: number;
  /** This step's number of its kind (deploy 7, rollback 2, …). */
  nth: number;
}

export interface SoakOptions {
  /** Deploys; rollbacks = max(1, ⌊cycles/5⌋), restarts = max(1, ⌊cycles/10⌋). */
  cycles: number;
  hosts?: number;
  concurrency?: number;
  /** A fresh lab to use (left running); default: one of its own, stopped at the end. */
  lab?: Lab;
  /** Progress lines (default: none). */
  log?: (line: string) => void;
  /** Aborted: stop after the current step (the result so far is in the SoakFailedError). */
  signal?: AbortSignal;
  /** How long leftovers may take to go before a check fails (default SETTLE_MS). */
  settleMs?: number;
  /** Called after each step, before its checks (tests: plant what a check must catch). */
  beforeCheck?: (step: Step, index: number, lab: Lab) => void | Promise<void>;
}

export interface FdCounts {
  total: number;
  sockets: number;
  other: number;
}

/** What one host looks like after a step. */
export interface HostSnapshot {
  host: string;
  /** Processes of the site (not zombies): pid and command line. */
  processes: { pid: number; cmd: string }[];
  /** .switchyard/live: release and pid (null when missing). */
  live: { release: string; pid: number } | null;
  /** `current` → releases/<this> */
  current: string | null;
  /** Entries of socketDir. */
  sockets: string[];
  /** The live app's open descriptors (null: no live process to count). */
  fds: FdCounts | null;
  releaseDirs: string[];
  /** Processes under the host's sshd listener: sessions still open. */
  sshSessions: number;
  /** Their command lines (when there are any). */
  sshSessionCmds?: string[];
}

export interface ToolSnapshot {
  fds: FdCounts;
  /** ESTABLISHED TCP connections from here to a lab sshd. */
  sshConnections: number;
  rssMB: number;
  /** V8 heap in use right after a full GC (a leak shows as a rising line). */
  heapMB: number;
}

export interface StepRecord extends Step {
  index: number;
  keepalive: boolean;
  release: string;
  seconds: number;
  /** Requests that failed during this step (load's failed counter before → after). */
  failed: number;
  /** ms from the first look to a clean one (0: clean at the first look). */
  settleMs: number;
  /** What the first look saw that was gone by the last (transient: e.g. an sshd session exiting). */
  transient?: string[];
  hosts: HostSnapshot[];
  tool: ToolSnapshot;
}

export interface SoakFailureRecord extends LoadFailure {
  keepalive: boolean;
  /** The step running when the request was sent (or 'between steps'). */
  during: string;
}

export interface HostMax {
  processes: number;
  sockets: number;
  fds: number;
  fdsOther: number;
  fdsSockets: number;
  releaseDirs: number;
  sshSessions: number;
}

export interface SoakResult {
  /** Every step ran and every check passed. */
  ok: boolean;
  /** Why not (the SoakFailedError's message). */
  error?: string;
  startedAt: string;
  elapsedSeconds: number;
  hosts: number;
  concurrency: number;
  keepReleases: number;
  planned: { deploys: number; rollbacks: number; restarts: number };
  done: { deploys: number; rollbacks: number; restarts: number };
  requests: number;
  failed: number;
  failuresByCode: Record<string, number>;
  failures: SoakFailureRecord[];
  loads: Omit<LoadResult, 'timeline' | 'failures' | 'markers'>[];
  /** process.resourceUsage().maxRSS of this process (deploys + load generator), MB. */
  peakRssMB: number;
  /** Host checks run (steps × hosts) and tool checks run (steps). */
  checks: { host: number; tool: number; maxSettleMs: number };
  /** The first step's figures every later one is held against. */
  baseline: { appFdsOther: Record<string, number>; toolFdsOther: number } | null;
  max: Record<string, HostMax>;
  toolMax: { fds: number; fdsOther: number; sshConnections: number; rssMB: number; heapMB: number };
  steps: StepRecord[];
}

export class SoakFailedError extends Error {
  constructor(
    message: string,
    readonly result: SoakResult,
  ) {
    super(message);
    this.name = 'SoakFailedError';
  }
}

/** Margin over the first step for descriptor counts. */
export const FD_MARGIN = 4;
/** Margin over listener + concurrency share for the live app's sockets (connections still closing). */
export const SOCKET_MARGIN = 10;
/**
 * How long a step's transient leftovers may take to go (default): an sshd session process still
 * exiting after the client closed its connection took up to 2.6 s under load here. A leak stays.
 */
export const SETTLE_MS = 10_000;
const RAMP_MS = 1_000;
const TAIL_MS = 1_000;
const FIRST_REQUEST_TIMEOUT_MS = 15_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/* ------------------------------------------------------------------ the plan */

/** `n` steps of a kind spread evenly over the cycles, the last one after the last deploy. */
function spread(cycles: number, n: number, cycle: number): boolean {
  return Math.floor((cycle * n) / cycles) > Math.floor(((cycle - 1) * n) / cycles);
}

/** Deploys, each followed by a rollback every 5th and a restart every 10th (at least one each). */
export function soakPlan(cycles: number): Step[] {
  if (!Number.isInteger(cycles) || cycles < 1) throw new RangeError(`soak: cycles must be a positive whole number, got ${String(cycles)}`);
  const rollbacks = Math.max(1, Math.floor(cycles / 5));
  const restarts = Math.max(1, Math.floor(cycles / 10));
  const steps: Step[] = [];
  const count = { deploy: 0, rollback: 0, restart: 0 };
  const add = (kind: StepKind, cycle: number) => steps.push({ kind, cycle, nth: ++count[kind] });
  for (let c = 1; c <= cycles; c++) {
    add('deploy', c);
    if (spread(cycles, rollbacks, c)) add('rollback', c);
    if (spread(cycles, restarts, c)) add('restart', c);
  }
  return steps;
}

export const stepName = (s: Step) => `${s.kind} ${s.nth}`;

/** The step after which keep-alive goes off: the last of the middle cycle (one cycle: its first step). */
export function halfway(plan: Step[]): number {
  const cycles = plan.at(-1)?.cycle ?? 0;
  if (cycles < 2) return 0;
  const mid = Math.ceil(cycles / 2);
  return plan.findLastIndex((s) => s.cycle === mid);
}

/* ------------------------------------------------------------------ /proc */

function statFields(pid: number | string): string[] | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' '); // [0] = field 3 (state), [1] = ppid
  } catch {
    return null;
  }
}

const isLive = (f: string[] | null): f is string[] => f !== null && f[0] !== 'Z' && f[0] !== 'X';

const under = (p: string, dir: string) => p === dir || p.startsWith(dir + '/');

function cmdline(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
  } catch {
    return '?';
  }
}

/** SWITCHYARD_SOCKET from a process's environment (the app's, as prepare starts it). */
function envSocket(pid: number): string | undefined {
  try {
    const env = fs.readFileSync(`/proc/${pid}/environ`, 'utf8');
    return env
      .split('\0')
      .find((kv) => kv.startsWith('SWITCHYARD_SOCKET='))
      ?.slice('SWITCHYARD_SOCKET='.length);
  } catch {
    return undefined;
  }
}

interface Proc {
  pid: number;
  ppid: number;
  cwd: string | null;
}

function processList(): Proc[] {
  const out: Proc[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const f = statFields(entry);
    if (!isLive(f)) continue;
    let cwd: string | null = null;
    try {
      cwd = fs.readlinkSync(`/proc/${entry}/cwd`).replace(/ \(deleted\)$/, '');
    } catch {
      /* gone, or not ours */
    }
    out.push({ pid: Number(entry), ppid: Number(f[1]), cwd });
  }
  return out;
}

function descendantsOf(pid: number, procs: Proc[]): number[] {
  const out: number[] = [];
  const walk = (p: number) => {
    for (const c of procs) {
      if (c.ppid === p && !out.includes(c.pid)) {
        out.push(c.pid);
        walk(c.pid);
      }
    }
  };
  walk(pid);
  return out;
}

export function fdCounts(pid: number | 'self'): FdCounts | null {
  let entries: string[];
  try {
    entries = fs.readdirSync(`/proc/${pid}/fd`);
  } catch {
    return null;
  }
  let sockets = 0;
  let total = 0;
  for (const fd of entries) {
    let target: string;
    try {
      target = fs.readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      continue; // closed meanwhile (the readdir's own fd, a request ending)
    }
    total++;
    if (target.startsWith('socket:')) sockets++;
  }
  return { total, sockets, other: total - sockets };
}

/** ESTABLISHED TCP connections whose remote port is one of `ports` (our side of an SSH connection). */
function tcpConnectionsTo(ports: Set<number>): number {
  let n = 0;
  for (const file of ['/proc/self/net/tcp', '/proc/self/net/tcp6']) {
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 4 || f[3] !== '01') continue; // st 01 = ESTABLISHED
      const remPort = parseInt(f[2]!.split(':')[1] ?? '', 16);
      if (ports.has(remPort)) n++;
    }
  }
  return n;
}

/* ------------------------------------------------------------------ snapshots and checks */

function readLive(deployTo: string): HostSnapshot['live'] {
  try {
    const [release, pid] = fs.readFileSync(path.join(deployTo, '.switchyard', 'live'), 'utf8').trim().split(/\s+/);
    return release && pid ? { release, pid: Number(pid) } : null;
  } catch {
    return null;
  }
}

function readCurrent(deployTo: string): string | null {
  try {
    return path.basename(fs.readlinkSync(path.join(deployTo, 'current')));
  } catch {
    return null;
  }
}

function listDirs(dir: string): string[] {
  try {
    return fs
      .readdirSync(dir, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name)
      .sort();
  } catch {
    return [];
  }
}

/** The site's supervisor as recorded (.switchyard/supervisor: `PID ST VERSION`): an expected process, not a leak. */
export function recordedSupervisor(deployTo: string): number | undefined {
  try {
    const pid = Number(fs.readFileSync(path.join(deployTo, '.switchyard', 'supervisor'), 'utf8').split(' ')[0]);
    return pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** One host as it is now: its processes (the recorded supervisor aside), sockets, the live app's descriptors, releases. */
export function snapshotHost(host: LabHost, procs: Proc[] = processList()): HostSnapshot {
  const sv = recordedSupervisor(host.deployTo);
  const mine = procs.filter((p) => p.pid !== process.pid && p.pid !== sv && ((p.cwd !== null && under(p.cwd, host.deployTo)) || under(envSocket(p.pid) ?? '', host.socketDir)));
  const live = readLive(host.deployTo);
  let sessions: number[] = [];
  try {
    const sshd = Number(fs.readFileSync(path.join(host.root, 'sshd.pid'), 'utf8').trim());
    sessions = descendantsOf(sshd, procs);
  } catch {
    /* no sshd pid file: counted as none */
  }
  let sockets: string[] = [];
  try {
    sockets = fs.readdirSync(host.socketDir).sort();
  } catch {
    /* no socketDir: the check says so */
  }
  return {
    host: host.name,
    processes: mine.map((p) => ({ pid: p.pid, cmd: cmdline(p.pid) })),
    live,
    current: readCurrent(host.deployTo),
    sockets,
    fds: live && mine.some((p) => p.pid === live.pid) ? fdCounts(live.pid) : null,
    releaseDirs: listDirs(path.join(host.deployTo, 'releases')),
    sshSessions: sessions.length,
    ...(sessions.length ? { sshSessionCmds: sessions.map((p) => cmdline(p).slice(0, 80)) } : {}),
  };
}

export interface HostLimits {
  site: string;
  keepReleases: number;
  /** The host's share of the load's concurrency: nginx's connections to the app in flight. */
  concurrencyShare: number;
  /** The release the step said this host now serves. */
  expectedRelease?: string;
  /** The first step's non-socket descriptor count of this host's live app. */
  baselineFdsOther?: number;
}

/** What is wrong with a host's snapshot, one phrase each (empty: all bounded). */
export function checkHost(s: HostSnapshot, l: HostLimits): string[] {
  const problems: string[] = [];
  const liveSock = `SOCK-${l.site}`;
  if (!s.live) problems.push('.switchyard/live is missing');
  if (s.processes.length !== 1 || (s.live && s.processes[0]!.pid !== s.live.pid)) {
    problems.push(
      `release processes: ${s.processes.length} (expected only the live one${s.live ? `, pid ${s.live.pid}` : ''}): ` +
        (s.processes.map((p) => `${p.pid} ${p.cmd}`).join('; ') || 'none'),
    );
  }
  if (l.expectedRelease && s.live && s.live.release !== l.expectedRelease) problems.push(`live release is ${s.live.release}, the step reported ${l.expectedRelease}`);
  if (s.live && s.current !== s.live.release) problems.push(`current points at ${s.current ?? 'nothing'}, live is ${s.live.release}`);
  if (s.sshSessions > 0) problems.push(`sshd session processes still running: ${s.sshSessions} (${(s.sshSessionCmds ?? []).join('; ')})`);
  const extra = s.sockets.filter((f) => f !== liveSock && f !== `${liveSock}.prev`);
  if (extra.length) problems.push(`socketDir holds more than live + .prev: ${extra.join(', ')}${extra.some((f) => f.startsWith(`${liveSock}-`)) ? ' (a staged socket left behind)' : ''}`);
  if (!s.sockets.includes(liveSock)) problems.push(`the live socket ${liveSock} is missing`);
  if (s.fds === null) problems.push('no live app process to count descriptors of');
  else {
    if (s.fds.total === 0) problems.push('the live app shows 0 descriptors (not readable?)');
    if (l.baselineFdsOther !== undefined && s.fds.other > l.baselineFdsOther + FD_MARGIN) {
      problems.push(`the live app's non-socket descriptors grew: ${s.fds.other} (first step: ${l.baselineFdsOther}, margin ${FD_MARGIN})`);
    }
    const maxSockets = 1 + l.concurrencyShare + SOCKET_MARGIN;
    if (s.fds.sockets > maxSockets) problems.push(`the live app holds ${s.fds.sockets} sockets (bound: listener + ${l.concurrencyShare} requests in flight + ${SOCKET_MARGIN})`);
  }
  if (s.releaseDirs.length > l.keepReleases) problems.push(`release directories: ${s.releaseDirs.length} > keepReleases ${l.keepReleases} (${s.releaseDirs.join(', ')})`);
  if (s.releaseDirs.length === 0) problems.push('no release directory');
  return problems;
}

const mib = (bytes: number) => Math.round(bytes / 104857.6) / 10;

/** A full GC on demand, without --expose-gc on the command line (V8 flag set at run time). */
const fullGc: () => void = (() => {
  try {
    v8.setFlagsFromString('--expose-gc');
    return vm.runInNewContext('gc') as () => void;
  } catch {
    return () => {};
  }
})();

function heapAfterGc(): number {
  fullGc();
  return mib(process.memoryUsage().heapUsed);
}

export function snapshotTool(sshPorts: Set<number>): ToolSnapshot {
  return { fds: fdCounts('self') ?? { total: 0, sockets: 0, other: 0 }, sshConnections: tcpConnectionsTo(sshPorts), rssMB: mib(process.memoryUsage().rss), heapMB: heapAfterGc() };
}

export function checkTool(t: ToolSnapshot, baselineFdsOther: number | undefined): string[] {
  const problems: string[] = [];
  if (t.sshConnections > 0) problems.push(`SSH connections still open from the deploying process: ${t.sshConnections}`);
  if (baselineFdsOther !== undefined && t.fds.other > baselineFdsOther + FD_MARGIN) {
    problems.push(`the deploying process's non-socket descriptors grew: ${t.fds.other} (first step: ${baselineFdsOther}, margin ${FD_MARGIN})`);
  }
  return problems;
}

/* ------------------------------------------------------------------ the run */

type Counts = SoakResult['done'];

function emptyResult(o: { hosts: number; concurrency: number; keepReleases: number; plan: Step[] }): SoakResult {
  const n = (k: StepKind) => o.plan.filter((s) => s.kind === k).length;
  return {
    ok: false,
    startedAt: new Date().toISOString(),
    elapsedSeconds: 0,
    hosts: o.hosts,
    concurrency: o.concurrency,
    keepReleases: o.keepReleases,
    planned: { deploys: n('deploy'), rollbacks: n('rollback'), restarts: n('restart') },
    done: { deploys: 0, rollbacks: 0, restarts: 0 },
    requests: 0,
    failed: 0,
    failuresByCode: {},
    failures: [],
    loads: [],
    peakRssMB: 0,
    checks: { host: 0, tool: 0, maxSettleMs: 0 },
    baseline: null,
    max: {},
    toolMax: { fds: 0, fdsOther: 0, sshConnections: 0, rssMB: 0, heapMB: 0 },
    steps: [],
  };
}

const plural: Record<StepKind, keyof Counts> = { deploy: 'deploys', rollback: 'rollbacks', restart: 'restarts' };

/** One half's load: its run, when it started (performance.now()), keep-alive. */
interface Half {
  run: LoadRun;
  t0: number;
  keepalive: boolean;
  collected?: boolean;
}

class Soak {
  private readonly plan: Step[];
  private readonly hosts: number;
  private readonly concurrency: number;
  private readonly log: (line: string) => void;
  private lab!: Lab;
  private env!: Environment;
  private sshPorts = new Set<number>();
  private readonly halves: Half[] = [];
  private readonly windows: { from: number; to: number; name: string }[] = [];
  private readonly t0 = performance.now();
  readonly result: SoakResult;

  constructor(private readonly o: SoakOptions) {
    this.plan = soakPlan(o.cycles);
    this.hosts = o.hosts ?? 2;
    this.concurrency = o.concurrency ?? 100;
    this.log = o.log ?? (() => {});
    this.result = emptyResult({ hosts: this.hosts, concurrency: this.concurrency, keepReleases: 0, plan: this.plan });
  }

  async run(): Promise<SoakResult> {
    const own = !this.o.lab;
    this.lab = this.o.lab ?? (await startLab({ hosts: this.hosts }));
    try {
      await this.prepare();
      await this.steps();
      await sleep(TAIL_MS);
      await this.stopLoads();
      this.result.ok = true;
      return this.finish();
    } catch (e) {
      await this.stopLoads().catch(() => {});
      this.finish();
      const err = e instanceof SoakFailedError ? e : new SoakFailedError(`soak: ${e instanceof Error ? e.message : String(e)}`, this.result);
      this.result.error = err.message;
      throw err;
    } finally {
      if (own) await this.lab.stop();
    }
  }

  private async prepare(): Promise<void> {
    if (this.lab.hosts.length !== this.hosts) throw new Error(`soak: the lab has ${this.lab.hosts.length} hosts, ${this.hosts} asked for`);
    this.env = labEnv(this.lab);
    this.result.keepReleases = this.env.keepReleases;
    this.sshPorts = new Set(this.lab.hosts.map((h) => h.sshPort));
    const rep = new MemoryReporter();
    await setup({ environment: this.env, reporter: rep });
    const cold = await deploy({ environment: this.env, reporter: rep }, 'cold-deploy');
    if (!cold.ok) throw new Error(`cold deploy failed: ${cold.error}\n${rep.text()}`);
    this.log(`soak: ${this.hosts} hosts, ${this.result.planned.deploys} deploys, ${this.result.planned.rollbacks} rollbacks, ${this.result.planned.restarts} restarts; load ${this.concurrency} connections, keep-alive on then off`);
    await this.startHalf(true);
  }

  /** A new load (keep-alive on or off); the one running before stops once this one answers. */
  private async startHalf(keepalive: boolean): Promise<void> {
    const t0 = performance.now();
    const run = startLoad({ targets: loadTargets(this.env), concurrency: this.concurrency, keepalive });
    this.halves.push({ run, t0, keepalive });
    const waitFrom = Date.now();
    while (run.progress().requests === 0) {
      if (Date.now() - waitFrom > FIRST_REQUEST_TIMEOUT_MS) throw new Error(`load: no request completed within ${FIRST_REQUEST_TIMEOUT_MS / 1000} s`);
      await sleep(20);
    }
    const before = this.halves.at(-2);
    if (before && !before.collected) this.collect(before, await before.run.stop());
    else await sleep(RAMP_MS);
  }

  private get load(): Half {
    return this.halves.at(-1)!;
  }

  private async steps(): Promise<void> {
    const switchAfter = halfway(this.plan);
    for (const [i, step] of this.plan.entries()) {
      if (this.o.signal?.aborted) throw new SoakFailedError(`soak: interrupted before step ${i + 1} of ${this.plan.length} (${stepName(step)})`, this.result);
      await this.step(i, step);
      if (i === switchAfter) {
        await this.startHalf(false);
        this.log(`soak: keep-alive off from here (after ${stepName(step)})`);
      }
    }
  }

  private async step(index: number, step: Step): Promise<void> {
    const name = stepName(step);
    const load = this.load;
    const failedBefore = load.run.progress().failed;
    const rep = new MemoryReporter();
    const opts = {
      environment: this.env,
      reporter: rep,
      onEvent: (e: Parameters<typeof markerFor>[0]) => {
        const m = markerFor(e, `${name}: `);
        if (m) load.run.mark(m.label, { host: e.host, phase: m.phase });
      },
    };
    const from = performance.now();
    let report: ReleaseReport;
    try {
      report = step.kind === 'deploy' ? await deploy(opts) : step.kind === 'rollback' ? await rollback(opts) : await restart(opts);
    } catch (e) {
      throw new SoakFailedError(`soak: step ${index + 1} (${name}, cycle ${step.cycle}) failed: ${e instanceof Error ? e.message : String(e)}\n${rep.text()}`, this.result);
    } finally {
      this.windows.push({ from, to: performance.now(), name });
    }
    if (!report.ok) throw new SoakFailedError(`soak: step ${index + 1} (${name}, cycle ${step.cycle}) failed: ${report.error}\n${rep.text()}`, this.result);
    this.result.done[plural[step.kind]]++;
    await this.o.beforeCheck?.(step, index + 1, this.lab);
    const checked = await this.checkAll(index, step, report);
    const rec: StepRecord = {
      ...step,
      index: index + 1,
      keepalive: load.keepalive,
      release: report.release,
      seconds: report.seconds,
      failed: load.run.progress().failed - failedBefore,
      ...checked,
    };
    this.result.steps.push(rec);
    this.log(this.line(rec, load));
  }

  /** Every host and this process, again until clean or SETTLE_MS has passed; throws naming what grew. */
  private async checkAll(index: number, step: Step, report: ReleaseReport): Promise<Pick<StepRecord, 'hosts' | 'tool' | 'settleMs' | 'transient'>> {
    const started = Date.now();
    let first: string[] | undefined;
    const share = Math.ceil(this.concurrency / this.hosts);
    const base = this.result.baseline;
    for (;;) {
      const procs = processList();
      const hosts = this.lab.hosts.map((h) => snapshotHost(h, procs));
      const tool = snapshotTool(this.sshPorts);
      const problems = hosts.flatMap((s) =>
        checkHost(s, {
          site: this.env.site,
          keepReleases: this.env.keepReleases,
          concurrencyShare: share,
          expectedRelease: report.hosts.find((r) => r.host === s.host)?.release,
          ...(base ? { baselineFdsOther: base.appFdsOther[s.host] } : {}),
        }).map((p) => `${s.host}: ${p}`),
      );
      problems.push(...checkTool(tool, base?.toolFdsOther).map((p) => `deploying process: ${p}`));
      first ??= problems;
      const settleMs = first.length ? Date.now() - started : 0;
      if (problems.length === 0 || settleMs > (this.o.settleMs ?? SETTLE_MS)) {
        this.result.checks.host += hosts.length;
        this.result.checks.tool++;
        this.result.checks.maxSettleMs = Math.max(this.result.checks.maxSettleMs, settleMs);
        this.account(hosts, tool);
        if (problems.length) {
          throw new SoakFailedError(
            `soak: check failed after step ${index + 1} of ${this.plan.length} (${stepName(step)}, cycle ${step.cycle}), still so after ${settleMs} ms:\n` + problems.map((p) => `  ${p}`).join('\n'),
            this.result,
          );
        }
        this.result.baseline ??= { appFdsOther: Object.fromEntries(hosts.map((s) => [s.host, s.fds!.other])), toolFdsOther: tool.fds.other };
        return { hosts, tool, settleMs, ...(first.length ? { transient: first } : {}) };
      }
      await sleep(100);
    }
  }

  /** The largest counts seen, per host and for this process. */
  private account(hosts: HostSnapshot[], tool: ToolSnapshot): void {
    for (const s of hosts) {
      const m = (this.result.max[s.host] ??= { processes: 0, sockets: 0, fds: 0, fdsOther: 0, fdsSockets: 0, releaseDirs: 0, sshSessions: 0 });
      m.processes = Math.max(m.processes, s.processes.length);
      m.sockets = Math.max(m.sockets, s.sockets.length);
      m.fds = Math.max(m.fds, s.fds?.total ?? 0);
      m.fdsOther = Math.max(m.fdsOther, s.fds?.other ?? 0);
      m.fdsSockets = Math.max(m.fdsSockets, s.fds?.sockets ?? 0);
      m.releaseDirs = Math.max(m.releaseDirs, s.releaseDirs.length);
      m.sshSessions = Math.max(m.sshSessions, s.sshSessions);
    }
    const t = this.result.toolMax;
    t.fds = Math.max(t.fds, tool.fds.total);
    t.fdsOther = Math.max(t.fdsOther, tool.fds.other);
    t.sshConnections = Math.max(t.sshConnections, tool.sshConnections);
    t.rssMB = Math.max(t.rssMB, tool.rssMB);
    t.heapMB = Math.max(t.heapMB, tool.heapMB);
  }

  private line(r: StepRecord, load: Half): string {
    const hosts = r.hosts.map((s) => `${s.host} procs ${s.processes.length} socks ${s.sockets.length} fds ${s.fds?.other ?? '-'}+${s.fds?.sockets ?? '-'} rel ${s.releaseDirs.length}`).join(' | ');
    const p = load.run.progress();
    const transient = r.transient ? ` | settled in ${r.settleMs} ms: ${r.transient.join('; ')}` : '';
    return (
      `[${String(r.index).padStart(3)}/${this.plan.length}] ${`${stepName(r)}`.padEnd(11)} ka ${r.keepalive ? 'on ' : 'off'} ${r.seconds.toFixed(1)} s  ${hosts} | ` +
      `tool fds ${r.tool.fds.other}+${r.tool.fds.sockets} rss ${r.tool.rssMB} heap ${r.tool.heapMB} MB | load ${p.requests} req, ${p.failed} failed${r.failed ? ` (${r.failed} in this step)` : ''}${transient}`
    );
  }

  /** Every load still running: stopped and counted. */
  private async stopLoads(): Promise<void> {
    for (const h of this.halves) if (!h.collected) this.collect(h, await h.run.stop());
  }

  /** A half's figures into the totals; each failure with the step it was sent during. */
  private collect(half: Half, r: LoadResult): void {
    half.collected = true;
    const { timeline: _t, failures, markers: _m, ...figures } = r;
    this.result.loads.push(figures);
    this.result.requests += r.requests;
    this.result.failed += r.failed;
    for (const [code, n] of Object.entries(r.failuresByCode)) this.result.failuresByCode[code] = (this.result.failuresByCode[code] ?? 0) + n;
    for (const f of failures) {
      const sent = half.t0 + f.t - (f.ms ?? 0);
      const w = this.windows.find((x) => x.from <= sent && sent <= x.to);
      this.result.failures.push({ ...f, keepalive: half.keepalive, during: w?.name ?? 'between steps' });
    }
  }

  private finish(): SoakResult {
    this.result.elapsedSeconds = Math.round((performance.now() - this.t0) / 100) / 10;
    this.result.peakRssMB = Math.round(process.resourceUsage().maxRSS / 102.4) / 10; // maxRSS is in KiB; MiB here
    return this.result;
  }
}

/** The soak: throws SoakFailedError (with the result so far) when a step or a check fails. */
export function runSoak(o: SoakOptions): Promise<SoakResult> {
  return new Soak(o).run();
}

/** The figures as text, for the terminal and CI logs. */
export function formatSoak(r: SoakResult): string {
  const lines = [
    `soak: ${r.done.deploys} deploys, ${r.done.rollbacks} rollbacks, ${r.done.restarts} restarts on ${r.hosts} hosts in ${r.elapsedSeconds} s (concurrency ${r.concurrency})`,
    `requests: ${r.requests}, failed: ${r.failed}${r.failed ? ` (${Object.entries(r.failuresByCode).map(([c, n]) => `${c} ×${n}`).join(', ')})` : ''}`,
    ...r.loads.map((l) => `  keep-alive ${l.keepalive ? 'on ' : 'off'}: ${l.requests} requests, ${l.failed} failed, ${l.rps} req/s, p50 ${l.latencyMs.p50} ms, p99 ${l.latencyMs.p99} ms, max ${l.latencyMs.max} ms`),
    `peak memory (maxRSS, deploys + load generator): ${r.peakRssMB} MB`,
    `checks: ${r.checks.host} host checks, ${r.checks.tool} process checks, ${r.ok ? 'all bounded' : 'STOPPED: ' + (r.error ?? '').split('\n')[0]} (longest settle ${r.checks.maxSettleMs} ms)`,
    ...Object.entries(r.max).map(
      ([h, m]) => `  ${h}: max processes ${m.processes}, sockets ${m.sockets}, app fds ${m.fds} (non-socket ${m.fdsOther}, sockets ${m.fdsSockets}), release dirs ${m.releaseDirs} (keep ${r.keepReleases})`,
    ),
    `  transient at the first look, then gone: ${r.steps.filter((s) => s.transient).length} of ${r.steps.length} steps` +
      (r.steps.some((s) => s.transient) ? ` (${[...new Set(r.steps.flatMap((s) => s.transient ?? []).map((t) => t.replace(/\d+/g, 'N')))].join('; ')})` : ''),
    `  deploying process: max fds ${r.toolMax.fds} (non-socket ${r.toolMax.fdsOther}), SSH connections left ${r.toolMax.sshConnections}, rss ${r.toolMax.rssMB} MB` +
      (r.steps.length ? `, heap after GC ${r.steps[0]!.tool.heapMB} MB after the first step, ${r.steps.at(-1)!.tool.heapMB} after the last (max ${r.toolMax.heapMB})` : ''),
  ];
  for (const f of r.failures.slice(0, 50)) lines.push(`  failed: +${(f.t / 1000).toFixed(3)} s (keep-alive ${f.keepalive ? 'on' : 'off'})  ${f.code}  ${f.target}  during ${f.during}`);
  if (r.failures.length > 50) lines.push(`  … and ${r.failures.length - 50} more (all in the JSON)`);
  return lines.join('\n');
}
