// The same remote commands, run on this machine: the built-in `local` environment.
import { lazy } from '../../lazy';

const execaModule = lazy(() => require('execa') as typeof import('execa'));
import { KILL_AFTER_MS, lineSplitter, TIMED_OUT, type ExecOptions, type ExecResult, type Transport, type TransportStats } from './types';

export class LocalTransport implements Transport {
  readonly stats: TransportStats = { connections: 0, executions: 0, bytesUploaded: 0 };
  constructor(readonly host: string) {}

  async connect(): Promise<void> {}

  async exec(command: string, o: ExecOptions = {}): Promise<ExecResult> {
    this.stats.executions++;
    const child = execaModule().execa('bash', ['-c', command], {
      reject: false,
      stripFinalNewline: false,
      killSignal: 'SIGTERM' as const,
      forceKillAfterDelay: o.killAfterMs ?? KILL_AFTER_MS,
      ...(o.timeoutSeconds ? { timeout: o.timeoutSeconds * 1000 } : {}),
      ...(o.stop ? { cancelSignal: o.stop } : {}),
      ...(o.stdin === undefined ? { stdin: 'ignore' as const } : typeof o.stdin === 'function' ? { stdin: 'pipe' as const } : { input: o.stdin }),
    });
    if (typeof o.stdin === 'function') {
      const src = o.stdin();
      src.on('data', (c: Buffer) => (this.stats.bytesUploaded += c.length));
      src.pipe(child.stdin!);
    } else if (o.stdin !== undefined) {
      this.stats.bytesUploaded += Buffer.byteLength(o.stdin);
    }
    const out = lineSplitter((l) => o.onLine?.(l, 'stdout'));
    const err = lineSplitter((l) => o.onLine?.(l, 'stderr'));
    child.stdout?.on('data', (c: Buffer) => out.push(c));
    child.stderr?.on('data', (c: Buffer) => err.push(c));
    const r = await child;
    out.end();
    err.end();
    const stdout = String(r.stdout ?? '');
    const stderr = String(r.stderr ?? '');
    if (r.timedOut) return { code: TIMED_OUT, stdout, stderr: `${stderr}timed out after ${o.timeoutSeconds}s\n`, timedOut: true };
    if (r.isCanceled) return { code: TIMED_OUT, stdout, stderr: `${stderr}timed out\n`, timedOut: true };
    return { code: r.exitCode ?? 128, stdout, stderr };
  }

  async close(): Promise<void> {}
}
