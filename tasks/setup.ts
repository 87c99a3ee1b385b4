import type { TaskOptions } from '../lib/context';
import { setup } from '../lib/servers/setup';
import { task, type Task } from './plumbing/task';

export function setupTask(o: TaskOptions): Task {
  return task('setup', async () => {
    await setup(o);
  });
}
