// Commands on a server over one SSH connection, reused for every step of a task.
import fs from 'node:fs';
import { Readable, Transform } from 'node:stream';
import { NodeSSH } from 'node-ssh';
import { SwitchyardError } from '../errors';
import { describeVerdict, knownKeyAlgorithms, parseKnownHosts, verifyHostKey, type HostKeyVerdict, type KnownHostEntry } from './known-hosts';
import type { SshTarget } from './ssh-options';
import { lineSplitter, type ExecOptions, type ExecResult, type Transport, type TransportStats } from './types';

function readKnownHosts(files: string[]): KnownHostEntry[] {
  return files.flatMap((f) => (fs.existsSync(f) ? parseKnownHosts(fs.readFileSync(f, 'utf8'), f) : []));
}

export class SshTransport implements Transport {
  readonly stats: TransportStats = { connections: 0, executions: 0, bytesUploaded: 0 };
  private ssh = new NodeSSH();
  private connecting?: Promise<void>;

  constructor(readonly target: SshTarget) {}

  get host(): string {
    return this.target.name;
  }

  private where(): string {
    return `${this.target.name} (${this.target.user}@${this.target.hostname}:${this.target.port})`;
  }

  connect(): Promise<void> {
    this.connecting ??= this.open();
    return this.connecting;
  }

  private async open(): Promise<void> {
    const t = this.target;
    const entries = readKnownHosts(t.knownHostsFiles);
    let refused: Exclude<HostKeyVerdict, { ok: true }> | undefined;
    let privateKey: string | undefined;
    const keyFile = t.identityFiles.find((f) => fs.existsSync(f));
    if (keyFile) privateKey = fs.readFileSync(keyFile, 'utf8');
    const algorithms = knownKeyAlgorithms(entries, t.hostname, t.port);
    try {
      await this.ssh.connect({
        host: t.hostname,
        port: t.port,
        username: t.user,
        ...(privateKey ? { privateKey } : {}),
        ...(t.passphrase !== undefined ? { passphrase: t.passphrase } : {}),
        ...(t.agent ? { agent: t.agent } : {}),
        readyTimeout: t.connectTimeoutMs,
        keepaliveInterval: t.keepaliveIntervalMs,
        keepaliveCountMax: 3,
        ...(algorithms.length ? { algorithms: { serverHostKey: algorithms as never } } : {}),
        hostVerifier: (key: Buffer) => {
          const v = verifyHostKey(entries, t.hostname, t.port, key);
          if (!v.ok) refused = v;
          return v.ok;
        },
      });
    } catch (e) {
      this.connecting = undefined;
      if (refused) {
        throw new SwitchyardError(`host ${this.where()}: ${describeVerdict(refused, { host: t.hostname, port: t.port, files: t.knownHostsFiles })}`, {
          host: t.name,
          cause: e,
        });
      }
      const err = e as NodeJS.ErrnoException & { level?: string };
      const why = err.level === 'client-authentication' ? `authentication failed (key ${keyFile ?? 'none'}${t.agent ? ', ssh-agent' : ''})` : err.code ?? err.message;
      throw new SwitchyardError(`host ${this.where()}: cannot connect: ${why}`, { host: t.name, cause: e });
    }
    this.stats.connections++;
  }

  async exec(command: string, o: ExecOptions = {}): Promise<ExecResult> {
    await this.connect();
    this.stats.executions++;
    const out = lineSplitter((l) => o.onLine?.(l, 'stdout'));
    const err = lineSplitter((l) => o.onLine?.(l, 'stderr'));
    let stdin: string | Readable | undefined;
    if (typeof o.stdin === 'string') {
      stdin = o.stdin;
      this.stats.bytesUploaded += Buffer.byteLength(o.stdin);
    } else if (o.stdin) {
      // Binary data must stay a stream (node-ssh writes strings as utf8). The Transform counts
      // what actually goes over the wire and is the PassThrough node-ssh needs to pipe from.
      const counter = new Transform({
        transform: (chunk: Buffer, _enc, cb) => {
          this.stats.bytesUploaded += chunk.length;
          cb(null, chunk);
        },
      });
      const buf = o.stdin;
      stdin = (Buffer.isBuffer(buf) ? Readable.from([buf]) : buf()).pipe(counter);
    }
    try {
      const r = await this.ssh.execCommand(command, {
        ...(stdin !== undefined ? { stdin } : {}),
        noTrim: true,
        onStdout: (c) => out.push(c),
        onStderr: (c) => err.push(c),
      });
      out.end();
      err.end();
      return { code: r.code ?? (r.signal ? 128 : 255), stdout: r.stdout, stderr: r.stderr };
    } catch (e) {
      throw new SwitchyardError(`host ${this.where()}: connection lost: ${(e as Error).message}`, { host: this.target.name, cause: e });
    }
  }

  async close(): Promise<void> {
    // A reset arriving after we are done must not crash the process as an unhandled 'error'.
    this.ssh.connection?.on('error', () => undefined);
    this.ssh.dispose();
    this.connecting = undefined;
  }
}
