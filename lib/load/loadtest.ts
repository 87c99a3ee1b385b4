// Load against an environment: `gulp loadtest` measures, and withLoad() runs any change that moves
// traffic (a deploy, a rollback, a restart) under load, marks each host's steps on the timeline
// and fails if even one request failed (`gulp verify`, `gulp deploy --under-load`).
//
// Targets: lib/targets.ts (every web host's nginx with Host: <site>, or loadtest.url).
// Reports: <project root>/reports/<kind>-<env>-<time>.{json,html} (git-ignored), paths printed.
import path from 'node:path';
import { contextFor, type LoadTaskOptions } from '../context';
import { displayPath, type Environment } from '../environment';
import { SwitchyardError } from '../errors';
import { assertZeroFailures, formatFailure, LoadFailuresError, startLoad, summarize, type LoadResult, type LoadRun } from './engine';
import type { ReleaseEvent } from '../release/flow';
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

/** After the first completed request, let throughput settle this long before changing anything. */
export const RAMP_MS = 1000;
/** After the last change, keep the load on this long: the new release must serve too. */
export const TAIL_MS = 1000;
/** No request completed within this time: the targets are not answering at all. */
const FIRST_REQUEST_TIMEOUT_MS = 15_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function where(file: string): string {
  return displayPath(file, process.cwd());
}

function describeTargets(env: Environment, targets: ReturnType<typeof loadTargets>): string {
  return targets.map((t) => `${t.label === t.url ? t.url : `${t.label} ${t.url}`}`).join(', ') + ` (Host: ${env.site})`;
}

async function writeReport(env: Environment, o: LoadTaskOptions, kind: string, title: string, result: LoadResult, notes: string[]): Promise<LoadReportPaths> {
  const dir = path.resolve(env.root, o.reportDir ?? 'reports');
  const name = `${kind}-${env.name}-${result.startedAt.replace(/[:.]/g, '-')}`;
  return writeLoadReport(dir, result, { title, env: env.name, notes, name });
}

function logResult(reporter: Reporter, result: LoadResult, report: LoadReportPaths): void {
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
  const head = maxFailures ? ` (more than the ${maxFailures} accepted by --max-failures)` : '';
  try {
    assertZeroFailures(result);
  } catch (e) {
    throw new LoadCheckFailedError(`${(e as Error).message.replace(/:\n/, `${head}:\n`)}\nreport: ${where(report.html)}`, result, report);
  }
}

/* ------------------------------------------------------------------ under load */

/** What a change run under load gets: options to spread into deploy()/rollback(), and the run itself. */
export interface UnderLoad {
  /** `{ environment, reporter, onEvent }`: the loaded environment, and markers for every step; `prefix` goes in front of the labels. */
  options(prefix?: string): { environment: Environment; reporter: Reporter; onEvent: (e: ReleaseEvent) => void };
  /** A line for the report's notes. */
  note(text: string): void;
  run: LoadRun;
}

export interface WithLoadOptions extends LoadTaskOptions {
  /** Report file prefix: verify, deploy, … */
  kind: string;
  title: string | ((env: Environment) => string);
  /** Also told about every step (the caller's own onEvent). */
  onEvent?: (e: ReleaseEvent) => void;
}

/** One marker per host and step: prepare and retire when they start, switch when it is done; failures and undo too. */
export function markerFor(e: ReleaseEvent, prefix = ''): { label: string; phase: string } | undefined {
  const label = `${prefix}${e.host} ${e.step}`;
  if (e.at === 'end' && e.ok === false) return { label: `${label} FAILED`, phase: `${e.step}-failed` };
  if (e.step === 'switch') return e.at === 'end' ? { label, phase: 'switch' } : undefined;
  return e.at === 'start' ? { label, phase: e.step } : undefined;
}

/**
 * Run `fn` (one or more changes) under load: start the load, wait until it has ramped up, run
 * `fn`, keep the load on for TAIL_MS, stop it, write the report and print the summary. Throws
 * fn's error if it failed (after the report is written), else LoadCheckFailedError if even one
 * request failed. The load runs from before the first change until after the last: the
 * loadtest-only limits (duration, requests) do not apply.
 */
export async function withLoad<T>(o: WithLoadOptions, fn: (l: UnderLoad) => Promise<T>): Promise<LoadOutcome & { value: T }> {
  const { env, reporter } = contextFor(o);
  const targets = loadTargets(env);
  const notes: string[] = [];
  const run = startLoad({
    targets,
    ...(o.concurrency ? { concurrency: o.concurrency } : {}),
    ...(o.keepalive === undefined ? {} : { keepalive: o.keepalive }),
    ...(o.path ? { path: o.path } : {}),
    ...(o.method ? { method: o.method } : {}),
  });
  reporter.log('info', `load: ${o.method ?? 'GET'} ${o.path ?? '/'} on ${describeTargets(env, targets)}, concurrency ${o.concurrency ?? 100}, keep-alive ${o.keepalive === false ? 'off' : 'on'}`);

  const finish = async (): Promise<LoadOutcome> => {
    const result = await run.stop();
    const report = await writeReport(env, o, o.kind, typeof o.title === 'string' ? o.title : o.title(env), result, notes);
    logResult(reporter, result, report);
    return { result, report };
  };

  // Ramp up: the first requests, then a moment for throughput to settle.
  const t0 = Date.now();
  while (run.progress().requests === 0) {
    if (Date.now() - t0 > FIRST_REQUEST_TIMEOUT_MS) {
      await finish();
      throw new SwitchyardError(`load: no request completed within ${FIRST_REQUEST_TIMEOUT_MS / 1000} s on ${describeTargets(env, targets)}: nothing changed`);
    }
    await sleep(20);
  }
  await sleep(RAMP_MS);
  const before = run.progress();
  if (before.failed > 0) {
    notes.push('stopped before any change: requests were already failing');
    const { result, report } = await finish();
    throw new LoadCheckFailedError(
      `before any change, ${before.failed} of ${before.requests} requests already failed: the site is not healthy (gulp status); nothing changed\n` +
        result.failures.slice(0, 5).map((f) => `  ${formatFailure(f)}`).join('\n') +
        `\nreport: ${where(report.html)}`,
      result,
      report,
    );
  }
  reporter.log('info', `load: ramped up (${before.requests} requests in ${(before.elapsedMs / 1000).toFixed(1)} s, none failed); starting the change`);

  const handle: UnderLoad = {
    options(prefix = '') {
      return {
        environment: env,
        reporter,
        onEvent: (e: ReleaseEvent) => {
          const m = markerFor(e, prefix);
          if (m) run.mark(m.label, { host: e.host, phase: m.phase });
          o.onEvent?.(e);
        },
      };
    },
    note: (text) => void notes.push(text),
    run,
  };

  let value: T;
  try {
    value = await fn(handle);
  } catch (e) {
    notes.push(`the change failed: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`);
    await sleep(TAIL_MS);
    const { result } = await finish();
    if (result.failed) reporter.log('warn', `and ${result.failed} of ${result.requests} requests failed under load`);
    throw e;
  }
  await sleep(TAIL_MS);
  const { result, report } = await finish();
  try {
    assertZeroFailures(result);
  } catch (e) {
    if (!(e instanceof LoadFailuresError)) throw e;
    throw new LoadCheckFailedError(`${e.message}\nreport: ${where(report.html)}`, result, report);
  }
  return { value, result, report };
}

/** `fn` under load when `o.underLoad` is set, else as is: the wrapper tasks that move traffic use. */
export async function underLoadIf<T>(
  o: LoadTaskOptions & { onEvent?: (e: ReleaseEvent) => void },
  kind: string,
  fn: (extra: Partial<ReturnType<UnderLoad['options']>>) => Promise<T>,
): Promise<T> {
  if (!o.underLoad || o.dryRun) return fn({}); // a dry run changes nothing: nothing to measure
  const { value } = await withLoad({ ...o, kind, title: (env) => `${kind} of ${env.site} (${env.name}) under load` }, (l) => fn(l.options()));
  return value;
}
