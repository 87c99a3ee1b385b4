// `gulp demo`: the whole story on this machine, no servers needed. On the built-in local default
// (env/local.ts: examples/hello behind a private nginx on 127.0.0.1:8080, everything under
// .switchyard/local/): set up, cold-deploy (or deploy, when a release is already live), then
// `verify` with two deploys under 100 concurrent connections; prints the summary and the report.
import path from 'node:path';
import { contextFor } from './context';
import { displayPath, forHost } from './environment';
import { hasRole } from './environment/hosts';
import { hostUrl } from './load/targets';
import { deploy } from './release/deploy';
import { setup } from './servers/setup';
import { status } from './servers/status';
import { verify, type VerifyOptions, type VerifyOutcome } from './load/verify';

export const DEMO_CYCLES = 2;
export const DEMO_CONCURRENCY = 100;

export async function demo(o: VerifyOptions): Promise<VerifyOutcome> {
  const { env, reporter } = contextFor({ ...o, env: o.env ?? 'local' });
  const base = { ...o, environment: env, reporter };
  const say = (m: string) => reporter.log('info', m);
  say(`demo: ${env.site} on environment ${env.name} (${env.file}), ${env.transport === 'local' ? 'this machine' : `${env.hosts.length} host(s)`}`);

  say('demo 1/3: setup');
  await setup(base);

  const live = (await status(base)).filter((s) => s.release !== 'none');
  if (live.length === 0) {
    say('demo 2/3: nothing is live yet: cold-deploy');
    await deploy(base, 'cold-deploy');
  } else {
    say(`demo 2/3: release ${live.map((s) => s.release).join(', ')} is live: deploy`);
    await deploy(base, 'deploy');
  }

  const cycles = o.cycles ?? DEMO_CYCLES;
  say(`demo 3/3: verify: ${cycles} deploys under ${o.concurrency ?? DEMO_CONCURRENCY} concurrent connections`);
  const out = await verify({ ...base, cycles, concurrency: o.concurrency ?? DEMO_CONCURRENCY });

  const web = env.hosts.filter((h) => hasRole(h, env.nginx.roles));
  say(`demo: done, 0 of ${out.result.requests} requests failed. The site is still up: curl -H 'Host: ${env.site}' ${web[0] ? hostUrl(env, web[0]) : env.loadtest?.url}/`);
  if (env.transport === 'local' && env.nginx.private && web[0]) {
    const h = forHost(env, web[0]);
    say(`demo: open ${displayPath(out.report.html, process.cwd())} in a browser for the timeline; the private nginx's pid is in ${path.join(h.deployTo, 'nginx', 'nginx.pid')}`);
  }
  return out;
}
