// Issue 15, under load (not in CI yet: see test/e2e/mono.test.ts): examples/mono-shop through the
// SSH lab, deploys under 100 concurrent connections (the built-in load, then siege) with zero
// failed requests and requests to the 2 s page in flight at every retire (retire.drain
// 'connections': the old server, which exits at once on SIGTERM, is stopped once they are
// answered); the negative control: drain 'signal' with grace 0, the same slow requests fail.
// Run it with `npm run test:mono-load`.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { verify } from '../../lib/load/verify';
import { MemoryReporter } from '../../lib/output/reporter';
import { deploy } from '../../lib/release/deploy';
import { setup } from '../../lib/servers/setup';
import { CONCURRENCY, dir, env, figures, inFlightAtEverySwitch, lab, monoEnv, quiet, sleep, slowRequests, switchesOf, timings, useMonoLab } from '../support/mono-lab';

useMonoLab();
let siege: ChildProcess | undefined;
afterAll(() => {
  if (siege && siege.exitCode === null && siege.signalCode === null) siege.kill('SIGKILL');
});

describe.sequential('a Mono ASP.NET app on FastCGI through the SSH lab', () => {
  let last = '';

  it('setup and cold-deploy', async () => {
    await setup({ environment: env, reporter: quiet() });
    last = (await deploy({ environment: env, reporter: quiet() }, 'cold-deploy')).release;
  }, 90_000);

  it(`deploys under ${CONCURRENCY} concurrent connections (built-in load), 2 s requests in flight at every retire: zero failed`, async () => {
    const slow = slowRequests();
    const rep = new MemoryReporter(true);
    const t = Date.now();
    const out = await verify({ environment: env, reporter: rep, cycles: 4, concurrency: CONCURRENCY, reportDir: dir });
    const seconds = (Date.now() - t) / 1000;
    await sleep(2200); // the slow requests sent last are answered
    const answers = await slow.stop();
    figures('4 deploys, built-in load', out.result, seconds);
    expect(out.result.failed).toBe(0);
    expect(out.result.requests).toBeGreaterThan(500);
    expect(answers.filter((a) => a.status !== 200)).toEqual([]);
    const ids = [last, ...out.releases.map((x) => x.release)];
    inFlightAtEverySwitch(answers, switchesOf(out.result, ids));
    // each retire waited for the old server's connections, then stopped it
    expect(rep.text().match(/connections=closed/g)?.length).toBe(4 * lab.hosts.length);
    last = ids[ids.length - 1]!;
    timings.push(`slow requests during those deploys: ${answers.length}, failed ${answers.filter((a) => a.status !== 200).length}; deploy seconds ${out.releases.map((x) => x.seconds.toFixed(1)).join(', ')}`);
  }, 120_000);

  it(`a deploy while siege (${CONCURRENCY} users on the pages, the slow one too) and the slow requests run: 100 % availability, zero failed`, async () => {
    const rc = path.join(dir, 'siegerc');
    fs.writeFileSync(rc, ['json_output = true', 'logging = false', 'parser = false', 'protocol = HTTP/1.1', 'connection = close', 'failures = 1000000', 'timeout = 10', ''].join('\n'));
    const urls = path.join(dir, 'urls.txt');
    // one in six the 2 s page: siege then lasts at least REPS / 6 × 2 s whatever the machine's
    // speed, so it covers the deploy (a count, not a time: siege 4.0.7 can hang at the end of a -t run)
    fs.writeFileSync(urls, lab.hosts.flatMap((h) => ['/Default.aspx', '/', '/Slow.aspx', '/Default.aspx/more', '/', '/Default.aspx'].map((p) => lab.url(h, p))).join('\n') + '\n');
    const USERS = CONCURRENCY;
    const REPS = 18;
    siege = spawn('siege', ['-R', rc, '-c', String(USERS), '-r', String(REPS), '-b', '--no-parser', '-H', `Host: ${lab.site}`, '-f', urls], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, HOME: dir },
    });
    let stdout = '';
    let stderr = '';
    siege.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    siege.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => siege!.on('exit', (code) => resolve(code)));
    const slow = slowRequests();
    await sleep(200);
    const switches: { host: string; at: number; from: string }[] = [];
    const retiredUnderSiege: boolean[] = [];
    const from = last;
    const t = Date.now();
    const r = await deploy({
      environment: env,
      reporter: quiet(),
      onEvent: (e) => {
        if (e.step === 'switch' && e.at === 'end') switches.push({ host: e.host, at: Date.now(), from });
        if (e.step === 'retire' && e.at === 'end') retiredUnderSiege.push(siege!.exitCode === null);
      },
    });
    const seconds = (Date.now() - t) / 1000;
    expect(r.ok).toBe(true);
    // siege ran through every host's switch and retire
    expect(retiredUnderSiege).toEqual(lab.hosts.map(() => true));
    await sleep(2200);
    const answers = await slow.stop();
    expect(await exited).toBe(0);
    const stats = JSON.parse(stdout.slice(stdout.indexOf('{'), stdout.lastIndexOf('}') + 1)) as Record<string, number>;
    const line = `siege during a deploy (${seconds.toFixed(1)} s): ${stats.transactions} transactions, availability ${stats.availability} %, ${stats.failed_transactions} failed, ${stats.transaction_rate} trans/s`;
    timings.push(line);
    console.log(line);
    expect(stderr).not.toMatch(/error|abort/i);
    expect(stats.transactions).toBe(USERS * REPS);
    expect(stats.availability).toBe(100);
    expect(stats.successful_transactions).toBe(stats.transactions);
    expect(answers.filter((a) => a.status !== 200)).toEqual([]);
    inFlightAtEverySwitch(answers, switches);
    last = r.release;
  }, 120_000);

  it("negative control: drain 'signal' with grace 0, the Mono server dies at once on SIGTERM and the slow requests in flight fail", async () => {
    const signal = monoEnv({ retire: { graceSeconds: 0, drain: 'signal', drainSeconds: 5 } });
    const slow = slowRequests();
    await sleep(600); // some are in flight on the live server
    const r = await deploy({ environment: signal, reporter: quiet() });
    expect(r.ok).toBe(true);
    await sleep(2200);
    const answers = await slow.stop();
    const failed = answers.filter((a) => a.status !== 200);
    timings.push(`negative control (drain signal, grace 0): ${failed.length} of ${answers.length} slow requests failed (${[...new Set(failed.map((a) => a.status))].join(', ')})`);
    expect(failed.length).toBeGreaterThan(0);
    // nginx: 502, the upstream closed the connection
    expect(failed.every((a) => a.status === 502)).toBe(true);
    last = r.release;
  }, 60_000);
});
