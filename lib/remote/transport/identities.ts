// The identities a connection offers, in OpenSSH's order (sshconnect2.c, pubkey_prepare): the
// agent's keys first (one that is a listed file's key stands for that file), then the listed
// files the agent does not hold. With IdentitiesOnly an agent key is offered only when it is a
// listed file's key. Passphrases are read from the named variable when connecting and never kept
// in anything that is shown; what was tried is described by file path or key fingerprint only.
import crypto from 'node:crypto';
import fs from 'node:fs';
import type { AnyAuthMethod, AuthHandlerMiddleware, BaseAgent, ParsedKey } from 'ssh2';
import { lazy } from '../../lazy';
import { fingerprint } from './known-hosts';
import type { SshTarget } from './ssh-options';

const ssh2 = lazy(() => require('ssh2') as typeof import('ssh2'));

export interface Identity {
  /** A file path, or `agent key SHA256:…` (with the file it stands for). */
  label: string;
  method(username: string): AnyAuthMethod;
}

export interface Identities {
  list: Identity[];
  /** What could not be offered, and why: a missing file, an encrypted one without its passphrase. */
  unusable: string[];
}

interface KeyFile {
  path: string;
  /** The public key blob: how an agent key is matched to the file. */
  pub?: Buffer;
  /** Parsed when it is not encrypted; an encrypted one is decrypted only when it is to be offered. */
  key?: ParsedKey;
  encrypted?: Buffer;
}

function parse(data: Buffer | string, passphrase?: string): ParsedKey | Error {
  const k = ssh2().utils.parseKey(data, passphrase) as ParsedKey | ParsedKey[] | Error;
  return Array.isArray(k) ? k[0]! : k;
}

/** The public key an "openssh-key-v1" file carries unencrypted (PROTOCOL.key), without its passphrase. */
export function publicOfEncrypted(text: string): Buffer | undefined {
  const m = /-----BEGIN OPENSSH PRIVATE KEY-----([\s\S]*?)-----END OPENSSH PRIVATE KEY-----/.exec(text);
  if (!m) return undefined;
  const b = Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64');
  let at = 'openssh-key-v1\0'.length;
  const str = () => {
    const n = b.readUInt32BE(at);
    const v = b.subarray(at + 4, at + 4 + n);
    at += 4 + n;
    return v;
  };
  try {
    str(), str(), str(); // cipher, kdf, kdf options
    at += 4; // number of keys
    return Buffer.from(str());
  } catch {
    return undefined;
  }
}

function publicOf(file: string, text: string): Buffer | undefined {
  if (fs.existsSync(`${file}.pub`)) {
    const k = parse(fs.readFileSync(`${file}.pub`));
    if (!(k instanceof Error)) return k.getPublicSSH();
  }
  return publicOfEncrypted(text);
}

/**
 * Decrypted keys by file (path, mtime, size) and a hash of the passphrase: bcrypt_pbkdf takes
 * ~0.35 s of this thread per decryption, so a deploy pays it once, not once per host.
 */
const decrypted = new Map<string, ParsedKey>();

function decrypt(file: string, data: Buffer, passphrase: string): ParsedKey | Error {
  const st = fs.statSync(file);
  const id = [file, st.mtimeMs, st.size, crypto.createHash('sha256').update(passphrase).digest('base64')].join('\0');
  const had = decrypted.get(id);
  if (had) return had;
  const key = parse(data, passphrase);
  if (!(key instanceof Error)) decrypted.set(id, key);
  return key;
}

function readKeyFile(file: string, unusable: string[]): KeyFile | undefined {
  if (!fs.existsSync(file)) {
    unusable.push(`${file} (no such file)`);
    return undefined;
  }
  const data = fs.readFileSync(file);
  const key = parse(data);
  if (!(key instanceof Error)) return { path: file, pub: key.getPublicSSH(), key };
  if (/no passphrase given/.test(key.message)) {
    const pub = publicOf(file, data.toString('latin1'));
    return { path: file, encrypted: data, ...(pub ? { pub } : {}) };
  }
  unusable.push(`${file} (not a private key: ${key.message})`);
  return undefined;
}

/** The key of a file that is to be offered: decrypted with the named variable's passphrase when it must be. */
function keyOf(f: KeyFile, passphraseEnv: string | undefined, unusable: string[]): ParsedKey | undefined {
  if (f.key || !f.encrypted) return f.key;
  const passphrase = passphraseEnv === undefined ? undefined : process.env[passphraseEnv];
  if (passphrase === undefined) {
    unusable.push(`${f.path} (encrypted, and no ssh.passphraseEnv is set for it)`);
    return undefined;
  }
  const key = decrypt(f.path, f.encrypted, passphrase);
  if (!(key instanceof Error)) return key;
  unusable.push(`${f.path} (the passphrase in $${passphraseEnv} does not decrypt it)`);
  return undefined;
}

/** An agent that shows one of the real agent's keys and has the real one sign: one key per attempt. */
function oneKeyAgent(real: BaseAgent, key: ParsedKey): BaseAgent {
  const Base = ssh2().BaseAgent;
  class OneKey extends Base {
    override getIdentities(cb: (err: Error | undefined, keys?: ParsedKey[]) => void): void {
      cb(undefined, [key]);
    }
    override sign(pub: ParsedKey, data: Buffer, options: unknown, cb?: unknown): void {
      (real.sign as (...a: unknown[]) => void)(pub, data, options, cb);
    }
  }
  return new OneKey() as BaseAgent;
}

function agentKeys(socket: string, unusable: string[]): Promise<{ agent: BaseAgent; keys: ParsedKey[] } | undefined> {
  const agent = new (ssh2().OpenSSHAgent)(socket);
  return new Promise((resolve) => {
    agent.getIdentities((err, keys) => {
      if (err || !keys) {
        unusable.push(`agent ${socket} (${err?.message ?? 'no answer'})`);
        resolve(undefined);
      } else {
        if (!keys.length) unusable.push(`agent ${socket} (it holds no keys)`);
        resolve({ agent: agent as BaseAgent, keys: keys as ParsedKey[] });
      }
    });
  });
}

/** Every identity the target offers, in the order OpenSSH offers them. */
export async function gatherIdentities(t: SshTarget): Promise<Identities> {
  const unusable: string[] = [];
  const files = t.identityFiles.flatMap((f) => readKeyFile(f, unusable) ?? []);
  const fromAgent = t.agent ? await agentKeys(t.agent, unusable) : undefined;
  const list: Identity[] = [];
  for (const key of fromAgent?.keys ?? []) {
    const blob = key.getPublicSSH();
    const i = files.findIndex((f) => f.pub?.equals(blob));
    if (i < 0 && t.identitiesOnly) continue;
    const file = i >= 0 ? files.splice(i, 1)[0]!.path : undefined;
    const agent = oneKeyAgent(fromAgent!.agent, key);
    list.push({ label: `agent key ${fingerprint(blob.toString('base64'))}${file ? ` (${file})` : ''}`, method: (username) => ({ type: 'agent', username, agent }) });
  }
  for (const f of files) {
    const key = keyOf(f, t.passphraseEnv, unusable);
    if (key) list.push({ label: f.path, method: (username) => ({ type: 'publickey', username, key: key as never }) });
  }
  return { list, unusable };
}

/** What became of the attempts: the one in flight, and those the server turned down. */
export interface AuthLog {
  current?: string;
  refused: string[];
  /** Set when the server stops offering publickey (it wants a password, say). */
  methodsLeft?: string[];
}

/** ssh2's authHandler: one identity per call, in order, until the server accepts one or none is left. */
export function authHandler(user: string, ids: Identities, log: AuthLog): AuthHandlerMiddleware {
  let next = 0;
  return (methodsLeft, _partial, done) => {
    if (log.current) log.refused.push(log.current);
    log.current = undefined;
    if (methodsLeft && !methodsLeft.includes('publickey')) {
      log.methodsLeft = methodsLeft;
      return done(false as never);
    }
    const id = ids.list[next++];
    if (!id) return done(false as never);
    log.current = id.label;
    done(id.method(user));
  };
}

/** The end of "authentication failed": what was offered and refused, what could not be offered. */
export function describeAuthFailure(ids: Identities, log: AuthLog): string {
  const parts: string[] = [];
  if (log.refused.length) parts.push(`tried ${log.refused.map((l) => `${l} (refused)`).join(', ')}`);
  if (ids.unusable.length) parts.push(`could not use ${ids.unusable.join(', ')}`);
  if (!ids.list.length && !ids.unusable.length) parts.push('no identity to offer (no identity file exists and no ssh-agent is set)');
  if (log.methodsLeft) parts.push(`the server accepts only ${log.methodsLeft.join(', ')}`);
  return parts.join('; ');
}
