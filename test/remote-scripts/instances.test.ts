// app.instances: N processes of a release per host, each on its own socket (SOCK-S, SOCK-S@2, …),
// started by one prepare, switched by one switch, retired by one retire; undo puts every one back.
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { all, alive, find, get, show, useScriptLab } from '../support/scripts';

const lab = useScriptLab();
const N = ['--instances', '3'];

function pairs(text: string | undefined): { pid: number; starttime: string }[] {
  const w = (text ?? '').trim().split(' ');
  const out = [];
  for (let i = 0; i + 1 < w.length; i += 2) out.push({ pid: Number(w[i]), starttime: w[i + 1]! });
  return out;
}
const sock = (k: number) => (k === 1 ? lab().liveSock : `${lab().liveSock}@${k}`);

async function deploy3(release: string): Promise<{ pid: number; starttime: string }[]> {
  const p = await lab().prepare(release, { args: N });
  expect(p.code, show(p)).toBe(0);
  const procs = pairs(fs.readFileSync(`${lab().releaseDir(release)}/.switchyard/pid`, 'utf8'));
  for (const x of procs) lab().track(x.pid, x.starttime);
  const s = await lab().run('switch', [...lab().siteArgs(release), ...N]);
  expect(s.code, show(s)).toBe(0);
  const r = await lab().run('retire', [...lab().siteArgs(release), '--grace', '0.1', '--drain', '5', ...N]);
  expect(r.code, show(r)).toBe(0);
  return procs;
}

describe('instances', () => {
  it('three processes on three sockets; a deploy replaces all three, each retired once its queue is empty', async () => {
    const r1 = await deploy3('r1');
    expect(r1.length).toBe(3);
    expect(new Set(r1.map((x) => x.pid)).size).toBe(3);
    for (let k = 1; k <= 3; k++) expect((await get(sock(k))).body).toBe('hello from release r1\n');
    expect(lab().state('live')).toBe(`r1 ${r1.map((x) => `${x.pid} ${x.starttime}`).join(' ')}`);

    const r2 = await deploy3('r2');
    for (const x of r1) expect(alive(x.pid, x.starttime)).toBe(false);
    for (const x of r2) expect(alive(x.pid, x.starttime)).toBe(true);
    for (let k = 1; k <= 3; k++) expect((await get(sock(k))).body).toBe('hello from release r2\n');
    const st = await lab().run('status', [...lab().siteArgs(), ...N]);
    expect(find(st, 'status')?.fields).toMatchObject({ release: 'r2', instances: '3', running: '3', alive: 'yes' });
  });

  it('undo after the switch puts every instance back; a prepare whose third instance fails stops the other two', async () => {
    const r1 = await deploy3('r1');
    expect((await lab().prepare('r2', { args: N })).code).toBe(0);
    const r2 = pairs(fs.readFileSync(`${lab().releaseDir('r2')}/.switchyard/pid`, 'utf8'));
    expect((await lab().run('switch', [...lab().siteArgs('r2'), ...N])).code).toBe(0);
    const u = await lab().run('undo', [...lab().siteArgs('r2'), '--grace', '0.2', ...N]);
    expect(u.code, show(u)).toBe(0);
    for (let k = 1; k <= 3; k++) expect((await get(sock(k))).body).toBe('hello from release r1\n');
    for (const x of r2) expect(alive(x.pid, x.starttime)).toBe(false);
    for (const x of r1) expect(alive(x.pid, x.starttime)).toBe(true);
    expect(lab().state('live')).toBe(`r1 ${r1.map((x) => `${x.pid} ${x.starttime}`).join(' ')}`);

    // the third instance cannot start: the first two are stopped, nothing is left behind
    const cmd = ['bash', '-c', 'if [ "$SWITCHYARD_INSTANCE" = 3 ]; then exit 1; fi; exec node server.js --socket "$1"', 'app', '{socket}'];
    const bad = await lab().prepare('r3', { args: N, cmd });
    expect(bad.code, show(bad)).toBe(5);
    expect(lab().lockHeld()).toBe(false);
    expect(fs.existsSync(lab().releaseDir('r3'))).toBe(false);
    expect(fs.readdirSync(lab().socketDir).filter((f) => f.includes('-r3'))).toEqual([]);
    expect(lab().processes().length).toBe(3); // r1's three
  });

  it('fewer instances than before: the extra old ones lose their socket, then are stopped', async () => {
    const r1 = await deploy3('r1');
    const p = await lab().prepare('r2');
    expect(p.code).toBe(0);
    expect((await lab().run('switch', lab().siteArgs('r2'))).code).toBe(0);
    const r = await lab().run('retire', [...lab().siteArgs('r2'), '--grace', '0.1', '--drain', '5']);
    expect(r.code, show(r)).toBe(0);
    expect(all(r, 'retired').map((l) => l.fields.instance)).toEqual([undefined, '2', '3']);
    for (const x of r1) expect(alive(x.pid, x.starttime)).toBe(false);
    expect(fs.existsSync(sock(2))).toBe(false);
    expect(fs.existsSync(sock(3))).toBe(false);
    expect((await get(sock(1))).body).toBe('hello from release r2\n');
  });
});
