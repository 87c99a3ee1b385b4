import { releases, type ReleasesOptions } from '../lib/servers/releases';
import { task, type Task } from './plumbing/task';

export function releasesTask(o: ReleasesOptions): Task {
  return task('releases', async () => {
    await releases(o);
  });
}
