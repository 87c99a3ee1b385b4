import { retireCommand, statusCommand, undoCommand, unlockCommand } from '../remote/commands';
import { contextFor, selectedHosts, withSession, type TaskOptions } from '../context';
import { forHost } from '../environment';
import { SwitchyardError } from '../errors';
import { describeLock, lockOwner } from '../release/flow';

export interface UnlockResult {
  host: string;
  /** What held the lock, or undefined when it was free. */
  holder?: string;
  /** The holder's release never went live here, so it was undone (staged process stopped, files removed). */
  undone?: string;
  /** The holder's release is live here but its deploy died before the retire: the retire was finished (the previous release stopped, old ones pruned). */
  retired?: string;
}

/**
 * After a deploy was killed: removes each host's deploy lock. When the lock's release never went
 * live on that host, its staged process and files are cleaned up too (undo); a release that did go
 * live is left serving, and its deploy's retire is finished (retire.sh: the previous release's
 * process, checked by pid + start time + socket inode, is stopped, old releases pruned, the lock
 * released), else that process would run on unrecorded once the next deploy's switch replaces
 * `.switchyard/previous`. A live release is never rolled back by unlock.
 */
export async function unlock(o: TaskOptions): Promise<UnlockResult[]> {
  const ctx = contextFor(o);
  const hosts = selectedHosts(ctx); // files-only hosts too: a killed deploy left their lock as well
  return withSession(ctx, hosts, async (session) => {
    await session.connectAll();
    return session.eachOrThrow(hosts, async (h): Promise<UnlockResult> => {
      const env = forHost(ctx.env, h);
      const st = await session.exec(h.name, statusCommand(env));
      if (!st.ok) throw new SwitchyardError(`${h.name}: status failed: ${st.error}`, { host: h.name });
      const lock = st.events.find((e) => e.event === 'lock');
      if (!lock) {
        ctx.reporter.log('info', 'no lock was held', h.name);
        return { host: h.name };
      }
      const holder = lock.msg ?? '?';
      const held = lock.fields.release;
      const live = st.events.find((e) => e.event === 'status')?.fields.release;
      if (held && held !== 'unknown' && held !== live) {
        const r = await session.exec(h.name, undoCommand(env, held));
        if (!r.ok) throw new SwitchyardError(`${h.name}: undo of ${held} failed: ${r.error}`, { host: h.name });
        ctx.reporter.log('info', `removed the lock of ${describeLock(holder)}; ${held} never went live here: stopped and removed`, h.name);
        return { host: h.name, holder, undone: held };
      }
      if (held && held === live) {
        const r = await session.exec(h.name, retireCommand(env, held, `unlock by ${lockOwner()}`));
        if (!r.ok) throw new SwitchyardError(`${h.name}: retire of ${held} (live here, its deploy ended before the retire) failed: ${r.error}`, { host: h.name });
        ctx.reporter.log('info', `removed the lock of ${describeLock(holder)} (${held} is live here and stays; its retire is done: the previous release stopped)`, h.name);
        return { host: h.name, holder, retired: held };
      }
      const r = await session.exec(h.name, unlockCommand(env));
      if (!r.ok) throw new SwitchyardError(`${h.name}: unlock failed: ${r.error}`, { host: h.name });
      ctx.reporter.log('info', `removed the lock of ${describeLock(holder)}`, h.name);
      return { host: h.name, holder };
    });
  });
}
