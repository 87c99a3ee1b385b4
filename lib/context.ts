// What every operation starts with: options in, environment loaded and validated, hosts selected,
// a session ready. Nothing here reads the command line: tasks/ turn flags into these plain options.
import { SwitchyardError } from './errors';
import { loadEnvironment, type Environment, type HostConfig } from './environment';
import { hasRole, selectHosts } from './environment/hosts';
import type { Hooks } from './release/flow';
import { DryRunReporter, GulpReporter, type Reporter } from './output/reporter';
import { Session } from './remote/session';

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
  /** Print JSON on stdout (releases, supervise, doctor); every other line then goes to stderr. */
  json?: boolean;
}

/** What the load-driving tasks (loadtest, verify, --under-load) take besides the common options. */
export interface LoadTaskOptions extends TaskOptions {
  /** Requests in flight at any time, in total over the targets (default 100). */
  concurrency?: number;
  /** loadtest only: seconds to run (default 10 unless `requests` is given). */
  duration?: number;
  /** loadtest only: stop after this many requests. */
  requests?: number;
  /** loadtest only: exit 0 while no more than this many requests failed (default 0). */
  maxFailures?: number;
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
  const base = o.reporter ?? new GulpReporter(o.verbose ?? false, o.json ?? false);
  const reporter = o.dryRun && !(base instanceof DryRunReporter) ? new DryRunReporter(base) : base;
  const env =
    o.environment ??
    loadEnvironment({ name: o.env ?? 'local', ...(o.envDir ? { envDir: o.envDir } : {}), ...(o.root ? { root: o.root } : {}) });
  return { env, reporter, options: o };
}

/** The hosts --roles and --hosts select (every host when neither is given). */
export function selectedHosts(ctx: TaskContext): HostConfig[] {
  const { roles, hosts } = ctx.options;
  return selectHosts(ctx.env, { ...(roles ? { roles } : {}), ...(hosts ? { hosts } : {}) });
}

/** The selected hosts that run the app (the app roles within --roles/--hosts). */
export function appHosts(ctx: TaskContext): HostConfig[] {
  const picked = selectedHosts(ctx);
  const app = picked.filter((h) => hasRole(h, ctx.env.app.roles));
  if (!app.length) throw new SwitchyardError(`none of the selected hosts (${picked.map((h) => h.name).join(', ')}) has an app role (${ctx.env.app.roles.join(', ')})`);
  return app;
}

/**
 * The hosts a release goes to: every selected host, at least one of them with an app role. Those
 * of the app roles run it; the others (a db primary, say) get its files only: releases/<R> and
 * `current`, nothing started, so a hook can work in the release there.
 */
export function releaseHosts(ctx: TaskContext): HostConfig[] {
  appHosts(ctx);
  return selectedHosts(ctx);
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
