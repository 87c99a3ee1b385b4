// `gulp supervise`: the site's supervisor on every app host (remote-scripts/supervise.sh). A deploy
// starts it by itself where it is not running (supervise.enabled); this starts, stops or shows it.
import { superviseCommand, type SuperviseAction } from '../remote/commands';
import { appHosts, contextFor, withSession, type TaskOptions } from '../context';
import { SwitchyardError } from '../errors';
import { forHost } from '../environment';

export interface SuperviseOptions extends TaskOptions {
  action?: string;
  /** With start: the @reboot crontab line too (without: start leaves the crontab as it is). */
  boot?: boolean;
  json?: boolean;
}

export interface HostSupervisor {
  host: string;
  state: 'running' | 'outdated' | 'stopped' | 'errored';
  pid?: number;
  /** A @reboot line starts it after a reboot (status only). */
  boot?: boolean;
  /** Why it gave up (errored). */
  reason?: string;
}

const ACTIONS: readonly SuperviseAction[] = ['start', 'stop', 'status'];

function actionOf(o: SuperviseOptions): SuperviseAction {
  const a = o.action ?? 'status';
  if (!(ACTIONS as readonly string[]).includes(a)) throw new SwitchyardError(`supervise: action "${a}" is not one of ${ACTIONS.join(', ')}`);
  if (o.boot && a !== 'start') throw new SwitchyardError(`supervise: --boot goes with --action=start (stop removes the line by itself)`);
  return a as SuperviseAction;
}

function line(s: HostSupervisor): string {
  const pid = s.pid ? ` (pid ${s.pid})` : '';
  const boot = s.boot === undefined ? '' : s.boot ? ', starts at boot' : ', not at boot';
  // errored in capitals: the one state that needs someone to act
  return `supervisor ${s.state === 'errored' ? 'ERRORED' : s.state}${pid}${boot}${s.reason ? `: ${s.reason}` : ''}`;
}

export async function supervise(o: SuperviseOptions): Promise<HostSupervisor[]> {
  const action = actionOf(o);
  const ctx = contextFor(o);
  if (!ctx.env.supervise.enabled && action === 'start') throw new SwitchyardError(`${ctx.env.file}: supervise.enabled is false: enable it to start the supervisor`);
  const hosts = appHosts(ctx);
  return withSession(ctx, hosts, async (session) => {
    await session.connectAll();
    const all = await session.eachOrThrow(hosts, async (h) => {
      const cmd = superviseCommand(forHost(ctx.env, h), action, action === 'start' ? { boot: o.boot ?? false } : {});
      const r = await session.exec(h.name, cmd, action === 'status' ? { readOnly: true } : {});
      if (!r.ok) throw new SwitchyardError(`${h.name}: supervise --action=${action} failed: ${r.error}`, { host: h.name });
      const e = r.events.find((x) => x.event === 'supervisor');
      const f = e?.fields ?? {};
      const s: HostSupervisor = {
        host: h.name,
        state: (f.state ?? 'stopped') as HostSupervisor['state'],
        ...(f.pid && f.pid !== 'none' ? { pid: Number(f.pid) } : {}),
        ...(f.boot ? { boot: f.boot === 'yes' } : {}),
        ...(e?.msg ? { reason: e.msg } : {}),
      };
      if (!o.json) ctx.reporter.log(s.state === 'errored' ? 'warn' : 'info', line(s), h.name);
      return s;
    });
    if (o.json) process.stdout.write(`${JSON.stringify(all, null, 2)}\n`);
    return all;
  });
}
