// What `--env` takes: an environment's name, not a file. Small on purpose: the command line is
// checked with it before anything else is loaded.
import path from 'node:path';

export const EXTENSIONS = ['.ts', '.mts', '.cts', '.js', '.mjs', '.cjs', '.json'];

/** An environment's name as `--env` takes it: env/<name>.ts (or .js, .mjs, …). */
export const ENV_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/**
 * What is wrong with `--env=value`, or undefined: a path or a file name where the name goes
 * (`--env=env/uat.ts`, `--env=uat.mjs`) says which name it would be.
 */
export function envNameProblem(value: string): string | undefined {
  const ext = EXTENSIONS.find((e) => value.endsWith(e));
  const stem = path.basename(value, ext ?? '');
  const hint = stem !== value && ENV_NAME.test(stem) ? `; did you mean --env=${stem}?` : '';
  if (!ENV_NAME.test(value)) return `--env: "${value}" is not an environment's name (--env=<name> loads env/<name>.ts, .js, .mjs, …)${hint}`;
  if (ext) return `--env: "${value}" is a file's name; --env takes the environment's (env/<name>.ts, .js, .mjs, …)${hint}`;
  return undefined;
}
