/**
 * Config rendering for a deploy (and for `gulp config` / `gulp config-check`): merges the
 * environment-level overrides with each host's, resolves every secret of every host at once (one
 * error lists all missing ones, before anything is uploaded), and renders one set of files per
 * distinct result. Hosts whose files come out the same share a variant (and so a package).
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import type { Environment, HostConfig } from '../environment';
import type { Reporter } from '../output/reporter';
import { placeholderSecrets, resolveSecrets, type Masker, type ResolvedSecrets } from './secrets';
import { ConfigError, type ConfigProblem } from './errors';
import { renderConfigFilesSync, type RenderedFile } from './render';
import { mergeOverrides, type ConfigOverrides } from './schema';

export interface RenderedVariants {
  /** Variant key → the rendered files (each `{ path, content, mode: 0o640, base }`, usable as a package ExtraFile). */
  variants: Map<string, RenderedFile[]>;
  /** The variant key of a host. */
  variantOf(host: string): string;
  /** The hosts that get a variant. */
  hostsOf(variant: string): string[];
  /** The merged overrides of a host (environment level + host level). */
  overridesOf(host: string): ConfigOverrides;
  secrets: ResolvedSecrets;
  /** Masks every secret value (in every written form): use it on diffs and reports. */
  masker: Masker;
}

export interface RenderForHostsOptions {
  /**
   * Use stand-ins instead of the real secret values, so that an environment can be checked
   * (`config-check`) where the secrets are not available. Never deploy such a rendering.
   */
  placeholderSecrets?: boolean;
  /** Secrets resolution (defaults: process.env, SWITCHYARD_SECRETS_FILE). */
  env?: Readonly<Record<string, string | undefined>>;
  secretsFile?: string;
}

/**
 * Renders the config of `env` for `hosts`. Every secret value is registered with `reporter`
 * (`addSecret`) so no log line can show it. Throws a MissingSecretsError listing every missing
 * secret, or a ConfigError listing every problem of every host.
 */
export function renderForHosts(
  env: Environment,
  hosts: readonly HostConfig[],
  reporter?: Pick<Reporter, 'addSecret'>,
  o: RenderForHostsOptions = {},
): RenderedVariants {
  const buildDir = path.resolve(env.root, env.build.dir);
  const merged = new Map(hosts.map((h) => [h.name, mergeOverrides(env.config, h.config)]));
  const all = [...merged.values()];
  const secrets = o.placeholderSecrets
    ? placeholderSecrets(all)
    : resolveSecrets(all, { envFile: env.file, ...(o.env ? { env: o.env } : {}), ...(o.secretsFile ? { secretsFile: o.secretsFile } : {}) });
  if (reporter) for (const f of secrets.formsToMask()) reporter.addSecret(f);

  const variants = new Map<string, RenderedFile[]>();
  const digestToKey = new Map<string, string>();
  const hostToKey = new Map<string, string>();
  const problems: ConfigProblem[] = [];
  const seenProblems = new Set<string>();
  // hosts without host-level config first, so that their variant is called "default"
  const ordered = [...hosts].sort((a, b) => Number(!!a.config) - Number(!!b.config));
  // Problems the environment-level config has on its own: not to be blamed on a host.
  let envLevel: Set<string> | undefined;
  const envLevelProblems = (): Set<string> => {
    if (!envLevel) {
      envLevel = new Set();
      try {
        renderConfigFilesSync({ buildDir, overrides: env.config ?? {}, envFile: env.file, secrets });
      } catch (e) {
        if (!(e instanceof ConfigError)) throw e;
        for (const p of e.problems) envLevel.add(JSON.stringify(p));
      }
    }
    return envLevel;
  };
  for (const h of ordered) {
    let files: RenderedFile[];
    try {
      files = renderConfigFilesSync({ buildDir, overrides: merged.get(h.name)!, envFile: env.file, secrets });
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      for (const p of e.problems) {
        const k = JSON.stringify(p); // the same problem from env-level config: report it once
        const hosts = h.config && !envLevelProblems().has(k);
        const withHost = hosts ? { ...p, where: `${p.where ? `${p.where} ` : ''}(host ${h.name})` } : p;
        if (!seenProblems.has(k)) problems.push(withHost);
        seenProblems.add(k);
      }
      continue;
    }
    const hash = createHash('sha256');
    for (const f of files) hash.update(f.path).update('\0').update(f.content).update('\0');
    const digest = hash.digest('hex');
    let key = digestToKey.get(digest);
    if (!key) {
      key = variants.size === 0 ? 'default' : `host:${h.name}`;
      digestToKey.set(digest, key);
      variants.set(key, files);
    }
    hostToKey.set(h.name, key);
  }
  if (problems.length) throw new ConfigError(problems);
  if (variants.size === 0) variants.set('default', []);

  return {
    variants,
    variantOf: (host) => {
      const k = hostToKey.get(host);
      if (!k) throw new Error(`no config was rendered for host ${host}`);
      return k;
    },
    hostsOf: (variant) => [...hostToKey].filter(([, k]) => k === variant).map(([h]) => h),
    overridesOf: (host) => {
      const m = merged.get(host);
      if (!m) throw new Error(`no config was rendered for host ${host}`);
      return m;
    },
    secrets,
    masker: secrets.masker,
  };
}
