// Where a rollback goes (pure): never to a release rolled back from, unless named.
import { describe, expect, it } from 'vitest';
import { rollbackTarget } from '../../../lib/release/reuse';
import type { ReleaseInfo, ReleaseState } from '../../../lib/servers/releases';

const list = (...xs: ([string, ReleaseState] | [string, ReleaseState, string])[]): ReleaseInfo[] =>
  xs.map(([id, state, liveAt]) => ({ id, state, ...(liveAt ? { liveAt } : {}) }));

describe('rollbackTarget', () => {
  it('what served before the last switch; when that was rolled back from, the good one that went live last', () => {
    expect(rollbackTarget(list(['r3', 'current'], ['r2', 'previous'], ['r1', 'good']))).toEqual({ id: 'r2' });
    expect(rollbackTarget(list(['r3', 'bad'], ['r2', 'current'], ['r1', 'good']))).toEqual({ id: 'r1' });
    // never to one that did not go live
    expect(rollbackTarget(list(['r3', 'current'], ['r2', 'failed'], ['r1', 'good']))).toEqual({ id: 'r1' });
  });

  it('by when they went live (the host\'s clock), not by id: the deploying machine\'s clock may be a year off', () => {
    // B was deployed with the clock a year back: its id sorts first, yet it is the live one
    expect(rollbackTarget(list(['A', 'previous'], ['B', 'current']))).toEqual({ id: 'A' });
    expect(rollbackTarget(list(['C', 'good', '2026-12-01T10:00:00Z'], ['A', 'good', '2026-12-01T11:00:00Z'], ['B', 'current'], ['D', 'bad']))).toEqual({ id: 'A' });
    // the same moment (an older host's live-at has whole seconds): the later id
    expect(rollbackTarget(list(['r1', 'good', '2026-12-01T10:00:00Z'], ['r2', 'good', '2026-12-01T10:00:00Z'], ['r3', 'current']))).toEqual({ id: 'r2' });
    expect(rollbackTarget(list(['r2', 'good', '2026-12-01T10:00:00Z'], ['r1', 'good', '2026-12-01T10:00:00Z'], ['r3', 'current']))).toEqual({ id: 'r2' });
  });

  it('none: says why, naming the bad ones and --to', () => {
    expect(rollbackTarget(list(['r2', 'current'], ['r1', 'bad']))).toEqual({ why: 'no good release before r2 to roll back to (rolled back from, not picked: r1; name one with --to)' });
    expect(rollbackTarget(list(['r1', 'current']))).toEqual({ why: 'no good release before r1 to roll back to' });
    expect(rollbackTarget(list(['r1', 'good']))).toEqual({ why: 'no release is live to roll back from' });
  });

  it('--to: any release that is there, even a bad or newer one; not the live one, not a missing one', () => {
    const l = list(['r3', 'bad'], ['r2', 'current'], ['r1', 'good']);
    expect(rollbackTarget(l, 'r3')).toEqual({ id: 'r3' });
    expect(rollbackTarget(l, 'r1')).toEqual({ id: 'r1' });
    expect(rollbackTarget(l, 'r2')).toEqual({ why: '--to=r2 is the live release already' });
    expect(rollbackTarget(l, 'r9')).toEqual({ why: '--to=r9: no such release here (r3, r2, r1)' });
  });
});
