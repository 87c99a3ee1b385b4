import type { TaskOptions } from '../lib/context';
import { setup } from '../lib/servers/setup';
import { COMMON_FLAGS, task, type Task } from './plumbing/task';

export function setupTask(o: TaskOptions): Task {
  return task('setup', 'Prepare the servers: directories, tool checks (curl, ss, nohup), private nginx if configured', COMMON_FLAGS, () => setup(o));
}
