// Issue 4, acceptance 4 and 5: environment files in a SEPARATE git repository (the systems team's),
// a deploy through the SSH lab renders each host's own config into its release, the secret is in
// the files and nowhere in what the deploy prints or reports; `gulp config-check` (the real CLI)
// fails on a broken environment file of that repository and passes on good ones.
import { spawn, execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryReporter } from '../../lib/output/reporter';
import { checkConfig, showConfig } from '../../lib/config/show';
import { deploy } from '../../lib/release/deploy';
import { setup } from '../../lib/servers/setup';
import { startLab, type Lab, type LabHost } from '../support/lab';
import { labEnvInput, REPO } from '../support/lab-env';

const SECRET_VAR = 'SY_E2E_SHOP_DB';
// random, so it cannot be in any output by chance; XML and JSON specials, so escaping is exercised
const SECRET = `Server=db.uat.internal;User Id=shop;Password=${crypto.randomBytes(9).toString('base64url')}&"<q>"`;
const SHOP = path.join(REPO, 'test', 'fixtures', 'apps', 'shop');

let lab: Lab;
let tmp: string;
let opsRepo: string; // the systems team's repository: env/uat.ts
let envDir: string;
let buildDir: string;

const git = (...args: string[]) =>
  execFileSync('git', ['-c', 'user.name=Ops', '-c', 'user.email=ops@example.com', '-c', 'commit.gpgsign=false', ...args], { cwd: opsRepo, stdio: 'pipe' }).toString();

/** env/uat.ts as the systems team writes it: imports 'switchyard' (not installed there), secret(), env- and host-level overrides. */
function uatFile(): string {
  const input = labEnvInput(lab);
  const { hosts, build: _build, ...rest } = input;
  return `// UAT of Acme.Shop: only what differs from the defaults in the application's sources.
import { defineEnvironment, secret } from 'switchyard';

const lab = ${JSON.stringify(rest, null, 2)};
const hosts = ${JSON.stringify(hosts, null, 2)};

export default defineEnvironment({
  ...lab,
  build: { dir: ${JSON.stringify(buildDir)} },
  hosts: hosts.map((h) => ({
    ...h,
    config: {
      'Web.config': { appSettings: { NodeName: h.name + '.uat' } },
      ...(h.name === 'h2' ? { 'config/production.json': { json: { 'log.level': 'warn' } } } : {}),
    },
  })),
  config: {
    'Web.config': {
      appSettings: { Environment: 'uat', NodeName: 'overridden by every host' },
      connectionStrings: { Main: secret(${JSON.stringify(SECRET_VAR)}) },
      xpath: {
        '/configuration/system.web/compilation/@debug': false,
        '/configuration/log4net/root/level/@value': 'WARN',
        "/configuration/runtime/asm:assemblyBinding/asm:dependentAssembly[asm:assemblyIdentity/@name='Newtonsoft.Json']/asm:bindingRedirect/@newVersion": '13.0.3.0',
      },
      namespaces: { asm: 'urn:schemas-microsoft-com:asm.v1' },
    },
    'config/production.json': { json: { 'db.host': 'db.uat.internal', 'db.password': secret(${JSON.stringify(SECRET_VAR)}) } },
  },
});
`;
}

/** A broken environment: an XPath that matches nothing and an appSettings key the Web.config does not have. */
function stagingFile(): string {
  return uatFile()
    .replace("'/configuration/log4net/root/level/@value'", "'/configuration/log4net/root/levle/@value'")
    .replace("Environment: 'uat'", "Environment: 'staging', CacheSeconds: 60");
}

/** The base text with exactly the expected values changed (independent of the renderer). */
function expectedWebConfig(host: string): Buffer {
  const base = fs.readFileSync(path.join(SHOP, 'Web.config'), 'utf8');
  const xmlAttr = SECRET.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
  const out = base
    .replace('<add key="Environment" value="dev" />', '<add key="Environment" value="uat" />')
    .replace('<add key="NodeName" value="localhost" />', `<add key="NodeName" value="${host}.uat" />`)
    .replace('connectionString="Server=(localdb)\\MSSQLLocalDB;Database=Shop;Integrated Security=true"', `connectionString="${xmlAttr}"`)
    .replace('<compilation debug="true"', '<compilation debug="false"')
    .replace('<level value="DEBUG" />', '<level value="WARN" />')
    .replace('newVersion="13.0.0.0"', 'newVersion="13.0.3.0"');
  return Buffer.from(out, 'utf8');
}

function expectedJson(host: string): string {
  const base = fs.readFileSync(path.join(SHOP, 'config', 'production.json'), 'utf8');
  let out = base.replace('"db": { "host": "localhost", "password": "dev" }', `"db": { "host": "db.uat.internal", "password": ${JSON.stringify(SECRET)} }`);
  if (host === 'h2') out = out.replace('"log": { "level": "debug" }', '"log": { "level": "warn" }');
  return out;
}

/** Every form the secret takes in a file or a log: raw, XML-escaped, JSON-escaped, and its password part. */
const secretForms = () => [
  SECRET,
  SECRET.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;'),
  JSON.stringify(SECRET).slice(1, -1),
  SECRET.split('Password=')[1]!.split('&')[0]!,
];

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** The real CLI, from the project root, as the systems team's CI would run it. */
function gulp(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(path.join(REPO, 'node_modules', '.bin', 'gulp'), args, { cwd: REPO, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => p.kill('SIGKILL'), 50_000);
    p.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    p.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

/** The environment of a CLI run: no secret, no env dir, unless given. */
function cliEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = { ...process.env, ...extra };
  if (!(SECRET_VAR in extra)) delete env[SECRET_VAR];
  if (!('SWITCHYARD_ENV_DIR' in extra)) delete env.SWITCHYARD_ENV_DIR;
  return env;
}

beforeAll(async () => {
  lab = await startLab({ hosts: 2 });
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sy-config-e2e-'));
  // the build: the example app plus the shop's config files
  buildDir = path.join(tmp, 'build');
  fs.cpSync(path.join(REPO, 'examples', 'hello'), buildDir, { recursive: true });
  fs.cpSync(SHOP, buildDir, { recursive: true });
  // the systems team's repository, nowhere near the project
  opsRepo = path.join(tmp, 'ops-config');
  envDir = path.join(opsRepo, 'env');
  fs.mkdirSync(envDir, { recursive: true });
  git('init', '-q', '-b', 'main');
  fs.writeFileSync(path.join(envDir, 'uat.ts'), uatFile());
  git('add', 'env/uat.ts');
  git('commit', '-q', '-m', 'uat: shop config');
});
afterAll(async () => {
  delete process.env[SECRET_VAR];
  await lab?.stop();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

const currentRelease = (h: LabHost) => path.join(h.deployTo, fs.readlinkSync(path.join(h.deployTo, 'current')));

describe.sequential('config from a separate environment repository', () => {
  it('deploy: each host release holds its own rendered values and the secret, which is in no output nor report', async () => {
    expect(git('ls-files')).toBe('env/uat.ts\n');
    expect(path.relative(REPO, envDir).startsWith('..')).toBe(true);
    process.env[SECRET_VAR] = SECRET;
    const reporter = new MemoryReporter(true); // verbose: every remote command and result line
    const printed: string[] = [];
    const report = path.join(tmp, 'report.json');
    const o = { env: 'uat', envDir, root: REPO, reporter };

    // what the systems team looks at first: the diff, then a dry run
    const diffs = await showConfig({ ...o, print: (t) => printed.push(t) });
    expect(diffs.map((d) => [d.variant, d.hosts])).toEqual([
      ['default', ['h1']],
      ['host:h2', ['h2']],
    ]);
    expect(printed.join('')).toContain('+    <add name="Main" connectionString="******" providerName="System.Data.SqlClient" />');
    await deploy({ ...o, dryRun: true }, 'cold-deploy');

    await setup(o);
    const r = await deploy({ ...o, report }, 'cold-deploy');
    expect(r.ok).toBe(true);

    for (const h of lab.hosts) {
      const rel = currentRelease(h);
      expect(path.basename(rel)).toBe(r.release);
      const web = path.join(rel, 'Web.config');
      const json = path.join(rel, 'config', 'production.json');
      // its own values, everything else byte for byte as in the build (BOM, CRLF, comments)
      expect(fs.readFileSync(web)).toEqual(expectedWebConfig(h.name));
      expect(fs.readFileSync(json, 'utf8')).toBe(expectedJson(h.name));
      expect(fs.readFileSync(web, 'utf8')).toContain(`value="${h.name}.uat"`);
      for (const f of [web, json]) expect(fs.statSync(f).mode & 0o777).toBe(0o640);
      // the app still starts from this build and passes its health check
      expect(await lab.fetchSite(h)).toEqual({ status: 200, body: `hello from release ${r.release}\n` });
    }
    // the two hosts really got different files
    expect(fs.readFileSync(path.join(currentRelease(lab.hosts[0]!), 'Web.config'))).not.toEqual(
      fs.readFileSync(path.join(currentRelease(lab.hosts[1]!), 'Web.config')),
    );

    // nowhere in what was printed, logged or reported
    const captured = [printed.join(''), reporter.text(), fs.readFileSync(report, 'utf8')];
    expect(reporter.lines.length).toBeGreaterThan(10);
    expect(reporter.text()).toContain('2 variants for host-level config');
    for (const text of captured) for (const f of secretForms()) expect(text).not.toContain(f);
    expect(JSON.parse(captured[2]!)).toMatchObject({ release: r.release, ok: true });
  });

  it('config-check (API): passes on the repository without any secret', async () => {
    delete process.env[SECRET_VAR];
    const reporter = new MemoryReporter(true);
    const results = await checkConfig({ envDir, root: REPO, reporter });
    expect(results).toMatchObject([{ name: 'uat', ok: true, files: 2, variants: 2 }]);
    expect(reporter.text()).toBe(`OK uat (${path.join(envDir, 'uat.ts')}): 2 config files rendered (2 host variants)`);
  });

  it('gulp config and config-check through the CLI: --env-dir and SWITCHYARD_ENV_DIR, masked diff, missing secret, broken file', async () => {
    const [check, diff, missing] = await Promise.all([
      gulp(['config-check'], cliEnv({ SWITCHYARD_ENV_DIR: envDir })),
      gulp(['config', '--env=uat', `--env-dir=${envDir}`], cliEnv({ [SECRET_VAR]: SECRET })),
      gulp(['config', '--env=uat', `--env-dir=${envDir}`], cliEnv()),
    ]);
    expect(check.code, check.out).toBe(0);
    expect(check.out).toContain(`OK uat (${path.join(envDir, 'uat.ts')}): 2 config files rendered (2 host variants)`);

    expect(diff.code, diff.out).toBe(0);
    expect(diff.out).toContain('# host h1 (variant default, uat from ');
    expect(diff.out).toContain('# host h2 (variant host:h2, uat from ');
    expect(diff.out).toContain('+  "db": { "host": "db.uat.internal", "password": "******" },');
    expect(diff.out).toContain('+    <add key="NodeName" value="h2.uat" />');
    for (const f of secretForms()) expect(diff.out).not.toContain(f);

    expect(missing.code).not.toBe(0);
    expect(missing.out).toContain(`${SECRET_VAR}: not set in the environment`);
    expect(missing.out).toContain('Web.config connectionStrings "Main"');
    expect(missing.out).toContain('config/production.json json "db.password"');

    // the systems team commits a broken environment: config-check fails, naming file and expressions
    fs.writeFileSync(path.join(envDir, 'staging.ts'), stagingFile());
    git('add', 'env/staging.ts');
    git('commit', '-q', '-m', 'staging (broken)');
    const broken = await gulp(['config-check', `--env-dir=${envDir}`], cliEnv());
    expect(broken.code, broken.out).not.toBe(0);
    const staging = path.join(envDir, 'staging.ts');
    expect(broken.out).toContain('config-check: 1 of 2 environments failed');
    // (every host has host-level overrides here, so the problem is found while rendering the first host's files)
    expect(broken.out).toMatch(new RegExp(`${esc(staging)}: Web\\.config: xpath "/configuration/log4net/root/levle/@value": matches nothing`));
    expect(broken.out).toMatch(new RegExp(`${esc(staging)}: Web\\.config: appSettings "CacheSeconds": matches nothing.*add: true`));
    expect(broken.out).toContain(`OK uat (${path.join(envDir, 'uat.ts')})`);

    // fixed: passes again
    fs.writeFileSync(staging, uatFile().replace("Environment: 'uat'", "Environment: 'staging'"));
    git('commit', '-q', '-am', 'staging: fixed');
    const fixed = await gulp(['config-check', `--env-dir=${envDir}`], cliEnv());
    expect(fixed.code, fixed.out).toBe(0);
    expect(fixed.out).toContain(`OK staging (${staging}): 2 config files rendered (2 host variants)`);
    expect(fixed.out).toContain(`OK uat (${path.join(envDir, 'uat.ts')})`);
  }, 180_000);
});
