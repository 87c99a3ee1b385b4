// Every remote command switchyard runs, built as a string by a pure function (as Kamal does), so
// tests can read them exactly and --dry-run can print them. Values from environment files only
// ever appear as single-quoted words; app.env values never do (they travel on stdin: envBlock).
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Environment } from '../environment';
import { privateNginxConfig, privateNginxPrefix } from '../nginx/site';

export const REMOTE_SCRIPTS_DIR = path.join(__dirname, '..', '..', 'remote-scripts');

export type Step = 'setup' | 'prepare' | 'switch' | 'undo' | 'retire' | 'status' | 'unlock' | 'run' | 'release' | 'releases' | 'supervise' | 'doctor';

export interface RemoteCommand {
  step: Step;
  /** The exact string given to the remote shell. */
  command: string;
  /** The same command for people: the script by name instead of its text. */
  display: string;
  /** The command takes the release package on stdin, once the host has said what it has (--delta). */
  stdinPackage?: boolean;
  /**
   * The env block (the app's variables: see envBlock), sent first on stdin, before any package.
   * A function, so that printing or serialising a command never shows the values.
   */
  stdinEnv?: () => Buffer;
  /** The client ends the command after this long (TERM, then KILL): see Transport.exec. */
  timeoutSeconds: number;
}

const SAFE = /^[A-Za-z0-9_/.,:=@%+-]+$/;

/** Quotes one word for a POSIX shell. Anything outside a conservative safe set is single-quoted. */
export function q(word: string): string {
  if (SAFE.test(word)) return word;
  if (word.length < 4096) return `'${word.replace(/'/g, `'\\''`)}'`;
  // a script's text, quoted once (every host's commands carry the same ~50 KB words)
  let quoted = quotedLong.get(word);
  if (quoted === undefined) {
    quoted = `'${word.replace(/'/g, `'\\''`)}'`;
    quotedLong.set(word, quoted);
  }
  return quoted;
}
const quotedLong = new Map<string, string>();

export function words(argv: readonly string[]): string {
  return argv.map(q).join(' ');
}

/**
 * A script as it is sent: every line that is only a comment left empty. The comments are some 40 %
 * of the text, which every host's sshd and two shells read and the client encrypts, per exec; the
 * line count stays, so an error's line number is the same line as without. No line of a string in
 * the scripts starts with `#` (test/lib/remote/commands.test.ts checks that bash defines the same).
 */
export function sentText(text: string): string {
  return text.replace(/^[ \t]*#.*$/gm, '');
}

const cache = new Map<string, string>();
function file(dir: string, name: string): string {
  const key = `${dir}\0${name}`;
  let text = cache.get(key);
  if (text === undefined) {
    text = sentText(fs.readFileSync(path.join(dir, name), 'utf8'));
    cache.set(key, text);
  }
  return text;
}

// The scripts that run the steps themselves (release.sh, one host's release; supervise.sh, the
// supervisor, which starts a release again the way a deploy does) carry them as functions.
const RUNS_STEPS = new Set(['release.sh', 'supervise.sh']);

/**
 * lib.sh followed by the script: what `bash -c` runs on the server. For release.sh and
 * supervise.sh, lib.sh, then prepare/switch/retire/undo.sh each as a function whose body is a
 * subshell (its `exit`, traps and options stay its own), then the script, which calls them.
 */
export function scriptText(name: string, dir = REMOTE_SCRIPTS_DIR): string {
  const key = `${dir}\0${name}\0text`;
  let text = cache.get(key); // one string per script: q() then quotes it once
  if (text !== undefined) return text;
  if (!RUNS_STEPS.has(name)) text = file(dir, 'lib.sh') + '\n' + file(dir, name);
  else {
    const steps = (['prepare', 'switch', 'retire', 'undo'] as const).map((s) => `sy_run_${s}() (\n${file(dir, `${s}.sh`)}\n)\n`);
    text = [file(dir, 'lib.sh'), ...steps, file(dir, name)].join('\n');
  }
  cache.set(key, text);
  return text;
}

/** release.sh with its steps (scriptText). */
export function releaseScriptText(dir = REMOTE_SCRIPTS_DIR): string {
  return scriptText('release.sh', dir);
}

/**
 * A user's command runs under `timeout` on the server as well: it may hang with nobody left to
 * signal it (the client gone); -k because a command ignoring TERM must still end.
 */
function timed(seconds: number, argv: string[]): string {
  return `timeout -k 10 ${Math.ceil(seconds)} ${words(argv)}`;
}

/**
 * Our own scripts bound every wait themselves, so they need no `timeout` program on the server
 * (one fork and exec less per step); the client's time limit signals them. `exec`: the login
 * shell becomes the script's bash instead of waiting for it.
 */
export function scriptCommand(step: Step, name: string, args: string[], timeoutSeconds: number, display = `${name} ${words(args)}`): RemoteCommand {
  return { step, command: `exec ${words(['bash', '-c', scriptText(name), name, ...args])}`, display, timeoutSeconds };
}

function script(step: Step, env: Environment, args: string[], timeoutSeconds = env.ssh.commandTimeoutSeconds): RemoteCommand {
  return scriptCommand(step, `${step}.sh`, args, timeoutSeconds);
}

/** app.instances above 1: every step works on each instance's socket (SOCK-S, SOCK-S@2, …). */
function instances(env: Environment): string[] {
  return env.app.instances > 1 ? ['--instances', String(env.app.instances)] : [];
}

function site(env: Environment): string[] {
  return ['--deploy-to', env.deployTo, '--site', env.site, '--socket-dir', env.socketDir];
}

/** 20261123T154219.123Z-abc1234: sorts by time, the same on every host of a deploy. */
export function newReleaseId(now: Date, gitSha?: string): string {
  const stamp = now.toISOString().replace(/[-:]/g, '');
  const sha = gitSha?.replace(/[^0-9a-f]/gi, '').slice(0, 12).toLowerCase();
  return sha ? `${stamp}-${sha}` : stamp;
}

export const RELEASE_ID = /^[0-9]{8}T[0-9]{6}\.[0-9]{3}Z(-[0-9a-f]{1,12})?$/;

/**
 * A release the host names itself (release.sh resolves it before prepare, into every step): the
 * previous release whose process still runs as the standby, for a plain rollback in one exec.
 */
export const STANDBY_RELEASE = '@standby';

export function setupCommand(env: Environment): RemoteCommand {
  return script('setup', env, ['--deploy-to', env.deployTo, '--socket-dir', env.socketDir, ...(env.socket.group ? ['--socket-group', env.socket.group] : []), ...healthProtocol(env)]);
}

/**
 * The health check speaks the app's protocol: with `nginx.pass: 'fastcgi'` a FastCGI request
 * (cgi-fcgi, which setup then checks for), else HTTP, the scripts' default, so said only for fastcgi.
 */
export function healthProtocol(env: Environment): string[] {
  return env.nginx.pass === 'fastcgi' ? ['--health-protocol', 'fastcgi'] : [];
}

export interface PrepareOptions {
  release: string;
  /** Who holds the lock, shown to anyone refused by it. */
  lockOwner: string;
  /** Start an existing release again (restart, rollback) instead of unpacking a new one. */
  reuse?: boolean;
  /**
   * A host that runs no app (no app role: a db primary, whose hook runs the migrations in the
   * release): the files only, nothing started; no app command, no env block (`--files-only`).
   */
  filesOnly?: boolean;
  /**
   * The app's variables, app.env with its secrets resolved (resolveAppEnv in lib/config/secrets.ts).
   * Left out: app.env's own strings (then it must hold no secret).
   */
  appEnv?: Readonly<Record<string, string>>;
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * The env block prepare.sh reads first from its stdin (`--env-bytes N`): one `NAME=VALUE` record
 * per variable, UTF-8, each ended by a NUL byte (which no name or value can hold). Empty when there
 * are no variables.
 */
export function envBlock(vars: Readonly<Record<string, string>>): Buffer {
  return Buffer.concat(
    Object.entries(vars).map(([k, v]) => {
      if (!ENV_NAME.test(k) || k.startsWith('SWITCHYARD_')) throw new Error(`app.env: "${k}" is not a variable the app may be given`);
      if (v.includes('\0')) throw new Error(`app.env.${k}: a value cannot hold a NUL byte`);
      return Buffer.from(`${k}=${v}\0`, 'utf8');
    }),
  );
}

function appEnvOf(env: Environment, o: PrepareOptions): Readonly<Record<string, string>> {
  if (o.appEnv) return o.appEnv;
  const vars: Record<string, string> = {};
  for (const [k, v] of Object.entries(env.app.env)) {
    if (typeof v !== 'string') throw new Error(`app.env.${k} is ${String(v)}: resolve it first (resolveAppEnv)`);
    vars[k] = v;
  }
  return vars;
}

/** The values never travel on the command line: only the size of their block on stdin. */
function prepareArgs(env: Environment, o: PrepareOptions, envBytes: number): string[] {
  if (o.filesOnly) return filesOnlyArgs(env, o);
  const args = [...site(env), '--release', o.release];
  for (const p of env.shared) args.push('--shared', p);
  args.push(...instances(env), '--socket-mode', env.socket.mode);
  if (env.socket.group) args.push('--socket-group', env.socket.group);
  args.push(
    '--start-timeout', String(env.app.startTimeoutSeconds),
    '--health-path', env.app.health.path,
    '--health-timeout', String(env.app.health.timeoutSeconds),
    '--expect-status', String(env.app.health.expectStatus),
    ...healthProtocol(env),
    '--lock-owner', o.lockOwner,
  );
  if (o.reuse) args.push('--reuse');
  if (envBytes > 0) args.push('--env-bytes', String(envBytes));
  if (!o.reuse) args.push('--delta'); // the host says what it has; only the rest is sent
  return [...args, '--', ...env.app.start];
}

/** Files only: the lock, the upload and the shared links; no start, so no app options and no command. */
function filesOnlyArgs(env: Environment, o: PrepareOptions): string[] {
  const args = [...site(env), '--release', o.release];
  for (const p of env.shared) args.push('--shared', p);
  args.push('--lock-owner', o.lockOwner, '--files-only'); // --deploy-to stays first (release.sh reads it there)
  return [...args, o.reuse ? '--reuse' : '--delta'];
}

/**
 * The env block of a prepare, and how its stdin is shown: `env (API_KEY, NODE_ENV)`, names only.
 * None for a files-only host: nothing there is given the app's variables (nor its secrets).
 */
function prepareEnv(env: Environment, o: PrepareOptions): { block: Buffer; shown: string; stdin: Pick<RemoteCommand, 'stdinEnv'> } {
  if (o.filesOnly) return { block: Buffer.alloc(0), shown: '', stdin: {} };
  const vars = appEnvOf(env, o);
  const block = envBlock(vars);
  return { block, shown: block.length ? `env (${Object.keys(vars).join(', ')})` : '', stdin: block.length ? { stdinEnv: () => block } : {} };
}

/**
 * The app's variables come first on prepare.sh's stdin (the env block, `--env-bytes N`); then,
 * without --reuse, once the host has listed what it has (--delta), what it lacks of the package,
 * which it unpacks into a new releases/R, under the lock.
 */
export function prepareCommand(env: Environment, o: PrepareOptions): RemoteCommand {
  const e = prepareEnv(env, o);
  const cmd = { ...script('prepare', env, prepareArgs(env, o, e.block.length)), ...e.stdin };
  if (o.reuse) return e.shown ? { ...cmd, display: `${cmd.display} < ${e.shown}` } : cmd;
  const into = `unpacked into ${q(path.posix.join(env.deployTo, 'releases', o.release))}${o.filesOnly ? ', nothing started' : ''}`;
  const pkg = `the package, less the files the host has (${into})`;
  return { ...cmd, display: `${cmd.display} < ${e.shown ? `${e.shown}, then ` : ''}${pkg}`, stdinPackage: true };
}

/**
 * How long release.sh waits for the client's next word: the other hosts' prepare, the hooks and
 * the batch checks happen meanwhile. Past it the exec ends (9), the host untouched and locked, and
 * the client does the next step as an exec of its own: a stuck client leaves nothing waiting.
 */
function wordWaitSeconds(env: Environment): number {
  return Math.ceil(env.ssh.commandTimeoutSeconds) + 600;
}

export interface ReleaseCommandOptions extends PrepareOptions {
  /** The audit text retire writes. */
  audit: string;
  /** A rollback: retire marks the release it leaves bad. */
  markBad?: boolean;
  /** A deploy: retire keeps the previous release running as the standby (retire.standbySeconds). */
  standby?: boolean;
}

/**
 * The whole release on one host in ONE exec (release.sh): prepare, then switch and retire, or
 * undo, as the client writes those words to its stdin. `steps` holds each step's own command, for
 * --dry-run and for when the conversation is gone (a separate exec then does the step).
 */
export function releaseCommand(env: Environment, o: ReleaseCommandOptions): RemoteCommand & { steps: Record<'prepare' | 'switch' | 'retire' | 'undo', RemoteCommand> } {
  const e = prepareEnv(env, o);
  const p = prepareArgs(env, o, e.block.length);
  const sw = switchArgs(env, o.release, o);
  const re = retireArgs(env, o.release, o.audit, o);
  const un = undoArgs(env, o.release);
  const steps = { prepare: prepareCommand(env, o), switch: switchCommand(env, o.release, o), retire: retireCommand(env, o.release, o.audit, o), undo: undoCommand(env, o.release) };
  return {
    step: 'release',
    command: `exec ${words(['bash', '-c', releaseScriptText(), 'release.sh', String(wordWaitSeconds(env)), String(p.length), String(sw.length), String(re.length), ...p, ...sw, ...re, ...un])}`,
    display: `release.sh: ${steps.prepare.display}; then at the client's word: ${steps.switch.display}; ${steps.retire.display} (or ${steps.undo.display})`,
    stdinPackage: !o.reuse,
    ...e.stdin,
    // every step's own limit added up (the client applies them step by step, not to the waits between)
    timeoutSeconds: steps.prepare.timeoutSeconds + steps.switch.timeoutSeconds + steps.retire.timeoutSeconds,
    steps,
  };
}

function switchArgs(env: Environment, release: string, o: Pick<PrepareOptions, 'filesOnly'>): string[] {
  return [...site(env), '--release', release, ...(o.filesOnly ? ['--files-only'] : instances(env))];
}

/** With filesOnly: `current` and the state move, no socket (switch.sh --files-only). */
export function switchCommand(env: Environment, release: string, o: Pick<PrepareOptions, 'filesOnly'> = {}): RemoteCommand {
  return script('switch', env, switchArgs(env, release, o), 60);
}

function undoArgs(env: Environment, release: string): string[] {
  return [...site(env), '--release', release, '--grace', String(env.retire.graceSeconds), ...instances(env)];
}

export function undoCommand(env: Environment, release: string): RemoteCommand {
  return script('undo', env, undoArgs(env, release), env.retire.graceSeconds + 60);
}

export interface RetireOptions {
  markBad?: boolean | undefined;
  standby?: boolean | undefined;
  /** A host that runs no app: no standby, no supervisor. */
  filesOnly?: boolean | undefined;
}

function retireArgs(env: Environment, release: string, audit: string, o: RetireOptions = {}): string[] {
  const standby = o.standby && !o.markBad && !o.filesOnly ? env.retire.standbySeconds : 0;
  return [
    ...site(env),
    '--release', release,
    '--grace', String(env.retire.graceSeconds),
    '--drain', String(env.retire.drainSeconds),
    '--drain-mode', env.retire.drain,
    '--keep', String(env.keepReleases),
    '--audit', audit,
    ...(o.markBad ? ['--mark-bad'] : []), // a rollback: what it leaves is never picked again
    ...(standby > 0 ? ['--standby', String(standby)] : []),
    ...(o.filesOnly ? [] : instances(env)),
    ...(env.supervise.enabled && !o.filesOnly ? ['--supervisor', superviseVersion(env)] : []), // says whether it runs
  ];
}

/**
 * The limit covers every wait retire.sh may go through: the old listener's queue (at most grace),
 * with drain 'connections' its open connections (at most drain), then its exit after SIGTERM (at
 * most drain) and after SIGKILL (5 s), with room for the prune.
 */
export function retireCommand(env: Environment, release: string, audit: string, o: RetireOptions = {}): RemoteCommand {
  const { graceSeconds, drainSeconds, drain } = env.retire;
  return script('retire', env, retireArgs(env, release, audit, o), graceSeconds + drainSeconds * (drain === 'connections' ? 2 : 1) + 120);
}

export type SuperviseAction = 'start' | 'stop' | 'status';

/** What a supervisor run is given (supervise.sh), all but --action and --version. */
function superviseArgs(env: Environment): string[] {
  const sv = env.supervise;
  return [
    ...site(env),
    '--health-path', env.app.health.path,
    '--expect-status', String(env.app.health.expectStatus),
    ...healthProtocol(env),
    '--grace', String(env.retire.graceSeconds),
    '--drain', String(env.retire.drainSeconds),
    '--drain-mode', env.retire.drain,
    '--keep', String(env.keepReleases),
    '--interval-ms', String(sv.intervalMs),
    '--health-every', String(Math.max(1, Math.round((sv.healthEverySeconds * 1000) / sv.intervalMs))),
    '--unhealthy', String(sv.unhealthyChecks),
    '--max-restarts', String(sv.maxRestarts),
    ...instances(env),
  ];
}

/** The supervisor's program and options as one hash: a deploy restarts a supervisor of another. */
export function superviseVersion(env: Environment): string {
  return createHash('sha256').update(scriptText('supervise.sh')).update('\0').update(superviseArgs(env).join('\0')).digest('hex').slice(0, 16);
}

/** The site's supervisor on the host (supervise.sh): start it (boot: with the @reboot line), stop it, or say how it is. */
export function superviseCommand(env: Environment, action: SuperviseAction, o: { boot?: boolean } = {}): RemoteCommand {
  const boot = o.boot === undefined ? [] : ['--boot', o.boot ? 'yes' : 'no'];
  return scriptCommand('supervise', 'supervise.sh', ['--action', action, ...superviseArgs(env), '--version', superviseVersion(env), ...boot], 60);
}

export function statusCommand(env: Environment): RemoteCommand {
  return script('status', env, [...site(env), '--health-path', env.app.health.path, '--expect-status', String(env.app.health.expectStatus), ...healthProtocol(env), ...instances(env)], 60);
}

/** Every release of the site on the host, newest first, with its state (releases.sh). */
export function releasesCommand(env: Environment): RemoteCommand {
  return script('releases', env, site(env), 60);
}

export interface DoctorCommandOptions {
  /** Where the host's own nginx answers, seen from the host (its nginx role only): doctor GETs the health path there. */
  nginxUrl?: string;
}

/**
 * Read-only diagnostics (doctor.sh). The login shell's first act reads /proc/uptime: with the
 * shell's start time (its pid's, which the exec keeps) that gives how long the login shell took to
 * start, the cost every SSH command pays. `$sy_up` is the only unquoted word, and it is ours.
 */
export function doctorCommand(env: Environment, o: DoctorCommandOptions = {}): RemoteCommand {
  const args = [
    ...site(env),
    ...(env.socket.group ? ['--socket-group', env.socket.group] : []),
    '--socket-mode', env.socket.mode,
    '--health-path', env.app.health.path,
    '--expect-status', String(env.app.health.expectStatus),
    ...healthProtocol(env),
    ...(o.nginxUrl ? ['--nginx-url', o.nginxUrl] : []),
  ];
  const cmd = scriptCommand('doctor', 'doctor.sh', args, 60);
  return { ...cmd, command: `read -r sy_up _ </proc/uptime; ${cmd.command} --shell-up "$sy_up"` };
}

/** Starts (or reloads) the private nginx under deployTo with the site's config; shown without the config text. */
export function privateNginxCommand(env: Environment): RemoteCommand {
  const prefix = privateNginxPrefix(env);
  const args = ['--prefix', prefix, '--conf', privateNginxConfig(env)];
  return scriptCommand('setup', 'nginx.sh', args, 60, `nginx.sh --prefix ${q(prefix)} --conf <nginx.conf for ${env.site}>`);
}

export function unlockCommand(env: Environment, release?: string): RemoteCommand {
  return script('unlock', env, ['--deploy-to', env.deployTo, ...(release ? ['--release', release] : [])], 60);
}

export interface RunCommandOptions {
  /** Directory to run in (e.g. the staged release); must exist. */
  cwd?: string | undefined;
  env?: Record<string, string>;
  timeoutSeconds?: number;
}

/** A user's own command (migrations, backups): argv only, every word quoted, never a shell string. */
export function runCommand(argv: readonly string[], o: RunCommandOptions = {}): RemoteCommand {
  if (!argv.length) throw new Error('run: empty command');
  // a NUL would cut the word where the server's execve reads it: refused, not silently shortened
  for (const w of [...argv, ...Object.values(o.env ?? {}), o.cwd ?? '']) if (w.includes('\0')) throw new Error('run: a NUL byte cannot be in a command, an env value or a cwd');
  const envWords = Object.entries(o.env ?? {}).map(([k, v]) => {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw new Error(`run: "${k}" is not an environment variable name`);
    return `${k}=${v}`;
  });
  // after NAME=VALUE words, env would take a program named a=b for one more variable
  if (envWords.length && argv[0]!.includes('=')) throw new Error(`run: with env, the program name "${argv[0]}" cannot hold "="`);
  const inner = [...(envWords.length ? ['env', ...envWords] : []), ...argv];
  // `cd -- -` is `cd "$OLDPWD"`; a CDPATH in the login shell would send a relative cwd elsewhere
  const cd = o.cwd ? `CDPATH= cd -- ${q(o.cwd === '-' ? './-' : o.cwd)} && ` : '';
  const seconds = o.timeoutSeconds ?? 600;
  return {
    step: 'run',
    command: `${cd}${timed(seconds, inner)}`,
    display: `${o.cwd ? `(in ${q(o.cwd)}) ` : ''}${words(inner)}`,
    timeoutSeconds: seconds + 15, // the server's `timeout` acts first; this only if it cannot
  };
}
