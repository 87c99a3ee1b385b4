import type { LoadTaskOptions } from '../lib/context';
import { underLoadIf } from '../lib/load/under-load';
import { rollback, type ReuseOptions } from '../lib/release/reuse';
import { task, type Task } from './plumbing/task';

export function rollbackTask(o: ReuseOptions & LoadTaskOptions): Task {
  return task('rollback', async () => {
    await underLoadIf(o, 'rollback', (extra) => rollback({ ...o, ...extra }));
  });
}
