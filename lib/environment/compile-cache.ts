// Compiled environment files, kept in <root>/node_modules/.cache/switchyard/env/: esbuild costs
// ~60 ms a run (loading it, its service, the build), a hit a read and a sha256 of each file the
// bundle was made from (the environment file and what it imports). Only in a node_modules that
// is the user's own; anything unreadable, stale or malformed there is compiled again.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

/** What a bundle was made from changes the key: bump when the esbuild options change. */
const FORMAT = 'switchyard-env/2 cjs node20 bundle packages=external meta-of-entry';

export interface Compiled {
  code: string;
  /** Absolute paths of every file the bundle holds. */
  inputs: string[];
}

interface Entry {
  format: string;
  file: string;
  inputs: { path: string; sha256: string }[];
  code: string;
}

const sha256 = (file: string) => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');

/** The cache directory, when root has a node_modules of this user's; else none. */
function cacheDir(root: string): string | undefined {
  const nm = path.join(root, 'node_modules');
  try {
    const st = fs.statSync(nm);
    if (!st.isDirectory() || (process.getuid && st.uid !== process.getuid())) return undefined;
  } catch {
    return undefined;
  }
  return path.join(nm, '.cache', 'switchyard', 'env');
}

function read(entryFile: string, file: string): string | undefined {
  try {
    const e = JSON.parse(fs.readFileSync(entryFile, 'utf8')) as Entry;
    if (e.format !== FORMAT || e.file !== file || typeof e.code !== 'string' || !Array.isArray(e.inputs)) return undefined;
    return e.inputs.every((i) => sha256(i.path) === i.sha256) ? e.code : undefined;
  } catch {
    return undefined; // none yet, an input gone, or not ours to read: compile
  }
}

function write(entryFile: string, file: string, c: Compiled): void {
  try {
    fs.mkdirSync(path.dirname(entryFile), { recursive: true, mode: 0o700 });
    const entry: Entry = { format: FORMAT, file, inputs: c.inputs.map((p) => ({ path: p, sha256: sha256(p) })), code: c.code };
    const tmp = `${entryFile}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(entry), { mode: 0o600 });
    fs.renameSync(tmp, entryFile);
  } catch {
    // a cache that cannot be written (read-only node_modules) only costs the next run the compile
  }
}

/** The bundled code of file: from the cache when every input is as it was, else compiled (and kept). */
export function cachedCompile(file: string, root: string, compile: () => Compiled): string {
  const dir = cacheDir(root);
  if (!dir) return compile().code;
  const entryFile = path.join(dir, `${crypto.createHash('sha256').update(file).digest('hex').slice(0, 32)}.json`);
  const hit = read(entryFile, file);
  if (hit !== undefined) return hit;
  const c = compile();
  write(entryFile, file, c);
  return c.code;
}
