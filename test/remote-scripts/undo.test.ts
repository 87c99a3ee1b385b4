// undo.sh in every phase a deploy can reach, with the real scripts and the real example app.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { alive, find, get, useScriptLab, show } from '../support/scripts';

const lab = useScriptLab();

const undo = (release: string, grace = '0.2') => lab().run('undo', [...lab().siteArgs(release), '--grace', grace]);

describe('undo', () => {
  it('after switch: the old release serves again through .prev, the new process is stopped once its accept queue is empty (not after the grace), its dir removed', async () => {
    const r1 = await lab().deploy('r1');
    expect((await lab().prepare('r2')).code).toBe(0);
    const r2 = lab().pidFile('r2')!;
    const s = await lab().run('switch', lab().siteArgs('r2'));
    expect(s.code, show(s)).toBe(0);
    expect((await get(lab().liveSock)).body).toBe('hello from release r2\n');
    const r1Inode = fs.statSync(lab().prevSock).ino;

    // Watch the restore and r2's end: r2 keeps running until its accept queue has been empty for
    // 20 ms after the restore (connections already in it are still served), well within the grace.
    const started = Date.now();
    const undoing = undo('r2', '1.5');
    let restoredAt = 0;
    let stoppedAt = 0;
    while (!stoppedAt && Date.now() - started < 20_000) {
      if (!restoredAt && fs.statSync(lab().liveSock, { throwIfNoEntry: false })?.ino === r1Inode) restoredAt = Date.now();
      if (!alive(r2.pid, r2.starttime)) stoppedAt = Date.now();
      await new Promise((res) => setTimeout(res, 20));
    }
    const u = await undoing;
    expect(u.code, show(u)).toBe(0);
    expect(restoredAt).toBeGreaterThan(0);
    expect(stoppedAt - restoredAt).toBeLessThan(1000);
    const f = find(u, 'undone')?.fields;
    expect(f).toMatchObject({ release: 'r2', restored: 'r1', queue: 'empty', queued: '0' });
    expect(Number(f!.waited_ms)).toBeGreaterThanOrEqual(20);
    expect(Number(f!.waited_ms)).toBeLessThan(1000);
    expect(fs.statSync(lab().liveSock).ino).toBe(r1Inode);
    expect(fs.existsSync(lab().prevSock)).toBe(false);
    const res = await get(lab().liveSock);
    expect(res.body).toBe('hello from release r1\n');
    expect(alive(r1.pid, r1.starttime)).toBe(true);
    expect(alive(r2.pid, r2.starttime)).toBe(false);
    expect(fs.existsSync(lab().releaseDir('r2'))).toBe(false);
    expect(fs.readlinkSync(path.join(lab().deployTo, 'current'))).toBe('releases/r1');
    expect(lab().state('live')).toBe(`r1 ${r1.pid} ${r1.starttime}`);
    expect(lab().state('previous')).toBeUndefined();
    expect(lab().lockHeld()).toBe(false);
    expect(lab().state('audit.log')).toMatch(/ undo user=\S+ release=r2 restored=r1 site=hello\.test$/m);
    expect(lab().processes()).toEqual([r1.pid]);

    // Idempotent: again, there is nothing left to undo.
    const again = await undo('r2');
    expect(again.code, show(again)).toBe(0);
    expect(find(again, 'undone')?.fields).toEqual({ release: 'r2', restored: 'not-switched' });
    expect((await get(lab().liveSock)).body).toBe('hello from release r1\n');
  });

  it('after switch, with connections queued on the new release (it accepts nothing for 800 ms): they are served before it is stopped', async () => {
    await lab().deploy('r1');
    expect((await lab().prepare('r2')).code).toBe(0);
    const r2 = lab().pidFile('r2')!;
    expect((await lab().run('switch', lab().siteArgs('r2'))).code).toBe(0);
    process.kill(r2.pid, 'SIGSTOP'); // connections to the live socket queue up on r2's listener
    let contAt = 0;
    try {
      const queued = [1, 2, 3].map(() => get(lab().liveSock, '/', 20));
      await new Promise((res) => setTimeout(res, 300));
      const undoing = undo('r2', '5');
      await new Promise((res) => setTimeout(res, 800));
      contAt = Date.now();
      process.kill(r2.pid, 'SIGCONT');
      const u = await undoing;
      expect(u.code, show(u)).toBe(0);
      const f = find(u, 'undone')?.fields;
      expect(f).toMatchObject({ release: 'r2', restored: 'r1', queue: 'empty', queued: '3' });
      expect(Number(f!.waited_ms)).toBeGreaterThanOrEqual(700);
      expect((await Promise.all(queued)).map((x) => [x.status, x.body])).toEqual(Array(3).fill([200, 'hello from release r2\n']));
      expect(alive(r2.pid, r2.starttime)).toBe(false);
      expect((await get(lab().liveSock)).body).toBe('hello from release r1\n');
    } finally {
      if (!contAt) process.kill(r2.pid, 'SIGCONT');
    }
  });

  it('before switch: stops the new process, removes its socket and dir, releases the lock; live untouched', async () => {
    const r1 = await lab().deploy('r1');
    expect((await lab().prepare('r2')).code).toBe(0);
    const r2 = lab().pidFile('r2')!;
    const started = Date.now();
    const u = await undo('r2', '10');
    expect(u.code, show(u)).toBe(0);
    expect(Date.now() - started).toBeLessThan(8000); // no grace: nothing was switched
    expect(find(u, 'undone')?.fields).toEqual({ release: 'r2', restored: 'not-switched' });
    expect(alive(r2.pid, r2.starttime)).toBe(false);
    expect(fs.existsSync(lab().stageSock('r2'))).toBe(false);
    expect(fs.existsSync(lab().releaseDir('r2'))).toBe(false);
    expect(lab().lockHeld()).toBe(false);
    expect(lab().state('live')).toBe(`r1 ${r1.pid} ${r1.starttime}`);
    expect((await get(lab().liveSock)).body).toBe('hello from release r1\n');
    expect(lab().processes()).toEqual([r1.pid]);
  });

  it('on a cold deploy after switch: removes the live socket and current, and the release', async () => {
    expect((await lab().prepare('r1')).code).toBe(0);
    const r1 = lab().pidFile('r1')!;
    expect((await lab().run('switch', lab().siteArgs('r1'))).code).toBe(0);
    const u = await undo('r1');
    expect(u.code, show(u)).toBe(0);
    expect(find(u, 'undone')?.fields).toMatchObject({ release: 'r1', restored: 'none', queue: 'empty' });
    expect(fs.existsSync(lab().liveSock)).toBe(false);
    expect(fs.existsSync(path.join(lab().deployTo, 'current'))).toBe(false);
    expect(lab().state('live')).toBeUndefined();
    expect(alive(r1.pid, r1.starttime)).toBe(false);
    expect(fs.existsSync(lab().releaseDir('r1'))).toBe(false);
    expect(lab().lockHeld()).toBe(false);
    expect(lab().processes()).toEqual([]);
  });

  it('on a cold deploy before switch: stops the process and removes everything it made', async () => {
    expect((await lab().prepare('r1')).code).toBe(0);
    const r1 = lab().pidFile('r1')!;
    const u = await undo('r1');
    expect(u.code, show(u)).toBe(0);
    expect(find(u, 'undone')?.fields).toEqual({ release: 'r1', restored: 'not-switched' });
    expect(alive(r1.pid, r1.starttime)).toBe(false);
    expect(fs.readdirSync(path.join(lab().deployTo, 'releases'))).toEqual([]);
    expect(fs.readdirSync(lab().socketDir)).toEqual([]);
    expect(lab().lockHeld()).toBe(false);
  });

  it('of a --reuse restart before switch: stops only the new process; the release and its live process stay', async () => {
    const first = await lab().deploy('r1');
    const p = await lab().prepare('r1', { reuse: true });
    expect(p.code, show(p)).toBe(0);
    const second = lab().pidFile('r1')!;
    expect(second.pid).not.toBe(first.pid);
    const u = await undo('r1');
    expect(u.code, show(u)).toBe(0);
    expect(find(u, 'undone')?.fields).toEqual({ release: 'r1', restored: 'not-switched' });
    expect(alive(second.pid, second.starttime)).toBe(false);
    expect(alive(first.pid, first.starttime)).toBe(true);
    expect(fs.existsSync(lab().releaseDir('r1'))).toBe(true);
    // The pid file names the process that serves again.
    expect(lab().pidFile('r1')).toEqual(first);
    expect((await get(lab().liveSock)).body).toBe('hello from release r1\n');
  });

  it('of a --reuse restart after switch: the first process serves again, the second is stopped', async () => {
    const first = await lab().deploy('r1');
    expect((await lab().prepare('r1', { reuse: true })).code).toBe(0);
    const second = lab().pidFile('r1')!;
    expect((await lab().run('switch', lab().siteArgs('r1'))).code).toBe(0);
    const u = await undo('r1');
    expect(u.code, show(u)).toBe(0);
    expect(find(u, 'undone')?.fields).toMatchObject({ release: 'r1', restored: 'r1', queue: 'empty' });
    expect(alive(first.pid, first.starttime)).toBe(true);
    expect(alive(second.pid, second.starttime)).toBe(false);
    expect(lab().state('live')).toBe(`r1 ${first.pid} ${first.starttime}`);
    expect(lab().pidFile('r1')).toEqual(first);
    expect((await get(lab().liveSock)).status).toBe(200);
  });

  it('refuses (4) a finished deploy: R is live and the lock is not its own; nothing changes', async () => {
    const r1 = await lab().deploy('r1');
    const u = await undo('r1');
    expect(u.code, show(u)).toBe(4);
    expect(find(u, 'error')?.msg).toContain('nothing to undo');
    expect(alive(r1.pid, r1.starttime)).toBe(true);
    expect((await get(lab().liveSock)).body).toBe('hello from release r1\n');
  });

  it('refuses (8) to take the site down when the previous process is gone; R stays live, lock held', async () => {
    const r1 = await lab().deploy('r1');
    expect((await lab().prepare('r2')).code).toBe(0);
    expect((await lab().run('switch', lab().siteArgs('r2'))).code).toBe(0);
    process.kill(r1.pid, 'SIGKILL');
    // SIGKILL is delivered, not done: on a loaded machine the process may take a moment to die
    for (let i = 0; i < 200 && alive(r1.pid, r1.starttime); i++) await new Promise((r) => setTimeout(r, 10));
    const u = await undo('r2');
    expect(u.code, show(u)).toBe(8);
    expect(find(u, 'error')?.fields.step).toBe('restore');
    expect((await get(lab().liveSock)).body).toBe('hello from release r2\n');
    expect(lab().lockHeld()).toBe(true);
  });

  it('does not touch a deploy that holds the lock for another release', async () => {
    expect((await lab().prepare('r1')).code).toBe(0);
    const r1 = lab().pidFile('r1')!;
    const u = await undo('r9');
    expect(u.code, show(u)).toBe(0);
    expect(find(u, 'undone')?.fields).toEqual({ release: 'r9', restored: 'not-switched' });
    expect(alive(r1.pid, r1.starttime)).toBe(true);
    expect(lab().state('lock/owner')).toMatch(/^release=r1 /);
  });
});
