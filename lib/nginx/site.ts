// The nginx configuration of one environment, as one host sees it (forHost): the server block
// `gulp nginx-config` prints and the main config of the private nginx `setup` starts.
import path from 'node:path';
import { forHost, type Environment } from '../environment';
import { nginxMainConfig, nginxServerBlock } from './config';

export function liveSocket(env: Environment): string {
  return path.posix.join(env.socketDir, `SOCK-${env.site}`);
}

export function serverBlock(env: Environment): string {
  const fastcgi = env.nginx.pass === 'fastcgi' ? { documentRoot: path.posix.join(env.deployTo, 'current'), fastcgiIndex: env.nginx.fastcgiIndex } : {};
  return nginxServerBlock({ site: env.site, socketPath: liveSocket(env), listen: env.nginx.listen, pass: env.nginx.pass, instances: env.app.instances, ...fastcgi });
}

/** Every web host's server block, once per distinct socket dir (hosts may keep their sockets apart). */
export function serverBlocks(env: Environment): string {
  const web = env.hosts.filter((h) => h.roles.some((r) => env.nginx.roles.includes(r)));
  const text = [...new Set(web.map((h) => serverBlock(forHost(env, h))))].join('\n');
  return text.endsWith('\n') ? text : `${text}\n`;
}

/** Where the private nginx (`nginx.private`) lives on a host: under deployTo, never elsewhere. */
export function privateNginxPrefix(env: Environment): string {
  return path.posix.join(env.deployTo, 'nginx');
}

export function privateNginxConfig(env: Environment): string {
  const prefix = privateNginxPrefix(env);
  return nginxMainConfig({
    prefix,
    serverBlocks: [serverBlock(env)],
    pidFile: path.posix.join(prefix, 'nginx.pid'),
    errorLog: path.posix.join(prefix, 'error.log'),
  });
}
