// What every release operation (deploy, rollback, restart) does around the flow: Ctrl-C becomes an
// abort at the next safe point, and the report is published whether the release succeeded or not.
import fs from 'node:fs';
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
