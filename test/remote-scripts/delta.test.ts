// prepare.sh --delta with the real client side (lib/release/package.ts): the host lists what its
// live release has, the client sends the links and a package of the rest, and the new release must
// be exactly the build, whatever changed, however the old release was tampered with.
import { execa } from 'execa';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildPackage, type Upload } from '../../lib/release/package';
import { parseHaveLine, parseResultLines, uploadHead, type HaveEntry } from '../../lib/remote/protocol';
import { all, find, HELLO_DIR, SCRIPTS_DIR, scriptText, show, useScriptLab, which, type ScriptResult } from '../support/scripts';
import { filesOf, tree } from '../support/tree';

const lab = useScriptLab();
let tmp: string;
beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sy-delta-'));
});
afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** A build: the example app plus N files (40) in a few directories. */
function makeBuild(name: string, files = 40): string {
  const dir = path.join(tmp, name);
  fs.cpSync(HELLO_DIR, dir, { recursive: true });
  for (let i = 0; i < files; i++) {
    const f = path.join(dir, 'assets', `d${i % 4}`, `f${i}.txt`);
    fs.mkdirSync(path.dirname(f), { recursive: true });
    fs.writeFileSync(f, `file ${i}\n`.repeat(50));
  }
  fs.writeFileSync(path.join(dir, 'run.sh'), '#!/bin/sh\necho hi\n', { mode: 0o644 });
  return dir;
}

interface Client {
  have: Map<string, HaveEntry>;
  haveFrom?: string;
  upload?: Upload;
}

/** prepare --delta as the client runs it: read the listing, send links + the rest, close stdin. */
async function deltaPrepare(release: string, buildDir: string, tamper?: (u: Upload) => Buffer): Promise<ScriptResult & Client> {
  const pkg = await buildPackage({ buildDir, meta: { release } });
  const args = lab().prepareArgs(release);
  args.splice(args.indexOf('--'), 0, '--delta');
  const child = execa(which('bash'), ['-c', scriptText('prepare'), 'prepare.sh', ...args], { reject: false, stdin: 'pipe' });
  const client: Client = { have: new Map() };
  let listing = false;
  let buf = '';
  child.stdout!.on('data', (c: Buffer) => {
    buf += c.toString();
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (line.startsWith('::sy have ')) {
        listing = true;
        client.haveFrom = /release=(\S+)/.exec(line)?.[1];
      } else if (line.startsWith('::sy have-end ')) {
        listing = false;
        void pkg.uploadFor(client.have).then((u) => {
          client.upload = u;
          child.stdin!.end(Buffer.concat([tamper ? tamper(u) : uploadHead(u), fs.readFileSync(u.file)]));
        });
      } else if (listing) {
        const h = parseHaveLine(line);
        if (h) client.have.set(h.path, h.entry);
      }
    }
  });
  const r = await child;
  await pkg.remove();
  const stdout = String(r.stdout);
  const res = { code: r.exitCode ?? -1, stdout, stderr: String(r.stderr), lines: parseResultLines(stdout) };
  const prepared = find(res, 'prepared');
  if (prepared) lab().track(Number(prepared.fields.pid), prepared.fields.starttime ?? '');
  return { ...res, ...client };
}

async function release(r: string, buildDir: string): Promise<ScriptResult & Client> {
  const p = await deltaPrepare(r, buildDir);
  expect(p.code, show(p)).toBe(0);
  for (const step of [
    await lab().run('switch', lab().siteArgs(r)),
    await lab().run('retire', [...lab().siteArgs(r), '--grace', '0.1', '--drain', '5']),
  ]) {
    expect(step.code, show(step)).toBe(0);
  }
  return p;
}

const inode = (f: string) => fs.statSync(f).ino;
/** Our scripts, in every release's .switchyard/bin: linked like the build's files. */
const SCRIPTS = fs.readdirSync(SCRIPTS_DIR).filter((f) => f.endsWith('.sh')).length;

describe('prepare --delta', () => {
  it('first deploy: nothing to link from (have release=none), the whole build sent; its manifest written', async () => {
    const b = makeBuild('b1');
    const p = await release('r1', b);
    expect(p.haveFrom).toBe('none');
    expect(p.upload!.links).toEqual([]);
    expect(tree(lab().releaseDir('r1'))).toEqual(tree(b));
    const manifest = fs.readFileSync(path.join(lab().releaseDir('r1'), '.switchyard', 'manifest'), 'utf8');
    const check = await execa('sha256sum', ['-c', '--quiet', '-'], { cwd: lab().releaseDir('r1'), input: manifest, reject: false });
    expect(check.exitCode, check.stdout + check.stderr).toBe(0);
    expect(manifest.split('\n').filter(Boolean)).toHaveLength(filesOf(b).length + SCRIPTS);
  });

  it('a changed, an added, a removed and a mode-changed file: only those travel, the rest is linked, the release is the build', async () => {
    const b1 = makeBuild('b1');
    await release('r1', b1);
    const before = tree(lab().releaseDir('r1'));
    const b2 = path.join(tmp, 'b2');
    fs.cpSync(b1, b2, { recursive: true, preserveTimestamps: false });
    fs.writeFileSync(path.join(b2, 'assets/d1/f1.txt'), 'changed\n');
    fs.mkdirSync(path.join(b2, 'assets/d9'));
    fs.writeFileSync(path.join(b2, 'assets/d9/new.txt'), 'added\n');
    fs.rmSync(path.join(b2, 'assets/d2/f2.txt'));
    fs.chmodSync(path.join(b2, 'run.sh'), 0o755);
    const p = await release('r2', b2);
    expect(p.haveFrom).toBe('r1');
    const r2 = lab().releaseDir('r2');
    expect(tree(r2)).toEqual(tree(b2));
    expect(fs.statSync(path.join(r2, 'run.sh')).mode & 0o777).toBe(0o750);
    // what travelled: the changed, the added and the mode-changed file (and our own .switchyard/)
    const sent = filesOf(b2).filter((f) => !p.upload!.links.includes(f));
    expect(sent.sort()).toEqual(['assets/d1/f1.txt', 'assets/d9/new.txt', 'run.sh']);
    expect(p.upload!.links).toContain('server.js');
    expect(inode(path.join(r2, 'server.js'))).toBe(inode(path.join(lab().releaseDir('r1'), 'server.js')));
    expect(inode(path.join(r2, 'run.sh'))).not.toBe(inode(path.join(lab().releaseDir('r1'), 'run.sh')));
    // the old release is as it was: a link is never written through
    expect(tree(lab().releaseDir('r1'))).toEqual(before);
    expect(fs.readFileSync(path.join(lab().releaseDir('r1'), 'assets/d1/f1.txt'), 'utf8')).toBe('file 1\n'.repeat(50));
    // and the next deploy links from r2, its manifest made of what was linked and what came
    const p3 = await release('r3', b2);
    expect(p3.haveFrom).toBe('r2');
    expect(p3.upload!.links.filter((l) => !l.startsWith('.switchyard/bin/')).sort()).toEqual(filesOf(b2));
    expect(p3.upload!.links.filter((l) => l.startsWith('.switchyard/bin/'))).toHaveLength(SCRIPTS);
    expect(tree(lab().releaseDir('r3'))).toEqual(tree(b2));
  });

  it('a file of the live release changed since it was unpacked is not offered, and the new release has the build\'s', async () => {
    const b = makeBuild('b1');
    await release('r1', b);
    const r1 = lab().releaseDir('r1');
    fs.appendFileSync(path.join(r1, 'assets/d0/f0.txt'), 'tampered\n'); // size and mtime change
    const same = path.join(r1, 'assets/d0/f4.txt'); // same size, mtime put back: the inode changes
    const t = fs.statSync(same);
    fs.rmSync(same);
    fs.writeFileSync(same, 'X'.repeat(t.size));
    fs.utimesSync(same, t.atime, t.mtime);
    fs.chmodSync(path.join(r1, 'package.json'), 0o600); // a mode changed
    fs.writeFileSync(path.join(r1, '.switchyard', 'stat'), fs.readFileSync(path.join(r1, '.switchyard', 'stat'), 'utf8').replace(/^.* server\.js\n/m, ''));
    const p = await release('r2', b);
    for (const f of ['assets/d0/f0.txt', 'assets/d0/f4.txt', 'package.json', 'server.js']) {
      expect(p.have.has(f), f).toBe(false);
      expect(p.upload!.links).not.toContain(f);
    }
    expect(p.have.has('assets/d0/f8.txt')).toBe(true);
    expect(tree(lab().releaseDir('r2'))).toEqual(tree(b));
  });

  it('no manifest in the live release (deployed before --delta, or hand-made): everything is sent', async () => {
    const b = makeBuild('b1');
    await release('r1', b);
    fs.rmSync(path.join(lab().releaseDir('r1'), '.switchyard', 'manifest'));
    const p = await release('r2', b);
    expect(p.haveFrom).toBe('r1');
    expect(p.have.size).toBe(0);
    expect(p.upload!.links).toEqual([]);
    expect(tree(lab().releaseDir('r2'))).toEqual(tree(b));
  });

  // 40 files: a list of links under 8 KiB, which bash reads itself; 600: over it, read by head -c
  it('a list of links over 8 KiB (600 files): one changed file travels, the rest is linked, the release is the build', async () => {
    const b1 = makeBuild('b1', 600);
    await release('r1', b1);
    const b2 = makeBuild('b2', 600);
    fs.writeFileSync(path.join(b2, 'assets', 'd1', 'f5.txt'), 'changed\n');
    const p = await release('r2', b2);
    expect(uploadHead(p.upload!).length).toBeGreaterThan(8192);
    expect(p.upload!.links).not.toContain('assets/d1/f5.txt');
    expect(p.upload!.links).toContain('assets/d1/f9.txt');
    expect(p.upload!.files).toBeLessThan(10);
    expect(tree(lab().releaseDir('r2'))).toEqual(tree(b2));
  });

  const refusals: [string, (u: Upload) => Buffer][] = [
    ['a path the host did not offer', (u) => withLinks(u, [...u.links, '../../../etc/passwd'])],
    ['a path offered twice', (u) => withLinks(u, [...u.links, u.links[0]!])],
    ['a list shorter than its header says', (u) => Buffer.from(`${uploadHead(u).length} ${u.bytes}\n${u.links.join('\n')}\n`)],
    ['a list longer than its header says', (u) => Buffer.concat([Buffer.from(`${uploadHead(u).length - `${uploadHead(u).length} ${u.bytes}\n`.length - 3} ${u.bytes}\n`), uploadHead(u).subarray(uploadHead(u).indexOf('\n') + 1)])],
    ['a header that is not two numbers', () => Buffer.from('all of it\n')],
  ];
  it.each(refusals.flatMap(([what, tamper]) => [40, 600].map((n) => [what, n, tamper] as const)))('refuses (2) %s (%i files): the new release removed, the lock released, the live one untouched', async (_, files, tamper) => {
    const b = makeBuild('b1', files);
    await release('r1', b);
    const before = tree(lab().releaseDir('r1'));
    const p = await deltaPrepare('r2', b, tamper);
    expect(p.code, show(p)).toBe(2);
    expect(all(p, 'error')).toHaveLength(1);
    expect(fs.existsSync(lab().releaseDir('r2'))).toBe(false);
    expect(lab().lockHeld()).toBe(false);
    expect(tree(lab().releaseDir('r1'))).toEqual(before);
    expect(lab().processes()).toHaveLength(1); // the live one
  });
});

function withLinks(u: Upload, links: string[]): Buffer {
  return uploadHead({ ...u, links });
}
