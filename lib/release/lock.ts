// The deploy lock as people read it: who holds it, and whether the holder is gone (stale).
import os from 'node:os';

export function lockOwner(): string {
  return `${os.userInfo().username}@${os.hostname()} pid=${process.pid}`;
}

/** A lock held by a process of this machine that no longer exists is stale; say so. */
export function describeLock(owner: string): string {
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
