// A host that runs no app (a db primary, where a hook runs the migrations in the release): prepare
// --files-only unpacks the release under the lock and starts nothing; switch --files-only points
// `current` at it; retire prunes and unlocks; undo puts `current` back and removes the release;
// status says `mode=files`. The real scripts, on this machine, with the example app's package.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { find, HELLO_DIR, show, useScriptLab, type ScriptResult } from '../support/scripts';
import { tree } from '../support/tree';

const lab = useScriptLab();

const filesArgs = (release: string, ...more: string[]) => ['--files-only', ...lab().siteArgs(release), '--lock-owner', `test ${release}`, ...more];

async function prepareFiles(release: string, ...more: string[]): Promise<ScriptResult> {
  return lab().run('prepare', filesArgs(release, ...more), { inputFile: lab().packageFile });
}

/** prepare --files-only, switch --files-only, retire: R is current, the lock free. */
async function deployFiles(release: string): Promise<void> {
  for (const r of [
    await prepareFiles(release),
    await lab().run('switch', [...lab().siteArgs(release), '--files-only']),
    await lab().run('retire', [...lab().siteArgs(release), '--grace', '0.1', '--drain', '5']),
  ]) {
    expect(r.code, show(r)).toBe(0);
  }
}

const current = () => fs.readlinkSync(path.join(lab().deployTo, 'current'));
const sockets = () => fs.readdirSync(lab().socketDir);

describe('prepare --files-only', () => {
  it('unpacks the release (and its shared links) under the lock, and starts nothing: no process, no socket, no pid file', async () => {
    const r = await prepareFiles('r1', '--shared', 'logs');
    expect(r.code, show(r)).toBe(0);
    expect(find(r, 'prepared')?.fields).toEqual({ release: 'r1', mode: 'files' });
    expect(find(r, 'live')?.fields).toEqual({ release: 'none' });
    expect(tree(lab().releaseDir('r1'))).toEqual({ ...tree(HELLO_DIR), logs: `link ${path.join(lab().deployTo, 'shared', 'logs')}` });
    expect(lab().processes()).toEqual([]);
    expect(sockets()).toEqual([]); // nor the live socket's own lock: no socket is switched here
    expect(lab().pidFile('r1')).toBeUndefined();
    expect(lab().state('lock/owner')).toMatch(/^release=r1 since=\S+ test r1$/);
    expect(fs.existsSync(path.join(lab().deployTo, '.switchyard', 'lock', 'fresh'))).toBe(true);
    expect(fs.existsSync(path.join(lab().releaseDir('r1'), '.switchyard', 'manifest'))).toBe(true);
  });

  it('takes no app command (usage, 2), and a prepare failing after the lock removes the release and unlocks', async () => {
    const usage = await lab().run('prepare', [...filesArgs('r1'), '--', 'node', 'server.js']);
    expect(usage.code, show(usage)).toBe(2);
    expect(find(usage, 'error')?.msg).toBe('--files-only starts nothing: no -- CMD');
    const bad = path.join(lab().root, 'not-a-package');
    fs.writeFileSync(bad, 'not a tarball\n');
    const r = await lab().run('prepare', filesArgs('r1'), { inputFile: bad });
    expect(r.code, show(r)).toBe(1);
    expect(fs.existsSync(lab().releaseDir('r1'))).toBe(false);
    expect(lab().lockHeld()).toBe(false);
  });

  it('is refused (3), changing nothing, on a host where a release of the app runs', async () => {
    const app = await lab().deploy('a1');
    const r = await prepareFiles('r1');
    expect(r.code, show(r)).toBe(3);
    expect(find(r, 'error')?.msg).toMatch(new RegExp(`^a1 serves hello\\.test here \\(pid ${app.pid}\\): a host that runs the app takes no files-only release`));
    expect(fs.existsSync(lab().releaseDir('r1'))).toBe(false);
    expect(lab().lockHeld()).toBe(false);
    expect(lab().state('live')).toBe(`a1 ${app.pid} ${app.starttime}`);
  });
});

describe('switch, retire and undo of a files-only release', () => {
  it('switch points current at it and records it live without a pid; again, the same line; retire unlocks', async () => {
    expect((await prepareFiles('r1')).code).toBe(0);
    const args = [...lab().siteArgs('r1'), '--files-only'];
    const s = await lab().run('switch', args);
    expect(s.code, show(s)).toBe(0);
    expect(find(s, 'switched')?.fields).toEqual({ release: 'r1', previous: 'none' });
    expect(current()).toBe('releases/r1');
    expect(lab().state('live')).toBe('r1');
    expect(fs.existsSync(path.join(lab().releaseDir('r1'), '.switchyard', 'live-at'))).toBe(true);
    const again = await lab().run('switch', args);
    expect(again.code, show(again)).toBe(0);
    expect(find(again, 'switched')?.fields).toEqual({ release: 'r1', previous: 'none' });
    const st = await lab().run('status', lab().siteArgs());
    expect(find(st, 'status')?.fields).toMatchObject({ release: 'r1', pid: 'none', alive: 'no', socket: 'no', lock: 'held', mode: 'files' });
    const r = await lab().run('retire', [...lab().siteArgs('r1'), '--grace', '0.1', '--drain', '5']);
    expect(r.code, show(r)).toBe(0);
    expect(find(r, 'retired')?.fields).toEqual({ release: 'none' });
    expect(find(r, 'unlocked')).toBeDefined();
    expect(sockets()).toEqual([]);
  });

  it('the next deploy lists the current release for --delta, and its retire stops nothing (pid=none signal=gone)', async () => {
    await deployFiles('r1');
    // the upload's header (no links) and the package: the listing is what the host offers first
    const upload = path.join(lab().root, 'upload');
    const pkg = fs.readFileSync(lab().packageFile);
    fs.writeFileSync(upload, Buffer.concat([Buffer.from(`0 ${pkg.length}\n`), pkg]));
    const p = await lab().run('prepare', filesArgs('r2', '--delta'), { inputFile: upload });
    expect(p.code, show(p)).toBe(0);
    expect(find(p, 'have')?.fields).toEqual({ release: 'r1' });
    expect(Number(find(p, 'have-end')?.fields.files)).toBeGreaterThanOrEqual(fs.readdirSync(HELLO_DIR).length);
    expect(find(p, 'live')?.fields).toEqual({ release: 'r1', pid: 'none', starttime: 'none' });
    expect((await lab().run('switch', [...lab().siteArgs('r2'), '--files-only'])).code).toBe(0);
    expect(lab().state('previous')).toBe('r1');
    const r = await lab().run('retire', [...lab().siteArgs('r2'), '--grace', '0.1', '--drain', '5']);
    expect(r.code, show(r)).toBe(0);
    expect(find(r, 'retired')?.fields).toEqual({ release: 'r1', pid: 'none', signal: 'gone' });
    expect(current()).toBe('releases/r2');
    expect(tree(lab().releaseDir('r2'))).toEqual(tree(HELLO_DIR));
  });

  it('undo after the switch points current back at the previous release and removes the new one', async () => {
    await deployFiles('r1');
    expect((await prepareFiles('r2')).code).toBe(0);
    expect((await lab().run('switch', [...lab().siteArgs('r2'), '--files-only'])).code).toBe(0);
    const u = await lab().run('undo', lab().siteArgs('r2'));
    expect(u.code, show(u)).toBe(0);
    expect(find(u, 'undone')?.fields).toEqual({ release: 'r2', restored: 'r1' });
    expect(current()).toBe('releases/r1');
    expect(lab().state('live')).toBe('r1');
    expect(lab().state('previous')).toBeUndefined();
    expect(fs.existsSync(lab().releaseDir('r2'))).toBe(false);
    expect(fs.existsSync(lab().releaseDir('r1'))).toBe(true);
    expect(lab().lockHeld()).toBe(false);
  });

  it('--reuse (a rollback there): the release kept is made current again, nothing read from stdin, nothing started; retire --mark-bad marks the one left', async () => {
    await deployFiles('r1');
    await deployFiles('r2');
    const p = await lab().run('prepare', filesArgs('r1', '--reuse')); // stdin stays open: a read would hang
    expect(p.code, show(p)).toBe(0);
    expect(find(p, 'prepared')?.fields).toEqual({ release: 'r1', mode: 'files' });
    expect((await lab().run('switch', [...lab().siteArgs('r1'), '--files-only'])).code).toBe(0);
    const r = await lab().run('retire', [...lab().siteArgs('r1'), '--grace', '0.1', '--drain', '5', '--mark-bad']);
    expect(r.code, show(r)).toBe(0);
    expect(find(r, 'marked')?.fields).toEqual({ release: 'r2', state: 'bad' });
    expect(current()).toBe('releases/r1');
    expect(lab().state('live')).toBe('r1');
    expect(lab().state('previous')).toBe('r2');
    expect(lab().processes()).toEqual([]);
    expect(fs.existsSync(lab().releaseDir('r2'))).toBe(true); // a rollback's undo never removes a release it did not unpack
  });

  it('undo of a first release after its switch removes current; before its switch, only the release', async () => {
    expect((await prepareFiles('r1')).code).toBe(0);
    expect((await lab().run('switch', [...lab().siteArgs('r1'), '--files-only'])).code).toBe(0);
    const u = await lab().run('undo', lab().siteArgs('r1'));
    expect(find(u, 'undone')?.fields, show(u)).toEqual({ release: 'r1', restored: 'none' });
    expect(fs.existsSync(path.join(lab().deployTo, 'current'))).toBe(false);
    expect(lab().state('live')).toBeUndefined();
    expect(fs.existsSync(lab().releaseDir('r1'))).toBe(false);
    expect((await prepareFiles('r2')).code).toBe(0);
    const u2 = await lab().run('undo', lab().siteArgs('r2'));
    expect(find(u2, 'undone')?.fields, show(u2)).toEqual({ release: 'r2', restored: 'not-switched' });
    expect(fs.existsSync(lab().releaseDir('r2'))).toBe(false);
    expect(lab().lockHeld()).toBe(false);
  });
});
