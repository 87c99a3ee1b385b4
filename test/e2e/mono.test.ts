// Issue 15: a Mono ASP.NET app on FastCGI (examples/mono-shop on Debian's fastcgi-mono-server4),
// deployed end to end through the SSH lab, each host's nginx serving the generated fastcgi block:
// - setup → cold-deploy → deploy: nginx answers through FastCGI with the values of the example
//   environment's Web.config overrides (per host where the host sets its own); the secret is in the
//   rendered file and in no output;
// - a release whose Web.config is broken (500) fails its FastCGI health check, nothing switches;
// - kill -9 of the Mono server is healed by the supervisor.
// The deploys under 100 concurrent connections are test/e2e/mono-load.load.ts (`npm run
// test:mono-load`), not in CI yet: see there.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { XmlFileOverrides } from '../../lib/config/schema';
import { MemoryReporter } from '../../lib/output/reporter';
import { deploy } from '../../lib/release/deploy';
import { setup } from '../../lib/servers/setup';
import { currentRelease, dir, env, example, expectedPage, lab, livePid, monoEnv, PASSWORD, quiet, SECRET, sleep, timings, useMonoLab } from '../support/mono-lab';

useMonoLab();

describe.sequential('a Mono ASP.NET app on FastCGI through the SSH lab', () => {
  let last = '';

  it("setup, cold-deploy, deploy: nginx answers through FastCGI with each host's Web.config values; the secret is in the file and in no output", async () => {
    const rep = new MemoryReporter(true); // every remote command and result line
    const report = path.join(dir, 'report.json');
    await setup({ environment: env, reporter: rep });
    expect(rep.text()).toMatch(/setup\.sh --deploy-to \S+ --socket-dir \S+ --health-protocol fastcgi/); // so it checked cgi-fcgi
    let t = Date.now();
    const cold = await deploy({ environment: env, reporter: rep }, 'cold-deploy');
    timings.push(`cold-deploy: ${((Date.now() - t) / 1000).toFixed(1)} s`);
    expect(cold.ok).toBe(true);
    t = Date.now();
    const r = await deploy({ environment: env, reporter: rep, report });
    timings.push(`deploy: ${((Date.now() - t) / 1000).toFixed(1)} s`);
    expect(r.ok).toBe(true);
    last = r.release;
    for (const [i, h] of lab.hosts.entries()) {
      expect(await lab.fetchSite(h, '/Default.aspx')).toEqual({ status: 200, body: expectedPage(r.release, i) });
      // a path ending in / goes to fastcgi_index (Default.aspx); PATH_INFO is split off the page
      expect(await lab.fetchSite(h, '/')).toEqual({ status: 200, body: expectedPage(r.release, i) });
      expect(await lab.fetchSite(h, '/Default.aspx/more')).toEqual({ status: 200, body: expectedPage(r.release, i, '/more') });
      // SCRIPT_FILENAME names the release the switch made live, not the current symlink
      const web = fs.readFileSync(path.join(currentRelease(h), 'Web.config'), 'utf8');
      expect(web).toContain(`<add name="Shop" connectionString="${SECRET}"`);
      expect(fs.statSync(path.join(currentRelease(h), 'Web.config')).mode & 0o777).toBe(0o640);
      expect(fs.statSync(h.liveSocket).mode & 0o777).toBe(0o660); // Mono made it 0755; prepare set the mode
    }
    for (const text of [rep.text(), fs.readFileSync(report, 'utf8')]) {
      expect(text).not.toContain(PASSWORD);
      expect(text).not.toContain(SECRET);
    }
    expect(rep.text()).toMatch(/prepare\.sh .* --expect-status 200 --health-protocol fastcgi /);
  }, 90_000);

  it('a release whose Web.config is broken answers 500: it fails its FastCGI health check and nothing switches', async () => {
    const webConfig = example.config!['Web.config'] as XmlFileOverrides;
    const broken = monoEnv({
      app: { ...example.app, health: { ...example.app.health, timeoutSeconds: 4 } }, // a 500 is retried until then
      config: { 'Web.config': { ...webConfig, xpath: { ...webConfig.xpath, '/configuration/system.web/compilation/@debug': 'maybe' } } },
    });
    const before = lab.hosts.map(currentRelease);
    const r = await deploy({ environment: broken, reporter: quiet() }).catch((e: unknown) => e);
    expect(r).toBeInstanceOf(Error);
    expect(String(r)).toMatch(/GET \/Health\.aspx \(Host: app\.test\) answered 500, want 200/);
    expect(lab.hosts.map(currentRelease)).toEqual(before);
    for (const [i, h] of lab.hosts.entries()) expect(await lab.fetchSite(h, '/Default.aspx')).toEqual({ status: 200, body: expectedPage(last, i) });
  }, 60_000);

  it('kill -9 of the Mono server: the supervisor has the site answering through FastCGI again', async () => {
    const h = lab.hosts[0]!;
    const was = livePid(h);
    process.kill(was, 'SIGKILL');
    const t0 = Date.now();
    let ms = -1;
    while (Date.now() - t0 < 15_000) {
      const r = await lab.fetchSite(h, '/Default.aspx').catch(() => undefined);
      if (r?.status === 200 && livePid(h) !== was) {
        ms = Date.now() - t0;
        expect(r.body).toBe(expectedPage(last, 0));
        break;
      }
      await sleep(50);
    }
    timings.push(`kill -9 of fastcgi-mono-server4 healed by the supervisor in ${ms} ms`);
    expect(ms).toBeGreaterThan(0);
  }, 30_000);
});
