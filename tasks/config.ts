import { showConfig, type ConfigTaskOptions } from '../lib/config/show';
import { COMMON_FLAGS, task, type Task } from './plumbing/task';

export function configTask(o: ConfigTaskOptions): Task {
  return task('config', 'Render every config file for every host variant and print a unified diff against the build (secrets masked)', COMMON_FLAGS, async () => {
    await showConfig(o);
  });
}
