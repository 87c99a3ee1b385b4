// The deploy lifecycle with the real scripts and the real example app: prepare → switch → retire,
// lock contention, restart with --reuse, pruning. Tests in this file run in order on one host.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alive, all, find, get, procStat, ScriptLab, show } from '../support/scripts';

let lab: ScriptLab;
const pids: Record<string, { pid: number; starttime: string }> = {};

beforeAll(async () => {
  lab = ScriptLab.create();
  await lab.setup();
});
afterAll(async () => {
  await lab?.cleanup();
});

describe('cold deploy of r1', () => {
  it('prepare starts r1 on its own socket, healthy, and holds the lock', async () => {
    const r = await lab.prepare('r1', { args: ['--shared', 'logs', '--shared', 'public/uploads'] });
    expect(r.code, show(r)).toBe(0);
    const p = find(r, 'prepared');
    expect(p?.fields).toMatchObject({ release: 'r1', socket: lab.stageSock('r1'), status: '200' });
    const pid = Number(p?.fields.pid);
    const starttime = p?.fields.starttime ?? '';
    // The pid file holds "PID STARTTIME", and the start time is field 22 of /proc/PID/stat.
    expect(lab.pidFile('r1')).toEqual({ pid, starttime });
    expect(procStat(pid)?.starttime).toBe(starttime);
    expect(alive(pid, starttime)).toBe(true);
    // Its own session and process group (setsid), so the client's TERM to the exec's group never reaches it.
    expect(procStat(pid)?.pgrp).toBe(pid);
    pids.r1 = { pid, starttime };
    expect(find(r, 'live')?.fields).toEqual({ release: 'none' });

    const res = await get(lab.stageSock('r1'));
    expect(res.status).toBe(200);
    expect(res.body).toBe('hello from release r1\n');
    expect(res.headers['x-release']).toBe('r1');
    expect((fs.statSync(lab.stageSock('r1')).mode & 0o777).toString(8)).toBe('660');
    // Nothing live yet.
    expect(fs.existsSync(lab.liveSock)).toBe(false);

    expect(lab.state('lock/owner')).toMatch(/^release=r1 since=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ test r1$/);
    // This deploy unpacked r1 (an undo removes it); the marker goes with the lock.
    expect(fs.existsSync(path.join(lab.deployTo, '.switchyard', 'lock', 'fresh'))).toBe(true);
    // Shared paths: symlinks into deployTo/shared, created on demand.
    expect(fs.readlinkSync(path.join(lab.releaseDir('r1'), 'logs'))).toBe(path.join(lab.deployTo, 'shared', 'logs'));
    expect(fs.readlinkSync(path.join(lab.releaseDir('r1'), 'public', 'uploads'))).toBe(path.join(lab.deployTo, 'shared', 'public/uploads'));
    expect(fs.statSync(path.join(lab.deployTo, 'shared', 'public', 'uploads')).isDirectory()).toBe(true);
    expect(fs.readFileSync(path.join(lab.releaseDir('r1'), '.switchyard', 'app.log'), 'utf8')).toContain('listening on');
  });

  it('a second prepare while the lock is held exits 4 naming the owner, and removes what it unpacked', async () => {
    const r = await lab.prepare('r1b');
    expect(r.code, show(r)).toBe(4);
    const err = find(r, 'error');
    expect(err?.fields).toEqual({ code: '4', step: 'lock' });
    expect(err?.msg).toMatch(/^locked by: release=r1 since=/);
    expect(err?.msg).toContain('test r1');
    expect(fs.existsSync(lab.releaseDir('r1b'))).toBe(false);
    expect(fs.existsSync(lab.stageSock('r1b'))).toBe(false);
    expect(lab.processes()).toEqual([pids.r1!.pid]);
    // The lock is still r1's.
    expect(lab.state('lock/owner')).toMatch(/^release=r1 /);
  });

  it('switch makes r1 live: socket renamed, current, state files; no .prev on a cold deploy', async () => {
    const stageIno = fs.statSync(lab.stageSock('r1')).ino;
    const r = await lab.run('switch', lab.siteArgs('r1'));
    expect(r.code, show(r)).toBe(0);
    expect(find(r, 'switched')?.fields).toEqual({ release: 'r1', previous: 'none' });
    expect(fs.existsSync(lab.stageSock('r1'))).toBe(false);
    expect(fs.statSync(lab.liveSock).ino).toBe(stageIno);
    expect(fs.existsSync(lab.prevSock)).toBe(false);
    expect(fs.readlinkSync(path.join(lab.deployTo, 'current'))).toBe('releases/r1');
    expect(lab.state('live')).toBe(`r1 ${pids.r1!.pid} ${pids.r1!.starttime}`);
    expect(lab.state('previous')).toBeUndefined();
    expect((await get(lab.liveSock)).body).toBe('hello from release r1\n');
  });

  it('switch again is a no-op that reports the same', async () => {
    const r = await lab.run('switch', lab.siteArgs('r1'));
    expect(r.code, show(r)).toBe(0);
    expect(find(r, 'switched')?.fields).toEqual({ release: 'r1', previous: 'none' });
    expect(lab.state('live')).toBe(`r1 ${pids.r1!.pid} ${pids.r1!.starttime}`);
  });

  it('retire with nothing before: retired release=none, fresh marker gone, audit line, lock released', async () => {
    const r = await lab.run('retire', [...lab.siteArgs('r1'), '--grace', '0.1', '--audit', 'first deploy by test']);
    expect(r.code, show(r)).toBe(0);
    expect(find(r, 'retired')?.fields).toEqual({ release: 'none' });
    expect(find(r, 'unlocked')).toBeDefined();
    expect(lab.lockHeld()).toBe(false);
    expect(fs.existsSync(path.join(lab.deployTo, '.switchyard', 'lock'))).toBe(false);
    expect(lab.state('audit.log')).toMatch(/Z deploy user=\S+ release=r1 previous=none site=hello\.test .*msg=first deploy by test$/);
    expect(alive(pids.r1!.pid, pids.r1!.starttime)).toBe(true);
  });
});

describe('deploy of r2 over r1', () => {
  it('prepare r2 reports what is live', async () => {
    const r = await lab.prepare('r2');
    expect(r.code, show(r)).toBe(0);
    expect(find(r, 'live')?.fields).toEqual({ release: 'r1', pid: String(pids.r1!.pid), starttime: pids.r1!.starttime });
    pids.r2 = lab.pidFile('r2')!;
    // The live site still answers r1; the staged one answers r2.
    expect((await get(lab.liveSock)).body).toBe('hello from release r1\n');
    expect((await get(lab.stageSock('r2'))).body).toBe('hello from release r2\n');
  });

  it('switch: live answers r2, .prev is a hard link to the old live socket, state files updated', async () => {
    const oldLive = fs.statSync(lab.liveSock).ino;
    const r = await lab.run('switch', lab.siteArgs('r2'));
    expect(r.code, show(r)).toBe(0);
    expect(find(r, 'switched')?.fields).toEqual({ release: 'r2', previous: 'r1' });
    expect(fs.statSync(lab.prevSock).ino).toBe(oldLive);
    expect(fs.statSync(lab.prevSock).isSocket()).toBe(true);
    expect(fs.readlinkSync(path.join(lab.deployTo, 'current'))).toBe('releases/r2');
    expect(lab.state('live')).toBe(`r2 ${pids.r2!.pid} ${pids.r2!.starttime}`);
    expect(lab.state('previous')).toBe(`r1 ${pids.r1!.pid} ${pids.r1!.starttime}`);
    const res = await get(lab.liveSock);
    expect(res.body).toBe('hello from release r2\n');
    expect(res.headers['x-release']).toBe('r2');
    // The old process still answers through .prev: an instant undo is possible.
    expect((await get(lab.prevSock)).body).toBe('hello from release r1\n');
  });

  it('retire stops r1 (checked by pid and start time), prunes to --keep but never current/previous, unlocks', async () => {
    // Old releases to prune, one whose name sorts after everything (kept by --keep 1), and a
    // directory that is not a release of ours (a hand-made backup: never pruned, never counted).
    const [oldA, oldB, junk] = ['20200101T000000.000Z-a', '20200101T000000.000Z-b', '20991231T000000.000Z-f'];
    for (const old of [oldA, oldB, junk]) {
      fs.mkdirSync(path.join(lab.releaseDir(old), '.switchyard'), { recursive: true });
      fs.writeFileSync(path.join(lab.releaseDir(old), '.switchyard', 'release.json'), '{}\n');
    }
    fs.mkdirSync(lab.releaseDir('backup-manual'));
    const started = Date.now();
    const retiring = lab.run('retire', [...lab.siteArgs('r2'), '--grace', '1.2', '--drain', '5', '--keep', '1', '--audit', 'deploy r2']);
    let stoppedAt = 0;
    while (!stoppedAt && Date.now() - started < 20_000) {
      if (!alive(pids.r1!.pid, pids.r1!.starttime)) stoppedAt = Date.now();
      await new Promise((res) => setTimeout(res, 20));
    }
    const r = await retiring;
    expect(r.code, show(r)).toBe(0);
    // --grace is an upper bound now: the old process is stopped once its accept queue is empty.
    expect(stoppedAt - started).toBeLessThan(1200);
    expect(find(r, 'retired')?.fields).toMatchObject({ release: 'r1', pid: String(pids.r1!.pid), signal: 'TERM', queue: 'empty' });
    expect(alive(pids.r1!.pid, pids.r1!.starttime)).toBe(false);
    expect(alive(pids.r2!.pid, pids.r2!.starttime)).toBe(true);
    expect(all(r, 'pruned').map((l) => l.fields.release)).toEqual([oldB, oldA]);
    expect(fs.readdirSync(path.join(lab.deployTo, 'releases')).sort()).toEqual([junk, 'backup-manual', 'r1', 'r2']);
    expect(find(r, 'unlocked')).toBeDefined();
    expect(lab.lockHeld()).toBe(false);
    const audit = lab.state('audit.log')!.split('\n');
    expect(audit).toHaveLength(2);
    expect(audit[1]).toMatch(/ deploy user=\S+ release=r2 previous=r1 site=hello\.test signal=TERM pruned=2 msg=deploy r2$/);
    expect((await get(lab.liveSock)).body).toBe('hello from release r2\n');
    for (const d of [junk, 'backup-manual']) fs.rmSync(lab.releaseDir(d), { recursive: true });
  });

  it('retire without the lock exits 4', async () => {
    const r = await lab.run('retire', [...lab.siteArgs('r2'), '--grace', '0']);
    expect(r.code, show(r)).toBe(4);
    expect(find(r, 'error')?.msg).toContain('not held by r2');
  });
});

describe('restart of the current release with --reuse', () => {
  it('starts a second process of r2, switches to it and retires the first r2 process', async () => {
    const first = pids.r2!;
    const p = await lab.prepare('r2', { reuse: true });
    expect(p.code, show(p)).toBe(0);
    const second = lab.pidFile('r2')!;
    expect(second.pid).not.toBe(first.pid);
    expect(find(p, 'prepared')?.fields).toMatchObject({ release: 'r2', pid: String(second.pid) });
    expect(find(p, 'live')?.fields).toEqual({ release: 'r2', pid: String(first.pid), starttime: first.starttime });
    // A restart unpacks nothing: no fresh marker, so undo would never delete the release.
    expect(fs.existsSync(path.join(lab.deployTo, '.switchyard', 'lock', 'fresh'))).toBe(false);

    const s = await lab.run('switch', lab.siteArgs('r2'));
    expect(s.code, show(s)).toBe(0);
    expect(find(s, 'switched')?.fields).toEqual({ release: 'r2', previous: 'r2' });
    expect(lab.state('previous')).toBe(`r2 ${first.pid} ${first.starttime}`);
    expect(lab.state('live')).toBe(`r2 ${second.pid} ${second.starttime}`);

    const r = await lab.run('retire', [...lab.siteArgs('r2'), '--grace', '0.1', '--drain', '5']);
    expect(r.code, show(r)).toBe(0);
    expect(find(r, 'retired')?.fields).toMatchObject({ release: 'r2', pid: String(first.pid), signal: 'TERM', queue: 'empty' });
    expect(alive(first.pid, first.starttime)).toBe(false);
    expect(alive(second.pid, second.starttime)).toBe(true);
    expect(lab.processes()).toEqual([second.pid]);
    expect((await get(lab.liveSock)).body).toBe('hello from release r2\n');
    expect(fs.existsSync(lab.releaseDir('r2'))).toBe(true);
    pids.r2 = second;
  });
});

describe('status', () => {
  it('reports the live release, its process, socket, health and lock', async () => {
    const r = await lab.run('status', [...lab.siteArgs(), '--health-path', '/health', '--expect-status', '200']);
    expect(r.code, show(r)).toBe(0);
    const s = find(r, 'status')!;
    expect(s.fields).toMatchObject({
      release: 'r2',
      pid: String(pids.r2!.pid),
      alive: 'yes',
      socket: 'yes',
      health: '200',
      healthy: 'yes',
      lock: 'free',
      releases: '2',
      previous: 'r2', // the restart's first process
    });
    expect(Number(s.fields.uptime)).toBeGreaterThanOrEqual(0);
    expect(Number(s.fields.uptime)).toBeLessThan(120);
    expect(find(r, 'lock')).toBeUndefined();
  });

  it('shows a held lock with its owner, and an expect-status that does not match', async () => {
    const p = await lab.prepare('r3');
    expect(p.code, show(p)).toBe(0);
    const r = await lab.run('status', [...lab.siteArgs(), '--expect-status', '204']);
    expect(r.code, show(r)).toBe(0);
    expect(find(r, 'status')?.fields).toMatchObject({ release: 'r2', lock: 'held', health: '200', healthy: 'no', releases: '3' });
    expect(find(r, 'lock')?.fields).toEqual({ release: 'r3' });
    expect(find(r, 'lock')?.msg).toMatch(/^release=r3 since=\S+ test r3 \(heartbeat \d+ s ago\)$/);
    const u = await lab.run('undo', [...lab.siteArgs('r3'), '--grace', '0']);
    expect(u.code, show(u)).toBe(0);
  });
});
