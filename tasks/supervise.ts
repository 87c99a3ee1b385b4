import { supervise, type SuperviseOptions } from '../lib/servers/supervise';
import { task, type Task } from './plumbing/task';

export function superviseTask(o: SuperviseOptions): Task {
  return task('supervise', async () => {
    await supervise(o);
  });
}
