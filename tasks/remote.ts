// Your own role-scoped tasks, with switchyard's connections, logging and quoting:
//   export const migrate = remoteTask('migrate', 'Run migrations once', { env: 'uat' },
//     (s) => s.run({ role: 'db', primary: true }, ['node', 'migrate.js']));
import { contextFor, selectedHosts, withSession, type TaskOptions } from '../lib/context';
import type { Session } from '../lib/remote/session';
import { ownTask, type Task } from './plumbing/task';

export function remoteTask(name: string, description: string, o: TaskOptions, fn: (s: Session) => Promise<unknown>): Task {
  return ownTask(name, description, async () => {
    const ctx = contextFor(o);
    await withSession(ctx, selectedHosts(ctx), async (s) => {
      await fn(s);
    });
  });
}
