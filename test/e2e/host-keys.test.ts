// Issue 13, host keys: certificates signed by a lab CA and served by real sshds, judged by the
// transport as OpenSSH's own ssh judges them (each verdict is checked against `ssh` too).
import fs from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EnvironmentInput } from '../../lib/environment';
import { validateEnvironment } from '../../lib/environment';
import { MemoryReporter } from '../../lib/output/reporter';
import { deploy } from '../../lib/release/deploy';
import { transportsFor } from '../../lib/remote/transport';
import type { HostKeyStatus } from '../../lib/remote/transport/known-hosts';
import { fingerprint } from '../../lib/remote/transport/known-hosts';
import { SshTransport } from '../../lib/remote/transport/ssh';
import { doctor } from '../../lib/servers/doctor';
import { setup } from '../../lib/servers/setup';
import { startLab, type Lab, type LabHost } from '../support/lab';
import { labEnvInput, REPO } from '../support/lab-env';

let lab: Lab;
/** h1 signed by the lab CA; h2 unsigned; h3 by another CA; h4 for another name; h5 expired. */
beforeAll(async () => {
  lab = await startLab({ hosts: 5, certificates: [{}, null, { ca: 'other' }, { principals: ['elsewhere.test'] }, { validity: '20200101:20200102' }] });
});
afterAll(async () => {
  await lab?.stop();
});

const knownHosts = (name: string, lines: string[]) => {
  const f = path.join(lab.dir, name);
  fs.writeFileSync(f, lines.map((l) => `${l}\n`).join(''));
  return f;
};
/** An environment for these lab hosts with this known_hosts file, and no system-wide one. */
function envInput(hosts: LabHost[], knownHostsFile: string): EnvironmentInput {
  const input = labEnvInput(lab);
  input.hosts = input.hosts.filter((h) => hosts.some((x) => x.name === h.name));
  // GlobalKnownHostsFile comes from ssh_config, as for ssh: an empty config keeps /etc out of the test
  input.ssh = { ...input.ssh, knownHostsFile, configFile: knownHosts('ssh_config_none', ['GlobalKnownHostsFile none']) };
  return input;
}
const validated = (input: EnvironmentInput) => validateEnvironment(input, { name: 'lab', file: 'env/lab.ts', root: REPO });

interface Connected {
  /** null when it connected */
  error: string | null;
  /** what a command run over the connection printed */
  stdout?: string;
  status: HostKeyStatus | undefined;
}

/** Connects to each host through the transport and runs a command there. */
async function connectAll(input: EnvironmentInput): Promise<Map<string, Connected>> {
  const env = validated(input);
  const out = new Map<string, Connected>();
  for (const [name, t] of transportsFor(env, env.hosts)) {
    let r: Omit<Connected, 'status'>;
    try {
      r = { error: null, stdout: (await t.exec('echo connected')).stdout };
    } catch (e) {
      r = { error: (e as Error).message };
    } finally {
      await t.close();
    }
    out.set(name, { ...r, status: (t as SshTransport).hostKeyStatus });
  }
  return out;
}

/** What OpenSSH's ssh says with the same files: exit code 0 when it trusts the host. `extra` options come first (ssh keeps an option's first value). */
async function opensshAccepts(h: LabHost, knownHostsFile: string, extra: string[] = []): Promise<boolean> {
  const r = await execa(
    'ssh',
    ['-F', '/dev/null', ...extra, '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=yes', '-o', `UserKnownHostsFile=${knownHostsFile}`, '-o', 'GlobalKnownHostsFile=/dev/null',
      '-o', 'IdentitiesOnly=yes', '-i', lab.identityFile, '-p', String(h.sshPort), `${lab.user}@${h.address}`, 'true'],
    { reject: false, stdin: 'ignore', timeout: 20_000 },
  );
  return r.exitCode === 0;
}

const keyOf = (h: LabHost) => h.hostKey.split(' ')[1]!;

describe('host certificates (@cert-authority)', () => {
  it('a known_hosts with only the @cert-authority line verifies a host whose key the CA signed, and a deploy works', async () => {
    const h1 = lab.hosts[0]!;
    const kh = knownHosts('kh_ca_only', [`@cert-authority * ${lab.caPublicKey}`]);
    const [r] = (await connectAll(envInput([h1], kh))).values();
    expect(r).toMatchObject({ error: null, stdout: 'connected\n', status: { status: 'verified', by: 'cert-authority', entry: { file: kh, line: 1 }, fingerprint: fingerprint(keyOf(h1)), certificate: { keyId: 'lab-h1' } } });
    expect(await opensshAccepts(h1, kh)).toBe(true);

    const env = validated(envInput([h1], kh));
    const rep = new MemoryReporter();
    await setup({ environment: env, reporter: rep });
    const d = await deploy({ environment: env, reporter: rep }, 'cold-deploy');
    expect(d.ok).toBe(true);
    expect(await lab.fetchSite(h1)).toEqual({ status: 200, body: `hello from release ${d.release}\n` });
  });

  it('doctor: the host the CA verified says so (its certificate) and passes; the unsigned one names its host-key problem and the host', async () => {
    const [h1, h2] = lab.hosts as [LabHost, LabHost];
    const kh = knownHosts('kh_ca_doctor', [`@cert-authority * ${lab.caPublicKey}`]);
    const rep = new MemoryReporter();
    const report = await doctor({ environment: validated(envInput([h1, h2], kh)), reporter: rep });
    expect(report.ok).toBe(false);
    const [d1, d2] = report.hosts;
    expect(d1!.host).toBe('h1');
    expect(d1!.checks.filter((c) => c.status === 'problem')).toEqual([]);
    expect(d1!.reach).toMatchObject({ ok: true, hostKey: 'verified' });
    const fp = (h: LabHost) => fingerprint(keyOf(h)).replace(/[+/]/g, '\\$&');
    expect(d1!.checks[0]!.message).toMatch(new RegExp(`, host key ssh-ed25519 ${fp(h1)} verified by CA ssh-ed25519 SHA256:\\S+ \\(${kh}:1\\): certificate "lab-h1" for 127\\.0\\.0\\.1, h1\\.lab\\.test, valid until forever$`));
    expect(d2!.host).toBe('h2');
    expect(d2!.reach).toMatchObject({ ok: false, failure: 'host key', hostKey: 'unknown', fingerprint: `ssh-ed25519 ${fingerprint(keyOf(h2))}` });
    expect(d2!.checks.map((c) => `${c.check} ${c.status}`)).toEqual(['reach problem']);
    expect(d2!.checks[0]!.message).toMatch(
      new RegExp(`^cannot reach .* port ${h2.sshPort}, .*: host key unknown: unknown host key ssh-ed25519 ${fp(h2)} .*The @cert-authority line at ${kh}:1 names this host, but the server has no host certificate for its ssh-ed25519 key`),
    );
    expect(rep.text()).toMatch(new RegExp(`\\[h2\\] ✗ reach: cannot reach .* port ${h2.sshPort}, .*: host key unknown`));
  });

  it('refuses, as ssh does, a host that is unsigned, signed by another CA, for another name, or expired, saying why and how to fix it', async () => {
    const kh = knownHosts('kh_ca_refusals', [`@cert-authority * ${lab.caPublicKey}`]);
    const refused = lab.hosts.slice(1);
    const results = await connectAll(envInput(refused, kh));
    const why = {
      h2: 'the server has no host certificate for its ssh-ed25519 key',
      h3: /the certificate is signed by CA ssh-ed25519 SHA256:\S+, which no matching @cert-authority line names/,
      h4: 'the certificate is for elsewhere.test, not 127.0.0.1',
      h5: /the certificate expired at 2020-01-0[12]T/,
    } as const;
    for (const h of refused) {
      const r = results.get(h.name)!;
      expect(r.status, h.name).toMatchObject({ status: 'unknown', fingerprint: fingerprint(keyOf(h)), certificate: { problem: why[h.name as keyof typeof why] } });
      expect(r.error).toMatch(new RegExp(`^host ${h.name} \\(.*@127\\.0\\.0\\.1:${h.sshPort}\\): unknown host key ssh-ed25519 ${fingerprint(keyOf(h)).replace(/[+/]/g, '\\$&')} for \\[127\\.0\\.0\\.1\\]:${h.sshPort} \\(not in ${kh}\\)\\.`));
      expect(r.error).toContain(`The @cert-authority line at ${kh}:1 names this host, but `);
      expect(r.error).toContain(`add it: ssh-keyscan -p ${h.sshPort} -t ssh-ed25519 127.0.0.1 >> ${kh}`);
      expect(await opensshAccepts(h, kh), h.name).toBe(false);
    }
  });

  it('HostKeyAlias and GlobalKnownHostsFile from ssh_config: the CA line in the system-wide file names the alias, a principal matches it', async () => {
    const h1 = lab.hosts[0]!;
    const global = knownHosts('global_known_hosts', [`@cert-authority h1.lab.test ${lab.caPublicKey}`]);
    const empty = knownHosts('kh_empty', []);
    const conf = knownHosts('ssh_config_alias', [
      'Host h1',
      `  HostName ${h1.address}`,
      `  Port ${h1.sshPort}`,
      '  HostKeyAlias h1.lab.test',
      `  UserKnownHostsFile ${empty}`,
      `  GlobalKnownHostsFile ${global}`,
    ]);
    const input = labEnvInput(lab);
    input.hosts = [{ name: 'h1', roles: ['app'], deployTo: h1.deployTo, socketDir: h1.socketDir }];
    input.ssh = { user: lab.user, identityFile: lab.identityFile, agent: false, configFile: conf, connectTimeoutSeconds: 5 };
    const [r] = (await connectAll(input)).values();
    expect(r).toMatchObject({ error: null, stdout: 'connected\n', status: { status: 'verified', by: 'cert-authority', name: 'h1.lab.test', entry: { file: global, line: 1 } } });
    expect(await opensshAccepts(h1, empty, ['-o', 'HostKeyAlias=h1.lab.test', '-o', `GlobalKnownHostsFile=${global}`])).toBe(true);
  });
});

describe('@revoked, through sshd', () => {
  it('a revoked CA key, and a revoked host key with a plain line for it: refused, the deploy changes nothing', async () => {
    const h1 = lab.hosts[0]!;
    const releases = () => (fs.existsSync(path.join(h1.deployTo, 'releases')) ? fs.readdirSync(path.join(h1.deployTo, 'releases')).sort() : []);
    const before = releases();
    const revokedCa = knownHosts('kh_revoked_ca', [`@cert-authority * ${lab.caPublicKey}`, `@revoked * ${lab.caPublicKey}`]);
    const revokedKey = knownHosts('kh_revoked_key', [`[127.0.0.1]:${h1.sshPort} ${h1.hostKey}`, `@revoked [127.0.0.1]:${h1.sshPort} ${h1.hostKey}`]);
    const attempt = (kh: string) => deploy({ environment: validated(envInput([h1], kh)), reporter: new MemoryReporter() });
    await expect(attempt(revokedCa)).rejects.toThrow(
      new RegExp(`host h1 .*: host key ssh-ed25519 \\S+ of \\[127\\.0\\.0\\.1\\]:${h1.sshPort} is certified by CA ssh-ed25519 SHA256:\\S+, which ${revokedCa}:2 marks @revoked; refusing to connect`),
    );
    await expect(attempt(revokedKey)).rejects.toThrow(new RegExp(`host h1 .*: the server's host key ssh-ed25519 \\S+ is marked @revoked in ${revokedKey}:2; refusing to connect`));
    expect(releases()).toEqual(before);
    expect(await opensshAccepts(h1, revokedCa)).toBe(false);
    expect(await opensshAccepts(h1, revokedKey)).toBe(false);
  });
});
