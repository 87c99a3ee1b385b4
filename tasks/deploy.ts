import fs from 'node:fs';
import path from 'node:path';
import { newReleaseId } from '../lib/commands';
import { appHosts, batchSize, COMMON_FLAGS, contextFor, gitSha, publishReport, task, withSession, type Task, type TaskOptions } from '../lib/context';
import { buildPackage } from '../lib/package';
import { reportOf, runRelease, type ReleaseEvent, type ReleaseKind, type ReleaseReport } from '../lib/release';
import { formatBytes } from '../lib/summary';
import { renderForHosts } from '../lib/config/deploy';
import { ProgressReporter, ProgressView } from '../lib/progress';
import { interruptible } from '../lib/interrupt';
import { underLoadIf, UNDER_LOAD_FLAG, type LoadTaskOptions } from './loadtest';

export interface DeployOptions extends TaskOptions {
  /** Called at each host's prepare / switch / retire (load-test markers). */
  onEvent?: (e: ReleaseEvent) => void;
  /** Receives the report (also on failure, when there is one). */
  onReport?: (r: ReleaseReport) => void;
}

export async function deploy(o: DeployOptions, kind: Extract<ReleaseKind, 'deploy' | 'cold-deploy'> = 'deploy'): Promise<ReleaseReport> {
  // On a terminal, with the default output: a live line per host under the log.
  let view: ProgressView | undefined;
  if (!o.reporter && !o.dryRun && process.stdout.isTTY && !process.env.CI) {
    const probe = contextFor(o);
    view = new ProgressView(appHosts(probe).map((h) => h.name));
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
  const hosts = appHosts(ctx);
  const sha = gitSha(env.root);
  const release = newReleaseId(new Date(), sha);
  const buildDir = path.resolve(env.root, env.build.dir);
  // Config is rendered (and secrets resolved) before anything is uploaded: a missing secret stops here.
  const rendered = renderForHosts(env, hosts, reporter);
  const packages = new Map<string, Awaited<ReturnType<typeof buildPackage>>>();
  const meta = { release, site: env.site, env: env.name, git: sha ?? null, builtAt: new Date().toISOString() };
  for (const [key, files] of rendered.variants) {
    packages.set(key, await buildPackage({ buildDir, files, meta }));
  }
  const first = packages.values().next().value!;
  reporter.log('info', `package: ${first.files} files, ${formatBytes(first.bytes)}${packages.size > 1 ? ` (${packages.size} variants for host-level config)` : ''}`);
  const stop = interruptible();
  try {
    const report = await withSession(ctx, hosts, (session) =>
      runRelease({
        session,
        kind,
        release,
        packageFor: (h) => packages.get(rendered.variantOf(h.name))!,
        ...(o.hooks ? { hooks: o.hooks } : {}),
        signal: stop.signal,
        ...(o.onEvent ? { onEvent: o.onEvent } : {}),
        ...(batchSize(o.batch, hosts.length) ? { batchSize: batchSize(o.batch, hosts.length)! } : {}),
      }),
    );
    publishReport(reporter, o, report);
    return report;
  } catch (e) {
    const r = reportOf(e);
    if (r) publishReport(reporter, o, r);
    throw e;
  } finally {
    stop.dispose();
    for (const p of packages.values()) await p.remove();
    if (o.report && fs.existsSync(o.report)) reporter.log('info', `report: ${o.report}`);
  }
}

const FLAGS = {
  ...COMMON_FLAGS,
  '--parallel': 'at most N hosts at once (default: all)',
  '--batch': 'switch N hosts (or N%) at a time, each batch checked before the next',
  '--dry-run': 'print every remote command per host, run none',
  '--report': 'write a JSON report to this file',
};

export function deployTask(o: DeployOptions & LoadTaskOptions): Task {
  return task('deploy', 'Package, upload and release atomically on every host (one transaction)', { ...FLAGS, ...UNDER_LOAD_FLAG }, async () => {
    await underLoadIf(o, 'deploy', (extra) => deploy({ ...o, ...extra }, 'deploy'));
  });
}

export function coldDeployTask(o: DeployOptions): Task {
  return task('cold-deploy', 'First release where nothing runs yet (refuses if a release is live)', FLAGS, async () => {
    await deploy(o, 'cold-deploy');
  });
}
