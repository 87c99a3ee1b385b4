// Rollback and restart start an existing release again: on its own new socket, health-checked,
// switched in with the same transaction as a deploy, then the release it replaces is retired.
import { statusCommand } from '../lib/commands';
import { appHosts, COMMON_FLAGS, contextFor, publishReport, task, withSession, type Task, type TaskOptions } from '../lib/context';
import { forHost } from '../lib/environment';
import { SwitchyardError } from '../lib/errors';
import { reportOf, runRelease, type ReleaseEvent, type ReleaseReport } from '../lib/release';
import { interruptible } from '../lib/interrupt';
import { underLoadIf, UNDER_LOAD_FLAG, type LoadTaskOptions } from './loadtest';

export interface ReuseOptions extends TaskOptions {
  onEvent?: (e: ReleaseEvent) => void;
  onReport?: (r: ReleaseReport) => void;
}

async function releaseExisting(o: ReuseOptions, kind: 'rollback' | 'restart'): Promise<ReleaseReport> {
  const ctx = contextFor(o);
  const hosts = appHosts(ctx);
  return withSession(ctx, hosts, async (session) => {
    await session.connectAll();
    // Which release each host goes to: what it runs now (restart) or what ran before (rollback).
    const target = new Map<string, string>();
    const problems: string[] = [];
    // read-only, so it runs in a dry run too: the dry run shows what would really happen
    const st = await session.each(hosts, (h) => session.exec(h.name, statusCommand(forHost(ctx.env, h)), { readOnly: true }));
    for (const r of st) {
      if (r.error || !r.value?.ok) {
        problems.push(`${r.host.name}: status failed: ${r.error?.message ?? r.value?.error}`);
        continue;
      }
      const f = r.value.events.find((e) => e.event === 'status')?.fields ?? {};
      const id = kind === 'rollback' ? f.previous : f.release;
      if (!id || id === 'none') problems.push(`${r.host.name}: ${kind === 'rollback' ? 'no previous release to roll back to' : 'no release is live to restart'}`);
      else target.set(r.host.name, id);
    }
    if (problems.length) throw new SwitchyardError(`${kind}: nothing changed\n${problems.join('\n')}`);
    const stop = interruptible();
    try {
      const report = await runRelease({
        session,
        kind,
        release: (h) => target.get(h.name)!,
        ...(o.hooks ? { hooks: o.hooks } : {}),
        ...(o.onEvent ? { onEvent: o.onEvent } : {}),
        signal: stop.signal,
      });
      publishReport(ctx.reporter, o, report);
      return report;
    } catch (e) {
      const r = reportOf(e);
      if (r) publishReport(ctx.reporter, o, r);
      throw e;
    } finally {
      stop.dispose();
    }
  });
}

export const rollback = (o: ReuseOptions) => releaseExisting(o, 'rollback');
export const restart = (o: ReuseOptions) => releaseExisting(o, 'restart');

const FLAGS = { ...COMMON_FLAGS, '--report': 'write a JSON report to this file' };

export function rollbackTask(o: ReuseOptions & LoadTaskOptions): Task {
  return task('rollback', 'Go back to the previous release on every host (started again, health-checked, switched atomically)', { ...FLAGS, ...UNDER_LOAD_FLAG }, async () => {
    await underLoadIf(o, 'rollback', (extra) => rollback({ ...o, ...extra }));
  });
}

export function restartTask(o: ReuseOptions & LoadTaskOptions): Task {
  return task('restart', 'Graceful restart of the running release: a new process on its own socket, switched in, the old one drained', { ...FLAGS, ...UNDER_LOAD_FLAG }, async () => {
    await underLoadIf(o, 'restart', (extra) => restart({ ...o, ...extra }));
  });
}
