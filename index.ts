// switchyard's public API: import the tasks into your own gulpfile and chain them,
//   export const release = series(build, deployTask({ env: 'uat' }));
// or drive the core directly (Session, runRelease) for tasks of your own.
import type { TaskOptions } from './lib/context';
import { coldDeployTask, deployTask, type DeployOptions } from './tasks/deploy';
import { nginxConfigTask } from './tasks/nginx-config';
import { configCheckTask, configTask } from './tasks/config';
import { setupTask } from './tasks/setup';
import { statusTask } from './tasks/status';
import { unlockTask } from './tasks/unlock';
import { restartTask, rollbackTask } from './tasks/rollback';
import { loadtestTask } from './tasks/loadtest';
import { verifyTask, type VerifyOptions } from './tasks/verify';
import { demoTask } from './tasks/demo';

export { defineEnvironment, loadEnvironment, type Environment, type EnvironmentInput, type HostConfig } from './lib/environment';
export { secret } from './lib/secrets';
export { SwitchyardError } from './lib/errors';
export { selectHosts, primaryHost } from './lib/hosts';
export { Session, type StepResult } from './lib/session';
export { runRelease, type Hooks, type HookContext, type ReleaseReport } from './lib/release';
export { GulpReporter, MemoryReporter, type Reporter } from './lib/reporter';
export { contextFor, type TaskOptions, type Task } from './lib/context';
export { parseFlags, type Flags } from './lib/flags';
export { deploy, deployTask, coldDeployTask } from './tasks/deploy';
export { setup, setupTask } from './tasks/setup';
export { status, statusTask } from './tasks/status';
export { unlock, unlockTask } from './tasks/unlock';
export { rollback, restart, rollbackTask, restartTask } from './tasks/rollback';
export { nginxConfigTask } from './tasks/nginx-config';
export { showConfig, checkConfig, configTask, configCheckTask, type ConfigTaskOptions, type ConfigVariantDiff, type ConfigCheckResult } from './tasks/config';
export { renderForHosts, configDiff, ConfigError, MissingSecretsError, type RenderedVariants } from './lib/config';
export { remoteTask } from './tasks/remote';
export { loadtest, loadtestTask, withLoad, underLoadIf, LoadCheckFailedError, type LoadTaskOptions, type LoadOutcome } from './tasks/loadtest';
export { verify, verifyTask, type VerifyOptions, type VerifyOutcome } from './tasks/verify';
export { demo, demoTask } from './tasks/demo';
export { loadTargets } from './lib/targets';

/** Every built-in task for one set of options, keyed by its gulp name. */
export function createTasks(o: TaskOptions & DeployOptions & VerifyOptions) {
  return {
    setup: setupTask(o),
    'cold-deploy': coldDeployTask(o),
    deploy: deployTask(o),
    rollback: rollbackTask(o),
    restart: restartTask(o),
    status: statusTask(o),
    unlock: unlockTask(o),
    'nginx-config': nginxConfigTask(o),
    config: configTask(o),
    'config-check': configCheckTask(o),
    loadtest: loadtestTask(o),
    verify: verifyTask(o),
    demo: demoTask(o),
  };
}
