import { unlockCommand } from '../lib/commands';
import { appHosts, COMMON_FLAGS, contextFor, task, withSession, type Task, type TaskOptions } from '../lib/context';
import { SwitchyardError } from '../lib/errors';
import { forHost } from '../lib/environment';

export async function unlock(o: TaskOptions): Promise<void> {
  const ctx = contextFor(o);
  const hosts = appHosts(ctx);
  await withSession(ctx, hosts, async (session) => {
    await session.connectAll();
    const results = await session.each(hosts, async (h) => {
      const r = await session.exec(h.name, unlockCommand(forHost(ctx.env, h)));
      if (!r.ok) throw new SwitchyardError(`${h.name}: unlock failed: ${r.error}`, { host: h.name });
      const held = r.events.find((e) => e.event === 'unlocked');
      ctx.reporter.log('info', held ? `removed the deploy lock held by ${held.msg ?? '?'}` : 'no lock was held', h.name);
    });
    const failed = results.filter((r) => r.error);
    if (failed.length) throw new SwitchyardError(failed.map((f) => f.error!.message).join('\n'));
  });
}

export function unlockTask(o: TaskOptions): Task {
  return task('unlock', 'Remove the deploy lock (after a killed deploy; `status` shows who holds it)', COMMON_FLAGS, () => unlock(o));
}
