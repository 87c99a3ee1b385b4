// Finding and evaluating an environment file (env/<name>.ts, or another repository's --env-dir).
import fs from 'node:fs';
import path from 'node:path';
import vm from 'node:vm';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { lazy } from '../lazy';
import { SwitchyardError } from '../errors';
import { nearest } from '../nearest';
import { secret, Secret } from '../config/secrets';
import { defineEnvironment, validateEnvironment, type Environment } from './schema';
import { cachedCompile, type Compiled } from './compile-cache';
import { envNameProblem, envStem, EXTENSIONS } from './names';

const esbuild = lazy(() => require('esbuild') as typeof import('esbuild'));

/** What `import … from 'switchyard'` (or 'gulp-switchyard') gives an environment file, wherever that file lives. */
const envFileApi = { defineEnvironment, secret, Secret };

export interface LoadOptions {
  /** The environment's name: env/<name>.ts. */
  name: string;
  /** Directory of environment files; default $SWITCHYARD_ENV_DIR, then <root>/env. */
  envDir?: string;
  /** Project root (where the gulpfile is); default process.cwd(). */
  root?: string;
}

export function envDirOf(o: { envDir?: string; root?: string }): string {
  const root = o.root ?? process.cwd();
  return path.resolve(root, o.envDir ?? process.env.SWITCHYARD_ENV_DIR ?? 'env');
}

/** The environment names available in a directory (files ending in .example.* are samples, not environments). */
export function listEnvironments(dir: string): string[] {
  if (!fs.existsSync(dir)) throw new SwitchyardError(`environment directory ${dir} does not exist`);
  return fs
    .readdirSync(dir)
    .filter((f) => EXTENSIONS.includes(path.extname(f)) && !/\.example\.[a-z]+$/.test(f) && !f.endsWith('.d.ts'))
    .map((f) => f.slice(0, -path.extname(f).length))
    .sort();
}

export function findEnvironmentFile(o: LoadOptions): string {
  const problem = envNameProblem(o.name);
  if (problem) throw new SwitchyardError(problem);
  const dir = envDirOf(o);
  for (const ext of EXTENSIONS) {
    const f = path.join(dir, o.name + ext);
    if (fs.existsSync(f)) return f;
  }
  let known: string[] = [];
  try {
    known = listEnvironments(dir);
  } catch {
    /* the directory itself is missing: said below */
  }
  // a file's name where the environment's goes (`--env=uat.mjs`): the one it names
  const stem = envStem(o.name);
  const guess = stem !== o.name && known.includes(stem) ? stem : nearest(o.name, known);
  throw new SwitchyardError(
    `environment "${o.name}": no file ${path.join(dir, o.name)}.{${EXTENSIONS.map((e) => e.slice(1)).join(',')}}${fs.existsSync(dir) ? ` (environments there: ${known.join(', ') || 'none'})` : ` (directory ${dir} does not exist)`}${guess ? `; did you mean --env=${guess}?` : ''}`,
  );
}

/**
 * Evaluates an environment file. It may live in another repository (--env-dir) without switchyard
 * installed there, so it is bundled with esbuild and `import 'gulp-switchyard'` (or 'switchyard') is answered from here.
 */
/**
 * The file bundled (it and what it imports from its own directory tree) as CommonJS. CommonJS has
 * no import.meta (esbuild warns and leaves it empty), so where the file uses it, it is built again
 * with the file's own url, dirname and filename written in; a file it imports would get those same
 * values, not its own, so one that uses import.meta is refused.
 */
function compile(file: string): Compiled {
  const build = (define?: Record<string, string>) =>
    esbuild().buildSync({
      entryPoints: [file],
      bundle: true,
      write: false,
      metafile: true,
      format: 'cjs',
      platform: 'node',
      target: 'node20',
      packages: 'external',
      logLevel: 'silent',
      ...(define ? { define } : {}),
    });
  try {
    let out = build();
    const meta = out.warnings.filter((w) => w.location && w.text.includes('"import.meta"'));
    const other = meta.find((w) => path.resolve(w.location!.file) !== file);
    if (other) {
      const at = `${path.resolve(other.location!.file)}:${other.location!.line}:${other.location!.column}`;
      throw new SwitchyardError(`${at}: uses import.meta, which only the environment file itself (${file}) may: it is bundled into one file; pass such paths from there`);
    }
    if (meta.length) {
      out = build({
        'import.meta.url': JSON.stringify(pathToFileURL(file).href),
        'import.meta.dirname': JSON.stringify(path.dirname(file)),
        'import.meta.filename': JSON.stringify(file),
      });
    }
    const inputs = Object.keys(out.metafile.inputs).map((p) => path.resolve(p));
    return { code: out.outputFiles[0]!.text, inputs };
  } catch (e) {
    if (e instanceof SwitchyardError) throw e;
    const errors = (e as { errors?: { text: string; location?: { file: string; line: number; column: number } }[] }).errors ?? [];
    const detail = errors.map((x) => (x.location ? `${x.location.file}:${x.location.line}:${x.location.column}: ${x.text}` : x.text)).join('\n  ');
    throw new SwitchyardError(`${file}: cannot be compiled\n  ${detail || String(e)}`);
  }
}

function evaluateFile(file: string, root: string): unknown {
  if (file.endsWith('.json')) return JSON.parse(fs.readFileSync(file, 'utf8'));
  const code = cachedCompile(file, root, () => compile(file));
  const fileRequire = createRequire(file);
  const req = (id: string): unknown => (id === 'gulp-switchyard' || id === 'switchyard' ? envFileApi : fileRequire(id));
  const mod: { exports: Record<string, unknown> } = { exports: {} };
  const fn = vm.compileFunction(code, ['exports', 'require', 'module', '__filename', '__dirname'], { filename: file });
  try {
    fn(mod.exports, req, mod, file, path.dirname(file));
  } catch (e) {
    throw new SwitchyardError(`${file}: failed while loading: ${(e as Error).message}`);
  }
  const value = mod.exports.default ?? mod.exports.environment;
  if (value === undefined) throw new SwitchyardError(`${file}: has no default export (export default defineEnvironment({…}))`);
  return value;
}

export function loadEnvironment(o: LoadOptions): Environment {
  const file = findEnvironmentFile(o);
  const root = path.resolve(o.root ?? process.cwd());
  return validateEnvironment(evaluateFile(file, root), { name: o.name, file: displayPath(file, root), root });
}

/** Paths inside the project are shown relative, so messages are the same on every machine. */
export function displayPath(file: string, root: string): string {
  const rel = path.relative(root, file);
  return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : file;
}
