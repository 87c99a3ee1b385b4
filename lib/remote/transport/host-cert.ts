// OpenSSH host certificates (PROTOCOL.certkeys): what a `@cert-authority` line in known_hosts
// vouches for. Parsed and checked here, signature included, with node:crypto: ssh2 cannot
// negotiate certificates, so docs/HOST-KEYS.md's probe brings the certificate and this judges it.
import crypto from 'node:crypto';
import { fingerprintOf, keyTypeOf, unpackStrings, unsignedMpint, WireError, WireReader, wireStrings } from './ssh-wire';

const CERT_SUFFIX = '-cert-v01@openssh.com';
/** How many wire fields a public key of each plain type has (DSA and security keys are not host keys today). */
const KEY_FIELDS: Readonly<Record<string, number>> = { 'ssh-ed25519': 1, 'ssh-rsa': 2, 'ecdsa-sha2-nistp256': 2, 'ecdsa-sha2-nistp384': 2, 'ecdsa-sha2-nistp521': 2 };
export const SSH2_CERT_TYPE_HOST = 2;
const FOREVER = 0xffffffffffffffffn;

export interface Certificate {
  /** e.g. ssh-ed25519-cert-v01@openssh.com */
  type: string;
  /** The certified key as a plain public key blob: what the connection proves the server holds. */
  publicKey: Buffer;
  serial: bigint;
  /** 1 user, 2 host */
  certType: number;
  keyId: string;
  principals: string[];
  /** Seconds since the epoch; validBefore 2^64-1 is "forever". */
  validAfter: bigint;
  validBefore: bigint;
  criticalOptions: string[];
  /** The CA's public key blob. */
  signatureKey: Buffer;
  signature: Buffer;
  /** The bytes the signature covers: everything up to and including the signature key. */
  signed: Buffer;
}

/** The names in a critical options (or extensions) field: (name, data) string pairs. */
function optionNames(buf: Buffer): string[] {
  const r = new WireReader(buf);
  const out: string[] = [];
  while (!r.done) {
    out.push(r.string());
    r.bytes();
  }
  return out;
}

/** Throws WireError on anything that is not a well-formed certificate of a supported type. */
export function parseCertificate(blob: Buffer): Certificate {
  const r = new WireReader(blob);
  const type = r.string();
  const keyType = type.endsWith(CERT_SUFFIX) ? type.slice(0, -CERT_SUFFIX.length) : '';
  const fields = KEY_FIELDS[keyType];
  if (!fields) throw new WireError(`${type} is not a supported certificate type`);
  r.bytes(); // nonce
  const keyStart = r.offset;
  for (let i = 0; i < fields; i++) r.bytes();
  const publicKey = Buffer.concat([wireStrings(keyType), blob.subarray(keyStart, r.offset)]);
  const serial = r.u64();
  const certType = r.u32();
  const keyId = r.string();
  const principals = unpackStrings(r.bytes());
  const validAfter = r.u64();
  const validBefore = r.u64();
  const criticalOptions = optionNames(r.bytes());
  optionNames(r.bytes()); // extensions: none are defined for hosts, unknown ones are ignored by design
  r.bytes(); // reserved
  const signatureKey = r.bytes();
  const signed = blob.subarray(0, r.offset);
  const signature = r.bytes();
  if (!r.done) throw new WireError('trailing bytes after the signature');
  return { type, publicKey, serial, certType, keyId, principals, validAfter, validBefore, criticalOptions, signatureKey, signature, signed };
}

const b64url = (b: Buffer) => b.toString('base64url');
const EC_CURVES: Readonly<Record<string, { crv: string; hash: string; size: number }>> = {
  nistp256: { crv: 'P-256', hash: 'sha256', size: 32 },
  nistp384: { crv: 'P-384', hash: 'sha384', size: 48 },
  nistp521: { crv: 'P-521', hash: 'sha512', size: 66 },
};

/** r and s (mpints) as the fixed-width r||s node:crypto reads with dsaEncoding ieee-p1363. */
function ecdsaSignature(blob: Buffer, size: number): Buffer {
  const r = new WireReader(blob);
  const parts = [unsignedMpint(r.bytes()), unsignedMpint(r.bytes())];
  if (parts.some((p) => p.length > size)) throw new WireError('ECDSA signature too long');
  return Buffer.concat(parts.map((p) => Buffer.concat([Buffer.alloc(size - p.length), p])));
}

/**
 * Whether `signature` (an SSH signature blob) by the CA key `caKey` covers `data`. Signature
 * algorithms are OpenSSH's default CASignatureAlgorithms: no SHA-1 (`ssh-rsa`) signatures.
 * Throws WireError naming what is not supported.
 */
export function verifySshSignature(caKey: Buffer, signature: Buffer, data: Buffer): boolean {
  const k = new WireReader(caKey);
  const keyType = k.string();
  const s = new WireReader(signature);
  const alg = s.string();
  const sig = s.bytes();
  if (keyType === 'ssh-ed25519') {
    if (alg !== keyType) throw new WireError(`an ${keyType} CA key cannot make a ${alg} signature`);
    const key = crypto.createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: b64url(k.bytes()) }, format: 'jwk' });
    return crypto.verify(null, data, key, sig);
  }
  if (keyType === 'ssh-rsa') {
    const hash = alg === 'rsa-sha2-256' ? 'sha256' : alg === 'rsa-sha2-512' ? 'sha512' : undefined;
    if (!hash) throw new WireError(`signature algorithm ${alg} is not allowed for a CA (OpenSSH's CASignatureAlgorithms: rsa-sha2-256, rsa-sha2-512)`);
    const e = unsignedMpint(k.bytes());
    const n = unsignedMpint(k.bytes());
    const key = crypto.createPublicKey({ key: { kty: 'RSA', n: b64url(n), e: b64url(e) }, format: 'jwk' });
    return crypto.verify(hash, data, key, sig);
  }
  const curve = EC_CURVES[keyType.replace(/^ecdsa-sha2-/, '')];
  if (keyType.startsWith('ecdsa-sha2-') && curve) {
    if (alg !== keyType) throw new WireError(`an ${keyType} CA key cannot make a ${alg} signature`);
    k.bytes(); // the curve name again
    const q = k.bytes(); // uncompressed point: 04 || x || y
    if (q[0] !== 4 || q.length !== 1 + 2 * curve.size) throw new WireError('ECDSA CA key is not an uncompressed point');
    const key = crypto.createPublicKey({ key: { kty: 'EC', crv: curve.crv, x: b64url(q.subarray(1, 1 + curve.size)), y: b64url(q.subarray(1 + curve.size)) }, format: 'jwk' });
    return crypto.verify(curve.hash, data, { key, dsaEncoding: 'ieee-p1363' }, ecdsaSignature(sig, curve.size));
  }
  throw new WireError(`CA key type ${keyType} is not supported`);
}

/** OpenSSH's match_pattern: `*` and `?`, case-sensitive, the whole name. */
function matchPattern(name: string, pattern: string): boolean {
  const body = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${body}$`, 's').test(name);
}

export function certTime(t: bigint): string {
  if (t === FOREVER) return 'forever';
  return t > 8_640_000_000_000n ? `${t}` : new Date(Number(t) * 1000).toISOString().replace('.000Z', 'Z');
}

/** What `gulp doctor` and the error messages tell about a certificate. */
export interface CertificateSummary {
  type: string;
  keyId: string;
  serial: string;
  principals: string[];
  validAfter: string;
  validBefore: string;
  caKeyType: string;
  caFingerprint: string;
}

export function summarize(c: Certificate): CertificateSummary {
  return {
    type: c.type,
    keyId: c.keyId,
    serial: c.serial.toString(),
    principals: c.principals,
    validAfter: certTime(c.validAfter),
    validBefore: certTime(c.validBefore),
    caKeyType: keyTypeOf(c.signatureKey),
    caFingerprint: fingerprintOf(c.signatureKey),
  };
}

export type CertVerdict<A> =
  | { ok: true; cert: Certificate; authority: A }
  | { ok: false; problem: string; cert?: Certificate; revokedBy?: A };

export interface CertCheckInput<A extends { key: string }> {
  blob: Buffer;
  /** The plain host key the connection proved the server holds. */
  hostKey: Buffer;
  /** The host name (or HostKeyAlias) a principal must match. */
  principal: string;
  /** The @cert-authority lines whose host patterns match the host. */
  authorities: readonly A[];
  /** Every @revoked line. */
  revoked: readonly A[];
  now: Date;
}

/** sshkey_cert_check_host, and the CA lookup of check_host_key, as OpenSSH does them. */
export function checkHostCertificate<A extends { key: string }>(o: CertCheckInput<A>): CertVerdict<A> {
  let cert: Certificate;
  try {
    cert = parseCertificate(o.blob);
  } catch (e) {
    return { ok: false, problem: `the certificate is malformed (${(e as Error).message})` };
  }
  const ca = `${keyTypeOf(cert.signatureKey)} ${fingerprintOf(cert.signatureKey)}`;
  const problem = (p: string, revokedBy?: A): CertVerdict<A> => ({ ok: false, problem: p, cert, ...(revokedBy ? { revokedBy } : {}) });
  if (cert.certType !== SSH2_CERT_TYPE_HOST) return problem(`the certificate is not a host certificate (type ${cert.certType})`);
  if (!cert.publicKey.equals(o.hostKey)) return problem(`the certificate is for another key (${fingerprintOf(cert.publicKey)})`);
  const caKey = cert.signatureKey.toString('base64');
  const revokedBy = o.revoked.find((e) => e.key === caKey);
  if (revokedBy) return problem(`its CA key ${ca} is marked @revoked`, revokedBy);
  const authority = o.authorities.find((e) => e.key === caKey);
  if (!authority) return problem(`the certificate is signed by CA ${ca}, which no matching @cert-authority line names`);
  try {
    if (!verifySshSignature(cert.signatureKey, cert.signature, cert.signed)) return problem(`the certificate's signature by CA ${ca} does not verify`);
  } catch (e) {
    return problem(`the certificate's signature cannot be checked: ${(e as Error).message}`);
  }
  const now = BigInt(Math.floor(o.now.getTime() / 1000));
  if (now < cert.validAfter) return problem(`the certificate is not valid before ${certTime(cert.validAfter)}`);
  if (now >= cert.validBefore) return problem(`the certificate expired at ${certTime(cert.validBefore)}`);
  if (!cert.principals.length) return problem('the certificate lists no principals');
  if (!cert.principals.some((p) => matchPattern(o.principal, p))) return problem(`the certificate is for ${cert.principals.join(', ')}, not ${o.principal}`);
  if (cert.criticalOptions.length) return problem(`the certificate has critical options (${cert.criticalOptions.join(', ')}), which host certificates do not define`);
  return { ok: true, cert, authority };
}
