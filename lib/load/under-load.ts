// A change that moves traffic (a deploy, a rollback, a restart) run under load: the load starts,
// ramps up, the change runs with each host's steps marked on the timeline, the load keeps on a
// moment longer, and the run fails if even one request failed (`gulp verify`, `--under-load`).
import { contextFor, type LoadTaskOptions } from '../context';
import type { Environment } from '../environment';
import { SwitchyardError } from '../errors';
import type { ReleaseEvent } from '../release/flow';
import type { Reporter } from '../output/reporter';
import { formatFailure, startLoad, type LoadRun, type LoadTarget } from './engine';
import { assertAccepted, describeTargets, LoadCheckFailedError, logResult, where, writeReport, type LoadOutcome } from './loadtest';
import { loadTargets } from './targets';

/** After the first completed request, let throughput settle this long before changing anything. */
export const RAMP_MS = 1000;
/** After the last change, keep the load on this long: the new release must serve too. */
export const TAIL_MS = 1000;
/** No request completed within this time: the targets are not answering at all. */
const FIRST_REQUEST_TIMEOUT_MS = 15_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

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

/** One run of load around a change; its steps in the order run() takes them. */
class LoadAroundChange {
  private readonly env: Environment;
  private readonly reporter: Reporter;
  private readonly targets: LoadTarget[];
  private readonly notes: string[] = [];
  private readonly load: LoadRun;

  constructor(private readonly o: WithLoadOptions) {
    ({ env: this.env, reporter: this.reporter } = contextFor(o));
    this.targets = loadTargets(this.env);
    this.load = startLoad({
      targets: this.targets,
      ...(o.concurrency ? { concurrency: o.concurrency } : {}),
      ...(o.keepalive === undefined ? {} : { keepalive: o.keepalive }),
      ...(o.path ? { path: o.path } : {}),
      ...(o.method ? { method: o.method } : {}),
    });
    const { method = 'GET', path = '/', concurrency = 100 } = o;
    this.reporter.log('info', `load: ${method} ${path} on ${describeTargets(this.env, this.targets)}, concurrency ${concurrency}, keep-alive ${o.keepalive === false ? 'off' : 'on'}`);
  }

  async run<T>(fn: (l: UnderLoad) => Promise<T>): Promise<LoadOutcome & { value: T }> {
    await this.rampUp();
    await this.refuseIfFailing();
    let value: T;
    try {
      value = await fn(this.handle());
    } catch (e) {
      await this.afterFailedChange(e);
      throw e;
    }
    await sleep(TAIL_MS);
    const outcome = await this.finish();
    assertAccepted(outcome, 0);
    return { value, ...outcome };
  }

  /** The first requests, then a moment for throughput to settle. */
  private async rampUp(): Promise<void> {
    const t0 = Date.now();
    while (this.load.progress().requests === 0) {
      if (Date.now() - t0 > FIRST_REQUEST_TIMEOUT_MS) {
        await this.finish();
        throw new SwitchyardError(`load: no request completed within ${FIRST_REQUEST_TIMEOUT_MS / 1000} s on ${describeTargets(this.env, this.targets)}: nothing changed`);
      }
      await sleep(20);
    }
    await sleep(RAMP_MS);
  }

  /** A site already failing before the change would make the proof meaningless: change nothing. */
  private async refuseIfFailing(): Promise<void> {
    const before = this.load.progress();
    if (before.failed === 0) {
      this.reporter.log('info', `load: ramped up (${before.requests} requests in ${(before.elapsedMs / 1000).toFixed(1)} s, none failed); starting the change`);
      return;
    }
    this.notes.push('stopped before any change: requests were already failing');
    const { result, report } = await this.finish();
    throw new LoadCheckFailedError(
      `before any change, ${before.failed} of ${before.requests} requests already failed: the site is not healthy (gulp status); nothing changed\n` +
        result.failures.slice(0, 5).map((f) => `  ${formatFailure(f)}`).join('\n') +
        `\nreport: ${where(report.html)}`,
      result,
      report,
    );
  }

  private handle(): UnderLoad {
    return {
      options: (prefix = '') => ({
        environment: this.env,
        reporter: this.reporter,
        onEvent: (e: ReleaseEvent) => {
          const m = markerFor(e, prefix);
          if (m) this.load.mark(m.label, { host: e.host, phase: m.phase });
          this.o.onEvent?.(e);
        },
      }),
      note: (text) => void this.notes.push(text),
      run: this.load,
    };
  }

  /** The change's own error is what the caller sees; the report still tells what the load saw. */
  private async afterFailedChange(e: unknown): Promise<void> {
    this.notes.push(`the change failed: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`);
    await sleep(TAIL_MS);
    const { result } = await this.finish();
    if (result.failed) this.reporter.log('warn', `and ${result.failed} of ${result.requests} requests failed under load`);
  }

  private async finish(): Promise<LoadOutcome> {
    const result = await this.load.stop();
    const title = typeof this.o.title === 'string' ? this.o.title : this.o.title(this.env);
    const report = await writeReport(this.env, this.o, this.o.kind, title, result, this.notes);
    logResult(this.reporter, result, report);
    return { result, report };
  }
}

/**
 * Run `fn` (one or more changes) under load. Throws fn's error if it failed (after the report is
 * written), else LoadCheckFailedError if even one request failed. The load runs from before the
 * first change until after the last: the loadtest-only limits (duration, requests) do not apply.
 */
export function withLoad<T>(o: WithLoadOptions, fn: (l: UnderLoad) => Promise<T>): Promise<LoadOutcome & { value: T }> {
  return new LoadAroundChange(o).run(fn);
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
