// `gulp loadtest`: load against an environment, measured and reported (under-load.ts runs a change
// under the same load). Targets: targets.ts (every web host's nginx with Host: <site>, or loadtest.url).
// Reports: <project root>/reports/<kind>-<env>-<time>.{json,html} (git-ignored), paths printed.
import path from 'node:path';
import { contextFor, type LoadTaskOptions } from '../context';
import { displayPath, type Environment } from '../environment';
import { assertZeroFailures, LoadFailuresError, startLoad, summarize, type LoadResult } from './engine';
import { writeLoadReport } from '../output/report';
import type { Reporter } from '../output/reporter';
import { loadTargets } from './targets';

export type { LoadTaskOptions } from '../context';

export interface LoadReportPaths {
  json: string;
  html: string;
}

export interface LoadOutcome {
  result: LoadResult;
  report: LoadReportPaths;
}

/** Thrown when requests failed under load: the message lists them (time, code, target) and names the report. */
export class LoadCheckFailedError extends LoadFailuresError {
  readonly report: LoadReportPaths;
  constructor(message: string, result: LoadResult, report: LoadReportPaths) {
    super(message, result);
    this.report = report;
  }
}

export function where(file: string): string {
  return displayPath(file, process.cwd());
}

export function describeTargets(env: Environment, targets: ReturnType<typeof loadTargets>): string {
  return targets.map((t) => `${t.label === t.url ? t.url : `${t.label} ${t.url}`}`).join(', ') + ` (Host: ${env.site})`;
}

export async function writeReport(env: Environment, o: LoadTaskOptions, kind: string, title: string, result: LoadResult, notes: string[]): Promise<LoadReportPaths> {
  const dir = path.resolve(env.root, o.reportDir ?? 'reports');
  const name = `${kind}-${env.name}-${result.startedAt.replace(/[:.]/g, '-')}`;
  return writeLoadReport(dir, result, { title, env: env.name, notes, name });
}

export function logResult(reporter: Reporter, result: LoadResult, report: LoadReportPaths): void {
  reporter.log(result.failed ? 'warn' : 'info', summarize(result));
  const codes = Object.keys(result.failuresByCode);
  if (result.requests > 0 && result.failed === result.requests && codes.every((c) => c === 'ECONNREFUSED')) {
    reporter.log('warn', `nothing listens at ${result.targets.map((t) => t.url).join(', ')}: is nginx running there (gulp setup), and is that where it listens (nginx.listen, hosts[].url)?`);
  }
  reporter.log('info', `report: ${where(report.html)} (JSON: ${where(report.json)})`);
}

/* ------------------------------------------------------------------ gulp loadtest */

/** Measure: load the environment's web hosts for --duration seconds (or --requests), print the figures, write the report. */
export async function loadtest(o: LoadTaskOptions): Promise<LoadOutcome> {
  const { env, reporter } = contextFor(o);
  const targets = loadTargets(env, o.hosts ? { hosts: o.hosts } : {});
  const durationSeconds = o.duration ?? (o.requests === undefined ? 10 : undefined);
  const run = startLoad({
    targets,
    ...(o.concurrency ? { concurrency: o.concurrency } : {}),
    ...(durationSeconds ? { durationSeconds } : {}),
    ...(o.requests ? { requests: o.requests } : {}),
    ...(o.keepalive === undefined ? {} : { keepalive: o.keepalive }),
    ...(o.path ? { path: o.path } : {}),
    ...(o.method ? { method: o.method } : {}),
  });
  const limit = [durationSeconds ? `${durationSeconds} s` : '', o.requests ? `${o.requests} requests` : ''].filter(Boolean).join(' or ');
  reporter.log('info', `load: ${o.method ?? 'GET'} ${o.path ?? '/'} on ${describeTargets(env, targets)}, concurrency ${o.concurrency ?? 100}, keep-alive ${o.keepalive === false ? 'off' : 'on'}, for ${limit} (Ctrl-C stops it early)`);
  const ticker = setInterval(() => {
    const p = run.progress();
    reporter.log('info', `  ${(p.elapsedMs / 1000).toFixed(0)} s: ${p.requests} requests, ${p.failed} failed`);
  }, 5000);
  const onSignal = () => void run.stop();
  process.once('SIGINT', onSignal);
  let result: LoadResult;
  try {
    result = await run.done;
  } finally {
    clearInterval(ticker);
    process.off('SIGINT', onSignal);
  }
  const report = await writeReport(env, o, 'loadtest', `loadtest ${env.site} (${env.name})`, result, []);
  logResult(reporter, result, report);
  return { result, report };
}

/** `gulp loadtest` fails when more requests failed than it accepts (default none), naming them and the report. */
export function assertAccepted(outcome: LoadOutcome, maxFailures = 0): void {
  const { result, report } = outcome;
  if (result.failed <= maxFailures) return;
  const why = maxFailures ? ` (more than the ${maxFailures} accepted by --max-failures)` : '';
  try {
    assertZeroFailures(result);
  } catch (e) {
    if (!(e instanceof LoadFailuresError)) throw e;
    throw new LoadCheckFailedError(`${e.message.replace(/:\n/, `${why}:\n`)}\nreport: ${where(report.html)}`, result, report);
  }
}
