// Issue 12: nothing the scripts do reads, writes or deletes outside deployTo and socketDir; modes
// are explicit whatever the login umask; pruning deletes only switchyard's own releases. Hostile
// builds, packages and hand-made directories against the real scripts and the real example app.
import { execa } from 'execa';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import tarStream from 'tar-stream';
import { afterEach, describe, expect, it } from 'vitest';
import { parseResultLines } from '../../lib/remote/protocol';
import { all, find, HELLO_DIR, type RunOptions, ScriptLab, type ScriptResult, scriptText, show, useScriptLab, which } from '../support/scripts';

const lab = useScriptLab();

/** Names, types, modes, inodes, contents and link targets of a tree: any change shows. */
function treeHash(root: string): string {
  const h = crypto.createHash('sha256');
  const walk = (rel: string) => {
    const abs = path.join(root, rel);
    const st = fs.lstatSync(abs);
    h.update(`${rel}\0${st.mode}\0${st.ino}\0${st.size}\0`);
    if (st.isSymbolicLink()) h.update(fs.readlinkSync(abs));
    else if (st.isFile()) h.update(fs.readFileSync(abs));
    else if (st.isDirectory()) for (const e of fs.readdirSync(abs).sort()) walk(path.join(rel, e));
  };
  walk('.');
  return h.digest('hex');
}

/** A directory outside deployTo and socketDir holding something to lose. */
function outsideDir(l: ScriptLab): string {
  const out = path.join(l.root, 'outside');
  fs.mkdirSync(path.join(out, 'b'), { recursive: true });
  fs.writeFileSync(path.join(out, 'precious.txt'), 'keep me\n');
  fs.writeFileSync(path.join(out, 'b', 'data.txt'), 'keep me too\n');
  return out;
}

/** The example app copied into a build directory, changed by `edit`, packed as the test packages are. */
function packBuild(l: ScriptLab, name: string, edit: (dir: string) => void): string {
  const dir = path.join(l.root, `build-${name}`);
  fs.cpSync(HELLO_DIR, dir, { recursive: true });
  edit(dir);
  const file = path.join(l.root, `${name}.tar.gz`);
  execFileSync('tar', ['-czf', file, '-C', dir, '.']);
  return file;
}

type Entry = { name: string; type?: 'file' | 'directory' | 'symlink' | 'link'; linkname?: string; mode?: number; body?: string };

/**
 * A .tar.gz (or, `plain`, a tar: the client sends small uploads so) with exactly these members
 * (names as given: `../x`, `/abs`…), after the example app's files.
 */
async function packEntries(l: ScriptLab, name: string, entries: Entry[], o: { plain?: boolean } = {}): Promise<string> {
  const pack = tarStream.pack();
  const file = path.join(l.root, o.plain ? `${name}.tar` : `${name}.tar.gz`);
  const done = new Promise<void>((resolve, reject) => {
    const out = fs.createWriteStream(file);
    out.on('finish', resolve).on('error', reject);
    if (o.plain) pack.pipe(out);
    else pack.pipe(zlib.createGzip()).pipe(out);
  });
  const add = (e: Entry) =>
    new Promise<void>((resolve, reject) =>
      pack.entry({ name: e.name, type: e.type ?? 'file', mode: e.mode ?? (e.type === 'directory' ? 0o755 : 0o644), ...(e.linkname ? { linkname: e.linkname } : {}) }, e.body ?? '', (err) => (err ? reject(err) : resolve())),
    );
  for (const f of fs.readdirSync(HELLO_DIR).sort()) await add({ name: f, body: fs.readFileSync(path.join(HELLO_DIR, f), 'utf8') });
  for (const e of entries) await add(e);
  pack.finalize();
  await done;
  return file;
}

/** After a refused prepare: nothing started, no release dir, no socket, the lock free. */
function expectNothingLeft(l: ScriptLab, release: string) {
  expect(l.processes()).toEqual([]);
  expect(fs.existsSync(l.releaseDir(release))).toBe(false);
  expect(fs.existsSync(l.stageSock(release))).toBe(false);
  expect(l.lockHeld()).toBe(false);
}

describe('shared paths never run through a symlink', () => {
  it.each([
    ['logs -> <outside>, shared logs', 'logs', (d: string, out: string) => fs.symlinkSync(out, path.join(d, 'logs')), 'logs'],
    ['a -> <outside>, shared a/b', 'a/b', (d: string, out: string) => fs.symlinkSync(out, path.join(d, 'a')), 'a'],
  ])('a build shipping %s: refused (2) naming the path and the link, nothing outside touched', async (_name, shared, edit, link) => {
    const out = outsideDir(lab());
    const before = treeHash(out);
    const pkg = packBuild(lab(), 'evil', (d) => edit(d, out));
    const r = await lab().prepare('r1', { args: ['--shared', shared] }, { inputFile: pkg });
    expect(r.code, show(r)).toBe(2);
    const err = find(r, 'error');
    expect(err?.fields).toEqual({ code: '2', step: 'shared' });
    expect(err?.msg).toContain(`shared path '${shared}'`);
    expect(err?.msg).toContain(path.join(lab().releaseDir('r1'), link));
    expect(err?.msg).toContain(`is a symlink (to ${out})`);
    expect(treeHash(out)).toBe(before);
    expect(fs.existsSync(path.join(lab().deployTo, 'shared', link))).toBe(false); // refused before any change
    expectNothingLeft(lab(), 'r1');
  });

  it('a symlink made under shared/ above a shared path: refused, nothing created through it', async () => {
    const out = outsideDir(lab());
    const before = treeHash(out);
    fs.symlinkSync(out, path.join(lab().deployTo, 'shared', 'a'));
    const r = await lab().prepare('r1', { args: ['--shared', 'a/new'] });
    expect(r.code, show(r)).toBe(2);
    expect(find(r, 'error')?.msg).toContain(`${path.join(lab().deployTo, 'shared', 'a')} is a symlink (to ${out})`);
    expect(fs.existsSync(path.join(out, 'new'))).toBe(false);
    expect(treeHash(out)).toBe(before);
    expectNothingLeft(lab(), 'r1');
  });

  it('shared paths inside one another are refused (the second would go through the first one\'s link)', async () => {
    const r = await lab().prepare('r1', { args: ['--shared', 'public', '--shared', 'public/uploads'] });
    expect(r.code, show(r)).toBe(2);
    expect(find(r, 'error')?.msg).toContain("'public' and 'public/uploads' overlap");
    expectNothingLeft(lab(), 'r1');
  });

  it('control: the same shared paths over real directories are linked, and again with --reuse (our own links)', async () => {
    const pkg = packBuild(lab(), 'good', (d) => {
      fs.mkdirSync(path.join(d, 'a', 'b'), { recursive: true });
      fs.writeFileSync(path.join(d, 'a', 'b', 'old.txt'), 'replaced by the shared dir\n');
      fs.mkdirSync(path.join(d, 'logs'));
    });
    fs.copyFileSync(pkg, lab().packageFile);
    await lab().deploy('r1', { args: ['--shared', 'logs', '--shared', 'a/b'] });
    for (const p of ['logs', 'a/b']) {
      expect(fs.readlinkSync(path.join(lab().releaseDir('r1'), p))).toBe(path.join(lab().deployTo, 'shared', p));
      expect(fs.statSync(path.join(lab().deployTo, 'shared', p)).isDirectory()).toBe(true);
    }
    expect(fs.lstatSync(path.join(lab().releaseDir('r1'), 'a')).isDirectory()).toBe(true);
    const again = await lab().prepare('r1', { reuse: true, args: ['--shared', 'logs', '--shared', 'a/b'] });
    expect(again.code, show(again)).toBe(0);
    expect(fs.readlinkSync(path.join(lab().releaseDir('r1'), 'a', 'b'))).toBe(path.join(lab().deployTo, 'shared', 'a/b'));
  });
});

describe('the package never writes outside releases/R', () => {
  // R is <root>/d/releases/R: ../ is releases/, ../../../ the lab root.
  const escapes: [string, (out: string) => Entry[], (l: ScriptLab, out: string) => string][] = [
    ['a ../ name', () => [{ name: '../escaped.txt', body: 'x' }], (l) => path.join(l.deployTo, 'releases', 'escaped.txt')],
    ['a ../../../ name', () => [{ name: './../../../escaped.txt', body: 'x' }], (l) => path.join(l.root, 'escaped.txt')],
    ['an absolute name', (out) => [{ name: `${out}/abs.txt`, body: 'x' }], (_l, out) => path.join(out, 'abs.txt')],
    ['a symlink to outside, then a file through it', (out) => [{ name: 'link', type: 'symlink', linkname: out }, { name: 'link/file.txt', body: 'x' }], (_l, out) => path.join(out, 'file.txt')],
    ['a file through a symlink listed after it', (out) => [{ name: 'link/file.txt', body: 'x' }, { name: 'link', type: 'symlink', linkname: out }], (_l, out) => path.join(out, 'file.txt')],
    ['a symlink to outside, then a directory over it (a chmod 0777)', (out) => [{ name: 'link', type: 'symlink', linkname: out }, { name: './link/', type: 'directory', mode: 0o777 }], (_l, out) => path.join(out, 'never')],
    ['a hard link to a file outside', (out) => [{ name: 'hard', type: 'link', linkname: `${out}/precious.txt` }], (_l, out) => path.join(out, 'never')],
  ];
  // each as a .tar.gz and as a plain tar: prepare lists and unpacks whichever it is sent
  it.each(escapes.flatMap(([n, e, t]) => [[`${n} (.tar.gz)`, e, t], [`${n} (plain tar)`, e, t]] as typeof escapes))('%s: refused (2) before anything is unpacked', async (name, entries, target) => {
    const out = outsideDir(lab());
    const before = treeHash(out);
    const pkg = await packEntries(lab(), 'evil', entries(out), { plain: name.endsWith('(plain tar)') });
    void lab().packageFile; // made on first use by prepare(): not the script's doing
    const rootBefore = fs.readdirSync(lab().root).sort();
    const r = await lab().prepare('r1', {}, { inputFile: pkg });
    expect(r.code, show(r)).toBe(2);
    expect(find(r, 'error')?.fields).toEqual({ code: '2', step: 'unpack' });
    expect(find(r, 'error')?.msg).toMatch(/^refusing the package: /);
    expect(fs.existsSync(target(lab(), out))).toBe(false);
    expect(treeHash(out)).toBe(before);
    expect(fs.readdirSync(lab().root).sort()).toEqual(rootBefore);
    expect(fs.readdirSync(path.join(lab().deployTo, 'releases'))).toEqual([]);
    expectNothingLeft(lab(), 'r1');
  });

  it('a package whose .switchyard is a symlink (app.log and pid would go through it): refused (2), nothing written there', async () => {
    const out = outsideDir(lab());
    const before = treeHash(out);
    const pkg = await packEntries(lab(), 'evil', [{ name: '.switchyard', type: 'symlink', linkname: out }]);
    const r = await lab().prepare('r1', {}, { inputFile: pkg });
    expect(r.code, show(r)).toBe(2);
    // the listing check refuses it before tar writes anything (the check after the unpack stays as a second guard)
    expect(find(r, 'error')?.msg).toMatch(/^refusing the package: a symlink at or below \.switchyard\/: .*"\.switchyard" -> /);
    expect(treeHash(out)).toBe(before);
    expectNothingLeft(lab(), 'r1');
  });

  it('a package with a symlink below .switchyard/ (app.log, pid): refused (2) before anything is unpacked', async () => {
    const out = outsideDir(lab());
    const before = treeHash(out);
    const pkg = await packEntries(lab(), 'evil', [
      { name: '.switchyard/', type: 'directory' },
      { name: '.switchyard/app.log', type: 'symlink', linkname: path.join(out, 'app.log') },
    ]);
    const r = await lab().prepare('r1', {}, { inputFile: pkg });
    expect(r.code, show(r)).toBe(2);
    expect(find(r, 'error')?.msg).toMatch(/^refusing the package: a symlink at or below \.switchyard\/: .*"\.switchyard\/app\.log" -> /);
    expect(fs.existsSync(path.join(out, 'app.log'))).toBe(false);
    expect(treeHash(out)).toBe(before);
    expectNothingLeft(lab(), 'r1');
  });

  it('control: symlinks that nothing goes through (inside and out), ./ names, quotes and spaces unpack and start', async () => {
    const out = outsideDir(lab());
    const before = treeHash(out);
    const pkg = await packEntries(lab(), 'fine', [
      { name: './src/', type: 'directory' },
      { name: './src/a "quoted" name.js', body: 'a' },
      { name: 'lib', type: 'symlink', linkname: 'src' },
      { name: 'bin/tool', type: 'symlink', linkname: '../src/a "quoted" name.js' },
      { name: 'ext', type: 'symlink', linkname: out },
    ]);
    const r = await lab().prepare('r1', {}, { inputFile: pkg });
    expect(r.code, show(r)).toBe(0);
    const dir = lab().releaseDir('r1');
    expect(fs.readFileSync(path.join(dir, 'lib', 'a "quoted" name.js'), 'utf8')).toBe('a');
    expect(fs.readlinkSync(path.join(dir, 'ext'))).toBe(out);
    expect(fs.existsSync(path.join(lab().deployTo, '.switchyard', 'lock', 'package.tar'))).toBe(false);
    expect(treeHash(out)).toBe(before);
  });
});

/** lab.run with `umask 000` first in the remote shell, as a permissive login would leave it. */
function runUnderUmask000(name: string, args: readonly string[], o: RunOptions = {}): Promise<ScriptResult> {
  return runBash(`umask 000\n${scriptText(name)}`, `${name}.sh`, args, o);
}

async function runBash(text: string, name: string, args: readonly string[], o: RunOptions = {}): Promise<ScriptResult> {
  const r = await execa(which('timeout'), ['-k', '5', String(o.timeout ?? 60), which('bash'), '-c', text, name, ...args], {
    reject: false,
    stripFinalNewline: false,
    cwd: o.cwd ?? os.tmpdir(),
    ...(o.inputFile ? { inputFile: o.inputFile } : { stdin: 'pipe' as const }),
  });
  const stdout = String(r.stdout ?? '');
  return { code: r.exitCode ?? -1, stdout, stderr: String(r.stderr ?? ''), lines: parseResultLines(stdout) };
}

/** Everything under the dirs that others may write to (symlinks excluded: their mode means nothing). */
async function worldWritable(...dirs: string[]): Promise<string[]> {
  const r = await execa('find', [...dirs, '!', '-type', 'l', '-perm', '-o+w', '-print'], { reject: false });
  expect(r.exitCode, r.stderr).toBe(0);
  return r.stdout.split('\n').filter(Boolean);
}

const mode = (p: string) => (fs.statSync(p).mode & 0o7777).toString(8);

describe('explicit modes whatever the umask', () => {
  let own: ScriptLab | undefined;
  afterEach(async () => {
    await own?.cleanup();
    own = undefined;
  });

  it('control: the umask 000 prefix really reaches the remote shell, and find sees what it makes', async () => {
    own = ScriptLab.create();
    const r = await runBash('umask 000; mkdir -- "$1/loose"; : >"$1/loose/file"; umask', 'probe', [own.root]);
    expect(r.stdout.trim()).toBe('0000');
    expect((await worldWritable(own.root)).sort()).toEqual([path.join(own.root, 'loose'), path.join(own.root, 'loose', 'file')]);
  });

  it('setup → prepare → switch → retire (twice) under umask 000: nothing world-writable in deployTo or socketDir', async () => {
    own = ScriptLab.create();
    const l = own;
    l.run = runUnderUmask000;
    await l.setup();
    // A build with loose modes of its own (tar as root keeps archive modes unless told not to) and
    // rendered config at 0640.
    const pkg = packBuild(l, 'loose', (d) => {
      fs.mkdirSync(path.join(d, 'public'));
      fs.chmodSync(path.join(d, 'public'), 0o777);
      fs.writeFileSync(path.join(d, 'public', 'data.txt'), 'x');
      fs.chmodSync(path.join(d, 'public', 'data.txt'), 0o666);
      fs.mkdirSync(path.join(d, 'config'));
      fs.writeFileSync(path.join(d, 'config', 'app.json'), '{}');
      fs.chmodSync(path.join(d, 'config', 'app.json'), 0o640);
    });
    fs.copyFileSync(pkg, l.packageFile);
    await l.deploy('r1', { args: ['--shared', 'logs', '--shared', 'public/uploads'] });
    const p = await l.prepare('r2', { args: ['--shared', 'logs', '--shared', 'public/uploads'] });
    expect(p.code, show(p)).toBe(0);
    const lock = path.join(l.deployTo, '.switchyard', 'lock');
    expect([mode(lock), mode(path.join(lock, 'owner')), mode(path.join(lock, 'fresh'))]).toEqual(['750', '640', '640']);
    expect(await worldWritable(l.deployTo, l.socketDir)).toEqual([]);
    const s = await l.run('switch', l.siteArgs('r2'));
    expect(s.code, show(s)).toBe(0);
    const t = await l.run('retire', [...l.siteArgs('r2'), '--grace', '0.1', '--drain', '5']);
    expect(t.code, show(t)).toBe(0);

    expect(await worldWritable(l.deployTo, l.socketDir)).toEqual([]);
    const st = (n: string) => mode(path.join(l.deployTo, '.switchyard', n));
    expect([st('.'), st('tmp'), st('audit.log'), st('live'), st('previous')]).toEqual(['750', '750', '640', '640', '640']);
    expect([mode(l.deployTo), mode(path.join(l.deployTo, 'releases')), mode(path.join(l.deployTo, 'shared')), mode(l.releaseDir('r2'))]).toEqual(['750', '750', '750', '750']);
    expect(mode(path.join(l.deployTo, 'shared', 'public', 'uploads'))).toBe('750');
    expect(mode(path.join(l.releaseDir('r2'), 'config', 'app.json'))).toBe('640');
    expect(mode(path.join(l.releaseDir('r2'), 'public', 'data.txt'))).toBe('640');
    expect(mode(path.join(l.releaseDir('r2'), '.switchyard', 'app.log'))).toBe('640');
    // nginx must get through socketDir to the sockets (0660, the socket group).
    expect(mode(l.socketDir)).toBe('755');
    expect(mode(l.liveSock)).toBe('660');
  });

  it('with --socket-group, socketDir is 0750 and that group; setup takes world write off an older layout, never off a sticky dir', async () => {
    own = ScriptLab.create();
    const l = own;
    const group = process.getuid?.() === 0 ? 'daemon' : (await execa('id', ['-Gn'])).stdout.split(' ').pop()!;
    const gid = Number((await execa('getent', ['group', group])).stdout.split(':')[2]);
    const r = await runUnderUmask000('setup', ['--deploy-to', l.deployTo, '--socket-dir', l.socketDir, '--socket-group', group]);
    expect(r.code, show(r)).toBe(0);
    expect(mode(l.socketDir)).toBe('750');
    expect(fs.statSync(l.socketDir).gid).toBe(gid);
    expect(await worldWritable(l.deployTo, l.socketDir)).toEqual([]);

    // As an older setup under umask 000 left it; and a socketDir shared like /tmp (sticky).
    for (const d of ['.', 'releases', '.switchyard']) fs.chmodSync(path.join(l.deployTo, d), 0o777);
    fs.writeFileSync(path.join(l.deployTo, '.switchyard', 'audit.log'), 'old\n', { mode: 0o666 });
    fs.chmodSync(path.join(l.deployTo, '.switchyard', 'audit.log'), 0o666);
    const sticky = path.join(l.root, 'tmp-like');
    fs.mkdirSync(sticky);
    fs.chmodSync(sticky, 0o1777);
    const again = await runUnderUmask000('setup', ['--deploy-to', l.deployTo, '--socket-dir', sticky]);
    expect(again.code, show(again)).toBe(0);
    expect(await worldWritable(l.deployTo)).toEqual([]);
    expect(again.stderr).toContain(`${path.join(l.deployTo, '.switchyard', 'audit.log')} was world-writable`);
    expect(mode(sticky)).toBe('1777');
  });
});

describe('pruning deletes only switchyard\'s own releases', () => {
  const id = (n: number, sha = '') => `202601${String(n).padStart(2, '0')}T000000.000Z${sha ? `-${sha}` : ''}`;

  /** A release directory as the client's package leaves it: .switchyard/release.json inside. */
  function fakeRelease(name: string, json = true): void {
    const dir = lab().unpack(name);
    if (json) fs.writeFileSync(path.join(dir, '.switchyard', 'release.json'), `{"release":"${name}"}\n`);
  }

  it('keeps hand-made directories and id-named ones without release.json, deletes real old releases beyond --keep', async () => {
    const releases = path.join(lab().deployTo, 'releases');
    for (const n of [1, 2, 3]) fakeRelease(id(n, 'abc'));
    fakeRelease('20260101T000000.000Z-old', false); // an id-like name, but no release.json: not ours
    fakeRelease('backup-manual'); // release.json and all, but not a release id
    fakeRelease('20991231T000000.000Z-fff', false); // sorts after everything: never counted
    const out = outsideDir(lab());
    fs.mkdirSync(path.join(out, '.switchyard'));
    fs.writeFileSync(path.join(out, '.switchyard', 'release.json'), '{}\n');
    fs.symlinkSync(out, path.join(releases, id(4, 'dd'))); // a link named like a release
    const before = treeHash(out);
    const handMade = ['20260101T000000.000Z-old', '20991231T000000.000Z-fff', 'backup-manual', id(4, 'dd')];

    // The packages of real deploys hold release.json, as the client's do.
    fs.copyFileSync(packBuild(lab(), 'real', (d) => {
      fs.mkdirSync(path.join(d, '.switchyard'));
      fs.writeFileSync(path.join(d, '.switchyard', 'release.json'), '{}\n');
    }), lab().packageFile);
    const deploy = async (release: string, keep: string) => {
      expect((await lab().prepare(release)).code).toBe(0);
      expect((await lab().run('switch', lab().siteArgs(release))).code).toBe(0);
      const r = await lab().run('retire', [...lab().siteArgs(release), '--grace', '0.1', '--drain', '5', '--keep', keep]);
      expect(r.code, show(r)).toBe(0);
      return all(r, 'pruned').map((l) => l.fields.release);
    };

    // Ours: 3 old, then c, d. --keep 3 keeps id(3), c, d: only the two oldest go. Had the hand-made
    // ones counted (as they did), the newest three would have been 2099…, backup-manual and d.
    expect(await deploy(id(10, 'c'), '5')).toEqual([]);
    expect(await deploy(id(11, 'd'), '3')).toEqual([id(2, 'abc'), id(1, 'abc')]);
    // --keep 0: everything of ours but R (live, current) and the previous one.
    expect(await deploy(id(12, 'e'), '0')).toEqual([id(10, 'c'), id(3, 'abc')]);

    expect(fs.readdirSync(releases).sort()).toEqual([...handMade, id(11, 'd'), id(12, 'e')].sort());
    expect(fs.readFileSync(path.join(releases, 'backup-manual', 'server.js'), 'utf8')).toBe(fs.readFileSync(path.join(HELLO_DIR, 'server.js'), 'utf8'));
    expect(fs.lstatSync(path.join(releases, id(4, 'dd'))).isSymbolicLink()).toBe(true);
    expect(treeHash(out)).toBe(before);
  });
});
