import type { Environment, HostConfig } from '../../environment';
import { LocalTransport } from './local';
import { readSshConfig, resolveSshTarget } from './ssh-options';
import { SshTransport } from './ssh';
import type { Transport } from './types';

export type { Transport, ExecOptions, ExecResult, TransportStats } from './types';
export type { HostKeyStatus, RefusedHostKey } from './known-hosts';
export { describeRefusal, hostKeySummary } from './host-key-messages';

/** One transport per host, by the environment's `transport`. Nothing connects until first used. */
export function transportsFor(env: Environment, hosts: HostConfig[]): Map<string, Transport> {
  const out = new Map<string, Transport>();
  const sshConfig = env.transport === 'ssh' ? readSshConfig(env.ssh.configFile) : undefined;
  for (const h of hosts) {
    out.set(h.name, env.transport === 'local' ? new LocalTransport(h.name) : new SshTransport(resolveSshTarget(env, h, sshConfig)));
  }
  return out;
}
