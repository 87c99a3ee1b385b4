// What a refused host key is told as: the host, the key type and fingerprint, the files
// consulted, and the exact command that fixes it once the fingerprint has been checked.
import { q } from '../commands';
import type { HostKeyLookup, HostKeyStatus, KnownHostEntry, RefusedHostKey } from './known-hosts';
import { fingerprintOf } from './ssh-wire';

const at = (e: KnownHostEntry) => `${e.file}:${e.line}`;

function consulted(l: Pick<HostKeyLookup, 'files'>): string {
  const there = l.files.filter((f) => f.exists).map((f) => f.path);
  const missing = l.files.filter((f) => !f.exists).map((f) => f.path);
  if (!there.length) return `no known_hosts file exists (${missing.join(', ') || 'none configured'})`;
  return `not in ${there.join(', ')}${missing.length ? `; ${missing.join(', ')} ${missing.length > 1 ? 'do' : 'does'} not exist` : ''}`;
}

/** Where a new key goes: the first user file, as ssh does (else the first system-wide one). */
function target(l: Pick<HostKeyLookup, 'files'>): string {
  return (l.files.find((f) => f.scope === 'user') ?? l.files[0])?.path ?? '~/.ssh/known_hosts';
}

/** `ssh-keyscan` for the host, its output renamed to the HostKeyAlias when there is one. */
export function keyscanCommand(l: Pick<HostKeyLookup, 'host' | 'port' | 'hostKeyAlias' | 'files'>, keyType: string): string {
  const scan = ['ssh-keyscan', ...(l.port === 22 ? [] : ['-p', String(l.port)]), '-t', keyType, l.host].map(q).join(' ');
  const rename = l.hostKeyAlias ? ` | awk -v n=${q(l.hostKeyAlias)} '{ $1 = n; print }'` : '';
  return `${scan}${rename} >> ${q(target(l))}`;
}

function certificateNote(v: RefusedHostKey, l: HostKeyLookup): string {
  if (v.status === 'revoked' || !v.certificate) return '';
  const c = v.certificate;
  const lines = c.authorities.map(at).join(', ');
  const sign = `ssh-keygen -s <CA key> -h -I <key id> -n ${q(l.principal)} <host key>.pub`;
  return ` The @cert-authority line${c.authorities.length > 1 ? 's' : ''} at ${lines} name${c.authorities.length > 1 ? '' : 's'} this host, but ${c.problem}; to trust the host through the CA, sign its key (${sign}) and serve it with sshd's HostCertificate.`;
}

function revokedMessage(v: Extract<RefusedHostKey, { status: 'revoked' }>): string {
  if (v.revoked === 'CA key') {
    const ca = v.certificate ? `${v.certificate.caKeyType} ${v.certificate.caFingerprint}` : 'its CA';
    return (
      `host key ${v.keyType} ${v.fingerprint} of ${v.name} is certified by CA ${ca}, which ${at(v.entry)} marks @revoked; refusing to connect. ` +
      `Have the host key signed by a CA that is not revoked.`
    );
  }
  return (
    `the server's host key ${v.keyType} ${v.fingerprint} is marked @revoked in ${at(v.entry)}; refusing to connect ` +
    `(a revoked key may be a stolen one). Ask the server's administrator for its new key.`
  );
}

/** The message for a refused key: why, what was consulted, and the command that fixes it. */
export function describeRefusal(v: RefusedHostKey, l: HostKeyLookup): string {
  if (v.status === 'revoked') return revokedMessage(v);
  const cert = certificateNote(v, l);
  if (v.status === 'changed') {
    const was = v.known.map((e) => `${at(e)} (${fingerprintOf(Buffer.from(e.key, 'base64'))})`).join(', ');
    const files = [...new Set(v.known.map((e) => e.file))];
    const remove = files.map((f) => `ssh-keygen -R ${q(l.name)} -f ${q(f)}`).join(' && ');
    return (
      `HOST KEY CHANGED: the server offered ${v.keyType} ${v.fingerprint} but ${was} says otherwise for ${v.name}. ` +
      `This may be a man-in-the-middle attack, or a reinstalled server.${cert} Once you have checked the new fingerprint ` +
      `with the server's administrator, remove the old entry with: ${remove}; then add the new one: ${keyscanCommand(l, v.keyType)}`
    );
  }
  return (
    `unknown host key ${v.keyType} ${v.fingerprint} for ${v.name} (${consulted(l)}).${cert} ` +
    `Check the fingerprint with the server's administrator, then add it: ${keyscanCommand(l, v.keyType)}`
  );
}

/** One line on how a host key stands (for `gulp doctor`); describeRefusal says how to fix a refused one. */
export function hostKeySummary(s: HostKeyStatus): string {
  const key = `${s.keyType} ${s.fingerprint}`;
  if (s.status === 'verified' && s.by === 'known-hosts') return `${key} verified by ${at(s.entry)}`;
  if (s.status === 'verified') {
    const c = s.certificate;
    return `${key} verified by CA ${c.caKeyType} ${c.caFingerprint} (${at(s.entry)}): certificate "${c.keyId}" for ${c.principals.join(', ')}, valid until ${c.validBefore}`;
  }
  if (s.status === 'revoked') return `${key} REVOKED: the ${s.revoked} is marked @revoked in ${at(s.entry)}`;
  const cert = s.certificate ? `; ${s.certificate.problem}` : '';
  if (s.status === 'changed') return `${key} CHANGED: ${s.known.map(at).join(', ')} ${s.known.length > 1 ? 'say' : 'says'} otherwise${cert}`;
  return `${key} unknown: in no known_hosts file for ${s.name}${cert}`;
}
