import path from 'node:path';
import { q, scriptCommand, setupCommand, type RemoteCommand } from '../lib/commands';
import { COMMON_FLAGS, contextFor, task, withSession, type Task, type TaskOptions } from '../lib/context';
import { forHost, type Environment } from '../lib/environment';
import { SwitchyardError } from '../lib/errors';
import { hasRole, selectHosts } from '../lib/hosts';
import { nginxMainConfig, nginxServerBlock } from '../lib/nginx';
import { field } from '../lib/session';

export function liveSocket(env: Environment): string {
  return path.posix.join(env.socketDir, `SOCK-${env.site}`);
}

/** The server block for an environment (as one host sees it), as `gulp nginx-config` prints it. */
export function serverBlock(env: Environment): string {
  return nginxServerBlock({ site: env.site, socketPath: liveSocket(env), listen: env.nginx.listen, pass: env.nginx.pass });
}

function privateNginxCommand(env: Environment): RemoteCommand {
  const prefix = path.posix.join(env.deployTo, 'nginx');
  const conf = nginxMainConfig({
    prefix,
    serverBlocks: [serverBlock(env)],
    pidFile: path.posix.join(prefix, 'nginx.pid'),
    errorLog: path.posix.join(prefix, 'error.log'),
  });
  const args = ['--prefix', prefix, '--conf', conf];
  return scriptCommand('setup', 'nginx.sh', args, 60, `nginx.sh --prefix ${q(prefix)} --conf <nginx.conf for ${env.site}>`);
}

export async function setup(o: TaskOptions): Promise<void> {
  const ctx = contextFor(o);
  const { env, reporter } = ctx;
  const hosts = selectHosts(env, { ...(o.roles ? { roles: o.roles } : {}), ...(o.hosts ? { hosts: o.hosts } : {}) });
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

export function setupTask(o: TaskOptions): Task {
  return task('setup', 'Prepare the servers: directories, tool checks (curl, ss, nohup), private nginx if configured', COMMON_FLAGS, () => setup(o));
}
