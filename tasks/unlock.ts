import type { TaskOptions } from '../lib/context';
import { unlock } from '../lib/servers/unlock';
import { COMMON_FLAGS, task, type Task } from './plumbing/task';

export function unlockTask(o: TaskOptions): Task {
  return task('unlock', 'Remove the deploy lock after a killed deploy (a release that never went live is cleaned up)', COMMON_FLAGS, async () => {
    await unlock(o);
  });
}
