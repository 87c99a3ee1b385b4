import type { TaskOptions } from '../lib/context';
import { checkConfig } from '../lib/config/show';
import { task, type Task } from './plumbing/task';

export function configCheckTask(o: TaskOptions): Task {
  return task('config-check', async () => {
    await checkConfig(o);
  });
}
