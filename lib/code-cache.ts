// V8's code cache for the command's own start: node compiles the source of every module it loads
// on every run, some 35–40 ms of a deploy's start here (wrapSafe in a --cpu-prof); with the
// bytecode V8 made on an earlier run it skips most of that. Node 22.1+ does it itself
// (module.enableCompileCache); on Node 20 the same by hand: each CommonJS module through
// vm.Script with its cached data. The cache is one file per node version in the node_modules that
// holds switchyard (the user's own only: 0700 directory, 0600 file), read once, rewritten at exit
// when something was compiled anew. A module is looked up by the sha1 of its path and source:
// V8 itself checks little more than the source's length. Only the `switchyard` command turns it
// on (bin/switchyard.ts): a gulpfile's process is the user's, and so are its loader hooks.
// SWITCHYARD_CODE_CACHE=off: none.
import crypto from 'node:crypto';
import fs from 'node:fs';
import Module from 'node:module';
import path from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';

/** What of node's CommonJS loader this uses (internal, stable since node 12; not in @types/node). */
interface Loader {
  wrap(source: string): string;
  _resolveFilename(request: string, parent: NodeJS.Module, isMain: boolean, options?: { paths?: string[] }): string;
  _resolveLookupPaths(request: string, parent: NodeJS.Module): string[] | null;
  _extensions: NodeJS.RequireExtensions;
  _cache: NodeJS.Dict<NodeJS.Module>;
  prototype: { _compile(this: NodeJS.Module, content: string, filename: string): unknown };
}

/** Above this the cache starts over: versions come and go, and each leaves its modules. */
const MAX_BYTES = 32 * 1024 * 1024;

/** The directory of switchyard's package.json above DIR (dist/lib when built, lib in a checkout). */
export function packageRoot(dir = __dirname): string {
  for (let d = dir, i = 0; i < 3; i++, d = path.dirname(d)) if (fs.existsSync(path.join(d, 'package.json'))) return d;
  return path.dirname(dir);
}

/**
 * The cache directory: .cache/switchyard in the node_modules that holds the package (installed,
 * scoped or not) or in the package's own (a checkout), when that node_modules is this user's.
 */
export function codeCacheDir(root: string): string | undefined {
  const up = path.dirname(root);
  let nm = path.join(root, 'node_modules');
  if (path.basename(up) === 'node_modules') nm = up;
  else if (path.basename(up).startsWith('@') && path.basename(path.dirname(up)) === 'node_modules') nm = path.dirname(up);
  try {
    const st = fs.statSync(nm);
    if (!st.isDirectory() || (process.getuid && st.uid !== process.getuid())) return undefined;
  } catch {
    return undefined;
  }
  return path.join(nm, '.cache', 'switchyard');
}

/** The cached data by key, from FILE; empty when there is none, or it is not ours or not one. */
function load(file: string): Map<string, Buffer> {
  try {
    const st = fs.statSync(file);
    if (process.getuid && st.uid !== process.getuid()) return new Map();
    const m: unknown = v8.deserialize(fs.readFileSync(file));
    if (m instanceof Map && [...m.values()].every((b) => Buffer.isBuffer(b) || b instanceof Uint8Array)) return m as Map<string, Buffer>;
  } catch {
    /* none yet, or unreadable: compile */
  }
  return new Map();
}

function save(file: string, cache: Map<string, Buffer>): void {
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    const tmp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, v8.serialize(cache), { mode: 0o600 });
    fs.renameSync(tmp, file);
  } catch {
    // a cache that cannot be written (read-only node_modules) costs the next run the compile only
  }
}

/** `require` for a module, as node makes it (lib/internal/modules/helpers makeRequireFunction). */
function requireFor(loader: Loader, mod: NodeJS.Module): NodeJS.Require {
  const req = ((id: string) => mod.require(id)) as NodeJS.Require;
  const resolve = ((request: string, options?: { paths?: string[] }) => loader._resolveFilename(request, mod, false, options)) as NodeJS.RequireResolve;
  resolve.paths = (request: string) => loader._resolveLookupPaths(request, mod);
  req.resolve = resolve;
  req.main = require.main;
  req.extensions = loader._extensions;
  req.cache = loader._cache;
  return req;
}

export interface CodeCacheStats {
  /** Modules run from cached data. */
  hits: number;
  /** Modules compiled (no data, or V8 refused it). */
  misses: number;
  file?: string;
  native?: boolean;
}

/** Turns the cache on for this process (once); what it did so far, for tests and the bench. */
export function enableCodeCache(root = packageRoot()): CodeCacheStats {
  if (enabled) return enabled;
  enabled = { hits: 0, misses: 0 };
  const dir = process.env.SWITCHYARD_CODE_CACHE === 'off' ? undefined : codeCacheDir(root);
  if (!dir) return enabled;
  const native = (Module as unknown as { enableCompileCache?: (dir: string) => unknown }).enableCompileCache;
  if (native) {
    native(path.join(dir, 'v8'));
    return Object.assign(enabled, { native: true, file: path.join(dir, 'v8') });
  }
  const file = path.join(dir, `code-${process.version}-${process.arch}.bin`);
  const stats = enabled;
  stats.file = file;
  const cache = load(file);
  const fresh: [string, vm.Script][] = [];
  const loader = Module as unknown as Loader;
  const compile = loader.prototype._compile;
  loader.prototype._compile = function (this: NodeJS.Module, content: string, filename: string) {
    // node's own: a hashbang (valid only first, not in the wrapper), and import(), whose callback
    // a function V8 made from cached data has lost (node 20: ERR_VM_DYNAMIC_IMPORT_CALLBACK_MISSING)
    if (content.startsWith('#!') || content.includes('import(')) return compile.call(this, content, filename);
    const key = crypto.createHash('sha1').update(filename).update('\0').update(content).digest('base64');
    const cachedData = cache.get(key);
    let script: vm.Script;
    try {
      script = new vm.Script(loader.wrap(content), { filename, cachedData });
    } catch {
      return compile.call(this, content, filename); // node's own error for a module that does not parse
    }
    cache.delete(key); // its bytes are V8's now: not kept twice
    if (cachedData && !script.cachedDataRejected) stats.hits++;
    else {
      stats.misses++;
      fresh.push([key, script]);
    }
    const fn = script.runInThisContext({ displayErrors: true }) as (...a: unknown[]) => unknown;
    return fn.call(this.exports, this.exports, requireFor(loader, this), this, filename, path.dirname(filename));
  };
  process.once('exit', () => {
    if (!fresh.length) return;
    // the file again (what this run used is no longer in memory), with this run's new entries,
    // made at exit so that each holds the functions this run compiled lazily too
    const all = load(file);
    for (const [key, script] of fresh) all.set(key, script.createCachedData());
    let bytes = 0;
    for (const b of all.values()) bytes += b.length;
    save(file, bytes > MAX_BYTES ? new Map(fresh.map(([k]) => [k, all.get(k)!])) : all);
  });
  return stats;
}

let enabled: CodeCacheStats | undefined;
