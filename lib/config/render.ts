/**
 * Renders the config files of a build for one set of overrides (environment level merged with a
 * host's, see mergeOverrides), and shows what changed as a unified diff with secrets masked.
 */
import fs from 'node:fs';
import path from 'node:path';
import { lazy } from '../lazy';

const diff = lazy(() => require('diff') as typeof import('diff'));
import { Secret, type Masker, type ResolvedSecrets } from './secrets';
import { ConfigError, type ConfigProblem } from './errors';
import { applyJsonOverrides } from './json';
import { isJsonConfigFile, type ConfigOverrides, type FileOverrides, type JsonFileOverrides, type Value, type XmlFileOverrides } from './schema';
import { applyXmlOverrides } from './xml';

/** Rendered config files are readable by the owner and the group only: they may hold secrets. */
export const RENDERED_MODE = 0o640;

export interface RenderedFile {
  /** Relative to the build directory, '/'-separated. */
  path: string;
  /** The rendered file, to put in the release in place of the build's. */
  content: Buffer;
  mode: typeof RENDERED_MODE;
  /** The file as it is in the build (for `configDiff`). */
  base: Buffer;
}

export interface RenderOptions {
  buildDir: string;
  overrides: ConfigOverrides;
  /** The environment file the overrides come from (named in every error). */
  envFile: string;
  /** From resolveSecrets() (or placeholderSecrets() for a check without the real values). */
  secrets: ResolvedSecrets;
}

export interface RenderTextContext {
  envFile: string;
  secrets: ResolvedSecrets;
}

/**
 * Renders one config file from its text. XML or JSON is chosen by the file's extension. Throws a
 * ConfigError listing every problem.
 */
export function renderConfigText(configFile: string, text: string, overrides: FileOverrides, ctx: RenderTextContext): string {
  const secretValue = (s: Secret) => ctx.secrets.value(s);
  if (isJsonConfigFile(configFile)) {
    return applyJsonOverrides(text, overrides as JsonFileOverrides, { configFile, envFile: ctx.envFile, resolveSecret: secretValue });
  }
  return applyXmlOverrides(text, overrides as XmlFileOverrides, {
    configFile,
    envFile: ctx.envFile,
    resolve: (v: Value) => (v instanceof Secret ? secretValue(v) : String(v)),
  });
}

const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function renderBuffer(file: string, base: Buffer, overrides: FileOverrides, o: RenderOptions): RenderedFile {
  const fileProblem = (message: string) => new ConfigError([{ envFile: o.envFile, configFile: file, message }]);
  if ((base[0] === 0xff && base[1] === 0xfe) || (base[0] === 0xfe && base[1] === 0xff)) {
    throw fileProblem('is UTF-16; only UTF-8 config files are supported (convert the base file to UTF-8)');
  }
  let text: string;
  try {
    text = UTF8.decode(base); // a BOM stays in the text (as U+FEFF) and so in the output
  } catch {
    throw fileProblem('is not valid UTF-8; only UTF-8 config files are supported');
  }
  const rendered = renderConfigText(file, text, overrides, { envFile: o.envFile, secrets: o.secrets });
  return { path: file, content: Buffer.from(rendered, 'utf8'), mode: RENDERED_MODE, base };
}

/** Where a config file is in the build, or a problem (outside the build, missing, not a file). */
function locate(file: string, o: RenderOptions, buildReal: string | undefined): { abs: string } | { problem: string } {
  const abs = path.resolve(o.buildDir, file);
  if (buildReal === undefined) return { problem: `cannot be rendered: the build directory ${o.buildDir} does not exist (build first?)` };
  let real: string;
  try {
    real = fs.realpathSync(abs);
  } catch {
    return { problem: `is not in the build: ${abs} does not exist (the path is relative to the build directory ${o.buildDir})` };
  }
  if (real !== buildReal && !real.startsWith(buildReal + path.sep)) return { problem: `resolves to ${real}, outside the build directory` };
  if (!fs.statSync(real).isFile()) return { problem: `is not a file in the build (${abs})` };
  return { abs: real };
}

function realBuildDir(dir: string): string | undefined {
  try {
    return fs.realpathSync(dir);
  } catch {
    return undefined;
  }
}

function collect(o: RenderOptions, read: (abs: string) => Buffer): RenderedFile[] {
  const problems: ConfigProblem[] = [];
  const out: RenderedFile[] = [];
  const buildReal = realBuildDir(o.buildDir);
  for (const [file, overrides] of Object.entries(o.overrides)) {
    const where = locate(file, o, buildReal);
    if ('problem' in where) {
      problems.push({ envFile: o.envFile, configFile: file, message: where.problem });
      continue;
    }
    try {
      out.push(renderBuffer(file, read(where.abs), overrides, o));
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      problems.push(...e.problems);
    }
  }
  if (problems.length) throw new ConfigError(problems);
  return out;
}

/**
 * Renders every config file named in the overrides. Reads from the build directory; writes
 * nothing. Throws ONE ConfigError listing every problem of every file.
 */
export async function renderConfigFiles(o: RenderOptions): Promise<RenderedFile[]> {
  // config files are small and few: the sync core keeps one code path for sync and async callers
  return renderConfigFilesSync(o);
}

/** The same as {@link renderConfigFiles}, synchronously. */
export function renderConfigFilesSync(o: RenderOptions): RenderedFile[] {
  return collect(o, (abs) => fs.readFileSync(abs));
}

/**
 * A unified diff of a config file against its base, secrets masked. Both texts are masked before
 * diffing, so a secret that spans lines is masked too. Trailing CRs are not shown. Returns '' when
 * nothing changed.
 */
export function configDiff(file: string, base: string, rendered: string, masker: Masker): string {
  if (base === rendered) return '';
  const patch = diff().createTwoFilesPatch(`a/${file}`, `b/${file}`, masker.mask(base), masker.mask(rendered), undefined, undefined, {
    context: 3,
    stripTrailingCr: true,
    headerOptions: { includeIndex: false, includeUnderline: false, includeFileHeaders: true },
  });
  return masker.mask(patch);
}
