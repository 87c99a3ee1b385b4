// The releases each host keeps and their state (releases.sh): what `gulp releases` prints, and
// what rollback chooses from.
import { releasesCommand } from '../remote/commands';
import { contextFor, selectedHosts, withSession, type TaskOptions } from '../context';
import { SwitchyardError } from '../errors';
import { forHost, type HostConfig } from '../environment';
import type { Session } from '../remote/session';

export type ReleaseState = 'current' | 'standby' | 'previous' | 'good' | 'bad' | 'failed' | 'preparing';

export interface ReleaseInfo {
  id: string;
  state: ReleaseState;
  /** When it first went live (ISO), or undefined. */
  liveAt?: string;
  builtAt?: string;
  /** Who deployed it: the deploying machine's user@host. */
  by?: string;
  git?: string;
}

export interface HostReleases {
  host: string;
  /** Newest first. */
  releases: ReleaseInfo[];
}

export interface ReleasesOptions extends TaskOptions {
  /** Print JSON (one document for every host) instead of a table. */
  json?: boolean;
}

const known = (v: string | undefined) => (v && v !== 'none' ? v : undefined);

/** Every host's releases, read-only (so a dry run reads them too); one failing host fails them all, naming it. */
export async function readReleases(session: Session, hosts: readonly HostConfig[]): Promise<HostReleases[]> {
  return session.eachOrThrow(hosts, async (h) => {
    const r = await session.exec(h.name, releasesCommand(forHost(session.env, h)), { readOnly: true });
    if (!r.ok) throw new SwitchyardError(`${h.name}: cannot list releases: ${r.error}`, { host: h.name });
    const releases = r.events
      .filter((e) => e.event === 'release' && e.fields.id)
      .map((e) => {
        const liveAt = known(e.fields.live_at);
        const builtAt = known(e.fields.built);
        const by = known(e.fields.by);
        const git = known(e.fields.git);
        return { id: e.fields.id!, state: (e.fields.state ?? 'failed') as ReleaseState, ...(liveAt ? { liveAt } : {}), ...(builtAt ? { builtAt } : {}), ...(git ? { git } : {}), ...(by ? { by } : {}) };
      });
    return { host: h.name, releases };
  });
}

/** One line per release: id, state, when it went live, when it was built, git revision. */
export function formatReleases(r: HostReleases): string[] {
  if (!r.releases.length) return ['no releases'];
  return r.releases.map((x) => `${x.id}  ${x.state.padEnd(10)}  live ${x.liveAt ?? '-'}  built ${x.builtAt ?? '-'}  git ${x.git ?? '-'}  by ${x.by ?? '-'}`);
}

export async function releases(o: ReleasesOptions): Promise<HostReleases[]> {
  const ctx = contextFor(o);
  const hosts = selectedHosts(ctx); // files-only hosts too: their current, previous, …
  return withSession(ctx, hosts, async (session) => {
    await session.connectAll();
    const all = await readReleases(session, hosts);
    if (o.json) process.stdout.write(`${JSON.stringify(all, null, 2)}\n`);
    else for (const h of all) for (const line of formatReleases(h)) ctx.reporter.log('info', line, h.host);
    return all;
  });
}
