import { underLoadIf } from '../lib/load/loadtest';
import type { LoadTaskOptions } from '../lib/context';
import { deploy, type DeployOptions } from '../lib/release/deploy';
import { RELEASE_FLAGS, task, UNDER_LOAD_FLAG, type Task } from './plumbing/task';

export function deployTask(o: DeployOptions & LoadTaskOptions): Task {
  return task('deploy', 'Package, upload and release atomically on every host (one transaction)', { ...RELEASE_FLAGS, ...UNDER_LOAD_FLAG }, async () => {
    await underLoadIf(o, 'deploy', (extra) => deploy({ ...o, ...extra }, 'deploy'));
  });
}
