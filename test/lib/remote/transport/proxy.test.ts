// ProxyJump / ProxyCommand resolution (ssh_config and the environment file), the ProxyJump syntax
// and the ProxyCommand's expansion: pure logic, read as OpenSSH's readconf.c / sshconnect.c do.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseProxyJump } from '../../../../lib/remote/transport/jump-spec';
import { expandProxyCommand } from '../../../../lib/remote/transport/proxy-command';
import { plannedHops } from '../../../../lib/remote/transport/ssh-connect';
import { readSshConfig, resolveSshTarget, type SshTarget } from '../../../../lib/remote/transport/ssh-options';
import { baseInput, makeEnv } from '../../../support/env';
import { validateEnvironment } from '../../../../lib/environment';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sy-proxy-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const cfg = path.join(dir, 'ssh_config');
fs.writeFileSync(
  cfg,
  [
    'Host web1',
    '  HostName 10.0.0.1',
    '  ProxyJump jump1',
    'Host web2',
    '  HostName 10.0.0.2',
    '  ProxyJump ops@jump1:2201,jump2',
    'Host web3',
    '  ProxyCommand nc %h %p',
    '  ProxyJump jump1',
    'Host web4',
    '  ProxyJump none',
    '  ProxyCommand nc %h %p',
    'Host web5',
    '  proxycommand none',
    '  ProxyJump jump1',
    'Host jump1',
    '  HostName bastion1.example.com',
    '  User jumper',
    '  IdentityFile /keys/jump1 key',
    '  IdentityFile /keys/jump1-second',
    '  IdentitiesOnly yes',
    'Host jump2',
    '  HostName 192.0.2.2',
    '  Port 2222',
    '  IdentityAgent none',
    'Host jump3',
    '  ProxyJump outer',
    'Host loop1',
    '  ProxyJump loop2',
    'Host loop2',
    '  ProxyJump loop1',
    '',
  ].join('\n'),
);
const conf = readSshConfig(cfg);
const target = (hosts: object[], ssh: object = {}) => {
  const env = makeEnv({ hosts: hosts as never, ssh: { configFile: cfg, agent: false, ...ssh } });
  return env.hosts.map((h) => resolveSshTarget(env, h, conf));
};
const via = (t: SshTarget) => (t.proxy?.kind === 'jump' ? t.proxy.via : undefined);
const chain = (t: SshTarget) => plannedHops(t).map((h) => `${h.user}@${h.hostname}:${h.port}`);

describe('ProxyJump and ProxyCommand', () => {
  it("reads ssh_config's ProxyJump; the jump host is looked up there too (HostName, User, every IdentityFile, IdentitiesOnly)", () => {
    const [t] = target([{ name: 'web1', roles: ['app'] }], { user: 'deploy', port: 22, identityFile: '/keys/deploy' });
    expect(t!.hostname).toBe('10.0.0.1');
    // the target's user, port and key are the target's (as with ssh -J); the jump's come from its own entry
    expect(via(t!)).toMatchObject({ name: 'jump1', hostname: 'bastion1.example.com', user: 'jumper', port: 22, identityFiles: ['/keys/jump1 key', '/keys/jump1-second'], identitiesOnly: true });
    expect(via(t!)!.proxy).toBeUndefined();
  });

  it('a chain a,b goes through a first; the user and port of the spec win over ssh_config', () => {
    const [t] = target([{ name: 'web2', roles: ['app'] }]);
    expect(chain(t!)).toEqual(['ops@bastion1.example.com:2201', `${os.userInfo().username}@192.0.2.2:2222`]);
    expect(via(t!)!.agent).toBeUndefined(); // IdentityAgent none
  });

  it('whichever of ProxyJump and ProxyCommand comes first wins; ProxyJump none leaves a ProxyCommand, ProxyCommand none turns both off', () => {
    const [pc, none, off] = target([
      { name: 'web3', roles: ['app'] },
      { name: 'web4', roles: ['app'] },
      { name: 'web5', roles: ['app'] },
    ]);
    expect(pc!.proxy).toEqual({ kind: 'command', command: 'nc %h %p' });
    expect(none!.proxy).toEqual({ kind: 'command', command: 'nc %h %p' });
    expect(off!.proxy).toBeUndefined();
  });

  it("the environment's proxyJump wins over ssh_config (a host's over the environment's); none reaches the host directly", () => {
    const [a, b, c] = target(
      [
        { name: 'web1', roles: ['app'] },
        { name: 'other', address: '10.9.9.9', roles: ['app'], proxyJump: 'none' },
        { name: 'web3', roles: ['app'], proxyJump: 'jump2' },
      ],
      { proxyJump: 'admin@gate.example.com:2022', identityFile: ['/keys/a', '/keys/b'], passphraseEnv: 'HOME' },
    );
    expect(chain(a!)).toEqual(['admin@gate.example.com:2022']);
    // a jump host ssh_config says nothing about uses the environment's identity files and passphrase variable
    expect(via(a!)).toMatchObject({ identityFiles: ['/keys/a', '/keys/b'], passphraseEnv: 'HOME', identitiesOnly: false });
    expect(b!.proxy).toBeUndefined();
    expect(chain(c!)).toEqual([`${os.userInfo().username}@192.0.2.2:2222`]);
    // the first hop's own ProxyJump applies (as ssh -J's inner ssh reads it)
    const [d] = target([{ name: 'x', roles: ['app'], proxyJump: 'jump3' }]);
    expect(chain(d!).map((s) => s.split('@')[1])).toEqual(['outer:22', 'jump3:22']);
  });

  it('a ProxyJump loop in ssh_config, and a ProxyJump that does not parse, are errors naming the host and where it was read', () => {
    expect(() => target([{ name: 'l', address: 'loop1', roles: ['app'] }])).toThrow(/host l: more than 8 jump hosts: is there a ProxyJump loop in ssh config\?/);
    fs.writeFileSync(path.join(dir, 'bad'), 'Host b1\n  ProxyJump "a b"\n');
    const env = makeEnv({ hosts: [{ name: 'b1', roles: ['app'] }], ssh: { agent: false } });
    expect(() => resolveSshTarget(env, env.hosts[0]!, readSshConfig(path.join(dir, 'bad')))).toThrow(/ssh config ProxyJump: "a b": invalid host name/);
  });

  it('the environment file refuses a bad proxyJump, naming the field', () => {
    const bad = (ssh: object, host: object = {}) => () =>
      validateEnvironment(baseInput({ ssh, hosts: [{ name: 'h1', roles: ['app'], ...host }] }), { name: 't', file: 'env/t.ts', root: dir });
    expect(bad({ proxyJump: 'bastion;rm -rf /' })).toThrow(/ssh\.proxyJump: a ProxyJump .*"bastion;rm -rf \/": invalid host name/);
    expect(bad({}, { proxyJump: 'a,-oProxyCommand=x' })).toThrow(/hosts\[0\]\.proxyJump: a ProxyJump .*invalid host name/);
    expect(bad({ proxyJump: 'deploy@b:99999' })).toThrow(/ssh\.proxyJump: .*port out of range/);
  });
});

describe('ProxyJump syntax', () => {
  it('reads [user@]host[:port], ssh:// URIs, [v6]:port, chains and none', () => {
    expect(parseProxyJump('bastion')).toEqual([{ host: 'bastion' }]);
    expect(parseProxyJump('ops@b1:2201, ssh://root@b2:22/')).toEqual([
      { user: 'ops', host: 'b1', port: 2201 },
      { user: 'root', host: 'b2', port: 22 },
    ]);
    expect(parseProxyJump('me@[2001:db8::1]:2222')).toEqual([{ user: 'me', host: '2001:db8::1', port: 2222 }]);
    expect(parseProxyJump('None')).toEqual([]);
    expect(parseProxyJump('a,,b')).toMatch(/not \[user@\]host\[:port\]/);
    expect(parseProxyJump('$(id)@b')).toMatch(/invalid user name/);
  });
});

describe('ProxyCommand expansion', () => {
  const t = { name: 'web1', alias: 'web1', hostname: '10.0.0.1', port: 2222, user: 'deploy' };
  it('expands %h %p %r %n %% as OpenSSH does, after exec', () => {
    expect(expandProxyCommand('ssh -W %h:%p -l %r jump # %n 100%%', t)).toBe('exec ssh -W 10.0.0.1:2222 -l deploy jump # web1 100%');
  });
  it('quotes every value as one shell word, so no name is read as shell syntax', () => {
    expect(expandProxyCommand('nc %h %p', { ...t, hostname: 'x;touch /tmp/pwned', user: "o'brien" })).toBe("exec nc 'x;touch /tmp/pwned' 2222");
    expect(expandProxyCommand('connect %r', { ...t, user: "o'brien" })).toBe(`exec connect 'o'\\''brien'`);
  });
  it('an unknown token is an error naming the host, before any connection (when the target is resolved)', () => {
    expect(() => expandProxyCommand('nc %h %x', t)).toThrow(/host web1: ssh config ProxyCommand: unsupported token %x/);
    expect(() => expandProxyCommand('nc %h 100%', t)).toThrow(/unsupported token %/);
    fs.writeFileSync(path.join(dir, 'pc'), 'Host p1\n  ProxyCommand nc %h %k\n');
    const env = makeEnv({ hosts: [{ name: 'p1', roles: ['app'] }], ssh: { agent: false } });
    expect(() => resolveSshTarget(env, env.hosts[0]!, readSshConfig(path.join(dir, 'pc')))).toThrow(/host p1: ssh config ProxyCommand: unsupported token %k/);
  });
});
