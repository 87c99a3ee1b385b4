import type { LoadTaskOptions } from '../lib/context';
import { assertAccepted, loadtest } from '../lib/load/loadtest';
import { task, type Task } from './plumbing/task';

export function loadtestTask(o: LoadTaskOptions): Task {
  return task('loadtest', async () => {
    assertAccepted(await loadtest(o), o.maxFailures);
  });
}
