// Host key verification against OpenSSH known_hosts files. ssh2 accepts ANY key unless told
// otherwise, so this is what stands between a deploy and a man in the middle.
import crypto from 'node:crypto';

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
  return new RegExp(`^${body}$`, 'i');
}

export function entryMatches(e: KnownHostEntry, host: string, port: number): boolean {
  const name = lookupName(host, port);
  if (e.hosts.startsWith('|1|')) {
    const [, , salt, hash] = e.hosts.split('|');
    if (!salt || !hash) return false;
    const mac = crypto.createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64');
    return mac === hash;
  }
  let matched = false;
  for (const p of e.hosts.split(',')) {
    const negated = p.startsWith('!');
    const pattern = negated ? p.slice(1) : p;
    if (globToRegExp(pattern).test(name)) {
      if (negated) return false;
      matched = true;
    }
  }
  return matched;
}

export function fingerprint(keyBase64: string): string {
  return 'SHA256:' + crypto.createHash('sha256').update(Buffer.from(keyBase64, 'base64')).digest('base64').replace(/=+$/, '');
}

/** The key type named inside an SSH public key blob (its first length-prefixed string). */
export function keyTypeOf(blob: Buffer): string {
  if (blob.length < 4) return 'unknown';
  const n = blob.readUInt32BE(0);
  return blob.subarray(4, 4 + n).toString('latin1');
}

export type HostKeyVerdict =
  | { ok: true; entry: KnownHostEntry }
  | { ok: false; reason: 'unknown' | 'changed' | 'revoked'; keyType: string; fingerprint: string; known: KnownHostEntry[] };

export function verifyHostKey(entries: KnownHostEntry[], host: string, port: number, blob: Buffer): HostKeyVerdict {
  const key = blob.toString('base64');
  const keyType = keyTypeOf(blob);
  const fp = fingerprint(key);
  const mine = entries.filter((e) => e.marker !== '@cert-authority' && entryMatches(e, host, port));
  if (entries.some((e) => e.marker === '@revoked' && e.key === key)) return { ok: false, reason: 'revoked', keyType, fingerprint: fp, known: mine };
  const same = mine.find((e) => !e.marker && e.key === key);
  if (same) return { ok: true, entry: same };
  const sameType = mine.filter((e) => !e.marker && e.keyType === keyType);
  return { ok: false, reason: sameType.length ? 'changed' : 'unknown', keyType, fingerprint: fp, known: sameType };
}

/** Host key algorithms to offer, so a server with several keys shows the one we know. */
export function knownKeyAlgorithms(entries: KnownHostEntry[], host: string, port: number): string[] {
  const types = new Set(entries.filter((e) => !e.marker && entryMatches(e, host, port)).map((e) => e.keyType));
  const algs: string[] = [];
  for (const t of types) {
    if (t === 'ssh-rsa') algs.push('rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa');
    else algs.push(t);
  }
  return algs;
}

export function describeVerdict(v: Exclude<HostKeyVerdict, { ok: true }>, o: { host: string; port: number; files: string[] }): string {
  const name = lookupName(o.host, o.port);
  const files = o.files.join(', ');
  if (v.reason === 'revoked') return `the server's host key ${v.keyType} ${v.fingerprint} is marked @revoked in ${files}; refusing to connect`;
  if (v.reason === 'changed') {
    const was = v.known.map((e) => `${e.file}:${e.line} (${fingerprint(e.key)})`).join(', ');
    return (
      `HOST KEY CHANGED: the server offered ${v.keyType} ${v.fingerprint} but ${was} says otherwise. ` +
      `This may be a man-in-the-middle attack, or a reinstalled server. Once you have checked the new fingerprint, ` +
      `remove the old entry with: ssh-keygen -R '${name}'${o.files[0] ? ` -f ${o.files[0]}` : ''}`
    );
  }
  const scan = o.port === 22 ? `ssh-keyscan -t ${v.keyType} ${o.host}` : `ssh-keyscan -p ${o.port} -t ${v.keyType} ${o.host}`;
  return (
    `unknown host key ${v.keyType} ${v.fingerprint} (not in ${files || 'any known_hosts file'}). ` +
    `Check the fingerprint with the server's administrator, then add it: ${scan} >> ${o.files[0] ?? '~/.ssh/known_hosts'}`
  );
}
