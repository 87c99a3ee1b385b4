// lib/code-cache.ts as the built command uses it: a child node loads the built module from dist/
// (npm test builds first), turns the cache on for a package laid out as an install would be
// (<tmp>/node_modules/pkg), then loads that package's modules and says what the cache did.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

const REPO = path.resolve(__dirname, '..', '..');
const BUILT = path.join(REPO, 'dist', 'lib', 'code-cache.js');
let tmp: string;
let pkg: string;
let cacheDir: string;

beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sy-codecache-'));
  pkg = path.join(tmp, 'node_modules', 'pkg');
  cacheDir = path.join(tmp, 'node_modules', '.cache', 'switchyard');
  fs.mkdirSync(path.join(pkg, 'lib'), { recursive: true });
  fs.writeFileSync(path.join(pkg, 'package.json'), '{"name":"pkg"}\n');
  // what a module may use of its wrapper: this, exports, module, require (resolve, paths, cache), the paths
  fs.writeFileSync(
    path.join(pkg, 'lib', 'a.js'),
    [
      "'use strict';",
      "const b = require('./b');",
      'module.exports = {',
      '  value: b.value,',
      '  thisIsExports: this === exports,',
      "  resolved: require.resolve('./b') === require.resolve('./b.js'),",
      "  paths: Array.isArray(require.resolve.paths('x')),",
      '  cached: Object.keys(require.cache).some((k) => k.endsWith(`${require("path").sep}b.js`)),',
      '  file: __filename === module.filename && __dirname === require("path").dirname(__filename),',
      "  dynamic: require('./c').dynamic,",
      '};',
      '',
    ].join('\n'),
  );
  fs.writeFileSync(path.join(pkg, 'lib', 'b.js'), "exports.value = 'one';\n");
  // import(): left to node (from cached data it would lose its callback), and it works
  fs.writeFileSync(path.join(pkg, 'lib', 'c.js'), "exports.dynamic = () => import('node:path').then((m) => typeof m.join);\n");
});
afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** A child node: the cache on for pkg, then pkg/lib/a.js loaded; its stats and a.js's view. */
function run(env: NodeJS.ProcessEnv = {}, umask?: number): { stats: { hits: number; misses: number; file?: string }; a: Record<string, unknown>; stderr: string } {
  const script = [
    umask === undefined ? '' : `process.umask(${umask});`,
    `const stats = require(${JSON.stringify(BUILT)}).enableCodeCache(${JSON.stringify(pkg)});`,
    `const a = require(${JSON.stringify(path.join(pkg, 'lib', 'a.js'))});`,
    'a.dynamic().then((d) => console.log(JSON.stringify({ stats, a: { ...a, dynamic: d } })));',
  ].join('\n');
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', env: { ...process.env, ...env } });
  expect(r.status, r.stderr).toBe(0);
  return { ...JSON.parse(r.stdout), stderr: r.stderr };
}

const cacheFile = () => path.join(cacheDir, `code-${process.version}-${process.arch}.bin`);
const native = typeof (require('node:module') as { enableCompileCache?: unknown }).enableCompileCache === 'function';

// node 22.1+ caches compiled code itself (module.enableCompileCache): the cache is then its, in the same place
if (native) {
  it('node 22.1+: its own compile cache, turned on in .cache/switchyard/v8', () => {
    const { stats, a } = run();
    expect(stats).toMatchObject({ native: true, file: path.join(cacheDir, 'v8') });
    expect(a.value).toBe('one');
  });
}

describe.runIf(!native)('the code cache (node 20: by hand)', () => {
  it('the first run compiles and writes the cache (0700 directory, 0600 file, whatever the umask); the next runs from it', () => {
    const first = run({}, 0);
    expect(first.stats).toMatchObject({ hits: 0, misses: 2, file: cacheFile() });
    expect(fs.statSync(cacheDir).mode & 0o777).toBe(0o700);
    expect(fs.statSync(cacheFile()).mode & 0o777).toBe(0o600);
    const second = run();
    expect(second.stats).toMatchObject({ hits: 2, misses: 0 });
    expect(second.a).toEqual(first.a);
  });

  it('a module runs in it as node runs it: this, require and its resolve, paths and cache, __filename, __dirname; import() in one node compiles', () => {
    run();
    const { a, stats } = run();
    expect(stats.hits).toBe(2);
    expect(a).toEqual({ value: 'one', thisIsExports: true, resolved: true, paths: true, cached: true, file: true, dynamic: 'function' });
  });

  it('a source changed to one of the same length is compiled again, never run from the old bytecode', () => {
    run();
    fs.writeFileSync(path.join(pkg, 'lib', 'b.js'), "exports.value = 'two';\n");
    const { a, stats } = run();
    expect(a.value).toBe('two');
    expect(stats).toMatchObject({ hits: 1, misses: 1 });
    expect(run().stats).toMatchObject({ hits: 2, misses: 0 });
  });

  it('a cache file that is not one (truncated, garbage) is compiled over, and the run goes on', () => {
    run();
    fs.writeFileSync(cacheFile(), 'not a cache');
    expect(run().stats).toMatchObject({ hits: 0, misses: 2 });
    expect(run().stats).toMatchObject({ hits: 2, misses: 0 });
  });

  it('SWITCHYARD_CODE_CACHE=off: no cache, nothing written', () => {
    const { stats, a } = run({ SWITCHYARD_CODE_CACHE: 'off' });
    expect(stats).toEqual({ hits: 0, misses: 0 });
    expect(a.value).toBe('one');
    expect(fs.existsSync(cacheDir)).toBe(false);
  });

  it('a node_modules that is not there (the package outside one, without its own): none', () => {
    const bare = path.join(tmp, 'bare');
    fs.mkdirSync(bare);
    fs.cpSync(pkg, bare, { recursive: true });
    pkg = bare;
    expect(run().stats).toEqual({ hits: 0, misses: 0 });
  });
});
