// On a terminal: one live line per host (phase, seconds), redrawn in place while the release runs.
// log-update does the cursor work; every log line clears the block, prints, and redraws it.
import { lazy } from '../lazy';

const logUpdate = lazy(() => require('log-update') as typeof import('log-update'));
import type { ReleaseEvent } from '../release/flow';
import { GulpReporter, type Level } from './reporter';

export interface HostProgress {
  step: ReleaseEvent['step'] | 'waiting';
  running: boolean;
  ok?: boolean;
  since: number;
}

const DONE: Record<ReleaseEvent['step'], string> = { prepare: 'prepared', switch: 'switched', retire: 'finished', undo: 'rolled back' };

/** The block as text: pure, so it can be tested without a terminal. */
export function renderProgress(rows: Map<string, HostProgress>, now: number): string {
  const width = Math.max(...[...rows.keys()].map((h) => h.length));
  return [...rows]
    .map(([host, p]) => {
      const secs = `${((now - p.since) / 1000).toFixed(1)} s`;
      const what = p.step === 'waiting' ? 'waiting' : p.running ? `${p.step}…  ${secs}` : p.ok === false ? `${p.step} FAILED` : DONE[p.step];
      return `  ${host.padEnd(width)}  ${what}`;
    })
    .join('\n');
}

export class ProgressView {
  private rows = new Map<string, HostProgress>();
  private update = logUpdate().createLogUpdate(process.stdout);
  private timer: NodeJS.Timeout;

  constructor(hosts: string[]) {
    const now = Date.now();
    for (const h of hosts) this.rows.set(h, { step: 'waiting', running: false, since: now });
    this.timer = setInterval(() => this.render(), 200);
    this.timer.unref();
  }

  event(e: ReleaseEvent): void {
    this.rows.set(e.host, { step: e.step, running: e.at === 'start', ...(e.ok === undefined ? {} : { ok: e.ok }), since: e.at === 'start' ? e.time : (this.rows.get(e.host)?.since ?? e.time) });
    this.render();
  }

  /** Prints a log line above the block. */
  around(print: () => void): void {
    this.update.clear();
    print();
    this.render();
  }

  render(): void {
    this.update(renderProgress(this.rows, Date.now()));
  }

  stop(): void {
    clearInterval(this.timer);
    this.update.clear();
    this.update.done();
  }
}

/** gulplog output that keeps the progress block below it. */
export class ProgressReporter extends GulpReporter {
  constructor(private view: ProgressView, verbose = false) {
    super(verbose);
  }
  protected override write(level: Level, line: string): void {
    this.view.around(() => super.write(level, line));
  }
}
