import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readSshConfig, resolveSshTarget } from '../../../../lib/remote/transport/ssh-options';
import { makeEnv } from '../../../support/env';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sy-sshopt-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const cfg = path.join(dir, 'ssh_config');
fs.writeFileSync(
  cfg,
  [
    'Host web1',
    '  HostName 10.1.2.3',
    '  Port 2200',
    '  User deployer',
    '  IdentityFile ~/.ssh/web1_key',
    `  UserKnownHostsFile ${dir}/kh1 ${dir}/kh2`,
    'Host *.uat',
    '  User uatuser',
    '',
  ].join('\n'),
);

describe('where to connect and as whom', () => {
  it('follows ~/.ssh/config aliases: HostName, Port, User, IdentityFile, UserKnownHostsFile', () => {
    const env = makeEnv({ hosts: [{ name: 'web1', roles: ['app'] }], ssh: { configFile: cfg, agent: false } });
    const t = resolveSshTarget(env, env.hosts[0]!, readSshConfig(cfg));
    expect(t).toMatchObject({ name: 'web1', hostname: '10.1.2.3', port: 2200, user: 'deployer', knownHostsFiles: [`${dir}/kh1`, `${dir}/kh2`] });
    expect(t.identityFiles).toEqual([path.join(os.homedir(), '.ssh', 'web1_key')]);
    expect(t.agent).toBeUndefined();
  });

  it('the environment file wins over ssh config; host entries win over the environment', () => {
    const env = makeEnv({
      hosts: [{ name: 'a', address: 'db.uat', roles: ['app'], user: 'hostuser' }, { name: 'b', address: 'web1', roles: ['app'] }],
      ssh: { configFile: cfg, user: 'envuser', port: 2222, knownHostsFile: `${dir}/kh`, agent: '/tmp/agent.sock', connectTimeoutSeconds: 7 },
    });
    const conf = readSshConfig(cfg);
    expect(resolveSshTarget(env, env.hosts[0]!, conf)).toMatchObject({ hostname: 'db.uat', user: 'hostuser', port: 2222, knownHostsFiles: [`${dir}/kh`], agent: '/tmp/agent.sock', connectTimeoutMs: 7000 });
    expect(resolveSshTarget(env, env.hosts[1]!, conf)).toMatchObject({ hostname: '10.1.2.3', user: 'envuser', port: 2222 });
  });

  it('takes a key passphrase from the named variable, and says so when it is missing', () => {
    const env = makeEnv({ ssh: { configFile: cfg, passphraseEnv: 'SY_TEST_PASSPHRASE' } });
    delete process.env.SY_TEST_PASSPHRASE;
    expect(() => resolveSshTarget(env, env.hosts[0]!, readSshConfig(cfg))).toThrow(/ssh\.passphraseEnv: environment variable SY_TEST_PASSPHRASE is not set/);
    process.env.SY_TEST_PASSPHRASE = 'hunter2';
    const t = resolveSshTarget(env, env.hosts[0]!, readSshConfig(cfg));
    // the name only: the passphrase is read when connecting, so no target (doctor shows them) holds it
    expect(t.passphraseEnv).toBe('SY_TEST_PASSPHRASE');
    expect(JSON.stringify(t)).not.toContain('hunter2');
    delete process.env.SY_TEST_PASSPHRASE;
  });

  it('identities as OpenSSH reads them: every IdentityFile in order (spaces and all), IdentitiesOnly, IdentityAgent', () => {
    const f = path.join(dir, 'ids_config');
    fs.writeFileSync(
      f,
      [
        'Host a',
        '  IdentityFile ~/.ssh/first',
        '  IdentityFile "/keys/with space"',
        '  identitiesonly yes',
        '  IdentityAgent ~/agent.sock',
        'Host b',
        '  IdentityAgent $SY_TEST_AGENT',
        'Host c',
        '  IdentityAgent none',
        'Host *',
        '  IdentityFile /keys/everywhere',
        '',
      ].join('\n'),
    );
    process.env.SY_TEST_AGENT = '/run/agent-b.sock';
    try {
      const env = makeEnv({ hosts: ['a', 'b', 'c'].map((name) => ({ name, roles: ['app'] })), ssh: { configFile: f } });
      const [a, b, c] = env.hosts.map((h) => resolveSshTarget(env, h, readSshConfig(f)));
      expect(a).toMatchObject({ identityFiles: [path.join(os.homedir(), '.ssh', 'first'), '/keys/with space', '/keys/everywhere'], identitiesOnly: true, agent: path.join(os.homedir(), 'agent.sock') });
      expect(b).toMatchObject({ identityFiles: ['/keys/everywhere'], identitiesOnly: false, agent: '/run/agent-b.sock' });
      expect(c!.agent).toBeUndefined();
      // the environment wins: its list replaces ssh_config's, its identitiesOnly and agent theirs
      const over = makeEnv({ hosts: [{ name: 'a', roles: ['app'] }], ssh: { configFile: f, identityFile: ['/k/1', '/k/2'], identitiesOnly: false, agent: '/run/mine.sock' } });
      expect(resolveSshTarget(over, over.hosts[0]!, readSshConfig(f))).toMatchObject({ identityFiles: ['/k/1', '/k/2'], identitiesOnly: false, agent: '/run/mine.sock' });
    } finally {
      delete process.env.SY_TEST_AGENT;
    }
  });

  it("a host's passphraseEnv is its own, and a missing one names the host's field", () => {
    const env = makeEnv({ hosts: [{ name: 'h1', roles: ['app'], passphraseEnv: 'SY_TEST_H1_PASS' }], ssh: { configFile: cfg, passphraseEnv: 'HOME' } });
    expect(() => resolveSshTarget(env, env.hosts[0]!, readSshConfig(cfg))).toThrow(/hosts\[0\]\.passphraseEnv: environment variable SY_TEST_H1_PASS is not set/);
  });

  it('a named ssh config file that does not exist is an error', () => {
    expect(() => readSshConfig(path.join(dir, 'nope'))).toThrow(/ssh\.configFile: .*nope does not exist/);
  });
});

describe('known_hosts files and HostKeyAlias, as OpenSSH reads them', () => {
  const conf = path.join(dir, 'ssh_config_hostkeys');
  fs.writeFileSync(
    conf,
    [
      'Host aliased',
      '  HostName 10.9.8.7',
      '  Port 2201',
      '  hostkeyalias web-alias',
      `  UserKnownHostsFile ${dir}/kh_%h_%p "${dir}/with space" ~/kh_%k_%r`,
      `  GlobalKnownHostsFile ${dir}/global1 ${dir}/global2`,
      'Host nofiles',
      '  UserKnownHostsFile none',
      '  GlobalKnownHostsFile none',
      'Host badtoken',
      '  UserKnownHostsFile /x/%C',
      '',
    ].join('\n'),
  );
  const target = (name: string, ssh: Record<string, unknown> = {}) => {
    const env = makeEnv({ hosts: [{ name, roles: ['app'], user: 'deployer' }], ssh: { configFile: conf, agent: false, ...ssh } });
    return resolveSshTarget(env, env.hosts[0]!, readSshConfig(conf));
  };

  it('reads UserKnownHostsFile (several, quoted, with %-tokens), GlobalKnownHostsFile and HostKeyAlias whatever their case', () => {
    expect(target('aliased')).toMatchObject({
      hostname: '10.9.8.7',
      port: 2201,
      hostKeyAlias: 'web-alias',
      knownHostsFiles: [`${dir}/kh_10.9.8.7_2201`, `${dir}/with space`, path.join(os.homedir(), 'kh_web-alias_deployer')],
      globalKnownHostsFiles: [`${dir}/global1`, `${dir}/global2`],
    });
  });

  it("defaults to OpenSSH's four files; ssh.knownHostsFile replaces the user's files only; none means none", () => {
    expect(target('plain')).toMatchObject({
      knownHostsFiles: [path.join(os.homedir(), '.ssh', 'known_hosts'), path.join(os.homedir(), '.ssh', 'known_hosts2')],
      globalKnownHostsFiles: ['/etc/ssh/ssh_known_hosts', '/etc/ssh/ssh_known_hosts2'],
    });
    expect(target('plain').hostKeyAlias).toBeUndefined();
    expect(target('aliased', { knownHostsFile: `${dir}/mine` })).toMatchObject({ knownHostsFiles: [`${dir}/mine`], globalKnownHostsFiles: [`${dir}/global1`, `${dir}/global2`] });
    expect(target('nofiles')).toMatchObject({ knownHostsFiles: [], globalKnownHostsFiles: [] });
  });

  it('a %-token it does not know is an error naming the keyword', () => {
    expect(() => target('badtoken')).toThrow(/ssh config UserKnownHostsFile \/x\/%C: %C is not a token switchyard knows/);
  });
});
