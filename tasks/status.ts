import type { TaskOptions } from '../lib/context';
import { status } from '../lib/servers/status';
import { COMMON_FLAGS, task, type Task } from './plumbing/task';

export function statusTask(o: TaskOptions): Task {
  return task('status', 'Per host: current release, pid, uptime, socket, health, lock', COMMON_FLAGS, async () => {
    await status(o);
  });
}
