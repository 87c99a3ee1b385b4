import type { LoadTaskOptions } from '../lib/context';
import { underLoadIf } from '../lib/load/loadtest';
import { restart, type ReuseOptions } from '../lib/release/reuse';
import { COMMON_FLAGS, task, UNDER_LOAD_FLAG, type Task } from './plumbing/task';

export function restartTask(o: ReuseOptions & LoadTaskOptions): Task {
  const flags = { ...COMMON_FLAGS, '--report': 'write a JSON report to this file', ...UNDER_LOAD_FLAG };
  return task('restart', 'Graceful restart of the running release: a new process on its own socket, switched in, the old one drained', flags, async () => {
    await underLoadIf(o, 'restart', (extra) => restart({ ...o, ...extra }));
  });
}
