// `gulp verify`: the zero-downtime proof. Load on every web host, N deploys (and rollbacks) in
// the middle, each host's prepare / switch / retire marked on the timeline; fails if even one
// request failed, listing them with time and code. Report: reports/verify-<env>-<time>.html.
import type { ReleaseReport } from '../release/flow';
import { deploy, type DeployOptions } from '../release/deploy';
import type { LoadOutcome, LoadTaskOptions } from './loadtest';
import { withLoad } from './under-load';
import { rollback } from '../release/reuse';

export interface VerifyOptions extends LoadTaskOptions, DeployOptions {
  /** Deploys in a row under the same load (default 1). */
  cycles?: number;
  /** After each deploy, roll back to the release before it (also under load). */
  rollback?: boolean;
}

export interface VerifyOutcome extends LoadOutcome {
  /** Every deploy and rollback, in order. */
  releases: ReleaseReport[];
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** Deploy under load (--cycles times, each followed by a rollback with --rollback); throws if even one request failed. */
export async function verify(o: VerifyOptions): Promise<VerifyOutcome> {
  const cycles = o.cycles ?? 1;
  if (!Number.isInteger(cycles) || cycles < 1) throw new RangeError(`verify: cycles must be a positive whole number, got ${String(cycles)}`);
  const what = `${plural(cycles, 'deploy')}${o.rollback ? ` and ${plural(cycles, 'rollback')}` : ''}`;
  const { value: releases, result, report } = await withLoad(
    { ...o, kind: 'verify', title: (env) => `verify: ${what} of ${env.site} (${env.name}) under load` },
    async (l) => {
      const done: ReleaseReport[] = [];
      const numbered = cycles > 1 || o.rollback === true;
      for (let i = 1; i <= cycles; i++) {
        const step = async (kind: 'deploy' | 'rollback') => {
          const prefix = numbered ? `${kind} ${i}: ` : '';
          const opts = l.options(prefix);
          opts.reporter.log('info', `verify: ${kind}${numbered ? ` ${i} of ${cycles}` : ''} under load`);
          const r = kind === 'deploy' ? await deploy({ ...o, ...opts }, 'deploy') : await rollback({ ...o, ...opts });
          l.note(`${prefix || `${r.kind} `}${r.release} on ${r.hosts.map((h) => h.host).join(', ')}: ${r.ok ? 'OK' : 'FAILED'} in ${r.seconds.toFixed(1)} s`);
          done.push(r);
        };
        await step('deploy');
        if (o.rollback) await step('rollback');
      }
      return done;
    },
  );
  return { releases, result, report };
}
