// How a host is reached, as `gulp doctor` reports it: the one place that reads the transport's
// connection details (SshTarget, the host key verdict of known-hosts.ts), so that what the
// transport learns to do (a jump host, the identity the server accepted, a host certificate) is
// added here and nowhere else.
import dns from 'node:dns/promises';
import fs from 'node:fs';
import { hostKeySummary, type Transport } from '../remote/transport';
import { JumpHostError } from '../remote/transport/ssh-connect';
import type { HostKeyStatus as KeyStanding } from '../remote/transport/known-hosts';
import type { SshTarget } from '../remote/transport/ssh-options';
import type { SshReach } from '../remote/transport/types';

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
  /** Jump hosts, in order (`user@host:port`, and the identity each accepted), or the ProxyCommand. */
  jump: string[];
  /** The identity the server accepted (a file, or `agent key SHA256:…`); before that, what is offered first. */
  identity: string;
  hostKey: HostKeyStatus;
  /** How the key was verified (the known_hosts line, or the CA and certificate), or why it was refused. */
  hostKeyDetail?: string;
  /** The fingerprint of a key that was refused (the failed jump host's, with failedJump). */
  fingerprint?: string;
  /** The jump host where the connection failed (`name (user@host:port)`): the target was never reached. */
  failedJump?: string;
  /** That jump host's key standing, when the handshake with it got that far. */
  jumpHostKey?: HostKeyStatus;
  ok: boolean;
  failure?: ReachFailure;
  /** The transport's own message on a failure: for a host key, with the command that fixes it. */
  error?: string;
}

interface SshLike {
  target: SshTarget;
  hostKeyStatus: KeyStanding | undefined;
  reach: SshReach;
}

function isSsh(t: Transport): t is Transport & SshLike {
  return typeof (t as Partial<SshLike>).target === 'object' && typeof (t as Partial<SshLike>).reach === 'object';
}

function failureOf(err: unknown, standing: KeyStanding | undefined): ReachFailure {
  if (standing && standing.status !== 'verified') return 'host key';
  const cause = (err as { cause?: { level?: string; code?: string } } | undefined)?.cause ?? {};
  if (cause.level === 'client-authentication') return 'auth failed';
  if (cause.code === 'ECONNREFUSED') return 'refused';
  if (cause.code === 'ENOTFOUND' || cause.code === 'EAI_AGAIN') return 'name not found';
  if (cause.level === 'client-timeout' || cause.code === 'ETIMEDOUT') return 'timed out';
  return 'unreachable';
}

/** The jump host the connection failed at, if that is where (the transport's error chain). */
function jumpFailure(err: unknown): JumpHostError | undefined {
  for (let e = err; e instanceof Error; e = e.cause) if (e instanceof JumpHostError) return e;
  return undefined;
}

/** What went wrong at a jump host: the target's own key was never checked. */
function failedAtJump(j: JumpHostError): Partial<Reach> {
  const v = j.hostKey;
  return {
    failedJump: j.hop,
    ...(v ? { jumpHostKey: v.status } : {}),
    ...(v && v.status !== 'verified' ? { fingerprint: `${v.keyType} ${v.fingerprint}` } : {}),
    failure: failureOf(j, v),
    error: j.why,
  };
}

/**
 * How the transport reaches its host, after connect() (err: what it threw, if it did). Reads the
 * target as resolved from the environment and ssh_config, and the verdict of the handshake.
 */
export async function reachOf(t: Transport, err?: unknown): Promise<Reach> {
  const ok = err === undefined;
  // the transport's message says where first (`host web1 (deploy@10.0.0.5:22 via b (…)): `): the report says it already
  const error = ok ? undefined : ((err as Error).message ?? String(err)).replace(/^host \S+(?: \((?:[^()]|\([^()]*\))*\))?: /, '');
  if (!isSsh(t)) {
    return { via: 'local', hostname: 'localhost', user: '(this process)', port: 0, jump: [], identity: 'none', hostKey: 'not checked', ok, ...(ok ? {} : { failure: 'unreachable', error }) };
  }
  const { target, hostKeyStatus: v, reach } = t;
  const atJump = ok ? undefined : jumpFailure(err);
  const address = await dns.lookup(target.hostname).then((a) => a.address, () => undefined);
  const offered = target.identityFiles.find((f) => fs.existsSync(f));
  const firstOffer = target.agent ? `ssh-agent${offered ? `, then ${offered}` : ''}` : (offered ?? 'none');
  const jump = reach.jumps.map((j) => `${j.user}@${j.hostname}:${j.port}${j.identity ? ` (identity ${j.identity})` : ''}`);
  return {
    via: 'ssh',
    hostname: target.hostname,
    ...(address ? { address } : {}),
    user: target.user,
    port: target.port,
    jump: reach.proxyCommand !== undefined ? [`ProxyCommand ${reach.proxyCommand}`] : jump,
    identity: reach.identity ?? firstOffer, // none accepted yet: what is offered first (the error lists all tried)
    hostKey: !v ? 'not checked' : v.status,
    ...(v ? { hostKeyDetail: hostKeySummary(v) } : {}),
    ...(v && v.status !== 'verified' ? { fingerprint: `${v.keyType} ${v.fingerprint}` } : {}),
    ok,
    ...(ok ? {} : { failure: failureOf(err, v), error }),
    ...(atJump ? failedAtJump(atJump) : {}),
  };
}
