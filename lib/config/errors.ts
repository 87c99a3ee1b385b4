import { SwitchyardError } from '../errors';

/**
 * One thing wrong with the configuration of one environment. `where` names the override
 * (e.g. `appSettings "ApiUrl"`, `xpath "/configuration/…"`, `json "db.host"`), or is absent for
 * problems with the file as a whole (missing, malformed).
 */
export interface ConfigProblem {
  envFile: string;
  configFile: string;
  where?: string;
  message: string;
}

/**
 * Something wrong with one override (or with the file) found while rendering it. The renderer
 * catches it and reports it as a {@link ConfigProblem}; any other exception is a bug and propagates.
 */
export class RenderProblem extends Error {}

/** The problems of one config file of one environment, and the functions that add to them. */
export interface ProblemList {
  problems: ConfigProblem[];
  report: (where: string | undefined, message: string) => void;
  /** Runs `fn`; a {@link RenderProblem} it throws is reported under `where`, so the next override still runs. */
  attempt: (where: string | undefined, fn: () => void) => void;
  /** Stops rendering (throws a {@link ConfigError}) if anything has been reported. */
  throwIfAny: () => void;
}

export function problemList(ctx: { envFile: string; configFile: string }): ProblemList {
  const problems: ConfigProblem[] = [];
  const report = (where: string | undefined, message: string) =>
    problems.push({ envFile: ctx.envFile, configFile: ctx.configFile, ...(where !== undefined ? { where } : {}), message });
  const attempt = (where: string | undefined, fn: () => void) => {
    try {
      fn();
    } catch (e) {
      if (!(e instanceof RenderProblem)) throw e;
      report(where, e.message);
    }
  };
  const throwIfAny = () => {
    if (problems.length) throw new ConfigError(problems);
  };
  return { problems, report, attempt, throwIfAny };
}

/** A text's byte order mark (kept as it was on output) and the rest. */
export function splitBom(text: string): { bom: string; body: string } {
  const bom = text.startsWith('\uFEFF') ? '\uFEFF' : '';
  return { bom, body: bom ? text.slice(1) : text };
}

export function formatProblem(p: ConfigProblem): string {
  return `${p.envFile}: ${p.configFile}${p.where ? `: ${p.where}` : ''}: ${p.message}`;
}

/**
 * Rendering failed. Carries every problem found (not only the first), so that `config-check`
 * can report a broken environment file in one go. The message lists them one per line, each
 * naming the environment file, the config file and the override.
 */
export class ConfigError extends SwitchyardError {
  override name = 'ConfigError';
  readonly problems: readonly ConfigProblem[];
  constructor(problems: readonly ConfigProblem[]) {
    const lines = problems.map(formatProblem);
    super(lines.length === 1 ? lines[0]! : `${lines.length} config problems:\n  ${lines.join('\n  ')}`);
    this.problems = problems;
  }
}
