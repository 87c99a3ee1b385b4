// The package and its uploads (pure logic plus a temp build dir): what a host that offers files is
// sent, and what it links. The host side is tested in test/remote-scripts/delta.test.ts.
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildPackage, PLAIN_TAR_MAX, type HaveEntry } from '../../../lib/release/package';
import { REMOTE_SCRIPTS_DIR } from '../../../lib/remote/commands';
import { hostMode, linkable, parseHaveLine, uploadHead } from '../../../lib/remote/protocol';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sy-pkg-'));
  fs.mkdirSync(path.join(dir, 'build', 'a'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'build', 'a', 'one.txt'), 'one\n');
  fs.writeFileSync(path.join(dir, 'build', 'two.txt'), 'two\n', { mode: 0o755 });
  fs.symlinkSync('two.txt', path.join(dir, 'build', 'link'));
});
// every package a test builds is removed, as deploy's finally does (its temporary directory)
const made: { remove(): Promise<void> }[] = [];
afterEach(async () => {
  await Promise.all(made.splice(0).map((p) => p.remove()));
  fs.rmSync(dir, { recursive: true, force: true });
});

const sha = (s: string | Buffer) => crypto.createHash('sha256').update(s).digest('hex');
const members = (file: string) => execFileSync('tar', ['-tf', file], { encoding: 'utf8' }).split('\n').filter(Boolean).sort();
const pkgOf = async () => {
  const p = await buildPackage({ buildDir: path.join(dir, 'build'), meta: { release: 'r1' }, files: [{ path: 'config.json', content: '{}' }] });
  made.push(p);
  return p;
};

describe('protocol: the upload', () => {
  it('the header line counts the bytes of the list, one path a line; then the package size', () => {
    expect(uploadHead({ links: ['a/one.txt', 'é'], bytes: 123 }).toString()).toBe('13 123\na/one.txt\né\n');
    expect(uploadHead({ links: [], bytes: 9 }).toString()).toBe('0 9\n');
  });

  it('a listing line is SHA256 MODE PATH (the path may hold spaces); anything else is not one', () => {
    const s = 'a'.repeat(64);
    expect(parseHaveLine(`${s} 640 dir/a b.txt`)).toEqual({ path: 'dir/a b.txt', entry: { sha256: s, mode: '640' } });
    for (const bad of [`${s} 640`, `${s.slice(1)} 640 x`, `${s} 6a0 x`, '::sy have-end']) expect(parseHaveLine(bad)).toBeUndefined();
  });

  it('the host mode is the build mode under umask 027; names with control characters or a backslash, and .switchyard/ but bin/, are never linked', () => {
    expect([0o644, 0o755, 0o600, 0o4755, 0o777].map(hostMode)).toEqual(['640', '750', '600', '4750', '750']);
    expect(['a/b.txt', 'é ü.txt', '.switchyard/bin/lib.sh'].map(linkable)).toEqual([true, true, true]);
    expect(['a\nb', 'a\\b', 'a\tb', '.switchyard/release.json', '.switchyard/pid'].map(linkable)).toEqual([false, false, false, false, false]);
  });
});

describe('uploads', () => {
  it('a host with nothing gets every member; the same upload serves every such host', async () => {
    const p = await pkgOf();
    const u = await p.uploadFor(new Map());
    expect(u.links).toEqual([]);
    expect(members(u.file)).toEqual(expect.arrayContaining(['a', 'a/one.txt', 'two.txt', 'link', 'config.json', '.switchyard/release.json', '.switchyard/bin/lib.sh']));
    expect(await p.uploadFor(new Map())).toBe(u);
    expect(p.files).toBe(u.files);
    await p.remove();
  });

  it('links exactly the files offered with the same checksum and host mode; the rest, dirs and symlinks travel', async () => {
    const p = await pkgOf();
    const have = new Map<string, HaveEntry>([
      ['a/one.txt', { sha256: sha('one\n'), mode: '640' }], // same: linked
      ['two.txt', { sha256: sha('two\n'), mode: '640' }], // mode differs (750 here): sent
      ['config.json', { sha256: sha('{ }'), mode: '640' }], // content differs: sent
      ['gone.txt', { sha256: sha('x'), mode: '640' }], // not in the build: nothing
    ]);
    const u = await p.uploadFor(have);
    expect(u.links).toEqual(['a/one.txt']);
    const m = members(u.file);
    expect(m).not.toContain('a/one.txt');
    expect(m).toEqual(expect.arrayContaining(['a', 'two.txt', 'link', 'config.json']));
    const other = await p.uploadFor(new Map([...have, ['two.txt', { sha256: sha('two\n'), mode: '750' }]]));
    expect(other.links).toEqual(['a/one.txt', 'two.txt']);
    expect(other.file).not.toBe(u.file);
    await p.remove();
  });

  it('warm() readies the checksums before a host offers anything: the same links; a file gone meanwhile fails the upload, not the process', async () => {
    const have = new Map<string, HaveEntry>([['a/one.txt', { sha256: sha('one\n'), mode: '640' }]]);
    const p = await pkgOf();
    p.warm!();
    p.warm!(); // once
    await new Promise((r) => setImmediate(r));
    expect((await p.uploadFor(have)).links).toEqual(['a/one.txt']);
    await p.remove();

    const q = await pkgOf();
    fs.rmSync(path.join(dir, 'build', 'two.txt'));
    q.warm!();
    await new Promise((r) => setTimeout(r, 20)); // the checksums fail with nobody waiting: no unhandled rejection
    await expect(q.uploadFor(have)).rejects.toThrow(/ENOENT/);
    await q.remove();
  });

  it('a small upload is a plain tar (no gzip to start on the host), a larger one a .tar.gz', async () => {
    const gz = (file: string) => fs.readFileSync(file).subarray(0, 2).equals(Buffer.from([0x1f, 0x8b]));
    // everything linkable is linked (the host has it): release.json, the dirs and the link travel
    const scripts = fs.readdirSync(REMOTE_SCRIPTS_DIR).filter((n) => n.endsWith('.sh'));
    const have = new Map<string, HaveEntry>([
      ['a/one.txt', { sha256: sha('one\n'), mode: '640' }],
      ['two.txt', { sha256: sha('two\n'), mode: '750' }],
      ['config.json', { sha256: sha('{}'), mode: '640' }],
      ...scripts.map((n): [string, HaveEntry] => [`.switchyard/bin/${n}`, { sha256: sha(fs.readFileSync(path.join(REMOTE_SCRIPTS_DIR, n))), mode: '750' }]),
    ]);
    const whole = await (await pkgOf()).uploadFor(new Map());
    expect(gz(whole.file)).toBe(true); // the scripts alone are some 130 KB
    const small = await (await pkgOf()).uploadFor(have);
    expect(small.links.length).toBe(3 + scripts.length);
    expect(gz(small.file)).toBe(false);
    expect(fs.readFileSync(small.file).subarray(257, 262).toString()).toBe('ustar');
    expect(small.bytes).toBe(fs.statSync(small.file).size);
    expect(small.bytes).toBeLessThanOrEqual(PLAIN_TAR_MAX);
    fs.writeFileSync(path.join(dir, 'build', 'big.txt'), 'x'.repeat(PLAIN_TAR_MAX));
    const big = await (await pkgOf()).uploadFor(have);
    expect(gz(big.file)).toBe(true);
    expect(members(big.file)).toContain('big.txt');
  });

  it('files that do not compress are stored (gzip level 0), text is compressed', async () => {
    fs.writeFileSync(path.join(dir, 'build', 'random.bin'), crypto.randomBytes(512 * 1024));
    const random = await (await pkgOf()).uploadFor(new Map());
    expect(random.bytes).toBeGreaterThan(512 * 1024);
    fs.writeFileSync(path.join(dir, 'build', 'random.bin'), 'text that compresses well\n'.repeat(20_000));
    const text = await (await pkgOf()).uploadFor(new Map());
    expect(text.bytes).toBeLessThan(100 * 1024);
  });
});

describe('an unreadable build file', () => {
  // root reads a mode-000 file (CAP_DAC_OVERRIDE): CI runs this file as root and as a deploy user
  it('stops the deploy before any host is touched, naming the file (a non-root user); root reads it', async () => {
    const f = path.join(dir, 'build', 'a', 'secret.key');
    fs.writeFileSync(f, 'k');
    fs.chmodSync(f, 0o000);
    if (process.getuid?.() === 0) {
      const u = await (await pkgOf()).uploadFor(new Map());
      expect(members(u.file)).toContain('a/secret.key');
    } else {
      await expect(pkgOf()).rejects.toThrow(`build.dir: cannot read ${f}: EACCES`);
    }
  });
});


describe('a build directory that is not there', () => {
  it('names the environment file that says where it is, and build.dir', async () => {
    const missing = path.join(os.tmpdir(), 'sy-no-such-build-dir');
    await expect(buildPackage({ buildDir: missing, envFile: 'uat.ts', meta: {} })).rejects.toThrow(new RegExp(`^uat\\.ts: build\\.dir: ${missing.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} is not a directory \\(build first\\?\\)$`));
  });
});
