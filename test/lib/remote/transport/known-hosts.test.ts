import crypto from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { entryMatches, fingerprint, keyTypeOf, knownKeyAlgorithms, lookupName, parseKnownHosts, verifyHostKey } from '../../../../lib/remote/transport/known-hosts';

function blob(type: string, body: string): Buffer {
  const t = Buffer.from(type);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(t.length);
  return Buffer.concat([len, t, Buffer.from(body)]);
}
const keyA = blob('ssh-ed25519', 'AAAA-key-a');
const keyB = blob('ssh-ed25519', 'BBBB-key-b');
const rsa = blob('ssh-rsa', 'RSA-key');

function hashed(name: string, salt = crypto.randomBytes(20)): string {
  const mac = crypto.createHmac('sha1', salt).update(name).digest('base64');
  return `|1|${salt.toString('base64')}|${mac}`;
}

describe('known_hosts', () => {
  it('looks hosts up as OpenSSH does', () => {
    expect(lookupName('example.com', 22)).toBe('example.com');
    expect(lookupName('127.0.0.1', 2222)).toBe('[127.0.0.1]:2222');
    expect(keyTypeOf(keyA)).toBe('ssh-ed25519');
  });

  it('matches plain, [host]:port, hashed, glob and negated entries', () => {
    const text = [
      `# comment`,
      `example.com,10.0.0.1 ssh-ed25519 ${keyA.toString('base64')}`,
      `[127.0.0.1]:2222 ssh-ed25519 ${keyA.toString('base64')} comment here`,
      `${hashed('[h.test]:2200')} ssh-ed25519 ${keyA.toString('base64')}`,
      `*.corp,!bad.corp ssh-ed25519 ${keyA.toString('base64')}`,
    ].join('\n');
    const e = parseKnownHosts(text, 'kh');
    expect(e).toHaveLength(4);
    expect(entryMatches(e[0]!, 'example.com', 22)).toBe(true);
    expect(entryMatches(e[0]!, 'example.com', 2222)).toBe(false);
    expect(entryMatches(e[1]!, '127.0.0.1', 2222)).toBe(true);
    expect(entryMatches(e[1]!, '127.0.0.1', 22)).toBe(false);
    expect(entryMatches(e[2]!, 'h.test', 2200)).toBe(true);
    expect(entryMatches(e[2]!, 'h.test', 22)).toBe(false);
    expect(entryMatches(e[3]!, 'a.corp', 22)).toBe(true);
    expect(entryMatches(e[3]!, 'bad.corp', 22)).toBe(false);
  });

  it('accepts the known key, calls a different one of the same type CHANGED, and an unlisted host unknown', () => {
    const e = parseKnownHosts(`[127.0.0.1]:2222 ssh-ed25519 ${keyA.toString('base64')}\n@revoked * ssh-rsa ${rsa.toString('base64')}`, 'kh');
    expect(verifyHostKey(e, '127.0.0.1', 2222, keyA)).toMatchObject({ ok: true });
    expect(verifyHostKey(e, '127.0.0.1', 2222, keyB)).toMatchObject({ ok: false, reason: 'changed', fingerprint: fingerprint(keyB.toString('base64')) });
    expect(verifyHostKey(e, '127.0.0.1', 2223, keyA)).toMatchObject({ ok: false, reason: 'unknown' });
    expect(verifyHostKey(e, '127.0.0.1', 2222, rsa)).toMatchObject({ ok: false, reason: 'revoked' });
  });

  it('offers the key algorithms known for the host first', () => {
    const e = parseKnownHosts(`[h]:2 ssh-rsa ${rsa.toString('base64')}\n[h]:2 ssh-ed25519 ${keyA.toString('base64')}`, 'kh');
    expect(knownKeyAlgorithms(e, 'h', 2)).toEqual(['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa', 'ssh-ed25519']);
    expect(knownKeyAlgorithms(e, 'other', 22)).toEqual([]);
  });
});
