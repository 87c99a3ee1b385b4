import type { TaskOptions } from '../lib/context';
import { checkConfig } from '../lib/config/show';
import { COMMON_FLAGS, task, type Task } from './plumbing/task';

export function configCheckTask(o: TaskOptions): Task {
  const description = 'Render the config of every environment in the env dir without secrets (placeholders); fail listing every error';
  return task('config-check', description, { '--env-dir': COMMON_FLAGS['--env-dir'] }, async () => {
    await checkConfig(o);
  });
}
