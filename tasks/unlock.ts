import type { TaskOptions } from '../lib/context';
import { unlock } from '../lib/servers/unlock';
import { task, type Task } from './plumbing/task';

export function unlockTask(o: TaskOptions): Task {
  return task('unlock', async () => {
    await unlock(o);
  });
}
