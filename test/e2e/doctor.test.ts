// Issue 13, diagnostics: `gulp doctor` through real sshd and nginx hosts, healthy and then with a
// real problem on each host (a PATH without a tool and a login shell that sleeps, set by the host's
// sshd; an nginx serving another site; a socket dir nginx's workers cannot search; a host key not
// in known_hosts). It names each problem and its host, and no doctor run changes a file on a host.
import { execa } from 'execa';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
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
  const walk = (p: string) => {
    const st = fs.lstatSync(p, { bigint: true });
    const sum = st.isFile() ? crypto.createHash('sha256').update(fs.readFileSync(p)).digest('hex') : st.isSymbolicLink() ? fs.readlinkSync(p) : '';
    lines.push(`${p} ${st.mode.toString(8)} ${st.size} ${st.mtimeNs} ${sum}`);
    if (!st.isDirectory()) return;
    // a directory this user cannot search (the socket dir made 0600, as a non-root user): its names only
    if (process.getuid?.() !== 0 && (Number(st.mode) & 0o100) === 0) lines.push(...fs.readdirSync(p).sort().map((n) => `${p}/${n} ?`));
    else for (const name of fs.readdirSync(p).sort()) walk(path.join(p, name));
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

/** A loopback port nobody listens on (bound, then closed). */
function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
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
      expect(check(d, 'reach')[0]!.message).toMatch(new RegExp(`^reached ${lab.user}@127\\.0\\.0\\.1 port ${h.sshPort}, jump none, identity ${lab.identityFile}, host key ssh-ed25519 SHA256:\\S+ verified by ${lab.knownHostsFile}:\\d+$`));
      expect(check(d, 'tools')[0]!.message).toMatch(/^all 14 tools the scripts need \(tar [\d.]+, find [\d.]+, curl [\d.]+, bash [\d.]+\)$/);
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
    // h3: its key is not in the known_hosts file doctor is given; "changed": h2's sshd on another
    // port, whose known_hosts line holds another key; "refused": a port nobody listens on;
    // "denied": h1's sshd with a key it does not authorize
    const other = path.join(lab.dir, 'not_authorized');
    await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', other]);
    const otherKey = fs.readFileSync(`${other}.pub`, 'utf8').split(' ').slice(0, 2).join(' ');
    const changedPort = await lab.addDelayProxy(h2, 0);
    const known = path.join(lab.dir, 'known_hosts.doctor');
    const lines = fs.readFileSync(lab.knownHostsFile, 'utf8').split('\n').filter((l) => l && !l.startsWith(`[127.0.0.1]:${h3.sshPort} `) && !l.startsWith(`[127.0.0.1]:${changedPort} `));
    fs.writeFileSync(known, [...lines, `[127.0.0.1]:${changedPort} ${otherKey}`, ''].join('\n'));
    const refusedPort = await closedPort();
    const like = (name: string, port: number, more: object = {}) => ({ ...input.hosts[0]!, name, port, ...more });
    const brokenInput: EnvironmentInput = {
      ...input,
      hosts: [...input.hosts, like('changed', changedPort), like('refused', refusedPort), like('denied', h1.sshPort, { identityFile: other })],
      ssh: { ...input.ssh, knownHostsFile: known },
    };
    const broken = validateEnvironment(brokenInput, { name: 'lab', file: 'env/lab.ts', root: REPO });

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
      expect(problems(d3)).toEqual([expect.stringMatching(new RegExp(`^reach: cannot reach .* port ${h3.sshPort}, .*: host key unknown: unknown host key ssh-ed25519 SHA256:\\S+ .*ssh-keyscan -p ${h3.sshPort}`))]);
      expect(d3.checks).toHaveLength(1);
      expect(log).toMatch(new RegExp(`\\[h3\\] ✗ reach: cannot reach`));

      const d = (name: string) => report.hosts.find((x) => x.host === name)!;
      expect(d('changed').reach).toMatchObject({ ok: false, failure: 'host key', hostKey: 'changed', fingerprint: expect.stringMatching(/^ssh-ed25519 SHA256:/) });
      expect(problems(d('changed'))[0]).toMatch(new RegExp(`port ${changedPort}, .*: host key changed: HOST KEY CHANGED: the server offered ssh-ed25519 SHA256:\\S+ .*ssh-keygen -R '\\[127\\.0\\.0\\.1\\]:${changedPort}'`));
      expect(d('refused').reach).toMatchObject({ ok: false, failure: 'refused', hostKey: 'not checked' });
      expect(problems(d('refused'))).toEqual([expect.stringMatching(new RegExp(`^reach: cannot reach ${lab.user}@127\\.0\\.0\\.1 port ${refusedPort}, .*: refused: `))]);
      expect(d('denied').reach).toMatchObject({ ok: false, failure: 'auth failed', hostKey: 'verified', identity: other });
      expect(problems(d('denied'))).toEqual([expect.stringMatching(/: auth failed: authentication failed: tried .*not_authorized \(refused\)/)]);
      // the hosts it reached were examined all the same
      expect(report.hosts.filter((x) => x.checks.length > 1).map((x) => x.host)).toEqual(['h1', 'h2']);

      // the command: the same report as JSON, exit 1 and a line naming every host with a problem
      const envDir = path.join(lab.dir, 'env');
      fs.mkdirSync(envDir);
      fs.writeFileSync(path.join(envDir, 'lab.mjs'), `export default ${JSON.stringify(brokenInput)};\n`);
      const cli = await execa(process.execPath, ['-r', 'esbuild-register', path.join(REPO, 'bin', 'switchyard.ts'), 'doctor', '--env=lab', `--env-dir=${envDir}`, '--json'], { cwd: REPO, reject: false, timeout: 30_000 });
      expect(cli.exitCode).toBe(1);
      const json = JSON.parse(cli.stdout) as DoctorReport;
      expect(json.ok).toBe(false);
      expect(json.hosts.map((x) => [x.host, x.ok])).toEqual([['h1', false], ['h2', false], ['h3', false], ['changed', false], ['refused', false], ['denied', false]]);
      expect(json.hosts[0]!.checks.filter((c) => c.status === 'problem').map((c) => c.check)).toEqual(['tools', 'shell', 'nginx']);
      expect(cli.stderr).toMatch(/^switchyard: doctor: problems on h1 \(tools, shell, nginx\), h2 \(socket-dir.*\), h3 \(reach\), changed \(reach\), refused \(reach\), denied \(reach\)$/m);
      // with --verbose the debug lines go to stderr: stdout is still the JSON alone
      const loud = await execa(process.execPath, ['-r', 'esbuild-register', path.join(REPO, 'bin', 'switchyard.ts'), 'doctor', '--env=lab', `--env-dir=${envDir}`, '--json', '--verbose'], { cwd: REPO, reject: false, timeout: 30_000 });
      expect(loud.exitCode).toBe(1);
      expect((JSON.parse(loud.stdout) as DoctorReport).hosts.map((x) => x.host)).toEqual(json.hosts.map((x) => x.host));
      expect(loud.stderr).toMatch(/^\[h1\] doctor: doctor\.sh --deploy-to /m);
    } finally {
      fs.chmodSync(h2.socketDir, 0o755);
    }
  });
});
