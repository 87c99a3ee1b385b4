// How a lock reads to people: stale when its heartbeat stopped (any machine), or when its process
// on this machine is gone.
import os from 'node:os';
import { describe, expect, it } from 'vitest';
import { describeLock, STALE_HEARTBEAT_SECONDS } from '../../../lib/release/lock';

describe('describeLock', () => {
  it('a heartbeat older than the limit is stale, whatever machine held the lock', () => {
    const owner = `release=R1 since=2026-12-01T10:00:00Z ci@agent-7 pid=42 (heartbeat ${STALE_HEARTBEAT_SECONDS + 1} s ago)`;
    expect(describeLock(owner)).toBe(`${owner} — STALE: no heartbeat for ${STALE_HEARTBEAT_SECONDS + 1} s (its deploy is gone, whatever machine it ran on); if no deploy is running, remove it with gulp unlock`);
  });

  it('a fresh heartbeat from another machine is a live deploy: shown as it is', () => {
    const owner = 'release=R1 since=2026-12-01T10:00:00Z ci@agent-7 pid=42 (heartbeat 3 s ago)';
    expect(describeLock(owner)).toBe(owner);
  });

  it('without a heartbeat (an older lock): stale only when its process on this machine is gone', () => {
    const gone = `release=R1 since=x me@${os.hostname()} pid=999999999`;
    expect(describeLock(gone)).toMatch(/STALE: process 999999999 on this machine is gone/);
    const alive = `release=R1 since=x me@${os.hostname()} pid=${process.pid}`;
    expect(describeLock(alive)).toBe(alive);
  });
});
