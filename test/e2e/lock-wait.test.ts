// Issue 13, locks that wait and tell the truth: --lock-wait lets a second deploy wait for the
// first, and a lock whose heartbeat stopped is stale from any machine. Through real sshd hosts.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Environment } from '../../lib/environment';
import { MemoryReporter } from '../../lib/output/reporter';
import { deploy } from '../../lib/release/deploy';
import { setup } from '../../lib/servers/setup';
import { startLab, type Lab } from '../support/lab';
import { labEnv } from '../support/lab-env';

let lab: Lab;
let env: Environment;

beforeAll(async () => {
  lab = await startLab({ hosts: 2 });
  env = labEnv(lab);
  await setup({ environment: env, reporter: new MemoryReporter() });
  await deploy({ environment: env, reporter: new MemoryReporter() }, 'cold-deploy');
});
afterAll(async () => {
  await lab?.stop();
});

const lockDir = (i: number) => path.join(lab.hosts[i]!.deployTo, '.switchyard', 'lock');
const later = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.sequential('deploy locks that wait, and heartbeats', () => {
  it('while a deploy holds the lock a second one is refused; with --lock-wait it waits, then deploys', async () => {
    // The first deploy holds every host's lock (its prepared hook) until the second has been
    // refused or seen waiting: no timing decides which of the two gets the lock.
    let refused!: Promise<unknown>;
    const first = deploy({
      environment: env,
      reporter: new MemoryReporter(),
      hooks: {
        prepared: async () => {
          refused = deploy({ environment: env, reporter: new MemoryReporter() }).then(
            () => 'deployed',
            (e: Error) => e,
          );
          await refused;
        },
      },
    });
    expect((await first).ok).toBe(true);
    expect(String(await refused)).toMatch(/deploy lock is held: release=\S+ since=\S+ \S+ pid=\d+ \(heartbeat \d+ s ago\)/);

    const waiting = new MemoryReporter();
    let b!: ReturnType<typeof deploy>;
    const a = await deploy({
      environment: env,
      reporter: new MemoryReporter(),
      hooks: {
        prepared: async () => {
          b = deploy({ environment: env, reporter: waiting, lockWait: 30 });
          for (let i = 0; i < 300 && !/waiting for the deploy lock/.test(waiting.text()); i++) await later(50);
        },
      },
    });
    const done = await b;
    expect(a.ok).toBe(true);
    expect(done.ok).toBe(true);
    expect(done.release).not.toBe(a.release);
    expect(waiting.text()).toMatch(/waiting for the deploy lock \(\d+ s left of --lock-wait\): h\d: release=/);
    for (const h of lab.hosts) expect((await lab.fetchSite(h)).body).toBe(`hello from release ${done.release}\n`);
  });

  it('two deploys started at the same instant, both with --lock-wait: both deploy, one after the other', async () => {
    // Each may take some hosts' locks first and both be refused; the jittered retries sort it out.
    const [x, y] = await Promise.all([1, 2].map(() => deploy({ environment: env, reporter: new MemoryReporter(), lockWait: 30 })));
    expect(x!.ok && y!.ok).toBe(true);
    expect(x!.release).not.toBe(y!.release);
    const bodies = await Promise.all(lab.hosts.map(async (h) => (await lab.fetchSite(h)).body));
    expect(new Set(bodies).size).toBe(1);
    expect([x!.release, y!.release].map((r) => `hello from release ${r}\n`)).toContain(bodies[0]);
  });

  it('the lock of a deploy on another machine whose heartbeat stopped 2 minutes ago is STALE, and --lock-wait does not wait for it', async () => {
    fs.mkdirSync(lockDir(1));
    fs.writeFileSync(path.join(lockDir(1), 'owner'), 'release=20250101T000000.000Z since=2025-01-01T00:00:00Z ci@build-agent-7 pid=4242\n');
    fs.writeFileSync(path.join(lockDir(1), 'heartbeat'), `${Math.floor(Date.now() / 1000) - 120}\n`);
    const started = Date.now();
    await expect(deploy({ environment: env, reporter: new MemoryReporter(), lockWait: 30 })).rejects.toThrow(
      /h2: prepare failed: deploy lock is held: release=20250101T000000\.000Z since=2025-01-01T00:00:00Z ci@build-agent-7 pid=4242 \(heartbeat 1[2-3]\d s ago\) — STALE: no heartbeat for 1[2-3]\d s/,
    );
    expect(Date.now() - started).toBeLessThan(15_000);
    fs.rmSync(lockDir(1), { recursive: true });
  });

  it('a deploy keeps its heartbeat fresh while it waits between steps (release.sh, every 5 s)', async () => {
    const seen: number[] = [];
    const d = deploy({
      environment: env,
      reporter: new MemoryReporter(),
      hooks: {
        // between prepare and switch: the lock is held, release.sh waits for its word
        prepared: async () => {
          for (const ms of [2500, 4000]) {
            await later(ms);
            seen.push(Number(fs.readFileSync(path.join(lockDir(0), 'heartbeat'), 'utf8')));
          }
        },
      },
    });
    expect((await d).ok).toBe(true);
    expect(seen[1]! - seen[0]!).toBeGreaterThanOrEqual(5);
    expect(Math.floor(Date.now() / 1000) - seen[1]!).toBeLessThan(10);
  });
});
