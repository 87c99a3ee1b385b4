// Issue 13, diagnostics: `gulp doctor` through real sshd and nginx hosts, healthy and then with a
// real problem on each host (a PATH without a tool and a login shell that sleeps, set by the host's
// sshd; an nginx serving another site; a socket dir nginx's workers cannot search; a host key not
// in known_hosts). It names each problem and its host, and no doctor run changes a file on a host.
import { execa } from 'execa';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Environment, EnvironmentInput } from '../../lib/environment';
import { validateEnvironment } from '../../lib/environment';
import { MemoryReporter } from '../../lib/output/reporter';
import { deploy } from '../../lib/release/deploy';
import { doctor, SLOW_SHELL_MS, type DoctorReport, type HostDoctor } from '../../lib/servers/doctor';
import { setup } from '../../lib/servers/setup';
import { REMOTE_SCRIPTS_DIR } from '../../lib/remote/commands';
import { startLab, type Lab, type LabHost } from '../support/lab';
import { labEnvInput, REPO } from '../support/lab-env';

const isRoot = process.getuid?.() === 0;
let lab: Lab;
let input: EnvironmentInput;
let env: Environment;

beforeAll(async () => {
  // as root, nginx's workers run as daemon (as www-data would): modes stop them, as on a server
  lab = await startLab({ hosts: 3, nginxUser: 'daemon' });
  input = labEnvInput(lab, { over: isRoot ? { socket: { group: 'daemon' } } : {} });
  env = validateEnvironment(input, { name: 'lab', file: 'env/lab.ts', root: REPO });
  await setup({ environment: env, reporter: new MemoryReporter() });
  expect((await deploy({ environment: env, reporter: new MemoryReporter() }, 'cold-deploy')).ok).toBe(true);
}, 60_000);
afterAll(async () => {
  await lab?.stop();
});

/** Every file of every host (deployTo, socketDir): path, type, mode, size, mtime to the ns, sha256. */
function snapshot(): string {
  const lines: string[] = [];
  const walk = (dir: string) => {
    for (const name of fs.readdirSync(dir).sort()) {
      const p = path.join(dir, name);
      const st = fs.lstatSync(p, { bigint: true });
      const sum = st.isFile() ? crypto.createHash('sha256').update(fs.readFileSync(p)).digest('hex') : st.isSymbolicLink() ? fs.readlinkSync(p) : '';
      lines.push(`${p} ${st.mode.toString(8)} ${st.size} ${st.mtimeNs} ${sum}`);
      if (st.isDirectory() && (Number(st.mode) & 0o500) === 0o500) walk(p);
    }
  };
  for (const h of lab.hosts) for (const d of [h.deployTo, h.socketDir]) walk(d);
  return lines.join('\n');
}

async function doctorRun(e: Environment): Promise<{ report: DoctorReport; log: string; unchanged: boolean }> {
  const before = snapshot();
  const rep = new MemoryReporter();
  const report = await doctor({ environment: e, reporter: rep });
  return { report, log: rep.text(), unchanged: snapshot() === before };
}

const of = (r: DoctorReport, h: LabHost): HostDoctor => r.hosts.find((x) => x.host === h.name)!;
const check = (d: HostDoctor, name: string) => d.checks.filter((c) => c.check === name);
const problems = (d: HostDoctor) => d.checks.filter((c) => c.status === 'problem').map((c) => `${c.check}: ${c.message}`);

describe.sequential('gulp doctor', () => {
  it('on a healthy lab passes every check on every host, and changes nothing', async () => {
    const { report, log, unchanged } = await doctorRun(env);
    expect(unchanged).toBe(true);
    expect(report.hosts.map(problems)).toEqual([[], [], []]);
    expect(report.ok).toBe(true);
    for (const h of lab.hosts) {
      const d = of(report, h);
      expect(d.checks.map((c) => c.check)).toEqual(['reach', 'tools', 'shell', 'setup', 'socket-dir', ...(isRoot ? ['socket-dir'] : []), 'socket', 'health', 'nginx']);
      expect(d.checks.every((c) => c.status === 'ok')).toBe(true);
      expect(d.reach).toMatchObject({ via: 'ssh', hostname: '127.0.0.1', address: '127.0.0.1', user: lab.user, port: h.sshPort, jump: [], identity: lab.identityFile, hostKey: 'verified', ok: true });
      expect(check(d, 'reach')[0]!.message).toBe(`reached ${lab.user}@127.0.0.1 port ${h.sshPort}, jump none, identity ${lab.identityFile}, host key verified`);
      expect(check(d, 'tools')[0]!.message).toMatch(/^tools: all 14 the scripts need \(tar [\d.]+, find [\d.]+, curl [\d.]+, bash [\d.]+\)$/);
      expect(check(d, 'shell')[0]!.message).toMatch(/^login shell \/\S+ starts in \d+ ms; then bash -c of a script: \d+ ms$/);
      expect(check(d, 'socket-dir')[0]!.message).toBe(`nginx worker user ${isRoot ? 'daemon' : lab.user} can reach ${h.socketDir} and connect to the live socket`);
      expect(check(d, 'nginx')[0]!.message).toBe(`nginx at http://127.0.0.1:${h.nginxPort} answers GET /health with Host ${lab.site} as the live socket does: 200, the same answer`);
      expect(log).toContain(`[${h.name}] ✓ nginx: nginx at http://127.0.0.1:${h.nginxPort}`);
    }
  });

  it('names each problem and its host, goes on past a host it cannot reach, exits non-zero, and changes nothing', async () => {
    const [h1, h2, h3] = lab.hosts as [LabHost, LabHost, LabHost];
    // h1: sshd gives every session a PATH without ss and a BASH_ENV that sleeps; its nginx serves another site
    const bin = path.join(h1.root, 'bin');
    fs.mkdirSync(bin);
    const tools = /^SY_TOOLS='([^']+)'$/m.exec(fs.readFileSync(path.join(REMOTE_SCRIPTS_DIR, 'lib.sh'), 'utf8'))![1]!.split(' ');
    for (const t of [...tools.filter((x) => x !== 'ss'), 'bash', 'sleep', 'getconf', 'getent']) {
      fs.symlinkSync((await execa('bash', ['-c', `command -v ${t}`])).stdout, path.join(bin, t));
    }
    fs.writeFileSync(path.join(h1.root, 'slow-start.sh'), 'sleep 0.4\n');
    await lab.setSshdEnv(h1, { PATH: bin, BASH_ENV: path.join(h1.root, 'slow-start.sh') });
    await lab.configureNginxSite(h1, 'another.test');
    // h2: the socket dir lost its search permission (nginx's workers cannot get through)
    fs.chmodSync(h2.socketDir, 0o600);
    // h3: its key is not in the known_hosts file doctor is given
    const known = path.join(lab.dir, 'known_hosts.doctor');
    fs.writeFileSync(known, fs.readFileSync(lab.knownHostsFile, 'utf8').split('\n').filter((l) => !l.startsWith(`[127.0.0.1]:${h3.sshPort} `)).join('\n'));
    const broken = validateEnvironment({ ...input, ssh: { ...input.ssh, knownHostsFile: known } }, { name: 'lab', file: 'env/lab.ts', root: REPO });

    try {
      const { report, log, unchanged } = await doctorRun(broken);
      expect(unchanged).toBe(true);
      expect(report.ok).toBe(false);

      const d1 = of(report, h1);
      expect(problems(d1)).toEqual([
        'tools: missing tools: ss (the scripts need them; tar must be GNU tar, find GNU findutils)',
        expect.stringMatching(new RegExp(`^shell: login shell /\\S+ starts in \\d+ ms; then bash -c of a script: \\d+ ms: over ${SLOW_SHELL_MS} ms, paid by every SSH command`)),
        `nginx: nginx at http://127.0.0.1:${h1.nginxPort} answers GET /health with Host ${lab.site}: 421, the live socket 200: nginx does not route ${lab.site} to ${h1.liveSocket} (nginx has no map entry for the site: its config is for another site name)`,
      ]);
      expect(Number(/starts in (\d+) ms/.exec(check(d1, 'shell')[0]!.message)![1])).toBeGreaterThanOrEqual(400);

      const d2 = of(report, h2);
      const who = isRoot ? 'daemon' : lab.user;
      const owner = `${lab.user}:${(await execa('id', ['-gn'])).stdout}`;
      expect(problems(d2)).toEqual(
        expect.arrayContaining([
          `socket-dir: nginx worker user ${who} cannot reach ${h2.socketDir}: no search (x) permission on ${h2.socketDir} (mode 0600 ${owner})`,
          expect.stringMatching(new RegExp(`^nginx: nginx at http://127\\.0\\.0\\.1:${h2.nginxPort} answers GET /health with Host ${lab.site.replace('.', '\\.')}: 502`)),
        ]),
      );

      const d3 = of(report, h3);
      expect(d3.reach).toMatchObject({ ok: false, failure: 'host key', hostKey: 'unknown', fingerprint: expect.stringMatching(/^ssh-ed25519 SHA256:/) });
      expect(problems(d3)).toEqual([expect.stringMatching(new RegExp(`^reach: cannot reach .* port ${h3.sshPort}, .*: host key \\(host key unknown ssh-ed25519 SHA256:\\S+\\): .*ssh-keyscan -p ${h3.sshPort}`))]);
      expect(d3.checks).toHaveLength(1);
      expect(log).toMatch(new RegExp(`\\[h3\\] ✗ reach: cannot reach`));
    } finally {
      fs.chmodSync(h2.socketDir, 0o755);
    }
  });
});
