// app.env on stdin (issue 12): prepare.sh reads the env block (--env-bytes N: NUL-ended NAME=VALUE
// records, the client's own envBlock) before the package, and the app gets every value byte for
// byte; no value is ever in a process's command line. Real scripts as the client sends them, a
// tiny app (test/fixtures/apps/envprobe) that writes the hash of each variable it was given.
import { execa } from 'execa';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { envBlock, releaseScriptText } from '../../lib/remote/commands';
import { parseResultLines } from '../../lib/remote/protocol';
import { find, get, HELLO_DIR, REPO, show, useScriptLab, which } from '../support/scripts';

const lab = useScriptLab();
const PROBE = path.join(REPO, 'test', 'fixtures', 'apps', 'envprobe', 'probe.js');
const START = ['node', 'probe.js', '--socket', '{socket}'];
const TOKEN = crypto.randomBytes(6).toString('hex'); // in every greppable value: found only if leaked

/** Hostile values: each must arrive exactly, none may run anything. */
function hostile(marker: string): Record<string, string> {
  return {
    V_QUOTES: `${TOKEN}q'single' "double" \\back\\slash`,
    V_SUBST: `${TOKEN}s$(touch ${marker})`,
    V_BACKTICK: `${TOKEN}b\`touch ${marker}\``,
    V_SEMI: `${TOKEN}c; touch ${marker}; echo`,
    V_NEWLINE: `${TOKEN}n first\nsecond\n\n`,
    V_CR_TAB: `${TOKEN}t\r\t end `,
    V_DASH: '-x',
    V_DASHES: '--reuse',
    V_STAR: '*',
    V_DOLLAR: '$HOME ${PATH} $1 $@',
    V_UNICODE: `${TOKEN}u é ✓ 𝄞 日本`,
    V_LONG: `${TOKEN}l${'0123456789abcdef'.repeat(256)}`,
    V_EMPTY: '',
    V_EQUALS: `${TOKEN}e=a=b==`,
  };
}

const sha = (v: string) => crypto.createHash('sha256').update(Buffer.from(v, 'utf8')).digest('hex');

/** The probe's env.sha256 of a release: name → hash. */
function given(release: string): Map<string, string> {
  const text = fs.readFileSync(path.join(lab().releaseDir(release), 'env.sha256'), 'utf8');
  return new Map(text.trim().split('\n').map((l) => l.split(' ') as [string, string]));
}

function expectGiven(release: string, vars: Record<string, string>): void {
  const got = given(release);
  for (const [k, v] of Object.entries(vars)) expect(got.get(k), k).toBe(sha(v));
  expect(got.get('SWITCHYARD_RELEASE')).toBe(sha(release));
}

/** hello + the probe as a release package. */
function probePackage(): string {
  const dir = path.join(lab().root, 'probe-build');
  const file = path.join(lab().root, 'probe.tar.gz');
  if (!fs.existsSync(file)) {
    fs.cpSync(HELLO_DIR, dir, { recursive: true });
    fs.copyFileSync(PROBE, path.join(dir, 'probe.js'));
    execFileSync('tar', ['-czf', file, '-C', dir, '.']);
  }
  return file;
}

/** A file holding what goes on stdin: the env block, then the package when given. */
function stdinFile(block: Buffer, pkg?: string): string {
  const file = path.join(lab().root, `stdin-${crypto.randomBytes(4).toString('hex')}`);
  fs.writeFileSync(file, pkg ? Buffer.concat([block, fs.readFileSync(pkg)]) : block);
  return file;
}

/** Every process's command line on this machine, NUL-separated argv as the kernel shows it. */
function everyCmdline(): { pid: string; argv: Buffer }[] {
  const out: { pid: string; argv: Buffer }[] = [];
  for (const pid of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      out.push({ pid, argv: fs.readFileSync(`/proc/${pid}/cmdline`) });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** The values worth grepping for (the short exact ones, `-x` or `*`, are in many command lines). */
const greppable = (vars: Record<string, string>) => Object.values(vars).flatMap((v) => (v.includes(TOKEN) ? [v, ...v.split('\n').filter((l) => l.includes(TOKEN))] : []));

function expectNoValueInAnyCmdline(vars: Record<string, string>): void {
  const procs = everyCmdline();
  expect(procs.length).toBeGreaterThan(3);
  for (const v of greppable(vars)) {
    const leaks = procs.filter((p) => p.argv.includes(Buffer.from(v, 'utf8'))).map((p) => p.pid);
    expect(leaks, `a value in the command line of ${leaks.join(', ')}`).toEqual([]);
  }
  // and the token alone: not even part of a value
  expect(procs.filter((p) => p.argv.includes(Buffer.from(TOKEN))).map((p) => p.pid)).toEqual([]);
}

/** release.sh as the client runs it: stdin = the env block, the package, then the words. */
function releaseExec(release: string, block: Buffer, o: { pkg?: string; reuse?: boolean }) {
  const args = o.reuse ? ['--reuse'] : [];
  args.push('--env-bytes', String(block.length));
  if (o.pkg) args.push('--package-bytes', String(fs.statSync(o.pkg).size));
  const p = lab().prepareArgs(release, { args, cmd: START });
  const sw = lab().siteArgs(release);
  const re = [...lab().siteArgs(release), '--grace', '0.1', '--drain', '5'];
  const un = [...lab().siteArgs(release), '--grace', '0'];
  const done = execa(which('bash'), ['-c', releaseScriptText(), 'release.sh', '60', String(p.length), String(sw.length), String(re.length), ...p, ...sw, ...re, ...un], {
    reject: false,
    stdin: 'pipe',
    env: {},
    cwd: lab().root,
  });
  done.stdin!.write(block);
  if (o.pkg) done.stdin!.write(fs.readFileSync(o.pkg));
  let out = '';
  done.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  const until = async (re: RegExp) => {
    for (let i = 0; i < 300 && !re.test(out); i++) {
      if (done.exitCode !== null && done.exitCode !== undefined) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    if (!re.test(out)) throw new Error(`release.sh: no ${re} in:\n${out}`);
  };
  return { done, until, say: (w: string) => done.stdin!.write(`${w}\n`), end: () => done.stdin!.end() };
}

describe('prepare.sh: the env block on stdin, before the package', () => {
  it('hostile values arrive byte for byte in the app, nothing runs, no value in any command line', async () => {
    const marker = path.join(lab().root, 'pwned');
    const vars = hostile(marker);
    const block = envBlock(vars);
    expect(block.length).toBeGreaterThan(4096);
    const args = lab().prepareArgs('r1', { args: ['--env-bytes', String(block.length)], cmd: START });
    const r = await lab().run('prepare', args, { inputFile: stdinFile(block, probePackage()) });
    expect(r.code, show(r)).toBe(0);
    const prepared = find(r, 'prepared')!;
    lab().track(Number(prepared.fields.pid), prepared.fields.starttime ?? '');
    // the package after the block unpacked whole: the app runs and answers
    expect((await get(lab().stageSock('r1'))).body).toBe('hello from release r1\n');
    expectGiven('r1', vars);
    expect(fs.existsSync(marker)).toBe(false);
    expectNoValueInAnyCmdline(vars);
    // nothing of the values in what prepare printed nor in the server's state
    const printed = r.stdout + r.stderr;
    for (const v of greppable(vars)) expect(printed).not.toContain(v);
    expect(printed).not.toContain(TOKEN);
    expect(lab().state('lock/owner')).not.toContain(TOKEN);
  });

  it('a bad block is a usage error (2) that shows no value; nothing is unpacked, the lock stays free', async () => {
    const secretValue = `${TOKEN}-secret`;
    const cases: [Buffer, number, RegExp][] = [
      [envBlock({ A: secretValue }), 1000, /the env block ended before its 1000 bytes/], // stdin ends early
      [Buffer.from(`no equals ${secretValue}\0`), 0, /a record is not NAME=VALUE/],
      [Buffer.from(`SWITCHYARD_RELEASE=${secretValue}\0`), 0, /SWITCHYARD_RELEASE is reserved/],
      [envBlock({ A: secretValue, B: 'x' }), -2, /its records do not end at --env-bytes/], // N cuts the last record
    ];
    for (const [block, n, msg] of cases) {
      const bytes = n > 0 ? n : block.length + n;
      const args = lab().prepareArgs('r1', { args: ['--env-bytes', String(bytes)], cmd: START });
      const r = await lab().run('prepare', args, { inputFile: stdinFile(block) });
      expect(r.code, show(r)).toBe(2);
      expect(find(r, 'error')?.msg).toMatch(msg);
      expect(r.stdout + r.stderr).not.toContain(TOKEN);
      expect(fs.existsSync(lab().releaseDir('r1'))).toBe(false);
      expect(lab().lockHeld()).toBe(false);
    }
    for (const bad of ['0', '-1', 'x', '']) {
      const r = await lab().run('prepare', lab().prepareArgs('r1', { args: ['--env-bytes', bad], cmd: START }), { inputFile: stdinFile(Buffer.alloc(0)) });
      expect(r.code, show(r)).toBe(2);
    }
  });
});

describe('release.sh: the env block through the one exec, for a deploy and a restart', () => {
  it('deploy (block, package, words) then restart (--reuse: block only, new values): each start gets its own values', async () => {
    const marker = path.join(lab().root, 'pwned');
    const vars = hostile(marker);
    const t = releaseExec('r1', envBlock(vars), { pkg: probePackage() });
    await t.until(/::sy ready step=prepare\n/);
    // between prepare and switch: the app runs with its values, no command line holds one
    expectGiven('r1', vars);
    expectNoValueInAnyCmdline(vars);
    t.say('switch');
    await t.until(/::sy ready step=switch\n/);
    t.say('retire');
    t.end();
    const r = await t.done;
    expect(r.exitCode, String(r.stdout) + String(r.stderr)).toBe(0);
    expect(parseResultLines(String(r.stdout)).map((l) => l.event)).toEqual(['prepared', 'live', 'ready', 'switched', 'ready', 'retired', 'unlocked']);
    expect((await get(lab().liveSock)).body).toBe('hello from release r1\n');
    lab().track(lab().pidFile('r1')!.pid, lab().pidFile('r1')!.starttime);

    // restart: the same release again, the block alone on stdin (a rotated secret, say)
    const rotated = { ...vars, V_QUOTES: `${TOKEN}rotated "q" 'q'`, V_NEW: `${TOKEN}new\n` };
    const before = lab().pidFile('r1')!;
    const t2 = releaseExec('r1', envBlock(rotated), { reuse: true });
    await t2.until(/::sy ready step=prepare\n/);
    const now = lab().pidFile('r1')!;
    lab().track(now.pid, now.starttime);
    expect(now.pid).not.toBe(before.pid);
    expectGiven('r1', rotated);
    expectNoValueInAnyCmdline(rotated);
    t2.say('switch');
    await t2.until(/::sy ready step=switch\n/);
    t2.say('retire');
    t2.end();
    const r2 = await t2.done;
    expect(r2.exitCode, String(r2.stdout) + String(r2.stderr)).toBe(0);
    expect(fs.existsSync(marker)).toBe(false);
    // the audit log and the state files carry no value
    for (const f of ['audit.log', 'live', 'previous'] as const) expect(lab().state(f) ?? '').not.toContain(TOKEN);
    expect(String(r.stdout) + String(r.stderr) + String(r2.stdout) + String(r2.stderr)).not.toContain(TOKEN);
  });
});
