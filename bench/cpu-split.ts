// node -r esbuild-register bench/cpu-split.ts [--hosts=16] [--runs=1] [--bin=dist/bin/switchyard.js] [--freq=499] [--graph --keep=PREFIX]
//
// Where a deploy's CPU goes, on an N-host lab: `perf record -a` (every CPU, sampled) over one
// `switchyard deploy` of examples/hello, then the samples split into the deploying node process
// (the built command, by pid), and by program name for everything else: sshd, bash, gzip, tar, …
// (the rest of the machine, other sessions' tests included, is shown as "other"). Also GNU time's
// user+sys of the deploying process and the host sshds' CPU (as bench/deploy.ts counts it).
// --strace=FILE: the deploying node's writes and reads (strace -f; its CPU figures then include strace's).
// --cpu-prof=DIR: the deploying node's own profile (node --cpu-prof) into DIR. --graph records call graphs, --keep=PREFIX keeps each run's perf data as PREFIX-N.data
// (for `perf report -i … --comm bash`). See docs/BENCHMARK.md ("Where the CPU goes").
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startLab } from '../test/support/lab';
import { REPO } from '../test/support/lab-env';
import { CLK_TCK, cpuTicks, labProject } from './lab-project';
import { labFsLine } from './lab-fs';
import { reaperLine, underReaper } from './reaper';

const { values: flags } = parseArgs({
  options: {
    hosts: { type: 'string', default: '16' },
    runs: { type: 'string', default: '1' },
    freq: { type: 'string', default: '499' },
    graph: { type: 'boolean', default: false },
    keep: { type: 'string' },
    'cpu-prof': { type: 'string' },
    strace: { type: 'string' },
    bin: { type: 'string', default: path.join(REPO, 'dist', 'bin', 'switchyard.js') },
  },
  strict: true,
});
const HOSTS = Math.min(64, Math.max(1, Number(flags.hosts)));
const BIN = path.resolve(flags.bin!);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const load = () => os.loadavg().map((x) => x.toFixed(1)).join(' ');

/** The deploy under GNU time and perf: node's pid (time's child), wall s, local CPU s (user+sys). */
async function profiled(project: string, data: string): Promise<{ pid: number; wall: number; local: number }> {
  const perf = spawn('perf', ['record', '-a', ...(flags.graph ? ['-g'] : []), '-F', flags.freq!, '-o', data, '-q'], { stdio: 'ignore' });
  await sleep(700);
  const tf = path.join(path.dirname(data), 'time.txt');
  const t0 = Date.now();
  const child = spawn('/usr/bin/time', ['-o', tf, '-f', '%U %S', ...(flags.strace ? ['strace', '-f', '-qq', '-e', 'trace=write,writev,sendmsg,read,recvmsg', '-o', flags.strace] : []), process.execPath, ...(flags['cpu-prof'] ? ['--cpu-prof', `--cpu-prof-dir=${flags['cpu-prof']}`] : []), BIN, 'deploy', '--env=bench'], { cwd: project, stdio: 'ignore' });
  let pid = 0;
  for (let i = 0; i < 200 && !pid; i++) {
    await sleep(5);
    try {
      pid = Number(fs.readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim().split(' ')[0]) || 0;
    } catch {
      break;
    }
  }
  const code: number = await new Promise((r) => child.once('close', (c) => r(c ?? 1)));
  const wall = (Date.now() - t0) / 1000;
  await sleep(800); // the sessions reaped
  perf.kill('SIGINT');
  await new Promise((r) => perf.once('close', r));
  if (code !== 0) throw new Error(`deploy: exit ${code}`);
  const [u, s] = fs.readFileSync(tf, 'utf8').trim().split('\n').pop()!.split(' ').map(Number);
  return { pid, wall, local: u! + s! };
}

// What the deploy runs on the hosts (and the local node): every other name is the rest of the machine.
const OURS = new Set(['sshd', 'bash', 'node', 'gzip', 'tar', 'awk', 'find', 'grep', 'head', 'cp', 'rm', 'mv', 'ln', 'mkdir', 'chmod', 'curl', 'stat', 'ss', 'nohup', 'setsid', 'sha256sum', 'xargs', 'cat', 'sleep', 'kill', 'env']);

/** perf samples by what ran them, as CPU seconds (samples / freq). */
function split(data: string, nodePid: number): Map<string, number> {
  const out = execFileSync('perf', ['script', '-i', data, '-F', 'comm,pid,tid'], { encoding: 'utf8', maxBuffer: 512 << 20 });
  const by = new Map<string, number>();
  for (const line of out.split('\n')) {
    const m = /^\s*(.*?)\s+(\d+)\/(\d+)\s*$/.exec(line);
    if (!m) continue;
    const comm = m[1]!;
    const pid = Number(m[2]);
    const key = pid === nodePid ? 'LOCAL switchyard node (all its threads)' : comm === 'node' ? 'node (the apps; other sessions\' too)' : OURS.has(comm) ? comm : 'other';
    by.set(key, (by.get(key) ?? 0) + 1 / Number(flags.freq));
  }
  return by;
}

async function main(): Promise<void> {
  process.stderr.write(`${await reaperLine()}; ${labFsLine()}\n`);
  const lab = await startLab({ hosts: HOSTS });
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sy-cpusplit-'));
  try {
    const { project } = labProject(lab, tmp, 'cpu-split', BIN);
    const sshds = lab.hosts.map((h) => Number(fs.readFileSync(path.join(h.root, 'sshd.pid'), 'utf8').trim()));
    for (let i = 0; i < Number(flags.runs); i++) {
      await sleep(1000);
      const l0 = load();
      const before = sshds.map(cpuTicks);
      const data = path.join(tmp, `perf-${i}.data`);
      const r = await profiled(project, data);
      const remote = sshds.map((p, j) => (cpuTicks(p) - before[j]!) / CLK_TCK);
      const by = split(data, r.pid);
      if (flags.keep) fs.copyFileSync(data, `${flags.keep}-${i}.data`);
      const rows = [...by].sort((a, b) => b[1] - a[1]);
      const ours = rows.filter(([k]) => !k.startsWith('other')).reduce((a, [, v]) => a + v, 0);
      process.stdout.write(`\n${HOSTS} hosts, deploy ${i + 1}: wall ${r.wall.toFixed(2)} s; local CPU (GNU time) ${r.local.toFixed(2)} s; remote CPU (sshd trees) ${remote.reduce((a, b) => a + b, 0).toFixed(2)} s = ${(remote.reduce((a, b) => a + b, 0) / HOSTS).toFixed(3)} s/host; load ${l0} → ${load()}\n`);
      process.stdout.write(`perf samples as CPU s (all ${rows.reduce((a, [, v]) => a + v, 0).toFixed(2)}, not 'other' ${ours.toFixed(2)}):\n`);
      for (const [k, v] of rows) if (v >= 0.01) process.stdout.write(`  ${v.toFixed(2).padStart(7)}  ${(v / HOSTS * 1000).toFixed(1).padStart(6)} ms/host  ${k}\n`);
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
    await lab.stop();
  }
}

if (underReaper()) {
  main().catch((e) => {
    process.stderr.write(`cpu-split: ${(e as Error).stack ?? String(e)}\n`);
    process.exitCode = 1;
  });
}
