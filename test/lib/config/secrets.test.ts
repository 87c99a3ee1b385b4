// Secrets: resolved from the environment or a secrets file at render time, all missing ones in one
// error before anything else happens, and masked in every form they can take in a rendered file.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { configDiff, renderConfigFiles } from '../../../lib/config/render';
import type { ConfigOverrides } from '../../../lib/config/schema';
import { applyXmlOverrides } from '../../../lib/config/xml';
import { Masker, MissingSecretsError, parseSecretsFile, resolveSecrets, secret, Secret } from '../../../lib/config/secrets';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sy-secrets-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const file = (name: string, body: string) => {
  const p = path.join(dir, name);
  fs.writeFileSync(p, body, { mode: 0o600 });
  return p;
};

const overrides: ConfigOverrides = {
  'Web.config': {
    appSettings: { ApiKey: secret('API_KEY'), Plain: 'x' },
    connectionStrings: { Main: { value: secret('DB_PASSWORD'), add: true } },
    xpath: { '/configuration/smtp/@password': secret('SMTP_PASSWORD') },
  },
  'config/production.json': {
    json: { 'db.password': secret('DB_PASSWORD') },
    add: { 'mail.auth': { user: 'shop', pass: secret('SMTP_PASSWORD') } },
  },
};

describe('resolving secrets', () => {
  it('takes values from the environment given, or from process.env by default', () => {
    const s = resolveSecrets(overrides, { env: { API_KEY: 'k1', DB_PASSWORD: 'd1', SMTP_PASSWORD: 's1' } });
    expect(s.value(secret('API_KEY'))).toBe('k1');
    expect(s.value(secret('SMTP_PASSWORD'))).toBe('s1');
    expect(s.size).toBe(3);

    const names = ['SY_TEST_SECRET_FROM_PROCESS_ENV'];
    process.env[names[0]!] = 'from-process';
    try {
      const r = resolveSecrets({ 'a.json': { json: { x: secret(names[0]!) } } });
      expect(r.value(secret(names[0]!))).toBe('from-process');
    } finally {
      delete process.env[names[0]!];
    }
  });

  it('takes values from a secrets file (option, SWITCHYARD_SECRETS_FILE, or secret(name, { file })); the environment wins', () => {
    const f = file('uat.env', '# uat secrets\nAPI_KEY=from-file\nexport DB_PASSWORD = "p\\"w\\nd"  \nSMTP_PASSWORD=\'#raw $x\'\n');
    const viaOption = resolveSecrets(overrides, { env: {}, secretsFile: f });
    expect(viaOption.value(secret('API_KEY'))).toBe('from-file');
    expect(viaOption.value(secret('DB_PASSWORD'))).toBe('p"w\nd');
    expect(viaOption.value(secret('SMTP_PASSWORD'))).toBe('#raw $x');

    const viaEnvVar = resolveSecrets(overrides, { env: { SWITCHYARD_SECRETS_FILE: f, API_KEY: 'env-wins' } });
    expect(viaEnvVar.value(secret('API_KEY'))).toBe('env-wins');
    expect(viaEnvVar.value(secret('DB_PASSWORD'))).toBe('p"w\nd');

    const other = file('other.env', 'TOKEN=t0k3n\n');
    const perSecret = resolveSecrets({ 'a.json': { json: { t: secret('TOKEN', { file: path.relative(dir, other) }) } } }, { env: {}, cwd: dir });
    expect(perSecret.value(secret('TOKEN', { file: path.relative(dir, other) }))).toBe('t0k3n');
  });

  it('lists every missing secret, with every place it is used, in ONE error', () => {
    let err: unknown;
    try {
      resolveSecrets(overrides, { env: { API_KEY: 'k', DB_PASSWORD: '' }, envFile: 'env/uat.ts' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(MissingSecretsError);
    const e = err as MissingSecretsError;
    expect(e.missing.map((m) => m.name)).toEqual(['DB_PASSWORD', 'SMTP_PASSWORD']);
    expect(e.message).toBe(
      [
        '2 secrets are missing for env/uat.ts (nothing is uploaded until they are set):',
        '  DB_PASSWORD: not set in the environment and no secrets file (set SWITCHYARD_SECRETS_FILE or use secret(name, { file })); ' +
          'used by Web.config connectionStrings "Main", config/production.json json "db.password"',
        '  SMTP_PASSWORD: not set in the environment and no secrets file (set SWITCHYARD_SECRETS_FILE or use secret(name, { file })); ' +
          'used by Web.config xpath "/configuration/smtp/@password", config/production.json add "mail.auth"',
      ].join('\n'),
    );
  });

  it('says which secrets file it looked in, and whether it exists', () => {
    const f = file('partial.env', 'API_KEY=k\nDB_PASSWORD=\n');
    expect(() => resolveSecrets(overrides, { env: {}, secretsFile: f })).toThrow(
      new RegExp(`DB_PASSWORD: not set in the environment and empty in ${f}.*\\n  SMTP_PASSWORD: not set in the environment nor in ${f}`),
    );
    const missing = path.join(dir, 'nope.env');
    expect(() => resolveSecrets(overrides, { env: {}, secretsFile: missing })).toThrow(`the secrets file ${missing} does not exist`);
  });

  it('checks the secrets of several hosts at once', () => {
    const host2: ConfigOverrides = { 'Web.config': { appSettings: { HostKey: secret('HOST2_KEY') } } };
    expect(() => resolveSecrets([overrides, host2], { env: { API_KEY: 'k', DB_PASSWORD: 'd' } })).toThrow(/2 secrets are missing[\s\S]*SMTP_PASSWORD[\s\S]*HOST2_KEY/);
  });

  it('parses the secrets file strictly, without ever echoing a line', () => {
    expect(parseSecretsFile('\uFEFFA=1\r\n\r\n  # c\r\nB = two words \r\nC="\\u00e9\\t"\r\nD=\'\'\r\nE=x=y#z')).toEqual(
      new Map([
        ['A', '1'],
        ['B', 'two words'],
        ['C', 'é\t'],
        ['D', ''],
        ['E', 'x=y#z'],
      ]),
    );
    expect(() => parseSecretsFile('A=1\nhunter2\n')).toThrow(/^line 2 is not NAME=value$/);
    expect(() => parseSecretsFile('A=1\nA=2\n')).toThrow('A is defined twice (lines 1 and 2)');
    expect(() => parseSecretsFile('A="unterminated\n')).toThrow(/^line 1: a double-quoted value must be one JSON string literal$/);
    expect(() => parseSecretsFile("A='x\n")).toThrow(/^line 1: unterminated single-quoted value$/);
    const f = file('broken.env', 'API_KEY=k\nthis line holds s3cret\n');
    let msg = '';
    try {
      resolveSecrets(overrides, { env: {}, secretsFile: f });
    } catch (e) {
      msg = (e as Error).message;
    }
    expect(msg).toBe(`secrets file ${f}: line 2 is not NAME=value`);
  });

  it('rejects a bad secret name where it is written', () => {
    expect(() => secret('DB-PASSWORD')).toThrow(/a secret name must match/);
    expect(String(secret('X'))).toBe('secret(X)');
    expect(JSON.stringify({ a: secret('X') })).toBe('{"a":"secret(X)"}');
  });

  it('recognises secrets made by another copy of the module (instanceof works by brand)', () => {
    const foreign = { [Symbol.for('switchyard.secret')]: true, name: 'X', file: undefined };
    expect(foreign instanceof Secret).toBe(true);
    expect({ name: 'X' } instanceof Secret).toBe(false);
  });
});

describe('masking', () => {
  it('masks every occurrence of every value, raw and in each escaped form it can be written in', () => {
    const value = `p"a<s>s'w&rd\n\tend`;
    const m = new Masker([value, '', 'short']);
    const forms = [
      value,
      'p&quot;a&lt;s&gt;s\'w&amp;rd&#10;&#9;end', // attribute in double quotes
      'p"a&lt;s&gt;s&apos;w&amp;rd&#10;&#9;end', // attribute in single quotes
      'p"a&lt;s&gt;s\'w&amp;rd\r\n\tend', // text node, CRLF file
      'p\\"a<s>s\'w&rd\\n\\tend', // JSON string
    ];
    for (const f of forms) expect(m.mask(`before ${f} after`), f).toBe('before ****** after');
    expect(m.mask('short and short')).toBe('****** and ******');
    expect(m.mask('nothing here')).toBe('nothing here'); // the empty value masks nothing
    expect(new Masker([]).mask('x')).toBe('x');
  });

  it('masks the longer of two overlapping secrets whole', () => {
    expect(new Masker(['abc', 'abcdef']).mask('[abcdef]')).toBe('[******]');
  });

  it('masks secrets in a rendered file and in its diff, even a secret that spans lines', async () => {
    const build = path.join(dir, 'build');
    fs.mkdirSync(build, { recursive: true });
    fs.writeFileSync(
      path.join(build, 'Web.config'),
      '<configuration>\r\n  <appSettings>\r\n    <add key="ApiKey" value="dev" />\r\n  </appSettings>\r\n  <banner>hello</banner>\r\n</configuration>\r\n',
    );
    const o: ConfigOverrides = {
      'Web.config': { appSettings: { ApiKey: secret('API_KEY') }, xpath: { '/configuration/banner/text()': secret('BANNER') } },
    };
    const secrets = resolveSecrets(o, { env: { API_KEY: 'k"ey&1', BANNER: 'line one\nline two' } });
    const [f] = await renderConfigFiles({ buildDir: build, overrides: o, envFile: 'env/uat.ts', secrets });
    const rendered = f!.content.toString('utf8');
    expect(rendered).toContain('value="k&quot;ey&amp;1"');
    expect(rendered).toContain('<banner>line one\r\nline two</banner>');
    const diff = configDiff('Web.config', f!.base.toString('utf8'), rendered, secrets.masker);
    expect(diff).toBe(
      [
        '--- a/Web.config',
        '+++ b/Web.config',
        '@@ -1,6 +1,6 @@',
        ' <configuration>',
        '   <appSettings>',
        '-    <add key="ApiKey" value="dev" />',
        '+    <add key="ApiKey" value="******" />',
        '   </appSettings>',
        '-  <banner>hello</banner>',
        '+  <banner>******</banner>',
        ' </configuration>',
        '',
      ].join('\n'),
    );
    expect(secrets.masker.mask(rendered)).not.toMatch(/k"ey|k&quot;ey|line one/);
    expect(configDiff('Web.config', rendered, rendered, secrets.masker)).toBe('');
  });

  it('gives the forms to feed to a reporter', () => {
    const s = resolveSecrets({ 'a.config': { appSettings: { A: secret('A') } } }, { env: { A: 'x<y' } });
    expect(s.formsToMask()).toEqual(expect.arrayContaining(['x<y', 'x&lt;y']));
  });
});

describe('a secret in an XML file through the renderer', () => {
  it('is written escaped like any value', () => {
    const out = applyXmlOverrides(
      '<configuration><appSettings><add key="K" value="" /></appSettings></configuration>',
      { appSettings: { K: secret('K') } },
      { configFile: 'Web.config', envFile: 'env/uat.ts', resolve: (v) => (v instanceof Secret ? `<${v.name}>` : String(v)) },
    );
    expect(out).toBe('<configuration><appSettings><add key="K" value="&lt;K&gt;" /></appSettings></configuration>');
  });
});
