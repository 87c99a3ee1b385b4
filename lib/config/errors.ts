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
