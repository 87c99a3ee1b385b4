// node -r esbuild-register bench/execs.ts [--runs=3] [--cpu-runs=5] [--bin=dist/bin/switchyard.js] [--supervisor-seconds=10]
//
// Every program the server side execs for one deploy of examples/hello to a 1-host SSH lab (the
// built command, as bench/deploy.ts runs it): `strace -f -e trace=execve` attached to the host's
// sshd listener for the deploy (its session processes, the login shell, the scripts and what they
// run; the app's own node is counted too, it is a child until setsid's exec). Prints per run the
// programs and their counts, then the median count per program; then --cpu-runs deploys without
// strace: the host's CPU per deploy (sshd listener's utime+stime+cutime+cstime, as bench/deploy.ts
// counts it; the app leaves the tree with setsid); and the site's supervisor (its
// own loop, detached, not under sshd): its execs and CPU over --supervisor-seconds. See
// docs/BENCHMARK.md ("Programs per deploy").
import { spawn } from 'node:child_process';
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
    runs: { type: 'string', default: '3' },
    'cpu-runs': { type: 'string', default: '5' },
    bin: { type: 'string', default: path.join(REPO, 'dist', 'bin', 'switchyard.js') },
    'supervisor-seconds': { type: 'string', default: '10' },
    keep: { type: 'boolean', default: false },
  },
  strict: true,
});
const RUNS = Math.max(1, Number(flags.runs));
const CPU_RUNS = Math.max(0, Number(flags['cpu-runs']));
const BIN = path.resolve(flags.bin!);
const SV_SECONDS = Math.max(1, Number(flags['supervisor-seconds']));
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const log = (m: string) => process.stderr.write(`${m}\n`);

/** One exec: the program's name and argv[1] (enough to tell `bash -c` from `bash script`). */
interface Exec {
  pid: number;
  prog: string;
  argv: string[];
}

function parseStrace(file: string): Exec[] {
  const out: Exec[] = [];
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const m = /^(\d+)\s+execve\("([^"]*)", \[(.*?)\](?:, | \/\*)/.exec(line);
    if (!m || !/= 0$/.test(line)) continue; // failed lookups along PATH are not programs run
    const argv = [...m[3]!.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((a) => a[1]!);
    out.push({ pid: Number(m[1]), prog: path.basename(m[2]!), argv });
  }
  return out;
}

/** A short label: the program and, for those whose argument says what it is for, that. */
function label(e: Exec): string {
  const a1 = e.argv[1] ?? '';
  if (e.prog === 'bash' && a1 === '-c') return `bash -c (${(e.argv[2] ?? '').replace(/^(\\n)+/, '').slice(0, 30).replace(/\s+/g, ' ')}…)`;
  if (e.prog === 'sshd') return `sshd ${e.argv.slice(1).join(' ').slice(0, 20)}`;
  return e.prog;
}

function count(execs: Exec[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const e of execs) m.set(label(e), (m.get(label(e)) ?? 0) + 1);
  return m;
}

async function strace(pid: number, file: string, during: () => Promise<void> | void): Promise<void> {
  const st = spawn('strace', ['-f', '-qq', '-s', '120', '-e', 'trace=execve', '-o', file, '-p', String(pid)], { stdio: 'ignore' });
  await sleep(400); // attached (strace prints nothing on -qq; the first deploy waits for this)
  try {
    await during();
  } finally {
    await sleep(600); // the session's last processes reaped
    st.kill('SIGINT');
    await new Promise((r) => st.once('close', r));
  }
}

async function main(): Promise<void> {
  process.stderr.write(`${await reaperLine()}; ${labFsLine()}\n`);
  const lab = await startLab({ hosts: 1 });
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sy-execs-'));
  try {
    const { sy } = labProject(lab, tmp, 'execs-bench', BIN);
    const h = lab.hosts[0]!;
    const sshd = Number(fs.readFileSync(path.join(h.root, 'sshd.pid'), 'utf8').trim());
    const per: Map<string, number>[] = [];
    for (let i = 0; i < RUNS; i++) {
      const file = path.join(tmp, `deploy-${i}.strace`);
      const before = cpuTicks(sshd);
      await strace(sshd, file, () => sy('deploy'));
      const cpu = (cpuTicks(sshd) - before) / CLK_TCK;
      const execs = parseStrace(file);
      per.push(count(execs));
      log(`deploy ${i + 1}: ${execs.length} execs (remote CPU under strace ${cpu.toFixed(2)} s, load ${os.loadavg().map((x) => x.toFixed(2)).join(' ')})`);
      if (i === 0) for (const e of execs) log(`  ${e.pid} ${e.prog} ${e.argv.slice(1).join(' ').slice(0, 110)}`);
    }
    const labels = [...new Set(per.flatMap((m) => [...m.keys()]))].sort();
    const med = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    let total = 0;
    process.stdout.write(`\nprograms exec'd on the host per deploy (median of ${RUNS}):\n`);
    for (const l of labels) {
      const n = med(per.map((m) => m.get(l) ?? 0));
      total += n;
      process.stdout.write(`  ${String(n).padStart(3)}  ${l}\n`);
    }
    process.stdout.write(`  ${String(total).padStart(3)}  total (sum of medians); per run: ${per.map((m) => [...m.values()].reduce((a, b) => a + b, 0)).join(' ')}\n`);

    const cpus: number[] = [];
    for (let i = 0; i < CPU_RUNS; i++) {
      const before = cpuTicks(sshd);
      sy('deploy');
      await sleep(600); // reaped
      cpus.push((cpuTicks(sshd) - before) / CLK_TCK);
    }
    if (cpus.length) {
      const sorted = [...cpus].sort((a, b) => a - b);
      process.stdout.write(`\nhost CPU per deploy, no strace (${CPU_RUNS} deploys): median ${med([...cpus]).toFixed(3)} s, mean ${(cpus.reduce((x, y) => x + y, 0) / cpus.length).toFixed(4)} s, min ${sorted[0]!.toFixed(3)} s; each ${cpus.map((c) => c.toFixed(2)).join(' ')}; load ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}\n`);
    }

    // the supervisor: its own loop, not under sshd
    const svFile = path.join(h.deployTo, '.switchyard', 'supervisor');
    if (fs.existsSync(svFile)) {
      const svPid = Number(fs.readFileSync(svFile, 'utf8').trim().split(/\s+/)[0]);
      // its CPU alone first (strace stops it at every system call: that costs more than the loop)
      const free0 = cpuTicks(svPid);
      const ft = Date.now();
      await sleep(SV_SECONDS * 1000);
      const freeS = (Date.now() - ft) / 1000;
      const freeCpu = (cpuTicks(svPid) - free0) / CLK_TCK;
      process.stdout.write(`\nsupervisor (pid ${svPid}) over ${freeS.toFixed(1)} s, no strace: CPU ${freeCpu.toFixed(2)} s (${((freeCpu / freeS) * 100).toFixed(2)} % of a core; load ${os.loadavg().map((x) => x.toFixed(2)).join(' ')})\n`);
      const file = path.join(tmp, 'supervisor.strace');
      const before = cpuTicks(svPid);
      const t = Date.now();
      await strace(svPid, file, () => sleep(SV_SECONDS * 1000));
      const s = (Date.now() - t) / 1000;
      const cpu = (cpuTicks(svPid) - before) / CLK_TCK;
      const execs = parseStrace(file);
      const c = [...count(execs)].map(([k, v]) => `${k} ×${v}`).join(', ');
      process.stdout.write(`supervisor (pid ${svPid}) over ${s.toFixed(1)} s, strace attached: ${execs.length} execs (${c || 'none'}); CPU ${cpu.toFixed(2)} s (${((cpu / s) * 100).toFixed(1)} % of a core)\n`);
    } else process.stdout.write('\nno supervisor recorded\n');
  } finally {
    if (!flags.keep) fs.rmSync(tmp, { recursive: true, force: true });
    await lab.stop();
  }
}

if (underReaper()) {
  main().catch((e) => {
    log(`execs: ${(e as Error).stack ?? String(e)}`);
    process.exitCode = 1;
  });
}
