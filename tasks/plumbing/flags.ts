// The command line, strict: every flag a task takes is declared once here (its type, meaning and
// default), the catalog says which task takes which, and anything else is an error before any file
// is loaded or any host is reached. A typo such as `--dryrun` must never run a real deploy.
import { SwitchyardError } from '../../lib/errors';
import type { LoadTaskOptions } from '../../lib/context';
import { envNameProblem } from '../../lib/environment/names';
import { nearest } from '../../lib/nearest';
import { unwritableProblem } from '../../lib/output/local-files';
import { CATALOG } from './catalog';

export interface Flags extends LoadTaskOptions {
  /** verify: deploys in a row under the same load. */
  cycles?: number;
  /** verify: a rollback after each deploy. */
  rollback?: boolean;
  /** rollback: the release to go back to. */
  to?: string;
  /** releases, doctor: print JSON. */
  json?: boolean;
  /** deploy, rollback, restart: seconds to wait for a held deploy lock. */
  lockWait?: number;
  /** supervise: what to do with the supervisor. */
  action?: string;
  /** supervise: with start, the @reboot crontab line too. */
  boot?: boolean;
}

type FlagType = 'string' | 'boolean' | 'count' | 'list' | 'whole' | 'batch' | 'seconds' | 'choice';

export interface FlagSpec {
  type: FlagType;
  /** The option it sets. */
  key: keyof Flags;
  help: string;
  default?: string;
  /** A 'choice' flag: its values. */
  choices?: readonly string[];
}

/** Every flag of switchyard's own tasks. */
export const FLAGS = {
  '--env': { type: 'string', key: 'env', help: 'environment file env/<name>.ts', default: 'local' },
  '--env-dir': { type: 'string', key: 'envDir', help: 'directory of environment files', default: '$SWITCHYARD_ENV_DIR, then ./env' },
  '--roles': { type: 'list', key: 'roles', help: 'only hosts with these roles, e.g. --roles=app,web', default: 'every role' },
  '--hosts': { type: 'list', key: 'hosts', help: 'only these hosts, e.g. --hosts=app1,app2', default: 'every host' },
  '--verbose': { type: 'boolean', key: 'verbose', help: 'show every remote command and result line', default: 'off' },
  '--parallel': { type: 'count', key: 'parallel', help: 'at most N hosts at once', default: 'all' },
  '--batch': { type: 'batch', key: 'batch', help: 'switch N hosts (or N%) at a time, each batch checked before the next', default: 'all at once' },
  '--dry-run': { type: 'boolean', key: 'dryRun', help: 'print every remote command per host, run none', default: 'off' },
  '--report': { type: 'string', key: 'report', help: 'write a JSON report of the run to this file', default: 'none' },
  '--under-load': { type: 'boolean', key: 'underLoad', help: 'run it under load (as verify does) and fail if even one request failed; the load flags apply', default: 'off' },
  '--concurrency': { type: 'count', key: 'concurrency', help: 'requests in flight at once, over all web hosts', default: '100' },
  '--keepalive': { type: 'boolean', key: 'keepalive', help: 'reuse connections (off: a new connection per request)', default: 'on' },
  '--path': { type: 'string', key: 'path', help: 'path to request', default: '/' },
  '--method': { type: 'string', key: 'method', help: 'HTTP method', default: 'GET' },
  '--duration': { type: 'count', key: 'duration', help: 'seconds to run', default: '10' },
  '--requests': { type: 'count', key: 'requests', help: 'stop after this many requests', default: 'no limit' },
  '--max-failures': { type: 'whole', key: 'maxFailures', help: 'exit 0 while no more than this many requests failed', default: '0' },
  '--cycles': { type: 'count', key: 'cycles', help: 'deploys in a row under the same load', default: '1' },
  '--rollback': { type: 'boolean', key: 'rollback', help: 'roll back after each deploy, under load too', default: 'off' },
  '--to': { type: 'string', key: 'to', help: 'the release to roll back to (even one marked bad)', default: 'the newest good release before the live one' },
  '--json': { type: 'boolean', key: 'json', help: 'print JSON on stdout instead of a table (every other line, --verbose too, goes to stderr)', default: 'off' },
  '--action': { type: 'choice', key: 'action', choices: ['start', 'stop', 'status'], help: 'start, stop or status (the supervisor)', default: 'status' },
  '--boot': { type: 'boolean', key: 'boot', help: 'with --action=start: also a user crontab @reboot line, so the site comes back after a reboot (stop removes it)', default: 'off' },
  '--lock-wait': { type: 'seconds', key: 'lockWait', help: 'when a host\'s deploy lock is held, wait this long for it (30s, 2m), showing who holds it', default: 'do not wait' },
} as const satisfies Record<string, FlagSpec>;

export type FlagName = keyof typeof FLAGS;

/** gulp-cli's own flags share the command line: they pass untouched (the ones marked true take a value). */
const GULP_FLAGS: Record<string, boolean> = {
  '--help': false, '-h': false, '--version': false, '-v': false, '--preload': true, '--gulpfile': true, '-f': true,
  '--cwd': true, '--tasks': false, '-T': false, '--tasks-simple': false, '--tasks-json': false, '--tasks-depth': true,
  '--depth': true, '--compact-tasks': false, '--sort-tasks': false, '--color': false, '--no-color': false,
  '--silent': false, '-S': false, '--continue': false, '--series': false, '--log-level': false, '-L': false,
  '--completion': true,
};

export interface ParseOptions {
  /**
   * Which task takes which flags; default: switchyard's catalog. Flags are checked against the
   * tasks named on the command line; when one of them is not in it (your own gulp task), against all flags.
   */
  tasks?: Readonly<Record<string, { flags: readonly FlagName[] }>>;
  /** Flags of your own that your gulpfile reads (`{ '--prod': 'boolean' }`): accepted, not parsed here. */
  allow?: Readonly<Record<string, 'boolean' | 'string'>>;
  /** The switchyard command: argv holds no gulp flags. */
  gulp?: boolean;
}

/** An error about the command line: shown without a stack, gulp or not. */
export class FlagError extends SwitchyardError {
  constructor(problems: string[]) {
    super(problems.join('\n'));
    this.stack = `switchyard: ${this.message}`;
  }
}

interface Token {
  name: string;
  value?: string;
  negated?: boolean;
}

/** Splits argv into flags and positionals (task names), gulp's flags and their values set aside. */
function tokenize(argv: readonly string[], o: ParseOptions): { flags: Token[]; positionals: string[] } {
  const flags: Token[] = [];
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith('-') || arg === '-') {
      positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = eq > 0 ? arg.slice(0, eq) : arg;
    if (o.gulp !== false && (name in GULP_FLAGS || /^-L+$/.test(name))) {
      if (GULP_FLAGS[name] && eq < 0) i++; // its value
      continue;
    }
    if (o.allow && name in o.allow) {
      if (o.allow[name] === 'string' && eq < 0) i++;
      continue;
    }
    const spec = FLAGS[name as FlagName] as FlagSpec | undefined;
    if (eq > 0) flags.push({ name, value: arg.slice(eq + 1) });
    else if (!spec && name.startsWith('--no-') && FLAGS[`--${name.slice(5)}` as FlagName]?.type === 'boolean') flags.push({ name: `--${name.slice(5)}`, negated: true });
    else if (spec && spec.type !== 'boolean' && i + 1 < argv.length && !argv[i + 1]!.startsWith('--')) flags.push({ name, value: argv[++i]! });
    else flags.push({ name });
  }
  return { flags, positionals };
}

/** Which flags the tasks named on the command line take, and who takes the others. */
function allowedFlags(positionals: string[], o: ParseOptions): { allowed: Set<string>; owners: (flag: string) => string[] } {
  const catalog: Readonly<Record<string, { flags: readonly FlagName[] }>> = o.tasks ?? CATALOG;
  const owners = (flag: string) => Object.entries(catalog).filter(([, t]) => t.flags.includes(flag as FlagName)).map(([n]) => n);
  const named = positionals.filter((p) => p in catalog);
  // your own task (or none named: gulp's default task) may pass any of switchyard's flags on
  if (named.length === 0 || named.length < positionals.length) return { allowed: new Set(Object.keys(FLAGS)), owners };
  const allowed = new Set<string>(Object.keys(FLAGS).filter((f) => named.every((n) => catalog[n]!.flags.includes(f as FlagName))));
  return { allowed, owners };
}

const TRUE = /^(true|on|yes|1)$/i;
const FALSE = /^(false|off|no|0)$/i;

/** One flag's value, converted; a string naming the problem when it cannot take it. */
function convert(spec: FlagSpec, t: Token): unknown {
  const { name, value } = t;
  switch (spec.type) {
    case 'boolean':
      if (value === undefined) return !t.negated;
      if (TRUE.test(value)) return true;
      if (FALSE.test(value)) return false;
      return new FlagError([`${name}: "${value}" is not true or false (${name}, --no-${name.slice(2)}, ${name}=true|false)`]);
    case 'count':
    case 'whole': {
      const n = Number(value);
      const min = spec.type === 'count' ? 1 : 0;
      if (value === undefined) return new FlagError([`${name}: needs a value, e.g. ${name}=${min + 1}`]);
      if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < min) {
        return new FlagError([`${name}: "${value}" is not a ${spec.type === 'count' ? 'positive' : 'non-negative'} whole number`]);
      }
      return n;
    }
    case 'list': {
      const items = (value ?? '').split(',').map((s) => s.trim());
      if (!value || items.some((s) => !s)) return new FlagError([`${name}: needs a comma-separated list, e.g. ${name}=a,b`]);
      return items;
    }
    case 'seconds': {
      // 30, 30s, 2m, 1h: whole seconds, minutes or hours, at most a day
      const m = /^(\d{1,6})([smh]?)$/.exec(value ?? '');
      const n = m ? Number(m[1]) * ({ '': 1, s: 1, m: 60, h: 3600 } as const)[m[2] as '' | 's' | 'm' | 'h'] : NaN;
      if (!m || n < 1 || n > 86_400) return new FlagError([`${name}: "${value ?? ''}" is not a duration of 1 s to 24 h (e.g. ${name}=30s, 2m)`]);
      return n;
    }
    case 'batch':
      if (!value || !/^\d+%?$/.test(value) || /^0+%?$/.test(value)) return new FlagError([`${name}: "${value ?? ''}" is not a number of hosts or a percentage (e.g. 2 or 25%)`]);
      if (value.endsWith('%') && Number(value.slice(0, -1)) > 100) return new FlagError([`${name}: "${value}": a percentage goes up to 100% (every host; e.g. 25%)`]);
      return value;
    case 'choice': {
      const choices = spec.choices ?? [];
      if (!value || !choices.includes(value)) return new FlagError([`${name}: "${value ?? ''}" is not one of ${choices.join(', ')} (e.g. ${name}=${choices[0]})`]);
      return value;
    }
    case 'string': {
      // the example is the default only where the default is a value (not 'none', 'all', …)
      if (!value) return new FlagError([`${name}: needs a value, e.g. ${name}=${spec.default && /^[\w./-]+$/.test(spec.default) && !['none', 'all'].includes(spec.default) ? spec.default : 'x'}`]);
      // --report: said now, not after the release it would have described
      const problem = name === '--env' ? envNameProblem(value) : name === '--report' ? reportProblem(value) : undefined;
      if (problem) return new FlagError([problem]);
      return name === '--method' ? value.toUpperCase() : value;
    }
  }
}

function reportProblem(file: string): string | undefined {
  const problem = unwritableProblem(file);
  return problem && `--report: cannot write ${file}: ${problem}`;
}

function unknownFlag(t: Token, allowed: Set<string>, owners: (flag: string) => string[]): string {
  const spec = FLAGS[t.name as FlagName];
  if (spec) {
    const takers = owners(t.name);
    return `${t.name}: not a flag of this task${takers.length ? ` (${takers.join(', ')} take${takers.length === 1 ? 's' : ''} it)` : ''}`;
  }
  const guess = nearest(t.name, allowed) ?? nearest(t.name, Object.keys(FLAGS));
  return `${t.name}: unknown flag${guess ? `; did you mean ${guess}?` : ''}`;
}

/**
 * Reads the command line into task options: `gulp deploy --env=uat --hosts=app1`. Throws a
 * FlagError naming every flag it cannot take: unknown, misspelled, empty, a bad value, or a flag
 * of another task. Put flags after the task name.
 */
export function parseFlags(argv: readonly string[], environ: NodeJS.ProcessEnv = process.env, o: ParseOptions = {}): Flags {
  const { flags, positionals } = tokenize(argv, o);
  const { allowed, owners } = allowedFlags(positionals, o);
  const out: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const t of flags) {
    const spec = FLAGS[t.name as FlagName] as FlagSpec | undefined;
    if (!spec || !allowed.has(t.name)) {
      problems.push(unknownFlag(t, allowed, owners));
      continue;
    }
    const v = convert(spec, t);
    if (v instanceof FlagError) problems.push(v.message);
    else out[spec.key] = v;
  }
  // --boot writes the @reboot line with a start; stop removes it by itself, status reads it
  if (out.boot === true && out.action !== 'start') problems.push(`--boot: goes with --action=start (stop removes the line by itself)`);
  if (problems.length) throw new FlagError(problems);
  const f = out as Flags;
  if (!f.envDir && environ.SWITCHYARD_ENV_DIR) f.envDir = environ.SWITCHYARD_ENV_DIR;
  return f;
}

/** A task's flags as `gulp --tasks` and `switchyard help` show them: `--name` → meaning (default). */
export function describeFlags(names: readonly FlagName[]): Record<string, string> {
  return Object.fromEntries(names.map((n) => [n, `${FLAGS[n].help}${FLAGS[n].default ? ` (default: ${FLAGS[n].default})` : ''}`]));
}
