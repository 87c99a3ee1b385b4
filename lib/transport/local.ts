// The same remote commands, run on this machine: the built-in `local` environment.
import { execa } from 'execa';
import { lineSplitter, type ExecOptions, type ExecResult, type Transport, type TransportStats } from './types';

export class LocalTransport implements Transport {
  readonly stats: TransportStats = { connections: 0, executions: 0, bytesUploaded: 0 };
  constructor(readonly host: string) {}

  async connect(): Promise<void> {}

  async exec(command: string, o: ExecOptions = {}): Promise<ExecResult> {
    this.stats.executions++;
    const child = execa('bash', ['-c', command], {
      reject: false,
      stripFinalNewline: false,
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
    return { code: r.exitCode ?? 128, stdout: String(r.stdout ?? ''), stderr: String(r.stderr ?? '') };
  }

  async close(): Promise<void> {}
}
