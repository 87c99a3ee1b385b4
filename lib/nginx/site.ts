// The nginx configuration of one environment, as one host sees it (forHost): the server block
// `gulp nginx-config` prints and the main config of the private nginx `setup` starts.
import path from 'node:path';
import type { Environment } from '../environment';
import { nginxMainConfig, nginxServerBlock } from './config';

export function liveSocket(env: Environment): string {
  return path.posix.join(env.socketDir, `SOCK-${env.site}`);
}

export function serverBlock(env: Environment): string {
  return nginxServerBlock({ site: env.site, socketPath: liveSocket(env), listen: env.nginx.listen, pass: env.nginx.pass });
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
