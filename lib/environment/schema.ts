// The environment file: what it may say and what it means. One schema: the types, the checks and
// the reference (docs/ENVIRONMENT.md) all come from it. Validation runs before any connection is
// made, so a bad file changes nothing anywhere.
import { z } from 'zod';
import { SwitchyardError } from '../errors';
import { configOverridesSchema } from '../config/schema';

const name = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'letters, digits, ".", "_" and "-" only');
const hostname = z.string().regex(/^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/, 'a host name such as app.example.com');
const absolutePath = z.string().regex(/^\/[^\0\n]*$/, 'an absolute path');
const relativePath = z
  .string()
  .min(1)
  .refine((p) => !p.startsWith('/') && !p.split('/').includes('..') && !p.includes('\0'), 'a relative path without ".."');
const seconds = z.number().nonnegative();
const port = z.number().int().min(1).max(65535);
const envVarName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name');

const sshSchema = z.strictObject({
  /** Login user; default: ~/.ssh/config, then the local user name. */
  user: z.string().min(1).optional(),
  port: port.optional(),
  /** Private key file; default: ~/.ssh/config IdentityFile, then ssh-agent, then ~/.ssh/id_ed25519 / id_rsa. */
  identityFile: z.string().min(1).optional(),
  /** Name of a local environment variable holding the key's passphrase (never the passphrase itself). */
  passphraseEnv: envVarName.optional(),
  /** known_hosts file(s) to verify host keys against; default ~/.ssh/known_hosts (+ UserKnownHostsFile from ssh config). */
  knownHostsFile: z.string().min(1).optional(),
  /** ssh_config file for Host aliases; default ~/.ssh/config. */
  configFile: z.string().min(1).optional(),
  /** ssh-agent socket path, or false to not use the agent; default $SSH_AUTH_SOCK. */
  agent: z.union([z.string().min(1), z.literal(false)]).optional(),
  connectTimeoutSeconds: seconds.default(20),
  keepaliveIntervalSeconds: seconds.default(10),
  /** How long one remote step may run (prepare; a user's own command); then the client ends it: TERM to its process group, then KILL. */
  commandTimeoutSeconds: z.number().positive().default(600),
});

const hostSchema = z.strictObject({
  /** Unique name used by --hosts, in logs and reports. */
  name,
  /** Host name, IP address or ~/.ssh/config alias; default: the name. */
  address: z.string().min(1).optional(),
  port: port.optional(),
  user: z.string().min(1).optional(),
  identityFile: z.string().min(1).optional(),
  /** web, app, db, or any name of your own. */
  roles: z.array(name).min(1),
  /** Primary for all of its roles (true) or for the roles listed. One primary per role at most. */
  primary: z.union([z.boolean(), z.array(name)]).optional(),
  /** This host's own deployTo / socketDir, when it differs from the environment's. */
  deployTo: absolutePath.optional(),
  socketDir: absolutePath.optional(),
  /**
   * Where this host's nginx is reached, for load tests (`gulp loadtest`, `gulp verify`), e.g.
   * http://10.0.0.5:8080; default http://<nginx.listen address, or address ?? name>:<listen port>.
   */
  url: z.url({ protocol: /^https?$/, error: 'an http:// or https:// URL' }).optional(),
  /** Config overrides for this host only; they win over the environment-level ones. */
  config: configOverridesSchema.optional(),
});

export const environmentSchema = z.strictObject({
  /** The public host name nginx sees in the Host header. */
  site: hostname,
  /** `ssh` (default) or `local` (this machine, no SSH: the built-in local default). */
  transport: z.enum(['ssh', 'local']).default('ssh'),
  build: z.strictObject({
    /** Directory whose contents become the release, relative to the project root. */
    dir: z.string().min(1),
  }),
  app: z.strictObject({
    /** argv of the app; `{socket}` is replaced by the socket path it must listen on, `{release}` by the release id. */
    start: z.array(z.string().min(1)).min(1),
    /** Extra environment variables for the app. */
    env: z.record(envVarName, z.string()).default({}),
    /** Roles whose hosts run the app. */
    roles: z.array(name).min(1).default(['app']),
    startTimeoutSeconds: z.number().positive().default(30),
    health: z
      .strictObject({
        path: z.string().regex(/^\/[^\s]*$/, 'a path starting with /').default('/health'),
        timeoutSeconds: z.number().positive().default(30),
        expectStatus: z.number().int().min(100).max(599).default(200),
      })
      .prefault({}),
  }),
  hosts: z.array(hostSchema).min(1),
  ssh: sshSchema.prefault({}),
  /** Where releases live on the servers (absolute); a host may set its own. */
  deployTo: absolutePath.optional(),
  /** Where the sockets live on the servers (absolute); nginx must be able to reach it. A host may set its own. */
  socketDir: absolutePath.optional(),
  socket: z
    .strictObject({
      mode: z.string().regex(/^0?[0-7]{3}$/, 'an octal mode such as 0660').default('0660'),
      /** Group given to the socket so the nginx workers may connect (e.g. www-data). */
      group: name.optional(),
    })
    .prefault({}),
  /** Paths inside the release that live in <deployTo>/shared and survive releases (logs, uploads). */
  shared: z.array(relativePath).default([]),
  keepReleases: z.number().int().min(2).default(5),
  retire: z
    .strictObject({
      /** Pause between the switch and closing the old listener; below 1 s requests in its backlog are reset. */
      graceSeconds: seconds.default(2),
      /** How long the old release may take to finish in-flight requests after SIGTERM before SIGKILL. */
      drainSeconds: seconds.default(30),
    })
    .prefault({}),
  /** At most this many hosts worked on at once (default: all). */
  parallel: z.number().int().min(1).optional(),
  nginx: z
    .strictObject({
      /** What nginx listens on, as in its `listen` directive. */
      listen: z.string().regex(/^[A-Za-z0-9.:[\]]+$/, 'a listen address such as 80 or 127.0.0.1:8080').default('80'),
      pass: z.enum(['http', 'fastcgi']).default('http'),
      /** Roles whose hosts get the nginx config. */
      roles: z.array(name).min(1).default(['web']),
      /** Run a private, non-root nginx under <deployTo>/nginx, started by `gulp setup`. */
      private: z.boolean().default(false),
    })
    .prefault({}),
  loadtest: z
    .strictObject({
      /** Send load here instead of to every web host (e.g. a load balancer). */
      url: z.url().optional(),
    })
    .optional(),
  /** Config file overrides for every host: { 'Web.config': { appSettings: {…}, xpath: {…} } }. */
  config: configOverridesSchema.optional(),
});

export type EnvironmentInput = z.input<typeof environmentSchema>;
export type EnvironmentConfig = z.output<typeof environmentSchema>;
export type HostConfig = EnvironmentConfig['hosts'][number];

export interface Environment extends Omit<EnvironmentConfig, 'deployTo' | 'socketDir'> {
  /** The environment-level value; use forHost() for a host's own. */
  deployTo: string;
  socketDir: string;
  /** The name given to --env. */
  name: string;
  /** The file it was loaded from (or a description when built in code). */
  file: string;
  /** The project root; build.dir is relative to it. */
  root: string;
}

/** Typed identity: gives editors the schema's types and docs inside env files. */
export function defineEnvironment(env: EnvironmentInput): EnvironmentInput {
  return env;
}


// The release id appended to SOCK-<site>-: 20261123T154219.123Z-abcdef123456 at most.
const RELEASE_ID_MAX = 34;
const SOCKET_PATH_MAX = 107; // sun_path is 108 bytes including the NUL

function formatPath(p: readonly PropertyKey[]): string {
  let out = '';
  for (const k of p) {
    if (typeof k === 'number') out += `[${k}]`;
    else if (!/^[A-Za-z_$][\w$]*$/.test(String(k))) out += `[${JSON.stringify(String(k))}]`; // 'Web.config', XPath keys
    else out += out ? `.${String(k)}` : String(k);
  }
  return out || '(top level)';
}

function describeIssue(issue: z.core.$ZodIssue): string {
  const where = formatPath(issue.path);
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((k) => `${formatPath([...issue.path, k])}: unknown key`).join('\n');
  }
  if (issue.code === 'invalid_type' && /received undefined/.test(issue.message)) {
    return `${where}: missing (expected ${issue.expected})`;
  }
  return `${where}: ${issue.message.replace(/^Invalid input: /, '').replace(/^Unrecognized keys?: ("[^"]*"(, "[^"]*")*)/, 'unknown key $1')}`;
}

/** Checks a plain object against the schema and the rules that span fields. Throws one error listing every problem. */
export function validateEnvironment(input: unknown, where: { name: string; file: string; root: string }): Environment {
  const parsed = environmentSchema.safeParse(input);
  if (!parsed.success) {
    const lines = parsed.error.issues.flatMap((i) => describeIssue(i).split('\n'));
    throw new SwitchyardError(`${where.file}: invalid environment\n${lines.map((l) => `  ${l}`).join('\n')}`);
  }
  const env = parsed.data;
  const problems: string[] = [];
  const seen = new Map<string, number>();
  env.hosts.forEach((h, i) => {
    if (seen.has(h.name)) problems.push(`hosts[${i}].name: "${h.name}" is already used by hosts[${seen.get(h.name)}]`);
    seen.set(h.name, i);
    if (Array.isArray(h.primary)) {
      for (const r of h.primary) if (!h.roles.includes(r)) problems.push(`hosts[${i}].primary: "${r}" is not one of its roles`);
    }
  });
  const primaries = new Map<string, string>();
  env.hosts.forEach((h, i) => {
    for (const role of primaryRolesOf(h)) {
      const other = primaries.get(role);
      if (other) problems.push(`hosts[${i}].primary: role "${role}" already has primary host "${other}"`);
      primaries.set(role, h.name);
    }
  });
  const roles = new Set(env.hosts.flatMap((h) => h.roles));
  for (const r of env.app.roles) if (!roles.has(r)) problems.push(`app.roles: no host has role "${r}"`);
  for (const key of ['deployTo', 'socketDir'] as const) {
    const missing = env.hosts.filter((h) => !(h[key] ?? env[key]));
    if (missing.length) problems.push(`${key}: missing (set it here, or on each host: ${missing.map((h) => h.name).join(', ')} have none)`);
  }
  env.hosts.forEach((h, i) => {
    const dir = h.socketDir ?? env.socketDir;
    if (!dir) return;
    const longest = `${dir.replace(/\/+$/, '')}/SOCK-${env.site}-${'x'.repeat(RELEASE_ID_MAX)}`;
    if (Buffer.byteLength(longest) > SOCKET_PATH_MAX) {
      problems.push(
        `${h.socketDir ? `hosts[${i}].socketDir` : 'socketDir'}: "${dir}" is too long: a release socket path (${Buffer.byteLength(longest)} bytes) would exceed the ${SOCKET_PATH_MAX}-byte unix socket limit`,
      );
    }
  });
  if (env.transport === 'local' && env.hosts.length !== 1) problems.push('hosts: the local transport takes exactly one host');
  if (problems.length) {
    throw new SwitchyardError(`${where.file}: invalid environment\n${problems.map((l) => `  ${l}`).join('\n')}`);
  }
  return { ...env, deployTo: env.deployTo ?? '', socketDir: env.socketDir ?? '', ...where };
}

/** The environment as one host sees it: its own deployTo and socketDir when it has them. */
export function forHost(env: Environment, h: HostConfig): Environment {
  if (!h.deployTo && !h.socketDir) return env;
  return { ...env, deployTo: h.deployTo ?? env.deployTo, socketDir: h.socketDir ?? env.socketDir };
}

export function primaryRolesOf(h: HostConfig): string[] {
  if (h.primary === true) return h.roles;
  if (Array.isArray(h.primary)) return h.primary;
  return [];
}

