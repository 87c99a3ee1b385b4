// Commands on a server over one SSH connection, reused for every step of a task.
import type { Socket } from 'node:net';
import { Readable, Transform, type Duplex } from 'node:stream';
import { SwitchyardError } from '../../errors';
import { expandProxyCommand } from './proxy-command';
import { describeHop, dialTcp, handshake, JumpPool, newNodeSsh, plannedHops, type Route } from './ssh-connect';
import type { SshTarget } from './ssh-options';
import type { HostKeyStatus } from './known-hosts';
import { KILL_AFTER_MS, lineSplitter, TIMED_OUT, type ExecOptions, type ExecResult, type SshReach, type Transport, type TransportStats } from './types';

/** Printed by the login shell (POSIX: any shell) before the command, read back and removed. */
const PID_LINE = `printf '::sy-pid %s\\n' "$$" >&2; `;
const PID_RE = /^::sy-pid (\d+)\n/;

export class SshTransport implements Transport {
  readonly stats: TransportStats = { connections: 0, executions: 0, bytesUploaded: 0 };
  private ssh = newNodeSsh();
  private connecting?: Promise<void>;
  /** Why the open connection went away (reset, closed), once it has. */
  private lost: string | undefined;
  private keyStatus: HostKeyStatus | undefined;
  /** The stream the open connection runs over (through a jump, a ProxyCommand). */
  private route: Route | undefined;
  private identity: string | undefined;

  /** jumps: shared with the other hosts' transports, so a common jump host is connected to once. */
  constructor(
    readonly target: SshTarget,
    private readonly jumps = new JumpPool(),
  ) {}

  get host(): string {
    return this.target.name;
  }

  /** The host key's standing at the last handshake (verified how, or why refused): for `gulp doctor`. */
  get hostKeyStatus(): HostKeyStatus | undefined {
    return this.keyStatus;
  }

  /** How this host is reached: jumps or ProxyCommand, and (once connected) the identity each accepted. */
  get reach(): SshReach {
    const t = this.target;
    const proxyCommand = t.proxy?.kind === 'command' ? (this.route?.proxyCommand ?? expandProxyCommand(t.proxy.command, t)) : undefined;
    return {
      host: t.name,
      user: t.user,
      hostname: t.hostname,
      port: t.port,
      jumps: this.route?.hops ?? plannedHops(t),
      ...(proxyCommand !== undefined ? { proxyCommand } : {}),
      ...(this.identity !== undefined ? { identity: this.identity } : {}),
    };
  }

  /** A second stream to the target by the same route, for the host certificate probe; let go when it closes. */
  private async probeStream(t: SshTarget): Promise<Duplex> {
    const r = await this.jumps.route(t, t.name);
    if (!r.sock) return dialTcp(t.hostname, t.port, t.connectTimeoutMs);
    r.sock.once('close', () => r.release());
    return r.sock;
  }

  private where(): string {
    const via = this.target.proxy?.kind === 'jump' ? ` via ${describeHop(this.target.proxy.via)}` : '';
    return `${this.target.name} (${this.target.user}@${this.target.hostname}:${this.target.port}${via})`;
  }

  connect(): Promise<void> {
    this.connecting ??= this.open();
    return this.connecting;
  }

  private async open(): Promise<void> {
    const t = this.target;
    let route: Route | undefined;
    try {
      route = await this.jumps.route(t, t.name);
      this.identity = await handshake(this.ssh, t, route.sock, `host ${this.where()}`, route.proxyStderr, {
        onStatus: (s) => (this.keyStatus = s),
        // a certificate probe goes the way the connection went (through the jump host)
        ...(t.proxy ? { dial: () => this.probeStream(t) } : {}),
      });
    } catch (e) {
      route?.release();
      this.connecting = undefined;
      if (e instanceof SwitchyardError) throw new SwitchyardError(e.message, { host: t.name, cause: e.cause });
      throw e;
    }
    this.route = route;
    this.stats.connections++;
    if (route.opened) this.stats.jumpConnections = (this.stats.jumpConnections ?? 0) + route.opened;
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
    const route = this.route;
    conn?.on('close', () => {
      this.lost ??= 'the connection closed';
      route?.release();
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
    const sock = (this.ssh.connection as unknown as { _sock?: Socket | Duplex } | null)?._sock;
    this.ssh.dispose();
    // the jump channel or ProxyCommand goes (and a jump connection nobody uses) once our disconnect is out
    const route = this.route;
    const done = () => {
      sock?.destroy();
      route?.release();
    };
    // Once our disconnect and FIN are out, nothing is left to say: waiting for the server's FIN
    // (ssh2's keepalive timer lives until then) would keep the process one round trip longer.
    if (sock && !sock.destroyed && !sock.writableFinished) sock.once('finish', done);
    else done();
    this.connecting = undefined;
  }
}
