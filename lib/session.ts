// A task's working set: the environment, the selected hosts, one connection per host (opened on
// first use, reused by every step), parallelism limits, and the output.
import fs from 'node:fs';
import pLimit from 'p-limit';
import type { RemoteCommand } from './commands';
import type { Environment, HostConfig } from './environment';
import { SwitchyardError } from './errors';
import { parseResultLines, type ResultLine } from './protocol';
import type { Reporter } from './reporter';
import { transportsFor, type Transport } from './transport';

export interface StepResult {
  host: string;
  step: string;
  ok: boolean;
  code: number;
  /** The `::sy` result lines the script printed. */
  events: ResultLine[];
  /** The script's own explanation (its `::sy error` line), or the last output lines. */
  error?: string;
  seconds: number;
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

  transport(host: string): Transport {
    const t = this.transports.get(host);
    if (!t) throw new SwitchyardError(`no connection for host ${host}`);
    return t;
  }

  /** Runs one remote command on one host; never throws for a non-zero exit, only for a lost host. */
  async exec(host: string, cmd: RemoteCommand, o: { packageFile?: string } = {}): Promise<StepResult> {
    const started = Date.now();
    if (this.options.dryRun) {
      this.reporter.log('info', `would run: ${cmd.display}`, host);
      return { host, step: cmd.step, ok: true, code: 0, events: [], seconds: 0 };
    }
    this.reporter.log('debug', `${cmd.step}: ${cmd.display}`, host);
    const tail: string[] = [];
    const file = o.packageFile;
    const r = await this.transport(host).exec(cmd.command, {
      ...(cmd.stdinPackage && file ? { stdin: () => fs.createReadStream(file) } : {}),
      onLine: (line, stream) => {
        if (line.startsWith('::sy ')) {
          this.reporter.log('debug', line, host);
          return;
        }
        tail.push(line);
        if (tail.length > 20) tail.shift();
        this.reporter.log(stream === 'stderr' ? 'warn' : 'info', line, host);
      },
    });
    const events = parseResultLines(r.stdout);
    const err = events.find((e) => e.event === 'error');
    const result: StepResult = { host, step: cmd.step, ok: r.code === 0, code: r.code, events, seconds: (Date.now() - started) / 1000 };
    if (!result.ok) {
      result.error =
        err?.msg ??
        (r.code === 124 || r.code === 137 ? `${cmd.step} timed out on the server` : tail.slice(-5).join(' | ') || `${cmd.step} exited with code ${r.code}`);
    }
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

  /** Opens every connection up front: an unreachable host or a bad host key fails the task before anything changes. */
  async connectAll(hosts: readonly HostConfig[] = this.hosts): Promise<void> {
    if (this.options.dryRun) return;
    const results = await this.each(hosts, (h) => this.transport(h.name).connect());
    const failed = results.filter((r) => r.error);
    if (failed.length) {
      throw new SwitchyardError(failed.map((f) => f.error!.message).join('\n'), { host: failed[0]!.host.name });
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.transports.values()].map((t) => t.close().catch(() => undefined)));
  }
}

export function field(r: StepResult, event: string, key: string): string | undefined {
  return r.events.find((e) => e.event === event)?.fields[key];
}
