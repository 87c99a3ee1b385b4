// switchyard's public API: import the tasks into your own gulpfile and chain them,
//   export const release = series(build, deployTask({ env: 'uat' }));
// or drive the core directly (Session, runRelease) for tasks of your own.
import type { LoadTaskOptions } from './lib/context';
import type { DeployOptions } from './lib/release/deploy';
import type { VerifyOptions } from './lib/load/verify';
import { setupTask } from './tasks/setup';
import { coldDeployTask } from './tasks/cold-deploy';
import { deployTask } from './tasks/deploy';
import { rollbackTask } from './tasks/rollback';
import { releasesTask } from './tasks/releases';
import { superviseTask } from './tasks/supervise';
import { restartTask } from './tasks/restart';
import { statusTask } from './tasks/status';
import { doctorTask } from './tasks/doctor';
import { unlockTask } from './tasks/unlock';
import { nginxConfigTask } from './tasks/nginx-config';
import { configTask } from './tasks/config';
import { configCheckTask } from './tasks/config-check';
import { loadtestTask } from './tasks/loadtest';
import { verifyTask } from './tasks/verify';
import { demoTask } from './tasks/demo';

export { defineEnvironment, loadEnvironment, type Environment, type EnvironmentInput, type HostConfig } from './lib/environment';
export { secret } from './lib/config/secrets';
export { SwitchyardError } from './lib/errors';
export { selectHosts, primaryHost } from './lib/environment/hosts';
export { Session, type StepResult } from './lib/remote/session';
export { runRelease, type Hooks, type HookContext, type ReleaseReport } from './lib/release/flow';
export { GulpReporter, MemoryReporter, type Reporter } from './lib/output/reporter';
export { contextFor, type TaskOptions, type LoadTaskOptions } from './lib/context';
export { type Task } from './tasks/plumbing/task';
export { parseFlags, type Flags } from './tasks/plumbing/flags';
export { deploy, type DeployOptions } from './lib/release/deploy';
export { setup } from './lib/servers/setup';
export { status } from './lib/servers/status';
export { doctor, judgeHost, type DoctorReport, type HostDoctor, type DoctorCheck, type DoctorOptions } from './lib/servers/doctor';
export { reachOf, type Reach } from './lib/servers/reach';
export { unlock } from './lib/servers/unlock';
export { rollback, restart, rollbackTarget } from './lib/release/reuse';
export { releases, readReleases, type ReleaseInfo, type HostReleases, type ReleaseState } from './lib/servers/releases';
export { showConfig, checkConfig, type ConfigTaskOptions, type ConfigVariantDiff, type ConfigCheckResult } from './lib/config/show';
export { renderForHosts, configDiff, ConfigError, MissingSecretsError, type RenderedVariants } from './lib/config';
export { loadtest, LoadCheckFailedError, type LoadOutcome } from './lib/load/loadtest';
export { withLoad, underLoadIf } from './lib/load/under-load';
export { verify, type VerifyOptions, type VerifyOutcome } from './lib/load/verify';
export { demo } from './lib/demo';
export { loadTargets } from './lib/load/targets';
export { remoteTask } from './tasks/remote';
export { setupTask, coldDeployTask, deployTask, rollbackTask, releasesTask, restartTask, statusTask, superviseTask, doctorTask, unlockTask, nginxConfigTask, configTask, configCheckTask, loadtestTask, verifyTask, demoTask };

/** Every built-in task for one set of options, keyed by its gulp name. */
export function createTasks(o: LoadTaskOptions & DeployOptions & VerifyOptions & { to?: string; json?: boolean; action?: string; boot?: boolean }) {
  return {
    setup: setupTask(o),
    'cold-deploy': coldDeployTask(o),
    deploy: deployTask(o),
    rollback: rollbackTask(o),
    releases: releasesTask(o),
    restart: restartTask(o),
    status: statusTask(o),
    supervise: superviseTask(o),
    doctor: doctorTask(o),
    unlock: unlockTask(o),
    'nginx-config': nginxConfigTask(o),
    config: configTask(o),
    'config-check': configCheckTask(o),
    loadtest: loadtestTask(o),
    verify: verifyTask(o),
    demo: demoTask(o),
  };
}
