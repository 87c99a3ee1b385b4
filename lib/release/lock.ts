// The deploy lock as people read it: who holds it, and whether the holder is gone (stale).
import os from 'node:os';

/** `user@host` of the deploying machine, as releases.sh lists it (its characters only: [A-Za-z0-9_.@-]). */
export function deployedBy(): string {
  return `${os.userInfo().username}@${os.hostname()}`.replace(/[^A-Za-z0-9_.@-]/g, '_').slice(0, 200);
}

export function lockOwner(): string {
  return `${os.userInfo().username}@${os.hostname()} pid=${process.pid}`;
}

/**
 * The heartbeat (lock/heartbeat, remote-scripts/lib.sh) is written every 5 s while the deploy that
 * holds the lock is connected; its longest silence is a step that writes nothing, such as unpacking
 * a large package. Past this, whatever machine it ran on, the deploy is gone.
 */
export const STALE_HEARTBEAT_SECONDS = 60;

/** A lock whose heartbeat stopped, or held by a process of this machine that no longer exists, is stale; say so. */
export function describeLock(owner: string): string {
  const hb = /\(heartbeat (\d+) s ago\)$/.exec(owner);
  if (hb && Number(hb[1]) > STALE_HEARTBEAT_SECONDS) {
    return `${owner} — STALE: no heartbeat for ${hb[1]} s (its deploy is gone, whatever machine it ran on); if no deploy is running, remove it with gulp unlock`;
  }
  const m = /(\S+)@(\S+) pid=(\d+)/.exec(owner);
  if (m && m[2] === os.hostname()) {
    try {
      process.kill(Number(m[3]), 0);
    } catch {
      return `${owner} — STALE: process ${m[3]} on this machine is gone; if no deploy is running, remove it with gulp unlock`;
    }
  }
  return owner;
}
