import { contextFor, task, type Task, type TaskOptions } from '../lib/context';
import { serverBlock } from './setup';

export function nginxConfigTask(o: TaskOptions & { print?: (text: string) => void }): Task {
  return task('nginx-config', 'Print the nginx server block for the environment ($host allow-list, 421 otherwise)', { '--env': 'environment file env/<name>.ts' }, async () => {
    const text = serverBlock(contextFor(o));
    (o.print ?? ((t: string) => process.stdout.write(t)))(text.endsWith('\n') ? text : text + '\n');
  });
}
