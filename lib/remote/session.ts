// A task's working set: the environment, the selected hosts, one connection per host (opened on
// first use, reused by every step), parallelism limits, and the output.
import fs from 'node:fs';
import { PassThrough } from 'node:stream';
import pLimit from 'p-limit';
import { runCommand, type RemoteCommand, type RunCommandOptions } from './commands';
import { forHost, type Environment, type HostConfig } from '../environment';
import { primaryHost } from '../environment/hosts';
import { SwitchyardError } from '../errors';
import { parseResultLine, parseResultLines, type ResultLine } from './protocol';
import type { Reporter } from '../output/reporter';
import { transportsFor, type ExecResult, type Transport } from './transport';

export interface StepResult {
  host: string;
  step: string;
  ok: boolean;
  code: number;
  /** The `::sy` result lines the script printed. */
  events: ResultLine[];
  /** The script's own explanation (its `::sy error` line), or the last output lines. */
  error?: string;
  /** Everything the command printed on stdout (for your own commands' output). */
  stdout: string;
  seconds: number;
}

/**
 * One exec that the client talks to (release.sh): it prints `::sy ready step=…` and waits for the
 * next word on its stdin. Each step's result holds only the lines printed during that step.
 */
export interface Conversation {
  /**
   * Resolves when the command says it is ready (ok), or ends (its exit code says how). A step
   * that takes longer than timeoutSeconds ends the command (TERM, then KILL).
   */
  untilReady(step: string, timeoutSeconds: number): Promise<StepResult>;
  /** Writes the word and resolves as untilReady, or when the command ends (last: stdin is closed after). */
  say(word: string, step: string, timeoutSeconds: number, last?: boolean): Promise<StepResult>;
  /** Closes stdin: a command still waiting for a word ends. */
  end(): void;
  /** The command has ended. */
  readonly ended: boolean;
}

export interface RunTarget {
  role?: string;
  /** true: only the role's primary; false: every host of the role but the primary. */
  primary?: boolean;
  hosts?: string[];
}

export interface RunOptions extends Omit<RunCommandOptions, 'cwd'> {
  /** A directory, or one per host (e.g. h => session.releaseDir(h, ctx.release) in a hook). */
  cwd?: string | ((h: HostConfig) => string);
}

export interface SessionOptions {
  /** At most this many hosts at once; default all. */
  parallel?: number;
  /** Print what would run, run nothing. */
  dryRun?: boolean;
}

export class Session {
  readonly transports: Map<string, Transport>;
  private limit: ReturnType<typeof pLimit>;

  constructor(
    readonly env: Environment,
    readonly hosts: HostConfig[],
    readonly reporter: Reporter,
    readonly options: SessionOptions = {},
    transports?: Map<string, Transport>,
  ) {
    this.transports = transports ?? transportsFor(env, hosts);
    this.limit = pLimit(options.parallel ?? env.parallel ?? Math.max(1, hosts.length));
  }

  /** The host's connection; hosts outside the selection (a db primary for a hook, say) get one on first use. */
  transport(host: string): Transport {
    let t = this.transports.get(host);
    if (!t) {
      const h = this.env.hosts.find((x) => x.name === host);
      if (!h) throw new SwitchyardError(`no host named ${host} in ${this.env.file}`);
      t = transportsFor(this.env, [h]).get(host)!;
      this.transports.set(host, t);
    }
    return t;
  }

  /**
   * Runs a command of your own (argv, each word quoted) on the hosts a selector picks, with the same
   * connections, logging and limits as the built-in steps. Throws naming every host it failed on.
   *   session.run({ role: 'db', primary: true }, ['node', 'migrate.js'], { cwd: session.releaseDir(h, release) })
   */
  async run(sel: RunTarget, argv: readonly string[], o: RunOptions = {}): Promise<StepResult[]> {
    const hosts = this.pick(sel);
    return this.eachOrThrow(hosts, async (h) => {
      const cwd = typeof o.cwd === 'function' ? o.cwd(h) : o.cwd;
      const r = await this.exec(h.name, runCommand(argv, { ...o, cwd }));
      if (!r.ok) throw new SwitchyardError(`${h.name}: \`${argv.join(' ')}\` failed (exit ${r.code}): ${r.error}`, { host: h.name });
      return r;
    });
  }

  /** Hosts for a selector: the primary of a role, its other hosts, or named hosts. */
  pick(sel: RunTarget): HostConfig[] {
    if (sel.hosts?.length) {
      const unknown = sel.hosts.filter((n) => !this.env.hosts.some((h) => h.name === n));
      if (unknown.length) throw new SwitchyardError(`unknown host ${unknown.join(', ')} in ${this.env.file}`);
      return this.env.hosts.filter((h) => sel.hosts!.includes(h.name));
    }
    if (!sel.role) throw new SwitchyardError('run: say which hosts: { role } or { hosts }');
    const primary = primaryHost(this.env, sel.role);
    if (sel.primary === true) return [primary];
    const all = this.env.hosts.filter((h) => h.roles.includes(sel.role!));
    return sel.primary === false ? all.filter((h) => h !== primary) : all;
  }

  /** Where release R lives on a host. */
  releaseDir(h: HostConfig, release: string): string {
    return `${forHost(this.env, h).deployTo}/releases/${release}`;
  }

  /**
   * Starts a command to talk to (see Conversation): the package first on its stdin, if any, then
   * the words the caller says. Like exec, a lost host rejects the pending step.
   */
  converse(host: string, cmd: RemoteCommand, o: { packageFile?: string } = {}): Conversation {
    this.reporter.log('debug', `${cmd.step}: one exec for every step: ${cmd.display}`, host);
    const stdin = new PassThrough();
    if (cmd.stdinPackage && o.packageFile) fs.createReadStream(o.packageFile).on('error', (e) => stdin.destroy(e)).pipe(stdin, { end: false });
    let events: ResultLine[] = [];
    let out: string[] = [];
    const tail: string[] = [];
    let stepStarted = Date.now();
    let step = cmd.step as string;
    let waiter: { resolve: (r: StepResult) => void; reject: (e: Error) => void } | undefined;
    let ended = false;
    let early: StepResult | undefined;
    let limit = cmd.timeoutSeconds;
    let timer: NodeJS.Timeout | undefined;
    const stop = new AbortController();
    const take = (): StepResult => {
      const r: StepResult = { host, step, ok: true, code: 0, events, stdout: out.join(''), seconds: (Date.now() - stepStarted) / 1000 };
      events = [];
      out = [];
      return r;
    };
    const done = this.transport(host)
      .exec(cmd.command, {
        stdin: () => stdin,
        // No limit for the whole exec: it waits between steps for the other hosts, as long as
        // they take; each step has its own limit (untilReady/say), and the waits are the client's.
        stop: stop.signal,
        onLine: (line, stream) => {
          if (stream === 'stdout') out.push(`${line}\n`);
          const ev = stream === 'stdout' ? parseResultLine(line) : undefined;
          if (ev) {
            this.reporter.log('debug', line, host);
            if (ev.event === 'ready') {
              clearTimeout(timer);
              const w = waiter;
              waiter = undefined;
              if (w) w.resolve(take());
              else early = take(); // nobody asked yet: kept for the next wait
              return;
            }
            events.push(ev);
            return;
          }
          this.show(host, line, stream, tail);
        },
      })
      .then(
        (r) => {
          ended = true;
          clearTimeout(timer);
          const result = take();
          result.ok = r.code === 0;
          result.code = r.code;
          if (!result.ok) result.error = failureOf(result, r, step, limit, tail);
          waiter?.resolve(result);
          waiter = undefined;
          return result;
        },
        (e: Error) => {
          ended = true;
          clearTimeout(timer);
          waiter?.reject(e);
          waiter = undefined;
          throw e;
        },
      );
    done.catch(() => undefined); // a lost host is reported through the pending step
    const wait = (name: string, seconds: number): Promise<StepResult> => {
      if (early) {
        const r = { ...early, step: name };
        early = undefined;
        return Promise.resolve(r);
      }
      step = name;
      stepStarted = Date.now();
      if (ended) return done.then((r) => ({ ...r, step: name }));
      limit = seconds;
      timer = setTimeout(() => stop.abort(), seconds * 1000);
      return new Promise<StepResult>((resolve, reject) => (waiter = { resolve, reject }));
    };
    return {
      untilReady: (name, seconds) => wait(name, seconds),
      say: (word, name, seconds, isLast = false) => {
        const p = wait(name, seconds);
        if (!ended) {
          stdin.write(`${word}\n`);
          if (isLast) stdin.end();
        }
        return p;
      },
      end: () => {
        if (!stdin.writableEnded) stdin.end();
      },
      get ended() {
        return ended;
      },
    };
  }

  /** A line of human text from a command: shown with its host, and kept in tail for error messages. */
  private show(host: string, line: string, stream: 'stdout' | 'stderr', tail: string[]): void {
    tail.push(line);
    if (tail.length > 20) tail.shift();
    this.reporter.log(stream === 'stderr' ? 'warn' : 'info', line, host);
  }

  /** Runs one remote command on one host; never throws for a non-zero exit, only for a lost host. */
  async exec(host: string, cmd: RemoteCommand, o: { packageFile?: string; readOnly?: boolean } = {}): Promise<StepResult> {
    const started = Date.now();
    if (this.options.dryRun && !o.readOnly) {
      this.reporter.log('info', `would run: ${cmd.display}`, host);
      return { host, step: cmd.step, ok: true, code: 0, events: [], stdout: '', seconds: 0 };
    }
    this.reporter.log('debug', `${cmd.step}: ${cmd.display}`, host);
    const tail: string[] = [];
    const file = o.packageFile;
    const r = await this.transport(host).exec(cmd.command, {
      ...(cmd.stdinPackage && file ? { stdin: () => fs.createReadStream(file) } : {}),
      timeoutSeconds: cmd.timeoutSeconds,
      onLine: (line, stream) => {
        if (line.startsWith('::sy ')) this.reporter.log('debug', line, host);
        else this.show(host, line, stream, tail);
      },
    });
    const events = parseResultLines(r.stdout);
    const result: StepResult = { host, step: cmd.step, ok: r.code === 0, code: r.code, events, stdout: r.stdout, seconds: (Date.now() - started) / 1000 };
    if (!result.ok) result.error = failureOf(result, r, cmd.step, cmd.timeoutSeconds, tail);
    return result;
  }

  /** Runs fn for every host, at most `parallel` at once; collects failures instead of stopping at the first. */
  async each<T>(hosts: readonly HostConfig[], fn: (h: HostConfig) => Promise<T>): Promise<{ host: HostConfig; value?: T; error?: Error }[]> {
    return Promise.all(
      hosts.map((h) =>
        this.limit(async () => {
          try {
            return { host: h, value: await fn(h) };
          } catch (e) {
            return { host: h, error: e as Error };
          }
        }),
      ),
    );
  }

  /** Like each(), but throws one error naming every host that failed; else the values in host order. */
  async eachOrThrow<T>(hosts: readonly HostConfig[], fn: (h: HostConfig) => Promise<T>): Promise<T[]> {
    const results = await this.each(hosts, fn);
    const failed = results.filter((r) => r.error);
    if (failed.length) throw new SwitchyardError(failed.map((f) => f.error!.message).join('\n'), { host: failed[0]!.host.name });
    return results.map((r) => r.value as T);
  }

  /** Opens every connection up front: an unreachable host or a bad host key fails the task before anything changes. */
  async connectAll(hosts: readonly HostConfig[] = this.hosts): Promise<void> {
    if (this.options.dryRun) return;
    await this.eachOrThrow(hosts, (h) => this.transport(h.name).connect());
  }

  async close(): Promise<void> {
    await Promise.all([...this.transports.values()].map((t) => t.close().catch(() => undefined)));
  }
}

/** Why a command failed: its own `::sy error` line, a timeout, or its last lines of output. */
function failureOf(result: StepResult, r: ExecResult, step: string, timeoutSeconds: number, tail: string[]): string {
  const err = result.events.find((e) => e.event === 'error');
  if (err?.msg) return err.msg;
  if (r.timedOut) return `${step} timed out after ${timeoutSeconds}s`;
  if (r.code === 124 || r.code === 137) return `${step} timed out on the server`;
  return tail.slice(-5).join(' | ') || `${step} exited with code ${r.code}`;
}

export function field(r: StepResult, event: string, key: string): string | undefined {
  return r.events.find((e) => e.event === event)?.fields[key];
}
