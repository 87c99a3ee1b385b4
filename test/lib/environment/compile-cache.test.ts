// The compile cache of environment files: a hit only while every file of the bundle is as it was.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { cachedCompile } from '../../../lib/environment/compile-cache';
import { loadEnvironment } from '../../../lib/environment/load';

let root: string;
beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'sy-envcache-'));
  fs.mkdirSync(path.join(root, 'env'));
  fs.mkdirSync(path.join(root, 'node_modules'));
  fs.writeFileSync(path.join(root, 'env', 'hosts.ts'), `export const hosts = [{ name: 'web1', address: '10.0.0.1', roles: ['web', 'app'] }];\n`);
  fs.writeFileSync(
    path.join(root, 'env', 'uat.ts'),
    `import { defineEnvironment } from 'gulp-switchyard';\nimport { hosts } from './hosts';\n` +
      `export default defineEnvironment({ site: 'uat.test', build: { dir: '.' }, app: { start: ['node', 's.js', '--socket', '{socket}'] }, hosts, deployTo: '/srv/uat', socketDir: '/run/uat' });\n`,
  );
});
afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

const cacheFiles = () => {
  const dir = path.join(root, 'node_modules', '.cache', 'switchyard', 'env');
  return fs.existsSync(dir) ? fs.readdirSync(dir).map((f) => path.join(dir, f)) : [];
};

describe('environment compile cache', () => {
  it('compiles once; the next load takes the kept bundle (no compile); the file is the user\'s alone', () => {
    const file = path.join(root, 'env', 'uat.ts');
    const compile = vi.fn(() => ({ code: 'module.exports = 1', inputs: [file] }));
    expect(cachedCompile(file, root, compile)).toBe('module.exports = 1');
    expect(cachedCompile(file, root, compile)).toBe('module.exports = 1');
    expect(compile).toHaveBeenCalledTimes(1);
    expect(cacheFiles()).toHaveLength(1);
    expect(fs.statSync(cacheFiles()[0]!).mode & 0o777).toBe(0o600);
  });

  it('a change to an imported file (not the environment file) compiles again: the new hosts are seen', () => {
    expect(loadEnvironment({ name: 'uat', root }).hosts.map((h) => h.name)).toEqual(['web1']);
    fs.writeFileSync(path.join(root, 'env', 'hosts.ts'), `export const hosts = [{ name: 'web1', address: '10.0.0.1', roles: ['web', 'app'] }, { name: 'web2', address: '10.0.0.2', roles: ['web', 'app'] }];\n`);
    expect(loadEnvironment({ name: 'uat', root }).hosts.map((h) => h.name)).toEqual(['web1', 'web2']);
    expect(loadEnvironment({ name: 'uat', root }).hosts.map((h) => h.name)).toEqual(['web1', 'web2']);
  });

  it('a malformed cache file is compiled over, not an error', () => {
    expect(loadEnvironment({ name: 'uat', root }).site).toBe('uat.test');
    for (const f of cacheFiles()) fs.writeFileSync(f, '{ not json');
    expect(loadEnvironment({ name: 'uat', root }).site).toBe('uat.test');
    expect(JSON.parse(fs.readFileSync(cacheFiles()[0]!, 'utf8')).format).toMatch(/^switchyard-env\//);
  });

  it('without a node_modules of its own the project gets no cache (nothing written)', () => {
    fs.rmSync(path.join(root, 'node_modules'), { recursive: true });
    expect(loadEnvironment({ name: 'uat', root }).site).toBe('uat.test');
    expect(fs.existsSync(path.join(root, 'node_modules'))).toBe(false);
  });
});
