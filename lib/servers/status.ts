import { statusCommand } from '../remote/commands';
import { contextFor, selectedHosts, withSession, type TaskOptions } from '../context';
import { SwitchyardError } from '../errors';
import { forHost } from '../environment';
import { runsApp } from '../environment/hosts';
import { describeLock } from '../release/flow';

export interface HostStatus {
  host: string;
  release: string;
  pid?: string;
  alive: boolean;
  uptimeSeconds?: number;
  socket: boolean;
  health: string;
  lock: string;
  releases: number;
  /** A host without an app role (or whose live release is files only): no process, no socket, by design. */
  filesOnly: boolean;
  /** The site's supervisor: running, stopped or errored (it gave up: why). */
  supervisor: string;
  /** The previous release, still running as the standby (retire.standbySeconds). */
  standby?: string;
}

function statusLine(s: HostStatus): string {
  const kept = `lock ${s.lock}, ${s.releases} release(s) kept`;
  if (s.filesOnly) return `release ${s.release}, files only (no process, no socket: nothing runs here), ${kept}`;
  return `release ${s.release}, pid ${s.pid ?? '-'} ${s.alive ? `up ${s.uptimeSeconds ?? '?'} s` : 'NOT RUNNING'}, socket ${s.socket ? 'yes' : 'MISSING'}, health ${s.health}, ${kept}${s.standby ? `, standby ${s.standby}` : ''}, supervisor ${s.supervisor}`;
}

export async function status(o: TaskOptions): Promise<HostStatus[]> {
  const ctx = contextFor(o);
  const hosts = selectedHosts(ctx);
  return withSession(ctx, hosts, async (session) => {
    await session.connectAll();
    return session.eachOrThrow(hosts, async (h) => {
      const r = await session.exec(h.name, statusCommand(forHost(ctx.env, h)));
      if (!r.ok) throw new SwitchyardError(`${h.name}: status failed: ${r.error}`, { host: h.name });
      const f = r.events.find((e) => e.event === 'status')?.fields ?? {};
      const lock = r.events.find((e) => e.event === 'lock')?.msg;
      const sv = r.events.find((e) => e.event === 'supervisor');
      const standby = r.events.find((e) => e.event === 'standby')?.fields.release;
      const s: HostStatus = {
        host: h.name,
        release: f.release ?? 'none',
        ...(f.pid ? { pid: f.pid } : {}),
        alive: f.alive === 'yes',
        ...(f.uptime ? { uptimeSeconds: Number(f.uptime) } : {}),
        socket: f.socket === 'yes',
        health: f.health ?? 'none',
        lock: f.lock === 'held' ? `held by ${describeLock(lock ?? '?')}` : 'free',
        releases: Number(f.releases ?? 0),
        // a host that lost its app role but still runs a release is shown as the app host it is
        filesOnly: f.mode === 'files' || (f.mode !== 'app' && !runsApp(ctx.env, h)),
        supervisor: sv?.fields.state === 'errored' ? `ERRORED: ${sv.msg ?? 'see supervisor.log'}` : (sv?.fields.state ?? 'unknown'),
        ...(standby ? { standby } : {}),
      };
      ctx.reporter.log(sv?.fields.state === 'errored' ? 'warn' : 'info', statusLine(s), h.name);
      return s;
    });
  });
}
