// retire.sh waits for what the old release can still lose, not a blind timer (issue 14): its
// listener's accept queue (ss Recv-Q, by the inode .prev links to) empty for 20 ms, at most
// --grace; with --drain-mode connections also its accepted connections closed, at most --drain.
// Where ss cannot tell, the full grace, said on stderr. Real scripts, real example app; a process
// that does not accept is one stopped with SIGSTOP (connections queue up in its backlog).
import { execa } from 'execa';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { alive, find, get, show, useScriptLab, which, type ScriptResult } from '../support/scripts';

const lab = useScriptLab();

/** r1 live, r2 prepared and switched in: r1 is the old release retire stops. */
async function switched(env: Record<string, string> = {}): Promise<{ pid: number; starttime: string }> {
  const r1 = await lab().deploy('r1', { env });
  const p = await lab().prepare('r2');
  expect(p.code, show(p)).toBe(0);
  const s = await lab().run('switch', lab().siteArgs('r2'));
  expect(s.code, show(s)).toBe(0);
  return r1;
}

const retire = (args: string[], o?: { path?: string }) => lab().run('retire', [...lab().siteArgs('r2'), ...args], o);

/** The retired line's fields, with its wait as numbers. */
function retired(r: ScriptResult): { [field: string]: string | number; waited: number } {
  const f = find(r, 'retired')?.fields;
  expect(f, show(r)).toBeDefined();
  return { ...f!, waited: Number(f!.waited_ms) };
}

/** When the old release's app logged that it got SIGTERM (from its app.log). */
function termLoggedAt(release: string): number {
  const log = fs.readFileSync(path.join(lab().releaseDir(release), '.switchyard', 'app.log'), 'utf8');
  const line = log.split('\n').find((l) => l.includes('SIGTERM'));
  expect(line, log).toBeDefined();
  return Date.parse(line!.slice(0, line!.indexOf(' ')));
}

/** The accept queue (Recv-Q) of the listening socket whose file is PATH, as ss shows it. */
async function queueOf(file: string): Promise<number | undefined> {
  const ino = String(fs.statSync(file).ino);
  const out = (await execa('ss', ['-xle'])).stdout;
  const line = out.split('\n').find((l) => l.includes(` ino:${ino} `));
  return line ? Number(line.trim().split(/\s+/)[2]) : undefined;
}

/** A bin directory whose `ss` is this script (the other programs come from PATH after it). */
function fakeSs(body: string): string {
  const bin = path.join(lab().root, 'fake-bin');
  fs.mkdirSync(bin, { recursive: true });
  fs.writeFileSync(path.join(bin, 'ss'), `#!${which('bash')}\n${body}\n`, { mode: 0o755 });
  return `${bin}:${process.env.PATH}`;
}

describe('retire waits for the old listener, not a timer', () => {
  it('with an empty queue it signals within ~100 ms of starting, not after the 2 s grace', async () => {
    const r1 = await switched();
    const t0 = Date.now();
    const r = await retire(['--grace', '2', '--drain', '5']);
    const took = Date.now() - t0;
    expect(r.code, show(r)).toBe(0);
    const f = retired(r);
    console.log(`empty queue: waited_ms=${f.waited} stop_ms=${f.stop_ms}, retire took ${took} ms`);
    expect(f).toMatchObject({ release: 'r1', signal: 'TERM', queue: 'empty', queued: '0' });
    expect(f.waited).toBeGreaterThanOrEqual(20); // the settle: empty for 20 ms
    expect(f.waited).toBeLessThan(150);
    expect(took).toBeLessThan(1500);
    expect(r.stderr).toBe('');
    expect(alive(r1.pid, r1.starttime)).toBe(false);
  });

  it('with connections queued (Recv-Q > 0: the old process does not accept for 800 ms) it waits until they are accepted, then TERMs; none is lost', async () => {
    const r1 = await switched();
    process.kill(r1.pid, 'SIGSTOP'); // accepts nothing; connections to its socket queue up
    let contAt = 0;
    try {
      const queued = [1, 2, 3].map(() => get(lab().prevSock, '/', 20));
      for (let i = 0; i < 100 && (await queueOf(lab().prevSock)) !== 3; i++) await new Promise((res) => setTimeout(res, 20));
      expect(await queueOf(lab().prevSock)).toBe(3);
      const retiring = retire(['--grace', '5', '--drain', '5']);
      await new Promise((res) => setTimeout(res, 800));
      contAt = Date.now();
      process.kill(r1.pid, 'SIGCONT');
      const r = await retiring;
      expect(r.code, show(r)).toBe(0);
      const f = retired(r);
      console.log(`queued: waited_ms=${f.waited} stop_ms=${f.stop_ms}`);
      expect(f).toMatchObject({ release: 'r1', signal: 'TERM', queue: 'empty', queued: '3' });
      expect(f.waited).toBeGreaterThanOrEqual(700);
      expect(f.waited).toBeLessThan(4000);
      expect(termLoggedAt('r1')).toBeGreaterThanOrEqual(contAt - 5);
      expect((await Promise.all(queued)).map((x) => [x.status, x.body])).toEqual(Array(3).fill([200, 'hello from release r1\n']));
      expect(alive(r1.pid, r1.starttime)).toBe(false);
    } finally {
      if (!contAt) process.kill(r1.pid, 'SIGCONT');
    }
  });

  /** A PATH whose ss counts its calls into a file, then is the real ss. */
  const countingSs = () => fakeSs(`echo x >>"\${0%/*}/ss-calls"; exec ${which('ss')} "$@"`);
  const ssCalls = () => fs.readFileSync(path.join(lab().root, 'fake-bin', 'ss-calls'), 'utf8').split('\n').filter(Boolean).length;

  it('--switched-at (release.sh: when its switch ended) 1 s ago and an empty queue: one look at the queue, settled at once', async () => {
    const r1 = await switched();
    const r = await retire(['--grace', '2', '--drain', '5', '--switched-at', String(Date.now() - 1000)], { path: countingSs() });
    expect(r.code, show(r)).toBe(0);
    expect(retired(r)).toMatchObject({ release: 'r1', signal: 'TERM', queue: 'empty', queued: '0' });
    expect(retired(r).waited).toBeLessThan(20);
    expect(ssCalls()).toBe(1);
    expect(alive(r1.pid, r1.starttime)).toBe(false);
  });

  it('--switched-at just now: the queue still has to stay empty for the rest of the 20 ms (two looks)', async () => {
    await switched();
    const r = await retire(['--grace', '2', '--drain', '5', '--switched-at', String(Date.now() + 200)], { path: countingSs() });
    expect(r.code, show(r)).toBe(0);
    expect(retired(r)).toMatchObject({ queue: 'empty' });
    expect(retired(r).waited).toBeGreaterThanOrEqual(20);
    expect(ssCalls()).toBeGreaterThanOrEqual(2);
  });

  it('--switched-at long ago does not end the wait while connections are queued: they are accepted first, none is lost', async () => {
    const r1 = await switched();
    process.kill(r1.pid, 'SIGSTOP');
    let contAt = 0;
    try {
      const queued = [1, 2].map(() => get(lab().prevSock, '/', 20));
      for (let i = 0; i < 100 && (await queueOf(lab().prevSock)) !== 2; i++) await new Promise((res) => setTimeout(res, 20));
      const retiring = retire(['--grace', '5', '--drain', '5', '--switched-at', String(Date.now() - 60_000)]);
      await new Promise((res) => setTimeout(res, 500));
      contAt = Date.now();
      process.kill(r1.pid, 'SIGCONT');
      const r = await retiring;
      expect(r.code, show(r)).toBe(0);
      expect(retired(r)).toMatchObject({ queue: 'empty', queued: '2', signal: 'TERM' });
      expect(termLoggedAt('r1')).toBeGreaterThanOrEqual(contAt - 5);
      expect((await Promise.all(queued)).map((x) => x.status)).toEqual([200, 200]);
    } finally {
      if (!contAt) process.kill(r1.pid, 'SIGCONT');
    }
  });

  it('a bad --switched-at is a usage error (2)', async () => {
    await switched();
    const r = await retire(['--switched-at', 'soon']);
    expect(r.code, show(r)).toBe(2);
    expect(r.stdout).toContain("bad --switched-at (epoch ms): 'soon'");
  });

  it('--grace bounds the wait: connections still queued when it runs out are reported (queue=pending) and the process is stopped anyway', async () => {
    const r1 = await switched();
    process.kill(r1.pid, 'SIGSTOP');
    try {
      const queued = [1, 2].map(() => get(lab().prevSock, '/', 10));
      for (let i = 0; i < 100 && (await queueOf(lab().prevSock)) !== 2; i++) await new Promise((res) => setTimeout(res, 20));
      const retiring = retire(['--grace', '0.3', '--drain', '5']);
      await new Promise((res) => setTimeout(res, 1000));
      process.kill(r1.pid, 'SIGCONT');
      const r = await retiring;
      expect(r.code, show(r)).toBe(0);
      const f = retired(r);
      expect(f).toMatchObject({ queue: 'pending' });
      expect(f.waited).toBeGreaterThanOrEqual(300);
      expect(f.waited).toBeLessThan(900);
      expect(r.stderr).toContain('retire: 2 connection(s) still queued on the old socket after the grace of 0.3s: stopping it anyway');
      await Promise.all(queued);
    } finally {
      process.kill(r1.pid, 'SIGCONT');
    }
  });

  it('tells the old listener from the new one by inode when both have the same bind name (a restart with --reuse)', async () => {
    const first = await lab().deploy('r1');
    expect((await lab().prepare('r1', { reuse: true })).code).toBe(0);
    expect((await lab().run('switch', lab().siteArgs('r1'))).code).toBe(0);
    const r = await lab().run('retire', [...lab().siteArgs('r1'), '--grace', '2', '--drain', '5', '--drain-mode', 'connections']);
    expect(r.code, show(r)).toBe(0);
    expect(retired(r)).toMatchObject({ release: 'r1', pid: String(first.pid), signal: 'TERM', queue: 'empty', connections: 'closed' });
    expect(retired(r).waited).toBeLessThan(500);
    expect((await get(lab().liveSock)).body).toBe('hello from release r1\n');
  });
});

describe('where ss cannot tell, the full grace, and it says so', () => {
  it('no ss on PATH: waits the whole --grace and says so', async () => {
    const r1 = await switched();
    const bin = path.join(lab().root, 'bin');
    fs.mkdirSync(bin);
    for (const t of ['rm', 'id', 'stat', 'find', 'grep']) fs.symlinkSync(which(t), path.join(bin, t));
    const r = await retire(['--grace', '0.5', '--drain', '5'], { path: bin });
    expect(r.code, show(r)).toBe(0);
    const f = retired(r);
    expect(f).toMatchObject({ release: 'r1', signal: 'TERM', queue: 'timer' });
    expect(f.waited).toBeGreaterThanOrEqual(500);
    expect(r.stderr).toContain('retire: no ss on PATH: waiting the full grace of 0.5s');
    expect(alive(r1.pid, r1.starttime)).toBe(false);
  });

  // an old ss: the columns, but no ino: (no -e support)
  const noInodes = () => fakeSs(`echo 'Netid State Recv-Q Send-Q Local Address:Port Peer Address:Port'; echo "u_str LISTEN 0 511 $3 12345 * 0"`);

  it('an ss that prints no inodes (an old iproute2): another release is told by its bind name alone', async () => {
    const r1 = await switched();
    const r = await retire(['--grace', '2', '--drain', '5'], { path: noInodes() });
    expect(r.code, show(r)).toBe(0);
    expect(retired(r)).toMatchObject({ release: 'r1', queue: 'empty', signal: 'TERM' });
    expect(retired(r).waited).toBeLessThan(1000);
    expect(r.stderr).not.toContain('waiting the full grace');
    expect(alive(r1.pid, r1.starttime)).toBe(false);
  });

  it('the same ss in a restart (two processes bound the same name, only the inode tells them): the full grace, and why', async () => {
    const first = await lab().deploy('r1');
    expect((await lab().prepare('r1', { reuse: true })).code).toBe(0);
    expect((await lab().run('switch', lab().siteArgs('r1'))).code).toBe(0);
    const r = await lab().run('retire', [...lab().siteArgs('r1'), '--grace', '0.4', '--drain', '5'], { path: noInodes() });
    expect(r.code, show(r)).toBe(0);
    expect(retired(r)).toMatchObject({ release: 'r1', pid: String(first.pid), queue: 'timer', signal: 'TERM' });
    expect(retired(r).waited).toBeGreaterThanOrEqual(400);
    expect(r.stderr).toContain('retire: ss gives no inode (ino:) for unix sockets: waiting the full grace of 0.4s');
  });

  it('the socket not in ss output: the full grace', async () => {
    await switched();
    const empty = fakeSs(`echo 'Netid State Recv-Q Send-Q Local Address:Port Peer Address:Port'`);
    const r = await retire(['--grace', '0.4', '--drain', '5'], { path: empty });
    expect(r.code, show(r)).toBe(0);
    expect(retired(r)).toMatchObject({ queue: 'timer', signal: 'TERM' });
    expect(retired(r).waited).toBeGreaterThanOrEqual(400);
    expect(r.stderr).toContain('retire: ss shows no queue for the old socket: waiting the full grace of 0.4s');
  });

  it('--grace 0: no wait and no ss at all (stop right after the rename)', async () => {
    await switched();
    const none = fakeSs('echo called >>"${0%/*}/called"; exit 1');
    const r = await retire(['--grace', '0', '--drain', '5'], { path: none });
    expect(r.code, show(r)).toBe(0);
    expect(retired(r)).toMatchObject({ queue: 'timer', signal: 'TERM' });
    expect(retired(r).waited).toBeLessThan(50);
    expect(r.stderr).toBe('');
    expect(fs.existsSync(path.join(lab().root, 'fake-bin', 'called'))).toBe(false);
  });

  it('a bad --drain-mode is a usage error (2)', async () => {
    await switched();
    const r = await retire(['--drain-mode', 'wait']);
    expect(r.code, show(r)).toBe(2);
    expect(find(r, 'error')?.msg).toContain("bad --drain-mode (signal or connections): 'wait'");
  });
});

describe('--drain-mode connections (apps that exit at once on SIGTERM)', () => {
  // Every answer takes SLOW ms and the app dies at once on SIGTERM: only waiting for its
  // connections before the signal saves the request in flight.
  const SLOW = '1500';

  it('waits until the in-flight connection is closed, then TERMs: the request is answered', async () => {
    const r1 = await switched({ HELLO_DELAY_MS: SLOW, HELLO_DIE_ON_TERM: '1' });
    let answeredAt = 0;
    const inflight = get(lab().prevSock, '/', 20).then((res) => ((answeredAt = Date.now()), res));
    await new Promise((res) => setTimeout(res, 200)); // accepted: in flight, not queued
    const r = await retire(['--grace', '2', '--drain', '8', '--drain-mode', 'connections']);
    expect(r.code, show(r)).toBe(0);
    const f = retired(r);
    console.log(`connections: waited_ms=${f.waited} stop_ms=${f.stop_ms}`);
    expect(f).toMatchObject({ release: 'r1', signal: 'TERM', queue: 'empty', connections: 'closed' });
    expect(f.waited).toBeGreaterThanOrEqual(1000);
    const res = await inflight;
    expect([res.status, res.body]).toEqual([200, 'hello from release r1\n']);
    expect(termLoggedAt('r1')).toBeGreaterThanOrEqual(answeredAt - 5);
    expect(alive(r1.pid, r1.starttime)).toBe(false);
  });

  it('--drain bounds that wait: a connection still open then is reported (connections=open) and the process stopped', async () => {
    await switched({ HELLO_DELAY_MS: '3000', HELLO_DIE_ON_TERM: '1' });
    const inflight = get(lab().prevSock, '/', 20);
    await new Promise((res) => setTimeout(res, 200));
    const r = await retire(['--grace', '2', '--drain', '0.5', '--drain-mode', 'connections']);
    expect(r.code, show(r)).toBe(0);
    const f = retired(r);
    expect(f).toMatchObject({ queue: 'empty', connections: 'open', signal: 'TERM' });
    expect(f.waited).toBeGreaterThanOrEqual(500);
    expect(f.waited).toBeLessThan(2000);
    expect(r.stderr).toContain("retire: 1 connection(s) of the old release still open after the drain of 0.5s: signalling it anyway");
    expect((await inflight).status).toBe(0); // the negative: it died with the request in flight
  });
});
