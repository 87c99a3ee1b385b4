// The release package: the build, rendered config and the remote scripts in ONE .tar.gz, built
// once and streamed to every host (far fewer round trips than copying files one by one).
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import type tar from 'tar-stream';
import { lazy } from '../lazy';

const tarStream = lazy(() => require('tar-stream') as typeof import('tar-stream'));
import { REMOTE_SCRIPTS_DIR } from '../remote/commands';
import { SwitchyardError } from '../errors';

export interface ExtraFile {
  /** Path inside the release, '/'-separated. */
  path: string;
  content: Buffer | string;
  mode?: number;
}

export interface Package {
  file: string;
  bytes: number;
  files: number;
  sha256: string;
  remove(): Promise<void>;
}

export interface PackageOptions {
  buildDir: string;
  /** Files that replace (or add to) what the build has, e.g. rendered config. */
  files?: ExtraFile[];
  scriptsDir?: string;
  /** Written as .switchyard/release.json. */
  meta: Record<string, unknown>;
}

function* walk(dir: string, rel = ''): Generator<{ rel: string; abs: string; stat: fs.Stats }> {
  const entries = fs.readdirSync(path.join(dir, rel), { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1));
  for (const e of entries) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    const abs = path.join(dir, r);
    const stat = fs.lstatSync(abs);
    yield { rel: r, abs, stat };
    if (stat.isDirectory()) yield* walk(dir, r);
  }
}

export async function buildPackage(o: PackageOptions): Promise<Package> {
  if (!fs.existsSync(o.buildDir) || !fs.statSync(o.buildDir).isDirectory()) {
    throw new SwitchyardError(`build.dir: ${o.buildDir} is not a directory (build first?)`);
  }
  const scriptsDir = o.scriptsDir ?? REMOTE_SCRIPTS_DIR;
  const replaced = new Map((o.files ?? []).map((f) => [f.path, f]));
  const pack = tarStream().pack();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'switchyard-pkg-'));
  const file = path.join(tmp, 'release.tar.gz');
  const hash = crypto.createHash('sha256');
  let bytes = 0;
  const done = pipeline(pack, zlib.createGzip({ level: 6 }), async function* (src) {
    for await (const chunk of src) {
      hash.update(chunk as Buffer);
      bytes += (chunk as Buffer).length;
      yield chunk;
    }
  }, fs.createWriteStream(file));
  const add = (header: Partial<tar.Header> & { name: string }, body: Buffer | string = '') =>
    new Promise<void>((resolve, reject) => pack.entry(header, body, (err) => (err ? reject(err) : resolve())));
  let files = 0;
  const mtime = new Date();
  for (const { rel, abs, stat } of walk(o.buildDir)) {
    if (rel === '.switchyard' || rel.startsWith('.switchyard/')) continue; // ours, added below
    if (replaced.has(rel)) continue;
    if (stat.isDirectory()) await add({ name: rel, type: 'directory', mode: stat.mode & 0o7777, mtime: stat.mtime });
    else if (stat.isSymbolicLink()) await add({ name: rel, type: 'symlink', linkname: fs.readlinkSync(abs), mtime: stat.mtime });
    else if (stat.isFile()) {
      await add({ name: rel, type: 'file', mode: stat.mode & 0o7777, mtime: stat.mtime }, fs.readFileSync(abs));
      files++;
    }
  }
  for (const f of replaced.values()) {
    await add({ name: f.path, type: 'file', mode: f.mode ?? 0o640, mtime }, f.content);
    files++;
  }
  await add({ name: '.switchyard', type: 'directory', mode: 0o755, mtime });
  await add({ name: '.switchyard/bin', type: 'directory', mode: 0o755, mtime });
  for (const s of fs.readdirSync(scriptsDir).filter((n) => n.endsWith('.sh')).sort()) {
    await add({ name: `.switchyard/bin/${s}`, type: 'file', mode: 0o755, mtime }, fs.readFileSync(path.join(scriptsDir, s)));
    files++;
  }
  await add({ name: '.switchyard/release.json', type: 'file', mode: 0o644, mtime }, JSON.stringify(o.meta, null, 2) + '\n');
  files++;
  pack.finalize();
  await done;
  return {
    file,
    bytes,
    files,
    sha256: hash.digest('hex'),
    remove: () => fs.promises.rm(tmp, { recursive: true, force: true }),
  };
}
