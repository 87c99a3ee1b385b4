// known_hosts as OpenSSH reads it, against real keys, hashed entries and certificates made by ssh-keygen.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { describeRefusal, hostKeySummary } from '../../../../lib/remote/transport/host-key-messages';
import {
  checkHostKey,
  entryMatches,
  fingerprint,
  hostKeyLookup,
  keyTypeOf,
  knownKeyAlgorithms,
  lookupName,
  parseKnownHosts,
  plainHostKeyStatus,
  type HostKeyStatus,
  type RefusedHostKey,
} from '../../../../lib/remote/transport/known-hosts';
import { KeyDir } from '../../../support/ssh-keygen';

const keys = new KeyDir();
afterAll(() => keys.remove());
const keyA = keys.key('a');
const keyB = keys.key('b');
const rsa = keys.key('r', 'rsa', 1024);
const ca = keys.key('ca');

/** A lookup of host:port through these user files (and global files), HostKeyAlias optional. */
const lookup = (user: string[], o: { host?: string; port?: number; alias?: string; global?: string[] } = {}) =>
  hostKeyLookup({ hostname: o.host ?? 'web1.example.com', port: o.port ?? 2200, ...(o.alias ? { hostKeyAlias: o.alias } : {}), knownHostsFiles: user, globalKnownHostsFiles: o.global ?? [] });
const refused = (s: HostKeyStatus | { authorities: unknown }): RefusedHostKey => {
  if ('authorities' in s || s.status === 'verified') throw new Error(`expected a refusal, got ${JSON.stringify(s)}`);
  return s;
};

describe('known_hosts lines', () => {
  it('looks hosts up as OpenSSH does', () => {
    expect(lookupName('example.com', 22)).toBe('example.com');
    expect(lookupName('127.0.0.1', 2222)).toBe('[127.0.0.1]:2222');
    expect(keyTypeOf(keyA.blob)).toBe('ssh-ed25519');
    expect(fingerprint(keyA.base64)).toBe(execFileSync('ssh-keygen', ['-lf', `${keyA.file}.pub`]).toString().split(' ')[1]);
  });

  it('matches plain, [host]:port, glob, negated and comma-listed patterns, case-insensitively', () => {
    const e = parseKnownHosts(
      [
        `# comment`,
        `example.com,10.0.0.1 ${keyA.line}`,
        `[127.0.0.1]:2222 ${keyA.line} comment here`,
        `*.corp,!bad.corp ${keyA.line}`,
        `[db?.corp]:* ${keyA.line}`,
        `not-a-line`,
      ].join('\n'),
      'kh',
    );
    expect(e.map((x) => x.line)).toEqual([2, 3, 4, 5]);
    expect(entryMatches(e[0]!, 'example.com')).toBe(true);
    expect(entryMatches(e[0]!, 'EXAMPLE.com')).toBe(true);
    expect(entryMatches(e[0]!, '10.0.0.1')).toBe(true);
    expect(entryMatches(e[0]!, '[example.com]:2222')).toBe(false);
    expect(entryMatches(e[1]!, '[127.0.0.1]:2222')).toBe(true);
    expect(entryMatches(e[1]!, '127.0.0.1')).toBe(false);
    expect(entryMatches(e[2]!, 'a.corp')).toBe(true);
    expect(entryMatches(e[2]!, 'bad.corp')).toBe(false);
    expect(entryMatches(e[3]!, '[db1.corp]:2200')).toBe(true);
    expect(entryMatches(e[3]!, '[db10.corp]:2200')).toBe(false);
  });

  it('matches entries hashed by ssh-keygen -H (HMAC-SHA1), for the port they were hashed with', () => {
    const file = keys.file('hashed', [`[web1.example.com]:2200 ${keyA.line}`, `web2.example.com ${keyB.line}`]);
    execFileSync('ssh-keygen', ['-q', '-H', '-f', file], { stdio: 'ignore' });
    const e = parseKnownHosts(fs.readFileSync(file, 'utf8'), file);
    expect(e.every((x) => x.hosts.startsWith('|1|'))).toBe(true);
    expect(entryMatches(e[0]!, '[web1.example.com]:2200')).toBe(true);
    expect(entryMatches(e[0]!, 'web1.example.com')).toBe(false);
    expect(entryMatches(e[1]!, 'web2.example.com')).toBe(true);
    expect(plainHostKeyStatus(lookup([file]), keyA.blob)).toMatchObject({ status: 'verified', entry: { file, line: 1 } });
  });
});

describe('a host key judged by known_hosts files', () => {
  it('reads the user files, then the system-wide ones; a missing file is noted, not an error', () => {
    const user = keys.file('u1', [`[web1.example.com]:2200 ${keyB.line}`]);
    const global = keys.file('g1', [`# system-wide`, `[web1.example.com]:2200 ${keyA.line}`]);
    const missing = path.join(keys.dir, 'nope');
    const l = lookup([missing, user], { global: [global, `${missing}2`] });
    expect(l.files).toEqual([
      { path: missing, scope: 'user', exists: false },
      { path: user, scope: 'user', exists: true },
      { path: global, scope: 'global', exists: true },
      { path: `${missing}2`, scope: 'global', exists: false },
    ]);
    expect(plainHostKeyStatus(l, keyA.blob)).toMatchObject({ status: 'verified', by: 'known-hosts', entry: { file: global, line: 2 } });
    expect(plainHostKeyStatus(l, keyB.blob)).toMatchObject({ status: 'verified', entry: { file: user, line: 1 } });
    expect(hostKeySummary(plainHostKeyStatus(l, keyA.blob) as HostKeyStatus)).toBe(`ssh-ed25519 ${fingerprint(keyA.base64)} verified by ${global}:2`);
    expect(hostKeySummary(plainHostKeyStatus(l, rsa.blob) as HostKeyStatus)).toBe(`ssh-rsa ${fingerprint(rsa.base64)} unknown: in no known_hosts file for [web1.example.com]:2200`);
  });

  it('a key of a known type that is not the one on file is CHANGED; a host not on file is unknown', () => {
    const f = keys.file('kh-changed', [`[web1.example.com]:2200 ${keyA.line}`]);
    expect(plainHostKeyStatus(lookup([f]), keyB.blob)).toMatchObject({ status: 'changed', fingerprint: fingerprint(keyB.base64), known: [{ file: f, line: 1 }] });
    expect(plainHostKeyStatus(lookup([f], { port: 22 }), keyA.blob)).toMatchObject({ status: 'unknown', name: 'web1.example.com' });
    expect(plainHostKeyStatus(lookup([f]), rsa.blob)).toMatchObject({ status: 'unknown', keyType: 'ssh-rsa' });
  });

  it('HostKeyAlias is the name looked up instead of [host]:port', () => {
    const f = keys.file('kh-alias', [`[web1.example.com]:2200 ${keyB.line}`, `web1-alias ${keyA.line}`]);
    expect(plainHostKeyStatus(lookup([f], { alias: 'web1-alias' }), keyA.blob)).toMatchObject({ status: 'verified', name: 'web1-alias', entry: { line: 2 } });
    expect(plainHostKeyStatus(lookup([f], { alias: 'web1-alias' }), keyB.blob)).toMatchObject({ status: 'changed' });
    expect(lookup([f], { alias: 'web1-alias' })).toMatchObject({ name: 'web1-alias', principal: 'web1-alias' });
    expect(lookup([f])).toMatchObject({ name: '[web1.example.com]:2200', principal: 'web1.example.com' });
  });

  it('@revoked refuses a key even where a plain line would trust it, whatever host its line names', () => {
    const f = keys.file('kh-revoked', [`[web1.example.com]:2200 ${keyA.line}`, `@revoked other.example.com ${keyA.line}`]);
    expect(plainHostKeyStatus(lookup([f]), keyA.blob)).toMatchObject({ status: 'revoked', revoked: 'host key', entry: { line: 2 } });
  });

  it('offers the key algorithms known for the host', () => {
    const f = keys.file('kh-algs', [`[h]:2 ${rsa.line}`, `[h]:2 ${keyA.line}`, `@cert-authority [h]:2 ${ca.line}`]);
    expect(knownKeyAlgorithms(lookup([f], { host: 'h', port: 2 }))).toEqual(['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa', 'ssh-ed25519']);
    expect(knownKeyAlgorithms(lookup([f], { host: 'other', port: 22 }))).toEqual([]);
  });
});

describe('a host key judged by a @cert-authority line', () => {
  const fetchOf = (certificate?: Buffer) => async (algorithms: string[]) => {
    expect(algorithms).toEqual(['ssh-ed25519-cert-v01@openssh.com']);
    return { serverHostKeyAlgorithms: ['ssh-ed25519', ...(certificate ? algorithms : [])], ...(certificate ? { certificate } : {}) };
  };
  const signed = keys.sign(ca, keyA, ['-h', '-n', 'web1.example.com,web1-alias']);

  it('verifies a host whose known_hosts has only the CA line, naming the line and the certificate', async () => {
    const f = keys.file('kh-ca', [`@cert-authority *.example.com,[*.example.com]:* ${ca.line}`]);
    const s = await checkHostKey(lookup([f]), keyA.blob, fetchOf(signed));
    expect(hostKeySummary(s)).toBe(`ssh-ed25519 ${fingerprint(keyA.base64)} verified by CA ssh-ed25519 ${fingerprint(ca.base64)} (${f}:1): certificate "id-a" for web1.example.com, web1-alias, valid until forever`);
    expect(s).toMatchObject({ status: 'verified', by: 'cert-authority', entry: { file: f, line: 1 }, certificate: { keyId: 'id-a', principals: ['web1.example.com', 'web1-alias'] } });
    // with HostKeyAlias the CA line must match the alias, and a principal must be the alias
    const aliased = keys.file('kh-ca-alias', [`@cert-authority web1-alias ${ca.line}`]);
    expect(await checkHostKey(lookup([aliased], { alias: 'web1-alias' }), keyA.blob, fetchOf(signed))).toMatchObject({ status: 'verified', by: 'cert-authority' });
  });

  it('a CA line for other hosts is not consulted; a certificate that fails leaves the key unknown, saying why', async () => {
    const f = keys.file('kh-ca-other', [`@cert-authority *.other.test ${ca.line}`]);
    let asked = false;
    const s = await checkHostKey(lookup([f]), keyA.blob, async () => {
      asked = true;
      throw new Error('not to be called');
    });
    expect([s.status, asked]).toEqual(['unknown', false]);
    const mine = keys.file('kh-ca-mine', [`@cert-authority * ${ca.line}`]);
    expect(await checkHostKey(lookup([mine]), keyA.blob, fetchOf())).toMatchObject({ status: 'unknown', certificate: { problem: 'the server has no host certificate for its ssh-ed25519 key' } });
    const failing = async () => {
      throw new Error('ECONNREFUSED');
    };
    expect(await checkHostKey(lookup([mine]), keyA.blob, failing)).toMatchObject({ status: 'unknown', certificate: { problem: 'its host certificate could not be fetched: ECONNREFUSED' } });
    expect(await checkHostKey(lookup([mine], { host: 'web2.example.com' }), keyA.blob, fetchOf(signed))).toMatchObject({
      status: 'unknown',
      certificate: { problem: 'the certificate is for web1.example.com, web1-alias, not web2.example.com', summary: { keyId: 'id-a' } },
    });
  });

  it('a valid certificate wins over a stale plain line; a revoked CA key or host key refuses it', async () => {
    const stale = keys.file('kh-ca-stale', [`[web1.example.com]:2200 ${keyB.line}`, `@cert-authority * ${ca.line}`]);
    expect(await checkHostKey(lookup([stale]), keyA.blob, fetchOf(signed))).toMatchObject({ status: 'verified', by: 'cert-authority' });
    const revokedCa = keys.file('kh-ca-revoked', [`@cert-authority * ${ca.line}`, `@revoked * ${ca.line}`]);
    expect(await checkHostKey(lookup([revokedCa]), keyA.blob, fetchOf(signed))).toMatchObject({ status: 'revoked', revoked: 'CA key', entry: { line: 2 } });
    const revokedKey = keys.file('kh-ca-revoked-key', [`@cert-authority * ${ca.line}`, `@revoked * ${keyA.line}`]);
    expect(await checkHostKey(lookup([revokedKey]), keyA.blob, fetchOf(signed))).toMatchObject({ status: 'revoked', revoked: 'host key' });
  });
});

describe('what a refusal says', () => {
  it('unknown: the name, type, fingerprint, every file consulted, and the ssh-keyscan line to add it', () => {
    const f = keys.file('kh-msg', [`other ${keyB.line}`]);
    const missing = path.join(keys.dir, 'missing');
    const l = lookup([f], { global: [missing] });
    expect(describeRefusal(refused(plainHostKeyStatus(l, keyA.blob)), l)).toBe(
      `unknown host key ssh-ed25519 ${fingerprint(keyA.base64)} for [web1.example.com]:2200 (not in ${f}; ${missing} does not exist). ` +
        `Check the fingerprint with the server's administrator, then add it: ssh-keyscan -p 2200 -t ssh-ed25519 web1.example.com >> ${f}`,
    );
    const aliased = lookup([f], { alias: 'web1-alias', port: 22 });
    expect(describeRefusal(refused(plainHostKeyStatus(aliased, keyA.blob)), aliased)).toContain(`add it: ssh-keyscan -t ssh-ed25519 web1.example.com | awk -v n=web1-alias '{ $1 = n; print }' >> ${f}`);
  });

  it('changed: the lines that say otherwise and ssh-keygen -R for each file holding one', () => {
    const u = keys.file('kh-u', [`[web1.example.com]:2200 ${keyB.line}`]);
    const g = keys.file('kh-g', [`# x`, `[web1.example.com]:2200 ${keyB.line}`]);
    const l = lookup([u], { global: [g] });
    const msg = describeRefusal(refused(plainHostKeyStatus(l, keyA.blob)), l);
    expect(hostKeySummary(refused(plainHostKeyStatus(l, keyA.blob)))).toBe(`ssh-ed25519 ${fingerprint(keyA.base64)} CHANGED: ${u}:1, ${g}:2 say otherwise`);
    expect(msg).toContain(`HOST KEY CHANGED: the server offered ssh-ed25519 ${fingerprint(keyA.base64)} but ${u}:1 (${fingerprint(keyB.base64)}), ${g}:2 (${fingerprint(keyB.base64)}) says otherwise`);
    expect(msg).toContain(`remove the old entry with: ssh-keygen -R '[web1.example.com]:2200' -f ${u} && ssh-keygen -R '[web1.example.com]:2200' -f ${g}; then add the new one: ssh-keyscan -p 2200`);
  });

  it('revoked, and a certificate refused: the line, and what to do', async () => {
    const f = keys.file('kh-rev', [`@revoked * ${keyA.line}`, `@cert-authority * ${ca.line}`]);
    const l = lookup([f]);
    expect(describeRefusal(refused(plainHostKeyStatus(l, keyA.blob)), l)).toMatch(new RegExp(`^the server's host key ssh-ed25519 \\S+ is marked @revoked in ${f}:1; refusing to connect`));
    expect(hostKeySummary(refused(plainHostKeyStatus(l, keyA.blob)))).toBe(`ssh-ed25519 ${fingerprint(keyA.base64)} REVOKED: the host key is marked @revoked in ${f}:1`);
    const expired = keys.sign(ca, keyB, ['-h', '-n', 'web1.example.com', '-V', '20200101000000Z:20200102000000Z']);
    const s = await checkHostKey(l, keyB.blob, async () => ({ serverHostKeyAlgorithms: [], certificate: expired }));
    expect(describeRefusal(refused(s), l)).toContain(
      `The @cert-authority line at ${f}:2 names this host, but the certificate expired at 2020-01-02T00:00:00Z; to trust the host through the CA, sign its key (ssh-keygen -s <CA key> -h -I <key id> -n web1.example.com <host key>.pub)`,
    );
  });
});
