import { contextFor, type TaskOptions } from '../lib/context';
import { forHost } from '../lib/environment';
import { serverBlock } from '../lib/nginx/site';
import { task, type Task } from './plumbing/task';

export function nginxConfigTask(o: TaskOptions & { print?: (text: string) => void }): Task {
  return task('nginx-config', async () => {
    const { env } = contextFor(o);
    // Hosts may keep their sockets in different places: one block per distinct socket dir.
    const blocks = [...new Set(env.hosts.filter((h) => h.roles.some((r) => env.nginx.roles.includes(r))).map((h) => serverBlock(forHost(env, h))))];
    const text = blocks.join('\n');
    (o.print ?? ((t: string) => process.stdout.write(t)))(text.endsWith('\n') ? text : text + '\n');
  });
}
