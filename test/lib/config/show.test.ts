// `gulp config` (masked diff per host variant) and `gulp config-check` (every environment of the
// env dir, without secrets), on real environment files that import 'switchyard'.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseFlags } from '../../../tasks/plumbing/flags';
import { MemoryReporter } from '../../../lib/output/reporter';
import { MissingSecretsError } from '../../../lib/config/secrets';
import { checkConfig, showConfig } from '../../../lib/config/show';

const SHOP = path.resolve(__dirname, '..', '..', 'fixtures', 'apps', 'shop');
// XML and JSON specials, so the escaped forms are exercised too
const DB = 'Server=db.uat;Password=Tr0ub4dor&3"<pw>';
const API_KEY = 'k3y-\u00e9t\u00e9-42';
const SECRET_NAMES = ['SY_CFG_TASK_DB', 'SY_CFG_TASK_API_KEY'];

let root: string;
let envDir: string;

/** An environment file as a user writes it (imports 'switchyard', which the loader answers). */
function envFile(name: string, body: string): string {
  const file = path.join(envDir, `${name}.ts`);
  fs.writeFileSync(
    file,
    `import { defineEnvironment, secret } from 'switchyard';

export default defineEnvironment({
  site: '${name}.example.com',
  build: { dir: ${JSON.stringify(SHOP)} },
  app: { start: ['node', 'server.js', '--socket', '{socket}'] },
  deployTo: '/srv/shop',
  socketDir: '/run/sy',
${body}
});
`,
  );
  return file;
}

const GOOD_UAT = `
  hosts: [
    { name: 'web1', address: '10.0.0.1', roles: ['web', 'app'] },
    { name: 'web2', address: '10.0.0.2', roles: ['web', 'app'], config: { 'Web.config': { appSettings: { NodeName: 'web2' } } } },
    { name: 'web3', address: '10.0.0.3', roles: ['web', 'app'] },
    { name: 'db1', address: '10.0.0.9', roles: ['db'] },
  ],
  config: {
    'Web.config': {
      appSettings: { Environment: 'uat', ApiKey: { value: secret('SY_CFG_TASK_API_KEY'), add: true } },
      connectionStrings: { Main: secret('SY_CFG_TASK_DB') },
      xpath: {
        '/configuration/system.web/compilation/@debug': false,
        "/configuration/runtime/asm:assemblyBinding/asm:dependentAssembly[asm:assemblyIdentity/@name='Newtonsoft.Json']/asm:bindingRedirect/@newVersion": '13.0.3.0',
      },
      namespaces: { asm: 'urn:schemas-microsoft-com:asm.v1' },
    },
    'config/production.json': { json: { 'db.host': 'db.uat.internal', 'db.password': secret('SY_CFG_TASK_DB') } },
  },`;

const GOOD_PROD = `
  hosts: [{ name: 'prod1', address: '10.1.0.1', roles: ['web', 'app'] }],
  config: { 'Web.config': { appSettings: { Environment: 'production' }, connectionStrings: { Main: secret('SY_CFG_TASK_PROD_DB') } } },`;

const BROKEN = `
  hosts: [
    { name: 'b1', address: '10.2.0.1', roles: ['web', 'app'] },
    { name: 'b2', address: '10.2.0.2', roles: ['web', 'app'], config: { 'Web.config': { xpath: { '/configuration/log4net/root/levle/@value': 'WARN' } } } },
  ],
  config: {
    'Web.config': {
      appSettings: { Environment: 'broken', NoSuchSetting: 'x' },
      xpath: { '/configuration/system.web/compilaton/@debug': false },
    },
    'config/production.json': { json: { 'db.user': 'shop' } },
  },`;

const TYPO = `
  hosts: [{ name: 't1', address: '10.3.0.1', roles: ['web', 'app'] }],
  config: { 'Web.config': { appSetings: { Environment: 'typo' } } },`;

beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'sy-config-task-'));
  envDir = path.join(root, 'env');
  fs.mkdirSync(envDir);
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
afterEach(() => {
  for (const n of SECRET_NAMES) delete process.env[n];
});

/** Every form a secret value takes in a rendered file: raw, XML-escaped, JSON-escaped. */
function forms(v: string): string[] {
  const xml = v.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
  return [v, xml, JSON.stringify(v).slice(1, -1)];
}

describe('gulp config', () => {
  beforeAll(() => {
    for (const f of fs.readdirSync(envDir)) fs.rmSync(path.join(envDir, f));
    envFile('uat', GOOD_UAT);
  });

  it('prints a unified diff against the base per host variant, naming its hosts, secrets masked', async () => {
    process.env.SY_CFG_TASK_DB = DB;
    process.env.SY_CFG_TASK_API_KEY = API_KEY;
    const printed: string[] = [];
    const reporter = new MemoryReporter(true);
    // the env dir as gulp gets it: SWITCHYARD_ENV_DIR when there is no --env-dir
    const flags = parseFlags(['config', '--env=uat'], { SWITCHYARD_ENV_DIR: envDir });
    expect(flags.envDir).toBe(envDir);
    const variants = await showConfig({ ...flags, root, reporter, print: (t) => printed.push(t) });
    const out = printed.join('');

    expect(variants.map((v) => [v.variant, v.hosts])).toEqual([
      ['default', ['web1', 'web3', 'db1']],
      ['host:web2', ['web2']],
    ]);
    // one section per variant, naming its hosts; db1 has no app role: it gets the files (their config too) only
    expect(out).toMatch(/^# hosts web1, web3, db1 \(variant default, uat from env\/uat\.ts\)$/m);
    expect(out).toMatch(/^# host web2 \(variant host:web2, uat from env\/uat\.ts\)$/m);
    const [def, web2] = out.split(/^# host web2 .*$/m) as [string, string];
    for (const section of [def, web2]) {
      const lines = section.split('\n');
      expect(section).toContain('--- a/Web.config\n+++ b/Web.config\n');
      expect(lines).toContain('-    <add key="Environment" value="dev" />');
      expect(lines).toContain('+    <add key="Environment" value="uat" />');
      expect(lines).toContain('+    <add key="ApiKey" value="******" />');
      expect(lines).toContain('+    <add name="Main" connectionString="******" providerName="System.Data.SqlClient" />');
      expect(lines).toContain('+    <compilation debug="false" targetFramework="4.8" />');
      expect(lines).toContain('+        <bindingRedirect oldVersion="0.0.0.0-13.0.0.0" newVersion="13.0.3.0" />');
      expect(section).toContain('--- a/config/production.json\n+++ b/config/production.json\n');
      expect(section).toContain('-  "db": { "host": "localhost", "password": "dev" },\n+  "db": { "host": "db.uat.internal", "password": "******" },\n');
      // nothing else changes
      expect(lines.filter((l) => /^[-+][^-+]/.test(l) || /^[-+]$/.test(l))).toHaveLength(section === def ? 11 : 13);
    }
    expect(def.split('\n')).toContain('     <add key="NodeName" value="localhost" />'); // a context line: unchanged
    expect(web2.split('\n')).toContain('-    <add key="NodeName" value="localhost" />');
    expect(web2.split('\n')).toContain('+    <add key="NodeName" value="web2" />');
    // unchanged lines and the CRLF of the file do not show as changes
    expect(out).not.toContain('\r');
    expect(out).not.toMatch(/^[-+]\s*<log4net>/m);

    // the secret values are nowhere: not in the diff, not in a log line, in no escaped form
    const captured = out + '\n' + reporter.text();
    for (const f of [...forms(DB), ...forms(API_KEY), 'Tr0ub4dor']) expect(captured).not.toContain(f);
    expect(captured).toContain('******');
    // ... and were really used: the returned diffs are the printed ones, the rendering had them
    expect(variants[0]!.files.map((f) => f.path)).toEqual(['Web.config', 'config/production.json']);
  });

  it('--env-dir wins over SWITCHYARD_ENV_DIR', () => {
    expect(parseFlags(['config', '--env=uat', '--env-dir=../ops-config/env'], { SWITCHYARD_ENV_DIR: envDir }).envDir).toBe('../ops-config/env');
  });

  it('a missing secret: one error listing every missing secret and where it is used, nothing printed', async () => {
    process.env.SY_CFG_TASK_API_KEY = API_KEY;
    const printed: string[] = [];
    const err = await showConfig({ env: 'uat', envDir, root, reporter: new MemoryReporter(), print: (t) => printed.push(t) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MissingSecretsError);
    const msg = (err as Error).message;
    expect(msg).toMatch(/^1 secret is missing for env\/uat\.ts/);
    expect(msg).toContain('SY_CFG_TASK_DB: not set in the environment');
    expect(msg).toContain('Web.config connectionStrings "Main"');
    expect(msg).toContain('config/production.json json "db.password"');
    expect(printed).toEqual([]);

    delete process.env.SY_CFG_TASK_API_KEY;
    const both = await showConfig({ env: 'uat', envDir, root, reporter: new MemoryReporter(), print: (t) => printed.push(t) }).catch((e: Error) => e);
    expect((both as Error).message).toMatch(/^2 secrets are missing for env\/uat\.ts/);
    expect((both as Error).message).toMatch(/SY_CFG_TASK_API_KEY: .*Web\.config appSettings "ApiKey"/);
    expect((both as Error).message).toMatch(/SY_CFG_TASK_DB: /);
    expect(printed).toEqual([]);
  });
});

describe('gulp config-check', () => {
  beforeAll(() => {
    for (const f of fs.readdirSync(envDir)) fs.rmSync(path.join(envDir, f));
    envFile('uat', GOOD_UAT);
    envFile('prod', GOOD_PROD);
    // samples are not environments
    fs.writeFileSync(path.join(envDir, 'uat.example.ts'), 'this is not even TypeScript');
  });

  it('passes on good environment files without any secret, one OK line per environment', async () => {
    for (const n of [...SECRET_NAMES, 'SY_CFG_TASK_PROD_DB']) expect(process.env[n]).toBeUndefined();
    const reporter = new MemoryReporter(true);
    const results = await checkConfig({ envDir, root, reporter });
    expect(results.map((r) => [r.name, r.file, r.ok])).toEqual([
      ['prod', 'env/prod.ts', true],
      ['uat', 'env/uat.ts', true],
    ]);
    expect(reporter.text()).toBe(
      ['OK prod (env/prod.ts): 1 config file rendered', 'OK uat (env/uat.ts): 2 config files rendered (2 host variants)'].join('\n'),
    );
  });

  it('fails on broken files listing every error of every environment, file and expression or key named', async () => {
    envFile('broken', BROKEN);
    envFile('typo', TYPO);
    try {
      const reporter = new MemoryReporter(true);
      const err = await checkConfig({ envDir, root, reporter }).catch((e: Error) => e);
      expect(err).toBeInstanceOf(Error);
      const msg = (err as Error).message;
      expect(msg).toMatch(/^config-check: 2 of 4 environments failed\n/);
      // broken: every problem (an xpath matching nothing, a key that is not there, host-level too)
      expect(msg).toMatch(/^broken \(env\/broken\.ts\):$/m);
      expect(msg).toMatch(/env\/broken\.ts: Web\.config: xpath "\/configuration\/system\.web\/compilaton\/@debug": .*match/);
      expect(msg).toMatch(/env\/broken\.ts: Web\.config: appSettings "NoSuchSetting": .*add: true/);
      expect(msg).toMatch(/env\/broken\.ts: config\/production\.json: json "db\.user": /);
      expect(msg).toMatch(/env\/broken\.ts: Web\.config: xpath "\/configuration\/log4net\/root\/levle\/@value": .*\(host b2\)|env\/broken\.ts: Web\.config: xpath "\/configuration\/log4net\/root\/levle\/@value" \(host b2\)/);
      // typo: a key the schema does not know, named with its path
      expect(msg).toMatch(/^typo \(env\/typo\.ts\):$/m);
      expect(msg).toMatch(/env\/typo\.ts: invalid environment\n\s+config\["Web\.config"\]: unknown key "appSetings"/);
      // the good ones are still checked and said to be good
      expect(reporter.text().split('\n')).toEqual([
        'FAILED broken (env/broken.ts)',
        'OK prod (env/prod.ts): 1 config file rendered',
        'FAILED typo (env/typo.ts)',
        'OK uat (env/uat.ts): 2 config files rendered (2 host variants)',
      ]);
    } finally {
      fs.rmSync(path.join(envDir, 'broken.ts'));
      fs.rmSync(path.join(envDir, 'typo.ts'));
    }
  });

  it('an env dir that does not exist, or holds no environment, is an error', async () => {
    await expect(checkConfig({ envDir: path.join(root, 'nope'), root, reporter: new MemoryReporter() })).rejects.toThrow(/environment directory .*nope does not exist/);
    const empty = fs.mkdtempSync(path.join(root, 'empty-'));
    await expect(checkConfig({ envDir: empty, root, reporter: new MemoryReporter() })).rejects.toThrow(/config-check: no environment files in /);
  });
});
