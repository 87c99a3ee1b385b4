// `gulp doctor` (Capistrano's `cap doctor`): per host, what a deploy depends on, changing nothing:
// how the host is reached, the tools the scripts run, the login shell's start-up time, whether
// nginx's workers can reach the live socket and whether nginx routes the site's Host to it. One
// read-only exec per host (doctor.sh); a host that cannot be reached is reported and the others
// are still examined. judgeHost turns what doctor.sh printed into checks: pure, tested as such.
import { doctorCommand } from '../remote/commands';
import { appHosts, contextFor, withSession, type TaskOptions } from '../context';
import { forHost, type Environment, type HostConfig } from '../environment';
import { hasRole } from '../environment/hosts';
import { liveSocket } from '../nginx/site';
import { parseListen } from '../load/targets';
import type { ResultLine } from '../remote/protocol';
import type { Session } from '../remote/session';
import { reachOf, type Reach } from './reach';

/** Above this, the login shell's start-up is reported as a problem: every SSH command pays it. */
export const SLOW_SHELL_MS = 200;

export type CheckName = 'reach' | 'tools' | 'shell' | 'setup' | 'socket-dir' | 'socket' | 'health' | 'nginx';

export interface DoctorCheck {
  check: CheckName;
  /** 'skipped': not applicable, or not possible yet (nothing live), with the reason. */
  status: 'ok' | 'problem' | 'skipped';
  message: string;
}

export interface HostDoctor {
  host: string;
  ok: boolean;
  reach: Reach;
  checks: DoctorCheck[];
}

export interface DoctorReport {
  ok: boolean;
  hosts: HostDoctor[];
}

export interface DoctorOptions extends TaskOptions {
  /** Print JSON (one document for every host) instead of the ✓/✗ lines. */
  json?: boolean;
}

/**
 * Where the host's nginx answers, seen from the host itself: hosts[].url when given, else
 * nginx.listen (a wildcard is this host's loopback). Only for hosts with an nginx role.
 */
export function nginxUrlOnHost(env: Environment, h: HostConfig): string | undefined {
  if (!hasRole(h, env.nginx.roles)) return undefined;
  if (h.url) return new URL(h.url).origin;
  const l = parseListen(env.nginx.listen);
  const address = l.address ?? '127.0.0.1';
  return `http://${address.includes(':') ? `[${address}]` : address}:${l.port}`;
}

const ok = (check: CheckName, message: string): DoctorCheck => ({ check, status: 'ok', message });
const problem = (check: CheckName, message: string): DoctorCheck => ({ check, status: 'problem', message });
const skipped = (check: CheckName, message: string): DoctorCheck => ({ check, status: 'skipped', message });

export function describeReach(r: Reach): DoctorCheck {
  if (r.via === 'local') return r.ok ? ok('reach', 'this machine (transport local): no SSH') : problem('reach', r.error ?? 'cannot run commands');
  const where = `${r.user}@${r.hostname}${r.address && r.address !== r.hostname ? ` (${r.address})` : ''} port ${r.port}, jump ${r.jump.length ? r.jump.join(' -> ') : 'none'}, identity ${r.identity}`;
  if (r.ok) return ok('reach', `reached ${where}, host key ${r.hostKeyDetail ?? r.hostKey}`);
  // a refused host key: its status here, its fingerprint and the command that fixes it in the transport's words
  const why = r.failure === 'host key' ? `host key ${r.failedJump ? r.jumpHostKey : r.hostKey}` : r.failure;
  const at = r.failedJump ? `jump host ${r.failedJump}: ` : '';
  return problem('reach', `cannot reach ${where}: ${at}${why}${r.error ? `: ${r.error}` : ''}`);
}

function events(lines: ResultLine[], event: string): Record<string, string>[] {
  return lines.filter((l) => l.event === event).map((l) => l.fields);
}

function toolsCheck(lines: ResultLine[]): DoctorCheck {
  const tools = events(lines, 'check');
  if (!tools.length) return problem('tools', 'doctor.sh listed no tools');
  const missing = tools.filter((t) => t.ok !== 'yes').map((t) => t.tool);
  const versions = [...tools.filter((t) => t.version), ...events(lines, 'version')].map((t) => `${t.tool} ${t.version}`);
  if (missing.length) return problem('tools', `missing tools: ${missing.join(' ')} (the scripts need them; tar must be GNU tar, find GNU findutils)`);
  return ok('tools', `all ${tools.length} tools the scripts need (${versions.join(', ')})`);
}

function shellCheck(lines: ResultLine[]): DoctorCheck {
  const s = events(lines, 'shell')[0];
  const login = Number(s?.login_ms);
  if (!s || !Number.isFinite(login)) return skipped('shell', 'the login shell start-up time could not be measured');
  const script = Number(s.script_ms);
  const also = Number.isFinite(script) ? `; then bash -c of a script: ${script} ms` : '';
  const text = `login shell ${s.shell} starts in ${login} ms${also}`;
  if (login <= SLOW_SHELL_MS && !(script > SLOW_SHELL_MS)) return ok('shell', text);
  return problem(
    'shell',
    `${text}: over ${SLOW_SHELL_MS} ms, paid by every SSH command. Look at what the deploy user's shell reads when sshd runs a command ` +
      `(~/.bashrc, which bash reads for sshd; BASH_ENV, which every non-interactive bash reads)`,
  );
}

function setupCheck(env: Environment, lines: ResultLine[]): DoctorCheck {
  const l = events(lines, 'layout')[0];
  if (l?.set_up !== 'yes') return problem('setup', `${env.deployTo}/releases is missing: run gulp setup`);
  return ok('setup', `set up in ${env.deployTo}, live release ${l.live ?? 'none'}`);
}

const octal = (m: string | undefined) => (m === undefined ? NaN : parseInt(m, 8));
const mode4 = (m: string | undefined) => (m ?? '?').padStart(4, '0');

function reachLine(sd: string, r: Record<string, string>): DoctorCheck {
  const who = r.who === 'none' ? '' : r.who!.replace(/^user:/, 'nginx worker user ').replace(/^group:/, 'the socket group ');
  if (r.who === 'none') return skipped('socket-dir', 'no nginx worker process found on the host (is nginx running?): who must reach the socket is not known');
  if (r.found === 'missing') return problem('socket-dir', `${who} does not exist on the host (socket.group)`);
  if (r.traverse !== 'yes') return problem('socket-dir', `${who} cannot reach ${sd}: no search (x) permission on ${r.blocked} (mode ${mode4(r.blocked_mode)} ${r.blocked_owner})`);
  if (r.connect === 'no') return problem('socket-dir', `${who} cannot connect to the live socket in ${sd}: connecting takes write permission on it (socket.mode, socket.group)`);
  return ok('socket-dir', `${who} can reach ${sd}${r.connect === 'yes' ? ' and connect to the live socket' : ''}`);
}

function socketChecks(env: Environment, lines: ResultLine[]): DoctorCheck[] {
  const dir = events(lines, 'socketdir')[0];
  if (dir?.present !== 'yes') return [problem('socket-dir', `socketDir ${env.socketDir} is missing: run gulp setup`)];
  const out: DoctorCheck[] = events(lines, 'reach').map((r) => reachLine(env.socketDir, r));
  if (dir.searchable === 'no') out.unshift(problem('socket-dir', `the deploy user cannot search ${env.socketDir} (mode ${mode4(dir.mode)} ${dir.owner}:${dir.group}): it cannot make or reach its own sockets`));
  if (!out.length) out.push(ok('socket-dir', `socketDir ${env.socketDir} is mode ${mode4(dir.mode)} ${dir.owner}:${dir.group}`));
  const s = events(lines, 'socket')[0];
  const live = events(lines, 'layout')[0]?.live ?? 'none';
  if (s?.present === 'unknown') return [...out, skipped('socket', `the live socket cannot be seen: ${env.socketDir} is not searchable`)];
  if (s?.present !== 'yes') {
    out.push(live === 'none' ? skipped('socket', 'no live release yet') : problem('socket', `the live socket ${liveSocket(env)} is missing, but release ${live} is recorded live`));
    return out;
  }
  const wrong: string[] = [];
  if (octal(s.mode) !== octal(env.socket.mode)) wrong.push(`mode ${mode4(s.mode)}, socket.mode says ${mode4(env.socket.mode)}`);
  if (env.socket.group && s.group !== env.socket.group) wrong.push(`group ${s.group}, socket.group says ${env.socket.group}`);
  const text = `the live socket ${liveSocket(env)} (mode ${mode4(s.mode)} ${s.owner}:${s.group})`;
  out.push(wrong.length ? problem('socket', `${text}: ${wrong.join('; ')}`) : ok('socket', text));
  return out;
}

const CURL_EXIT: Record<string, string> = { '6': 'name not found', '7': 'cannot connect', '28': 'timed out', '52': 'empty reply', '56': 'connection reset' };
const WHY: Record<string, string> = {
  '421': 'nginx has no map entry for the site: its config is for another site name',
  '502': 'nginx cannot connect to the socket it routes to: see the socketDir check, and nginx error log',
  '404': 'another server block (or a location) answered',
};

function answer(g: Record<string, string>): string {
  return g.code === '000' ? `no answer (${CURL_EXIT[g.rc ?? ''] ?? `curl exit ${g.rc}`})` : `${g.code}`;
}

function routeChecks(env: Environment, lines: ResultLine[], url: string | undefined): DoctorCheck[] {
  const direct = events(lines, 'get').find((g) => g.via === 'socket');
  const via = events(lines, 'get').find((g) => g.via === 'nginx');
  const route = events(lines, 'route')[0];
  const get = `GET ${env.app.health.path} with Host ${env.site}`;
  const expect = String(env.app.health.expectStatus);
  if (!direct && via) {
    // the deploy user cannot see the socket (socketDir not searchable): nginx's answer on its own
    const text = `nginx at ${url} answers GET ${env.app.health.path} with Host ${env.site}: ${answer(via)}`;
    return [skipped('health', 'the live socket cannot be seen from the deploy user'), via.code === expect ? ok('nginx', text) : problem('nginx', `${text}, not ${expect}${WHY[via.code!] ? ` (${WHY[via.code!]})` : ''}`)];
  }
  if (!direct) return [skipped('health', 'no live socket: nothing to ask'), ...(url ? [skipped('nginx', 'no live socket: routing not checked')] : [])];
  const out = [direct.code === expect ? ok('health', `the live socket (release ${route?.live}) answers ${get}: ${direct.code}`) : problem('health', `the live socket answers ${get}: ${answer(direct)}, not ${expect}`)];
  if (!url) return [...out, skipped('nginx', `not an nginx host (nginx.roles: ${env.nginx.roles.join(', ')})`)];
  if (!via) return [...out, problem('nginx', `nginx at ${url} was not asked`)];
  const head = `nginx at ${url} answers ${get}`;
  if (via.code !== direct.code) {
    return [...out, problem('nginx', `${head}: ${answer(via)}, the live socket ${answer(direct)}: nginx does not route ${env.site} to ${liveSocket(env)}${WHY[via.code!] ? ` (${WHY[via.code!]})` : ''}`)];
  }
  if (route?.same === 'no') return [...out, problem('nginx', `${head}: ${via.code}, but not what the live socket answers: nginx routes ${env.site} to another app`)];
  const note = route?.same === 'unstable' ? ' (the health page changes per request: only the status compared)' : ', the same answer';
  return [...out, ok('nginx', `${head} as the live socket does: ${via.code}${note}`)];
}

/** What doctor.sh printed for one host, as checks (pure). env: as the host sees it (forHost). */
export function judgeHost(env: Environment, lines: ResultLine[], nginxUrl?: string): DoctorCheck[] {
  return [toolsCheck(lines), shellCheck(lines), setupCheck(env, lines), ...socketChecks(env, lines), ...routeChecks(env, lines, nginxUrl)];
}

async function examine(session: Session, h: HostConfig): Promise<HostDoctor> {
  const t = session.transport(h.name);
  const failed = await t.connect().then(() => undefined, (e: unknown) => e ?? new Error('connect failed'));
  const reach = await reachOf(t, failed);
  const checks = [describeReach(reach)];
  if (reach.ok) {
    const env = forHost(session.env, h);
    const url = nginxUrlOnHost(session.env, h);
    const r = await session.exec(h.name, doctorCommand(env, url ? { nginxUrl: url } : {}), { readOnly: true }).catch((e: Error) => e);
    if (r instanceof Error) checks.push(problem('reach', r.message));
    else if (!r.ok) checks.push(problem('reach', `doctor.sh failed: ${r.error}`));
    else checks.push(...judgeHost(env, r.events, url));
  }
  return { host: h.name, ok: checks.every((c) => c.status !== 'problem'), reach, checks };
}

function failedHost(h: HostConfig, e: Error | undefined): HostDoctor {
  const reach: Reach = { via: 'ssh', hostname: h.address ?? h.name, user: '?', port: 0, jump: [], identity: 'none', hostKey: 'not checked', ok: false, error: e?.message ?? 'failed' };
  return { host: h.name, ok: false, reach, checks: [problem('reach', reach.error!)] };
}

const MARK = { ok: '✓', problem: '✗', skipped: '-' } as const;

/** The report as lines for people: one ✓, ✗ or - line per check. */
export function formatDoctor(h: HostDoctor): string[] {
  return h.checks.map((c) => `${MARK[c.status]} ${c.check}: ${c.message}`);
}

/** Every selected app host examined, read-only; the report says which hosts have problems. */
export async function doctor(o: DoctorOptions): Promise<DoctorReport> {
  const ctx = contextFor(o);
  const hosts = appHosts(ctx);
  return withSession(ctx, hosts, async (session) => {
    // at most `parallel` hosts at once, as every task; examine reports a failure, it does not throw
    const all = (await session.each(hosts, (h) => examine(session, h))).map((r) => r.value ?? failedHost(r.host, r.error));
    const report = { ok: all.every((h) => h.ok), hosts: all };
    if (o.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    else for (const h of all) for (const line of formatDoctor(h)) ctx.reporter.log(line.startsWith(MARK.problem) ? 'error' : 'info', line, h.host);
    return report;
  });
}

/** The one-line verdict: which hosts have which problems. */
export function doctorSummary(r: DoctorReport): string {
  const bad = r.hosts.filter((h) => !h.ok);
  if (!bad.length) return `doctor: no problem on ${r.hosts.map((h) => h.host).join(', ')}`;
  return `doctor: problems on ${bad.map((h) => `${h.host} (${h.checks.filter((c) => c.status === 'problem').map((c) => c.check).join(', ')})`).join(', ')}`;
}
