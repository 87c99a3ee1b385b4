// What every task starts with: options in, environment loaded and validated, hosts selected,
// a session ready. Only gulpfile.ts reads the command line; tasks take these plain options.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { SwitchyardError } from './errors';
import { loadEnvironment, type Environment, type HostConfig } from './environment';
import { hasRole, selectHosts } from './hosts';
import type { Hooks, ReleaseReport } from './release';
import { GulpReporter, type Reporter } from './reporter';
import { Session } from './session';
import { formatReleaseSummary } from './summary';

export interface TaskOptions {
  /** Environment name: env/<name>.ts. Default 'local'. */
  env?: string;
  /** Directory of environment files (another repository, say); default $SWITCHYARD_ENV_DIR, then ./env. */
  envDir?: string;
  /** Project root; default process.cwd() (gulp runs tasks from the gulpfile's directory). */
  root?: string;
  roles?: string[];
  hosts?: string[];
  parallel?: number;
  /** Switch hosts in batches: a number of hosts, or a percentage such as '25%'. */
  batch?: string;
  dryRun?: boolean;
  verbose?: boolean;
  /** Write a JSON report of the run here. */
  report?: string;
  hooks?: Hooks;
  reporter?: Reporter;
  /** Give an already-loaded environment instead of --env (programs embedding switchyard). */
  environment?: Environment;
}

/** What the load-driving tasks (loadtest, verify, --under-load) take besides the common options. */
export interface LoadTaskOptions extends TaskOptions {
  /** Requests in flight at any time, in total over the targets (default 100). */
  concurrency?: number;
  /** loadtest only: seconds to run (default 10 unless `requests` is given). */
  duration?: number;
  /** loadtest only: stop after this many requests. */
  requests?: number;
  /** Reuse connections (default on). */
  keepalive?: boolean;
  /** Path (and query) to request, default `/`. */
  path?: string;
  /** HTTP method, default GET. */
  method?: string;
  /** Run the change (deploy, …) under load: `--under-load`. */
  underLoad?: boolean;
  /** Where the JSON and HTML reports go; default <project root>/reports. */
  reportDir?: string;
}

export interface TaskContext {
  env: Environment;
  reporter: Reporter;
  options: TaskOptions;
}

export function contextFor(o: TaskOptions): TaskContext {
  const reporter = o.reporter ?? new GulpReporter(o.verbose ?? false);
  const env =
    o.environment ??
    loadEnvironment({ name: o.env ?? 'local', ...(o.envDir ? { envDir: o.envDir } : {}), ...(o.root ? { root: o.root } : {}) });
  return { env, reporter, options: o };
}

/** The selected hosts that run the app (the app roles within --roles/--hosts). */
export function appHosts(ctx: TaskContext): HostConfig[] {
  const picked = selectHosts(ctx.env, { ...(ctx.options.roles ? { roles: ctx.options.roles } : {}), ...(ctx.options.hosts ? { hosts: ctx.options.hosts } : {}) });
  const app = picked.filter((h) => hasRole(h, ctx.env.app.roles));
  if (!app.length) throw new SwitchyardError(`none of the selected hosts (${picked.map((h) => h.name).join(', ')}) has an app role (${ctx.env.app.roles.join(', ')})`);
  return app;
}

export function openSession(ctx: TaskContext, hosts: HostConfig[]): Session {
  return new Session(ctx.env, hosts, ctx.reporter, {
    ...(ctx.options.parallel ? { parallel: ctx.options.parallel } : {}),
    ...(ctx.options.dryRun ? { dryRun: true } : {}),
  });
}

/** Runs fn with a session and always closes the connections, whatever happens. */
export async function withSession<T>(ctx: TaskContext, hosts: HostConfig[], fn: (s: Session) => Promise<T>): Promise<T> {
  const s = openSession(ctx, hosts);
  try {
    return await fn(s);
  } finally {
    await s.close();
  }
}

/** `--batch=2` or `--batch=25%` as a number of hosts per batch. */
export function batchSize(batch: string | undefined, hosts: number): number | undefined {
  if (batch === undefined || batch === '') return undefined;
  const m = /^(\d+)(%?)$/.exec(batch.trim());
  if (!m || Number(m[1]) === 0) throw new SwitchyardError(`--batch: "${batch}" is not a number of hosts or a percentage (e.g. 2 or 25%)`);
  return m[2] ? Math.max(1, Math.floor((hosts * Number(m[1])) / 100)) : Number(m[1]);
}

export function gitSha(root: string): string | undefined {
  try {
    return execFileSync('git', ['rev-parse', '--short=7', 'HEAD'], { cwd: root, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
  } catch {
    return undefined;
  }
}

export function writeReport(file: string | undefined, report: ReleaseReport | object): void {
  if (!file) return;
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  fs.writeFileSync(file, JSON.stringify(report, null, 2) + '\n');
}

/** The end of a release task, success or failure: the summary table, the JSON report, the callback. */
export function publishReport(reporter: Reporter, o: { report?: string; onReport?: (r: ReleaseReport) => void }, r: ReleaseReport): void {
  reporter.log('info', formatReleaseSummary(r));
  writeReport(o.report, r);
  o.onReport?.(r);
}

/** A gulp task with the metadata `gulp --tasks` prints. */
export type Task = (() => Promise<void>) & { displayName: string; description: string; flags: Record<string, string> };

export function task(name: string, description: string, flags: Record<string, string>, run: () => Promise<void>): Task {
  return Object.assign(run, { displayName: name, description, flags });
}

export const COMMON_FLAGS = {
  '--env': 'environment file env/<name>.ts (default: local)',
  '--env-dir': 'directory of environment files (or SWITCHYARD_ENV_DIR)',
  '--roles': 'only hosts with these roles, e.g. --roles=app,web',
  '--hosts': 'only these hosts, e.g. --hosts=app1,app2',
  '--verbose': 'show every remote command and result line',
};
