// A task's working set: the environment, the selected hosts, one connection per host (opened on
// first use, reused by every step), parallelism limits, and the output.
import { Readable } from 'node:stream';
import type pLimit from 'p-limit';
import { lazy } from '../lazy';

const pLimitModule = lazy(() => (require('p-limit') as { default: typeof pLimit }).default);
import { runCommand, type RemoteCommand, type RunCommandOptions } from './commands';
import { forHost, type Environment, type HostConfig } from '../environment';
import { primaryHost } from '../environment/hosts';
import { SwitchyardError } from '../errors';
import { parseResultLines, type ResultLine } from './protocol';
import { failureOf, ReleaseConversation, type Conversation, type ConversationDeps } from './conversation';
import type { Reporter } from '../output/reporter';
import { transportsFor, type Transport } from './transport';

export type { Conversation } from './conversation';

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
    this.limit = pLimitModule()(options.parallel ?? env.parallel ?? Math.max(1, hosts.length));
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
  converse(host: string, cmd: RemoteCommand, o: Pick<ConversationDeps, 'upload'> = {}): Conversation {
    return new ReleaseConversation(host, cmd, {
      reporter: this.reporter,
      exec: (command, options) => this.transport(host).exec(command, options),
      show: (line, stream, tail) => this.show(host, line, stream, tail),
      ...o,
    });
  }

  /** A line of human text from a command: shown with its host, and kept in tail for error messages. */
  private show(host: string, line: string, stream: 'stdout' | 'stderr', tail: string[]): void {
    tail.push(line);
    if (tail.length > 20) tail.shift();
    this.reporter.log(stream === 'stderr' ? 'warn' : 'info', line, host);
  }

  /** Runs one remote command on one host; never throws for a non-zero exit, only for a lost host. */
  async exec(host: string, cmd: RemoteCommand, o: { readOnly?: boolean } = {}): Promise<StepResult> {
    const started = Date.now();
    if (this.options.dryRun && !o.readOnly) {
      this.reporter.log('info', `would run: ${cmd.display}`, host);
      return { host, step: cmd.step, ok: true, code: 0, events: [], stdout: '', seconds: 0 };
    }
    this.reporter.log('debug', `${cmd.step}: ${cmd.display}`, host);
    const tail: string[] = [];
    if (cmd.stdinPackage) throw new Error(`${cmd.step}: the package goes only through a conversation (converse)`);
    const envBlock = cmd.stdinEnv?.();
    const stdin = envBlock?.length ? () => Readable.from([envBlock]) : undefined;
    const r = await this.transport(host).exec(cmd.command, {
      ...(stdin ? { stdin } : {}),
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

export function field(r: StepResult, event: string, key: string): string | undefined {
  return r.events.find((e) => e.event === event)?.fields[key];
}
