// A deploy: render the config, build one package (per config variant), then the release flow.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { newReleaseId } from '../remote/commands';
import { contextFor, releaseHosts, withSession, type TaskOptions } from '../context';
import { SwitchyardError } from '../errors';
import { buildPackage } from './package';
import { reportOf, runRelease, type ReleaseEvent, type ReleaseKind, type ReleaseReport } from './flow';
import { guardedRelease, withLockWait, type ReportOptions } from './guard';
import { deployedBy } from './lock';
import { formatBytes } from '../output/summary';
import { renderForHosts, type RenderedVariants } from '../config/deploy';
import { Masker, maskStrings, MissingSecretsError, resolveAppEnv, type MissingSecret, type ResolvedAppEnv } from '../config/secrets';
import type { Environment, HostConfig } from '../environment';
import type { Reporter } from '../output/reporter';
import { ProgressReporter, ProgressView } from '../output/progress';
import type { Session } from '../remote/session';

export interface DeployOptions extends TaskOptions, ReportOptions {
  /** Called at each host's prepare / switch / retire (load-test markers). */
  onEvent?: (e: ReleaseEvent) => void;
}

/** `--batch=2` or `--batch=25%` as a number of hosts per batch. */
export function batchSize(batch: string | undefined, hosts: number): number | undefined {
  if (batch === undefined || batch === '') return undefined;
  const m = /^(\d+)(%?)$/.exec(batch.trim());
  if (!m || Number(m[1]) === 0) throw new SwitchyardError(`--batch: "${batch}" is not a number of hosts or a percentage (e.g. 2 or 25%)`);
  return m[2] ? Math.max(1, Math.floor((hosts * Number(m[1])) / 100)) : Number(m[1]);
}

export function gitSha(root: string): string | undefined {
  try {
    return execFileSync('git', ['rev-parse', '--short=7', 'HEAD'], { cwd: root, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
  } catch {
    return undefined;
  }
}

/**
 * Everything secret, resolved before anything is uploaded: the config of every host and app.env.
 * ONE MissingSecretsError names every missing secret of both; every value to mask goes to the
 * reporter.
 */
export function resolveBeforeUpload(env: Environment, hosts: readonly HostConfig[], reporter: Reporter): { rendered: RenderedVariants; appEnv: ResolvedAppEnv } {
  const missing: MissingSecret[] = [];
  const attempt = <T>(f: () => T): T | undefined => {
    try {
      return f();
    } catch (e) {
      if (!(e instanceof MissingSecretsError)) throw e;
      missing.push(...e.missing);
      return undefined;
    }
  };
  const appEnv = attempt(() => resolveAppEnv(env.app.env, { envFile: env.file, reporter }));
  const rendered = attempt(() => renderForHosts(env, hosts, reporter));
  if (!appEnv || !rendered) {
    // a secret used by both is one line, naming every use
    const byName = new Map<string, MissingSecret>();
    for (const m of missing) {
      const k = `${m.name}\0${m.reason}`;
      const seen = byName.get(k);
      byName.set(k, seen ? { ...seen, usedBy: [...seen.usedBy, ...m.usedBy] } : m);
    }
    throw new MissingSecretsError([...byName.values()], env.file);
  }
  return { rendered, appEnv };
}

/**
 * A release whose report and error are masked as the log is: a host's error text may quote a
 * value (an app that prints its environment when it fails), and both end up in the JSON report
 * and on the terminal.
 */
export async function maskedRelease(masker: Masker, run: () => Promise<ReleaseReport>): Promise<ReleaseReport> {
  try {
    return maskStrings(await run(), masker);
  } catch (e) {
    if (e instanceof Error) {
      e.message = masker.mask(e.message);
      const r = reportOf(e);
      if (r) Object.assign(e, { report: maskStrings(r, masker) });
    }
    throw e;
  }
}

export async function deploy(o: DeployOptions, kind: Extract<ReleaseKind, 'deploy' | 'cold-deploy'> = 'deploy'): Promise<ReleaseReport> {
  // On a terminal, with the default output: a live line per host under the log.
  let view: ProgressView | undefined;
  if (!o.reporter && !o.dryRun && process.stdout.isTTY && !process.env.CI) {
    const probe = contextFor(o);
    view = new ProgressView(releaseHosts(probe).map((h) => h.name));
    const onEvent = o.onEvent;
    o = { ...o, environment: probe.env, reporter: new ProgressReporter(view, o.verbose), onEvent: (e) => (view!.event(e), onEvent?.(e)) };
  }
  try {
    return await deployWith(o, kind);
  } finally {
    view?.stop();
  }
}

async function deployWith(o: DeployOptions, kind: Extract<ReleaseKind, 'deploy' | 'cold-deploy'>): Promise<ReleaseReport> {
  const ctx = contextFor(o);
  const { env, reporter } = ctx;
  // the app hosts, and the files-only ones (a db primary's hook works in the release there)
  const hosts = releaseHosts(ctx);
  const sha = gitSha(env.root);
  const release = newReleaseId(new Date(), sha);
  const buildDir = path.resolve(env.root, env.build.dir);
  // Config is rendered and app.env resolved (secrets too) before anything is uploaded: a missing secret stops here.
  const { rendered, appEnv } = resolveBeforeUpload(env, hosts, reporter);
  const packages = new Map<string, Awaited<ReturnType<typeof buildPackage>>>();
  const meta = { release, site: env.site, env: env.name, git: sha ?? null, builtAt: new Date().toISOString(), deployedBy: deployedBy() };
  for (const [key, files] of rendered.variants) {
    packages.set(key, await buildPackage({ buildDir, envFile: env.file, files, meta }));
  }
  const first = packages.values().next().value!;
  reporter.log('info', `package: ${first.files} files, ${formatBytes(first.buildBytes)} before compression${packages.size > 1 ? ` (${packages.size} variants for host-level config)` : ''}`);
  const batch = batchSize(o.batch, hosts.length);
  try {
    const masker = new Masker([...appEnv.toMask, ...rendered.secrets.formsToMask()]);
    const attempt = (session: Session, signal: AbortSignal) =>
      runRelease({
        session,
        kind,
        release,
        appEnv: appEnv.values,
        packageFor: (h) => packages.get(rendered.variantOf(h.name))!,
        mask: (t) => masker.mask(t),
        ...(o.hooks ? { hooks: o.hooks } : {}),
        signal,
        ...(o.onEvent ? { onEvent: o.onEvent } : {}),
        ...(batch ? { batchSize: batch } : {}),
      });
    return await guardedRelease(reporter, o, (signal) =>
      maskedRelease(masker, () => withSession(ctx, hosts, (session) => withLockWait(o.lockWait, reporter, signal, () => attempt(session, signal)))),
    );
  } finally {
    for (const p of packages.values()) await p.remove();
  }
}
