import { privateNginxCommand, setupCommand } from '../remote/commands';
import { contextFor, selectedHosts, withSession, type TaskOptions } from '../context';
import { forHost } from '../environment';
import { SwitchyardError } from '../errors';
import { hasRole } from '../environment/hosts';
import { field } from '../remote/session';

export async function setup(o: TaskOptions): Promise<void> {
  const ctx = contextFor(o);
  const { env, reporter } = ctx;
  const hosts = selectedHosts(ctx);
  await withSession(ctx, hosts, async (session) => {
    await session.connectAll();
    return session.eachOrThrow(hosts, async (h) => {
      const r = await session.exec(h.name, setupCommand(forHost(env, h)));
      if (!r.ok) throw new SwitchyardError(`${h.name}: setup failed: ${r.error}`, { host: h.name });
      const missing = r.events.filter((e) => e.event === 'check' && e.fields.ok !== 'yes').map((e) => e.fields.tool);
      reporter.log('info', `ready: ${forHost(env, h).deployTo}, sockets in ${forHost(env, h).socketDir}${missing.length ? ` (missing: ${missing.join(', ')})` : ''}`, h.name);
      if (env.nginx.private && hasRole(h, env.nginx.roles)) {
        const n = await session.exec(h.name, privateNginxCommand(forHost(env, h)));
        if (!n.ok) throw new SwitchyardError(`${h.name}: private nginx: ${n.error}`, { host: h.name });
        reporter.log('info', `private nginx ${field(n, 'nginx', 'action') ?? 'ready'} on ${env.nginx.listen} for ${env.site}`, h.name);
      }
    });
  });
}
