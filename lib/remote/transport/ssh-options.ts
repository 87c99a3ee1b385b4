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
  /** UserKnownHostsFile (or ssh.knownHostsFile), read first. */
  knownHostsFiles: string[];
  /** GlobalKnownHostsFile: the system-wide files, read after the user's. */
  globalKnownHostsFiles: string[];
  /** HostKeyAlias: the name looked up in known_hosts (and matched by certificate principals). */
  hostKeyAlias?: string;
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
  const hostname = first(computed.HostName) ?? alias;
  const port = host.port ?? env.ssh.port ?? (portText ? Number(portText) : 22);
  const hostKeys = hostKeyOptions(env, computed, { alias, hostname, port, user });
  const agent = env.ssh.agent === false ? undefined : (env.ssh.agent ?? process.env.SSH_AUTH_SOCK);
  let passphrase: string | undefined;
  if (env.ssh.passphraseEnv) {
    passphrase = process.env[env.ssh.passphraseEnv];
    if (passphrase === undefined) throw new SwitchyardError(`ssh.passphraseEnv: environment variable ${env.ssh.passphraseEnv} is not set`, { host: host.name });
  }
  return {
    name: host.name,
    hostname,
    port,
    user,
    identityFiles,
    ...hostKeys,
    ...(agent ? { agent } : {}),
    ...(passphrase !== undefined ? { passphrase } : {}),
    connectTimeoutMs: env.ssh.connectTimeoutSeconds * 1000,
    keepaliveIntervalMs: env.ssh.keepaliveIntervalSeconds * 1000,
  };
}

/* ------------------------------------------------------------------ host keys */

type Computed = Record<string, string | string[] | undefined>;

/** A keyword's value whatever its case in the file (OpenSSH keywords are case-insensitive). */
function keyword(computed: Computed, name: string): string | string[] | undefined {
  const k = Object.keys(computed).find((key) => key.toLowerCase() === name.toLowerCase());
  return k === undefined ? undefined : computed[k];
}

/**
 * ssh_config's %-tokens in a known_hosts path (OpenSSH 8.4+), and `~`. ssh-config gives several
 * paths as an array and one (quoted, perhaps with spaces) as a string.
 */
function hostFiles(value: string | string[] | undefined, kw: string, tokens: Record<string, string>): string[] | undefined {
  if (value === undefined) return undefined;
  const paths = Array.isArray(value) ? value : [value];
  if (paths.length === 1 && paths[0]!.toLowerCase() === 'none') return [];
  return paths.map((p) =>
    expandHome(
      p.replace(/%(.)/g, (_, t: string) => {
        const v = tokens[t];
        if (v === undefined) throw new SwitchyardError(`ssh config ${kw} ${p}: %${t} is not a token switchyard knows (it knows ${Object.keys(tokens).map((k) => `%${k}`).join(' ')})`);
        return v;
      }),
    ),
  );
}

/** UserKnownHostsFile, GlobalKnownHostsFile and HostKeyAlias, with OpenSSH's defaults. */
export function hostKeyOptions(
  env: Environment,
  computed: Computed,
  h: { alias: string; hostname: string; port: number; user: string },
): Pick<SshTarget, 'knownHostsFiles' | 'globalKnownHostsFiles' | 'hostKeyAlias'> {
  const aliasValue = first(keyword(computed, 'HostKeyAlias'));
  const hostKeyAlias = aliasValue && aliasValue.toLowerCase() !== 'none' ? aliasValue : undefined;
  const me = os.userInfo();
  const tokens: Record<string, string> = {
    '%': '%',
    d: os.homedir(),
    h: h.hostname,
    i: String(me.uid),
    k: hostKeyAlias ?? h.alias,
    L: os.hostname().split('.')[0]!,
    l: os.hostname(),
    n: h.alias,
    p: String(h.port),
    r: h.user,
    u: me.username,
  };
  const user = env.ssh.knownHostsFile ? [expandHome(env.ssh.knownHostsFile)] : hostFiles(keyword(computed, 'UserKnownHostsFile'), 'UserKnownHostsFile', tokens);
  const global = hostFiles(keyword(computed, 'GlobalKnownHostsFile'), 'GlobalKnownHostsFile', tokens);
  return {
    knownHostsFiles: user ?? ['~/.ssh/known_hosts', '~/.ssh/known_hosts2'].map(expandHome),
    globalKnownHostsFiles: global ?? ['/etc/ssh/ssh_known_hosts', '/etc/ssh/ssh_known_hosts2'],
    ...(hostKeyAlias ? { hostKeyAlias } : {}),
  };
}
