import type { LoadTaskOptions } from '../lib/context';
import { underLoadIf } from '../lib/load/loadtest';
import { rollback, type ReuseOptions } from '../lib/release/reuse';
import { COMMON_FLAGS, task, UNDER_LOAD_FLAG, type Task } from './plumbing/task';

export function rollbackTask(o: ReuseOptions & LoadTaskOptions): Task {
  const flags = { ...COMMON_FLAGS, '--report': 'write a JSON report to this file', ...UNDER_LOAD_FLAG };
  return task('rollback', 'Go back to the previous release on every host (started again, health-checked, switched atomically)', flags, async () => {
    await underLoadIf(o, 'rollback', (extra) => rollback({ ...o, ...extra }));
  });
}
