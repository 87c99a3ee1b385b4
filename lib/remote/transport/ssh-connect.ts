// One SSH handshake (host key verified against known_hosts, identities offered as OpenSSH does),
// and the stream it runs over: TCP, a ProxyCommand's stdio, or a channel forwarded by a jump host
// (forwardOut, in process, as `ssh -J` does with -W). Jump connections are shared by the targets
// that go through the same jump and closed when the last of them closes.
import type { Duplex } from 'node:stream';
import type { NodeSSH } from 'node-ssh';
import type { ClientChannel } from 'ssh2';
import { lazy } from '../../lazy';
import { SwitchyardError } from '../../errors';
import { authHandler, describeAuthFailure, gatherIdentities, type AuthLog } from './identities';
import { hopText } from './jump-spec';
import net, { type Socket } from 'node:net';
import { describeRefusal } from './host-key-messages';
import { hostKeyLookup, hostKeyVerifier, knownKeyAlgorithms, type HostKeyStatus, type RefusedHostKey } from './known-hosts';
import { expandProxyCommand, proxyCommandSocket } from './proxy-command';
import type { SshTarget } from './ssh-options';
import type { SshHop } from './types';

const nodeSsh = lazy(() => require('node-ssh') as typeof import('node-ssh'));

export function newNodeSsh(): NodeSSH {
  return new (nodeSsh().NodeSSH)();
}

/** A TCP stream to host:port once connected (the host certificate probe's route when there is no jump host). */
export function dialTcp(host: string, port: number, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host, port, timeout: timeoutMs });
    sock.once('connect', () => resolve(sock.setTimeout(0)));
    sock.once('timeout', () => sock.destroy(new Error(`no TCP connection in ${timeoutMs} ms`)));
    sock.once('error', reject);
  });
}

/** How handshake checks the host key: a second stream to the same sshd for a certificate probe, and who hears the verdict. */
export interface HostKeyHooks {
  /** Default: TCP to the target (right when there is no jump host or ProxyCommand). */
  dial?: () => Promise<Duplex>;
  onStatus?: (s: HostKeyStatus) => void;
}

/**
 * The connection failed at a jump host (the innermost of a chain that failed): which one, why in
 * its own words (without the `jump host …:` its message starts with), and its host key's standing
 * when the handshake got that far. For `gulp doctor` (lib/servers/reach.ts); the message is the same.
 */
export class JumpHostError extends SwitchyardError {
  constructor(
    message: string,
    readonly hop: string,
    readonly why: string,
    readonly hostKey: HostKeyStatus | undefined,
    cause: unknown,
  ) {
    super(message, { cause });
  }
}

/** `name (user@host:port)`: how messages name a hop. */
export function describeHop(t: SshTarget): string {
  return `${t.name} (${hopText(t)})`;
}

/**
 * Connects ssh over sock (or TCP when there is none) and authenticates; resolves with the label of
 * the identity the server accepted. `where` begins every error ("host web1 (…)").
 */
export async function handshake(ssh: NodeSSH, t: SshTarget, sock: Duplex | undefined, where: string, proxyStderr?: () => string, keys: HostKeyHooks = {}): Promise<string> {
  const lookup = hostKeyLookup(t);
  let refused: RefusedHostKey | undefined;
  const ids = await gatherIdentities(t);
  const log: AuthLog = { refused: [] };
  const algorithms = knownKeyAlgorithms(lookup);
  const dial = keys.dial ?? (() => dialTcp(t.hostname, t.port, t.connectTimeoutMs));
  try {
    await ssh.connect({
      host: t.hostname,
      port: t.port,
      ...(sock ? { sock } : {}),
      username: t.user,
      // No "none" attempt first (ssh2's default, to learn the server's methods): one round trip less.
      authHandler: authHandler(t.user, ids, log),
      readyTimeout: t.connectTimeoutMs,
      keepaliveInterval: t.keepaliveIntervalMs,
      keepaliveCountMax: 3,
      ...(algorithms.length ? { algorithms: { serverHostKey: algorithms as never } } : {}),
      hostVerifier: hostKeyVerifier(lookup, dial, t.connectTimeoutMs, (s) => {
        keys.onStatus?.(s);
        if (s.status !== 'verified') refused = s;
      }),
    });
  } catch (e) {
    sock?.destroy();
    if (refused) throw new SwitchyardError(`${where}: ${describeRefusal(refused, lookup)}`, { cause: e });
    const err = e as NodeJS.ErrnoException & { level?: string };
    if (err.level === 'client-authentication') throw new SwitchyardError(`${where}: authentication failed: ${describeAuthFailure(ids, log)}`, { cause: e });
    const said = proxyStderr?.();
    throw new SwitchyardError(`${where}: cannot connect: ${err.code ?? err.message}${said ? ` (ProxyCommand said: ${said})` : ''}`, { cause: e });
  }
  return log.current ?? 'none';
}

/** The stream a target's session runs over, and what it took to make it. */
export interface Route {
  /** undefined: a plain TCP connection to the target. */
  sock?: Duplex;
  /** Jump connections opened for this route (a shared one counts where it was opened). */
  opened: number;
  /** The jump hosts it goes through, first first. */
  hops: SshHop[];
  /** The ProxyCommand as run, when there is one. */
  proxyCommand?: string;
  proxyStderr?: () => string;
  /** Lets go of the stream and of the jump connections it holds; safe twice. */
  release(): void;
}

interface Jump {
  key: string;
  ssh: NodeSSH;
  ready: Promise<{ hop: SshHop; opened: number; route: Route }>;
  users: number;
}

/** The jump hosts of a chain, first first, as planned (no identity yet). */
export function plannedHops(t: SshTarget): SshHop[] {
  if (t.proxy?.kind !== 'jump') return [];
  const v = t.proxy.via;
  return [...plannedHops(v), { name: v.name, user: v.user, hostname: v.hostname, port: v.port }];
}

function forward(ssh: NodeSSH, to: SshTarget, timeoutMs: number): Promise<ClientChannel> {
  return new Promise((resolve, reject) => {
    const conn = ssh.connection;
    if (!conn) return reject(new Error('the jump connection closed'));
    const timer = setTimeout(() => reject(new Error(`no answer in ${timeoutMs / 1000} s`)), timeoutMs);
    conn.forwardOut('127.0.0.1', 0, to.hostname, to.port, (err, channel) => {
      clearTimeout(timer);
      if (err) reject(err);
      else resolve(channel);
    });
  });
}

const once = (f: () => void) => {
  let done = false;
  return () => {
    if (done) return;
    done = true;
    f();
  };
};

export class JumpPool {
  private jumps = new Map<string, Jump>();

  /** How to reach t: for a jump, a channel through the (shared) jump connection. Errors name forHost. */
  async route(t: SshTarget, forHost: string): Promise<Route> {
    try {
      return await this.channelTo(t);
    } catch (e) {
      throw new SwitchyardError(`host ${forHost}: ${(e as Error).message}`, { host: forHost, cause: e });
    }
  }

  private async channelTo(t: SshTarget): Promise<Route> {
    if (t.proxy?.kind === 'command') {
      const p = proxyCommandSocket(t.proxy.command, t);
      return { sock: p.sock, opened: 0, hops: [], proxyCommand: expandProxyCommand(t.proxy.command, t), proxyStderr: p.stderr, release: once(() => p.sock.destroy()) };
    }
    if (t.proxy?.kind !== 'jump') return { opened: 0, hops: [], release: () => undefined };
    const via = t.proxy.via;
    const { jump, opened } = this.take(via);
    try {
      const j = await jump.ready;
      const channel = await forward(jump.ssh, t, t.connectTimeoutMs).catch((e: Error) => {
        throw new SwitchyardError(`jump host ${describeHop(via)} could not open a channel to ${t.hostname}:${t.port}: ${e.message}`, { cause: e });
      });
      const release = once(() => {
        channel.destroy();
        this.letGo(jump);
      });
      return { sock: channel, opened: opened ? opened + j.opened : 0, hops: [...j.route.hops, j.hop], release };
    } catch (e) {
      this.letGo(jump);
      throw e;
    }
  }

  /** The jump connection for via, opened unless one is open or opening; `opened` counts new ones. */
  private take(via: SshTarget): { jump: Jump; opened: number } {
    const key = JSON.stringify(via);
    const had = this.jumps.get(key);
    if (had) {
      had.users++;
      return { jump: had, opened: 0 };
    }
    const ssh = newNodeSsh();
    const jump: Jump = { key, ssh, users: 1, ready: this.open(ssh, via, key) };
    jump.ready.catch(() => undefined); // each user awaits it; nobody may be left to
    this.jumps.set(key, jump);
    return { jump, opened: 1 };
  }

  private async open(ssh: NodeSSH, via: SshTarget, key: string): Promise<{ hop: SshHop; opened: number; route: Route }> {
    // a lost or failed jump is not handed out again; its users let go of it as their channels end
    const forget = () => {
      if (this.jumps.get(key)?.ssh === ssh) this.jumps.delete(key);
    };
    let route: Route | undefined;
    let standing: HostKeyStatus | undefined;
    const where = `jump host ${describeHop(via)}`;
    try {
      route = await this.channelTo(via);
      const identity = await handshake(ssh, via, route.sock, where, route.proxyStderr, { onStatus: (s) => (standing = s) });
      const conn = ssh.connection;
      conn?.on('error', () => undefined); // its loss shows on the channels through it
      conn?.on('close', forget);
      return { hop: { name: via.name, user: via.user, hostname: via.hostname, port: via.port, identity }, opened: route.opened, route };
    } catch (e) {
      forget();
      route?.release();
      // a hop further in already said where it failed
      if (e instanceof JumpHostError || !(e instanceof SwitchyardError) || !e.message.startsWith(`${where}: `)) throw e;
      throw new JumpHostError(e.message, describeHop(via), e.message.slice(where.length + 2), standing, e.cause);
    }
  }

  private letGo(jump: Jump): void {
    if (--jump.users > 0) return;
    if (this.jumps.get(jump.key) === jump) this.jumps.delete(jump.key);
    jump.ready.then((j) => j.route.release(), () => undefined);
    jump.ssh.connection?.on('error', () => undefined);
    jump.ssh.dispose();
  }
}
