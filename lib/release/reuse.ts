// Rollback and restart start an existing release again: on its own new socket, health-checked,
// switched in with the same transaction as a deploy, then the release it replaces is retired.
// A plain rollback inside the standby window (retire.standbySeconds) is one exec per host: each
// host names its running standby itself (@standby); where one has none, the flow falls back to
// the targets releases.sh gives (rollbackTargets) and the relaunch path.
import { STANDBY_RELEASE, statusCommand } from '../remote/commands';
import { appHosts, contextFor, releaseHosts, withSession, type TaskOptions } from '../context';
import { forHost, type HostConfig } from '../environment';
import { SwitchyardError } from '../errors';
import type { Session } from '../remote/session';
import { runRelease, type ReleaseEvent, type ReleaseOptions, type ReleaseReport } from './flow';
import { guardedRelease, withLockWait, type ReportOptions } from './guard';
import { maskedRelease } from './deploy';
import { Masker, resolveAppEnv } from '../config/secrets';
import { readReleases, type ReleaseInfo } from '../servers/releases';

export interface ReuseOptions extends TaskOptions, ReportOptions {
  onEvent?: (e: ReleaseEvent) => void;
  /** rollback: this release on every host (even one marked bad), instead of the one rollbackTarget picks. */
  to?: string;
}

/**
 * Where a host's rollback goes: the release named (it must be there and not live), else what served
 * before the last switch unless it was rolled back from, else the good release that went live last
 * (by the host's clock: release ids carry the deploying machine's, which may be off). Never a bad
 * one. A reason when there is none.
 */
export function rollbackTarget(list: readonly ReleaseInfo[], to?: string): { id: string } | { why: string } {
  const current = list.find((r) => r.state === 'current');
  if (!current) return { why: 'no release is live to roll back from' };
  if (to !== undefined) {
    if (to === current.id) return { why: `--to=${to} is the live release already` };
    return list.some((r) => r.id === to) ? { id: to } : { why: `--to=${to}: no such release here (${list.map((r) => r.id).join(', ') || 'none'})` };
  }
  const at = (r: ReleaseInfo) => `${r.liveAt ?? ''} ${r.id}`; // a tie in live-at: the later id
  const good = list.filter((r) => r.state === 'good').sort((a, b) => (at(b) < at(a) ? -1 : at(b) > at(a) ? 1 : 0));
  const target = list.find((r) => r.state === 'previous' || r.state === 'standby') ?? good[0];
  if (target) return { id: target.id };
  const bad = list.filter((r) => r.state === 'bad').map((r) => r.id);
  return { why: `no good release before ${current.id} to roll back to${bad.length ? ` (rolled back from, not picked: ${bad.join(', ')}; name one with --to)` : ''}` };
}

/** Every host's rollback target, or one error naming every host that has none; nothing changed. */
async function rollbackTargets(session: Session, hosts: HostConfig[], to?: string): Promise<Map<string, string>> {
  const target = new Map<string, string>();
  const problems: string[] = [];
  for (const h of await readReleases(session, hosts)) {
    const t = rollbackTarget(h.releases, to);
    if ('id' in t) target.set(h.host, t.id);
    else problems.push(`${h.host}: ${t.why}`);
  }
  if (problems.length) throw new SwitchyardError(`rollback: nothing changed\n${problems.join('\n')}`);
  return target;
}

/** Which release each host restarts: what it runs now. */
async function restartTargets(session: Session, hosts: HostConfig[]): Promise<Map<string, string>> {
  const target = new Map<string, string>();
  const problems: string[] = [];
  // read-only, so it runs in a dry run too: the dry run shows what would really happen
  const st = await session.each(hosts, (h) => session.exec(h.name, statusCommand(forHost(session.env, h)), { readOnly: true }));
  for (const r of st) {
    if (r.error || !r.value?.ok) {
      problems.push(`${r.host.name}: status failed: ${r.error?.message ?? r.value?.error}`);
      continue;
    }
    const id = r.value.events.find((e) => e.event === 'status')?.fields.release;
    if (!id || id === 'none') problems.push(`${r.host.name}: no release is live to restart`);
    else target.set(r.host.name, id);
  }
  if (problems.length) throw new SwitchyardError(`restart: nothing changed\n${problems.join('\n')}`);
  return target;
}

/** Each host's target as the flow takes it: the map's, or, for an instant rollback, @standby with the map as its fallback. */
async function targetsOf(session: Session, hosts: HostConfig[], kind: 'rollback' | 'restart', o: ReuseOptions): Promise<Pick<ReleaseOptions, 'release' | 'withoutStandby'>> {
  const of = (t: Map<string, string>) => (h: HostConfig) => t.get(h.name)!;
  if (kind === 'restart') return { release: of(await restartTargets(session, hosts)) };
  // a dry run shows the targets releases.sh gives (read-only: it runs), no standby to resolve
  const instant = o.to === undefined && !session.options.dryRun && session.env.retire.standbySeconds > 0;
  if (!instant) return { release: of(await rollbackTargets(session, hosts, o.to)) };
  return { release: () => STANDBY_RELEASE, withoutStandby: async () => of(await rollbackTargets(session, hosts)) };
}

async function releaseExisting(o: ReuseOptions, kind: 'rollback' | 'restart'): Promise<ReleaseReport> {
  const ctx = contextFor(o);
  // a rollback moves every host's current back, files-only hosts too (the db primary's migrations)
  const hosts = kind === 'rollback' ? releaseHosts(ctx) : appHosts(ctx);
  // The release starts again with the same variables: app.env's secrets resolved (and masked)
  // before any connection, as a deploy does; a missing one stops here.
  const appEnv = resolveAppEnv(ctx.env.app.env, { envFile: ctx.env.file, reporter: ctx.reporter });
  const masker = new Masker(appEnv.toMask);
  return withSession(ctx, hosts, async (session) => {
    await session.connectAll();
    const target = await targetsOf(session, hosts, kind, o);
    const attempt = (signal: AbortSignal) =>
      runRelease({
        session,
        kind,
        ...target,
        appEnv: appEnv.values,
        mask: (t) => masker.mask(t),
        ...(o.hooks ? { hooks: o.hooks } : {}),
        ...(o.onEvent ? { onEvent: o.onEvent } : {}),
        signal,
      });
    return guardedRelease(ctx.reporter, o, (signal) => maskedRelease(masker, () => withLockWait(o.lockWait, ctx.reporter, signal, () => attempt(signal))));
  });
}

export const rollback = (o: ReuseOptions) => releaseExisting(o, 'rollback');
export const restart = (o: ReuseOptions) => releaseExisting(o, 'restart');
