// `gulp config`: what the config of an environment will be, as a diff against the build's files.
// `gulp config-check`: every environment of the env dir renders, without its secrets (for the CI
// of the repository that holds the environment files).
import path from 'node:path';
import { configDiff } from './render';
import { renderForHosts } from './deploy';
import { contextFor, releaseHosts, type TaskOptions } from '../context';
import { displayPath, envDirOf, findEnvironmentFile, listEnvironments, loadEnvironment, type Environment } from '../environment';
import { SwitchyardError } from '../errors';
import { GulpReporter } from '../output/reporter';

export interface ConfigTaskOptions extends TaskOptions {
  /** Where the diff goes; default stdout (no log prefixes, so it can be piped into a file). */
  print?: (text: string) => void;
}

export interface ConfigFileDiff {
  /** Relative to the build directory. */
  path: string;
  /** Unified diff against the build's file, secrets masked; '' when the rendering changes nothing. */
  diff: string;
}

export interface ConfigVariantDiff {
  /** 'default', or 'host:<name>' for hosts whose own overrides make their files differ. */
  variant: string;
  hosts: string[];
  files: ConfigFileDiff[];
}

const stdout = (t: string) => void process.stdout.write(t);

/**
 * Renders every config file of the environment for every variant (the selected hosts a deploy
 * releases to) with the real secrets, and prints a unified diff of each against the build's file.
 * Secrets are masked. Throws a MissingSecretsError listing every missing secret, or a ConfigError
 * listing every problem.
 */
export async function showConfig(o: ConfigTaskOptions): Promise<ConfigVariantDiff[]> {
  const ctx = contextFor(o);
  const { env, reporter } = ctx;
  const hosts = releaseHosts(ctx);
  const rendered = renderForHosts(env, hosts, reporter);
  const out: ConfigVariantDiff[] = [];
  for (const [variant, files] of rendered.variants) {
    out.push({
      variant,
      hosts: rendered.hostsOf(variant),
      files: files.map((f) => ({ path: f.path, diff: configDiff(f.path, f.base.toString('utf8'), f.content.toString('utf8'), rendered.masker) })),
    });
  }

  const lines: string[] = [];
  if (out.every((v) => v.files.length === 0)) {
    lines.push(`# ${env.file}: no config overrides for ${hosts.map((h) => h.name).join(', ')}`);
  } else {
    for (const v of out) {
      lines.push(`# ${v.hosts.length === 1 ? 'host' : 'hosts'} ${v.hosts.join(', ')} (variant ${v.variant}, ${env.name} from ${env.file})`);
      for (const f of v.files) lines.push(f.diff ? f.diff.replace(/\n$/, '') : `# ${f.path}: unchanged`);
    }
  }
  // configDiff has masked the values already; mask again in case a secret is also in a header (a file name)
  (o.print ?? stdout)(rendered.masker.mask(lines.join('\n')) + '\n');
  return out;
}

export interface ConfigCheckResult {
  /** The environment name (its file name without the extension). */
  name: string;
  /** The environment file, as named in messages. */
  file: string;
  ok: boolean;
  /** What is wrong, one problem a line, each naming the file and the key or expression. */
  error?: string;
  /** When ok: how many config files and variants were rendered. */
  files?: number;
  variants?: number;
}

/** Renders the config of one loaded environment for every host, with placeholder secrets. */
function checkOne(env: Environment): { files: number; variants: number } {
  // Every host, not only the app hosts: a broken host entry is an error wherever it is.
  const r = renderForHosts(env, env.hosts, undefined, { placeholderSecrets: true });
  const files = new Set([...r.variants.values()].flatMap((fs) => fs.map((f) => f.path)));
  return { files: files.size, variants: [...r.variants.values()].filter((f) => f.length).length };
}

/**
 * Loads and renders every environment of the env dir (or the one given as `environment`) with
 * placeholder secrets, so no secret is needed. Prints one OK line per good environment and throws
 * one error listing every problem of every broken one.
 */
export async function checkConfig(o: TaskOptions): Promise<ConfigCheckResult[]> {
  const reporter = o.reporter ?? new GulpReporter(o.verbose ?? false);
  const root = path.resolve(o.root ?? process.cwd());
  const results: ConfigCheckResult[] = [];
  const check = (name: string, file: string, load: () => Environment) => {
    try {
      const env = load();
      const { files, variants } = checkOne(env);
      results.push({ name, file: env.file, ok: true, files, variants });
      reporter.log('info', `OK ${name} (${env.file}): ${files ? `${files} config file${files === 1 ? '' : 's'} rendered${variants > 1 ? ` (${variants} host variants)` : ''}` : 'no config overrides'}`);
    } catch (e) {
      const error = e instanceof Error ? e.message : String(e);
      results.push({ name, file, ok: false, error });
      reporter.log('error', `FAILED ${name} (${file})`);
    }
  };

  if (o.environment) {
    const env = o.environment;
    check(env.name, env.file, () => env);
  } else {
    const dir = envDirOf(o);
    const names = listEnvironments(dir);
    if (!names.length) throw new SwitchyardError(`config-check: no environment files in ${dir}`);
    for (const name of names) {
      check(name, displayPath(findEnvironmentFile({ name, envDir: dir, root }), root), () => loadEnvironment({ name, envDir: dir, root }));
    }
  }

  const failed = results.filter((r) => !r.ok);
  if (failed.length) {
    const detail = failed.map((f) => `${f.name} (${f.file}):\n${f.error!.split('\n').map((l) => `  ${l}`).join('\n')}`);
    throw new SwitchyardError(`config-check: ${failed.length} of ${results.length} environment${results.length === 1 ? '' : 's'} failed\n${detail.join('\n')}`);
  }
  return results;
}
