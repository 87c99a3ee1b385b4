// Where to connect, through what and as whom: the environment file first, then ~/.ssh/config, then
// defaults. ssh_config keywords read: HostName, User, Port, IdentityFile, IdentitiesOnly,
// IdentityAgent, UserKnownHostsFile, ProxyJump, ProxyCommand (docs/ARCHITECTURE.md lists them).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type SSHConfig from 'ssh-config';
import { lazy } from '../../lazy';

const sshConfig = lazy(() => (require('ssh-config') as { default: typeof SSHConfig }).default);
import type { Environment, HostConfig } from '../../environment';
import { SwitchyardError } from '../../errors';
import { parseProxyJump, type JumpSpec } from './jump-spec';
import { unknownProxyToken } from './proxy-command';

/** How the TCP stream to a host is made when it is not a plain connection. */
export type SshProxy =
  /** Through an SSH connection to another host (forwardOut, as `ssh -J` does with -W). */
  | { kind: 'jump'; via: SshTarget }
  /** A command's stdin/stdout, as ssh_config ProxyCommand (tokens still unexpanded). */
  | { kind: 'command'; command: string };

export interface SshTarget {
  /** The host name in messages (the environment's name for it; a jump host's name as written). */
  name: string;
  /** The name looked up in ssh_config (ProxyCommand's %n). */
  alias: string;
  /** What we connect to, after ssh config aliases. */
  hostname: string;
  port: number;
  user: string;
  /** Tried in this order, after the agent's keys. */
  identityFiles: string[];
  /** Only identityFiles: an agent key only when it is one of theirs. */
  identitiesOnly: boolean;
  /** UserKnownHostsFile (or ssh.knownHostsFile), read first. */
  knownHostsFiles: string[];
  /** GlobalKnownHostsFile: the system-wide files, read after the user's. */
  globalKnownHostsFiles: string[];
  /** HostKeyAlias: the name looked up in known_hosts (and matched by certificate principals). */
  hostKeyAlias?: string;
  agent?: string;
  /** The local variable holding the encrypted identity files' passphrase: read when connecting, never kept here. */
  passphraseEnv?: string;
  proxy?: SshProxy;
  connectTimeoutMs: number;
  keepaliveIntervalMs: number;
}

/** A chain longer than this is a loop in ssh_config (a's ProxyJump is b, b's is a). */
const MAX_HOPS = 8;
/** OpenSSH's default identities (readconf.c), in its order; only those that exist are tried. */
const DEFAULT_IDENTITIES = ['id_rsa', 'id_ecdsa', 'id_ecdsa_sk', 'id_ed25519', 'id_ed25519_sk'];

function expandHome(p: string): string {
  return p === '~' ? os.homedir() : p.startsWith('~/') ? path.join(os.homedir(), p.slice(2)) : p;
}

type Computed = Map<string, string | string[]>;

/** ssh_config keywords are case-insensitive: one map by lower-case name, in the order first seen. */
function lookup(conf: SSHConfig | undefined, alias: string): Computed {
  const out: Computed = new Map();
  for (const [k, v] of Object.entries(conf?.compute(alias) ?? {})) {
    const key = k.toLowerCase();
    const had = out.get(key);
    if (had === undefined) out.set(key, v as string | string[]);
    else if (Array.isArray(had)) out.set(key, had.concat(v as string | string[]));
  }
  return out;
}

function first(c: Computed, key: string): string | undefined {
  const v = c.get(key);
  return Array.isArray(v) ? v[0] : v;
}

/** Every value of a keyword that may repeat (IdentityFile: one file per line, spaces and all). */
function all(c: Computed, key: string): string[] {
  const v = c.get(key);
  return v === undefined ? [] : Array.isArray(v) ? v : [v];
}

export function readSshConfig(file: string | undefined): SSHConfig | undefined {
  const f = expandHome(file ?? '~/.ssh/config');
  if (!fs.existsSync(f)) {
    if (file) throw new SwitchyardError(`ssh.configFile: ${f} does not exist`);
    return undefined;
  }
  return sshConfig().parse(fs.readFileSync(f, 'utf8'));
}

const asList = (v: string | string[] | undefined) => (v === undefined ? undefined : Array.isArray(v) ? v : [v]);

function identityFiles(given: string[] | undefined, c: Computed): string[] {
  const listed = (given ?? all(c, 'identityfile')).map(expandHome);
  if (listed.length) return listed;
  return DEFAULT_IDENTITIES.map((f) => path.join(os.homedir(), '.ssh', f)).filter((p) => fs.existsSync(p));
}

/** ssh.agent, else IdentityAgent (none, SSH_AUTH_SOCK, $VAR, a path), else $SSH_AUTH_SOCK. */
function agentSocket(env: Environment, c: Computed): string | undefined {
  if (env.ssh.agent === false) return undefined;
  if (env.ssh.agent) return env.ssh.agent;
  const ia = first(c, 'identityagent');
  if (ia === undefined || ia === 'SSH_AUTH_SOCK') return process.env.SSH_AUTH_SOCK || undefined;
  if (ia.toLowerCase() === 'none') return undefined;
  if (ia.startsWith('$')) return process.env[ia.slice(1)] || undefined;
  return expandHome(ia);
}

function passphraseVar(name: string | undefined, where: string, host: string): string | undefined {
  if (name !== undefined && process.env[name] === undefined) {
    throw new SwitchyardError(`${where}: environment variable ${name} is not set`, { host });
  }
  return name;
}

interface Context {
  env: Environment;
  conf: SSHConfig | undefined;
  /** The target host the chain is for (errors name it). */
  host: string;
}

/**
 * ProxyJump and ProxyCommand as OpenSSH decides (readconf.c): a jump given by the environment wins
 * (as `ssh -J`); else whichever of the two ssh_config sets first; `ProxyJump none` leaves a
 * ProxyCommand in force, `ProxyCommand none` turns both off.
 */
function proxyOf(ctx: Context, c: Computed, given: { text: string; where: string } | undefined, depth: number): SshProxy | undefined {
  const keys = [...c.keys()];
  const pj = first(c, 'proxyjump');
  const pc = first(c, 'proxycommand');
  const jumpFirst = pj !== undefined && (pc === undefined || keys.indexOf('proxyjump') < keys.indexOf('proxycommand'));
  const jump = given ?? (jumpFirst ? { text: pj!, where: `ssh config ProxyJump` } : undefined);
  if (jump) {
    const hops = parseProxyJump(jump.text);
    if (typeof hops === 'string') throw new SwitchyardError(`${jump.where}: ${hops}`, { host: ctx.host });
    if (hops.length) return { kind: 'jump', via: resolveJump(ctx, hops, depth + 1) };
    // none: a ProxyCommand still applies
  }
  if (pc === undefined || pc.trim().toLowerCase() === 'none') return undefined;
  const bad = unknownProxyToken(pc);
  if (bad !== undefined) throw new SwitchyardError(`host ${ctx.host}: ssh config ProxyCommand: unsupported token %${bad} (known: %h %p %r %n %%)`, { host: ctx.host });
  return { kind: 'command', command: pc };
}

/**
 * The last hop of a chain, reached through the ones before it (`a,b`: b through a); the first
 * hop's own ssh_config ProxyJump applies. As with `ssh -J`, a jump host takes its user, port and
 * identities from its spec and ssh_config, not from the target's settings; the environment's
 * known_hosts, agent and timeouts apply to every hop, and ssh.identityFile to a jump host that
 * ssh_config gives none.
 */
function resolveJump(ctx: Context, hops: JumpSpec[], depth: number): SshTarget {
  if (depth > MAX_HOPS) throw new SwitchyardError(`host ${ctx.host}: more than ${MAX_HOPS} jump hosts: is there a ProxyJump loop in ssh config?`, { host: ctx.host });
  const spec = hops[hops.length - 1]!;
  const before = hops.slice(0, -1);
  const c = lookup(ctx.conf, spec.host);
  const portText = first(c, 'port');
  const envIds = asList(ctx.env.ssh.identityFile);
  const passphraseEnv = passphraseVar(ctx.env.ssh.passphraseEnv, 'ssh.passphraseEnv', ctx.host);
  const where = { alias: spec.host, hostname: first(c, 'hostname') ?? spec.host, port: spec.port ?? (portText ? Number(portText) : 22), user: spec.user ?? first(c, 'user') ?? os.userInfo().username };
  return {
    name: spec.host,
    ...where,
    identityFiles: identityFiles(all(c, 'identityfile').length ? undefined : envIds, c),
    identitiesOnly: ctx.env.ssh.identitiesOnly ?? first(c, 'identitiesonly')?.toLowerCase() === 'yes',
    ...hostKeyOptions(ctx.env, Object.fromEntries(c), where),
    ...optional('agent', agentSocket(ctx.env, c)),
    ...optional('passphraseEnv', passphraseEnv),
    ...optional('proxy', before.length ? { kind: 'jump', via: resolveJump(ctx, before, depth + 1) } : proxyOf(ctx, c, undefined, depth)),
    connectTimeoutMs: ctx.env.ssh.connectTimeoutSeconds * 1000,
    keepaliveIntervalMs: ctx.env.ssh.keepaliveIntervalSeconds * 1000,
  };
}

function optional<K extends string, V>(key: K, v: V | undefined): { [k in K]?: V } {
  return (v === undefined ? {} : { [key]: v }) as { [k in K]?: V };
}

export function resolveSshTarget(env: Environment, host: HostConfig, conf = readSshConfig(env.ssh.configFile)): SshTarget {
  const alias = host.address ?? host.name;
  const c = lookup(conf, alias);
  const portText = first(c, 'port');
  const ctx: Context = { env, conf, host: host.name };
  const i = env.hosts.indexOf(host);
  const given = host.proxyJump !== undefined
    ? { text: host.proxyJump, where: `hosts[${i}].proxyJump` }
    : env.ssh.proxyJump !== undefined
      ? { text: env.ssh.proxyJump, where: 'ssh.proxyJump' }
      : undefined;
  const passphraseEnv = host.passphraseEnv !== undefined
    ? passphraseVar(host.passphraseEnv, `hosts[${i}].passphraseEnv`, host.name)
    : passphraseVar(env.ssh.passphraseEnv, 'ssh.passphraseEnv', host.name);
  const where = { alias, hostname: first(c, 'hostname') ?? alias, port: host.port ?? env.ssh.port ?? (portText ? Number(portText) : 22), user: host.user ?? env.ssh.user ?? first(c, 'user') ?? os.userInfo().username };
  return {
    name: host.name,
    ...where,
    identityFiles: identityFiles(asList(host.identityFile ?? env.ssh.identityFile), c),
    identitiesOnly: env.ssh.identitiesOnly ?? first(c, 'identitiesonly')?.toLowerCase() === 'yes',
    ...hostKeyOptions(env, Object.fromEntries(c), where),
    ...optional('agent', agentSocket(env, c)),
    ...optional('passphraseEnv', passphraseEnv),
    ...optional('proxy', proxyOf(ctx, c, given, 0)),
    connectTimeoutMs: env.ssh.connectTimeoutSeconds * 1000,
    keepaliveIntervalMs: env.ssh.keepaliveIntervalSeconds * 1000,
  };
}

/* ------------------------------------------------------------------ host keys */

type ConfigValues = Record<string, string | string[] | undefined>;

/** A keyword's value whatever its case in the file (OpenSSH keywords are case-insensitive). */
function keyword(computed: ConfigValues, name: string): string | string[] | undefined {
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
  computed: ConfigValues,
  h: { alias: string; hostname: string; port: number; user: string },
): Pick<SshTarget, 'knownHostsFiles' | 'globalKnownHostsFiles' | 'hostKeyAlias'> {
  const av = keyword(computed, 'HostKeyAlias');
  const aliasValue = Array.isArray(av) ? av[0] : av;
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
