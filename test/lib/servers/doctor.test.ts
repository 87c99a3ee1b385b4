// What doctor makes of doctor.sh's lines (pure): each problem named, nothing judged that was not seen.
import { describe, expect, it } from 'vitest';
import { describeReach, judgeHost, nginxUrlOnHost, SLOW_SHELL_MS, type DoctorCheck } from '../../../lib/servers/doctor';
import { parseResultLines } from '../../../lib/remote/protocol';
import type { Reach } from '../../../lib/servers/reach';
import { makeEnv } from '../../support/env';

const env = makeEnv({ socket: { group: 'www-data' } });
const SOCK = '/run/sy/SOCK-app.test';
const URL = 'http://127.0.0.1:8080';

/** A healthy host's lines, with some replaced: `over` maps an event (or `event via`) to its new line. */
function lines(over: Record<string, string | null> = {}): ReturnType<typeof parseResultLines> {
  const base: Record<string, string> = {
    shell: 'login_ms=12 script_ms=8 shell=/bin/bash',
    tools: ['curl', 'ss', 'tar version=1.34'].map((t) => `::sy check tool=${t.split(' ')[0]} ok=yes ${t.split(' ')[1] ?? ''}`).join('\n'),
    version: 'tool=curl version=7.88.1',
    layout: 'set_up=yes live=R1',
    socketdir: 'path=/run/sy present=yes searchable=yes mode=750 owner=deploy group=www-data',
    socket: `path=${SOCK} present=yes mode=660 owner=deploy group=www-data`,
    'reach user': 'who=user:www-data uid=33 found=listener traverse=yes blocked=none blocked_mode=none blocked_owner=none connect=yes',
    'reach group': 'who=group:www-data uid=-1 found=config traverse=yes blocked=none blocked_mode=none blocked_owner=none connect=yes',
    'get socket': 'via=socket code=200 rc=0',
    'get nginx': 'via=nginx code=200 rc=0',
    route: 'live=R1 same=yes',
  };
  const text = Object.entries({ ...base, ...over })
    .filter(([, v]) => v !== null)
    .map(([k, v]) => (k === 'tools' ? v! : `::sy ${k.split(' ')[0]} ${v}`))
    .join('\n');
  return parseResultLines(text);
}
const problems = (c: DoctorCheck[]) => c.filter((x) => x.status === 'problem').map((x) => `${x.check}: ${x.message}`);

describe('judgeHost', () => {
  it('a healthy host: every check ok, each saying what it saw', () => {
    const c = judgeHost(env, lines(), URL);
    expect(c.map((x) => [x.check, x.status])).toEqual([
      ['tools', 'ok'], ['shell', 'ok'], ['setup', 'ok'], ['socket-dir', 'ok'], ['socket-dir', 'ok'], ['socket', 'ok'], ['health', 'ok'], ['nginx', 'ok'],
    ]);
    expect(c.map((x) => x.message)).toEqual([
      'all 3 tools the scripts need (tar 1.34, curl 7.88.1)',
      'login shell /bin/bash starts in 12 ms; then bash -c of a script: 8 ms',
      'set up in /srv/app, live release R1',
      'nginx worker user www-data can reach /run/sy and connect to the live socket',
      'the socket group www-data can reach /run/sy and connect to the live socket',
      `the live socket ${SOCK} (mode 0660 deploy:www-data)`,
      'the live socket (release R1) answers GET /health with Host app.test: 200',
      `nginx at ${URL} answers GET /health with Host app.test as the live socket does: 200, the same answer`,
    ]);
  });

  it('names a missing tool, a slow shell, a host not set up', () => {
    const c = judgeHost(env, lines({ tools: '::sy check tool=curl ok=yes\n::sy check tool=ss ok=no', shell: `login_ms=${SLOW_SHELL_MS + 1} script_ms=3 shell=/bin/bash`, layout: 'set_up=no live=none', socket: `path=${SOCK} present=no`, 'get socket': null, 'get nginx': null, route: 'live=none same=none' }), URL);
    expect(problems(c)).toEqual([
      'tools: missing tools: ss (the scripts need them; tar must be GNU tar, find GNU findutils)',
      `shell: login shell /bin/bash starts in ${SLOW_SHELL_MS + 1} ms; then bash -c of a script: 3 ms: over ${SLOW_SHELL_MS} ms, paid by every SSH command. Look at what the deploy user's shell reads when sshd runs a command (~/.bashrc, which bash reads for sshd; BASH_ENV, which every non-interactive bash reads)`,
      'setup: /srv/app/releases is missing: run gulp setup',
    ]);
    expect(c.filter((x) => x.status === 'skipped').map((x) => x.message)).toEqual(['no live release yet', 'no live socket: nothing to ask', 'no live socket: routing not checked']);
    // a bash -c that is slow (BASH_ENV) is a slow start too, with a quick login shell
    expect(problems(judgeHost(env, lines({ shell: `login_ms=5 script_ms=${SLOW_SHELL_MS + 50} shell=/bin/sh` }), URL))).toHaveLength(1);
    expect(judgeHost(env, lines({ shell: 'login_ms=none script_ms=none shell=/bin/sh' }), URL)[1]).toMatchObject({ status: 'skipped' });
  });

  it('names who cannot reach the socket dir, where, and a socket whose mode or group is not the configured one', () => {
    const c = judgeHost(
      env,
      lines({
        'reach user': 'who=user:www-data uid=33 found=name traverse=no blocked=/run blocked_mode=700 blocked_owner=root:root connect=no',
        'reach group': 'who=group:www-data uid=-1 found=config traverse=yes blocked=none blocked_mode=none blocked_owner=none connect=no',
        socket: `path=${SOCK} present=yes mode=640 owner=deploy group=deploy`,
      }),
      URL,
    );
    expect(problems(c)).toEqual([
      'socket-dir: nginx worker user www-data cannot reach /run/sy: no search (x) permission on /run (mode 0700 root:root)',
      'socket-dir: the socket group www-data cannot connect to the live socket in /run/sy: connecting takes write permission on it (socket.mode, socket.group)',
      `socket: the live socket ${SOCK} (mode 0640 deploy:deploy): mode 0640, socket.mode says 0660; group deploy, socket.group says www-data`,
    ]);
    expect(problems(judgeHost(env, lines({ 'reach group': 'who=group:www-data uid=none found=missing traverse=no blocked=none connect=no' }), URL))).toEqual(['socket-dir: the socket group www-data does not exist on the host (socket.group)']);
    expect(judgeHost(env, lines({ 'reach user': 'who=none uid=none found=none traverse=none blocked=none connect=none' }), URL)[3]).toMatchObject({ status: 'skipped', message: expect.stringMatching(/^no nginx worker process found/) });
    expect(problems(judgeHost(env, lines({ socketdir: 'path=/run/sy present=no' }), URL))[0]).toBe('socket-dir: socketDir /run/sy is missing: run gulp setup');
    // a socket dir the deploy user itself cannot search: said so; nginx asked on its own
    const unseen = judgeHost(
      env,
      lines({ socketdir: 'path=/run/sy present=yes searchable=no mode=600 owner=deploy group=deploy', socket: `path=${SOCK} present=unknown`, 'get socket': null, 'get nginx': 'via=nginx code=502 rc=0', route: 'live=R1 same=none' }),
      URL,
    );
    expect(unseen.filter((x) => x.status !== 'ok').map((x) => `${x.status} ${x.check}: ${x.message}`)).toEqual([
      'problem socket-dir: the deploy user cannot search /run/sy (mode 0600 deploy:deploy): it cannot make or reach its own sockets',
      'skipped socket: the live socket cannot be seen: /run/sy is not searchable',
      'skipped health: the live socket cannot be seen from the deploy user',
      `problem nginx: nginx at ${URL} answers GET /health with Host app.test: 502, not 200 (nginx cannot connect to the socket it routes to: see the socketDir check, and nginx error log)`,
    ]);
    expect(problems(judgeHost(env, lines({ socket: `path=${SOCK} present=no`, 'get socket': null, 'get nginx': null }), URL))).toEqual([`socket: the live socket ${SOCK} is missing, but release R1 is recorded live`]);
  });

  it('nginx: another status, another answer, no answer; a health page that changes per request compares by status only', () => {
    const nginx = (over: Record<string, string | null>) => judgeHost(env, lines(over), URL).filter((x) => x.check === 'nginx' || x.check === 'health').map((x) => `${x.status} ${x.message}`);
    expect(nginx({ 'get nginx': 'via=nginx code=421 rc=0', route: 'live=R1 same=no' })[1]).toBe(
      `problem nginx at ${URL} answers GET /health with Host app.test: 421, the live socket 200: nginx does not route app.test to ${SOCK} (nginx has no map entry for the site: its config is for another site name)`,
    );
    expect(nginx({ 'get nginx': 'via=nginx code=502 rc=0', route: 'live=R1 same=no' })[1]).toMatch(/: 502, the live socket 200: .*\(nginx cannot connect to the socket it routes to/);
    expect(nginx({ 'get nginx': 'via=nginx code=000 rc=7', route: 'live=R1 same=no' })[1]).toMatch(/: no answer \(cannot connect\), the live socket 200/);
    expect(nginx({ route: 'live=R1 same=no' })[1]).toBe(`problem nginx at ${URL} answers GET /health with Host app.test: 200, but not what the live socket answers: nginx routes app.test to another app`);
    expect(nginx({ route: 'live=R1 same=unstable' })[1]).toBe(`ok nginx at ${URL} answers GET /health with Host app.test as the live socket does: 200 (the health page changes per request: only the status compared)`);
    expect(nginx({ 'get socket': 'via=socket code=500 rc=0', 'get nginx': 'via=nginx code=500 rc=0' })[0]).toBe('problem the live socket answers GET /health with Host app.test: 500, not 200');
    // not an nginx host: not asked, and said so
    expect(judgeHost(env, lines({ 'get nginx': null }))).toContainEqual({ check: 'nginx', status: 'skipped', message: 'not an nginx host (nginx.roles: web)' });
  });
});

describe('nginxUrlOnHost', () => {
  it("the host's own url, else nginx.listen as the host sees it; none for a host without an nginx role", () => {
    const e = makeEnv({ hosts: [{ name: 'a', roles: ['web', 'app'], url: 'http://10.0.0.5:8080/x' }, { name: 'b', roles: ['web', 'app'] }, { name: 'c', roles: ['app'] }], nginx: { listen: '8081' } });
    expect(e.hosts.map((h) => nginxUrlOnHost(e, h))).toEqual(['http://10.0.0.5:8080', 'http://127.0.0.1:8081', undefined]);
    const v6 = makeEnv({ nginx: { listen: '[::1]:8080' } });
    expect(nginxUrlOnHost(v6, v6.hosts[0]!)).toBe('http://[::1]:8080');
  });
});

describe('describeReach', () => {
  const base: Reach = { via: 'ssh', hostname: 'web1.internal', address: '10.0.0.5', user: 'deploy', port: 22, jump: [], identity: '/k/id_ed25519 (then ssh-agent)', hostKey: 'verified', ok: true };
  it('says how the host was reached, or why not, naming the host key status and its fingerprint', () => {
    expect(describeReach(base).message).toBe('reached deploy@web1.internal (10.0.0.5) port 22, jump none, identity /k/id_ed25519 (then ssh-agent), host key verified');
    const refused = describeReach({ ...base, ok: false, hostKey: 'changed', fingerprint: 'ssh-ed25519 SHA256:abc', failure: 'host key', error: 'HOST KEY CHANGED: … ssh-keygen -R web1.internal' });
    expect(refused).toEqual({
      check: 'reach',
      status: 'problem',
      message: 'cannot reach deploy@web1.internal (10.0.0.5) port 22, jump none, identity /k/id_ed25519 (then ssh-agent): host key changed: HOST KEY CHANGED: … ssh-keygen -R web1.internal',
    });
    expect(describeReach({ ...base, ok: false, hostKey: 'not checked', failure: 'refused', error: 'cannot connect: ECONNREFUSED' }).message).toMatch(/port 22, .*: refused: cannot connect: ECONNREFUSED$/);
  });

  it('a failure at a jump host names that hop and its own key standing, not the target\'s (never checked)', () => {
    const viaJump = { ...base, jump: ['ops@bastion.example:22'], ok: false, hostKey: 'not checked' as const, failure: 'host key' as const, failedJump: 'bastion (ops@bastion.example:22)' };
    expect(describeReach({ ...viaJump, jumpHostKey: 'unknown', error: 'unknown host key ssh-ed25519 SHA256:abc for bastion.example …' }).message).toBe(
      'cannot reach deploy@web1.internal (10.0.0.5) port 22, jump ops@bastion.example:22, identity /k/id_ed25519 (then ssh-agent): jump host bastion (ops@bastion.example:22): host key unknown: unknown host key ssh-ed25519 SHA256:abc for bastion.example …',
    );
    expect(describeReach({ ...viaJump, failure: 'auth failed', error: 'authentication failed: tried /k/id (refused)' }).message).toMatch(/: jump host bastion \(ops@bastion\.example:22\): auth failed: authentication failed: tried \/k\/id \(refused\)$/);
  });
});
