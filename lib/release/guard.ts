// What every release operation (deploy, rollback, restart) does around the flow: Ctrl-C becomes an
// abort at the next safe point, and the report is published whether the release succeeded or not.
import { setTimeout as sleep } from 'node:timers/promises';
import { SwitchyardError } from '../errors';
import { writeLocalFile } from '../output/local-files';
import type { Reporter } from '../output/reporter';
import { formatReleaseSummary } from '../output/summary';
import { reportOf, type ReleaseReport } from './flow';
import { interruptible } from './interrupt';

export interface ReportOptions {
  /** Write a JSON report of the run here. */
  report?: string;
  /** Receives the report (also on failure, when there is one). */
  onReport?: (r: ReleaseReport) => void;
  /** Seconds to wait for deploy locks held by someone else (`--lock-wait`): the release is tried again. */
  lockWait?: number;
}

/** The hosts refused only by a live deploy's lock (nothing switched, no other failure), or undefined. */
function heldBy(e: unknown): string[] | undefined {
  const r = reportOf(e);
  if (!r || r.switchOrder.length) return undefined;
  const failed = r.hosts.filter((h) => h.phase === 'failed');
  const held = failed.filter((h) => h.error?.startsWith('deploy lock is held: ') && !h.error.includes('STALE'));
  return failed.length && held.length === failed.length ? held.map((h) => `${h.host}: ${h.error!.slice('deploy lock is held: '.length)}`) : undefined;
}

/**
 * Runs the release; while it fails only because other deploys hold the lock (every other host was
 * put back), tries it again every 1.5-2.5 s for up to `seconds`, saying who holds it. A stale lock
 * is never waited for: nobody will free it. The jitter is for two deploys started together that
 * each took some hosts' locks: both are refused, and retrying in lockstep would collide again.
 */
export async function withLockWait(seconds: number | undefined, reporter: Reporter, signal: AbortSignal, run: () => Promise<ReleaseReport>): Promise<ReleaseReport> {
  const deadline = Date.now() + (seconds ?? 0) * 1000;
  for (;;) {
    try {
      return await run();
    } catch (e) {
      const held = heldBy(e);
      const left = deadline - Date.now();
      if (!held || left <= 0 || signal.aborted) throw e;
      reporter.log('warn', `waiting for the deploy lock (${Math.ceil(left / 1000)} s left of --lock-wait): ${held.join('; ')}`);
      // the timer's own abort: no listener left on the signal per try
      await sleep(Math.min(1500 + Math.random() * 1000, left), undefined, { signal }).catch(() => undefined);
      if (signal.aborted) throw e;
    }
  }
}

export function writeReport(file: string | undefined, report: ReleaseReport | object): void {
  if (!file) return;
  writeLocalFile(file, JSON.stringify(report, null, 2) + '\n');
}

/**
 * The end of a release, success or failure: the summary table, the JSON report, the callback.
 * Returns why the report could not be written, if it could not.
 */
export function publishReport(reporter: Reporter, o: ReportOptions, r: ReleaseReport): string | undefined {
  reporter.log('info', formatReleaseSummary(r));
  let failed: string | undefined;
  try {
    writeReport(o.report, r);
    if (o.report) reporter.log('info', `report: ${o.report}`);
  } catch (e) {
    failed = `--report: cannot write ${o.report}: ${(e as Error).message}`;
  }
  o.onReport?.(r);
  return failed;
}

/**
 * Runs a release with an interrupt guard, publishing its report on success and on failure. A
 * report that was asked for and could not be written fails the run (after the release, which
 * stands): a CI job that reads it must not go on without it.
 */
export async function guardedRelease(reporter: Reporter, o: ReportOptions, run: (signal: AbortSignal) => Promise<ReleaseReport>): Promise<ReleaseReport> {
  const stop = interruptible();
  try {
    const report = await run(stop.signal);
    const failed = publishReport(reporter, o, report);
    if (failed) throw new SwitchyardError(`${failed} (${report.dryRun ? 'a dry run: nothing was changed' : 'the release itself went through'})`);
    return report;
  } catch (e) {
    const r = reportOf(e);
    // the release's own error is the one thrown: the report's is said beside it
    const failed = r ? publishReport(reporter, o, r) : undefined;
    if (failed) reporter.log('error', failed);
    throw e;
  } finally {
    stop.dispose();
  }
}
