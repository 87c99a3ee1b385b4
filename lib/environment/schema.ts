// The environment file: what it may say and what it means. One schema: the types, the checks and
// the reference (docs/ENVIRONMENT.md) all come from it. Validation runs before any connection is
// made, so a bad file changes nothing anywhere.
import type { z } from 'zod';
import { lazy } from '../lazy';
import { SwitchyardError } from '../errors';
import { distance, nearest } from '../nearest';
import { configOverridesSchema, zod } from '../config/schema';
import { Secret } from '../config/secrets';
import { listenProblem } from '../nginx/listen';
import { proxyJumpProblem } from '../remote/transport/jump-spec';

/** What prepare.sh replaces in app.start's words. */
const PLACEHOLDERS = ['socket', 'release'];

/**
 * A `{name}` in an app word that is a misspelt placeholder, which would reach the app as it is:
 * one edit from one, letter case aside (`{sockte}`, `{Socket}`). Anything further (`{sock}`,
 * `{port}`) is the app's own text.
 */
export function placeholderTypo(word: string): string | undefined {
  for (const m of word.matchAll(/\{([A-Za-z_][A-Za-z0-9_]*)\}/g)) {
    const name = m[1]!;
    if (PLACEHOLDERS.includes(name)) continue;
    const near = PLACEHOLDERS.find((p) => distance(name.toLowerCase(), p) <= 1);
    if (near) return `{${name}} is not replaced (only {socket} and {release} are); did you mean {${near}}?`;
  }
  return undefined;
}

type Z = ReturnType<typeof zod>['z'];
/** What the reference shows for a key: its meaning and an example value. */
const doc = (description: string, example?: unknown) => ({ description, ...(example === undefined ? {} : { example }) });

/** The value types several keys share. */
function fields(z: Z) {
  return {
    name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'letters, digits, ".", "_" and "-" only'),
    hostname: z.string().regex(/^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/, 'a host name such as app.example.com'),
    // The scripts refuse white space in --deploy-to / --socket-dir (sy_abspath); Linux, a name over
    // 255 bytes or a path near PATH_MAX (4096, releases/R/… below it): so refused here, before any connection.
    absolutePath: z
      .string()
      .refine((p) => Buffer.byteLength(p) <= 1024 && p.split('/').every((c) => Buffer.byteLength(c) <= 255), 'an absolute path of at most 1024 bytes (255 a name)')
      .regex(/^\/[^\s\p{Cc}]*$/u, 'an absolute path'),
    relativePath: z
      .string()
      .min(1)
      // as prepare.sh checks --shared: no empty, . or .. name (so no leading, trailing or double /), no
      // control character (U+2028/9 too: [[:cntrl:]] in a UTF-8 locale), not .switchyard (the release's own); a name over 255 bytes cannot be made
      .refine(
        (p) => !/[\p{Cc}\u2028\u2029]/u.test(p) && Buffer.byteLength(p) <= 1024 && p.split('/').every((c) => c !== '' && c !== '.' && c !== '..' && Buffer.byteLength(c) <= 255) && p.split('/')[0] !== '.switchyard',
        'a relative path without "..", ".", empty names, control characters or .switchyard',
      ),
    // What the scripts read (sy_seconds: at most 6 digits, then milliseconds) and what a client timer
    // can hold (setTimeout: < 2^31 ms, with grace + 2 × drain + 120 s added up for retire).
    seconds: z.number().nonnegative().max(86400).multipleOf(0.001),
    port: z.number().int().min(1).max(65535),
    envVarName: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name'),
    identityFile: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)], { message: 'a file name or a non-empty list of them' }),
    proxyJump: z.string().refine((s) => proxyJumpProblem(s) === undefined, {
      error: (i) => (typeof i.input === 'string' ? proxyJumpProblem(i.input) : undefined) ?? 'a ProxyJump ([user@]host[:port], a chain a,b, or none)',
    }),
  };
}
type Fields = ReturnType<typeof fields>;

function sshSchema(z: Z, f: Fields) {
  return z.strictObject({
    user: z.string().min(1).optional().meta(doc('Login user; default: ~/.ssh/config, then the local user name.', 'deploy')),
    port: f.port.optional().meta(doc('SSH port; default: ~/.ssh/config, then 22.', 22)),
    identityFile: f.identityFile
      .optional()
      .meta(doc('Private key file(s), tried in order after the agent\'s keys (as OpenSSH does); instead of ~/.ssh/config IdentityFile; default: those, else ~/.ssh/id_rsa, id_ecdsa, id_ed25519 that exist.', '~/.ssh/deploy_ed25519')),
    identitiesOnly: z.boolean().optional().meta(doc("Only the identity files: the agent's keys only when one of them is a listed file's key (OpenSSH IdentitiesOnly); default: ~/.ssh/config IdentitiesOnly, else false.", true)),
    passphraseEnv: f.envVarName
      .optional()
      .meta(doc("Name of a local environment variable holding the passphrase of the encrypted identity files (never the passphrase itself); tried on each encrypted file.", 'DEPLOY_KEY_PASSPHRASE')),
    proxyJump: f.proxyJump
      .optional()
      .meta(
        doc(
          "Jump host(s) as in OpenSSH ProxyJump: `[user@]host[:port]`, a chain `a,b` (a first), or `none` (directly; an ssh_config ProxyCommand still applies, as with `ssh -J none`); instead of ssh_config's ProxyJump / ProxyCommand; default: those. As with `ssh -J`, a jump host's user, port and identity files come from the spec and its own ssh_config entry, not from the hosts' settings (ssh.identityFile and ssh.passphraseEnv serve a jump host ssh_config names no IdentityFile for); known_hosts, the agent and the timeouts are the same.",
          'deploy@bastion.example.com',
        ),
      ),
    knownHostsFile: z.string().min(1).optional().meta(doc("known_hosts file to verify host keys against, instead of ssh config's UserKnownHostsFile (default ~/.ssh/known_hosts, ~/.ssh/known_hosts2); the system-wide GlobalKnownHostsFile is read too. See docs/HOST-KEYS.md.", '~/.ssh/known_hosts')),
    configFile: z.string().min(1).optional().meta(doc('ssh_config file for Host aliases; default ~/.ssh/config.', '~/.ssh/config')),
    agent: z.union([z.string().min(1), z.literal(false)]).optional().meta(doc('ssh-agent socket path, or false to not use the agent; default: ssh_config IdentityAgent, else $SSH_AUTH_SOCK.', false)),
    connectTimeoutSeconds: f.seconds.default(20).meta(doc('How long to wait for a host to accept the connection.')),
    keepaliveIntervalSeconds: f.seconds.default(10).meta(doc('Keep-alive probes on the connection; a dead link is noticed instead of hanging.')),
    commandTimeoutSeconds: z.number().positive().max(86400).default(600).meta(
      doc("How long one remote step may run (prepare; a user's own command); then the client ends it: TERM to its process group, then KILL."),
    ),
  });
}

function hostSchema(z: Z, f: Fields) {
  return z.strictObject({
    name: f.name.meta(doc('Unique name used by --hosts, in logs and reports.', 'web1')),
    address: z.string().min(1).optional().meta(doc('Host name, IP address or ~/.ssh/config alias; default: the name.', 'web1.uat.internal')),
    port: f.port.optional().meta(doc("This host's SSH port (over ssh.port).", 2222)),
    user: z.string().min(1).optional().meta(doc("This host's login user (over ssh.user).", 'deploy')),
    identityFile: f.identityFile.optional().meta(doc("This host's private key file(s) (over ssh.identityFile).", '~/.ssh/web1_ed25519')),
    passphraseEnv: f.envVarName.optional().meta(doc("This host's identity files' passphrase variable (over ssh.passphraseEnv).", 'WEB1_KEY_PASSPHRASE')),
    proxyJump: f.proxyJump.optional().meta(doc("This host's jump host(s) (over ssh.proxyJump; `none`: reached directly).", 'bastion2')),
    roles: z.array(f.name).min(1).meta(doc('web, app, db, or any name of your own.', ['web', 'app'])),
    primary: z.union([z.boolean(), z.array(f.name)]).optional().meta(doc('Primary for all of its roles (true) or for the roles listed; one primary per role at most.', true)),
    deployTo: f.absolutePath.optional().meta(doc("This host's own deployTo, when it differs from the environment's.", '/srv/site')),
    socketDir: f.absolutePath.optional().meta(doc("This host's own socketDir, when it differs from the environment's.", '/run/switchyard')),
    url: z
      .url({ protocol: /^https?$/, error: 'an http:// or https:// URL' })
      .optional()
      .meta(doc("Where this host's nginx is reached by load tests; default `http://<nginx.listen address, or address ?? name>:<listen port>`.", 'http://10.0.0.5:8080')),
    config: configOverridesSchema().optional().meta(doc('Config overrides for this host only; they win over the environment-level ones.', { 'Web.config': { appSettings: { Node: 'web1' } } })),
  });
}

/** Names the release sets itself (prepare.sh): app.env may not set these, nor any other SWITCHYARD_ name. */
const RESERVED_ENV = 'reserved (switchyard sets SWITCHYARD_RELEASE, SWITCHYARD_SITE, SWITCHYARD_SOCKET)';

/** app.env: name → string or secret(...); no SWITCHYARD_ name, no NUL (no environment variable can hold one). */
function appEnvSchema(z: Z, f: Fields) {
  const value = z.union([z.string(), z.instanceof(Secret, { message: 'expected a secret(...)' })], { message: 'expected a string or secret(...)' });
  return z.record(f.envVarName, value).superRefine((rec, ctx) => {
    for (const [key, v] of Object.entries(rec)) {
      if (key.startsWith('SWITCHYARD_')) ctx.addIssue({ code: 'custom', message: RESERVED_ENV, path: [key], input: key });
      else if (typeof v === 'string' && v.includes('\0')) ctx.addIssue({ code: 'custom', message: 'a NUL byte cannot be in an environment variable', path: [key], input: key });
    }
  });
}

function appSchema(z: Z, f: Fields) {
  const health = z
    .strictObject({
      path: z.string().regex(/^\/[^\s#\p{Cc}]*$/u, 'a path starting with /, without white space, control characters or #').default('/health').meta(doc('Path the health check requests, with the Host header of the site.')),
      timeoutSeconds: z.number().positive().max(86400).multipleOf(0.001).default(30).meta(doc('How long the new release may take to answer the health check; in steps of 0.001 (the script counts milliseconds).')),
      expectStatus: z.number().int().min(100).max(599).default(200).meta(doc('The HTTP status a healthy release answers.')),
    })
    .prefault({})
    .meta(doc('How a started release is checked before anything switches.'));
  return z
    .strictObject({
      start: z
        .array(
          z
            .string()
            .min(1)
            // (the reference shows the last check's words)
            .refine((w) => placeholderTypo(w) === undefined, { error: (i) => (typeof i.input === 'string' ? placeholderTypo(i.input) : undefined) ?? 'a word without a misspelt placeholder' })
            .refine((w) => !w.includes('\0'), 'a non-empty word without a NUL byte'),
        )
        .min(1)
        .meta(doc('argv of the app; `{socket}` is replaced by the socket path it must listen on, `{release}` by the release id (a misspelt one, `{sockte}`, is an error).', ['node', 'server.js', '--socket', '{socket}'])),
      env: appEnvSchema(z, f)
        .default({})
        .meta(
          doc(
            "Extra environment variables for the app: a string, or `secret('NAME')`, resolved on the deploying machine as in `config` (the variable NAME, else the secrets file: docs/CONFIG.md); a missing one stops the deploy before any connection. The values reach the servers on the release's stdin, never on a command line, and every value is masked in logs, dry runs and reports. Names starting with `SWITCHYARD_` are reserved.",
            { NODE_ENV: 'production' },
          ),
        ),
      roles: z.array(f.name).min(1).default(['app']).meta(doc("Roles whose hosts run the app. A selected host with none of them (a db primary) gets each release's files only (unpacked, `current` pointing at them, nothing started), so a hook can run the migrations in them.")),
      startTimeoutSeconds: z.number().positive().max(86400).multipleOf(0.001).default(30).meta(doc('How long the app may take to create its socket; in steps of 0.001 (the script counts milliseconds).')),
      instances: z
        .number()
        .int()
        .min(1)
        .max(16)
        .default(1)
        .meta(
          doc(
            'Processes of the release per host, each on its own socket (`SOCK-<site>`, then `SOCK-<site>@2`, …), for runtimes without a worker pool of their own; nginx gets an upstream of their live socket paths. A deploy or restart starts all of them, switches them and retires the old ones; the supervisor keeps them all up. `SWITCHYARD_INSTANCE` tells each which it is.',
            3,
          ),
        ),
      health,
    })
    .meta(doc('The app: how it starts and how its health is checked.'));
}

function serverSchemas(z: Z, f: Fields) {
  return {
    socket: z
      .strictObject({
        mode: z
          .string()
          .regex(/^0?[0-7]{3}$/, 'an octal mode such as 0660')
          // connecting takes write permission: the deploy user's own health check needs u+w; o+w would let any local user in
          .refine((m) => (parseInt(m, 8) & 0o200) !== 0 && (parseInt(m, 8) & 0o002) === 0, 'an octal mode with owner write and no world write, such as 0660')
          .default('0660')
          .meta(doc("The socket file's mode: the owner (the deploy user, whose health check connects) must be able to write, nobody else in the world may.")),
        group: f.name.optional().meta(doc('Group given to the socket so the nginx workers may connect.', 'www-data')),
      })
      .prefault({})
      .meta(doc('Who may connect to the sockets.')),
    retire: z
      .strictObject({
        graceSeconds: f.seconds
          .default(2)
          .meta(
            doc(
              "Upper bound on the wait between the switch and stopping the old release: retire stops it once its listener's accept queue (`ss`) has been empty for 20 ms, usually some 30 ms after the switch, and waits all of this only where `ss` cannot show that queue (it says so). 0: no wait, the connections still queued are reset. undo waits it in full.",
            ),
          ),
        drainSeconds: f.seconds
          .default(30)
          .meta(doc("Upper bound on the old release's time to finish in-flight requests: from SIGTERM to SIGKILL; with `drain: 'connections'` also, before SIGTERM, until its connections are closed.")),
        drain: z
          .enum(['signal', 'connections'])
          .default('signal')
          .meta(
            doc(
              "How the old release finishes its in-flight requests: `signal`, it drains on SIGTERM itself (examples/hello does); `connections`, for servers that exit at once on SIGTERM (fastcgi-mono-server4): retire waits until every connection it accepted is closed (`ss`, at most drainSeconds), then signals it.",
            ),
          ),
        standbySeconds: z
          .number()
          .int()
          .min(0)
          .max(86400)
          .default(0)
          .meta(
            doc(
              'Keep the previous release running this long after a deploy, on its own socket: a `rollback` within that time is instant, one SSH exec per host (its socket renamed back over the live one, nothing started), and the supervisor switches back to it at once if the new release dies. Then the supervisor (or, without one, the next deploy) retires it. 0: retired at once.',
              300,
            ),
          ),
      })
      .prefault({})
      .meta(doc('How the old release is stopped after the switch.')),
    supervise: z
      .strictObject({
        enabled: z.boolean().default(true).meta(doc("Run a supervisor per site on every app host (no root: a detached bash loop), started by the first release and kept by every deploy: it starts the live release again when its process dies or it fails its health check, the way a deploy does.")),
        intervalMs: z.number().int().min(50).max(60000).default(500).meta(doc("How often it checks that the live release's process runs.")),
        healthEverySeconds: f.seconds.min(0.05).default(5).meta(doc('How often it also checks its health (GET app.health.path on the live socket).')),
        unhealthyChecks: z.number().int().min(1).max(1000).default(3).meta(doc('Failed health checks in a row before it starts the release again.')),
        maxRestarts: z.number().int().min(1).max(1000).default(10).meta(doc('Unstable starts in a row (the release down again within 1 s of its start: a crash loop, each start waiting 100 ms × 1.5 up to 15 s) before it gives up: the site is marked errored (`gulp status`); 30 s up resets the count; the next deploy starts over.')),
      })
      .prefault({})
      .meta(doc('The supervisor that keeps the live release up (`gulp supervise`).')),
    nginx: z
      .strictObject({
        listen: z
          .string()
          .refine((s) => listenProblem(s) === undefined, { error: (i) => (typeof i.input === 'string' ? listenProblem(i.input) : undefined) ?? 'a listen address such as 80 or 127.0.0.1:8080' })
          .default('80')
          .meta(doc('What nginx listens on, as in its `listen` directive.', '127.0.0.1:8080')),
        pass: z
          .enum(['http', 'fastcgi'])
          .default('http')
          .meta(
            doc(
              "How nginx talks to the app: HTTP (proxy_pass) or FastCGI (fastcgi_pass, e.g. fastcgi-mono-server4 or PHP-FPM; SCRIPT_FILENAME and DOCUMENT_ROOT from `<deployTo>/current` resolved per request, so nginx's workers must be able to search deployTo and its releases/). The health check speaks the same protocol: with fastcgi a real FastCGI request with `cgi-fcgi` (Debian: libfcgi-bin), which `setup` checks for.",
            ),
          ),
        fastcgiIndex: z
          .string()
          .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'a file name such as Default.aspx or index.php')
          .default('Default.aspx')
          .meta(doc("With `pass: 'fastcgi'`: the page a path ending in `/` is sent to (`fastcgi_index`); ASP.NET's default document. PHP-FPM: `index.php`.", 'index.php')),
        roles: z.array(f.name).min(1).default(['web']).meta(doc('Roles whose hosts get the nginx config.')),
        private: z.boolean().default(false).meta(doc('Run a private, non-root nginx under `<deployTo>/nginx`, started by `setup`.')),
      })
      .prefault({})
      .meta(doc('The nginx in front of the sockets.')),
  };
}

/** Built on first use: zod costs start-up time that listing tasks or printing help must not pay. */
function buildEnvironmentSchema() {
  const { z } = zod();
  const f = fields(z);
  return z.strictObject({
    site: f.hostname.meta(doc('The public host name nginx sees in the Host header; the live socket is `<socketDir>/SOCK-<site>`.', 'uat.example.com')),
    transport: z.enum(['ssh', 'local']).default('ssh').meta(doc('`ssh`, or `local`: this machine, no SSH (the built-in local default).')),
    build: z.strictObject({ dir: z.string().min(1).meta(doc('Directory whose contents become the release, relative to the project root.', 'dist')) }).meta(doc('What becomes the release.')),
    app: appSchema(z, f),
    hosts: z.array(hostSchema(z, f)).min(1).meta(doc('The servers; adding one is one line.')),
    ssh: sshSchema(z, f)
      .prefault({})
      .meta(
        doc(
          'How every host is reached (a host may set its own port, user, identityFile, passphraseEnv, proxyJump). What is not set here is read from ssh_config (ssh.configFile) as OpenSSH reads it, for the host\'s address as a Host alias and for each jump host: HostName, User, Port, IdentityFile (every one, in order), IdentitiesOnly, IdentityAgent, UserKnownHostsFile, ProxyJump and ProxyCommand (a plain command; %h %p %r %n %%); other keywords are ignored. Identities are offered as OpenSSH offers them: the agent\'s keys first, then the identity files; when all fail, the error lists what was tried. Jump hosts\' keys are verified against the same known_hosts files as the hosts\', and hosts behind one jump host share one connection to it.',
        ),
      ),
    deployTo: f.absolutePath.optional().meta(doc('Where releases live on the servers (absolute); required unless every host sets its own.', '/srv/uat.example.com')),
    socketDir: f.absolutePath.optional().meta(doc("Where the sockets live on the servers (absolute); nginx must be able to reach it. Required unless every host sets its own. `setup` makes it when the deploy user can, and so does the supervisor after a boot emptied it; under /run (a tmpfs) that is root's: have it made at every boot, e.g. the systemd-tmpfiles line `d /run/switchyard 0750 deploy www-data -`.", '/run/switchyard')),
    ...serverSchemas(z, f),
    shared: z.array(f.relativePath).default([]).meta(doc('Paths inside the release that live in `<deployTo>/shared` and survive releases (logs, uploads).', ['logs', 'uploads'])),
    keepReleases: z.number().int().min(2).default(5).meta(doc('Releases kept on each host; older ones are pruned.')),
    parallel: z.number().int().min(1).optional().meta(doc('At most this many hosts worked on at once; default: all.', 10)),
    loadtest: z
      .strictObject({ url: z.url().optional().meta(doc('Send load here instead of to every web host (a load balancer).', 'https://uat.example.com')) })
      .optional()
      .meta(doc('Where `loadtest` and `verify` send their load.')),
    config: configOverridesSchema()
      .optional()
      .meta(doc('Config file overrides for every host, per config file of the build (path relative to the build).', { 'Web.config': { appSettings: { Environment: 'uat' } } })),
  });
}

/** The one schema of an environment file (every key, its type, default and meaning). */
export const environmentSchema = lazy(buildEnvironmentSchema);

type EnvironmentSchema = ReturnType<typeof buildEnvironmentSchema>;
export type EnvironmentInput = z.input<EnvironmentSchema>;
export type EnvironmentConfig = z.output<EnvironmentSchema>;
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

type Def = { type: string; shape?: Record<string, z.core.$ZodType>; element?: z.core.$ZodType; innerType?: z.core.$ZodType; in?: z.core.$ZodType; getter?: () => z.core.$ZodType };
const WRAPPERS = new Set(['optional', 'default', 'prefault', 'readonly', 'nullable', 'nonoptional', 'catch']);

/** What a wrapper wraps: optional, default, prefault, … its inner type, a pipe its input side, a lazy its schema; none for the rest. */
export function wrapped(s: z.core.$ZodType): z.core.$ZodType | undefined {
  const d = s._zod.def as unknown as Def;
  return WRAPPERS.has(d.type) ? d.innerType : d.type === 'pipe' ? d.in : d.type === 'lazy' ? d.getter?.() : undefined;
}

/** The keys the schema's object at this path of the input takes (none where the path leaves objects and lists). */
function keysAt(schema: z.core.$ZodType, path: readonly PropertyKey[]): string[] {
  let s: z.core.$ZodType | undefined = schema;
  for (let i = 0; s; ) {
    const inner = wrapped(s);
    if (inner) {
      s = inner;
      continue;
    }
    const d = s._zod.def as unknown as Def;
    if (i === path.length) return d.type === 'object' ? Object.keys(d.shape!) : [];
    const k = path[i++];
    s = d.type === 'object' ? d.shape![String(k)] : d.type === 'array' && typeof k === 'number' ? d.element : undefined;
  }
  return [];
}

function describeIssue(issue: z.core.$ZodIssue, schema: z.core.$ZodType): string {
  const where = formatPath(issue.path);
  if (issue.code === 'unrecognized_keys') {
    const known = keysAt(schema, issue.path);
    return issue.keys
      .map((k) => {
        const guess = nearest(k, known);
        return `${formatPath([...issue.path, k])}: unknown key${guess ? `; did you mean ${guess}?` : ''}`;
      })
      .join('\n');
  }
  if (issue.code === 'invalid_type' && /received undefined/.test(issue.message)) {
    return `${where}: missing (expected ${issue.expected})`;
  }
  return `${where}: ${issue.message.replace(/^Invalid input: /, '').replace(/^Unrecognized keys?: ("[^"]*"(, "[^"]*")*)/, 'unknown key $1')}`;
}

/** Checks a plain object against the schema and the rules that span fields. Throws one error listing every problem. */
export function validateEnvironment(input: unknown, where: { name: string; file: string; root: string }): Environment {
  const parsed = environmentSchema().safeParse(input);
  if (!parsed.success) {
    const lines = parsed.error.issues.flatMap((i) => describeIssue(i, environmentSchema()).split('\n'));
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
    const longest = `${dir.replace(/\/+$/, '')}/SOCK-${env.site}${env.app.instances > 1 ? `@${env.app.instances}` : ''}-${'x'.repeat(RELEASE_ID_MAX)}`;
    if (Buffer.byteLength(longest) > SOCKET_PATH_MAX) {
      problems.push(
        `${h.socketDir ? `hosts[${i}].socketDir` : 'socketDir'}: "${dir}" is too long: a release socket path (${Buffer.byteLength(longest)} bytes) would exceed the ${SOCKET_PATH_MAX}-byte unix socket limit`,
      );
    }
  });
  if (env.transport === 'local' && env.hosts.length !== 1) problems.push('hosts: the local transport takes exactly one host');
  if (env.app.instances > 1 && env.retire.standbySeconds > 0) problems.push(`retire.standbySeconds: a standby is kept for app.instances 1 only (app.instances is ${env.app.instances})`);
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

