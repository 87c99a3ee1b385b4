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

/** The problems of one config file of one environment, and the function that adds one. */
export function problemList(ctx: { envFile: string; configFile: string }): {
  problems: ConfigProblem[];
  report: (where: string | undefined, message: string) => void;
} {
  const problems: ConfigProblem[] = [];
  const report = (where: string | undefined, message: string) =>
    problems.push({ envFile: ctx.envFile, configFile: ctx.configFile, ...(where !== undefined ? { where } : {}), message });
  return { problems, report };
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
