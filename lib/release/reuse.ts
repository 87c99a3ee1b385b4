// Rollback and restart start an existing release again: on its own new socket, health-checked,
// switched in with the same transaction as a deploy, then the release it replaces is retired.
import { statusCommand } from '../remote/commands';
import { appHosts, contextFor, withSession, type TaskOptions } from '../context';
import { forHost, type HostConfig } from '../environment';
import { SwitchyardError } from '../errors';
import type { Session } from '../remote/session';
import { runRelease, type ReleaseEvent, type ReleaseReport } from './flow';
import { guardedRelease, type ReportOptions } from './guard';
import { maskedRelease } from './deploy';
import { Masker, resolveAppEnv } from '../config/secrets';

export interface ReuseOptions extends TaskOptions, ReportOptions {
  onEvent?: (e: ReleaseEvent) => void;
}

/** Which release each host goes to: what it runs now (restart) or what ran before (rollback). */
async function targetsOf(session: Session, hosts: HostConfig[], kind: 'rollback' | 'restart'): Promise<Map<string, string>> {
  const target = new Map<string, string>();
  const problems: string[] = [];
  // read-only, so it runs in a dry run too: the dry run shows what would really happen
  const st = await session.each(hosts, (h) => session.exec(h.name, statusCommand(forHost(session.env, h)), { readOnly: true }));
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
  return target;
}

async function releaseExisting(o: ReuseOptions, kind: 'rollback' | 'restart'): Promise<ReleaseReport> {
  const ctx = contextFor(o);
  const hosts = appHosts(ctx);
  // The release starts again with the same variables: app.env's secrets resolved (and masked)
  // before any connection, as a deploy does; a missing one stops here.
  const appEnv = resolveAppEnv(ctx.env.app.env, { envFile: ctx.env.file, reporter: ctx.reporter });
  const masker = new Masker(appEnv.toMask);
  return withSession(ctx, hosts, async (session) => {
    await session.connectAll();
    const target = await targetsOf(session, hosts, kind);
    return guardedRelease(ctx.reporter, o, (signal) =>
      maskedRelease(masker, () =>
        runRelease({
          session,
          kind,
          release: (h) => target.get(h.name)!,
          appEnv: appEnv.values,
          ...(o.hooks ? { hooks: o.hooks } : {}),
          ...(o.onEvent ? { onEvent: o.onEvent } : {}),
          signal,
        }),
      ),
    );
  });
}

export const rollback = (o: ReuseOptions) => releaseExisting(o, 'rollback');
export const restart = (o: ReuseOptions) => releaseExisting(o, 'restart');
