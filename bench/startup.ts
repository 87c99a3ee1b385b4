// npm run bench:startup [-- --runs=7 --hosts=16]
//
// What a user waits for before switchyard does anything, measured on the built package as a user
// runs it: `npm pack`, installed with gulp into a fresh project outside this repository, then
//   - `gulp --tasks` with a gulpfile that registers every switchyard task, against a trivial gulpfile;
//   - `switchyard --help`;
//   - a deploy's start-up share: process start to its first SSH connection attempt (a recording TCP
//     forwarder stands in front of each lab sshd), with `switchyard deploy` from the project;
//   - the peak memory (GNU time's maximum resident set) of `switchyard deploy` to --hosts lab hosts.
// Medians of --runs runs. Prints a table; figures go to reports/startup-<date>.json.
// Exit codes: 0 measured; 1 a step failed (the message names it).
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { startLab, type Lab } from '../test/support/lab';
import { labEnvInput, REPO } from '../test/support/lab-env';
import { setup } from '../lib/servers/setup';
import { MemoryReporter } from '../lib/output/reporter';
import { validateEnvironment, type EnvironmentInput } from '../lib/environment';

const execFileP = promisify(execFile);
const { values: flags } = parseArgs({ options: { runs: { type: 'string', default: '7' }, hosts: { type: 'string', default: '16' } }, strict: true });
const RUNS = Math.max(1, Number(flags.runs));
const HOSTS = Math.max(1, Number(flags.hosts));
const TIME = '/usr/bin/time'; // GNU time: apt-get install time
const log = (m: string) => process.stderr.write(`${m}\n`);
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

interface Timed {
  seconds: number;
  maxRssMiB: number;
  code: number;
  stderr: string;
  startedAt: number;
}

/** One run of a command under GNU time: wall seconds from spawn to exit, and its peak RSS. */
function timed(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env): Promise<Timed> {
  return new Promise((resolve, reject) => {
    const startedAt = Date.now();
    const t0 = performance.now();
    const child = spawn(TIME, ['-f', '::rss %M', cmd, ...args], { cwd, env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const seconds = (performance.now() - t0) / 1000;
      const rss = /::rss (\d+)/.exec(stderr);
      resolve({ seconds, maxRssMiB: rss ? Number(rss[1]) / 1024 : NaN, code: code ?? 1, stderr: stderr.replace(/::rss \d+\n?/, ''), startedAt });
    });
  });
}

async function repeat(what: string, runs: number, once: () => Promise<Timed>): Promise<Timed[]> {
  const out: Timed[] = [];
  for (let i = 0; i < runs; i++) {
    const r = await once();
    if (r.code !== 0) throw new Error(`${what} exited ${r.code}: ${r.stderr.slice(-500)}`);
    out.push(r);
  }
  return out;
}

/** A fresh project outside the repository with the packed tarball and gulp installed. */
async function consumerProject(): Promise<string> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sy-startup-'));
  log('bench: npm pack (builds dist/)');
  const { stdout } = await execFileP('npm', ['pack', '--silent', '--pack-destination', dir], { cwd: REPO, maxBuffer: 1 << 24 });
  const tarball = path.join(dir, stdout.trim().split('\n').pop()!);
  const project = path.join(dir, 'project');
  fs.mkdirSync(project);
  fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'startup-bench', private: true }) + '\n');
  log('bench: npm install the tarball and gulp into a fresh project');
  await execFileP('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--silent', tarball, 'gulp@5'], { cwd: project, maxBuffer: 1 << 24 });
  fs.writeFileSync(
    path.join(project, 'gulpfile.js'),
    "const { task } = require('gulp');\nconst { createTasks, parseFlags } = require('gulp-switchyard');\n" +
      'for (const [name, fn] of Object.entries(createTasks(parseFlags(process.argv.slice(2))))) task(name, fn);\n',
  );
  fs.writeFileSync(path.join(project, 'trivial.js'), "exports.noop = (cb) => cb();\n");
  fs.cpSync(path.join(REPO, 'examples', 'hello'), path.join(project, 'app'), { recursive: true });
  return project;
}

/** A TCP forwarder to each lab sshd that notes when its first connection came in. */
async function recordingForwarders(lab: Lab): Promise<{ ports: number[]; first: () => number | undefined; stop: () => void }> {
  let first: number | undefined;
  const servers: net.Server[] = [];
  const sockets = new Set<net.Socket>();
  const ports: number[] = [];
  for (const h of lab.hosts) {
    const server = net.createServer((client) => {
      first ??= Date.now();
      const up = net.connect(h.sshPort, '127.0.0.1');
      for (const s of [client, up]) {
        sockets.add(s);
        s.on('close', () => sockets.delete(s));
        s.on('error', () => (client.destroy(), up.destroy()));
      }
      client.pipe(up).pipe(client);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    servers.push(server);
    ports.push((server.address() as net.AddressInfo).port);
  }
  // the forwarder's port is another [host]:port to known_hosts: the same key, trusted there too
  const known = fs.readFileSync(lab.knownHostsFile, 'utf8').split('\n');
  lab.hosts.forEach((h, i) => {
    const line = known.find((l) => l.startsWith(`[127.0.0.1]:${h.sshPort} `));
    if (!line) throw new Error(`bench: no known_hosts line for ${h.name}`);
    fs.appendFileSync(lab.knownHostsFile, `${line.replace(`:${h.sshPort} `, `:${ports[i]} `)}\n`);
  });
  return {
    ports,
    first: () => {
      const f = first;
      first = undefined;
      return f;
    },
    stop: () => {
      for (const s of sockets) s.destroy();
      for (const s of servers) s.close();
    },
  };
}

function writeEnv(project: string, input: EnvironmentInput): void {
  fs.mkdirSync(path.join(project, 'env'), { recursive: true });
  fs.writeFileSync(path.join(project, 'env', 'bench.json'), JSON.stringify({ ...input, build: { dir: 'app' } }, null, 2));
}

async function deployFigures(project: string): Promise<{ startupSeconds: number[]; deploy: Timed[] }> {
  const lab = await startLab({ hosts: HOSTS });
  const fwd = await recordingForwarders(lab);
  try {
    const input = labEnvInput(lab, { over: { retire: { graceSeconds: 0, drainSeconds: 5 } } });
    await setup({ environment: validateEnvironment(input, { name: 'bench', file: 'env/bench.json', root: project }), reporter: new MemoryReporter() });
    // through the forwarders: the first connection any host sees is the deploy's first attempt
    input.hosts = input.hosts.map((h, i) => ({ ...h, port: fwd.ports[i]! }));
    writeEnv(project, input);
    const bin = path.join(project, 'node_modules', '.bin', 'switchyard');
    const cold = await timed(bin, ['cold-deploy', '--env=bench'], project);
    if (cold.code !== 0) throw new Error(`cold-deploy failed: ${cold.stderr.slice(-800)}`);
    fwd.first();
    const startupSeconds: number[] = [];
    const deploy = await repeat('switchyard deploy', RUNS, async () => {
      const r = await timed(bin, ['deploy', '--env=bench'], project);
      const first = fwd.first();
      if (first !== undefined) startupSeconds.push((first - r.startedAt) / 1000);
      return r;
    });
    return { startupSeconds, deploy };
  } finally {
    fwd.stop();
    await lab.stop();
  }
}

async function main(): Promise<void> {
  if (!fs.existsSync(TIME)) throw new Error(`${TIME} is missing: apt-get install time`);
  const project = await consumerProject();
  try {
    const gulp = path.join(project, 'node_modules', '.bin', 'gulp');
    log(`bench: gulp --tasks, ${RUNS} runs each`);
    const trivial = await repeat('gulp --tasks (trivial)', RUNS, () => timed(gulp, ['--gulpfile', 'trivial.js', '--tasks'], project));
    const ours = await repeat('gulp --tasks (switchyard)', RUNS, () => timed(gulp, ['--gulpfile', 'gulpfile.js', '--tasks'], project));
    const help = await repeat('switchyard --help', RUNS, () => timed(path.join(project, 'node_modules', '.bin', 'switchyard'), ['--help'], project));
    log(`bench: ${RUNS} deploys to ${HOSTS} lab hosts with switchyard deploy`);
    const { startupSeconds, deploy } = await deployFigures(project);
    const figures = {
      node: process.version,
      runs: RUNS,
      hosts: HOSTS,
      gulpTasksTrivialSeconds: median(trivial.map((r) => r.seconds)),
      gulpTasksSeconds: median(ours.map((r) => r.seconds)),
      gulpTasksRatio: median(ours.map((r) => r.seconds)) / median(trivial.map((r) => r.seconds)),
      gulpTasksTrivialRssMiB: median(trivial.map((r) => r.maxRssMiB)),
      gulpTasksRssMiB: median(ours.map((r) => r.maxRssMiB)),
      helpSeconds: median(help.map((r) => r.seconds)),
      deployStartupSeconds: median(startupSeconds),
      deploySeconds: median(deploy.map((r) => r.seconds)),
      deployPeakRssMiB: Math.max(...deploy.map((r) => r.maxRssMiB)),
    };
    print(figures);
    const out = path.join(REPO, 'reports', `startup-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
    fs.mkdirSync(path.dirname(out), { recursive: true });
    fs.writeFileSync(out, JSON.stringify(figures, null, 2) + '\n');
    log(`bench: figures in ${path.relative(REPO, out)}`);
  } finally {
    fs.rmSync(path.dirname(project), { recursive: true, force: true });
  }
}

function print(f: Record<string, number | string>): void {
  const n = (x: unknown, d = 2) => (typeof x === 'number' ? x.toFixed(d) : String(x));
  const rows = [
    ['gulp --tasks, trivial gulpfile', `${n(f.gulpTasksTrivialSeconds)} s`, `${n(f.gulpTasksTrivialRssMiB, 0)} MiB`, ''],
    ['gulp --tasks, every switchyard task', `${n(f.gulpTasksSeconds)} s`, `${n(f.gulpTasksRssMiB, 0)} MiB`, `ratio ${n(f.gulpTasksRatio)} (target <= 1.30)`],
    ['switchyard --help', `${n(f.helpSeconds)} s`, '', 'target <= 0.30 s'],
    [`deploy: process start -> first SSH connect`, `${n(f.deployStartupSeconds)} s`, '', 'target <= 0.40 s'],
    [`deploy to ${f.hosts} hosts, whole process`, `${n(f.deploySeconds)} s`, `${n(f.deployPeakRssMiB, 0)} MiB peak`, 'target <= 90 MiB'],
  ];
  const w = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  process.stdout.write(`\nstart-up, built package (${f.node}, medians of ${f.runs})\n`);
  for (const r of rows) process.stdout.write(r.map((c, i) => c.padEnd(w[i]!)).join('  ') + '\n');
}

main().catch((e: Error) => {
  process.stderr.write(`bench: ${e.message}\n`);
  process.exitCode = 1;
});
