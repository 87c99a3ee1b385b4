// What the `config` field of an environment file may say, and how host-level overrides merge.
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { parseJsonPath, formatJsonPath } from '../../../lib/config/jsonpath';
import { configOverridesSchema, mergeOverrides, type ConfigOverrides } from '../../../lib/config/schema';
import { secret } from '../../../lib/config/secrets';

const issues = (input: unknown) => {
  const r = configOverridesSchema().safeParse(input);
  if (r.success) throw new Error('expected a validation error');
  return r.error.issues.map((i) => `${i.path.join(' › ')}: ${i.message}`);
};

describe('config overrides schema', () => {
  it('accepts XML and JSON overrides with secrets', () => {
    const input = {
      'Web.config': {
        appSettings: { A: 'x', B: 1, C: true, D: secret('D'), E: { value: 'e', add: true } },
        connectionStrings: { Main: secret('MAIN') },
        xpath: { '/configuration/a/@b': { value: 'v', all: true }, '//c/text()': 'w' },
        namespaces: { asm: 'urn:schemas-microsoft-com:asm.v1' },
      },
      'config/production.json': {
        json: { 'db.host': 'h', 'servers[0]': { name: 'a', tags: ['x', null] }, 'db.password': secret('P') },
        add: { 'Logging.LogLevel["Microsoft.AspNetCore"]': 'Warning', 'auth.keys': [secret('K1'), secret('K2')] },
      },
    };
    expect(configOverridesSchema().parse(input)).toEqual(input);
  });

  it('rejects unknown keys, naming the file and the key, and what the file type takes', () => {
    expect(issues({ 'Web.config': { appSetting: { A: 'x' } } })).toEqual([
      'Web.config: Unrecognized key: "appSetting" (an XML config file takes { appSettings, connectionStrings, xpath, namespaces })',
    ]);
    expect(issues({ 'config/app.json': { appSettings: { A: 'x' } } })).toEqual([
      'config/app.json: Unrecognized key: "appSettings" (a .json config file takes { json, add })',
    ]);
    expect(issues({ 'Web.config': { json: { a: 1 } } })[0]).toContain('Unrecognized key: "json"');
    expect(issues({ 'Web.config': { appSettings: { A: { value: 'x', ad: true } } } })).toEqual([
      'Web.config › appSettings › A: Unrecognized key: "ad" (an entry takes { value, add })',
    ]);
    expect(issues({ 'Web.config': { xpath: { '//a': { value: 'x', add: true } } } })).toEqual([
      'Web.config › xpath › //a: Unrecognized key: "add" (an xpath entry takes { value, all })',
    ]);
    expect(issues({ 'Web.config': { appSettings: { '': 'x' } } })).toEqual(['Web.config › appSettings › : an appSettings key must not be empty']);
  });

  it('rejects values that are not strings, numbers, booleans or secrets (undefined from a missing variable, NaN, objects)', () => {
    expect(issues({ 'Web.config': { appSettings: { A: undefined } } })).toEqual([
      'Web.config › appSettings › A: expected a value (string, number, boolean, secret(...)) or { value, add?: boolean }',
    ]);
    expect(issues({ 'Web.config': { appSettings: { A: Number.NaN } } })[0]).toMatch(/^Web\.config › appSettings › A:/);
    expect(issues({ 'Web.config': { xpath: { '//a': { value: { nested: 1 } } } } })[0]).toMatch(/^Web\.config › xpath › \/\/a:/);
    expect(issues({ 'a.json': { json: { x: Infinity } } })[0]).toMatch(/^a\.json › json › x:/);
    expect(issues({ 'a.json': { json: { x: undefined } } })[0]).toMatch(/^a\.json › json › x:/);
  });

  it('rejects config paths outside the build or not normalised', () => {
    expect(issues({ '/etc/Web.config': {} })).toEqual(['/etc/Web.config: config file path must be relative to the build: "/etc/Web.config"']);
    expect(issues({ '../Web.config': {} })[0]).toContain('must not contain ".."');
    expect(issues({ './Web.config': {} })[0]).toContain('must be normalised (Web.config)');
    expect(issues({ 'bin\\app.config': {} })[0]).toContain('must use "/" separators');
  });

  it('rejects bad key paths and namespace prefixes', () => {
    expect(issues({ 'a.json': { json: { 'a..b': 1 } } })[0]).toMatch(/^a\.json › json › a\.\.b: invalid key path "a\.\.b": empty segment at character 3/);
    expect(issues({ 'a.json': { add: { 'a[x]': 1 } } })[0]).toContain('expected [digits] or ["key"]');
    expect(issues({ 'Web.config': { namespaces: { '1x': 'urn:x' } } })[0]).toContain('namespace prefix "1x" must be an XML NCName');
  });

  it('composes into an environment schema (as lib/environment does)', () => {
    const env = z.strictObject({ config: configOverridesSchema().optional() });
    expect(env.parse({})).toEqual({});
    const r = env.safeParse({ config: { 'Web.config': { appSettings: { A: [] } } } });
    expect(r.success).toBe(false);
    expect(r.error!.issues[0]!.path).toEqual(['config', 'Web.config', 'appSettings', 'A']);
  });
});

describe('JSON key paths', () => {
  it('parses dots, array indices and quoted keys', () => {
    expect(parseJsonPath('a.b')).toEqual([{ key: 'a' }, { key: 'b' }]);
    expect(parseJsonPath('servers[0].port')).toEqual([{ key: 'servers' }, { index: 0 }, { key: 'port' }]);
    expect(parseJsonPath('Logging.LogLevel["Microsoft.AspNetCore"]')).toEqual([{ key: 'Logging' }, { key: 'LogLevel' }, { key: 'Microsoft.AspNetCore' }]);
    expect(parseJsonPath('["a]b\\"c"][1][2]')).toEqual([{ key: 'a]b"c' }, { index: 1 }, { index: 2 }]);
    expect(parseJsonPath('a.0')).toEqual([{ key: 'a' }, { key: '0' }]);
    expect(parseJsonPath('My Key.x y')).toEqual([{ key: 'My Key' }, { key: 'x y' }]);
    for (const bad of ['', '.a', 'a.', 'a[', 'a[1', 'a[-1]', 'a]b', 'a[1]b', 'a["x]', 'a[x]']) {
      expect(() => parseJsonPath(bad), bad).toThrow(/invalid key path/);
    }
  });

  it('formats a path canonically', () => {
    expect(formatJsonPath(parseJsonPath('["a"]["b.c"][0].d'))).toBe('a["b.c"][0].d');
  });
});

describe('mergeOverrides', () => {
  const env: ConfigOverrides = {
    'Web.config': {
      appSettings: { A: 'env', B: 'env' },
      xpath: { '//x/@y': 'env' },
      namespaces: { a: 'urn:a', b: 'urn:b' },
    },
    'app.json': { json: { 'db.host': 'env', 'db.port': 1 }, add: { 'x.y': 'env' } },
    'Only.env.config': { appSettings: { Z: 'z' } },
  };
  const host: ConfigOverrides = {
    'Web.config': { appSettings: { B: 'host', C: { value: 'host', add: true } }, namespaces: { b: 'urn:b2' } },
    'app.json': { add: { 'db.host': 'host' }, json: { 'x.y': 'host' } },
    'Only.host.config': { xpath: { '//h': 'h' } },
  };

  it('host wins per file and per key; everything else is kept', () => {
    expect(mergeOverrides(env, host)).toEqual({
      'Web.config': {
        appSettings: { A: 'env', B: 'host', C: { value: 'host', add: true } },
        xpath: { '//x/@y': 'env' },
        namespaces: { a: 'urn:a', b: 'urn:b2' },
      },
      // a path the host sets in `add` replaces the environment's `json` setting of it, and vice versa
      'app.json': { json: { 'db.port': 1, 'x.y': 'host' }, add: { 'db.host': 'host' } },
      'Only.env.config': { appSettings: { Z: 'z' } },
      'Only.host.config': { xpath: { '//h': 'h' } },
    });
  });

  it('does not change its inputs, and takes either side missing', () => {
    const before = JSON.stringify([env, host]);
    mergeOverrides(env, host);
    expect(JSON.stringify([env, host])).toBe(before);
    expect(mergeOverrides(env, undefined)).toEqual(env);
    expect(mergeOverrides(undefined, host)).toEqual(host);
    expect(mergeOverrides()).toEqual({});
  });
});
