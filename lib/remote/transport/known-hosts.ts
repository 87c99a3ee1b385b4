// Host key verification against OpenSSH known_hosts files. ssh2 accepts ANY key unless told
// otherwise, so this is what stands between a deploy and a man in the middle. How it follows
// OpenSSH, and where it does not: docs/HOST-KEYS.md.
import crypto from 'node:crypto';
import fs from 'node:fs';
import type { Duplex } from 'node:stream';
import { SwitchyardError } from '../../errors';
import { checkHostCertificate, summarize, type CertificateSummary } from './host-cert';
import { certAlgorithmsFor, fetchHostCertificate, type CertificateOffer } from './host-cert-probe';
import { fingerprintOf, keyTypeOf } from './ssh-wire';

export { keyTypeOf } from './ssh-wire';

export interface KnownHostEntry {
  file: string;
  line: number;
  marker?: '@revoked' | '@cert-authority';
  /** Comma-separated host patterns as written, or a hashed `|1|salt|hash` entry. */
  hosts: string;
  keyType: string;
  key: string; // base64 blob
}

export function parseKnownHosts(text: string, file: string): KnownHostEntry[] {
  const out: KnownHostEntry[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const parts = line.split(/\s+/);
    let marker: KnownHostEntry['marker'];
    if (parts[0] === '@revoked' || parts[0] === '@cert-authority') marker = parts.shift() as KnownHostEntry['marker'];
    const [hosts, keyType, key] = parts;
    if (!hosts || !keyType || !key) return;
    out.push({ file, line: i + 1, ...(marker ? { marker } : {}), hosts, keyType, key });
  });
  return out;
}

/** The name OpenSSH looks up: `host` on port 22, `[host]:port` otherwise. */
export function lookupName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

function globToRegExp(glob: string): RegExp {
  const body = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${body}$`, 'is');
}

/** Whether an entry's hosts field matches `name` (as from lookupName, or a HostKeyAlias). */
export function entryMatches(e: KnownHostEntry, name: string): boolean {
  if (e.hosts.startsWith('|1|')) {
    const [, , salt, hash] = e.hosts.split('|');
    if (!salt || !hash) return false;
    const mac = crypto.createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64');
    return mac === hash;
  }
  let matched = false;
  for (const p of e.hosts.split(',')) {
    const negated = p.startsWith('!');
    if (globToRegExp(negated ? p.slice(1) : p).test(name)) {
      if (negated) return false;
      matched = true;
    }
  }
  return matched;
}

export function fingerprint(keyBase64: string): string {
  return fingerprintOf(Buffer.from(keyBase64, 'base64'));
}

export interface KnownHostsFile {
  path: string;
  /** UserKnownHostsFile (or ssh.knownHostsFile) or GlobalKnownHostsFile. */
  scope: 'user' | 'global';
  exists: boolean;
}

/** Everything a host's key is judged by: the name looked up, and the lines of every file read. */
export interface HostKeyLookup {
  host: string;
  port: number;
  /** What known_hosts lines are matched against: HostKeyAlias, else host or [host]:port. */
  name: string;
  /** What a certificate principal must match: HostKeyAlias, else the host name. */
  principal: string;
  hostKeyAlias?: string;
  files: KnownHostsFile[];
  entries: KnownHostEntry[];
}

export interface LookupTarget {
  hostname: string;
  port: number;
  hostKeyAlias?: string;
  knownHostsFiles: string[];
  globalKnownHostsFiles: string[];
}

function readIfThere(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw new SwitchyardError(`known_hosts file ${file}: cannot read it (${code ?? (e as Error).message})`);
  }
}

/** Reads the user's files, then the system-wide ones, as OpenSSH does; a missing file is no error. */
export function hostKeyLookup(t: LookupTarget, read: (file: string) => string | undefined = readIfThere): HostKeyLookup {
  const files: KnownHostsFile[] = [];
  const entries: KnownHostEntry[] = [];
  const scoped = [...t.knownHostsFiles.map((p) => [p, 'user'] as const), ...t.globalKnownHostsFiles.map((p) => [p, 'global'] as const)];
  for (const [p, scope] of scoped) {
    const text = read(p);
    files.push({ path: p, scope, exists: text !== undefined });
    if (text !== undefined) entries.push(...parseKnownHosts(text, p));
  }
  const host = t.hostname.toLowerCase();
  return {
    host,
    port: t.port,
    name: t.hostKeyAlias ?? lookupName(host, t.port),
    principal: t.hostKeyAlias ?? host,
    ...(t.hostKeyAlias ? { hostKeyAlias: t.hostKeyAlias } : {}),
    files,
    entries,
  };
}

interface Offered {
  /** The name looked up (HostKeyAlias, host or [host]:port). */
  name: string;
  keyType: string;
  fingerprint: string;
  files: KnownHostsFile[];
}

/** Why a certificate did not make the key trusted (the server had none, or it did not hold). */
export interface CertificateRefusal {
  problem: string;
  summary?: CertificateSummary;
  /** The @cert-authority lines that matched the host. */
  authorities: KnownHostEntry[];
}

/** A host key's standing: what `gulp doctor` shows and what a refusal explains. */
export type HostKeyStatus =
  | (Offered & { status: 'verified'; by: 'known-hosts'; entry: KnownHostEntry })
  | (Offered & { status: 'verified'; by: 'cert-authority'; entry: KnownHostEntry; certificate: CertificateSummary })
  | (Offered & { status: 'unknown'; certificate?: CertificateRefusal })
  | (Offered & { status: 'changed'; known: KnownHostEntry[]; certificate?: CertificateRefusal })
  | (Offered & { status: 'revoked'; revoked: 'host key' | 'CA key'; entry: KnownHostEntry; certificate?: CertificateSummary });

export type RefusedHostKey = Exclude<HostKeyStatus, { status: 'verified' }>;

/**
 * The verdict from known_hosts lines alone: revoked, verified, or (when a @cert-authority line
 * names the host) the CA lines to try; else changed or unknown.
 */
export function plainHostKeyStatus(l: HostKeyLookup, blob: Buffer): HostKeyStatus | { authorities: KnownHostEntry[] } {
  const key = blob.toString('base64');
  const offered: Offered = { name: l.name, keyType: keyTypeOf(blob), fingerprint: fingerprintOf(blob), files: l.files };
  // Stricter than OpenSSH (which reads @revoked lines of the matching hosts only): a revoked key is refused for every host.
  const revoked = l.entries.find((e) => e.marker === '@revoked' && e.key === key);
  if (revoked) return { ...offered, status: 'revoked', revoked: 'host key', entry: revoked };
  const mine = l.entries.filter((e) => !e.marker && entryMatches(e, l.name));
  const same = mine.find((e) => e.key === key);
  if (same) return { ...offered, status: 'verified', by: 'known-hosts', entry: same };
  const authorities = l.entries.filter((e) => e.marker === '@cert-authority' && entryMatches(e, l.name));
  if (authorities.length) return { authorities };
  return otherwise(l, offered, blob);
}

/** Changed when a line names the host with another key of the offered type, else unknown. */
function otherwise(l: HostKeyLookup, offered: Offered, blob: Buffer, certificate?: CertificateRefusal): RefusedHostKey {
  const keyType = keyTypeOf(blob);
  const known = l.entries.filter((e) => !e.marker && e.keyType === keyType && entryMatches(e, l.name));
  const cert = certificate ? { certificate } : {};
  return known.length ? { ...offered, status: 'changed', known, ...cert } : { ...offered, status: 'unknown', ...cert };
}

/** What the certificate probe brought, or why it brought nothing. */
export type CertificateFetch = CertificateOffer | { error: string };

/**
 * The key's standing once the certificate is in (host-cert-probe.ts fetched it for the key's
 * type): verified by a @cert-authority line, revoked (the CA key is), or refused as plain lines say.
 */
export function certifiedHostKeyStatus(l: HostKeyLookup, blob: Buffer, authorities: KnownHostEntry[], got: CertificateFetch, now = new Date()): HostKeyStatus {
  const offered: Offered = { name: l.name, keyType: keyTypeOf(blob), fingerprint: fingerprintOf(blob), files: l.files };
  const refused = (problem: string, summary?: CertificateSummary) => otherwise(l, offered, blob, { problem, ...(summary ? { summary } : {}), authorities });
  if ('error' in got) return refused(`its host certificate could not be fetched: ${got.error}`);
  if (!got.certificate) {
    const certs = got.serverHostKeyAlgorithms.filter((a) => a.includes('-cert-'));
    return refused(`the server has no host certificate for its ${offered.keyType} key${certs.length ? ` (it has ${certs.join(', ')})` : ''}`);
  }
  const revoked = l.entries.filter((e) => e.marker === '@revoked');
  const v = checkHostCertificate({ blob: got.certificate, hostKey: blob, principal: l.principal, authorities, revoked, now });
  if (v.ok) return { ...offered, status: 'verified', by: 'cert-authority', entry: v.authority, certificate: summarize(v.cert) };
  const summary = v.cert ? summarize(v.cert) : undefined;
  if (v.revokedBy) return { ...offered, status: 'revoked', revoked: 'CA key', entry: v.revokedBy, ...(summary ? { certificate: summary } : {}) };
  return refused(v.problem, summary);
}

/** The whole check: known_hosts lines first, then, where a CA line names the host, its certificate. */
export async function checkHostKey(l: HostKeyLookup, blob: Buffer, fetchCertificate: (algorithms: string[]) => Promise<CertificateOffer>): Promise<HostKeyStatus> {
  const plain = plainHostKeyStatus(l, blob);
  if (!('authorities' in plain)) return plain;
  let got: CertificateFetch;
  try {
    got = await fetchCertificate(certAlgorithmsFor(keyTypeOf(blob)));
  } catch (e) {
    got = { error: (e as Error).message };
  }
  return certifiedHostKeyStatus(l, blob, plain.authorities, got);
}

/**
 * ssh2's hostVerifier (asynchronous form) for one host: checkHostKey, with the certificate
 * fetched over a fresh stream from `dial` (to the same sshd, by the same route as the connection:
 * through the jump host when there is one). `done` gets the status before ssh2 hears the verdict.
 */
export function hostKeyVerifier(l: HostKeyLookup, dial: () => Promise<Duplex>, timeoutMs: number, done: (s: HostKeyStatus) => void) {
  return (key: Buffer, verify: (ok: boolean) => void): void => {
    const fetchCertificate = async (algorithms: string[]) => fetchHostCertificate(await dial(), algorithms, timeoutMs);
    checkHostKey(l, key, fetchCertificate).then(
      (s) => {
        done(s);
        verify(s.status === 'verified');
      },
      () => verify(false), // not reached: checkHostKey turns every failure into a status
    );
  };
}

/** Host key algorithms to offer, so a server with several keys shows the one we know. */
export function knownKeyAlgorithms(l: HostKeyLookup): string[] {
  const types = new Set(l.entries.filter((e) => !e.marker && entryMatches(e, l.name)).map((e) => e.keyType));
  const algs: string[] = [];
  for (const t of types) {
    if (t === 'ssh-rsa') algs.push('rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa');
    else algs.push(t);
  }
  return algs;
}
