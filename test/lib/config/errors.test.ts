// Every way an override can fail, each with a message that names the environment file, the config
// file and the override (key or expression) — and, for a broken file, the line and column.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../../lib/config/errors';
import { applyJsonOverrides } from '../../../lib/config/json';
import { renderConfigFiles } from '../../../lib/config/render';
import type { JsonFileOverrides, Value, XmlFileOverrides } from '../../../lib/config/schema';
import { applyXmlOverrides, xpathLiteral } from '../../../lib/config/xml';
import { ResolvedSecrets, Secret } from '../../../lib/config/secrets';

const ENV = 'env/uat.ts';
const FILE = 'Web.config';
const ctx = { configFile: FILE, envFile: ENV, resolve: (v: Value) => String(v) };

const WEB = [
  '<?xml version="1.0" encoding="utf-8"?>',
  '<configuration>',
  '  <appSettings>',
  '    <add key="ApiUrl" value="http://localhost/" />',
  '    <add key="Dup" value="1" />',
  '    <add key="Dup" value="2" />',
  `    <add key="it's &quot;quoted&quot;" value="q" />`,
  '    <!-- a comment -->',
  '  </appSettings>',
  '  <connectionStrings>',
  '    <add name="Main" connectionString="Server=.;Database=Shop" />',
  '  </connectionStrings>',
  '  <runtime>',
  '    <assemblyBinding xmlns="urn:schemas-microsoft-com:asm.v1">',
  '      <dependentAssembly><bindingRedirect oldVersion="0.0.0.0-1.0.0.0" newVersion="1.0.0.0" /></dependentAssembly>',
  '    </assemblyBinding>',
  '  </runtime>',
  '  <items><item>a</item><item>b</item></items>',
  '</configuration>',
  '',
].join('\n');

/** Runs `fn`, expects a ConfigError, returns its message (and checks every problem names env file and config file). */
function failure(fn: () => unknown, configFile = FILE): { message: string; problems: readonly { where?: string; message: string }[] } {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    const err = e as ConfigError;
    for (const p of err.problems) {
      expect(p.envFile).toBe(ENV);
      expect(p.configFile).toBe(configFile);
    }
    for (const line of err.message.split('\n').filter((l) => l.startsWith('  ') || err.problems.length === 1)) {
      expect(line).toContain(ENV);
      expect(line).toContain(configFile);
    }
    return err;
  }
  throw new Error('expected a ConfigError, but rendering succeeded');
}
const xml = (o: XmlFileOverrides, text = WEB) => failure(() => applyXmlOverrides(text, o, ctx));

describe('XML: overrides that do not match exactly one node', () => {
  it('an appSettings key that does not exist says that add: true would create it', () => {
    const { message } = xml({ appSettings: { ApiURL2: 'x' } });
    expect(message).toBe(
      `${ENV}: ${FILE}: appSettings "ApiURL2": matches nothing: /configuration/appSettings/add[@key='ApiURL2']/@value selects no node. ` +
        'To create <add key="ApiURL2" value="…" />, write { value: …, add: true }',
    );
  });

  it('a connectionStrings name that does not exist, likewise', () => {
    const { message } = xml({ connectionStrings: { Reports: 'x' } });
    expect(message).toContain(`${ENV}: ${FILE}: connectionStrings "Reports": matches nothing`);
    expect(message).toContain(`/configuration/connectionStrings/add[@name='Reports']/@connectionString`);
    expect(message).toContain('add: true');
  });

  it('a key that differs only in case is not silently added next to the existing one', () => {
    const { message } = xml({ appSettings: { apiurl: { value: 'x', add: true } } });
    expect(message).toContain('appSettings "apiurl"');
    expect(message).toContain('the file has "ApiUrl", which differs only in case');
  });

  it('add: true without an appSettings section to add to', () => {
    const { message } = xml({ appSettings: { New: { value: 'x', add: true } } }, '<configuration>\n  <system.web />\n</configuration>\n');
    expect(message).toContain('appSettings "New": cannot add the key: the file has no /configuration/appSettings element');
  });

  it('a key that occurs twice in the file', () => {
    const { message } = xml({ appSettings: { Dup: 'x' } });
    expect(message).toContain('appSettings "Dup": 2 <add key=…> elements match');
    expect(message).toContain('lines 5, 6');
  });

  it('keys with both kinds of quote are found through a safe XPath literal', () => {
    const key = `it's "quoted"`;
    expect(xpathLiteral(key)).toBe(`concat('it', "'", 's "quoted"')`);
    const out = applyXmlOverrides(WEB, { appSettings: { [key]: 'new' } }, ctx);
    expect(out).toContain(`<add key="it's &quot;quoted&quot;" value="new" />`);
    const { message } = xml({ appSettings: { [`it's "other"`]: 'x' } });
    expect(message).toContain(`appSettings "it's \\"other\\"": matches nothing: /configuration/appSettings/add[@key=concat('it', "'", 's "other"')]/@value`);
  });

  it('an XPath expression that matches nothing', () => {
    const { message } = xml({ xpath: { '/configuration/system.web/compilation/@debug': false } });
    expect(message).toBe(`${ENV}: ${FILE}: xpath "/configuration/system.web/compilation/@debug": matches nothing`);
  });

  it('an element in a default namespace selected without a prefix: the message says how to declare one', () => {
    const { message } = xml({ xpath: { '/configuration/runtime/assemblyBinding/dependentAssembly/bindingRedirect/@newVersion': '2.0.0.0' } });
    expect(message).toContain('xpath "/configuration/runtime/assemblyBinding/dependentAssembly/bindingRedirect/@newVersion": matches nothing');
    expect(message).toContain(`<assemblyBinding> is in a default namespace (xmlns="urn:schemas-microsoft-com:asm.v1") and can only be selected with a prefix: declare namespaces: { p: 'urn:schemas-microsoft-com:asm.v1' } and write p:assemblyBinding`);
    // and with the prefix declared it works
    const out = applyXmlOverrides(
      WEB,
      { xpath: { '//a:bindingRedirect/@newVersion': '2.0.0.0' }, namespaces: { a: 'urn:schemas-microsoft-com:asm.v1' } },
      ctx,
    );
    expect(out).toContain('newVersion="2.0.0.0"');
  });

  it('an expression that matches more than one node, unless all: true', () => {
    const { message } = xml({ xpath: { '//item/text()': 'z' } });
    expect(message).toContain('xpath "//item/text()": matches 2 nodes (text node at line 18, text node at line 18)');
    expect(message).toContain('all: true');
    const out = applyXmlOverrides(WEB, { xpath: { '//item/text()': { value: 'z', all: true } } }, ctx);
    expect(out).toContain('<items><item>z</item><item>z</item></items>');
  });

  it('an expression with an undeclared prefix, a syntax error, or a non-node result', () => {
    expect(xml({ xpath: { '/configuration/asm:runtime': 'x' } }).message).toMatch(
      /xpath "\/configuration\/asm:runtime": invalid XPath expression: .*asm.*declare the prefix in `namespaces`/,
    );
    expect(xml({ xpath: { '/configuration/[': 'x' } }).message).toContain('xpath "/configuration/[": invalid XPath expression');
    expect(xml({ xpath: { 'count(//add)': 'x' } }).message).toContain('xpath "count(//add)": the expression evaluates to a number, not to nodes');
  });

  it('an element with child elements, or a comment, cannot be set', () => {
    expect(xml({ xpath: { '/configuration/appSettings': 'x' } }).message).toContain(
      'xpath "/configuration/appSettings": selects element <appSettings> at line 3, which contains an element <add>',
    );
    expect(xml({ xpath: { '//comment()': 'x' } }).message).toContain('xpath "//comment()": selects a comment at line 8');
  });

  it('two overrides that set the same node', () => {
    const { message } = xml({ appSettings: { ApiUrl: 'a' }, xpath: { "//add[@key='ApiUrl']/@value": 'b' } });
    expect(message).toContain(`appSettings "ApiUrl" and xpath "//add[@key='ApiUrl']/@value": set the same node twice`);
  });

  it('a value with a character XML cannot hold (the message gives its position, not the value)', () => {
    const { message } = xml({ appSettings: { ApiUrl: 'pass\u0007word' } });
    expect(message).toBe(`${ENV}: ${FILE}: appSettings "ApiUrl": the value contains a character XML cannot represent (U+0007 at index 4)`);
    expect(message).not.toContain('pass');
    expect(xml({ appSettings: { ApiUrl: 'lone \uD800 surrogate' } }).message).toContain('U+D800 at index 5');
  });

  it('reports every problem of a file at once', () => {
    const { problems, message } = xml({ appSettings: { Nope1: 'x', Nope2: 'y' }, xpath: { '/nope': 'z' } });
    expect(problems.map((p) => p.where)).toEqual(['appSettings "Nope1"', 'appSettings "Nope2"', 'xpath "/nope"']);
    expect(message.split('\n')[0]).toBe('3 config problems:');
  });
});

describe('XML: malformed files', () => {
  const cases: [string, string, RegExp][] = [
    ['unclosed element', '<configuration>\n  <appSettings>\n</configuration>\n', /line 3, column \d+/],
    ['mismatched tag', '<configuration>\n  <a></b>\n</configuration>', /line 2, column 6: .*closing tag/],
    ['duplicate attribute', '<configuration>\n  <add key="a" key="b" />\n</configuration>', /line 2, column \d+: .*repeated/],
    ['bare ampersand', '<configuration>\n  <a>x & y</a>\n</configuration>', /line 2, column \d+: .*'&'/],
    ['undefined entity', '<configuration>\n  <a>&nbsp;</a>\n</configuration>', /line 2, column \d+: entity not found/],
    ['text after the root', '<configuration/>\nx', /line \d+, column \d+/],
    ['unquoted attribute', '<configuration>\n  <add key=a />\n</configuration>', /line 2, column \d+/],
  ];
  for (const [name, text, re] of cases) {
    it(name, () => {
      const { message } = xml({}, text);
      expect(message).toMatch(new RegExp(`^${ENV}: ${FILE}: malformed XML at ${re.source}`));
    });
  }

  it('a file declared in another encoding than UTF-8', () => {
    const { message } = xml({}, '<?xml version="1.0" encoding="windows-1252"?>\n<configuration/>');
    expect(message).toBe(`${ENV}: ${FILE}: declares encoding "windows-1252"; only UTF-8 config files are supported (convert the base file to UTF-8)`);
  });
});

describe('JSON', () => {
  const J = 'config/production.json';
  const jctx = { configFile: J, envFile: ENV, resolveSecret: (s: Secret) => `<${s.name}>` };
  const text = '{\n  "db": { "host": "localhost", "port": 5432 },\n  "servers": ["a", "b"],\n  "dup": 1,\n  "dup": 2,\n  "n": 1\n}\n';
  const json = (o: JsonFileOverrides, t = text) => failure(() => applyJsonOverrides(t, o, jctx), J);

  it('a path that does not exist says that `add` creates it', () => {
    expect(json({ json: { 'db.user': 'x' } }).message).toBe(
      `${ENV}: ${J}: json "db.user": db.user does not exist in the file; to create it, put it under \`add\` instead of \`json\``,
    );
  });
  it('an index past the end, under json and under add', () => {
    expect(json({ json: { 'servers[2]': 'c' } }).message).toContain('json "servers[2]": servers[2] does not exist: servers has 2 elements; use `add` to append');
    expect(json({ add: { 'servers[3]': 'c' } }).message).toContain('add "servers[3]": servers[3] does not exist: servers has 2 elements (to append, use index 2)');
  });
  it('a path through the wrong kind of value', () => {
    expect(json({ json: { 'servers.first': 'x' } }).message).toContain('json "servers.first": servers is an array, not an object, so it has no key "first"');
    expect(json({ json: { 'db[0]': 'x' } }).message).toContain('json "db[0]": db is an object, not an array, so [0] does not apply');
    expect(json({ add: { 'n.x': 1 } }).message).toContain('add "n.x": n is a plain value, not an object, so it has no key "x"');
  });
  it('a key that occurs twice in the file', () => {
    expect(json({ json: { dup: 3 } }).message).toContain('json "dup": the top level has the key "dup" 2 times');
  });
  it('the same path set twice (spelled differently)', () => {
    expect(json({ json: { 'db.host': 'a' }, add: { '["db"]["host"]': 'b' } }).message).toContain(
      'add "[\\"db\\"][\\"host\\"]": sets the same path as json "db.host"',
    );
  });
  it('malformed JSON, with line and column', () => {
    expect(json({}, '{\n  "a": 1,\n  "b": tru\n}').message).toBe(`${ENV}: ${J}: malformed JSON at line 3, column 8: unexpected character "t"`);
    expect(json({}, '{\n  "a": 1,\n}').message).toBe(`${ENV}: ${J}: malformed JSON at line 3, column 1: expected a key (trailing commas are not allowed)`);
    expect(json({}, '{"a": "x\ny"}').message).toContain('malformed JSON at line 1, column 7: invalid string');
  });
});

describe('rendering a build', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sy-render-errors-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  const build = path.join(dir, 'build');
  fs.mkdirSync(build);
  fs.writeFileSync(path.join(build, 'Web.config'), WEB);
  fs.writeFileSync(path.join(dir, 'outside.config'), WEB);
  fs.symlinkSync(path.join(dir, 'outside.config'), path.join(build, 'link.config'));
  fs.writeFileSync(path.join(build, 'utf16.config'), Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('<configuration/>', 'utf16le')]));
  fs.writeFileSync(path.join(build, 'latin1.config'), Buffer.from('<configuration><a>caf\xe9</a></configuration>', 'latin1'));
  fs.mkdirSync(path.join(build, 'dir.config'));

  const render = (overrides: Record<string, XmlFileOverrides>) =>
    renderConfigFiles({ buildDir: build, overrides, envFile: ENV, secrets: ResolvedSecrets.none });

  it('a config file missing from the build, named with the build directory', async () => {
    const err = (await render({ 'Missing.config': { appSettings: { A: 'x' } } }).catch((e: unknown) => e)) as ConfigError;
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.message).toBe(
      `${ENV}: Missing.config: is not in the build: ${path.join(build, 'Missing.config')} does not exist (the path is relative to the build directory ${build})`,
    );
  });

  it('a file that is a symlink out of the build, a directory, UTF-16, or not UTF-8', async () => {
    const err = (await render({
      'link.config': {},
      'dir.config': {},
      'utf16.config': {},
      'latin1.config': {},
    }).catch((e: unknown) => e)) as ConfigError;
    expect(err.problems.map((p) => `${p.configFile}: ${p.message}`)).toEqual([
      `link.config: resolves to ${fs.realpathSync(path.join(dir, 'outside.config'))}, outside the build directory`,
      `dir.config: is not a file in the build (${path.join(build, 'dir.config')})`,
      'utf16.config: is UTF-16; only UTF-8 config files are supported (convert the base file to UTF-8)',
      'latin1.config: is not valid UTF-8; only UTF-8 config files are supported',
    ]);
  });

  it('problems of several files come in one error', async () => {
    const err = (await render({ 'Web.config': { appSettings: { Nope: 'x' } }, 'Missing.config': {} }).catch((e: unknown) => e)) as ConfigError;
    expect(err.problems.map((p) => p.configFile)).toEqual(['Web.config', 'Missing.config']);
    expect(err.message).toMatch(/^2 config problems:\n {2}env\/uat\.ts: Web\.config: appSettings "Nope": matches nothing.*\n {2}env\/uat\.ts: Missing\.config: is not in the build/);
  });

  it('a secret that was not resolved before rendering is a programming error, not a silent blank', async () => {
    await expect(render({ 'Web.config': { appSettings: { ApiUrl: new Secret('NOT_RESOLVED') } } })).rejects.toThrow(
      /secret\(NOT_RESOLVED\) was not resolved/,
    );
  });
});
