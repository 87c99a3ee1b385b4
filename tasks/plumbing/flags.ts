// The command line, read once by gulpfile.ts: `gulp deploy --env=uat --hosts=app1`.
import { parseArgs } from 'node:util';
import { SwitchyardError } from '../../lib/errors';
import type { LoadTaskOptions } from '../../lib/context';

export interface Flags extends LoadTaskOptions {
  /** verify: deploys in a row under the same load. */
  cycles?: number;
  /** verify: a rollback after each deploy. */
  rollback?: boolean;
}

function list(v: string | boolean | undefined): string[] | undefined {
  return typeof v === 'string' && v ? v.split(',').map((s) => s.trim()).filter(Boolean) : undefined;
}

function int(name: string, v: string | boolean | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (typeof v !== 'string' || !Number.isInteger(n) || n < 1) throw new SwitchyardError(`--${name}: "${String(v)}" is not a positive whole number`);
  return n;
}

function bool(name: string, v: string | boolean | undefined): boolean | undefined {
  if (v === undefined || typeof v === 'boolean') return v;
  if (/^(on|true|yes|1)$/i.test(v)) return true;
  if (/^(off|false|no|0)$/i.test(v)) return false;
  throw new SwitchyardError(`--${name}: "${v}" is not on or off`);
}

/** strict: false because gulp's own flags (--tasks, --cwd, …) share the command line. */
export function parseFlags(argv: string[], environ: NodeJS.ProcessEnv = process.env): Flags {
  const { values: v } = parseArgs({
    args: argv,
    strict: false,
    allowPositionals: true,
    options: {
      env: { type: 'string' },
      'env-dir': { type: 'string' },
      roles: { type: 'string' },
      hosts: { type: 'string' },
      parallel: { type: 'string' },
      batch: { type: 'string' },
      'dry-run': { type: 'boolean' },
      verbose: { type: 'boolean' },
      report: { type: 'string' },
      concurrency: { type: 'string' },
      duration: { type: 'string' },
      requests: { type: 'string' },
      keepalive: { type: 'string' },
      path: { type: 'string' },
      method: { type: 'string' },
      cycles: { type: 'string' },
      rollback: { type: 'boolean' },
      'under-load': { type: 'boolean' },
    },
  });
  const str = (x: string | boolean | undefined) => (typeof x === 'string' ? x : undefined);
  const f: Flags = {};
  const env = str(v.env);
  if (env) f.env = env;
  const envDir = str(v['env-dir']) ?? environ.SWITCHYARD_ENV_DIR;
  if (envDir) f.envDir = envDir;
  const roles = list(v.roles);
  if (roles) f.roles = roles;
  const hosts = list(v.hosts);
  if (hosts) f.hosts = hosts;
  const parallel = int('parallel', v.parallel);
  if (parallel) f.parallel = parallel;
  if (str(v.batch)) f.batch = str(v.batch)!;
  if (v['dry-run']) f.dryRun = true;
  if (v.verbose) f.verbose = true;
  if (str(v.report)) f.report = str(v.report)!;
  const concurrency = int('concurrency', v.concurrency);
  if (concurrency) f.concurrency = concurrency;
  const duration = int('duration', v.duration);
  if (duration) f.duration = duration;
  const requests = int('requests', v.requests);
  if (requests) f.requests = requests;
  const keepalive = bool('keepalive', v.keepalive);
  if (keepalive !== undefined) f.keepalive = keepalive;
  if (str(v.path)) f.path = str(v.path)!;
  if (str(v.method)) f.method = str(v.method)!.toUpperCase();
  const cycles = int('cycles', v.cycles);
  if (cycles) f.cycles = cycles;
  if (v.rollback) f.rollback = true;
  if (v['under-load']) f.underLoad = true;
  return f;
}
