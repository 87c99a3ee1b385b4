import type { LoadTaskOptions } from '../lib/context';
import { loadtest } from '../lib/load/loadtest';
import { task, type Task } from './plumbing/task';

export function loadtestTask(o: LoadTaskOptions): Task {
  return task('loadtest', async () => {
    await loadtest(o);
  });
}
