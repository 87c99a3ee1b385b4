// The release package: the build, rendered config and the remote scripts, sent to each host in ONE
// stream on its one exec. A host that has the live release says which of its files are unchanged
// (`::sy have`); those are hard-linked there and only the rest travels (docs/REMOTE-PROTOCOL.md,
// "Upload"). Uploads are built once per distinct set of links: identical hosts share one file.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import type tar from 'tar-stream';
import { lazy } from '../lazy';
import { REMOTE_SCRIPTS_DIR } from '../remote/commands';
import { SwitchyardError } from '../errors';
import { hostMode, linkable, type HaveEntry, type Upload } from '../remote/protocol';

export type { HaveEntry, Upload };

const tarStream = lazy(() => require('tar-stream') as typeof import('tar-stream'));

export interface ExtraFile {
  /** Path inside the release, '/'-separated. */
  path: string;
  content: Buffer | string;
  mode?: number;
}

export interface PackageOptions {
  buildDir: string;
  /** The environment file that names build.dir: its errors say where to fix it. */
  envFile?: string;
  /** Files that replace (or add to) what the build has, e.g. rendered config. */
  files?: ExtraFile[];
  scriptsDir?: string;
  /** Written as .switchyard/release.json. */
  meta: Record<string, unknown>;
}

interface Entry {
  rel: string;
  type: 'file' | 'directory' | 'symlink';
  mode: number;
  mtime: Date;
  size: number;
  abs?: string;
  content?: Buffer;
  linkname?: string;
}

export interface Package {
  /** Files in the release, and their bytes before compression. */
  files: number;
  buildBytes: number;
  /** The upload for a host that offered these files (none: everything). */
  uploadFor(have: ReadonlyMap<string, HaveEntry>): Promise<Upload>;
  /**
   * Begin what uploadFor will need once a host has said what it has (the checksums, the tar
   * writer), while the host starts its script and lists its files: it was ~15 ms of every deploy's
   * wait. Once is enough; uploadFor without it does the same, later.
   */
  warm?(): void;
  remove(): Promise<void>;
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

/** Every member of the release, in tar order: the build (minus what is replaced), the extras, ours. */
function entriesOf(o: PackageOptions): Entry[] {
  if (!fs.existsSync(o.buildDir) || !fs.statSync(o.buildDir).isDirectory()) {
    throw new SwitchyardError(`${o.envFile ? `${o.envFile}: ` : ''}build.dir: ${o.buildDir} is not a directory (build first?)`);
  }
  const replaced = new Map((o.files ?? []).map((f) => [f.path, f]));
  const out: Entry[] = [];
  for (const { rel, abs, stat } of walk(o.buildDir)) {
    if (rel === '.switchyard' || rel.startsWith('.switchyard/') || replaced.has(rel)) continue; // ours, added below
    const base = { rel, mode: stat.mode & 0o7777, mtime: stat.mtime, size: 0 };
    if (stat.isDirectory()) out.push({ ...base, type: 'directory' });
    else if (stat.isSymbolicLink()) out.push({ ...base, type: 'symlink', linkname: fs.readlinkSync(abs) });
    else if (stat.isFile()) out.push({ ...base, type: 'file', size: stat.size, abs: readable(abs) });
  }
  const now = new Date();
  const content = (rel: string, c: Buffer | string, mode: number): Entry => {
    const b = Buffer.from(c);
    return { rel, type: 'file', mode, mtime: now, size: b.length, content: b };
  };
  for (const f of replaced.values()) out.push(content(f.path, f.content, f.mode ?? 0o640));
  out.push({ rel: '.switchyard', type: 'directory', mode: 0o755, mtime: now, size: 0 });
  out.push({ rel: '.switchyard/bin', type: 'directory', mode: 0o755, mtime: now, size: 0 });
  const scriptsDir = o.scriptsDir ?? REMOTE_SCRIPTS_DIR;
  for (const s of fs.readdirSync(scriptsDir).filter((n) => n.endsWith('.sh')).sort()) {
    out.push(content(`.switchyard/bin/${s}`, fs.readFileSync(path.join(scriptsDir, s)), 0o755));
  }
  out.push(content('.switchyard/release.json', JSON.stringify(o.meta, null, 2) + '\n', 0o644));
  return out;
}

/** Below this a file is read in one go: a stream per small file costs ~0.35 ms (10,000 files: 3.5 s). */
const SMALL_FILE = 4 * 1024 * 1024;

/** A file's bytes, or undefined when it is big enough to stream. */
function smallBody(e: Entry): Buffer | undefined {
  return e.content ?? (e.size < SMALL_FILE ? fs.readFileSync(e.abs!) : undefined);
}

/** The file, once it is known to be readable: a file the deploy cannot read stops it before any host is touched. */
function readable(abs: string): string {
  try {
    fs.accessSync(abs, fs.constants.R_OK);
  } catch (e) {
    throw new SwitchyardError(`build.dir: cannot read ${abs}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  return abs;
}

async function sha256Of(e: Entry): Promise<string> {
  const hash = crypto.createHash('sha256');
  const body = smallBody(e);
  if (body) return hash.update(body).digest('hex');
  await pipeline(fs.createReadStream(e.abs!), hash);
  return hash.digest('hex');
}

/**
 * gzip level 1 (level 6 costs 3x the CPU for text and a ~1.5x smaller package: on the links a
 * deploy uses, time matters more), or 0, storing, when a 1 MiB sample of the files does not
 * compress (images, archives, random data: deflate would burn ~20 ns a byte for nothing).
 */
function gzipLevel(entries: readonly Entry[]): number {
  const sample: Buffer[] = [];
  let n = 0;
  for (const e of entries) {
    if (e.type !== 'file' || n >= 1 << 20) continue;
    const body = e.content ?? readHead(e.abs!, (1 << 20) - n);
    sample.push(body);
    n += body.length;
  }
  if (n < 64 * 1024) return 1;
  return zlib.gzipSync(Buffer.concat(sample), { level: 1 }).length > 0.95 * n ? 0 : 1;
}

function readHead(file: string, max: number): Buffer {
  const fd = fs.openSync(file, 'r');
  try {
    const b = Buffer.alloc(max);
    return b.subarray(0, fs.readSync(fd, b, 0, max, 0));
  } finally {
    fs.closeSync(fd);
  }
}

/** tar-stream's small pushes gathered into 1 MiB writes: one zlib job each, not one per 512 bytes. */
async function* rechunk(src: AsyncIterable<unknown>): AsyncGenerator<Buffer> {
  let parts: Buffer[] = [];
  let n = 0;
  for await (const c of src) {
    parts.push(c as Buffer);
    n += (c as Buffer).length;
    if (n >= 1 << 20) {
      yield Buffer.concat(parts);
      parts = [];
      n = 0;
    }
  }
  if (n) yield Buffer.concat(parts);
}

/**
 * Below this many bytes of tar an upload goes plain, not gzipped: a deploy that changed little
 * sends a few KiB more, and each host starts no gzip, neither to check the package nor to unpack it
 * (GNU tar tells a plain tar from a .tar.gz by its first bytes).
 */
export const PLAIN_TAR_MAX = 16 * 1024;

/** The tar's size: a 512-byte header a member, the bodies in 512-byte blocks, two zero blocks. */
function tarSize(entries: readonly Entry[]): number {
  return entries.reduce((n, e) => n + 512 + (e.type === 'file' ? Math.ceil(e.size / 512) * 512 : 0), 1024);
}

/** Writes the entries as a tar (small: PLAIN_TAR_MAX) or a .tar.gz; its size in bytes. */
async function writeTar(entries: readonly Entry[], file: string): Promise<number> {
  const pack = tarStream().pack();
  let bytes = 0;
  const compress = tarSize(entries) > PLAIN_TAR_MAX ? zlib.createGzip({ level: gzipLevel(entries), chunkSize: 1 << 20 }) : new PassThrough();
  const done = pipeline(
    pack,
    rechunk,
    compress,
    async function* (src) {
      for await (const chunk of src) {
        bytes += (chunk as Buffer).length;
        yield chunk;
      }
    },
    fs.createWriteStream(file, { mode: 0o600 }),
  );
  const add = (header: Partial<tar.Header> & { name: string }, body: Buffer | string = '') =>
    new Promise<void>((resolve, reject) => pack.entry(header, body, (err) => (err ? reject(err) : resolve())));
  for (const e of entries) {
    const h = { name: e.rel, mode: e.mode, mtime: e.mtime };
    if (e.type === 'directory') await add({ ...h, type: 'directory' });
    else if (e.type === 'symlink') await add({ ...h, type: 'symlink', linkname: e.linkname! });
    else await add({ ...h, type: 'file' }, smallBody(e) ?? (await fs.promises.readFile(e.abs!)));
  }
  pack.finalize();
  await done;
  return bytes;
}

class ReleasePackage implements Package {
  readonly files: number;
  readonly buildBytes: number;
  private readonly tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'switchyard-pkg-'));
  /** Uploads by their list of links; the checksums, once a host offers something. */
  private readonly uploads = new Map<string, Promise<Upload>>();
  private sums: Promise<Map<string, string>> | undefined;
  private warming = false;

  constructor(private readonly entries: Entry[]) {
    const files = entries.filter((e) => e.type === 'file');
    this.files = files.length;
    this.buildBytes = files.reduce((n, e) => n + e.size, 0);
  }

  async uploadFor(have: ReadonlyMap<string, HaveEntry>): Promise<Upload> {
    const links = have.size ? await this.linksFor(have) : [];
    const key = crypto.createHash('sha256').update(links.join('\n')).digest('hex');
    let u = this.uploads.get(key);
    if (!u) {
      u = this.build(links, path.join(this.tmp, `upload-${this.uploads.size}.tar`));
      this.uploads.set(key, u);
    }
    return u;
  }

  warm(): void {
    if (this.warming) return;
    this.warming = true;
    // next turn: the other hosts' connections are asked for first (hashing a large build holds the loop)
    setImmediate(() => {
      if (this.sums) return;
      this.sums = this.checksums();
      this.sums.catch(() => undefined); // the error is linksFor's, when it awaits this promise
      tarStream();
    });
  }

  remove(): Promise<void> {
    return fs.promises.rm(this.tmp, { recursive: true, force: true });
  }

  /** The files the host has as they are here: same path, checksum and mode. */
  private async linksFor(have: ReadonlyMap<string, HaveEntry>): Promise<string[]> {
    const sums = await (this.sums ??= this.checksums());
    return this.entries
      .filter((e) => {
        const h = e.type === 'file' ? have.get(e.rel) : undefined;
        return h !== undefined && h.sha256 === sums.get(e.rel) && h.mode === hostMode(e.mode);
      })
      .map((e) => e.rel);
  }

  private async checksums(): Promise<Map<string, string>> {
    const files = this.entries.filter((e) => e.type === 'file' && linkable(e.rel));
    const sums = new Map<string, string>();
    for (const e of files) sums.set(e.rel, await sha256Of(e));
    return sums;
  }

  private async build(links: string[], file: string): Promise<Upload> {
    const linked = new Set(links);
    const rest = this.entries.filter((e) => !linked.has(e.rel));
    const bytes = await writeTar(rest, file);
    return { links, file, bytes, files: rest.filter((e) => e.type === 'file').length };
  }
}

/** Reads the build (not its contents yet): uploads are made when a host says what it has. */
export async function buildPackage(o: PackageOptions): Promise<Package> {
  return new ReleasePackage(entriesOf(o));
}
