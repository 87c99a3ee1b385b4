// release.sh: one exec per host for the whole release, driven by words on its stdin, with the
// text the client really sends (lib.sh, the steps as functions, release.sh). Real scripts, real app.
import { execa, type ResultPromise } from 'execa';
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { releaseScriptText } from '../../lib/remote/commands';
import { parseResultLines } from '../../lib/remote/protocol';
import { alive, find, get, show, useScriptLab, waitFor, which } from '../support/scripts';

const lab = useScriptLab();

interface Talk {
  /** Resolves with stdout so far once a line matches. */
  until(re: RegExp): Promise<string>;
  say(word: string): void;
  end(): void;
  done: ResultPromise<{ reject: false; buffer: true }>;
}

/** r's deploy, the previous release kept running as the standby (retire --standby). */
async function deployWithStandby(r: string): Promise<{ pid: number; starttime: string }> {
  const steps = [
    await lab().prepare(r),
    await lab().run('switch', lab().siteArgs(r)),
    await lab().run('retire', [...lab().siteArgs(r), '--grace', '0.1', '--drain', '5', '--standby', '60']),
  ];
  for (const x of steps) if (x.code !== 0) throw new Error(`deploy of ${r} failed: ${show(x)}`);
  return lab().pidFile(r)!;
}

/**
 * Starts release.sh for R with the package first on stdin, as the client does (reuse: none, an
 * existing release again; filesOnly: an existing release on a host that runs no app).
 */
function start(release: string, o: { retire?: string[]; wait?: number; reuse?: boolean; filesOnly?: boolean } = {}): Talk {
  const pkg = lab().packageFile;
  const p = o.filesOnly ? [...lab().siteArgs(release), '--lock-owner', 'test', '--files-only', '--reuse'] : lab().prepareArgs(release, { reuse: o.reuse ?? false });
  if (!o.reuse && !o.filesOnly) p.splice(p.indexOf('--'), 0, '--package-bytes', String(fs.statSync(pkg).size));
  const sw = [...lab().siteArgs(release), ...(o.filesOnly ? ['--files-only'] : [])];
  const re = [...lab().siteArgs(release), '--grace', '0.1', '--drain', '5', ...(o.retire ?? [])];
  const un = [...lab().siteArgs(release), '--grace', '0'];
  const done = execa(which('bash'), ['-c', releaseScriptText(), 'release.sh', String(o.wait ?? 60), String(p.length), String(sw.length), String(re.length), ...p, ...sw, ...re, ...un], {
    reject: false,
    stdin: 'pipe',
    env: {},
    cwd: lab().root,
  });
  if (!o.reuse && !o.filesOnly) done.stdin!.write(fs.readFileSync(pkg));
  let out = '';
  const waiting: { re: RegExp; resolve: (s: string) => void }[] = [];
  done.stdout!.on('data', (c: Buffer) => {
    out += c.toString();
    for (const w of [...waiting]) {
      if (w.re.test(out)) {
        waiting.splice(waiting.indexOf(w), 1);
        w.resolve(out);
      }
    }
  });
  return {
    until: (re) =>
      re.test(out)
        ? Promise.resolve(out)
        : Promise.race([
            new Promise<string>((resolve) => waiting.push({ re, resolve })),
            done.then((r) => {
              throw new Error(`release.sh ended (exit ${r.exitCode}) before ${re}:\n${out}\n${String(r.stderr)}`);
            }),
          ]),
    say: (word) => done.stdin!.write(`${word}\n`),
    end: () => done.stdin!.end(),
    done: done as unknown as Talk['done'],
  };
}

describe('release.sh: the whole release in one exec', () => {
  it('prepare, then switch and retire at the client word: r2 live, r1 retired, lock free', async () => {
    const r1 = await lab().deploy('r1');
    const t = start('r2');
    await t.until(/::sy ready step=prepare\n/);
    // the barrier: prepared and healthy, nothing switched yet
    expect((await get(lab().liveSock)).body).toBe('hello from release r1\n');
    expect((await get(lab().stageSock('r2'))).body).toBe('hello from release r2\n');
    t.say('switch');
    await t.until(/::sy ready step=switch\n/);
    expect((await get(lab().liveSock)).body).toBe('hello from release r2\n');
    expect(lab().lockHeld()).toBe(true);
    await new Promise((res) => setTimeout(res, 100)); // as when other hosts are still switching
    t.say('retire');
    t.end();
    const r = await t.done;
    expect(r.exitCode, String(r.stdout) + String(r.stderr)).toBe(0);
    const lines = parseResultLines(String(r.stdout));
    expect(lines.map((l) => l.event)).toEqual(['prepared', 'live', 'ready', 'switched', 'ready', 'retired', 'unlocked']);
    const retired = lines.find((l) => l.event === 'retired')?.fields;
    expect(retired).toMatchObject({ release: 'r1', signal: 'TERM', queue: 'empty' });
    // retire was told when the switch ended (--switched-at): the old queue had been quiet 100 ms, one look did
    expect(Number(retired?.waited_ms)).toBeLessThan(20);
    expect(lab().state('live')).toMatch(/^r2 /);
    expect(lab().lockHeld()).toBe(false);
    expect(alive(r1.pid, r1.starttime)).toBe(false);
  });

  it('undo after prepare: the staged release, its process and the lock are gone; r1 untouched', async () => {
    const r1 = await lab().deploy('r1');
    const t = start('r2');
    await t.until(/::sy ready step=prepare\n/);
    const r2 = lab().pidFile('r2')!;
    t.say('undo');
    t.end();
    const r = await t.done;
    expect(r.exitCode, String(r.stderr)).toBe(0);
    expect(find({ code: 0, stdout: String(r.stdout), stderr: '', lines: parseResultLines(String(r.stdout)) }, 'undone')?.fields).toEqual({
      release: 'r2',
      restored: 'not-switched',
    });
    expect(fs.existsSync(lab().releaseDir('r2'))).toBe(false);
    expect(alive(r2.pid, r2.starttime)).toBe(false);
    expect(lab().lockHeld()).toBe(false);
    expect(alive(r1.pid, r1.starttime)).toBe(true);
    expect((await get(lab().liveSock)).body).toBe('hello from release r1\n');
  });

  it('stdin ending without a word (the client is gone) exits 9 and leaves the host as it is, locked', async () => {
    await lab().deploy('r1');
    const t = start('r2');
    await t.until(/::sy ready step=prepare\n/);
    t.end();
    const r = await t.done;
    expect(r.exitCode).toBe(9);
    expect(parseResultLines(String(r.stdout)).at(-1)).toMatchObject({ event: 'error', fields: { code: '9', step: 'release' } });
    expect(lab().lockHeld()).toBe(true);
    expect(alive(lab().pidFile('r2')!.pid)).toBe(true); // for `gulp unlock` to undo
    expect((await get(lab().liveSock)).body).toBe('hello from release r1\n');
  });

  it('no word within WAIT seconds (a stuck client) ends it the same way: 9, the host as it is', async () => {
    await lab().deploy('r1');
    const t = start('r2', { wait: 1 });
    await t.until(/::sy ready step=prepare\n/);
    const started = Date.now();
    const r = await t.done; // stdin stays open: nobody says anything
    expect(r.exitCode).toBe(9);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(String(r.stdout)).toContain('no word from the client after prepare (stdin ended, or 1s passed)');
    expect(lab().lockHeld()).toBe(true);
    // the client then does the step as an exec of its own: the lock is still R's
    const s = await lab().run('switch', lab().siteArgs('r2'));
    expect(s.code).toBe(0);
    expect((await get(lab().liveSock)).body).toBe('hello from release r2\n');
    t.end();
  });

  it('an unknown word, or one out of order, exits 2 without switching', async () => {
    await lab().deploy('r1');
    const t = start('r2');
    await t.until(/::sy ready step=prepare\n/);
    t.say('retire'); // retire before switch
    t.end();
    const r = await t.done;
    expect(r.exitCode).toBe(2);
    expect(String(r.stdout)).toContain("unexpected word after prepare: 'retire'");
    expect((await get(lab().liveSock)).body).toBe('hello from release r1\n');
  });

  it('a failing step ends it with the step’s own code (a lock held by another release: 4)', async () => {
    await lab().deploy('r1');
    fs.mkdirSync(`${lab().deployTo}/.switchyard/lock`);
    fs.writeFileSync(`${lab().deployTo}/.switchyard/lock/owner`, 'release=rX since=now someone\n');
    const t = start('r2');
    t.end();
    const r = await t.done;
    expect(r.exitCode).toBe(4);
    expect(String(r.stdout)).toContain('::sy error code=4 step=lock msg=locked by: release=rX');
    expect(fs.existsSync(lab().releaseDir('r2'))).toBe(false);
  });

  it('--release @standby: the standby is named on the host, in every step, and taken back at once (one exec)', async () => {
    const r1 = await lab().deploy('r1');
    const r2 = await deployWithStandby('r2');
    const t = start('@standby', { reuse: true, retire: ['--mark-bad'] });
    await t.until(/::sy ready step=prepare\n/);
    t.say('switch');
    await t.until(/::sy ready step=switch\n/);
    t.say('retire');
    t.end();
    const r = await t.done;
    expect(r.exitCode, String(r.stdout) + String(r.stderr)).toBe(0);
    const lines = parseResultLines(String(r.stdout));
    expect(lines[0]).toEqual({ event: 'resolved', fields: { name: '@standby', release: 'r1' } });
    expect(lines.find((l) => l.event === 'prepared')?.fields).toMatchObject({ release: 'r1', pid: String(r1.pid), standby: 'yes' });
    expect(lines.find((l) => l.event === 'switched')?.fields).toMatchObject({ release: 'r1', previous: 'r2' });
    expect(lines.find((l) => l.event === 'retired')?.fields).toMatchObject({ release: 'r2' });
    expect(lab().state('live')).toBe(`r1 ${r1.pid} ${r1.starttime}`); // the same process serves again
    expect((await get(lab().liveSock)).body).toBe('hello from release r1\n');
    expect(alive(r2.pid, r2.starttime)).toBe(false);
    expect(fs.existsSync(`${lab().releaseDir('r2')}/.switchyard/bad`)).toBe(true);
    expect(lab().lockHeld()).toBe(false);
  });

  it('--release @standby with no standby running: 12 before prepare, nothing changed', async () => {
    const r1 = await lab().deploy('r1');
    const r2 = await deployWithStandby('r2');
    process.kill(r1.pid, 'SIGKILL'); // as after the window
    await waitFor(() => !alive(r1.pid, r1.starttime));
    const before = fs.readdirSync(`${lab().deployTo}/releases`).sort();
    const t = start('@standby', { reuse: true });
    t.end();
    const r = await t.done;
    expect(r.exitCode).toBe(12);
    expect(parseResultLines(String(r.stdout))).toEqual([
      { event: 'error', fields: { code: '12', step: 'release' }, msg: '@standby: no standby runs here (previous release: r1, state: previous): nothing changed' },
    ]);
    expect(lab().lockHeld()).toBe(false);
    expect(lab().state('live')).toBe(`r2 ${r2.pid} ${r2.starttime}`);
    expect(fs.readdirSync(`${lab().deployTo}/releases`).sort()).toEqual(before);
    expect((await get(lab().liveSock)).body).toBe('hello from release r2\n');
  });

  it('--release @standby on a host that runs no app (--files-only): its previous release, where it has one', async () => {
    const files = async (r: string) => {
      for (const x of [
        await lab().run('prepare', ['--files-only', ...lab().siteArgs(r), '--lock-owner', 'test'], { inputFile: lab().packageFile }),
        await lab().run('switch', [...lab().siteArgs(r), '--files-only']),
        await lab().run('retire', [...lab().siteArgs(r), '--grace', '0.1', '--drain', '5']),
      ]) {
        if (x.code !== 0) throw new Error(show(x));
      }
    };
    await files('r1');
    const none = start('@standby', { filesOnly: true });
    none.end();
    const refused = await none.done;
    expect(refused.exitCode, String(refused.stdout)).toBe(12); // nothing before r1
    await files('r2');
    const t = start('@standby', { filesOnly: true });
    await t.until(/::sy ready step=prepare\n/);
    t.say('switch');
    await t.until(/::sy ready step=switch\n/);
    t.say('retire');
    t.end();
    const r = await t.done;
    expect(r.exitCode, String(r.stdout) + String(r.stderr)).toBe(0);
    const lines = parseResultLines(String(r.stdout));
    expect(lines[0]).toEqual({ event: 'resolved', fields: { name: '@standby', release: 'r1' } });
    expect(lines.find((l) => l.event === 'prepared')?.fields).toEqual({ release: 'r1', mode: 'files' });
    expect(fs.readlinkSync(`${lab().deployTo}/current`)).toMatch(/releases\/r1$/);
    expect(lab().lockHeld()).toBe(false);
  });
});
