// Runs the real remote scripts with bash on this machine, against a temp deployTo/socketDir, the
// way the client does: `bash -c '<lib.sh + script>' NAME ARGS…`, prepare with the package on stdin,
// under `timeout -k 5 T`, which TERMs them as the client does at its time limit. No mocks.
import { execa } from 'execa';
import { execFileSync } from 'node:child_process';
import { afterEach, beforeEach } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { scriptText as clientScriptText } from '../../lib/remote/commands';
import { parseResultLines, type ResultLine } from '../../lib/remote/protocol';

export const REPO = fileURLToPath(new URL('../..', import.meta.url));
export const SCRIPTS_DIR = path.join(REPO, 'remote-scripts');
export const HELLO_DIR = path.join(REPO, 'examples', 'hello');
export const SITE = 'hello.test';

/** Absolute path of a program on PATH (tests may run scripts with a reduced PATH). */
export function which(name: string): string {
  for (const dir of (process.env.PATH ?? '/usr/bin:/bin').split(':')) {
    const p = path.join(dir, name);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      // next
    }
  }
  throw new Error(`${name} is not installed`);
}

const BASH = which('bash');
const TIMEOUT = which('timeout');

export interface ScriptResult {
  code: number;
  stdout: string;
  stderr: string;
  lines: ResultLine[];
}

export interface RunOptions {
  /** Seconds before `timeout` kills the script (default 60). */
  timeout?: number;
  /** Replaces PATH for the script. */
  path?: string;
  cwd?: string;
  /** Sent to stdin (then EOF), as the client sends the package to prepare. */
  inputFile?: string;
}

/** lib.sh + script: the client's own text (lib/remote/commands.ts). */
export function scriptText(name: string): string {
  return clientScriptText(`${name}.sh`, SCRIPTS_DIR);
}

async function run(argv: string[], o: RunOptions = {}): Promise<ScriptResult> {
  const r = await execa(TIMEOUT, ['-k', '5', String(o.timeout ?? 60), ...argv], {
    reject: false,
    stripFinalNewline: false,
    cwd: o.cwd ?? os.tmpdir(),
    env: o.path ? { PATH: o.path } : {},
    // Like an SSH exec: stdin stays open, so a script that reads it would hang (and time out).
    ...(o.inputFile ? { inputFile: o.inputFile } : { stdin: 'pipe' as const }),
  });
  const stdout = String(r.stdout ?? '');
  return { code: r.exitCode ?? -1, stdout, stderr: String(r.stderr ?? ''), lines: parseResultLines(stdout) };
}

/** Runs remote-scripts/NAME.sh the client's way: bash -c '<lib.sh + script>' NAME.sh ARGS… */
export function runScript(name: string, args: readonly string[], o: RunOptions = {}): Promise<ScriptResult> {
  return run([BASH, '-c', scriptText(name), `${name}.sh`, ...args], o);
}

/** Runs a script file standalone: bash FILE ARGS… */
export function runFile(file: string, args: readonly string[], o: RunOptions = {}): Promise<ScriptResult> {
  return run([BASH, file, ...args], o);
}

export function find(r: ScriptResult, event: string): ResultLine | undefined {
  return r.lines.find((l) => l.event === event);
}

export function all(r: ScriptResult, event: string): ResultLine[] {
  return r.lines.filter((l) => l.event === event);
}

/** The script's output, for failure messages. */
export function show(r: ScriptResult): string {
  return `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
}

/** State (field 3) and start time (field 22) of a process, parsed after the last `)`. */
export function procStat(pid: number): { state: string; pgrp: number; starttime: string } | undefined {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  const w = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { state: w[0] ?? '', pgrp: Number(w[2]), starttime: w[19] ?? '' };
}

/** The process runs (not a zombie) and, when given, has this start time (pids are reused). */
export function alive(pid: number, starttime?: string): boolean {
  const s = procStat(pid);
  return !!s && s.state !== 'Z' && s.state !== 'X' && (starttime === undefined || s.starttime === starttime);
}

export async function waitFor(cond: () => boolean, ms = 5000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return cond();
}

export interface HttpResult {
  /** 0 when no HTTP answer (connection refused, socket missing…). */
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** GET path over a unix socket with curl, Host: SITE. */
export async function get(socket: string, urlPath = '/', maxTime = 5): Promise<HttpResult> {
  const r = await execa('curl', ['-s', '-i', '--max-time', String(maxTime), '--unix-socket', socket, '-H', `Host: ${SITE}`, `http://localhost${urlPath}`], {
    reject: false,
    stripFinalNewline: false,
  });
  const out = String(r.stdout ?? '');
  if (r.exitCode !== 0 || !out.startsWith('HTTP/')) return { status: 0, headers: {}, body: '' };
  const split = out.indexOf('\r\n\r\n');
  const head = out.slice(0, split).split('\r\n');
  const headers: Record<string, string> = {};
  for (const h of head.slice(1)) {
    const i = h.indexOf(':');
    headers[h.slice(0, i).toLowerCase()] = h.slice(i + 1).trim();
  }
  return { status: Number(head[0]?.split(' ')[1]), headers, body: out.slice(split + 4) };
}

export interface PrepareOptions {
  env?: Record<string, string>;
  /** More prepare options, e.g. ['--shared', 'logs']. */
  args?: string[];
  reuse?: boolean;
  /** The app command (default: node server.js --socket {socket}). */
  cmd?: string[];
}

/** One fake host: deployTo and socketDir in a short temp dir. */
export class ScriptLab {
  readonly deployTo: string;
  readonly socketDir: string;
  /** pid → start time of every process a test started here (a pid alone may be reused). */
  private pids = new Map<number, string>();

  private constructor(readonly root: string) {
    this.deployTo = path.join(root, 'd');
    this.socketDir = path.join(root, 's');
  }

  /** mkdtemp under os.tmpdir(): short paths, as unix socket paths must stay under 108 bytes. */
  static create(): ScriptLab {
    return new ScriptLab(fs.mkdtempSync(path.join(os.tmpdir(), 'sy-')));
  }

  get liveSock(): string {
    return path.join(this.socketDir, `SOCK-${SITE}`);
  }
  get prevSock(): string {
    return `${this.liveSock}.prev`;
  }
  stageSock(release: string): string {
    return `${this.liveSock}-${release}`;
  }
  releaseDir(release: string): string {
    return path.join(this.deployTo, 'releases', release);
  }
  stateFile(name: 'live' | 'previous' | 'audit.log' | 'lock/owner'): string {
    return path.join(this.deployTo, '.switchyard', name);
  }
  /** Contents of a state file (trimmed), or undefined when it does not exist. */
  state(name: 'live' | 'previous' | 'audit.log' | 'lock/owner'): string | undefined {
    try {
      return fs.readFileSync(this.stateFile(name), 'utf8').trim();
    } catch {
      return undefined;
    }
  }
  pidFile(release: string): { pid: number; starttime: string } | undefined {
    try {
      const [pid, starttime] = fs.readFileSync(path.join(this.releaseDir(release), '.switchyard', 'pid'), 'utf8').trim().split(' ');
      return { pid: Number(pid), starttime: starttime ?? '' };
    } catch {
      return undefined;
    }
  }
  lockHeld(): boolean {
    return fs.existsSync(path.join(this.deployTo, '.switchyard', 'lock'));
  }

  siteArgs(release?: string): string[] {
    return ['--deploy-to', this.deployTo, '--site', SITE, '--socket-dir', this.socketDir, ...(release ? ['--release', release] : [])];
  }

  run(name: string, args: readonly string[], o?: RunOptions): Promise<ScriptResult> {
    return runScript(name, args, o);
  }

  async setup(): Promise<void> {
    const r = await this.run('setup', ['--deploy-to', this.deployTo, '--socket-dir', this.socketDir]);
    if (r.code !== 0) throw new Error(`setup failed: ${show(r)}`);
  }

  /** A release directory as a prepare would unpack it, for tests that need one without a prepare. */
  unpack(release: string): string {
    const dir = this.releaseDir(release);
    fs.mkdirSync(dir);
    fs.cpSync(HELLO_DIR, dir, { recursive: true });
    fs.mkdirSync(path.join(dir, '.switchyard'), { recursive: true });
    return dir;
  }

  /** The example app as a release package (.tar.gz), what the client streams into prepare. */
  get packageFile(): string {
    const file = path.join(this.root, 'package.tar.gz');
    if (!fs.existsSync(file)) execFileSync('tar', ['-czf', file, '-C', HELLO_DIR, '.']);
    return file;
  }

  prepareArgs(release: string, o: PrepareOptions = {}): string[] {
    const args = [...this.siteArgs(release), '--start-timeout', '10', '--health-timeout', '5', '--lock-owner', `test ${release}`];
    for (const [k, v] of Object.entries(o.env ?? {})) args.push('--env', `${k}=${v}`);
    args.push(...(o.args ?? []));
    if (o.reuse) args.push('--reuse');
    return [...args, '--', ...(o.cmd ?? ['node', 'server.js', '--socket', '{socket}'])];
  }

  /**
   * prepare as a deploy runs it: the package on stdin, or with reuse nothing. Remembers the started
   * pid for teardown.
   */
  async prepare(release: string, o: PrepareOptions = {}, run: RunOptions = {}): Promise<ScriptResult> {
    const args = this.prepareArgs(release, o);
    const r = await this.run('prepare', args, o.reuse ? run : { inputFile: this.packageFile, ...run });
    const prepared = find(r, 'prepared');
    if (prepared) this.track(Number(prepared.fields.pid), prepared.fields.starttime ?? '');
    return r;
  }

  /** prepare + switch + retire: release R is live and the lock is free. */
  async deploy(release: string, o: PrepareOptions = {}): Promise<{ pid: number; starttime: string }> {
    for (const r of [
      await this.prepare(release, o),
      await this.run('switch', this.siteArgs(release)),
      await this.run('retire', [...this.siteArgs(release), '--grace', '0.1', '--drain', '5']),
    ]) {
      if (r.code !== 0) throw new Error(`deploy of ${release} failed: ${show(r)}`);
    }
    const p = this.pidFile(release);
    if (!p) throw new Error(`no pid file for ${release}`);
    return p;
  }

  /** Live (non-zombie) processes whose working directory is inside this lab: what it started. */
  processes(): number[] {
    const out: number[] = [];
    for (const d of fs.readdirSync('/proc')) {
      if (!/^\d+$/.test(d)) continue;
      try {
        if (fs.readlinkSync(`/proc/${d}/cwd`).startsWith(this.root + '/') && alive(Number(d))) out.push(Number(d));
      } catch {
        // gone, or not ours
      }
    }
    return out;
  }

  track(pid: number, starttime: string): void {
    if (pid > 0) this.pids.set(pid, starttime);
  }

  /** Kills (by pid, start time checked) every process this lab started, then removes the temp dir. */
  async cleanup(): Promise<void> {
    const pids = new Map(this.pids);
    for (const pid of this.processes()) pids.set(pid, procStat(pid)?.starttime ?? '');
    for (const [pid, starttime] of pids) {
      if (!alive(pid, starttime)) continue;
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await waitFor(() => [...pids].every(([p, st]) => !alive(p, st)), 3000);
    fs.rmSync(this.root, { recursive: true, force: true });
  }
}

/** A fresh, set-up ScriptLab for every test of the calling file, cleaned up after each: call `lab()` inside tests. */
export function useScriptLab(): () => ScriptLab {
  let lab: ScriptLab | undefined;
  beforeEach(async () => {
    lab = ScriptLab.create();
    await lab.setup();
  });
  afterEach(async () => {
    await lab?.cleanup();
  });
  return () => lab!;
}
