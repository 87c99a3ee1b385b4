import type { LoadTaskOptions } from '../lib/context';
import { underLoadIf } from '../lib/load/under-load';
import { deploy, type DeployOptions } from '../lib/release/deploy';
import { task, type Task } from './plumbing/task';

export function deployTask(o: DeployOptions & LoadTaskOptions): Task {
  return task('deploy', async () => {
    await underLoadIf(o, 'deploy', (extra) => deploy({ ...o, ...extra }, 'deploy'));
  });
}
