// Hostile input as a property test (issue 12). 1,000 seeded hostile strings (quotes, $(…), `…`,
// ; && |, newlines, CR, tabs, globs, leading dashes, .. and /.., RTL marks, emoji, combining marks,
// NUL, 8 KB, empty, spaces, and combinations: test/support/hostile.ts) through every field that
// reaches a remote command or a path. For each value and field: either validateEnvironment refuses
// it with an error naming the field, or the command built from it, when RUN, delivers it literally:
// - as argv: the real command string (releaseCommand, setupCommand…) with the script's text swapped
//   for a printer of "$@", run by bash as an SSH exec would, compared byte for byte;
// - through the real scripts: setup.sh makes the hostile deployTo/socketDir, prepare.sh (--reuse of
//   a tiny release) links the hostile shared paths, starts the app with the hostile argv words and
//   app.env values (on stdin), chmods the socket with the mode; lib.sh's health check requests the
//   hostile path, its lock and audit write the hostile owner and audit text.
// Every payload touches MARKER: it must never exist (checked after every batch). Then the numbers:
// every boundary value the schema accepts must pass the script's own option check.
import { execa } from 'execa';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { forHost, validateEnvironment, type Environment } from '../../lib/environment';
import { privateNginxConfig } from '../../lib/nginx/site';
import {
  envBlock,
  newReleaseId,
  privateNginxCommand,
  q,
  releaseCommand,
  releaseScriptText,
  RELEASE_ID,
  runCommand,
  scriptText,
  setupCommand,
  statusCommand,
  unlockCommand,
  type RemoteCommand,
} from '../../lib/remote/commands';
import { ARGV_PRINTER, delivered, fileNameOk, hostileStrings, runBatch, show, type Batched } from '../support/hostile';
import { ScriptLab, SCRIPTS_DIR, show as showRun, which } from '../support/scripts';

const ROOT = fs.mkdtempSync(path.join(os.tmpdir(), 'sy-hostile-'));
const MARKER = path.join(ROOT, 'MARKER');
const VALUES = hostileStrings(MARKER, 1000, 12);
const WHERE = { name: 'hostile', file: 'env/hostile.ts', root: ROOT };
const RID = '20261201T083000.000Z-abc123';
const SYS_PATH = '/usr/local/bin:/usr/bin:/bin';
/** Programs named by hostile values: the printer (runCommand) and node (app.start[0]), each on its own PATH. */
const RUN_BIN = path.join(ROOT, 'run-bin');
const NODE_BIN = path.join(ROOT, 'node-bin');
const PATH = `${NODE_BIN}:${SYS_PATH}`;
let out = 0;
const outDir = () => path.join(ROOT, 'out', String(out++));

afterAll(() => fs.rmSync(ROOT, { recursive: true, force: true }));

function expectNoMarker(): void {
  expect(fs.existsSync(MARKER), `an injected command ran: ${MARKER} exists`).toBe(false);
}

/** runBatch, then the marker check. */
function batch(cmds: readonly Batched[], o: { cwd?: string; path?: string } = {}): { rc: number[]; dir: string } {
  fs.mkdirSync(ROOT, { recursive: true });
  const dir = outDir();
  const rc = runBatch(cmds, { root: ROOT, outDir: dir, cwd: o.cwd ?? ROOT, env: { PATH: o.path ?? SYS_PATH, HOME: o.cwd ?? ROOT, LC_ALL: 'C.UTF-8' } });
  expectNoMarker();
  return { rc, dir };
}

type Input = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
function baseInput(): Input {
  return {
    site: 'hostile.test',
    build: { dir: 'dist' },
    app: { start: ['node', 'app.js'] },
    hosts: [{ name: 'web1', roles: ['web', 'app'] }],
    deployTo: '/srv/hostile',
    socketDir: '/run/sy',
  };
}

interface Field {
  name: string;
  /** What the refusal must name: the start of one of its lines. */
  where: string[];
  set(i: Input, v: string): void;
}

const FIELDS: Field[] = [
  // a long site is refused for the socket path it makes under socketDir
  { name: 'site', where: ['site:', 'socketDir:'], set: (i, v) => (i.site = v) },
  { name: 'hosts[].name', where: ['hosts[0].name:'], set: (i, v) => (i.hosts[0].name = v) },
  { name: 'deployTo', where: ['deployTo:'], set: (i, v) => (i.deployTo = v) },
  { name: 'hosts[].deployTo', where: ['hosts[0].deployTo:'], set: (i, v) => (i.hosts[0].deployTo = v) },
  { name: 'socketDir', where: ['socketDir:'], set: (i, v) => (i.socketDir = v) },
  { name: 'hosts[].socketDir', where: ['hosts[0].socketDir:'], set: (i, v) => (i.hosts[0].socketDir = v) },
  { name: 'socket.group', where: ['socket.group:'], set: (i, v) => (i.socket = { ...i.socket, group: v }) },
  { name: 'socket.mode', where: ['socket.mode:'], set: (i, v) => (i.socket = { ...i.socket, mode: v }) },
  { name: 'shared[]', where: ['shared[0]:'], set: (i, v) => (i.shared = [v]) },
  { name: 'app.start[0]', where: ['app.start[0]:'], set: (i, v) => (i.app.start[0] = v) },
  { name: 'app.start[]', where: ['app.start[1]:'], set: (i, v) => (i.app.start[1] = v) },
  { name: 'app.env name', where: ['app.env'], set: (i, v) => (i.app.env = { ...i.app.env, [v]: 'x' }) },
  { name: 'app.env value', where: ['app.env.V:'], set: (i, v) => (i.app.env = { ...i.app.env, V: v }) },
  { name: 'app.health.path', where: ['app.health.path:'], set: (i, v) => (i.app.health = { path: v }) },
  { name: 'nginx.listen', where: ['nginx.listen:'], set: (i, v) => (i.nginx = { listen: v }) },
];

/** validateEnvironment with one field set to v: the environment, or the error's text. */
function tryField(f: Field, v: string): { env?: Environment; error?: string } {
  const input = baseInput();
  f.set(input, v);
  try {
    return { env: validateEnvironment(input, WHERE) };
  } catch (e) {
    return { error: (e as Error).message };
  }
}

/** field name → the values it accepted, with their environments. */
const accepted = new Map<string, { v: string; env: Environment }[]>();

describe('the schema: every hostile value is refused naming its field, or accepted', () => {
  it(`${VALUES.length} values × ${FIELDS.length} fields`, () => {
    expect(VALUES.length).toBe(1000);
    expect(new Set(VALUES).size).toBe(1000);
    const bad: string[] = [];
    for (const f of FIELDS) {
      const ok: { v: string; env: Environment }[] = [];
      for (const v of VALUES) {
        const r = tryField(f, v);
        if (r.env) ok.push({ v, env: r.env });
        else if (!r.error!.split('\n').some((l) => f.where.some((w) => l.startsWith(`  ${w}`)))) bad.push(`${f.name} ${show(v)}: ${r.error}`);
      }
      accepted.set(f.name, ok);
    }
    expect(bad).toEqual([]);
    console.log(`accepted of ${VALUES.length}: ${[...accepted].map(([k, a]) => `${k} ${a.length}`).join(', ')}`);
  });
});

// ---- argv: the built command, its script swapped for a printer -------------------------------

/** A command's words as a printer received them: options (--name value, --reuse, --delta) and what follows --. */
function options(words: readonly string[]): { opts: Map<string, string[]>; cmd?: string[] } {
  const opts = new Map<string, string[]>();
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    if (w === '--') return { opts, cmd: words.slice(i + 1) };
    if (!w.startsWith('--')) throw new Error(`not an option: ${show(w)} at ${i}`);
    if (w === '--reuse' || w === '--delta') {
      opts.set(w, ['']);
      continue;
    }
    opts.set(w, [...(opts.get(w) ?? []), words[++i]!]);
  }
  return { opts };
}

const one = (o: Map<string, string[]>, k: string) => {
  const v = o.get(k);
  return v?.length === 1 ? v[0] : v === undefined ? undefined : `(${v.length} values)`;
};

/** The script's text in a command swapped for the printer's (the command as built, otherwise). */
function withPrinter(cmd: RemoteCommand, text: string): Batched {
  const from = q(text);
  expect(cmd.command.includes(from)).toBe(true);
  return { command: cmd.command.replace(from, () => q(ARGV_PRINTER)) };
}

interface Case {
  label: string;
  batched: Batched;
  check(words: string[]): void;
}

/** The site options every script gets, as the environment has them. */
function expectSite(o: Map<string, string[]>, env: Environment, withSite = true): void {
  expect(one(o, '--deploy-to')).toBe(env.deployTo);
  expect(one(o, '--socket-dir')).toBe(env.socketDir);
  if (withSite) expect(one(o, '--site')).toBe(env.site);
}

function releaseCase(label: string, env: Environment, lockOwner: string, audit: string): Case {
  const cmd = releaseCommand(env, { release: RID, lockOwner, audit });
  return {
    label,
    batched: withPrinter(cmd, releaseScriptText()),
    check: (w) => {
      expect(w[0]).toBe('release.sh');
      const [np, ns, nr] = [Number(w[2]), Number(w[3]), Number(w[4])];
      const rest = w.slice(5);
      const prep = options(rest.slice(0, np));
      const sections = [options(rest.slice(np, np + ns)), options(rest.slice(np + ns, np + ns + nr)), options(rest.slice(np + ns + nr))];
      for (const s of [prep, ...sections]) {
        expectSite(s.opts, env);
        expect(one(s.opts, '--release')).toBe(RID);
      }
      expect(prep.cmd).toEqual(env.app.start);
      expect(prep.opts.get('--shared') ?? []).toEqual(env.shared);
      expect(one(prep.opts, '--socket-mode')).toBe(env.socket.mode);
      expect(one(prep.opts, '--socket-group')).toBe(env.socket.group);
      expect(one(prep.opts, '--health-path')).toBe(env.app.health.path);
      expect(one(prep.opts, '--lock-owner')).toBe(lockOwner);
      const block = envBlock(env.app.env as Record<string, string>);
      expect(one(prep.opts, '--env-bytes')).toBe(block.length ? String(block.length) : undefined);
      expect(one(sections[1]!.opts, '--audit')).toBe(audit);
    },
  };
}

function scriptCases(label: string, env: Environment): Case[] {
  return [
    {
      label: `${label} setup`,
      batched: withPrinter(setupCommand(env), scriptText('setup.sh')),
      check: (w) => {
        const { opts } = options(w.slice(1));
        expectSite(opts, env, false);
        expect(one(opts, '--socket-group')).toBe(env.socket.group);
      },
    },
    {
      label: `${label} status`,
      batched: withPrinter(statusCommand(env), scriptText('status.sh')),
      check: (w) => {
        const { opts } = options(w.slice(1));
        expectSite(opts, env);
        expect(one(opts, '--health-path')).toBe(env.app.health.path);
      },
    },
    {
      label: `${label} unlock`,
      batched: withPrinter(unlockCommand(env, RID), scriptText('unlock.sh')),
      check: (w) => expect(w.slice(1)).toEqual(['--deploy-to', env.deployTo, '--release', RID]),
    },
    {
      label: `${label} nginx`,
      batched: withPrinter(privateNginxCommand(env), scriptText('nginx.sh')),
      check: (w) => {
        const conf = privateNginxConfig(env);
        // the prefix is path.posix.join(deployTo, 'nginx'): `..` and `//` folded by the client
        expect(w.slice(1)).toEqual(['--prefix', path.posix.join(env.deployTo, 'nginx'), '--conf', conf]);
        expect(conf).toContain(`listen ${env.nginx.listen}`);
      },
    },
  ];
}

/** The same environment with every app.env value replaced by as many bytes of filler. */
function filled(env: Environment): Environment {
  const vars = Object.fromEntries(Object.entries(env.app.env).map(([k, v]) => [k, 'x'.repeat(Buffer.byteLength(String(v)))]));
  return { ...env, app: { ...env.app, env: vars } };
}

function runChecks(cases: readonly Case[], words: (i: number) => string[] | undefined, rc: number[]): string[] {
  const bad: string[] = [];
  cases.forEach((c, i) => {
    const w = words(i);
    try {
      expect(rc[i], 'exit status').toBe(0);
      expect(w, 'nothing printed').toBeDefined();
      c.check(w!);
    } catch (e) {
      bad.push(`${c.label}: ${(e as Error).message.split('\n')[0]}`);
    }
  });
  return bad;
}

describe('argv: every accepted value reaches the script as the same word', () => {
  it('through releaseCommand (prepare, switch, retire, undo), setup, status, unlock and nginx', () => {
    // one environment per value with every field that accepts it set to it (one per field when
    // they cannot go together, e.g. a long site and a long socketDir)
    const byValue = new Map<string, Field[]>();
    for (const f of FIELDS) for (const { v } of accepted.get(f.name) ?? []) byValue.set(v, [...(byValue.get(v) ?? []), f]);
    const cases: Case[] = [];
    const late: string[] = [];
    const SCRIPT_FIELDS = new Set(['site', 'deployTo', 'hosts[].deployTo', 'socketDir', 'hosts[].socketDir', 'socket.group', 'app.health.path', 'nginx.listen']);
    for (const v of VALUES) {
      const fields = byValue.get(v) ?? [];
      let groups = [fields];
      const all = baseInput();
      for (const f of fields) f.set(all, v);
      try {
        validateEnvironment(all, WHERE);
      } catch {
        groups = fields.map((f) => [f]);
      }
      const owner = v.includes('\0') ? 'owner' : v; // client-made text (lockOwner(): user@host pid=N) never holds a NUL
      for (const g of groups.length && groups[0]!.length ? groups : [[]]) {
        const input = baseInput();
        for (const f of g) f.set(input, v);
        const parsed = validateEnvironment(input, WHERE);
        const e = forHost(parsed, parsed.hosts[0]!);
        const label = `${g.map((f) => f.name).join('+') || 'lockOwner/audit'} ${show(v)}`;
        cases.push(releaseCase(label, e, owner, owner));
        if (g.some((f) => SCRIPT_FIELDS.has(f.name))) {
          try {
            cases.push(...scriptCases(label, e));
          } catch (err) {
            late.push(`${label}: ${(err as Error).message}`); // refused, but only when the command is built
          }
        }
        if (g.some((f) => f.name.startsWith('app.env'))) {
          // no value (nor name) on the command line: the same command as with filler of its length
          expect(releaseCommand(e, { release: RID, lockOwner: 'o', audit: 'a' }).command, label).toBe(releaseCommand(filled(e), { release: RID, lockOwner: 'o', audit: 'a' }).command);
          const vars = e.app.env as Record<string, string>;
          expect(envBlock(vars).toString('utf8')).toBe(Object.entries(vars).map(([k, x]) => `${k}=${x}\0`).join(''));
        }
      }
    }
    // The login shell (bash) parses each command as built; the `bash -c PRINTER` inside it is dash
    // (a `bash` of its own on PATH): the words are the outer shell's doing, the printer only writes them.
    const dashBin = path.join(ROOT, 'dash-bin');
    fs.mkdirSync(dashBin, { recursive: true });
    if (!fs.existsSync(path.join(dashBin, 'bash'))) fs.symlinkSync(which('dash'), path.join(dashBin, 'bash'));
    const { rc, dir } = batch(
      cases.map((c) => c.batched),
      { path: `${dashBin}:${SYS_PATH}` },
    );
    expect(runChecks(cases, (i) => delivered(dir, i), rc)).toEqual([]);
    expect(cases.length).toBeGreaterThan(1000);
    // The private nginx's config refuses a deployTo holding a quote and the like (lib/nginx/config.ts),
    // but only when privateNginxCommand is built (gulp setup), not in validateEnvironment.
    console.log(`argv: ${cases.length} commands run; refused only when built (privateNginxCommand): ${late.length}`);
  });
});

// ---- a user's own command: session.run(argv, { cwd, env }) ------------------------------------

describe("runCommand: a user's argv, cwd and env values arrive as they are, or it refuses", () => {
  it('every value as an argument, an env value, a cwd, and the program name', () => {
    const cwdRoot = path.join(ROOT, 'home');
    fs.mkdirSync(RUN_BIN, { recursive: true });
    fs.mkdirSync(cwdRoot, { recursive: true });
    const printer = path.join(RUN_BIN, 'sy-print');
    fs.writeFileSync(printer, `#!/bin/sh\ncd -P . && printf '%s\\0' "$0" "$PWD" "\${H-(unset)}" "$@" >"$SY_OUT/$SY_N"\n`, { mode: 0o755 });
    const cases: { label: string; kind: string; v: string; build: () => RemoteCommand; want: () => string[] }[] = [];
    for (const v of VALUES) {
      const named = fileNameOk(v);
      if (named) fs.mkdirSync(path.join(cwdRoot, v));
      cases.push({
        label: `argv+env+cwd ${show(v)}`,
        kind: 'cwd',
        v,
        build: () => runCommand([printer, v, '', v], { env: { H: v }, ...(named ? { cwd: v } : {}) }),
        want: () => [printer, fs.realpathSync(named ? path.join(cwdRoot, v) : cwdRoot), v, v, '', v],
      });
      // program names: every one with a leading - or an =, and a sample of the rest
      if (named && v !== 'sy-print' && (v.startsWith('-') || v.includes('=') || cases.length % 5 === 0)) {
        fs.symlinkSync(printer, path.join(RUN_BIN, v));
        cases.push({
          label: `program ${show(v)}`,
          kind: 'program',
          v,
          build: () => runCommand([v, '--', 'x'], { env: { H: 'h' } }),
          want: () => [path.join(RUN_BIN, v), fs.realpathSync(cwdRoot), 'h', '--', 'x'],
        });
      }
    }
    const built = cases.map((c) => {
      try {
        return c.build();
      } catch {
        return undefined; // refused
      }
    });
    const { rc, dir } = batch(
      built.map((b) => ({ command: b?.command ?? 'true' })),
      { cwd: cwdRoot, path: `${RUN_BIN}:${SYS_PATH}` },
    );
    // Refused at build time, never delivered cut short or misread: a NUL anywhere (the server's
    // execve would cut the word there), a program name holding '=' after env words (env would take
    // it for one more variable). cwd '-' is delivered as the directory named '-', not $OLDPWD.
    const mustRefuse = (c: (typeof cases)[number]) => c.v.includes('\0') || (c.kind === 'program' && c.v.includes('='));
    const wrong: string[] = [];
    cases.forEach((c, i) => {
      if (!built[i]) {
        if (!mustRefuse(c)) wrong.push(`${c.label}: refused`);
        return;
      }
      if (mustRefuse(c)) return void wrong.push(`${c.label}: built, should be refused`);
      const got = delivered(dir, i);
      if (rc[i] !== 0 || JSON.stringify(got) !== JSON.stringify(c.want())) wrong.push(`${c.label}: exit ${rc[i]}, got ${got ? show(JSON.stringify(got)) : 'nothing'}`);
    });
    expect(wrong).toEqual([]);
    expect(built.filter((b) => !b).length).toBeGreaterThan(0); // the refusals were exercised
    console.log(`runCommand: ${cases.length} cases, ${built.filter(Boolean).length} built and delivered, ${built.filter((b) => !b).length} refused`);
  });
});

// ---- the real scripts ---------------------------------------------------------------------------

describe('the real scripts deliver the accepted values literally', () => {
  const SANDBOX = path.join(ROOT, 'sb', '1', '2', '3', '4', '5', '6', '7', '8');

  it('setup.sh makes the accepted deployTo and socketDir values, literally (the built setupCommand, run)', () => {
    // Every value as SANDBOX/d<value> and SANDBOX/s<value>; setup.sh costs some 30 forks, so each
    // run takes one deployTo and one socketDir, and the values are a sample: every 6th accepted one,
    // the atoms alone (the first ones) all in.
    fs.mkdirSync(SANDBOX, { recursive: true });
    const inside = (p: string) => path.posix.normalize(p).startsWith(path.join(ROOT, 'sb') + '/');
    const ok = (key: 'deployTo' | 'socketDir', dir: string) => {
      const input = baseInput();
      input[key] = dir;
      try {
        validateEnvironment(input, WHERE);
      } catch {
        return false;
      }
      return inside(dir) && inside(`${dir}/releases`); // `..` climbing out of the sandbox: not run here
    };
    const ds = VALUES.filter((v) => ok('deployTo', `${SANDBOX}/d${v}`));
    const ss = VALUES.filter((v) => ok('socketDir', `${SANDBOX}/s${v}`));
    const sample = (xs: string[]) => xs.filter((_, i) => i < 40 || i % 6 === 0);
    const dPick = sample(ds);
    const sPick = sample(ss);
    const cases = Array.from({ length: Math.max(dPick.length, sPick.length) }, (_, i) => ({
      dv: dPick[i % dPick.length]!,
      sv: sPick[i % sPick.length]!,
    })).map((c, i) => ({ ...c, d: `${SANDBOX}/d${c.dv}`, s: i < sPick.length ? `${SANDBOX}/s${c.sv}` : `${SANDBOX}/s-${i}` }));
    const cmds = cases.map((c) => setupCommand(validateEnvironment({ ...baseInput(), deployTo: c.d, socketDir: c.s }, WHERE)));
    const { rc } = batch(cmds);
    const bad: string[] = [];
    cases.forEach((c, i) => {
      const made = ['releases', 'shared', '.switchyard'].every((x) => fs.statSync(`${c.d}/${x}`, { throwIfNoEntry: false })?.isDirectory());
      if (rc[i] !== 0 || !made || !fs.statSync(c.s, { throwIfNoEntry: false })?.isDirectory()) bad.push(`${show(c.dv)} / ${show(c.sv)}: exit ${rc[i]}, made ${made}`);
    });
    expect(bad).toEqual([]);
    console.log(`setup.sh: ${cases.length} runs; deployTo accepted ${ds.length}, run ${dPick.length}; socketDir accepted ${ss.length}, run ${sPick.length}`);
  });

  describe('prepare.sh --reuse of a tiny release', () => {
    let lab: ScriptLab;
    const R = RID;
    const PROBE = `const fs = require('fs'), http = require('http');
fs.writeFileSync('probe.json', JSON.stringify({ argv: process.argv.slice(2), env: Object.fromEntries(Object.entries(process.env).filter(([k]) => /^V\\d+$/.test(k))) }));
http.createServer((q, r) => r.end('ok')).listen(process.env.SWITCHYARD_SOCKET);
`;
    beforeAll(async () => {
      lab = ScriptLab.create();
      await lab.setup();
      const dir = path.join(lab.deployTo, 'releases', R);
      fs.mkdirSync(path.join(dir, '.switchyard'), { recursive: true });
      fs.writeFileSync(path.join(dir, 'probe.js'), PROBE);
      fs.mkdirSync(NODE_BIN, { recursive: true });
    });
    afterAll(async () => {
      await lab.cleanup();
    });

    /** One prepare --reuse, then undo (stops the app, frees the lock); the probe's record. */
    async function prepare(o: { args?: string[]; cmd?: string[]; stdin?: Buffer }): Promise<{ argv: string[]; env: Record<string, string> }> {
      const args = [...lab.siteArgs(R), '--start-timeout', '10', '--health-timeout', '5', '--reuse', ...(o.args ?? [])];
      let inputFile: string | undefined;
      if (o.stdin) {
        inputFile = path.join(ROOT, `stdin-${crypto.randomBytes(4).toString('hex')}`);
        fs.writeFileSync(inputFile, o.stdin);
        args.push('--env-bytes', String(o.stdin.length));
      }
      const r = await lab.run('prepare', [...args, '--', ...(o.cmd ?? ['node', 'probe.js'])], { path: PATH, ...(inputFile ? { inputFile } : {}) });
      const p = lab.pidFile(R);
      if (p) lab.track(p.pid, p.starttime);
      const u = await lab.run('undo', [...lab.siteArgs(R), '--grace', '0']);
      expectNoMarker();
      if (r.code !== 0) throw new Error(`prepare failed: ${showRun(r)}`);
      expect(u.code, showRun(u)).toBe(0);
      return JSON.parse(fs.readFileSync(path.join(lab.releaseDir(R), 'probe.json'), 'utf8'));
    }

    it('links every accepted shared path (batches of paths that do not overlap)', async () => {
      const paths = (accepted.get('shared[]') ?? []).map((a) => a.env.shared[0]!);
      const batches: string[][] = [];
      for (const p of paths) {
        const fits = batches.find((b) => b.length < 150 && b.every((o) => !(p === o || p.startsWith(`${o}/`) || o.startsWith(`${p}/`))));
        if (fits) fits.push(p);
        else batches.push([p]);
      }
      for (const b of batches) {
        await prepare({ args: b.flatMap((p) => ['--shared', p]) });
        for (const p of b) {
          const link = path.join(lab.releaseDir(R), p);
          expect(fs.lstatSync(link).isSymbolicLink(), show(p)).toBe(true);
          expect(fs.readlinkSync(link), show(p)).toBe(`${lab.deployTo}/shared/${p}`);
          expect(fs.existsSync(`${lab.deployTo}/shared/${p}`), show(p)).toBe(true);
        }
        fs.rmSync(path.join(lab.deployTo, 'shared'), { recursive: true });
        fs.mkdirSync(path.join(lab.deployTo, 'shared'));
        for (const p of new Set(b.map((x) => x.split('/')[0]!))) fs.rmSync(path.join(lab.releaseDir(R), p), { recursive: true, force: true });
      }
      expect(paths.length).toBeGreaterThan(300);
    });

    it('starts the app with every accepted argv word as it is ({socket}, {release} replaced)', async () => {
      const words = (accepted.get('app.start[]') ?? []).map((a) => a.v);
      for (let i = 0; i < words.length; i += 200) {
        const chunk = words.slice(i, i + 200);
        const got = await prepare({ cmd: ['node', 'probe.js', ...chunk] });
        const stage = `${lab.socketDir}/SOCK-hello.test-${R}`;
        expect(got.argv).toEqual(chunk.map((w) => w.split('{socket}').join(stage).split('{release}').join(R)));
      }
      expect(words.length).toBeGreaterThan(900);
    });

    it('runs a program whose name starts with - (app.start[0]) as the program', async () => {
      const names = (accepted.get('app.start[0]') ?? []).map((a) => a.v).filter((v) => v.startsWith('-') && fileNameOk(v) && !v.includes('='));
      const picked = [...new Set(['-x', '--help', '--', ...names])].slice(0, 4);
      for (const n of picked) {
        const link = path.join(NODE_BIN, n);
        if (!fs.existsSync(link)) fs.symlinkSync(which('node'), link);
        const got = await prepare({ cmd: [n, 'probe.js', n] });
        expect(got.argv, show(n)).toEqual([n]);
      }
    });

    it('gives the app every accepted app.env value byte for byte (on stdin, the env block)', async () => {
      const vals = (accepted.get('app.env value') ?? []).map((a) => a.v);
      for (let i = 0; i < vals.length; i += 250) {
        const chunk = vals.slice(i, i + 250);
        const vars = Object.fromEntries(chunk.map((v, j) => [`V${j}`, v]));
        const got = await prepare({ stdin: envBlock(vars) });
        expect(got.env).toEqual(vars);
      }
      expect(vals.length).toBeGreaterThan(900);
    });

    it('chmods the socket with every accepted socket.mode', async () => {
      // 0777 and 000 are the schema's to refuse (world write; no owner write: the health check as
      // the deploy user could not connect): every mode it lets through must work for a non-root user
      const modeField = FIELDS.find((f) => f.name === 'socket.mode')!;
      for (const bad of ['0777', '000', '0444', '0662']) expect(tryField(modeField, bad).error, bad).toMatch(/socket\.mode: an octal mode with owner write and no world write/);
      const modes = [...new Set(['0660', '660', '0600', ...(accepted.get('socket.mode') ?? []).map((a) => a.v)])];
      for (const m of modes) {
        const stage = `${lab.socketDir}/SOCK-hello.test-${R}`;
        let seen = -1;
        const args = [...lab.siteArgs(R), '--start-timeout', '10', '--health-timeout', '5', '--reuse', '--socket-mode', m, '--', 'node', 'probe.js'];
        const r = await lab.run('prepare', args, { path: PATH });
        if (fs.existsSync(stage)) seen = fs.statSync(stage).mode & 0o7777;
        const p = lab.pidFile(R);
        if (p) lab.track(p.pid, p.starttime);
        const u = await lab.run('undo', [...lab.siteArgs(R), '--grace', '0']);
        expect(r.code, showRun(r)).toBe(0);
        expect(u.code).toBe(0);
        expect(seen, m).toBe(parseInt(m, 8));
      }
      expectNoMarker();
    });
  });

  it('the health check requests every accepted app.health.path as it is (lib.sh sy_health, curl)', async () => {
    const paths = (accepted.get('app.health.path') ?? []).map((a) => a.v);
    const sock = path.join(ROOT, 'health.sock');
    const seen: string[] = [];
    const server = http.createServer((req, res) => {
      seen.push(req.url ?? '');
      res.end('ok');
    });
    await new Promise<void>((r) => server.listen(sock, r));
    try {
      const loop = `SITE=hostile.test; for HEALTH_PATH in "$@"; do sy_health ${q(sock)}; printf '%s\\n' "$SY_CODE"; done`;
      const r = await execa(which('bash'), ['-c', `${fs.readFileSync(path.join(SCRIPTS_DIR, 'lib.sh'), 'utf8')}\n${loop}`, 'health', ...paths], { reject: false, env: { PATH } });
      expectNoMarker();
      expect(r.exitCode, r.stderr).toBe(0);
      expect(r.stdout.split('\n')).toEqual(paths.map(() => '200'));
      // curl sends the bytes as they are, but for the non-ASCII ones, which it %-encodes
      const sent = (p: string) => [...Buffer.from(p, 'utf8')].map((b) => (b >= 0x80 ? `%${b.toString(16).padStart(2, '0')}` : String.fromCharCode(b))).join('');
      expect(seen).toEqual(paths.map(sent));
    } finally {
      server.close();
    }
    expect(paths.length).toBeGreaterThan(100);
  });

  it('the lock owner and the audit text are written as they are (newline and CR: a space)', async () => {
    const texts = VALUES.filter((v) => !v.includes('\0'));
    const d = path.join(ROOT, 'lockd');
    fs.mkdirSync(path.join(d, '.switchyard'), { recursive: true });
    // a lock directory of its own for each text (the owner file read from node): one mkdir a text
    const loop = `STATE=${q(`${d}/.switchyard`)} USER=u; i=0
for t in "$@"; do LOCK=$OUT/lock$i; sy_lock_take R "$t"; sy_audit deploy release=R "msg=$t"; i=$((i + 1)); done`;
    const dir = outDir();
    fs.mkdirSync(dir, { recursive: true });
    const r = await execa(which('bash'), ['-c', `${fs.readFileSync(path.join(SCRIPTS_DIR, 'lib.sh'), 'utf8')}\n${loop}`, 'lock', ...texts], { reject: false, env: { PATH, OUT: dir, HOSTNAME: 'hh' } });
    expectNoMarker();
    expect(r.exitCode, r.stderr).toBe(0);
    const flat = (t: string) => t.replace(/[\n\r]/g, ' ');
    const audit = fs.readFileSync(path.join(d, '.switchyard', 'audit.log'), 'utf8').split('\n');
    const bad: string[] = [];
    texts.forEach((t, i) => {
      const owner = fs.readFileSync(path.join(dir, `lock${i}`, 'owner'), 'utf8');
      const m = /^release=R since=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ (.*)\n$/s.exec(owner);
      if (m?.[1] !== flat(t || 'u@hh')) bad.push(`owner ${show(t)}: ${show(owner)}`);
      const line = audit[i]!.replace(/^\S+ deploy user=u release=R/, '');
      if (line !== (t ? ` msg=${flat(t)}` : '')) bad.push(`audit ${show(t)}: ${show(audit[i]!)}`);
    });
    expect(bad).toEqual([]);
  });

  it('release ids: newReleaseId with any hostile git sha is a RELEASE_ID, and the scripts use the same pattern', () => {
    const lib = fs.readFileSync(path.join(SCRIPTS_DIR, 'lib.sh'), 'utf8');
    expect(lib).toContain(`SY_RELEASE_ID='${RELEASE_ID.source}'`);
    const syId = new RegExp(/SY_ID='([^']*)'/.exec(lib)![1]!);
    for (const when of [new Date(0), new Date(), new Date('9999-12-31T23:59:59.999Z')]) {
      for (const v of VALUES) {
        const id = newReleaseId(when, v);
        expect(id, show(v)).toMatch(syId);
        // a hand-given sha in upper case too: RELEASE_ID (what retire prunes) wants a-f
        expect(id, show(v)).toMatch(RELEASE_ID);
      }
    }
  });
});

// ---- numbers: what the schema accepts, the script must accept ----------------------------------

interface NumKey {
  key: string;
  set(i: Input, n: number): void;
  /** The remote commands the number reaches (none: the client's only). */
  cmds(env: Environment): RemoteCommand[];
  /** For a client-only number: does the client's own use hold it (a timer under 2^31 ms)? */
  client?: (n: number) => boolean;
}

const CANDIDATES = [0, 0.001, 0.0001, 1e-7, 0.5, 2.5, 1, 2, 100, 599, 600, 9999, 10000, 86400, 86400.001, 999999, 999999.999, 1e6, 1e7, 2 ** 31, Number.MAX_SAFE_INTEGER, 1e21, -1];

const rel = (env: Environment) => releaseCommand(env, { release: RID, lockOwner: 'o', audit: 'a' });
const TIMER = (ms: number) => ms < 2 ** 31;
const NUM_KEYS: NumKey[] = [
  { key: 'ssh.commandTimeoutSeconds', set: (i, n) => (i.ssh = { commandTimeoutSeconds: n }), cmds: (e) => [rel(e)], client: (n) => TIMER(n * 1000) && TIMER(rel({ ...validateEnvironment(baseInput(), WHERE), ssh: { ...validateEnvironment(baseInput(), WHERE).ssh, commandTimeoutSeconds: n } }).timeoutSeconds * 1000) },
  { key: 'ssh.connectTimeoutSeconds', set: (i, n) => (i.ssh = { connectTimeoutSeconds: n }), cmds: () => [], client: (n) => TIMER(n * 1000) },
  { key: 'ssh.keepaliveIntervalSeconds', set: (i, n) => (i.ssh = { keepaliveIntervalSeconds: n }), cmds: () => [], client: (n) => TIMER(n * 1000) },
  { key: 'app.startTimeoutSeconds', set: (i, n) => (i.app.startTimeoutSeconds = n), cmds: (e) => [rel(e), rel(e).steps.prepare] },
  { key: 'app.health.timeoutSeconds', set: (i, n) => (i.app.health = { timeoutSeconds: n }), cmds: (e) => [rel(e).steps.prepare] },
  { key: 'app.health.expectStatus', set: (i, n) => (i.app.health = { expectStatus: n }), cmds: (e) => [rel(e).steps.prepare, statusCommand(e)] },
  { key: 'retire.graceSeconds', set: (i, n) => (i.retire = { graceSeconds: n }), cmds: (e) => [rel(e).steps.retire, rel(e).steps.undo], client: (n) => TIMER((n + 30 * 2 + 120) * 1000) },
  { key: 'retire.drainSeconds', set: (i, n) => (i.retire = { drainSeconds: n, drain: 'connections' }), cmds: (e) => [rel(e).steps.retire], client: (n) => TIMER((2 + n * 2 + 120) * 1000) },
  { key: 'keepReleases', set: (i, n) => (i.keepReleases = n), cmds: (e) => [rel(e).steps.retire] },
  { key: 'parallel', set: (i, n) => (i.parallel = n), cmds: () => [] },
  { key: 'ssh.port', set: (i, n) => (i.ssh = { port: n }), cmds: () => [] },
  { key: 'hosts[].port', set: (i, n) => (i.hosts[0].port = n), cmds: () => [] },
];

describe('numbers: every boundary value the schema accepts passes the scripts’ own checks', () => {
  it('the table', () => {
    // deployTo not set up: a script that validated its options then exits 3 (not set up); 2 is a refusal
    const notSetUp = path.join(ROOT, 'not-set-up');
    const rows: { key: string; n: number; schema: boolean; cmds: number[]; client?: boolean }[] = [];
    const cmds: Batched[] = [];
    for (const k of NUM_KEYS) {
      for (const n of CANDIDATES) {
        const input = baseInput();
        input.deployTo = notSetUp;
        input.socketDir = path.join(ROOT, 'ns-s');
        k.set(input, n);
        let env: Environment;
        let schema = true;
        try {
          env = validateEnvironment(input, WHERE);
        } catch {
          schema = false;
          // what the scripts would make of it: the number forced into a valid environment
          const ok = validateEnvironment({ ...baseInput(), deployTo: notSetUp, socketDir: path.join(ROOT, 'ns-s') }, WHERE);
          const forced = JSON.parse(JSON.stringify(ok)) as Input;
          k.set(forced, n);
          env = { ...ok, ...forced, app: { ...ok.app, ...forced.app, health: { ...ok.app.health, ...forced.app.health } }, ssh: { ...ok.ssh, ...forced.ssh }, retire: { ...ok.retire, ...forced.retire } } as Environment;
        }
        let built: RemoteCommand[] = [];
        try {
          built = k.cmds(env);
        } catch {
          built = [];
        }
        const idx = built.map((c) => cmds.push({ command: c.command }) - 1);
        rows.push({ key: k.key, n, schema, cmds: idx, ...(k.client ? { client: k.client(n) } : {}) });
      }
    }
    const { rc } = batch(cmds);
    const table = rows.map((r) => {
      const codes = r.cmds.map((i) => rc[i]!);
      return { ...r, codes, scripts: codes.length ? (codes.every((c) => c === 3) ? 'accepts' : `refuses (exit ${codes.join('/')})`) : 'client only' };
    });
    console.log(
      ['key | value | schema | scripts | client timers', ...table.map((t) => `${t.key} | ${t.n} | ${t.schema ? 'accepts' : 'refuses'} | ${t.scripts} | ${t.client === undefined ? '' : t.client ? 'ok' : 'overflow'}`)].join('\n'),
    );
    const disagree = table.filter((t) => t.schema && (t.scripts.startsWith('refuses') || t.client === false)).map((t) => `${t.key}=${t.n}: ${t.scripts}, timers ${t.client}`);
    expect(disagree).toEqual([]);
    // and the schema is not stricter than it needs to be: the documented examples pass
    for (const t of table.filter((x) => [0.001, 2.5, 600].includes(x.n) && !['keepReleases', 'parallel', 'ssh.port', 'hosts[].port', 'app.health.expectStatus'].includes(x.key))) {
      if (!(t.key.endsWith('TimeoutSeconds') && t.n === 0)) expect(t.schema, `${t.key}=${t.n}`).toBe(true);
    }
  });
});
