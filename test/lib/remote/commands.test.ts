import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import {
  doctorCommand,
  envBlock,
  newReleaseId,
  prepareCommand,
  privateNginxCommand,
  q,
  RELEASE_ID,
  STANDBY_RELEASE,
  releaseCommand,
  releasesCommand,
  releaseScriptText,
  REMOTE_SCRIPTS_DIR,
  retireCommand,
  scriptText,
  sentText,
  superviseCommand,
  superviseVersion,
  runCommand,
  setupCommand,
  healthProtocol,
  statusCommand,
  switchCommand,
  undoCommand,
  unlockCommand,
  words,
} from '../../../lib/remote/commands';
import { privateNginxConfig } from '../../../lib/nginx/site';
import { secret } from '../../../lib/config/secrets';
import { makeEnv } from '../../support/env';

/** A script as the client sends it: read from the file here, its comment-only lines left empty. */
function sent(f: string): string {
  const text = fs.readFileSync(path.join(REMOTE_SCRIPTS_DIR, f), 'utf8');
  return text
    .split('\n')
    .map((l) => (/^\s*#/.test(l) ? '' : l))
    .join('\n');
}

/** lib.sh + NAME as the client sends it, quoted as one shell word. */
function inline(name: string): string {
  return q(sent('lib.sh') + '\n' + sent(name));
}

/** What bash makes of a command line: the argv it would run (printed NUL-separated). */
function argvOf(commandLine: string): string[] {
  const out = execFileSync('bash', ['-c', `set -- ${commandLine}; printf '%s\\0' "$@"`]).toString();
  return out.split('\0').slice(0, -1);
}

describe('q (shell quoting)', () => {
  it('leaves safe words alone and single-quotes the rest', () => {
    expect(q('/srv/app')).toBe('/srv/app');
    expect(q('--deploy-to')).toBe('--deploy-to');
    expect(q('a b')).toBe(`'a b'`);
    expect(q(`it's`)).toBe(`'it'\\''s'`);
    expect(q('')).toBe(`''`);
    expect(q('~/x')).toBe(`'~/x'`);
  });

  it('round-trips hostile values through a real bash word for word', () => {
    const nasty = ['$(touch /tmp/x)', '`id`', "a'b\"c", '; rm -rf /', 'x\ny', '*', '$HOME', '\\', '!', '{a,b}', '--', ' lead', 'trail '];
    expect(argvOf(words(nasty))).toEqual(nasty);
  });
});

describe('the scripts as sent (sentText)', () => {
  /** What bash makes of TEXT as a function body: its own print of the code, comments dropped, strings as they are. */
  const defined = (text: string) => execFileSync('bash', ['-c', `sy_body() {\n${text}\n}\ndeclare -f sy_body`]).toString();

  it('defines exactly what the files define: no line of a string or here-text was emptied', () => {
    const names = fs.readdirSync(REMOTE_SCRIPTS_DIR).filter((n) => n.endsWith('.sh'));
    expect(names.length).toBeGreaterThan(10);
    for (const n of names) {
      const raw = fs.readFileSync(path.join(REMOTE_SCRIPTS_DIR, n), 'utf8');
      expect(sentText(raw).split('\n').length, n).toBe(raw.split('\n').length); // line numbers unchanged
      expect(defined(sentText(raw)), n).toBe(defined(raw));
    }
  });

  it('empties comment-only lines and nothing else; the check above can fail', () => {
    expect(sentText('#!/usr/bin/env bash\n  # why\necho "a # b" # c\n\tx=1\n')).toBe('\n\necho "a # b" # c\n\tx=1\n');
    const quoted = "awk '\n# a line of the program\n{ print }' f";
    expect(defined(sentText(quoted))).not.toBe(defined(quoted));
    expect(releaseScriptText().length).toBeLessThan(0.7 * ['lib.sh', 'prepare.sh', 'switch.sh', 'retire.sh', 'undo.sh', 'release.sh'].reduce((n, f) => n + fs.statSync(path.join(REMOTE_SCRIPTS_DIR, f)).size, 0));
  });
});

describe('release ids', () => {
  it('are a sortable UTC stamp plus the short git sha', () => {
    const id = newReleaseId(new Date('2026-11-23T15:42:19.123Z'), 'abc1234');
    expect(id).toBe('20261123T154219.123Z-abc1234');
    expect(RELEASE_ID.test(id)).toBe(true);
    expect(newReleaseId(new Date('2026-11-23T15:42:19.123Z'))).toBe('20261123T154219.123Z');
    expect(newReleaseId(new Date('2026-11-23T15:42:19.123Z'), 'not hex;')).toBe('20261123T154219.123Z-e');
  });
});

describe('remote commands', () => {
  const env = makeEnv({ shared: ['logs'], app: { start: ['node', 'server.js', '--socket', '{socket}'], env: { NODE_ENV: 'production' } } });
  const R = '20261123T154219.123Z-abc1234';

  it('setup names the directories', () => {
    expect(setupCommand(env).display).toBe('setup.sh --deploy-to /srv/app --socket-dir /run/sy');
  });

  it('prepare runs lib.sh + prepare.sh inline, the package on its stdin, every value its own word', () => {
    const c = prepareCommand(env, { release: R, lockOwner: 'me@box pid=1' });
    expect(c.stdinPackage).toBe(true);
    expect(c.timeoutSeconds).toBe(600);
    expect(c.display).toBe(
      `prepare.sh --deploy-to /srv/app --site app.test --socket-dir /run/sy --release ${R} ` +
        `--shared logs --socket-mode 0660 --start-timeout 30 --health-path /health --health-timeout 30 ` +
        `--expect-status 200 --lock-owner 'me@box pid=1' --env-bytes 20 --delta -- node server.js --socket '{socket}' ` +
        `< env (NODE_ENV), then the package, less the files the host has (unpacked into /srv/app/releases/${R})`,
    );
    expect(c.stdinEnv?.().toString()).toBe('NODE_ENV=production\0');
    // exec: the login shell becomes the script's bash; no `timeout` program (the client keeps time).
    expect(c.command.startsWith('exec bash -c ')).toBe(true);
    const argv = argvOf(c.command);
    expect(argv.slice(0, 3)).toEqual(['exec', 'bash', '-c']);
    expect(argv[3]).toBe(sent('lib.sh') + '\n' + sent('prepare.sh'));
    expect(argv.slice(4, 7)).toEqual(['prepare.sh', '--deploy-to', '/srv/app']);
    expect(argv.slice(-5)).toEqual(['--', 'node', 'server.js', '--socket', '{socket}']);
  });

  it('prepare --reuse runs the client script inline and takes no package', () => {
    const c = prepareCommand(env, { release: R, lockOwner: 'me', reuse: true });
    expect(c.stdinPackage).toBeUndefined();
    expect(c.display).toMatch(/^prepare\.sh .* --reuse --env-bytes 20 -- node server\.js --socket '\{socket\}' < env \(NODE_ENV\)$/);
    const argv = argvOf(c.command);
    expect(argv[3]).toContain('set -euo pipefail');
    expect(argv[4]).toBe('prepare.sh');
  });

  it('switch, undo, retire, unlock', () => {
    expect(switchCommand(env, R).display).toBe(`switch.sh --deploy-to /srv/app --site app.test --socket-dir /run/sy --release ${R}`);
    expect(undoCommand(env, R).display).toBe(`undo.sh --deploy-to /srv/app --site app.test --socket-dir /run/sy --release ${R} --grace 2`);
    expect(retireCommand(env, R, 'deploy by me').display).toBe(
      `retire.sh --deploy-to /srv/app --site app.test --socket-dir /run/sy --release ${R} --grace 2 --drain 30 --drain-mode signal --keep 5 --audit 'deploy by me' --supervisor ${superviseVersion(env)}`,
    );
    expect(argvOf(retireCommand(env, R, 'x').command).slice(0, 3)).toEqual(['exec', 'bash', '-c']);
    // The client's limit covers the grace and drain periods the script may wait through.
    expect(retireCommand(env, R, 'x').timeoutSeconds).toBe(152);
    expect(switchCommand(env, R).timeoutSeconds).toBe(60);
    expect(unlockCommand(env).display).toBe('unlock.sh --deploy-to /srv/app');
  });

  it('a rollback\'s retire marks what it leaves bad (--mark-bad); releases lists them read-only', () => {
    expect(retireCommand(env, R, 'rollback by me', { markBad: true }).display).toBe(
      `retire.sh --deploy-to /srv/app --site app.test --socket-dir /run/sy --release ${R} --grace 2 --drain 30 --drain-mode signal --keep 5 --audit 'rollback by me' --mark-bad --supervisor ${superviseVersion(env)}`,
    );
    const rb = releaseCommand(env, { release: R, lockOwner: 'me', audit: 'rollback by me', reuse: true, markBad: true });
    expect(rb.steps.retire.display).toContain(' --mark-bad ');
    expect(argvOf(rb.command)).toContain('--mark-bad');
    expect(argvOf(releaseCommand(env, { release: R, lockOwner: 'me', audit: 'x' }).command)).not.toContain('--mark-bad');
    const l = releasesCommand(env);
    expect(l.display).toBe('releases.sh --deploy-to /srv/app --site app.test --socket-dir /run/sy');
    expect(l.command).toBe(`exec bash -c ${inline('releases.sh')} releases.sh --deploy-to /srv/app --site app.test --socket-dir /run/sy`);
    expect(l.timeoutSeconds).toBe(60);
  });

  it('a deploy keeps the previous release as the standby (--standby, never on a rollback); the supervisor by version, its own command', () => {
    const sb = makeEnv({ retire: { standbySeconds: 300 } });
    const dep = releaseCommand(sb, { release: R, lockOwner: 'me', audit: 'deploy by me', standby: true });
    expect(dep.steps.retire.display).toBe(
      `retire.sh --deploy-to /srv/app --site app.test --socket-dir /run/sy --release ${R} --grace 2 --drain 30 --drain-mode signal --keep 5 --audit 'deploy by me' --standby 300 --supervisor ${superviseVersion(sb)}`,
    );
    expect(releaseCommand(sb, { release: R, lockOwner: 'me', audit: 'x', standby: true, markBad: true, reuse: true }).steps.retire.display).not.toContain('--standby');
    expect(releaseCommand(env, { release: R, lockOwner: 'me', audit: 'x', standby: true }).steps.retire.display).not.toContain('--standby'); // 0 s
    const off = makeEnv({ supervise: { enabled: false } });
    expect(retireCommand(off, R, 'x').display).not.toContain('--supervisor');
    const v = superviseVersion(env);
    expect(v).toMatch(/^[0-9a-f]{16}$/);
    expect(superviseVersion(makeEnv({ supervise: { intervalMs: 250 } }))).not.toBe(v);
    const st = superviseCommand(env, 'start', { boot: true });
    const args = `--action start --deploy-to /srv/app --site app.test --socket-dir /run/sy --health-path /health --expect-status 200 --grace 2 --drain 30 --drain-mode signal --keep 5 --interval-ms 500 --health-every 10 --unhealthy 3 --max-restarts 10 --version ${v} --boot yes`;
    expect(st.display).toBe(`supervise.sh ${args}`);
    expect(st.command).toBe(`exec bash -c ${q(scriptText('supervise.sh'))} supervise.sh ${args}`);
    // the supervisor's program carries the steps it runs, as release.sh does
    for (const f of ['prepare', 'switch', 'retire', 'undo']) expect(scriptText('supervise.sh')).toContain(`sy_run_${f}() (`);
    expect(superviseCommand(env, 'stop').display).toBe(`supervise.sh --action stop ${args.slice('--action start '.length, -' --boot yes'.length)}`);
  });

  it("retire with drain 'connections': the mode on its command line, a limit that covers the drain before and after SIGTERM; undo unchanged", () => {
    const c = makeEnv({ retire: { graceSeconds: 0.5, drainSeconds: 10, drain: 'connections' } });
    expect(c.retire).toEqual({ graceSeconds: 0.5, drainSeconds: 10, drain: 'connections', standbySeconds: 0 });
    expect(retireCommand(c, R, 'deploy by me').display).toBe(
      `retire.sh --deploy-to /srv/app --site app.test --socket-dir /run/sy --release ${R} --grace 0.5 --drain 10 --drain-mode connections --keep 5 --audit 'deploy by me' --supervisor ${superviseVersion(c)}`,
    );
    expect(argvOf(retireCommand(c, R, 'x').command).slice(-8, -6)).toEqual(['--drain-mode', 'connections']);
    // grace (the queue) + drain (the connections) + drain (the exit after SIGTERM) + 120
    expect(retireCommand(c, R, 'x').timeoutSeconds).toBe(0.5 + 10 + 10 + 120);
    expect(undoCommand(c, R).display).toBe(`undo.sh --deploy-to /srv/app --site app.test --socket-dir /run/sy --release ${R} --grace 0.5`);
    expect(undoCommand(c, R).timeoutSeconds).toBe(60.5);
    expect(() => makeEnv({ retire: { drain: 'wait' as never } })).toThrow(/retire\.drain/);
  });

  it("nginx.pass 'fastcgi': the health check's protocol on setup, prepare, the supervisor and status, as exact words", () => {
    const f = makeEnv({ nginx: { pass: 'fastcgi' }, app: { start: ['fastcgi-mono-server4', '/applications=/:.', '/socket=unix:{socket}'], health: { path: '/Health.aspx' } }, retire: { drain: 'connections' } });
    expect(healthProtocol(f)).toEqual(['--health-protocol', 'fastcgi']);
    expect(healthProtocol(env)).toEqual([]); // http: the scripts' default, not said
    expect(setupCommand(f).display).toBe('setup.sh --deploy-to /srv/app --socket-dir /run/sy --health-protocol fastcgi');
    expect(argvOf(setupCommand(f).command).slice(-2)).toEqual(['--health-protocol', 'fastcgi']);
    expect(prepareCommand(f, { release: R, lockOwner: 'me' }).display).toBe(
      `prepare.sh --deploy-to /srv/app --site app.test --socket-dir /run/sy --release ${R} --socket-mode 0660 --start-timeout 30 ` +
        `--health-path /Health.aspx --health-timeout 30 --expect-status 200 --health-protocol fastcgi --lock-owner me --delta ` +
        `-- fastcgi-mono-server4 /applications=/:. '/socket=unix:{socket}' < the package, less the files the host has (unpacked into /srv/app/releases/${R})`,
    );
    const v = superviseVersion(f);
    expect(v).not.toBe(superviseVersion(makeEnv({ app: f.app, retire: { drain: 'connections' } }))); // the protocol is part of its version
    expect(superviseCommand(f, 'start').display).toBe(
      `supervise.sh --action start --deploy-to /srv/app --site app.test --socket-dir /run/sy --health-path /Health.aspx --expect-status 200 --health-protocol fastcgi ` +
        `--grace 2 --drain 30 --drain-mode connections --keep 5 --interval-ms 500 --health-every 10 --unhealthy 3 --max-restarts 10 --version ${v}`,
    );
    expect(statusCommand(f).display).toBe('status.sh --deploy-to /srv/app --site app.test --socket-dir /run/sy --health-path /Health.aspx --expect-status 200 --health-protocol fastcgi');
    expect(argvOf(statusCommand(f).command).slice(-2)).toEqual(['--health-protocol', 'fastcgi']);
    expect(doctorCommand(f, { nginxUrl: 'http://127.0.0.1:8080' }).display).toBe(
      'doctor.sh --deploy-to /srv/app --site app.test --socket-dir /run/sy --socket-mode 0660 --health-path /Health.aspx --expect-status 200 --health-protocol fastcgi --nginx-url http://127.0.0.1:8080',
    );
  });

  it('status: the exact command and display', () => {
    const c = statusCommand(env);
    expect(c.step).toBe('status');
    expect(c.display).toBe('status.sh --deploy-to /srv/app --site app.test --socket-dir /run/sy --health-path /health --expect-status 200');
    expect(c.command).toBe(
      `exec bash -c ${inline('status.sh')} status.sh --deploy-to /srv/app --site app.test --socket-dir /run/sy --health-path /health --expect-status 200`,
    );
    expect(c.timeoutSeconds).toBe(60);
    expect(c.stdinPackage).toBeUndefined();
  });

  it('doctor: the exact command, read-only, the login shell reading /proc/uptime first; --nginx-url only where given', () => {
    const c = doctorCommand(env, { nginxUrl: 'http://127.0.0.1:8080' });
    expect(c.step).toBe('doctor');
    const args = '--deploy-to /srv/app --site app.test --socket-dir /run/sy --socket-mode 0660 --health-path /health --expect-status 200 --nginx-url http://127.0.0.1:8080';
    expect(c.display).toBe(`doctor.sh ${args}`);
    expect(c.command).toBe(`read -r sy_up _ </proc/uptime; exec bash -c ${inline('doctor.sh')} doctor.sh ${args} --shell-up "$sy_up"`);
    expect(c.timeoutSeconds).toBe(60);
    expect(c.stdinPackage).toBeUndefined();
    expect(c.stdinEnv).toBeUndefined();
    const g = doctorCommand(makeEnv({ socket: { group: 'www-data', mode: '0660' }, socketDir: "/run/it's" }));
    expect(g.display).toBe(`doctor.sh --deploy-to /srv/app --site app.test --socket-dir '/run/it'\\''s' --socket-group www-data --socket-mode 0660 --health-path /health --expect-status 200`);
    const argv = argvOf(g.command.replace(/^read -r sy_up _ <\/proc\/uptime; exec /, '').replace(/"\$sy_up"$/, '1.00'));
    expect(argv.slice(3)).toEqual([
      'doctor.sh', '--deploy-to', '/srv/app', '--site', 'app.test', '--socket-dir', "/run/it's", '--socket-group', 'www-data',
      '--socket-mode', '0660', '--health-path', '/health', '--expect-status', '200', '--shell-up', '1.00',
    ]);
  });

  it('unlock: the exact command and display, with and without --release', () => {
    const any = unlockCommand(env);
    expect(any.step).toBe('unlock');
    expect(any.display).toBe('unlock.sh --deploy-to /srv/app');
    expect(any.command).toBe(`exec bash -c ${inline('unlock.sh')} unlock.sh --deploy-to /srv/app`);
    expect(any.timeoutSeconds).toBe(60);
    const only = unlockCommand(env, R);
    expect(only.display).toBe(`unlock.sh --deploy-to /srv/app --release ${R}`);
    expect(only.command).toBe(`exec bash -c ${inline('unlock.sh')} unlock.sh --deploy-to /srv/app --release ${R}`);
    expect(only.timeoutSeconds).toBe(60);
    expect(only.stdinPackage).toBeUndefined();
  });

  it('private nginx: lib.sh + nginx.sh inline, the prefix under deployTo, the config one word; shown without the config', () => {
    const c = privateNginxCommand(env);
    expect(c.step).toBe('setup');
    expect(c.display).toBe('nginx.sh --prefix /srv/app/nginx --conf <nginx.conf for app.test>');
    const conf = privateNginxConfig(env);
    expect(c.command).toBe(`exec bash -c ${inline('nginx.sh')} nginx.sh --prefix /srv/app/nginx --conf ${q(conf)}`);
    expect(c.timeoutSeconds).toBe(60);
    expect(c.stdinPackage).toBeUndefined();
    // the config travels as one word, byte for byte, and is the one for this host's live socket
    const argv = argvOf(c.command);
    expect(argv.slice(4)).toEqual(['nginx.sh', '--prefix', '/srv/app/nginx', '--conf', conf]);
    expect(conf).toContain('\npid /srv/app/nginx/nginx.pid;\n');
    expect(conf).toContain('\n        app.test /run/sy/SOCK-app.test;\n');
    expect(conf).toContain('\n        listen 80;\n');
  });

  it('a hostile start argument stays a single word in the command; a hostile env value is not in it at all', () => {
    const evil = makeEnv({ app: { start: ['node', 'a;touch /tmp/pwned', '$(id)'], env: { X: "'; touch /tmp/pwned; '" } } });
    const c = prepareCommand(evil, { release: R, lockOwner: 'me' });
    const argv = argvOf(c.command);
    expect(argv.slice(-3)).toEqual(['node', 'a;touch /tmp/pwned', '$(id)']);
    expect(argv.slice(-7, -4)).toEqual(['--env-bytes', '25', '--delta']);
    expect(c.command).not.toContain('touch /tmp/pwned; ');
    expect(c.stdinEnv?.().toString()).toBe("X='; touch /tmp/pwned; '\0");
  });

  it('release: one exec for every step, the step argv counted so release.sh can split them, the upload by --delta', () => {
    const c = releaseCommand(env, { release: R, lockOwner: 'me', audit: 'deploy by me' });
    expect(c.stdinPackage).toBe(true);
    const argv = argvOf(c.command);
    expect(argv.slice(0, 3)).toEqual(['exec', 'bash', '-c']);
    expect(argv[3]).toBe(releaseScriptText());
    // lib.sh, each step as a function running in a subshell of its own, then the driver
    expect(argv[3]).toContain(`\nsy_run_prepare() (\n${sent('prepare.sh')}\n)\n`);
    for (const step of ['switch', 'retire', 'undo']) expect(argv[3]).toContain(`\nsy_run_${step}() (\n${sent(`${step}.sh`)}\n)\n`);
    expect(argv[3]!.startsWith(sent('lib.sh'))).toBe(true);
    expect(argv[3]!.endsWith(sent('release.sh'))).toBe(true);
    // it waits for a word as long as a prepare may take, and 10 minutes more (hooks, batch checks)
    expect(argv[5]).toBe(String(600 + 600));
    const [np, ns, nr] = argv.slice(6, 9).map(Number) as [number, number, number];
    const rest = argv.slice(9);
    const prepare = rest.slice(0, np);
    expect(prepare.slice(0, 2)).toEqual(['--deploy-to', '/srv/app']);
    expect(prepare.slice(-10)).toEqual(['--lock-owner', 'me', '--env-bytes', '20', '--delta', '--', 'node', 'server.js', '--socket', '{socket}']);
    expect(rest.slice(np, np + ns)).toEqual(['--deploy-to', '/srv/app', '--site', 'app.test', '--socket-dir', '/run/sy', '--release', R]);
    expect(rest.slice(np + ns, np + ns + nr)).toEqual(argvOf(`x ${c.steps.retire.display.slice('retire.sh '.length)}`).slice(1));
    expect(rest.slice(np + ns + nr)).toEqual(['--deploy-to', '/srv/app', '--site', 'app.test', '--socket-dir', '/run/sy', '--release', R, '--grace', '2']);
    // the client's limit for the whole exec covers every step's own
    expect(c.timeoutSeconds).toBe(600 + 60 + 152);
    // a restart or rollback sends no package
    const reuse = releaseCommand(env, { release: R, lockOwner: 'me', audit: 'x', reuse: true });
    expect(reuse.stdinPackage).toBe(false);
    expect(argvOf(reuse.command)).not.toContain('--delta');
    expect(argvOf(reuse.command)).toContain('--reuse');
  });

  it("a user's command keeps `timeout` on the server (it may hang with the client gone), argv only", () => {
    const c = runCommand(['npm', 'run', 'migrate; rm -rf /'], { cwd: '/srv/app/releases/x y', env: { DB: 'a b' }, timeoutSeconds: 300 });
    expect(c.command).toBe(`CDPATH= cd -- '/srv/app/releases/x y' && timeout -k 10 300 env 'DB=a b' npm run 'migrate; rm -rf /'`);
    expect(c.timeoutSeconds).toBe(315); // the client's limit only if the server's did not act
    expect(() => runCommand(['x'], { env: { 'A B': '1' } })).toThrow('not an environment variable name');
  });
});

describe('app.env: the values travel on stdin (the env block), never on a command line', () => {
  const R = '20261123T154219.123Z-abc1234';
  // every shell special there is, a newline, a leading dash, unicode
  const SECRET = `s3cr3t'"$(touch /tmp/pwned)\`id\`;*\n-x é✓`;
  const PLAIN = '-plain value $HOME';
  const env = makeEnv({ app: { start: ['node', 'server.js', '--socket', '{socket}'], env: { API_KEY: secret('SY_TEST_API_KEY'), NODE_ENV: 'production' } } });
  const appEnv = { API_KEY: SECRET, NODE_ENV: PLAIN };
  const block = Buffer.from(`API_KEY=${SECRET}\0NODE_ENV=${PLAIN}\0`, 'utf8');
  const N = block.length;
  const values = [SECRET, PLAIN, ...SECRET.split('\n'), 's3cr3t', 'plain value'];
  const prepareWords = `--deploy-to /srv/app --site app.test --socket-dir /run/sy --release ${R} --socket-mode 0660 --start-timeout 30 --health-path /health --health-timeout 30 --expect-status 200 --lock-owner 'me@box pid=1'`;
  const noValue = (c: { command: string; display: string }) => {
    for (const v of values) {
      expect(c.command).not.toContain(v);
      expect(c.display).not.toContain(v);
    }
  };

  it('prepare: the exact command and display (--env-bytes N, names only), the block as NUL-ended records', () => {
    const c = prepareCommand(env, { release: R, lockOwner: 'me@box pid=1', appEnv });
    expect(c.display).toBe(
      `prepare.sh ${prepareWords} --env-bytes ${N} --delta -- node server.js --socket '{socket}' < env (API_KEY, NODE_ENV), then the package, less the files the host has (unpacked into /srv/app/releases/${R})`,
    );
    expect(c.command).toBe(`exec bash -c ${inline('prepare.sh')} prepare.sh ${prepareWords} --env-bytes ${N} --delta -- node server.js --socket '{socket}'`);
    expect(c.stdinPackage).toBe(true);
    expect(c.stdinEnv!()).toEqual(block);
    expect(N).toBe(Buffer.byteLength(SECRET) + Buffer.byteLength(PLAIN) + 'API_KEY=\0NODE_ENV=\0'.length);
    noValue(c);
    // the block is a function: printing or serialising the command never shows it
    expect(JSON.stringify(c)).not.toContain('s3cr3t');
  });

  it('prepare --reuse (rollback, restart): the block alone on stdin', () => {
    const c = prepareCommand(env, { release: R, lockOwner: 'me@box pid=1', reuse: true, appEnv });
    expect(c.display).toBe(`prepare.sh ${prepareWords} --reuse --env-bytes ${N} -- node server.js --socket '{socket}' < env (API_KEY, NODE_ENV)`);
    expect(c.command).toBe(`exec bash -c ${inline('prepare.sh')} prepare.sh ${prepareWords} --reuse --env-bytes ${N} -- node server.js --socket '{socket}'`);
    expect(c.stdinPackage).toBeUndefined();
    expect(c.stdinEnv!()).toEqual(block);
    noValue(c);
  });

  it('release: the exact command, the block before the package on stdin, no value in any step', () => {
    const c = releaseCommand(env, { release: R, lockOwner: 'me@box pid=1', audit: 'deploy by me', appEnv });
    const site = `--deploy-to /srv/app --site app.test --socket-dir /run/sy --release ${R}`;
    const prepare = `${prepareWords} --env-bytes ${N} --delta -- node server.js --socket '{socket}'`;
    const retire = c.steps.retire.display.slice('retire.sh '.length);
    const undo = c.steps.undo.display.slice('undo.sh '.length);
    const count = (w: string) => argvOf(`x ${w}`).length - 1;
    expect(c.command).toBe(
      `exec bash -c ${q(releaseScriptText())} release.sh 1200 ${count(prepare)} ${count(site)} ${count(retire)} ${prepare} ${site} ${retire} ${undo}`,
    );
    expect(c.display).toBe(
      `release.sh: prepare.sh ${prepareWords} --env-bytes ${N} --delta -- node server.js --socket '{socket}' < env (API_KEY, NODE_ENV), then the package, less the files the host has (unpacked into /srv/app/releases/${R}); ` +
        `then at the client's word: switch.sh ${site}; ${c.steps.retire.display} (or ${c.steps.undo.display})`,
    );
    expect(c.stdinPackage).toBe(true);
    expect(c.stdinEnv!()).toEqual(block);
    for (const cmd of [c, ...Object.values(c.steps)]) noValue(cmd);
    expect(c.steps.prepare.stdinEnv!()).toEqual(block);
    for (const s of ['switch', 'retire', 'undo'] as const) expect(c.steps[s].stdinEnv).toBeUndefined();
    // restart / rollback: the block, no package
    const reuse = releaseCommand(env, { release: R, lockOwner: 'me', audit: 'x', reuse: true, appEnv });
    const ra = argvOf(reuse.command);
    expect(ra.slice(ra.indexOf('--reuse'), ra.indexOf('--reuse') + 4)).toEqual(['--reuse', '--env-bytes', String(N), '--']);
    expect(reuse.stdinPackage).toBe(false);
    expect(reuse.stdinEnv!()).toEqual(block);
    noValue(reuse);
  });

  it('a plain rollback to the standby: @standby in every step, for release.sh to resolve on the host', () => {
    const c = releaseCommand(makeEnv(), { release: STANDBY_RELEASE, lockOwner: 'me', audit: 'rollback by me', reuse: true, markBad: true });
    const site = '--deploy-to /srv/app --site app.test --socket-dir /run/sy --release @standby';
    const prepare = `${site} --socket-mode 0660 --start-timeout 30 --health-path /health --health-timeout 30 --expect-status 200 --lock-owner me --reuse -- node server.js --socket '{socket}'`;
    const retire = `${site} --grace 2 --drain 30 --drain-mode signal --keep 5 --audit 'rollback by me' --mark-bad --supervisor ${superviseVersion(makeEnv())}`;
    const undo = `${site} --grace 2`;
    expect(c.command).toBe(`exec bash -c ${q(releaseScriptText())} release.sh 1200 26 8 21 ${prepare} ${site} ${retire} ${undo}`);
    expect(c.display).toBe(`release.sh: prepare.sh ${prepare}; then at the client's word: switch.sh ${site}; retire.sh ${retire} (or undo.sh ${undo})`);
    expect(c.stdinPackage).toBe(false);
  });

  it('no variables: no --env-bytes and nothing before the package', () => {
    const c = releaseCommand(makeEnv(), { release: R, lockOwner: 'me', audit: 'x' });
    expect(argvOf(c.command)).not.toContain('--env-bytes');
    expect(c.stdinEnv).toBeUndefined();
    expect(c.steps.prepare.display).toMatch(/ < the package, less the files the host has \(unpacked into /);
  });

  it('files only (a host without an app role): no app command, no app options, no env block (nor its secrets) on that host', () => {
    const shared = makeEnv({ shared: ['logs'], app: { start: ['node', 'server.js', '--socket', '{socket}'], env: { API_KEY: secret('SY_TEST_API_KEY'), NODE_ENV: 'production' } } });
    const site = `--deploy-to /srv/app --site app.test --socket-dir /run/sy --release ${R}`;
    const p = prepareCommand(shared, { release: R, lockOwner: 'me@box pid=1', appEnv, filesOnly: true });
    const words = `${site} --shared logs --lock-owner 'me@box pid=1' --files-only --delta`;
    expect(p.display).toBe(`prepare.sh ${words} < the package, less the files the host has (unpacked into /srv/app/releases/${R}, nothing started)`);
    expect(p.command).toBe(`exec bash -c ${inline('prepare.sh')} prepare.sh ${words}`);
    expect(p.stdinPackage).toBe(true);
    expect(p.stdinEnv).toBeUndefined();
    expect(switchCommand(env, R, { filesOnly: true }).command).toBe(`exec bash -c ${inline('switch.sh')} switch.sh ${site} --files-only`);
    const c = releaseCommand(shared, { release: R, lockOwner: 'me@box pid=1', audit: 'deploy by me', appEnv, filesOnly: true });
    const retire = c.steps.retire.display.slice('retire.sh '.length);
    const undo = c.steps.undo.display.slice('undo.sh '.length);
    expect(c.command).toBe(`exec bash -c ${q(releaseScriptText())} release.sh 1200 14 9 ${argvOf(`x ${retire}`).length - 1} ${words} ${site} --files-only ${retire} ${undo}`);
    expect(c.display).toBe(
      `release.sh: ${p.display}; then at the client's word: switch.sh ${site} --files-only; ${c.steps.retire.display} (or ${c.steps.undo.display})`,
    );
    expect(c.stdinEnv).toBeUndefined();
    for (const cmd of [c, ...Object.values(c.steps)]) noValue(cmd);
    // retire and undo are the app hosts' own (they tell a files-only release by its state), less
    // the supervisor: nothing runs there to supervise
    const appRetire = releaseCommand(shared, { release: R, lockOwner: 'x', audit: 'deploy by me', appEnv }).steps.retire.display;
    expect(appRetire).toContain(' --supervisor ');
    expect(c.steps.retire.display).toBe(appRetire.replace(/ --supervisor [0-9a-f]+$/, ''));
    // a rollback's: the release there, again, nothing read past it
    const reuse = prepareCommand(env, { release: R, lockOwner: 'me', reuse: true, filesOnly: true });
    expect(reuse.display).toBe(`prepare.sh ${site} --lock-owner me --files-only --reuse`);
    expect(reuse.stdinPackage).toBeUndefined();
  });

  it('an unresolved secret is refused, never sent as its name; the block refuses NUL and SWITCHYARD_ names', () => {
    expect(() => prepareCommand(env, { release: R, lockOwner: 'me' })).toThrow('app.env.API_KEY is secret(SY_TEST_API_KEY): resolve it first');
    expect(() => envBlock({ A: 'x\0y' })).toThrow('app.env.A: a value cannot hold a NUL byte');
    expect(() => envBlock({ SWITCHYARD_SITE: 'x' })).toThrow('not a variable the app may be given');
    expect(() => envBlock({ 'A B': 'x' })).toThrow('not a variable the app may be given');
    expect(envBlock({}).length).toBe(0);
    expect(envBlock({ E: '' })).toEqual(Buffer.from('E=\0'));
  });
});
