// Where to connect and as whom: the environment file first, then ~/.ssh/config, then defaults.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type SSHConfig from 'ssh-config';
import { lazy } from '../../lazy';

const sshConfig = lazy(() => (require('ssh-config') as { default: typeof SSHConfig }).default);
import type { Environment, HostConfig } from '../../environment';
import { SwitchyardError } from '../../errors';

export interface SshTarget {
  /** The host name in messages (the environment's name for it). */
  name: string;
  /** What we connect to, after ssh config aliases. */
  hostname: string;
  port: number;
  user: string;
  identityFiles: string[];
  knownHostsFiles: string[];
  agent?: string;
  passphrase?: string;
  connectTimeoutMs: number;
  keepaliveIntervalMs: number;
}

function expandHome(p: string): string {
  return p === '~' ? os.homedir() : p.startsWith('~/') ? path.join(os.homedir(), p.slice(2)) : p;
}

function first(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

function list(v: string | string[] | undefined): string[] {
  if (v === undefined) return [];
  return (Array.isArray(v) ? v : [v]).flatMap((s) => s.split(/\s+/)).filter(Boolean);
}

export function readSshConfig(file: string | undefined): SSHConfig | undefined {
  const f = expandHome(file ?? '~/.ssh/config');
  if (!fs.existsSync(f)) {
    if (file) throw new SwitchyardError(`ssh.configFile: ${f} does not exist`);
    return undefined;
  }
  return sshConfig().parse(fs.readFileSync(f, 'utf8'));
}

export function resolveSshTarget(env: Environment, host: HostConfig, sshConfig = readSshConfig(env.ssh.configFile)): SshTarget {
  const alias = host.address ?? host.name;
  const computed = sshConfig?.compute(alias) ?? {};
  const portText = first(computed.Port);
  const user = host.user ?? env.ssh.user ?? first(computed.User) ?? os.userInfo().username;
  const identityFiles = (host.identityFile ?? env.ssh.identityFile)
    ? [expandHome((host.identityFile ?? env.ssh.identityFile)!)]
    : list(computed.IdentityFile).map(expandHome);
  if (!identityFiles.length) {
    for (const f of ['id_ed25519', 'id_ecdsa', 'id_rsa']) {
      const p = path.join(os.homedir(), '.ssh', f);
      if (fs.existsSync(p)) identityFiles.push(p);
    }
  }
  const knownHostsFiles = env.ssh.knownHostsFile
    ? [expandHome(env.ssh.knownHostsFile)]
    : list(computed.UserKnownHostsFile).map(expandHome).concat(list(computed.UserKnownHostsFile).length ? [] : [expandHome('~/.ssh/known_hosts')]);
  const agent = env.ssh.agent === false ? undefined : (env.ssh.agent ?? process.env.SSH_AUTH_SOCK);
  let passphrase: string | undefined;
  if (env.ssh.passphraseEnv) {
    passphrase = process.env[env.ssh.passphraseEnv];
    if (passphrase === undefined) throw new SwitchyardError(`ssh.passphraseEnv: environment variable ${env.ssh.passphraseEnv} is not set`, { host: host.name });
  }
  return {
    name: host.name,
    hostname: first(computed.HostName) ?? alias,
    port: host.port ?? env.ssh.port ?? (portText ? Number(portText) : 22),
    user,
    identityFiles,
    knownHostsFiles,
    ...(agent ? { agent } : {}),
    ...(passphrase !== undefined ? { passphrase } : {}),
    connectTimeoutMs: env.ssh.connectTimeoutSeconds * 1000,
    keepaliveIntervalMs: env.ssh.keepaliveIntervalSeconds * 1000,
  };
}
