import { showConfig, type ConfigTaskOptions } from '../lib/config/show';
import { task, type Task } from './plumbing/task';

export function configTask(o: ConfigTaskOptions): Task {
  return task('config', async () => {
    await showConfig(o);
  });
}
