// How a host is reached, as `gulp doctor` reports it: the one place that reads the transport's
// connection details (SshTarget, the host key verdict of known-hosts.ts), so that what the
// transport learns to do (a jump host, the identity the server accepted, a host certificate) is
// added here and nowhere else.
import dns from 'node:dns/promises';
import fs from 'node:fs';
import type { Transport } from '../remote/transport';
import type { HostKeyVerdict } from '../remote/transport/known-hosts';
import type { SshTarget } from '../remote/transport/ssh-options';

export type HostKeyStatus = 'verified' | 'unknown' | 'changed' | 'revoked' | 'not checked';

/** Why a connection failed, in the words a person acts on. */
export type ReachFailure = 'refused' | 'host key' | 'auth failed' | 'timed out' | 'name not found' | 'unreachable';

export interface Reach {
  via: 'ssh' | 'local';
  /** What is connected to: the host name after ssh_config aliases. */
  hostname: string;
  /** The address that name resolves to here (undefined when it does not resolve). */
  address?: string;
  user: string;
  port: number;
  /** Jump hosts, in order (ProxyJump: none yet). */
  jump: string[];
  /** The key file offered first (then the agent, when there is one), or 'ssh-agent', or 'none'. */
  identity: string;
  hostKey: HostKeyStatus;
  /** The fingerprint of a key that was refused. */
  fingerprint?: string;
  ok: boolean;
  failure?: ReachFailure;
  /** The transport's own message on a failure: for a host key, with the command that fixes it. */
  error?: string;
}

interface SshLike {
  target: SshTarget;
  hostKey?: HostKeyVerdict;
}

function isSsh(t: Transport): t is Transport & SshLike {
  return typeof (t as Partial<SshLike>).target === 'object';
}

function failureOf(err: unknown, verdict: HostKeyVerdict | undefined): ReachFailure {
  if (verdict && !verdict.ok) return 'host key';
  const cause = (err as { cause?: { level?: string; code?: string } } | undefined)?.cause ?? {};
  if (cause.level === 'client-authentication') return 'auth failed';
  if (cause.code === 'ECONNREFUSED') return 'refused';
  if (cause.code === 'ENOTFOUND' || cause.code === 'EAI_AGAIN') return 'name not found';
  if (cause.level === 'client-timeout' || cause.code === 'ETIMEDOUT') return 'timed out';
  return 'unreachable';
}

/**
 * How the transport reaches its host, after connect() (err: what it threw, if it did). Reads the
 * target as resolved from the environment and ssh_config, and the verdict of the handshake.
 */
export async function reachOf(t: Transport, err?: unknown): Promise<Reach> {
  const ok = err === undefined;
  // the transport's message says where first (`host web1 (deploy@10.0.0.5:22): `): the report says it already
  const error = ok ? undefined : ((err as Error).message ?? String(err)).replace(/^host \S+ \([^)]*\): /, '');
  if (!isSsh(t)) {
    return { via: 'local', hostname: 'localhost', user: '(this process)', port: 0, jump: [], identity: 'none', hostKey: 'not checked', ok, ...(ok ? {} : { failure: 'unreachable', error }) };
  }
  const { target, hostKey: v } = t;
  const address = await dns.lookup(target.hostname).then((a) => a.address, () => undefined);
  const key = target.identityFiles.find((f) => fs.existsSync(f)); // what ssh.ts offers first
  return {
    via: 'ssh',
    hostname: target.hostname,
    ...(address ? { address } : {}),
    user: target.user,
    port: target.port,
    jump: [], // ProxyJump: the transport has none yet
    identity: key ? `${key}${target.agent ? ' (then ssh-agent)' : ''}` : target.agent ? 'ssh-agent' : 'none',
    hostKey: !v ? 'not checked' : v.ok ? 'verified' : v.reason,
    ...(v && !v.ok ? { fingerprint: `${v.keyType} ${v.fingerprint}` } : {}),
    ok,
    ...(ok ? {} : { failure: failureOf(err, v), error }),
  };
}
