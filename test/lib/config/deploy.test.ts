// Rendering for a deploy: environment-level overrides merged with each host's, all secrets of all
// hosts resolved at once, one variant per distinct result, secrets registered with the reporter.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { renderForHosts } from '../../../lib/config/deploy';
import { ConfigError } from '../../../lib/config/errors';
import { MemoryReporter } from '../../../lib/output/reporter';
import { MissingSecretsError, secret } from '../../../lib/config/secrets';
import { makeEnv } from '../../support/env';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sy-config-deploy-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
fs.mkdirSync(path.join(root, 'dist'));
fs.writeFileSync(
  path.join(root, 'dist', 'Web.config'),
  '<configuration>\n  <appSettings>\n    <add key="Environment" value="dev" />\n    <add key="Node" value="local" />\n  </appSettings>\n  <connectionStrings>\n    <add name="Main" connectionString="dev" />\n  </connectionStrings>\n</configuration>\n',
);

const hosts = [
  { name: 'web1', address: '10.0.0.1', roles: ['web', 'app'] },
  { name: 'web2', address: '10.0.0.2', roles: ['web', 'app'] },
  { name: 'web3', address: '10.0.0.3', roles: ['web', 'app'], config: { 'Web.config': { appSettings: { Node: 'three' } } } },
  // host-level config that renders the same as the environment's: shares its variant
  { name: 'web4', address: '10.0.0.4', roles: ['web', 'app'], config: { 'Web.config': { appSettings: { Environment: 'uat' } } } },
];
const env = makeEnv(
  {
    build: { dir: 'dist' },
    hosts,
    config: { 'Web.config': { appSettings: { Environment: 'uat' }, connectionStrings: { Main: secret('SY_DEPLOY_TEST_DB') } } },
  },
  root,
);

/** Where each problem of a failed rendering is; fails the test if rendering succeeds or fails otherwise. */
function problemsOf(env: Parameters<typeof renderForHosts>[0]): (string | undefined)[] {
  try {
    renderForHosts(env, env.hosts);
  } catch (e) {
    if (e instanceof ConfigError) return e.problems.map((p) => p.where);
    throw e;
  }
  throw new Error('rendering succeeded; a ConfigError was expected');
}

describe('renderForHosts', () => {
  it('renders one variant per distinct result, with the host overrides winning, and masks the secret in logs', () => {
    const reporter = new MemoryReporter(true);
    const r = renderForHosts(env, env.hosts, reporter, { env: { SY_DEPLOY_TEST_DB: 'Server=db;Password="pw&1"' } });
    expect([...r.variants.keys()]).toEqual(['default', 'host:web3']);
    expect(['web1', 'web2', 'web3', 'web4'].map((h) => r.variantOf(h))).toEqual(['default', 'default', 'host:web3', 'default']);
    expect(r.hostsOf('default')).toEqual(['web1', 'web2', 'web4']);

    const [def] = r.variants.get('default')!;
    const [three] = r.variants.get('host:web3')!;
    expect(def!.path).toBe('Web.config');
    expect(def!.mode).toBe(0o640);
    expect(def!.content.toString()).toContain('<add key="Node" value="local" />');
    expect(three!.content.toString()).toContain('<add key="Node" value="three" />');
    for (const f of [def!, three!]) {
      expect(f.content.toString()).toContain('<add key="Environment" value="uat" />');
      expect(f.content.toString()).toContain('connectionString="Server=db;Password=&quot;pw&amp;1&quot;"');
    }
    expect(r.overridesOf('web3')).toEqual({
      'Web.config': { appSettings: { Environment: 'uat', Node: 'three' }, connectionStrings: { Main: secret('SY_DEPLOY_TEST_DB') } },
    });

    // whatever is logged (a raw value, the file content with the escaped value) is masked
    reporter.log('info', `db is Server=db;Password="pw&1"`);
    reporter.log('info', def!.content.toString());
    expect(reporter.text()).not.toMatch(/pw&1|pw&amp;1/);
    expect(reporter.text()).toContain('connectionString="******"');
    expect(r.masker.mask(three!.content.toString())).toContain('connectionString="******"');
  });

  it('stops before anything else when a secret is missing, listing it once for all hosts', () => {
    expect(() => renderForHosts(env, env.hosts, undefined, { env: {} })).toThrow(MissingSecretsError);
    expect(() => renderForHosts(env, env.hosts, undefined, { env: {} })).toThrow(
      /^1 secret is missing for env\/test\.ts .*\n {2}SY_DEPLOY_TEST_DB: .*; used by Web\.config connectionStrings "Main"$/,
    );
  });

  it('can check an environment without its secrets (placeholders)', () => {
    const r = renderForHosts(env, env.hosts, undefined, { placeholderSecrets: true, env: {} });
    expect(r.variants.get('default')![0]!.content.toString()).toContain('connectionString="&lt;secret SY_DEPLOY_TEST_DB&gt;"');
  });

  it('reports each problem once, and names the host for host-level overrides', () => {
    const broken = makeEnv(
      {
        build: { dir: 'dist' },
        hosts: [
          { name: 'a', address: '10.0.0.1', roles: ['web', 'app'] },
          { name: 'b', address: '10.0.0.2', roles: ['web', 'app'] },
          { name: 'c', address: '10.0.0.3', roles: ['web', 'app'], config: { 'Web.config': { appSettings: { Typo: 'x' } } } },
        ],
        config: { 'Web.config': { appSettings: { Envrionment: 'uat' } } },
      },
      root,
    );
    expect(problemsOf(broken)).toEqual(['appSettings "Envrionment"', 'appSettings "Typo" (host c)']);

    // every host has config of its own: an environment-level problem is still nobody's host's
    const allHosts = makeEnv(
      {
        build: { dir: 'dist' },
        hosts: [
          { name: 'a', address: '10.0.0.1', roles: ['web', 'app'], config: { 'Web.config': { appSettings: { Environment: 'a' } } } },
          { name: 'c', address: '10.0.0.3', roles: ['web', 'app'], config: { 'Web.config': { appSettings: { Typo: 'x' } } } },
        ],
        config: { 'Web.config': { appSettings: { Envrionment: 'uat' } } },
      },
      root,
    );
    expect(problemsOf(allHosts)).toEqual(['appSettings "Envrionment"', 'appSettings "Typo" (host c)']);
  });

  it('gives one empty variant when there is no config at all', () => {
    const plain = makeEnv({ build: { dir: 'dist' } }, root);
    const r = renderForHosts(plain, plain.hosts);
    expect([...r.variants]).toEqual([['default', []]]);
    expect(r.variantOf(plain.hosts[0]!.name)).toBe('default');
  });
});
