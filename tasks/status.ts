import type { TaskOptions } from '../lib/context';
import { status } from '../lib/servers/status';
import { task, type Task } from './plumbing/task';

export function statusTask(o: TaskOptions): Task {
  return task('status', async () => {
    await status(o);
  });
}
