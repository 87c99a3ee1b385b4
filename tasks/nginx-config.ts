import { contextFor, type TaskOptions } from '../lib/context';
import { serverBlocks } from '../lib/nginx/site';
import { task, type Task } from './plumbing/task';

export function nginxConfigTask(o: TaskOptions & { print?: (text: string) => void }): Task {
  return task('nginx-config', async () => {
    (o.print ?? ((t: string) => process.stdout.write(t)))(serverBlocks(contextFor(o).env));
  });
}
