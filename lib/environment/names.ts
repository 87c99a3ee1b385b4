// What `--env` takes: an environment's name, not a file. Small on purpose: the command line is
// checked with it before anything else is loaded.
import path from 'node:path';

export const EXTENSIONS = ['.ts', '.mts', '.cts', '.js', '.mjs', '.cjs', '.json'];

/** An environment's name as `--env` takes it: env/<name>.ts (or .js, .mjs, …). */
export const ENV_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** value without its known extensions (`uat.ts.mjs` → `uat`): the environment a file's name means. */
export function envStem(value: string): string {
  let stem = path.basename(value);
  for (;;) {
    const ext = EXTENSIONS.find((e) => stem.endsWith(e) && stem.length > e.length);
    if (!ext) return stem;
    stem = stem.slice(0, -ext.length);
  }
}

/**
 * What is wrong with `--env=value`, or undefined: a path where the name goes (`--env=env/uat.ts`)
 * says which name it would be. A name like a file's (`uat.mjs`) is one here: env/uat.mjs.ts may be
 * there, and when it is not the loader says which one is meant.
 */
export function envNameProblem(value: string): string | undefined {
  if (ENV_NAME.test(value)) return undefined;
  const stem = envStem(value);
  const hint = stem !== value && ENV_NAME.test(stem) ? `; did you mean --env=${stem}?` : '';
  return `--env: "${value}" is not an environment's name (--env=<name> loads env/<name>.ts, .js, .mjs, …)${hint}`;
}
