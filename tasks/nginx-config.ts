import { contextFor, type TaskOptions } from '../lib/context';
import { task, type Task } from './plumbing/task';
import { serverBlock } from '../lib/nginx/site';
import { forHost } from '../lib/environment';

export function nginxConfigTask(o: TaskOptions & { print?: (text: string) => void }): Task {
  return task('nginx-config', 'Print the nginx server block for the environment ($host allow-list, 421 otherwise)', { '--env': 'environment file env/<name>.ts' }, async () => {
    const { env } = contextFor(o);
    // Hosts may keep their sockets in different places: one block per distinct socket dir.
    const blocks = [...new Set(env.hosts.filter((h) => h.roles.some((r) => env.nginx.roles.includes(r))).map((h) => serverBlock(forHost(env, h))))];
    const text = blocks.join('\n');
    (o.print ?? ((t: string) => process.stdout.write(t)))(text.endsWith('\n') ? text : text + '\n');
  });
}
