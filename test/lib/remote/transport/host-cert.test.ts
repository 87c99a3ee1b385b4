// Host certificates made by ssh-keygen, parsed and judged as OpenSSH's sshkey_cert_check_host does.
import { afterAll, describe, expect, it } from 'vitest';
import { checkHostCertificate, parseCertificate, verifySshSignature } from '../../../../lib/remote/transport/host-cert';
import { certAlgorithmsFor } from '../../../../lib/remote/transport/host-cert-probe';
import { KeyDir } from '../../../support/ssh-keygen';

const keys = new KeyDir();
afterAll(() => keys.remove());
const ca = keys.key('ca');
const otherCa = keys.key('other_ca');
const host = keys.key('host');
const other = keys.key('other_host');
const now = new Date();

const check = (blob: Buffer, o: { principal?: string; hostKey?: Buffer; revoked?: { key: string; name: string }[]; at?: Date } = {}) =>
  checkHostCertificate({
    blob,
    hostKey: o.hostKey ?? host.blob,
    principal: o.principal ?? 'web1.example.com',
    authorities: [{ key: ca.base64, name: 'ca line' }],
    revoked: o.revoked ?? [],
    now: o.at ?? now,
  });

describe('host certificates', () => {
  it('reads what ssh-keygen wrote: key, serial, type, id, principals, validity', () => {
    const c = parseCertificate(keys.sign(ca, host, ['-h', '-z', '42', '-n', 'web1.example.com,10.0.0.5', '-V', '20250101000000Z:20350101000000Z']));
    expect(c).toMatchObject({ type: 'ssh-ed25519-cert-v01@openssh.com', serial: 42n, certType: 2, keyId: 'id-host', principals: ['web1.example.com', '10.0.0.5'], criticalOptions: [] });
    expect(c.publicKey.equals(host.blob)).toBe(true);
    expect(c.signatureKey.equals(ca.blob)).toBe(true);
    expect(new Date(Number(c.validAfter) * 1000).toISOString()).toBe('2025-01-01T00:00:00.000Z');
    expect(new Date(Number(c.validBefore) * 1000).toISOString()).toBe('2035-01-01T00:00:00.000Z');
  });

  it('certifies RSA and ECDSA host keys too: the key inside is the plain key the connection sees', () => {
    for (const k of [keys.key('hrsa', 'rsa', 1024), keys.key('hec256', 'ecdsa', 256), keys.key('hec521', 'ecdsa', 521)]) {
      const c = parseCertificate(keys.sign(ca, k, ['-h', '-n', 'web1.example.com']));
      expect(c.type, k.type).toBe(`${k.type}-cert-v01@openssh.com`);
      expect(c.publicKey.equals(k.blob), k.type).toBe(true);
      expect(check(keys.sign(ca, k, ['-h', '-n', 'web1.example.com']), { hostKey: k.blob }), k.type).toMatchObject({ ok: true });
    }
  });

  it('verifies the signature of ed25519, ECDSA (256, 384, 521) and RSA (SHA-2) CAs, and not a tampered one', () => {
    const cas = [ca, keys.key('ca256', 'ecdsa', 256), keys.key('ca384', 'ecdsa', 384), keys.key('ca521', 'ecdsa', 521), keys.key('carsa', 'rsa', 1024)];
    for (const k of cas) {
      const c = parseCertificate(keys.sign(k, host, ['-h', '-n', 'a']));
      expect(verifySshSignature(c.signatureKey, c.signature, c.signed), k.type).toBe(true);
      const tampered = Buffer.from(c.signed);
      tampered[tampered.length - 1]! ^= 1;
      expect(verifySshSignature(c.signatureKey, c.signature, tampered), k.type).toBe(false);
    }
  });

  it('refuses an RSA CA signature made with SHA-1 (ssh-rsa), as OpenSSH does by default', () => {
    const rsaCa = keys.key('carsa1', 'rsa', 1024);
    const c = parseCertificate(keys.sign(rsaCa, host, ['-h', '-n', 'a', '-t', 'ssh-rsa']));
    expect(() => verifySshSignature(c.signatureKey, c.signature, c.signed)).toThrow(/ssh-rsa is not allowed for a CA/);
  });

  it('accepts a host certificate by a listed CA for the host name, its principals matched as patterns', () => {
    expect(check(keys.sign(ca, host, ['-h', '-n', 'web1.example.com']))).toMatchObject({ ok: true, authority: { name: 'ca line' } });
    expect(check(keys.sign(ca, host, ['-h', '-n', '*.example.com']))).toMatchObject({ ok: true });
    expect(check(keys.sign(ca, host, ['-h', '-n', 'web?.example.com']), { principal: 'web12.example.com' })).toMatchObject({ ok: false });
  });

  it('refuses every certificate OpenSSH refuses, saying why', () => {
    const valid = keys.sign(ca, host, ['-h', '-n', 'web1.example.com']);
    expect(check(valid, { principal: 'web2.example.com' })).toMatchObject({ ok: false, problem: 'the certificate is for web1.example.com, not web2.example.com' });
    expect(check(valid, { hostKey: other.blob })).toMatchObject({ ok: false, problem: expect.stringMatching(/^the certificate is for another key \(SHA256:/) });
    expect(check(keys.sign(otherCa, host, ['-h', '-n', 'web1.example.com']))).toMatchObject({ ok: false, problem: expect.stringMatching(/signed by CA ssh-ed25519 SHA256:\S+, which no matching @cert-authority line names/) });
    expect(check(keys.sign(ca, host, ['-n', 'web1.example.com']))).toMatchObject({ ok: false, problem: 'the certificate is not a host certificate (type 1)' });
    expect(check(keys.sign(ca, host, ['-h']))).toMatchObject({ ok: false, problem: 'the certificate lists no principals' });
    expect(check(keys.sign(ca, host, ['-h', '-n', 'web1.example.com', '-V', '20200101000000Z:20200102000000Z']))).toMatchObject({ ok: false, problem: 'the certificate expired at 2020-01-02T00:00:00Z' });
    expect(check(keys.sign(ca, host, ['-h', '-n', 'web1.example.com', '-V', '20900101000000Z:20900102000000Z']))).toMatchObject({ ok: false, problem: 'the certificate is not valid before 2090-01-01T00:00:00Z' });
    expect(check(keys.sign(ca, host, ['-h', '-n', 'web1.example.com', '-O', 'critical:foo@example.com=x']))).toMatchObject({
      ok: false,
      problem: 'the certificate has critical options (foo@example.com), which host certificates do not define',
    });
    expect(check(Buffer.from('not a certificate'))).toMatchObject({ ok: false, problem: expect.stringMatching(/^the certificate is malformed/) });
  });

  it('a revoked CA key refuses the certificate even though it is otherwise good', () => {
    const revoked = { key: ca.base64, name: 'revoked line' };
    expect(check(keys.sign(ca, host, ['-h', '-n', 'web1.example.com']), { revoked: [revoked] })).toMatchObject({ ok: false, revokedBy: revoked });
  });

  it('validity is valid_after <= now < valid_before', () => {
    const c = keys.sign(ca, host, ['-h', '-n', 'web1.example.com', '-V', '20300101000000Z:20300102000000Z']);
    expect(check(c, { at: new Date('2030-01-01T00:00:00Z') })).toMatchObject({ ok: true });
    expect(check(c, { at: new Date('2030-01-01T23:59:59Z') })).toMatchObject({ ok: true });
    expect(check(c, { at: new Date('2030-01-02T00:00:00Z') })).toMatchObject({ ok: false });
  });

  it('asks for the certificate algorithms of the key type the connection saw', () => {
    expect(certAlgorithmsFor('ssh-ed25519')).toEqual(['ssh-ed25519-cert-v01@openssh.com']);
    expect(certAlgorithmsFor('ecdsa-sha2-nistp256')).toEqual(['ecdsa-sha2-nistp256-cert-v01@openssh.com']);
    expect(certAlgorithmsFor('ssh-rsa')[0]).toBe('rsa-sha2-512-cert-v01@openssh.com');
  });
});
