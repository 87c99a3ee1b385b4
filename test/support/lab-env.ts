// An environment pointing at a lab's real sshd hosts, validated like any environment file.
import path from 'node:path';
import { validateEnvironment, type Environment, type EnvironmentInput } from '../../lib/environment';
import type { Lab } from './lab';

export const REPO = path.resolve(__dirname, '..', '..');

export interface LabEnvOptions {
  /** Roles per host index; default ['web', 'app'] everywhere. */
  roles?: (i: number) => string[];
  primary?: (i: number) => boolean | string[] | undefined;
  over?: Partial<EnvironmentInput>;
  appEnv?: Record<string, string>;
}

export function labEnvInput(lab: Lab, o: LabEnvOptions = {}): EnvironmentInput {
  return {
    site: lab.site,
    build: { dir: 'examples/hello' },
    app: {
      start: [process.execPath, 'server.js', '--socket', '{socket}'],
      env: o.appEnv ?? {},
      startTimeoutSeconds: 10,
      health: { path: '/health', timeoutSeconds: 5 },
    },
    hosts: lab.hosts.map((h, i) => {
      const primary = o.primary?.(i);
      return {
        name: h.name,
        address: h.address,
        port: h.sshPort,
        roles: o.roles?.(i) ?? ['web', 'app'],
        deployTo: h.deployTo,
        socketDir: h.socketDir,
        // each lab host has its own nginx port: load tests reach it here
        ...(h.nginxPort ? { url: lab.url(h) } : {}),
        ...(primary === undefined ? {} : { primary }),
      };
    }),
    ssh: { user: lab.user, identityFile: lab.identityFile, knownHostsFile: lab.knownHostsFile, agent: false, connectTimeoutSeconds: 5 },
    keepReleases: 3,
    retire: { graceSeconds: 2, drainSeconds: 5 },
    ...o.over,
  };
}

export function labEnv(lab: Lab, o: LabEnvOptions = {}): Environment {
  return validateEnvironment(labEnvInput(lab, o), { name: 'lab', file: 'env/lab.ts', root: REPO });
}
