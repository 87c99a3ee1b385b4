// Issue 13, reaching hosts the way OpenSSH does: through a bastion (ProxyJump from ssh_config and
// from the environment file, ProxyCommand), with host keys verified for both, and identities as
// OpenSSH offers them (a real ssh-agent, a passphrase key, IdentitiesOnly). Real sshd hosts; the
// bastion lab's hosts log in only connections made by the bastion's sshd (lab.ts, gate.sh).
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Environment, EnvironmentInput } from '../../lib/environment';
import { validateEnvironment } from '../../lib/environment';
import { MemoryReporter } from '../../lib/output/reporter';
import { deploy } from '../../lib/release/deploy';
import { reportOf } from '../../lib/release/flow';
import { doctor } from '../../lib/servers/doctor';
import { setup } from '../../lib/servers/setup';
import { status } from '../../lib/servers/status';
import { transportsFor } from '../../lib/remote/transport';
import { SshTransport } from '../../lib/remote/transport/ssh';
import { startLab, type Lab, type LabHost } from '../support/lab';
import { labEnvInput, REPO } from '../support/lab-env';

let jumpLab: Lab;
let idLab: Lab;
let tmp: string;
let agent: ChildProcess | undefined;
let agentSock: string;

const envOf = (input: EnvironmentInput): Environment => validateEnvironment(input, { name: 'lab', file: 'env/lab.ts', root: REPO });
const keygen = (file: string, passphrase = '') => execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', passphrase, '-C', path.basename(file), '-f', file]);
const fingerprintOf = (pub: string) => execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', pub], { encoding: 'utf8' }).split(' ')[1]!;
const authorize = (lab: Lab, pub: string) => fs.appendFileSync(lab.authorizedKeysFile, fs.readFileSync(pub, 'utf8'));
const sshAdd = (...args: string[]) => execFileSync('ssh-add', args, { env: { ...process.env, SSH_AUTH_SOCK: agentSock }, stdio: 'pipe' });
const releasesOn = (h: LabHost) => (fs.existsSync(path.join(h.deployTo, 'releases')) ? fs.readdirSync(path.join(h.deployTo, 'releases')).sort() : []);
/** Logins the bastion's sshd accepted so far. */
const bastionLogins = () => (fs.readFileSync(jumpLab.bastion!.logFile, 'utf8').match(/^Accepted publickey/gm) ?? []).length;
/** Sessions the bastion's sshd saw end. */
const bastionLogouts = () => (fs.readFileSync(jumpLab.bastion!.logFile, 'utf8').match(/^Disconnected from user/gm) ?? []).length;

/** How the host was reached: connects one transport, reads its reach, closes it. */
async function reachOf(env: Environment, host = env.hosts[0]!) {
  const t = transportsFor(env, [host]).get(host.name) as SshTransport;
  try {
    await t.connect();
    return t.reach;
  } finally {
    await t.close();
  }
}

function waitFor(file: string): Promise<void> {
  const until = Date.now() + 10_000;
  return new Promise((resolve, reject) => {
    const poll = () => (fs.existsSync(file) ? resolve() : Date.now() > until ? reject(new Error(`${file} never appeared`)) : setTimeout(poll, 20));
    poll();
  });
}

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sy-reach-'));
  agentSock = path.join(tmp, 'agent.sock');
  // a real ssh-agent, in the foreground so that its pid is ours to stop
  agent = spawn('ssh-agent', ['-D', '-a', agentSock], { stdio: 'ignore' });
  [jumpLab, idLab] = await Promise.all([startLab({ hosts: 2, bastion: true }), startLab({ hosts: 1 }), waitFor(agentSock)]);
});
afterAll(async () => {
  if (agent?.pid !== undefined && agent.exitCode === null) {
    const gone = new Promise((r) => agent!.once('exit', r));
    process.kill(agent.pid, 'SIGTERM');
    await gone;
  }
  await Promise.all([jumpLab?.stop(), idLab?.stop()]);
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe.sequential('through a bastion', () => {
  /** The hosts by their ssh_config aliases: HostName, Port, User, IdentityFile, ProxyJump bastion from there. */
  const viaConfig = (over: Partial<EnvironmentInput['ssh']> = {}) => {
    const input = labEnvInput(jumpLab);
    return envOf({ ...input, hosts: input.hosts.map((h) => ({ ...h, address: h.name, port: undefined })), ssh: { configFile: jumpLab.sshConfigFile, agent: false, connectTimeoutSeconds: 5, ...over } });
  };

  it('negative control: a direct connection to a host behind the bastion is refused, by OpenSSH and by switchyard', async () => {
    expect(() => execFileSync('ssh', ['-F', jumpLab.sshConfigFile, '-o', 'ProxyJump=none', 'h1', 'true'], { stdio: 'pipe' })).toThrow(/Permission denied \(publickey\)/);
    expect(execFileSync('ssh', ['-F', jumpLab.sshConfigFile, 'h1', 'echo through'], { encoding: 'utf8' })).toBe('through\n');
    await expect(status({ environment: viaConfig({ proxyJump: 'none' }), reporter: new MemoryReporter() })).rejects.toThrow(
      new RegExp(`host h1 \\(${jumpLab.user}@127\\.0\\.0\\.1:${jumpLab.hosts[0]!.sshPort}\\): authentication failed: tried ${jumpLab.identityFile} \\(refused\\)`),
    );
  });

  it('deploys through the ProxyJump of ssh_config: both hosts over one bastion connection, both host keys verified, the report counts the jump', async () => {
    const env = viaConfig();
    await setup({ environment: env, reporter: new MemoryReporter() });
    await deploy({ environment: env, reporter: new MemoryReporter() }, 'cold-deploy');
    const before = bastionLogins();
    const r = await deploy({ environment: env, reporter: new MemoryReporter() });
    expect(r.ok).toBe(true);
    for (const h of jumpLab.hosts) expect((await jumpLab.fetchSite(h)).body).toBe(`hello from release ${r.release}\n`);
    expect(bastionLogins() - before).toBe(1);
    expect(r.hosts.map((h) => h.stats.connections)).toEqual([1, 1]);
    expect(r.hosts.reduce((n, h) => n + (h.stats.jumpConnections ?? 0), 0)).toBe(1);
    expect(await reachOf(env)).toEqual({
      host: 'h1', user: jumpLab.user, hostname: '127.0.0.1', port: jumpLab.hosts[0]!.sshPort,
      jumps: [{ name: 'bastion', user: jumpLab.user, hostname: '127.0.0.1', port: jumpLab.bastion!.sshPort, identity: jumpLab.identityFile }],
      identity: jumpLab.identityFile,
    });
  });

  it("deploys through ssh.proxyJump of the environment file (the bastion by address, its key from ssh.identityFile)", async () => {
    const spec = `${jumpLab.user}@127.0.0.1:${jumpLab.bastion!.sshPort}`;
    const input = labEnvInput(jumpLab);
    const env = envOf({ ...input, ssh: { ...input.ssh, proxyJump: spec } });
    const r = await deploy({ environment: env, reporter: new MemoryReporter() });
    expect(r.ok).toBe(true);
    for (const h of jumpLab.hosts) expect((await jumpLab.fetchSite(h)).body).toBe(`hello from release ${r.release}\n`);
    expect((await reachOf(env)).jumps).toEqual([{ name: '127.0.0.1', user: jumpLab.user, hostname: '127.0.0.1', port: jumpLab.bastion!.sshPort, identity: jumpLab.identityFile }]);
  });

  it('doctor through the bastion: the jump (user@host:port, the identity it accepted) on every host, and every check passes', async () => {
    const report = await doctor({ environment: viaConfig(), reporter: new MemoryReporter() });
    const jump = `${jumpLab.user}@127.0.0.1:${jumpLab.bastion!.sshPort} (identity ${jumpLab.identityFile})`;
    for (const h of jumpLab.hosts) {
      const d = report.hosts.find((x) => x.host === h.name)!;
      expect(d.checks.filter((c) => c.status === 'problem')).toEqual([]);
      expect(d.reach).toMatchObject({ ok: true, jump: [jump], identity: jumpLab.identityFile, hostKey: 'verified', port: h.sshPort });
      expect(d.checks[0]!.message).toMatch(
        new RegExp(`^reached ${jumpLab.user}@127\\.0\\.0\\.1 port ${h.sshPort}, jump ${jump.replace(/[.()]/g, '\\$&')}, identity ${jumpLab.identityFile}, host key ssh-ed25519 SHA256:\\S+ verified by ${jumpLab.knownHostsFile}:\\d+$`),
      );
    }
    expect(report.ok).toBe(true);
  });

  it('goes through a chain of jumps (a,b: the bastion, then the bastion again through itself), each counted', async () => {
    const env = viaConfig({ proxyJump: 'bastion,bastion' });
    const t = transportsFor(env, [env.hosts[0]!]).get('h1') as SshTransport;
    const [logins, logouts] = [bastionLogins(), bastionLogouts()];
    try {
      expect((await t.exec('echo chained')).stdout).toBe('chained\n');
      expect(t.reach.jumps.map((j) => j.name)).toEqual(['bastion', 'bastion']);
      expect(t.stats).toMatchObject({ connections: 1, jumpConnections: 2 });
      expect(bastionLogins() - logins).toBe(2);
    } finally {
      await t.close();
    }
    // closing the host's connection closes the jump connections it held
    for (let i = 0; bastionLogouts() - logouts < 2 && i < 100; i++) await new Promise((r) => setTimeout(r, 20));
    expect(bastionLogouts() - logouts).toBe(2);
  });

  it('refuses a bastion whose key is not in known_hosts, naming it and its fingerprint, and changes nothing; so too a host behind it whose key is unknown', async () => {
    const noBastion = path.join(tmp, 'known_hosts.no-bastion');
    fs.writeFileSync(noBastion, fs.readFileSync(jumpLab.knownHostsFile, 'utf8').replace(jumpLab.bastion!.knownHostsLine, ''));
    const before = jumpLab.hosts.map(releasesOn);
    const input = labEnvInput(jumpLab);
    const env = envOf({ ...input, ssh: { ...input.ssh, knownHostsFile: noBastion, proxyJump: `127.0.0.1:${jumpLab.bastion!.sshPort}` } });
    const err = await deploy({ environment: env, reporter: new MemoryReporter() }).catch((e: Error) => e);
    for (const name of ['h1', 'h2']) expect(String(err)).toMatch(new RegExp(`host ${name}: jump host 127\\.0\\.0\\.1 \\(${jumpLab.user}@127\\.0\\.0\\.1:${jumpLab.bastion!.sshPort}\\): unknown host key ssh-ed25519 SHA256:\\S+ for \\[127\\.0\\.0\\.1\\]:${jumpLab.bastion!.sshPort} \\(not in ${noBastion}[;)]`));
    expect(reportOf(err)?.ok ?? false).toBe(false);
    expect(jumpLab.hosts.map(releasesOn)).toEqual(before);

    // and the other way round: the bastion known, a host behind it not
    const noH1 = path.join(tmp, 'known_hosts.no-h1');
    fs.writeFileSync(noH1, fs.readFileSync(jumpLab.knownHostsFile, 'utf8').split('\n').filter((l) => !l.startsWith(`[127.0.0.1]:${jumpLab.hosts[0]!.sshPort} `)).join('\n'));
    const env2 = envOf({ ...input, ssh: { ...input.ssh, knownHostsFile: noH1, proxyJump: `127.0.0.1:${jumpLab.bastion!.sshPort}` } });
    await expect(deploy({ environment: env2, reporter: new MemoryReporter() })).rejects.toThrow(
      new RegExp(`host h1 \\(${jumpLab.user}@127\\.0\\.0\\.1:${jumpLab.hosts[0]!.sshPort} via 127\\.0\\.0\\.1 \\([^)]*\\)\\): unknown host key ssh-ed25519 SHA256:`),
    );
    expect(jumpLab.hosts.map(releasesOn)).toEqual(before);
  });

  it("doctor with the bastion's key missing from known_hosts names the jump host's key problem for each host, changing nothing", async () => {
    const noBastion = path.join(tmp, 'known_hosts.doctor-no-bastion');
    fs.writeFileSync(noBastion, fs.readFileSync(jumpLab.knownHostsFile, 'utf8').replace(jumpLab.bastion!.knownHostsLine, ''));
    const before = jumpLab.hosts.map(releasesOn);
    const report = await doctor({ environment: viaConfig({ knownHostsFile: noBastion }), reporter: new MemoryReporter() });
    expect(report.ok).toBe(false);
    const hop = `bastion \\(${jumpLab.user}@127\\.0\\.0\\.1:${jumpLab.bastion!.sshPort}\\)`;
    for (const h of jumpLab.hosts) {
      const d = report.hosts.find((x) => x.host === h.name)!;
      expect(d.reach).toMatchObject({ ok: false, failure: 'host key', hostKey: 'not checked', jumpHostKey: 'unknown', failedJump: `bastion (${jumpLab.user}@127.0.0.1:${jumpLab.bastion!.sshPort})`, fingerprint: expect.stringMatching(/^ssh-ed25519 SHA256:/) });
      expect(d.checks.map((c) => `${c.check} ${c.status}`)).toEqual(['reach problem']);
      expect(d.checks[0]!.message).toMatch(
        new RegExp(`^cannot reach ${jumpLab.user}@127\\.0\\.0\\.1 port ${h.sshPort}, jump .*: jump host ${hop}: host key unknown: unknown host key ssh-ed25519 SHA256:\\S+ for \\[127\\.0\\.0\\.1\\]:${jumpLab.bastion!.sshPort} \\(not in ${noBastion}[;)].*ssh-keyscan -p ${jumpLab.bastion!.sshPort} `),
      );
    }
    expect(jumpLab.hosts.map(releasesOn)).toEqual(before);
  });

  it("reaches a host through a ProxyCommand (OpenSSH's own ssh -W through the bastion), and ends the command when done", async () => {
    const h = jumpLab.hosts[0]!;
    const conf = path.join(tmp, 'ssh_config.proxycommand');
    fs.writeFileSync(conf, [`Host pc1`, `  HostName 127.0.0.1`, `  Port ${h.sshPort}`, `  ProxyCommand ssh -F ${jumpLab.sshConfigFile} -W %h:%p bastion`, ''].join('\n'));
    const input = labEnvInput(jumpLab);
    const env = envOf({ ...input, hosts: [{ ...input.hosts[0]!, address: 'pc1', port: undefined }], ssh: { ...input.ssh, configFile: conf } });
    const st = await status({ environment: env, reporter: new MemoryReporter() });
    expect(st[0]).toMatchObject({ host: 'h1', alive: true, health: '200' });
    expect(await reachOf(env)).toMatchObject({ jumps: [], proxyCommand: `exec ssh -F ${jumpLab.sshConfigFile} -W 127.0.0.1:${h.sshPort} bastion`, identity: jumpLab.identityFile });
    const cmdline = (pid: string) => {
      try {
        return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\u0000');
      } catch {
        return [];
      }
    };
    const proxies = () => fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p) && cmdline(p).includes(`127.0.0.1:${h.sshPort}`));
    for (let i = 0; proxies().length && i < 100; i++) await new Promise((r) => setTimeout(r, 20));
    expect(proxies()).toEqual([]);
  });
});

describe.sequential('identities as OpenSSH offers them', () => {
  const PASSPHRASE = 'correct horse battery staple';
  let agentKey: string;
  let passKey: string;
  let unauthKey: string;
  const envWith = (ssh: Partial<EnvironmentInput['ssh']>, hostOver: Record<string, unknown> = {}) => {
    const input = labEnvInput(idLab);
    const { identityFile: _drop, ...rest } = input.ssh!;
    return envOf({ ...input, hosts: input.hosts.map((h) => ({ ...h, ...hostOver })), ssh: { ...rest, ...ssh } });
  };
  /** An ssh_config for h1 with these IdentityFile lines. */
  const configWith = (name: string, files: string[], extra: string[] = []) => {
    const f = path.join(tmp, name);
    const h = idLab.hosts[0]!;
    fs.writeFileSync(f, [`Host h1`, `  HostName 127.0.0.1`, `  Port ${h.sshPort}`, `  User ${idLab.user}`, ...files.map((k) => `  IdentityFile ${k}`), ...extra, ''].join('\n'));
    return f;
  };

  beforeAll(() => {
    agentKey = path.join(tmp, 'agent_key');
    passKey = path.join(tmp, 'pass_key');
    unauthKey = path.join(tmp, 'unauth_key');
    keygen(agentKey);
    keygen(passKey, PASSPHRASE);
    keygen(unauthKey);
    authorize(idLab, `${agentKey}.pub`);
    authorize(idLab, `${passKey}.pub`);
    sshAdd(agentKey);
    fs.rmSync(agentKey); // in the agent only (its .pub stays, to know its fingerprint)
  });

  it('deploys with the key only in a real ssh-agent', async () => {
    const env = envWith({ agent: agentSock });
    await setup({ environment: env, reporter: new MemoryReporter() });
    const r = await deploy({ environment: env, reporter: new MemoryReporter() }, 'cold-deploy');
    expect(r.ok).toBe(true);
    expect((await idLab.fetchSite(idLab.hosts[0]!)).body).toBe(`hello from release ${r.release}\n`);
    expect((await reachOf(env)).identity).toBe(`agent key ${fingerprintOf(`${agentKey}.pub`)}`);
  });

  it('deploys with a passphrase-protected key, the passphrase from the named variable, and never shows it', async () => {
    process.env.SY_LAB_KEY_PASSPHRASE = PASSPHRASE;
    try {
      const env = envWith({ agent: false, identityFile: [unauthKey, passKey], passphraseEnv: 'SY_LAB_KEY_PASSPHRASE' });
      const rep = new MemoryReporter();
      const r = await deploy({ environment: env, reporter: rep });
      expect(r.ok).toBe(true);
      expect((await reachOf(env)).identity).toBe(passKey);
      expect(rep.text() + JSON.stringify(r) + JSON.stringify(env)).not.toContain(PASSPHRASE);

      process.env.SY_LAB_KEY_PASSPHRASE = 'not it';
      const err = await status({ environment: env, reporter: new MemoryReporter() }).catch((e: Error) => e);
      expect(String(err)).toContain(`authentication failed: tried ${unauthKey} (refused); could not use ${passKey} (the passphrase in $SY_LAB_KEY_PASSPHRASE does not decrypt it)`);
      expect(String(err)).not.toContain('not it');
    } finally {
      delete process.env.SY_LAB_KEY_PASSPHRASE;
    }
  });

  it('with IdentitiesOnly and two IdentityFiles, only the second authorized: the second is used, not the agent key', async () => {
    const conf = configWith('ssh_config.only', [unauthKey, idLab.identityFile], ['  IdentitiesOnly yes']);
    const env = envWith({ configFile: conf, knownHostsFile: idLab.knownHostsFile, agent: agentSock }, { address: 'h1', port: undefined });
    const r = await deploy({ environment: env, reporter: new MemoryReporter() });
    expect(r.ok).toBe(true);
    expect((await reachOf(env)).identity).toBe(idLab.identityFile);
    // the control: without IdentitiesOnly the agent's key goes first, as with OpenSSH
    expect((await reachOf(envWith({ configFile: conf, knownHostsFile: idLab.knownHostsFile, agent: agentSock, identitiesOnly: false }, { address: 'h1', port: undefined }))).identity).toBe(
      `agent key ${fingerprintOf(`${agentKey}.pub`)}`,
    );
  });

  it('when every identity fails, the error names the host and lists what was tried (paths, agent fingerprints), and nothing changes', async () => {
    sshAdd('-D');
    sshAdd(unauthKey);
    const missing = path.join(tmp, 'no_such_key');
    const conf = configWith('ssh_config.fail', [unauthKey, missing, passKey]);
    const env = envWith({ configFile: conf, knownHostsFile: idLab.knownHostsFile, agent: agentSock }, { address: 'h1', port: undefined });
    const before = releasesOn(idLab.hosts[0]!);
    const err = await deploy({ environment: env, reporter: new MemoryReporter() }).catch((e: Error) => e);
    expect(String(err)).toContain(
      `host h1 (${idLab.user}@127.0.0.1:${idLab.hosts[0]!.sshPort}): authentication failed: tried agent key ${fingerprintOf(`${unauthKey}.pub`)} (${unauthKey}) (refused); ` +
        `could not use ${missing} (no such file), ${passKey} (encrypted, and no ssh.passphraseEnv is set for it)`,
    );
    expect(String(err)).not.toMatch(/PRIVATE KEY|AAAA/);
    expect(releasesOn(idLab.hosts[0]!)).toEqual(before);
  });
});
