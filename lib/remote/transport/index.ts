import type { Environment, HostConfig } from '../../environment';
import { LocalTransport } from './local';
import { readSshConfig, resolveSshTarget } from './ssh-options';
import { SshTransport } from './ssh';
import { JumpPool } from './ssh-connect';
import type { Transport } from './types';

export type { Transport, ExecOptions, ExecResult, TransportStats, SshReach, SshHop } from './types';
export type { HostKeyStatus, RefusedHostKey } from './known-hosts';
export { describeRefusal, hostKeySummary } from './host-key-messages';

/** One transport per host, by the environment's `transport`. Nothing connects until first used. */
export function transportsFor(env: Environment, hosts: HostConfig[]): Map<string, Transport> {
  const out = new Map<string, Transport>();
  const sshConfig = env.transport === 'ssh' ? readSshConfig(env.ssh.configFile) : undefined;
  // hosts behind the same jump host share one connection to it
  const jumps = new JumpPool();
  for (const h of hosts) {
    out.set(h.name, env.transport === 'local' ? new LocalTransport(h.name) : new SshTransport(resolveSshTarget(env, h, sshConfig), jumps));
  }
  return out;
}
