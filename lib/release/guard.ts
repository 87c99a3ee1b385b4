// What every release operation (deploy, rollback, restart) does around the flow: Ctrl-C becomes an
// abort at the next safe point, and the report is published whether the release succeeded or not.
import fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import path from 'node:path';
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
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  fs.writeFileSync(file, JSON.stringify(report, null, 2) + '\n');
}

/** The end of a release, success or failure: the summary table, the JSON report, the callback. */
export function publishReport(reporter: Reporter, o: ReportOptions, r: ReleaseReport): void {
  reporter.log('info', formatReleaseSummary(r));
  try {
    writeReport(o.report, r);
  } catch (e) {
    // the release happened (or failed) as it did: an unwritable --report must not change that
    reporter.log('warn', `report: cannot write ${o.report}: ${(e as Error).message}`);
  }
  o.onReport?.(r);
}

/** Runs a release with an interrupt guard, publishing its report on success and on failure. */
export async function guardedRelease(reporter: Reporter, o: ReportOptions, run: (signal: AbortSignal) => Promise<ReleaseReport>): Promise<ReleaseReport> {
  const stop = interruptible();
  try {
    const report = await run(stop.signal);
    publishReport(reporter, o, report);
    return report;
  } catch (e) {
    const r = reportOf(e);
    if (r) publishReport(reporter, o, r);
    throw e;
  } finally {
    stop.dispose();
  }
}
