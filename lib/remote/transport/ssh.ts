// Commands on a server over one SSH connection, reused for every step of a task.
import fs from 'node:fs';
import type { Socket } from 'node:net';
import { Readable, Transform } from 'node:stream';
import type { NodeSSH } from 'node-ssh';
import { lazy } from '../../lazy';

const nodeSsh = lazy(() => require('node-ssh') as typeof import('node-ssh'));
import { SwitchyardError } from '../../errors';
import { describeVerdict, knownKeyAlgorithms, parseKnownHosts, verifyHostKey, type HostKeyVerdict, type KnownHostEntry } from './known-hosts';
import type { SshTarget } from './ssh-options';
import { KILL_AFTER_MS, lineSplitter, TIMED_OUT, type ExecOptions, type ExecResult, type Transport, type TransportStats } from './types';

function readKnownHosts(files: string[]): KnownHostEntry[] {
  return files.flatMap((f) => (fs.existsSync(f) ? parseKnownHosts(fs.readFileSync(f, 'utf8'), f) : []));
}

/** Printed by the login shell (POSIX: any shell) before the command, read back and removed. */
const PID_LINE = `printf '::sy-pid %s\\n' "$$" >&2; `;
const PID_RE = /^::sy-pid (\d+)\n/;

export class SshTransport implements Transport {
  readonly stats: TransportStats = { connections: 0, executions: 0, bytesUploaded: 0 };
  private ssh: NodeSSH = new (nodeSsh().NodeSSH)();
  private connecting?: Promise<void>;
  /** Why the open connection went away (reset, closed), once it has. */
  private lost: string | undefined;
  /** What the last handshake's host key check said: `gulp doctor` reports it (lib/servers/reach.ts). */
  hostKey: HostKeyVerdict | undefined;

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
        // No "none" attempt first (ssh2's default, to learn the server's methods): one round trip less.
        ...(privateKey || t.agent ? { authHandler: [...(privateKey ? ['publickey' as const] : []), ...(t.agent ? ['agent' as const] : [])] } : {}),
        readyTimeout: t.connectTimeoutMs,
        keepaliveInterval: t.keepaliveIntervalMs,
        keepaliveCountMax: 3,
        ...(algorithms.length ? { algorithms: { serverHostKey: algorithms as never } } : {}),
        hostVerifier: (key: Buffer) => {
          const v = verifyHostKey(entries, t.hostname, t.port, key);
          this.hostKey = v;
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
    this.watch();
  }

  /**
   * Once the handshake is done nobody listens on the connection: a reset would be an uncaught
   * exception (the deploy dies mid-rollback). Its loss is kept for the commands it ends, and the
   * next command opens a new connection (an undo after a dropped link, when the host is back).
   */
  private watch(): void {
    const conn = this.ssh.connection;
    this.lost = undefined;
    conn?.on('error', (e: Error) => (this.lost ??= e.message));
    conn?.on('close', () => {
      this.lost ??= 'the connection closed';
      if (this.ssh.connection === conn || this.ssh.connection === null) this.connecting = undefined;
    });
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
    // The time limit is kept here, not by a `timeout` program on the server (one process less per
    // step). The command's first act is to tell its pid (the session's process group: sshd's child
    // calls setsid, and our commands `exec` their bash); at the limit a second exec on the same
    // connection TERMs that group, and KILLs it killAfterMs later. Not the SSH "signal" request:
    // OpenSSH refuses it for root logins ("session signalling requires privilege separation").
    let pid: number | undefined;
    let timedOut = false;
    const timers: NodeJS.Timeout[] = [];
    const signal = (sig: 'TERM' | 'KILL') => {
      if (pid === undefined) return;
      this.stats.executions++;
      this.ssh.execCommand(`kill -${sig} -- -${pid} 2>/dev/null || kill -${sig} ${pid} 2>/dev/null || true`).catch(() => undefined);
    };
    const expire = () => {
      if (timedOut) return;
      timedOut = true;
      signal('TERM');
      timers.push(setTimeout(() => signal('KILL'), o.killAfterMs ?? KILL_AFTER_MS));
    };
    if (o.timeoutSeconds) timers.push(setTimeout(expire, o.timeoutSeconds * 1000));
    o.stop?.addEventListener('abort', expire, { once: true });
    let first = true;
    try {
      const r = await this.ssh.execCommand(`${PID_LINE}${command}`, {
        ...(stdin !== undefined ? { stdin } : {}),
        noTrim: true,
        onStdout: (c) => out.push(c),
        onStderr: (c) => {
          if (first) {
            first = false;
            const m = PID_RE.exec(c.toString());
            if (m) {
              pid = Number(m[1]);
              c = c.subarray(m[0].length);
            }
          }
          err.push(c);
        },
      });
      out.end();
      err.end();
      const stderr = r.stderr.replace(PID_RE, '');
      if (timedOut) return { code: TIMED_OUT, stdout: r.stdout, stderr: `${stderr}timed out${o.stop?.aborted ? '' : ` after ${o.timeoutSeconds}s`}\n`, timedOut };
      // no exit status and no signal: the channel closed because the connection did
      if (r.code === null && r.signal === null) throw new Error(this.lost ?? 'the channel closed without an exit status');
      return { code: r.code ?? (r.signal ? 128 : 255), stdout: r.stdout, stderr };
    } catch (e) {
      throw new SwitchyardError(`host ${this.where()}: connection lost: ${(e as Error).message}`, { host: this.target.name, cause: e });
    } finally {
      for (const t of timers) clearTimeout(t);
      o.stop?.removeEventListener('abort', expire);
    }
  }

  async close(): Promise<void> {
    // A reset arriving after we are done must not crash the process as an unhandled 'error'.
    this.ssh.connection?.on('error', () => undefined);
    const sock = (this.ssh.connection as unknown as { _sock?: Socket } | null)?._sock;
    this.ssh.dispose();
    // Once our disconnect and FIN are out, nothing is left to say: waiting for the server's FIN
    // (ssh2's keepalive timer lives until then) would keep the process one round trip longer.
    if (sock && !sock.destroyed) {
      if (sock.writableFinished) sock.destroy();
      else sock.once('finish', () => sock.destroy());
    }
    this.connecting = undefined;
  }
}
