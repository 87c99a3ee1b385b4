// retire.sh's safety checks (socket inode, pid reuse), drain and SIGKILL escalation, and hostile
// values passed through every script. Real scripts, real example app.
import { execa } from 'execa';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { alive, find, get, useScriptLab, scriptText, show, waitFor, which } from '../support/scripts';

const lab = useScriptLab();

describe('retire safety', () => {
  it('refuses (8) when the recorded previous process still owns the live socket inode', async () => {
    const r1 = await lab().deploy('r1');
    expect((await lab().prepare('r2')).code).toBe(0);
    const r2 = lab().pidFile('r2')!;
    // A "switch" whose rename never happened: the state says r2 is live, but the live socket is
    // still r1's.
    fs.writeFileSync(lab().stateFile('previous'), `${lab().state('live')}\n`);
    fs.writeFileSync(lab().stateFile('live'), `r2 ${r2.pid} ${r2.starttime}\n`);
    const r = await lab().run('retire', [...lab().siteArgs('r2'), '--grace', '0.1', '--drain', '2']);
    expect(r.code, show(r)).toBe(8);
    expect(find(r, 'error')?.fields).toEqual({ code: '8', step: 'retire' });
    expect(find(r, 'error')?.msg).toContain(`pid ${r1.pid}`);
    expect(alive(r1.pid, r1.starttime)).toBe(true);
    expect((await get(lab().liveSock)).body).toBe('hello from release r1\n');
    expect(lab().lockHeld()).toBe(true); // an inconsistent host stays locked for a person to look at
  });

  it('after a normal switch, needs no scan of processes (no ss, find or grep on PATH); after an undo-like move it checks', async () => {
    const r1 = await lab().deploy('r1');
    expect((await lab().prepare('r2')).code).toBe(0);
    expect((await lab().run('switch', lab().siteArgs('r2'))).code).toBe(0);
    // Every tool retire may run but the ones that scan processes and sockets.
    const bin = path.join(lab().root, 'bin');
    fs.mkdirSync(bin);
    for (const t of ['rm', 'id']) fs.symlinkSync(which(t), path.join(bin, t));
    const r = await lab().run('retire', [...lab().siteArgs('r2'), '--grace', '0.1', '--drain', '5'], { path: bin });
    expect(r.code, show(r)).toBe(0);
    expect(find(r, 'retired')?.fields).toMatchObject({ release: 'r1', signal: 'TERM' });
    expect(alive(r1.pid, r1.starttime)).toBe(false);

    // r3 live, r2 previous; then the live socket is put back to r2's by hand (as undo would):
    // .prev is gone, so retire must ask who listens, and without ss it cannot: it refuses.
    const r2 = lab().pidFile('r2')!;
    expect((await lab().prepare('r3')).code).toBe(0);
    expect((await lab().run('switch', lab().siteArgs('r3'))).code).toBe(0);
    fs.renameSync(lab().prevSock, lab().liveSock);
    const refused = await lab().run('retire', [...lab().siteArgs('r3'), '--grace', '0.1', '--drain', '5'], { path: bin });
    expect(refused.code, show(refused)).not.toBe(0);
    expect(alive(r2.pid, r2.starttime)).toBe(true);
    expect((await get(lab().liveSock)).body).toBe('hello from release r2\n');
  });

  it('never kills a reused pid: a previous whose start time differs is reported gone and left alone', async () => {
    const r1 = await lab().deploy('r1');
    expect((await lab().prepare('r2')).code).toBe(0);
    expect((await lab().run('switch', lab().siteArgs('r2'))).code).toBe(0);
    // The previous pid now belongs to "another process": same pid, other start time.
    fs.writeFileSync(lab().stateFile('previous'), `r1 ${r1.pid} ${Number(r1.starttime) + 1}\n`);
    const r = await lab().run('retire', [...lab().siteArgs('r2'), '--grace', '0.1', '--drain', '2']);
    expect(r.code, show(r)).toBe(0);
    expect(find(r, 'retired')?.fields).toEqual({ release: 'r1', pid: String(r1.pid), signal: 'gone' });
    expect(alive(r1.pid, r1.starttime)).toBe(true);
  });

  // The old release answers every request after SLOW ms, so a request sent just before retire is
  // still in flight when SIGTERM arrives, even on a loaded machine.
  const SLOW = '2500';

  /** When the old release's app logged that it got SIGTERM (from its app.log). */
  function termLoggedAt(release: string): number {
    const log = fs.readFileSync(path.join(lab().releaseDir(release), '.switchyard', 'app.log'), 'utf8');
    const line = log.split('\n').find((l) => l.includes('SIGTERM'));
    expect(line, log).toBeDefined();
    return Date.parse(line!.slice(0, line!.indexOf(' ')));
  }

  it('lets in-flight requests of the old release finish (drain on SIGTERM), with no failed request', async () => {
    await lab().deploy('r1', { env: { HELLO_DELAY_MS: SLOW } });
    expect((await lab().prepare('r2')).code).toBe(0);
    expect((await lab().run('switch', lab().siteArgs('r2'))).code).toBe(0);
    // A slow request on the old process (through .prev), in flight when retire sends SIGTERM.
    let answeredAt = 0;
    const inflight = get(lab().prevSock, '/', 20).then((res) => ((answeredAt = Date.now()), res));
    const r = await lab().run('retire', [...lab().siteArgs('r2'), '--grace', '0.3', '--drain', '8']);
    expect(r.code, show(r)).toBe(0);
    expect(find(r, 'retired')?.fields.signal).toBe('TERM');
    const res = await inflight;
    expect(termLoggedAt('r1')).toBeLessThan(answeredAt); // it really was in flight at SIGTERM
    expect(res.status).toBe(200);
    expect(res.body).toBe('hello from release r1\n');
  });

  it('negative control: an app that dies on SIGTERM (HELLO_DIE_ON_TERM) drops the in-flight request', async () => {
    await lab().deploy('r1', { env: { HELLO_DELAY_MS: SLOW, HELLO_DIE_ON_TERM: '1' } });
    expect((await lab().prepare('r2')).code).toBe(0);
    expect((await lab().run('switch', lab().siteArgs('r2'))).code).toBe(0);
    const inflight = get(lab().prevSock, '/', 20);
    const r = await lab().run('retire', [...lab().siteArgs('r2'), '--grace', '0.3', '--drain', '8']);
    expect(r.code, show(r)).toBe(0);
    expect(find(r, 'retired')?.fields.signal).toBe('TERM');
    expect((await inflight).status).toBe(0);
    expect((await get(lab().liveSock)).body).toBe('hello from release r2\n');
  });

  it('escalates to SIGKILL when the old process does not finish within --drain', async () => {
    const r1 = await lab().deploy('r1', { env: { HELLO_DELAY_MS: SLOW, HELLO_DRAIN_MS: '60000' } });
    expect((await lab().prepare('r2')).code).toBe(0);
    expect((await lab().run('switch', lab().siteArgs('r2'))).code).toBe(0);
    // Keep the old process busy for longer than the drain allows.
    const stuck = [get(lab().prevSock, '/', 20), get(lab().prevSock, '/', 20)];
    // both accepted by the old app (in flight under its bind name), else TERM alone would end it
    const inFlight = () => execFileSync('ss', ['-xn'], { encoding: 'utf8' }).split('\n').filter((l) => l.startsWith('u_str ESTAB') && l.includes(`${lab().liveSock}-r1 `)).length;
    expect(await waitFor(() => inFlight() >= 2)).toBe(true);
    const r = await lab().run('retire', [...lab().siteArgs('r2'), '--grace', '0', '--drain', '0.3']);
    expect(r.code, show(r)).toBe(0);
    expect(find(r, 'retired')?.fields.signal).toBe('KILL');
    expect(alive(r1.pid, r1.starttime)).toBe(false);
    // Killed before it could answer: the drain limit is what ended them.
    expect((await Promise.all(stuck)).map((x) => x.status)).toEqual([0, 0]);
  });

  it('retire exits 7 when the release holding the lock was never switched', async () => {
    expect((await lab().prepare('r1')).code).toBe(0);
    const r = await lab().run('retire', [...lab().siteArgs('r1'), '--grace', '0']);
    expect(r.code, show(r)).toBe(7);
    expect(find(r, 'error')?.msg).toContain('not live');
    expect(lab().lockHeld()).toBe(true);
  });
});

describe('hostile values are passed literally', () => {
  it('shell metacharacters in --env, --lock-owner, --audit and app arguments run nothing', async () => {
    const m = (n: number) => path.join(lab().root, `pwned${n}`);
    const markers = [1, 2, 3, 4, 5, 6, 7].map(m);
    const p = await lab().prepare('r1', {
      env: { X: `$(touch ${m(1)})`, Y: `\`touch ${m(2)}\`` },
      args: ['--lock-owner', `'; touch ${m(3)}; echo '`],
      cmd: ['node', 'server.js', '--socket', '{socket}', `; touch ${m(4)}`, `$(touch ${m(5)})`],
    });
    expect(p.code, show(p)).toBe(0);
    const pid = Number(find(p, 'prepared')?.fields.pid);
    // The app got the values verbatim, in its environment and argv.
    const environ = fs.readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
    expect(environ).toContain(`X=$(touch ${m(1)})`);
    expect(environ).toContain(`Y=\`touch ${m(2)}\``);
    expect(environ).toContain('SWITCHYARD_RELEASE=r1');
    expect(environ).toContain(`SWITCHYARD_SOCKET=${lab().stageSock('r1')}`);
    const argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    expect(argv).toContain(`; touch ${m(4)}`);
    expect(argv).toContain(lab().stageSock('r1')); // {socket} replaced
    expect(lab().state('lock/owner')).toContain(`'; touch ${m(3)}; echo '`);

    expect((await lab().run('switch', lab().siteArgs('r1'))).code).toBe(0);
    const r = await lab().run('retire', [...lab().siteArgs('r1'), '--grace', '0', '--audit', `$(touch ${m(6)}) && touch ${m(7)}`]);
    expect(r.code, show(r)).toBe(0);
    expect(lab().state('audit.log')).toContain(`msg=$(touch ${m(6)}) && touch ${m(7)}`);
    for (const f of markers) expect(fs.existsSync(f), f).toBe(false);
  });

  it('the same through a remote shell: every word single-quoted as the client sends it', async () => {
    const marker = path.join(lab().root, 'pwned-sh');
    const quote = (w: string) => `'${w.replace(/'/g, `'\\''`)}'`;
    const argv = ['bash', '-c', scriptText('unlock'), 'unlock.sh', '--deploy-to', `${lab().deployTo}`, '--release', `x';touch ${marker};'`];
    const r = await execa('sh', ['-c', argv.map(quote).join(' ')], { reject: false });
    expect(r.exitCode).toBe(2); // a bad release id, refused as a value
    expect(String(r.stdout)).toContain('::sy error code=2');
    expect(fs.existsSync(marker)).toBe(false);
  });
});
