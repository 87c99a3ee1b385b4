// Every remote command switchyard runs, built as a string by a pure function (as Kamal does), so
// tests can read them exactly and --dry-run can print them. Values from environment files only
// ever appear as single-quoted words.
import fs from 'node:fs';
import path from 'node:path';
import type { Environment } from './environment';

export const REMOTE_SCRIPTS_DIR = path.join(__dirname, '..', 'remote-scripts');

export type Step = 'setup' | 'prepare' | 'switch' | 'undo' | 'retire' | 'status' | 'unlock' | 'run';

export interface RemoteCommand {
  step: Step;
  /** The exact string given to the remote shell. */
  command: string;
  /** The same command for people: the script by name instead of its text. */
  display: string;
  /** The release package goes to this command's stdin. */
  stdinPackage?: boolean;
}

const SAFE = /^[A-Za-z0-9_/.,:=@%+-]+$/;

/** Quotes one word for a POSIX shell. Anything outside a conservative safe set is single-quoted. */
export function q(word: string): string {
  if (SAFE.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

export function words(argv: readonly string[]): string {
  return argv.map(q).join(' ');
}

const cache = new Map<string, string>();
/** lib.sh followed by the script: what `bash -c` runs on the server. */
export function scriptText(name: string, dir = REMOTE_SCRIPTS_DIR): string {
  const key = `${dir}\0${name}`;
  let text = cache.get(key);
  if (text === undefined) {
    text = fs.readFileSync(path.join(dir, 'lib.sh'), 'utf8') + '\n' + fs.readFileSync(path.join(dir, name), 'utf8');
    cache.set(key, text);
  }
  return text;
}

/** `timeout` because ssh has no per-command timeout; -k because a script ignoring TERM must still end. */
function timed(seconds: number, argv: string[]): string {
  return `timeout -k 10 ${Math.ceil(seconds)} ${words(argv)}`;
}

function script(step: Step, env: Environment, args: string[], timeoutSeconds = env.ssh.commandTimeoutSeconds): RemoteCommand {
  const name = `${step}.sh`;
  return {
    step,
    command: timed(timeoutSeconds, ['bash', '-c', scriptText(name), name, ...args]),
    display: `${name} ${words(args)}`,
  };
}

function site(env: Environment): string[] {
  return ['--deploy-to', env.deployTo, '--site', env.site, '--socket-dir', env.socketDir];
}

/** 20261123T154219.123Z-abc1234: sorts by time, the same on every host of a deploy. */
export function newReleaseId(now: Date, gitSha?: string): string {
  const stamp = now.toISOString().replace(/[-:]/g, '');
  const sha = gitSha?.replace(/[^0-9a-f]/gi, '').slice(0, 12);
  return sha ? `${stamp}-${sha}` : stamp;
}

export const RELEASE_ID = /^[0-9]{8}T[0-9]{6}\.[0-9]{3}Z(-[0-9a-f]{1,12})?$/;

export function setupCommand(env: Environment): RemoteCommand {
  return script('setup', env, ['--deploy-to', env.deployTo, '--socket-dir', env.socketDir, ...(env.socket.group ? ['--socket-group', env.socket.group] : [])]);
}

export interface PrepareOptions {
  release: string;
  /** Who holds the lock, shown to anyone refused by it. */
  lockOwner: string;
  /** Start an existing release again (restart, rollback) instead of unpacking a new one. */
  reuse?: boolean;
}

function prepareArgs(env: Environment, o: PrepareOptions): string[] {
  const args = [...site(env), '--release', o.release];
  for (const p of env.shared) args.push('--shared', p);
  for (const [k, v] of Object.entries(env.app.env)) args.push('--env', `${k}=${v}`);
  args.push('--socket-mode', env.socket.mode);
  if (env.socket.group) args.push('--socket-group', env.socket.group);
  args.push(
    '--start-timeout', String(env.app.startTimeoutSeconds),
    '--health-path', env.app.health.path,
    '--health-timeout', String(env.app.health.timeoutSeconds),
    '--expect-status', String(env.app.health.expectStatus),
    '--lock-owner', o.lockOwner,
  );
  if (o.reuse) args.push('--reuse');
  return [...args, '--', ...env.app.start];
}

// Runs before the release exists on the server: unpack stdin into a NEW directory, then hand over
// to the prepare.sh that came inside the package (so scripts and client always agree).
const BOOTSTRAP = [
  'set -euo pipefail',
  'r="$1/releases"; d="$r/$2"; shift 2',
  '[ -d "$r" ] || { echo "::sy error code=3 step=unpack msg=$r is missing: run gulp setup first"; exit 3; }',
  'mkdir -- "$d" 2>/dev/null || { echo "::sy error code=3 step=unpack msg=release directory $d already exists"; exit 3; }',
  'tar -xzf - -C "$d" || { rm -rf -- "$d"; echo "::sy error code=1 step=unpack msg=the package did not unpack"; exit 1; }',
  'exec bash "$d/.switchyard/bin/prepare.sh" "$@"',
].join('\n');

export function prepareCommand(env: Environment, o: PrepareOptions): RemoteCommand {
  const args = prepareArgs(env, o);
  if (o.reuse) return script('prepare', env, args);
  return {
    step: 'prepare',
    command: timed(env.ssh.commandTimeoutSeconds, ['bash', '-c', BOOTSTRAP, 'switchyard-unpack', env.deployTo, o.release, ...args]),
    display: `(unpack package into ${q(path.posix.join(env.deployTo, 'releases', o.release))}) && prepare.sh ${words(args)}`,
    stdinPackage: true,
  };
}

export function switchCommand(env: Environment, release: string): RemoteCommand {
  return script('switch', env, [...site(env), '--release', release], 60);
}

export function undoCommand(env: Environment, release: string): RemoteCommand {
  return script('undo', env, [...site(env), '--release', release, '--grace', String(env.retire.graceSeconds)], env.retire.graceSeconds + 60);
}

export function retireCommand(env: Environment, release: string, audit: string): RemoteCommand {
  const args = [
    ...site(env),
    '--release', release,
    '--grace', String(env.retire.graceSeconds),
    '--drain', String(env.retire.drainSeconds),
    '--keep', String(env.keepReleases),
    '--audit', audit,
  ];
  return script('retire', env, args, env.retire.graceSeconds + env.retire.drainSeconds + 120);
}

export function statusCommand(env: Environment): RemoteCommand {
  return script('status', env, [...site(env), '--health-path', env.app.health.path, '--expect-status', String(env.app.health.expectStatus)], 60);
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
  const envWords = Object.entries(o.env ?? {}).map(([k, v]) => {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw new Error(`run: "${k}" is not an environment variable name`);
    return `${k}=${v}`;
  });
  const inner = [...(envWords.length ? ['env', ...envWords] : []), ...argv];
  const cd = o.cwd ? `cd -- ${q(o.cwd)} && ` : '';
  return {
    step: 'run',
    command: `${cd}${timed(o.timeoutSeconds ?? 600, inner)}`,
    display: `${o.cwd ? `(in ${q(o.cwd)}) ` : ''}${words(inner)}`,
  };
}
