/**
 * A lab of REAL servers for the e2e tests, on loopback, no root needed (and working as root):
 * per host one sshd (own host key, key-only login for the current user) and one private
 * nginx serving lib/nginx/config.ts's config for that host's live socket.
 *
 *   const lab = await startLab({ hosts: 2 });
 *   try { … ssh -F lab.sshConfigFile h1 …; await lab.fetchSite(lab.hosts[0]!) … }
 *   finally { await lab.stop(); }
 *
 * Nothing global is registered: call stop() (safe twice) in afterAll/finally.
 *
 * What a user should know:
 * - Layout: <dir>/<name>/{app (deployTo), s (socketDir), nginx/ (prefix, conf, logs), sshd_config,
 *   sshd.log}; <dir>/{id_ed25519, known_hosts, ssh_config}. Host aliases h1…hN in ssh_config carry
 *   HostName, Port, User, IdentityFile, IdentitiesOnly, UserKnownHostsFile, StrictHostKeyChecking yes
 *   and BatchMode yes. The login user is the current user: root in CI's first pass, an unprivileged
 *   user in its second (.ci/run), where sshd, nginx (no `user` directive, high ports) and the apps
 *   all run as that user and a non-root sshd can log in only its own user, the one it runs as.
 * - stop() takes down each daemon's whole process tree (sshd sessions still open included), then
 *   any process whose cwd is inside the lab dir (apps a test deployed with `nohup setsid`), by pid
 *   and start time, TERM then KILL after 3 s.
 * - If the test process dies without stop(), sshd and nginx get SIGTERM (PR_SET_PDEATHSIG through
 *   setpriv); their open sessions, deployed apps and the dir are then left behind.
 * - Ports are picked free at runtime; a port taken in between is retried with a new one.
 * - nginx: false gives nginxPort 0; url() and fetchSite() then throw. nginxPass: 'fastcgi' serves
 *   the generated FastCGI block (document root <deployTo>/current) instead of the HTTP one.
 * - certificates: host i's key is signed as `certificates[i]` says (by the lab CA <dir>/ca, or by
 *   another CA <dir>/other_ca) and its sshd serves the certificate (HostCertificate); null leaves
 *   host i unsigned. lab.caPublicKey is then the lab CA's public key, for `@cert-authority` lines.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { existsSync, openSync, closeSync, readFileSync, readdirSync, readlinkSync, realpathSync } from 'node:fs';
import fs from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { nginxMainConfig, nginxServerBlock, validateSiteName } from '../../lib/nginx/config';
import { startDelayProxy, type DelayProxy } from './delay-proxy';

const execFileP = promisify(execFile);

export interface LabHost {
  /** Also the Host alias in sshConfigFile: h1, h2, … */
  name: string;
  address: '127.0.0.1';
  sshPort: number;
  /** <dir>/<name>: everything of this host lives here. */
  root: string;
  deployTo: string;
  socketDir: string;
  /** 0 when the lab was started with nginx: false. */
  nginxPort: number;
  /** <socketDir>/SOCK-<site>: what this host's nginx connects to. */
  liveSocket: string;
  /** "ssh-ed25519 AAAA…": the public half of its sshd's host key. */
  hostKey: string;
}

/** How a host's key is signed: `ssh-keygen -s <ca> -h -I <name> -n <principals> [-V <validity>]`. */
export interface LabCertificate {
  /** default 'lab' */
  ca?: 'lab' | 'other';
  /** default ['127.0.0.1', '<name>.lab.test'] */
  principals?: string[];
  /** ssh-keygen -V, e.g. '20200101:20200102' (expired); default forever */
  validity?: string;
}

/** The lab's jump host (startLab({ bastion: true })): an sshd only, no nginx, no app. */
export interface LabBastion {
  /** Also its Host alias in sshConfigFile. */
  name: 'bastion';
  address: '127.0.0.1';
  sshPort: number;
  root: string;
  /** Its sshd's log, at LogLevel VERBOSE: each forwarded connection is a line. */
  logFile: string;
  /** Its line in knownHostsFile, so a test can write a known_hosts without it. */
  knownHostsLine: string;
}

export interface Lab {
  dir: string;
  /** The login user on every host: the user running the tests. */
  user: string;
  identityFile: string;
  /** The public keys every host (and the bastion) accepts: append a line to authorize another key. */
  authorizedKeysFile: string;
  bastion?: LabBastion;
  knownHostsFile: string;
  sshConfigFile: string;
  site: string;
  hosts: LabHost[];
  /** "ssh-ed25519 AAAA…" of the lab CA, when started with certificates; else undefined. */
  caPublicKey?: string;
  /** http://127.0.0.1:<nginxPort><path> */
  url(host: LabHost, path?: string): string;
  /** GET through the host's nginx with `Host: <site>`; one connection per request. */
  fetchSite(host: LabHost, path?: string): Promise<{ status: number; body: string }>;
  /**
   * A port that forwards to the host's sshd with oneWayDelayMs each way. known_hosts gets an
   * entry for `[127.0.0.1]:<port>` with the host's key, so strict checking works through it.
   */
  addDelayProxy(host: LabHost, oneWayDelayMs: number): Promise<number>;
  /**
   * Sets variables in every session of the host's sshd, besides SHLVL=1 (its one `SetEnv` line:
   * sshd reads only the first), and has sshd read its config again (SIGHUP: sshd re-executes
   * itself, same pid); resolves once it answers again.
   */
  setSshdEnv(host: LabHost, vars: Record<string, string>): Promise<void>;
  /** Has the host's nginx serve `site` instead of the lab's (same socket), and reloads it. */
  configureNginxSite(host: LabHost, site: string): Promise<void>;
  /** Stops every process the lab started (and what runs under them or in the lab dir), removes dir. */
  stop(): Promise<void>;
}

export interface StartLabOptions {
  hosts: number;
  /** default 'app.test' */
  site?: string;
  /** default true */
  nginx?: boolean;
  /** app.instances of the sites the lab's nginx serves: an upstream of that many live sockets. Default 1. */
  instances?: number;
  /** Per host index: how its host key is signed (null: not at all). Default: no CA, no certificates. */
  certificates?: (LabCertificate | null)[];
  /**
   * A jump host in front of the hosts: they then log in only connections made by the bastion's
   * sshd (gate.sh, above), so a direct connection is refused at authentication; ssh_config's host
   * entries say `ProxyJump bastion`. Default false.
   */
  bastion?: boolean;
  /**
   * When the tests run as root: the user nginx's workers run as, whose group has its name (`daemon`),
   * so that file modes stop them as they stop www-data on a server (root's workers pass any mode).
   * The lab dir is then 0711, for them to get through to the sockets. Ignored for any other user.
   */
  nginxUser?: string;
  /**
   * How each host's nginx talks to the app: 'fastcgi' serves the generated FastCGI block
   * (lib/nginx/config.ts), its document root the host's `<deployTo>/current`. Default 'http'.
   */
  nginxPass?: 'http' | 'fastcgi';
}

// The longest socket name the deploy makes: SOCK-<site>-<release id>.
const SAMPLE_RELEASE = '20261123T154219.123Z-abcdef1';
const MAX_SOCKET_PATH_BYTES = 107;
const START_TIMEOUT_MS = 15_000;
const STOP_GRACE_MS = 3_000;

const SSHD = '/usr/sbin/sshd'; // sshd insists on an absolute path (it re-execs itself)
const NGINX = ['/usr/sbin/nginx', '/usr/local/sbin/nginx', '/usr/local/nginx/sbin/nginx'].find((p) => existsSync(p)) ?? 'nginx';
// util-linux (Essential on Debian): `setpriv --pdeathsig TERM -- cmd` execs cmd (same pid) with
// PR_SET_PDEATHSIG, so sshd and nginx get SIGTERM when the test process dies without stop()
// (a killed vitest worker) instead of leaking. Nothing is registered in this process for that.
const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/* ------------------------------------------------------------------ processes by pid */

/** "PID STARTTIME" identity: a pid alone may be reused. null when gone (or a zombie). */
function procStart(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // f[0] = field 3 (state)
    if (f[0] === 'Z' || f[0] === 'X') return null;
    return f[19] ?? null; // field 22
  } catch {
    return null;
  }
}

/** All live processes as pid → ppid. */
function processTable(): Map<number, number> {
  const table = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (f[0] === 'Z' || f[0] === 'X') continue;
      table.set(Number(entry), Number(f[1]));
    } catch {
      /* gone meanwhile */
    }
  }
  return table;
}

function descendants(pid: number, table = processTable()): number[] {
  const out: number[] = [];
  const walk = (p: number) => {
    for (const [child, parent] of table) {
      if (parent === p && !out.includes(child)) {
        out.push(child);
        walk(child);
      }
    }
  };
  walk(pid);
  return out;
}

/** Processes whose working directory is inside dir (apps a test deployed into the lab). */
function processesWithCwdUnder(dir: string): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const cwd = readlinkSync(`/proc/${entry}/cwd`).replace(/ \(deleted\)$/, '');
      if (cwd === dir || cwd.startsWith(dir + '/')) out.push(Number(entry));
    } catch {
      /* gone, or not ours to inspect */
    }
  }
  return out;
}

type Tracked = { pid: number; start: string };

function track(pids: number[]): Tracked[] {
  return pids.flatMap((pid) => {
    const start = procStart(pid);
    return start === null ? [] : [{ pid, start }];
  });
}

const alive = (t: Tracked) => procStart(t.pid) === t.start;

function signal(t: Tracked, sig: NodeJS.Signals): void {
  if (!alive(t)) return;
  try {
    process.kill(t.pid, sig);
  } catch {
    /* exited meanwhile */
  }
}

/** SIGTERM, wait up to graceMs, SIGKILL what is left, wait until every one is gone. */
async function terminate(procs: Tracked[], graceMs = STOP_GRACE_MS): Promise<void> {
  for (const t of procs) signal(t, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (procs.some(alive) && Date.now() < deadline) await sleep(20);
  for (const t of procs) signal(t, 'SIGKILL');
  const hard = Date.now() + 5_000;
  while (procs.some(alive)) {
    if (Date.now() > hard) {
      throw new Error(`lab: processes did not exit: ${procs.filter(alive).map((t) => t.pid).join(' ')}`);
    }
    await sleep(20);
  }
}

/** A process tree rooted at one of our children: the root and everything under it now. */
async function terminateTree(child: ChildProcess): Promise<void> {
  if (child.pid === undefined) return;
  await terminate(track([child.pid, ...descendants(child.pid)]));
}

/* ------------------------------------------------------------------ ports */

function freePort(taken: Set<number>): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => {
        if (address === null || typeof address === 'string') return reject(new Error('lab: no port'));
        if (taken.has(address.port)) return resolve(freePort(taken));
        taken.add(address.port);
        resolve(address.port);
      });
    });
  });
}

/** Resolves with the first bytes the server sends (an SSH banner), or rejects. */
function readGreeting(port: number, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let data = '';
    const done = (err: Error | null) => {
      socket.destroy();
      clearTimeout(timer);
      if (err) reject(err);
      else resolve(data);
    };
    const timer = setTimeout(() => done(new Error('no greeting')), timeoutMs);
    socket.on('data', (chunk) => {
      data += chunk.toString('latin1');
      if (data.includes('\n')) done(null);
    });
    socket.on('error', done);
    socket.on('close', () => done(new Error('closed before greeting')));
  });
}

function httpGet(port: number, urlPath: string, host: string, timeoutMs = 10_000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, path: urlPath, method: 'GET', headers: { Host: host }, agent: false, timeout: timeoutMs },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`GET ${urlPath} on port ${port}: timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/* ------------------------------------------------------------------ daemons */

class StartFailure extends Error {
  constructor(
    message: string,
    readonly portInUse: boolean,
  ) {
    super(message);
  }
}

/**
 * Spawns a daemon in the foreground with stdout+stderr going to logFile, and waits until
 * it wrote pidFile with its own pid (both sshd and nginx do that only after binding) and
 * ready() resolves. A child that exits first fails with its log.
 */
async function startDaemon(o: {
  what: string;
  command: string;
  args: string[];
  logFile: string;
  pidFile: string;
  ready: () => Promise<unknown>;
  onSpawn: (child: ChildProcess) => void;
}): Promise<ChildProcess> {
  const fd = openSync(o.logFile, 'a');
  let child: ChildProcess;
  try {
    child = SETPRIV
      ? spawn(SETPRIV, ['--pdeathsig', 'TERM', '--', o.command, ...o.args], { stdio: ['ignore', fd, fd] })
      : spawn(o.command, o.args, { stdio: ['ignore', fd, fd] });
  } finally {
    closeSync(fd);
  }
  o.onSpawn(child);
  let exited: string | null = null;
  let spawnError: Error | null = null;
  child.once('exit', (code, sig) => (exited = sig ?? `code ${code}`));
  child.once('error', (err) => {
    spawnError = err;
    exited = 'spawn error';
  });

  const log = () => {
    try {
      return readFileSync(o.logFile, 'utf8').trim().split('\n').slice(-10).join('\n');
    } catch {
      return '';
    }
  };
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (exited !== null) {
      const text = log();
      throw new StartFailure(
        `lab: ${o.what} exited during start (${exited})${spawnError ? `: ${String(spawnError)}` : ''}\n${text}`,
        /Address already in use/.test(text),
      );
    }
    let pidOk = false;
    try {
      pidOk = Number(readFileSync(o.pidFile, 'utf8').trim()) === child.pid;
    } catch {
      /* not yet */
    }
    if (pidOk) {
      try {
        await o.ready();
        return child;
      } catch {
        /* not yet */
      }
    }
    if (Date.now() > deadline) {
      throw new StartFailure(`lab: ${o.what} not ready after ${START_TIMEOUT_MS} ms\n${log()}`, false);
    }
    await sleep(20);
  }
}

/** Retries with a fresh port when another process took the one we picked meanwhile. */
async function withFreshPort<T>(taken: Set<number>, start: (port: number) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort(taken);
    try {
      return await start(port);
    } catch (err) {
      if (!(err instanceof StartFailure && err.portInUse) || attempt >= 5) throw err;
    }
  }
}

/**
 * The AuthorizedKeysCommand of a host behind the bastion: the lab's authorized keys when the
 * client end of the connection is a socket of the bastion's sshd or one of its children, nothing
 * otherwise (a direct connection). sshd runs it from the connection's own sshd process ($PPID),
 * which holds the server end: its peer port names the client end (ss -p shows who holds it).
 */
function gateScript(bastionPidFile: string, authorizedKeys: string): string {
  return [
    '#!/bin/sh',
    '# Usage: gate.sh SSHD_PORT (run by sshd as AuthorizedKeysCommand)',
    '# Exit codes: 0 always (no keys printed: the connection is refused).',
    'set -eu',
    'PATH=/usr/sbin:/usr/bin:/sbin:/bin',
    `bastion=$(cat '${bastionPidFile}' 2>/dev/null || true)`,
    '[ -n "$bastion" ] || exit 0',
    '# the server end: held by our parent; its peer is the client end',
    'peer=$(ss -Htnp state established "( sport = :$1 )" | grep -F "pid=$PPID," | awk \'{ n = split($4, a, ":"); print a[n] }\' | head -n 1)',
    '[ -n "$peer" ] || exit 0',
    'pid=$(ss -Htnp state established "( sport = :$peer and dport = :$1 )" | sed -n "s/.*pid=\\([0-9]*\\).*/\\1/p" | head -n 1)',
    'while [ -n "$pid" ] && [ "$pid" -gt 1 ]; do',
    `  if [ "$pid" = "$bastion" ]; then cat '${authorizedKeys}'; exit 0; fi`,
    '  stat=$(cat "/proc/$pid/stat" 2>/dev/null) || exit 0',
    '  rest=${stat##*) }',
    '  # shellcheck disable=SC2086 # the fields after the command name: state, ppid, …',
    '  set -- $rest',
    '  pid=$2',
    'done',
    'exit 0',
    '',
  ].join('\n');
}

async function keygen(file: string, comment: string): Promise<string> {
  await execFileP('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', file]);
  const [type, key] = (await fs.readFile(`${file}.pub`, 'utf8')).trim().split(/\s+/);
  if (type !== 'ssh-ed25519' || !key) throw new Error(`lab: unexpected public key in ${file}.pub`);
  return `${type} ${key}`;
}

/** Signs <keyFile>.pub as a host key (writes <keyFile>-cert.pub) and returns that path. */
async function signHostKey(caFile: string, keyFile: string, name: string, c: LabCertificate): Promise<string> {
  const principals = c.principals ?? ['127.0.0.1', `${name}.lab.test`];
  const validity = c.validity ? ['-V', c.validity] : [];
  await execFileP('ssh-keygen', ['-q', '-s', caFile, '-h', '-I', `lab-${name}`, '-n', principals.join(','), ...validity, `${keyFile}.pub`]);
  return `${keyFile}-cert.pub`;
}

/* ------------------------------------------------------------------ the lab */

async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  let failed: unknown = null;
  const worker = async () => {
    while (next < items.length && failed === null) {
      const i = next++;
      try {
        results[i] = await fn(items[i]!);
      } catch (err) {
        failed ??= err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failed !== null) throw failed;
  return results;
}

export async function startLab(o: StartLabOptions): Promise<Lab> {
  if (!Number.isInteger(o.hosts) || o.hosts < 1 || o.hosts > 64) {
    throw new Error(`startLab: hosts must be an integer from 1 to 64, got ${o.hosts}`);
  }
  const site = validateSiteName(o.site ?? 'app.test');
  const withNginx = o.nginx ?? true;
  const info = os.userInfo();
  const isRoot = info.uid === 0;

  // Short: release socket paths must stay under the unix socket limit.
  const dir = realpathSync(await fs.mkdtemp(path.join(os.tmpdir(), 'syl-')));
  const children: ChildProcess[] = [];
  const proxies: DelayProxy[] = [];
  let stopping: Promise<void> | undefined;

  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      const errors: unknown[] = [];
      const attempt = async (p: Promise<unknown>) => {
        try {
          await p;
        } catch (err) {
          errors.push(err);
        }
      };
      await Promise.all(proxies.map((p) => attempt(p.stop())));
      // sshd's listener leaves its session processes running when it gets SIGTERM: each
      // tree (listener, sessions, shells; nginx master and workers) is taken down at once.
      await Promise.all(children.map((c) => attempt(terminateTree(c))));
      // Whatever a test started in the lab and detached (nohup setsid app &) runs in a
      // release directory under dir. Looked for again until none is left: a site's supervisor
      // that saw its app stopped may have started it again before it was stopped itself.
      for (let round = 0; round < 5; round++) {
        const left = track(processesWithCwdUnder(dir));
        if (!left.length) break;
        await attempt(terminate(left));
      }
      await attempt(fs.rm(dir, { recursive: true, force: true, maxRetries: 5 }));
      if (errors.length > 0) throw new AggregateError(errors, `lab.stop: ${errors.map(String).join('; ')}`);
    })();
    return stopping;
  };

  try {
    const longest = Buffer.byteLength(`${dir}/h${o.hosts}/s/SOCK-${site}-${SAMPLE_RELEASE}`);
    if (longest > MAX_SOCKET_PATH_BYTES) {
      throw new Error(
        `startLab: release socket paths would be ${longest} bytes (limit ${MAX_SOCKET_PATH_BYTES}); ` +
          `use a shorter TMPDIR than ${os.tmpdir()} or a shorter site name`,
      );
    }
    if (isRoot && !existsSync('/run/sshd')) {
      // sshd's privilege separation directory, needed when sshd runs as root.
      await fs.mkdir('/run/sshd', { recursive: true, mode: 0o755 });
    }

    const identityFile = path.join(dir, 'id_ed25519');
    const authorizedKeys = path.join(dir, 'authorized_keys');
    const knownHostsFile = path.join(dir, 'known_hosts');
    const sshConfigFile = path.join(dir, 'ssh_config');
    const clientKey = await keygen(identityFile, 'switchyard-lab-client');
    await fs.writeFile(authorizedKeys, clientKey + '\n', { mode: 0o600 });

    const taken = new Set<number>();
    const hostKeys = new Map<string, string>();
    const caFiles = { lab: path.join(dir, 'ca'), other: path.join(dir, 'other_ca') };
    const caPublicKey = o.certificates ? await keygen(caFiles.lab, 'switchyard-lab-ca') : undefined;
    if (o.certificates?.some((c) => c?.ca === 'other')) await keygen(caFiles.other, 'switchyard-lab-other-ca');
    type Daemons = { sshdConfig: string; sshd: ChildProcess; nginx?: { args: string[]; conf: string; mainConfig: (site: string) => string } };
    const daemons = new Map<string, Daemons>();
    const nginxUser = isRoot ? o.nginxUser : undefined;
    if (nginxUser) await fs.chmod(dir, 0o711);

    /** One sshd under root, named name, logging in the lab user by `auth` (sshd_config lines). */
    const startSshd = async (name: string, root: string, auth: (port: number) => string[], cert?: LabCertificate | null): Promise<number> => {
      const hostKeyFile = path.join(root, 'ssh_host_ed25519_key');
      hostKeys.set(name, await keygen(hostKeyFile, `switchyard-lab-${name}`));
      const hostCertificate = cert ? [`HostCertificate ${await signHostKey(caFiles[cert.ca ?? 'lab'], hostKeyFile, name, cert)}`] : [];
      const sshdConfig = path.join(root, 'sshd_config');
      const sshdPid = path.join(root, 'sshd.pid');
      return withFreshPort(taken, async (port) => {
        await fs.writeFile(
          sshdConfig,
          [
            `# switchyard lab host ${name}`,
            `Port ${port}`,
            `ListenAddress 127.0.0.1`,
            `HostKey ${hostKeyFile}`,
            ...hostCertificate,
            `PidFile ${sshdPid}`,
            ...auth(port),
            `AllowUsers ${info.username}`,
            `PubkeyAuthentication yes`,
            `PasswordAuthentication no`,
            `KbdInteractiveAuthentication no`,
            `PermitRootLogin prohibit-password`,
            `StrictModes no`,
            `UsePAM no`,
            `MaxSessions 20`,
            `MaxStartups 100`,
            `LogLevel ${name === 'bastion' ? 'VERBOSE' : 'ERROR'}`,
            `PrintMotd no`,
            `X11Forwarding no`,
            `Subsystem sftp internal-sftp`,
            // bash sources ~/.bashrc when run by sshd at shell level 1; the test user's bashrc is
            // this machine's business, not the lab's (here it runs pyenv init: ~1 s per exec).
            `SetEnv SHLVL=1`,
            ``,
          ].join('\n'),
        );
        // sshd re-executes itself on SIGHUP (configureSshd): the same pid, so the same child
        const sshd = await startDaemon({
          what: `sshd ${name} (port ${port})`,
          command: SSHD,
          args: ['-D', '-e', '-f', sshdConfig],
          logFile: path.join(root, 'sshd.log'),
          pidFile: sshdPid,
          ready: async () => {
            const greeting = await readGreeting(port, 2_000);
            if (!greeting.startsWith('SSH-2.0-')) throw new Error(`not an SSH banner: ${greeting}`);
          },
          onSpawn: (c) => children.push(c),
        });
        daemons.set(name, { sshdConfig, sshd });
        return port;
      });
    };

    const ownAuth = [`AuthorizedKeysFile ${authorizedKeys}`];
    // Behind the bastion: sshd asks gate.sh for the keys, and gate.sh gives them only when the
    // client end of the TCP connection belongs to a process of the bastion's sshd. /bin/sh is
    // the command: sshd wants a root-owned program.
    const gate = path.join(dir, 'gate.sh');
    const gatedAuth = (port: number) => [`AuthorizedKeysFile none`, `AuthorizedKeysCommand /bin/sh ${gate} ${port}`, `AuthorizedKeysCommandUser ${info.username}`];
    if (o.bastion) await fs.writeFile(gate, gateScript(path.join(dir, 'bastion', 'sshd.pid'), authorizedKeys), { mode: 0o755 });

    const startHost = async (index: number): Promise<LabHost> => {
      const name = `h${index + 1}`;
      const root = path.join(dir, name);
      const deployTo = path.join(root, 'app');
      const socketDir = path.join(root, 's');
      const prefix = path.join(root, 'nginx');
      await fs.mkdir(deployTo, { recursive: true });
      await fs.mkdir(socketDir, { recursive: true });
      const liveSocket = path.join(socketDir, `SOCK-${site}`);

      const sshPort = await startSshd(name, root, o.bastion ? gatedAuth : () => ownAuth, o.certificates?.[index]);

      let nginxPort = 0;
      if (withNginx) {
        await fs.mkdir(prefix, { recursive: true });
        const conf = path.join(prefix, 'nginx.conf');
        const pidFile = path.join(prefix, 'nginx.pid');
        const errorLog = path.join(prefix, 'error.log');
        nginxPort = await withFreshPort(taken, async (port) => {
          const mainConfig = (forSite: string) =>
            nginxMainConfig({
              prefix,
              pidFile,
              errorLog,
              // A root master would start its workers as "nobody", who cannot reach the sockets.
              user: isRoot ? (nginxUser ?? 'root') : undefined,
              serverBlocks: [
                nginxServerBlock({
                  site: forSite,
                  socketPath: liveSocket,
                  listen: `127.0.0.1:${port}`,
                  instances: o.instances ?? 1,
                  ...(o.nginxPass === 'fastcgi' ? { pass: 'fastcgi' as const, documentRoot: path.join(deployTo, 'current') } : {}),
                }),
              ],
            });
          await fs.writeFile(conf, mainConfig(site));
          const args = ['-p', prefix, '-e', errorLog, '-c', conf];
          daemons.get(name)!.nginx = { args, conf, mainConfig };
          await startDaemon({
            what: `nginx ${name} (port ${port})`,
            command: NGINX,
            args: [...args, '-g', 'daemon off;'],
            logFile: path.join(prefix, 'stderr.log'),
            pidFile,
            // Any HTTP answer will do (421: an unknown host).
            ready: () => httpGet(port, '/', 'lab-probe.invalid', 2_000),
            onSpawn: (c) => children.push(c),
          });
          return port;
        });
      }
      return { name, address: '127.0.0.1', sshPort, root, deployTo, socketDir, nginxPort, liveSocket, hostKey: hostKeys.get(name)! };
    };

    const startBastion = async (): Promise<LabBastion> => {
      const root = path.join(dir, 'bastion');
      await fs.mkdir(root, { recursive: true });
      const sshPort = await startSshd('bastion', root, () => [...ownAuth, 'AllowTcpForwarding yes']);
      return { name: 'bastion', address: '127.0.0.1', sshPort, root, logFile: path.join(root, 'sshd.log'), knownHostsLine: '' };
    };
    const [bastion, ...hosts] = await Promise.all([
      o.bastion ? startBastion() : undefined,
      ...(await mapLimit(
        Array.from({ length: o.hosts }, (_, i) => i),
        8,
        startHost,
      )),
    ]) as [LabBastion | undefined, ...LabHost[]];

    const knownHostLine = (port: number, key: string) => `[127.0.0.1]:${port} ${key}\n`;
    if (bastion) bastion.knownHostsLine = knownHostLine(bastion.sshPort, hostKeys.get('bastion')!);
    await fs.writeFile(knownHostsFile, hosts.map((h) => knownHostLine(h.sshPort, hostKeys.get(h.name)!)).join('') + (bastion?.knownHostsLine ?? ''));
    const entry = (name: string, port: number, extra: string[] = []) =>
      [
        `Host ${name}`,
        `  HostName 127.0.0.1`,
        `  Port ${port}`,
        `  User ${info.username}`,
        `  IdentityFile ${identityFile}`,
        `  IdentitiesOnly yes`,
        `  UserKnownHostsFile ${knownHostsFile}`,
        `  StrictHostKeyChecking yes`,
        `  BatchMode yes`,
        ...extra,
        ``,
      ].join('\n');
    await fs.writeFile(
      sshConfigFile,
      [...(bastion ? [entry('bastion', bastion.sshPort)] : []), ...hosts.map((h) => entry(h.name, h.sshPort, bastion ? ['  ProxyJump bastion'] : []))].join('\n'),
    );

    const requireNginx = (host: LabHost) => {
      if (host.nginxPort === 0) throw new Error('lab: started with nginx: false');
      return host.nginxPort;
    };
    const checkPath = (p: string) => {
      if (!p.startsWith('/')) throw new Error(`lab: path must start with "/": ${p}`);
      return p;
    };

    return {
      dir,
      user: info.username,
      identityFile,
      authorizedKeysFile: authorizedKeys,
      ...(bastion ? { bastion } : {}),
      knownHostsFile,
      sshConfigFile,
      site,
      hosts,
      ...(caPublicKey ? { caPublicKey } : {}),
      url: (host, p = '/') => `http://127.0.0.1:${requireNginx(host)}${checkPath(p)}`,
      fetchSite: (host, p = '/') => httpGet(requireNginx(host), checkPath(p), site),
      async setSshdEnv(host, vars) {
        const d = daemons.get(host.name)!;
        const words = Object.entries(vars).map(([k, v]) => {
          if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k) || /[\s"'\\]/.test(v)) throw new Error(`lab: cannot SetEnv ${k}=${v}`);
          return `${k}=${v}`;
        });
        const text = await fs.readFile(d.sshdConfig, 'utf8');
        await fs.writeFile(d.sshdConfig, text.replace(/^SetEnv SHLVL=1.*$/m, ['SetEnv SHLVL=1', ...words].join(' ')));
        d.sshd.kill('SIGHUP');
        await sleep(100); // until the old listener is closed: the new one answers below
        const deadline = Date.now() + START_TIMEOUT_MS;
        for (;;) {
          const greeting = await readGreeting(host.sshPort, 1_000).catch(() => '');
          if (greeting.startsWith('SSH-2.0-')) return;
          if (Date.now() > deadline) throw new Error(`lab: sshd ${host.name} did not come back after SIGHUP`);
          await sleep(50);
        }
      },
      async configureNginxSite(host, other) {
        const n = daemons.get(host.name)?.nginx;
        if (!n) throw new Error('lab: started with nginx: false');
        await fs.writeFile(n.conf, n.mainConfig(validateSiteName(other)));
        await execFileP(NGINX, [...n.args, '-s', 'reload']);
        // the reload is done once the new workers answer: the lab's site is then a stranger (421)
        const deadline = Date.now() + START_TIMEOUT_MS;
        while ((await httpGet(host.nginxPort, '/', site, 2_000).catch(() => ({ status: 0 }))).status !== 421) {
          if (Date.now() > deadline) throw new Error(`lab: nginx ${host.name} did not reload`);
          await sleep(50);
        }
      },
      async addDelayProxy(host, oneWayDelayMs) {
        if (stopping) throw new Error('lab: stopped');
        const proxy = await startDelayProxy({ targetPort: host.sshPort, oneWayDelayMs });
        proxies.push(proxy);
        await fs.appendFile(knownHostsFile, knownHostLine(proxy.port, hostKeys.get(host.name)!));
        return proxy.port;
      },
      stop,
    };
  } catch (err) {
    await stop().catch(() => {});
    throw err;
  }
}
