// One switchyard deploy in a process of its own, so the benchmark measures this process's peak
// memory and nothing else's. Started by bench/deploy.ts:
//
//   node -r esbuild-register bench/one-deploy.ts <job.json>
//
// job.json: { "env": <EnvironmentInput>, "kind": "deploy" | "cold-deploy", "root": "<repo>" }
// Prints ONE line of JSON on stdout: { ok, error?, report, marks, events, maxRssKiB, processStartMs }
// (times are epoch milliseconds, comparable with the parent's Date.now()). Exit code 0 when the
// deploy succeeded, 1 otherwise; nothing else is printed on stdout.
import fs from 'node:fs';
import { validateEnvironment, type EnvironmentInput } from '../lib/environment';
import { reportOf, type ReleaseEvent, type ReleaseReport } from '../lib/release/flow';
import { BaseReporter, type Level } from '../lib/output/reporter';
import { deploy } from '../lib/release/deploy';

interface Job {
  env: EnvironmentInput;
  kind: 'deploy' | 'cold-deploy';
  root: string;
}

export interface OneDeployResult {
  ok: boolean;
  error?: string;
  report?: ReleaseReport;
  /** Local moments: deploy() called, package built (its log line), deploy() returned. */
  marks: { called: number; packaged?: number; returned: number };
  events: ReleaseEvent[];
  /** process.resourceUsage().maxRSS: the peak resident set of this process, KiB. */
  maxRssKiB: number;
  /** CPU seconds (user + system) this process spent in the deploy() call. */
  cpuSeconds: number;
  /** When this process started (epoch ms): node + esbuild-register start = marks.called - this. */
  processStartMs: number;
  /** Warnings and errors the deploy printed (kept for the bench's error messages). */
  lines: string[];
}

/** Keeps nothing but the moment the package line appears, and warnings/errors. */
class QuietReporter extends BaseReporter {
  packaged?: number;
  lines: string[] = [];
  constructor() {
    super(false);
  }
  protected write(level: Level, line: string): void {
    if (this.packaged === undefined && line.startsWith('package: ')) this.packaged = Date.now();
    if (level === 'warn' || level === 'error') this.lines.push(`${level}: ${line}`);
  }
}

async function main(): Promise<number> {
  const file = process.argv[2];
  if (!file) throw new Error('usage: one-deploy.ts <job.json>');
  const job = JSON.parse(fs.readFileSync(file, 'utf8')) as Job;
  const environment = validateEnvironment(job.env, { name: 'bench', file: 'env/bench.ts', root: job.root });
  const reporter = new QuietReporter();
  const events: ReleaseEvent[] = [];
  const called = Date.now();
  const cpu0 = process.cpuUsage();
  let report: ReleaseReport | undefined;
  let error: string | undefined;
  try {
    report = await deploy({ environment, reporter, onEvent: (e) => events.push(e) }, job.kind);
  } catch (e) {
    error = (e as Error).message;
    report = reportOf(e);
  }
  const returned = Date.now();
  const cpu = process.cpuUsage(cpu0);
  const result: OneDeployResult = {
    ok: !error && report?.ok === true,
    ...(error ? { error } : {}),
    ...(report ? { report } : {}),
    marks: { called, ...(reporter.packaged ? { packaged: reporter.packaged } : {}), returned },
    events,
    maxRssKiB: process.resourceUsage().maxRSS,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    processStartMs: performance.timeOrigin,
    lines: reporter.lines,
  };
  process.stdout.write(JSON.stringify(result) + '\n');
  return result.ok ? 0 : 1;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (e) => {
    process.stderr.write(`one-deploy: ${(e as Error).stack ?? String(e)}\n`);
    process.exitCode = 2;
  },
);
