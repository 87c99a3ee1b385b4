import type { LoadTaskOptions } from '../lib/context';
import { underLoadIf } from '../lib/load/under-load';
import { restart, type ReuseOptions } from '../lib/release/reuse';
import { task, type Task } from './plumbing/task';

export function restartTask(o: ReuseOptions & LoadTaskOptions): Task {
  return task('restart', async () => {
    await underLoadIf(o, 'restart', (extra) => restart({ ...o, ...extra }));
  });
}
