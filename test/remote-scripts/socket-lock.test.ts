// Two environments (two deployTo) that name the same live socket must not both switch it: the
// deploy lock of each deployTo is not enough, so prepare also locks the live socket itself.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { find, get, ScriptLab, show, SITE } from '../support/scripts';

let a: ScriptLab;
let b: ScriptLab;
/** b deploys into a deployTo of its own, with a's socketDir: the same live socket. */
const bArgs = (release: string) => b.prepareArgs(release).map((w, i, all) => (all[i - 1] === '--socket-dir' ? a.socketDir : w));
const sockLock = () => path.join(a.socketDir, `SOCK-${SITE}.lock`);

beforeEach(async () => {
  a = ScriptLab.create();
  b = ScriptLab.create();
  await a.setup();
  await b.setup();
});
afterEach(async () => {
  await a.cleanup();
  await b.cleanup();
});

describe('the live socket lock', () => {
  it('a second environment naming the same live socket is refused (4) while the first deploys, and nothing of it is left', async () => {
    const p = await a.prepare('r1');
    expect(p.code, show(p)).toBe(0);
    expect(fs.readFileSync(path.join(sockLock(), 'owner'), 'utf8')).toMatch(new RegExp(`^deploy_to=${a.deployTo} release=r1 since=\\S+ test r1\\n$`));

    const r = await b.run('prepare', bArgs('r9'), { inputFile: b.packageFile });
    expect(r.code, show(r)).toBe(4);
    expect(find(r, 'error')?.msg).toContain(`the live socket ${a.liveSock} is being deployed by another environment: deploy_to=${a.deployTo} release=r1`);
    expect(b.lockHeld()).toBe(false); // its own deploy lock was given back
    expect(fs.existsSync(b.releaseDir('r9'))).toBe(false);
    expect(fs.existsSync(`${a.liveSock}-r9`)).toBe(false);

    // the first one goes on undisturbed, and its retire frees the socket for the other
    for (const [step, args] of [['switch', a.siteArgs('r1')], ['retire', [...a.siteArgs('r1'), '--grace', '0.1', '--drain', '5']]] as const) {
      const x = await a.run(step, args);
      expect(x.code, show(x)).toBe(0);
    }
    expect(fs.existsSync(sockLock())).toBe(false);
    expect((await get(a.liveSock)).body).toBe('hello from release r1\n');
    const again = await b.run('prepare', bArgs('r9'), { inputFile: b.packageFile });
    expect(again.code, show(again)).toBe(0);
    b.track(Number(find(again, 'prepared')!.fields.pid), find(again, 'prepared')!.fields.starttime ?? '');
    expect(fs.readFileSync(path.join(sockLock(), 'owner'), 'utf8')).toContain(`deploy_to=${b.deployTo} `);
  });

  it('unlock (which knows only deployTo) and a failed prepare free the live socket too', async () => {
    expect((await a.prepare('r1')).code).toBe(0);
    expect(fs.existsSync(sockLock())).toBe(true);
    const u = await a.run('unlock', ['--deploy-to', a.deployTo]);
    expect(u.code, show(u)).toBe(0);
    expect(fs.existsSync(sockLock())).toBe(false);

    const bad = await a.prepare('r2', { cmd: ['false'] });
    expect(bad.code, show(bad)).toBe(5);
    expect(fs.existsSync(sockLock())).toBe(false);
    expect(a.lockHeld()).toBe(false);
  });

  it('never removes a socket lock that another deployTo holds', async () => {
    expect((await a.prepare('r1')).code).toBe(0);
    // b's deploy lock pointing at a's socket lock (forged, or left by hand): b's unlock must not free it
    fs.mkdirSync(path.join(b.deployTo, '.switchyard', 'lock'));
    fs.writeFileSync(path.join(b.deployTo, '.switchyard', 'lock', 'owner'), 'release=r7 since=x test\n');
    fs.writeFileSync(path.join(b.deployTo, '.switchyard', 'lock', 'socket'), `${sockLock()}\n`);
    const u = await b.run('unlock', ['--deploy-to', b.deployTo]);
    expect(u.code, show(u)).toBe(0);
    expect(fs.readFileSync(path.join(sockLock(), 'owner'), 'utf8')).toContain(`deploy_to=${a.deployTo} `);
  });
});
