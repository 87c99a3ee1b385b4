// app.env (issue 12): a string or secret('NAME'); SWITCHYARD_ names reserved; no NUL. Secrets are
// resolved as config secrets are, one error naming every missing one; every value is masked.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { APP_ENV_MASK_MIN, Masker, maskStrings, MissingSecretsError, resolveAppEnv, secret, Secret } from '../../../lib/config/secrets';
import { MemoryReporter } from '../../../lib/output/reporter';
import { resolveBeforeUpload } from '../../../lib/release/deploy';
import { makeEnv } from '../../support/env';

const withEnv = (env: Record<string, unknown>) => () => makeEnv({ app: { start: ['node', 'server.js'], env: env as Record<string, string> } });

describe('app.env in the schema', () => {
  it('takes strings and secret(...)', () => {
    const env = withEnv({ NODE_ENV: 'production', API_KEY: secret('API_KEY'), EMPTY: '' })();
    expect(env.app.env.NODE_ENV).toBe('production');
    expect(env.app.env.API_KEY).toBeInstanceOf(Secret);
    expect(String(env.app.env.API_KEY)).toBe('secret(API_KEY)');
    expect(withEnv({})().app.env).toEqual({});
  });

  it('refuses SWITCHYARD_ names, naming the key', () => {
    const msg = 'app.env.SWITCHYARD_FOO: reserved (switchyard sets SWITCHYARD_RELEASE, SWITCHYARD_SITE, SWITCHYARD_SOCKET)';
    expect(withEnv({ SWITCHYARD_FOO: 'x' })).toThrow(msg);
    expect(withEnv({ SWITCHYARD_SOCKET: secret('S') })).toThrow('app.env.SWITCHYARD_SOCKET: reserved (switchyard sets');
    expect(withEnv({ SWITCHYARD: 'x', MY_SWITCHYARD_X: 'y' })().app.env).toEqual({ SWITCHYARD: 'x', MY_SWITCHYARD_X: 'y' });
  });

  it('refuses a NUL byte, other value types and bad names', () => {
    expect(withEnv({ A: 'x\0y' })).toThrow('app.env.A: a NUL byte cannot be in an environment variable');
    expect(withEnv({ A: 1 })).toThrow(/app\.env\.A: expected a string or secret\(\.\.\.\)/);
    expect(withEnv({ A: { name: 'X' } })).toThrow(/app\.env\.A: expected a string or secret/);
    expect(withEnv({ 'A-B': 'x' })).toThrow(/app\.env/);
  });
});

describe('resolveAppEnv', () => {
  const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'sy-appenv-'));

  it('resolves secrets from the environment, else the secrets file; plain values as they are', () => {
    const dir = tmp();
    const file = path.join(dir, 'uat.env');
    fs.writeFileSync(file, 'FROM_FILE="multi\\nline \\"q\\""\n');
    const r = resolveAppEnv(
      { A: secret('SY_A'), B: secret('FROM_FILE', { file }), P: 'plain' },
      { env: { SY_A: `$(touch x) 'q' é` } },
    );
    expect(r.values).toEqual({ A: `$(touch x) 'q' é`, B: 'multi\nline "q"', P: 'plain' });
    fs.rmSync(dir, { recursive: true });
  });

  it('one MissingSecretsError names every missing secret and its variable', () => {
    let err: unknown;
    try {
      resolveAppEnv({ A: secret('SY_MISSING_1'), B: secret('SY_MISSING_2'), C: 'ok' }, { env: {}, envFile: 'env/uat.ts' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(MissingSecretsError);
    const m = (err as Error).message;
    expect(m).toContain('2 secrets are missing for env/uat.ts (nothing is uploaded until they are set)');
    expect(m).toContain('SY_MISSING_1: not set in the environment and no secrets file');
    expect(m).toContain('used by app.env "A"');
    expect(m).toContain('used by app.env "B"');
  });

  it('refuses a secret whose value holds a NUL byte, without showing it', () => {
    const dir = tmp();
    const file = path.join(dir, 's.env');
    fs.writeFileSync(file, 'K="top\\u0000secret"\n');
    expect(() => resolveAppEnv({ K: secret('K', { file }) }, { env: {} })).toThrow('app.env.K: the value of secret(K) holds a NUL byte');
    try {
      resolveAppEnv({ K: secret('K', { file }) }, { env: {} });
    } catch (e) {
      expect((e as Error).message).not.toContain('top');
    }
    fs.rmSync(dir, { recursive: true });
  });

  it('registers every secret and every plain value of 4+ characters with the reporter, each line of a multi-line one too', () => {
    const reporter = new MemoryReporter(true);
    const r = resolveAppEnv({ S: secret('SY_S'), ONE: '1', P: 'plain-value', M: 'line-one\nline-two' }, { env: { SY_S: 'k' }, reporter });
    expect(APP_ENV_MASK_MIN).toBe(4);
    reporter.log('info', 'k plain-value 1 line-two line-one\nline-two');
    expect(reporter.text()).toBe('****** ****** 1 ****** ******');
    expect(r.toMask).toContain('k'); // a secret, whatever its length
    expect(r.toMask).not.toContain('1');
    // JSON and XML forms too, as for config secrets
    const q = resolveAppEnv({ Q: 'a"b<c>' }, { env: {} });
    expect(q.toMask).toEqual(expect.arrayContaining(['a"b<c>', 'a\\"b<c>', 'a&quot;b&lt;c&gt;']));
  });

  it('maskStrings masks every string of a report, deep', () => {
    const masker = new Masker(['hunter22']);
    expect(maskStrings({ a: 'x hunter22 y', b: [1, 'hunter22', { c: 'hunter22!' }], d: true, e: null }, masker)).toEqual({
      a: 'x ****** y',
      b: [1, '******', { c: '******!' }],
      d: true,
      e: null,
    });
  });
});

describe('resolveBeforeUpload (deploy)', () => {
  it('one error lists the missing secrets of the config and of app.env together, a secret used by both once', () => {
    const env = makeEnv({
      app: { start: ['node', 'server.js'], env: { DB: secret('SY_NOT_SET_DB'), KEY: secret('SY_NOT_SET_KEY') } },
      config: { 'Web.config': { appSettings: { Db: secret('SY_NOT_SET_DB') } } },
    });
    const saved = { ...process.env };
    delete process.env.SY_NOT_SET_DB;
    delete process.env.SY_NOT_SET_KEY;
    delete process.env.SWITCHYARD_SECRETS_FILE;
    try {
      expect(() => resolveBeforeUpload(env, env.hosts, new MemoryReporter())).toThrow(MissingSecretsError);
      try {
        resolveBeforeUpload(env, env.hosts, new MemoryReporter());
      } catch (e) {
        const m = (e as Error).message;
        expect(m).toContain('2 secrets are missing for env/test.ts');
        expect(m).toMatch(/SY_NOT_SET_DB: .*; used by app\.env "DB", Web\.config appSettings "Db"/);
        expect(m).toMatch(/SY_NOT_SET_KEY: .*; used by app\.env "KEY"/);
      }
    } finally {
      process.env = saved;
    }
  });
});
