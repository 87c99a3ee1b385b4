// Issue 11, releases and rollback: a rollback never goes back to a release rolled back from,
// `releases` shows each release's state, --to names one, and pruning keeps where a rollback goes.
// Through real sshd hosts and nginx.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Environment } from '../../lib/environment';
import { MemoryReporter } from '../../lib/output/reporter';
import { deploy } from '../../lib/release/deploy';
import { rollback } from '../../lib/release/reuse';
import { releases } from '../../lib/servers/releases';
import { setup } from '../../lib/servers/setup';
import { startLab, type Lab } from '../support/lab';
import { labEnv } from '../support/lab-env';

let lab: Lab;
/** keepReleases 3 for the deploys; 2 from the first rollback on. */
let env3: Environment;
let env: Environment;

beforeAll(async () => {
  lab = await startLab({ hosts: 2 });
  env3 = labEnv(lab, { over: { keepReleases: 3 } });
  env = labEnv(lab, { over: { keepReleases: 2 } });
  await setup({ environment: env, reporter: new MemoryReporter() });
});
afterAll(async () => {
  await lab?.stop();
});

const quiet = () => new MemoryReporter();
const served = async () => Promise.all(lab.hosts.map(async (h) => (await lab.fetchSite(h)).body.trim().replace('hello from release ', '')));
/** id → state, the same on both hosts. */
const states = async () => {
  const all = await releases({ environment: env, reporter: quiet() });
  const of = (i: number) => Object.fromEntries(all[i]!.releases.map((r) => [r.id, r.state]));
  expect(of(1)).toEqual(of(0));
  return of(0);
};
const releaseDir = (i: number, id: string) => path.join(lab.hosts[i]!.deployTo, 'releases', id);

describe.sequential('releases and rollback', () => {
  const ids: string[] = [];

  it('deploys r1, r2, r3: releases lists them newest first with their state, git revision and times', async () => {
    ids.push((await deploy({ environment: env3, reporter: quiet() }, 'cold-deploy')).release);
    ids.push((await deploy({ environment: env3, reporter: quiet() })).release);
    ids.push((await deploy({ environment: env3, reporter: quiet() })).release);
    const [r1, r2, r3] = ids as [string, string, string];
    expect(await served()).toEqual([r3, r3]);
    expect(await states()).toEqual({ [r3]: 'current', [r2]: 'previous', [r1]: 'good' });
    const all = await releases({ environment: env, reporter: quiet() });
    expect(all[0]!.releases.map((r) => r.id)).toEqual([r3, r2, r1]);
    for (const r of all[0]!.releases) {
      expect(r.liveAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/); // to the microsecond: two in one second still order
      expect(r.builtAt).toMatch(/^\d{4}-\d\d-\d\dT/);
    }
  });

  it('rollback (keepReleases 2) goes to r2 and marks r3 bad; r1, the newest good before r2, is kept; a hand-made directory too', async () => {
    const [r1, r2, r3] = ids as [string, string, string];
    fs.mkdirSync(releaseDir(0, 'backup-copy'));
    const r = await rollback({ environment: env, reporter: quiet() });
    expect(r.ok).toBe(true);
    expect(await served()).toEqual([r2, r2]);
    expect(await states()).toEqual({ [r3]: 'bad', [r2]: 'current', [r1]: 'good' });
    expect(fs.existsSync(releaseDir(0, 'backup-copy'))).toBe(true);
  });

  it('a second rollback goes to r1, never to the bad r3; a third has nowhere good to go and changes nothing', async () => {
    const [r1, r2, r3] = ids as [string, string, string];
    await rollback({ environment: env, reporter: quiet() });
    expect(await served()).toEqual([r1, r1]);
    expect(await states()).toEqual({ [r3]: 'bad', [r2]: 'bad', [r1]: 'current' });
    await expect(rollback({ environment: env, reporter: quiet() })).rejects.toThrow(
      `rollback: nothing changed\nh1: no good release before ${r1} to roll back to (rolled back from, not picked: ${r3}, ${r2}; name one with --to)\nh2: `,
    );
    expect(await served()).toEqual([r1, r1]);
  });

  it('--to names a release even when it is bad; one missing on a host is refused before anything changes, naming the host', async () => {
    const [r1, r2, r3] = ids as [string, string, string];
    await rollback({ environment: env, reporter: quiet(), to: r3 });
    expect(await served()).toEqual([r3, r3]);
    expect(await states()).toEqual({ [r3]: 'current', [r2]: 'bad', [r1]: 'bad' });
    fs.rmSync(releaseDir(1, r2), { recursive: true });
    await expect(rollback({ environment: env, reporter: quiet(), to: r2 })).rejects.toThrow(`rollback: nothing changed\nh2: --to=${r2}: no such release here (${r3}, ${r1})`);
    expect(await served()).toEqual([r3, r3]);
  });
});
